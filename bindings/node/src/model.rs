//! The `NativeModel` class: inputs read on the main thread, the core run on the libuv thread
//! pool (or, for the `…Sync` methods, on the calling thread).

use std::sync::Arc;

use ingot::{Error, Model, OutputSlices};
use napi::bindgen_prelude::{Array, ArrayBuffer, AsyncTask, Either, Uint8Array, Uint8ArraySlice};
use napi::{Env, JsValue, Unknown, ValueType};
use napi_derive::napi;

use crate::error::{to_js, Fail};
use crate::input::{self, cast, CoreInput};
use crate::output::{js_value, new_buffer, output_bytes, predict_into, JsValueOf};
use crate::schedule::Schedule;
use crate::tasks::{predicted, CallTask, LoadTask, Work};

/// Options of `load` and `loadSync`.
#[napi(object)]
#[derive(Default)]
pub struct LoadOptions {
    /// Check the data section's BLAKE3 checksum (default `true`).
    pub verify_checksum: Option<bool>,
    /// Most threads one call uses, the caller included (default: every CPU, or
    /// `INGOT_NUM_THREADS`).
    pub threads: Option<u32>,
    /// Calls that this model's past calls of the same size say take fewer microseconds run on
    /// the calling thread instead of the thread pool (default: the measured cost of the hop to
    /// the pool and back, at least 50 and at most 100; 0 sends every call to the pool).
    pub inline_micros: Option<u32>,
    /// Device the graph runs on: `cpu` (default) or `cuda:N` (an addon built with the `cuda`
    /// feature); pre- and post-processing stay on the CPU.
    pub device: Option<String>,
    /// `auto` (default: Ingot's fused kernels on the CPU, candle's ops on a GPU) or `candle`
    /// (candle's ops on the CPU too).
    pub kernels: Option<String>,
}

/// How to load a model, from the JavaScript options.
pub(crate) struct Load {
    options: ingot::LoadOptions,
    device: String,
    kernels: String,
    pub(crate) inline_micros: Option<u32>,
}

impl Load {
    pub(crate) fn new(options: Option<LoadOptions>) -> Load {
        let o = options.unwrap_or_default();
        let mut core = ingot::LoadOptions::default();
        if let Some(v) = o.verify_checksum {
            core.verify_checksum = v;
        }
        core.threads = o.threads.map(|n| n as usize);
        Load {
            options: core,
            device: o.device.unwrap_or_else(|| "cpu".into()),
            kernels: o.kernels.unwrap_or_else(|| "auto".into()),
            inline_micros: o.inline_micros,
        }
    }

    /// Opens the device and loads the model at `path`.
    pub(crate) fn model(&self, path: &str) -> ingot::Result<Model> {
        Model::load_with(path, &self.options.clone().on(&self.device, &self.kernels)?)
    }
}

/// The outputs of a call, packed in one buffer (layout: src/output.rs): a promise of them, or
/// the outputs themselves when the call ran in place. `null` means they were written into the
/// call's `out` buffer, else they come in a new `ArrayBuffer`.
type Call<'env> = Either<AsyncTask<CallTask>, Option<ArrayBuffer<'env>>>;

/// The outputs of a call on the calling thread (see [`Call`]).
type Now<'env> = Option<ArrayBuffer<'env>>;

/// A loaded model; calls from any number of promises share it.
#[napi]
pub struct NativeModel {
    inner: Arc<Model>,
    schedule: Arc<Schedule>,
    /// The signature's input names, in order (the fields read from each record).
    inputs: Vec<String>,
}

impl NativeModel {
    pub(crate) fn new(model: Model, inline_micros: Option<u32>) -> NativeModel {
        let inputs = model.signature().inputs.iter().map(|i| i.name.clone()).collect();
        NativeModel { inner: Arc::new(model), schedule: Arc::new(Schedule::new(inline_micros)), inputs }
    }

