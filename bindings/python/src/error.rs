//! The Python exceptions, and the one mapping from `ingot::Error` to them (by `Error::code`).

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError};
use pyo3::prelude::*;

create_exception!(ingot, IngotError, PyException, "Base class of every Ingot error.");
create_exception!(ingot, FormatError, IngotError, "A file that is not a valid .ingot bundle.");
create_exception!(ingot, VersionError, IngotError, "A bundle written by a newer format version.");
create_exception!(ingot, ModelError, IngotError, "A bundle that parses but does not make sense.");
create_exception!(ingot, InputError, IngotError, "Bad input: the message names the row and column.");
create_exception!(
    _ingot,
    UsageError,
    IngotError,
    "A call the model does not take (wrong input form, option)."
);
create_exception!(ingot, UnsupportedError, IngotError, "Something this build of Ingot does not support.");
create_exception!(ingot, IoError, IngotError, "A file could not be read or written.");
create_exception!(ingot, BackendError, IngotError, "The tensor backend failed.");

/// The Python exception for a core error: one class per `Error::code`, the core's message kept
/// (a missing file is Python's own `FileNotFoundError`).
pub(crate) fn to_py(err: ingot::Error) -> PyErr {
    let message = err.to_string();
    match (err.code(), &err) {
        (_, ingot::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        ("IngotFormatError", _) => FormatError::new_err(message),
        ("IngotVersionError", _) => VersionError::new_err(message),
        ("IngotModelError", _) => ModelError::new_err(message),
        ("IngotInputError", _) => InputError::new_err(message),
        ("IngotUsageError", _) => UsageError::new_err(message),
        ("IngotUnsupportedError", _) => UnsupportedError::new_err(message),
        ("IngotIoError", _) => IoError::new_err(message),
        ("IngotBackendError", _) => BackendError::new_err(message),
        _ => IngotError::new_err(message),
    }
}

/// Registers the exception classes on the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("IngotError", py.get_type::<IngotError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("VersionError", py.get_type::<VersionError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("BackendError", py.get_type::<BackendError>())?;
    Ok(())
}
