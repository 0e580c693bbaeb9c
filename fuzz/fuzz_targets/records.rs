//! Any JSON request body parsed as records and run through a tabular model.
#![no_main]
use std::sync::OnceLock;

static MODEL: OnceLock<ingot::Model> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let model = MODEL.get_or_init(|| {
        ingot::Model::from_bytes(ingot::testing::logistic_bundle().expect("bundle")).expect("model")
    });
    if let Ok(records) = serde_json::from_slice::<Vec<ingot::Record>>(data) {
        let _ = model.predict_records(&records);
    }
});
