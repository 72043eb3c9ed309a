//! Routing decisions as they happen, for `GET /api/v1/router/events` (Server-Sent
//! Events) and the dashboard: a bounded ring buffer that replays the last decisions to a
//! new subscriber, and a broadcast channel for the live ones.
//!
//! The request path only pays for an `Arc`, a short lock on the ring and a send that
//! never waits: events are serialised by the subscribers, and a subscriber that falls
//! behind the channel's capacity is dropped (its stream ends; an `EventSource` or the
//! dashboard reconnects and gets the replay) rather than slowing anybody down.

use axum::response::sse::Event;
use futures_util::stream::{self, Stream};
use router_core::{ModelId, Requirements, RouteReport, Target, Timestamp};
use serde::Serialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Decisions kept for replay to a new subscriber.
pub const DEFAULT_REPLAY: usize = 100;
/// Decisions a live subscriber may fall behind by before it is dropped.
pub const DEFAULT_LAG_LIMIT: usize = 256;
/// Live subscribers at once; more are answered 503 (each holds a connection, and the
/// dashboard needs one per open tab).
pub const MAX_SUBSCRIBERS: usize = 32;

/// What the chat handler knows about a request besides the core's [`RouteReport`]; it
/// travels in the response's extensions to the middleware that has the timings.
#[derive(Clone, Debug)]
pub struct DecisionContext {
    pub requirements: Requirements,
    pub targets: Vec<Target>,
    pub seed: u64,
    pub stream: bool,
    /// `metadata.error_type` and the message, when the request failed.
    pub error: Option<(&'static str, String)>,
}

/// One routing decision, complete.
#[derive(Clone, Debug)]
pub struct Decision {
    pub id: u64,
    pub at: Timestamp,
    pub context: DecisionContext,
    pub report: RouteReport,
    pub status: u16,
    pub total: Duration,
    pub overhead: Duration,
}

impl Decision {
    /// `ok` for an answer, else the error's type (`all_cooling_down`, `rate_limited_model`, ...).
    pub fn outcome(&self) -> &'static str {
        match &self.context.error {
            Some((kind, _)) => kind,
            None if self.status >= 400 => "upstream_error",
            None => "ok",
        }
    }

    /// The decision as the events stream and the dashboard show it.
    pub fn view(&self) -> DecisionView<'_> {
        let first = self.report.attempts.first().map(|a| &a.model);
        DecisionView {
            id: self.id,
            at: self.at,
            requested: self
                .context
                .targets
                .iter()
                .map(|t| match t {
                    Target::AnyFree => "openrouter/free",
                    Target::Model(m) => m.as_str(),
                })
                .collect(),
            requirements: self.context.requirements.labels(),
            estimated_prompt_tokens: self.context.requirements.prompt_tokens,
            seed: self.context.seed.to_string(),
            stream: self.context.stream,
            candidates: self.report.candidates,
            pick: first.or(self.report.model.as_ref()),
            pick_kind: self.report.pick.as_str(),
            waited_ms: millis(self.report.waited),
            model: self.report.model.as_ref(),
            attempts: self
                .report
                .attempts
                .iter()
                .map(|a| AttemptView {
                    model: &a.model,
                    outcome: a.failure.map_or("ok", |k| k.as_str()),
                    elapsed_ms: millis(a.elapsed),
                    raced: a.raced,
                })
                .collect(),
            outcome: self.outcome(),
            error: self.context.error.as_ref().map(|(_, m)| m.as_str()),
            status: self.status,
            total_ms: millis(self.total),
            upstream_ms: millis(self.report.upstream_time()),
            overhead_us: u64::try_from(self.overhead.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[derive(Debug, Serialize)]
pub struct DecisionView<'a> {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub at: Timestamp,
    pub requested: Vec<&'a str>,
    pub requirements: Vec<String>,
    pub estimated_prompt_tokens: u64,
    /// A string: JavaScript numbers cannot hold every `u64`.
    pub seed: String,
    pub stream: bool,
    pub candidates: usize,
    /// The model of the first attempt.
    pub pick: Option<&'a ModelId>,
    /// How it was chosen: `uniform`, `weighted`, `sticky` or `named`.
    pub pick_kind: &'static str,
    /// Time spent waiting for a cooling model to recover instead of answering 429.
    pub waited_ms: f64,
    /// The model that answered.
    pub model: Option<&'a ModelId>,
    pub attempts: Vec<AttemptView<'a>>,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    pub status: u16,
    pub total_ms: f64,
    pub upstream_ms: f64,
    /// What the router added: total time minus upstream time.
    pub overhead_us: u64,
}

#[derive(Debug, Serialize)]
pub struct AttemptView<'a> {
    pub model: &'a ModelId,
    /// `ok` or the failure's kind.
    pub outcome: &'static str,
    pub elapsed_ms: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub raced: bool,
}

/// The ring buffer and the channel.
#[derive(Debug)]
pub struct DecisionLog {
    ring: Mutex<VecDeque<Arc<Decision>>>,
    replay: usize,
    tx: broadcast::Sender<Arc<Decision>>,
    next_id: AtomicU64,
    /// Set at shutdown: open streams end, so that they do not hold the server's grace
    /// period open (an event stream never finishes on its own).
    closed: watch::Sender<bool>,
}

impl Default for DecisionLog {
    fn default() -> Self {
        DecisionLog::new(DEFAULT_REPLAY, DEFAULT_LAG_LIMIT)
    }
}

impl DecisionLog {
    pub fn new(replay: usize, lag_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(lag_limit.max(1));
        DecisionLog {
            ring: Mutex::new(VecDeque::with_capacity(replay)),
            replay,
            tx,
            next_id: AtomicU64::new(1),
            closed: watch::Sender::new(false),
        }
    }

