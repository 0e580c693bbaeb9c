//! Pre-processing stages: pure functions from raw request input to the graph's input matrix.

pub(crate) mod tabular;
