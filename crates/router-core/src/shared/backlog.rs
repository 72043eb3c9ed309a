//! What this instance sent that the shared store has not yet acknowledged counting, in
//! batches with ids: the store counts a batch once however often it arrives, so a script
//! that runs after its caller gave up and the retry that carries the same requests cannot
//! both count them.

use crate::quota::Window;
use crate::time::Timestamp;

/// The most batches one message to the store carries; the rest go with the next ones.
pub const MAX_BATCHES_PER_MESSAGE: usize = 64;

/// Requests counted under one id, as a message to the store carries them: their counts
/// in the message's minute and day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Unique within this instance's day (see [`AttemptIds`]).
    pub id: u64,
    /// Its requests in the message's minute.
    pub minute: u32,
    /// Its requests in the message's UTC day.
    pub day: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    id: u64,
    minute: Window,
    day: Window,
    /// Still taking requests: never sent, and not an attempt the store may have seen.
    open: bool,
}

/// The batches not yet acknowledged by the store, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pending: Vec<Pending>,
}

impl Backlog {
    /// Counts one request sent at `now` without the store's count; `id` is its attempt's
    /// id. When the store may have seen the attempt (it timed out or failed on the way),
    /// the request is kept alone under that id, so that the store counts it once whether
    /// the late attempt or a later batch reaches it first; otherwise it joins the open
    /// batch, if there is one.
    pub fn add(&mut self, id: u64, now: Timestamp, seen: bool) {
        let (minute, day) = (now.minute(), now.utc_day());
        if !seen
            && let Some(last) = self.pending.last_mut()
            && last.open
            && last.day.index == day
        {
            bump(&mut last.minute, minute);
            last.day.count = last.day.count.saturating_add(1);
            return;
        }
        let one = |index| Window { index, count: 1 };
        self.pending.push(Pending { id, minute: one(minute), day: one(day), open: !seen });
    }

    /// The batches a message at `now` carries (at most [`MAX_BATCHES_PER_MESSAGE`]), closed
    /// to new requests from now on; batches of past days are dropped (their counts no
    /// longer matter).
    pub fn carry(&mut self, now: Timestamp) -> Vec<Batch> {
        let day = now.utc_day();
        self.pending.retain(|p| p.day.index == day);
        self.pending
            .iter_mut()
            .take(MAX_BATCHES_PER_MESSAGE)
            .map(|p| {
                p.open = false;
                Batch { id: p.id, minute: p.minute.current(now.minute()), day: p.day.count }
            })
            .collect()
    }

    /// The store answered a message at `now` that carried `batches`: each is counted
    /// there (by this message or an earlier one). Returns how many of today's requests
    /// that acknowledges, each batch once however many answers acknowledge it.
    pub fn acknowledge(&mut self, batches: &[Batch], now: Timestamp) -> u32 {
        let day = now.utc_day();
        let mut acknowledged = 0u32;
        self.pending.retain(|p| {
            let done = batches.iter().any(|b| b.id == p.id);
            if done {
                acknowledged = acknowledged.saturating_add(p.day.current(day));
            }
            !done
        });
        acknowledged
    }

    /// The requests still waiting to be counted, in the minute and the day of `now`.
    pub fn current(&self, now: Timestamp) -> (u32, u32) {
        self.pending.iter().fold((0u32, 0u32), |(m, d), p| {
            (m.saturating_add(p.minute.current(now.minute())), d.saturating_add(p.day.current(now.utc_day())))
        })
    }

    /// Whether nothing waits to be counted.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

fn bump(w: &mut Window, index: u64) {
    if w.index != index {
        *w = Window { index, count: 0 };
    }
    w.count = w.count.saturating_add(1);
}

/// This instance's attempt ids: a sequence that starts again each UTC day, so that the
/// store's record of what it counted (a bitmap per instance and day) stays small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttemptIds {
    day: u64,
    next: u64,
}

impl AttemptIds {
    /// The next id for a message at `now`.
    pub fn next(&mut self, now: Timestamp) -> u64 {
        if self.day != now.utc_day() {
            *self = AttemptIds { day: now.utc_day(), next: 0 };
        }
        let id = self.next;
        self.next += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(T0.as_secs() + secs)
    }

    #[test]
    fn unseen_requests_share_a_batch_until_it_is_sent_and_seen_ones_stay_alone() {
        let mut b = Backlog::default();
        b.add(1, at(0), false);
        b.add(2, at(1), false);
        b.add(3, at(2), true);
        b.add(4, at(3), false);
        assert_eq!(b.current(at(3)), (4, 4));
        let carried = b.carry(at(3));
        let expected = [Batch { id: 1, minute: 2, day: 2 }, Batch { id: 3, minute: 1, day: 1 }];
        assert_eq!(carried[..2], expected);
        assert_eq!(carried[2], Batch { id: 4, minute: 1, day: 1 });
        // Carried: closed, so a new request opens a batch of its own.
        b.add(5, at(4), false);
        assert_eq!(b.carry(at(4)).len(), 4);
        assert_eq!(b.acknowledge(&carried, at(4)), 4);
        assert_eq!(b.acknowledge(&carried, at(4)), 0, "acknowledged once");
        assert_eq!(b.current(at(4)), (1, 1));
        // A new day drops what is left of the old one.
        assert!(b.carry(at(0).next_utc_midnight()).is_empty() && b.is_empty());
    }

    #[test]
    fn ids_restart_each_day() {
        let mut ids = AttemptIds::default();
        assert_eq!((ids.next(at(0)), ids.next(at(1))), (0, 1));
        assert_eq!(ids.next(at(0).next_utc_midnight()), 0);
    }

    proptest! {
        /// However often batches are carried and acknowledged, the requests counted
        /// (acknowledged plus still waiting) are the requests added: none twice, none lost.
        #[test]
        fn every_request_is_acknowledged_once(steps in prop::collection::vec((0u8..4, any::<bool>()), 1..200)) {
            let mut b = Backlog::default();
            let mut ids = AttemptIds::default();
            let (mut added, mut acknowledged) = (0u32, 0u32);
            let mut in_flight: Vec<Vec<Batch>> = Vec::new();
            for (op, seen) in steps {
                match op {
                    0 | 1 => {
                        b.add(ids.next(at(0)), at(0), seen);
                        added += 1;
                    }
                    2 => in_flight.push(b.carry(at(0))),
                    _ => {
                        // Answers come back in any order, some twice.
                        if let Some(batches) = in_flight.first().cloned() {
                            acknowledged += b.acknowledge(&batches, at(0));
                            if seen {
                                in_flight.remove(0);
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(acknowledged + b.current(at(0)).1, added);
        }
    }
}
