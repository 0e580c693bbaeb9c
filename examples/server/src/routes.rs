//! HTTP routes: health, model listing and metadata, prediction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use ingot::{DenseRows, Input, PredictionRow, Record, Task};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::repository::{ModelEntry, ModelVersion, Repository};

/// Request size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body, in bytes (larger → 413).
    pub max_body_bytes: usize,
    /// Largest accepted batch, in rows (larger → 413).
    pub max_batch_rows: usize,
}

impl Default for Limits {
    /// 8 MiB and 10 000 rows.
    fn default() -> Self {
        Limits { max_body_bytes: 8 * 1024 * 1024, max_batch_rows: 10_000 }
    }
}

/// State shared by all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The loaded models.
    pub repository: Arc<Repository>,
    /// Request size limits.
    pub limits: Limits,
}

/// Builds the application: all routes, JSON fallbacks for unknown routes and methods, the body
/// size limit and request logging.
pub fn router(repository: Repository, limits: Limits) -> Router {
    let state = AppState { repository: Arc::new(repository), limits };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{name}", get(model_info))
        .route("/v1/models/{name}/versions/{version}", get(version_info))
        .route("/v1/models/{name}/predict", post(predict_default))
        .route("/v1/models/{name}/versions/{version}/predict", post(predict_version))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(route_not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Axum's `Json` extractor with its rejections answered in our JSON error shape.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::from_json_rejection(&rejection, state.limits.max_body_bytes)),
        }
    }
}

/// Body of a predict request: exactly one of `records` or `instances`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// Named rows, `[{column: value, …}, …]`.
    #[serde(default)]
    pub records: Option<Vec<Record>>,
    /// Dense numeric rows in signature column order, `[[number, …], …]`.
    #[serde(default)]
    pub instances: Option<Vec<Vec<f64>>>,
}

/// A validated batch, ready for the model.
#[derive(Debug, Clone, PartialEq)]
enum Batch {
    Records(Vec<Record>),
    Dense(DenseRows),
}

impl PredictRequest {
    /// Checks the form and the row limit, and flattens dense rows (all must have the same
    /// length; an empty batch takes the model's width).
    fn into_batch(self, input_width: usize, max_rows: usize) -> Result<Batch, ApiError> {
        let check_rows = |rows: usize| {
            if rows > max_rows {
                Err(ApiError::too_many_rows(rows, max_rows))
            } else {
                Ok(())
            }
        };
        match (self.records, self.instances) {
            (Some(records), None) => {
                check_rows(records.len())?;
                Ok(Batch::Records(records))
            }
            (None, Some(instances)) => {
                check_rows(instances.len())?;
                Ok(Batch::Dense(DenseRows::from_rows("instances", &instances, input_width)?))
            }
            _ => Err(ApiError::invalid_request(
                "send exactly one of {\"records\": [{column: value, …}, …]} or \
                 {\"instances\": [[number, …], …]}",
            )),
        }
    }
}

/// Response of a predict request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictResponse {
    /// Model name.
    pub model: String,
    /// Version that answered.
    pub version: String,
    /// One item per input row, in input order.
    pub predictions: Vec<PredictionRow>,
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn list_models(State(state): State<AppState>) -> Json<serde_json::Value> {
    let models: Vec<_> = state
        .repository
        .models()
        .map(|entry| {
            serde_json::json!({
                "name": entry.name(),
                "versions": entry.version_names(),
                "default_version": entry.default_version().version,
            })
        })
        .collect();
    Json(serde_json::json!({ "models": models }))
}

fn find_model<'a>(state: &'a AppState, name: &str) -> Result<&'a ModelEntry, ApiError> {
    state.repository.get(name).ok_or_else(|| ApiError::model_not_found(name))
}

fn find_version<'a>(entry: &'a ModelEntry, version: &str) -> Result<&'a ModelVersion, ApiError> {
    entry
        .version(version)
        .ok_or_else(|| ApiError::version_not_found(entry.name(), version, &entry.version_names()))
}

