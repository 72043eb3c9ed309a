//! Lanes: several clients to one upstream, each its own pool and so its own HTTP/2
//! connection. hyper-util's pool does not open a second HTTP/2 connection when the
//! server's `SETTINGS_MAX_CONCURRENT_STREAMS` is reached (hyperium/hyper#3623): past it,
//! requests would wait silently behind the limit (first-byte timeouts, held agents).
//! So a request takes the first lane with fewer than its budget of streams in flight,
//! opening lanes on demand up to [`MAX_LANES`]. One atomic add (and one subtract when
//! the answer or stream ends) per request; over HTTP/1.1 (plaintext, or a TLS server
//! that chose it) every request takes lane 0, whose pool opens connections as needed.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The most lanes (connections over HTTP/2) one transport opens to its upstream: with
/// [`DEFAULT_STREAMS_PER_CONNECTION`], thousands of concurrent streams before any waits.
pub const MAX_LANES: usize = 32;

/// Streams in flight on one lane before the next opens, by default: RFC 9113 advises
/// servers to allow at least 100 concurrent streams, so this stays within any sane
/// upstream's limit.
pub const DEFAULT_STREAMS_PER_CONNECTION: usize = 100;

type MakeClient = Box<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>;

/// The lanes' clients (lane 0 built with the transport, the others on first use) and
/// their streams in flight.
pub(crate) struct Lanes {
    clients: [OnceLock<reqwest::Client>; MAX_LANES],
    in_flight: [AtomicUsize; MAX_LANES],
    budget: usize,
    /// Lane 0 only: a plaintext upstream, or one that answered over HTTP/1.1.
    single: AtomicBool,
    make: MakeClient,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").field("open", &self.open()).field("budget", &self.budget).finish()
    }
}

impl Lanes {
    pub(crate) fn new(first: reqwest::Client, make: MakeClient, budget: usize, https: bool) -> Self {
        let clients = std::array::from_fn(|_| OnceLock::new());
        let _ = clients[0].set(first);
        Lanes {
            clients,
            in_flight: std::array::from_fn(|_| AtomicUsize::new(0)),
            budget: budget.max(1),
            single: AtomicBool::new(!https),
            make,
        }
    }

    /// Lane 0's client, for requests outside the chat path (`/key`).
    pub(crate) fn first(&self) -> &reqwest::Client {
        #[expect(clippy::expect_used, reason = "lane 0 is set in `new`")]
        self.clients[0].get().expect("lane 0")
    }

    /// A lane for one request, counted in flight until the returned ticket is dropped
    /// (or handed to a stream with [`Ticket::into_lane`]).
    pub(crate) fn acquire(&self) -> Ticket<'_> {
        let lane = self.pick();
        let client = match self.clients[lane].get() {
            Some(c) => c,
            None => match (self.make)() {
                Ok(c) => self.clients[lane].get_or_init(|| c),
                Err(e) => {
                    // Lane 0 works (it was built the same way): wait there rather than fail.
                    tracing::warn!(error = %e, lane, "could not build another upstream client; using the first");
                    self.in_flight[lane].fetch_sub(1, Ordering::Relaxed);
                    self.in_flight[0].fetch_add(1, Ordering::Relaxed);
                    return Ticket { lanes: self, lane: 0, client: self.first() };
                }
            },
        };
        Ticket { lanes: self, lane, client }
    }

    fn pick(&self) -> usize {
        if self.single.load(Ordering::Relaxed) {
            self.in_flight[0].fetch_add(1, Ordering::Relaxed);
            return 0;
        }
        for (lane, count) in self.in_flight.iter().enumerate() {
            // Add first, then look: two requests cannot both take a lane's last slot.
            if count.fetch_add(1, Ordering::Relaxed) < self.budget {
                return lane;
            }
            count.fetch_sub(1, Ordering::Relaxed);
        }
        // Every lane is full: the least loaded queues behind its server's limit.
        let lane = self.in_flight.iter().enumerate().min_by_key(|(_, c)| c.load(Ordering::Relaxed)).map_or(0, |l| l.0);
        self.in_flight[lane].fetch_add(1, Ordering::Relaxed);
        lane
    }

    /// The upstream answered over HTTP/1.1: its pool opens connections as needed, so
    /// one lane is enough (and keeps idle connections to one pool's bound).
    pub(crate) fn saw_http1(&self) {
        if !self.single.load(Ordering::Relaxed) {
            self.single.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn release(&self, lane: usize) {
        self.in_flight[lane].fetch_sub(1, Ordering::Relaxed);
    }

    /// Lanes with a client built.
    pub(crate) fn open(&self) -> usize {
        self.clients.iter().filter(|c| c.get().is_some()).count()
    }
}

/// One request's place in a lane; dropping it frees the place.
pub(crate) struct Ticket<'a> {
    lanes: &'a Lanes,
    lane: usize,
    pub(crate) client: &'a reqwest::Client,
}

