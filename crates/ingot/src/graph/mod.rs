//! The op graph (opsets 1 and 2) as a validated IR: named values with load-time shapes and
//! nodes in topological order (docs/format.md §4).
//!
//! [`Graph::validate`] checks a manifest's [`GraphSpec`] against the bundle's tensor table —
//! names, arities, attributes, shapes, which operands must be stored tensors — and infers every
//! value's shape. A `Graph` only exists once every check has passed. What runs it is decided
//! elsewhere: `exec` lowers a `Graph` to kernels (binding weights, fusing, choosing the device).

mod attrs;
mod layout;
mod ops;
mod shape;
mod spatial;
mod unary;

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::format::{DType, ElementType, GraphSpec, TensorEntry};

pub(crate) use layout::{slice_range, PadMode, SliceAxis};
pub(crate) use ops::{reshape_shape, NormKind, Op, PoolMode, ReduceKind, WeightLayout};
pub(crate) use shape::{broadcast, Dim, Shape};
pub(crate) use spatial::{CoordMode, NearestMode, ResizeAttrs, Window};

/// The output shapes of op `op` with `attrs` over inputs of `shapes`, by the same rules as
/// validation, and the opset that use of the op needs (importers infer shapes while they build
/// a graph, and declare the lowest opset it needs).
pub(crate) fn infer_node(
    op: &str,
    attrs: &BTreeMap<String, serde_json::Value>,
    shapes: &[&Shape],
) -> std::result::Result<(Vec<Shape>, u32), String> {
    ops::build(op, attrs, shapes).map(|(op, outputs)| {
        let opset = op.opset(shapes);
        (outputs, opset)
    })
}

/// Op-set version this build implements (and reads every earlier one). Opset 2 added the
/// image, layout and element-wise ops of ONNX models (docs/format.md §4); an opset-1 graph
/// that uses one is refused, as a reader of opset 1 would refuse it.
pub const OPSET: u32 = 2;

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Graph input number `i`.
    Input(usize),
    /// A tensor stored in the bundle under the value's name.
    Initializer(DType),
    /// An output of node number `i`.
    Node(usize),
}

/// One named value of the graph.
#[derive(Debug, Clone)]
pub(crate) struct ValueInfo {
    pub(crate) name: String,
    pub(crate) shape: Shape,
    pub(crate) source: Source,
}

/// One validated node: its op and the values it reads and writes.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) op: Op,
    pub(crate) inputs: Vec<usize>,
    pub(crate) outputs: Vec<usize>,
}

/// A graph input: its value and declared type.
#[derive(Debug, Clone)]
pub(crate) struct GraphInput {
    pub(crate) name: String,
    pub(crate) value: usize,
    /// Integer inputs (ids, offsets) are passed as u32 values.
    pub(crate) integer: bool,
    pub(crate) shape: Vec<i64>,
}

/// A validated graph: values are numbered, nodes are in topological order.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    pub(crate) values: Vec<ValueInfo>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) inputs: Vec<GraphInput>,
    pub(crate) outputs: Vec<usize>,
    /// Width of the first output, `[rows, width]`: what post-processing receives per row.
    pub(crate) output_width: usize,
}

