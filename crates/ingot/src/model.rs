//! [`Model`]: load → validate → predict. The one public entry point.

use std::path::Path;

use candle_core::Device;

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::exec::{self, Feed, Kernels, Plan};
use crate::format::{Bundle, Manifest, ModelCard, PreprocessSpec, ReadOptions, Signature};
use crate::graph::Graph;
use crate::input::{ColumnValues, Dense, DenseData, Input};
use crate::output::{Matrix, OutputLayout, OutputSlices, Prediction};
use crate::parallel;
use crate::postprocess::{Derived, Postprocess};
use crate::preprocess::tabular::{Batch, TabularPipeline};
use crate::preprocess::text::{TextPipeline, TokenBatch, TEXT_INPUTS};
use crate::value::{Columns, Record, Value};
use crate::version::{is_model_name, is_semver};

/// How to load a model.
///
/// ```
/// let opts = ingot::LoadOptions { threads: Some(1), ..Default::default() };
/// assert!(opts.verify_checksum && opts.device.is_cpu());
/// ```
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Verify the data checksum (default on).
    pub verify_checksum: bool,
    /// Device to run on (default CPU; CUDA with the `cuda` feature, `ingot::parse_device`).
    /// Pre-processing and post-processing run on the CPU; a batch's tensors go to the device
    /// once and its outputs come back once.
    pub device: Device,
    /// Which kernels run the graph (default: Ingot's fused kernels on the CPU, candle's ops on
    /// any other device; [`Kernels::Candle`] runs candle's ops on the CPU too).
    pub kernels: Kernels,
    /// Most threads one call of this model uses, the calling thread included (default: the whole
    /// pool, `INGOT_NUM_THREADS` or the CPUs the process may use; never more than the pool).
    /// Set it when several models, or several worker processes, share the cores.
    pub threads: Option<usize>,
}

impl LoadOptions {
    /// These options with the device and kernels given by name, as the CLI, the server and the
    /// bindings take them: `cpu` or `cuda[:N]` ([`crate::parse_device`], which opens the
    /// device), and `auto` or `candle` ([`Kernels::parse`]).
    ///
    /// ```
    /// let opts = ingot::LoadOptions::default().on("cpu", "candle").unwrap();
    /// assert_eq!(opts.kernels, ingot::Kernels::Candle);
    /// assert!(ingot::LoadOptions::default().on("tpu", "auto").is_err());
    /// ```
    pub fn on(self, device: &str, kernels: &str) -> Result<LoadOptions> {
        Ok(LoadOptions { device: exec::parse_device(device)?, kernels: Kernels::parse(kernels)?, ..self })
    }

    /// Refuses options no model can run with (`threads: Some(0)`).
    fn check(&self) -> Result<()> {
        if self.threads == Some(0) {
            return Err(Error::usage("threads must be at least 1"));
        }
        Ok(())
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { verify_checksum: true, device: Device::Cpu, kernels: Kernels::Auto, threads: None }
    }
}

#[derive(Debug)]
enum Preprocess {
    /// Dense input of this width goes straight to the graph.
    None(usize),
    /// Tabular pipeline feeding a graph input of this width.
    Tabular(TabularPipeline, usize),
    Text(Box<TextPipeline>),
}

/// A loaded, validated model: pre-processing, graph and post-processing from one `.ingot` file.
///
/// `Model` is immutable and `Send + Sync`: load it once and share it (e.g. in an `Arc`) between
/// threads.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("logistic.ingot");
/// # std::fs::write(&path, ingot::testing::logistic_bundle()?).unwrap();
/// use ingot::{Model, Record, Value};
///
/// let model = Model::load(&path)?;
/// assert_eq!(model.metadata().name, "logistic");
///
/// let row = Record::from([("a".to_string(), Value::from(3.0)), ("b".to_string(), Value::from(1.0))]);
/// let prediction = model.predict_records(&[row])?;
/// assert_eq!(prediction.labels.unwrap()[0], Value::from("yes"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Model {
    bundle: Bundle,
    preprocess: Preprocess,
    graph_inputs: Vec<String>,
    plan: Plan,
    postprocess: Postprocess,
    /// Buffers reused by successive calls (features, activations).
    arena: Arena,
    threads: Option<usize>,
}

