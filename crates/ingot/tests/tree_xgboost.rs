//! `ingot::import::xgboost`: parity with XGBoost on held-out rows, and malformed files.
//!
//! Fixtures under `tests/fixtures/trees/xgboost/` are made by
//! `scripts/tree_fixtures/xgboost_fixtures.py`: each model as XGBoost's JSON (one also as
//! UBJSON) and `<case>.expected.json` with held-out rows (missing values as `null`) and
//! XGBoost's own predictions: the margin (`output_margin=True`) and `predict()`.
//!
//! Tolerance: `|a - b| <= 1e-5 * max(1, |b|)` for margins, values and probabilities. XGBoost
//! sums the trees in f32; Ingot sums the same f32 leaf values in f64 and rounds once, so the two
//! differ by the f32 rounding of a sum of a few hundred terms, well inside 1e-5.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ingot::import::xgboost::{import_bytes, import_file};
use ingot::import::TreeImportOptions;
use ingot::{Model, Record, Value};
use serde_json::{json, Value as Json};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/trees/xgboost")
}

fn model_of(bytes: &[u8]) -> Model {
    let (manifest, tensors) = import_bytes(bytes, "m", &TreeImportOptions::default()).unwrap();
    Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).unwrap()).unwrap()
}

struct Expected {
    objective: String,
    feature_names: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
    margin: Vec<Vec<f64>>,
    predict: Vec<Vec<f64>>,
}

fn expected(case: &str) -> Expected {
    let text = std::fs::read_to_string(dir().join(format!("{case}.expected.json"))).unwrap();
    let v: Json = serde_json::from_str(&text).unwrap();
    let matrix = |key: &str| -> Vec<Vec<f64>> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
            .collect()
    };
    Expected {
        objective: v["objective"].as_str().unwrap().to_string(),
        feature_names: serde_json::from_value(v["feature_names"].clone()).unwrap(),
        rows: serde_json::from_value(v["rows"].clone()).unwrap(),
        margin: matrix("margin"),
        predict: matrix("predict"),
    }
}

fn close(case: &str, what: &str, i: usize, j: usize, have: f64, want: f64) {
    assert!(
        (have - want).abs() <= 1e-5 * want.abs().max(1.0),
        "{case}: {what}[{i}][{j}] = {have}, XGBoost {want}"
    );
}

/// Imports `<case>.<ext>`, predicts the held-out rows as a dense matrix with NaN and as
/// records with nulls, and compares both with XGBoost.
fn parity(case: &str, ext: &str) -> Model {
    let (manifest, tensors) =
        import_file(&dir().join(format!("{case}.{ext}")), &TreeImportOptions::default()).unwrap();
    assert_eq!(manifest.model.name, case);
    assert!(manifest.producer.framework.as_deref().unwrap().starts_with("xgboost "));
    let model = Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).unwrap()).unwrap();
    let e = expected(case);
    let names: Vec<String> = manifest.signature.inputs.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, e.feature_names, "{case}: input names");

    let cols = e.feature_names.len();
    let dense: Vec<f32> = e.rows.iter().flatten().map(|x| x.map_or(f32::NAN, |v| v as f32)).collect();
    let p = model.predict_dense(&dense, e.rows.len(), cols).unwrap();
    let records: Vec<Record> = e
        .rows
        .iter()
        .map(|r| {
            e.feature_names
                .iter()
                .zip(r)
                .map(|(n, x)| (n.clone(), x.map_or(Value::Null, Value::Number)))
                .collect()
        })
        .collect();
    assert_eq!(model.predict_records(&records).unwrap(), p, "{case}: records vs dense");

    assert_eq!(p.scores.cols(), e.margin[0].len(), "{case}: score columns");
    for (i, row) in e.margin.iter().enumerate() {
        for (j, &want) in row.iter().enumerate() {
            close(case, "margin", i, j, f64::from(p.scores.row(i)[j]), want);
        }
    }
    match e.objective.as_str() {
        "binary:logistic" => {
            let probs = p.probabilities.as_ref().unwrap();
            for (i, row) in e.predict.iter().enumerate() {
                close(case, "probability", i, 1, f64::from(probs.row(i)[1]), row[0]);
                close(case, "probability", i, 0, f64::from(probs.row(i)[0]), 1.0 - row[0]);
            }
        }
        "multi:softprob" => {
            let probs = p.probabilities.as_ref().unwrap();
            for (i, row) in e.predict.iter().enumerate() {
                for (j, &want) in row.iter().enumerate() {
                    close(case, "probability", i, j, f64::from(probs.row(i)[j]), want);
                }
            }
            // The label is the most probable class.
            let labels = p.labels.as_ref().unwrap().to_vec();
            for (i, row) in e.predict.iter().enumerate() {
                let best = (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b });
                assert_eq!(labels[i], Value::Number(best as f64), "{case}: label {i}");
            }
        }
        _ => {
            let values = p.values.as_ref().unwrap();
            for (i, row) in e.predict.iter().enumerate() {
                for (j, &want) in row.iter().enumerate() {
                    close(case, "value", i, j, f64::from(values.row(i)[j]), want);
                }
            }
        }
    }
    model
}

