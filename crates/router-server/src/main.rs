//! `router-server`: parses the configuration, builds the adapters and the router,
//! serves until SIGINT/SIGTERM, and saves the resilience state on the way out.

use anyhow::Context;
use router_server::{Config, ConfigError, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("router-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if config.check_config {
        return check(&config);
    }
    init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("router-server: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "router-server stopped");
            eprintln!("router-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--check-config`: the configuration resolves and the adapters can be built from it;
/// nothing is written.
fn check(config: &Config) -> std::process::ExitCode {
    match router_server::compose::validate(config) {
        Ok(warnings) => {
            print!("{}", config.describe());
            for w in warnings {
                println!("# warning: {w}");
            }
            println!("config ok");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("router-server: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = router_server::build(&config)?;
    let background = server.spawn_background(&config);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let stats = server.router.catalog().stats(server.router.now());
    tracing::info!(
        addr = %listener.local_addr().unwrap_or(config.listen),
        catalog = %stats.source,
        free_models = stats.free_models,
        seeded = config.seed.is_some(),
        client_auth = !config.api_keys.is_empty(),
        "listening"
    );
    let app = router_server::app(server.state.clone());
    let result = router_server::run_with_grace(listener, app, shutdown_signal(), config.shutdown_grace).await;
    background.abort();
    match server.router.persist() {
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot save the resilience state at shutdown"),
    }
    result.context("server error")
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
