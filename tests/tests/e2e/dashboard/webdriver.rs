//! Just enough of the W3C WebDriver protocol to drive the distribution's headless
//! Chromium through `chromedriver`, over the HTTP client the tests already use (no
//! browser-automation crate to build).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `chromium` and `chromium-driver` packages put the two programs;
/// `CHROMIUM` and `CHROMEDRIVER` override them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long chromedriver may take to answer its status endpoint after starting.
const DRIVER_START: Duration = Duration::from_secs(30);
/// How long one WebDriver command may take (starting the browser is the slow one).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn program(env: &str, default: &str, search: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    if Path::new(default).exists() {
        return Some(PathBuf::from(default));
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(search)).find(|p| p.exists())
}

/// The two programs, or a failure that says how to install them: the browser test must
/// not pass silently on a machine without a browser.
pub(super) fn locate() -> (PathBuf, PathBuf) {
    let chromium = program("CHROMIUM", CHROMIUM, "chromium");
    let driver = program("CHROMEDRIVER", CHROMEDRIVER, "chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the dashboard's browser test needs Chromium and chromedriver (found chromium: {c:?}, chromedriver: \
             {d:?}); install them with `apt-get install -y chromium chromium-driver` (`.ci/run` does) or point \
             CHROMIUM and CHROMEDRIVER at them"
        ),
    }
}

/// A running chromedriver with one browser session; both end when this drops.
pub(super) struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: chromedriver closes the browser when it exits too.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, `width` x
    /// `height` pixels, its console logged.
    pub(super) async fn start(width: u32, height: u32) -> Browser {
        let (chromium, driver_path) = locate();
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let http = reqwest::Client::builder().timeout(COMMAND_TIMEOUT).build().expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut browser = Browser { driver, http, session: String::new(), base, _profile: profile };
        let deadline = Instant::now() + DRIVER_START;
        loop {
            let ready = browser.http.get(format!("{}/status", browser.base)).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer within {DRIVER_START:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = browser.call(reqwest::Method::POST, "/session", Some(caps)).await;
        browser.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session id in {v}")).to_owned();
        browser
    }

    /// One command; returns its `value`, panicking on a WebDriver error.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}/session", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_else(|e| panic!("webdriver {method} {path}: not JSON: {e}"));
        assert!(status.is_success(), "webdriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    pub(super) async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; its result.
    pub(super) async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// Evaluates `script` every 50 ms until it returns something other than `null` or
    /// `false`, for up to `within`; the value, or `None` when time ran out.
    pub(super) async fn wait_for(&self, script: &str, args: Value, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(script, args.clone()).await;
            if !v.is_null() && v != Value::Bool(false) {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The browser's console entries since the last call (Chromium's log through
    /// chromedriver): `(level, message)`.
    pub(super) async fn console(&self) -> Vec<(String, String)> {
        let v = self.call(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (e["level"].as_str().unwrap_or("").to_owned(), e["message"].as_str().unwrap_or("").to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) async fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// A PNG of the viewport.
    pub(super) async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let b64 = v.as_str().unwrap_or_else(|| panic!("no screenshot in {v}"));
        base64::engine::general_purpose::STANDARD.decode(b64).expect("the screenshot is base64")
    }

    pub(super) async fn quit(self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
    }
}
