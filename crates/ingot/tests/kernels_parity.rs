//! The two lowerings of one graph agree: Ingot's fused CPU kernels and candle's own ops
//! (`Kernels::Candle`, the path every non-CPU device runs), both on the CPU.
//!
//! Cases: every scikit-learn fixture (linear, softmax, MLP, the mixed tables), the three encoder
//! layouts of `tests/fixtures/arch` (CLS, max and mean pooling, truncation), and all-MiniLM-L6-v2
//! in f32 and f16 (`#[ignore]`d like the other MiniLM tests: `make test` runs them with
//! `INGOT_MINILM_DIR`).
//!
//! Tolerance (from the CUDA issue): every output value within `1e-5 · max(1, |fused|)` of the
//! fused kernels' (the two differ only in summation order and the softmax's `e^x`); labels
//! identical.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ingot::format::{read_dir, to_bytes};
use ingot::import::hf::{import_dir, ImportOptions};
use ingot::{Bundle, Input, Kernels, LoadOptions, Model, Record};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The model of `bytes` with both kernels: (fused, candle).
fn both(bytes: Vec<u8>) -> (Model, Model) {
    let load = |kernels| {
        let options = LoadOptions { kernels, ..LoadOptions::default() };
        Model::from_bundle(Bundle::from_bytes(bytes.clone()).unwrap(), &options).unwrap()
    };
    (load(Kernels::Auto), load(Kernels::Candle))
}

/// Every value of `got` within 1e-5 · max(1, |want|) of `want`.
fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= 1e-5 * w.abs().max(1.0);
        assert!(ok, "{what}: value {i}: candle {g} vs fused {w}");
    }
}

#[test]
fn scikit_learn_fixtures_give_the_same_outputs_with_both_kernels() {
    let cases = [
        "breast_cancer_logreg",
        "diabetes_ridge",
        "digits_mlp",
        "iris_sgd",
        "wine_multinomial",
        "mixed_columns",
        "mixed_regression",
    ];
    for case in cases {
        let dir = fixtures().join(case);
        let (manifest, tensors) = read_dir(dir.join("model")).unwrap();
        let (fused, candle) = both(to_bytes(&manifest, &tensors).unwrap());
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let records: Vec<Record> = serde_json::from_value(expected["records"].clone()).unwrap();
        let (a, b) = (
            fused.predict(Input::Records(&records)).unwrap(),
            candle.predict(Input::Records(&records)).unwrap(),
        );
        close(&format!("{case} scores"), b.scores.as_slice(), a.scores.as_slice());
        if let (Some(p), Some(q)) = (&a.probabilities, &b.probabilities) {
            close(&format!("{case} probabilities"), q.as_slice(), p.as_slice());
        }
        if let (Some(p), Some(q)) = (&a.values, &b.values) {
            close(&format!("{case} values"), q.as_slice(), p.as_slice());
        }
        assert_eq!(
            a.labels.map(|l| l.indices().to_vec()),
            b.labels.map(|l| l.indices().to_vec()),
            "{case}: labels"
        );
    }
}

/// The sentences of a text fixture.
fn sentences(expected: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(expected).unwrap()).unwrap();
    serde_json::from_value(v["sentences"].clone()).unwrap()
}

/// `texts` in one batch, and the first few alone, through both kernels.
fn check_text(name: &str, fused: &Model, candle: &Model, texts: &[String]) {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (a, b) = (fused.embed(&refs).unwrap(), candle.embed(&refs).unwrap());
    close(&format!("{name}, one batch"), b.as_slice(), a.as_slice());
    for s in refs.iter().take(3) {
        let (a, b) = (fused.embed(&[s]).unwrap(), candle.embed(&[s]).unwrap());
        close(&format!("{name}, {s:?} alone"), b.as_slice(), a.as_slice());
    }
    let (a, b) = (fused.embed(&[]).unwrap(), candle.embed(&[]).unwrap());
    assert_eq!((a.rows(), b.rows()), (0, 0), "{name}: no texts");
}

#[test]
fn the_encoder_layouts_give_the_same_embeddings_with_both_kernels() {
    for name in ["distilbert", "roberta", "xlm-roberta"] {
        let dir = fixtures().join("arch").join(name);
        let (manifest, tensors) = import_dir(dir.join("model"), &ImportOptions::default()).unwrap();
        let (fused, candle) = both(to_bytes(&manifest, &tensors).unwrap());
        check_text(name, &fused, &candle, &sentences(&dir.join("expected.json")));
    }
}

fn minilm() -> Vec<u8> {
    let dir = std::env::var_os("INGOT_MINILM_DIR")
        .unwrap_or_else(|| panic!("INGOT_MINILM_DIR is not set: run these tests through `make test`"));
    let opts = ImportOptions { name: Some("all-MiniLM-L6-v2".into()), ..ImportOptions::default() };
    let (manifest, tensors) = import_dir(PathBuf::from(dir), &opts).unwrap();
    to_bytes(&manifest, &tensors).unwrap()
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn minilm_gives_the_same_embeddings_with_both_kernels_in_f32_and_f16() {
    let texts = sentences(&fixtures().join("minilm/expected.json"));
    let (fused, candle) = both(minilm());
    check_text("MiniLM f32", &fused, &candle, &texts);

    let calibration = ingot::quantize::Calibration::texts_from_lines("a short sentence\nanother one");
    let options = ingot::quantize::QuantizeOptions {
        per_layer: false,
        ..ingot::quantize::QuantizeOptions::new(ingot::quantize::Precision::F16)
    };
    let f16 = ingot::quantize::quantize(&fused, &calibration, &options).unwrap();
    let (fused, candle) = both(f16.bytes);
    check_text("MiniLM f16", &fused, &candle, &texts);
}

#[test]
fn a_tree_ensemble_is_refused_at_load_by_candle_naming_the_op_and_the_device() {
    let path = fixtures().join("trees/xgboost/binary_logistic.json");
    let (manifest, tensors) =
        ingot::import::xgboost::import_file(&path, &ingot::import::TreeImportOptions::default()).unwrap();
    let bytes = to_bytes(&manifest, &tensors).unwrap();
    let options = LoadOptions { kernels: Kernels::Candle, ..LoadOptions::default() };
    let err = Model::from_bundle(Bundle::from_bytes(bytes).unwrap(), &options).unwrap_err().to_string();
    assert!(
        err.contains("TreeEnsemble") && err.contains("device cpu") && err.contains("CPU kernel"),
        "{err}"
    );
}
