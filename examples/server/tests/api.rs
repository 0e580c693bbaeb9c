//! Drives the router in memory (`tower::ServiceExt::oneshot`) and once over a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::{record, write};
use http_body_util::BodyExt;
use ingot::format::Reference;
use ingot::{Record, Value};
use ingot_server::{example_curl, router, AppState, Auth, Limits, Metrics, Registry, RegistryOptions};
use serde_json::{json, Value as Json};
use tower::ServiceExt;

/// The test logistic model with its card version set to `version` and, optionally, a reference
/// sample.
fn logistic(version: &str, sample: Option<Record>) -> Vec<u8> {
    ingot::testing::logistic_with(|manifest| {
        manifest.model.version = version.into();
        manifest.reference = sample.map(|row| Reference { sample: vec![row], ..Reference::default() });
    })
    .unwrap()
}

/// A repository with `logistic` 1.0.0 (with a reference sample), 1.10.0 and 1.9.0 — so the
/// default must compare numerically — plus a broken bundle and stray entries that are skipped.
fn repository() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "logistic/1.0.0/model.ingot", &logistic("1.0.0", Some(record(3.0, 1.0))));
    write(root, "logistic/1.9.0/model.ingot", &logistic("1.9.0", None));
    write(root, "logistic/1.10.0/model.ingot", &logistic("1.10.0", None));
    write(root, "logistic/latest/model.ingot", &logistic("1.0.0", None));
    write(root, "broken/1.0.0/model.ingot", b"not a bundle");
    write(root, "README.md", b"models live here");
    let registry = open(root).unwrap();
    (dir, registry)
}

fn open(root: &Path) -> Result<Registry, ingot_server::RepositoryError> {
    Registry::open(root, RegistryOptions::default(), Arc::new(Metrics::new()))
}

fn app_with(limits: Limits) -> (tempfile::TempDir, Router) {
    let (dir, registry) = repository();
    (dir, router(AppState::new(Arc::new(registry), limits, Auth::default())))
}

fn app() -> (tempfile::TempDir, Router) {
    app_with(Limits::default())
}

async fn send(app: &Router, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Json) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"));
    (status, json)
}

async fn post(app: &Router, uri: &str, body: &str) -> (StatusCode, Json) {
    send(app, "POST", uri, Some(body)).await
}

fn assert_error(json: &Json, code: &str, fragments: &[&str]) {
    assert_eq!(json["error"]["code"], code, "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    for f in fragments {
        assert!(message.contains(f), "`{message}` should mention `{f}`");
    }
}

#[tokio::test]
async fn healthz() {
    let (_dir, app) = app();
    let (status, json) = send(&app, "GET", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({"status": "ok"}));
}

#[tokio::test]
async fn lists_models_with_numeric_default_version() {
    let (_dir, app) = app();
    let (status, json) = send(&app, "GET", "/v1/models", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json,
        json!({"models": [{
            "name": "logistic",
            "versions": ["1.0.0", "1.9.0", "1.10.0"],
            "default_version": "1.10.0",
        }]})
    );
}

#[tokio::test]
async fn model_metadata() {
    let (_dir, app) = app();
    let (status, json) = send(&app, "GET", "/v1/models/logistic", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["name"], "logistic");
    assert_eq!(json["version"], "1.10.0");
    assert_eq!(json["model"]["version"], "1.10.0");
    assert_eq!(json["versions"], json!(["1.0.0", "1.9.0", "1.10.0"]));
    assert_eq!(json["signature"]["inputs"][0]["name"], "a");
    assert_eq!(json["classes"], json!(["no", "yes"]));
    assert_eq!(json["input_width"], 2);

    let (status, json) = send(&app, "GET", "/v1/models/logistic/versions/1.0.0", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["version"], "1.0.0");
    assert_eq!(json["sample"], json!([{"a": 3, "b": 1}]));
}

