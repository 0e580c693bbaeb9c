//! ONNX import: an `.onnx` file (an MLP, a CNN, a scikit-learn pipeline converted by skl2onnx,
//! a tree ensemble from onnxmltools) becomes an `.ingot` bundle that runs on Ingot's own kernels
//! (docs/onnx.md).
//!
//! The protobuf is read with prost (`proto`), initializers are decoded from any of their storage
//! forms, external data files included (`tensor`), and the graph is translated node by node
//! (`nodes` for the `ai.onnx` domain, `ml` for `ai.onnx.ml`): shape sub-graphs are folded at
//! import (only the batch dimension stays variable), Gemm/MatMul with stored weights become
//! `Linear`, BatchNormalization folds into the Conv or Linear before it, a classifier's
//! `post_transform` and label output become Ingot's post-processing. Every node that cannot be
//! translated is reported at once ([`check_file`] lists them without writing anything).

mod attrs;
mod encoder;
mod fold;
mod inputs;
mod ml;
mod ml_trees;
mod nodes;
mod patterns;
mod proto;
mod tensor;
#[cfg(test)]
mod tests;
mod translate;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use prost::Message;

use self::proto::{GraphProto, ModelProto, NodeProto};
use self::translate::{Dyn, Emitted, Val};
use crate::error::{Error, Result};
use crate::format::{
    Activation, ElementType, GraphSpec, Manifest, ModelCard, PostprocessSpec, PreprocessSpec, Producer,
    Signature, TensorData, TensorSpec,
};
use crate::trees::{head_outputs, Head};
use crate::value::Value;

/// Oldest and newest `ai.onnx` opsets the importer reads.
const OPSETS: std::ops::RangeInclusive<i64> = 11..=23;

/// What an import gives: the manifest and the tensors of the bundle.
pub type Imported = (Manifest, Vec<(String, TensorData)>);

/// Options of [`import_file`].
///
/// ```
/// let o = ingot::import::onnx::OnnxImportOptions::default();
/// assert_eq!(o.version, "1.0.0");
/// assert!(o.classes.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxImportOptions {
    /// Model name (default: the file name without its extension).
    pub name: Option<String>,
    /// Model version (semver).
    pub version: String,
    /// Fixed shapes for graph inputs whose dimensions are symbolic (beyond the batch): input
    /// name → dimensions, `-1` for the batch.
    pub input_shapes: Vec<(String, Vec<i64>)>,
    /// Class labels of a classifier's output columns (a torch classifier's logits or
    /// probabilities); a converted scikit-learn classifier brings its own.
    pub classes: Option<Vec<Value>>,
    /// Names of a tabular input's columns (default: `<input>_0`, `<input>_1`, …).
    pub feature_names: Option<Vec<String>>,
    /// The graph output that feeds post-processing (default: the first that is not a label).
    pub output: Option<String>,
    /// The output is an embedding (one vector per input row) rather than values.
    pub embedding: bool,
    /// The `tokenizer.json` of a text encoder (the ONNX file holds only the network).
    pub tokenizer: Option<std::path::PathBuf>,
    /// Truncation length in tokens of a text encoder (default: its position table's size).
    pub max_length: Option<usize>,
}

impl Default for OnnxImportOptions {
    fn default() -> Self {
        OnnxImportOptions {
            name: None,
            version: "1.0.0".into(),
            input_shapes: Vec::new(),
            classes: None,
            feature_names: None,
            output: None,
            embedding: false,
            tokenizer: None,
            max_length: None,
        }
    }
}

/// One node the importer cannot translate.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedNode {
    /// Op type, e.g. `Resize`.
    pub op_type: String,
    /// Domain (`ai.onnx` or `ai.onnx.ml`).
    pub domain: String,
    /// Node name (or `#index` when the node has none).
    pub node: String,
    /// Opset of the node's domain.
    pub opset: i64,
    /// Why: an unknown op, or the attribute or input form that is not supported.
    pub reason: String,
}

impl std::fmt::Display for UnsupportedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} opset {}) node `{}`: {}",
            self.op_type, self.domain, self.opset, self.node, self.reason
        )
    }
}

