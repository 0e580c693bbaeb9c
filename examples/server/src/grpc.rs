//! The Open Inference Protocol (V2) over gRPC: KServe's `inference.GRPCInferenceService`
//! (`proto/grpc_predict_v2.proto`), the service Triton's clients speak.
//!
//! `ServerLive`, `ServerReady` and `ModelReady` are open; `ServerMetadata`, `ModelMetadata` and
//! `ModelInfer` need a key with the `predict` scope when keys are configured, sent as metadata
//! `authorization: Bearer KEY` or `x-api-key: KEY`. Tensors map to rows and back as over REST
//! ([`crate::v2::tensor`]); inputs come as typed `contents` or `raw_input_contents`, outputs
//! always go back as `raw_output_contents`. Errors carry the REST error's message under the
//! matching gRPC code (400 → `INVALID_ARGUMENT`, 401 → `UNAUTHENTICATED`, 403 →
//! `PERMISSION_DENIED`, 404 → `NOT_FOUND`, 413 and 429 → `RESOURCE_EXHAUSTED`, 503 →
//! `UNAVAILABLE`, …).

use std::future::Future;
use std::time::Instant;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::auth::{presented_key, Denied, Scope};
use crate::error::ApiError;
use crate::routes::{AppState, VERSION_HEADER};
use crate::v2::tensor::{self, DataType, Elements, InputTensor};
use proto::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use proto::model_infer_request::InferInputTensor;
use proto::model_infer_response::InferOutputTensor;
use proto::model_metadata_response::TensorMetadata;
use proto::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ModelReadyRequest, ModelReadyResponse, ServerLiveRequest, ServerLiveResponse, ServerMetadataRequest,
    ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};

/// The messages, server and client generated from `proto/grpc_predict_v2.proto` (package
/// `inference`).
pub mod proto {
    #![allow(
        missing_docs,
        clippy::all,
        clippy::pedantic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )]
    tonic::include_proto!("inference");
}

/// The gRPC service over the server's state.
#[derive(Debug, Clone)]
pub struct Inference {
    state: AppState,
}

/// The gRPC service for `state`, taking messages up to the body limit.
pub fn service(state: AppState) -> GrpcInferenceServiceServer<Inference> {
    let max = state.limits.max_body_bytes;
    GrpcInferenceServiceServer::new(Inference { state }).max_decoding_message_size(max)
}

/// Serves the gRPC API on `listener` until `shutdown` completes, then finishes the calls
/// already accepted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    tonic::transport::Server::builder()
        .add_service(service(state))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| format!("the gRPC server failed: {e}"))
}

/// The gRPC status of an [`ApiError`]: its message under the code matching its HTTP status,
/// with `retry-after` metadata when it has one.
pub fn status(err: ApiError) -> Status {
    let code = match err.status.as_u16() {
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::FailedPrecondition,
        413 | 429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        400..=499 => Code::InvalidArgument,
        _ => Code::Internal,
    };
    if err.status.is_server_error() {
        tracing::error!(code = %err.code, "{}", err.message);
    } else {
        tracing::debug!(status = err.status.as_u16(), code = %err.code, "{}", err.message);
    }
    let mut status = Status::new(code, err.message);
    if let Some(after) = err.retry_after {
        let seconds = after.as_secs_f64().ceil().max(1.0) as u64;
        status.metadata_mut().insert("retry-after", MetadataValue::from(seconds));
    }
    status
}

impl Inference {
    /// Checks the call's key for the `predict` scope (when keys are configured).
    fn authorize(&self, metadata: &MetadataMap) -> Result<(), Status> {
        if !self.state.auth.enabled() {
            return Ok(());
        }
        match self.state.auth.check(presented_key(metadata.as_ref()), Scope::Predict) {
            Ok(_) => Ok(()),
            Err(denied) => {
                if matches!(denied, Denied::RateLimited { .. }) {
                    self.state.metrics().rate_limited.inc();
                }
                Err(status(ApiError::denied(&denied)))
            }
        }
    }

