//! `ingot import xgboost|lightgbm` end to end: the imported bundle through `inspect`, `predict`
//! (a CSV with empty cells for missing values) and `bench`, and `--feature-names`.
//!
//! Fixtures: `tests/fixtures/trees/` (scripts/tree_fixtures/*.py): held-out rows with `null`
//! for a missing value and the framework's own predictions. Tolerance as in the core's parity
//! tests: `|a - b| <= 1e-5 * max(1, |b|)`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn ingot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ingot")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/trees")
}

fn read_json(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn rows(v: &Json) -> Vec<Vec<Option<f64>>> {
    serde_json::from_value(v["rows"].clone()).unwrap()
}

fn matrix(v: &Json, key: &str) -> Vec<Vec<f64>> {
    serde_json::from_value(v[key].clone()).unwrap()
}

fn close(what: &str, have: f64, want: f64) {
    assert!((have - want).abs() <= 1e-5 * want.abs().max(1.0), "{what}: ingot {have}, reference {want}");
}

/// Runs `ingot import KIND MODEL -o OUT EXTRA...`, asserting success.
fn import(kind: &str, model: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["import", kind, model.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = ingot(&args);
    assert!(o.status.success(), "import {kind}: {}", stderr(&o));
    assert!(stderr(&o).contains("imported"), "{}", stderr(&o));
}

/// The first `n` held-out rows as a CSV (header `names`), a missing value as an empty cell.
/// Returns the indices of the rows written; at least one of them holds a missing value.
fn write_csv(path: &Path, names: &[String], rows: &[Vec<Option<f64>>], n: usize) -> Vec<usize> {
    let picked: Vec<usize> = (0..n.min(rows.len())).collect();
    assert!(
        picked.iter().any(|&i| rows[i].iter().any(Option::is_none)),
        "the first {n} rows hold no missing value"
    );
    let mut text = names.join(",");
    text.push('\n');
    for &i in &picked {
        let cells: Vec<String> =
            rows[i].iter().map(|x| x.map(|v| v.to_string()).unwrap_or_default()).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
    picked
}

/// The first `n` of `rows` as JSONL records over `names` (a missing value as null).
fn write_jsonl(path: &Path, names: &[String], rows: &[Vec<Option<f64>>], n: usize) {
    let lines: Vec<String> = rows
        .iter()
        .take(n)
        .map(|r| {
            let record: serde_json::Map<String, Json> =
                names.iter().zip(r).map(|(n, x)| (n.clone(), x.map_or(Json::Null, Json::from))).collect();
            Json::Object(record).to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

/// `ingot predict MODEL -i CSV -o OUT.jsonl`: one JSON object per row.
fn predict(model: &Path, csv: &Path, dir: &Path) -> Vec<Json> {
    let out = dir.join(format!("{}.out.jsonl", model.file_stem().unwrap().to_string_lossy()));
    let o = ingot(&[
        "predict",
        model.to_str().unwrap(),
        "-i",
        csv.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--chunk-rows",
        "2",
    ]);
    assert!(o.status.success(), "predict: {}", stderr(&o));
    std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `ingot inspect` (text) output, asserting success.
fn inspect(model: &Path) -> String {
    let o = ingot(&["inspect", model.to_str().unwrap()]);
    assert!(o.status.success(), "inspect: {}", stderr(&o));
    stdout(&o)
}

/// `ingot bench` on a few JSONL records (tree bundles carry no reference sample): exits 0 and
/// prints a rate for each batch size. No timing is checked.
fn bench(model: &Path, names: &[String], rows: &[Vec<Option<f64>>], dir: &Path) {
    let input = dir.join("bench.jsonl");
    write_jsonl(&input, names, rows, 4);
    let o = ingot(&[
        "bench",
        model.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--batch",
        "1,4",
        "--seconds",
        "0.05",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "bench: {}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("rows/s"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for batch in ["1", "4"] {
        let row = lines.iter().find(|l| l.split_whitespace().next() == Some(batch)).unwrap_or_else(|| {
            panic!("no result for batch {batch}: {text}");
        });
        let rate: f64 = row.split_whitespace().last().unwrap().parse().unwrap();
        assert!(rate > 0.0, "{row}");
    }
}

#[test]
fn xgboost_multiclass_import_inspect_predict_bench() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("xgboost/wine.json");
    let bundle = dir.path().join("wine.ingot");
    import("xgboost", &source, &bundle, &[]);

    // inspect: the TreeEnsemble node and its size, as many trees and nodes as XGBoost's file
    // (wine has no categorical split, so no node is copied).
    let model = read_json(&source);
    let trees = model["learner"]["gradient_booster"]["model"]["trees"].as_array().unwrap();
    let nodes: usize = trees.iter().map(|t| t["left_children"].as_array().unwrap().len()).sum();
    let text = inspect(&bundle);
    assert!(text.contains("op   TreeEnsemble"), "{text}");
    assert!(text.contains(&format!("{} trees, {nodes} nodes, 3 output(s)", trees.len())), "{text}");
    assert!(text.contains("out  probabilities"), "{text}");

    // predict: probabilities and label of each held-out row.
    let e = read_json(&fixtures().join("xgboost/wine.expected.json"));
    let names: Vec<String> = serde_json::from_value(e["feature_names"].clone()).unwrap();
    let held_out = rows(&e);
    let want = matrix(&e, "predict");
    let csv = dir.path().join("wine.csv");
    let picked = write_csv(&csv, &names, &held_out, 8);
    let got = predict(&bundle, &csv, dir.path());
    assert_eq!(got.len(), picked.len());
    for (g, &i) in got.iter().zip(&picked) {
        let probs = &g["probabilities"];
        for (c, &w) in want[i].iter().enumerate() {
            close(&format!("row {i} class {c}"), probs[c.to_string()].as_f64().unwrap(), w);
        }
        let best = (0..want[i].len()).fold(0, |b, c| if want[i][c] > want[i][b] { c } else { b });
        assert_eq!(g["label"], Json::from(best), "row {i}: {g}");
    }

    bench(&bundle, &names, &held_out, dir.path());
}

#[test]
fn lightgbm_regression_import_inspect_predict_bench() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("lightgbm/regression_diabetes.txt");
    let bundle = dir.path().join("regression_diabetes.ingot");
    import("lightgbm", &source, &bundle, &[]);

    // inspect: one tree per `Tree=` block, 2 * leaves - 1 nodes each.
    let text = std::fs::read_to_string(&source).unwrap();
    let leaves: Vec<usize> =
        text.lines().filter_map(|l| l.strip_prefix("num_leaves=")).map(|n| n.parse().unwrap()).collect();
    let nodes: usize = leaves.iter().map(|&l| 2 * l - 1).sum();
    let names: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("feature_names="))
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let shown = inspect(&bundle);
    assert!(shown.contains("op   TreeEnsemble"), "{shown}");
    assert!(shown.contains(&format!("{} trees, {nodes} nodes, 1 output(s)", leaves.len())), "{shown}");
    assert!(shown.contains("out  value"), "{shown}");

    // predict: the value of each held-out row. This case has no row whose LightGBM output
    // changes when its features are rounded to f32 (crates/ingot/tests/tree_lightgbm.rs).
    let e = read_json(&fixtures().join("lightgbm/regression_diabetes.json"));
    let held_out = rows(&e);
    let want = matrix(&e, "predictions");
    let csv = dir.path().join("diabetes.csv");
    let picked = write_csv(&csv, &names, &held_out, 8);
    let got = predict(&bundle, &csv, dir.path());
    assert_eq!(got.len(), picked.len());
    for (g, &i) in got.iter().zip(&picked) {
        close(&format!("row {i}"), g["value"].as_f64().unwrap(), want[i][0]);
    }

    bench(&bundle, &names, &held_out, dir.path());
}

#[test]
fn feature_names_rename_the_inputs_and_a_wrong_count_fails() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, source, n) in [
        ("xgboost", fixtures().join("xgboost/regression.json"), 10),
        ("lightgbm", fixtures().join("lightgbm/regression_diabetes.txt"), 10),
    ] {
        let names: Vec<String> = (0..n).map(|i| format!("col_{i}")).collect();
        let renamed = dir.path().join(format!("{kind}_renamed.ingot"));
        import(kind, &source, &renamed, &["--feature-names", &names.join(","), "--name", "renamed"]);
        let o = ingot(&["inspect", renamed.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Json = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["manifest"]["model"]["name"], "renamed");
        let inputs: Vec<&str> = v["manifest"]["signature"]["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(inputs, names, "{kind}");

        let wrong = dir.path().join(format!("{kind}_wrong.ingot"));
        let o = ingot(&[
            "import",
            kind,
            source.to_str().unwrap(),
            "-o",
            wrong.to_str().unwrap(),
            "--feature-names",
            "a,b",
        ]);
        assert!(!o.status.success(), "{kind}: a wrong name count was accepted");
        let err = stderr(&o);
        assert!(
            err.contains("2 feature names given") && err.contains(&format!("{n} features")),
            "{kind}: {err}"
        );
        assert!(!wrong.exists(), "{kind}: an output file was written");
    }
}

#[test]
fn a_malformed_model_file_fails_with_its_path_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, file, body) in [
        ("xgboost", "broken.json", "{\"learner\": {\"learner_model_param\": 3}}"),
        ("lightgbm", "broken.txt", "tree\nversion=v4\nnum_class=1\n"),
    ] {
        let source = dir.path().join(file);
        std::fs::write(&source, body).unwrap();
        let out = dir.path().join(format!("{kind}.ingot"));
        let o = ingot(&["import", kind, source.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert!(!o.status.success(), "{kind}: a malformed file was imported");
        let err = stderr(&o);
        assert!(err.starts_with("error [Ingot"), "{kind}: {err}");
        assert!(err.contains(file), "{kind}: the error does not name the file: {err}");
        assert!(!out.exists(), "{kind}: an output file was written");
    }
}

/// `--sample rows.jsonl`: the first 5 rows become the reference sample (so `ingot bench` runs
/// without `--input`) and each column's statistics are those of the sample's numbers.
#[test]
fn a_sample_becomes_the_reference_and_bench_runs_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_json(&fixtures().join("lightgbm/regression_diabetes.json"));
    let held_out = rows(&e);
    let source = fixtures().join("lightgbm/regression_diabetes.txt");
    let text = std::fs::read_to_string(&source).unwrap();
    let names: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("feature_names="))
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let sample = dir.path().join("train.jsonl");
    write_jsonl(&sample, &names, &held_out, 20);
    let bundle = dir.path().join("m.ingot");
    import("lightgbm", &source, &bundle, &["--sample", sample.to_str().unwrap()]);

    let o = ingot(&["inspect", bundle.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown: Json = serde_json::from_str(&stdout(&o)).unwrap();
    let reference = shown
        .pointer("/manifest/reference")
        .or_else(|| shown.pointer("/reference"))
        .unwrap_or_else(|| panic!("no reference in {shown}"));
    assert_eq!(reference["sample"].as_array().unwrap().len(), 5);
    let first: Vec<f64> = held_out.iter().take(20).filter_map(|r| r[0]).collect();
    let stats = &reference["columns"][&names[0]];
    assert_eq!(stats["count"].as_f64().unwrap(), first.len() as f64);
    let min = first.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(stats["min"].as_f64().unwrap(), min);

    let o =
        ingot(&["bench", bundle.to_str().unwrap(), "--batch", "1", "--seconds", "0.05", "--threads", "1"]);
    assert!(o.status.success(), "bench without --input: {}", stderr(&o));
    assert!(stdout(&o).contains("rows/s"), "{}", stdout(&o));
}