#[tokio::test]
async fn predicts_records() {
    let (_dir, app) = app();
    let body = r#"{"records":[{"a":3,"b":1},{"a":0,"b":4}]}"#;
    let (status, json) = post(&app, "/v1/models/logistic/predict", body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["model"], "logistic");
    assert_eq!(json["version"], "1.10.0");
    let preds = json["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 2);
    // score = 2(a − 1) − b/2 + 0.5: row 0 → 4.0 ("yes"), row 1 → −3.5 ("no").
    assert_eq!(preds[0]["label"], "yes");
    assert_eq!(preds[1]["label"], "no");
    let p = &preds[0]["probabilities"];
    let (no, yes) = (p["no"].as_f64().unwrap(), p["yes"].as_f64().unwrap());
    assert!((no + yes - 1.0).abs() < 1e-6);
    assert!((yes - 1.0 / (1.0 + (-4.0f64).exp())).abs() < 1e-6, "{yes}");
    // f32 probabilities print in their shortest form, not as widened f64 noise.
    assert!(p["yes"].to_string().len() <= 12, "{}", p["yes"]);
}

#[tokio::test]
async fn predicts_instances() {
    let (_dir, app) = app();
    let (status, json) =
        post(&app, "/v1/models/logistic/predict", r#"{"instances":[[3,1],[0.0,4.0]]}"#).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let labels: Vec<_> = json["predictions"].as_array().unwrap().iter().map(|p| p["label"].clone()).collect();
    assert_eq!(labels, [json!("yes"), json!("no")]);

    let (status, json) = post(&app, "/v1/models/logistic/predict", r#"{"instances":[]}"#).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["predictions"], json!([]));
}

#[tokio::test]
async fn predicts_with_a_specific_version() {
    let (_dir, app) = app();
    let body = r#"{"records":[{"a":3,"b":1}]}"#;
    let (status, json) = post(&app, "/v1/models/logistic/versions/1.9.0/predict", body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["version"], "1.9.0");
    assert_eq!(json["predictions"][0]["label"], "yes");

    let (status, json) = post(&app, "/v1/models/logistic/versions/2.0.0/predict", body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&json, "VersionNotFound", &["2.0.0", "1.10.0"]);
}

#[tokio::test]
async fn unknown_model_is_404() {
    let (_dir, app) = app();
    let (status, json) = post(&app, "/v1/models/nope/predict", r#"{"records":[]}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&json, "ModelNotFound", &["nope"]);

    // The broken bundle was skipped, not served.
    let (status, _) = send(&app, "GET", "/v1/models/broken", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, json) = send(&app, "GET", "/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&json, "NotFound", &["/nowhere"]);

    let (status, json) = send(&app, "GET", "/v1/models/logistic/predict", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&json, "MethodNotAllowed", &["GET"]);
}

#[tokio::test]
async fn bad_input_is_400_with_row_and_column() {
    let (_dir, app) = app();
    let uri = "/v1/models/logistic/predict";

    let body = r#"{"records":[{"a":1,"b":2},{"a":"x","b":2}]}"#;
    let (status, json) = post(&app, uri, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "IngotInputError", &["row 1", "`a`"]);

    let (status, json) = post(&app, uri, r#"{"records":[{"a":1}]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "IngotInputError", &["row 0", "`b`"]);

    // Ragged and wrong-width dense rows.
    let (status, json) = post(&app, uri, r#"{"instances":[[1,2],[1,2,3]]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "IngotInputError", &["instances row 1", "2 values"]);
    let (status, json) = post(&app, uri, r#"{"instances":[[1,2,3]]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "IngotInputError", &["expected 2"]);

    // Dense rows are numbers only.
    let (status, json) = post(&app, uri, r#"{"instances":[[1,"2"]]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "InvalidRequest", &["instances[0][1]"]);

    // Neither or both forms, or an unknown field.
    for body in [r#"{}"#, r#"{"records":[],"instances":[]}"#, r#"{"rows":[]}"#] {
        let (status, json) = post(&app, uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&json, "InvalidRequest", &["records", "instances"]);
    }
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (_dir, app) = app();
    let (status, json) = post(&app, "/v1/models/logistic/predict", r#"{"records": [}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "InvalidJson", &["not valid JSON", "line 1 column"]);

    let req = Request::post("/v1/models/logistic/predict").body(Body::from(r#"{"records":[]}"#)).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json: Json = serde_json::from_slice(&bytes).unwrap();
    assert_error(&json, "UnsupportedMediaType", &["application/json"]);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let (_dir, app) = app_with(Limits { max_body_bytes: 1024, ..Limits::default() });
    let rows = vec![r#"{"a":1,"b":2}"#; 200].join(",");
    let body = format!(r#"{{"records":[{rows}]}}"#);
    assert!(body.len() > 1024);
    let (status, json) = post(&app, "/v1/models/logistic/predict", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&json, "BodyTooLarge", &["1024 bytes"]);
}

#[tokio::test]
async fn too_many_rows_is_413() {
    let (_dir, app) = app_with(Limits { max_batch_rows: 3, ..Limits::default() });
    let uri = "/v1/models/logistic/predict";
    let (status, json) = post(&app, uri, r#"{"instances":[[1,2],[1,2],[1,2],[1,2]]}"#).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&json, "TooManyRows", &["4 rows", "at most 3"]);

    let (status, _) = post(&app, uri, r#"{"instances":[[1,2],[1,2],[1,2]]}"#).await;
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn nothing_loadable_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "broken/1.0.0/model.ingot", b"junk");
    let err = open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("1 bundle(s) failed"), "{err}");
    assert!(open(&dir.path().join("missing")).is_err());
}

#[test]
fn example_curl_uses_the_reference_sample_and_quotes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut row = record(3.0, 1.0);
    row.insert("note".into(), Value::from("it's"));
    write(dir.path(), "m/1.0.0/model.ingot", &logistic("1.0.0", Some(row)));
    write(dir.path(), "z/1.0.0/model.ingot", &logistic("1.0.0", None));
    let registry = open(dir.path()).unwrap();
    let snapshot = registry.snapshot();
    let addr = "0.0.0.0:9000".parse().unwrap();

    let mut models = snapshot.models.values();
    let line = example_curl(addr, models.next().unwrap());
    assert_eq!(
        line,
        r#"curl -s -X POST http://127.0.0.1:9000/v1/models/m/predict -H 'content-type: application/json' -d '{"records":[{"a":3,"b":1,"note":"it'\''s"}]}'"#
    );
    let line = example_curl(addr, models.next().unwrap());
    assert!(line.ends_with(r#"-d '{"instances":[[0.0,0.0]]}'"#), "{line}");
}

/// Raw HTTP/1.1 over a real socket, then a graceful shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp() {
    let (_dir, app) = app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ingot_server::serve(listener, app, async {
        let _ = stopped.await;
    }));

    let response = tokio::task::spawn_blocking(move || {
        let body = r#"{"records":[{"a":3,"b":1}]}"#;
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST /v1/models/logistic/predict HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();

    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"));
    let json: Json = serde_json::from_str(body).unwrap();
    assert_eq!(json["predictions"][0]["label"], "yes");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn kserve_v1_predicts_objects_and_number_lists() {
    let (_dir, app) = app();
    let uri = "/v1/models/logistic:predict";
    let (status, json) = post(&app, uri, r#"{"instances":[{"a":3,"b":1},{"a":0,"b":4}]}"#).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json, json!({"predictions": ["yes", "no"]}));
    let (status, json) = post(&app, uri, r#"{"instances":[[3,1],[0,4]]}"#).await;
    assert_eq!((status, json), (StatusCode::OK, json!({"predictions": ["yes", "no"]})));

    let (status, json) = post(&app, uri, r#"{"instances":[[3,1],{"a":0,"b":4}]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "InvalidRequest", &["list of numbers"]);
    let (status, json) = post(&app, uri, r#"{"instances":{"a":3}}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "InvalidRequest", &["instances"]);
    let (status, json) = post(&app, uri, r#"{"instances":[{"a":3}]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "IngotInputError", &["`b`"]);
    let (status, json) = post(&app, "/v1/models/logistic:explain", r#"{"instances":[]}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&json, "NotFound", &[":predict"]);
    let (status, json) = post(&app, "/v1/models/nope:predict", r#"{"instances":[]}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&json, "ModelNotFound", &["nope"]);
}

/// Bundles written by `ingot quantize` load and serve like any other, and answer what the
/// library answers for them.
#[tokio::test]
async fn serves_reduced_precision_bundles() {
    use ingot::quantize::{quantize, Calibration, Precision, QuantizeOptions};
    let source = ingot::Model::from_bytes(ingot::testing::mlp_bundle().unwrap()).unwrap();
    let data = Calibration::from_reference(&source).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut models = Vec::new();
    for precision in [Precision::Int8, Precision::F16, Precision::Bf16] {
        let out = quantize(&source, &data, &QuantizeOptions::new(precision)).unwrap();
        write(dir.path(), &format!("mlp-{}/1.0.0/model.ingot", precision.name()), &out.bytes);
        models.push((precision.name(), out.model));
    }
    let registry = open(dir.path()).unwrap();
    let app = router(AppState::new(Arc::new(registry), Limits::default(), Auth::default()));
    let row = r#"{"x0":0.5,"x1":-1,"x2":0.25,"x3":1.5,"x4":0,"x5":-0.75,"x6":1,"x7":-1.5}"#;
    let records: Vec<Record> = vec![serde_json::from_str(row).unwrap()];
    for (name, model) in models {
        let (status, json) =
            post(&app, &format!("/v1/models/mlp-{name}/predict"), &format!(r#"{{"records":[{row}]}}"#)).await;
        assert_eq!(status, StatusCode::OK, "{name}: {json}");
        let want = model.predict_records(&records).unwrap();
        assert_eq!(json["predictions"][0]["label"], json!(want.labels.unwrap().to_vec()[0]), "{name}");
        let (status, json) = send(&app, "GET", &format!("/v1/models/mlp-{name}"), None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {json}");
        assert_eq!(json["model"]["version"], format!("1.0.0+{name}"));
    }
}

/// A model's `config.toml` picks its device and kernels: candle's ops answer what the fused
/// kernels answer, and a device that is not there fails that model's load, naming it, while the
/// others serve.
#[tokio::test]
async fn config_chooses_device_and_kernels_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "fused/1.0.0/model.ingot", &logistic("1.0.0", None));
    write(root, "candle/1.0.0/model.ingot", &logistic("1.0.0", None));
    write(root, "candle/config.toml", b"kernels = \"candle\"\n");
    write(root, "tpu/1.0.0/model.ingot", &logistic("1.0.0", None));
    write(root, "tpu/config.toml", b"device = \"tpu:0\"\n");
    let registry = open(root).unwrap();
    let snapshot = registry.snapshot();
    let failure = snapshot.failures.iter().find(|f| f.model == "tpu").expect("tpu fails to load");
    assert!(failure.reason.contains("device `tpu:0`"), "{}", failure.reason);
    assert_eq!(snapshot.get("candle").unwrap().stable().model().runs_on(), ("cpu".to_string(), "candle"));
    let app = router(AppState::new(Arc::new(registry), Limits::default(), Auth::default()));
    let body = r#"{"records":[{"a":3,"b":1},{"a":0,"b":4},{"a":1.5,"b":-2}]}"#;
    let (s1, fused) = post(&app, "/v1/models/fused/predict", body).await;
    let (s2, candle) = post(&app, "/v1/models/candle/predict", body).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{fused} {candle}");
    for (a, b) in
        fused["predictions"].as_array().unwrap().iter().zip(candle["predictions"].as_array().unwrap())
    {
        assert_eq!(a["label"], b["label"]);
        for class in ["no", "yes"] {
            let (p, q) =
                (a["probabilities"][class].as_f64().unwrap(), b["probabilities"][class].as_f64().unwrap());
            assert!((p - q).abs() <= 1e-6, "{class}: fused {p} vs candle {q}");
        }
    }
    assert!(ingot_server::ModelConfig::parse("kernels = \"fast\"").unwrap_err().contains("kernels `fast`"));
}
