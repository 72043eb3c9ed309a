//! The connection to Redis and the background tasks: the heartbeat (liveness, instance
//! count, reconnection), the subscriber (events from other instances) and the publisher
//! (this instance's events, kept until they are sent).

use crate::keys::{Keys, day_ttl, millis, minute_ttl};
use crate::script::{RESERVE, StoredBlock, parse, rebuilt};
use crate::{DEFAULT_KEY_PREFIX, DEFAULT_OP_TIMEOUT, HEARTBEAT_EVERY, INSTANCE_TTL, RECONNECT_MAX, RECONNECT_MIN};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use router_core::shared::{
    DEFAULT_QUOTA_SCOPE, EventSink, ReserveOutcome, ReserveRequest, SharedError, SharedEvent, SharedStatus,
    TokenCorrection, TokenOutcome, TokenReserve,
};
use router_core::{Secret, SharedState, Timestamp};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};

mod tokens;

/// Where Redis is and how to use it.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `redis+unix:///path`); a secret, as it
    /// may hold a password. TLS (`rediss://`) is not built in: reach a remote Redis through
    /// a private network or a TLS tunnel.
    pub url: Secret,
    /// The prefix of every key and channel.
    pub key_prefix: String,
    /// The longest a reservation waits on Redis.
    pub op_timeout: Duration,
}

impl RedisConfig {
    pub fn new(url: Secret) -> Self {
        RedisConfig { url, key_prefix: DEFAULT_KEY_PREFIX.to_owned(), op_timeout: DEFAULT_OP_TIMEOUT }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisStateError {
    /// The URL does not parse (its text is not repeated: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    Url(String),
    /// A `rediss://` (TLS) URL: TLS is not built in.
    #[error(
        "redis_url: rediss:// (TLS) is not built into this router; reach Redis over a private network, or run a \
         TLS tunnel beside the router (stunnel, spiped, `ssh -L`) and set redis_url to redis://127.0.0.1:<its port>"
    )]
    Tls,
    /// A key prefix that would match other deployments' keys in a pattern, or that
    /// cannot be typed safely.
    #[error(
        "redis_key_prefix {0:?}: a prefix must not contain the glob characters * ? [ ] or whitespace (the router \
         scans its keys by prefix); e.g. \"fmr:\" or \"team-a:fmr:\""
    )]
    Prefix(String),
}

/// Refuses a `rediss://` URL and a key prefix with glob characters or whitespace.
fn check(config: &RedisConfig) -> Result<(), RedisStateError> {
    let url = config.url.expose().trim_start().to_ascii_lowercase();
    if url.starts_with("rediss://") || url.starts_with("valkeys://") {
        return Err(RedisStateError::Tls);
    }
    let prefix = &config.key_prefix;
    if prefix.chars().any(|c| matches!(c, '*' | '?' | '[' | ']' | '\\') || c.is_whitespace() || c.is_control()) {
        return Err(RedisStateError::Prefix(prefix.clone()));
    }
    Ok(())
}

/// The shared-state adapter. Cheap to clone; building it connects to nothing: the
/// connection starts with the first use or [`start`](Self::start), inside a tokio runtime.
#[derive(Clone)]
pub struct RedisState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState").field("prefix", &self.inner.config.key_prefix).finish_non_exhaustive()
    }
}

struct Inner {
    config: RedisConfig,
    client: redis::Client,
    keys: Keys,
    /// This process, in the `instances` set and in the envelope of its events.
    id: String,
    script: redis::Script,
    conn: OnceLock<ConnectionManager>,
    started: AtomicBool,
    /// `Some(reason)` while Redis is not answering; `None` when it is.
    down: Mutex<Option<String>>,
    /// `Some(Redis's words)` while Redis refuses this instance's credentials.
    refused: Mutex<Option<String>>,
    /// Whether the heartbeat has answered at least once (either way).
    known: AtomicBool,
    instances: AtomicU32,
    local_reservations: AtomicU64,
    /// Wall-clock milliseconds when this instance last had nothing uncounted in Redis.
    merged_at: AtomicU64,
    /// Since this instance's first local decision (wall-clock milliseconds; 0: none since
    /// it last settled): until every live instance says it has merged since, this one
    /// keeps to its share.
    settle_from: AtomicU64,
    events_received: AtomicU64,
    outbox: mpsc::UnboundedSender<SharedEvent>,
    outbox_rx: Mutex<Option<mpsc::UnboundedReceiver<SharedEvent>>>,
    /// Woken when Redis answers again.
    back: Notify,
    sink: Mutex<Option<Weak<dyn EventSink>>>,
}

