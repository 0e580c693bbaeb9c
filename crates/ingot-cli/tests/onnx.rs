//! `ingot import onnx` end to end: `--check` on a model that imports and on one that does not
//! (every unsupported node listed, nothing written, exit status 1), the import of a skl2onnx
//! pipeline with string categories and of a torch MLP with class labels, and the bundles through
//! `inspect` and `predict`.
//!
//! Fixtures: `tests/fixtures/onnx/` (scripts/onnx_fixtures/*.py) with ONNX Runtime's outputs.
//! Tolerance as in the core's parity tests: `|a - b| <= 1e-5 * max(1, |b|)`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn ingot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ingot")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx").join(name)
}

fn expected(case: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{case}.expected.json"))).unwrap())
        .unwrap()
}

#[test]
fn check_reports_the_ops_and_writes_nothing() {
    let o = ingot(&["import", "onnx", "--check", fixture("cnn_ops.onnx").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("Conv ×7") && out.contains("every node imports"), "{out}");

    let o = ingot(&["import", "onnx", "--check", fixture("tiny_bert.onnx").to_str().unwrap()]);
    assert!(text(&o.stdout).contains("BERT encoder: 2 layers, hidden 32, 4 heads"), "{}", text(&o.stdout));
}

#[test]
fn check_lists_every_unsupported_node_and_fails() {
    // The CNN with two of its node types renamed to ops that do not exist.
    let bytes = std::fs::read(fixture("cnn_digits.onnx")).unwrap();
    let patched: Vec<u8> =
        replace(&replace(&bytes, b"MaxPool", b"MaxPoXX"), b"GlobalAveragePool", b"GlobalAveragePoXX");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patched.onnx");
    std::fs::write(&path, patched).unwrap();
    let o = ingot(&["import", "onnx", "--check", path.to_str().unwrap()]);
    assert!(!o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("2 node(s) cannot be imported")
            && out.contains("MaxPoXX")
            && out.contains("GlobalAveragePoXX"),
        "{out}"
    );
    let bundle = dir.path().join("out.ingot");
    let o = ingot(&["import", "onnx", path.to_str().unwrap(), "-o", bundle.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o.stderr).contains("2 ONNX nodes"), "{}", text(&o.stderr));
    assert!(!bundle.exists(), "a failed import writes nothing");
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = haystack.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn a_sklearn_pipeline_imports_and_predicts_records() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("pipe.ingot");
    let o = ingot(&[
        "import",
        "onnx",
        fixture("sk_pipeline_mixed.onnx").to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--name",
        "wine",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let info = text(&ingot(&["inspect", bundle.to_str().unwrap()]).stdout);
    assert!(info.contains("wine 1.0.0") && info.contains("flavanoids_band"), "{info}");

    let e = expected("sk_pipeline_mixed");
    let columns: Vec<&str> =
        e["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let rows = e["inputs"][columns[0]]["shape"][0].as_u64().unwrap() as usize;
    let mut jsonl = String::new();
    for r in 0..rows {
        let record: serde_json::Map<String, Json> =
            columns.iter().map(|c| (c.to_string(), e["inputs"][*c]["data"][r].clone())).collect();
        jsonl.push_str(&format!("{}\n", Json::Object(record)));
    }
    let input = dir.path().join("rows.jsonl");
    std::fs::write(&input, jsonl).unwrap();
    let o = ingot(&["predict", bundle.to_str().unwrap(), "-i", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let probs = e["outputs"]["probabilities"]["data"].as_array().unwrap();
    let labels = e["outputs"]["label"]["data"].as_array().unwrap();
    for (r, line) in text(&o.stdout).lines().enumerate() {
        let v: Json = serde_json::from_str(line).unwrap();
        assert_eq!(v["label"], labels[r], "row {r}");
        let got = v["probabilities"].as_object().unwrap();
        for (k, (_, p)) in got.iter().enumerate() {
            let (have, want) = (p.as_f64().unwrap(), probs[r * 3 + k].as_f64().unwrap());
            assert!((have - want).abs() <= 1e-5 * want.abs().max(1.0), "row {r} class {k}: {have} vs {want}");
        }
    }
}

#[test]
fn a_torch_mlp_with_class_labels_predicts_digits() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("mlp.ingot");
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, (0..10).map(|d| format!("digit{d}\n")).collect::<String>()).unwrap();
    let o = ingot(&[
        "import",
        "onnx",
        fixture("mlp_digits.onnx").to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let e = expected("mlp_digits");
    let x = e["inputs"]["x"]["data"].as_array().unwrap();
    let truth = e["labels"].as_array().unwrap();
    let csv: String = std::iter::once((0..64).map(|i| format!("x_{i}")).collect::<Vec<_>>().join(","))
        .chain(
            (0..4)
                .map(|r| x[r * 64..(r + 1) * 64].iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")),
        )
        .map(|l| l + "\n")
        .collect();
    let input = dir.path().join("rows.csv");
    std::fs::write(&input, csv).unwrap();
    let o = ingot(&["predict", bundle.to_str().unwrap(), "-i", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (r, line) in text(&o.stdout).lines().enumerate() {
        let v: Json = serde_json::from_str(line).unwrap();
        assert_eq!(v["label"], format!("digit{}", truth[r]), "row {r}");
    }
}