    /// Ends every open stream now and every later one after its replay: call it when
    /// the server starts shutting down.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Records a decision and hands it to the live subscribers; never waits for them.
    pub fn publish(&self, mut decision: Decision) -> Arc<Decision> {
        decision.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let decision = Arc::new(decision);
        {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            if self.replay > 0 {
                if ring.len() == self.replay {
                    ring.pop_front();
                }
                ring.push_back(decision.clone());
            }
            // Sent under the ring's lock, so that a subscriber's replay and its live
            // events neither overlap nor leave a gap.
            let _ = self.tx.send(decision.clone());
        }
        decision
    }

    /// The decisions kept for replay, oldest first, and a receiver for the later ones.
    pub fn subscribe(&self) -> (Vec<Arc<Decision>>, broadcast::Receiver<Arc<Decision>>) {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        (ring.iter().cloned().collect(), self.tx.subscribe())
    }

    /// The decisions kept for replay, oldest first.
    pub fn recent(&self) -> Vec<Arc<Decision>> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

fn event(d: &Decision) -> Event {
    let data = serde_json::to_string(&d.view()).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(d.id.to_string()).event("decision").data(data)
}

/// The stream for one subscriber: the replay, then live decisions until it lags.
pub fn decision_stream(log: &DecisionLog) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let (replay, rx) = log.subscribe();
    let closed = log.closed.subscribe();
    let replayed = stream::iter(replay.into_iter().map(|d| Ok(event(&d))));
    let live = stream::unfold(Some((rx, closed)), |state| async move {
        let (mut rx, mut closed) = state?;
        let received = tokio::select! {
            r = rx.recv() => r,
            _ = closed.wait_for(|c| *c) => return None,
        };
        match received {
            Ok(d) => Some((Ok(event(&d)), Some((rx, closed)))),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Too slow: say so and end the stream, rather than hold decisions back.
                let note = Event::default().event("dropped").data(format!(
                    "{{\"missed\":{n},\"message\":\"this subscriber fell behind and was dropped; reconnect to resume\"}}"
                ));
                Some((Ok(note), None))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    futures_util::StreamExt::chain(replayed, live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use router_core::{Attempt, ErrorKind};

    fn decision(model: &str) -> Decision {
        Decision {
            id: 0,
            at: Timestamp::from_secs(1_800_000_000),
            context: DecisionContext {
                requirements: Requirements::default(),
                targets: vec![Target::AnyFree],
                seed: 7,
                stream: false,
                error: None,
            },
            report: RouteReport {
                model: Some(ModelId::new(model)),
                candidates: 2,
                attempts: vec![
                    Attempt {
                        model: ModelId::new("x:free"),
                        failure: Some(ErrorKind::RateLimitedModel),
                        elapsed: Duration::from_millis(3),
                        raced: false,
                    },
                    Attempt {
                        model: ModelId::new(model),
                        failure: None,
                        elapsed: Duration::from_millis(5),
                        raced: false,
                    },
                ],
                ..RouteReport::default()
            },
            status: 200,
            total: Duration::from_millis(9),
            overhead: Duration::from_micros(1000),
        }
    }

    #[test]
    fn the_view_names_pick_attempts_and_timings() {
        let d = decision("m:free");
        let v = serde_json::to_value(d.view()).expect("json");
        assert_eq!(v["pick"], "x:free");
        assert_eq!(v["pick_kind"], "uniform");
        assert_eq!(v["waited_ms"], 0.0);
        assert_eq!(v["model"], "m:free");
        assert_eq!(v["requested"][0], "openrouter/free");
        assert_eq!(v["attempts"][0]["outcome"], "rate_limited_model");
        assert_eq!(v["attempts"][1]["outcome"], "ok");
        assert_eq!(v["outcome"], "ok");
        assert_eq!(v["upstream_ms"], 8.0);
        assert_eq!(v["overhead_us"], 1000);
    }

    #[test]
    fn the_ring_keeps_the_last_decisions() {
        let log = DecisionLog::new(3, 8);
        for i in 0..5 {
            log.publish(decision(&format!("m{i}:free")));
        }
        let ids: Vec<u64> = log.recent().iter().map(|d| d.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_replay_then_live_decisions() {
        let log = DecisionLog::new(2, 8);
        log.publish(decision("a:free"));
        log.publish(decision("b:free"));
        log.publish(decision("c:free"));
        let mut s = Box::pin(decision_stream(&log));
        log.publish(decision("d:free"));
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(format!("{:?}", s.next().await.expect("an event").expect("infallible")));
        }
        assert!(got[0].contains("b:free") && got[1].contains("c:free") && got[2].contains("d:free"), "{got:?}");
    }

    #[tokio::test]
    async fn closing_ends_the_open_streams() {
        let log = DecisionLog::new(4, 8);
        log.publish(decision("a:free"));
        let mut s = Box::pin(decision_stream(&log));
        assert!(s.next().await.is_some(), "the replay");
        log.close();
        let end = tokio::time::timeout(Duration::from_secs(5), s.next()).await.expect("the stream ends at once");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_dropped_and_publishing_never_waits() {
        let log = DecisionLog::new(0, 2);
        let mut s = Box::pin(decision_stream(&log));
        for i in 0..10 {
            log.publish(decision(&format!("m{i}:free")));
        }
        let first = format!("{:?}", s.next().await.expect("an event").expect("infallible"));
        assert!(first.contains("dropped"), "{first}");
        assert!(s.next().await.is_none(), "the stream ends after the drop notice");
    }
}
