//! The op graph (opset 1): validation and shape inference at load, producing a [`Graph`]
//! that [`crate::exec`] runs. A `Graph` only exists once every check has passed.

mod ops;
mod shape;

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::format::{Bundle, GraphSpec};
use crate::kernels::activation::Act;
use crate::kernels::linear::LinearKernel;

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

/// A validated graph ready to run: tensors are numbered slots, constants preloaded.
#[derive(Debug)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) slot_count: usize,
    pub(crate) input_slot: usize,
    /// Width of the single 2-D graph input (`[-1, width]`).
    pub(crate) input_width: usize,
    pub(crate) output_slots: Vec<usize>,
    pub(crate) output_width: usize,
    pub(crate) constants: Vec<(usize, Tensor)>,
    /// Slots whose last reader is node `i`: freed after it runs.
    pub(crate) release_after: Vec<Vec<usize>>,
}

impl Graph {
    /// Validates `spec` against the tensors in `bundle` and prepares it for `device`.
    pub(crate) fn compile(spec: &GraphSpec, bundle: &Bundle, device: &Device) -> Result<Graph> {
        if spec.opset > OPSET || spec.opset == 0 {
            return Err(Error::manifest(
                "graph.opset",
                format!(
                    "opset {} is not supported (this build implements opset 1..={OPSET})",
                    spec.opset
                ),
            ));
        }
        let [input] = spec.inputs.as_slice() else {
            return Err(Error::manifest(
                "graph.inputs",
                "opset 1 graphs take exactly one input",
            ));
        };
        let input_width = match input.shape.as_slice() {
            [-1, w] if *w > 0 => *w as usize,
            other => {
                return Err(Error::manifest(
                    "graph.inputs[0].shape",
                    format!("expected [-1, width], got {other:?}"),
                ))
            }
        };
        if spec.outputs.is_empty() {
            return Err(Error::manifest("graph.outputs", "the graph has no outputs"));
        }

        let mut slots: HashMap<String, usize> = HashMap::new();
        let mut shapes: Vec<Shape> = Vec::new();
        let mut constants = Vec::new();
        let mut const_values: HashMap<usize, (Vec<f32>, Vec<usize>)> = HashMap::new();
        slots.insert(input.name.clone(), 0);
        shapes.push(vec![Dim::Var, Dim::Fixed(input_width)]);

        let mut nodes = Vec::with_capacity(spec.nodes.len());
        for (index, node) in spec.nodes.iter().enumerate() {
            let name = node
                .name
                .clone()
                .unwrap_or_else(|| format!("{}_{index}", node.op));
            let mut inputs = Vec::with_capacity(node.inputs.len());
            for input_name in &node.inputs {
                let slot = match slots.get(input_name) {
                    Some(&s) => s,
                    None => {
                        let view =
                            bundle
                                .tensor(input_name)
                                .ok_or_else(|| Error::TensorMissing {
                                    name: input_name.clone(),
                                    needed_by: format!("graph node `{name}`"),
                                })?;
                        let values = view.to_f32_vec().map_err(|e| Error::Graph {
                            node: name.clone(),
                            op: node.op.clone(),
                            detail: format!("initializer `{input_name}`: {e}"),
                        })?;
                        let dims = view.shape.to_vec();
                        let tensor = Tensor::from_vec(values.clone(), dims.clone(), device)
                            .map_err(Error::backend(format!("loading `{input_name}`")))?;
                        let slot = shapes.len();
                        slots.insert(input_name.clone(), slot);
                        shapes.push(dims.iter().map(|&d| Dim::Fixed(d)).collect());
                        constants.push((slot, tensor));
                        const_values.insert(slot, (values, dims));
                        slot
                    }
                };
                inputs.push(slot);
            }
            let in_shapes: Vec<&Shape> = inputs.iter().map(|&s| &shapes[s]).collect();
            let graph_err = |detail: String| Error::Graph {
                node: name.clone(),
                op: node.op.clone(),
                detail,
            };
            let (op, out_shapes) =
                ops::build(&node.op, &node.attrs, &in_shapes).map_err(graph_err)?;
            if out_shapes.len() != node.outputs.len() {
                return Err(Error::Graph {
                    node: name,
                    op: node.op.clone(),
                    detail: format!(
                        "declares {} outputs, op produces {}",
                        node.outputs.len(),
                        out_shapes.len()
                    ),
                });
            }
            let op = specialize(op, &inputs, &const_values);
            let mut outputs = Vec::with_capacity(node.outputs.len());
            for (out_name, shape) in node.outputs.iter().zip(out_shapes) {
                if slots.contains_key(out_name) || bundle.tensor(out_name).is_some() {
                    return Err(Error::Graph {
                        node: name,
                        op: node.op.clone(),
                        detail: format!("output `{out_name}` is already defined"),
                    });
                }
                let slot = shapes.len();
                slots.insert(out_name.clone(), slot);
                shapes.push(shape);
                outputs.push(slot);
            }
            nodes.push(Node {
                name,
                op,
                inputs,
                outputs,
            });
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
                    format!("the first output must be 2-D [rows, width] with a fixed width, inferred {other:?}"),
                ))
            }
        };

        let mut graph = Graph {
            nodes,
            slot_count: shapes.len(),
            input_slot: 0,
            input_width,
            output_slots,
            output_width,
            constants,
            release_after: Vec::new(),
        };
        fuse_activations(&mut graph);
        graph.release_after = release_plan(&graph);
        Ok(graph)
    }
}

