//! The admin API (served only when a key with the `admin` scope is configured): rescans,
//! releases and the status of every model.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::config::CanaryMode;
use crate::error::ApiError;
use crate::release::Release;
use crate::routes::AppState;

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/reload", post(reload))
        .route("/admin/status", get(status))
        .route("/admin/models/{name}/promote", post(promote))
        .route("/admin/models/{name}/rollback", post(rollback))
        .route("/admin/models/{name}/canary", post(canary))
}

/// Body of promote and rollback: the version to make stable (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionBody {
    version: Option<String>,
}

/// Body of a canary call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryBody {
    version: String,
    weight: Option<f64>,
    mode: Option<CanaryMode>,
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_request(format!("the body is not valid: {e}")))
}

async fn reload(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let registry = Arc::clone(&state.registry);
    let report = tokio::task::spawn_blocking(move || registry.reload())
        .await
        .map_err(|_| ApiError::internal("the rescan failed inside the server"))?
        .map_err(|err| ApiError::internal(format!("cannot read the model repository: {}", err.kind())))?;
    Ok(Json(serde_json::json!(report)))
}

fn release_answer(model: &str, release: Release) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "model": model, "release": release }))
}

async fn promote(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: VersionBody = parse(&body)?;
    let release = state.registry.promote(&name, body.version.as_deref()).map_err(ApiError::admin)?;
    Ok(release_answer(&name, release))
}

async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: VersionBody = parse(&body)?;
    let release = state.registry.rollback(&name, body.version.as_deref()).map_err(ApiError::admin)?;
    Ok(release_answer(&name, release))
}

async fn canary(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: CanaryBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid_request(format!(
            "expected {{\"version\": \"X.Y.Z\", \"weight\": 0.1, \"mode\": \"split\"|\"shadow\"}}: {e}"
        ))
    })?;
    let release =
        state.registry.set_canary(&name, &body.version, body.weight, body.mode).map_err(ApiError::admin)?;
    Ok(release_answer(&name, release))
}

/// Every model's release and versions (with their request statistics over the canary
/// window), and what failed to load.
async fn status(State(state): State<AppState>) -> Json<serde_json::Value> {
    let snapshot = state.registry.snapshot();
    let models: Vec<_> = snapshot
        .models
        .values()
        .map(|m| {
            let window = m.config.canary.window_s;
            let versions: Vec<_> = m
                .versions
                .iter()
                .map(|v| {
                    let s = v.stats.summary(window);
                    serde_json::json!({
                        "version": v.version,
                        "loaded_at": v.loaded_at,
                        "window_s": window,
                        "requests": s.count,
                        "errors": s.errors,
                        "p99_ms": s.p99_ms,
                    })
                })
                .collect();
            serde_json::json!({ "name": m.name, "release": m.release(), "versions": versions })
        })
        .collect();
    Json(serde_json::json!({
        "ready": state.registry.ready(),
        "models": models,
        "failures": snapshot.failures,
        "skipped": snapshot.skipped.len(),
    }))
}
