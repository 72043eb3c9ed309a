//! Seedable selection over a canonical candidate order: uniform (the default, as
//! `openrouter/free` is) or weighted by a quality score.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator every pick is drawn from. ChaCha8 is portable and reproducible: the
/// same seed gives the same stream on every platform and in every release of
/// `rand_chacha` with the same major version.
pub type SelectionRng = ChaCha8Rng;

/// The generator for `seed`: the same seed always gives the same picks.
pub fn rng_from_seed(seed: u64) -> SelectionRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Picks one item uniformly. The caller passes candidates in canonical (id) order, so
/// the pick is a function of the seed and the candidate *set*.
pub fn pick<'a, T>(candidates: &'a [T], rng: &mut SelectionRng) -> Option<&'a T> {
    match candidates.len() {
        0 => None,
        n => candidates.get(rng.random_range(0..n)),
    }
}

/// The first pick for `seed`: what a request with that seed gets when no attempt fails.
pub fn pick_with_seed<T>(candidates: &[T], seed: u64) -> Option<&T> {
    pick(candidates, &mut rng_from_seed(seed))
}

/// Picks one item with probability proportional to its weight (weights that are not
/// positive and finite count as zero). The draw is one `f64` from the generator, so the
/// same seed, candidates and weights give the same pick. When every weight is zero the
/// pick is uniform, so a pool of failing models still answers.
pub fn pick_weighted<'a, T>(candidates: &'a [T], weight: impl Fn(&T) -> f64, rng: &mut SelectionRng) -> Option<&'a T> {
    let clean = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let total: f64 = candidates.iter().map(|c| clean(weight(c))).sum();
    if !(total.is_finite() && total > 0.0) {
        return pick(candidates, rng);
    }
    let mut x = rng.random::<f64>() * total;
    let mut last = None;
    for c in candidates {
        let w = clean(weight(c));
        if w == 0.0 {
            continue;
        }
        if x < w {
            return Some(c);
        }
        x -= w;
        last = Some(c);
    }
    // Rounding left `x` a hair above the sum: the last weighted item.
    last
}
