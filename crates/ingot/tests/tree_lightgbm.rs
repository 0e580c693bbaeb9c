//! `ingot::import::lightgbm`: parity with LightGBM on held-out rows, and malformed files.
//!
//! Fixtures under `tests/fixtures/trees/lightgbm/` are made by
//! `scripts/tree_fixtures/lightgbm_fixtures.py`: `<case>.txt` as `Booster.save_model` writes it
//! and `<case>.json` with held-out rows (NaN as null) and LightGBM's float64 outputs for them.
//!
//! Tolerance: every number within `1e-5 · max(1, |lightgbm|)` (relative 1e-5, absolute near
//! zero). The trees sum their leaves in f64 like LightGBM, but the scores leave the graph as f32
//! (relative rounding 6e-8) and the probabilities are f32 too.
//!
//! Inputs: Ingot's trees read f32 features, LightGBM compares f64 ones with f64 thresholds.
//! The importer marks the splits `le_f64`, whose f32 cut sends a decimal on the training grid
//! where LightGBM sends it: LightGBM splits just above a value seen in training
//! (`0.17120000000000005` for the value `0.1712`), and a held-out row holding exactly that
//! value must go left although it rounds to the f32 `0.1712000072…`, past the threshold. So
//! Ingot matches LightGBM on both the f64 rows and the rows rounded to f32 (`raw_f32`,
//! `predictions_f32`) everywhere but where LightGBM itself changes its answer once the row is
//! rounded: [`F32_SENSITIVE`] lists those rows (the test checks that the list is exactly where
//! LightGBM's f64 and f32 outputs part). There Ingot must match one of the two: the f64 output
//! for decimals on the training grid (breast cancer, wine), the f32 one for inputs that differ
//! from a threshold only beyond f32 precision (diabetes' standardized values), which no f32
//! model can tell apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ingot::import::lightgbm::{import_file, import_str};
use ingot::import::TreeImportOptions;
use ingot::{Dense, Error, Input, Model, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/trees/lightgbm")
}

/// Held-out rows whose LightGBM output changes when the row is rounded to f32 (module docs).
const F32_SENSITIVE: &[(&str, &[usize])] = &[
    ("binary_breast_cancer", &[78]),
    ("gamma_diabetes", &[5]),
    ("multiclass_wine", &[33]),
    ("no_missing_breast_cancer", &[26]),
    ("rf_diabetes", &[24]),
    ("rf_wine", &[46]),
    ("tweedie_diabetes", &[5]),
];

/// What `<case>.json` holds.
struct Expected {
    task: String,
    rows: Vec<Vec<f64>>,
    score_scale: f64,
    /// LightGBM's raw scores and predictions on the f64 rows.
    f64: Reference,
    /// The same on the rows rounded to f32.
    f32: Reference,
}

struct Reference {
    raw: Vec<Vec<f64>>,
    predictions: Vec<Vec<f64>>,
}

