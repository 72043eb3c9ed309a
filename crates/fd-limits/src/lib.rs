//! `fd-limits`: open-file limits for a process that holds thousands of sockets (the
//! server and the benchmark driver): raise the soft limit and size the descriptor table
//! once, at start.

/// The descriptor-table size [`prepare`] aims for at most: two sockets per proxied
/// request, so thousands of concurrent streams, for a few hundred KiB of kernel memory.
pub const TABLE_TARGET: u64 = 16_384;

/// What [`prepare`] left in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimits {
    /// The soft open-files limit now in force (`None`: unlimited or unknown).
    pub soft: Option<u64>,
    /// The descriptor table was grown to this many entries up front.
    pub table: Option<u64>,
}

/// Raises the soft open-files limit to the hard one (the default soft limit of 1,024 caps
/// a proxy at about 500 streams), then grows the descriptor table to its working size.
///
/// Call it before any thread is spawned. The kernel grows a process's descriptor table by
/// doubling, and in a multi-threaded process each growth waits for an RCU grace period:
/// measured here as 10–15 ms stalls of every thread as the 128th, 256th, 512th and
/// 1,024th socket opened. Grown while the process has one thread, it costs nothing and
/// never happens again. Failures only leave things as they were.
#[cfg(unix)]
pub fn prepare() -> FdLimits {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current.is_some_and(|soft| soft < hard)
    {
        let raised = rustix::process::Rlimit { current: Some(hard), maximum: Some(hard) };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit.current = Some(hard);
        }
    }
    let size = limit.current.unwrap_or(TABLE_TARGET).min(TABLE_TARGET);
    // The lowest free descriptor at or above `size - 1` forces the table to `size`
    // entries; the table keeps its size after the duplicate is closed.
    let table = size
        .checked_sub(1)
        .and_then(|last| i32::try_from(last).ok())
        .and_then(|last| rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), last).ok())
        .map(|fd| {
            drop(fd);
            size
        });
    FdLimits { soft: limit.current, table }
}

/// Elsewhere the limits are left as they are.
#[cfg(not(unix))]
pub fn prepare() -> FdLimits {
    FdLimits { soft: None, table: None }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The kernel's own count of descriptor-table entries, from `/proc/self/status`.
    fn fd_table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
        let line = status.lines().find(|l| l.starts_with("FDSize:")).expect("FDSize line");
        line["FDSize:".len()..].trim().parse().expect("a number")
    }

    #[test]
    fn the_table_is_grown_up_front_and_the_soft_limit_raised() {
        let limits = super::prepare();
        let table = limits.table.expect("the table was grown");
        assert!(fd_table_size() >= table, "FDSize {} < {table}", fd_table_size());
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert_eq!(limits.soft, hard.or(limits.soft));
        assert_eq!(table, limits.soft.unwrap_or(super::TABLE_TARGET).min(super::TABLE_TARGET));
    }
}
