//! The Open Inference Protocol: REST in memory (`tower::ServiceExt::oneshot`) and gRPC over a
//! real socket with the generated client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::{record, write};
use http_body_util::BodyExt;
use ingot::format::{to_bytes, PostprocessSpec, Reference};
use ingot::Manifest;
use ingot_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use ingot_server::grpc::proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use ingot_server::grpc::proto::{
    InferTensorContents, ModelInferRequest, ModelMetadataRequest, ModelReadyRequest, ServerLiveRequest,
    ServerMetadataRequest, ServerReadyRequest,
};
use ingot_server::{router, AppState, Auth, Limits, Metrics, Registry, RegistryOptions};
use serde_json::{json, Value as Json};
use tower::ServiceExt;

/// sha256("test").
const TEST_KEY_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A bundle of the test logistic model with `edit` applied to its manifest.
fn logistic_with(edit: impl FnOnce(&mut Manifest)) -> Vec<u8> {
    ingot::testing::logistic_with(edit).unwrap()
}

/// The text encoder of `tests/fixtures/arch/distilbert` (random weights, own tokenizer).
fn text_bundle() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/arch/distilbert/model");
    let (manifest, tensors) =
        ingot::import::hf::import_dir(dir, &ingot::import::hf::ImportOptions::default()).unwrap();
    to_bytes(&manifest, &tensors).unwrap()
}

/// `logistic` 1.0.0 and 1.1.0 (string classes), `linear` (a regressor), `cancer` (the demo
/// model: 30 columns, integer classes), `text` (an encoder) and a broken bundle.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sample = |m: &mut Manifest| {
        m.reference = Some(Reference { sample: vec![record(3.0, 1.0)], ..Reference::default() });
    };
    write(root, "logistic/1.0.0/model.ingot", &logistic_with(sample));
    write(root, "logistic/1.1.0/model.ingot", &logistic_with(|m| m.model.version = "1.1.0".into()));
    let regressor = |m: &mut Manifest| {
        m.model.name = "linear".into();
        m.postprocess = vec![PostprocessSpec::Regress { targets: vec![], link: Default::default() }];
    };
    write(root, "linear/1.0.0/model.ingot", &logistic_with(regressor));
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1.0.0/model.ingot");
    write(root, "cancer/1.0.0/model.ingot", &std::fs::read(demo).unwrap());
    write(root, "text/1.0.0/model.ingot", &text_bundle());
    write(root, "broken/1.0.0/model.ingot", b"not a bundle");
    dir
}

fn state_with(root: &Path, auth: Auth) -> AppState {
    let registry = Registry::open(root, RegistryOptions::default(), Arc::new(Metrics::new())).unwrap();
    AppState::new(Arc::new(registry), Limits::default(), auth)
}

fn app() -> (tempfile::TempDir, Router) {
    let dir = repository();
    let app = router(state_with(dir.path(), Auth::default()));
    (dir, app)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {:?}", self.status, self.body))
    }
}

async fn call(app: &Router, method: &str, uri: &str, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Json) {
    let answer = call(app, "GET", uri, &[], Vec::new()).await;
    (answer.status, answer.json())
}

async fn infer(app: &Router, model: &str, request: &Json) -> (StatusCode, Json) {
    let uri = format!("/v2/models/{model}/infer");
    let answer = call(app, "POST", &uri, &[], request.to_string().into_bytes()).await;
    (answer.status, answer.json())
}

/// A V2 error: `{"error": "message"}` mentioning each fragment.
fn assert_v2_error(json: &Json, fragments: &[&str]) {
    let message = json["error"].as_str().unwrap_or_else(|| panic!("not a V2 error: {json}"));
    assert_eq!(json.as_object().unwrap().len(), 1, "{json}");
    for f in fragments {
        assert!(message.contains(f), "`{message}` should mention `{f}`");
    }
}

fn output<'a>(response: &'a Json, name: &str) -> &'a Json {
    response["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("{response}"))
}

