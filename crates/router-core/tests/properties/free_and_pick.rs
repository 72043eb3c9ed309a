//! The free rule against the oracle, the pick is a candidate, nothing non-free or unfit is
//! forwarded whatever upstream does, and the pick depends only on the seed and the
//! candidate set.

use crate::catalogs::*;
use crate::ports::*;
use crate::requests::*;
use crate::{config, now};
use futures_executor::block_on;
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::sample::select;
use router_core::filter::{candidates, check_entry, filter};
use router_core::select::pick_with_seed;
use router_core::{Body, ChatRequest, ErrorKind, ModelInfo, RouteError, RouterConfig, is_free};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

proptest! {
    #![proptest_config(config())]

    /// The free rule agrees with the oracle on every generated entry, and filtering keeps
    /// exactly the free models that meet the request's needs.
    #[test]
    fn free_rule_and_filter_match_the_oracle(models in catalog(30), req in request()) {
        let snap = snapshot_of(&models);
        for g in &models {
            prop_assert_eq!(is_free(&g.info, now()), g.free, "{:?}", g.info);
            let entry = snap.get(g.info.id.as_str()).expect("listed");
            prop_assert_eq!(entry.is_free(now()), g.free);
        }
        let (chat, _) = req.resolve(&models);
        let got: BTreeSet<String> = candidate_ids(&snap, &chat, now()).into_iter().collect();
        prop_assert_eq!(got, oracle_candidates(&models, &snap, &chat, &req.needs));
        // The router's fast path agrees with the full filter, at every instant.
        for at in [now(), now().saturating_add(Duration::from_secs(86_400 * 30))] {
            let full = filter(&snap, chat.requirements(), at);
            prop_assert_eq!(candidates(&snap, chat.requirements(), at), full.candidates);
            prop_assert_eq!(full.rejected.len() + candidates(&snap, chat.requirements(), at).len(), snap.len());
        }
    }

    /// The pick is always a candidate; it is what `select` draws over the candidates in id
    /// order; and the first upstream call goes to it.
    #[test]
    fn the_pick_is_always_a_candidate(models in catalog(30), req in request(), seed in any::<u64>()) {
        let snap = snapshot_of(&models);
        let mut body = req.body.clone();
        body["model"] = json!("openrouter/free");
        let chat = ChatRequest::from_value(body).expect("valid");
        let candidates = candidate_ids(&snap, &chat, now());
        let transport = Recorder::new(Vec::new());
        let (r, _) = router(snap.clone(), transport.clone(), router_config(1, None));
        match r.explain(&chat, seed) {
            Ok(why) if !candidates.is_empty() => {
                let pick = why.pick.expect("a pick when there are candidates").to_string();
                prop_assert!(candidates.contains(&pick), "{} not in {:?}", pick, candidates);
                let listed: Vec<String> = why.candidates.iter().map(ToString::to_string).collect();
                prop_assert_eq!(&listed, &candidates);
                prop_assert_eq!(Some(&pick), pick_with_seed(&candidates, seed));
                let routed = block_on(r.route(&chat, seed)).expect("the transport answers");
                prop_assert_eq!(routed.report.model.map(|m| m.to_string()), Some(pick.clone()));
                prop_assert_eq!(routed.report.candidates, candidates.len());
                prop_assert_eq!(transport.calls().iter().map(|c| c.model.clone()).collect::<Vec<_>>(), vec![pick]);
            }
            explained => {
                prop_assert!(candidates.is_empty(), "explain failed with candidates: {:?}", explained.err());
                // No pick, and the error the request gets (in the explanation, or as the error).
                let error = match explained {
                    Ok(why) => {
                        prop_assert!(why.pick.is_none() && why.candidates.is_empty());
                        why.error
                    }
                    Err(e) => Some(e),
                };
                prop_assert!(matches!(error, Some(RouteError::NoCandidate { .. })), "{:?}", error);
                let failed = block_on(r.route(&chat, seed)).expect_err("no candidate");
                prop_assert_eq!(failed.error.status(), 404);
                prop_assert!(transport.calls().is_empty());
            }
        }
    }

    /// With `clamp_max_tokens` (the default), every model that could give the whole
    /// output asked for is still a candidate, every model called has room for the prompt
    /// and a useful output, and the output it is asked for fits its completion limit and
    /// its context, whatever upstream does.
    #[test]
    fn with_clamping_every_call_asks_for_what_the_model_can_give(
        models in catalog(30),
        reqs in prop::collection::vec(request(), 1..4),
        script in prop::collection::vec(fault(), 0..12),
        seed in any::<u64>(),
    ) {
        let snap = snapshot_of(&models);
        let transport = Recorder::new(script);
        let config = RouterConfig { clamp_max_tokens: true, ..router_config(3, None) };
        let (r, _) = router(snap.clone(), transport.clone(), config);
        for (n, req) in reqs.iter().enumerate() {
            let (chat, _) = req.resolve(&models);
            let before = transport.calls().len();
            let _ = block_on(r.route(&chat, seed.wrapping_add(n as u64)));
            let asked = chat.requirements();
            let relaxed = r.config().candidate_requirements(asked);
            let strict = filter(&snap, asked, now()).candidates;
            let loose = filter(&snap, &relaxed, now()).candidates;
            prop_assert!(strict.iter().all(|i| loose.contains(i)), "clamping lost a candidate");
            // The member the requirement was read from: `max_completion_tokens`, else `max_tokens`.
            let field = if chat_has(&chat, "max_completion_tokens") { "max_completion_tokens" } else { "max_tokens" };
            for call in &transport.calls()[before..] {
                let index = snap.index_of(&call.model).expect("only catalog models are forwarded");
                let info = &snap.entries()[index].info;
                prop_assert!(check_entry(&snap, index, &relaxed, now()).is_none(), "{} is unfit", call.model);
                let Some(sent) = call.body.get(field).and_then(Value::as_u64) else { continue };
                prop_assert!(sent <= asked.max_output_tokens.unwrap_or(u64::MAX), "more than asked: {}", sent);
                if let Some(max) = info.max_completion_tokens {
                    prop_assert!(sent <= max, "{} asked for {} > its limit {}", call.model, sent, max);
                }
                if let Some(context) = info.context_length {
                    prop_assert!(asked.prompt_tokens + sent <= context, "{} asked for {} past its context", call.model, sent);
                }
            }
        }
    }

    /// Whatever upstream does, every model that reaches the transport is free and meets
    /// the request's requirements; named paid or unknown models are refused before any
    /// call; no model is tried twice for one request; the answer names the model.
    #[test]
    fn a_non_free_model_is_never_forwarded(
        models in catalog(30),
        reqs in prop::collection::vec(request(), 1..4),
        script in prop::collection::vec(fault(), 0..12),
        max_attempts in 1u32..6,
        per_minute in prop::option::of(1u32..6),
        step_secs in select(vec![0u64, 1, 31, 600, 86_400]),
        seed in any::<u64>(),
    ) {
        let snap = snapshot_of(&models);
        let transport = Recorder::new(script);
        let (r, time) = router(snap.clone(), transport.clone(), router_config(max_attempts, per_minute));
        for (n, req) in reqs.iter().enumerate() {
            let at = now().saturating_add(Duration::from_secs(step_secs * n as u64));
            time.0.store(at.as_millis(), Ordering::SeqCst);
            let (chat, named) = req.resolve(&models);
            let before = transport.calls().len();
            let result = block_on(r.route(&chat, seed.wrapping_add(n as u64)));
            let calls = transport.calls().split_off(before);
            let mut seen = BTreeSet::new();
            for call in &calls {
                let index = snap.index_of(&call.model).expect("only catalog models are forwarded");
                let entry = &snap.entries()[index];
                let generated = models.iter().find(|g| g.info.id == entry.info.id).expect("generated");
                prop_assert!(is_free(&entry.info, at), "forwarded to non-free {}", call.model);
                prop_assert!(generated.free, "the oracle says {} is not free", call.model);
                prop_assert!(check_entry(&snap, index, chat.requirements(), at).is_none(), "{} is unfit", call.model);
                prop_assert!(req.needs.iter().all(|need| need.met_by(&entry.info)), "{} lacks {:?}", call.model, req.needs);
                prop_assert_eq!(&call.body["model"], &json!(call.model));
                prop_assert!(call.body.get("models").is_none() && call.body.get("route").is_none());
                prop_assert_eq!(call.stream, chat.is_stream());
                prop_assert!(seen.insert(call.model.clone()), "{} tried twice", call.model);
            }
            // Every call counts against the hard cap; only costly failures (not cheap,
            // not raced) against `max_attempts`.
            let config = r.config();
            prop_assert!(calls.len() <= config.max_upstream_calls as usize);
            let attempts = match &result {
                Ok(routed) => &routed.report.attempts,
                Err(failed) => &failed.report.attempts,
            };
            let cheap = |a: &router_core::Attempt| {
                matches!(a.failure, Some(ErrorKind::RateLimitedModel | ErrorKind::ModelUnavailable | ErrorKind::ServerError))
                    && a.elapsed < config.cheap_failure_bound
            };
            let costly = attempts.iter().filter(|a| a.failure.is_some() && !a.raced && !cheap(a)).count();
            prop_assert!(costly <= max_attempts as usize, "{} costly failures: {:?}", costly, attempts);
            if named.iter().any(|g| g.as_ref().is_none_or(|g| !g.free)) {
                prop_assert!(calls.is_empty(), "a request naming a paid or unknown model was forwarded");
                let failed = result.as_ref().err().map(|f| f.error.error_type());
                prop_assert!(matches!(failed, Some("paid_model_refused" | "unknown_model")), "{:?}", failed);
            }
            match result {
                Ok(routed) => {
                    let chosen = routed.report.model.clone().expect("a model").to_string();
                    prop_assert_eq!(calls.last().map(|c| c.model.clone()), Some(chosen.clone()));
                    let tried: Vec<String> = routed.report.attempts.iter().map(|a| a.model.to_string()).collect();
                    prop_assert_eq!(tried, calls.iter().map(|c| c.model.clone()).collect::<Vec<_>>());
                    match routed.response.body {
                        Body::Full(bytes) => {
                            let v: Value = serde_json::from_slice(&bytes).expect("json");
                            prop_assert_eq!(&v["model"], &json!(chosen));
                        }
                        Body::Stream(s) => {
                            let chunks: Vec<_> = block_on(s.collect());
                            let text: Vec<u8> = chunks.into_iter().flat_map(|c| c.expect("in-band").to_vec()).collect();
                            let text = String::from_utf8(text).expect("utf-8");
                            for payload in text.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|p| p.starts_with('{')) {
                                let v: Value = serde_json::from_str(payload).expect("json event");
                                prop_assert_eq!(&v["model"], &json!(chosen));
                            }
                        }
                    }
                }
                Err(failed) => {
                    let tried: Vec<String> = failed.report.attempts.iter().map(|a| a.model.to_string()).collect();
                    prop_assert_eq!(tried, calls.iter().map(|c| c.model.clone()).collect::<Vec<_>>());
                    let json = failed.error.to_json();
                    prop_assert_eq!(json["error"]["code"].as_u64(), Some(u64::from(failed.error.status())));
                    prop_assert!(json["error"]["message"].is_string());
                }
            }
        }
    }

    /// The same seed and the same candidate set give the same pick, and the same
    /// sequence of fallbacks, whatever the catalog's order and whatever else it lists.
    #[test]
    fn the_pick_depends_only_on_the_seed_and_the_candidate_set(
        (models, shuffled) in catalog(30).prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
        extra in prop::collection::vec(any::<u8>(), 0..5),
        req in request(),
        script in prop::collection::vec(fault(), 0..6),
        seed in any::<u64>(),
    ) {
        // The shuffled catalog also lists paid models, which cannot be candidates.
        let mut other: Vec<Gen> = shuffled;
        for (i, b) in extra.iter().enumerate() {
            let mut info = ModelInfo::new(&format!("paid-{b}/extra-{i}"));
            info.output_modalities = vec!["text".into()];
            info.pricing.0.insert("prompt".into(), json!("0.000001"));
            let at = usize::from(*b) % (other.len() + 1);
            other.insert(at, Gen { info, free: false });
        }
        let (a, b) = (snapshot_of(&models), snapshot_of(&other));
        let (chat, _) = req.resolve(&models);
        prop_assert_eq!(candidate_ids(&a, &chat, now()), candidate_ids(&b, &chat, now()));
        let picks: Vec<Option<String>> = [&a, &b]
            .iter()
            .map(|snap| {
                let (r, _) = router((*snap).clone(), Recorder::new(Vec::new()), router_config(3, None));
                r.explain(&chat, seed).ok().and_then(|e| e.pick).map(|m| m.to_string())
            })
            .collect();
        prop_assert_eq!(&picks[0], &picks[1]);
        let sequences: Vec<Vec<String>> = [a, b]
            .into_iter()
            .map(|snap| {
                let transport = Recorder::new(script.clone());
                let (r, _) = router(snap, transport.clone(), router_config(4, None));
                let _ = block_on(r.route(&chat, seed));
                transport.calls().into_iter().map(|c| c.model).collect()
            })
            .collect();
        prop_assert_eq!(&sequences[0], &sequences[1]);
    }
}

/// Whether the request's body has the member `name` (not null).
fn chat_has(chat: &ChatRequest, name: &str) -> bool {
    let body: Value = serde_json::from_slice(&chat.body_for_upstream("m", false, None)).expect("json");
    body.get(name).is_some_and(|v| !v.is_null())
}
