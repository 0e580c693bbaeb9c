//! The Open Inference Protocol (V2; KServe's and Triton's HTTP API) over REST, with Triton's
//! binary tensor data and repository index extensions.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | `GET` | `/v2` | server metadata: name, version, extensions |
//! | `GET` | `/v2/models/{name}[/versions/{version}]` | model metadata: versions, platform, inputs, outputs |
//! | `GET` | `/v2/models/{name}[/versions/{version}]/ready` | 200 when served, 400 when it failed to load, else 404 |
//! | `POST` | `/v2/models/{name}[/versions/{version}]/infer` | inference (JSON, or JSON and binary tensors) |
//! | `POST` | `/v2/repository/index` | every model version found: `READY` or `UNAVAILABLE` with the reason |
//!
//! (`/v2/health/live` and `/v2/health/ready` are served by [`crate::routes`].) Errors are
//! `{"error": "message"}`. How tensors map to a model's rows and back is in [`tensor`]; the
//! gRPC front end ([`crate::grpc`]) shares it, and [`metadata`], [`model_ready`] and
//! [`run_inference`] with it.

pub mod tensor;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::deployed::Deployed;
use crate::error::ApiError;
use crate::registry::ModelState;
use crate::routes::{routing_key, versioned, AppState};
use tensor::{InputTensor, OutputData, OutputTensor, TensorMetadata};

/// The server's name in the server metadata.
pub const SERVER_NAME: &str = "ingot";
/// The server's version in the server metadata.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The protocol extensions served.
pub const EXTENSIONS: [&str; 1] = ["binary_tensor_data"];
/// The platform of every model in the model metadata.
pub const PLATFORM: &str = "ingot";
/// Header giving the length of the JSON part of a body that carries binary tensors.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The V2 routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(version_metadata))
        .route("/v2/models/{name}/ready", get(model_ready_route))
        .route("/v2/models/{name}/versions/{version}/ready", get(version_ready_route))
        .route("/v2/models/{name}/infer", post(infer_default))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_version))
        .route("/v2/repository/index", post(repository_index))
}

/// An error answered in the V2 shape, `{"error": "message"}`, with the status, log line and
/// headers (`Retry-After`, `WWW-Authenticate`) of the [`ApiError`] it wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Error(pub ApiError);

impl From<ApiError> for V2Error {
    fn from(err: ApiError) -> Self {
        V2Error(err)
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.0.message }).to_string();
        let (parts, _) = self.0.into_response().into_parts();
        Response::from_parts(parts, Body::from(body))
    }
}

/// Model metadata: name, versions, platform, input and output tensors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelMetadata {
    /// Model name.
    pub name: String,
    /// Every served version.
    pub versions: Vec<String>,
    /// Always [`PLATFORM`].
    pub platform: &'static str,
    /// Input tensors.
    pub inputs: Vec<TensorMetadata>,
    /// Output tensors.
    pub outputs: Vec<TensorMetadata>,
}

/// The metadata of `name` as `version` (a version or alias; default: stable) describes it,
/// with that version.
pub fn metadata(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> Result<(Arc<Deployed>, ModelMetadata), ApiError> {
    let model = state.model(name)?;
    let deployed = pick(&model, version)?;
    let metadata = ModelMetadata {
        name: model.name.clone(),
        versions: model.version_names().into_iter().map(str::to_owned).collect(),
        platform: PLATFORM,
        inputs: tensor::input_metadata(deployed.model()),
        outputs: tensor::output_metadata(deployed.model()),
    };
    Ok((deployed, metadata))
}

fn pick(model: &ModelState, version: Option<&str>) -> Result<Arc<Deployed>, ApiError> {
    match version {
        Some(v) => AppState::version(model, v),
        None => Ok(Arc::clone(model.stable())),
    }
}

/// Whether `name` (at `version`, when given) is served: `Ok`, or 400 when it was found but
/// failed to load, else 404.
pub fn model_ready(state: &AppState, name: &str, version: Option<&str>) -> Result<(), ApiError> {
    let snapshot = state.registry.snapshot();
    let served = snapshot.get(name);
    let found = match (served, version) {
        (Some(_), None) => return Ok(()),
        (Some(model), Some(v)) => match AppState::version(model, v) {
            Ok(_) => return Ok(()),
            Err(not_found) => Err(not_found),
        },
        (None, _) => Err(ApiError::model_not_found(name)),
    };
    let failed = snapshot.failures.iter().find(|f| {
        f.model == name
            && !f.previous_serving
            && version.is_none_or(|v| f.version == v || f.version.is_empty())
    });
    match failed {
        Some(f) => {
            let what = if f.version.is_empty() { String::new() } else { format!(" version {}", f.version) };
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "ModelNotReady",
                format!("model `{name}`{what} is not ready: it failed to load: {}", f.reason),
            ))
        }
        None => found,
    }
}

