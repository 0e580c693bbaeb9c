//! `ingot-server` binary: parses the command line, loads the repository and serves it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ingot_server::{example_curl, router, serve, Limits, Repository};
use tracing_subscriber::EnvFilter;

/// Repository served when `--models` is not given (relative to the current directory, else to
/// this crate's directory).
const DEFAULT_MODELS: &str = "examples/server/models";
/// Address used when neither `--addr` nor `INGOT_ADDR` is set.
const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Serve a repository of .ingot models over HTTP.
#[derive(Debug, Parser)]
#[command(name = "ingot-server", version)]
struct Args {
    /// Model repository, laid out <name>/<version>/model.ingot
    /// [default: examples/server/models]
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Address to listen on (or set INGOT_ADDR) [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Largest accepted request body, in bytes (larger → 413)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest accepted batch, in rows (larger → 413)
    #[arg(long, value_name = "ROWS", default_value_t = Limits::default().max_batch_rows)]
    max_batch_rows: usize,
    /// Most threads one predict call uses (default: INGOT_NUM_THREADS, else every CPU)
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let models = args.models.clone().unwrap_or_else(default_models_dir);
    let options = ingot::LoadOptions { threads: args.threads.filter(|&t| t > 0), ..Default::default() };
    let repository = match Repository::scan_with(&models, &options) {
        Ok(repository) => repository,
        Err(err) => {
            tracing::error!("{err} (--models DIR picks the repository)");
            return ExitCode::FAILURE;
        }
    };
    let addr = args
        .addr
        .clone()
        .or_else(|| std::env::var("INGOT_ADDR").ok().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let limits = Limits { max_body_bytes: args.max_body_bytes, max_batch_rows: args.max_batch_rows };

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(repository, &addr, limits)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds, prints the address and an example request, and serves until Ctrl-C or SIGTERM.
async fn run(repository: Repository, addr: &str, limits: Limits) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    let local = listener.local_addr()?;
    let versions: usize = repository.models().map(|m| m.versions().len()).sum();
    println!(
        "ingot-server listening on http://{local} ({} model(s), {versions} version(s) from {})",
        repository.len(),
        repository.root().display()
    );
    if let Some(first) = repository.models().next() {
        println!("try:\n  {}", example_curl(local, first));
    }
    serve(listener, router(repository, limits), shutdown_signal()).await?;
    tracing::info!("shut down");
    Ok(())
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
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
