//! One loaded version ready to take traffic: its executor, request statistics, drift
//! monitor and metric handles, the warm-up that runs before it serves, and the shadow copies
//! it answers on the side.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ingot::{Model, Prediction, Record};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::batcher::{Executor, ExecutorMetrics, RunError};
use crate::config::ModelConfig;
use crate::drift::Drift;
use crate::metrics::{protocol_index, FeatureLabels, Metrics, VersionLabels, PROTOCOLS};
use crate::payload::Payload;
use crate::release::compare;
use crate::repository::FileIdentity;
use crate::stats::Stats;

/// One loaded version, ready to take traffic.
#[derive(Debug)]
pub struct Deployed {
    /// Model name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The bundle it was loaded from.
    pub path: PathBuf,
    pub(crate) identity: FileIdentity,
    /// The serving configuration it was set up with.
    pub(crate) config: ModelConfig,
    executor: Executor,
    /// Requests, errors and latency over the canary window.
    pub stats: Stats,
    drift: Option<Drift>,
    latency: Histogram,
    /// `ingot_requests_total{status="200"}` of each protocol (in `metrics::PROTOCOLS` order).
    ok: [Counter; PROTOCOLS.len()],
    metrics: Arc<Metrics>,
    /// When it was loaded (seconds since the Unix epoch).
    pub loaded_at: u64,
    /// A number no other load in this process has (cache keys use it).
    pub serial: u64,
}

impl Deployed {
    /// Sets up `model` to serve as `name` `version`: executor, drift monitor, metric handles,
    /// then runs the bundle's reference sample once at every warm-up batch size so the first
    /// request pays no lazy set-up.
    pub(crate) fn new(
        name: &str,
        version: &str,
        path: PathBuf,
        identity: FileIdentity,
        model: Arc<Model>,
        config: &ModelConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Deployed, ingot::Error> {
        let batch1 = warm_up(&model, &config.warmup_sizes())?;
        let labels = VersionLabels { model: name.to_owned(), version: version.to_owned() };
        let executor_metrics = ExecutorMetrics {
            batch_size: metrics.batch_size.get_or_create_owned(&labels),
            queue_depth: metrics.queue_depth.get_or_create_owned(&labels),
        };
        Ok(Deployed {
            name: name.to_owned(),
            version: version.to_owned(),
            path,
            identity,
            config: config.clone(),
            drift: Drift::new(&model),
            executor: Executor::new(model, config, executor_metrics, inline_rows(batch1)),
            stats: Stats::new(config.canary.window_s),
            latency: metrics.latency.get_or_create_owned(&labels),
            ok: PROTOCOLS.map(|p| metrics.ok_counter(name, version, p)),
            metrics: Arc::clone(metrics),
            loaded_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The loaded model.
    pub fn model(&self) -> &Arc<Model> {
        self.executor.model()
    }

    /// Runs `payload`: drift is counted, the call is queued or run, latency and outcome are
    /// recorded.
    pub async fn run(&self, payload: Payload) -> Result<Prediction, RunError> {
        let start = Instant::now();
        if let Some(drift) = &self.drift {
            if let Some(psi) = drift.observe(&payload) {
                for (feature, value) in drift.feature_names().into_iter().zip(psi) {
                    let labels =
                        FeatureLabels { model: self.name.clone(), version: self.version.clone(), feature };
                    self.metrics.drift.get_or_create(&labels).set(value);
                }
            }
        }
        let out = self.executor.run(payload).await;
        let elapsed = start.elapsed();
        self.latency.observe(elapsed.as_secs_f64());
        self.stats.record(elapsed, out.is_err());
        out
    }

    /// Counts a successful request under `protocol`.
    pub fn count_ok(&self, protocol: &str) {
        match protocol_index(protocol) {
            Some(i) => {
                self.ok[i].inc();
            }
            None => self.metrics.request(&self.name, &self.version, protocol, 200),
        }
    }

    pub(crate) fn labels(&self) -> VersionLabels {
        VersionLabels { model: self.name.clone(), version: self.version.clone() }
    }

    pub(crate) fn drift_features(&self) -> Vec<String> {
        self.drift.as_ref().map(Drift::feature_names).unwrap_or_default()
    }
}

/// The next [`Deployed::serial`].
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Runs the reference sample (or a row of zeros) at each batch size, and three more times at
/// batch 1; returns the fastest batch-1 call.
fn warm_up(model: &Model, sizes: &[usize]) -> Result<Duration, ingot::Error> {
    let sample: Vec<Record> =
        model.manifest().reference.as_ref().map(|r| r.sample.clone()).unwrap_or_default();
    let rows = |size: usize| -> Result<Payload, ingot::Error> {
        Ok(if !sample.is_empty() {
            Payload::Records(sample.iter().cycle().take(size).cloned().collect())
        } else if matches!(model.task(), ingot::Task::Embedding) {
            Payload::Texts(vec!["warm-up".to_owned(); size])
        } else {
            let width = model.input_width();
            Payload::Dense(ingot::DenseRows::new("warm-up", vec![0.0; width * size], width)?)
        })
    };
    let failed =
        |size: usize| move |err| ingot::Error::usage(format!("warm-up at batch {size} failed: {err}"));
    for &size in sizes {
        rows(size)?.predict(model).map_err(failed(size))?;
    }
    let one = rows(1)?;
    let mut fastest = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        one.predict(model).map_err(failed(1))?;
        fastest = fastest.min(start.elapsed());
    }
    Ok(fastest)
}

/// Calls expected to take less than this run on the async worker that received them; longer
/// ones go to the blocking pool (handing a call over costs two thread wake-ups, more than a
/// small tabular model takes to answer).
const INLINE_BUDGET: Duration = Duration::from_micros(100);

/// The most rows a call may have to run inline, given the batch-1 time.
fn inline_rows(batch1: Duration) -> usize {
    if batch1.is_zero() {
        return 1024;
    }
    ((INLINE_BUDGET.as_secs_f64() / batch1.as_secs_f64()) as usize).min(1024)
}

/// The shadow copy of a request: runs `payload` on `canary` and compares its answer with
/// `stable_answer`; counted in the shadow metrics, never returned.
pub async fn shadow(canary: Arc<Deployed>, payload: Payload, stable_answer: Prediction) {
    let labels = canary.labels();
    let metrics = Arc::clone(&canary.metrics);
    match canary.run(payload).await {
        Ok(answer) => {
            let c = compare(&stable_answer, &answer);
            metrics.shadow_comparisons.get_or_create(&labels).inc_by(c.rows as u64);
            metrics.shadow_disagreements.get_or_create(&labels).inc_by(c.disagreements as u64);
            metrics.shadow_distance.get_or_create(&labels).observe(c.distance);
        }
        Err(_) => {
            // Counted in the canary's own error statistics (and so in automatic rollback).
            metrics.shadow_comparisons.get_or_create(&labels).inc_by(stable_answer.rows as u64);
            metrics.shadow_disagreements.get_or_create(&labels).inc_by(stable_answer.rows as u64);
        }
    }
}