fn expected(case: &str) -> Expected {
    let text = std::fs::read_to_string(fixtures().join(format!("{case}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let matrix = |key: &str| -> Vec<Vec<f64>> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
            .collect()
    };
    Expected {
        task: v["task"].as_str().unwrap().to_string(),
        rows: matrix("rows"),
        score_scale: v["score_scale"].as_f64().unwrap(),
        f64: Reference { raw: matrix("raw"), predictions: matrix("predictions") },
        f32: Reference { raw: matrix("raw_f32"), predictions: matrix("predictions_f32") },
    }
}

fn load(manifest: &ingot::Manifest, tensors: &[(String, ingot::TensorData)]) -> Model {
    Model::from_bytes(ingot::format::to_bytes(manifest, tensors).unwrap()).unwrap()
}

fn model(case: &str) -> Model {
    let path = fixtures().join(format!("{case}.txt"));
    let (manifest, tensors) = import_file(&path, &TreeImportOptions::default()).unwrap();
    assert_eq!(manifest.model.name, case);
    load(&manifest, &tensors)
}

/// The tolerance of the module docs.
fn close(have: f64, want: f64) -> bool {
    (have - want).abs() <= 1e-5 * want.abs().max(1.0)
}

/// Ingot's scores and its probability of class 1, class probabilities or values, for row `i`.
fn outputs(p: &ingot::Prediction, task: &str, i: usize) -> (Vec<f64>, Vec<f64>) {
    let widen = |row: &[f32]| row.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let predictions = match task {
        "binary" => vec![f64::from(p.probabilities.as_ref().unwrap().row(i)[1])],
        "multiclass" => widen(p.probabilities.as_ref().unwrap().row(i)),
        _ => widen(p.values.as_ref().unwrap().row(i)),
    };
    (widen(p.scores.row(i)), predictions)
}

/// What differs between Ingot's `(scores, predictions)` of row `i` and reference `r`.
fn mismatches(i: usize, have: &(Vec<f64>, Vec<f64>), r: &Reference, scale: f64) -> Vec<String> {
    let want_scores: Vec<f64> = r.raw[i].iter().map(|v| v * scale).collect();
    let mut out = Vec::new();
    for (what, have, want) in [("score", &have.0, &want_scores), ("prediction", &have.1, &r.predictions[i])] {
        if have.len() != want.len() {
            out.push(format!("{what} [{i}]: {} values, LightGBM {}", have.len(), want.len()));
        }
        for (j, (&h, &w)) in have.iter().zip(want).enumerate() {
            if !close(h, w) {
                out.push(format!("{what} [{i}][{j}] = {h}, LightGBM {w}"));
            }
        }
    }
    out
}

/// LightGBM's label from its prediction: probability > 0.5 (binary) or the most probable class;
/// `None` for a binary probability within 1e-6 of 0.5.
fn label(prediction: &[f64]) -> Option<f64> {
    match prediction {
        [p1] if (p1 - 0.5).abs() < 1e-6 => None,
        [p1] => Some(f64::from(u8::from(*p1 > 0.5))),
        probs => Some(probs.iter().enumerate().fold(0, |b, (c, &v)| if v > probs[b] { c } else { b }) as f64),
    }
}

/// Imports `case`, predicts its held-out rows and compares scores, probabilities or values and
/// labels with LightGBM's (module docs); every mismatch is listed before failing.
fn check(case: &str) {
    let e = expected(case);
    let model = model(case);
    let cols = e.rows[0].len();
    let flat: Vec<f64> = e.rows.iter().flatten().copied().collect();
    let p = model.predict(Input::Dense(Dense::f64(&flat, e.rows.len(), cols).unwrap())).unwrap();
    assert_eq!(p.rows, e.rows.len(), "{case}: row count");
    let sensitive: &[usize] = F32_SENSITIVE.iter().find(|(c, _)| *c == case).map_or(&[], |(_, rows)| rows);
    let mut bad = Vec::new();
    let mut parted = Vec::new();
    for i in 0..e.rows.len() {
        let have = outputs(&p, &e.task, i);
        let off64 = mismatches(i, &have, &e.f64, e.score_scale);
        let off32 = mismatches(i, &have, &e.f32, e.score_scale);
        if !sensitive.contains(&i) || !off32.is_empty() {
            bad.extend(off64.into_iter().map(|m| format!("f64 rows: {m}")));
        }
        let lightgbm_f32 =
            (e.f32.raw[i].iter().map(|v| v * e.score_scale).collect(), e.f32.predictions[i].clone());
        if !mismatches(i, &lightgbm_f32, &e.f64, e.score_scale).is_empty() {
            parted.push(i);
        }
        if !sensitive.contains(&i) {
            bad.extend(off32.into_iter().map(|m| format!("f32 rows: {m}")));
        }
        if let (Some(labels), Some(want)) = (&p.labels, label(&e.f64.predictions[i])) {
            if labels.to_vec()[i] != Value::Number(want) {
                bad.push(format!("label [{i}] = {:?}, LightGBM {want}", labels.to_vec()[i]));
            }
        }
    }
    assert_eq!(parted, sensitive, "{case}: rows where LightGBM's f64 and f32 outputs differ");
    assert!(bad.is_empty(), "{case}: {} mismatches:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn binary_with_nan_in_training_and_held_out_rows() {
    check("binary_breast_cancer");
}

#[test]
fn regression_reads_nan_as_zero_when_training_had_none() {
    check("regression_diabetes");
}

#[test]
fn log_link_objectives() {
    check("poisson_diabetes");
    check("tweedie_diabetes");
    check("gamma_diabetes");
}

#[test]
fn cross_entropy_is_a_logistic_regressor() {
    check("xentropy_breast_cancer");
}

#[test]
fn multiclass_with_single_leaf_trees() {
    check("multiclass_wine");
}

#[test]
fn multiclass_ten_classes() {
    check("multiclass_digits");
}

#[test]
fn zero_as_missing() {
    check("zero_as_missing_breast_cancer");
}

#[test]
fn use_missing_false_and_sigmoid_half() {
    check("no_missing_breast_cancer");
}

#[test]
fn random_forests_average_over_iterations() {
    check("rf_wine");
    check("rf_diabetes");
}

#[test]
fn native_categorical_splits() {
    check("categorical_diabetes");
}

#[test]
fn header_maps_to_the_bundle() {
    let text = fixture_text("multiclass_wine");
    let (manifest, _) = import_str(&text, "wine", &TreeImportOptions::default()).unwrap();
    // Trained without names: LightGBM wrote Column_0 … Column_12.
    let inputs: Vec<&str> = manifest.signature.inputs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(inputs.len(), 13);
    assert_eq!((inputs[0], inputs[12]), ("Column_0", "Column_12"));
    assert_eq!(manifest.model.name, "wine");
    assert_eq!(manifest.producer.framework.as_deref(), Some("LightGBM (model format v4)"));

    let names: Vec<String> = (0..13).map(|i| format!("f{i}")).collect();
    let options = TreeImportOptions {
        name: Some("wine-named".into()),
        version: "2.1.0".into(),
        feature_names: Some(names.clone()),
    };
    let (manifest, tensors) = import_str(&text, "wine", &options).unwrap();
    assert_eq!(manifest.signature.inputs[3].name, "f3");
    assert_eq!((manifest.model.name.as_str(), manifest.model.version.as_str()), ("wine-named", "2.1.0"));
    let p = load(&manifest, &tensors).predict_dense(&[0.0; 13], 1, 13).unwrap();
    assert_eq!(p.probabilities.unwrap().cols(), 3);

    let short =
        TreeImportOptions { feature_names: Some(names[..12].to_vec()), ..TreeImportOptions::default() };
    let err = import_str(&text, "wine", &short).unwrap_err();
    assert!(matches!(err, Error::Usage { .. }), "{err}");
    assert!(err.to_string().contains("12 feature names given for a LightGBM model of 13 features"), "{err}");
}

fn fixture_text(case: &str) -> String {
    std::fs::read_to_string(fixtures().join(format!("{case}.txt"))).unwrap()
}

/// `text` with the value of `key` in block `Tree=tree` passed through `edit`.
fn edit_tree(text: &str, tree: usize, key: &str, edit: impl Fn(&str) -> String) -> String {
    let mut in_tree = false;
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if let Some(id) = line.strip_prefix("Tree=") {
                in_tree = id == tree.to_string();
            } else if in_tree && !done {
                if let Some(value) = line.strip_prefix(&format!("{key}=")) {
                    done = true;
                    return format!("{key}={}", edit(value));
                }
            }
            line.to_string()
        })
        .collect();
    assert!(done, "Tree={tree} has no {key}");
    lines.join("\n")
}

/// `values` with value `i` replaced by `with`.
fn set(values: &str, i: usize, with: &str) -> String {
    let mut v: Vec<&str> = values.split(' ').collect();
    v[i] = with;
    v.join(" ")
}

fn import_err(text: &str) -> Error {
    match import_str(text, "broken", &TreeImportOptions::default()) {
        Ok(_) => panic!("imported a malformed model"),
        Err(e) => e,
    }
}

fn assert_message(err: &Error, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(message.contains(part), "`{message}` does not mention `{part}`");
    }
}

