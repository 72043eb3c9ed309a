//! The account quota's reservation: one message runs the script that counts an attempt
//! against the minute and day windows (or refuses it), claims a probe, and merges this
//! instance's backlog.

use super::inner::Inner;
use crate::keys::{day_ttl, millis, minute_ttl};
use crate::script::{parse, rebuilt};
use redis::aio::ConnectionManager;
use router_core::shared::{ReserveOutcome, ReserveRequest, SharedError};
use std::time::Duration;

impl Inner {
    /// Sends one message (the script) and reads its answer, within `bound`.
    pub(super) async fn run(
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
}
