//! Writing bundles that are known to load: [`save`] and [`pack`].
//!
//! Every writer of `.ingot` files — the CLI's `pack` and `import`, the bindings' exporters —
//! goes through [`save`]: serialize, validate as a load would, write atomically. A file that
//! would not load is never written, and a failed write leaves the target as it was.

use std::path::Path;

use crate::error::Result;
use crate::format::{read_dir, to_bytes, write_bytes, Manifest, TensorData};
use crate::model::Model;

/// Serializes `manifest` and `tensors`, checks that the result loads as a [`Model`], and writes
/// it to `path` atomically; returns the loaded model.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let bundle = ingot::Bundle::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let tensors: Vec<(String, ingot::TensorData)> =
///     bundle.tensor_entries().keys().map(|n| (n.clone(), bundle.tensor_data(n).unwrap())).collect();
/// let model = ingot::save(dir.path().join("m.ingot"), bundle.manifest(), &tensors)?;
/// assert_eq!(model.metadata().name, "logistic");
///
/// let mut broken = bundle.manifest().clone();
/// broken.model.version = "one".into();
/// assert!(ingot::save(dir.path().join("bad.ingot"), &broken, &tensors).is_err());
/// assert!(!dir.path().join("bad.ingot").exists());
/// # Ok(()) }
/// ```
pub fn save(path: impl AsRef<Path>, manifest: &Manifest, tensors: &[(String, TensorData)]) -> Result<Model> {
    let model = Model::from_bytes(to_bytes(manifest, tensors)?)?;
    write_bytes(path, model.bundle().as_bytes())?;
    Ok(model)
}

/// Packs an unpacked directory (`manifest.json` + `tensors/*.npy`) into an `.ingot` file with
/// [`save`]; returns the loaded model.
pub fn pack(dir: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<Model> {
    let (manifest, tensors) = read_dir(dir)?;
    save(out, &manifest, &tensors)
}
