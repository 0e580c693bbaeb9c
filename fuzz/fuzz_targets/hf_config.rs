//! Any bytes as the `config.json` of a Hugging Face directory (the rest is the small DistilBERT
//! or RoBERTa fixture, picked by the first byte): the importer returns an error or a bundle that
//! loads and embeds a sentence, never a crash.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ingot::import::hf::{import_dir, ImportOptions};

/// One scratch copy of each fixture directory per process; only config.json is rewritten.
fn scratch(arch: &str) -> &'static Path {
    static DIRS: OnceLock<[PathBuf; 2]> = OnceLock::new();
    let dirs = DIRS.get_or_init(|| {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/arch");
        ["distilbert", "roberta"].map(|name| {
            let dst = std::env::temp_dir().join(format!("ingot-fuzz-hf-{}-{name}", std::process::id()));
            copy_dir(&fixtures.join(name).join("model"), &dst);
            dst
        })
    });
    if arch == "distilbert" {
        &dirs[0]
    } else {
        &dirs[1]
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("scratch dir");
    for entry in std::fs::read_dir(src).expect("fixture dir") {
        let entry = entry.expect("fixture entry");
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy fixture");
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, config)) = data.split_first() else { return };
    let dir = scratch(if which % 2 == 0 { "distilbert" } else { "roberta" });
    std::fs::write(dir.join("config.json"), config).expect("write config.json");
    let Ok((manifest, tensors)) = import_dir(dir, &ImportOptions::default()) else { return };
    let Ok(bytes) = ingot::format::to_bytes(&manifest, &tensors) else { return };
    if let Ok(model) = ingot::Model::from_bytes(bytes) {
        let _ = model.embed(&["a short sentence", ""]);
    }
});
