//! Serde types of the manifest stored under `ingot.manifest` (docs/format.md §2).
//!
//! These are plain documents: they can hold anything that parses. [`crate::Model::load`]
//! validates them (names, tensors, shapes, ops) before anything runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::{Record, Value};

/// The whole manifest: model card, signature and the three pipeline stages.
///
/// ```
/// let json = r#"{"model":{"name":"m","version":"1.0.0"},
///   "producer":{"name":"hand","version":"0"},
///   "signature":{"inputs":[],"outputs":[]},
///   "graph":{"opset":1,"inputs":[],"outputs":[],"nodes":[]}}"#;
/// let manifest: ingot::Manifest = serde_json::from_str(json).unwrap();
/// assert_eq!(manifest.model.name, "m");
/// assert!(manifest.preprocess.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Identity, version and model-card fields.
    pub model: ModelCard,
    /// Tool that wrote the bundle.
    pub producer: Producer,
    /// Named inputs and outputs.
    pub signature: Signature,
    /// Ordered pre-processing steps.
    #[serde(default)]
    pub preprocess: Vec<PreprocessSpec>,
    /// The computation graph.
    pub graph: GraphSpec,
    /// Ordered post-processing steps.
    #[serde(default)]
    pub postprocess: Vec<PostprocessSpec>,
    /// How the weights are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
    /// Statistics and a sample of the training data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    /// BLAKE3 (hex) of the data section; set by the writer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// The model card: identity, version and provenance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelCard {
    /// Model name, `[A-Za-z0-9._-]{1,128}`.
    pub name: String,
    /// Semantic version `MAJOR.MINOR.PATCH[-pre][+build]`.
    pub version: String,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// SPDX license identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Authors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Evaluation metrics, name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// Digest of the training data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_data_digest: Option<String>,
    /// `name@version` this model was derived from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// The tool that wrote the bundle.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Producer {
    /// Tool name, e.g. `ingot.sklearn`.
    pub name: String,
    /// Tool version.
    pub version: String,
    /// Training framework and version, e.g. `scikit-learn 1.7.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
}

/// Element type of a signature entry or graph tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// Unsigned byte.
    U8,
    /// UTF-8 string.
    String,
}

/// A named, typed, shaped input or output. `-1` in `shape` means variable size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: ElementType,
    /// Shape; `-1` is a variable dimension.
    #[serde(default)]
    pub shape: Vec<i64>,
}

/// How a request may present its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestForm {
    /// A list of `{column: value}` rows.
    Records,
    /// A map `{column: [values]}`.
    Columns,
    /// A dense numeric matrix, columns in signature order.
    Dense,
    /// A list of strings.
    Strings,
    /// Encoded image bytes.
    Bytes,
}

/// Named inputs and outputs of the whole pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// Raw inputs (for tabular models: the columns, in dense-matrix order).
    pub inputs: Vec<TensorSpec>,
    /// Outputs.
    pub outputs: Vec<TensorSpec>,
    /// Accepted request forms.
    #[serde(default)]
    pub request_forms: Vec<RequestForm>,
}

/// One pre-processing stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PreprocessSpec {
    /// scikit-learn style column transformers over tabular input.
    Tabular(TabularSpec),
    /// Hugging Face tokenization of strings into packed token ids.
    Text(TextSpec),
}

/// Tokenization with the `tokenizers` library (docs/format.md §3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSpec {
    /// Name of the U8 tensor holding the `tokenizer.json` bytes.
    pub tokenizer: String,
    /// Sequences are truncated to this many tokens, special tokens included.
    pub max_length: usize,
}

/// A ColumnTransformer: the output is the concatenation of the transformers' outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularSpec {
    /// Transformers in output order.
    pub transformers: Vec<TransformerSpec>,
    /// Missing values that no imputer fills reach the graph as NaN instead of being refused:
    /// for models that route them (tree ensembles).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_missing: bool,
}

/// A chain of steps over a set of input columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerSpec {
    /// Name (as in the ColumnTransformer).
    pub name: String,
    /// Input column names.
    pub columns: Vec<String>,
    /// Steps, applied in order.
    #[serde(default)]
    pub steps: Vec<TabularStepSpec>,
}

/// What an encoder does with a category it has not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleUnknown {
    /// Fail the request, naming row and column.
    Error,
    /// One-hot: emit all zeros.
    Ignore,
    /// Ordinal: emit `unknown_value`.
    UseEncodedValue,
}

