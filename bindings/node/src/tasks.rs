//! The work of a call, and the task that runs it on the libuv thread pool.
//!
//! `compute` never fails: the core's result travels to `resolve`, on the main thread, where a
//! core error becomes the JS error of [`crate::error::to_js`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use ingot::Model;
use napi::bindgen_prelude::{ArrayBuffer, Uint8Array};
use napi::{Env, ScopedTask, Task};

use crate::error::to_js;
use crate::input::{CoreInput, OwnedInput};
use crate::model::{Load, NativeModel};
use crate::output::{current, Packed};
use crate::schedule::Schedule;

/// `NativeModel.load`.
pub struct LoadTask {
    pub(crate) path: String,
    pub(crate) load: Load,
}

impl Task for LoadTask {
    type Output = ingot::Result<Model>;
    type JsValue = NativeModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.load.model(&self.path))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeModel> {
        let model = output.map_err(|e| to_js(&env, e.into()))?;
        Ok(NativeModel::new(model, self.load.inline_micros))
    }
}

/// What a call computes.
pub(crate) enum Work {
    /// `predict` and its variants.
    Predict(OwnedInput),
    /// `embed`.
    Embed(Vec<String>),
}

impl Work {
    /// Rows of the call.
    pub(crate) fn rows(&self) -> usize {
        match self {
            Work::Predict(input) => input.rows(),
            Work::Embed(texts) => texts.len(),
        }
    }

    /// Runs the work on `model`, recording how long it took in `schedule`.
    pub(crate) fn run(&self, model: &Model, schedule: &Schedule) -> ingot::Result<Packed> {
        self.timed(model, schedule).0
    }

    /// [`Work::run`], and how long the core took.
    fn timed(&self, model: &Model, schedule: &Schedule) -> (ingot::Result<Packed>, Duration) {
        match self {
            Work::Predict(input) => predicted(model, schedule, input),
            Work::Embed(texts) => {
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                let (m, compute) = timed(schedule, self.rows(), || model.embed(&texts));
                (m.and_then(|m| Packed::embeddings(m, compute)), compute)
            }
        }
    }
}

/// The prediction of `input`, packed, and how long the core took (recorded in `schedule`).
pub(crate) fn predicted(
    model: &Model,
    schedule: &Schedule,
    input: &impl CoreInput,
) -> (ingot::Result<Packed>, Duration) {
    let (p, compute) = timed(schedule, input.rows(), || input.with(model, |i| model.predict(i)));
    (p.and_then(|p| Packed::prediction(p, compute)), compute)
}

/// What `compute` returned and how long it took, recorded in `schedule` as the time of a call
/// of `rows` rows.
pub(crate) fn timed<T>(
    schedule: &Schedule,
    rows: usize,
    compute: impl FnOnce() -> ingot::Result<T>,
) -> (ingot::Result<T>, Duration) {
    let start = Instant::now();
    let out = compute();
    let elapsed = start.elapsed();
    schedule.record(rows, elapsed);
    (out, elapsed)
}

/// A call on the thread pool.
pub struct CallTask {
    model: Arc<Model>,
    schedule: Arc<Schedule>,
    work: Work,
    /// The caller's reusable output buffer, written on the main thread when the call settles.
    out: Option<Uint8Array>,
    /// When the call was queued, and how long its computation took.
    queued: Instant,
    computed: Duration,
}

impl CallTask {
    /// `work` on `model`, its outputs for `out` (see [`Packed::into_js`]), queued now.
    pub(crate) fn new(
        model: Arc<Model>,
        schedule: Arc<Schedule>,
        work: Work,
        out: Option<Uint8Array>,
    ) -> CallTask {
        CallTask { model, schedule, work, out, queued: Instant::now(), computed: Duration::ZERO }
    }
}

impl<'env> ScopedTask<'env> for CallTask {
    type Output = ingot::Result<Packed>;
    type JsValue = Option<ArrayBuffer<'env>>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (out, computed) = self.work.timed(&self.model, &self.schedule);
        self.computed = computed;
        Ok(out)
    }

    fn resolve(&mut self, env: &'env Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        self.schedule.record_hop(self.queued.elapsed().saturating_sub(self.computed));
        let packed = output.map_err(|e| to_js(env, e.into()))?;
        let out = self.out.as_mut().map(|out| current(env, out)).transpose()?;
        packed.into_js(env, out)
    }
}
