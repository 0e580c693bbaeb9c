//! Any text as a model's `config.toml` and as an API key file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ingot_server::ModelConfig::parse(text);
        if let Ok(auth) = ingot_server::Auth::parse(text, "fuzz") {
            let _ = auth.check(Some(text), ingot_server::auth::Scope::Predict);
        }
    }
});
