//! The HTTP application: the Ingot REST API and KServe V1 here, the Open Inference Protocol in
//! [`crate::v2`], the admin API in [`crate::admin`]; health, metrics, request ids, keys and
//! logging for all of them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ingot::{DenseRows, Prediction, PredictionRow, Record, Task};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::auth::{presented_key, Auth, Scope};
use crate::batcher::RunError;
use crate::cache::AnswerCache;
use crate::config::Limits;
use crate::deployed::{shadow, Deployed};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::payload::Payload;
use crate::registry::{ModelState, Registry};

/// Header naming the version that answered.
pub const VERSION_HEADER: &str = "x-ingot-version";
/// Header carrying the request id (taken from the request, else generated).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Every route, `METHOD /path` (the OpenAPI document must list them all; a test checks both
/// ways).
pub const ROUTES: &[&str] = &[
    "GET /healthz",
    "GET /v2/health/live",
    "GET /v2/health/ready",
    "GET /openapi.json",
    "GET /metrics",
    "GET /v1/models",
    "GET /v1/models/{name}",
    "POST /v1/models/{name}:predict",
    "GET /v1/models/{name}/versions/{version}",
    "POST /v1/models/{name}/predict",
    "POST /v1/models/{name}/versions/{version}/predict",
    "POST /admin/reload",
    "GET /admin/status",
    "POST /admin/models/{name}/promote",
    "POST /admin/models/{name}/rollback",
    "POST /admin/models/{name}/canary",
    "GET /v2",
    "GET /v2/models/{name}",
    "GET /v2/models/{name}/versions/{version}",
    "GET /v2/models/{name}/ready",
    "GET /v2/models/{name}/versions/{version}/ready",
    "POST /v2/models/{name}/infer",
    "POST /v2/models/{name}/versions/{version}/infer",
    "POST /v2/repository/index",
];
/// Shadow copies allowed in flight at once; more are dropped (and counted).
const SHADOW_SLOTS: usize = 256;

/// State shared by all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The served repository.
    pub registry: Arc<Registry>,
    /// Request size limits.
    pub limits: Limits,
    /// API keys (none: open, admin API off).
    pub auth: Arc<Auth>,
    /// Answers to repeated inputs, when enabled.
    pub cache: Option<Arc<AnswerCache>>,
    /// Log one line per request (method, path, status, latency, request id) at info level;
    /// otherwise at debug level.
    pub access_log: bool,
    shadow_slots: Arc<Semaphore>,
}

/// One answered inference.
#[derive(Debug)]
pub struct Inferred {
    /// The version that answered.
    pub deployed: Arc<Deployed>,
    /// Its answer.
    pub prediction: Prediction,
}

impl AppState {
    /// State over `registry`.
    pub fn new(registry: Arc<Registry>, limits: Limits, auth: Auth) -> AppState {
        AppState {
            registry,
            limits,
            auth: Arc::new(auth),
            cache: None,
            access_log: false,
            shadow_slots: Arc::new(Semaphore::new(SHADOW_SLOTS)),
        }
    }

    /// The same state with a cache of `entries` answers (0: none).
    pub fn with_cache(mut self, entries: usize) -> AppState {
        self.cache = (entries > 0).then(|| Arc::new(AnswerCache::new(entries)));
        self
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.registry.metrics()
    }

    /// A served model by name (404 otherwise).
    pub fn model(&self, name: &str) -> Result<Arc<ModelState>, ApiError> {
        self.registry.snapshot().get(name).cloned().ok_or_else(|| ApiError::model_not_found(name))
    }

    /// A version of `state` by name or alias (404 otherwise).
    pub fn version(state: &ModelState, version: &str) -> Result<Arc<Deployed>, ApiError> {
        state
            .version(version)
            .cloned()
            .ok_or_else(|| ApiError::version_not_found(&state.name, version, &state.version_names()))
    }

    /// Runs `payload` on `model`: on `version` (a version or alias) when given, else on the
    /// version the release picks for `routing_key` (stable, or the canary for its share; a
    /// shadow canary gets a copy). Counts the request under `protocol`.
    pub async fn infer(
        &self,
        protocol: &'static str,
        model: &str,
        version: Option<&str>,
        routing_key: Option<&str>,
        payload: Payload,
    ) -> Result<Inferred, ApiError> {
        let result = self.infer_inner(model, version, routing_key, payload).await;
        match &result {
            Ok(inferred) => inferred.deployed.count_ok(protocol),
            Err((version, err)) => self.metrics().request(model, version, protocol, err.status.as_u16()),
        }
        result.map_err(|(_, err)| err)
    }

