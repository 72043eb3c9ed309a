//! Counters kept on the request path (atomics, one short lock for per-model attempts)
//! and the recent activity behind the dashboard (per-minute trends, each model's last
//! attempts, the decisions log). They are read here and rendered in `crate::prom`, with
//! the router's state from its read model (`crate::status::view`).

use crate::events::{Decision, DecisionContext, DecisionLog};
use router_core::{Attempt, ModelId, RouteReport, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Minutes of per-minute request counts kept for the trends.
pub const TREND_MINUTES: usize = 60;
/// Attempts per model kept for its recent success rate and latency.
pub const RECENT_ATTEMPTS: usize = 20;

/// Which endpoint a request hit, a label of `router_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
    /// Anthropic's Messages API (`/v1/messages` and its `count_tokens`).
    Messages,
    /// `/v1/embeddings` and its `/embeddings/models` list.
    Embeddings,
    Models,
    Explain,
    Probe,
    /// The dashboard page and its status and events APIs.
    Dashboard,
    Other,
}

impl Endpoint {
    const ALL: [Endpoint; 9] = [
        Endpoint::Chat,
        Endpoint::Responses,
        Endpoint::Messages,
        Endpoint::Embeddings,
        Endpoint::Models,
        Endpoint::Explain,
        Endpoint::Probe,
        Endpoint::Dashboard,
        Endpoint::Other,
    ];

    pub fn of_path(path: &str) -> Endpoint {
        match path {
            "/api/v1/chat/completions" | "/v1/chat/completions" => Endpoint::Chat,
            "/api/v1/responses" | "/v1/responses" => Endpoint::Responses,
            "/api/v1/messages" | "/v1/messages" | "/api/v1/messages/count_tokens" | "/v1/messages/count_tokens" => {
                Endpoint::Messages
            }
            "/api/v1/embeddings" | "/v1/embeddings" | "/api/v1/embeddings/models" | "/v1/embeddings/models" => {
                Endpoint::Embeddings
            }
            "/api/v1/models" | "/v1/models" => Endpoint::Models,
            "/api/v1/router/explain" => Endpoint::Explain,
            "/healthz" | "/readyz" | "/metrics" => Endpoint::Probe,
            "/api/v1/router/status" | "/api/v1/router/events" => Endpoint::Dashboard,
            p if p == "/dashboard" || p.starts_with("/dashboard/") => Endpoint::Dashboard,
            _ => Endpoint::Other,
        }
    }

    /// The `endpoint` label of `router_requests_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Responses => "responses",
            Endpoint::Messages => "messages",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Models => "models",
            Endpoint::Explain => "explain",
            Endpoint::Probe => "probe",
            Endpoint::Dashboard => "dashboard",
            Endpoint::Other => "other",
        }
    }
}

const STATUSES: usize = 500; // 100..=599

/// Upper bounds of the overhead histogram, in seconds.
const BUCKETS: [f64; 13] =
    [0.000_01, 0.000_025, 0.000_05, 0.000_075, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1];

#[derive(Debug)]
struct Histogram {
    /// Per bucket (not cumulative), the last one is +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_nanos: AtomicU64::new(0) }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.iter().position(|&b| secs <= b).unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// The server's own counters.
#[derive(Debug)]
pub struct Metrics {
    /// `[endpoint][status - 100]`.
    requests: Box<[AtomicU64]>,
    /// Upstream attempts by model and outcome (`ok` or the failure kind).
    attempts: Mutex<BTreeMap<(ModelId, &'static str), u64>>,
    /// Attempts after the first within a request: each is a fallback to another model.
    fallbacks: AtomicU64,
    /// Failed attempts on a model another request had meanwhile found cooling.
    raced: AtomicU64,
    overhead: Histogram,
    activity: Mutex<Activity>,
    decisions: DecisionLog,
    started: Instant,
    /// The serving loop's counters (open and refused connections, local exhaustion).
    pub serve: std::sync::Arc<crate::limits::ServeStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            requests: (0..Endpoint::ALL.len() * STATUSES).map(|_| AtomicU64::new(0)).collect(),
            attempts: Mutex::new(BTreeMap::new()),
            fallbacks: AtomicU64::new(0),
            raced: AtomicU64::new(0),
            overhead: Histogram::new(),
            activity: Mutex::new(Activity::default()),
            decisions: DecisionLog::default(),
            started: Instant::now(),
            serve: std::sync::Arc::default(),
        }
    }

    /// Time since these counters were created (the server's start).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The log of recent routing decisions and its live subscribers.
    pub fn decisions(&self) -> &DecisionLog {
        &self.decisions
    }

    /// Records one routed request everywhere it shows: the counters and histogram, the
    /// trends, each model's recent attempts, and the decisions log (published last, so a
    /// subscriber that sees the decision finds the figures already updated).
    pub fn record_decision(&self, decision: Decision) {
        self.record_route(&decision.report, decision.overhead);
        self.activity.lock().unwrap_or_else(PoisonError::into_inner).record(&decision);
        self.decisions.publish(decision);
    }