// Tree=0 of poisson_diabetes.txt: 7 leaves, 6 internal nodes,
// left_child=2 5 -1 4 -3 -2, right_child=1 3 -4 -5 -6 -7.

#[test]
fn truncated_files_are_refused() {
    let text = fixture_text("poisson_diabetes");
    let end = text.find("end of trees").unwrap();
    for k in 1..40 {
        let mut cut = end * k / 40;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        assert!(import_str(&text[..cut], "cut", &TreeImportOptions::default()).is_err(), "cut at {cut}");
    }
    let half = &text[..text.find("Tree=12").unwrap() + 40];
    assert_message(&import_err(half), &["end of trees", "truncated"]);
    let err = import_err(&text[..text.find("Tree=0").unwrap()]);
    assert_message(&err, &["no `end of trees` line: the file is truncated"]);
    let err = import_err(&text.replace("tree_sizes=", "tree_sizes=100 "));
    assert_message(&err, &["tree_sizes", "lists 26 trees but the file holds 25"]);
    assert_message(&import_err(""), &["not a LightGBM text model"]);
    assert_message(
        &import_err("{\"learner\": {}}"),
        &["not a LightGBM text model", "starts with `{\"learner\""],
    );
}

#[test]
fn non_number_threshold() {
    let text = edit_tree(&fixture_text("poisson_diabetes"), 3, "threshold", |v| set(v, 2, "abc"));
    let err = import_err(&text);
    assert!(matches!(err, Error::Manifest { .. }), "{err}");
    assert_message(&err, &["Tree=3", "threshold value 2 `abc` is not a valid number"]);
    let text = edit_tree(&fixture_text("poisson_diabetes"), 3, "threshold", |v| set(v, 2, "nan"));
    assert_message(&import_err(&text), &["Tree=3 node 2", "threshold is NaN"]);
    let text = edit_tree(&fixture_text("poisson_diabetes"), 1, "leaf_value", |v| set(v, 4, "inf"));
    assert_message(&import_err(&text), &["Tree=1", "leaf_value 4 is inf"]);
}

