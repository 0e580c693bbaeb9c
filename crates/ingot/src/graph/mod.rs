//! The op graph (opset 1): validation and shape inference at load, producing a [`Graph`]
//! that [`crate::exec`] runs. A `Graph` only exists once every check has passed.
//!
//! Constants consumed by kernels (linear weights, embedding tables, norm parameters) are bound
//! into the kernel at load — large ones borrowed in place from the mapped file — so only
//! constants read by generic ops become candle tensors.

mod ops;
mod shape;

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::format::{Bundle, ElementType, GraphSpec};
use crate::kernels::activation::Act;
use crate::kernels::attention::Attention;
use crate::kernels::embedding::Embedding;
use crate::kernels::gemm::PackedWeight;
use crate::kernels::layernorm::{AddLayerNorm, LayerNorm};
use crate::kernels::linear::LinearKernel;
use crate::kernels::pool::SequencePool;

pub(crate) use ops::Op;
use shape::{Dim, Shape};

/// Op-set version this build implements.
pub const OPSET: u32 = 1;

/// One validated node: op, input and output slots.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) op: Op,
    pub(crate) inputs: Vec<usize>,
    pub(crate) outputs: Vec<usize>,
}

/// A graph input: its slot and declared type.
#[derive(Debug)]
pub(crate) struct GraphInput {
    pub(crate) name: String,
    pub(crate) slot: usize,
    /// Integer inputs (ids, offsets) are passed as u32 tensors.
    pub(crate) integer: bool,
    pub(crate) shape: Vec<i64>,
}

/// A validated graph ready to run: tensors are numbered slots, constants preloaded.
#[derive(Debug)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) slot_count: usize,
    pub(crate) inputs: Vec<GraphInput>,
    pub(crate) output_slots: Vec<usize>,
    pub(crate) output_width: usize,
    pub(crate) constants: Vec<(usize, Tensor)>,
    /// Slots whose last reader is node `i`: freed after it runs.
    pub(crate) release_after: Vec<Vec<usize>>,
    /// Every output row depends only on the same input row (see [`Graph::is_row_wise`]), so
    /// the batch may be cut into chunks of rows that run independently.
    pub(crate) row_wise: bool,
}

type Err2 = Box<dyn Fn(String) -> Error>;