/// What travels on the channel: the event and who sent it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    event: SharedEvent,
}

impl RedisState {
    pub fn new(config: RedisConfig) -> Result<Self, RedisStateError> {
        check(&config)?;
        let client =
            redis::Client::open(config.url.expose()).map_err(|e| RedisStateError::Url(format!("{:?}", e.kind())))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let id = format!("{:016x}", getrandom::u64().unwrap_or_else(|_| now_ms()));
        Ok(RedisState {
            inner: Arc::new(Inner {
                keys: Keys::new(&config.key_prefix),
                config,
                client,
                id,
                script: redis::Script::new(RESERVE),
                conn: OnceLock::new(),
                started: AtomicBool::new(false),
                down: Mutex::new(None),
                refused: Mutex::new(None),
                known: AtomicBool::new(false),
                instances: AtomicU32::new(1),
                local_reservations: AtomicU64::new(0),
                merged_at: AtomicU64::new(now_ms()),
                settle_from: AtomicU64::new(0),
                events_received: AtomicU64::new(0),
                outbox: tx,
                outbox_rx: Mutex::new(Some(rx)),
                back: Notify::new(),
                sink: Mutex::new(None),
            }),
        })
    }

    /// Starts the heartbeat, the subscriber and the publisher on the current tokio
    /// runtime (once; later calls do nothing). They stop when the adapter is dropped.
    pub fn start(&self) {
        if tokio::runtime::Handle::try_current().is_err() || self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let rx = self.inner.outbox_rx.lock().unwrap_or_else(PoisonError::into_inner).take();
        tokio::spawn(heartbeat(weak.clone()));
        tokio::spawn(subscriber(weak.clone()));
        if let Some(rx) = rx {
            tokio::spawn(publisher(weak, rx));
        }
    }

    /// This instance's id among the others.
    pub fn instance_id(&self) -> &str {
        &self.inner.id
    }
}

