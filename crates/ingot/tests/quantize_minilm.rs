//! all-MiniLM-L6-v2 reduced to int8, f16 and bf16 against its own f32 bundle.
//!
//! Calibration: the first 64 of the 256 sentences of `tests/fixtures/minilm/bench_sentences.txt`
//! (the tests run in debug builds; `ingot quantize --data` takes any number). Checked on a
//! different, varied set: the 24 sentences of `tests/fixtures/minilm/expected.json` (empty, CJK,
//! emoji, Arabic, a sentence truncated at 256 tokens…). Targets (from the quantization issue):
//! per-sentence cosine to the f32 bundle ≥ 0.99 for every sentence and mean ≥ 0.998 for int8,
//! ≥ 0.9999 for f16, ≥ 0.999 for bf16; files ≤ 30 % (int8) and ≤ 52 % (f16, bf16) of the f32
//! bundle. Like the other MiniLM tests these are `#[ignore]`d and run by `make test`
//! (`INGOT_MINILM_DIR`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ingot::import::hf::{import_dir, ImportOptions};
use ingot::quantize::{quantize, Calibration, Precision, QuantizeOptions};
use ingot::Model;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/minilm")
}

fn source() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::var_os("INGOT_MINILM_DIR")
            .unwrap_or_else(|| panic!("INGOT_MINILM_DIR is not set: run these tests through `make test`"));
        let opts = ImportOptions { name: Some("all-MiniLM-L6-v2".into()), ..ImportOptions::default() };
        let (manifest, tensors) = import_dir(PathBuf::from(dir), &opts).unwrap();
        Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).unwrap()).unwrap()
    })
}

fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(v["sentences"].clone()).unwrap()
}

/// Quantizes, then checks every held-out sentence's cosine and the file size.
fn check(precision: Precision, min_each: f64, min_mean: f64, max_size: f64) {
    let calibration = Calibration::texts_from_lines(
        &std::fs::read_to_string(fixtures().join("bench_sentences.txt")).unwrap(),
    );
    let options = QuantizeOptions { per_layer: false, ..QuantizeOptions::new(precision) };
    let out = quantize(source(), &calibration, &options).unwrap();
    let texts = sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (want, got) = (source().embed(&refs).unwrap(), out.model.embed(&refs).unwrap());
    let cosines: Vec<f64> =
        (0..refs.len()).map(|i| ingot::testing::cosine(got.row(i), want.row(i))).collect();
    let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
    let size = out.bytes.len() as f64 / source().bundle().file_size() as f64;
    let worst = cosines.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    eprintln!(
        "{}: held-out cosine min {:.6} (sentence {}) mean {mean:.6}; calibration min {:.6} mean {:.6}; file {:.1} %",
        precision.name(),
        worst.1,
        worst.0,
        out.report.agreement.min_cosine,
        out.report.agreement.mean_cosine,
        100.0 * size
    );
    for (i, c) in cosines.iter().enumerate() {
        assert!(*c >= min_each, "{precision:?} sentence {i} {:?}: cosine {c}", texts[i]);
    }
    assert!(mean >= min_mean, "{precision:?}: mean cosine {mean}");
    assert!(size <= max_size, "{precision:?}: file is {:.1} % of the f32 bundle", 100.0 * size);
    assert!(out.report.agreement.min_cosine >= min_each, "{precision:?}: {:?}", out.report.agreement);
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn int8_keeps_every_sentence_above_0_99() {
    check(Precision::Int8, 0.99, 0.998, 0.30);
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn f16_keeps_every_sentence_above_0_9999() {
    check(Precision::F16, 0.9999, 0.9999, 0.52);
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn bf16_keeps_every_sentence_above_0_999() {
    check(Precision::Bf16, 0.999, 0.999, 0.52);
}