#[test]
fn binary_logistic_json_with_missing_values() {
    parity("binary_logistic", "json");
}

#[test]
fn binary_logistic_ubjson_reads_the_same() {
    parity("binary_logistic", "ubj");
    let json = import_file(&dir().join("binary_logistic.json"), &TreeImportOptions::default()).unwrap();
    let ubj = import_file(&dir().join("binary_logistic.ubj"), &TreeImportOptions::default()).unwrap();
    assert_eq!(json.1, ubj.1, "the same tensors from both formats");
}

#[test]
fn regression_with_default_feature_names() {
    let model = parity("regression", "json");
    assert_eq!(model.manifest().signature.inputs[0].name, "f0");
}

#[test]
fn poisson_exp_link_and_log_base_score() {
    parity("poisson", "json");
}

#[test]
fn tweedie() {
    parity("tweedie", "json");
}

#[test]
fn wine_three_classes() {
    parity("wine", "json");
}

#[test]
fn digits_ten_classes() {
    parity("digits", "json");
}

#[test]
fn dart_tree_weights() {
    parity("dart", "json");
}

#[test]
fn categorical_splits_with_missing_and_unseen_categories() {
    parity("categorical", "json");
}

#[test]
fn feature_names_override() {
    let path = dir().join("regression.json");
    let names: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    let options = TreeImportOptions { feature_names: Some(names.clone()), ..TreeImportOptions::default() };
    let (manifest, _) = import_file(&path, &options).unwrap();
    assert_eq!(manifest.signature.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(), names);

    let options = TreeImportOptions { feature_names: Some(vec!["a".into()]), ..TreeImportOptions::default() };
    let err = import_file(&path, &options).unwrap_err();
    assert!(matches!(err, ingot::Error::Usage { .. }), "{err}");
    assert!(err.to_string().contains("1 feature names given for an XGBoost model of 10 features"), "{err}");
}

#[test]
fn name_and_version_options() {
    let options =
        TreeImportOptions { name: Some("risk".into()), version: "2.1.0".into(), feature_names: None };
    let (manifest, _) = import_file(&dir().join("wine.json"), &options).unwrap();
    assert_eq!((manifest.model.name.as_str(), manifest.model.version.as_str()), ("risk", "2.1.0"));
    assert!(manifest.model.description.unwrap().contains("imported from XGBoost 3."));
}

/// A one-split model: `x < 0.5` → -1 (left), else +1; NaN goes right; base score `base`.
fn stump(objective: &str, base: &str) -> Json {
    json!({"version": [3, 2, 0], "learner": {
        "learner_model_param": {"base_score": base, "num_class": "0", "num_feature": "1"},
        "objective": {"name": objective},
        "gradient_booster": {"name": "gbtree", "model": {"tree_info": [0], "trees": [{
            "id": 0,
            "left_children": [1, -1, -1], "right_children": [2, -1, -1],
            "split_indices": [0, 0, 0], "split_conditions": [0.5, -1.0, 1.0],
            "default_left": [0, 0, 0], "split_type": [0, 0, 0],
            "tree_param": {"num_nodes": "3", "size_leaf_vector": "1"}}]}}}})
}

