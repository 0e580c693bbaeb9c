//! Any bytes as an XGBoost model (JSON or UBJSON, told apart by the bytes): the importer
//! returns an error or a bundle that loads and predicts a row of NaN, zeros, negative,
//! fractional and large values, never a crash.
#![no_main]

use ingot::import::xgboost::import_bytes;
use ingot::import::TreeImportOptions;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok((manifest, tensors)) = import_bytes(data, "fuzz", &TreeImportOptions::default()) else { return };
    let Ok(bytes) = ingot::format::to_bytes(&manifest, &tensors) else { return };
    let Ok(model) = ingot::Model::from_bytes(bytes) else { return };
    let width = manifest.signature.inputs.len();
    let row: Vec<f32> = (0..width).map(|i| [f32::NAN, 0.0, -0.5, 2.5, 3e9][i % 5]).collect();
    let _ = model.predict_dense(&row, 1, width);
});
