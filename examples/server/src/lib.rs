//! `ingot-server`: a minimal HTTP server for a repository of `.ingot` models.
//!
//! The repository is a directory laid out `<name>/<version>/model.ingot`; every version is loaded
//! at start and the highest semantic version of each model is its default.
//!
//! | Route | |
//! |---|---|
//! | `GET /healthz` | `{"status":"ok"}` |
//! | `GET /v1/models` | `{"models":[{"name", "versions", "default_version"}]}` |
//! | `GET /v1/models/{name}` | model card, signature and versions of the default version |
//! | `GET /v1/models/{name}/versions/{version}` | the same for one version |
//! | `POST /v1/models/{name}/predict` | predict with the default version |
//! | `POST /v1/models/{name}/versions/{version}/predict` | predict with one version |
//!
//! A predict body is `{"records": [{column: value, …}, …]}` or `{"instances": [[number, …], …]}`
//! (columns in signature order); the answer is `{"model", "version", "predictions": [...]}`.
//! Errors are `{"error": {"code", "message"}}`.

pub mod error;
pub mod repository;
pub mod routes;

use std::future::Future;

pub use error::ApiError;
pub use repository::{ModelEntry, ModelVersion, Repository, RepositoryError};
pub use routes::{example_curl, router, Limits};

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
