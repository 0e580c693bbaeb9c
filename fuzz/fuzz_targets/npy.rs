//! Any bytes given to the `.npy` parser of the unpacked directory form.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ingot::format::npy::from_bytes(data, "fuzz.npy");
});
