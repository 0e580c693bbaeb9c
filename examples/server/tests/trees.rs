//! Tree ensembles imported from XGBoost and LightGBM, served from a repository in a tempdir:
//! the Ingot REST predict (records with `null` for a missing feature) and the Open Inference
//! Protocol V2 infer (JSON data for complete rows; the binary extension, whose FP64 bytes can
//! carry NaN, for rows with a missing feature) against the frameworks' own predictions.
//!
//! Fixtures: `tests/fixtures/trees/` (scripts/tree_fixtures/*.py). Tolerance as in the core's
//! parity tests: `|a - b| <= 1e-5 * max(1, |b|)`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Only `write` is used here.
#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::write;
use http_body_util::BodyExt;
use ingot::import::TreeImportOptions;
use ingot_server::{router, AppState, Auth, Limits, Metrics, Registry, RegistryOptions};
use serde_json::{json, Value as Json};
use tower::ServiceExt;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/trees")
}

/// Held-out rows (`None`: missing), the reference probability of each class per row, and rows
/// the test leaves out.
struct Case {
    names: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
    probabilities: Vec<Vec<f64>>,
    skip: Vec<usize>,
}

fn read_json(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// XGBoost `wine` (multi:softprob, three classes): `predict` holds each class's probability.
fn wine() -> Case {
    let e = read_json(&fixtures().join("xgboost/wine.expected.json"));
    Case {
        names: serde_json::from_value(e["feature_names"].clone()).unwrap(),
        rows: serde_json::from_value(e["rows"].clone()).unwrap(),
        probabilities: serde_json::from_value(e["predict"].clone()).unwrap(),
        skip: Vec::new(),
    }
}

/// LightGBM `binary_breast_cancer`: `predictions` holds the probability of class 1. Row 78 is
/// left out: LightGBM's answer there changes when the row is rounded to f32
/// (`F32_SENSITIVE` in crates/ingot/tests/tree_lightgbm.rs).
fn breast_cancer() -> Case {
    let e = read_json(&fixtures().join("lightgbm/binary_breast_cancer.json"));
    let text = std::fs::read_to_string(fixtures().join("lightgbm/binary_breast_cancer.txt")).unwrap();
    let names = text.lines().find_map(|l| l.strip_prefix("feature_names=")).unwrap();
    let p1: Vec<Vec<f64>> = serde_json::from_value(e["predictions"].clone()).unwrap();
    Case {
        names: names.split_whitespace().map(str::to_owned).collect(),
        rows: serde_json::from_value(e["rows"].clone()).unwrap(),
        probabilities: p1.iter().map(|p| vec![1.0 - p[0], p[0]]).collect(),
        skip: vec![78],
    }
}

/// A repository with `wine` (XGBoost) and `cancer` (LightGBM), imported from the fixtures.
fn app() -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let imports = [
        (
            "wine",
            ingot::import::xgboost::import_file as fn(&Path, &TreeImportOptions) -> _,
            "xgboost/wine.json",
        ),
        ("cancer", ingot::import::lightgbm::import_file, "lightgbm/binary_breast_cancer.txt"),
    ];
    for (name, import, file) in imports {
        let options = TreeImportOptions { name: Some(name.into()), ..TreeImportOptions::default() };
        let (manifest, tensors) = import(&fixtures().join(file), &options).unwrap();
        let bytes = ingot::format::to_bytes(&manifest, &tensors).unwrap();
        write(dir.path(), &format!("{name}/1.0.0/model.ingot"), &bytes);
    }
    let registry = Registry::open(dir.path(), RegistryOptions::default(), Arc::new(Metrics::new())).unwrap();
    let app = router(AppState::new(Arc::new(registry), Limits::default(), Auth::default()));
    (dir, app)
}