impl Inner {
    fn conn(&self) -> Option<ConnectionManager> {
        if let Some(c) = self.conn.get() {
            return Some(c.clone());
        }
        tokio::runtime::Handle::try_current().ok()?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.op_timeout.max(Duration::from_millis(250))))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_min_delay(RECONNECT_MIN)
            .set_max_delay(RECONNECT_MAX);
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config).ok()?;
        Some(self.conn.get_or_init(|| manager).clone())
    }

    fn is_down(&self) -> Option<String> {
        self.down.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn is_refused(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records whether Redis refuses this instance's credentials; logs the transitions,
    /// loudly: it is a configuration error, which no waiting mends.
    fn set_refused(&self, reason: Option<String>) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match (&*refused, &reason) {
            (None, Some(r)) => tracing::error!(
                reason = %r,
                "shared state (Redis) refuses this instance's credentials: fix redis_url (user and password); until \
                 then no request is sent on the shared OpenRouter quota"
            ),
            (Some(_), None) => tracing::info!("shared state (Redis) accepts this instance's credentials again"),
            _ => {}
        }
        *refused = reason;
    }

    /// Sends one message (the script) and reads its answer, within `bound`.
    async fn run(
        &self,
        conn: &mut ConnectionManager,
        request: &ReserveRequest,
        bound: Duration,
    ) -> Result<ReserveOutcome, SharedError> {
        let now = request.now;
        let scope = request.scope.as_str();
        let probe_key = request.probe.as_ref().map_or_else(|| self.keys.probe_none(), |p| self.keys.probe(&p.model));
        let limit = |l: Option<u32>| l.map_or(-1, i64::from);
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.keys.minute(scope, now))
            .key(self.keys.day(scope, now))
            .key(self.keys.block(scope))
            .key(probe_key)
            .key(self.keys.day_by_instance(scope, now))
            .key(self.keys.counted(&self.id, now))
            .arg(limit(request.limits.per_minute))
            .arg(limit(request.limits.per_day))
            .arg(minute_ttl(now))
            .arg(day_ttl(now))
            .arg(if request.probe.is_some() { self.id.as_str() } else { "" })
            .arg(request.probe.as_ref().map_or(1, |p| millis(p.ttl)))
            .arg(request.known_minute)
            .arg(request.known_day)
            .arg(&self.id)
            .arg(request.own_day)
            .arg(if request.count { "1" } else { "0" })
            .arg(request.id)
            .arg(request.batches.len());
        for b in &request.batches {
            invocation.arg(b.id).arg(b.minute).arg(b.day);
        }
        match tokio::time::timeout(bound, invocation.invoke_async::<String>(conn)).await {
            Ok(Ok(answer)) => {
                if rebuilt(&answer) {
                    tracing::warn!(
                        "shared state (Redis) had lost the day's count (restarted without persistence, or flushed): \
                         rebuilt from the instances' own counts"
                    );
                }
                parse(&answer, (request.limits.per_minute, request.limits.per_day), now)
            }
            // Sent: whether it ran is unknown (the router keeps the request under its id).
            Ok(Err(e)) => Err(self.script_failed(&e)),
            Err(_) => Err(SharedError::Timeout(bound)),
        }
    }

    /// What a script that Redis failed to run says to the router: refused credentials
    /// (recorded, loudly), or a failure (a lost connection marks Redis down).
    pub(crate) fn script_failed(&self, e: &redis::RedisError) -> SharedError {
        let text = describe(e);
        if is_auth_error(e) {
            self.set_refused(Some(text.clone()));
            return SharedError::Refused(text);
        }
        if is_connection_error(&text) {
            self.set_down(Some(text.clone()));
        }
        SharedError::Failed(text)
    }

    /// Records Redis's state; logs only the transitions.
    fn set_down(&self, reason: Option<String>) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        let first = !self.known.swap(true, Ordering::AcqRel);
        match (&*down, &reason) {
            (None, Some(r)) => tracing::warn!(
                reason = %r,
                "shared state (Redis) unreachable: serving from local state, each instance within its share of the quota"
            ),
            (Some(_), None) => tracing::info!("shared state (Redis) reachable again: merging back"),
            (None, None) if first => tracing::info!(prefix = %self.config.key_prefix, "shared state (Redis) connected"),
            _ => {}
        }
        // Connected for the first time, or again: tell Redis what this instance knows
        // (it may be new, or have lost its data).
        let back = (first || down.is_some()) && reason.is_none();
        *down = reason;
        drop(down);
        if back {
            self.back.notify_one();
        }
    }

    fn deliver(&self, event: &SharedEvent) {
        let sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
        if let Some(sink) = sink {
            self.events_received.fetch_add(1, Ordering::Relaxed);
            sink.apply_remote(event);
        }
    }

    /// Reads every cooldown and the account block kept in Redis into the local state:
    /// what was published while this instance was not listening.
    async fn reload(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let mut keys: Vec<String> = Vec::new();
        {
            let mut iter: redis::AsyncIter<'_, String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(self.keys.cool_pattern())
                .arg("COUNT")
                .arg(500)
                .clone()
                .iter_async(conn)
                .await?;
            while let Some(k) = iter.next().await {
                keys.push(k?);
            }
        }
        keys.push(self.keys.block(DEFAULT_QUOTA_SCOPE));
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
        for (key, value) in keys.iter().zip(values) {
            let Some(value) = value else { continue };
            let event = if *key == self.keys.block(DEFAULT_QUOTA_SCOPE) {
                serde_json::from_str::<StoredBlock>(&value)
                    .ok()
                    .map(|b| SharedEvent::AccountBlocked { until: b.until, reason: b.reason })
            } else {
                serde_json::from_str::<SharedEvent>(&value).ok()
            };
            if let Some(e) = event {
                self.deliver(&e);
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SharedState for RedisState {
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome, SharedError> {
        self.start();
        let inner = &self.inner;
        if let Some(reason) = inner.is_refused() {
            // A configuration error: said as such, never spent as an outage's share.
            return Err(SharedError::Refused(reason));
        }
        let local = |e: SharedError| {
            inner.local_reservations.fetch_add(1, Ordering::Relaxed);
            // Settling starts with the first local decision (0: not settling).
            let _ = inner.settle_from.compare_exchange(0, now_ms(), Ordering::AcqRel, Ordering::Acquire);
            Err(e)
        };
        if let Some(reason) = inner.is_down() {
            // Known to be away: no waiting on it; the heartbeat says when it is back.
            return local(SharedError::Unavailable(reason));
        }
        let Some(mut conn) = inner.conn() else { return local(SharedError::Unavailable("no runtime".into())) };
        match inner.run(&mut conn, request, inner.config.op_timeout).await {
            Err(e @ SharedError::Refused(_)) => Err(e),
            Err(e) => local(e),
            ok => ok,
        }
    }

    async fn reserve_tokens(&self, request: &TokenReserve) -> Result<TokenOutcome, SharedError> {
        self.start();
        let inner = &self.inner;
        if let Some(reason) = inner.is_refused() {
            return Err(SharedError::Refused(reason));
        }
        if let Some(reason) = inner.is_down() {
            return Err(SharedError::Unavailable(reason));
        }
        let Some(mut conn) = inner.conn() else { return Err(SharedError::Unavailable("no runtime".into())) };
        inner.run_tokens(&mut conn, request, inner.config.op_timeout).await
    }

    fn correct_tokens(&self, correction: TokenCorrection) {
        self.start();
        if self.inner.is_down().is_some() || tokio::runtime::Handle::try_current().is_err() {
            // The charge stands: counted up front, it errs safe.
            return;
        }
        let Some(mut conn) = self.inner.conn() else { return };
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.run_correction(&mut conn, &correction).await });
    }

    fn publish(&self, event: SharedEvent) {
        self.start();
        let _ = self.inner.outbox.send(event);
    }

    fn attach(&self, sink: Weak<dyn EventSink>) {
        *self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        self.start();
    }

    fn status(&self) -> SharedStatus {
        let inner = &self.inner;
        let down = match inner.is_refused() {
            Some(r) => Some(format!("configuration error: Redis refuses this instance's credentials ({r})")),
            None => inner.is_down(),
        };
        let known = inner.known.load(Ordering::Acquire) || down.is_some();
        SharedStatus {
            connected: known && down.is_none(),
            reason: if known { down } else { Some("connecting".into()) },
            instances: inner.instances.load(Ordering::Relaxed).max(1),
            local_reservations: inner.local_reservations.load(Ordering::Relaxed),
            events_received: inner.events_received.load(Ordering::Relaxed),
            settling: inner.settle_from.load(Ordering::Acquire) != 0,
        }
    }
}

fn describe(e: &redis::RedisError) -> String {
    // A Redis error names the command and the server's words, never the URL.
    e.to_string()
}

/// Whether Redis refused the credentials (`WRONGPASS`, `NOAUTH`): a configuration error.
fn is_auth_error(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || e.code().is_some_and(|c| c == "NOAUTH" || c == "WRONGPASS")
        || text.contains("WRONGPASS")
        || text.contains("NOAUTH")
}

fn is_connection_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["connection", "broken pipe", "refused", "reset", "timed out", "io error", "eof"].iter().any(|w| t.contains(w))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Every [`HEARTBEAT_EVERY`]: says this instance is alive, counts the live ones, and
/// tells whether Redis answers; while it does not, retries with a growing back-off.
async fn heartbeat(weak: Weak<Inner>) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(mut conn) = inner.conn() else { return };
        let now = now_ms();
        let (key, merged) = (inner.keys.instances(), inner.keys.merged());
        let ttl = millis(INSTANCE_TTL);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&key)
            .arg(now)
            .arg(&inner.id)
            .ignore()
            .cmd("ZADD")
            .arg(&merged)
            .arg(inner.merged_at.load(Ordering::Acquire))
            .arg(&inner.id)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now.saturating_sub(ttl))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl.saturating_mul(2))
            .ignore()
            // Instances gone for a day are forgotten (the live set says who counts).
            .cmd("ZREMRANGEBYSCORE")
            .arg(&merged)
            .arg("-inf")
            .arg(now.saturating_sub(86_400_000))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&merged)
            .arg(ttl.saturating_mul(2))
            .ignore()
            .cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .cmd("ZRANGE")
            .arg(&merged)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
        let bound = inner.config.op_timeout.max(Duration::from_secs(1));
        type Beat = (Vec<String>, Vec<(String, f64)>);
        let wait = match tokio::time::timeout(bound, pipe.query_async::<Beat>(&mut conn)).await {
            Ok(Ok((live, merged))) => {
                inner.instances.store(u32::try_from(live.len()).unwrap_or(u32::MAX).max(1), Ordering::Relaxed);
                inner.set_refused(None);
                inner.set_down(None);
                backoff = RECONNECT_MIN;
                sync(&inner, &mut conn, bound).await;
                settle(&inner, &live, &merged, now_ms());
                HEARTBEAT_EVERY
            }
            Ok(Err(e)) if is_auth_error(&e) => {
                inner.set_refused(Some(describe(&e)));
                let wait = backoff;
                backoff = backoff.saturating_mul(2).min(RECONNECT_MAX);
                wait
            }
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => describe(&e),
                    _ => format!("no answer within {bound:?}"),
                };
                inner.set_down(Some(reason));
                let wait = backoff;
                backoff = backoff.saturating_mul(2).min(RECONNECT_MAX);
                wait
            }
        };
        drop(inner);
        tokio::time::sleep(wait).await;
    }
}

