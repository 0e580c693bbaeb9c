//! The one error type of the core, [`Error`], and its [`Result`] alias.

use std::path::{Path, PathBuf};

/// Result alias used throughout Ingot.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, validating, writing or running a model.
///
/// Every variant carries the context a user needs to act on it: the check that failed, the
/// file, tensor, node, row or column involved, and what was expected.
///
/// ```
/// let err = ingot::Model::from_bytes(vec![1, 2, 3]).unwrap_err();
/// assert!(matches!(err, ingot::Error::Format { check: "header-too-small", .. }));
/// assert!(err.to_string().contains("header-too-small"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A structural check of the file failed; `check` is the name used in docs/format.md.
    #[error("invalid .ingot file: check `{check}` failed: {detail}")]
    Format {
        /// Name of the failed check, e.g. `header-too-large`.
        check: &'static str,
        /// What was found.
        detail: String,
    },
    /// The file was written by a newer, incompatible format.
    #[error("unsupported .ingot format version `{found}`: this reader supports up to `{supported}`")]
    UnsupportedFormatVersion {
        /// Version found in the file.
        found: String,
        /// Highest version this reader understands.
        supported: String,
    },
    /// The data section does not hash to the manifest's checksum.
    #[error("checksum mismatch: manifest says `{expected}`, data section hashes to `{found}`")]
    ChecksumMismatch {
        /// Checksum stored in the manifest.
        expected: String,
        /// Checksum of the bytes actually present.
        found: String,
    },
    /// The manifest is well-formed JSON but describes something invalid.
    #[error("invalid manifest at `{field}`: {detail}")]
    Manifest {
        /// Dotted path of the offending field, e.g. `preprocess[0].transformers[1].steps[0]`.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A tensor the manifest refers to is not in the file.
    #[error("tensor `{name}` needed by {needed_by} is not in the file")]
    TensorMissing {
        /// Missing tensor name.
        name: String,
        /// Who needs it (a node or step).
        needed_by: String,
    },
    /// A graph node is invalid (unknown op, wrong arity, inconsistent shapes…).
    #[error("graph node `{node}` ({op}): {detail}")]
    Graph {
        /// Node name.
        node: String,
        /// Op type.
        op: String,
        /// What is wrong.
        detail: String,
    },
    /// The caller's input has the wrong overall shape.
    #[error("input shape mismatch for {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was being checked.
        what: String,
        /// Expected shape or count.
        expected: String,
        /// Shape or count received.
        got: String,
    },
    /// A required input column is absent from a record or the column map.
    #[error("row {row}: missing column `{column}`")]
    MissingColumn {
        /// Zero-based row index in the request.
        row: usize,
        /// Column name.
        column: String,
    },
    /// An input value has the wrong type for its column.
    #[error("row {row}, column `{column}`: expected {expected}, got {got}")]
    WrongType {
        /// Zero-based row index in the request.
        row: usize,
        /// Column name.
        column: String,
        /// Expected type.
        expected: &'static str,
        /// What was received.
        got: String,
    },
    /// A missing, NaN or infinite value reached the model without an imputer to fill it.
    #[error("row {row}, column `{column}`: {value} value is not allowed here (no imputer fills it)")]
    InvalidValue {
        /// Zero-based row index in the request.
        row: usize,
        /// Column name.
        column: String,
        /// `missing`, `NaN` or `infinite`.
        value: &'static str,
    },
    /// A categorical value was not seen in training and the encoder has `handle_unknown = error`.
    #[error("row {row}, column `{column}`: unknown category {value}")]
    UnknownCategory {
        /// Zero-based row index in the request.
        row: usize,
        /// Column name.
        column: String,
        /// The value, as JSON.
        value: String,
    },
    /// A row of the input could not be read at all (a CSV record with the wrong number of
    /// fields, a JSON line that is not an object).
    #[error("row {row}: {detail}")]
    MalformedRow {
        /// Zero-based row index in the input.
        row: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// A text input could not be tokenized.
    #[error("row {row}: cannot tokenize text: {detail}")]
    Text {
        /// Zero-based row index in the request.
        row: usize,
        /// What the tokenizer reported.
        detail: String,
    },
    /// The model or request asks for something this build does not support.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// The call itself is wrong: a request form the model does not take (strings for a tabular
    /// model, a matrix for a text model), an invalid option or argument.
    #[error("usage: {what}")]
    Usage {
        /// What is wrong and what to do instead.
        what: String,
    },
    /// A bundle's signature (docs/format.md §7) is missing or malformed, was made with another
    /// key, or does not match the bundle; or a key file is malformed.
    #[error("signature error{}: {detail}", in_file(path.as_deref()))]
    Signature {
        /// The signature or key file involved, when one was read from disk.
        path: Option<PathBuf>,
        /// What is wrong, with the line number for a malformed file.
        detail: String,
    },
    /// An I/O operation on a path failed.
    #[error("i/o error on `{path}`: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The tensor backend (candle) failed while running an op.
    #[error("backend error in {op}: {source}")]
    Backend {
        /// Op or stage that failed.
        op: String,
        /// Underlying candle error.
        #[source]
        source: candle_core::Error,
    },
}