/// One fitted tabular transformer (docs/format.md §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TabularStepSpec {
    /// Identity.
    Passthrough,
    /// Replace missing values with a per-column fill.
    SimpleImputer {
        /// Fill value per column.
        fill: Vec<Value>,
    },
    /// `(x - mean) / scale`.
    StandardScaler {
        /// Per-column mean, if centering.
        #[serde(default)]
        mean: Option<Vec<f64>>,
        /// Per-column scale, if scaling.
        #[serde(default)]
        scale: Option<Vec<f64>>,
    },
    /// `(x - center) / scale`.
    RobustScaler {
        /// Per-column center, if centering.
        #[serde(default)]
        center: Option<Vec<f64>>,
        /// Per-column scale, if scaling.
        #[serde(default)]
        scale: Option<Vec<f64>>,
    },
    /// `x / scale`.
    MaxAbsScaler {
        /// Per-column scale.
        scale: Vec<f64>,
    },
    /// `x * scale + min`, optionally clipped to `feature_range`.
    MinMaxScaler {
        /// Per-column multiplier.
        scale: Vec<f64>,
        /// Per-column offset.
        min: Vec<f64>,
        /// Clip to `feature_range`.
        #[serde(default)]
        clip: bool,
        /// Output range.
        #[serde(default = "unit_range")]
        feature_range: [f64; 2],
    },
    /// One output column per category.
    OneHotEncoder {
        /// Categories per input column.
        categories: Vec<Vec<Value>>,
        /// `error` or `ignore`.
        handle_unknown: HandleUnknown,
        /// Dropped category index per column.
        #[serde(default)]
        drop: Option<Vec<Option<usize>>>,
    },
    /// Category index per column.
    OrdinalEncoder {
        /// Categories per input column.
        categories: Vec<Vec<Value>>,
        /// `error` or `use_encoded_value`.
        handle_unknown: HandleUnknown,
        /// Code for unknown categories.
        #[serde(default)]
        unknown_value: Option<f64>,
        /// Code for missing values.
        #[serde(default)]
        encoded_missing_value: Option<f64>,
    },
}

fn unit_range() -> [f64; 2] {
    [0.0, 1.0]
}

/// The computation graph (docs/format.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// Op-set version.
    pub opset: u32,
    /// Graph inputs.
    pub inputs: Vec<TensorSpec>,
    /// Graph outputs; the first feeds post-processing.
    pub outputs: Vec<TensorSpec>,
    /// Nodes in topological order.
    pub nodes: Vec<NodeSpec>,
}

/// One graph node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Node name (defaults to the op and index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Op type, e.g. `Linear`.
    pub op: String,
    /// Input tensor names.
    pub inputs: Vec<String>,
    /// Output tensor names.
    pub outputs: Vec<String>,
    /// Op attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, serde_json::Value>,
}

/// How classifier scores become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Sigmoid per column (one column: binary `[1-p, p]`; several: one-vs-rest, normalised).
    Logistic,
    /// Softmax over columns.
    Softmax,
    /// Scores are decisions; no probabilities.
    None,
    /// Scores are the probabilities already, one column per class (random forests).
    Identity,
}

/// The inverse link a regressor's scores go through (`exp` for Poisson, gamma and Tweedie
/// boosting, `logistic` for XGBoost's `reg:logistic`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Scores are the values.
    #[default]
    Identity,
    /// `exp(score)`.
    Exp,
    /// `1 / (1 + exp(-score))`.
    Logistic,
}

impl Link {
    fn is_identity(&self) -> bool {
        *self == Link::Identity
    }
}

/// One post-processing stage (docs/format.md §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PostprocessSpec {
    /// Scores → probabilities and class labels.
    Classify {
        /// How scores become probabilities.
        activation: Activation,
        /// Class labels, in score-column order.
        classes: Vec<Value>,
    },
    /// Scores are embeddings, one row per input.
    Embedding {},
    /// Scores are the predicted values.
    Regress {
        /// Target names, one per score column.
        #[serde(default)]
        targets: Vec<String>,
        /// Inverse link applied to the scores.
        #[serde(default, skip_serializing_if = "Link::is_identity")]
        link: Link,
    },
}