/// Brings Redis this instance's backlog and own count (the router's sync message), so that
/// a backlog merges as soon as Redis answers again and a lost count is rebuilt without
/// waiting for traffic.
async fn sync(inner: &Inner, conn: &mut ConnectionManager, bound: Duration) {
    let sink = inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
    let Some(sink) = sink else { return };
    let Some(request) = sink.sync_request() else { return };
    let outcome = inner.run(conn, &request, bound).await;
    sink.synced(&request, &outcome);
}

/// Notes when this instance has nothing uncounted left (`merged_at`, told to the others
/// with the next heartbeat), and ends this instance's settling once every other live
/// instance has said so recently and since settling began (one that cannot reach Redis
/// says nothing, so it holds the others back until it merges or leaves the live set
/// after [`INSTANCE_TTL`]).
fn settle(inner: &Inner, live: &[String], merged: &[(String, f64)], now: u64) {
    let sink = inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
    if sink.is_none_or(|s| s.merged()) {
        inner.merged_at.store(now, Ordering::Release);
    }
    let from = inner.settle_from.load(Ordering::Acquire);
    if from == 0 {
        return;
    }
    // Said within the last few heartbeats: a merge older than that says nothing of now.
    let recent = now.saturating_sub(millis(HEARTBEAT_EVERY).saturating_mul(4)).max(from);
    let since = |id: &String| merged.iter().find(|(m, _)| m == id).map_or(0.0, |(_, at)| *at);
    #[expect(clippy::cast_precision_loss, reason = "milliseconds since 1970 are exact in an f64")]
    let all = live.iter().all(|id| *id == inner.id || since(id) >= recent as f64);
    if all {
        inner.settle_from.store(0, Ordering::Release);
    }
}