fn bytes(v: &Json) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn import_err(v: &Json) -> String {
    import_bytes(&bytes(v), "m", &TreeImportOptions::default()).unwrap_err().to_string()
}

#[test]
fn objectives_map_to_heads_and_margins() {
    let x = [0.2f32, 0.7, f32::NAN];
    // (objective, base score in output space, its margin, transform of a margin)
    type Transform = fn(f64) -> f64;
    let identity: Transform = |m| m;
    let logistic: Transform = |m| 1.0 / (1.0 + (-m).exp());
    let cases = [
        ("reg:squarederror", "[2.5E0]", 2.5, identity),
        ("reg:absoluteerror", "2.5", 2.5, identity),
        ("reg:logistic", "[2.5E-1]", (0.25f64 / 0.75).ln(), logistic),
        ("reg:gamma", "[2E0]", 2f64.ln(), f64::exp),
        ("count:poisson", "4", 4f64.ln(), f64::exp),
        ("reg:tweedie", "[1E0]", 0.0, f64::exp),
    ];
    for (objective, base, margin, transform) in cases {
        let model = model_of(&bytes(&stump(objective, base)));
        let p = model.predict_dense(&x, 3, 1).unwrap();
        let values = p.values.as_ref().unwrap();
        for (i, leaf) in [-1.0, 1.0, 1.0].into_iter().enumerate() {
            close(objective, "margin", i, 0, f64::from(p.scores.row(i)[0]), margin + leaf);
            close(objective, "value", i, 0, f64::from(values.row(i)[0]), transform(margin + leaf));
        }
    }
    for objective in ["binary:logitraw", "binary:hinge"] {
        // Identity margin: base 0.5 stays 0.5; the label is the sign.
        let model = model_of(&bytes(&stump(objective, "5E-1")));
        let p = model.predict_dense(&x, 3, 1).unwrap();
        assert_eq!(p.scores.as_slice(), &[-0.5, 1.5, 1.5], "{objective}");
        assert!(p.probabilities.is_none(), "{objective}");
        let labels: Vec<Value> = p.labels.unwrap().to_vec();
        assert_eq!(labels, vec![Value::Number(0.0), Value::Number(1.0), Value::Number(1.0)], "{objective}");
    }
    let model = model_of(&bytes(&stump("binary:logistic", "[5E-1]")));
    let p = model.predict_dense(&x, 3, 1).unwrap();
    assert_eq!(p.scores.as_slice(), &[-1.0, 1.0, 1.0]);
}

#[test]
fn multiclass_base_scores_per_class() {
    let mut m = stump("multi:softmax", "[1E0,2E0]");
    m["learner"]["learner_model_param"]["num_class"] = json!("2");
    let trees = m["learner"]["gradient_booster"]["model"]["trees"].clone();
    let mut second = trees[0].clone();
    second["id"] = json!(1);
    m["learner"]["gradient_booster"]["model"]["trees"] = json!([trees[0], second]);
    m["learner"]["gradient_booster"]["model"]["tree_info"] = json!([0, 1]);
    let p = model_of(&bytes(&m)).predict_dense(&[0.2], 1, 1).unwrap();
    assert_eq!(p.scores.as_slice(), &[0.0, 1.0]);
    assert_eq!(p.labels.unwrap().to_vec(), vec![Value::Number(1.0)]);
}

#[test]
fn non_finite_literals_in_json_text() {
    // XGBoost writes NaN as a bare `NaN`; fields the importer does not read may hold one.
    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"]["model"]["trees"][0]["loss_changes"] = json!("@");
    let text = String::from_utf8(bytes(&m)).unwrap().replace("\"@\"", "[NaN, -Infinity, Infinity]");
    let p = model_of(text.as_bytes()).predict_dense(&[0.7], 1, 1).unwrap();
    assert_eq!(p.scores.as_slice(), &[1.0]);
    // Where a number is needed, it is an error that names the node.
    let text = String::from_utf8(bytes(&stump("reg:squarederror", "0")))
        .unwrap()
        .replace("[0.5,-1.0,1.0]", "[0.5,NaN,1.0]");
    let err = import_bytes(text.as_bytes(), "m", &TreeImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("tree 0 node 1: the leaf value is not a finite number"), "{err}");
}