/// What [`check_file`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// `producer_name producer_version` of the file.
    pub producer: String,
    /// Opset per domain.
    pub opsets: BTreeMap<String, i64>,
    /// Number of nodes per op type.
    pub ops: BTreeMap<String, usize>,
    /// Every node that cannot be imported.
    pub unsupported: Vec<UnsupportedNode>,
    /// What stops the import before the nodes are looked at one by one (a malformed file, an
    /// input form or a text encoder that is not recognized).
    pub error: Option<String>,
    /// The text encoder recognized in the graph, described.
    pub encoder: Option<String>,
}

impl CheckReport {
    /// Whether the file imports.
    pub fn ok(&self) -> bool {
        self.unsupported.is_empty() && self.error.is_none()
    }
}

/// Imports the ONNX model at `path` (external data files are read next to it).
///
/// An op, attribute or input form the importer does not translate is an
/// [`Error::Unsupported`] listing every such node; a malformed file (bad protobuf, a missing
/// initializer, an input used before it is produced, inconsistent shapes) is an
/// [`Error::Manifest`] naming the node.
///
/// ```no_run
/// # fn main() -> ingot::Result<()> {
/// use ingot::import::onnx::{import_file, OnnxImportOptions};
/// let (manifest, tensors) = import_file("model.onnx".as_ref(), &OnnxImportOptions::default())?;
/// ingot::save("model.ingot", &manifest, &tensors)?;
/// # Ok(()) }
/// ```
pub fn import_file(path: &Path, options: &OnnxImportOptions) -> Result<Imported> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    import_bytes(&bytes, path.parent(), stem, options)
}

/// Imports an ONNX model from its bytes; `dir` is where its external data files are (none
/// when `None`), `default_name` the model name unless `options.name` is set.
///
/// ```
/// let err = ingot::import::onnx::import_bytes(b"not protobuf", None, "m", &Default::default());
/// assert!(err.unwrap_err().to_string().contains("ONNX"));
/// ```
pub fn import_bytes(
    bytes: &[u8],
    dir: Option<&Path>,
    default_name: &str,
    options: &OnnxImportOptions,
) -> Result<Imported> {
    let (model, consts) = prepare(decode(bytes)?, dir)?;
    if let Some(bundle) = text_encoder(&model, &consts, default_name, options)? {
        return Ok(bundle);
    }
    let graph =
        model.graph.as_ref().ok_or_else(|| Error::manifest("onnx.graph", "the model has no graph"))?;
    let mut importer = Importer::new(&model, graph, consts, options)?;
    importer.run(graph)?;
    if !importer.unsupported.is_empty() {
        return Err(unsupported_error(&importer.unsupported));
    }
    importer.finish(&model, graph, default_name, options)
}

/// Reads the ONNX model at `path` and reports its ops and every node that cannot be imported,
/// without writing anything. Errors only for a file that cannot be read at all.
///
/// ```no_run
/// let report = ingot::import::onnx::check_file("model.onnx".as_ref(), &Default::default()).unwrap();
/// for node in &report.unsupported {
///     println!("{node}");
/// }
/// ```
pub fn check_file(path: &Path, options: &OnnxImportOptions) -> Result<CheckReport> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let model = decode(&bytes)?;
    let graph =
        model.graph.as_ref().ok_or_else(|| Error::manifest("onnx.graph", "the model has no graph"))?;
    let mut ops = BTreeMap::new();
    for n in &graph.node {
        *ops.entry(op_key(n)).or_insert(0) += 1;
    }
    let opsets = model.opset_import.iter().map(|o| (domain_name(&o.domain).to_string(), o.version)).collect();
    let producer = format!("{} {}", model.producer_name, model.producer_version).trim().to_string();
    let mut report =
        CheckReport { producer, opsets, ops, unsupported: Vec::new(), error: None, encoder: None };
    let (model, consts) = match prepare(model, path.parent()) {
        Ok(prepared) => prepared,
        Err(e) => {
            report.error = Some(e.to_string());
            return Ok(report);
        }
    };
    let Some(graph) = model.graph.as_ref() else { return Ok(report) };
    if encoder::looks_like_encoder(graph, &consts) {
        let output = options
            .output
            .clone()
            .or_else(|| graph.output.first().map(|o| o.name.clone()))
            .unwrap_or_default();
        match encoder::recognize(graph, &consts, &output) {
            Ok(found) => {
                let e = found.encoder;
                report.encoder = Some(format!(
                    "BERT encoder: {} layers, hidden {}, {} heads, FFN {}, {} pooling{}",
                    e.layers,
                    e.hidden,
                    e.heads,
                    e.ffn,
                    e.pooling,
                    if e.normalize { ", L2-normalized" } else { "" }
                ))
            }
            Err(Fail::Unsupported(what) | Fail::Invalid(what)) => {
                report.error = Some(format!("text encoder: {what}"))
            }
        }
        return Ok(report);
    }
    match Importer::new(&model, graph, consts, options) {
        Ok(mut importer) => match importer.run(graph) {
            Ok(()) => report.unsupported = importer.unsupported,
            Err(e) => report.error = Some(e.to_string()),
        },
        Err(e) => report.error = Some(e.to_string()),
    }
    Ok(report)
}