impl Error {
    /// Short stable code for the error kind, shared by the CLI, the server and the bindings.
    ///
    /// ```
    /// let err = ingot::Error::MissingColumn { row: 0, column: "age".into() };
    /// assert_eq!(err.code(), "IngotInputError");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Error::Format { .. } | Error::ChecksumMismatch { .. } => "IngotFormatError",
            Error::UnsupportedFormatVersion { .. } => "IngotVersionError",
            Error::Manifest { .. } | Error::TensorMissing { .. } | Error::Graph { .. } => "IngotModelError",
            Error::ShapeMismatch { .. }
            | Error::MissingColumn { .. }
            | Error::WrongType { .. }
            | Error::InvalidValue { .. }
            | Error::UnknownCategory { .. }
            | Error::MalformedRow { .. }
            | Error::Text { .. } => "IngotInputError",
            Error::Unsupported { .. } => "IngotUnsupportedError",
            Error::Usage { .. } => "IngotUsageError",
            Error::Signature { .. } => "IngotSignatureError",
            Error::Io { .. } => "IngotIoError",
            Error::Backend { .. } => "IngotBackendError",
        }
    }

    /// Whether the error was caused by the caller's input (as opposed to the model or the host).
    pub fn is_input_error(&self) -> bool {
        self.code() == "IngotInputError"
    }

    /// Whether the caller can fix the error by changing the call: an input error or a usage
    /// error (the HTTP server answers these with 400).
    ///
    /// ```
    /// assert!(ingot::Error::Usage { what: "send strings".into() }.is_caller_error());
    /// assert!(!ingot::Error::Unsupported { what: "an op".into() }.is_caller_error());
    /// ```
    pub fn is_caller_error(&self) -> bool {
        self.is_input_error() || matches!(self, Error::Usage { .. })
    }

    /// The request row an input error names, if it names one.
    ///
    /// ```
    /// assert_eq!(ingot::Error::MissingColumn { row: 7, column: "age".into() }.row(), Some(7));
    /// assert_eq!(ingot::Error::Usage { what: "x".into() }.row(), None);
    /// ```
    pub fn row(&self) -> Option<usize> {
        match self {
            Error::MissingColumn { row, .. }
            | Error::WrongType { row, .. }
            | Error::InvalidValue { row, .. }
            | Error::UnknownCategory { row, .. }
            | Error::MalformedRow { row, .. }
            | Error::Text { row, .. } => Some(*row),
            _ => None,
        }
    }

    /// Shifts the row index of an input error by `offset`, for callers that predict a large
    /// input in chunks and want row numbers relative to the whole input.
    ///
    /// ```
    /// let err = ingot::Error::MissingColumn { row: 2, column: "age".into() };
    /// assert_eq!(err.with_row_offset(4096).to_string(), "row 4098: missing column `age`");
    /// ```
    pub fn with_row_offset(mut self, offset: usize) -> Self {
        match &mut self {
            Error::MissingColumn { row, .. }
            | Error::WrongType { row, .. }
            | Error::InvalidValue { row, .. }
            | Error::UnknownCategory { row, .. }
            | Error::MalformedRow { row, .. }
            | Error::Text { row, .. } => *row = row.saturating_add(offset),
            _ => {}
        }
        self
    }

    pub(crate) fn format(check: &'static str, detail: impl Into<String>) -> Self {
        Error::Format { check, detail: detail.into() }.trace()
    }

    pub(crate) fn manifest(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Manifest { field: field.into(), detail: detail.into() }.trace()
    }

    /// A usage error: the call does not fit.
    pub fn usage(what: impl Into<String>) -> Self {
        Error::Usage { what: what.into() }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn signature(path: Option<&Path>, detail: impl Into<String>) -> Self {
        Error::Signature { path: path.map(Path::to_path_buf), detail: detail.into() }
    }

    pub(crate) fn backend(op: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let op = op.into();
        move |source| Error::Backend { op, source }
    }

    /// With `INGOT_PANIC_ON_ERR=1` in the environment, panics where the error is created so a
    /// backtrace shows its origin. A debugging aid; off by default.
    #[allow(clippy::panic)]
    fn trace(self) -> Self {
        if std::env::var_os("INGOT_PANIC_ON_ERR").is_some_and(|v| v == "1") {
            panic!("INGOT_PANIC_ON_ERR: {self}");
        }
        self
    }
}

/// The ` in `path`` of a message about a file; empty when the text came from memory.
fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!(" in `{}`", p.display())).unwrap_or_default()
}