#[test]
fn categorical_split_rule_matches_xgboost() {
    // One categorical split on x with set {0, 2}: XGBoost sends 0 and 2 right (+1), other
    // categories, negatives and values beyond the set left (-1), NaN to default_left.
    for default_left in [0, 1] {
        let mut m = stump("reg:squarederror", "0");
        let tree = &mut m["learner"]["gradient_booster"]["model"]["trees"][0];
        tree["split_type"] = json!([1, 0, 0]);
        tree["split_conditions"] = json!([0.0, -1.0, 1.0]);
        tree["default_left"] = json!([default_left, 0, 0]);
        tree["categories_nodes"] = json!([0]);
        tree["categories_segments"] = json!([0]);
        tree["categories_sizes"] = json!([2]);
        tree["categories"] = json!([0, 2]);
        let model = model_of(&bytes(&m));
        let x = [0.0, 2.0, 2.9, 1.0, 3.0, 40.0, -1.0, -0.5, -0.0, 16777216.0, f32::NAN];
        let nan = if default_left == 1 { -1.0 } else { 1.0 };
        let want = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0, -1.0, nan];
        let p = model.predict_dense(&x, x.len(), 1).unwrap();
        assert_eq!(p.scores.as_slice(), &want, "default_left {default_left}");
    }
}

// ---- malformed input ----

#[test]
fn truncated_json_and_ubjson() {
    let json = std::fs::read(dir().join("binary_logistic.json")).unwrap();
    let err =
        import_bytes(&json[..json.len() / 2], "m", &TreeImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("not an XGBoost JSON model") && err.contains("EOF"), "{err}");
    let ubj = std::fs::read(dir().join("binary_logistic.ubj")).unwrap();
    for cut in [2, 100, ubj.len() / 2, ubj.len() - 1] {
        let err = import_bytes(&ubj[..cut], "m", &TreeImportOptions::default()).unwrap_err().to_string();
        assert!(err.contains("not a UBJSON document") && err.contains("offset"), "cut {cut}: {err}");
    }
}

#[test]
fn huge_ubjson_count_is_refused_before_allocating() {
    let ubj = std::fs::read(dir().join("binary_logistic.ubj")).unwrap();
    // The first typed array's count (`[$d#L` + 8 bytes) claims 2^62 elements.
    let at = ubj.windows(5).position(|w| w == b"[$d#L").unwrap() + 5;
    let mut bad = ubj.clone();
    bad[at..at + 8].copy_from_slice(&(1u64 << 62).to_be_bytes());
    let err = import_bytes(&bad, "m", &TreeImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("array count 4611686018427387904 does not fit in the"), "{err}");
}

#[test]
fn wrong_types_name_the_field() {
    let mut m = stump("reg:squarederror", "0");
    m["learner"]["learner_model_param"]["num_feature"] = json!([1]);
    let err = import_err(&m);
    assert!(
        err.contains("learner.learner_model_param.num_feature") && err.contains("found an array"),
        "{err}"
    );

    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"]["model"]["trees"][0]["split_conditions"] = json!("0.5");
    let err = import_err(&m);
    assert!(
        err.contains("trees[0].split_conditions") && err.contains("expected an array, found a string"),
        "{err}"
    );

    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"] = json!([1, -1]);
    let err = import_err(&m);
    assert!(err.contains("tree 0: 3 nodes declared, 2 in left_children"), "{err}");

    let mut m = stump("reg:squarederror", "0");
    m["learner"]["learner_model_param"]["base_score"] = json!("high");
    assert!(import_err(&m).contains("`high` is not a number"));

    let err = import_err(&json!({"learner": {"learner_model_param": {}}}));
    assert!(err.contains("learner.learner_model_param.num_feature") && err.contains("missing"), "{err}");
}