    async fn infer_inner(
        &self,
        model: &str,
        version: Option<&str>,
        routing_key: Option<&str>,
        payload: Payload,
    ) -> Result<Inferred, (String, ApiError)> {
        let state = self.model(model).map_err(|e| (String::new(), e))?;
        let (deployed, shadow_to) = match version {
            Some(v) => (Self::version(&state, v).map_err(|e| (String::new(), e))?, None),
            None => state.pick(routing_key),
        };
        let fail = |err: ApiError| (deployed.version.clone(), err.from_version(&deployed.version));
        let rows = payload.rows();
        if rows > self.limits.max_batch_rows {
            return Err(fail(ApiError::too_many_rows(rows, self.limits.max_batch_rows)));
        }
        let cached = self.cache.as_ref().map(|cache| {
            let key = AnswerCache::key(model, &deployed.version, deployed.serial, &payload);
            (cache, key)
        });
        if let Some((cache, key)) = &cached {
            if let Some(prediction) = cache.get(key) {
                self.metrics().cache_hits.inc();
                return Ok(Inferred { deployed, prediction });
            }
            self.metrics().cache_misses.inc();
        }
        let copy = shadow_to.as_ref().map(|_| payload.clone());
        match deployed.run(payload).await {
            Ok(prediction) => {
                if let Some((cache, key)) = cached {
                    cache.put(key, &prediction);
                }
                if let (Some(canary), Some(copy)) = (shadow_to, copy) {
                    self.spawn_shadow(canary, copy, &prediction);
                }
                Ok(Inferred { deployed, prediction })
            }
            Err(RunError::Overloaded) => Err(fail(ApiError::overloaded(model, &deployed.version))),
            Err(RunError::Model(err)) => Err(fail(ApiError::from(err))),
            Err(RunError::Lost) => Err(fail(ApiError::internal("the prediction failed inside the server"))),
        }
    }

    fn spawn_shadow(&self, canary: Arc<Deployed>, payload: Payload, answer: &Prediction) {
        match Arc::clone(&self.shadow_slots).try_acquire_owned() {
            Ok(permit) => {
                let answer = answer.clone();
                tokio::spawn(async move {
                    shadow(canary, payload, answer).await;
                    drop(permit);
                });
            }
            Err(_) => {
                let labels = crate::metrics::VersionLabels {
                    model: canary.name.clone(),
                    version: canary.version.clone(),
                };
                self.metrics().shadow_dropped.get_or_create(&labels).inc();
            }
        }
    }
}

/// Builds the application: every route, JSON fallbacks for unknown routes and methods, the
/// body size limit, API keys by scope, request ids and logging.
pub fn router(state: AppState) -> Router {
    let predict = Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{name}", get(model_info).post(kserve_v1))
        .route("/v1/models/{name}/versions/{version}", get(version_info))
        .route("/v1/models/{name}/predict", post(predict_default))
        .route("/v1/models/{name}/versions/{version}/predict", post(predict_version))
        .merge(crate::v2::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_predict));
    let metrics = Router::new()
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_metrics));
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/v2/health/live", get(healthz))
        .route("/v2/health/ready", get(ready))
        .route("/openapi.json", get(openapi))
        .merge(predict)
        .merge(metrics);
    if state.auth.any_with(Scope::Admin) {
        app = app.merge(
            crate::admin::routes().route_layer(middleware::from_fn_with_state(state.clone(), require_admin)),
        );
    }
    app.method_not_allowed_fallback(method_not_allowed)
        .fallback(route_not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), request_id_and_log))
        .with_state(state)
}

async fn check_scope(state: &AppState, scope: Scope, req: Request, next: Next) -> Response {
    if state.auth.enabled() {
        if let Err(denied) = state.auth.check(presented_key(req.headers()), scope) {
            if matches!(denied, crate::auth::Denied::RateLimited { .. }) {
                state.metrics().rate_limited.inc();
            }
            return in_protocol_shape(req.uri(), ApiError::denied(&denied));
        }
    }
    next.run(req).await
}

async fn require_predict(State(state): State<AppState>, req: Request, next: Next) -> Response {
    check_scope(&state, Scope::Predict, req, next).await
}

async fn require_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    check_scope(&state, Scope::Metrics, req, next).await
}

async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    check_scope(&state, Scope::Admin, req, next).await
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

