//! JSON errors: every failure leaves the server as `{"error": {"code": …, "message": …}}`.

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered to the client as JSON with an HTTP status.
///
/// Core errors keep their stable code (`IngotInputError`, …) and message; errors of the
/// server itself use the codes below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: Cow<'static, str>,
    /// Human-readable explanation.
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, at least 1) with 429 and 503 answers.
    pub retry_after: Option<Duration>,
    /// The version that failed, sent as `x-ingot-version` when a version was chosen.
    pub version: Option<String>,
}

impl ApiError {
    /// An error with an explicit status, code and message.
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), retry_after: None, version: None }
    }

    /// The same error, naming the version that failed.
    pub fn from_version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// The same error, telling the client to retry after `after`.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// 503 `Overloaded`: the version's queue is full.
    pub fn overloaded(model: &str, version: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Overloaded",
            format!("model `{model}` version {version} has too many requests waiting; retry shortly"),
        )
        .with_retry_after(Duration::from_secs(1))
    }

    /// Maps a refused key: 401 without or with an unknown key, 403 without the scope, 429
    /// past the rate limit.
    pub fn denied(denied: &crate::auth::Denied) -> Self {
        use crate::auth::Denied;
        match denied {
            Denied::Missing => Self::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "this server needs an API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`",
            ),
            Denied::Invalid => {
                Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "the API key is not valid")
            }
            Denied::Forbidden { key, scope } => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("key `{key}` does not have the `{}` scope", scope.name()),
            ),
            Denied::RateLimited { key, retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RateLimited",
                format!("key `{key}` is over its rate limit; retry after the time in Retry-After"),
            )
            .with_retry_after(*retry_after),
        }
    }

    /// Maps a refused admin call.
    pub fn admin(err: crate::registry::AdminError) -> Self {
        use crate::registry::AdminError;
        match err {
            AdminError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "NotFound", m),
            AdminError::Conflict(m) => Self::new(StatusCode::CONFLICT, "Conflict", m),
            AdminError::Invalid(m) => Self::invalid_request(m),
        }
    }

    /// 404 `ModelNotFound`.
    pub fn model_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ModelNotFound",
            format!("no model named `{name}` in this repository (GET /v1/models lists them)"),
        )
    }

    /// 404 `VersionNotFound`, listing the versions that exist.
    pub fn version_not_found(name: &str, version: &str, available: &[&str]) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "VersionNotFound",
            format!("model `{name}` has no version `{version}`; available: {}", available.join(", ")),
        )
    }

    /// 400 `InvalidRequest`: well-formed JSON that is not a valid request.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    /// 413 `TooManyRows`: the batch is larger than `--max-batch-rows`.
    pub fn too_many_rows(rows: usize, max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TooManyRows",
            format!(
                "the request has {rows} rows; this server accepts at most {max} per request \
                 (--max-batch-rows): split the batch"
            ),
        )
    }

    /// 413 `BodyTooLarge`: the body is larger than `--max-body-bytes`.
    pub fn body_too_large(max_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BodyTooLarge",
            format!(
                "the request body is larger than {max_bytes} bytes (--max-body-bytes): \
                 split the batch"
            ),
        )
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// Maps a rejection of axum's `Json` extractor; `max_body_bytes` names the limit in the
    /// message when the body was too large.
    pub fn from_json_rejection(rejection: &JsonRejection, max_body_bytes: usize) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "InvalidJson",
                format!("the request body is not valid JSON: {}", source_text(rejection)),
            ),
            JsonRejection::JsonDataError(_) => Self::invalid_request(format!(
                "the request body does not match {{\"records\": [{{column: value, …}}, …]}} \
                 or {{\"instances\": [[number, …], …]}}: {}",
                source_text(rejection)
            )),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "send the body with `content-type: application/json`",
            ),
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::body_too_large(max_body_bytes),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                format!("could not read the request body: {}", source_text(rejection)),
            ),
        }
    }
}

/// The rejection's detail without axum's generic prefix: `Failed to parse the request body as
/// JSON: expected value at line 1 column 7` becomes `expected value at line 1 column 7`.
fn source_text(rejection: &JsonRejection) -> String {
    let text = rejection.body_text();
    match text.split_once(": ") {
        Some((_, detail)) if !detail.is_empty() => detail.to_owned(),
        _ => text,
    }
}

impl From<ingot::Error> for ApiError {
    /// Input and usage errors (a request in a form the model does not take) are the client's:
    /// 400. What this build cannot do is 501; everything else is the model's or the host's: 500.
    fn from(err: ingot::Error) -> Self {
        let status = if err.is_caller_error() {
            StatusCode::BAD_REQUEST
        } else if matches!(err, ingot::Error::Unsupported { .. }) {
            StatusCode::NOT_IMPLEMENTED
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self::new(status, err.code(), err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, "{}", self.message);
        } else {
            tracing::debug!(status = self.status.as_u16(), code = %self.code, "{}", self.message);
        }
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if let Some(version) = self.version.as_deref().and_then(|v| axum::http::HeaderValue::from_str(v).ok())
        {
            response.headers_mut().insert(crate::routes::VERSION_HEADER, version);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_statuses_by_kind() {
        let status = |e: ingot::Error| ApiError::from(e).status;
        assert_eq!(
            status(ingot::Error::MissingColumn { row: 0, column: "a".into() }),
            StatusCode::BAD_REQUEST
        );
        let usage = ApiError::from(ingot::Error::usage("dense input for a text model; send strings"));
        assert_eq!((usage.status, usage.code.as_ref()), (StatusCode::BAD_REQUEST, "IngotUsageError"));
        assert_eq!(status(ingot::Error::Unsupported { what: "op".into() }), StatusCode::NOT_IMPLEMENTED);
        let model = ingot::Error::Graph { node: "n".into(), op: "Linear".into(), detail: "x".into() };
        assert_eq!(status(model), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
