//! Requests in flight per provider with a `max_concurrent` (a local server of bounded
//! capacity): admission takes a slot or passes the provider over for a moment, and the
//! slot is given back when the answer is whole, or when its stream ends or is dropped.
//! In memory only: what is in flight is this process's.

use crate::quota::{ProviderBlock, ProviderPolicy, QuotaBlock, QuotaScope};
use crate::time::Timestamp;
use crate::upstream::{Body, UpstreamResponse};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Each bounded provider's count of requests in flight.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    counts: BTreeMap<String, (u32, Arc<AtomicU32>)>,
}

/// One request in flight to a bounded provider; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    /// A count for every provider of `providers` with a `max_concurrent`.
    pub(super) fn new(providers: &BTreeMap<String, ProviderPolicy>) -> Self {
        let bounded =
            providers.iter().filter_map(|(name, p)| Some((name.clone(), (p.max_concurrent?.max(1), Arc::default()))));
        InFlight { counts: bounded.collect() }
    }

    /// A slot of provider `name` (`None` when it is not bounded), or, when all are
    /// taken, the block that passes its models over until `retry`.
    pub(super) fn take(
        &self,
        name: &str,
        now: Timestamp,
        retry: std::time::Duration,
    ) -> Result<Option<Slot>, ProviderBlock> {
        let Some((max, count)) = self.counts.get(name) else { return Ok(None) };
        match count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < *max).then_some(n + 1)) {
            Ok(_) => Ok(Some(Slot(Arc::clone(count)))),
            Err(n) => Err(busy(name, n, now, retry)),
        }
    }

    /// The block of provider `name` while all its slots are taken (for the explanation).
    pub(super) fn block(&self, name: &str, now: Timestamp, retry: Duration) -> Option<ProviderBlock> {
        let (n, max) = self.of(name)?;
        (n >= max).then(|| busy(name, n, now, retry))
    }

    /// Requests in flight to provider `name` now, and its bound.
    fn of(&self, name: &str) -> Option<(u32, u32)> {
        self.counts.get(name).map(|(max, n)| (n.load(Ordering::Acquire), *max))
    }

    /// Each bounded provider's requests in flight now, and its bound.
    pub(super) fn all(&self) -> Vec<(String, u32, u32)> {
        self.counts.iter().map(|(name, (max, n))| (name.clone(), n.load(Ordering::Acquire), *max)).collect()
    }
}

fn busy(name: &str, n: u32, now: Timestamp, retry: Duration) -> ProviderBlock {
    let reason = format!("provider `{name}` is at its max_concurrent ({n} in flight); nothing was sent");
    ProviderBlock::Quota(QuotaBlock { scope: QuotaScope::Upstream { reason }, until: now.saturating_add(retry) })
}

/// `response` holding `slot` (when there is one): a stream's until it ends or is dropped,
/// a whole answer's not at all (it is whole: nothing is in flight any more).
pub(super) fn hold(mut response: UpstreamResponse, slot: Option<Slot>) -> UpstreamResponse {
    let (Some(slot), Body::Stream(_)) = (slot, &response.body) else { return response };
    if let Body::Stream(stream) = std::mem::replace(&mut response.body, Body::Full(bytes::Bytes::new())) {
        response.body = Body::Stream(Box::pin(stream.map(move |item| {
            let _held = &slot;
            item
        })));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn check(f: &InFlight, expected: Option<(u32, u32)>) {
        assert_eq!(f.of("ollama"), expected);
    }

    #[test]
    fn slots_are_taken_up_to_the_bound_and_given_back_when_dropped() {
        let policy = ProviderPolicy { max_concurrent: Some(2), ..ProviderPolicy::default() };
        let f = InFlight::new(&BTreeMap::from([
            ("ollama".to_owned(), policy),
            ("groq".to_owned(), ProviderPolicy::default()),
        ]));
        assert!(matches!(f.take("groq", T0, Duration::from_secs(1)), Ok(None)), "not bounded");
        let a = f.take("ollama", T0, Duration::from_secs(1)).expect("one").expect("a slot");
        let _b = f.take("ollama", T0, Duration::from_secs(1)).expect("two").expect("a slot");
        check(&f, Some((2, 2)));
        assert!(f.block("ollama", T0, Duration::from_secs(1)).is_some(), "explained as busy");
        let block = f.take("ollama", T0, Duration::from_secs(1)).expect_err("full");
        assert_eq!(block.until(), T0.saturating_add(Duration::from_secs(1)));
        drop(a);
        check(&f, Some((1, 2)));
        assert_eq!(f.all(), [("ollama".to_owned(), 1, 2)]);
        assert!(f.take("ollama", T0, Duration::from_secs(1)).is_ok_and(|s| s.is_some()));
    }

    #[test]
    fn a_stream_holds_its_slot_until_it_is_dropped_and_a_whole_answer_not_at_all() {
        let policy = ProviderPolicy { max_concurrent: Some(1), ..ProviderPolicy::default() };
        let f = InFlight::new(&BTreeMap::from([("ollama".to_owned(), policy)]));
        let answer = |body| UpstreamResponse { status: 200, headers: Vec::new(), body, elapsed: Duration::ZERO };
        let slot = f.take("ollama", T0, Duration::from_secs(1)).expect("free").expect("bounded");
        drop(hold(answer(Body::Full(bytes::Bytes::from_static(b"{}"))), Some(slot)));
        check(&f, Some((0, 1)));
        let slot = f.take("ollama", T0, Duration::from_secs(1)).expect("free").expect("bounded");
        let chunks = futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"data: {}\n\n"))]);
        let held = hold(answer(Body::Stream(Box::pin(chunks))), Some(slot));
        check(&f, Some((1, 1)));
        assert!(f.take("ollama", T0, Duration::from_secs(1)).is_err(), "the stream is still in flight");
        drop(held);
        check(&f, Some((0, 1)));
    }
}