    /// `work` in place when the schedule says it is small, else on the thread pool; its outputs
    /// for `out` (a `Uint8Array`: borrowed for a call in place, referred to by a call on the pool).
    fn call<'env>(&self, env: &'env Env, work: Work, out: Option<Unknown>) -> napi::Result<Call<'env>> {
        if self.schedule.in_place(work.rows()) {
            let out = out.map(|out| cast::<Uint8ArraySlice>(&out)).transpose()?;
            return self.now(env, &work, out).map(Either::B);
        }
        let out = out.map(|out| cast::<Uint8Array>(&out)).transpose()?;
        let (model, schedule) = (Arc::clone(&self.inner), Arc::clone(&self.schedule));
        Ok(Either::A(AsyncTask::new(CallTask::new(model, schedule, work, out))))
    }

    /// `work` on the calling thread; its outputs for `out`.
    fn now<'env>(
        &self,
        env: &'env Env,
        work: &Work,
        out: Option<Uint8ArraySlice<'_>>,
    ) -> napi::Result<Now<'env>> {
        match work {
            Work::Predict(input) => self.predict_now(env, input, out),
            Work::Embed(_) => {
                work.run(&self.inner, &self.schedule).map_err(|e| to_js(env, e.into()))?.into_js(env, out)
            }
        }
    }

    /// A prediction of `input` on the calling thread, written by the core straight into `out`
    /// when it holds the outputs, else into a new `ArrayBuffer` of their size; packed from the
    /// core's vectors when neither can be written in place (a misaligned buffer).
    fn predict_now<'env>(
        &self,
        env: &'env Env,
        input: &impl CoreInput,
        out: Option<Uint8ArraySlice<'_>>,
    ) -> napi::Result<Now<'env>> {
        let model = &self.inner;
        let (layout, rows) = (model.output_layout(), input.rows());
        let predict = |slices: OutputSlices<'_>| input.with(model, |i| model.predict_into(i, slices));
        let fail = |e: ingot::Error| to_js(env, e.into());
        if let Some(mut bytes) = out {
            // SAFETY: this runs on the main thread, so no JavaScript code runs while the bytes
            // are written; `OutputBuffer` (index.ts) lends them to this call alone.
            let bytes = unsafe { bytes.as_mut() };
            if let Some(written) = predict_into(bytes, layout, rows, &self.schedule, predict) {
                return written.map(|()| None).map_err(fail);
            }
        }
        if let Some(len) = output_bytes(layout, rows) {
            let mut buffer = new_buffer(env, len)?;
            // SAFETY: the buffer is new: no JavaScript code holds it yet.
            let bytes = unsafe { buffer.as_mut() };
            if let Some(written) = predict_into(bytes, layout, rows, &self.schedule, predict) {
                return written.map(|()| Some(buffer)).map_err(fail);
            }
        }
        predicted(model, &self.schedule, input).0.map_err(fail)?.into_js(env, out)
    }
}

#[napi]
impl NativeModel {
    /// Loads an `.ingot` file on the thread pool (memory-mapped, every check).
    #[napi(ts_return_type = "Promise<NativeModel>")]
    pub fn load(path: String, options: Option<LoadOptions>) -> AsyncTask<LoadTask> {
        AsyncTask::new(LoadTask { path, load: Load::new(options) })
    }

    /// Loads an `.ingot` file on the calling thread.
    #[napi]
    pub fn load_sync(env: Env, path: String, options: Option<LoadOptions>) -> napi::Result<NativeModel> {
        let load = Load::new(options);
        let model = load.model(&path).map_err(|e| to_js(&env, e.into()))?;
        Ok(NativeModel::new(model, load.inline_micros))
    }

