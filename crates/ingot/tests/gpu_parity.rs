//! Models on `cuda:0` against the same bundles on the CPU's fused kernels (`make test-gpu`).
//!
//! Built only with the `cuda` feature (`make cuda-check` compiles it on any machine) and run by
//! `make test-gpu` where `nvidia-smi` lists a GPU; without a usable `cuda:0` every test fails,
//! saying why.
//!
//! Tolerances (from the CUDA issue): f32 outputs within `1e-4 · max(1, |cpu|)` of the CPU's,
//! labels identical; reduced-precision MiniLM bundles (dequantized to f32 on the device) within
//! their quantization targets of the f32 CPU embeddings: per-sentence cosine ≥ 0.99 (int8),
//! ≥ 0.9999 (f16), ≥ 0.999 (bf16).
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ingot::format::{read_dir, to_bytes};
use ingot::import::hf::{import_dir, ImportOptions};
use ingot::quantize::{quantize, Calibration, Precision, QuantizeOptions};
use ingot::{Bundle, Input, LoadOptions, Model, Record};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// `cuda:0`.
fn gpu() -> ingot::Device {
    ingot::parse_device("cuda:0").unwrap_or_else(|e| panic!("these tests need a GPU: {e}"))
}

/// The bundle `bytes` on the CPU and on `device`.
fn both(bytes: Vec<u8>, device: &ingot::Device) -> (Model, Model) {
    let cpu =
        Model::from_bundle(Bundle::from_bytes(bytes.clone()).unwrap(), &LoadOptions::default()).unwrap();
    let options = LoadOptions { device: device.clone(), ..LoadOptions::default() };
    let gpu = Model::from_bundle(Bundle::from_bytes(bytes).unwrap(), &options).unwrap();
    assert_eq!(gpu.runs_on(), ("cuda:0".to_string(), "candle"));
    (cpu, gpu)
}

fn close(what: &str, gpu: &[f32], cpu: &[f32]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert!((g - c).abs() <= 1e-4 * c.abs().max(1.0), "{what}: value {i}: cuda {g} vs cpu {c}");
    }
}

#[test]
fn scikit_learn_fixtures_on_the_gpu_give_the_cpu_outputs() {
    let device = gpu();
    for case in ["breast_cancer_logreg", "diabetes_ridge", "digits_mlp", "wine_multinomial", "mixed_columns"]
    {
        let dir = fixtures().join(case);
        let (manifest, tensors) = read_dir(dir.join("model")).unwrap();
        let (cpu, gpu) = both(to_bytes(&manifest, &tensors).unwrap(), &device);
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let records: Vec<Record> = serde_json::from_value(expected["records"].clone()).unwrap();
        let (a, b) =
            (cpu.predict(Input::Records(&records)).unwrap(), gpu.predict(Input::Records(&records)).unwrap());
        close(case, b.scores.as_slice(), a.scores.as_slice());
        assert_eq!(a.labels.map(|l| l.indices().to_vec()), b.labels.map(|l| l.indices().to_vec()), "{case}");
    }
}

fn minilm() -> Model {
    let dir = std::env::var_os("INGOT_MINILM_DIR")
        .unwrap_or_else(|| panic!("INGOT_MINILM_DIR is not set: run these tests through `make test-gpu`"));
    let opts = ImportOptions { name: Some("all-MiniLM-L6-v2".into()), ..ImportOptions::default() };
    let (manifest, tensors) = import_dir(PathBuf::from(dir), &opts).unwrap();
    Model::from_bytes(to_bytes(&manifest, &tensors).unwrap()).unwrap()
}

fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("minilm/expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(v["sentences"].clone()).unwrap()
}

#[test]
#[ignore = "needs the MiniLM model: run make test-gpu"]
fn minilm_on_the_gpu_gives_the_cpu_embeddings_in_every_precision() {
    let device = gpu();
    let source = minilm();
    let texts = sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let want = source.embed(&refs).unwrap();
    let (_, gpu) = both(source.bundle().as_bytes().to_vec(), &device);
    close("MiniLM f32", gpu.embed(&refs).unwrap().as_slice(), want.as_slice());
    for s in &refs[..3] {
        close(
            &format!("MiniLM f32, {s:?} alone"),
            gpu.embed(&[s]).unwrap().as_slice(),
            source.embed(&[s]).unwrap().as_slice(),
        );
    }
    let calibration = Calibration::texts_from_lines(
        &std::fs::read_to_string(fixtures().join("minilm/bench_sentences.txt")).unwrap(),
    );
    for (precision, min_cosine) in
        [(Precision::Int8, 0.99), (Precision::F16, 0.9999), (Precision::Bf16, 0.999)]
    {
        let options = QuantizeOptions { per_layer: false, ..QuantizeOptions::new(precision) };
        let reduced = quantize(&source, &calibration, &options).unwrap();
        let (_, gpu) = both(reduced.bytes, &device);
        let got = gpu.embed(&refs).unwrap();
        for i in 0..refs.len() {
            let cosine = ingot::testing::cosine(got.row(i), want.row(i));
            assert!(cosine >= min_cosine, "{} sentence {i}: cosine {cosine}", precision.name());
        }
    }
}