/// An answered inference.
#[derive(Debug)]
pub struct Answer {
    /// The version that answered.
    pub deployed: Arc<Deployed>,
    /// The output tensors: those requested, in that order, else all of them.
    pub outputs: Vec<OutputTensor>,
}

/// Runs decoded `inputs` on `name` (on `version` when given, else on the version the release
/// picks for the request's routing key in `headers`), counted under `protocol`, and returns the
/// `requested` output tensors (all when `None`).
pub async fn run_inference(
    state: &AppState,
    protocol: &'static str,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    inputs: Vec<InputTensor>,
    requested: Option<&[String]>,
) -> Result<Answer, ApiError> {
    let model = state.model(name)?;
    let target = pick(&model, version)?;
    if let Some(requested) = requested {
        tensor::check_requested(target.model(), requested)?;
    }
    let payload = tensor::to_payload(target.model(), inputs)?;
    let inferred = state.infer(protocol, name, version, routing_key(&model, headers), payload).await?;
    let outputs = tensor::output_tensors(&inferred.prediction, requested)?;
    Ok(Answer { deployed: inferred.deployed, outputs })
}

async fn server_metadata() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": SERVER_NAME, "version": SERVER_VERSION, "extensions": EXTENSIONS }))
}

async fn model_metadata(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, V2Error> {
    let (deployed, metadata) = metadata(&state, &name, None)?;
    Ok(versioned(&deployed.version, Json(metadata)))
}

async fn version_metadata(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, V2Error> {
    let (deployed, metadata) = metadata(&state, &name, Some(&version))?;
    Ok(versioned(&deployed.version, Json(metadata)))
}

async fn model_ready_route(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, V2Error> {
    model_ready(&state, &name, None)?;
    Ok(Json(serde_json::json!({ "name": name, "ready": true })))
}

async fn version_ready_route(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, V2Error> {
    model_ready(&state, &name, Some(&version))?;
    Ok(Json(serde_json::json!({ "name": name, "ready": true })))
}

/// `parameters` of a request, an input or an output.
type Parameters = serde_json::Map<String, serde_json::Value>;

/// A bool parameter, if given (400 if it is not a bool).
fn flag(parameters: &Parameters, key: &str, of: &str) -> Result<Option<bool>, ApiError> {
    match parameters.get(key) {
        None => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::invalid_request(format!(
            "{of}: parameter `{key}` must be true or false, not {other}"
        ))),
    }
}

/// `$inference_request`.
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Parameters,
    inputs: Vec<RequestInput>,
    #[serde(default)]
    outputs: Option<Vec<RequestOutput>>,
}

/// `$request_input`.
#[derive(Debug, Deserialize)]
struct RequestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Parameters,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// `$request_output`.
#[derive(Debug, Deserialize)]
struct RequestOutput {
    name: String,
    #[serde(default)]
    parameters: Parameters,
}

/// `$inference_response`.
#[derive(Debug, Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<ResponseOutput<'a>>,
}

/// `$response_output`: data inline, or its size when it follows the JSON as binary.
#[derive(Debug, Serialize)]
struct ResponseOutput<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a OutputData>,
}

#[derive(Debug, Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

async fn infer_default(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, V2Error> {
    infer(&state, &name, None, &headers, body).await
}

async fn infer_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, V2Error> {
    infer(&state, &name, Some(&version), &headers, body).await
}

fn body_error(rejection: &BytesRejection, max_body_bytes: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::body_too_large(max_body_bytes)
    } else {
        ApiError::invalid_request(format!("could not read the request body: {}", rejection.body_text()))
    }
}

