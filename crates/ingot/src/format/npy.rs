//! NumPy `.npy` files (version 1.0–3.0, little-endian, C order), used by the unpacked directory.

use super::tensor::{byte_len, DType, TensorData};
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses the bytes of a `.npy` file into a tensor.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::format::npy;
/// let t = ingot::TensorData::from_f32(vec![2, 3], &[1.0; 6])?;
/// let bytes = npy::to_bytes(&t)?;
/// assert_eq!(npy::from_bytes(&bytes, "t.npy")?, t);
/// # Ok(()) }
/// ```
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<TensorData> {
    let bad = |detail: String| Error::format("npy", format!("`{what}`: {detail}"));
    if bytes.get(..6) != Some(MAGIC) {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let major = *bytes.get(6).ok_or_else(|| bad("truncated".into()))?;
    let (header_len, header_start): (usize, usize) = match major {
        1 => {
            let b = bytes.get(8..10).ok_or_else(|| bad("truncated".into()))?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
        }
        2 | 3 => {
            let b = bytes.get(8..12).ok_or_else(|| bad("truncated".into()))?;
            let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (usize::try_from(n).map_err(|_| bad("header too large".into()))?, 12)
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("header length points past the end of the file".into()))?;
    let header = std::str::from_utf8(&bytes[header_start..header_end])
        .map_err(|_| bad("header is not UTF-8".into()))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("header has no `descr`".into()))?;
    let dtype = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f8" => DType::F64,
        "<f4" => DType::F32,
        "<f2" => DType::F16,
        "<i8" => DType::I64,
        "<i4" => DType::I32,
        "|u1" | "<u1" => DType::U8,
        "|i1" | "<i1" => DType::I8,
        other => {
            return Err(bad(format!("unsupported dtype {other} (little-endian f8/f4/f2/i8/i4/u1/i1 only)")))
        }
    };
    let fortran =
        dict_value(header, "fortran_order").ok_or_else(|| bad("header has no `fortran_order`".into()))?;
    if fortran.trim() != "False" {
        return Err(bad("Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into()));
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| bad("header has no `shape`".into()))?;
    let shape = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(format!("bad shape entry `{s}`"))))
        .collect::<Result<Vec<_>>>()?;
    let data = &bytes[header_end..];
    if byte_len(dtype, &shape) != Some(data.len()) {
        return Err(bad(format!("{} bytes of data do not match {descr} {shape:?}", data.len())));
    }
    TensorData::new(dtype, shape, data.to_vec())
}

/// The value text of `'key': value` in a NumPy header dict, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header.find(&format!("'{key}'"))?;
    let rest = header.get(pos + key.len() + 2..)?.trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            ',' | '}' if depth == 0 => return rest.get(..i),
            _ => {}
        }
    }
    None
}

/// Serializes a tensor as a version 1.0 `.npy` file. BF16 has no NumPy dtype: refused.
pub fn to_bytes(tensor: &TensorData) -> Result<Vec<u8>> {
    let descr = match tensor.dtype {
        DType::F64 => "<f8",
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::U8 => "|u1",
        DType::I8 => "|i1",
        DType::BF16 => {
            return Err(Error::Unsupported {
                what: "BF16 tensors in .npy files (NumPy has no bfloat16 dtype)".into(),
            })
        }
    };
    let shape = match tensor.shape.as_slice() {
        [d] => format!("({d},)"),
        dims => format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + tensor.data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&tensor.data);
    Ok(out)
}
