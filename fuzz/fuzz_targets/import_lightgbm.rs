//! Any UTF-8 text as a LightGBM text model: the importer returns an error or a bundle that
//! loads and predicts a row of NaN, zeros and a large value, never a crash.
#![no_main]

use ingot::import::lightgbm::import_str;
use ingot::import::TreeImportOptions;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((manifest, tensors)) = import_str(text, "fuzz", &TreeImportOptions::default()) else { return };
    let Ok(bytes) = ingot::format::to_bytes(&manifest, &tensors) else { return };
    let Ok(model) = ingot::Model::from_bytes(bytes) else { return };
    let width = manifest.signature.inputs.len();
    let row: Vec<f32> = (0..width).map(|i| [f32::NAN, 0.0, -1.5, 3e9][i % 4]).collect();
    let _ = model.predict_dense(&row, 1, width);
});