/// The JSON part of a body and the binary tensors after it (`Inference-Header-Content-Length`).
fn split_body<'b>(headers: &HeaderMap, body: &'b [u8]) -> Result<(&'b [u8], &'b [u8]), ApiError> {
    let Some(value) = headers.get(HEADER_LENGTH) else {
        return Ok((body, &[]));
    };
    let length = value.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()).ok_or_else(|| {
        ApiError::invalid_request(
            "Inference-Header-Content-Length must be the byte length of the JSON header",
        )
    })?;
    if length == 0 {
        return Err(ApiError::invalid_request(
            "Inference-Header-Content-Length: 0 (a request without a JSON header) is not supported; \
             send the JSON inference request first, then the binary tensors",
        ));
    }
    if length > body.len() {
        return Err(ApiError::invalid_request(format!(
            "Inference-Header-Content-Length is {length} but the body has only {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(length))
}

fn parse_request(json: &[u8]) -> Result<InferRequest, ApiError> {
    serde_json::from_slice(json).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid_request(format!(
            "the body is not an inference request ({{\"inputs\": [{{\"name\", \"shape\", \"datatype\", \
             \"data\"}}, …]}}): {e}"
        )),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidJson",
            format!("the inference request is not valid JSON: {e}"),
        ),
    })
}

/// One `$request_input`, its data inline or taken from the front of `binary`.
fn decode_input(input: RequestInput, binary: &mut &[u8], max_rows: usize) -> Result<InputTensor, ApiError> {
    let name = input.name;
    let datatype = tensor::parse_datatype(&name, &input.datatype)?;
    let count = tensor::element_count(&name, &input.shape, max_rows)?;
    let bad = |what: &str| ApiError::invalid_request(format!("input `{name}`: {what}"));
    let elements = match (input.parameters.get("binary_data_size"), &input.data) {
        (Some(_), Some(_)) => return Err(bad("has both `data` and the binary_data_size parameter")),
        (Some(size), None) => {
            let size = size
                .as_u64()
                .and_then(|s| usize::try_from(s).ok())
                .ok_or_else(|| bad("binary_data_size must be a byte count"))?;
            if size > binary.len() {
                return Err(bad(&format!(
                    "binary_data_size is {size} but only {} bytes of binary data are left",
                    binary.len()
                )));
            }
            let (bytes, rest) = binary.split_at(size);
            *binary = rest;
            tensor::decode_raw(&name, datatype, count, bytes)?
        }
        (None, Some(data)) => tensor::decode_json(&name, datatype, count, data)?,
        (None, None) => {
            return Err(bad(
                "has no data: send `data`, or the binary_data_size parameter and the binary tensor",
            ))
        }
    };
    InputTensor::new(name, datatype, &input.shape, elements)
}

/// Reads an inference body: the JSON request (alone, or as the first
/// `Inference-Header-Content-Length` bytes) and its input tensors, inline or from the binary
/// part; every length is checked against what is left and `max_rows`. The request is returned
/// with its inputs taken out. This is the parser of the request's bytes (the fuzz target
/// `v2_infer` runs it on arbitrary input).
pub fn decode(
    headers: &HeaderMap,
    body: &[u8],
    max_rows: usize,
) -> Result<(InferRequest, Vec<InputTensor>), ApiError> {
    let (json, mut binary) = split_body(headers, body)?;
    let mut request = parse_request(json)?;
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in std::mem::take(&mut request.inputs) {
        inputs.push(decode_input(input, &mut binary, max_rows)?);
    }
    if !binary.is_empty() {
        return Err(ApiError::invalid_request(format!(
            "{} bytes of binary data follow the inputs' binary_data_size",
            binary.len()
        )));
    }
    Ok((request, inputs))
}