impl Model {
    /// Loads and validates an `.ingot` file (memory-mapped), on the CPU.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Self::load_with(path, &LoadOptions::default())
    }

    /// Loads with explicit options.
    ///
    /// ```
    /// let options = ingot::LoadOptions { threads: Some(0), ..Default::default() };
    /// let err = ingot::Model::load_with("any.ingot", &options).unwrap_err();
    /// assert_eq!(err.to_string(), "usage: threads must be at least 1");
    /// ```
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        options.check()?;
        let read = ReadOptions { verify_checksum: options.verify_checksum };
        Self::from_bundle(Bundle::open_with(path, read)?, options)
    }

    /// Loads a model from the bytes of an `.ingot` file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Model> {
        Self::from_bundle(Bundle::from_bytes(bytes)?, &LoadOptions::default())
    }

    /// Validates a checked bundle and prepares it to run.
    pub fn from_bundle(bundle: Bundle, options: &LoadOptions) -> Result<Model> {
        options.check()?;
        let manifest = bundle.manifest();
        check_card(&manifest.model)?;
        let graph = Graph::validate(&manifest.graph, bundle.tensor_entries())?;
        let width_of = |graph: &Graph| {
            graph.input_width().ok_or_else(|| {
                Error::manifest(
                    "graph.inputs",
                    "a tabular or dense model takes one f32 input of shape [-1, width]",
                )
            })
        };
        let preprocess = match manifest.preprocess.as_slice() {
            [] => Preprocess::None(width_of(&graph)?),
            [PreprocessSpec::Tabular(spec)] => {
                let width = width_of(&graph)?;
                let p = TabularPipeline::compile(spec, &manifest.signature.inputs, "preprocess[0]")?;
                if p.width() != width {
                    return Err(Error::manifest(
                        "preprocess[0]",
                        format!("produces {} features but the graph input takes {width}", p.width()),
                    ));
                }
                Preprocess::Tabular(p, width)
            }
            [PreprocessSpec::Text(spec)] => {
                if let Some(other) =
                    graph.inputs.iter().find(|i| !TEXT_INPUTS.contains(&i.name.as_str()) || !i.integer)
                {
                    return Err(Error::manifest(
                        "graph.inputs",
                        format!(
                            "text graphs take integer inputs named {TEXT_INPUTS:?}, not `{}`",
                            other.name
                        ),
                    ));
                }
                Preprocess::Text(Box::new(TextPipeline::compile(spec, &bundle, "preprocess[0]")?))
            }
            _ => return Err(Error::manifest("preprocess", "format 1.0 supports one pre-processing stage")),
        };
        let postprocess = Postprocess::compile(&manifest.postprocess, graph.output_width)?;
        let plan = Plan::lower(&graph, &bundle, &options.device, options.kernels)?;
        let graph_inputs = graph.inputs.iter().map(|i| i.name.clone()).collect();
        let threads = options.threads;
        Ok(Model { bundle, preprocess, graph_inputs, plan, postprocess, arena: Arena::default(), threads })
    }

    /// The whole manifest.
    pub fn manifest(&self) -> &Manifest {
        self.bundle.manifest()
    }

    /// The model card: name, version, description, metrics, lineage.
    pub fn metadata(&self) -> &ModelCard {
        &self.bundle.manifest().model
    }

    /// Named inputs and outputs.
    pub fn signature(&self) -> &Signature {
        &self.bundle.manifest().signature
    }

    /// The underlying file: tensors, sizes, format version.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// An input of no rows in the form the model takes (a zero-row prediction gives a model's
    /// output columns).
    pub fn empty_input(&self) -> Input<'static> {
        match self.preprocess {
            Preprocess::Text(_) => Input::Texts(&[]),
            _ => Input::Records(&[]),
        }
    }

    /// What the model predicts: class labels, values, embeddings or raw scores.
    pub fn task(&self) -> crate::Task {
        self.postprocess.task()
    }

    /// The class labels of a classifier, exactly as in training, in probability-column order.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// assert_eq!(model.classes().unwrap(), [ingot::Value::from("no"), ingot::Value::from("yes")]);
    /// assert!(model.targets().is_none());
    /// # Ok(()) }
    /// ```
    pub fn classes(&self) -> Option<&[Value]> {
        self.postprocess.classes()
    }

    /// The target names of a regressor, when the bundle names them.
    pub fn targets(&self) -> Option<&[String]> {
        self.postprocess.targets()
    }

    /// Number of columns a dense input must have (0 for text models).
    pub fn input_width(&self) -> usize {
        match &self.preprocess {
            Preprocess::None(width) => *width,
            Preprocess::Tabular(..) => self.signature().inputs.len(),
            Preprocess::Text(_) => 0,
        }
    }

    /// Tokenizes strings exactly as a text model's pre-processing does (packed, no padding).
    pub fn tokenize(&self, texts: &[&str]) -> Result<TokenBatch> {
        match &self.preprocess {
            Preprocess::Text(p) => parallel::with_threads(self.threads, || p.encode(texts)),
            _ => Err(Error::Usage { what: "tokenize on a model without a text stage".into() }),
        }
    }

    /// Embeds strings with a text model: one row per string, in input order.
    ///
    /// ```no_run
    /// # fn main() -> ingot::Result<()> {
    /// let model = ingot::Model::load("minilm.ingot")?;
    /// let e = model.embed(&["a cat", "a dog"])?;
    /// assert_eq!(e.rows(), 2);
    /// # Ok(()) }
    /// ```
    pub fn embed(&self, texts: &[&str]) -> Result<Matrix> {
        let p = self.predict(Input::Texts(texts))?;
        Ok(p.embeddings.unwrap_or(p.scores))
    }

    /// The kernel each linear layer with stored weights runs, in graph order: precision and
    /// path, e.g. `int8 avx512-vnni` or `f32 avx2` (empty on a device).
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// let model = ingot::Model::from_bytes(ingot::testing::mlp_bundle()?)?;
    /// assert_eq!(model.linear_kernels().len(), 2);
    /// assert!(model.linear_kernels()[0].starts_with("f32 "));
    /// # Ok(()) }
    /// ```
    pub fn linear_kernels(&self) -> Vec<String> {
        self.plan.linear_paths()
    }

    /// Where the graph runs and with which kernels: `cpu`, `ingot` (the fused CPU kernels), or
    /// a device and `candle` (candle's ops: any non-CPU device, or [`Kernels::Candle`]).
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// let bytes = ingot::testing::mlp_bundle()?;
    /// assert_eq!(ingot::Model::from_bytes(bytes.clone())?.runs_on(), ("cpu".to_string(), "ingot"));
    /// let options = ingot::LoadOptions { kernels: ingot::Kernels::Candle, ..Default::default() };
    /// let model = ingot::Model::from_bundle(ingot::Bundle::from_bytes(bytes)?, &options)?;
    /// assert_eq!(model.runs_on(), ("cpu".to_string(), "candle"));
    /// # Ok(()) }
    /// ```
    pub fn runs_on(&self) -> (String, &'static str) {
        self.plan.runs_on()
    }

    /// From now on, records the largest `|x|` of every input column of every linear layer
    /// (by node name) in what it returns: the activation statistics of int8 calibration.
    pub(crate) fn record_linear_inputs(&mut self) -> Result<std::sync::Arc<exec::LinearInputs>> {
        self.plan
            .record_linear_inputs()
            .ok_or_else(|| Error::usage("layer statistics are recorded on the CPU only"))
    }

    /// Runs pre-processing, the graph and post-processing on a batch.
    pub fn predict(&self, input: Input<'_>) -> Result<Prediction> {
        parallel::call(|| parallel::with_threads(self.threads, || self.predict_now(input)))
    }

    /// Most threads one call uses, the caller included.
    pub fn threads(&self) -> usize {
        parallel::with_threads(self.threads, parallel::threads)
    }

    /// The outputs each row of a prediction has, and their columns: what [`Model::predict_into`]
    /// writes.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// assert_eq!(model.output_layout().probabilities, Some(2));
    /// # Ok(()) }
    /// ```
    pub fn output_layout(&self) -> OutputLayout {
        self.postprocess.layout(self.plan.output_width())
    }

    /// [`Model::predict`], the outputs written into the caller's slices instead of new vectors:
    /// for a caller that keeps one buffer for the outputs of call after call (the Node and Python
    /// bindings write straight into the memory of the arrays they return). Each slice holds
    /// exactly the rows of the input times the columns of [`Model::output_layout`]; the label
    /// indices index [`Model::classes`]. Returns the rows.
    ///
    /// A call that fails (bad input, slices of the wrong size) writes nothing: the outputs are
    /// written once the whole batch has been computed.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// use ingot::{Dense, Input, OutputSlices};
    /// let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// let (mut scores, mut probabilities, mut labels) = ([0f32; 2], [0f32; 4], [0u32; 2]);
    /// let out = OutputSlices {
    ///     scores: &mut scores,
    ///     probabilities: Some(&mut probabilities),
    ///     labels: Some(&mut labels),
    ///     ..OutputSlices::default()
    /// };
    /// let x = [3.0, 1.0, 0.0, 0.0];
    /// assert_eq!(model.predict_into(Input::Dense(Dense::f32(&x, 2, 2)?), out)?, 2);
    /// let p = model.predict_dense(&x, 2, 2)?;
    /// assert_eq!(&probabilities[..], p.probabilities.unwrap().as_slice());
    /// assert_eq!(&labels[..], p.labels.unwrap().indices());
    /// # Ok(()) }
    /// ```
    pub fn predict_into(&self, input: Input<'_>, out: OutputSlices<'_>) -> Result<usize> {
        parallel::call(|| parallel::with_threads(self.threads, || self.predict_into_now(input, out)))
    }

    fn predict_into_now(&self, input: Input<'_>, out: OutputSlices<'_>) -> Result<usize> {
        let layout = self.output_layout();
        let scores = self.scores(input)?;
        let rows = scores.rows();
        let fits = |what: &str, len: Option<usize>, cols: Option<usize>| match (len, cols) {
            (None, None) => Ok(()),
            (Some(len), Some(cols)) if Some(len) == rows.checked_mul(cols) => Ok(()),
            (len, cols) => Err(Error::ShapeMismatch {
                what: format!("predict_into: the {what} slice"),
                expected: cols.map_or_else(
                    || "none: the model gives no such output".into(),
                    |c| format!("{rows} rows × {c} = {} values", rows * c),
                ),
                got: len.map_or_else(|| "none".into(), |l| format!("{l} values")),
            }),
        };
        fits("scores", Some(out.scores.len()), Some(layout.scores))?;
        fits("probabilities", out.probabilities.as_ref().map(|s| s.len()), layout.probabilities)?;
        fits("values", out.values.as_ref().map(|s| s.len()), layout.values)?;
        fits("embeddings", out.embeddings.as_ref().map(|s| s.len()), layout.embeddings)?;
        fits("labels", out.labels.as_ref().map(|s| s.len()), layout.labels.then_some(1))?;
        out.scores.copy_from_slice(scores.as_slice());
        let derived = Derived {
            probabilities: out.probabilities,
            values: out.values,
            embeddings: out.embeddings,
            labels: out.labels,
        };
        self.postprocess.apply_into(scores.as_slice(), layout.scores, derived);
        Ok(rows)
    }

    fn predict_now(&self, input: Input<'_>) -> Result<Prediction> {
        Ok(self.postprocess.apply(self.scores(input)?))
    }

    /// Pre-processing and the graph on a batch: the `rows × output width` scores.
    fn scores(&self, input: Input<'_>) -> Result<Matrix> {
        let (scores, rows) = match &self.preprocess {
            Preprocess::Tabular(p, w) => {
                let batch = p.prepare(&input)?;
                (self.run_tabular(p, &batch, *w)?, batch.rows())
            }
            Preprocess::None(w) => {
                let Input::Dense(d) = input else {
                    return Err(Error::Usage {
                        what: "named input for a model without a pre-processing stage; send a dense matrix"
                            .into(),
                    });
                };
                (self.run_dense(d, *w)?, d.rows())
            }
            Preprocess::Text(p) => {
                let texts = self.texts(&input)?;
                (self.run_text(&p.encode(&texts)?)?, texts.len())
            }
        };
        let width = self.plan.output_width();
        let got = scores.len();
        Matrix::new(scores, rows, width).ok_or_else(|| Error::ShapeMismatch {
            what: "graph output".into(),
            expected: format!("{rows} × {width}"),
            got: format!("{got} values"),
        })
    }

    /// A tabular batch through pre-processing and the graph. A tall batch through a row-wise
    /// graph runs in chunks of [`exec::CHUNK_ROWS`] rows, each transformed and run on one thread
    /// while its features are in cache: the features of the whole batch never exist at once.
    fn run_tabular(&self, p: &TabularPipeline, batch: &Batch<'_>, width: usize) -> Result<Vec<f32>> {
        let rows = batch.rows();
        if !self.plan.chunked(rows) {
            // A fresh buffer, not one from the arena: freeing a buffer this large each call is
            // what keeps glibc's allocator serving the (also large) outputs from memory it
            // already has (its mmap threshold rises to the largest freed mapping).
            let mut features = vec![0f32; rows * width];
            p.rows_in_parallel(batch, &mut features)?;
            return self.plan.run_rows(&features, rows, width, &self.arena);
        }
        let out_width = self.plan.output_width();
        let mut out = vec![0f32; rows * out_width];
        parallel::try_for_each_chunk_mut(&mut out, exec::CHUNK_ROWS * out_width, |c, out| {
            let n = out.len() / out_width;
            let mut lease = self.arena.take(n * width);
            let features = lease.resize(n * width);
            p.rows_of(batch, c * exec::CHUNK_ROWS, features)?;
            self.plan.run_chunk(features, width, out, &self.arena)
        })?;
        Ok(out)
    }

    /// A dense matrix straight into a graph without pre-processing: every value must be finite.
    fn run_dense(&self, d: Dense<'_>, width: usize) -> Result<Vec<f32>> {
        if d.cols() != width {
            return Err(Error::ShapeMismatch {
                what: "dense input columns".into(),
                expected: width.to_string(),
                got: d.cols().to_string(),
            });
        }
        let converted: Vec<f32>;
        let x: &[f32] = match d.data() {
            DenseData::F32(x) => x,
            DenseData::F64(x) => {
                converted = x.iter().map(|&v| v as f32).collect();
                &converted
            }
        };
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidValue {
                row: i / width,
                column: format!("#{}", i % width),
                value: if x[i].is_nan() { "NaN" } else { "infinite" },
            });
        }
        self.plan.run_rows(x, d.rows(), width, &self.arena)
    }

    /// Runs a tokenized batch through the graph in passes of about `Plan::pass_tokens` tokens;
    /// returns one output row per sequence, in order.
    fn run_text(&self, batch: &TokenBatch) -> Result<Vec<f32>> {
        let sequences = batch.offsets.len().saturating_sub(1);
        let (width, pass_tokens) = (self.plan.output_width(), self.plan.pass_tokens());
        let mut out = Vec::with_capacity(sequences * width);
        let mut first = 0;
        while first < sequences {
            let start = batch.offsets[first] as usize;
            let mut last = first + 1;
            while last < sequences && batch.offsets[last + 1] as usize - start <= pass_tokens {
                last += 1;
            }
            let pass = batch.pass(first..last);
            let feeds: Vec<Feed<'_>> = self
                .graph_inputs
                .iter()
                .map(|name| Feed::U32(pass.input(name).unwrap_or_default()))
                .collect();
            out.extend(self.plan.run(&feeds, &self.arena)?);
            first = last;
        }
        Ok(out)
    }

    /// The strings of a text request: `Texts`, or the one string column of records/columns.
    fn texts<'a>(&self, input: &Input<'a>) -> Result<Vec<&'a str>> {
        let column = self.signature().inputs.first().map_or("text", |i| i.name.as_str());
        let as_text = |row: usize, v: Option<&'a Value>| match v {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(Error::WrongType {
                row,
                column: column.to_owned(),
                expected: "a string",
                got: other.type_name().to_owned(),
            }),
            None => Err(Error::MissingColumn { row, column: column.to_owned() }),
        };
        match *input {
            Input::Texts(t) => Ok(t.to_vec()),
            Input::Records(r) => r.iter().enumerate().map(|(i, rec)| as_text(i, rec.get(column))).collect(),
            Input::Columns(c) => match c.get(column) {
                Some(values) => values.iter().enumerate().map(|(i, v)| as_text(i, Some(v))).collect(),
                None => Err(Error::MissingColumn { row: 0, column: column.to_owned() }),
            },
            Input::Frame(f) => {
                let c = f
                    .column(column)
                    .ok_or_else(|| Error::MissingColumn { row: 0, column: column.to_owned() })?;
                let missing = |row| Error::InvalidValue { row, column: column.to_owned(), value: "missing" };
                match c.values {
                    ColumnValues::Str(_) | ColumnValues::Utf8 { .. } | ColumnValues::Dict { .. } => (0..f
                        .rows())
                        .map(|row| {
                            c.values.string(row).filter(|_| !c.is_missing(row)).ok_or_else(|| missing(row))
                        })
                        .collect(),
                    ColumnValues::Values(values) => {
                        values.iter().enumerate().map(|(i, v)| as_text(i, Some(v))).collect()
                    }
                    _ => Err(Error::WrongType {
                        row: 0,
                        column: column.to_owned(),
                        expected: "a string",
                        got: "a numeric column".into(),
                    }),
                }
            }
            Input::Dense(_) => {
                Err(Error::Usage { what: "dense input for a text model; send strings".into() })
            }
        }
    }

    /// Predicts on a dense row-major f32 matrix whose columns follow the signature.
    pub fn predict_dense(&self, data: &[f32], rows: usize, cols: usize) -> Result<Prediction> {
        self.predict(Input::Dense(Dense::f32(data, rows, cols)?))
    }

    /// Predicts on named rows.
    pub fn predict_records(&self, records: &[Record]) -> Result<Prediction> {
        self.predict(Input::Records(records))
    }

    /// Predicts on named columns of equal length.
    pub fn predict_columns(&self, columns: &Columns) -> Result<Prediction> {
        self.predict(Input::Columns(columns))
    }
}

