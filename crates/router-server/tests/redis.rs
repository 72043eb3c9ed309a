//! Several `router-server` processes sharing one real `redis-server` (started by each
//! test on a free port, in a temporary directory) and one fake upstream: the quota is
//! spent once, a cooldown one instance learns keeps the others off the model, and a Redis
//! that dies and comes back neither stops the service nor resets the counts.

#[path = "../../state-redis/tests/support/redis_server.rs"]
mod redis_server;

use fake_upstream::{Behaviour, FakeModel, FakeUpstream, models_json};
use redis_server::RedisServer;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_router-server");
const ONE: &str = "a/one:free";
const TWO: &str = "b/two:free";
/// Not a setting: tells [`Instance::start_with`] not to wait for Redis.
const REDIS_MAY_BE_DOWN: (&str, &str) = ("TEST_REDIS_MAY_BE_DOWN", "1");

/// One `router-server` process; killed when dropped.
struct Instance {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Instance {
    /// Starts the binary with `per_day`, no per-minute limit and Redis at `redis`, and
    /// waits until it serves the upstream's live catalog and is connected to Redis.
    async fn start(upstream: &FakeUpstream, redis: &str, per_day: u32) -> Instance {
        Instance::start_with(upstream, redis, per_day, &[]).await
    }

    /// [`Instance::start`] with more settings in the environment.
    async fn start_with(upstream: &FakeUpstream, redis: &str, per_day: u32, env: &[(&str, &str)]) -> Instance {
        let home = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(BIN);
        command.env_clear().envs(env.iter().copied());
        let mut child = command
            .env("HOME", home.path())
            .env("OPENROUTER_API_KEY", "sk-or-v1-redis0test")
            .env("OPENROUTER_BASE_URL", upstream.base_url())
            .env("ROUTER_LISTEN", "127.0.0.1:0")
            .env("ROUTER_DATA_DIR", home.path().join("data"))
            .env("ROUTER_PER_DAY", per_day.to_string())
            .env("ROUTER_PER_MINUTE", "0")
            .env("ROUTER_REDIS_URL", redis)
            // Determinism under a 300-request burst on a small CI machine: every
            // reservation waits for Redis rather than falling back to the local share.
            .env("ROUTER_REDIS_TIMEOUT_MS", "5000")
            .env("ROUTER_WORKER_THREADS", "2")
            .env("ROUTER_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start router-server");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("\"listening\"") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().expect("log").push_str(&(line + "\n"));
            }
        });
        let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .expect("join")
            .unwrap_or_else(|_| panic!("router-server did not start"));
        let v: Value = serde_json::from_str(&line).expect("json log line");
        let addr = v["addr"].as_str().expect("addr").to_owned();
        let instance = Instance { child, addr, log, _home: home };
        instance.wait_ready(|r| r["catalog"]["source"]["kind"] == "live").await;
        if !env.contains(&REDIS_MAY_BE_DOWN) {
            instance.wait_ready(|r| r["shared_state"]["connected"] == true).await;
        }
        instance
    }

    /// Polls `/readyz` (bounded) until `ok` holds; returns the last answer.
    async fn wait_ready(&self, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(resp) = client().get(format!("http://{}/readyz", self.addr)).send().await
                && let Ok(text) = resp.text().await
                && let Ok(v) = serde_json::from_str::<Value>(&text)
            {
                if ok(&v) {
                    return v;
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("readyz never matched; last: {last}\nlog:\n{}", self.log());
    }

    /// One chat request for `model`: the status and the model that answered.
    async fn chat(&self, model: &str) -> (u16, Option<String>) {
        let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
        let resp = client()
            .post(format!("http://{}/api/v1/chat/completions", self.addr))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("chat request");
        let by = resp.headers().get("x-router-model").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (resp.status().as_u16(), by)
    }

    /// Polls `/metrics` (bounded) until the value of `name` satisfies `ok`.
    async fn wait_metric(&self, name: &str, ok: impl Fn(u64) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(resp) = client().get(format!("http://{}/metrics", self.addr)).send().await
                && let Ok(text) = resp.text().await
            {
                let value = text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<u64>().ok()));
                if value.is_some_and(&ok) {
                    return;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{name} never matched in:\n{last}");
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    fn assert_no_panic(&self) {
        let log = self.log();
        assert!(!log.contains("panicked"), "a panic in:\n{log}");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

/// A fake upstream serving two free models, both answering until told otherwise.
async fn upstream() -> FakeUpstream {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let up = FakeUpstream::start().await;
    let models = models_json(&[FakeModel::free(ONE), FakeModel::free(TWO)]);
    up.set_models(serde_json::to_vec(&models).expect("models json"));
    up
}

/// The shared day counter's key for now (`fmr:` is the default prefix).
fn day_key() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    format!("fmr:quota:openrouter:d:{}", secs / 86_400)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daily_quota_is_spent_once_across_instances_and_a_later_instance_sees_it() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let a = Instance::start(&up, &redis.url(), 50).await;
    let b = Instance::start(&up, &redis.url(), 50).await;
    let (a, b) = (Arc::new(a), Arc::new(b));

    let mut tasks = Vec::new();
    for i in 0..300 {
        let target = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { target.chat("openrouter/free").await.0 }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("request task"));
    }
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(up.total_calls(), 50, "upstream calls across both instances");
    assert_eq!((ok, limited), (50, 250), "{statuses:?}");
    assert_eq!(redis.get(&day_key()).as_deref(), Some("50"));

    // An instance started later knows the day is spent without asking upstream.
    let c = Instance::start(&up, &redis.url(), 50).await;
    assert_eq!(c.chat("openrouter/free").await.0, 429);
    assert_eq!(up.total_calls(), 50);
    for i in [&*a, &*b, &c] {
        i.assert_no_panic();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_seen_by_one_instance_keeps_the_others_off_the_model() {
    let redis = RedisServer::start();
    let up = upstream().await;
    up.set_behaviour(ONE, Behaviour::RateLimited { retry_after: Some(60) });
    let a = Instance::start(&up, &redis.url(), 0).await;
    let b = Instance::start(&up, &redis.url(), 0).await;

    assert_ne!(a.chat(ONE).await.0, 200);
    assert_eq!(up.calls(ONE), 1);
    // The cooldown reaches B through Redis within the propagation bound.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..10 {
        assert_eq!(b.chat("openrouter/free").await, (200, Some(TWO.to_owned())));
        assert_eq!(b.chat(ONE).await.0, 429, "B answers from the cooldown it learned");
    }
    assert_eq!(up.calls(ONE), 1, "B never called the model A found rate-limited");
    let metrics = client().get(format!("http://{}/metrics", b.addr)).send().await.expect("metrics");
    let text = metrics.text().await.expect("metrics text");
    assert!(text.contains("router_shared_state_up 1"), "{text}");
    assert!(!text.contains("router_shared_state_events_received_total 0\n"), "{text}");
    a.assert_no_panic();
    b.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_dying_mid_run_degrades_to_local_state_and_its_return_resumes_the_counts() {
    let mut redis = RedisServer::start();
    let up = upstream().await;
    up.set_behaviour(TWO, Behaviour::RateLimited { retry_after: Some(60) });
    let a = Instance::start(&up, &redis.url(), 1000).await;
    let b = Instance::start(&up, &redis.url(), 1000).await;
    assert_ne!(a.chat(TWO).await.0, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..10 {
        let target = if i % 2 == 0 { &a } else { &b };
        assert_eq!(target.chat("openrouter/free").await, (200, Some(ONE.to_owned())));
    }
    let before = up.total_calls();
    assert_eq!(redis.get(&day_key()).as_deref(), Some(before.to_string().as_str()));

    redis.kill();
    for target in [&a, &b] {
        for _ in 0..10 {
            assert_eq!(target.chat("openrouter/free").await, (200, Some(ONE.to_owned())), "serves without Redis");
        }
        assert_eq!(target.chat(TWO).await.0, 429, "still cooling without Redis");
        let ready = target.wait_ready(|r| r["status"] == "degraded").await;
        assert_eq!(ready["shared_state"]["connected"], false, "{ready}");
        assert!(ready["shared_state"]["reason"].is_string(), "{ready}");
    }
    assert_eq!(up.calls(TWO), 1, "no call to the cooling model");

    redis.restart();
    for target in [&a, &b] {
        target.wait_ready(|r| r["status"] == "ready").await;
        assert_eq!(target.chat("openrouter/free").await.0, 200);
    }
    // The restarted Redis lost everything; the instances' counts came back with their
    // next reservations: at least what was sent before the outage plus one instance's
    // outage requests, and never more than was sent.
    let counted: usize = redis.get(&day_key()).expect("day counter").parse().expect("a number");
    let total = up.total_calls();
    assert!(counted >= before + 10 && counted <= total, "counted {counted}, before {before}, total {total}");
    // What the instances knew came back too: an instance started now learns the cooldown.
    let key = format!("fmr:cool:{TWO}:rate_limited");
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.get(&key).is_none() {
        assert!(Instant::now() < deadline, "the cooldown was not told to the restarted Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = Instance::start(&up, &redis.url(), 1000).await;
    c.wait_metric("router_shared_state_events_received_total", |v| v > 0).await;
    assert_eq!(c.chat(TWO).await.0, 429, "the later instance knows the cooldown");
    assert_eq!(up.calls(TWO), 1);
    for target in [&a, &b] {
        let log = target.log();
        assert_eq!(log.matches("shared state (Redis) unreachable").count(), 1, "said once:\n{log}");
        target.assert_no_panic();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_breaker_opened_on_one_instance_lets_one_probe_through_in_total() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let boom = r#"{"error":{"code":500,"message":"internal error"}}"#.to_owned();
    up.set_behaviour(ONE, Behaviour::Status { status: 500, body: boom });
    // A short open period, and no waiting for a cooling model (answer 429 at once).
    let env = [("ROUTER_BREAKER_OPEN_SECS", "3"), ("ROUTER_MAX_COOLING_WAIT_MS", "0")];
    let a = Arc::new(Instance::start_with(&up, &redis.url(), 0, &env).await);
    let b = Arc::new(Instance::start_with(&up, &redis.url(), 0, &env).await);

    // Three server errors open A's breaker; B hears of it and leaves the model alone.
    for _ in 0..3 {
        assert_ne!(a.chat(ONE).await.0, 200);
    }
    let opened = Instant::now();
    assert_eq!(up.calls(ONE), 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.chat(ONE).await.0, 429, "B knows the breaker is open");
    assert_eq!(up.calls(ONE), 3);

    // The open period ends on both: twenty concurrent requests, half on each, and one
    // probe between them (which fails and opens the breaker again).
    tokio::time::sleep(Duration::from_millis(3100).saturating_sub(opened.elapsed())).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let target = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { target.chat(ONE).await.0 }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("request task"));
    }
    assert_eq!(up.calls(ONE), 4, "one probe in total");
    // Everyone else was told the model is cooling (a probe in flight, then open again).
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 19, "{statuses:?}");
    a.assert_no_panic();
    b.assert_no_panic();
}

#[test]
fn check_config_never_shows_the_redis_password_and_refuses_a_bad_url() {
    let home = tempfile::tempdir().expect("temp dir");
    let run = |url: &str| {
        Command::new(BIN)
            .env_clear()
            .env("HOME", home.path())
            .env("ROUTER_REDIS_URL", url)
            .arg("--check-config")
            .output()
            .expect("run router-server")
    };
    let out = run("redis://:hunter2-secret@127.0.0.1:6390/0");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("redis_url = set (env)"), "{all}");
    assert!(all.contains("redis_key_prefix = fmr: (default)"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");

    let out = run("http://not-redis/");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("Redis URL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_started_while_redis_is_down_serves_and_merges_back_when_it_comes() {
    let mut redis = RedisServer::start();
    redis.kill();
    let up = upstream().await;
    let a = Instance::start_with(&up, &redis.url(), 1000, &[REDIS_MAY_BE_DOWN]).await;
    let ready = a.wait_ready(|r| r["status"] == "degraded").await;
    assert!(ready["shared_state"]["reason"].is_string(), "{ready}");
    for _ in 0..5 {
        assert_eq!(a.chat("openrouter/free").await.0, 200, "serves without Redis");
    }
    a.wait_metric("router_shared_state_local_reservations_total", |v| v >= 5).await;

    redis.restart();
    a.wait_ready(|r| r["status"] == "ready").await;
    assert_eq!(a.chat("openrouter/free").await.0, 200);
    // The five requests sent without Redis were counted with the first one after it.
    assert_eq!(redis.get(&day_key()).as_deref(), Some("6"));
    a.assert_no_panic();
}
