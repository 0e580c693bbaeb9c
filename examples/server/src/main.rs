//! `ingot-server` binary: parses the command line, loads the repository and serves it; or, with
//! `--probe` / `--promote` / `--rollback`, acts as a small client of a running server.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ingot_server::{example_curl, router, serve, AppState, Auth, Limits, Metrics, Registry, RegistryOptions};
use tracing_subscriber::EnvFilter;

mod client;

/// A request allocates and frees a few hundred small blocks (JSON keys, records, answers);
/// mimalloc's thread-local free lists do that in about half the instructions of glibc's
/// malloc (callgrind, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Repository served when `--models` is not given (relative to the current directory, else to
/// this crate's directory).
const DEFAULT_MODELS: &str = "examples/server/models";

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line (request ids included).
    Json,
}

/// Serve a repository of .ingot models over HTTP (Ingot REST, KServe V1, Open Inference
/// Protocol V2) and gRPC (V2).
#[derive(Debug, Parser)]
#[command(name = "ingot-server", version)]
#[command(group(clap::ArgGroup::new("release_change").args(["promote", "rollback"])))]
struct Args {
    /// Model repository, laid out <name>/<version>/model.ingot [default: examples/server/models]
    #[arg(long, value_name = "DIR", env = "INGOT_MODELS")]
    models: Option<PathBuf>,
    /// Address to listen on for HTTP
    #[arg(long, value_name = "HOST:PORT", env = "INGOT_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    /// Address to listen on for gRPC (Open Inference Protocol); off unless given
    #[arg(long, value_name = "HOST:PORT", env = "INGOT_GRPC_ADDR")]
    grpc_addr: Option<String>,
    /// API keys, lines `NAME SCOPES SHA256HEX [rate=R] [burst=B]` (also INGOT_API_KEYS, the
    /// same lines separated by `;`); without keys every request is let in and the admin API
    /// is off
    #[arg(long, value_name = "FILE", env = "INGOT_API_KEYS_FILE")]
    api_keys: Option<PathBuf>,
    /// ed25519 public key (`ingot keygen`): only bundles with a valid model.ingot.sig by it
    /// are served
    #[arg(long, value_name = "FILE", env = "INGOT_TRUSTED_KEY")]
    trusted_key: Option<PathBuf>,
    /// Rescan the repository every SECONDS (0: only on SIGHUP and POST /admin/reload)
    #[arg(long, value_name = "SECONDS", env = "INGOT_POLL_INTERVAL", default_value_t = 30)]
    poll_interval: u64,
    /// Largest accepted request body, in bytes (larger → 413)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest accepted batch, in rows (larger → 413)
    #[arg(long, value_name = "ROWS", default_value_t = Limits::default().max_batch_rows)]
    max_batch_rows: usize,
    /// Most threads one predict call uses (default: every CPU)
    #[arg(long, value_name = "N", env = "INGOT_NUM_THREADS")]
    threads: Option<usize>,
    /// Allow cross-origin requests from ORIGIN (repeatable; `*` for any); CORS is off without it
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Log format
    #[arg(long, value_enum, env = "INGOT_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log every request (method, path, status, latency, request id) at info level
    #[arg(long, env = "INGOT_ACCESS_LOG")]
    access_log: bool,
    /// Keep up to N answers for repeated inputs (0: no cache)
    #[arg(long, value_name = "N", env = "INGOT_CACHE_ENTRIES", default_value_t = 0)]
    cache_entries: usize,
    /// Check URL instead of serving: exit 0 when it answers 200 (container health checks)
    #[arg(long, value_name = "URL", conflicts_with_all = ["promote", "rollback"])]
    probe: Option<String>,
    /// Promote MODEL's canary (or the version --to names) on the server at --server, then exit
    #[arg(long, value_name = "MODEL", conflicts_with = "rollback")]
    promote: Option<String>,
    /// Roll MODEL back (end its canary; with --to, make that version stable), then exit
    #[arg(long, value_name = "MODEL")]
    rollback: Option<String>,
    /// Version for --promote / --rollback
    #[arg(long, value_name = "VERSION", requires = "release_change")]
    to: Option<String>,
    /// Server for --promote / --rollback (the admin key is read from INGOT_ADMIN_KEY)
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    server: String,
}

