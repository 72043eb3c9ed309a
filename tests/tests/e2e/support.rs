//! Shared helpers: a router server on a loopback port in front of the fake upstream,
//! request bodies in the shapes the official SDKs send, response checks, and a log
//! capture for the secrets tests.

use fake_upstream::FakeUpstream;
use reqwest::header::HeaderMap;
use router_core::Secret;
use router_server::{Config, Server};
use router_settings::{Limit, Seconds, Source};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The upstream key the tests configure; it must never come back out of the router.
pub(crate) const UPSTREAM_KEY: &str = "sk-or-v1-e2e0upstream0key0must0never0leak0c0ffee";

/// Free models of the fake's default catalog, in id order.
pub(crate) const FREE_TEXT_MODELS: [&str; 6] = [
    "deepseek/deepseek-chat-v3-0324:free",
    "google/gemma-3-27b-it:free",
    "meta-llama/llama-3.3-70b-instruct:free",
    "mistralai/mistral-small-3.2-24b-instruct:free",
    "qwen/qwen3-coder:free",
    "z-ai/glm-4.5-air:free",
];
pub(crate) const VISION_MODEL: &str = "google/gemma-3-27b-it:free";
pub(crate) const TOOL_MODELS: [&str; 2] = ["google/gemma-3-27b-it:free", "qwen/qwen3-coder:free"];
pub(crate) const STRUCTURED_MODEL: &str = "deepseek/deepseek-chat-v3-0324:free";
pub(crate) const PAID_MODEL: &str = "openai/gpt-4o-mini";
/// Zero-priced but not a `:free` variant: not free by the router's rule.
pub(crate) const ZERO_PRICED_MODEL: &str = "nvidia/nemotron-nano-9b-v2";

/// What the OpenAI Python SDK sends for `client.chat.completions.create(...)` (its
/// JSON encoder leaves spaces after separators).
pub(crate) const SDK_TEXT: &str = r#"{"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}], "model": "openrouter/free", "max_completion_tokens": 64, "temperature": 0.2, "user": "user-123"}"#;

/// The OpenAI Node SDK's compact form, with an image part as a base64 data URL.
pub(crate) const SDK_IMAGE: &str = r#"{"model":"openrouter/free","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==","detail":"auto"}}]}]}"#;

/// Function calling with a strict schema and `tool_choice: "auto"`.
pub(crate) const SDK_TOOLS: &str = r#"{"messages":[{"role":"user","content":"What's the weather in Paris?"}],"model":"openrouter/free","tool_choice":"auto","tools":[{"type":"function","function":{"name":"get_weather","description":"Get the current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false},"strict":true}}]}"#;

/// The second turn of a tool call: the assistant's `tool_calls` (content null) and the
/// tool's result.
pub(crate) const SDK_TOOL_RESULT: &str = r#"{"messages":[{"role":"user","content":"What's the weather in Paris?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"{\"temp_c\":21}"}],"model":"openrouter/free","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}"#;

/// Structured output (`client.beta.chat.completions.parse` / `response_format`).
pub(crate) const SDK_JSON_SCHEMA: &str = r#"{"messages":[{"role":"user","content":"Invent a person."}],"model":"openrouter/free","response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false},"strict":true}}}"#;

/// `stream=True, stream_options={"include_usage": True}`.
pub(crate) const SDK_STREAM: &str = r#"{"messages":[{"role":"user","content":"Count to three."}],"model":"openrouter/free","stream":true,"stream_options":{"include_usage":true}}"#;

/// The headers the OpenAI Python SDK adds besides the key and content type.
pub(crate) const SDK_HEADERS: [(&str, &str); 5] = [
    ("accept", "application/json"),
    ("user-agent", "OpenAI/Python 1.99.9"),
    ("x-stainless-lang", "python"),
    ("x-stainless-retry-count", "0"),
    ("x-stainless-async", "false"),
];

pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A configuration for tests: the fake upstream, the test key, state and cache in
/// `dir` (never the real home), no quotas, short timeouts.
pub(crate) fn test_config(upstream_url: &str, dir: &Path) -> Config {
    Config {
        openrouter_base_url: upstream_url.to_owned(),
        openrouter_api_key: Some(Secret::new(UPSTREAM_KEY)),
        data_dir: Some(dir.to_owned()),
        per_minute: Limit::of(0),
        per_day: Limit::of(0),
        refresh_interval_secs: Seconds::new(3600),
        connect_timeout_secs: Seconds::new(5),
        first_byte_timeout_secs: Seconds::new(20),
        idle_timeout_secs: Seconds::new(20),
        request_timeout_secs: Seconds::new(30),
        shutdown_grace_secs: Seconds::new(20),
        // As if configured: the key's tier does not raise it.
        sources: [("per_day", Source::File)].into(),
        ..Config::default()
    }
}

