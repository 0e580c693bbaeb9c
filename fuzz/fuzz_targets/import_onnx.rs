//! Any bytes as an ONNX model: the importer returns an error or a bundle that loads and
//! predicts a row of NaN, zeros, negative, fractional and large values, never a crash.
#![no_main]

use ingot::import::onnx::{import_bytes, OnnxImportOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok((manifest, tensors)) = import_bytes(data, None, "fuzz", &OnnxImportOptions::default()) else {
        return;
    };
    let Ok(bytes) = ingot::format::to_bytes(&manifest, &tensors) else { return };
    let Ok(model) = ingot::Model::from_bytes(bytes) else { return };
    let width = model.input_width();
    let row: Vec<f32> = (0..width).map(|i| [f32::NAN, 0.0, -0.5, 2.5, 3e9][i % 5]).collect();
    let _ = model.predict_dense(&row, 1, width);
});