impl Graph {
    /// Width of the single `[-1, width]` f32 input of a tabular graph.
    pub(crate) fn input_width(&self) -> Option<usize> {
        match self.inputs.as_slice() {
            [GraphInput { integer: false, shape, .. }] => match shape.as_slice() {
                [-1, w] if *w > 0 => usize::try_from(*w).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether value `v` is a tensor stored in the bundle.
    pub(crate) fn is_initializer(&self, v: usize) -> bool {
        matches!(self.values[v].source, Source::Initializer(_))
    }

    /// Validates `spec` against the bundle's tensors (`tensors`, by name) and infers shapes.
    pub(crate) fn validate(spec: &GraphSpec, tensors: &BTreeMap<String, TensorEntry>) -> Result<Graph> {
        if spec.opset > OPSET || spec.opset == 0 {
            return Err(Error::manifest(
                "graph.opset",
                format!("opset {} is not supported (this build implements opset 1..={OPSET})", spec.opset),
            ));
        }
        if spec.inputs.is_empty() {
            return Err(Error::manifest("graph.inputs", "the graph has no inputs"));
        }
        if spec.outputs.is_empty() {
            return Err(Error::manifest("graph.outputs", "the graph has no outputs"));
        }

        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut values: Vec<ValueInfo> = Vec::new();
        let mut inputs = Vec::with_capacity(spec.inputs.len());
        for (i, input) in spec.inputs.iter().enumerate() {
            let field = format!("graph.inputs[{i}]");
            let integer = match input.dtype {
                ElementType::F32 => false,
                ElementType::I64 | ElementType::I32 => true,
                other => {
                    return Err(Error::manifest(
                        field,
                        format!("input dtype {other:?} is not f32, i64 or i32"),
                    ))
                }
            };
            let shape = input
                .shape
                .iter()
                .map(|&d| match d {
                    -1 => Ok(Dim::Var),
                    d if d > 0 => usize::try_from(d)
                        .map(Dim::Fixed)
                        .map_err(|_| Error::manifest(&field, format!("dimension {d} is too large"))),
                    d => Err(Error::manifest(&field, format!("invalid dimension {d}"))),
                })
                .collect::<Result<Shape>>()?;
            if input.shape.is_empty() || by_name.insert(input.name.clone(), values.len()).is_some() {
                return Err(Error::manifest(
                    field,
                    format!("input `{}` is unnamed, scalar or repeated", input.name),
                ));
            }
            inputs.push(GraphInput {
                name: input.name.clone(),
                value: values.len(),
                integer,
                shape: input.shape.clone(),
            });
            values.push(ValueInfo { name: input.name.clone(), shape, source: Source::Input(i) });
        }

        let mut nodes = Vec::with_capacity(spec.nodes.len());
        for (index, node) in spec.nodes.iter().enumerate() {
            let name = node.name.clone().unwrap_or_else(|| format!("{}_{index}", node.op));
            let graph_err = |detail: String| Error::Graph { node: name.clone(), op: node.op.clone(), detail };
            let mut node_inputs = Vec::with_capacity(node.inputs.len());
            for input_name in &node.inputs {
                let v = match by_name.get(input_name) {
                    Some(&v) => v,
                    None => {
                        let entry = tensors.get(input_name).ok_or_else(|| Error::TensorMissing {
                            name: input_name.clone(),
                            needed_by: format!("graph node `{name}`"),
                        })?;
                        by_name.insert(input_name.clone(), values.len());
                        values.push(ValueInfo {
                            name: input_name.clone(),
                            shape: entry.shape.iter().map(|&d| Dim::Fixed(d)).collect(),
                            source: Source::Initializer(entry.dtype),
                        });
                        values.len() - 1
                    }
                };
                node_inputs.push(v);
            }
            let in_shapes: Vec<&Shape> = node_inputs.iter().map(|&v| &values[v].shape).collect();
            let (op, out_shapes) = ops::build(&node.op, &node.attrs, &in_shapes).map_err(graph_err)?;
            let needs = op.opset(&in_shapes);
            if needs > spec.opset {
                return Err(graph_err(format!(
                    "this use of `{}` needs opset {needs}; the graph declares opset {}",
                    node.op, spec.opset
                )));
            }
            check_operands(&op, &node_inputs, &values, &inputs).map_err(graph_err)?;
            check_quantized_weight(&op, &node_inputs, &values, tensors).map_err(graph_err)?;
            if out_shapes.len() != node.outputs.len() {
                return Err(graph_err(format!(
                    "declares {} outputs, op produces {}",
                    node.outputs.len(),
                    out_shapes.len()
                )));
            }
            let mut outputs = Vec::with_capacity(node.outputs.len());
            for (out_name, shape) in node.outputs.iter().zip(out_shapes) {
                if by_name.contains_key(out_name) || tensors.contains_key(out_name) {
                    return Err(graph_err(format!("output `{out_name}` is already defined")));
                }
                by_name.insert(out_name.clone(), values.len());
                outputs.push(values.len());
                values.push(ValueInfo { name: out_name.clone(), shape, source: Source::Node(index) });
            }
            nodes.push(Node { name, op, inputs: node_inputs, outputs });
        }

        let mut outputs = Vec::with_capacity(spec.outputs.len());
        for (i, out) in spec.outputs.iter().enumerate() {
            let v = by_name.get(&out.name).copied().filter(|&v| matches!(values[v].source, Source::Node(_)));
            outputs.push(v.ok_or_else(|| {
                Error::manifest(
                    format!("graph.outputs[{i}]"),
                    format!("`{}` is not produced by any node", out.name),
                )
            })?);
        }
        let output_width = match values[outputs[0]].shape.as_slice() {
            [_, Dim::Fixed(w)] => *w,
            other => {
                return Err(Error::manifest(
                    "graph.outputs[0]",
                    format!(
                        "the first output must be 2-D [rows, width] with a fixed width, inferred {other:?}"
                    ),
                ))
            }
        };
        Ok(Graph { values, nodes, inputs, outputs, output_width })
    }
}

/// The operand index and scale tensor of an op's int8 weight (`weight_scale`): a `Linear`'s
/// weight (one scale per output) or a `Gather`'s table (one scale per row).
fn int8_operand(op: &Op) -> Option<(usize, &str)> {
    match op {
        Op::Linear { scale: Some(scale), .. } => Some((1, scale)),
        Op::Gather { scale: Some(scale) } => Some((0, scale)),
        _ => None,
    }
}

/// An int8 weight must be a stored I8 tensor whose scales are a stored F32 tensor of one value
/// per row; an I8 tensor anywhere else is refused by [`check_operands`].
fn check_quantized_weight(
    op: &Op,
    operands: &[usize],
    values: &[ValueInfo],
    tensors: &BTreeMap<String, TensorEntry>,
) -> Result<(), String> {
    let Some((operand, scale)) = int8_operand(op) else { return Ok(()) };
    let weight = &values[operands[operand]];
    if !matches!(weight.source, Source::Initializer(DType::I8)) {
        return Err(format!("`weight_scale` is given but `{}` is not a stored I8 tensor", weight.name));
    }
    let dim = |i: usize| weight.shape.get(i).and_then(|d| d.fixed()).unwrap_or(0);
    let check = |name: &str, len: usize, what: &str| match tensors.get(name) {
        None => Err(format!("{what} `{name}` are not in the file")),
        Some(e) if e.dtype != DType::F32 || e.shape != [len] => {
            Err(format!("{what} `{name}` must be F32 [{len}], got {} {:?}", e.dtype.name(), e.shape))
        }
        Some(_) => Ok(()),
    };
    check(scale, dim(0), "weight scales")?;
    if let Op::Linear { input_scale: Some(input_scale), .. } = op {
        check(input_scale, dim(1), "input scales")?;
    }
    Ok(())
}

/// The operand rules that shapes alone do not state: which inputs must be stored tensors (the
/// table of a `Gather`, the parameters of a `LayerNorm`), which must be integer graph inputs
/// (ids, sequence offsets; nothing else may read those), and that stored operands are floats
/// (a tree ensemble's integer tables aside).
fn check_operands(
    op: &Op,
    operands: &[usize],
    values: &[ValueInfo],
    graph_inputs: &[GraphInput],
) -> Result<(), String> {
    let (stored, integer): (&[usize], &[usize]) = match op {
        Op::Gather { .. } => (&[0], &[1]),
        Op::LayerNorm { .. } | Op::Conv { .. } => (&[1, 2], &[]),
        Op::Impute => (&[1], &[]),
        Op::MultiHeadAttention { .. } | Op::SequencePool { .. } => (&[], &[1]),
        Op::TreeEnsemble(_) => (&[1, 2, 3, 4, 5, 6], &[]),
        _ => (&[], &[]),
    };
    // A tree ensemble's tables hold integers too; their types are checked when it is read.
    let typed_elsewhere = |i: usize| matches!(op, Op::TreeEnsemble(_)) && i > 0;
    for (i, &v) in operands.iter().enumerate() {
        let value = &values[v];
        let is_integer_input = matches!(value.source, Source::Input(j) if graph_inputs[j].integer);
        if integer.contains(&i) != is_integer_input {
            return Err(if is_integer_input {
                format!("input {i} reads integer graph input `{}` where floats are needed", value.name)
            } else {
                format!("input {i} (`{}`) must be an integer graph input (i64 or i32)", value.name)
            });
        }
        let int8_weight = int8_operand(op).is_some_and(|(operand, _)| operand == i);
        match &value.source {
            Source::Initializer(DType::I8) if int8_weight => {}
            Source::Initializer(_) if typed_elsewhere(i) => {}
            Source::Initializer(dtype)
                if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) =>
            {
                return Err(format!(
                    "stored tensor `{}` is {}; float data is needed",
                    value.name,
                    dtype.name()
                ))
            }
            Source::Input(_) | Source::Node(_) if stored.contains(&i) => {
                return Err(format!("input {i} (`{}`) must be a stored tensor", value.name))
            }
            _ => {}
        }
    }
    Ok(())
}