/// Listens on the channel; after every (re)subscription reloads what it may have missed.
async fn subscriber(weak: Weak<Inner>) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let channel = inner.keys.channel();
        let subscribed = async {
            let mut pubsub = inner.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        };
        let pubsub = tokio::time::timeout(Duration::from_secs(2), subscribed).await;
        let Ok(Ok(pubsub)) = pubsub else {
            drop(inner);
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(RECONNECT_MAX);
            continue;
        };
        backoff = RECONNECT_MIN;
        if let Some(mut conn) = inner.conn() {
            let _ = tokio::time::timeout(Duration::from_secs(5), inner.reload(&mut conn)).await;
        }
        let id = inner.id.clone();
        drop(inner);
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Some(inner) = weak.upgrade() else { return };
            let Ok(envelope) = serde_json::from_slice::<Envelope>(msg.get_payload_bytes()) else { continue };
            if envelope.from != id {
                inner.deliver(&envelope.event);
            }
        }
        // The connection ended (Redis went away): try again.
        tokio::time::sleep(backoff).await;
    }
}

/// Sends this instance's events: each is kept in Redis until it expires and published.
/// What cannot be sent waits (the latest per key) until Redis answers again.
async fn publisher(weak: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<SharedEvent>) {
    let mut pending: BTreeMap<String, SharedEvent> = BTreeMap::new();
    let mut serial = 0u64;
    loop {
        {
            let Some(inner) = weak.upgrade() else { return };
            let notified = inner.back.notified();
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => {
                        // Events that keep no key still need an order-preserving slot.
                        let key = inner.keys.of_event(&e, DEFAULT_QUOTA_SCOPE).unwrap_or_else(|| {
                            serial += 1;
                            format!("~{serial:020}")
                        });
                        pending.insert(key, e);
                    }
                    None => return,
                },
                // Redis is back, or time to retry what is pending.
                () = notified => {
                    let sink = inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
                    for e in sink.map(|s| s.current_events()).unwrap_or_default() {
                        if let Some(key) = inner.keys.of_event(&e, DEFAULT_QUOTA_SCOPE) {
                            pending.entry(key).or_insert(e);
                        }
                    }
                }
                () = tokio::time::sleep(RECONNECT_MAX) => {}
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.is_down().is_some() || pending.is_empty() {
            continue;
        }
        let Some(mut conn) = inner.conn() else { continue };
        let now = Timestamp::from_millis(now_ms());
        let mut sent = Vec::new();
        for (key, event) in &pending {
            if send(&inner, &mut conn, key, event, now).await.is_err() {
                break;
            }
            sent.push(key.clone());
        }
        for k in sent {
            pending.remove(&k);
        }
    }
}

