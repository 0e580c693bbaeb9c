//! Constant tensors: ONNX initializers and `Constant` nodes decoded from any of their storage
//! forms (typed fields, little-endian `raw_data`, or an external data file next to the model),
//! and the small amount of arithmetic the importer folds at import time.

use std::path::Path;

use half::{bf16, f16};

use super::proto::{data_type, TensorProto};

/// Largest number of elements one constant may hold (a 4 GiB f32 tensor).
const MAX_ELEMENTS: usize = 1 << 30;

/// The values of a constant, widened to the three kinds the importer computes with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    /// Floats of every width (f16, bf16, f32, f64 as f32).
    F32(Vec<f32>),
    /// Integers and booleans of every width.
    I64(Vec<i64>),
    /// UTF-8 strings.
    Str(Vec<String>),
}

/// A tensor known at import time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Const {
    pub(crate) dims: Vec<usize>,
    pub(crate) data: Data,
}

impl Const {
    /// A float tensor.
    pub(crate) fn f32(dims: Vec<usize>, data: Vec<f32>) -> Const {
        Const { dims, data: Data::F32(data) }
    }

    /// An integer tensor.
    pub(crate) fn i64(dims: Vec<usize>, data: Vec<i64>) -> Const {
        Const { dims, data: Data::I64(data) }
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Str(v) => v.len(),
        }
    }

    /// The values as f32 (integers converted), or `None` for strings.
    pub(crate) fn to_f32(&self) -> Option<Vec<f32>> {
        match &self.data {
            Data::F32(v) => Some(v.clone()),
            Data::I64(v) => Some(v.iter().map(|&x| x as f32).collect()),
            Data::Str(_) => None,
        }
    }

    /// The values as i64 (floats truncated), or `None` for strings.
    pub(crate) fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.data {
            Data::F32(v) => Some(v.iter().map(|&x| x as i64).collect()),
            Data::I64(v) => Some(v.clone()),
            Data::Str(_) => None,
        }
    }

    /// The single value of a scalar or one-element tensor, as f32.
    pub(crate) fn scalar_f32(&self) -> Option<f32> {
        (self.len() == 1).then(|| self.to_f32()).flatten().map(|v| v[0])
    }
}

/// Decodes one tensor; `dir` is the model's directory, where external data files live.
pub(crate) fn decode(t: &TensorProto, dir: Option<&Path>) -> Result<Const, String> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is negative")))
        .collect::<Result<Vec<usize>, String>>()?;
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("shape {dims:?} has more than {MAX_ELEMENTS} elements"))?;
    let external;
    let raw: &[u8] = if t.data_location == 1 || !t.external_data.is_empty() {
        external = read_external(t, dir)?;
        &external
    } else {
        &t.raw_data
    };
    let data = if raw.is_empty() { typed_fields(t)? } else { from_raw(t.data_type, raw, len)? };
    let got = match &data {
        Data::F32(v) => v.len(),
        Data::I64(v) => v.len(),
        Data::Str(v) => v.len(),
    };
    if got != len {
        return Err(format!("holds {got} values for shape {dims:?} ({len} values)"));
    }
    Ok(Const { dims, data })
}

/// The bytes of a tensor stored in an external file (`location`, `offset`, `length`), which
/// must lie inside the model's directory.
fn read_external(t: &TensorProto, dir: Option<&Path>) -> Result<Vec<u8>, String> {
    let key = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
    let location = key("location").ok_or("external data without a `location`")?;
    let relative = Path::new(location);
    if relative.is_absolute() || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "external data location `{location}` must be a plain path inside the model's directory"
        ));
    }
    let dir = dir.ok_or_else(|| {
        format!("external data `{location}` needs the model's directory (read the model from a file)")
    })?;
    let number = |k: &str| -> Result<Option<u64>, String> {
        key(k)
            .map(|v| v.parse::<u64>().map_err(|_| format!("external data `{k}` `{v}` is not a number")))
            .transpose()
    };
    let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
    let path = dir.join(relative);
    use std::io::{Read, Seek, SeekFrom};
    let mut file =
        std::fs::File::open(&path).map_err(|e| format!("external data `{}`: {e}", path.display()))?;
    let size = file.metadata().map_err(|e| format!("external data `{}`: {e}", path.display()))?.len();
    let length = length.unwrap_or(size.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(format!(
            "external data `{}` holds {size} bytes; the tensor wants {length} at offset {offset}",
            path.display()
        ));
    }
    let mut bytes = vec![0u8; usize::try_from(length).map_err(|_| "external data is too large")?];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| format!("external data `{}`: {e}", path.display()))?;
    Ok(bytes)
}

/// Values from the typed repeated fields (`float_data`, `int64_data`, …).
fn typed_fields(t: &TensorProto) -> Result<Data, String> {
    use data_type::*;
    Ok(match t.data_type {
        FLOAT => Data::F32(t.float_data.clone()),
        DOUBLE => Data::F32(t.double_data.iter().map(|&v| v as f32).collect()),
        // Half floats travel as their bits in `int32_data`.
        FLOAT16 => Data::F32(t.int32_data.iter().map(|&b| f16::from_bits(b as u16).to_f32()).collect()),
        BFLOAT16 => Data::F32(t.int32_data.iter().map(|&b| bf16::from_bits(b as u16).to_f32()).collect()),
        INT64 => Data::I64(t.int64_data.clone()),
        INT32 | INT8 | UINT8 | BOOL | 4 | 5 => {
            Data::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
        }
        STRING => Data::Str(
            t.string_data
                .iter()
                .map(|s| String::from_utf8(s.to_vec()).map_err(|_| "a string is not UTF-8".to_string()))
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("element type {} is not supported", data_type::name(other))),
    })
}

/// Values from little-endian `raw_data`.
fn from_raw(dtype: i32, raw: &[u8], len: usize) -> Result<Data, String> {
    use data_type::*;
    let width = match dtype {
        FLOAT | INT32 => 4,
        DOUBLE | INT64 => 8,
        FLOAT16 | BFLOAT16 => 2,
        INT8 | UINT8 | BOOL => 1,
        other => return Err(format!("element type {} in raw data is not supported", data_type::name(other))),
    };
    if raw.len() != len.saturating_mul(width) {
        return Err(format!(
            "raw data holds {} bytes; {len} {} values need {}",
            raw.len(),
            data_type::name(dtype),
            len * width
        ));
    }
    let words = |n: usize| raw.chunks_exact(n);
    Ok(match dtype {
        FLOAT => Data::F32(words(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        DOUBLE => {
            Data::F32(words(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32).collect())
        }
        FLOAT16 => Data::F32(words(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        BFLOAT16 => Data::F32(words(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        INT64 => Data::I64(words(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect()),
        INT32 => {
            Data::I64(words(4).map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect())
        }
        INT8 => Data::I64(raw.iter().map(|&b| i64::from(b as i8)).collect()),
        _ => Data::I64(raw.iter().map(|&b| i64::from(b)).collect()),
    })
}
