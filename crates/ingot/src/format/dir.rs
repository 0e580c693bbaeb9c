//! The unpacked directory form (`manifest.json` + `tensors/*.npy`): [`read_dir`] and [`unpack`].
//!
//! Packing a directory into a bundle validates it as a model, so it lives above this layer
//! ([`crate::pack`]).

use std::fs;
use std::path::Path;

use super::manifest::Manifest;
use super::npy;
use super::reader::Bundle;
use super::tensor::TensorData;
use super::writer::check_tensor_name;
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};

/// Reads an unpacked directory: the manifest and every `tensors/*.npy`, sorted by name.
pub fn read_dir(dir: impl AsRef<Path>) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    let dir = dir.as_ref();
    let manifest_path = dir.join("manifest.json");
    let text = fs::read_to_string(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::format("manifest-json", format!("{}: {e}", manifest_path.display())))?;
    let tensor_dir = dir.join("tensors");
    let mut tensors = Vec::new();
    if tensor_dir.exists() {
        let entries = fs::read_dir(&tensor_dir).map_err(|e| Error::io(&tensor_dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&tensor_dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("npy") {
                continue;
            }
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            check_tensor_name(&name)?;
            let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
            tensors.push((name, npy::from_bytes(&bytes, &path.display().to_string())?));
        }
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((manifest, tensors))
}

/// Writes a bundle's manifest (without checksum) and tensors as an unpacked directory.
pub fn unpack(bundle: &Bundle, dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    let tensor_dir = dir.join("tensors");
    fs::create_dir_all(&tensor_dir).map_err(|e| Error::io(&tensor_dir, e))?;
    let mut manifest = bundle.manifest().clone();
    manifest.checksum = None;
    let text = serde_json::to_value(&manifest)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .map_err(|e| Error::manifest("manifest", e.to_string()))?;
    write_atomic(&dir.join("manifest.json"), text.as_bytes())?;
    for name in bundle.tensor_entries().keys() {
        if let Some(tensor) = bundle.tensor_data(name) {
            write_atomic(&tensor_dir.join(format!("{name}.npy")), &npy::to_bytes(&tensor)?)?;
        }
    }
    Ok(())
}
