//! The catalog adapter over real HTTP on loopback: refreshes against the project's fake
//! upstream, failures that keep the last good snapshot, the disk cache, the embedded
//! default with nothing listening, the refresh loop, and the key on the wire.

use catalog_openrouter::{
    CatalogConfig, CatalogError, OpenRouterCatalog, RefreshOutcome, embedded_snapshot, embedded_snapshot_date,
};
use fake_upstream::{FakeModel, FakeUpstream, default_models, models_json};
use router_core::time::parse_date;
use router_core::{Catalog, CatalogSnapshot, CatalogSource, Clock, ModelId, Secret, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A clock the test sets; starts well after the embedded snapshot's date.
#[derive(Debug)]
struct TestClock(AtomicU64);

impl TestClock {
    fn at(date: &str) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicU64::new(parse_date(date).expect("fixture date").as_millis())))
    }

    fn advance(&self, d: Duration) {
        self.0.fetch_add(u64::try_from(d.as_millis()).expect("small"), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

const LATER: &str = "2026-09-01";

fn config(base_url: &str, cache: Option<&Path>) -> CatalogConfig {
    CatalogConfig {
        base_url: base_url.to_owned(),
        api_key: None,
        refresh_interval: Duration::from_secs(600),
        cache_path: cache.map(Path::to_path_buf),
        fetch_timeout: Duration::from_secs(30),
        extra_roots: Vec::new(),
    }
}

fn catalog(cfg: CatalogConfig, clock: &Arc<TestClock>) -> OpenRouterCatalog {
    OpenRouterCatalog::new(cfg, clock.clone()).expect("catalog")
}

fn ids(snap: &CatalogSnapshot) -> Vec<String> {
    snap.ids().map(|id| id.as_str().to_owned()).collect()
}

fn id_list(ids: &[ModelId]) -> Vec<&str> {
    ids.iter().map(ModelId::as_str).collect()
}

fn body(models: &[FakeModel]) -> Vec<u8> {
    serde_json::to_vec(&models_json(models)).expect("serialise")
}

/// Refreshes and checks the models and free models it reports, and the ids added and removed.
async fn check_refresh(cat: &OpenRouterCatalog, models: usize, free: usize, added: &[&str], removed: &[&str]) {
    let RefreshOutcome { models: m, free_models: f, added: a, removed: r, cache_error, .. } =
        cat.refresh().await.expect("refresh succeeds");
    assert_eq!((m, f), (models, free), "models, free models");
    assert_eq!(id_list(&a), added, "added");
    assert_eq!(id_list(&r), removed, "removed");
    assert_eq!(cache_error, None);
}

/// A port with nothing listening on it.
async fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/api/v1")
}

#[tokio::test]
async fn refresh_adds_and_removes_models() {
    let up = FakeUpstream::start().await;
    up.set_models(body(&[
        FakeModel::free("acme/a:free"),
        FakeModel::free("acme/b:free").vision(),
        FakeModel::paid("acme/c", "0.000001"),
    ]));
    let clock = TestClock::at(LATER);
    let cat = catalog(config(&up.base_url(), None), &clock);
    assert!(matches!(cat.snapshot().source(), CatalogSource::Embedded { .. }));
    assert_eq!(up.models_fetches(), 0, "no network before the first refresh");

    let embedded = ids(&embedded_snapshot());
    let embedded: Vec<&str> = embedded.iter().map(String::as_str).collect();
    check_refresh(&cat, 3, 2, &["acme/a:free", "acme/b:free", "acme/c"], &embedded).await;
    let snap = cat.snapshot();
    assert_eq!(snap.source(), &CatalogSource::Live { url: format!("{}/models", up.base_url()) });
    assert_eq!(snap.fetched_at(), clock.now());
    assert!(snap.get("acme/b:free").is_some_and(|e| e.info.input_modalities == ["text", "image"]));

    up.set_models(body(&[FakeModel::free("acme/a:free"), FakeModel::free("acme/d:free")]));
    clock.advance(Duration::from_secs(600));
    check_refresh(&cat, 2, 2, &["acme/d:free"], &["acme/b:free", "acme/c"]).await;
    assert_eq!(ids(&cat.snapshot()), ["acme/a:free", "acme/d:free"]);
    let stats = cat.stats();
    assert_eq!((stats.refreshes_ok, stats.refreshes_failed, stats.last_error), (2, 0, None));
    assert_eq!((stats.catalog.models, stats.catalog.free_models, stats.catalog.age_secs), (2, 2, 0));
    assert_eq!(up.models_fetches(), 2);
}

#[tokio::test]
async fn both_shapes_and_a_malformed_entry_over_http() {
    let up = FakeUpstream::start().await;
    let clock = TestClock::at(LATER);
    let cat = catalog(config(&up.base_url(), None), &clock);

    let entries = models_json(&[FakeModel::free("acme/a:free"), FakeModel::free("acme/b:free")])["data"].clone();
    up.set_models(serde_json::to_vec(&entries).expect("bare array"));
    let outcome = cat.refresh().await.expect("a bare array");
    assert_eq!((outcome.models, outcome.free_models, outcome.skipped), (2, 2, 0));
    assert_eq!(ids(&cat.snapshot()), ["acme/a:free", "acme/b:free"]);

    // One broken entry (context_length is not a number) among good ones, unknown fields and nulls.
    let mut list = entries.as_array().expect("list").clone();
    let mut broken = list[0].clone();
    broken["id"] = "acme/broken:free".into();
    broken["context_length"] = "very long".into();
    list.push(broken);
    let mut nulls = list[1].clone();
    nulls["id"] = "acme/nulls:free".into();
    for key in ["name", "created", "context_length", "architecture", "top_provider", "supported_parameters"] {
        nulls[key] = serde_json::Value::Null;
    }
    nulls["something_new"] = serde_json::json!({"a": [1, null]});
    list.push(nulls);
    let wrapped = serde_json::json!({"data": list, "total_count": 4, "links": {"next": null}});
    up.set_models(serde_json::to_vec(&wrapped).expect("wrapped"));
    let outcome = cat.refresh().await.expect("refresh");
    assert_eq!((outcome.models, outcome.skipped), (3, 1));
    assert_eq!(id_list(&outcome.added), ["acme/nulls:free"]);
    let snap = cat.snapshot();
    assert_eq!(snap.skipped(), 1);
    assert_eq!(cat.stats().last_fetch_skipped, Some(1));
    assert_eq!(snap.get("acme/nulls:free").map(|e| e.info.context_length), Some(None));
}

#[tokio::test]
async fn failed_refreshes_keep_the_last_good_snapshot() {
    let up = FakeUpstream::start().await;
    let clock = TestClock::at(LATER);
    let cat = catalog(config(&up.base_url(), None), &clock);
    let good = default_models();
    let free = good.iter().filter(|m| m.id.ends_with(":free") && m.prompt_price == "0").count();
    cat.refresh().await.expect("first refresh");
    let last_good = cat.snapshot();
    assert_eq!(last_good.free_models(clock.now()).count(), free);

    type Setup = fn(&FakeUpstream);
    type Expected = fn(&CatalogError) -> bool;
    let failures: [(&str, Setup, Expected); 6] = [
        ("http 500", |up| up.set_models_status(500), |e| matches!(e, CatalogError::Status { status: 500, .. })),
        (
            "bad json",
            |up| {
                up.set_models_status(200);
                up.set_models(&b"{\"data\": [{\"id\": "[..]);
            },
            |e| matches!(e, CatalogError::Body(_)),
        ),
        (
            "not a list",
            |up| up.set_models(&b"{\"error\": {\"code\": 502}}"[..]),
            |e| matches!(e, CatalogError::Body(_)),
        ),
        ("empty list", |up| up.set_models(&b"{\"data\": []}"[..]), |e| matches!(e, CatalogError::NoFreeModels { .. })),
        (
            "only paid models",
            |up| up.set_models(body(&[FakeModel::paid("acme/p", "0.000002"), FakeModel::free("acme/zero-not-free")])),
            |e| matches!(e, CatalogError::NoFreeModels { previous } if *previous > 0),
        ),
        (
            "only expired free models",
            |up| up.set_models(body(&[FakeModel::free("acme/old:free").expires("2026-08-01")])),
            |e| matches!(e, CatalogError::NoFreeModels { .. }),
        ),
    ];
    for (i, (what, setup, expected)) in failures.iter().enumerate() {
        setup(&up);
        let err = cat.refresh().await.expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
        assert!(Arc::ptr_eq(&cat.snapshot(), &last_good), "{what}: the snapshot was replaced");
        let stats = cat.stats();
        assert_eq!(stats.refreshes_failed, i as u64 + 1, "{what}");
        assert_eq!(stats.last_error, Some(err.to_string()), "{what}");
        assert_eq!(stats.refreshes_ok, 1);
    }

    // Recovery: the next good answer is taken and clears the error.
    up.set_models(body(&[FakeModel::free("acme/new:free")]));
    cat.refresh().await.expect("recovered");
    assert_eq!(ids(&cat.snapshot()), ["acme/new:free"]);
    assert_eq!(cat.stats().last_error, None);
}

#[tokio::test]
async fn a_catalog_without_free_models_is_accepted_when_the_last_had_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.json");
    let up = FakeUpstream::start().await;
    let url = format!("{}/models", up.base_url());
    // A cache (the project's format) holding only a paid model, newer than the embedded catalog.
    let cache = serde_json::json!({"format": 1, "fetched_at": parse_date(LATER).expect("date").as_millis(),
        "source_url": url, "models": [{"id": "acme/p", "pricing": {"prompt": "1", "completion": "1"}}]});
    std::fs::write(&path, cache.to_string()).expect("write cache");
    let clock = TestClock::at(LATER);
    let cat = catalog(config(&up.base_url(), Some(&path)), &clock);
    assert_eq!(ids(&cat.snapshot()), ["acme/p"]);
    up.set_models(body(&[FakeModel::paid("acme/q", "0.1")]));
    check_refresh(&cat, 1, 0, &["acme/q"], &["acme/p"]).await;
}

