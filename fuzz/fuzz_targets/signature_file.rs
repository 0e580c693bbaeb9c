//! Any bytes given to the signature file and key file parsers: an error or a value that writes
//! back as text parsing to the same value, never a crash.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(signature) = ingot::signing::SignatureFile::parse(text) {
        assert_eq!(ingot::signing::SignatureFile::parse(&signature.to_string()).ok(), Some(signature));
    }
    if let Ok(key) = text.parse::<ingot::signing::VerifyingKey>() {
        assert_eq!(key.to_string().parse::<ingot::signing::VerifyingKey>().ok(), Some(key));
    }
    let _ = text.parse::<ingot::signing::SigningKey>();
});
