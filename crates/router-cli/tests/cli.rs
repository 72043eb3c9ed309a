//! End-to-end tests of the `router-cli` binary: every subcommand run as a process, the
//! network parts against the fake upstream on loopback. Every file the binary touches
//! (catalog cache, router state, home directories) is in a temp dir.

use fake_upstream::{Behaviour, FakeModel, FakeUpstream, models_json};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const KEY: &str = "sk-or-v1-test-key-never-printed";

/// One isolated environment for the binary: its own home, cache and state files.
struct Cli {
    dir: tempfile::TempDir,
    base_url: Option<String>,
    key: Option<String>,
}

/// What a run produced.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not json ({e}): {}", self.stdout))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success; stderr: {}\nstdout: {}", self.stderr, self.stdout);
        self
    }

    fn failed(self) -> Self {
        assert_eq!(self.code, Some(1), "expected exit code 1; stderr: {}\nstdout: {}", self.stderr, self.stdout);
        assert!(self.stderr.contains("error: "), "no error on stderr: {}", self.stderr);
        assert!(!self.stderr.contains(KEY) && !self.stdout.contains(KEY), "the key was printed");
        self
    }
}

impl Cli {
    fn new() -> Cli {
        Cli { dir: tempfile::tempdir().expect("temp dir"), base_url: None, key: None }
    }

    fn upstream(mut self, fake: &FakeUpstream) -> Cli {
        self.base_url = Some(fake.base_url());
        self
    }