#[tokio::test]
async fn disk_cache_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sub").join("catalog.json");
    let up = FakeUpstream::start().await;
    up.set_models(body(&[FakeModel::free("acme/a:free").tools(), FakeModel::paid("acme/c", "0.3")]));
    let clock = TestClock::at(LATER);
    let first = catalog(config(&up.base_url(), Some(&path)), &clock);
    first.refresh().await.expect("refresh");
    let fetched_at = clock.now();
    assert!(path.exists(), "the cache was written");

    // A restart an hour later with the upstream gone: the cache is loaded, no fetch is made.
    clock.advance(Duration::from_secs(3600));
    drop(up);
    let second = catalog(config(&first.config().base_url, Some(&path)), &clock);
    let snap = second.snapshot();
    assert_eq!(snap.source(), &CatalogSource::DiskCache { path: path.display().to_string() });
    assert_eq!(snap.fetched_at(), fetched_at, "the cache keeps its original fetch time");
    assert_eq!(second.stats().catalog.age_secs, 3600);
    assert_eq!(snap.models().collect::<Vec<_>>(), first.snapshot().models().collect::<Vec<_>>());
    assert!(second.refresh().await.is_err(), "nothing is listening any more");
    assert!(Arc::ptr_eq(&second.snapshot(), &snap));

    // A cache of another upstream is not used.
    let other = catalog(config("http://127.0.0.1:9/api/v1", Some(&path)), &clock);
    assert!(matches!(other.snapshot().source(), CatalogSource::Embedded { .. }));

    // A corrupt cache falls back to the embedded catalog.
    std::fs::write(&path, b"{\"format\": 1, \"models\": [").expect("corrupt");
    let corrupt = catalog(config(&first.config().base_url, Some(&path)), &clock);
    assert!(matches!(corrupt.snapshot().source(), CatalogSource::Embedded { .. }));
}