fn check_card(card: &ModelCard) -> Result<()> {
    if !is_model_name(&card.name) {
        return Err(Error::manifest(
            "model.name",
            format!("`{}` must match [A-Za-z0-9._-]{{1,128}}", card.name),
        ));
    }
    if !is_semver(&card.version) {
        return Err(Error::manifest(
            "model.version",
            format!("`{}` is not MAJOR.MINOR.PATCH[-pre][+build]", card.version),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::CHUNK_ROWS;
    use crate::kernels::gemm::InputKind;

    impl Model {
        /// The whole batch in one run, never in row chunks.
        fn run_whole(&self, x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
            self.plan.run(&[Feed::F32 { data: x, rows, cols }], &self.arena).unwrap()
        }
    }

    #[test]
    fn a_tabular_graph_runs_in_row_chunks_with_the_same_results() {
        let model = Model::from_bytes(crate::testing::logistic_bundle().unwrap()).unwrap();
        assert!(model.plan.row_wise());
        let width = 2;
        let rows = 3 * CHUNK_ROWS + 17;
        let x: Vec<f32> = (0..rows * width).map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0).collect();
        let chunked = model.plan.run_rows(&x, rows, width, &model.arena).unwrap();
        assert_eq!(chunked.len(), rows * model.plan.output_width());
        assert_eq!(chunked, model.run_whole(&x, rows, width));
    }

    /// A linear layer's `(weight [out, in], bias)`.
    type Layer = (Vec<f32>, Vec<f32>);

    /// The logistic bundle with its linear layer replaced by 2 → 64 → 64 → 1 ReLU layers; also
    /// returns the layers.
    fn relu_mlp() -> (Model, Vec<Layer>) {
        use crate::format::{to_bytes, NodeSpec, TensorData};
        let bytes = crate::testing::logistic_bundle().unwrap();
        let mut manifest = Bundle::from_bytes(bytes).unwrap().manifest().clone();
        manifest.checksum = None;
        let node = |name: &str, op: &str, inputs: &[&str]| NodeSpec {
            name: Some(name.into()),
            op: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![name.into()],
            attrs: Default::default(),
        };
        manifest.graph.nodes = vec![
            node("fc1", "Linear", &["features", "w1", "b1"]),
            node("relu1", "Relu", &["fc1"]),
            node("fc2", "Linear", &["relu1", "w2", "b2"]),
            node("relu2", "Relu", &["fc2"]),
            node("scores", "Linear", &["relu2", "w3", "b3"]),
        ];
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n).map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5 - 1.0).collect()
        };
        let shapes = [(64, 2), (64, 64), (1, 64)];
        let layers: Vec<Layer> =
            shapes.iter().enumerate().map(|(i, (o, k))| (values(o * k, i), values(*o, i + 7))).collect();
        let mut tensors = Vec::new();
        for (i, ((w, b), (o, k))) in layers.iter().zip(shapes).enumerate() {
            tensors.push((format!("w{}", i + 1), TensorData::from_f32(vec![o, k], w).unwrap()));
            tensors.push((format!("b{}", i + 1), TensorData::from_f32(vec![o], b).unwrap()));
        }
        (Model::from_bytes(to_bytes(&manifest, &tensors).unwrap()).unwrap(), layers)
    }

    #[test]
    fn layers_after_a_relu_skip_zeros_with_the_same_results() {
        let (model, layers) = relu_mlp();
        let kinds = model.plan.linear_inputs();
        assert_eq!(kinds, [InputKind::Dense, InputKind::ReluOutput, InputKind::ReluOutput]);
        // Two full row chunks and a 40-row one, about half zeros after each ReLU: the sparse
        // GEMM runs where the CPU has it. Every score must match an f64 evaluation of the same
        // network (f32 sums of 64 terms of magnitude ≤ ~10 stay within 1e-4 relative), and the
        // whole batch, blocked differently, must give the same bits.
        let rows = 2 * CHUNK_ROWS + 40;
        let x: Vec<f32> = (0..rows * 2).map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0).collect();
        let got = model.plan.run_rows(&x, rows, 2, &model.arena).unwrap();
        assert_eq!(got.len(), rows);
        let mut zeros = 0;
        for (row, &score) in x.chunks_exact(2).zip(&got) {
            let mut h: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            for (i, (w, b)) in layers.iter().enumerate() {
                let k = h.len();
                h = b
                    .iter()
                    .enumerate()
                    .map(|(j, &bj)| {
                        let s = (0..k).map(|p| h[p] * f64::from(w[j * k + p])).sum::<f64>() + f64::from(bj);
                        if i + 1 < layers.len() {
                            s.max(0.0)
                        } else {
                            s
                        }
                    })
                    .collect();
                if i == 0 {
                    zeros += h.iter().filter(|v| **v == 0.0).count();
                }
            }
            assert!((f64::from(score) - h[0]).abs() <= 1e-4 * (1.0 + h[0].abs()), "{score} vs {}", h[0]);
        }
        assert!(zeros * 100 >= 40 * rows * 64, "the first ReLU should zero ≥ 40 %: {zeros}");
        assert_eq!(got, model.run_whole(&x, rows, 2));
    }
}
