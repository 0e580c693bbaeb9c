//! The `.ingot` file format, version 1 (docs/format.md): reader, writer, manifest types and the
//! unpacked directory form.

mod dir;
mod manifest;
pub mod npy;
mod reader;
mod tensor;
mod writer;

pub use dir::{pack, read_dir, unpack};
pub use manifest::*;
pub(crate) use reader::F32Data;
pub use reader::{check_version, Bundle, ReadOptions, TensorEntry, DATA_ALIGNMENT, MAX_HEADER_SIZE};
pub use tensor::{DType, TensorData, TensorView};
pub use writer::{to_bytes, write_bytes, write_file};

/// Format version this build writes, `MAJOR.MINOR`.
pub const FORMAT_VERSION: &str = "1.0";
/// Highest major version this build reads.
pub const FORMAT_MAJOR: u32 = 1;