/// Body of a predict request: exactly one of `records`, `instances` or `texts`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// Named rows, `[{column: value, …}, …]`.
    #[serde(default)]
    pub records: Option<Vec<Record>>,
    /// Dense numeric rows in signature column order, `[[number, …], …]`.
    #[serde(default)]
    pub instances: Option<Vec<Vec<f64>>>,
    /// Strings, for text models.
    #[serde(default)]
    pub texts: Option<Vec<String>>,
}

impl PredictRequest {
    /// The rows, checked for form (all dense rows the same length; an empty list takes the
    /// model's width).
    fn into_payload(self, input_width: usize) -> Result<Payload, ApiError> {
        match (self.records, self.instances, self.texts) {
            (Some(records), None, None) => Ok(Payload::Records(records)),
            (None, Some(instances), None) => {
                Ok(Payload::Dense(DenseRows::from_rows("instances", &instances, input_width)?))
            }
            (None, None, Some(texts)) => Ok(Payload::Texts(texts)),
            _ => Err(ApiError::invalid_request(
                "send exactly one of {\"records\": [{column: value, …}, …]}, \
                 {\"instances\": [[number, …], …]} or {\"texts\": [string, …]}",
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

/// A JSON answer with the `x-ingot-version` header of the version that produced it.
pub fn versioned(version: &str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Ok(value) = HeaderValue::from_str(version) {
        response.headers_mut().insert(HeaderName::from_static(VERSION_HEADER), value);
    }
    response
}

/// The routing key of a request: the value of the model's sticky header, if sent.
pub fn routing_key<'a>(state: &ModelState, headers: &'a HeaderMap) -> Option<&'a str> {
    headers.get(state.config.canary.sticky_header.as_str()).and_then(|v| v.to_str().ok())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.registry.ready() {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        let body = serde_json::json!({ "status": "not ready" });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], crate::openapi::DOCUMENT).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics().encode(),
    )
        .into_response()
}

async fn list_models(State(state): State<AppState>) -> Json<serde_json::Value> {
    let snapshot = state.registry.snapshot();
    let models: Vec<_> = snapshot
        .models
        .values()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "versions": m.version_names(),
                "default_version": m.stable().version,
            })
        })
        .collect();
    Json(serde_json::json!({ "models": models }))
}

/// Metadata of one version: model card, signature, task, classes or targets, a sample input,
/// the release.
fn describe(state: &ModelState, v: &Deployed) -> serde_json::Value {
    let model = v.model();
    let task = model.task().name();
    let mut out = serde_json::json!({
        "name": state.name,
        "version": v.version,
        "ready": true,
        "default_version": state.stable().version,
        "versions": state.version_names(),
        "release": state.release(),
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

async fn model_info(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let model = state.model(&name)?;
    let stable = Arc::clone(model.stable());
    Ok(versioned(&stable.version, Json(describe(&model, &stable))))
}

async fn version_info(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let model = state.model(&name)?;
    let v = AppState::version(&model, &version)?;
    Ok(versioned(&v.version, Json(describe(&model, &v))))
}

async fn predict_default(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PredictRequest>,
) -> Result<Response, ApiError> {
    predict(&state, &name, None, &headers, request).await
}

async fn predict_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PredictRequest>,
) -> Result<Response, ApiError> {
    predict(&state, &name, Some(&version), &headers, request).await
}

async fn predict(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    request: PredictRequest,
) -> Result<Response, ApiError> {
    let model = state.model(name)?;
    let width = model.stable().model().input_width();
    let payload = request.into_payload(width)?;
    let key = routing_key(&model, headers);
    let inferred = state.infer("ingot", name, version, key, payload).await?;
    let version = inferred.deployed.version.clone();
    let body = PredictResponse {
        model: name.to_owned(),
        version: version.clone(),
        predictions: inferred.prediction.to_rows(),
    };
    Ok(versioned(&version, Json(body)))
}

/// KServe V1: `POST /v1/models/{name}:predict` with `{"instances": [...]}`, each instance an
/// object (a record), a list of numbers (a dense row) or a string (a text); the answer is
/// `{"predictions": [...]}` with one label, value, vector or score row per instance.
async fn kserve_v1(
    State(state): State<AppState>,
    Path(name_verb): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let Some(name) = name_verb.strip_suffix(":predict") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route for POST /v1/models/{name_verb} (KServe V1 is POST /v1/models/NAME:predict)"),
        ));
    };
    let model = state.model(name)?;
    let payload = kserve_instances(&body, model.stable().model().input_width())?;
    let key = routing_key(&model, &headers);
    let inferred = state.infer("kserve-v1", name, None, key, payload).await?;
    let predictions: Vec<serde_json::Value> = inferred
        .prediction
        .to_rows()
        .into_iter()
        .map(|row| match row {
            PredictionRow::Class { label, .. } => serde_json::json!(label),
            PredictionRow::Value { value } => serde_json::json!(value),
            PredictionRow::Values { values } => serde_json::json!(values),
            PredictionRow::Embedding { embedding } => serde_json::json!(embedding),
            PredictionRow::Scores { scores } => serde_json::json!(scores),
        })
        .collect();
    let version = inferred.deployed.version.clone();
    Ok(versioned(&version, Json(serde_json::json!({ "predictions": predictions }))))
}

