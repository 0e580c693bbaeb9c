//! Importers that need no Python: read a trained model in its native layout and produce an
//! `.ingot` manifest and tensors.

pub mod hf;
pub mod lightgbm;
pub mod onnx;
mod ubjson;
pub mod xgboost;

/// Options of the tree-ensemble importers (XGBoost, LightGBM).
///
/// ```
/// let o = ingot::import::TreeImportOptions::default();
/// assert_eq!(o.version, "1.0.0");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TreeImportOptions {
    /// Model name (default: the file name without its extension).
    pub name: Option<String>,
    /// Model version (semver).
    pub version: String,
    /// Input column names, overriding those in the model file (one per feature).
    pub feature_names: Option<Vec<String>>,
}

impl Default for TreeImportOptions {
    fn default() -> Self {
        TreeImportOptions { name: None, version: "1.0.0".into(), feature_names: None }
    }
}
