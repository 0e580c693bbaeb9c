//! `ingot-server`: serves a repository of `.ingot` models over HTTP (the Ingot REST API,
//! KServe V1, the Open Inference Protocol V2) and gRPC (V2), with hot reload, canary and
//! shadow releases with automatic rollback, dynamic batching, API keys and rate limits,
//! Prometheus metrics and input drift. docs/server.md documents every endpoint, flag and
//! configuration key.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ingot_server::{router, AppState, Auth, Limits, Metrics, Registry, RegistryOptions};
//!
//! let registry = Registry::open("models", RegistryOptions::default(), Arc::new(Metrics::new()))?;
//! let app = router(AppState::new(Arc::new(registry), Limits::default(), Auth::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! ingot_server::serve(listener, app, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod auth;
pub mod batcher;
pub mod cache;
pub mod config;
pub mod deployed;
pub mod drift;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod openapi;
pub mod payload;
pub mod registry;
pub mod release;
pub mod repository;
pub mod routes;
pub mod stats;
pub mod v2;

use std::future::Future;

pub use auth::Auth;
pub use config::{CanaryConfig, CanaryMode, Limits, ModelConfig};
pub use error::ApiError;
pub use metrics::Metrics;
pub use payload::Payload;
pub use registry::{Registry, RegistryOptions, RepositoryError};
pub use routes::{example_curl, router, AppState};

/// Serves `app` on `listener` until `shutdown` completes, then finishes the requests already
/// accepted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
