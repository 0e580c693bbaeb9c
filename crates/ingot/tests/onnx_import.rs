//! `ingot::import::onnx`: every fixture under `tests/fixtures/onnx/` imported, run on its
//! held-out inputs, and compared with ONNX Runtime's outputs on them.
//!
//! The fixtures are made by `scripts/onnx_fixtures/torch_fixtures.py` (PyTorch MLP and CNNs,
//! a tiny BERT) and `scripts/onnx_fixtures/sklearn_fixtures.py` (skl2onnx pipelines, a random
//! forest, onnxmltools XGBoost); `<case>.expected.json` holds the inputs and ONNX Runtime's
//! outputs (see tests/fixtures/onnx/README.md).
//!
//! Tolerance: `|ingot − ort| ≤ 1e-5 · max(1, |ort|)` for every score, probability and value:
//! both run f32 arithmetic, in different orders (Ingot's packed GEMM and im2col against ORT's
//! MLAS), which moves results by a few ulps of the largest intermediate; labels must be equal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ingot::import::onnx::{import_file, OnnxImportOptions};
use ingot::{Model, Record, Value};
use serde_json::Value as Json;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx")
}

/// One named tensor of the expected file.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    data: Vec<Json>,
    zipmap: bool,
}

impl Tensor {
    fn floats(&self) -> Vec<f32> {
        self.data.iter().map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32)).collect()
    }

    fn is_float(&self) -> bool {
        self.data.iter().any(Json::is_f64) || self.zipmap
    }
}

fn tensors(v: &Json) -> Vec<Tensor> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| Tensor {
            name: name.clone(),
            shape: t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            data: t["data"].as_array().unwrap().clone(),
            zipmap: t.get("zipmap").is_some(),
        })
        .collect()
}

struct Case {
    model: Model,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
}

fn case(name: &str, options: &OnnxImportOptions) -> Case {
    let (manifest, tensors_) =
        import_file(&dir().join(format!("{name}.onnx")), options).unwrap_or_else(|e| panic!("{name}: {e}"));
    let model = Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors_).unwrap()).unwrap();
    let text = std::fs::read_to_string(dir().join(format!("{name}.expected.json"))).unwrap();
    let v: Json = serde_json::from_str(&text).unwrap();
    Case { model, inputs: tensors(&v["inputs"]), outputs: tensors(&v["outputs"]) }
}

/// Runs the case's inputs: a single float input as a dense matrix, several inputs (one per
/// column, as skl2onnx writes them) as records.
fn predict(c: &Case) -> ingot::Prediction {
    if let [x] = c.inputs.as_slice() {
        let rows = x.shape[0];
        let width = x.shape[1..].iter().product();
        return c.model.predict_dense(&x.floats(), rows, width).unwrap();
    }
    let rows = c.inputs[0].shape[0];
    let records: Vec<Record> = (0..rows)
        .map(|r| {
            c.inputs
                .iter()
                .map(|t| {
                    let v = match &t.data[r] {
                        Json::String(s) => Value::String(s.clone()),
                        Json::Null => Value::Null,
                        other => Value::Number(other.as_f64().unwrap()),
                    };
                    (t.name.clone(), v)
                })
                .collect()
        })
        .collect();
    c.model.predict_records(&records).unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, ONNX Runtime has {}", got.len(), want.len());
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(err <= 1e-5 * w.abs().max(1.0), "{what}[{i}]: ingot {g}, onnxruntime {w}");
        worst = worst.max(err);
    }
    eprintln!("{what}: max |ingot − onnxruntime| = {worst:e} over {} values", got.len());
}

/// Runs `name` and compares its scores (values, probabilities) and labels with ONNX Runtime's.
fn check(name: &str, options: &OnnxImportOptions) {
    let c = case(name, options);
    let p = predict(&c);
    let float = c.outputs.iter().find(|t| t.is_float()).unwrap();
    let got = p.probabilities.as_ref().or(p.values.as_ref()).or(p.embeddings.as_ref()).unwrap_or(&p.scores);
    assert_close(&format!("{name}.{}", float.name), got.as_slice(), &float.floats());
    if let Some(labels) = c.outputs.iter().find(|t| !t.is_float()) {
        let got = p.labels.as_ref().expect("a classifier has labels");
        for (i, want) in labels.data.iter().enumerate() {
            let want = match want {
                Json::String(s) => Value::String(s.clone()),
                other => Value::Number(other.as_f64().unwrap()),
            };
            assert_eq!(got.get(i), Some(&want), "{name}: label of row {i}");
        }
    }
}

#[test]
fn pytorch_mlp_matches_onnxruntime() {
    check("mlp_digits", &OnnxImportOptions::default());
}

#[test]
fn bundles_declare_the_lowest_opset_they_need() {
    let opset = |name: &str| case(name, &OnnxImportOptions::default()).model.manifest().graph.opset;
    assert_eq!(opset("mlp_digits"), 1, "Linear, Relu and Tanh are opset-1 ops");
    assert_eq!(opset("sk_random_forest"), 1);
    assert_eq!(opset("cnn_digits"), 2, "Conv is an opset-2 op");
}