async fn infer(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, V2Error> {
    let body = body.map_err(|r| body_error(&r, state.limits.max_body_bytes))?;
    let (request, inputs) = decode(headers, &body, state.limits.max_batch_rows)?;
    let binary_default = flag(&request.parameters, "binary_data_output", "the request")?.unwrap_or(false);
    // No `outputs`, or an empty list: every output, each binary as `binary_data_output` says.
    let (requested, binary_flags) = match &request.outputs {
        Some(outputs) if !outputs.is_empty() => {
            let names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
            let flags = outputs
                .iter()
                .map(|o| {
                    let of = format!("output `{}`", o.name);
                    Ok(flag(&o.parameters, "binary_data", &of)?.unwrap_or(binary_default))
                })
                .collect::<Result<Vec<bool>, ApiError>>()?;
            (Some(names), Some(flags))
        }
        _ => (None, None),
    };
    let answer = run_inference(state, "v2", name, version, headers, inputs, requested.as_deref()).await?;
    let version = answer.deployed.version.as_str();
    let binary_at =
        |i: usize| binary_flags.as_ref().map_or(binary_default, |f| f.get(i).copied().unwrap_or(false));
    let mut tail: Vec<u8> = Vec::new();
    let mut outputs = Vec::with_capacity(answer.outputs.len());
    for (i, output) in answer.outputs.iter().enumerate() {
        let (parameters, data) = if binary_at(i) {
            let bytes = output.data.to_le_bytes();
            let size = bytes.len();
            tail.extend(bytes);
            (Some(BinarySize { binary_data_size: size }), None)
        } else {
            (None, Some(&output.data))
        };
        outputs.push(ResponseOutput {
            name: output.name,
            datatype: output.datatype.name(),
            shape: &output.shape,
            parameters,
            data,
        });
    }
    let response =
        InferResponse { model_name: name, model_version: version, id: request.id.as_deref(), outputs };
    let json = serde_json::to_vec(&response)
        .map_err(|e| ApiError::internal(format!("could not encode the inference response: {e}")))?;
    if response.outputs.iter().all(|o| o.parameters.is_none()) {
        return Ok(versioned(version, ([(header::CONTENT_TYPE, "application/json")], json)));
    }
    let header_length = HeaderValue::from(json.len());
    let mut body = json;
    body.extend(tail);
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        (HeaderName::from_static(HEADER_LENGTH), header_length),
    ];
    Ok(versioned(version, (headers, body)))
}

/// `$repository_index_request`.
#[derive(Debug, Default, Deserialize)]
struct IndexRequest {
    #[serde(default)]
    ready: bool,
}

/// One entry of `$repository_index_response`.
#[derive(Debug, Serialize)]
struct IndexEntry {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    state: &'static str,
    reason: String,
}

/// Every version found in the latest scan: those served `READY` (with the reason when a newer
/// copy of it failed to load), those that failed `UNAVAILABLE` with why; with `{"ready": true}`
/// only the former.
async fn repository_index(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<IndexEntry>>, V2Error> {
    let body = body.map_err(|r| body_error(&r, state.limits.max_body_bytes))?;
    let request: IndexRequest = if body.iter().all(u8::is_ascii_whitespace) {
        IndexRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid_request(format!("the index request must be {{\"ready\": true|false}}: {e}"))
        })?
    };
    let snapshot = state.registry.snapshot();
    let mut entries = Vec::new();
    for (name, model) in &snapshot.models {
        for v in &model.versions {
            let reasons: Vec<String> = snapshot
                .failures
                .iter()
                .filter(|f| f.model == *name && (f.version == v.version || f.version.is_empty()))
                .map(|f| format!("serving the previous load; reloading failed: {}", f.reason))
                .collect();
            entries.push(IndexEntry {
                name: name.clone(),
                version: Some(v.version.clone()),
                state: "READY",
                reason: reasons.join("; "),
            });
        }
    }
    if !request.ready {
        let served = |model: &str, version: &str| {
            snapshot
                .get(model)
                .is_some_and(|m| version.is_empty() || m.versions.iter().any(|v| v.version == version))
        };
        for f in snapshot.failures.iter().filter(|f| !served(&f.model, &f.version)) {
            entries.push(IndexEntry {
                name: f.model.clone(),
                version: (!f.version.is_empty()).then(|| f.version.clone()),
                state: "UNAVAILABLE",
                reason: f.reason.clone(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(Json(entries))
}
