//! Running requests: each on its own, or merged across concurrent requests into batches
//! (dynamic batching with Triton's semantics: a batch runs when it holds `max_batch_size` rows
//! or when its first request has waited `max_queue_delay_us`).
//!
//! Both paths are bounded: at most `max_queue_size` requests wait; one more is refused
//! ([`Overloaded`], answered 503 with `Retry-After`) instead of growing memory or latency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ingot::{Model, Prediction};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::oneshot;

use crate::config::ModelConfig;
use crate::payload::Payload;

/// How a run failed.
#[derive(Debug)]
pub enum RunError {
    /// The queue is full: the request was not accepted.
    Overloaded,
    /// The model refused the input or failed.
    Model(ingot::Error),
    /// The call ended without an answer (a panic in the call, logged); nothing of it is
    /// shown to the client.
    Lost,
}

/// What a finished request gets back.
type Answer = ingot::Result<Prediction>;

struct Job {
    payload: Payload,
    reply: oneshot::Sender<Answer>,
}

/// Metric handles of one version, cloned once at load.
#[derive(Debug, Clone)]
pub struct ExecutorMetrics {
    /// Rows per executed batch.
    pub batch_size: Histogram,
    /// Requests waiting.
    pub queue_depth: Gauge,
}

/// Runs the requests of one loaded version.
#[derive(Debug)]
pub struct Executor {
    model: Arc<Model>,
    mode: Mode,
    metrics: ExecutorMetrics,
}

#[derive(Debug)]
enum Mode {
    /// Every request on its own, at most `limit` at a time (running or waiting): on the async
    /// worker when it has at most `inline_rows` rows, else on the blocking pool.
    Direct { in_flight: Arc<AtomicUsize>, limit: usize, inline_rows: usize },
    /// Requests queued for the batching threads.
    Batched { queue: SyncSender<Job> },
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("rows", &self.payload.rows()).finish()
    }
}

impl Executor {
    /// An executor for `model` as `config` says: batching threads (`instances` of them) when
    /// `max_batch_size > 1`, else direct calls, those of at most `inline_rows` rows on the
    /// calling async worker. The threads end when the executor is dropped and the queue has
    /// drained.
    pub fn new(
        model: Arc<Model>,
        config: &ModelConfig,
        metrics: ExecutorMetrics,
        inline_rows: usize,
    ) -> Executor {
        let mode = if config.batching() {
            let (queue, receiver) = std::sync::mpsc::sync_channel(config.max_queue_size);
            let shared = Arc::new(Mutex::new(Intake { receiver, carry: None }));
            for _ in 0..config.instances {
                let worker = Worker {
                    model: Arc::clone(&model),
                    intake: Arc::clone(&shared),
                    max_rows: config.max_batch_size,
                    delay: config.queue_delay(),
                    metrics: metrics.clone(),
                };
                std::thread::Builder::new()
                    .name("ingot-batcher".into())
                    .spawn(move || worker.run())
                    .map_or_else(|err| tracing::error!("cannot start a batching thread: {err}"), drop);
            }
            Mode::Batched { queue }
        } else {
            Mode::Direct {
                in_flight: Arc::new(AtomicUsize::new(0)),
                limit: config.max_queue_size,
                inline_rows,
            }
        };
        Executor { model, mode, metrics }
    }

    /// The model this executor runs.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Runs `payload`, waiting for its batch when batching.
    pub async fn run(&self, payload: Payload) -> Result<Prediction, RunError> {
        let answer = match &self.mode {
            Mode::Direct { in_flight, limit, inline_rows } => {
                if in_flight.fetch_add(1, Ordering::AcqRel) >= *limit {
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                    return Err(RunError::Overloaded);
                }
                let guard = InFlight(Arc::clone(in_flight));
                if payload.rows() <= *inline_rows {
                    self.metrics.batch_size.observe(payload.rows() as f64);
                    let answer = payload.predict(&self.model);
                    drop(guard);
                    return answer.map_err(RunError::Model);
                }
                let model = Arc::clone(&self.model);
                let batch_size = self.metrics.batch_size.clone();
                let answer = tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    batch_size.observe(payload.rows() as f64);
                    payload.predict(&model)
                })
                .await;
                answer.map_err(|err| {
                    tracing::error!("prediction task failed: {err}");
                    RunError::Lost
                })?
            }
            Mode::Batched { queue } => {
                let (reply, answer) = oneshot::channel();
                match queue.try_send(Job { payload, reply }) {
                    Ok(()) => self.metrics.queue_depth.inc(),
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        return Err(RunError::Overloaded)
                    }
                };
                answer.await.map_err(|_| {
                    tracing::error!("a batching thread stopped before answering");
                    RunError::Lost
                })?
            }
        };
        answer.map_err(RunError::Model)
    }
}

/// Decrements the in-flight count when a direct call ends (also if it panics).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The queue's receiving end, shared by a version's batching threads; one gathers a batch at a
/// time, the others run theirs meanwhile.
struct Intake {
    receiver: Receiver<Job>,
    /// A job that did not fit the previous batch: it starts the next one.
    carry: Option<Job>,
}

struct Worker {
    model: Arc<Model>,
    intake: Arc<Mutex<Intake>>,
    max_rows: usize,
    delay: Duration,
    metrics: ExecutorMetrics,
}

impl Worker {
    fn run(self) {
        while let Some(jobs) = self.gather() {
            self.metrics.queue_depth.dec_by(jobs.len() as i64);
            execute(&self.model, jobs, &self.metrics.batch_size);
        }
    }