fn floats(json: &Json) -> Vec<f64> {
    json.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn dense_request(rows: &[[f64; 2]]) -> Json {
    json!({
        "id": "req-1",
        "inputs": [{"name": "input", "shape": [rows.len(), 2], "datatype": "FP64", "data": rows}],
    })
}

#[tokio::test]
async fn server_metadata() {
    let (_dir, app) = app();
    let (status, json) = get(&app, "/v2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["name"], "ingot");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["extensions"], json!(["binary_tensor_data"]));
}

#[tokio::test]
async fn model_metadata_lists_tensors() {
    let (_dir, app) = app();
    let answer = call(&app, "GET", "/v2/models/logistic", &[], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["x-ingot-version"], "1.1.0");
    assert_eq!(
        answer.json(),
        json!({
            "name": "logistic",
            "versions": ["1.0.0", "1.1.0"],
            "platform": "ingot",
            "inputs": [
                {"name": "a", "datatype": "FP64", "shape": [-1]},
                {"name": "b", "datatype": "FP64", "shape": [-1]},
            ],
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            ],
        })
    );
    let answer = call(&app, "GET", "/v2/models/logistic/versions/1.0.0", &[], Vec::new()).await;
    assert_eq!(
        (answer.status, &answer.headers["x-ingot-version"]),
        (StatusCode::OK, &"1.0.0".parse().unwrap())
    );

    let (_, cancer) = get(&app, "/v2/models/cancer").await;
    assert_eq!(cancer["inputs"].as_array().unwrap().len(), 30);
    assert_eq!(cancer["inputs"][0], json!({"name": "mean radius", "datatype": "FP64", "shape": [-1]}));
    assert_eq!(cancer["outputs"][0], json!({"name": "label", "datatype": "INT64", "shape": [-1]}));
    let (_, linear) = get(&app, "/v2/models/linear").await;
    assert_eq!(linear["outputs"], json!([{"name": "value", "datatype": "FP32", "shape": [-1]}]));
    let (_, text) = get(&app, "/v2/models/text").await;
    assert_eq!(text["inputs"], json!([{"name": "text", "datatype": "BYTES", "shape": [-1]}]));
    assert_eq!(text["outputs"][0]["name"], "embedding");
    assert_eq!(text["outputs"][0]["shape"][0], -1);

    let (status, json) = get(&app, "/v2/models/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&json, &["no model named `nope`"]);
    let (status, json) = get(&app, "/v2/models/logistic/versions/9.9.9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&json, &["no version `9.9.9`", "1.0.0, 1.1.0"]);
}

#[tokio::test]
async fn model_ready() {
    let (_dir, app) = app();
    assert_eq!(
        get(&app, "/v2/models/logistic/ready").await,
        (StatusCode::OK, json!({"name": "logistic", "ready": true}))
    );
    assert_eq!(get(&app, "/v2/models/logistic/versions/stable/ready").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/v2/models/logistic/versions/1.0.0/ready").await.0, StatusCode::OK);
    let (status, json) = get(&app, "/v2/models/logistic/versions/2.0.0/ready").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&json, &["no version `2.0.0`"]);
    let (status, json) = get(&app, "/v2/models/nope/ready").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&json, &["nope"]);
    let (status, json) = get(&app, "/v2/models/broken/ready").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_v2_error(&json, &["model `broken` version 1.0.0 is not ready: it failed to load"]);
}

#[tokio::test]
async fn repository_index_lists_failures_too() {
    let (_dir, app) = app();
    let answer = call(&app, "POST", "/v2/repository/index", &[], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let entries = answer.json();
    let entries = entries.as_array().unwrap();
    let names: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["version"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("broken", "1.0.0", "UNAVAILABLE"),
            ("cancer", "1.0.0", "READY"),
            ("linear", "1.0.0", "READY"),
            ("logistic", "1.0.0", "READY"),
            ("logistic", "1.1.0", "READY"),
            ("text", "1.0.0", "READY"),
        ]
    );
    assert!(!entries[0]["reason"].as_str().unwrap().is_empty(), "{entries:?}");
    assert_eq!(entries[1]["reason"], "");
    let ready = call(&app, "POST", "/v2/repository/index", &[], br#"{"ready": true}"#.to_vec()).await;
    assert_eq!(ready.json().as_array().unwrap().len(), 5);
    let bad = call(&app, "POST", "/v2/repository/index", &[], b"[1]".to_vec()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_v2_error(&bad.json(), &["{\"ready\": true|false}"]);
}

#[tokio::test]
async fn infers_dense_and_per_column_like_v1() {
    let (_dir, app) = app();
    let v1 = call(
        &app,
        "POST",
        "/v1/models/logistic/predict",
        &[("content-type", "application/json".into())],
        json!({"records": [record(3.0, 1.0), record(0.0, 0.0)]}).to_string().into_bytes(),
    )
    .await
    .json();
    let want: Vec<f64> = v1["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            [p["probabilities"]["no"].as_f64().unwrap(), p["probabilities"]["yes"].as_f64().unwrap()]
        })
        .collect();

    let (status, dense) = infer(&app, "logistic", &dense_request(&[[3.0, 1.0], [0.0, 0.0]])).await;
    assert_eq!(status, StatusCode::OK, "{dense}");
    assert_eq!(
        (dense["model_name"].as_str(), dense["model_version"].as_str()),
        (Some("logistic"), Some("1.1.0"))
    );
    assert_eq!(dense["id"], "req-1");
    assert_eq!(
        output(&dense, "label"),
        &json!({"name": "label", "datatype": "BYTES", "shape": [2], "data": ["yes", "no"]})
    );
    let probabilities = output(&dense, "probabilities");
    assert_eq!((&probabilities["datatype"], &probabilities["shape"]), (&json!("FP32"), &json!([2, 2])));
    assert_eq!(floats(&probabilities["data"]), want);

    // One tensor per column, [rows] and [rows, 1], any numeric datatype, nested data.
    let columns = json!({
        "inputs": [
            {"name": "b", "shape": [2, 1], "datatype": "INT32", "data": [[1], [0]]},
            {"name": "a", "shape": [2], "datatype": "FP32", "data": [3, 0]},
        ],
    });
    let (status, per_column) = infer(&app, "logistic", &columns).await;
    assert_eq!(status, StatusCode::OK, "{per_column}");
    assert_eq!(per_column["outputs"], dense["outputs"]);
    assert!(per_column.get("id").is_none());

    // A named version, and only the outputs asked for, in that order.
    let mut request = dense_request(&[[3.0, 1.0]]);
    request["outputs"] = json!([{"name": "probabilities"}]);
    let answer =
        call(&app, "POST", "/v2/models/logistic/versions/1.0.0/infer", &[], request.to_string().into_bytes())
            .await;
    assert_eq!(answer.headers["x-ingot-version"], "1.0.0");
    let json = answer.json();
    assert_eq!(json["model_version"], "1.0.0");
    let names: Vec<&str> =
        json["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["probabilities"]);
}

#[tokio::test]
async fn labels_values_and_embeddings() {
    let (_dir, app) = app();
    let cancer = call(&app, "GET", "/v1/models/cancer", &[], Vec::new()).await.json();
    let sample = cancer["sample"].as_array().unwrap();
    let columns = cancer["signature"]["inputs"].as_array().unwrap();
    let rows: Vec<Vec<f64>> = sample
        .iter()
        .map(|r| columns.iter().map(|c| r[c["name"].as_str().unwrap()].as_f64().unwrap()).collect())
        .collect();
    let request =
        json!({"inputs": [{"name": "x", "shape": [rows.len(), 30], "datatype": "FP64", "data": rows}]});
    let (status, json) = infer(&app, "cancer", &request).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let label = output(&json, "label");
    assert_eq!(label["datatype"], "INT64");
    assert!(label["data"].as_array().unwrap().iter().all(|l| l == 0 || l == 1), "{label}");

    let (status, json) = infer(&app, "linear", &dense_request(&[[3.0, 1.0], [1.0, 0.0]])).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    // score = 2·(a − 1) − b/2 + 0.5
    assert_eq!(
        json["outputs"],
        json!([{"name": "value", "datatype": "FP32", "shape": [2], "data": [4.0, 0.5]}])
    );

    let texts =
        json!({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a cat", "a dog"]}]});
    let (status, json) = infer(&app, "text", &texts).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let embedding = output(&json, "embedding");
    let dim = embedding["shape"][1].as_u64().unwrap() as usize;
    assert_eq!(embedding["shape"][0], 2);
    let v1 = call(
        &app,
        "POST",
        "/v1/models/text/predict",
        &[("content-type", "application/json".into())],
        br#"{"texts": ["a cat", "a dog"]}"#.to_vec(),
    )
    .await
    .json();
    let want: Vec<f64> = (0..2).flat_map(|i| floats(&v1["predictions"][i]["embedding"])).collect();
    assert_eq!(want.len(), 2 * dim);
    assert_eq!(floats(&embedding["data"]), want);
}

/// A binary request body: the JSON header, then each tensor's bytes.
fn binary_body(header: &Json, tensors: &[Vec<u8>]) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let json = header.to_string().into_bytes();
    let headers = vec![
        ("inference-header-content-length", json.len().to_string()),
        ("content-type", "application/octet-stream".to_owned()),
    ];
    let mut body = json;
    for t in tensors {
        body.extend_from_slice(t);
    }
    (headers, body)
}

/// The outputs of a binary response, decoded into the JSON form.
fn decode_binary_response(answer: &Answer) -> Json {
    let length: usize = answer.headers["inference-header-content-length"].to_str().unwrap().parse().unwrap();
    assert_eq!(answer.headers["content-type"], "application/octet-stream");
    let mut json: Json = serde_json::from_slice(&answer.body[..length]).unwrap();
    let mut rest = &answer.body[length..];
    for output in json["outputs"].as_array_mut().unwrap() {
        let Some(size) = output["parameters"]["binary_data_size"].as_u64() else { continue };
        let (bytes, tail) = rest.split_at(size as usize);
        rest = tail;
        let data: Vec<Json> = match output["datatype"].as_str().unwrap() {
            // As JSON writes an f32: its shortest decimal form.
            "FP32" => bytes
                .chunks_exact(4)
                .map(|c| {
                    serde_json::from_str(&f32::from_le_bytes(c.try_into().unwrap()).to_string()).unwrap()
                })
                .collect(),
            "INT64" => {
                bytes.chunks_exact(8).map(|c| json!(i64::from_le_bytes(c.try_into().unwrap()))).collect()
            }
            "BYTES" => {
                let mut items = Vec::new();
                let mut b = bytes;
                while !b.is_empty() {
                    let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
                    items.push(json!(std::str::from_utf8(&b[4..4 + n]).unwrap()));
                    b = &b[4 + n..];
                }
                items
            }
            other => panic!("unexpected datatype {other}"),
        };
        let object = output.as_object_mut().unwrap();
        object.remove("parameters");
        object.insert("data".into(), Json::Array(data));
    }
    assert!(rest.is_empty());
    json
}

#[tokio::test]
async fn binary_request_and_response_match_json() {
    let (_dir, app) = app();
    let (_, want) = infer(&app, "logistic", &dense_request(&[[3.0, 1.0], [0.0, 0.0], [1.0, 4.0]])).await;

    // Binary FP32 inputs, one per column; every output binary.
    let a: Vec<u8> = [3.0f32, 0.0, 1.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let b: Vec<u8> = [1.0f64, 0.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let header = json!({
        "id": "req-1",
        "parameters": {"binary_data_output": true},
        "inputs": [
            {"name": "a", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": a.len()}},
            {"name": "b", "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": b.len()}},
        ],
    });
    let (headers, body) = binary_body(&header, &[a.clone(), b.clone()]);
    let answer = call(&app, "POST", "/v2/models/logistic/infer", &headers, body).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(decode_binary_response(&answer), want);

    // The dense form in binary; per-output choice overrides the request's.
    let dense: Vec<u8> = [3.0f64, 1.0, 0.0, 0.0, 1.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let header = json!({
        "id": "req-1",
        "parameters": {"binary_data_output": true},
        "inputs": [{"name": "input", "shape": [3, 2], "datatype": "FP64", "parameters": {"binary_data_size": 48}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": false}}, {"name": "probabilities"}],
    });
    let (headers, body) = binary_body(&header, &[dense]);
    let answer = call(&app, "POST", "/v2/models/logistic/infer", &headers, body).await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = decode_binary_response(&answer);
    assert_eq!(json, want);

    // BYTES in binary for a text model; the label back in binary.
    let mut texts = Vec::new();
    for s in ["a cat", "a dog"] {
        texts.extend_from_slice(&(s.len() as u32).to_le_bytes());
        texts.extend_from_slice(s.as_bytes());
    }
    let header = json!({
        "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": texts.len()}}],
        "outputs": [{"name": "embedding", "parameters": {"binary_data": true}}],
    });
    let (headers, body) = binary_body(&header, &[texts]);
    let answer = call(&app, "POST", "/v2/models/text/infer", &headers, body).await;
    assert_eq!(answer.status, StatusCode::OK);
    let binary = decode_binary_response(&answer);
    let texts =
        json!({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a cat", "a dog"]}]});
    let (_, json) = infer(&app, "text", &texts).await;
    assert_eq!(binary["outputs"], json["outputs"]);

    // Binary label BYTES.
    let header = json!({
        "inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": true}}],
    });
    let (headers, body) =
        binary_body(&header, &[[3.0f32, 1.0].iter().flat_map(|x| x.to_le_bytes()).collect()]);
    let answer = call(&app, "POST", "/v2/models/logistic/infer", &headers, body).await;
    assert_eq!(decode_binary_response(&answer)["outputs"][0]["data"], json!(["yes"]));
}

#[tokio::test]
async fn binary_errors_are_400() {
    let (_dir, app) = app();
    let check = |header: Json, tensors: Vec<Vec<u8>>, fragments: &'static [&'static str]| {
        let app = app.clone();
        async move {
            let (headers, body) = binary_body(&header, &tensors);
            let answer = call(&app, "POST", "/v2/models/logistic/infer", &headers, body).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{header}");
            assert_v2_error(&answer.json(), fragments);
        }
    };
    let input = |size: usize| json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": size}}]});
    check(input(8), vec![vec![0; 4]], &["binary_data_size is 8 but only 4 bytes"]).await;
    check(input(4), vec![vec![0; 4]], &["input `x`", "2 FP32 elements take 8 bytes; the binary data has 4"])
        .await;
    check(input(8), vec![vec![0; 12]], &["4 bytes of binary data follow"]).await;
    let bytes = json!({"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 5}}]});
    check(bytes, vec![vec![200, 0, 0, 0, b'x']], &["BYTES element 0 claims 200 bytes; only 1 are left"])
        .await;

    let answer = call(
        &app,
        "POST",
        "/v2/models/logistic/infer",
        &[("inference-header-content-length", "999".into())],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_v2_error(
        &answer.json(),
        &["Inference-Header-Content-Length is 999 but the body has only 2 bytes"],
    );
}

#[tokio::test]
async fn errors_are_in_the_v2_shape() {
    let (_dir, app) = app();
    let cases: Vec<(&str, Json, StatusCode, Vec<&str>)> = vec![
        ("nope", dense_request(&[[1.0, 2.0]]), StatusCode::NOT_FOUND, vec!["no model named `nope`"]),
        (
            "logistic",
            json!({"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}, {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]}]}),
            StatusCode::BAD_REQUEST,
            vec!["input `a`: datatype BYTES for a numeric column"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}),
            StatusCode::BAD_REQUEST,
            vec!["input `x`: its shape holds 4 elements; the data has 3"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}),
            StatusCode::BAD_REQUEST,
            vec!["input `x`: shape [1, 3]; this model takes shape [rows, 2]", "dense form"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": ["1", 2]}]}),
            StatusCode::BAD_REQUEST,
            vec!["element 0 is \"1\", not a number as datatype FP64 needs"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FLOAT", "data": [1, 2]}]}),
            StatusCode::BAD_REQUEST,
            vec!["input `x`: unknown datatype `FLOAT`"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}, {"name": "c", "shape": [1], "datatype": "FP64", "data": [1]}]}),
            StatusCode::BAD_REQUEST,
            vec!["unknown input `c`", "a, b"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]}, {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]}]}),
            StatusCode::BAD_REQUEST,
            vec!["input `b` has 1 rows; input `a` has 2"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}),
            StatusCode::BAD_REQUEST,
            vec!["`b`"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}], "outputs": [{"name": "scores"}]}),
            StatusCode::BAD_REQUEST,
            vec!["unknown output `scores`; this model's outputs are label, probabilities"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "x", "shape": [1, -2], "datatype": "FP64", "data": []}]}),
            StatusCode::BAD_REQUEST,
            vec!["negative dimension"],
        ),
        (
            "logistic",
            json!({"inputs": [{"name": "x", "shape": [10001, 0], "datatype": "FP64", "data": []}]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["10001 rows"],
        ),
        ("logistic", json!({"inputs": []}), StatusCode::BAD_REQUEST, vec!["no input tensors"]),
        ("logistic", json!({"input": []}), StatusCode::BAD_REQUEST, vec!["missing field `inputs`"]),
        (
            "text",
            json!({"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1]}]}),
            StatusCode::BAD_REQUEST,
            vec!["datatype FP32 for a text input; send BYTES"],
        ),
    ];
    for (model, request, status, fragments) in cases {
        let (got, json) = infer(&app, model, &request).await;
        assert_eq!(got, status, "{request} → {json}");
        assert_v2_error(&json, &fragments);
    }
    let answer = call(&app, "POST", "/v2/models/logistic/infer", &[], b"{not json".to_vec()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_v2_error(&answer.json(), &["not valid JSON"]);
}

/// Starts the gRPC server for `state` on a loopback port; returns a client and the stop switch.
async fn grpc(
    state: AppState,
) -> (GrpcInferenceServiceClient<tonic::transport::Channel>, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ingot_server::grpc::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    (GrpcInferenceServiceClient::new(channel), stop)
}

fn f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn grpc_input(name: &str, datatype: &str, shape: Vec<i64>) -> InferInputTensor {
    InferInputTensor { name: name.into(), datatype: datatype.into(), shape, ..Default::default() }
}

#[tokio::test]
async fn grpc_matches_rest() {
    let dir = repository();
    let state = state_with(dir.path(), Auth::default());
    let app = router(state.clone());
    let (mut client, stop) = grpc(state).await;

    assert!(client.server_live(ServerLiveRequest {}).await.unwrap().into_inner().live);
    // Not ready: a bundle of the repository failed to load (like GET /v2/health/ready).
    assert!(!client.server_ready(ServerReadyRequest {}).await.unwrap().into_inner().ready);
    assert_eq!(get(&app, "/v2/health/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let ready = |name: &str, version: &str| ModelReadyRequest { name: name.into(), version: version.into() };
    assert!(client.model_ready(ready("logistic", "")).await.unwrap().into_inner().ready);
    assert!(client.model_ready(ready("logistic", "1.0.0")).await.unwrap().into_inner().ready);
    assert!(!client.model_ready(ready("logistic", "9.0.0")).await.unwrap().into_inner().ready);
    assert!(!client.model_ready(ready("nope", "")).await.unwrap().into_inner().ready);
    let server = client.server_metadata(ServerMetadataRequest {}).await.unwrap().into_inner();
    assert_eq!((server.name.as_str(), server.extensions), ("ingot", vec!["binary_tensor_data".to_owned()]));

    let metadata = client
        .model_metadata(ModelMetadataRequest { name: "logistic".into(), version: String::new() })
        .await
        .unwrap()
        .into_inner();
    let (_, rest) = get(&app, "/v2/models/logistic").await;
    let as_json = |t: &[ingot_server::grpc::proto::model_metadata_response::TensorMetadata]| {
        t.iter()
            .map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape}))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        json!({"name": metadata.name, "versions": metadata.versions, "platform": metadata.platform,
               "inputs": as_json(&metadata.inputs), "outputs": as_json(&metadata.outputs)}),
        rest
    );
    let missing =
        client.model_metadata(ModelMetadataRequest { name: "nope".into(), version: String::new() }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);

    // Raw dense FP64 contents, the way tritonclient sends them.
    let rows = [[3.0f64, 1.0], [0.0, 0.0], [1.0, 4.0]];
    let raw: Vec<u8> = rows.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    let request = ModelInferRequest {
        model_name: "logistic".into(),
        id: "g-1".into(),
        inputs: vec![grpc_input("input", "FP64", vec![3, 2])],
        raw_input_contents: vec![raw],
        ..Default::default()
    };
    let response = client.model_infer(request).await.unwrap();
    assert_eq!(response.metadata().get("x-ingot-version").unwrap(), "1.1.0");
    let response = response.into_inner();
    assert_eq!((response.model_version.as_str(), response.id.as_str()), ("1.1.0", "g-1"));
    let (_, want) = infer(&app, "logistic", &dense_request(&rows)).await;
    let names: Vec<&str> = response.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["label", "probabilities"]);
    assert_eq!(response.raw_output_contents.len(), 2);
    let labels = &response.raw_output_contents[0];
    assert_eq!(labels.as_slice(), b"\x03\x00\x00\x00yes\x02\x00\x00\x00no\x02\x00\x00\x00no");
    let probabilities = f32s(&response.raw_output_contents[1]);
    let json: Vec<f32> =
        floats(&output(&want, "probabilities")["data"]).into_iter().map(|x| x as f32).collect();
    assert_eq!(probabilities, json);
    assert_eq!(response.outputs[1].shape, [3, 2]);

    // Typed contents per column, one output asked for.
    let typed = |name: &str, values: Vec<f32>| InferInputTensor {
        contents: Some(InferTensorContents { fp32_contents: values, ..Default::default() }),
        ..grpc_input(name, "FP32", vec![3])
    };
    let request = ModelInferRequest {
        model_name: "logistic".into(),
        model_version: "1.0.0".into(),
        inputs: vec![typed("a", vec![3.0, 0.0, 1.0]), typed("b", vec![1.0, 0.0, 4.0])],
        outputs: vec![InferRequestedOutputTensor { name: "probabilities".into(), ..Default::default() }],
        ..Default::default()
    };
    let response = client.model_infer(request).await.unwrap().into_inner();
    assert_eq!(response.model_version, "1.0.0");
    assert_eq!(response.outputs.len(), 1);
    assert_eq!(f32s(&response.raw_output_contents[0]), probabilities);

    // Errors carry the REST message under the matching code.
    let bad = ModelInferRequest {
        model_name: "logistic".into(),
        inputs: vec![grpc_input("input", "FP64", vec![3, 2])],
        raw_input_contents: vec![vec![0; 47]],
        ..Default::default()
    };
    let err = client.model_infer(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("6 FP64 elements take 48 bytes; the binary data has 47"), "{err:?}");
    let unknown = ModelInferRequest {
        model_name: "nope".into(),
        inputs: vec![grpc_input("x", "FP64", vec![0, 2])],
        ..Default::default()
    };
    assert_eq!(client.model_infer(unknown).await.unwrap_err().code(), tonic::Code::NotFound);
    let too_many = ModelInferRequest {
        model_name: "logistic".into(),
        inputs: vec![grpc_input("x", "FP64", vec![20_000, 0])],
        ..Default::default()
    };
    assert_eq!(client.model_infer(too_many).await.unwrap_err().code(), tonic::Code::ResourceExhausted);

    // Text through bytes_contents.
    let text = ModelInferRequest {
        model_name: "text".into(),
        inputs: vec![InferInputTensor {
            contents: Some(InferTensorContents {
                bytes_contents: vec![b"a cat".to_vec()],
                ..Default::default()
            }),
            ..grpc_input("text", "BYTES", vec![1])
        }],
        ..Default::default()
    };
    let response = client.model_infer(text).await.unwrap().into_inner();
    assert_eq!(response.outputs[0].name, "embedding");
    stop.send(()).unwrap();
}

#[tokio::test]
async fn grpc_needs_a_key_when_keys_are_set() {
    let dir = repository();
    let auth = Auth::parse(&format!("ci predict {TEST_KEY_HASH}"), "test").unwrap();
    let (mut client, stop) = grpc(state_with(dir.path(), auth)).await;
    let request = || ModelInferRequest {
        model_name: "logistic".into(),
        inputs: vec![InferInputTensor {
            contents: Some(InferTensorContents { fp64_contents: vec![3.0, 1.0], ..Default::default() }),
            ..grpc_input("x", "FP64", vec![1, 2])
        }],
        ..Default::default()
    };
    let err = client.model_infer(request()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(err.message().contains("needs an API key"), "{err:?}");
    let meta =
        client.model_metadata(ModelMetadataRequest { name: "logistic".into(), version: String::new() }).await;
    assert_eq!(meta.unwrap_err().code(), tonic::Code::Unauthenticated);

    let mut wrong = tonic::Request::new(request());
    wrong.metadata_mut().insert("x-api-key", "nope".parse().unwrap());
    assert_eq!(client.model_infer(wrong).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    for (key, value) in [("authorization", "Bearer test"), ("x-api-key", "test")] {
        let mut ok = tonic::Request::new(request());
        ok.metadata_mut().insert(key, value.parse().unwrap());
        let response = client.model_infer(ok).await.unwrap().into_inner();
        assert_eq!(response.outputs.len(), 2);
    }
    // Health calls stay open.
    assert!(client.server_live(ServerLiveRequest {}).await.unwrap().into_inner().live);
    let ready = ModelReadyRequest { name: "logistic".into(), version: String::new() };
    assert!(client.model_ready(ready).await.unwrap().into_inner().ready);
    stop.send(()).unwrap();
}

#[tokio::test]
async fn rest_v2_needs_a_key_when_keys_are_set() {
    let dir = repository();
    let auth = Auth::parse(&format!("ci predict {TEST_KEY_HASH}"), "test").unwrap();
    let app = router(state_with(dir.path(), auth));
    assert_eq!(
        call(&app, "GET", "/v2/models/logistic", &[], Vec::new()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let with_key = [("x-api-key", "test".to_owned())];
    assert_eq!(call(&app, "GET", "/v2/models/logistic", &with_key, Vec::new()).await.status, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/v2/health/live", &[], Vec::new()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let dir = repository();
    let registry = Registry::open(dir.path(), RegistryOptions::default(), Arc::new(Metrics::new())).unwrap();
    let limits = Limits { max_body_bytes: 1000, ..Limits::default() };
    let app = router(AppState::new(Arc::new(registry), limits, Auth::default()));
    let rows = vec![[1.0, 2.0]; 100];
    let answer =
        call(&app, "POST", "/v2/models/logistic/infer", &[], dense_request(&rows).to_string().into_bytes())
            .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_v2_error(&answer.json(), &["larger than 1000 bytes"]);
}

#[tokio::test]
async fn zero_rows_and_an_empty_output_list() {
    let (_dir, app) = app();
    let request = json!({
        "inputs": [{"name": "x", "shape": [0, 2], "datatype": "FP32", "data": []}],
        "outputs": [],
    });
    let (status, json) = infer(&app, "logistic", &request).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(output(&json, "label")["shape"], json!([0]));
    assert_eq!(output(&json, "probabilities")["shape"], json!([0, 2]));
}