    fn key(mut self) -> Cli {
        self.key = Some(KEY.to_owned());
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes the disk cache's list `by` older than it is (its `fetched_at`, in ms).
    fn age_the_cache(&self, by: Duration) {
        let path = self.path("catalog.json");
        let mut cache: Value = serde_json::from_slice(&std::fs::read(&path).expect("a disk cache")).expect("json");
        let at = cache["fetched_at"].as_u64().expect("fetched_at in ms");
        cache["fetched_at"] = json!(at - u64::try_from(by.as_millis()).expect("small"));
        std::fs::write(&path, cache.to_string()).expect("write the cache");
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_router-cli"));
        // Nothing from the developer's environment: no real key, home or upstream.
        cmd.env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.path("xdg-cache"))
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .arg("--cache-path")
            .arg(self.path("catalog.json"))
            .arg("--state-path")
            .arg(self.path("state.json"))
            .args(args)
            .stdin(Stdio::null());
        // An unroutable default: a test that forgets the fake upstream cannot reach the internet.
        cmd.env("OPENROUTER_BASE_URL", self.base_url.as_deref().unwrap_or("http://127.0.0.1:9/api/v1"));
        if let Some(k) = &self.key {
            cmd.env("OPENROUTER_API_KEY", k);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run router-cli");
        to_run(out)
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn router-cli");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        to_run(child.wait_with_output().expect("wait for router-cli"))
    }

    /// Runs the binary off the async runtime, so that the fake upstream keeps serving.
    async fn run_async(&self, args: &[&str]) -> Run {
        let cmd = self.command(args);
        tokio::task::spawn_blocking(move || {
            let mut cmd = cmd;
            to_run(cmd.output().expect("run router-cli"))
        })
        .await
        .expect("runner thread")
    }
}

fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A small catalog of every kind: free models with different capabilities, one whose
/// free period ended, a paid one, a zero-priced non-`:free` one and a router model.
fn fixture_models() -> Vec<FakeModel> {
    vec![
        FakeModel::free("a/text:free").context(8_192),
        FakeModel::free("b/vision:free").context(32_768).vision().tools(),
        FakeModel::free("c/struct:free").context(131_072).structured().reasoning(),
        FakeModel::free("d/future:free").context(65_536).tools().expires("2999-12-31"),
        FakeModel::free("e/expired:free").tools().vision().expires("2020-01-01"),
        FakeModel::paid("f/paid", "0.000001").vision().tools().structured(),
        FakeModel::free("g/zero-not-free-variant"),
        FakeModel::free("openrouter/free").vision().tools().structured(),
    ]
}

const FREE_IDS: [&str; 4] = ["a/text:free", "b/vision:free", "c/struct:free", "d/future:free"];

/// The fixture catalog in both `/models` shapes: `{"data":[...]}` and a bare array.
fn catalog_files(cli: &Cli) -> [PathBuf; 2] {
    let wrapped = models_json(&fixture_models());
    let bare = wrapped["data"].clone();
    [cli.write("models-wrapped.json", &wrapped.to_string()), cli.write("models-bare.json", &bare.to_string())]
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|m| m.get("id").unwrap_or(m).as_str().expect("an id string").to_owned())
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn every_help_has_an_example() {
    let cli = Cli::new();
    for sub in [&["--help"][..], &["models", "--help"], &["explain", "--help"], &["chat", "--help"]] {
        let run = cli.run(sub).ok();
        assert!(run.stdout.contains("Example"), "{sub:?}: {}", run.stdout);
        assert!(run.stdout.contains("router-cli "), "{sub:?}");
    }
    for sub in [&["catalog", "--help"][..], &["catalog", "refresh", "--help"], &["catalog", "show", "--help"]] {
        let run = cli.run(sub).ok();
        assert!(run.stdout.contains("Example") && run.stdout.contains("router-cli catalog"), "{sub:?}");
    }
    let run = cli.run(&["completions", "--help"]).ok();
    assert!(run.stdout.contains("router-cli completions bash"));
}

#[test]
fn completions_for_each_shell() {
    let cli = Cli::new();
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef router-cli"), ("fish", "complete -c router-cli")]
    {
        let run = cli.run(&["completions", shell]).ok();
        assert!(run.stdout.contains(marker), "{shell}: {}", &run.stdout[..run.stdout.len().min(300)]);
        for sub in ["models", "explain", "chat", "catalog"] {
            assert!(run.stdout.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let run = cli.run(&["completions", "tcsh"]);
    assert_eq!(run.code, Some(2), "clap's usage error: {}", run.stderr);
}

#[test]
fn models_from_files_of_both_shapes() {
    let cli = Cli::new();
    for file in catalog_files(&cli) {
        let v = cli.run(&["models", "--catalog-file", s(&file), "--json"]).ok().json();
        assert_eq!(ids(&v["models"]), FREE_IDS, "{}", file.display());
        assert_eq!(v["count"], json!(4));
        assert_eq!(v["catalog"]["source"], json!({"kind": "file", "path": s(&file)}));
        assert_eq!(v["catalog"]["models"], json!(8));
        assert_eq!(v["catalog"]["free_models"], json!(4));
        assert!(v["catalog"]["age_secs"].is_u64());
        let vision = &v["models"][1];
        assert_eq!(vision["input_modalities"], json!(["text", "image"]));
        assert_eq!((vision["tools"].clone(), vision["structured_outputs"].clone()), (json!(true), json!(false)));
        assert_eq!(v["models"][0]["context_length"], json!(8_192));
        assert_eq!(v["models"][3]["expiration_date"], json!("2999-12-31"));
    }
    let [file, _] = catalog_files(&cli);
    let filtered = |flags: &[&str]| {
        let mut args = vec!["models", "--json", "--catalog-file", s(&file)];
        args.extend_from_slice(flags);
        ids(&cli.run(&args).ok().json()["models"])
    };
    assert_eq!(filtered(&["--vision"]), ["b/vision:free"]);
    assert_eq!(filtered(&["--tools"]), ["b/vision:free", "d/future:free"]);
    assert_eq!(filtered(&["--structured", "--reasoning"]), ["c/struct:free"]);
    assert_eq!(filtered(&["--min-context", "60000"]), ["c/struct:free", "d/future:free"]);
    assert_eq!(filtered(&["--vision", "--structured"]), Vec::<String>::new());
}

#[test]
fn models_plain_text_when_piped() {
    let cli = Cli::new();
    let [file, _] = catalog_files(&cli);
    let run = cli.run(&["models", "--tools", "--catalog-file", s(&file)]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.first().map(|l| l.starts_with(&format!("# catalog: file ({})", file.display()))), Some(true));
    assert_eq!(lines[1], "ID\tCONTEXT\tINPUT\tTOOLS\tSTRUCTURED\tREASONING\tEXPIRES");
    assert_eq!(lines[2], "b/vision:free\t32,768\ttext,image\tyes\t-\t-\t-");
    assert_eq!(lines[3], "d/future:free\t65,536\ttext\tyes\t-\t-\t2999-12-31");
    assert_eq!(lines[4], "# 2 free models with tools (4 free, 8 models in the catalog)");
    assert!(!run.stdout.contains('\x1b'), "no escape codes when not on a terminal");
}

#[test]
fn models_with_a_bad_file_is_an_actionable_error() {
    let cli = Cli::new();
    let run = cli.run(&["models", "--catalog-file", s(&cli.path("missing.json"))]).failed();
    assert!(run.stderr.contains("cannot read catalog file"), "{}", run.stderr);
    let bad = cli.write("bad.json", r#"{"nothing": "here"}"#);
    let run = cli.run(&["models", "--catalog-file", s(&bad)]).failed();
    assert!(run.stderr.contains("is not a /models response"), "{}", run.stderr);
}

const TOOLS_REQUEST: &str = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"weather?"}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}"#;

#[test]
fn explain_json_on_both_shapes() {
    let cli = Cli::new();
    let req = cli.write("request.json", TOOLS_REQUEST);
    for file in catalog_files(&cli) {
        let run = cli.run(&["explain", "--json", "--seed", "7", "--catalog-file", s(&file), s(&req)]).ok();
        let v = run.json();
        assert_eq!(v["seed"], json!("7"));
        let requirements: Vec<&str> =
            v["requirements"].as_array().expect("array").iter().filter_map(Value::as_str).collect();
        assert!(requirements.contains(&"tools") && requirements.contains(&"text output"), "{requirements:?}");
        assert_eq!(ids(&v["candidates"]), ["b/vision:free", "d/future:free"]);
        let rejected: Vec<(String, Vec<String>)> = v["rejected"]
            .as_array()
            .expect("array")
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().expect("id").to_owned(),
                    serde_json::from_value(r["reasons"].clone()).expect("reasons"),
                )
            })
            .collect();
        assert_eq!(
            rejected,
            [
                ("a/text:free".to_owned(), vec!["no tools".to_owned()]),
                ("c/struct:free".to_owned(), vec!["no tools".to_owned()])
            ]
        );
        assert_eq!(v["not_free"], json!(4), "expired, paid, non-variant and router models");
        assert_eq!(v["free_models"], json!(4));
        let pick = v["pick"].as_str().expect("a pick");
        assert!(["b/vision:free", "d/future:free"].contains(&pick), "{pick}");
        assert_eq!(v["cooling"], json!([]));
        assert!(v.get("error").is_none());
    }
}