#[test]
fn children_out_of_range() {
    let base = fixture_text("poisson_diabetes");
    let text = edit_tree(&base, 0, "left_child", |v| set(v, 0, "6"));
    assert_message(&import_err(&text), &["Tree=0 node 0", "left child 6 is not one of the 6 internal nodes"]);
    let text = edit_tree(&base, 2, "right_child", |v| set(v, 4, "-9"));
    assert_message(&import_err(&text), &["Tree=2 node 4", "right child ~8 is not a leaf of 7"]);
    let text = edit_tree(&base, 0, "split_feature", |v| set(v, 1, "10"));
    assert_message(&import_err(&text), &["Tree=0 node 1", "split_feature 10 is not one of the 10 features"]);
    let text = edit_tree(&base, 0, "decision_type", |v| set(v, 1, "14"));
    assert_message(&import_err(&text), &["Tree=0 node 1", "decision_type 14"]);
}

#[test]
fn cycles_and_shared_children() {
    let base = fixture_text("poisson_diabetes");
    // Node 3's left child back to the root.
    let text = edit_tree(&base, 0, "left_child", |v| set(v, 3, "0"));
    assert_message(
        &import_err(&text),
        &["Tree=0 node 3", "left child 0 already has a parent (or is the root)"],
    );
    // Node 1's right child is node 2, already the root's left child.
    let text = edit_tree(&base, 0, "right_child", |v| set(v, 1, "2"));
    assert_message(&import_err(&text), &["Tree=0 node 1", "right child 2 already has a parent"]);
    // Leaf ~0 under two nodes (node 2 and node 4), leaving leaf ~2 unreached.
    let text = edit_tree(&base, 0, "left_child", |v| set(v, 4, "-1"));
    assert_message(&import_err(&text), &["Tree=0 node", "~0 is already the child of another node"]);
    // A node that nothing points at.
    let text = edit_tree(&base, 0, "left_child", |v| set(v, 0, "-1"));
    assert_message(&import_err(&text), &["Tree=0", "node 2 is not reachable from the root"]);
}

