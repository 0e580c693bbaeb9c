//! What every shell needs to move data in and out of a model, written once: the CSV rules
//! ([`csv`]), Apache Arrow batches ([`arrow`]) and batch scoring past bad rows
//! ([`predict_around_errors`]).
//!
//! The CLI, the server and the bindings only parse their own transport (files, HTTP bodies,
//! Python or JavaScript objects) and call these. The flat, column layout of a prediction is
//! [`crate::Prediction::columns`]; rows from nested lists are [`crate::DenseRows`].

pub mod arrow;
pub mod csv;
mod skip;

pub use skip::predict_around_errors;
