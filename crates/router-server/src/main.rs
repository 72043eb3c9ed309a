//! `router-server`: parses the configuration, builds the adapters and the router,
//! serves until SIGINT/SIGTERM, and saves the resilience state on the way out.

use anyhow::Context;
use router_server::config::Loaded;
use router_server::{Config, ConfigError, LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc with its background threads: after a burst of thousands of streams, freed
/// memory goes back to the system within seconds (its decay time), where glibc's malloc
/// kept nearly all of it (see README, Limits).
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let Loaded { config, check_config } = match router_server::config::load() {
        Ok(l) => l,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("router-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if check_config {
        return check(&config);
    }
    // Before any thread exists: see `fd_limits::prepare`.
    let fds = fd_limits::prepare();
    init_tracing(config.log_format);
    tracing::debug!(soft_limit = ?fds.soft, table = ?fds.table, "open files");
    match serve(config, shards()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "router-server stopped");
            eprintln!("router-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How many single-threaded runtimes serve: `ROUTER_WORKER_THREADS`, else one per core.
/// One runtime per core measured better than one work-stealing runtime over all cores:
/// a proxied request hops between the client and the upstream connection, and on the
/// work-stealing runtime each hop woke the other worker (see docs/performance.md).
fn shards() -> usize {
    std::env::var("ROUTER_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
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
    // A log line that cannot be written (stderr closed: a supervisor's pipe gone) is
    // lost, not reported with `eprintln!`, which would panic and take the server down.
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Serves on `shards` threads, each with its own single-threaded runtime accepting on
/// the same listening socket; shard 0 (this thread) also runs the background tasks and
/// watches for the shutdown signal, which it passes on to the others.
fn serve(config: Config, shards: usize) -> anyhow::Result<()> {
    let rt = runtime()?;
    let server = router_server::build_sharded(&config, shards)?;
    let listener = first_listener(&rt, &config)?;
    // The others listen on the same port (it may have been chosen by the system).
    let addr = listener.local_addr().unwrap_or(config.listen);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut others = Vec::new();
    for index in 1..shards {
        others.push(spawn_shard(index, addr, &server, &config, stop_rx.clone())?);
    }
    let result = rt.block_on(serve_first(listener, &server, &config, shards, stop_tx));
    join_shards(others);
    match server.router.persist() {
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot save the resilience state at shutdown"),
    }
    result
}

/// Shard 0's listening socket, registered with `rt` (the runtime that will drive it).
fn first_listener(rt: &tokio::runtime::Runtime, config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    // The shards share the port through SO_REUSEPORT, which would also let a second
    // server join a port that is already taken. A plain bind first keeps "address in
    // use" an error: it fails while any socket, reuse-port or not, holds the port.
    if config.listen.port() != 0 {
        drop(
            std::net::TcpListener::bind(config.listen)
                .with_context(|| format!("cannot listen on {}", config.listen))?,
        );
    }
    let _entered = rt.enter();
    listen(config.listen).with_context(|| format!("cannot listen on {}", config.listen))
}

/// Starts shard `index` on its own thread and runtime, listening on `addr` too; returns
/// once it listens (or with why it could not). It serves until `stop` turns true.
fn spawn_shard(
    index: usize,
    addr: std::net::SocketAddr,
    server: &router_server::Server,
    config: &Config,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let app = router_server::app(server.state.clone());
    let grace = config.shutdown_grace_secs.get();
    let limits = router_server::ServeLimits::from_config(config, server.state.metrics.serve.clone());
    let (bound_tx, bound_rx) = std::sync::mpsc::sync_channel::<anyhow::Result<()>>(1);
    let thread =
        std::thread::Builder::new().name(format!("router-shard-{index}")).spawn(move || -> anyhow::Result<()> {
            router_server::shard::enter(index);
            let rt = runtime()?;
            let listener = {
                let _entered = rt.enter();
                listen(addr).with_context(|| format!("cannot listen on {addr} again"))
            };
            let listener = match listener {
                Ok(l) => {
                    let _ = bound_tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return Ok(());
                }
            };
            rt.block_on(async move {
                let signal = async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                };
                router_server::run_with_limits(listener, app, signal, grace, limits).await.context("server error")
            })
        })?;
    bound_rx.recv().context("a serving thread stopped before listening")??;
    Ok(thread)
}

/// Shard 0: the background tasks, then serving until the shutdown signal, which it
/// passes on to the other shards through `stop`.
async fn serve_first(
    listener: tokio::net::TcpListener,
    server: &router_server::Server,
    config: &Config,
    shards: usize,
    stop: tokio::sync::watch::Sender<bool>,
) -> anyhow::Result<()> {
    let background = server.spawn_background(config);
    let stats = server.router.catalog().stats(server.router.now());
    tracing::info!(
        addr = %listener.local_addr().unwrap_or(config.listen),
        catalog = %stats.source,
        free_models = stats.free_models,
        seeded = config.seed.is_some(),
        client_auth = !config.api_keys.is_empty(),
        threads = shards,
        "listening"
    );
    let app = router_server::app(server.state.clone());
    let metrics = server.state.metrics.clone();
    let signal = async move {
        shutdown_signal().await;
        // Event streams never finish on their own: end them, so the grace is for requests.
        metrics.decisions().close();
        let _ = stop.send(true);
    };
    let limits = router_server::ServeLimits::from_config(config, server.state.metrics.serve.clone());
    let result = router_server::run_with_limits(listener, app, signal, config.shutdown_grace_secs.get(), limits).await;
    background.abort();
    result.context("server error")
}

/// Waits for the other shards to stop; their errors are logged, not returned.
fn join_shards(others: Vec<std::thread::JoinHandle<anyhow::Result<()>>>) {
    for thread in others {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "a serving thread stopped with an error"),
            Err(_) => tracing::warn!("a serving thread panicked"),
        }
    }
}

/// A non-blocking listening socket with `SO_REUSEPORT`: one per shard on the same port,
/// and the kernel spreads new connections over them. (Sharing one socket instead left
/// most connections to whichever thread happened to be awake.)
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
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