#[test]
fn pytorch_cnns_match_onnxruntime() {
    for name in ["cnn_digits", "cnn_bn", "cnn_ops", "cnn_resize", "conv1d"] {
        check(name, &OnnxImportOptions::default());
    }
}

#[test]
fn batch_normalization_folds_into_the_convolution_before_it() {
    let c = case("cnn_bn", &OnnxImportOptions::default());
    let ops: Vec<&str> = c.model.manifest().graph.nodes.iter().map(|n| n.op.as_str()).collect();
    assert!(!ops.contains(&"Mul") && ops.iter().filter(|&&o| o == "Conv").count() == 2, "{ops:?}");
}

#[test]
fn class_labels_make_a_pytorch_classifier() {
    let classes: Vec<Value> = (0..10).map(|d| Value::Number(f64::from(d))).collect();
    let options = OnnxImportOptions { classes: Some(classes), ..Default::default() };
    let c = case("mlp_digits", &options);
    let p = predict(&c);
    let text = std::fs::read_to_string(dir().join("mlp_digits.expected.json")).unwrap();
    let truth: Vec<f64> = serde_json::from_str::<Json>(&text).unwrap()["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let logits = &c.outputs[0].floats();
    let labels = p.labels.unwrap();
    let mut right = 0;
    for (i, row) in logits.chunks(10).enumerate() {
        let argmax = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(labels.get(i), Some(&Value::Number(argmax as f64)), "row {i}");
        right += usize::from(truth[i] == argmax as f64);
    }
    assert!(right >= 17, "the trained MLP gets {right} of 20 held-out digits right");
    let sums: Vec<f32> = p.probabilities.unwrap().iter_rows().map(|r| r.iter().sum()).collect();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
}

#[test]
fn sklearn_pipelines_match_onnxruntime() {
    for name in ["sk_scaler_logreg", "sk_binary_logreg", "sk_imputer_normalizer"] {
        check(name, &OnnxImportOptions::default());
    }
}

#[test]
fn a_column_transformer_with_string_categories_becomes_tabular_preprocessing() {
    for name in ["sk_pipeline_mixed", "sk_pipeline_zipmap"] {
        check(name, &OnnxImportOptions::default());
        let c = case(name, &OnnxImportOptions::default());
        let columns: Vec<&str> = c.model.signature().inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(columns, ["alcohol", "malic_acid", "color_intensity", "flavanoids_band", "proline_band"]);
    }
}

#[test]
fn tree_ensembles_match_onnxruntime() {
    for name in ["sk_random_forest", "xgb_breast_cancer", "xgb_regressor"] {
        check(name, &OnnxImportOptions::default());
    }
}

/// The tiny BERT of `tiny_bert` (TorchScript exporter) and `tiny_bert_dynamo` (dynamo
/// exporter, SDPA attention): recognized as an encoder and built like `ingot import hf` of the
/// same weights (`tiny_bert_hf/`), so the three bundles give the same embeddings, equal to
/// ONNX Runtime's `sentence_embedding` within the tolerance above (cosine ≥ 0.99999). The
/// fixture's third text is a sentence pair, which Ingot's text input does not take; the first
/// two are compared.
#[test]
fn bert_exports_run_as_ingot_encoders_with_onnxruntimes_numbers() {
    let tokenizer = dir().join("tiny_bert_hf/tokenizer.json");
    let hf = {
        let (m, t) = ingot::import::hf::import_dir(dir().join("tiny_bert_hf"), &Default::default()).unwrap();
        Model::from_bytes(ingot::format::to_bytes(&m, &t).unwrap()).unwrap()
    };
    for name in ["tiny_bert", "tiny_bert_dynamo"] {
        let options = OnnxImportOptions { tokenizer: Some(tokenizer.clone()), ..Default::default() };
        let c = case(name, &options);
        let nodes: Vec<&str> = c.model.manifest().graph.nodes.iter().map(|n| n.op.as_str()).collect();
        assert_eq!(
            nodes,
            hf.manifest().graph.nodes.iter().map(|n| n.op.as_str()).collect::<Vec<_>>(),
            "{name}"
        );
        let text = std::fs::read_to_string(dir().join(format!("{name}.expected.json"))).unwrap();
        let v: Json = serde_json::from_str(&text).unwrap();
        let texts: Vec<&str> = v["texts"].as_array().unwrap().iter().filter_map(Json::as_str).collect();
        assert_eq!(texts.len(), 2);
        let got = c.model.embed(&texts).unwrap();
        let want = c.outputs.iter().find(|t| t.name == "sentence_embedding").unwrap().floats();
        let width = got.cols();
        assert_close(&format!("{name}.sentence_embedding"), got.as_slice(), &want[..2 * width]);
        for (r, row) in got.iter_rows().enumerate() {
            let cos = ingot::testing::cosine(row, &want[r * width..(r + 1) * width]);
            assert!(cos >= 0.99999, "{name} row {r}: cosine {cos}");
        }
        let reference = hf.embed(&texts).unwrap();
        assert_close(&format!("{name} vs import hf"), got.as_slice(), reference.as_slice());
    }
}

#[test]
fn a_text_encoder_needs_its_tokenizer() {
    let err = import_file(&dir().join("tiny_bert.onnx"), &OnnxImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("--tokenizer"), "{err}");
}
