//! Picks are uniform over the candidates (chi-square, checked against published tables and
//! against a biased picker).

use crate::catalogs::*;
use crate::ports::*;
use crate::{CASES, config, now};
use futures_executor::block_on;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed};
use router_core::filter::filter;
use router_core::select::pick_with_seed;
use router_core::{CatalogSnapshot, CatalogSource, ChatRequest, ModelInfo};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, n = 9; about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let a = G[1..].iter().enumerate().fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised upper incomplete gamma function `Q(a, x)` (series below `a + 1`,
/// Lentz's continued fraction above, as in Numerical Recipes).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * front
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let (mut c, mut d) = (1.0 / tiny, 1.0 / b);
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        front * h
    }
}

/// The p-value of Pearson's chi-square test that `counts` come from a uniform distribution.
pub(crate) fn uniform_p_value(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let expected = n as f64 / counts.len() as f64;
    let stat: f64 = counts.iter().map(|&o| (o as f64 - expected).powi(2) / expected).sum();
    gamma_q((counts.len() - 1) as f64 / 2.0, stat / 2.0)
}

#[test]
fn the_chi_square_p_value_matches_published_tables() {
    // (statistic, degrees of freedom, upper-tail probability) from standard tables.
    let table = [
        (10.828, 1.0, 0.001),
        (13.816, 2.0, 0.001),
        (27.877, 9.0, 0.001),
        (59.703, 30.0, 0.001),
        (3.841, 1.0, 0.05),
        (18.307, 10.0, 0.05),
    ];
    for (x, df, p) in table {
        let got = gamma_q(df / 2.0, x / 2.0);
        assert!((got - p).abs() < p * 0.01, "chi2({df}) > {x}: {got}, expected {p}");
    }
    // Closed forms for even degrees of freedom.
    for x in [0.5f64, 2.0, 7.0, 40.0] {
        assert!((gamma_q(1.0, x / 2.0) - (-x / 2.0).exp()).abs() < 1e-12);
        assert!((gamma_q(2.0, x / 2.0) - (-x / 2.0).exp() * (1.0 + x / 2.0)).abs() < 1e-12);
    }
}

#[test]
fn the_uniformity_test_catches_a_biased_picker() {
    // `seed % 16 % 10` favours six of ten candidates 2:1, the classic modulo bias.
    let mut counts = [0u64; 10];
    for seed in 0..20_000u64 {
        counts[(seed % 16 % 10) as usize] += 1;
    }
    assert!(uniform_p_value(&counts) < 1e-9);
    // A candidate that is never picked.
    let mut counts = [0u64; 10];
    for seed in 0..20_000u64 {
        counts[(seed % 9) as usize] += 1;
    }
    assert!(uniform_p_value(&counts) < 1e-9);
}

/// Family-wise significance: over all the cases of the property below, a uniform picker
/// fails with probability at most 0.001 (Bonferroni).
pub(crate) const ALPHA: f64 = 0.001;

proptest! {
    // A fixed seed: the cases, and so the verdict, are the same on every run.
    #![proptest_config(Config { rng_seed: RngSeed::Fixed(0x00F1_EE5E_ED00_0001), ..config() })]

    /// Over many seeds, every candidate of an arbitrary catalog is picked about equally
    /// often.
    #[test]
    fn picks_are_uniform_over_the_candidates(
        good in prop::collection::vec((select(&VENDORS[..4]), 0u32..1_000_000), 2..25),
        noise in catalog(20),
        base in any::<u64>(),
    ) {
        let mut models = noise;
        for (i, (vendor, n)) in good.into_iter().enumerate() {
            let mut info = ModelInfo::new(&format!("{vendor}/good-{n}-{i}:free"));
            info.output_modalities = vec!["text".into()];
            info.pricing.0.insert("prompt".into(), json!("0"));
            models.push(Gen { info, free: true });
        }
        let snap = snapshot_of(&models);
        let chat = ChatRequest::from_value(json!({"messages": [{"role": "user", "content": "hi"}]})).expect("valid");
        let candidates = filter(&snap, chat.requirements(), now()).candidates;
        let k = candidates.len();
        prop_assert!(k >= 2);
        let draws = 30 * k as u64;
        let mut counts = vec![0u64; k];
        for i in 0..draws {
            let pick = pick_with_seed(&candidates, base.wrapping_add(i)).expect("non-empty");
            counts[candidates.iter().position(|c| c == pick).expect("a candidate")] += 1;
        }
        let p = uniform_p_value(&counts);
        prop_assert!(p > ALPHA / f64::from(CASES), "p = {} for {:?}", p, counts);
        // The router draws its first pick exactly this way.
        let (r, _) = router(snap.clone(), Recorder::new(Vec::new()), router_config(1, None));
        for i in 0..3 {
            let pick = r.explain(&chat, base.wrapping_add(i)).expect("candidates").pick.expect("a pick");
            let expected = pick_with_seed(&candidates, base.wrapping_add(i)).expect("non-empty");
            prop_assert_eq!(pick.as_str(), snap.entries()[*expected].info.id.as_str());
        }
    }
}

#[test]
fn the_router_picks_every_candidate_equally_often() {
    // Ten free candidates among paid and unfit models; seeds 0..5000 through `route`.
    let mut models: Vec<ModelInfo> = (0..10)
        .map(|i| {
            let mut m = ModelInfo::new(&format!("v{}/m{i}:free", 9 - i));
            m.output_modalities = vec!["text".into()];
            m.supported_parameters = vec!["tools".into()];
            m.pricing.0.insert("prompt".into(), json!("0"));
            m
        })
        .collect();
    for i in 0..20 {
        let mut m = ModelInfo::new(&format!("paid/m{i}"));
        m.output_modalities = vec!["text".into()];
        m.supported_parameters = vec!["tools".into()];
        models.push(m);
        let mut m = ModelInfo::new(&format!("notools/m{i}:free"));
        m.output_modalities = vec!["text".into()];
        models.push(m);
    }
    let snap = Arc::new(CatalogSnapshot::new(models, CatalogSource::Memory, now()));
    let chat = ChatRequest::from_value(json!({
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }))
    .expect("valid");
    let (r, _) = router(snap, Recorder::new(Vec::new()), router_config(1, None));
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..5_000 {
        let routed = block_on(r.route(&chat, seed)).expect("routed");
        *counts.entry(routed.report.model.expect("a model").to_string()).or_default() += 1;
    }
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(counts.keys().all(|k| k.ends_with(":free") && !k.starts_with("notools/")));
    let p = uniform_p_value(&counts.values().copied().collect::<Vec<_>>());
    assert!(p > ALPHA, "p = {p} for {counts:?}");
}

#[test]
fn picks_are_uniform_over_a_large_sample() {
    let candidates: Vec<usize> = (0..10).collect();
    let mut counts = [0u64; 10];
    for seed in 0..200_000 {
        counts[*pick_with_seed(&candidates, seed).expect("non-empty")] += 1;
    }
    let p = uniform_p_value(&counts);
    assert!(p > ALPHA, "p = {p} for {counts:?}");
}
