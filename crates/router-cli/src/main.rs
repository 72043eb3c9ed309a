//! `router-cli`: see the free pool, explain a routing decision, chat from the terminal.
//! The router is composed by `router_settings::build`, as the server's is, with no server.

mod args;
mod catalog;
mod chat;
mod explain;
mod models;
mod output;
mod settings;

use anyhow::{Context, Result, bail};
use args::{CatalogCommand, ChatArgs, Cli, Command, ExplainArgs, ModelsArgs};
use catalog::{Env, Fetch};
use clap::{CommandFactory, FromArgMatches};
use output::Style;
use router_core::{Body, Capability, ChatRequest, ErrorKind, RouteError, RouteReport};
use router_settings::refreshes::{Outcome, Refreshed};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

/// The command line: the subcommands and their flags, and one flag per shared setting.
fn command() -> clap::Command {
    settings::FLAGS.add_to(Cli::command())
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &matches)) {
        Ok(code) => code,
        // The reader went away (`router-cli models | head`): not an error.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "error" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

async fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<ExitCode> {
    let g = cli.global;
    let settings = settings::FLAGS.load(matches)?;
    let temp = || std::env::temp_dir().join(router_settings::APP_DIR);
    let env = Env {
        base_url: settings.openrouter_base_url.clone(),
        api_key: settings.openrouter_api_key.clone(),
        cache_path: g
            .cache_path
            .or_else(|| settings.cache_path())
            .unwrap_or_else(|| temp().join(router_settings::CACHE_FILE)),
        state_path: g
            .state_path
            .or_else(|| settings.state_path())
            .unwrap_or_else(|| temp().join(router_settings::STATE_FILE)),
        settings,
    };
    let style = Style::detect();
    match cli.command {
        Command::Models(a) => models(&env, a, style).await,
        Command::Explain(a) => explain(&env, a, style).await,
        Command::Chat(a) => chat(&env, a).await,
        Command::Catalog(CatalogCommand::Refresh { json }) => catalog_refresh(&env, json).await,
        Command::Catalog(CatalogCommand::Show { json }) => catalog_show(&env, json).await,
        Command::Completions { shell } => {
            let mut cmd = command();
            clap_complete::generate(shell, &mut cmd, "router-cli", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn emit_json(v: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    emit(&text)
}

fn fetch_mode(offline: bool) -> Fetch {
    if offline { Fetch::Never } else { Fetch::Always }
}

async fn models(env: &Env, a: ModelsArgs, style: Style) -> Result<ExitCode> {
    let (composed, note) = catalog::load(env, a.source.catalog_file.as_deref(), fetch_mode(a.source.offline)).await?;
    let snap = composed.router.catalog();
    if let Some(n) = note {
        eprintln!("warning: {n}");
    }
    let mut caps = router_core::CapSet::EMPTY;
    for (on, c) in [
        (a.vision, Capability::ImageInput),
        (a.tools, Capability::Tools),
        (a.structured, Capability::StructuredOutputs),
        (a.reasoning, Capability::Reasoning),
    ] {
        if on {
            caps.insert(c);
        }
    }
    let filters = models::Filters { caps, min_context: a.min_context };
    let now = env.clock().now();
    let listing = models::listing(&snap, now, &filters);
    if a.json {
        emit_json(&listing)?
    } else {
        emit(&models::render(&listing, style))?
    }
    Ok(ExitCode::SUCCESS)
}

/// A request body from a file or stdin; with `messages`, an Anthropic Messages body
/// translated to chat with the settings' options, as `/v1/messages` does.
fn read_request(arg: &str, messages: Option<&router_dialects::anthropic::Options>) -> Result<ChatRequest> {
    let bytes = if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("cannot read the request from stdin")?;
        buf
    } else {
        std::fs::read(arg).with_context(|| format!("cannot read request {arg}"))?
    };
    let name = if arg == "-" { "stdin" } else { arg };
    if let Some(options) = messages {
        let translated = router_dialects::anthropic::to_chat(&bytes, options)
            .with_context(|| format!("{name} is not a Messages request"))?;
        return ChatRequest::from_slice(&translated.body)
            .with_context(|| format!("{name} is not a Messages request the router can route"));
    }
    ChatRequest::from_slice(&bytes).with_context(|| format!("{name} is not a chat-completion request"))
}

fn seed_or_random(seed: Option<u64>) -> Result<u64> {
    match seed {
        Some(s) => Ok(s),
        None => getrandom::u64().map_err(|e| anyhow::anyhow!("cannot draw a random seed: {e}")),
    }
}

async fn explain(env: &Env, a: ExplainArgs, style: Style) -> Result<ExitCode> {
    let options = router_dialects::anthropic::Options {
        serve_claude_ids: env.settings.messages_serve_claude_ids,
        refuse_server_tools: env.settings.messages_refuse_server_tools,
    };
    let req = read_request(&a.request, a.messages.then_some(&options))?;
    let (composed, note) = catalog::load(env, a.source.catalog_file.as_deref(), fetch_mode(a.source.offline)).await?;
    if let Some(n) = note {
        eprintln!("warning: {n}");
    }
    let seed = seed_or_random(a.seed)?;
    // Explaining sends nothing: the composed router's transports stay unused.
    let e = composed.router.explain(&req, seed)?;
    if a.json {
        emit_json(&serde_json::to_value(&e)?)?;
    } else {
        emit(&explain::render(&e, style))?;
    }
    // A request that no model would serve is a failure for scripts, with the reason.
    if e.pick.is_none() {
        match &e.error {
            Some(err) => eprintln!("error: {err}"),
            None => eprintln!("error: every free model that can serve this request is cooling down"),
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn build_prompt(a: &ChatArgs) -> Result<chat::Prompt> {
    let text = if a.prompt.len() == 1 && a.prompt[0] == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read the prompt from stdin")?;
        s
    } else {
        a.prompt.join(" ")
    };
    if text.trim().is_empty() {
        bail!("the prompt is empty");
    }
    let images = a.image.iter().map(|i| chat::image_url(i)).collect::<Result<Vec<_>>>()?;
    let response_format = a.json_schema.as_deref().map(chat::response_format).transpose()?;
    Ok(chat::Prompt {
        text,
        system: a.system.clone(),
        images,
        response_format,
        model: a.model.clone(),
        stream: a.stream,
        max_tokens: a.max_tokens,
    })
}

/// `model after N attempts (a: rate_limited_model, ...)`, for stderr.
fn attempts_summary(report: &RouteReport) -> String {
    let mut s = output::count(report.attempts.len(), "attempt");
    let failed: Vec<String> =
        report.attempts.iter().filter_map(|a| a.failure.map(|k| format!("{}: {k}", a.model))).collect();
    if !failed.is_empty() {
        s.push_str(&format!(" (failed: {})", failed.join(", ")));
    }
    s
}

/// A routing failure with what the user can do about it.
fn actionable(error: &RouteError, env: &Env) -> String {
    let hint = match error {
        RouteError::Upstream { error: e, .. } => match e.kind {
            ErrorKind::Auth => Some("check OPENROUTER_API_KEY (keys are at https://openrouter.ai/keys)".to_owned()),
            ErrorKind::Connection => {
                Some(format!("could not reach {}: check the network connection or OPENROUTER_BASE_URL", env.base_url))
            }
            ErrorKind::Timeout => Some("the model did not answer in time; try again or pick another --model".into()),
            _ => None,
        },
        RouteError::NoCandidate { .. } => {
            Some("`router-cli explain` shows why each free model was left out; drop an option or use --model".into())
        }
        RouteError::UnknownModel(_) | RouteError::NotFree { .. } => {
            Some("`router-cli models` lists the free models".into())
        }
        _ => None,
    };
    match hint {
        Some(h) => format!("{error}\n  hint: {h}"),
        None => error.to_string(),
    }
}

async fn chat(env: &Env, a: ChatArgs) -> Result<ExitCode> {
    let file = a.source.catalog_file.as_deref();
    let composed = catalog::compose(env, file)?;
    // Without OpenRouter among the providers, its key is neither needed nor sent.
    if composed.key_reader.is_some() && env.api_key.is_none() {
        bail!(
            "OPENROUTER_API_KEY is not set: create a key at https://openrouter.ai/keys and `export OPENROUTER_API_KEY=...`"
        );
    }
    let prompt = build_prompt(&a)?;
    let req = ChatRequest::from_value(chat::body(&prompt)).context("cannot build the chat request")?;
    // The catalog is fetched again once it is older than the refresh interval, as the
    // server's refresh loop would have.
    let fetch =
        if a.source.offline { Fetch::Never } else { Fetch::IfOlderThan(env.settings.refresh_interval_secs.get()) };
    if file.is_none()
        && let Some(n) = catalog::refresh(env, &composed, fetch).await
    {
        eprintln!("warning: {n}");
    }
    let router = &composed.router;
    // The same daily count and limit as the server: upstream's count, and 1,000 a day
    // for a key off the free tier unless the limit is configured.
    composed.adopt_key_tier(&env.settings).await;
    let seed = seed_or_random(a.seed)?;
    let routed = router.route(&req, seed).await;
    let result = match routed {
        Err(failure) => {
            persist(router);
            if !failure.report.attempts.is_empty() {
                eprintln!("tried {}", attempts_summary(&failure.report));
            }
            bail!("{}", actionable(&failure.error, env));
        }
        Ok(routed) => {
            let model = routed.report.model.as_ref().map_or_else(|| "?".to_owned(), ToString::to_string);
            let printed = print_answer(routed.response.body, a.json).await;
            eprintln!("answered by {model} after {} (seed {seed})", attempts_summary(&routed.report));
            printed
        }
    };
    persist(router);
    result.map(|()| ExitCode::SUCCESS)
}

async fn print_answer(body: Body, json: bool) -> Result<()> {
    match body {
        Body::Full(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).context("the answer is not json")?;
            if json {
                emit_json(&v)
            } else {
                let mut text = chat::answer_text(&v)?;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                emit(&text)
            }
        }
        Body::Stream(mut stream) => {
            use futures_util::StreamExt;
            let mut printer = chat::StreamPrinter::default();
            let mut out = std::io::stdout();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| anyhow::anyhow!("the stream broke off: {e}"))?;
                printer.feed(&chunk, &mut out)?;
            }
            printer.finish(&mut out)
        }
    }
}

/// Saves cooldowns and quota counts for the next run; a failure only costs that memory.
fn persist(router: &router_core::Router) {
    if let Err(e) = router.persist() {
        eprintln!("warning: could not save the router state: {e}");
    }
}

/// Fetches every catalog in force once and saves each to its disk cache.
async fn catalog_refresh(env: &Env, json: bool) -> Result<ExitCode> {
    let composed = catalog::compose(env, None)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for c in composed.catalogs.list() {
        match catalog::fetched(c.as_ref()).await {
            Ok(outcome) => done.push((c.as_ref(), outcome)),
            Err(e) => failed.push(format!(
                "could not refresh the catalog of `{}` from {} ({e}): check the network connection or its base URL",
                c.provider(),
                c.models_url()
            )),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    if json {
        let stats = composed.router.catalog().stats(env.clock().now());
        let each: Vec<serde_json::Value> = done.iter().map(|(c, o)| refresh_json(*c, o)).collect();
        let all = Outcome::sum(done.iter().map(|(_, o)| o));
        emit_json(
            &serde_json::json!({ "catalog": stats, "refresh": all, "refreshes": each, "cache_path": env.cache_path }),
        )?;
    } else {
        emit(&done.iter().map(|(c, o)| refresh_text(*c, o)).collect::<String>())?;
    }
    let unsaved: Vec<String> =
        done.iter().filter_map(|(c, o)| o.cache_error.as_ref().map(|e| format!("`{}`: {e}", c.provider()))).collect();
    if !unsaved.is_empty() {
        bail!("the catalog was fetched but not saved: {}", unsaved.join("; "));
    }
    Ok(ExitCode::SUCCESS)
}

/// One catalog's refresh as `catalog refresh --json` lists it.
fn refresh_json(catalog: &dyn Refreshed, outcome: &Outcome) -> serde_json::Value {
    let mut v = serde_json::json!(outcome);
    v["provider"] = catalog.provider().into();
    v["models_url"] = catalog.models_url().into();
    v["cache_path"] = serde_json::json!(catalog.cache_path());
    v
}

/// One catalog's refresh as `catalog refresh` prints it.
fn refresh_text(catalog: &dyn Refreshed, outcome: &Outcome) -> String {
    let mut text = format!(
        "fetched {} models ({} free) from {}: {} added, {} removed\n",
        outcome.models,
        outcome.free_models,
        catalog.models_url(),
        outcome.added.len(),
        outcome.removed.len()
    );
    if outcome.skipped > 0 {
        text.push_str(&format!("skipped {} unreadable entries\n", outcome.skipped));
    }
    if let Some(path) = catalog.cache_path().filter(|_| outcome.cache_error.is_none()) {
        text.push_str(&format!("saved to {}\n", path.display()));
    }
    text
}

async fn catalog_show(env: &Env, json: bool) -> Result<ExitCode> {
    let (composed, _) = catalog::load(env, None, Fetch::Never).await?;
    let stats = composed.router.catalog().stats(env.clock().now());
    if json {
        emit_json(&serde_json::json!({ "catalog": stats, "cache_path": env.cache_path }))?;
    } else {
        let mut text = format!(
            "source: {}\nfetched: {} ({})\nmodels: {}\nfree models: {}\n",
            stats.source,
            stats.fetched_at,
            output::age(Duration::from_secs(stats.age_secs)),
            stats.models,
            stats.free_models,
        );
        if stats.skipped > 0 {
            text.push_str(&format!("skipped entries: {}\n", stats.skipped));
        }
        text.push_str(&format!("cache: {}\n", env.cache_path.display()));
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