async fn send(
    inner: &Inner,
    conn: &mut ConnectionManager,
    key: &str,
    event: &SharedEvent,
    now: Timestamp,
) -> redis::RedisResult<()> {
    let envelope = Envelope { from: inner.id.clone(), event: event.clone() };
    let message = serde_json::to_string(&envelope).unwrap_or_default();
    let mut pipe = redis::pipe();
    pipe.atomic();
    match event {
        SharedEvent::Recovered { model } => {
            pipe.cmd("DEL").arg(inner.keys.probe(model)).arg(inner.keys.circuit_open(model)).ignore();
        }
        _ => {
            let ttl = match event.until() {
                Some(until) => millis(until.saturating_since(now)),
                None => millis(crate::UNAVAILABLE_TTL),
            };
            let value = match event {
                SharedEvent::AccountBlocked { until, reason } => {
                    serde_json::to_string(&StoredBlock { until: *until, reason: reason.clone() }).unwrap_or_default()
                }
                _ => serde_json::to_string(event).unwrap_or_default(),
            };
            if !key.starts_with('~') && event.until().is_none_or(|u| u > now) {
                pipe.cmd("SET").arg(key).arg(value).arg("PX").arg(ttl).ignore();
            }
            if let SharedEvent::CircuitOpen { model, .. } = event {
                // A failed probe: its claim lasts until the breaker half-opens again, so
                // that no instance that has not heard of the re-opening yet probes now.
                pipe.cmd("PEXPIRE").arg(inner.keys.probe(model)).arg(ttl).ignore();
            }
        }
    }
    pipe.cmd("PUBLISH").arg(inner.keys.channel()).arg(message).ignore();
    tokio::time::timeout(Duration::from_secs(1), pipe.query_async::<()>(conn))
        .await
        .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}