impl Graph {
    /// Width of the single `[-1, width]` f32 input of a tabular graph.
    pub(crate) fn input_width(&self) -> Option<usize> {
        match self.inputs.as_slice() {
            [GraphInput { integer: false, shape, .. }] => match shape.as_slice() {
                [-1, w] if *w > 0 => Some(*w as usize),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the graph maps each row of its single `[rows, width]` input to the same row of
    /// every output: constant-weight linear layers, element-wise activations, softmax and L2
    /// normalization along the features, and element-wise arithmetic with a constant that does
    /// not vary by row (rank ≤ 1, or a leading dimension of 1).
    fn is_row_wise(&self) -> bool {
        let constant_rank = |slot: usize| {
            self.constants
                .iter()
                .find(|(s, _)| *s == slot)
                .map(|(_, t)| matches!(t.dims(), [] | [_] | [1, ..]))
        };
        let per_row = |node: &Node| match &node.op {
            Op::LinearConst(_) | Op::Relu | Op::Tanh | Op::Sigmoid | Op::Identity | Op::Gelu => true,
            Op::Softmax { axis } => *axis == 1,
            Op::L2Normalize => true,
            Op::Add | Op::Sub | Op::Mul | Op::Div => match node.inputs.as_slice() {
                &[a, b] => match (constant_rank(a), constant_rank(b)) {
                    (None, Some(fixed)) | (Some(fixed), None) => fixed,
                    _ => false,
                },
                _ => false,
            },
            _ => false,
        };
        self.input_width().is_some() && self.nodes.iter().all(per_row)
    }

    /// Validates `spec` against the tensors in `bundle` and prepares it for `device`.
    pub(crate) fn compile(spec: &GraphSpec, bundle: &Bundle, device: &Device) -> Result<Graph> {
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

        let mut slots: HashMap<String, usize> = HashMap::new();
        let mut shapes: Vec<Shape> = Vec::new();
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
            let dims = input
                .shape
                .iter()
                .map(|&d| match d {
                    -1 => Ok(Dim::Var),
                    d if d > 0 => Ok(Dim::Fixed(d as usize)),
                    d => Err(Error::manifest(&field, format!("invalid dimension {d}"))),
                })
                .collect::<Result<Shape>>()?;
            if input.shape.is_empty() || slots.insert(input.name.clone(), shapes.len()).is_some() {
                return Err(Error::manifest(
                    field,
                    format!("input `{}` is unnamed, scalar or repeated", input.name),
                ));
            }
            inputs.push(GraphInput {
                name: input.name.clone(),
                slot: shapes.len(),
                integer,
                shape: input.shape.clone(),
            });
            shapes.push(dims);
        }

        let mut initializers: HashMap<usize, String> = HashMap::new();
        let mut nodes = Vec::with_capacity(spec.nodes.len());
        for (index, node) in spec.nodes.iter().enumerate() {
            let name = node.name.clone().unwrap_or_else(|| format!("{}_{index}", node.op));
            let mut node_inputs = Vec::with_capacity(node.inputs.len());
            for input_name in &node.inputs {
                let slot = match slots.get(input_name) {
                    Some(&s) => s,
                    None => {
                        let entry =
                            bundle.tensor_entries().get(input_name).ok_or_else(|| Error::TensorMissing {
                                name: input_name.clone(),
                                needed_by: format!("graph node `{name}`"),
                            })?;
                        let slot = shapes.len();
                        slots.insert(input_name.clone(), slot);
                        shapes.push(entry.shape.iter().map(|&d| Dim::Fixed(d)).collect());
                        initializers.insert(slot, input_name.clone());
                        slot
                    }
                };
                node_inputs.push(slot);
            }
            let (op_name, node_name) = (node.op.clone(), name.clone());
            let graph_err: Err2 =
                Box::new(move |detail| Error::Graph { node: node_name.clone(), op: op_name.clone(), detail });
            let in_shapes: Vec<&Shape> = node_inputs.iter().map(|&s| &shapes[s]).collect();
            let (op, out_shapes) = ops::build(&node.op, &node.attrs, &in_shapes).map_err(&graph_err)?;
            if out_shapes.len() != node.outputs.len() {
                return Err(graph_err(format!(
                    "declares {} outputs, op produces {}",
                    node.outputs.len(),
                    out_shapes.len()
                )));
            }
            let packed = ops::packed_out_features(&node.attrs).map_err(&graph_err)?;
            let op = specialize(op, &mut node_inputs, packed, &initializers, bundle, device)
                .map_err(&graph_err)?;
            let mut outputs = Vec::with_capacity(node.outputs.len());
            for (out_name, shape) in node.outputs.iter().zip(out_shapes) {
                if slots.contains_key(out_name) || bundle.tensor(out_name).is_some() {
                    return Err(graph_err(format!("output `{out_name}` is already defined")));
                }
                let slot = shapes.len();
                slots.insert(out_name.clone(), slot);
                shapes.push(shape);
                outputs.push(slot);
            }
            nodes.push(Node { name, op, inputs: node_inputs, outputs });
        }

        let mut output_slots = Vec::new();
        for (i, out) in spec.outputs.iter().enumerate() {
            let slot = *slots.get(&out.name).ok_or_else(|| {
                Error::manifest(
                    format!("graph.outputs[{i}]"),
                    format!("`{}` is not produced by any node", out.name),
                )
            })?;
            output_slots.push(slot);
        }
        let output_width = match shapes[output_slots[0]].as_slice() {
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

        let mut graph = Graph {
            nodes,
            slot_count: shapes.len(),
            inputs,
            output_slots,
            output_width,
            constants: Vec::new(),
            release_after: Vec::new(),
            row_wise: false,
        };
        fuse_activations(&mut graph);
        mark_relu_inputs(&mut graph);
        fuse_residual_layernorm(&mut graph);
        graph.constants = materialize_constants(&graph, &initializers, bundle, device)?;
        graph.release_after = release_plan(&graph);
        graph.row_wise = graph.is_row_wise();
        Ok(graph)
    }
}

/// Loads, as candle tensors, the initializers that generic ops still read.
fn materialize_constants(
    graph: &Graph,
    initializers: &HashMap<usize, String>,
    bundle: &Bundle,
    device: &Device,
) -> Result<Vec<(usize, Tensor)>> {
    let mut used: Vec<usize> = graph.nodes.iter().flat_map(|n| n.inputs.iter().copied()).collect();
    used.retain(|s| initializers.contains_key(s));
    used.sort_unstable();
    used.dedup();
    used.into_iter()
        .map(|slot| {
            let name = &initializers[&slot];
            let view = bundle
                .tensor(name)
                .ok_or_else(|| Error::TensorMissing { name: name.clone(), needed_by: "the graph".into() })?;
            let values = view.to_f32_vec()?;
            let tensor = Tensor::from_vec(values, view.shape.to_vec(), device)
                .map_err(Error::backend(format!("loading `{name}`")))?;
            Ok((slot, tensor))
        })
        .collect()
}

/// The f32 values of constant `slot`, or `None` if it is not an initializer.
fn constant(
    slot: usize,
    initializers: &HashMap<usize, String>,
    bundle: &Bundle,
) -> Option<Result<crate::format::F32Data, String>> {
    let name = initializers.get(&slot)?;
    Some(bundle.f32_data(name)?.map_err(|e| format!("initializer `{name}`: {e}")))
}

/// Binds constant inputs into kernels (dropping them from `inputs`) where the op has one.
fn specialize(
    op: Op,
    inputs: &mut Vec<usize>,
    packed: Option<usize>,
    inits: &HashMap<usize, String>,
    bundle: &Bundle,
    device: &Device,
) -> Result<Op, String> {
    let shape_of =
        |slot: usize| inits.get(&slot).and_then(|n| bundle.tensor_entries().get(n)).map(|e| e.shape.clone());
    let vec_of = |slot: usize| -> Option<Result<Vec<f32>, String>> {
        Some(constant(slot, inits, bundle)?.map(|d| d.as_slice().to_vec()))
    };
    Ok(match op {
        // The fused linear kernel is CPU code; on other devices candle's matmul runs it.
        Op::Linear | Op::Gemm { alpha: 1.0, beta: 1.0, trans_a: false, .. } if device.is_cpu() => {
            let transpose = matches!(op, Op::Gemm { trans_b: false, .. });
            let Some(weight) = constant(inputs[1], inits, bundle).transpose()? else { return Ok(op) };
            let bias = match inputs.get(2) {
                Some(&b) => match vec_of(b).transpose()? {
                    Some(v) => Some(v),
                    None => return Ok(op),
                },
                None => None,
            };
            let dims = shape_of(inputs[1]).unwrap_or_default();
            let kernel = match (packed, dims.as_slice()) {
                (Some(m), [_, k, 16]) => {
                    let w = PackedWeight::from_packed(weight, m, *k)
                        .ok_or("packed weight has the wrong length")?;
                    LinearKernel::from_packed(w, bias, Act::Identity)
                }
                (None, [r, c]) => {
                    let (m, k) = if transpose { (*c, *r) } else { (*r, *c) };
                    let values = weight.as_slice();
                    let w: Vec<f32> = if transpose {
                        (0..m).flat_map(|j| (0..k).map(move |p| values[p * m + j])).collect()
                    } else {
                        values.to_vec()
                    };
                    LinearKernel::new(w, bias, m, k, Act::Identity)
                }
                _ => return Ok(op),
            };
            if let Some(b) = kernel.bias_len() {
                if b != kernel.out_features() {
                    return Err(format!("bias has {b} values for {} outputs", kernel.out_features()));
                }
            }
            inputs.truncate(1);
            Op::LinearConst(kernel)
        }
        Op::Gather => {
            let table = constant(inputs[0], inits, bundle)
                .ok_or("the table of a Gather must be a stored tensor")??;
            let dims = shape_of(inputs[0]).unwrap_or_default();
            let [rows, dim] = dims.as_slice() else { return Err("the table must be 2-D".into()) };
            let embedding = Embedding { table, rows: *rows, dim: *dim };
            inputs.remove(0);
            Op::EmbeddingConst(embedding)
        }
        Op::LayerNorm { eps } => {
            let gamma = vec_of(inputs[1]).ok_or("LayerNorm gamma must be a stored tensor")??;
            let beta = vec_of(inputs[2]).ok_or("LayerNorm beta must be a stored tensor")??;
            inputs.truncate(1);
            Op::LayerNormConst(LayerNorm::new(gamma, beta, eps))
        }
        Op::MultiHeadAttention { heads } => Op::Attention(Attention { heads }),
        Op::SequencePool { mode } => Op::Pool(SequencePool { mode }),
        other => other,
    })
}

/// Fuses `Add(a, b)` followed by a `LayerNorm` of its result into one row pass.
fn fuse_residual_layernorm(graph: &mut Graph) {
    let mut i = 0;
    while i + 1 < graph.nodes.len() {
        let produced = graph.nodes[i].outputs.first().copied();
        let fusable = matches!(graph.nodes[i].op, Op::Add)
            && matches!(graph.nodes[i + 1].op, Op::LayerNormConst(_))
            && produced.is_some_and(|p| graph.nodes[i + 1].inputs == [p] && readers(graph, p) == 1);
        if fusable {
            let next = graph.nodes.remove(i + 1);
            let node = &mut graph.nodes[i];
            if let Op::LayerNormConst(ln) = next.op {
                node.op = Op::AddLayerNormConst(AddLayerNorm(ln));
            }
            node.outputs = next.outputs;
            node.name = format!("{}+{}", node.name, next.name);
        }
        i += 1;
    }
}

/// Number of nodes and graph outputs reading `slot`.
fn readers(g: &Graph, slot: usize) -> usize {
    g.nodes.iter().flat_map(|n| &n.inputs).filter(|&&s| s == slot).count()
        + g.output_slots.iter().filter(|&&s| s == slot).count()
}

/// Folds an activation node into the preceding fused linear kernel when nothing else reads
/// the intermediate tensor.
fn fuse_activations(graph: &mut Graph) {
    let mut i = 0;
    while i + 1 < graph.nodes.len() {
        let act = match graph.nodes[i + 1].op {
            Op::Relu => Some(Act::Relu),
            Op::Tanh => Some(Act::Tanh),
            Op::Sigmoid => Some(Act::Sigmoid),
            Op::Gelu => Some(Act::Gelu),
            _ => None,
        };
        let fusable = matches!(&graph.nodes[i].op, Op::LinearConst(k) if k.act() == Act::Identity) && {
            let produced = graph.nodes[i].outputs[0];
            graph.nodes[i + 1].inputs == [produced] && readers(graph, produced) == 1
        };
        if let (true, Some(act)) = (fusable, act) {
            let next = graph.nodes.remove(i + 1);
            let node = &mut graph.nodes[i];
            if let Op::LinearConst(k) = &node.op {
                node.op = Op::LinearConst(k.with_act(act));
            }
            node.outputs = next.outputs;
            node.name = format!("{}+{}", node.name, next.name);
        }
        i += 1;
    }
}

/// Marks each fused linear layer whose input is a ReLU's output, so its GEMM may skip that
/// input's zeros (the sparse path of `kernels::gemm`).
fn mark_relu_inputs(graph: &mut Graph) {
    let relu_outputs: Vec<usize> = graph
        .nodes
        .iter()
        .filter(|n| matches!(&n.op, Op::Relu) || matches!(&n.op, Op::LinearConst(k) if k.act() == Act::Relu))
        .filter_map(|n| n.outputs.first().copied())
        .collect();
    for node in &mut graph.nodes {
        if let Op::LinearConst(k) = &node.op {
            if node.inputs.first().is_some_and(|i| relu_outputs.contains(i)) {
                node.op = Op::LinearConst(k.with_relu_input());
            }
        }
    }
}

/// For each node, the slots it is the last reader of (never graph outputs or constants).
fn release_plan(graph: &Graph) -> Vec<Vec<usize>> {
    let mut last = vec![None; graph.slot_count];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &s in &node.inputs {
            last[s] = Some(i);
        }
    }
    let keep: Vec<usize> =
        graph.output_slots.iter().copied().chain(graph.constants.iter().map(|c| c.0)).collect();
    let mut plan = vec![Vec::new(); graph.nodes.len()];
    for (slot, node) in last.into_iter().enumerate() {
        if let Some(node) = node {
            if !keep.contains(&slot) {
                plan[node].push(slot);
            }
        }
    }
    plan
}