    /// Predicts an array of records, an array of strings or `{ data, shape }`; the outputs go
    /// into `out` when it is long enough (then the result is `null`).
    #[napi(
        ts_args_type = "input: unknown, out?: Uint8Array | null",
        ts_return_type = "Promise<ArrayBuffer | null> | ArrayBuffer | null"
    )]
    pub fn predict<'env>(
        &self,
        env: &'env Env,
        input: Unknown,
        out: Option<Unknown>,
    ) -> napi::Result<Call<'env>> {
        let input = input::read(&input, &self.inputs).map_err(|e| to_js(env, e))?;
        self.call(env, Work::Predict(input), out)
    }

    /// `predict` on the calling thread.
    #[napi(ts_args_type = "input: unknown, out?: Uint8Array | null", ts_return_type = "ArrayBuffer | null")]
    pub fn predict_sync<'env>(
        &self,
        env: &'env Env,
        input: Unknown,
        out: Option<Uint8ArraySlice<'_>>,
    ) -> napi::Result<Now<'env>> {
        let input = input::read(&input, &self.inputs).map_err(|e| to_js(env, e))?;
        self.now(env, &Work::Predict(input), out)
    }

    /// Predicts a row-major matrix `data` (a `Float32Array` or `Float64Array`) of `rows × cols`,
    /// reading it in place; the outputs as `predict`'s.
    #[napi(
        ts_args_type = "data: unknown, rows: unknown, cols: unknown, out?: Uint8Array | null",
        ts_return_type = "Promise<ArrayBuffer | null> | ArrayBuffer | null"
    )]
    pub fn predict_dense<'env>(
        &self,
        env: &'env Env,
        data: Unknown,
        rows: Unknown,
        cols: Unknown,
        out: Option<Unknown>,
    ) -> napi::Result<Call<'env>> {
        let (rows, cols) = input::dims(&rows, &cols).map_err(|e| to_js(env, e))?;
        if self.schedule.in_place(rows) {
            // On this thread: the input and the buffer are borrowed, no reference is made.
            let data = input::dense_slice(&data, rows, cols).map_err(|e| to_js(env, e))?;
            let out = out.map(|out| cast::<Uint8ArraySlice>(&out)).transpose()?;
            return self.predict_now(env, &data, out).map(Either::B);
        }
        let input = input::dense(&data, rows, cols).map_err(|e| to_js(env, e))?;
        self.call(env, Work::Predict(input), out)
    }

    /// `predictDense` on the calling thread, `data` borrowed for the call.
    #[napi(
        ts_args_type = "data: unknown, rows: unknown, cols: unknown, out?: Uint8Array | null",
        ts_return_type = "ArrayBuffer | null"
    )]
    pub fn predict_dense_sync<'env>(
        &self,
        env: &'env Env,
        data: Unknown,
        rows: Unknown,
        cols: Unknown,
        out: Option<Uint8ArraySlice<'_>>,
    ) -> napi::Result<Now<'env>> {
        let (rows, cols) = input::dims(&rows, &cols).map_err(|e| to_js(env, e))?;
        let data = input::dense_slice(&data, rows, cols).map_err(|e| to_js(env, e))?;
        self.predict_now(env, &data, out)
    }

    /// Predicts named columns: `columns[i]` is a `Float64Array` (NaN is missing) or
    /// `{ codes: Int32Array, values: string[] }` (a negative code is missing); the outputs as
    /// `predict`'s.
    #[napi(
        ts_args_type = "names: string[], columns: Array<Float64Array | { codes: Int32Array, values: string[] }>, out?: Uint8Array | null",
        ts_return_type = "Promise<ArrayBuffer | null> | ArrayBuffer | null"
    )]
    pub fn predict_columns<'env>(
        &self,
        env: &'env Env,
        names: Vec<String>,
        columns: Array,
        out: Option<Unknown>,
    ) -> napi::Result<Call<'env>> {
        let input = input::columns(names, &columns).map_err(|e| to_js(env, e))?;
        self.call(env, Work::Predict(input), out)
    }

    /// `predictColumns` on the calling thread.
    #[napi(
        ts_args_type = "names: string[], columns: Array<Float64Array | { codes: Int32Array, values: string[] }>, out?: Uint8Array | null",
        ts_return_type = "ArrayBuffer | null"
    )]
    pub fn predict_columns_sync<'env>(
        &self,
        env: &'env Env,
        names: Vec<String>,
        columns: Array,
        out: Option<Uint8ArraySlice<'_>>,
    ) -> napi::Result<Now<'env>> {
        let input = input::columns(names, &columns).map_err(|e| to_js(env, e))?;
        self.now(env, &Work::Predict(input), out)
    }

    /// The embedding of each string, packed like a prediction's; the outputs as `predict`'s.
    #[napi(
        ts_args_type = "texts: string[], out?: Uint8Array | null",
        ts_return_type = "Promise<ArrayBuffer | null> | ArrayBuffer | null"
    )]
    pub fn embed<'env>(
        &self,
        env: &'env Env,
        texts: Unknown,
        out: Option<Unknown>,
    ) -> napi::Result<Call<'env>> {
        let texts = strings(&texts).map_err(|e| to_js(env, e))?;
        self.call(env, Work::Embed(texts), out)
    }

    /// `embed` on the calling thread.
    #[napi(ts_args_type = "texts: string[], out?: Uint8Array | null", ts_return_type = "ArrayBuffer | null")]
    pub fn embed_sync<'env>(
        &self,
        env: &'env Env,
        texts: Unknown,
        out: Option<Uint8ArraySlice<'_>>,
    ) -> napi::Result<Now<'env>> {
        let texts = strings(&texts).map_err(|e| to_js(env, e))?;
        self.now(env, &Work::Embed(texts), out)
    }

    /// The whole manifest as JSON text.
    #[napi(getter)]
    pub fn manifest_json(&self, env: Env) -> napi::Result<String> {
        serde_json::to_string(self.inner.manifest())
            .map_err(|e| to_js(&env, Error::usage(format!("manifest as JSON: {e}")).into()))
    }

    /// Model name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.metadata().name.clone()
    }

    /// Model version.
    #[napi(getter)]
    pub fn version(&self) -> String {
        self.inner.metadata().version.clone()
    }

    /// `classifier`, `regressor`, `embedding` or `scores`.
    #[napi(getter, ts_return_type = "'classifier' | 'regressor' | 'embedding' | 'scores'")]
    pub fn task(&self) -> &'static str {
        self.inner.task().name()
    }

    /// The class labels as trained (numbers or strings), or `null`.
    #[napi(getter, ts_return_type = "Array<number | string | null> | null")]
    pub fn classes(&self) -> Option<Vec<JsValueOf>> {
        self.inner.classes().map(|c| c.iter().map(js_value).collect())
    }

    /// Regression target names, or `null`.
    #[napi(getter)]
    pub fn targets(&self) -> Option<Vec<String>> {
        self.inner.targets().map(<[String]>::to_vec)
    }

    /// Input column names, in signature order.
    #[napi(getter)]
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.clone()
    }

    /// Columns a dense input must have (0 for text models).
    #[napi(getter)]
    pub fn input_width(&self) -> u32 {
        u32::try_from(self.inner.input_width()).unwrap_or(u32::MAX)
    }

    /// The device the graph runs on: `cpu` or `cuda:N`.
    #[napi(getter)]
    pub fn device(&self) -> String {
        self.inner.runs_on().0
    }

    /// The kernels: `ingot` (the fused CPU kernels) or `candle` (candle's ops).
    #[napi(getter, ts_return_type = "'ingot' | 'candle'")]
    pub fn kernels(&self) -> &'static str {
        self.inner.runs_on().1
    }

    /// Most threads one call uses, the caller included.
    #[napi(getter)]
    pub fn threads(&self) -> u32 {
        u32::try_from(self.inner.threads()).unwrap_or(u32::MAX)
    }

    /// Size of the file in bytes.
    #[napi(getter)]
    pub fn file_size(&self) -> f64 {
        self.inner.bundle().file_size() as f64
    }
}

/// `texts`: an array of strings.
fn strings(texts: &Unknown<'_>) -> Result<Vec<String>, Fail> {
    if texts.get_type()? != ValueType::Object || !texts.is_array()? {
        return Err(Error::usage("embed takes an array of strings").into());
    }
    input::texts(&cast::<Array>(texts)?)
}