#[tokio::test]
async fn a_cache_older_than_the_embedded_catalog_is_not_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.json");
    let up = FakeUpstream::start().await;
    // Fetched by a clock a year before the embedded snapshot was recorded.
    let clock = TestClock::at("2025-08-01");
    catalog(config(&up.base_url(), Some(&path)), &clock).refresh().await.expect("refresh");
    let restarted = catalog(config(&up.base_url(), Some(&path)), &TestClock::at(LATER));
    assert_eq!(
        restarted.snapshot().source(),
        &CatalogSource::Embedded { snapshot_date: embedded_snapshot_date().to_owned() }
    );
}

#[tokio::test]
async fn embedded_default_with_nothing_listening() {
    let url = closed_port_url().await;
    let clock = TestClock::at(LATER);
    let cat = catalog(config(&url, None), &clock);
    let snap = cat.snapshot();
    assert_eq!(snap.source(), &CatalogSource::Embedded { snapshot_date: embedded_snapshot_date().to_owned() });
    assert_eq!(ids(&snap), ids(&embedded_snapshot()));
    let date = parse_date(embedded_snapshot_date()).expect("the embedded date is a date");
    assert!(snap.free_models(date).count() > 0, "the embedded catalog routes");
    assert_eq!(snap.free_models(date).count(), snap.len(), "the embedded catalog holds only free models");

    let err = cat.refresh().await.expect_err("nothing listens");
    assert!(matches!(err, CatalogError::Fetch(_)), "{err:?}");
    assert!(Arc::ptr_eq(&cat.snapshot(), &snap));
    let stats = cat.stats();
    assert_eq!((stats.refreshes_ok, stats.refreshes_failed), (0, 1));
    assert!(stats.catalog.source.to_string().contains(embedded_snapshot_date()));
}

