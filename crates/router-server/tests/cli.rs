//! The `router-server` binary itself, run with a cleared environment: `--help`, the
//! precedence flag > environment > file > default, `--check-config`, and a real start
//! from a config file that stops on SIGTERM and saves its state.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_router-server");
const KEY: &str = "sk-or-v1-cli0test0key0never0shown";

/// The binary with only `env` in its environment, and a temporary home so that no
/// default path can point at the real one.
fn command(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear().env("HOME", home).env("XDG_DATA_HOME", home.join("data")).env("XDG_CACHE_HOME", home.join("cache"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args);
    c
}

fn run(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(home, env, args).output().expect("run router-server")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--check-config` with `env` and `args` prints `expected` (a `key = value (source)` line).
fn check(env: &[(&str, &str)], file: Option<&str>, args: &[&str], expected: &str) {
    let home = tempfile::tempdir().expect("temp dir");
    let path = home.path().join("router.toml");
    let mut argv = vec!["--check-config"];
    let path_text = path.display().to_string();
    if let Some(toml) = file {
        std::fs::write(&path, toml).expect("write config");
        argv.extend(["--config", path_text.as_str()]);
    }
    argv.extend(args);
    let out = run(home.path(), env, &argv);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{argv:?} {env:?}: {}{stdout}", text(&out.stderr));
    assert!(stdout.lines().any(|l| l == expected), "`{expected}` not in\n{stdout}");
    assert!(stdout.ends_with("config ok\n"), "{stdout}");
}

#[test]
fn help_documents_every_flag_and_its_environment_variable() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = run(home.path(), &[("OPENROUTER_API_KEY", KEY), ("ROUTER_API_KEYS", "client-secret")], &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    // Each option's entry: its flag line and the description lines under it.
    let mut options: Vec<String> = Vec::new();
    for line in help.lines() {
        if line.trim_start().starts_with("--") {
            options.push(line.to_owned());
        } else if let Some(last) = options.last_mut() {
            last.push_str(line);
        }
    }
    assert!(options.len() >= 18, "{help}");
    for option in options {
        if option.contains("--check-config") || option.contains("--help") || option.contains("--version") {
            continue;
        }
        assert!(option.contains("[env: "), "no environment variable documented: {option}");
    }
    for name in ["ROUTER_LISTEN", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "ROUTER_SEED", "ROUTER_API_KEYS"] {
        assert!(help.contains(&format!("[env: {name}")), "{name} missing");
    }
    assert!(!help.contains(KEY) && !help.contains("client-secret"), "secret values shown in --help");
}

#[test]
fn flag_over_environment_over_file_over_default() {
    let file = Some("listen = \"127.0.0.1:7001\"\nmax_attempts = 4\n");
    let env = [("ROUTER_LISTEN", "127.0.0.1:7002")];
    check(&[], None, &[], "listen = 127.0.0.1:8080 (default)");
    check(&[], file, &[], "listen = 127.0.0.1:7001 (file)");
    check(&env, file, &[], "listen = 127.0.0.1:7002 (env)");
    check(&env, file, &["--listen", "127.0.0.1:7003"], "listen = 127.0.0.1:7003 (flag)");
    check(&env, file, &["--listen", "127.0.0.1:7003"], "max_attempts = 4 (file)");
    check(&[("ROUTER_MAX_ATTEMPTS", "6")], file, &[], "max_attempts = 6 (env)");
    check(&[("ROUTER_SEED", "99")], None, &[], "seed = 99 (env)");
    check(
        &[("OPENROUTER_BASE_URL", "http://127.0.0.1:1/api/v1")],
        None,
        &[],
        "openrouter_base_url = http://127.0.0.1:1/api/v1 (env)",
    );
    check(&[("ROUTER_API_KEYS", "a, b,,c")], None, &[], "api_keys = 3 client key(s) (env)");
    check(&[], Some("per_day = 0"), &[], "per_day = unlimited (file)");
}

#[test]
fn check_config_hides_the_key() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = run(home.path(), &[("OPENROUTER_API_KEY", KEY)], &["--check-config"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("openrouter_api_key = set (env)"), "{all}");
    assert!(!all.contains(KEY), "{all}");
}

#[test]
fn invalid_configuration_fails_and_names_the_culprit() {
    let home = tempfile::tempdir().expect("temp dir");
    let path = home.path().join("router.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:8080\"\nmax_atempts = 3\n").expect("write config");
    let out = run(home.path(), &[], &["--check-config", "--config", &path.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("max_atempts") && err.contains("router.toml"), "{err}");
    assert!(out.stdout.is_empty());

    let out = run(home.path(), &[("ROUTER_SEED", "not-a-number")], &["--check-config"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--seed"), "{}", text(&out.stderr));

    let out = run(home.path(), &[("OPENROUTER_BASE_URL", "openrouter.ai")], &["--check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("openrouter_base_url"), "{}", text(&out.stderr));
}

/// Waits (bounded) for a JSON log line whose message is `message`; returns the line.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, message: &str, seen: &mut String) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else { continue };
        seen.push_str(&line);
        seen.push('\n');
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["message"] == message
        {
            return v;
        }
    }
    panic!("no `{message}` log line in:\n{seen}");
}

/// A `router-server` child started from a config file, and its log lines.
struct Child {
    child: std::process::Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    seen: String,
}

/// Starts the binary with `toml` as its config file and `env`, and waits for `listening`.
fn spawn_from_file(home: &Path, env: &[(&str, &str)], toml: &str) -> Child {
    let path = home.join("router.toml");
    std::fs::write(&path, toml).expect("write config");
    let mut child = command(home, env, &["--config", &path.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start router-server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let listening = tokio::task::block_in_place(|| wait_for_line(&lines, "listening", &mut seen));
    let addr = listening["addr"].as_str().expect("addr").to_owned();
    Child { child, addr, lines, reader, seen }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openrouter_table_s_url_and_key_are_the_ones_used() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = fake_upstream::FakeUpstream::start().await;
    let home = tempfile::tempdir().expect("temp dir");
    // No `openrouter_base_url`: only the table says where OpenRouter is (the default
    // would need the network), and only the table's variable holds the key to send.
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nper_minute = 0\nper_day = 0\nlog_format = \"json\"\n\
         [[providers]]\nname = \"openrouter\"\nkind = \"openrouter\"\nbase_url = \"{}\"\napi_key_env = \"GATEWAY_KEY\"\n",
        upstream.base_url()
    );
    let gateway_key = "sk-gateway-key-0123456789abcdef";
    let mut c = spawn_from_file(
        home.path(),
        &[("OPENROUTER_API_KEY", KEY), ("GATEWAY_KEY", gateway_key), ("RUST_LOG", "info")],
        &toml,
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let resp = client
        .post(format!("http://{}/api/v1/chat/completions", c.addr))
        .header("content-type", "application/json")
        .body(r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .expect("chat");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let sent = upstream.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].authorization.as_deref(), Some(format!("Bearer {gateway_key}").as_str()));
    let _ = c.child.kill();
    let _ = c.child.wait();
    c.reader.join().expect("reader");
    c.seen.extend(c.lines.try_iter().map(|l| l + "\n"));
    assert!(!c.seen.contains(gateway_key) && !c.seen.contains(KEY), "a key in the logs:\n{}", c.seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_a_config_file_and_stops_on_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = fake_upstream::FakeUpstream::start().await;
    let home = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\nopenrouter_base_url = \"{}\"\ndata_dir = \"data\"\nper_minute = 0\nper_day = 0\nlog_format = \"json\"\n",
        upstream.base_url()
    );
    let Child { mut child, addr, lines: rx, reader, mut seen } =
        spawn_from_file(home.path(), &[("OPENROUTER_API_KEY", KEY), ("RUST_LOG", "info")], &toml);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");

    // Ready at once (embedded catalog); live once the background refresh has run.
    let mut live = false;
    for _ in 0..300 {
        let body = client.get(format!("http://{addr}/readyz")).send().await.expect("readyz").text().await;
        let ready: serde_json::Value = serde_json::from_str(&body.expect("body")).expect("json");
        if ready["catalog"]["source"]["kind"] == "live" {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(live, "the live catalog loaded in the background");
    let resp = client
        .post(format!("http://{addr}/api/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .expect("chat");
    assert_eq!(resp.status(), 200);
    let model = resp.headers()["x-router-model"].to_str().expect("model").to_owned();
    assert!(model.ends_with(":free"), "{model}");

    // A second server on the same port is refused, not silently given half the traffic.
    let second = run(home.path(), &[("OPENROUTER_API_KEY", KEY)], &["--listen", &addr, "--data-dir", "data2"]);
    assert!(!second.status.success(), "a second server started on {addr}");
    assert!(text(&second.stderr).contains("cannot listen on"), "{}", text(&second.stderr));

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "router-server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert!(exit.success(), "{exit:?}");
    reader.join().expect("reader");
    seen.extend(rx.try_iter().map(|l| l + "\n"));
    let state = std::fs::read_to_string(home.path().join("data").join("state.json")).expect("state saved");
    assert!(state.contains("\"day\""), "{state}");
    assert!(home.path().join("data").join("catalog.json").is_file(), "catalog cached");
    assert!(seen.contains("\"message\":\"request\""), "one log line per request:\n{seen}");
    assert!(!seen.contains(KEY) && !state.contains(KEY), "key in the logs or the state");
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn check_config_reports_an_unreadable_state_file_without_touching_it() {
    let home = tempfile::tempdir().expect("temp dir");
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("state.json"), "{not json").expect("write state");
    let out = run(home.path(), &[], &["--check-config", "--data-dir", &data.display().to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    assert!(stdout.contains("# warning: ") && stdout.contains("state.json"), "{stdout}");
    assert_eq!(std::fs::read_to_string(data.join("state.json")).expect("still there"), "{not json");
    assert_eq!(std::fs::read_dir(&data).expect("list").count(), 1, "nothing written");
}