    async fn infer(
        &self,
        metadata: &MetadataMap,
        mut request: ModelInferRequest,
    ) -> Result<ModelInferResponse, ApiError> {
        let raw = std::mem::take(&mut request.raw_input_contents);
        let inputs =
            decode_inputs(std::mem::take(&mut request.inputs), &raw, self.state.limits.max_batch_rows)?;
        drop(raw); // the decoded tensors are all that is needed from here on
        let requested: Option<Vec<String>> =
            (!request.outputs.is_empty()).then(|| request.outputs.iter().map(|o| o.name.clone()).collect());
        let version = (!request.model_version.is_empty()).then_some(request.model_version.as_str());
        let answer = crate::v2::run_inference(
            &self.state,
            "grpc",
            &request.model_name,
            version,
            metadata.as_ref(),
            inputs,
            requested.as_deref(),
        )
        .await?;
        let outputs = answer
            .outputs
            .iter()
            .map(|o| InferOutputTensor {
                name: o.name.to_owned(),
                datatype: o.datatype.name().to_owned(),
                shape: o.shape.clone(),
                parameters: Default::default(),
                contents: None,
            })
            .collect();
        Ok(ModelInferResponse {
            model_name: request.model_name,
            model_version: answer.deployed.version.clone(),
            id: request.id,
            parameters: Default::default(),
            outputs,
            raw_output_contents: answer.outputs.iter().map(|o| o.data.to_le_bytes()).collect(),
        })
    }
}

/// The call's input tensors, from `raw_input_contents` (one entry per input) or each input's
/// typed `contents`.
fn decode_inputs(
    inputs: Vec<InferInputTensor>,
    raw: &[Vec<u8>],
    max_rows: usize,
) -> Result<Vec<InputTensor>, ApiError> {
    if !raw.is_empty() && raw.len() != inputs.len() {
        return Err(ApiError::invalid_request(format!(
            "raw_input_contents has {} entries for {} inputs; send one per input, in order",
            raw.len(),
            inputs.len()
        )));
    }
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let name = input.name;
            let datatype = tensor::parse_datatype(&name, &input.datatype)?;
            let count = tensor::element_count(&name, &input.shape, max_rows)?;
            let elements = match (raw.get(i), input.contents) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid_request(format!(
                        "input `{name}` has both contents and raw_input_contents"
                    )))
                }
                (Some(bytes), None) => tensor::decode_raw(&name, datatype, count, bytes)?,
                (None, contents) => typed(&name, datatype, contents.unwrap_or_default())?,
            };
            InputTensor::new(name, datatype, &input.shape, elements)
        })
        .collect()
}

/// The typed `contents` field that `datatype` uses (its length is checked by the caller).
fn typed(name: &str, datatype: DataType, contents: InferTensorContents) -> Result<Elements, ApiError> {
    let numbers = |v: Vec<f64>| Ok(Elements::Numbers(v));
    match datatype {
        DataType::Bool => numbers(contents.bool_contents.into_iter().map(f64::from).collect()),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            numbers(contents.int_contents.into_iter().map(f64::from).collect())
        }
        DataType::Int64 => numbers(contents.int64_contents.into_iter().map(|x| x as f64).collect()),
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => {
            numbers(contents.uint_contents.into_iter().map(f64::from).collect())
        }
        DataType::Uint64 => numbers(contents.uint64_contents.into_iter().map(|x| x as f64).collect()),
        DataType::Fp32 => numbers(contents.fp32_contents.into_iter().map(f64::from).collect()),
        DataType::Fp64 => numbers(contents.fp64_contents),
        DataType::Bytes => tensor::strings(name, contents.bytes_contents),
        DataType::Fp16 | DataType::Bf16 => Err(ApiError::invalid_request(format!(
            "input `{name}`: {} has no typed contents field; send it in raw_input_contents",
            datatype.name()
        ))),
    }
}