fn kserve_instances(body: &serde_json::Value, width: usize) -> Result<Payload, ApiError> {
    let bad = |m: String| ApiError::invalid_request(m);
    let Some(value @ serde_json::Value::Array(instances)) = body.get("instances") else {
        return Err(bad("KServe V1 expects {\"instances\": [...]}".into()));
    };
    let form = instances.first().map(|first| match first {
        serde_json::Value::Object(_) => 0,
        serde_json::Value::Array(_) => 1,
        serde_json::Value::String(_) => 2,
        _ => 3,
    });
    match form {
        None => Ok(Payload::Dense(DenseRows::from_rows::<Vec<f64>>("instances", &[], width)?)),
        Some(0) => {
            let records: Vec<Record> = Deserialize::deserialize(value).map_err(|e| {
                bad(format!("instances: every instance must be an object of column values: {e}"))
            })?;
            Ok(Payload::Records(records))
        }
        Some(1) => {
            let rows: Vec<Vec<f64>> = Deserialize::deserialize(value)
                .map_err(|e| bad(format!("instances: every instance must be a list of numbers: {e}")))?;
            Ok(Payload::Dense(DenseRows::from_rows("instances", &rows, width)?))
        }
        Some(2) => {
            let texts: Vec<String> = Deserialize::deserialize(value)
                .map_err(|e| bad(format!("instances: every instance must be a string: {e}")))?;
            Ok(Payload::Texts(texts))
        }
        _ => Err(bad("instances: each instance is an object, a list of numbers or a string".into())),
    }
}

/// `err` as the protocol of `uri` writes errors: `{"error": message}` under `/v2`, our
/// `{"error": {"code", "message"}}` elsewhere.
fn in_protocol_shape(uri: &Uri, err: ApiError) -> Response {
    let path = uri.path();
    if path == "/v2" || path.starts_with("/v2/") {
        crate::v2::V2Error(err).into_response()
    } else {
        err.into_response()
    }
}

async fn route_not_found(method: Method, uri: Uri) -> Response {
    let err =
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", format!("no route for {method} {}", uri.path()));
    in_protocol_shape(&uri, err)
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let err = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{method} is not allowed on {}", uri.path()),
    );
    in_protocol_shape(&uri, err)
}

/// Gives every request an id (its `x-request-id` if it sent a sane one, else a new one),
/// returns it in the response, runs the request in a span carrying it (so every log line of the
/// request names it) and logs method, path, status and latency.
async fn request_id_and_log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    use tracing::Instrument;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let n = crate::release::splitmix(NEXT.fetch_add(1, Ordering::Relaxed) ^ process_seed());
            format!("{n:016x}")
        });
    if let Ok(value) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    span.in_scope(|| {
        if state.access_log {
            tracing::info!(%method, %path, status, ms, "request");
        } else {
            tracing::debug!(%method, %path, status, ms, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

/// A per-process seed so request ids differ between restarts.
fn process_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let t =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        (t as u64) ^ u64::from(std::process::id()).rotate_left(32)
    })
}

/// A copy-paste `curl` command that predicts with the stable version of `model` on a server
/// listening on `addr`: one row from the bundle's reference sample, or a dense row of zeros
/// when the bundle has no sample. The JSON is quoted for POSIX shells.
pub fn example_curl(addr: SocketAddr, model: &ModelState) -> String {
    let stable = model.stable().model();
    let body = match stable.manifest().reference.as_ref().and_then(|r| r.sample.first()) {
        Some(record) => serde_json::json!({ "records": [record] }),
        None if matches!(stable.task(), Task::Embedding) => serde_json::json!({ "texts": ["hello world"] }),
        None => serde_json::json!({ "instances": [vec![0.0f64; stable.input_width()]] }),
    };
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    };
    format!(
        "curl -s -X POST http://{host}/v1/models/{}/predict -H 'content-type: application/json' -d {}",
        model.name,
        shell_quote(&body.to_string())
    )
}

/// Quotes `s` in single quotes for a POSIX shell (`'` becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
