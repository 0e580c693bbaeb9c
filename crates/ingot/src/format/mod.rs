//! The `.ingot` file format, version 1 (docs/format.md): reader, writer, manifest types, the
//! `packed16` weight layout and the unpacked directory form.
//!
//! The lowest layer of the crate: it knows bytes, manifests and tensors, and nothing of models,
//! graphs or kernels (docs/architecture.md).

mod dir;
mod manifest;
pub mod npy;
pub mod packed;
mod reader;
mod tensor;
mod writer;

pub use dir::{read_dir, unpack};
pub use manifest::*;
pub use reader::{check_version, Bundle, ReadOptions, TensorEntry, DATA_ALIGNMENT, MAX_HEADER_SIZE};
pub use tensor::{DType, TensorData, TensorView};
pub use writer::{to_bytes, write_bytes, write_file};

/// Format version this build writes, `MAJOR.MINOR`.
pub const FORMAT_VERSION: &str = "1.0";
/// Highest major version this build reads.
pub const FORMAT_MAJOR: u32 = 1;