    /// Builds and records a decision from what the chat handler and the middleware know.
    pub fn record_routed(
        &self,
        at: Timestamp,
        context: DecisionContext,
        report: RouteReport,
        status: u16,
        total: Duration,
        overhead: Duration,
    ) {
        self.record_decision(Decision { id: 0, at, context, report, status, total, overhead });
    }

    /// Requests per minute by outcome and by model, over the last [`TREND_MINUTES`]
    /// minutes up to `now` (empty minutes included), oldest first.
    pub fn trends(&self, now: Timestamp) -> Vec<MinuteView> {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner).trends(now)
    }

    /// Each model's recent attempts, summarised.
    pub fn recent_by_model(&self) -> HashMap<ModelId, RecentView> {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner).recent_views()
    }

    pub fn record_request(&self, endpoint: Endpoint, status: u16) {
        let s = usize::from(status.clamp(100, 599)) - 100;
        let e = Endpoint::ALL.iter().position(|&x| x == endpoint).unwrap_or(0);
        self.requests[e * STATUSES + s].fetch_add(1, Ordering::Relaxed);
    }

    /// Records what the router did for one request; `overhead` is its time minus upstream's.
    /// Requests refused before any upstream call (a paid model, all cooling, a quota)
    /// count in the attempts and logs but not in the overhead histogram, which is about
    /// what the router adds to forwarded requests.
    pub fn record_route(&self, report: &RouteReport, overhead: Duration) {
        if report.attempts.is_empty() {
            return;
        }
        self.overhead.observe(overhead);
        if report.attempts.len() > 1 {
            self.fallbacks.fetch_add(report.attempts.len() as u64 - 1, Ordering::Relaxed);
        }
        let raced = report.attempts.iter().filter(|a| a.raced).count() as u64;
        if raced > 0 {
            self.raced.fetch_add(raced, Ordering::Relaxed);
        }
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        for Attempt { model, failure, .. } in &report.attempts {
            let outcome = failure.map_or("ok", |k| k.as_str());
            *attempts.entry((model.clone(), outcome)).or_insert(0) += 1;
        }
    }

    /// Requests answered so far with `status` on `endpoint`.
    pub fn requests(&self, endpoint: Endpoint, status: u16) -> u64 {
        let s = usize::from(status.clamp(100, 599)) - 100;
        let e = Endpoint::ALL.iter().position(|&x| x == endpoint).unwrap_or(0);
        self.requests[e * STATUSES + s].load(Ordering::Relaxed)
    }

    /// Each (endpoint, status) answered at least once, with its count.
    pub fn for_each_request(&self, mut f: impl FnMut(Endpoint, u16, u64)) {
        for (e, endpoint) in Endpoint::ALL.iter().enumerate() {
            for s in 0..STATUSES {
                let n = self.requests[e * STATUSES + s].load(Ordering::Relaxed);
                if n > 0 {
                    f(*endpoint, u16::try_from(s + 100).unwrap_or(u16::MAX), n);
                }
            }
        }
    }

    /// Upstream attempts by model and outcome (`ok` or the failure's kind), in order.
    pub fn for_each_attempt(&self, mut f: impl FnMut(&ModelId, &'static str, u64)) {
        for ((model, outcome), n) in self.attempts.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            f(model, outcome, *n);
        }
    }

    /// Attempts after the first within a request.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Failed attempts on a model another request had meanwhile found cooling.
    pub fn raced(&self) -> u64 {
        self.raced.load(Ordering::Relaxed)
    }

    /// The overhead histogram as it stands.
    pub fn overhead(&self) -> HistogramReading {
        HistogramReading {
            bounds: &BUCKETS,
            counts: self.overhead.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum_secs: self.overhead.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram read once.
#[derive(Clone, Debug)]
pub struct HistogramReading {
    /// Upper bounds of the buckets, in seconds.
    pub bounds: &'static [f64],
    /// Per bucket, not cumulative: one more than `bounds`, the last for +Inf.
    pub counts: Vec<u64>,
    pub sum_secs: f64,
}

/// One minute of routed requests.
#[derive(Debug, Default)]
struct Minute {
    /// Minutes since the Unix epoch.
    index: u64,
    outcomes: BTreeMap<&'static str, u32>,
    models: BTreeMap<ModelId, u32>,
}

/// One attempt remembered for a model's recent figures.
#[derive(Clone, Copy, Debug)]
struct Recent {
    ok: bool,
    elapsed: Duration,
}

/// The recent activity: per-minute counts and each model's last attempts.
#[derive(Debug, Default)]
struct Activity {
    minutes: VecDeque<Minute>,
    recent: HashMap<ModelId, VecDeque<Recent>>,
}

impl Activity {
    fn record(&mut self, d: &Decision) {
        let index = d.at.minute();
        if self.minutes.back().is_none_or(|m| m.index < index) {
            self.minutes.push_back(Minute { index, ..Minute::default() });
        }
        let oldest = index.saturating_sub(TREND_MINUTES as u64 - 1);
        while self.minutes.front().is_some_and(|m| m.index < oldest) {
            self.minutes.pop_front();
        }
        // A clock that went back a little: count in the minute it names, if still kept.
        if let Some(m) = self.minutes.iter_mut().rev().find(|m| m.index == index) {
            *m.outcomes.entry(d.outcome()).or_insert(0) += 1;
            if let Some(model) = &d.report.model {
                *m.models.entry(model.clone()).or_insert(0) += 1;
            }
        }
        for a in &d.report.attempts {
            // A raced failure says nothing new about the model: it was already cooling.
            if a.raced {
                continue;
            }
            let q = self.recent.entry(a.model.clone()).or_default();
            if q.len() == RECENT_ATTEMPTS {
                q.pop_front();
            }
            q.push_back(Recent { ok: a.failure.is_none(), elapsed: a.elapsed });
        }
    }

    fn trends(&self, now: Timestamp) -> Vec<MinuteView> {
        let last = now.minute();
        let first = last.saturating_sub(TREND_MINUTES as u64 - 1);
        (first..=last)
            .map(|index| {
                let start = Timestamp::from_millis(index * 60_000);
                match self.minutes.iter().find(|m| m.index == index) {
                    Some(m) => MinuteView {
                        start,
                        total: m.outcomes.values().sum(),
                        outcomes: m.outcomes.clone(),
                        models: m.models.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    },
                    None => MinuteView { start, total: 0, outcomes: BTreeMap::new(), models: BTreeMap::new() },
                }
            })
            .collect()
    }

    fn recent_views(&self) -> HashMap<ModelId, RecentView> {
        self.recent
            .iter()
            .map(|(id, q)| {
                let ok = q.iter().filter(|r| r.ok).count();
                let mut times: Vec<Duration> = q.iter().filter(|r| r.ok).map(|r| r.elapsed).collect();
                times.sort_unstable();
                let median = times.get(times.len() / 2).map(|d| (d.as_secs_f64() * 1e4).round() / 10.0);
                let view = RecentView {
                    attempts: q.len(),
                    ok,
                    success_rate: ok as f64 / q.len().max(1) as f64,
                    median_latency_ms: median,
                };
                (id.clone(), view)
            })
            .collect()
    }
}

/// Requests routed in one minute.
#[derive(Clone, Debug, Serialize)]
pub struct MinuteView {
    /// The minute's first millisecond since the Unix epoch.
    pub start: Timestamp,
    pub total: u32,
    /// By outcome: `ok` or the error's type.
    pub outcomes: BTreeMap<&'static str, u32>,
    /// By the model that answered.
    pub models: BTreeMap<ModelId, u32>,
}

/// A model's last attempts (at most [`RECENT_ATTEMPTS`]).
#[derive(Clone, Debug, Serialize)]
pub struct RecentView {
    pub attempts: usize,
    pub ok: usize,
    pub success_rate: f64,
    /// Of the successful attempts, time to the answer's head.
    pub median_latency_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::ErrorKind;

    fn check(metrics: &Metrics, expected_lines: &[&str]) {
        let mut out = String::new();
        crate::prom::counters(metrics, &mut out);
        for line in expected_lines {
            assert!(out.lines().any(|l| l == *line), "missing `{line}` in\n{out}");
        }
    }

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::new();
        m.record_request(Endpoint::Chat, 200);
        m.record_request(Endpoint::Chat, 200);
        m.record_request(Endpoint::Other, 404);
        let attempt = |model: &str, failure| Attempt {
            model: ModelId::new(model),
            failure,
            elapsed: Duration::ZERO,
            raced: false,
        };
        let raced = Attempt { raced: true, ..attempt("c:free", Some(ErrorKind::RateLimitedModel)) };
        let report = RouteReport {
            model: Some(ModelId::new("b:free")),
            candidates: 3,
            attempts: vec![raced, attempt("a\"x:free", Some(ErrorKind::RateLimitedModel)), attempt("b:free", None)],
            ..RouteReport::default()
        };
        m.record_route(&report, Duration::from_micros(30));
        m.record_route(
            &RouteReport { attempts: vec![attempt("b:free", None)], ..report.clone() },
            Duration::from_millis(200),
        );
        m.record_route(&RouteReport::default(), Duration::from_millis(300));
        check(
            &m,
            &[
                "router_requests_total{endpoint=\"chat\",status=\"200\"} 2",
                "router_requests_total{endpoint=\"other\",status=\"404\"} 1",
                "router_upstream_attempts_total{model=\"a\\\"x:free\",outcome=\"rate_limited_model\"} 1",
                "router_upstream_attempts_total{model=\"b:free\",outcome=\"ok\"} 2",
                "router_fallbacks_total 2",
                "router_raced_attempts_total 1",
                "router_overhead_seconds_bucket{le=\"0.000025\"} 0",
                "router_overhead_seconds_bucket{le=\"0.00005\"} 1",
                "router_overhead_seconds_bucket{le=\"0.1\"} 1",
                "router_overhead_seconds_bucket{le=\"+Inf\"} 2",
                "router_overhead_seconds_count 2",
                "router_overhead_seconds_sum 0.20003",
            ],
        );
        assert_eq!(m.requests(Endpoint::Chat, 200), 2);
    }
}