/// Claude Code's shape: a Claude id, system blocks, a tool beside a server tool.
const MESSAGES_REQUEST: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,
    "system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral"}}],
    "messages":[{"role":"user","content":[{"type":"text","text":"weather?"}]}],
    "tools":[{"name":"get_weather","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}]}"#;

#[test]
fn explain_reads_a_messages_body_as_the_server_does() {
    let cli = Cli::new();
    let [file, _] = catalog_files(&cli);
    let req = cli.write("messages.json", MESSAGES_REQUEST);
    let v =
        cli.run(&["explain", "--json", "--messages", "--seed", "7", "--catalog-file", s(&file), s(&req)]).ok().json();
    let requirements: Vec<&str> =
        v["requirements"].as_array().expect("array").iter().filter_map(Value::as_str).collect();
    assert!(requirements.contains(&"tools"), "{requirements:?}");
    assert_eq!(
        ids(&v["candidates"]),
        ["b/vision:free", "d/future:free"],
        "the Claude id is served from the free models"
    );
    // Without the flag it is read as a chat body, whose Claude id no free model has; with
    // Claude ids refused, the error names the setting.
    let run = cli.run(&["explain", "--catalog-file", s(&file), s(&req)]).failed();
    assert!(run.stderr.contains("`claude-sonnet-4-5` is not in the catalog"), "{}", run.stderr);
    let mut refusing = cli.command(&["explain", "--messages", "--catalog-file", s(&file), s(&req)]);
    refusing.env("ROUTER_MESSAGES_SERVE_CLAUDE_IDS", "false");
    let run = to_run(refusing.output().expect("run router-cli")).failed();
    assert!(run.stderr.contains("messages_serve_claude_ids"), "{}", run.stderr);
}

#[test]
fn explain_pick_follows_the_seed_and_reads_stdin() {
    let cli = Cli::new();
    let [file, _] = catalog_files(&cli);
    let body = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let mut picks = std::collections::BTreeSet::new();
    for seed in 0..16u64 {
        let seed = seed.to_string();
        let args = ["explain", "--json", "--seed", &seed, "--catalog-file", s(&file), "-"];
        let first = cli.run_stdin(&args, body).ok().json();
        let again = cli.run_stdin(&args, body).ok().json();
        assert_eq!(first["pick"], again["pick"], "same seed, same pick");
        assert_eq!(ids(&first["candidates"]), FREE_IDS);
        picks.insert(first["pick"].as_str().expect("pick").to_owned());
    }
    assert!(picks.len() > 1, "16 seeds all picked {picks:?}");
}

#[test]
fn explain_text_and_no_candidate() {
    let cli = Cli::new();
    let [file, _] = catalog_files(&cli);
    let req = cli.write("request.json", TOOLS_REQUEST);
    let run = cli.run(&["explain", "--seed", "3", "--catalog-file", s(&file), s(&req)]).ok();
    assert!(run.stdout.contains("requirements: text output, tools"), "{}", run.stdout);
    assert!(run.stdout.contains("candidates: 2 of 4 free models"), "{}", run.stdout);
    assert!(run.stdout.contains("a/text:free\tno tools"), "{}", run.stdout);
    assert!(run.stdout.contains("pick (seed 3): "), "{}", run.stdout);

    // Image input + structured outputs: no free model has both.
    let body = r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}],
        "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}"#;
    let req = cli.write("impossible.json", body);
    let run = cli.run(&["explain", "--json", "--catalog-file", s(&file), s(&req)]).failed();
    assert!(
        run.stderr.contains("no free model supports: image input + structured outputs (of 4 free models: image input removed 3, structured outputs removed 3)"),
        "{}",
        run.stderr
    );
    let v = run.json();
    assert_eq!(v["candidates"], json!([]));
    assert_eq!(v["pick"], Value::Null);
    assert_eq!(ids(&v["rejected"]), FREE_IDS);
    assert_eq!(v["rejected"][1]["reasons"], json!(["no structured outputs"]));
    assert_eq!(v["error"]["metadata"]["error_type"], json!("no_free_model"));

    let run = cli.run(&["explain", "--catalog-file", s(&file), s(&cli.write("x.json", "{not json"))]).failed();
    assert!(
        run.stderr.contains("is not a chat-completion request") && run.stderr.contains("not valid json"),
        "{}",
        run.stderr
    );
    let paid = cli.write("paid.json", r#"{"model":"f/paid","messages":[{"role":"user","content":"hi"}]}"#);
    let run = cli.run(&["explain", "--catalog-file", s(&file), s(&paid)]).failed();
    assert!(run.stderr.contains("model `f/paid` is not free"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_catalog_then_cache_then_embedded() {
    let fake = FakeUpstream::start().await;
    fake.set_models(models_json(&fixture_models()).to_string());
    let cli = Cli::new().upstream(&fake);

    let v = cli.run_async(&["models", "--json"]).await.ok().json();
    assert_eq!(v["catalog"]["source"]["kind"], json!("live"));
    assert_eq!(ids(&v["models"]), FREE_IDS);
    assert_eq!(fake.models_fetches(), 1);
    assert!(cli.path("catalog.json").exists(), "a live fetch fills the disk cache");

    let show = cli.run_async(&["catalog", "show", "--json"]).await.ok().json();
    assert_eq!(show["catalog"]["source"]["kind"], json!("disk_cache"));
    assert_eq!(show["catalog"]["free_models"], json!(4));
    assert_eq!(fake.models_fetches(), 1, "show does not fetch");

    // Upstream breaks: the disk cache is shown, and the user is told.
    fake.set_models_status(500);
    let run = cli.run_async(&["models", "--json"]).await.ok();
    assert!(
        run.stderr.contains("could not fetch the live catalog") && run.stderr.contains("disk cache"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json()["catalog"]["source"]["kind"], json!("disk_cache"));
    assert_eq!(ids(&run.json()["models"]), FREE_IDS);

    // No cache either: the embedded catalog, said to be no live data.
    std::fs::remove_file(cli.path("catalog.json")).expect("remove cache");
    let run = cli.run_async(&["models"]).await.ok();
    assert!(run.stderr.contains("could not fetch the live catalog"), "{}", run.stderr);
    assert!(run.stdout.starts_with("# catalog: embedded snapshot of"), "{}", run.stdout);
    assert!(run.stdout.contains("not live data"));
    let run = cli.run_async(&["models", "--offline", "--json"]).await.ok();
    assert_eq!(run.json()["catalog"]["source"]["kind"], json!("embedded"));
    assert!(run.stderr.is_empty(), "offline is not a failure: {}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_refresh_saves_and_reports() {
    let fake = FakeUpstream::start().await;
    fake.set_models(models_json(&fixture_models()).to_string());
    let cli = Cli::new().upstream(&fake);
    let run = cli.run_async(&["catalog", "refresh"]).await.ok();
    assert!(run.stdout.starts_with("fetched 8 models (4 free) from http://127.0.0.1:"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("saved to {}", cli.path("catalog.json").display())), "{}", run.stdout);
    let show = cli.run_async(&["catalog", "show"]).await.ok();
    assert!(show.stdout.starts_with("source: disk cache ("), "{}", show.stdout);
    assert!(show.stdout.contains("models: 8\nfree models: 4\n"), "{}", show.stdout);
    let v = cli.run_async(&["catalog", "refresh", "--json"]).await.ok().json();
    assert_eq!((v["refresh"]["models"].clone(), v["catalog"]["free_models"].clone()), (json!(8), json!(4)));

    fake.set_models_status(503);
    let run = cli.run_async(&["catalog", "refresh"]).await.failed();
    assert!(run.stderr.contains("could not refresh the catalog") && run.stderr.contains("503"), "{}", run.stderr);
}

/// Two free models, so that fallbacks are easy to see.
fn two_models(fake: &FakeUpstream) {
    fake.set_models(
        models_json(&[FakeModel::free("x/one:free").vision().structured(), FakeModel::free("y/two:free")]).to_string(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_whole_answer() {
    let fake = FakeUpstream::start().await;
    two_models(&fake);
    let cli = Cli::new().upstream(&fake).key();
    let run = cli.run_async(&["chat", "--seed", "1", "what", "is", "up"]).await.ok();
    let model = fake.requests()[0].model.clone();
    assert_eq!(run.stdout, format!("hello from {model}\n"));
    assert!(run.stderr.contains(&format!("answered by {model} after 1 attempt (seed 1)")), "{}", run.stderr);
    let sent = &fake.requests()[0];
    assert_eq!(sent.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(sent.body["messages"], json!([{"role": "user", "content": "what is up"}]));
    assert!(!sent.stream);

    // The same seed picks the same model; explain predicts it.
    let again = cli.run_async(&["chat", "--seed", "1", "hi"]).await.ok();
    assert!(again.stderr.contains(&format!("answered by {model} ")), "{}", again.stderr);
    let req = cli.write("req.json", r#"{"messages":[{"role":"user","content":"hi"}]}"#);
    let v = cli.run_async(&["explain", "--json", "--seed", "1", s(&req)]).await.ok().json();
    assert_eq!(v["pick"], json!(model));
    assert_eq!(v["quota"]["day_used"], json!(2), "quota counts persist across runs");

    let json_out = cli.run_async(&["chat", "--json", "--model", "y/two:free", "hi"]).await.ok().json();
    assert_eq!(json_out["model"], json!("y/two:free"));
    assert_eq!(json_out["choices"][0]["message"]["content"], json!("hello from y/two:free"));
}

/// The CLI reads the server's settings file: a daily quota set there stops `chat` as it
/// stops the server, counted in the same state file across runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_honours_the_quota_in_the_shared_settings_file() {
    let fake = FakeUpstream::start().await;
    two_models(&fake);
    let cli = Cli::new().upstream(&fake).key();
    let config = cli.write("router.toml", "per_day = 1\nmax_attempts = 2\n");
    cli.run_async(&["--config", s(&config), "chat", "hi"]).await.ok();
    let refused = cli.run_async(&["--config", s(&config), "chat", "hi"]).await.failed();
    assert!(refused.stderr.contains("limit of 1 requests per day"), "{}", refused.stderr);
    assert_eq!(fake.requests().len(), 1, "the second run sent nothing upstream");
    // The environment and flags layer over the file, as for the server.
    let flag = cli.run_async(&["--config", s(&config), "--per-day", "0", "chat", "hi"]).await.ok();
    assert!(flag.stderr.contains("answered by"), "{}", flag.stderr);
    let bad = cli.run_async(&["--config", s(&cli.write("bad.toml", "per_dya = 1")), "chat", "hi"]).await.failed();
    assert!(bad.stderr.contains("per_dya"), "the unknown key is named: {}", bad.stderr);
}

async fn chat_with(cli: &Cli, config: &Path, model: &str) -> Run {
    cli.run_async(&["--config", s(config), "chat", "--model", model, "hi"]).await
}

/// `chat` fetches the catalog again once its disk cache is older than the settings
/// file's `refresh_interval_secs`, as the server's refresh loop would have: a model
/// upstream added since is routed to. With the default interval it is not fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_honours_the_refresh_interval_in_the_shared_settings_file() {
    let fake = FakeUpstream::start().await;
    two_models(&fake);
    let cli = Cli::new().upstream(&fake).key();
    let config = cli.write("router.toml", "refresh_interval_secs = 60\n");
    chat_with(&cli, &config, "y/two:free").await.ok();
    assert_eq!(fake.models_fetches(), 1, "no disk cache yet: fetched");

    // Upstream lists a new model; within the interval the cache is used as it is.
    fake.set_models(models_json(&[FakeModel::free("y/two:free"), FakeModel::free("z/new:free")]).to_string());
    let stale = chat_with(&cli, &config, "z/new:free").await.failed();
    assert!(stale.stderr.contains("not in the catalog"), "{}", stale.stderr);
    assert_eq!(fake.models_fetches(), 1, "a cache younger than the interval is not fetched again");

    // Past the interval (the cache made older, not waited for) the catalog is fetched
    // again, and the new model answers.
    cli.age_the_cache(Duration::from_secs(61));
    let fresh = chat_with(&cli, &config, "z/new:free").await.ok();
    assert!(fresh.stderr.contains("answered by z/new:free"), "{}", fresh.stderr);
    assert_eq!(fake.models_fetches(), 2);

    // The same age with the default interval (600 s): no fetch, the new model unknown.
    fake.set_models(models_json(&[FakeModel::free("y/two:free"), FakeModel::free("w/newer:free")]).to_string());
    cli.age_the_cache(Duration::from_secs(61));
    let default = cli.run_async(&["chat", "--model", "w/newer:free", "hi"]).await.failed();
    assert!(default.stderr.contains("not in the catalog"), "{}", default.stderr);
    assert_eq!(fake.models_fetches(), 2, "the default interval has not passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streamed() {
    let fake = FakeUpstream::start().await;
    two_models(&fake);
    let cli = Cli::new().upstream(&fake).key();
    let run = cli.run_async(&["chat", "--stream", "--model", "x/one:free", "--system", "be brief", "hi"]).await.ok();
    assert_eq!(run.stdout, "hello from x/one:free\n");
    assert!(run.stderr.contains("answered by x/one:free after 1 attempt"), "{}", run.stderr);
    let sent = &fake.requests()[0];
    assert!(sent.stream);
    assert_eq!(sent.body["stream"], json!(true));
    assert_eq!(sent.body["messages"][0], json!({"role": "system", "content": "be brief"}));

    fake.set_behaviour("x/one:free", Behaviour::SlowStream { chunks: 3, gap: std::time::Duration::from_millis(20) });
    let run = cli.run_async(&["chat", "--stream", "--model", "x/one:free", "count"]).await.ok();
    assert_eq!(run.stdout, "tok0 tok1 tok2 \n");

    fake.set_behaviour("x/one:free", Behaviour::MidStreamError);
    let run = cli.run_async(&["chat", "--stream", "--model", "x/one:free", "hi"]).await.failed();
    assert!(run.stderr.contains("the stream broke off"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_falls_back_and_remembers_the_cooldown() {
    let fake = FakeUpstream::start().await;
    two_models(&fake);
    fake.set_behaviour("x/one:free", Behaviour::RateLimited { retry_after: Some(600) });
    let cli = Cli::new().upstream(&fake).key();
    // Seeds until one picks x/one first: y/two answers after x/one's 429.
    let mut fell_back = false;
    for seed in 0..32u64 {
        let run = cli.run_async(&["chat", "--seed", &seed.to_string(), "hi"]).await.ok();
        assert_eq!(run.stdout, "hello from y/two:free\n");
        if fake.calls("x/one:free") == 1 {
            assert!(
                run.stderr.contains("answered by y/two:free after 2 attempts (failed: x/one:free: rate_limited_model)"),
                "{}",
                run.stderr
            );
            fell_back = true;
            break;
        }
        assert!(run.stderr.contains("answered by y/two:free after 1 attempt "), "{}", run.stderr);
    }
    assert!(fell_back, "no seed in 0..32 picked x/one first");
    // The cooldown is saved: later runs do not ask x/one again, whatever the seed.
    for seed in ["1", "2", "3", "4"] {
        let run = cli.run_async(&["chat", "--seed", seed, "hi"]).await.ok();
        assert!(run.stderr.contains("answered by y/two:free after 1 attempt "), "{}", run.stderr);
    }
    assert_eq!(fake.calls("x/one:free"), 1);

    let req = cli.write("req.json", r#"{"messages":[{"role":"user","content":"hi"}]}"#);
    let v = cli.run_async(&["explain", "--json", "--seed", "1", s(&req)]).await.ok().json();
    assert_eq!(v["cooling"][0]["id"], json!("x/one:free"));
    assert_eq!(v["cooling"][0]["cause"], json!("rate limited"));
    assert_eq!(v["pick"], json!("y/two:free"));
    let text = cli.run_async(&["explain", "--seed", "1", s(&req)]).await.ok();
    assert!(text.stdout.contains("cooling down: 1\n  x/one:free  rate limited until "), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sends_images_and_schemas() {
    let fake = FakeUpstream::start().await;
    two_models(&fake);
    let cli = Cli::new().upstream(&fake).key();
    let png = cli.path("dot.png");
    std::fs::write(&png, [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]).expect("write png");
    let schema = cli.write("answer.json", r#"{"type":"object","properties":{"n":{"type":"integer"}}}"#);
    let run = cli
        .run_async(&[
            "chat",
            "--image",
            s(&png),
            "--image",
            "https://example.com/a.jpg",
            "--json-schema",
            s(&schema),
            "what?",
        ])
        .await
        .ok();
    // Only x/one has image input and structured outputs.
    assert!(run.stderr.contains("answered by x/one:free after 1 attempt"), "{}", run.stderr);
    let body = &fake.requests()[0].body;
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        ])
    );
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_errors_are_actionable() {
    let fake = FakeUpstream::start().await;
    two_models(&fake);

    let no_key = Cli::new().upstream(&fake);
    let run = no_key.run_async(&["chat", "hi"]).await.failed();
    assert!(run.stderr.contains("OPENROUTER_API_KEY is not set"), "{}", run.stderr);
    assert_eq!(fake.total_calls(), 0);

    let cli = Cli::new().upstream(&fake).key();
    let png = cli.path("dot.png");
    std::fs::write(&png, [0x89, b'P', b'N', b'G']).expect("write png");
    let run = cli.run_async(&["chat", "--image", s(&png), "--reasoning-is-not-a-flag", "hi"]).await;
    assert_eq!(run.code, Some(2), "usage error: {}", run.stderr);
    let run = cli.run_async(&["chat", "--model", "y/two:free", "--image", s(&png), "hi"]).await.failed();
    assert!(run.stderr.contains("`y/two:free` cannot serve this request: no image input"), "{}", run.stderr);
    let run = cli.run_async(&["chat", "--model", "z/unknown:free", "hi"]).await.failed();
    assert!(run.stderr.contains("not in the catalog") && run.stderr.contains("router-cli models"), "{}", run.stderr);

    fake.set_default_behaviour(Behaviour::Status {
        status: 401,
        body: r#"{"error":{"code":401,"message":"User not found."}}"#.into(),
    });
    let run = cli.run_async(&["chat", "hi"]).await.failed();
    assert!(run.stderr.contains("check OPENROUTER_API_KEY"), "{}", run.stderr);
    assert_eq!(fake.total_calls(), 1, "an auth failure is not retried on another model");

    // No network: nothing listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let [file, _] = catalog_files(&cli);
    let mut offline = Cli::new().key();
    offline.base_url = Some(format!("http://127.0.0.1:{port}/api/v1"));
    let run = offline.run_async(&["chat", "--catalog-file", s(&file), "hi"]).await.failed();
    assert!(run.stderr.contains("could not reach http://127.0.0.1:"), "{}", run.stderr);
}