/// A router server on `127.0.0.1:0` in front of a fake upstream.
pub(crate) struct TestServer {
    pub upstream: FakeUpstream,
    pub server: Server,
    pub config: Config,
    pub base: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

pub(crate) fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client")
}

/// A server with the test configuration and the fake's default catalog.
pub(crate) async fn start() -> TestServer {
    start_with(FakeUpstream::start().await, |_| {}).await
}

/// A server on `upstream` with the test configuration changed by `edit`. The catalog
/// is loaded from the fake before the first request.
pub(crate) async fn start_with(upstream: FakeUpstream, edit: impl FnOnce(&mut Config)) -> TestServer {
    install_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(&upstream.base_url(), dir.path());
    edit(&mut config);
    let server = router_server::build(&config).expect("server builds");
    let openrouter = server.catalogs.refresh("openrouter").await;
    assert_ne!(openrouter, Some(false), "OpenRouter's catalog, when it is a provider, from the fake upstream");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let (tx, rx) = oneshot::channel::<()>();
    let app = router_server::app(server.state.clone());
    let signal = async move {
        let _ = rx.await;
    };
    let task = tokio::spawn(router_server::run_with_grace(listener, app, signal, config.shutdown_grace_secs.get()));
    TestServer { upstream, server, config, base, client: client(), shutdown: Some(tx), task: Some(task), _dir: dir }
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub(crate) async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("response body");
        Reply { status, headers, text }
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not json ({e}): {}", self.text))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `data:` payloads of an SSE body, without `[DONE]`.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("bad event ({e}): {d}")))
            .collect()
    }

    /// Asserts an error in OpenRouter's shape with `status`, whose message contains `needle`.
    #[track_caller]
    pub(crate) fn check_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let ct = self.header("content-type").unwrap_or("");
        assert!(ct.starts_with("application/json"), "content type {ct}: {}", self.text);
        let body = self.json();
        let error = body.get("error").unwrap_or_else(|| panic!("no error object: {}", self.text));
        assert_eq!(error["code"], status, "{}", self.text);
        let message = error["message"].as_str().unwrap_or_else(|| panic!("no message: {}", self.text));
        assert!(message.contains(needle), "`{needle}` not in `{message}`");
        assert!(error["metadata"].is_object(), "metadata: {}", self.text);
    }
}

impl TestServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts a streaming chat body; the answer's head has arrived with a 200.
    pub(crate) async fn open_stream(&self, body: &'static str) -> reqwest::Response {
        let resp = self
            .client
            .post(self.url("/api/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), 200);
        resp
    }

    /// POSTs `body` as JSON with the SDK's headers plus `extra`.
    pub(crate) async fn post(&self, path: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("authorization", "Bearer client-key")
            .body(body.to_owned());
        for (k, v) in SDK_HEADERS.iter().chain(extra) {
            req = req.header(*k, *v);
        }
        Reply::read(req.send().await.expect("request sent")).await
    }

    pub(crate) async fn chat(&self, body: &str) -> Reply {
        self.post("/api/v1/chat/completions", body, &[]).await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        Reply::read(self.client.get(self.url(path)).send().await.expect("request sent")).await
    }

    /// Whether the server's `run` has not returned yet.
    pub(crate) fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Signals shutdown without waiting.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Signals shutdown and waits (bounded) for the server to stop.
    pub(crate) async fn stop(&mut self) -> std::io::Result<()> {
        self.begin_shutdown();
        let task = self.task.take().expect("server running");
        tokio::time::timeout(Duration::from_secs(60), task).await.expect("server stops").expect("server task")
    }
}

/// A `tracing` writer that keeps every line in memory.
#[derive(Clone, Default)]
pub(crate) struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures every event at every level on this thread (use a current-thread runtime so
/// that the server's tasks run here too) until the guard drops.
pub(crate) fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

/// How long an outside client (an SDK's script, a coding agent) may run before its test
/// fails: a client that hangs fails its test instead of holding CI to its time limit.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `command` (no input, its output captured) to its end, or kills it and its own
/// children after `limit` and fails. Blocking: call it from `spawn_blocking`.
pub(crate) fn output_within(mut command: std::process::Command, limit: Duration) -> std::process::Output {
    use std::os::unix::process::CommandExt as _;
    use std::process::Stdio;
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts: {e}"));
    let group = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{program}'s output: {e}")),
        Err(_) => {
            // Only the group this test started (the client and what it ran), by its id.
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
            panic!("{program} ran past {limit:?}");
        }
    }
}

/// The executable `bin` of the npm packages installed in the folder the variable `var`
/// names (`cargo xtask ci` installs each agent's pinned packages and sets it).
pub(crate) fn agent_bin(var: &str, bin: &str) -> std::path::PathBuf {
    let dir = std::env::var(var).unwrap_or_else(|_| panic!("{var} names a folder with `npm ci` done in tests/agents"));
    Path::new(&dir).join("node_modules").join(".bin").join(bin)
}

/// What a coding agent's run left: what it printed, the requests upstream saw, and all of
/// it as the context of a failed assertion.
pub(crate) struct AgentRun {
    pub(crate) stdout: String,
    pub(crate) requests: Vec<fake_upstream::Recorded>,
    pub(crate) bodies: Vec<String>,
    pub(crate) context: String,
}

/// Runs `agent` (a blocking run, under [`output_within`]) against the router `s` and
/// reads what it left; fails, with all of it, unless the agent exited with success and
/// only free models were sent to.
pub(crate) async fn run_agent(
    s: &TestServer,
    agent: impl FnOnce() -> std::process::Output + Send + 'static,
) -> AgentRun {
    let output = tokio::task::spawn_blocking(agent).await.expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let requests = s.upstream.requests();
    let bodies: Vec<String> = requests.iter().map(|r| r.body.to_string()).collect();
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}\nupstream bodies:\n{}", bodies.join("\n"));
    assert!(output.status.success(), "the agent failed ({}):\n{context}", output.status);
    let router = &s.server.state.router;
    let free: Vec<String> = router.catalog().free_models(router.now()).map(|m| m.id.to_string()).collect();
    assert!(requests.iter().all(|r| free.contains(&r.model)), "only free models reached upstream: {context}");
    AgentRun { stdout, requests, bodies, context }
}

