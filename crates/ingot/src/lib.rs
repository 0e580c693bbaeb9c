#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arena;
mod atomic_file;
mod error;
mod exec;
pub mod format;
mod graph;
pub mod import;
mod input;
pub mod io;
mod kernels;
mod layer;
mod model;
mod output;
mod parallel;
mod postprocess;
mod preprocess;
pub mod quantize;
mod save;
pub mod signing;
mod storage;
#[doc(hidden)]
pub mod testing;
pub mod trees;
mod value;
mod version;

pub use atomic_file::AtomicFile;
pub use candle_core::Device;
pub use error::{Error, Result};
pub use exec::{device_name, parse_device, Kernels};
pub use format::{Bundle, DType, Manifest, ModelCard, ReadOptions, Signature, TensorData, TensorView};
pub use graph::OPSET;
pub use input::{ColumnValues, Dense, DenseData, DenseRows, Frame, FrameColumn, Input, Offsets};
pub use kernels::isa::{isa_level, IsaLevel};
pub use layer::LinearLayer;
pub use model::{LoadOptions, Model};
pub use output::{
    ClassProbabilities, ColumnData, Labels, Matrix, OutputColumn, OutputLayout, OutputSlices, Prediction,
    PredictionRow,
};
pub use parallel::pool_threads;
pub use postprocess::Task;
pub use preprocess::text::TokenBatch;
pub use save::{pack, save};
pub use value::{Columns, Record, Value};
pub use version::{compare_versions, is_model_name, is_semver};