impl Args {
    fn release_change(&self) -> Option<(&'static str, &str)> {
        match (&self.promote, &self.rollback) {
            (Some(model), _) => Some(("promote", model)),
            (_, Some(model)) => Some(("rollback", model)),
            _ => None,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(url) = &args.probe {
        return client::probe(url);
    }
    if let Some((action, model)) = args.release_change() {
        return client::release(&args.server, action, model, args.to.as_deref());
    }
    init_logs(args.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// Reads the keys from `--api-keys` and `INGOT_API_KEYS`.
fn read_keys(file: Option<&Path>) -> Result<Auth, String> {
    let mut text = String::new();
    if let Some(path) = file {
        text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --api-keys {}: {e}", path.display()))?;
    }
    let origin = match (file, std::env::var("INGOT_API_KEYS")) {
        (_, Ok(env)) if !env.trim().is_empty() => {
            text.push('\n');
            text.push_str(&env);
            "--api-keys / INGOT_API_KEYS"
        }
        _ => "--api-keys",
    };
    Auth::parse(&text, origin)
}

/// Loads, binds, prints the address and an example request, and serves until Ctrl-C or
/// SIGTERM, rescanning on the interval, on SIGHUP and on admin calls.
async fn run(args: Args) -> Result<(), String> {
    let auth = read_keys(args.api_keys.as_deref())?;
    let trusted_key = match &args.trusted_key {
        Some(path) => {
            Some(ingot::signing::VerifyingKey::read(path).map_err(|e| format!("--trusted-key: {e}"))?)
        }
        None => None,
    };
    let models = args.models.clone().unwrap_or_else(default_models_dir);
    let options = RegistryOptions {
        load: ingot::LoadOptions { threads: args.threads.filter(|&t| t > 0), ..Default::default() },
        trusted_key,
    };
    let metrics = Arc::new(Metrics::new());
    let registry = tokio::task::spawn_blocking(move || Registry::open(models, options, metrics))
        .await
        .map_err(|e| format!("loading the repository failed: {e}"))?
        .map_err(|e| format!("{e} (--models DIR picks the repository)"))?;
    let registry = Arc::new(registry);
    let limits = Limits { max_body_bytes: args.max_body_bytes, max_batch_rows: args.max_batch_rows };
    let keys = auth.len();
    let mut state = AppState::new(Arc::clone(&registry), limits, auth).with_cache(args.cache_entries);
    state.access_log = args.access_log;
    let mut app = router(state.clone());
    if !args.cors_origins.is_empty() {
        app = app.layer(cors(&args.cors_origins)?);
    }

    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let snapshot = registry.snapshot();
    let versions: usize = snapshot.models.values().map(|m| m.versions.len()).sum();
    let mut banner = format!(
        "ingot-server listening on http://{local} ({} model(s), {versions} version(s) from {}; {keys} API key(s))\n",
        snapshot.models.len(),
        registry.root().display()
    );
    if let Some(first) = snapshot.models.values().next() {
        banner.push_str(&format!("try:\n  {}\n", example_curl(local, first)));
    }
    drop(snapshot);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(background(Arc::clone(&registry), args.poll_interval, stop_rx.clone()));
    let grpc = match &args.grpc_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|err| format!("cannot listen on {addr} (gRPC): {err}"))?;
            println!(
                "gRPC (Open Inference Protocol) on {}",
                listener.local_addr().map_err(|e| e.to_string())?
            );
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(ingot_server::grpc::serve(listener, state, async move {
                let _ = stop.wait_for(|s| *s).await;
            })))
        }
        None => None,
    };
    print_banner(&banner);
    let mut stop = stop_rx;
    let http = serve(listener, app, async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let signal = async {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    let (served, ()) = tokio::join!(http, signal);
    served.map_err(|e| e.to_string())?;
    if let Some(grpc) = grpc {
        grpc.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Prints the start-up lines; a closed standard output (a supervisor that stopped reading) is
/// not an error.
fn print_banner(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn cors(origins: &[String]) -> Result<tower_http::cors::CorsLayer, String> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any);
    if origins.iter().any(|o| o == "*") {
        return Ok(layer.allow_origin(Any));
    }
    let values = origins
        .iter()
        .map(|o| o.parse().map_err(|_| format!("--cors-origin {o}: not a valid origin")))
        .collect::<Result<Vec<axum::http::HeaderValue>, String>>()?;
    Ok(layer.allow_origin(AllowOrigin::list(values)))
}

/// Rescans every `poll` seconds and on SIGHUP; checks canaries every second.
async fn background(registry: Arc<Registry>, poll: u64, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut canaries = tokio::time::interval(Duration::from_secs(1));
    let mut rescan = tokio::time::interval(Duration::from_secs(poll.max(1)));
    rescan.tick().await;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let sighup = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let sighup = std::future::pending::<()>();
        let reason = tokio::select! {
            _ = canaries.tick() => {
                registry.check_canaries();
                continue;
            }
            _ = rescan.tick(), if poll > 0 => "interval",
            () = sighup => "SIGHUP",
            _ = stop.changed() => return,
        };
        let r = Arc::clone(&registry);
        match tokio::task::spawn_blocking(move || r.reload()).await {
            Ok(Ok(report)) if !report.loaded.is_empty() || !report.removed.is_empty() => {
                tracing::info!(reason, loaded = ?report.loaded, removed = ?report.removed, "repository rescanned");
            }
            Ok(Ok(_)) => tracing::debug!(reason, "repository rescanned: no change"),
            Ok(Err(err)) => tracing::error!(reason, "cannot rescan the repository: {err}"),
            Err(err) => tracing::error!(reason, "the rescan failed: {err}"),
        }
    }
}

/// `examples/server/models` if it exists relative to the current directory, else the `models`
/// directory next to this crate's manifest (so `cargo run -p ingot-server` works from anywhere
/// in the workspace).
fn default_models_dir() -> PathBuf {
    let relative = Path::new(DEFAULT_MODELS);
    if relative.is_dir() {
        relative.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
    }
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing accepted requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let args = Args::try_parse_from(["ingot-server", "--rollback", "m", "--to", "1.0.0"]).unwrap();
        assert_eq!(args.release_change(), Some(("rollback", "m")));
        assert!(Args::try_parse_from(["ingot-server", "--to", "1.0.0"]).is_err());
    }
}
