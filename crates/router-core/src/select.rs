//! Seedable, uniform selection over a canonical candidate order.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator every pick is drawn from. ChaCha8 is portable and reproducible: the
/// same seed gives the same stream on every platform and in every release of
/// `rand_chacha` with the same major version.
pub type SelectionRng = ChaCha8Rng;

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