/// Metadata of one version: model card, signature, task, classes or targets, a sample input.
fn describe(entry: &ModelEntry, v: &ModelVersion) -> serde_json::Value {
    let model = &v.model;
    let task = match model.task() {
        Task::Classifier => "classifier",
        Task::Regressor => "regressor",
        Task::Embedding => "embedding",
        Task::Scores => "scores",
    };
    let mut out = serde_json::json!({
        "name": entry.name(),
        "version": v.version,
        "default_version": entry.default_version().version,
        "versions": entry.version_names(),
        "model": model.metadata(),
        "signature": model.signature(),
        "input_width": model.input_width(),
        "task": task,
    });
    if let Some(classes) = model.classes() {
        out["classes"] = serde_json::json!(classes);
    }
    if let Some(targets) = model.targets() {
        out["targets"] = serde_json::json!(targets);
    }
    if let Some(reference) = model.manifest().reference.as_ref().filter(|r| !r.sample.is_empty()) {
        out["sample"] = serde_json::json!(reference.sample);
    }
    out
}

async fn model_info(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = find_model(&state, &name)?;
    Ok(Json(describe(entry, entry.default_version())))
}

async fn version_info(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = find_model(&state, &name)?;
    Ok(Json(describe(entry, find_version(entry, &version)?)))
}

async fn predict_default(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PredictRequest>,
) -> Result<Json<PredictResponse>, ApiError> {
    let entry = find_model(&state, &name)?;
    let version = entry.default_version().clone();
    predict(&state, name, version, request).await
}

async fn predict_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    ApiJson(request): ApiJson<PredictRequest>,
) -> Result<Json<PredictResponse>, ApiError> {
    let entry = find_model(&state, &name)?;
    let version = find_version(entry, &version)?.clone();
    predict(&state, name, version, request).await
}

/// Validates the batch, then runs the model and the row conversion on the blocking pool.
async fn predict(
    state: &AppState,
    name: String,
    version: ModelVersion,
    request: PredictRequest,
) -> Result<Json<PredictResponse>, ApiError> {
    let model = Arc::clone(&version.model);
    let batch = request.into_batch(model.input_width(), state.limits.max_batch_rows)?;
    let predictions = tokio::task::spawn_blocking(move || {
        let prediction = match &batch {
            Batch::Records(records) => model.predict_records(records)?,
            Batch::Dense(rows) => model.predict(Input::Dense(rows.as_dense()))?,
        };
        Ok::<_, ingot::Error>(prediction.to_rows())
    })
    .await
    .map_err(|err| ApiError::internal(format!("prediction task failed: {err}")))??;
    Ok(Json(PredictResponse { model: name, version: version.version, predictions }))
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "NotFound",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Logs method, path, status and latency of every request.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = format_args!("{:.2}", start.elapsed().as_secs_f64() * 1e3),
        "request"
    );
    response
}

/// A copy-paste `curl` command that predicts with the default version of `entry` on a server
/// listening on `addr`: one row from the bundle's reference sample, or a dense row of zeros
/// when the bundle has no sample. The JSON is quoted for POSIX shells.
pub fn example_curl(addr: SocketAddr, entry: &ModelEntry) -> String {
    let model = &entry.default_version().model;
    let body = match model.manifest().reference.as_ref().and_then(|r| r.sample.first()) {
        Some(record) => serde_json::json!({ "records": [record] }),
        None => serde_json::json!({ "instances": [vec![0.0f64; model.input_width()]] }),
    };
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    };
    format!(
        "curl -s -X POST http://{host}/v1/models/{}/predict -H 'content-type: application/json' -d {}",
        entry.name(),
        shell_quote(&body.to_string())
    )
}

/// Quotes `s` in single quotes for a POSIX shell (`'` becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
