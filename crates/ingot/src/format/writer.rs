//! Writing `.ingot` files: deterministic bytes, 64-byte aligned data, atomic replace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::manifest::Manifest;
use super::reader::DATA_ALIGNMENT;
use super::tensor::{byte_len, TensorData};
use super::FORMAT_VERSION;
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};

/// Serializes a manifest and its tensors to the bytes of an `.ingot` file.
///
/// The manifest's `checksum` is replaced by the BLAKE3 hash of the data section. Tensors are laid
/// out by alignment (descending), then name; the same inputs always give the same bytes.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::{format::to_bytes, testing::tiny_manifest};
/// let t = ingot::TensorData::from_f32(vec![2], &[1.0, 2.0])?;
/// let bytes = to_bytes(&tiny_manifest(), &[("w".to_string(), t.clone())])?;
/// assert_eq!(bytes, to_bytes(&tiny_manifest(), &[("w".to_string(), t)])?);
/// let bundle = ingot::Bundle::from_bytes(bytes)?;
/// assert_eq!(bundle.tensor("w").unwrap().to_f32_vec()?, vec![1.0, 2.0]);
/// # Ok(()) }
/// ```
pub fn to_bytes(manifest: &Manifest, tensors: &[(String, TensorData)]) -> Result<Vec<u8>> {
    let mut names = BTreeSet::new();
    for (name, tensor) in tensors {
        check_tensor_name(name)?;
        if !names.insert(name.as_str()) {
            return Err(Error::manifest("tensors", format!("tensor `{name}` is given twice")));
        }
        if Some(tensor.data.len()) != byte_len(tensor.dtype, &tensor.shape) {
            return Err(Error::ShapeMismatch {
                what: format!("tensor `{name}`"),
                expected: format!("{} {:?}", tensor.dtype.name(), tensor.shape),
                got: format!("{} bytes", tensor.data.len()),
            });
        }
    }
    let mut order: Vec<&(String, TensorData)> = tensors.iter().collect();
    order.sort_by(|a, b| b.1.dtype.size().cmp(&a.1.dtype.size()).then_with(|| a.0.cmp(&b.0)));

    let mut data = Vec::with_capacity(tensors.iter().map(|t| t.1.data.len()).sum());
    let mut entries = BTreeMap::new();
    for (name, tensor) in order {
        let start = data.len();
        data.extend_from_slice(&tensor.data);
        entries.insert(
            name.clone(),
            serde_json::json!({
                "data_offsets": [start, data.len()],
                "dtype": tensor.dtype.name(),
                "shape": tensor.shape,
            }),
        );
    }

    let mut manifest = manifest.clone();
    manifest.checksum = Some(blake3::hash(&data).to_hex().to_string());
    // Going through `serde_json::Value` sorts every object's keys.
    let manifest_json = serde_json::to_value(&manifest)
        .and_then(|v| serde_json::to_string(&v))
        .map_err(|e| Error::manifest("manifest", e.to_string()))?;
    let mut metadata = BTreeMap::new();
    metadata.insert("ingot.format", FORMAT_VERSION.to_owned());
    metadata.insert("ingot.manifest", manifest_json);
    metadata.insert("name", manifest.model.name.clone());
    metadata.insert("version", manifest.model.version.clone());

    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    for (name, entry) in entries {
        header.insert(name, entry);
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::manifest("header", e.to_string()))?;
    let padded = (8 + header.len()).div_ceil(DATA_ALIGNMENT) * DATA_ALIGNMENT - 8;
    header.resize(padded, b' ');

    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    Ok(out)
}

/// Writes an `.ingot` file atomically: a temporary file in the same directory, then a rename.
///
/// On any error the target is left as it was. This checks the container only; [`crate::save`]
/// also checks that the result loads as a model, and is what exporters and importers use.
pub fn write_file(
    path: impl AsRef<Path>,
    manifest: &Manifest,
    tensors: &[(String, TensorData)],
) -> Result<()> {
    let bytes = to_bytes(manifest, tensors)?;
    write_atomic(path.as_ref(), &bytes)
}

/// Writes the bytes of a serialized bundle (from [`to_bytes`]) atomically.
pub fn write_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic(path.as_ref(), bytes)
}

/// Checks a tensor name against `[A-Za-z0-9._-]{1,200}`.
pub(crate) fn check_tensor_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "__metadata__";
    if ok {
        Ok(())
    } else {
        Err(Error::manifest(format!("tensors.{name}"), "tensor names must match [A-Za-z0-9._-]{1,200}"))
    }
}