    /// Waits for a first job, then takes more until the batch is full, the delay has passed
    /// or a job of another form (or too big to fit) arrives. `None` once the queue is closed
    /// and empty.
    fn gather(&self) -> Option<Vec<Job>> {
        let mut intake = self.intake.lock().unwrap_or_else(PoisonError::into_inner);
        let first = match intake.carry.take() {
            Some(job) => job,
            None => intake.receiver.recv().ok()?,
        };
        let deadline = Instant::now() + self.delay;
        let mut rows = first.payload.rows();
        let mut jobs = vec![first];
        while rows < self.max_rows {
            let wait = deadline.saturating_duration_since(Instant::now());
            let next = if wait.is_zero() {
                match intake.receiver.try_recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            } else {
                match intake.receiver.recv_timeout(wait) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            };
            let fits =
                rows + next.payload.rows() <= self.max_rows && jobs[0].payload.can_merge(&next.payload);
            if !fits {
                intake.carry = Some(next);
                break;
            }
            rows += next.payload.rows();
            jobs.push(next);
        }
        Some(jobs)
    }
}

/// Runs `jobs` as one batch and hands each its rows. When the merged batch fails (one
/// request's bad input fails the whole call), each job is run on its own so that only the bad
/// one gets the error.
fn execute(model: &Model, mut jobs: Vec<Job>, batch_size: &Histogram) {
    if jobs.len() == 1 {
        let job = jobs.remove(0);
        batch_size.observe(job.payload.rows() as f64);
        // The requester may have gone; nothing to do then.
        let _ = job.reply.send(job.payload.predict(model));
        return;
    }
    let mut merged = jobs[0].payload.clone();
    for job in &jobs[1..] {
        if merged.append(&job.payload).is_err() {
            return execute_each(model, jobs, batch_size);
        }
    }
    batch_size.observe(merged.rows() as f64);
    match merged.predict(model) {
        Ok(prediction) if prediction.rows == merged.rows() => {
            let mut start = 0;
            for job in jobs {
                let end = start + job.payload.rows();
                let _ = job.reply.send(Ok(prediction.slice(start..end)));
                start = end;
            }
        }
        _ => execute_each(model, jobs, batch_size),
    }
}

fn execute_each(model: &Model, jobs: Vec<Job>, batch_size: &Histogram) {
    for job in jobs {
        batch_size.observe(job.payload.rows() as f64);
        let _ = job.reply.send(job.payload.predict(model));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ingot::{DenseRows, Record, Value};

    fn metrics() -> ExecutorMetrics {
        ExecutorMetrics { batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0]), queue_depth: Gauge::default() }
    }

    fn model() -> Arc<Model> {
        Arc::new(Model::from_bytes(ingot::testing::logistic_bundle().unwrap()).unwrap())
    }

    fn row(a: f64, b: f64) -> Payload {
        Payload::Dense(DenseRows::new("x", vec![a, b], 2).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_batches_and_get_their_own_rows() {
        let config = ModelConfig { max_batch_size: 8, max_queue_delay_us: 20_000, ..ModelConfig::default() };
        let m = metrics();
        let executor = Arc::new(Executor::new(model(), &config, m.clone(), 0));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let executor = Arc::clone(&executor);
            tasks.push(tokio::spawn(async move {
                let x = i as f64;
                let got = executor.run(row(x, -x)).await.unwrap();
                (x, got)
            }));
        }
        let reference = model();
        for task in tasks {
            let (x, got) = task.await.unwrap();
            assert_eq!(got, reference.predict_dense(&[x as f32, -x as f32], 1, 2).unwrap());
        }
        // 16 one-row requests in fewer than 16 batches: some were merged.
        assert!(m.batch_size.count() < 16, "{} batches", m.batch_size.count());
        assert!(m.batch_size.sum() == 16.0);
        assert_eq!(m.queue_depth.get(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_request_fails_alone() {
        let config = ModelConfig { max_batch_size: 8, max_queue_delay_us: 50_000, ..ModelConfig::default() };
        let executor = Arc::new(Executor::new(model(), &config, metrics(), 0));
        let good = |a: f64| {
            Payload::Records(vec![Record::from([
                ("a".into(), Value::from(a)),
                ("b".into(), Value::from(1.0)),
            ])])
        };
        let bad = Payload::Records(vec![Record::from([("a".to_string(), Value::from(1.0))])]);
        let (e1, e2, e3) = (Arc::clone(&executor), Arc::clone(&executor), Arc::clone(&executor));
        let (a, b, c) = tokio::join!(e1.run(good(1.0)), e2.run(bad), e3.run(good(2.0)));
        assert!(a.is_ok());
        let Err(RunError::Model(err)) = b else { panic!("the bad request must fail") };
        assert!(err.to_string().contains('b'), "{err}");
        assert!(c.is_ok());
    }

    #[tokio::test]
    async fn a_full_queue_refuses() {
        let config = ModelConfig { max_queue_size: 1, ..ModelConfig::default() };
        let executor = Arc::new(Executor::new(model(), &config, metrics(), 0));
        let Mode::Direct { in_flight, .. } = &executor.mode else { panic!("direct mode expected") };
        in_flight.store(1, Ordering::SeqCst);
        assert!(matches!(executor.run(row(1.0, 2.0)).await, Err(RunError::Overloaded)));
        in_flight.store(0, Ordering::SeqCst);
        assert!(executor.run(row(1.0, 2.0)).await.is_ok());
    }
}