#[test]
fn counts_are_checked_against_the_arrays() {
    let base = fixture_text("poisson_diabetes");
    let text = edit_tree(&base, 5, "num_leaves", |_| "999999999".into());
    assert_message(&import_err(&text), &["Tree=5", "leaf_value has 7 values for num_leaves 999999999"]);
    let text = edit_tree(&base, 5, "num_leaves", |_| "18446744073709551615".into());
    assert_message(&import_err(&text), &["Tree=5", "for num_leaves 18446744073709551615"]);
    let text = edit_tree(&base, 5, "left_child", |v| v.rsplit_once(' ').unwrap().0.to_string());
    assert_message(&import_err(&text), &["Tree=5", "left_child has 5 values for num_leaves 7"]);
    let text = edit_tree(&base, 5, "num_cat", |_| "4000000000".into());
    assert_message(&import_err(&text), &["Tree=5", "no `cat_boundaries` line"]);
    let text = base.replace("max_feature_idx=9", "max_feature_idx=99999999999");
    assert_message(&import_err(&text), &["feature_names", "10 names for max_feature_idx 99999999999"]);
    let text = base.replace("num_tree_per_iteration=1", "num_tree_per_iteration=4");
    assert_message(
        &import_err(&text),
        &["num_tree_per_iteration", "4 trees per iteration for objective `poisson`"],
    );
}

#[test]
fn categorical_sets_are_checked() {
    let base = fixture_text("categorical_diabetes");
    // Tree=0: num_cat=8, cat_boundaries=0 2 3 4 5 7 9 10 11.
    let text = edit_tree(&base, 0, "cat_boundaries", |v| set(v, 8, "12"));
    assert_message(&import_err(&text), &["Tree=0", "cat_boundaries 7..8 = 10..12 is not a range of the 11"]);
    let text = edit_tree(&base, 0, "threshold", |v| set(v, 0, "8"));
    assert_message(
        &import_err(&text),
        &["Tree=0 node 0", "categorical threshold 8 is not one of the tree's 8"],
    );
}

#[test]
fn unsupported_models_name_what_is_refused() {
    let wine = fixture_text("multiclass_wine");
    let err = import_err(
        &wine.replace("objective=multiclass num_class:3", "objective=multiclassova num_class:3 sigmoid:1"),
    );
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_message(&err, &["multiclassova", "not normalised"]);
    let base = fixture_text("regression_diabetes");
    let err = import_err(&base.replace("objective=regression", "objective=regression sqrt"));
    assert_message(&err, &["regression sqrt", "reg_sqrt"]);
    let err = import_err(&base.replace("objective=regression", "objective=cross_entropy_lambda"));
    assert_message(&err, &["objective `cross_entropy_lambda`"]);
    let err = import_err(&base.replace("objective=regression", "objective=survival_magic"));
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_message(&err, &["objective `survival_magic`"]);
    let err = import_err(&edit_tree(&base, 7, "is_linear", |_| "1".into()));
    assert_message(&err, &["Tree=7 is a linear tree"]);
    let err = import_err(&base.replace("pandas_categorical:null", "pandas_categorical:[[\"a\", \"b\"]]"));
    assert_message(&err, &["pandas_categorical", "[[\"a\", \"b\"]]"]);
}

#[test]
fn a_model_without_objective_predicts_raw_scores() {
    let base = fixture_text("poisson_diabetes");
    let text: String =
        base.lines().filter(|l| !l.starts_with("objective=")).map(|l| format!("{l}\n")).collect();
    let (manifest, tensors) = import_str(&text, "raw", &TreeImportOptions::default()).unwrap();
    let e = expected("poisson_diabetes");
    let flat: Vec<f64> = e.rows.iter().flatten().copied().collect();
    let p = load(&manifest, &tensors)
        .predict(Input::Dense(Dense::f64(&flat, e.rows.len(), 10).unwrap()))
        .unwrap();
    for (i, raw) in e.f64.raw.iter().enumerate() {
        let have = f64::from(p.values.as_ref().unwrap().row(i)[0]);
        assert!(close(have, raw[0]), "row {i}: {have}, LightGBM raw {}", raw[0]);
    }
}
