//! Any Open Inference Protocol request body (JSON, or a JSON header and binary tensors), decoded
//! and mapped onto a tabular model's rows, then run.
#![no_main]
use std::sync::OnceLock;

use ingot_server::v2::{decode, tensor};

static MODEL: OnceLock<ingot::Model> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let model = MODEL.get_or_init(|| {
        ingot::Model::from_bytes(ingot::testing::logistic_bundle().expect("bundle")).expect("model")
    });
    // The first two bytes give the JSON header's length (0xffff: no binary part).
    let Some((len, body)) = data.split_first_chunk::<2>() else { return };
    let len = u16::from_le_bytes(*len);
    let mut headers = axum::http::HeaderMap::new();
    if len != u16::MAX {
        headers.insert("inference-header-content-length", len.into());
    }
    if let Ok((_, inputs)) = decode(&headers, body, 64) {
        if let Ok(payload) = tensor::to_payload(model, inputs) {
            let _ = payload.predict(model);
        }
    }
});