/// Turns a `Linear`/`Gemm` with constant weights into the fused CPU kernel.
fn specialize(op: Op, inputs: &[usize], consts: &HashMap<usize, (Vec<f32>, Vec<usize>)>) -> Op {
    let weight_bias = |w: usize, b: Option<usize>, transpose: bool| -> Option<LinearKernel> {
        let (values, dims) = consts.get(&w)?;
        let [r, c] = dims.as_slice() else { return None };
        let (m, k) = if transpose { (*c, *r) } else { (*r, *c) };
        let weight = if transpose {
            (0..m)
                .flat_map(|j| (0..k).map(move |p| values[p * m + j]))
                .collect()
        } else {
            values.clone()
        };
        let bias = match b {
            None => None,
            Some(b) => {
                let (bv, bd) = consts.get(&b)?;
                if bd.as_slice() != [m] && bd.as_slice() != [1, m] {
                    return None;
                }
                Some(bv.clone())
            }
        };
        Some(LinearKernel::new(weight, bias, m, k, Act::Identity))
    };
    match op {
        Op::Linear => match weight_bias(inputs[1], inputs.get(2).copied(), false) {
            Some(kernel) => Op::LinearConst(kernel),
            None => Op::Linear,
        },
        Op::Gemm {
            alpha,
            beta,
            trans_a: false,
            trans_b,
        } if alpha == 1.0 && beta == 1.0 => {
            match weight_bias(inputs[1], inputs.get(2).copied(), !trans_b) {
                Some(kernel) => Op::LinearConst(kernel),
                None => op,
            }
        }
        other => other,
    }
}

/// Folds an activation node into the preceding fused linear kernel when nothing else reads
/// the intermediate tensor.
fn fuse_activations(graph: &mut Graph) {
    let readers = |g: &Graph, slot: usize| -> usize {
        g.nodes
            .iter()
            .flat_map(|n| &n.inputs)
            .filter(|&&s| s == slot)
            .count()
            + g.output_slots.iter().filter(|&&s| s == slot).count()
    };
    let mut i = 0;
    while i + 1 < graph.nodes.len() {
        let act = match graph.nodes[i + 1].op {
            Op::Relu => Some(Act::Relu),
            Op::Tanh => Some(Act::Tanh),
            Op::Sigmoid => Some(Act::Sigmoid),
            _ => None,
        };
        let fusable = matches!(&graph.nodes[i].op, Op::LinearConst(k) if k.act() == Act::Identity)
            && {
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

/// For each node, the slots it is the last reader of (never graph outputs or constants).
fn release_plan(graph: &Graph) -> Vec<Vec<usize>> {
    let mut last = vec![None; graph.slot_count];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &s in &node.inputs {
            last[s] = Some(i);
        }
    }
    let keep: Vec<usize> = graph
        .output_slots
        .iter()
        .copied()
        .chain(graph.constants.iter().map(|c| c.0))
        .collect();
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
