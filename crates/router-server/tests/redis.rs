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
        command.env_clear();
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
            // The test's own settings last: they replace the defaults above.
            .envs(env.iter().copied())
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
    // The cooldown reaches B through Redis (its one event; waited for, not slept on).
    b.wait_metric("router_shared_state_events_received_total", |v| v > 0).await;
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
    b.wait_metric("router_shared_state_events_received_total", |v| v > 0).await;
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
    // The restarted Redis lost everything; the instances' counts came back (each one's
    // own count and its outage requests, each counted once): exactly what was sent.
    let (counted, total) = settled(&redis, &up).await;
    assert_eq!(counted, total, "before the outage {before}");
    assert_eq!(total, before + 22);
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
    b.wait_metric("router_shared_state_events_received_total", |v| v > 0).await;
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

    // TLS is not built in: said so, with the way around it.
    let out = run("rediss://:hunter2-secret@redis.example:6380/0");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("rediss://") && err.contains("tunnel"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // A prefix with glob characters or whitespace is refused, naming the setting.
    for prefix in ["fmr:*", "a?", "team[1]:", "two words:"] {
        let out = Command::new(BIN)
            .env_clear()
            .env("HOME", home.path())
            .env("ROUTER_REDIS_URL", "redis://127.0.0.1:6390/0")
            .env("ROUTER_REDIS_KEY_PREFIX", prefix)
            .arg("--check-config")
            .output()
            .expect("run router-server");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{prefix}: {err}");
        assert!(err.contains("redis_key_prefix"), "{prefix}: {err}");
    }
}

/// Sends `n` chat requests at once, alternately on each of `instances`: their statuses.
async fn burst(instances: &[&Arc<Instance>], n: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let target = Arc::clone(instances[i % instances.len()]);
        tasks.push(tokio::spawn(async move { target.chat("openrouter/free").await.0 }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("request task"));
    }
    statuses
}

