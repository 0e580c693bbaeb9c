//! Pre-processing stages: pure functions from raw request input to the graph's inputs.

pub(crate) mod tabular;
pub(crate) mod text;
