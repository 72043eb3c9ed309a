//! Running out of local resources (descriptors, memory) is nobody's fault upstream:
//! such a failure is counted, warned about at a bounded rate, and answered 503 without
//! charging a model or a quota.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Attempts that failed for want of local resources (open files, memory), over the
/// whole process: the descriptor table is the process's, not a transport's.
static LOCAL_RESOURCE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Upstream connections that could not be opened for want of local resources, since
/// the process started.
pub fn local_resource_failures() -> u64 {
    LOCAL_RESOURCE_FAILURES.load(Ordering::Relaxed)
}

/// Whether an IO error means this process ran out of something (descriptors, memory,
/// buffers) rather than anything the peer or the network did.
pub fn is_local_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE, ENFILE, ENOMEM and ENOBUFS on Linux and the BSDs/macOS.
    const CODES: &[i32] = if cfg!(any(target_os = "macos", target_os = "ios", target_os = "freebsd")) {
        &[24, 23, 12, 55]
    } else {
        &[24, 23, 12, 105]
    };
    e.kind() == std::io::ErrorKind::OutOfMemory || e.raw_os_error().is_some_and(|c| CODES.contains(&c))
}

/// `Retry-After` for a request that failed for want of local resources.
pub const LOCAL_RESOURCE_RETRY_AFTER: Duration = Duration::from_secs(1);
/// At most one warning per this period about local resource exhaustion.
pub const LOCAL_RESOURCE_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Counts a local exhaustion and warns about it, at most once per
/// [`LOCAL_RESOURCE_WARNING_EVERY`] (with the number of occurrences not logged since).
pub(crate) fn local_exhaustion_warning(message: &str) {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    static HIDDEN: AtomicU64 = AtomicU64::new(0);
    LOCAL_RESOURCE_FAILURES.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_some_and(|t| now.duration_since(t) < LOCAL_RESOURCE_WARNING_EVERY) {
        HIDDEN.fetch_add(1, Ordering::Relaxed);
        return;
    }
    *last = Some(now);
    drop(last);
    tracing::warn!(
        error = message,
        more_since_last_warning = HIDDEN.swap(0, Ordering::Relaxed),
        "cannot open an upstream connection: out of local resources (raise the open-files limit or lower \
         max_connections); answered 503, no model or quota charged"
    );
}

/// Whether `e` or one of its sources is a local exhaustion.
pub(crate) fn caused_by_local_exhaustion(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some_and(is_local_exhaustion) {
            return true;
        }
        source = s.source();
    }
    false
}
