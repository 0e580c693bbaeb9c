//! Tensor element types and borrowed/owned tensor data as stored in a bundle.

use crate::error::{Error, Result};

/// Element type of a stored tensor.
///
/// ```
/// use ingot::DType;
/// assert_eq!(DType::F32.size(), 4);
/// assert_eq!(DType::parse("I64"), Some(DType::I64));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// 16-bit float (IEEE half).
    F16,
    /// 16-bit bfloat (the upper half of an f32).
    BF16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// Unsigned byte.
    U8,
    /// Signed byte: int8-quantized weights, with their scales in an F32 tensor.
    I8,
}

impl DType {
    /// Size of one element in bytes (also its alignment in the data section).
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::I8 => 1,
        }
    }

    /// The safetensors name of the dtype, e.g. `F32`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::U8 => "U8",
            DType::I8 => "I8",
        }
    }

    /// Parses a safetensors dtype name; `None` for dtypes Ingot does not store.
    pub fn parse(name: &str) -> Option<DType> {
        Some(match name {
            "F64" => DType::F64,
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "I64" => DType::I64,
            "I32" => DType::I32,
            "U8" => DType::U8,
            "I8" => DType::I8,
            _ => return None,
        })
    }
}

/// Number of elements of `shape`, or `None` on overflow.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Byte length of a tensor of `dtype` and `shape`, or `None` on overflow.
pub(crate) fn byte_len(dtype: DType, shape: &[usize]) -> Option<usize> {
    element_count(shape)?.checked_mul(dtype.size())
}

/// A tensor borrowed from a loaded bundle.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: &'a [usize],
    /// Raw little-endian bytes.
    pub data: &'a [u8],
}

impl TensorView<'_> {
    /// Decodes the tensor as f32 values (from F32, F16, BF16 or F64 storage). I8 tensors are
    /// quantized weights, meaningful only with their scales: they are refused here.
    ///
    /// ```
    /// use ingot::{DType, TensorView};
    /// let bytes: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    /// let view = TensorView { dtype: DType::F32, shape: &[2], data: &bytes };
    /// assert_eq!(view.to_f32_vec().unwrap(), vec![1.5, -2.0]);
    /// ```
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        let out = match self.dtype {
            DType::F32 => {
                self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            }
            DType::F16 => {
                self.data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
            }
            DType::BF16 => {
                self.data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
            }
            DType::F64 => self
                .data
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b) as f32
                })
                .collect(),
            other => {
                return Err(Error::Unsupported {
                    what: format!("{} tensor used where floats are needed", other.name()),
                })
            }
        };
        Ok(out)
    }
}

/// An owned tensor, as handed to the writer.
///
/// ```
/// let t = ingot::TensorData::from_f32(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
/// assert_eq!(t.data.len(), 16);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Raw little-endian bytes; length must be `product(shape) * dtype.size()`.
    pub data: Vec<u8>,
}

impl TensorData {
    /// Builds a tensor, checking that the byte length matches dtype and shape.
    pub fn new(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        let expected = byte_len(dtype, &shape);
        if expected != Some(data.len()) {
            return Err(Error::ShapeMismatch {
                what: "tensor data".into(),
                expected: format!("{:?} bytes for {} {:?}", expected, dtype.name(), shape),
                got: format!("{} bytes", data.len()),
            });
        }
        Ok(TensorData { dtype, shape, data })
    }

    /// Builds an F32 tensor from values.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Result<Self> {
        Self::new(DType::F32, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// Borrows this tensor as a view.
    pub fn view(&self) -> TensorView<'_> {
        TensorView { dtype: self.dtype, shape: &self.shape, data: &self.data }
    }
}