async fn call(app: &Router, uri: &str, headers: &[(&str, String)], body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method("POST").uri(uri);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn post_json(app: &Router, uri: &str, body: &Json) -> Json {
    let headers = [("content-type", "application/json".to_owned())];
    let (status, bytes) = call(app, uri, &headers, body.to_string().into_bytes()).await;
    let json: Json = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{status}: not JSON ({e})"));
    assert_eq!(status, StatusCode::OK, "{uri}: {json}");
    json
}

fn close(what: &str, have: f64, want: f64) {
    assert!((have - want).abs() <= 1e-5 * want.abs().max(1.0), "{what}: server {have}, reference {want}");
}

fn best(probabilities: &[f64]) -> usize {
    (0..probabilities.len()).fold(0, |b, c| if probabilities[c] > probabilities[b] { c } else { b })
}

/// Indices of the first `n` rows with a missing value and of the first `n` without one.
fn pick(case: &Case, n: usize) -> (Vec<usize>, Vec<usize>) {
    let missing = |i: &usize| case.rows[*i].iter().any(Option::is_none);
    let kept = || (0..case.rows.len()).filter(|i| !case.skip.contains(i));
    let with: Vec<usize> = kept().filter(missing).take(n).collect();
    let without: Vec<usize> = kept().filter(|i| !missing(i)).take(n).collect();
    assert!(
        !with.is_empty() && !without.is_empty(),
        "the fixture needs rows with and without missing values"
    );
    (with, without)
}

/// `/v1/models/{model}/predict` on records, a missing feature as `null`: probabilities keyed by
/// class, and the label.
async fn check_rest(app: &Router, model: &str, case: &Case, rows: &[usize]) {
    let records: Vec<Json> = rows
        .iter()
        .map(|&i| {
            let record: serde_json::Map<String, Json> = case
                .names
                .iter()
                .zip(&case.rows[i])
                .map(|(n, x)| (n.clone(), x.map_or(Json::Null, Json::from)))
                .collect();
            Json::Object(record)
        })
        .collect();
    let json = post_json(app, &format!("/v1/models/{model}/predict"), &json!({ "records": records })).await;
    let predictions = json["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), rows.len());
    for (p, &i) in predictions.iter().zip(rows) {
        let want = &case.probabilities[i];
        for (c, &w) in want.iter().enumerate() {
            close(
                &format!("{model} REST row {i} class {c}"),
                p["probabilities"][c.to_string()].as_f64().unwrap(),
                w,
            );
        }
        assert_eq!(p["label"], json!(best(want)), "{model} REST row {i}: {p}");
    }
}

/// The `label` (INT64) and `probabilities` (FP32 [rows, classes]) outputs of a V2 response.
fn check_v2_outputs(model: &str, response: &Json, case: &Case, rows: &[usize]) {
    let output = |name: &str| {
        response["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` output: {response}"))
            .clone()
    };
    let k = case.probabilities[0].len();
    let probabilities = output("probabilities");
    assert_eq!(probabilities["datatype"], "FP32");
    assert_eq!(probabilities["shape"], json!([rows.len(), k]));
    let data: Vec<f64> =
        probabilities["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let label = output("label");
    assert_eq!(label["datatype"], "INT64");
    for (r, &i) in rows.iter().enumerate() {
        for (c, &w) in case.probabilities[i].iter().enumerate() {
            close(&format!("{model} V2 row {i} class {c}"), data[r * k + c], w);
        }
        assert_eq!(label["data"][r], json!(best(&case.probabilities[i])), "{model} V2 row {i}");
    }
}

/// `/v2/models/{model}/infer`: complete rows as one JSON FP64 tensor `[rows, width]`.
async fn check_v2_json(app: &Router, model: &str, case: &Case, rows: &[usize]) {
    let data: Vec<Vec<f64>> =
        rows.iter().map(|&i| case.rows[i].iter().map(|x| x.unwrap()).collect()).collect();
    let request = json!({
        "id": "trees",
        "inputs": [{"name": "input", "shape": [rows.len(), case.names.len()], "datatype": "FP64", "data": data}],
    });
    let json = post_json(app, &format!("/v2/models/{model}/infer"), &request).await;
    assert_eq!(json["id"], "trees");
    assert_eq!(json["model_name"], model);
    check_v2_outputs(model, &json, case, rows);
}

/// `/v2/models/{model}/infer` with the binary extension: rows with missing values as NaN in a
/// binary FP64 tensor `[rows, width]` (JSON data has no way to write a missing number); the
/// outputs come back as JSON.
async fn check_v2_binary_nan(app: &Router, model: &str, case: &Case, rows: &[usize]) {
    let bytes: Vec<u8> = rows
        .iter()
        .flat_map(|&i| case.rows[i].iter().map(|x| x.unwrap_or(f64::NAN)))
        .flat_map(f64::to_le_bytes)
        .collect();
    let header = json!({
        "inputs": [{
            "name": "input",
            "shape": [rows.len(), case.names.len()],
            "datatype": "FP64",
            "parameters": {"binary_data_size": bytes.len()},
        }],
    });
    let mut body = header.to_string().into_bytes();
    let headers = [
        ("inference-header-content-length", body.len().to_string()),
        ("content-type", "application/octet-stream".to_owned()),
    ];
    body.extend_from_slice(&bytes);
    let (status, answer) = call(app, &format!("/v2/models/{model}/infer"), &headers, body).await;
    let json: Json = serde_json::from_slice(&answer).unwrap_or_else(|e| panic!("{status}: not JSON ({e})"));
    assert_eq!(status, StatusCode::OK, "{model}: {json}");
    check_v2_outputs(model, &json, case, rows);
}

#[tokio::test]
async fn xgboost_classifier_over_rest_and_v2() {
    let (_dir, app) = app();
    let case = wine();
    let (with_missing, complete) = pick(&case, 4);
    let both: Vec<usize> = with_missing.iter().chain(&complete).copied().collect();
    check_rest(&app, "wine", &case, &both).await;
    check_v2_json(&app, "wine", &case, &complete).await;
    check_v2_binary_nan(&app, "wine", &case, &with_missing).await;
}

#[tokio::test]
async fn lightgbm_classifier_over_rest_and_v2() {
    let (_dir, app) = app();
    let case = breast_cancer();
    let (with_missing, complete) = pick(&case, 4);
    let both: Vec<usize> = with_missing.iter().chain(&complete).copied().collect();
    check_rest(&app, "cancer", &case, &both).await;
    check_v2_json(&app, "cancer", &case, &complete).await;
    check_v2_binary_nan(&app, "cancer", &case, &with_missing).await;
}

#[tokio::test]
async fn v2_metadata_lists_the_feature_columns() {
    let (_dir, app) = app();
    let req = Request::get("/v2/models/wine").body(Body::empty()).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let json: Json = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let inputs = json["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 13);
    assert_eq!(inputs[0], json!({"name": "alcohol", "datatype": "FP64", "shape": [-1]}));
    assert_eq!(
        json["outputs"],
        json!([
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ])
    );
}
