//! The one mapping from `ingot::Error` to JavaScript errors (by `Error::code`).

use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{Env, JsError, ValueType};

use crate::input::cast;

/// The `code` property of the JS error for a core error.
///
/// `ERR_INGOT_FORMAT` (not a valid bundle), `ERR_INGOT_VERSION` (a newer format),
/// `ERR_INGOT_MODEL` (a bundle that does not make sense), `ERR_INGOT_INPUT` (bad input: the
/// message names the row and column), `ERR_INGOT_USAGE` (a call the model does not take),
/// `ERR_INGOT_UNSUPPORTED`, `ERR_INGOT_SIGNATURE`, `ERR_INGOT_IO`, `ERR_INGOT_BACKEND`.
pub(crate) fn code(err: &ingot::Error) -> &'static str {
    match err.code() {
        "IngotFormatError" => "ERR_INGOT_FORMAT",
        "IngotVersionError" => "ERR_INGOT_VERSION",
        "IngotModelError" => "ERR_INGOT_MODEL",
        "IngotInputError" => "ERR_INGOT_INPUT",
        "IngotUsageError" => "ERR_INGOT_USAGE",
        "IngotUnsupportedError" => "ERR_INGOT_UNSUPPORTED",
        "IngotSignatureError" => "ERR_INGOT_SIGNATURE",
        "IngotIoError" => "ERR_INGOT_IO",
        "IngotBackendError" => "ERR_INGOT_BACKEND",
        _ => "ERR_INGOT",
    }
}

/// Why a call failed: the core refused it, or N-API did (an engine failure, not the caller's).
pub(crate) enum Fail {
    Core(ingot::Error),
    Napi(napi::Error),
}

impl From<ingot::Error> for Fail {
    fn from(e: ingot::Error) -> Self {
        Fail::Core(e)
    }
}

impl From<napi::Error> for Fail {
    fn from(e: napi::Error) -> Self {
        Fail::Napi(e)
    }
}

/// Results of the conversions.
pub(crate) type Result<T> = std::result::Result<T, Fail>;

/// The JS error for a failure: for a core error, an `Error` with the core's message, `code` from
/// [`code`] and, for input errors that name one, the zero-based `row`.
pub(crate) fn to_js(env: &Env, fail: Fail) -> napi::Error {
    let err = match fail {
        Fail::Napi(e) => return e,
        Fail::Core(e) => e,
    };
    let row = err.row();
    let value = JsError::from(napi::Error::new(code(&err), err.to_string())).into_unknown(*env);
    if let (Some(row), Ok(ValueType::Object)) = (row, value.get_type()) {
        if let Ok(mut object) = cast::<Object>(&value) {
            // A row index beyond 2^53 cannot happen (it indexes a JS array); f64 holds it exactly.
            let _ = object.set_named_property("row", row as f64);
        }
    }
    napi::Error::from(value)
}
