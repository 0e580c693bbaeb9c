//! The ceiling of `ingot-server`'s HTTP stack: axum on tokio, the same predict route, the request
//! body parsed from JSON the way the server's extractor does, and a fixed answer of the server's
//! shape — no model, no authentication, no logging, no metrics. `scripts/bench_server.py`
//! measures it next to the real server.
//!
//! ```text
//! cargo build --release -p ingot-server --example bare_handler
//! target/release/examples/bare_handler [HOST:PORT]    # default 127.0.0.1:8081
//! curl -s -X POST http://127.0.0.1:8081/v1/models/breast-cancer/predict \
//!     -H 'content-type: application/json' -d '{"records": [{"mean radius": 15.1}]}'
//! ```

use std::process::ExitCode;

use axum::extract::Path;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// Address used when none is given on the command line.
const DEFAULT_ADDR: &str = "127.0.0.1:8081";

/// Body of a predict request: named rows, `{"records": [{column: value, …}, …]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    /// The rows, as parsed JSON objects.
    records: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// One answer row: the label and the probability of each class.
#[derive(Debug, Serialize)]
struct PredictionRow {
    /// Predicted class.
    label: u32,
    /// Probability of each class, by class name.
    probabilities: Probabilities,
}

/// Probabilities of the two classes of the demo model.
#[derive(Debug, Serialize)]
struct Probabilities {
    /// Probability of class 0.
    #[serde(rename = "0")]
    zero: f32,
    /// Probability of class 1.
    #[serde(rename = "1")]
    one: f32,
}

/// Response of a predict request, as `ingot-server` writes it.
#[derive(Debug, Serialize)]
struct PredictResponse {
    /// Model name, from the path.
    model: String,
    /// Version that answered.
    version: &'static str,
    /// One fixed row per input row.
    predictions: Vec<PredictionRow>,
}

/// Answers one fixed prediction per record.
async fn predict(Path(model): Path<String>, Json(request): Json<PredictRequest>) -> Json<PredictResponse> {
    let predictions = request
        .records
        .iter()
        .map(|_| PredictionRow {
            label: 0,
            probabilities: Probabilities { zero: 0.9327489, one: 0.06725106 },
        })
        .collect();
    Json(PredictResponse { model, version: "1.0.0", predictions })
}

/// Binds the address from the command line and serves until killed.
async fn run(addr: &str) -> std::io::Result<()> {
    let app = Router::new().route("/v1/models/{name}/predict", post(predict));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    println!("bare_handler listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

fn main() -> ExitCode {
    let addr = std::env::args().nth(1).unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bare_handler: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bare_handler: {err}");
            ExitCode::FAILURE
        }
    }
}