/// The decoded model with exporter patterns rewritten (`patterns`), and its constants.
fn prepare(
    mut model: ModelProto,
    dir: Option<&Path>,
) -> Result<(ModelProto, HashMap<String, tensor::Const>)> {
    let consts = constants(&model, dir)?;
    let opset =
        model.opset_import.iter().filter(|o| domain_name(&o.domain) == "ai.onnx").map(|o| o.version).max();
    if let Some(graph) = model.graph.as_mut() {
        graph.node = patterns::rewrite(&graph.node, &consts, opset.unwrap_or(0));
    }
    Ok((model, consts))
}

/// The stored tensors of the graph: initializers and `Constant` nodes' values.
fn constants(model: &ModelProto, dir: Option<&Path>) -> Result<HashMap<String, tensor::Const>> {
    let graph =
        model.graph.as_ref().ok_or_else(|| Error::manifest("onnx.graph", "the model has no graph"))?;
    let mut consts = HashMap::new();
    for (i, t) in graph.initializer.iter().enumerate() {
        let c = tensor::decode(t, dir)
            .map_err(|e| Error::manifest(format!("onnx.graph.initializer[{i}] `{}`", t.name), e))?;
        consts.insert(t.name.clone(), c);
    }
    for (i, n) in graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type == "Constant" && domain_name(&n.domain) == "ai.onnx")
    {
        if let (Some(out), Ok(Some(vals))) = (n.output.first(), fold::fold(n, &[], 0)) {
            if let Some(Val::Const(c)) = vals.into_iter().next() {
                consts.insert(out.clone(), c);
            }
        } else {
            return Err(Error::manifest(
                format!("onnx.graph.node[{i}] (Constant)"),
                "a Constant without a value",
            ));
        }
    }
    Ok(consts)
}

/// A BERT-style text encoder, recognized and built as the Hugging Face importer builds it;
/// `None` when the graph is not one.
fn text_encoder(
    model: &ModelProto,
    consts: &HashMap<String, tensor::Const>,
    default_name: &str,
    options: &OnnxImportOptions,
) -> Result<Option<Imported>> {
    let graph =
        model.graph.as_ref().ok_or_else(|| Error::manifest("onnx.graph", "the model has no graph"))?;
    if !encoder::looks_like_encoder(graph, consts) {
        return Ok(None);
    }
    let output = match &options.output {
        Some(o) => o.clone(),
        None => graph
            .output
            .first()
            .map(|o| o.name.clone())
            .ok_or_else(|| Error::manifest("onnx.graph.output", "no outputs"))?,
    };
    let found = encoder::recognize(graph, consts, &output).map_err(|e| match e {
        Fail::Unsupported(what) => Error::Unsupported { what: format!("text encoder: {what}") },
        Fail::Invalid(detail) => Error::manifest("onnx.graph (text encoder)", detail),
    })?;
    let path = options.tokenizer.as_ref().ok_or_else(|| {
        Error::usage("the model is a text encoder: give its tokenizer (--tokenizer tokenizer.json)")
    })?;
    let tokenizer = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut e = found.encoder;
    if let Some(m) = options.max_length {
        if m < 2 || m > e.max_positions {
            return Err(Error::usage(format!(
                "--max-length {m} must be between 2 and the model's {} positions",
                e.max_positions
            )));
        }
        e.max_length = m;
    }
    let weights = found.weights;
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let (dims, values) = weights
            .get(name)
            .ok_or_else(|| Error::TensorMissing { name: name.into(), needed_by: "the encoder".into() })?;
        if dims != shape {
            return Err(Error::ShapeMismatch {
                what: format!("`{name}`"),
                expected: format!("{shape:?}"),
                got: format!("{dims:?}"),
            });
        }
        Ok(values.clone())
    };
    let card = ModelCard {
        name: options.name.clone().unwrap_or_else(|| default_name.to_string()),
        version: options.version.clone(),
        description: Some(format!(
            "BERT sentence encoder ({} layers, hidden {}, {} pooling{}) imported from ONNX",
            e.layers,
            e.hidden,
            e.pooling,
            if e.normalize { ", L2-normalized" } else { "" }
        )),
        tags: vec!["text".into(), "embedding".into()],
        ..ModelCard::default()
    };
    let framework = format!("{} {}", model.producer_name, model.producer_version).trim().to_string();
    let producer = Producer {
        name: "ingot import onnx".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        framework: (!framework.is_empty()).then_some(framework),
    };
    crate::import::hf::encoder_bundle(&e, &get, tokenizer, card, producer).map(Some)
}

