//! What the adapter and its background tasks share: the connection (made lazily), whether
//! Redis answers or refuses this instance, the counts `status` reports, the outbox and the
//! router's event sink.

use super::config::RedisConfig;
use crate::keys::Keys;
use crate::script::{RESERVE, StoredBlock};
use crate::{RECONNECT_MAX, RECONNECT_MIN};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use router_core::shared::{DEFAULT_QUOTA_SCOPE, EventSink, SharedError, SharedEvent};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};

pub(super) struct Inner {
    pub(super) config: RedisConfig,
    pub(super) client: redis::Client,
    pub(super) keys: Keys,
    /// This process, in the `instances` set and in the envelope of its events.
    pub(super) id: String,
    pub(super) script: redis::Script,
    pub(super) conn: OnceLock<ConnectionManager>,
    pub(super) started: AtomicBool,
    /// `Some(reason)` while Redis is not answering; `None` when it is.
    pub(super) down: Mutex<Option<String>>,
    /// `Some(Redis's words)` while Redis refuses this instance's credentials.
    pub(super) refused: Mutex<Option<String>>,
    /// Whether the heartbeat has answered at least once (either way).
    pub(super) known: AtomicBool,
    pub(super) instances: AtomicU32,
    pub(super) local_reservations: AtomicU64,
    /// Wall-clock milliseconds when this instance last had nothing uncounted in Redis.
    pub(super) merged_at: AtomicU64,
    /// Since this instance's first local decision (wall-clock milliseconds; 0: none since
    /// it last settled): until every live instance says it has merged since, this one
    /// keeps to its share.
    pub(super) settle_from: AtomicU64,
    pub(super) events_received: AtomicU64,
    pub(super) outbox: mpsc::UnboundedSender<SharedEvent>,
    pub(super) outbox_rx: Mutex<Option<mpsc::UnboundedReceiver<SharedEvent>>>,
    /// Woken when Redis answers again.
    pub(super) back: Notify,
    pub(super) sink: Mutex<Option<Weak<dyn EventSink>>>,
}

/// What travels on the channel: the event and who sent it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Envelope {
    pub(super) from: String,
    #[serde(flatten)]
    pub(super) event: SharedEvent,
}

impl Inner {
    /// A fresh adapter's state: nothing connected, one instance known (this one).
    pub(super) fn new(config: RedisConfig, client: redis::Client) -> Inner {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = format!("{:016x}", getrandom::u64().unwrap_or_else(|_| now_ms()));
        Inner {
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
        }
    }

    pub(super) fn conn(&self) -> Option<ConnectionManager> {
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

    pub(super) fn is_down(&self) -> Option<String> {
        self.down.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(super) fn is_refused(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records whether Redis refuses this instance's credentials; logs the transitions,
    /// loudly: it is a configuration error, which no waiting mends.
    pub(super) fn set_refused(&self, reason: Option<String>) {
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
    pub(super) fn set_down(&self, reason: Option<String>) {
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

    pub(super) fn deliver(&self, event: &SharedEvent) {
        let sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(Weak::upgrade);
        if let Some(sink) = sink {
            sink.apply_remote(event);
            // Counted once applied: a reader of the count can rely on the event's effect.
            self.events_received.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reads every cooldown and the account block kept in Redis into the local state:
    /// what was published while this instance was not listening.
    pub(super) async fn reload(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
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

pub(super) fn describe(e: &redis::RedisError) -> String {
    // A Redis error names the command and the server's words, never the URL.
    e.to_string()
}

/// Whether Redis refused the credentials (`WRONGPASS`, `NOAUTH`): a configuration error.
pub(super) fn is_auth_error(e: &redis::RedisError) -> bool {
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

pub(super) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