#[test]
fn child_out_of_range_cycle_and_bad_feature() {
    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"]["model"]["trees"][0]["right_children"] = json!([999, -1, -1]);
    let err = import_err(&m);
    assert!(
        err.contains("trees[0].right_children[0]")
            && err.contains("tree 0 node 0: right child 999 out of range (3 nodes)"),
        "{err}"
    );

    // Node 1 splits again with node 0 as a child: a cycle.
    let mut m = stump("reg:squarederror", "0");
    let tree = &mut m["learner"]["gradient_booster"]["model"]["trees"][0];
    tree["left_children"] = json!([1, 0, -1]);
    tree["right_children"] = json!([2, 1, -1]);
    let err = import_err(&m);
    assert!(err.contains("tree 0 node 1: left child 0 is reached twice (a cycle or a shared node)"), "{err}");

    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"] = json!([7, 0, 0]);
    assert!(import_err(&m).contains("tree 0 node 0: feature 7 out of range (1 features)"));

    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"]["model"]["tree_info"] = json!([3]);
    assert!(import_err(&m).contains("tree 0: output 3 is not one of the 1 outputs"));
}

#[test]
fn malformed_fixture_names_tree_and_node() {
    let mut m: Json = serde_json::from_slice(&std::fs::read(dir().join("regression.json")).unwrap()).unwrap();
    let tree = &mut m["learner"]["gradient_booster"]["model"]["trees"][3];
    let n = tree["left_children"].as_array().unwrap().len();
    tree["right_children"][0] = json!(999);
    let err = import_err(&m);
    assert!(err.contains(&format!("tree 3 node 0: right child 999 out of range ({n} nodes)")), "{err}");
}

#[test]
fn huge_claimed_counts() {
    let mut m = stump("reg:squarederror", "0");
    m["learner"]["learner_model_param"]["num_feature"] = json!("1000000000000");
    assert!(import_err(&m).contains("1000000000000 features (1 to"));
    let mut m = stump("reg:squarederror", "0");
    m["learner"]["learner_model_param"]["num_class"] = json!("99999999");
    assert!(import_err(&m).contains("99999999 outputs"));
    let mut m = stump("reg:squarederror", "0");
    let tree = &mut m["learner"]["gradient_booster"]["model"]["trees"][0];
    tree["split_type"] = json!([1, 0, 0]);
    tree["categories_nodes"] = json!([0]);
    tree["categories_segments"] = json!([0]);
    tree["categories_sizes"] = json!([1]);
    tree["categories"] = json!([1i64 << 40]);
    assert!(import_err(&m).contains("category 1099511627776 is not in 0..16777216"));
}

#[test]
fn unsupported_objectives_boosters_and_trees() {
    let err = import_bytes(&bytes(&stump("rank:ndcg", "0")), "m", &TreeImportOptions::default()).unwrap_err();
    assert!(matches!(err, ingot::Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("XGBoost objective `rank:ndcg`"), "{err}");

    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"] = json!({"name": "gblinear", "model": {"weights": [0.0, 0.0]}});
    assert!(import_err(&m).contains("XGBoost booster `gblinear`"));

    let mut m = stump("reg:squarederror", "0");
    m["learner"]["gradient_booster"]["model"]["trees"][0]["tree_param"]["size_leaf_vector"] = json!("3");
    assert!(import_err(&m).contains("vector leaves"));

    let mut m = stump("multi:softprob", "0");
    m["learner"]["learner_model_param"]["num_class"] = json!("1");
    assert!(import_err(&m).contains("multi:softprob needs num_class of at least 2"));

    assert!(import_err(&stump("reg:logistic", "3")).contains("3 is not in [0, 1]"));
    assert!(import_err(&stump("reg:gamma", "-1")).contains("-1 is not positive"));
}

#[test]
fn not_a_model_at_all() {
    for junk in [&b""[..], b"{}", b"[1, 2]", b"{\"learner\": []}", b"\x00\x01", b"{L\x00"] {
        let err = import_bytes(junk, "m", &TreeImportOptions::default()).unwrap_err();
        assert!(matches!(err, ingot::Error::Manifest { .. }), "{junk:?}: {err}");
    }
}