fn op_key(n: &NodeProto) -> String {
    match domain_name(&n.domain) {
        "ai.onnx" => n.op_type.clone(),
        d => format!("{d}.{}", n.op_type),
    }
}

fn domain_name(domain: &str) -> &str {
    if domain.is_empty() {
        "ai.onnx"
    } else {
        domain
    }
}

fn decode(bytes: &[u8]) -> Result<ModelProto> {
    ModelProto::decode(bytes::Bytes::copy_from_slice(bytes))
        .map_err(|e| Error::manifest("onnx", format!("not an ONNX model (protobuf decoding failed: {e})")))
}

fn unsupported_error(nodes: &[UnsupportedNode]) -> Error {
    let list: Vec<String> = nodes.iter().map(|n| format!("  - {n}")).collect();
    Error::Unsupported {
        what: format!(
            "{} ONNX node{} cannot be imported:\n{}",
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" },
            list.join("\n")
        ),
    }
}

/// Why a node failed.
pub(crate) enum Fail {
    /// Valid ONNX that the importer does not translate (collected, reported together).
    Unsupported(String),
    /// Malformed: stops the import.
    Invalid(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail::Invalid(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Self {
        Fail::Invalid(s.to_string())
    }
}

/// The state of one import.
pub(crate) struct Importer {
    pub(crate) opset: i64,
    pub(crate) ml_opset: i64,
    pub(crate) values: HashMap<String, Val>,
    pub(crate) out: Emitted,
    /// How many nodes read each value (graph outputs count as readers).
    pub(crate) readers: HashMap<String, usize>,
    pub(crate) unsupported: Vec<UnsupportedNode>,
    /// Values produced by nodes that could not be translated.
    poisoned: std::collections::HashSet<String>,
    pub(crate) inputs: inputs::Inputs,
    /// Missing values reach the graph (an imputer or trees handle them).
    pub(crate) keep_missing: bool,
}

impl Importer {
    fn new(
        model: &ModelProto,
        graph: &GraphProto,
        consts: HashMap<String, tensor::Const>,
        options: &OnnxImportOptions,
    ) -> Result<Importer> {
        let version = |domain: &str| {
            model.opset_import.iter().find(|o| domain_name(&o.domain) == domain).map(|o| o.version)
        };
        let opset = version("ai.onnx").unwrap_or(0);
        if !OPSETS.contains(&opset) && !graph.node.iter().all(|n| domain_name(&n.domain) != "ai.onnx") {
            return Err(Error::Unsupported {
                what: format!(
                    "ai.onnx opset {opset}: the importer reads opsets {}..={} (re-export with a newer opset)",
                    OPSETS.start(),
                    OPSETS.end()
                ),
            });
        }
        if let Some(f) = model.functions.first() {
            return Err(Error::Unsupported {
                what: format!("model-local function `{}` (inline it before export)", f.name),
            });
        }
        if !graph.sparse_initializer.is_empty() {
            return Err(Error::Unsupported { what: "sparse initializers".into() });
        }
        let mut readers: HashMap<String, usize> = HashMap::new();
        for n in &graph.node {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                *readers.entry(i.clone()).or_insert(0) += 1;
            }
        }
        for o in &graph.output {
            *readers.entry(o.name.clone()).or_insert(0) += 1;
        }
        let mut importer = Importer {
            opset,
            ml_opset: version("ai.onnx.ml").unwrap_or(1),
            values: consts.into_iter().map(|(k, c)| (k, Val::Const(c))).collect(),
            out: Emitted::default(),
            readers,
            unsupported: Vec::new(),
            poisoned: Default::default(),
            inputs: inputs::Inputs::default(),
            keep_missing: false,
        };
        importer.graph_inputs(graph, options)?;
        Ok(importer)
    }

    fn run(&mut self, graph: &GraphProto) -> Result<()> {
        for (index, node) in graph.node.iter().enumerate() {
            let label = if node.name.is_empty() { format!("#{index}") } else { node.name.clone() };
            let domain = domain_name(&node.domain).to_string();
            let opset = if domain == "ai.onnx.ml" { self.ml_opset } else { self.opset };
            let report = |reason: String| UnsupportedNode {
                op_type: node.op_type.clone(),
                domain: domain.clone(),
                node: label.clone(),
                opset,
                reason,
            };
            let known = match domain.as_str() {
                "ai.onnx" => nodes::supported(&node.op_type),
                "ai.onnx.ml" => ml::supported(&node.op_type),
                _ => false,
            };
            if !known {
                self.unsupported.push(report("no translation for this op".into()));
                self.poison(node);
                continue;
            }
            if node.input.iter().any(|i| self.poisoned.contains(i)) {
                self.poison(node);
                continue;
            }
            let mut ins = Vec::with_capacity(node.input.len());
            for name in &node.input {
                if name.is_empty() {
                    ins.push(None);
                    continue;
                }
                match self.values.get(name) {
                    Some(v) => ins.push(Some(v.clone())),
                    None => {
                        return Err(Error::manifest(
                            format!("onnx.graph.node[{index}] `{label}` ({})", node.op_type),
                            format!("input `{name}` is not produced by an earlier node, an initializer or a graph input (is the graph sorted and acyclic?)"),
                        ))
                    }
                }
            }
            let result =
                if domain == "ai.onnx" { self.onnx_node(node, &ins) } else { self.ml_node(node, &ins) };
            match result {
                Ok(outs) => {
                    for (name, v) in node.output.iter().zip(outs) {
                        if !name.is_empty() {
                            self.values.insert(name.clone(), v);
                        }
                    }
                }
                Err(Fail::Unsupported(reason)) => {
                    self.unsupported.push(report(reason));
                    self.poison(node);
                }
                Err(Fail::Invalid(detail)) => {
                    return Err(Error::manifest(
                        format!("onnx.graph.node[{index}] `{label}` ({})", node.op_type),
                        detail,
                    ))
                }
            }
        }
        Ok(())
    }

    fn poison(&mut self, node: &NodeProto) {
        self.poisoned.extend(node.output.iter().cloned());
    }

    /// Whether `value` is read exactly once and is not a graph output (a producer may then
    /// absorb its consumer: a bias add, a batch normalization).
    pub(crate) fn single_reader(&self, value: &str) -> bool {
        self.readers.get(value) == Some(&1)
    }

    /// The output that feeds post-processing, the head, and the bundle.
    fn finish(
        mut self,
        model: &ModelProto,
        graph: &GraphProto,
        default_name: &str,
        options: &OnnxImportOptions,
    ) -> Result<Imported> {
        let chosen = match &options.output {
            Some(name) => graph
                .output
                .iter()
                .find(|o| &o.name == name)
                .map(|o| o.name.clone())
                .ok_or_else(|| Error::usage(format!("the model has no output `{name}`")))?,
            None => graph
                .output
                .iter()
                .find(|o| !matches!(self.values.get(&o.name), Some(Val::Labels) | None))
                .map(|o| o.name.clone())
                .ok_or_else(|| Error::manifest("onnx.graph.output", "no output carries scores or values"))?,
        };
        let value = self.values.get(&chosen).cloned();
        let (scores, head) = match value {
            Some(Val::Scores { scores, activation, classes }) => {
                (scores, Some(Head::Classifier { classes, activation }))
            }
            Some(Val::Dyn(d)) => {
                let head = options.classes.clone().map(|classes| {
                    let producer = self.out.producer(&d.name).map(|i| self.out.nodes[i].op.as_str());
                    let activation =
                        if producer == Some("Softmax") { Activation::Identity } else { Activation::Softmax };
                    Head::Classifier { classes, activation }
                });
                (d, head)
            }
            Some(other) => {
                return Err(Error::Unsupported {
                    what: format!("output `{chosen}` is {}, not a tensor of scores", other.kind()),
                })
            }
            None => {
                return Err(Error::manifest(
                    "onnx.graph.output",
                    format!("output `{chosen}` is not computed"),
                ))
            }
        };
        let scores =
            self.as_rows(scores).map_err(|e| Error::manifest(format!("onnx.graph.output `{chosen}`"), e))?;
        let width = scores.shape[1].fixed().unwrap_or(0);
        if let Some(Head::Classifier { classes, activation }) = &head {
            let want = if *activation == Activation::Logistic && width == 1 { 2 } else { width };
            if classes.len() != want {
                return Err(Error::usage(format!(
                    "{} class labels for {want} classes in output `{chosen}`",
                    classes.len()
                )));
            }
        }
        let (outputs, post) = match head {
            Some(head) => head_outputs(head, width),
            None if options.embedding => (
                vec![TensorSpec {
                    name: "embedding".into(),
                    dtype: ElementType::F32,
                    shape: vec![-1, width as i64],
                }],
                PostprocessSpec::Embedding {},
            ),
            None => head_outputs(Head::Regressor { link: crate::format::Link::Identity }, width),
        };
        let (signature_inputs, preprocess, graph_input) = self.inputs.finish(self.keep_missing);
        let card = ModelCard {
            name: options.name.clone().unwrap_or_else(|| default_name.to_string()),
            version: options.version.clone(),
            description: (!model.doc_string.is_empty()).then(|| model.doc_string.clone()),
            ..ModelCard::default()
        };
        let framework = format!("{} {}", model.producer_name, model.producer_version).trim().to_string();
        let manifest = Manifest {
            model: card,
            producer: Producer {
                name: "ingot import onnx".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                framework: (!framework.is_empty()).then_some(framework),
            },
            signature: Signature { inputs: signature_inputs, outputs, request_forms: self.inputs.forms() },
            preprocess: preprocess.into_iter().collect::<Vec<PreprocessSpec>>(),
            graph: GraphSpec {
                opset: self.out.opset.max(1),
                inputs: vec![graph_input],
                outputs: vec![TensorSpec {
                    name: scores.name.clone(),
                    dtype: ElementType::F32,
                    shape: vec![-1, width as i64],
                }],
                nodes: std::mem::take(&mut self.out.nodes),
            },
            postprocess: vec![post],
            quantization: None,
            reference: None,
            checksum: None,
        };
        Ok((manifest, std::mem::take(&mut self.out.tensors)))
    }

    /// `d` as `[rows, width]`: a `[rows]` vector becomes one column, higher ranks are flattened
    /// per row.
    pub(crate) fn as_rows(&mut self, d: Dyn) -> std::result::Result<Dyn, String> {
        match d.dims().as_slice() {
            [None, Some(_)] => Ok(d),
            [None] => self.reshape(&d, &[-1, 1]),
            [None, rest @ ..] if rest.iter().all(Option::is_some) => self.reshape(&d, &[0, -1]),
            other => Err(format!("outputs must be batch-first with fixed other dimensions, got {other:?}")),
        }
    }

    /// Emits a `Reshape` of `d` to `shape` (Ingot's rules: `0` copies, `-1` infers).
    pub(crate) fn reshape(&mut self, d: &Dyn, shape: &[i64]) -> std::result::Result<Dyn, String> {
        let out = format!("{}.reshape", d.name);
        self.out.emit(
            "Reshape",
            &[translate::Arg::Value(d)],
            translate::attrs([("shape", serde_json::json!(shape))]),
            &out,
        )
    }
}
