//! The system wall clock behind the core's `Clock` port, and its timer (tokio's).

use router_core::{Clock, Timestamp};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `SystemTime::now()` as a [`Timestamp`]; a clock set before 1970 reads as the epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Waits on tokio's timer: only from inside a tokio runtime, as the server runs.
    async fn sleep(&self, duration: Duration) -> bool {
        tokio::time::sleep(duration).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_system_time() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis();
        let now = u128::from(SystemClock.now().as_millis());
        let after = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis();
        assert!(before <= now && now <= after, "{before} <= {now} <= {after}");
    }

    #[tokio::test]
    async fn sleeps_on_the_runtime_timer() {
        let start = std::time::Instant::now();
        assert!(SystemClock.sleep(Duration::from_millis(20)).await);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