fn tensors(list: Vec<tensor::TensorMetadata>) -> Vec<TensorMetadata> {
    list.into_iter()
        .map(|t| TensorMetadata { name: t.name, datatype: t.datatype.to_owned(), shape: t.shape })
        .collect()
}

fn version_of(version: &str) -> Option<&str> {
    (!version.is_empty()).then_some(version)
}

/// Logs one call's outcome like the HTTP request log.
fn logged<T>(rpc: &'static str, start: Instant, result: Result<T, Status>) -> Result<T, Status> {
    let code = match &result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };
    tracing::info!(rpc, code = ?code, ms = format_args!("{:.2}", start.elapsed().as_secs_f64() * 1e3), "grpc");
    result
}

#[tonic::async_trait]
impl GrpcInferenceService for Inference {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: self.state.registry.ready() }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let ready = crate::v2::model_ready(&self.state, &request.name, version_of(&request.version)).is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        self.authorize(request.metadata())?;
        Ok(Response::new(ServerMetadataResponse {
            name: crate::v2::SERVER_NAME.to_owned(),
            version: crate::v2::SERVER_VERSION.to_owned(),
            extensions: crate::v2::EXTENSIONS.iter().map(|e| (*e).to_owned()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let start = Instant::now();
        let result = self.authorize(request.metadata()).and_then(|()| {
            let request = request.into_inner();
            let (_, m) = crate::v2::metadata(&self.state, &request.name, version_of(&request.version))
                .map_err(status)?;
            Ok(Response::new(ModelMetadataResponse {
                name: m.name,
                versions: m.versions,
                platform: m.platform.to_owned(),
                inputs: tensors(m.inputs),
                outputs: tensors(m.outputs),
                properties: Default::default(),
            }))
        });
        logged("ModelMetadata", start, result)
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let start = Instant::now();
        if let Err(denied) = self.authorize(request.metadata()) {
            return logged("ModelInfer", start, Err(denied));
        }
        let (metadata, _, message) = request.into_parts();
        let result = match self.infer(&metadata, message).await {
            Ok(answer) => {
                let version = MetadataValue::try_from(answer.model_version.as_str()).ok();
                let mut response = Response::new(answer);
                if let Some(version) = version {
                    response.metadata_mut().insert(VERSION_HEADER, version);
                }
                Ok(response)
            }
            Err(err) => Err(status(err)),
        };
        logged("ModelInfer", start, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_map_to_grpc_codes() {
        let code =
            |s: u16| status(ApiError::new(axum::http::StatusCode::from_u16(s).unwrap(), "X", "m")).code();
        assert_eq!(code(400), Code::InvalidArgument);
        assert_eq!(code(401), Code::Unauthenticated);
        assert_eq!(code(403), Code::PermissionDenied);
        assert_eq!(code(404), Code::NotFound);
        assert_eq!(code(413), Code::ResourceExhausted);
        assert_eq!(code(429), Code::ResourceExhausted);
        assert_eq!(code(500), Code::Internal);
        assert_eq!(code(503), Code::Unavailable);
        let overloaded = status(ApiError::overloaded("m", "1"));
        assert_eq!(overloaded.metadata().get("retry-after").unwrap(), "1");
    }

    #[test]
    fn typed_contents_follow_the_datatype() {
        let contents = InferTensorContents { int64_contents: vec![1, -2], ..Default::default() };
        assert_eq!(typed("t", DataType::Int64, contents).unwrap(), Elements::Numbers(vec![1.0, -2.0]));
        let contents = InferTensorContents { bytes_contents: vec![b"hi".to_vec()], ..Default::default() };
        assert_eq!(typed("t", DataType::Bytes, contents).unwrap(), Elements::Strings(vec!["hi".into()]));
        assert!(typed("t", DataType::Fp16, InferTensorContents::default()).is_err());
    }
}
