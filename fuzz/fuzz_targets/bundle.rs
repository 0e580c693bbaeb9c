//! Any bytes given to the bundle reader and model validation: an error or a model, never a crash.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ingot::Model::from_bytes(data.to_vec());
});