#[tokio::test]
async fn the_refresh_loop_keeps_fetching_and_stops_with_the_catalog() {
    let up = FakeUpstream::start().await;
    let clock = TestClock::at(LATER);
    let cat = Arc::new(catalog(
        CatalogConfig { refresh_interval: Duration::from_millis(20), ..config(&up.base_url(), None) },
        &clock,
    ));
    let handle = cat.spawn_refresh_loop();
    tokio::time::timeout(Duration::from_secs(30), async {
        while up.models_fetches() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("three fetches");
    assert!(matches!(cat.snapshot().source(), CatalogSource::Live { .. }));
    assert!(cat.stats().refreshes_ok >= 2);
    drop(cat);
    tokio::time::timeout(Duration::from_secs(30), handle).await.expect("the loop ends").expect("no panic");
}

fn http_answer(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Accepts one connection, keeps its request head, and answers `answer` (or nothing).
async fn one_shot_server(answer: Option<String>) -> (String, tokio::task::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/api/v1", l.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        match answer {
            Some(a) => sock.write_all(a.as_bytes()).await.expect("write"),
            None => tokio::time::sleep(Duration::from_secs(60)).await,
        }
        String::from_utf8_lossy(&head).to_lowercase()
    });
    (url, task)
}

#[tokio::test]
async fn sends_the_key_as_bearer_and_never_shows_it() {
    const KEY: &str = "sk-or-v1-test-secret-42";
    let (url, server) =
        one_shot_server(Some(http_answer("401 Unauthorized", r#"{"error":{"code":401,"message":"no auth"}}"#))).await;
    let clock = TestClock::at(LATER);
    let cat = catalog(CatalogConfig { api_key: Some(Secret::new(KEY)), ..config(&url, None) }, &clock);
    let err = cat.refresh().await.expect_err("401");
    let head = server.await.expect("server");
    assert!(head.starts_with("get /api/v1/models "), "{head}");
    assert!(head.contains(&format!("authorization: bearer {}", KEY.to_lowercase())), "{head}");
    assert!(matches!(err, CatalogError::Status { status: 401, .. }), "{err:?}");
    let shown = format!("{err} {err:?} {cat:?} {:?}", cat.stats());
    assert!(!shown.contains(KEY), "the key leaked: {shown}");

    let (url, server) = one_shot_server(Some(http_answer("200 OK", r#"{"data":[]}"#))).await;
    let cat = catalog(config(&url, None), &clock);
    let _ = cat.refresh().await;
    assert!(!server.await.expect("server").contains("authorization"), "no key, no header");
}

#[tokio::test]
async fn a_silent_upstream_times_out() {
    let (url, _server) = one_shot_server(None).await;
    let clock = TestClock::at(LATER);
    let cat = catalog(CatalogConfig { fetch_timeout: Duration::from_millis(200), ..config(&url, None) }, &clock);
    let err = cat.refresh().await.expect_err("timeout");
    assert!(matches!(err, CatalogError::Timeout(_)), "{err:?}");
    assert!(matches!(cat.snapshot().source(), CatalogSource::Embedded { .. }));
}