/// Waits (bounded) until the shared day count equals the upstream calls made; returns
/// both as they are then.
async fn settled(redis: &RedisServer, up: &FakeUpstream) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counted = redis.get(&day_key()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let calls = up.total_calls();
        if counted == calls || Instant::now() >= deadline {
            return (counted, calls);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_stall_counts_each_request_once_and_leaves_the_day_open() {
    // `DEBUG SLEEP` needs the debug commands (Redis 7 refuses them by default).
    let redis = Arc::new(RedisServer::start_with(&["--enable-debug-command", "local"]));
    let up = upstream().await;
    // Short enough that reservations give up during the stall and are decided locally.
    let env = [("ROUTER_REDIS_TIMEOUT_MS", "100")];
    let a = Arc::new(Instance::start_with(&up, &redis.url(), 1000, &env).await);
    let b = Arc::new(Instance::start_with(&up, &redis.url(), 1000, &env).await);
    let statuses = burst(&[&a, &b], 200).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(up.total_calls(), 200);

    // Traffic on both instances before, during and after a 1.5 s stall.
    let stop = Instant::now() + Duration::from_millis(2300);
    let mut workers = Vec::new();
    for w in 0..4 {
        let target = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < stop {
                statuses.push(target.chat("openrouter/free").await.0);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = redis.clone();
    let stalled = tokio::task::spawn_blocking(move || r.command(&["DEBUG", "SLEEP", "1.5"]));
    let mut during = Vec::new();
    for w in workers {
        during.extend(w.await.expect("worker"));
    }
    assert_eq!(stalled.await.expect("join"), "+OK");
    assert!(during.iter().all(|&s| s == 200), "served through the stall: {during:?}");

    let (counted, calls) = settled(&redis, &up).await;
    assert_eq!(calls, 200 + during.len());
    assert_eq!(counted, calls, "each request counted once");
    // The day is not spent: both instances still serve, and count exactly; both have
    // stopped keeping to their shares (every instance merged).
    for target in [&a, &b] {
        target.wait_ready(|r| r["status"] == "ready" && r["shared_state"]["settling"] == false).await;
    }
    let after = burst(&[&a, &b], 20).await;
    assert!(after.iter().all(|&s| s == 200), "{after:?}");
    let (counted, calls) = settled(&redis, &up).await;
    assert_eq!((counted, calls), (calls, 220 + during.len()));
    for target in [&a, &b] {
        // The stall was seen: reservations that outwaited the timeout were decided locally
        // (a heartbeat may or may not have timed out too, so the log is not asked).
        target.wait_metric("router_shared_state_local_reservations_total", |v| v > 0).await;
        target.assert_no_panic();
    }
}

/// Two instances with `per_day = 40` spend 20, Redis loses everything (`lose`), and 60
/// more requests come: 20 more are sent in all, and the day counter says 40.
async fn the_day_holds_across_a_loss(lose: impl FnOnce(&mut RedisServer)) {
    let mut redis = RedisServer::start();
    let up = upstream().await;
    let a = Arc::new(Instance::start(&up, &redis.url(), 40).await);
    let b = Arc::new(Instance::start(&up, &redis.url(), 40).await);
    let statuses = burst(&[&a, &b], 20).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(redis.get(&day_key()).as_deref(), Some("20"));

    lose(&mut redis);
    for target in [&a, &b] {
        target.wait_ready(|r| r["status"] == "ready").await;
    }
    // Without any request, the instances' heartbeats bring the day's count back.
    assert_eq!(settled(&redis, &up).await, (20, 20));
    let statuses = burst(&[&a, &b], 60).await;
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(up.total_calls(), 40, "no more than the day's limit upstream: {statuses:?}");
    assert_eq!((ok, statuses.len() - ok), (20, 40), "{statuses:?}");
    assert_eq!(settled(&redis, &up).await, (40, 40));
    let log = a.log() + &b.log();
    assert!(log.contains("rebuilt from the instances' own counts"), "the loss was seen:\n{log}");
    a.assert_no_panic();
    b.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flushall_mid_day_does_not_reopen_the_day() {
    the_day_holds_across_a_loss(|redis| assert_eq!(redis.command(&["FLUSHALL"]), "+OK")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_empty_does_not_reopen_the_day() {
    the_day_holds_across_a_loss(|redis| {
        redis.kill();
        // Long enough for both heartbeats to see it gone.
        std::thread::sleep(Duration::from_millis(600));
        redis.restart();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_redis_password_holds_the_shared_quota_and_says_why() {
    let redis = RedisServer::start_with(&["--requirepass", "right-pass"]);
    let up = upstream().await;
    let wrong = redis.url().replace("redis://", "redis://:wrong-pass@");
    let none = redis.url();
    for url in [wrong, none] {
        let a = Instance::start_with(&up, &url, 1000, &[REDIS_MAY_BE_DOWN]).await;
        let ready =
            a.wait_ready(|r| r["shared_state"]["reason"].as_str().is_some_and(|s| s.contains("credentials"))).await;
        assert_eq!(ready["status"], "degraded", "{ready}");
        // Not an outage to spend the whole quota in: nothing is sent on the shared quota.
        assert_eq!(a.chat("openrouter/free").await.0, 429);
        assert_eq!(up.total_calls(), 0);
        let log = a.log();
        assert!(log.contains("refuses this instance's credentials"), "{log}");
        assert!(!log.contains("wrong-pass") && !log.contains("right-pass"), "{log}");
        a.assert_no_panic();
    }
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

/// Embeddings are upstream requests like chat: OpenRouter's free embedding model spends
/// the account's day once across instances (reserved by the same script), and when the
/// day is spent chat and embeddings are refused alike on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_spend_the_shared_day_once_across_instances() {
    const EMBED: &str = "acme/embed:free";
    let redis = RedisServer::start();
    let up = upstream().await;
    up.set_embedding_models(fake_upstream::embedding_models_json(&[EMBED]).to_string());
    up.set_embedding_dimension(EMBED, 8);
    let a = Arc::new(Instance::start(&up, &redis.url(), 6).await);
    let b = Arc::new(Instance::start(&up, &redis.url(), 6).await);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let target = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"model":"{EMBED}","input":["a","b"]}}"#);
            let resp = client()
                .post(format!("http://{}/v1/embeddings", target.addr))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("embeddings request");
            resp.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("request task"));
    }
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!((ok, statuses.iter().filter(|&&s| s == 429).count()), (6, 4), "{statuses:?}");
    assert_eq!(up.calls(EMBED), 6, "upstream embeddings calls across both instances");
    assert_eq!(redis.get(&day_key()).as_deref(), Some("6"));
    assert_eq!(a.chat("openrouter/free").await.0, 429, "the same account's day");
    assert_eq!(b.chat("openrouter/free").await.0, 429);
    a.assert_no_panic();
    b.assert_no_panic();
}