/// The ids of the calls the assistant turns of `request` made and of the results its
/// tool messages carry, each in order: a carried-over history pairs them one to one.
pub(crate) fn calls_and_results(request: &Value) -> (Vec<String>, Vec<String>) {
    let messages = request["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let ids = |m: &Value, pointer: &str| m.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let calls =
        messages.iter().filter_map(|m| m["tool_calls"].as_array()).flatten().filter_map(|c| ids(c, "/id")).collect();
    let results = messages.iter().filter(|m| m["role"] == "tool").filter_map(|m| ids(m, "/tool_call_id")).collect();
    (calls, results)
}

/// How an agent's task about two files made its two tool calls.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Calls {
    /// One a turn: three turns with the tools, two calls and the answer.
    OneATurn,
    /// Both in one answer: two turns, the calls and the answer.
    AtOnce,
}

impl Calls {
    /// Checks an agent's turns with the tools (their chat bodies, in order): one carries
    /// both results, each paired with its call by id (in the order the tools finished,
    /// for calls made at once); the calls were made as `self` says.
    pub(crate) fn check(self, turns: &[&Value], context: &str) {
        let last = turns
            .iter()
            .rev()
            .find(|b| calls_and_results(b).1.len() == 2)
            .unwrap_or_else(|| panic!("a turn with both results: {context}"));
        let (mut calls, mut results) = calls_and_results(last);
        calls.sort();
        results.sort();
        assert_eq!((calls.len(), &calls), (2, &results), "{context}");
        let per_answer: Vec<usize> = last["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["tool_calls"].as_array())
            .map(Vec::len)
            .collect();
        let (least_turns, answers) = match self {
            Calls::OneATurn => (3, vec![1, 1]),
            Calls::AtOnce => (2, vec![2]),
        };
        assert!(turns.len() >= least_turns, "{self:?}: {context}");
        assert_eq!(per_answer, answers, "{self:?}: the calls of each answer; {context}");
    }
}

/// Waits, when the clock is late in its minute, for the next minute to begin: a test that
/// counts in a minute's quota window must not see the window roll over under it.
pub(crate) async fn early_in_a_minute() {
    use router_core::Clock as _;
    const LATEST_START_MS: u64 = 45_000;
    let into_minute = router_settings::SystemClock.now().as_millis() % 60_000;
    if into_minute > LATEST_START_MS {
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute + 100)).await;
    }
}

/// Reads `stream` until what it gave contains `marker`; returns all it gave so far.
pub(crate) async fn read_until(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    marker: &str,
) -> String {
    use futures_util::StreamExt;
    let mut text = String::new();
    while !text.contains(marker) {
        text.push_str(&String::from_utf8_lossy(&stream.next().await.expect("a chunk").expect("chunk read")));
    }
    text
}