impl Ticket<'_> {
    /// The lane, no longer freed by this ticket: a stream frees it when it ends.
    pub(crate) fn into_lane(self) -> usize {
        let lane = self.lane;
        std::mem::forget(self);
        lane
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.lanes.release(self.lane);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lanes(budget: usize, https: bool) -> Lanes {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let make = || reqwest::Client::builder().build();
        #[expect(clippy::unwrap_used, reason = "a test")]
        Lanes::new(make().unwrap(), Box::new(make), budget, https)
    }

    fn check(l: &Lanes, held: usize, expected_lanes: &[usize]) {
        let tickets: Vec<Ticket<'_>> = (0..held).map(|_| l.acquire()).collect();
        let used: Vec<usize> = tickets.iter().map(|t| t.lane).collect();
        assert_eq!(used, expected_lanes);
        drop(tickets);
        assert!(l.in_flight.iter().all(|c| c.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn fills_each_lane_to_its_budget_then_opens_the_next() {
        let l = lanes(2, true);
        check(&l, 5, &[0, 0, 1, 1, 2]);
        assert_eq!(l.open(), 3);
        // Freed places are taken again first.
        check(&l, 3, &[0, 0, 1]);
        assert_eq!(l.open(), 3);
    }

    #[test]
    fn one_lane_over_http1() {
        check(&lanes(2, false), 4, &[0, 0, 0, 0]);
        let l = lanes(2, true);
        l.saw_http1();
        check(&l, 3, &[0, 0, 0]);
        assert_eq!(l.open(), 1);
    }

    #[test]
    fn bounded_when_every_lane_is_full() {
        let l = lanes(1, true);
        let mut expected: Vec<usize> = (0..MAX_LANES).collect();
        expected.push(0);
        check(&l, MAX_LANES + 1, &expected);
        assert_eq!(l.open(), MAX_LANES);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Whatever the order of requests and of their ends: a request takes the lowest
        /// lane below its budget (when there is one), and each lane counts exactly the
        /// places held on it.
        #[test]
        fn lanes_count_what_is_held(budget in 1usize..4, ops in prop::collection::vec(any::<Option<usize>>(), 0..60)) {
            let l = lanes(budget, true);
            let mut held: Vec<Ticket<'_>> = Vec::new();
            for op in ops {
                match op {
                    Some(i) if !held.is_empty() => drop(held.swap_remove(i % held.len())),
                    _ => {
                        let before: Vec<usize> = l.in_flight.iter().map(|c| c.load(Ordering::Relaxed)).collect();
                        let t = l.acquire();
                        if let Some(free) = before.iter().position(|&n| n < budget) {
                            prop_assert_eq!(t.lane, free);
                        }
                        held.push(t);
                    }
                }
                for (lane, count) in l.in_flight.iter().enumerate() {
                    prop_assert_eq!(count.load(Ordering::Relaxed), held.iter().filter(|t| t.lane == lane).count());
                }
            }
        }
    }
}