/// Weight storage scheme and the accuracy measured when it was applied (docs/format.md §6).
///
/// ```
/// let q: ingot::format::Quantization = serde_json::from_str(
///     r#"{"scheme":"int8","weights":{"fc.weight":"int8-per-channel"},"accuracy":{"min_cosine":0.997}}"#,
/// ).unwrap();
/// assert_eq!(q.weights["fc.weight"], "int8-per-channel");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// `f32`, `f16`, `bf16` or `int8`: the precision the weights were reduced to.
    pub scheme: String,
    /// Accuracy against the source measured at quantization time: `rows`, `min_cosine`,
    /// `mean_cosine`, `max_abs_error`, and for classifiers `label_agreement` and
    /// `max_probability_error`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accuracy: BTreeMap<String, f64>,
    /// How each reduced weight is stored: tensor name → `int8-per-channel` (Linear weights, one
    /// scale per output), `int8-per-row` (embedding tables), `f16` or `bf16`. Weights not listed
    /// are f32.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, String>,
    /// How activations are treated, e.g. `u8 per row, dynamic` for int8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activations: Option<String>,
    /// `name@version` of the bundle the weights were reduced from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What the accuracy was measured on, e.g. `200 lines of calib.txt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    /// Per-layer sensitivity: the accuracy with each layer alone reduced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerAccuracy>,
}

impl Quantization {
    /// Full-precision weights, nothing measured.
    pub fn f32() -> Quantization {
        Quantization {
            scheme: "f32".into(),
            accuracy: BTreeMap::new(),
            weights: BTreeMap::new(),
            activations: None,
            source: None,
            calibration: None,
            layers: Vec::new(),
        }
    }
}

/// The accuracy of a bundle with one layer alone reduced ([`Quantization::layers`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerAccuracy {
    /// Graph node name.
    pub node: String,
    /// The node's weight tensor.
    pub weight: String,
    /// Whether the written bundle stores this layer reduced (`false`: kept f32).
    pub reduced: bool,
    /// Lowest per-row cosine to the source's output.
    pub min_cosine: f64,
    /// Mean per-row cosine.
    pub mean_cosine: f64,
    /// Largest absolute output difference.
    pub max_abs_error: f64,
}

/// Training-data reference: a few sample rows and per-column statistics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reference {
    /// A few raw input rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<Record>,
    /// Per-column statistics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnStats>,
}

impl Reference {
    /// The reference of training rows `records`: the first `sample_rows` of them as the sample,
    /// and the statistics of every column of `columns` that holds numbers
    /// ([`ColumnStats::from_values`]; missing values left out), as the exporters record them.
    ///
    /// ```
    /// use ingot::{format::Reference, Record, Value};
    /// let rows: Vec<Record> = (0..10)
    ///     .map(|i| [("x".to_string(), Value::from(i as f64))].into_iter().collect())
    ///     .collect();
    /// let r = Reference::from_records(&rows, &["x".to_string()], 5);
    /// assert_eq!(r.sample.len(), 5);
    /// assert_eq!(r.columns["x"].quantiles[5], 4.5);
    /// ```
    pub fn from_records(records: &[Record], columns: &[String], sample_rows: usize) -> Reference {
        let stats = columns
            .iter()
            .filter_map(|c| {
                let values: Vec<f64> = records
                    .iter()
                    .filter_map(|r| match r.get(c) {
                        Some(Value::Number(v)) => Some(*v),
                        _ => None,
                    })
                    .collect();
                Some((c.clone(), ColumnStats::from_values(&values)?))
            })
            .collect();
        Reference { sample: records.iter().take(sample_rows).cloned().collect(), columns: stats }
    }
}

impl ColumnStats {
    /// Count, mean, standard deviation (n − 1), minimum, maximum and the 0, 10, …, 100 %
    /// quantiles (linear interpolation, NumPy's default) of the finite `values`; `None` when
    /// there are none.
    ///
    /// ```
    /// let s = ingot::format::ColumnStats::from_values(&[1.0, 2.0, f64::NAN, 4.0]).unwrap();
    /// assert_eq!((s.count, s.min, s.max), (Some(3.0), Some(1.0), Some(4.0)));
    /// assert_eq!(s.quantiles[5], 2.0);
    /// ```
    pub fn from_values(values: &[f64]) -> Option<ColumnStats> {
        let mut x: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if x.is_empty() {
            return None;
        }
        x.sort_by(f64::total_cmp);
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let std = if x.len() > 1 {
            (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let quantile = |q: f64| {
            let at = q * (n - 1.0);
            let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
            x[lo] + (x[hi] - x[lo]) * (at - lo as f64)
        };
        Some(ColumnStats {
            count: Some(n),
            mean: Some(mean),
            std: Some(std),
            min: Some(x[0]),
            max: Some(x[x.len() - 1]),
            quantiles: (0..=10).map(|i| quantile(f64::from(i) / 10.0)).collect(),
        })
    }
}

/// Statistics of one numeric training column.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ColumnStats {
    /// Number of non-missing values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
    /// Mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Standard deviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Quantiles at 0, 10, …, 100 %.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<f64>,
}
