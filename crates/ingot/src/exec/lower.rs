//! Lowering a validated [`Graph`] to a [`CpuPlan`]: binding stored weights into kernels, fusing
//! activations and residual adds, marking ReLU-fed layers, and planning when each value dies.
//!
//! Each rewrite is a local pass over the steps; none changes what the graph computes.

use super::cpu::{Constant, CpuPlan, Kernel, Step};
use crate::error::{Error, Result};
use crate::format::{Bundle, DType};
use crate::graph::{Graph, Node, Op, PoolMode, WeightLayout};
use crate::kernels::activation::Act;
use crate::kernels::attention::Attention;
use crate::kernels::elementwise::Binary;
use crate::kernels::embedding::Embedding;
use crate::kernels::gemm::PackedWeight;
use crate::kernels::hgemm::{Half, HalfWeight};
use crate::kernels::isa::Isa;
use crate::kernels::layernorm::LayerNorm;
use crate::kernels::linear::LinearKernel;
use crate::kernels::pool::SequencePool;
use crate::kernels::qgemm::QuantWeight;
use crate::kernels::trees::Forest;
use crate::storage::F32Data;

/// Lowers `graph` for the CPU, reading stored tensors from `bundle`.
pub(crate) fn lower(graph: &Graph, bundle: &Bundle, isa: Isa) -> Result<CpuPlan> {
    let mut steps = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let err =
            |detail: String| Error::Graph { node: node.name.clone(), op: format!("{:?}", node.op), detail };
        let (kernel, inputs) = bind(node, graph, bundle, isa).map_err(err)?;
        steps.push(Step { name: node.name.clone(), kernel, inputs, output: node.outputs[0] });
    }
    let mut plan = CpuPlan {
        steps,
        slot_count: graph.values.len(),
        inputs: graph.inputs.iter().map(|i| (i.value, i.integer)).collect(),
        outputs: graph.outputs.clone(),
        output_width: graph.output_width,
        constants: Vec::new(),
        release_after: Vec::new(),
        row_wise: false,
        isa,
        observer: None,
    };
    fuse_activations(&mut plan);
    mark_relu_inputs(&mut plan);
    fuse_residual_layernorm(&mut plan, graph);
    plan.constants = constants(&plan, graph, bundle)?;
    plan.release_after = release_plan(&plan);
    plan.row_wise = is_row_wise(&plan, graph);
    Ok(plan)
}

/// The f32 values of stored tensor `v` (borrowed in place when the file allows).
fn stored(graph: &Graph, bundle: &Bundle, v: usize) -> Result<F32Data, String> {
    let name = &graph.values[v].name;
    bundle
        .f32_data(name)
        .ok_or_else(|| format!("stored tensor `{name}` is not in the file"))?
        .map_err(|e| format!("stored tensor `{name}`: {e}"))
}

/// An int8 embedding table as f32 (`q · scale` per row): the file keeps a quarter of the
/// bytes, the lookups read f32 rows as for any table.
fn dequantized_table(
    graph: &Graph,
    bundle: &Bundle,
    v: usize,
    scale: &str,
    dim: usize,
) -> Result<F32Data, String> {
    let name = &graph.values[v].name;
    let view = bundle.tensor(name).ok_or_else(|| format!("stored tensor `{name}` is not in the file"))?;
    let scales = positive_scales(bundle, scale, "weight scales")?;
    Ok(super::dequantize_int8(view.data, dim, scales.as_slice(), None).into())
}

/// The stored scales `name`, every one finite and positive.
fn positive_scales(bundle: &Bundle, name: &str, what: &str) -> Result<F32Data, String> {
    let scales = bundle
        .f32_data(name)
        .ok_or_else(|| format!("{what} `{name}` are not in the file"))?
        .map_err(|e| format!("{what} `{name}`: {e}"))?;
    if let Some(bad) = scales.as_slice().iter().position(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(format!("{what} `{name}`: value {bad} is not a positive number"));
    }
    Ok(scales)
}

/// The stored bias of a linear layer: `m` values, or `None` when the node has no bias.
/// `Err(None)` when the bias is computed at predict time (the layer stays generic).
fn stored_bias(
    graph: &Graph,
    bundle: &Bundle,
    node: &Node,
    m: usize,
) -> Result<Option<Vec<f32>>, Option<String>> {
    let Some(&b) = node.inputs.get(2) else { return Ok(None) };
    if !graph.is_initializer(b) {
        return Err(None);
    }
    let values = stored(graph, bundle, b).map_err(Some)?.as_slice().to_vec();
    if values.len() != m {
        return Err(None);
    }
    Ok(Some(values))
}

/// The kernel of a `Linear` whose stored weight is int8, f16 or bf16 (`None` for f32 weights).
///
/// The weights are packed here, once, into the layout their kernel reads; the bias stays f32.
fn reduced_precision(
    graph: &Graph,
    bundle: &Bundle,
    node: &Node,
    (scale, input_scale): (Option<&str>, Option<&str>),
    isa: Isa,
) -> Result<Option<LinearKernel>, String> {
    let name = &graph.values[node.inputs[1]].name;
    let view = bundle.tensor(name).ok_or_else(|| format!("stored tensor `{name}` is not in the file"))?;
    let (dtype, shape) = (view.dtype, view.shape);
    if !matches!(dtype, DType::I8 | DType::F16 | DType::BF16) {
        return Ok(None);
    }
    let &[m, k] = shape else {
        return Err(format!("{} weight `{name}` must be 2-D [out, in], got {shape:?}", dtype.name()));
    };
    let bias = match stored_bias(graph, bundle, node, m) {
        Ok(bias) => bias,
        Err(Some(e)) => return Err(e),
        Err(None) => return Err(format!("the bias of {} weight `{name}` must be stored", dtype.name())),
    };
    let kernel = match dtype {
        DType::I8 => {
            let scale = scale.ok_or_else(|| format!("int8 weight `{name}` has no `weight_scale`"))?;
            let scales = positive_scales(bundle, scale, "weight scales")?;
            let q: Vec<i8> = view.data.iter().map(|&b| b as i8).collect();
            let w = QuantWeight::pack(&q, scales.as_slice(), m, k).map_err(|e| format!("`{name}`: {e}"))?;
            let input_scale = input_scale.map(|s| positive_scales(bundle, s, "input scales")).transpose()?;
            LinearKernel::int8(isa, w, input_scale.map(|s| s.as_slice().to_vec()), bias, Act::Identity)
        }
        _ => {
            let kind = if dtype == DType::F16 { Half::F16 } else { Half::Bf16 };
            let bits: Vec<u16> =
                view.data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            let w = HalfWeight::pack(&bits, kind, m, k).map_err(|e| format!("`{name}`: {e}"))?;
            LinearKernel::half(isa, w, bias, Act::Identity)
        }
    };
    Ok(Some(kernel))
}

/// The kernel for one node and the values it still reads at predict time.
fn bind(node: &Node, graph: &Graph, bundle: &Bundle, isa: Isa) -> Result<(Kernel, Vec<usize>), String> {
    let inputs = node.inputs.clone();
    let dims = |v: usize| graph.values[v].shape.iter().map(|d| d.fixed()).collect::<Option<Vec<usize>>>();
    let kernel = match &node.op {
        Op::Linear { layout, scale, input_scale } if graph.is_initializer(inputs[1]) => {
            let scales = (scale.as_deref(), input_scale.as_deref());
            if let Some(kernel) = reduced_precision(graph, bundle, node, scales, isa)? {
                return Ok((Kernel::Linear(kernel), vec![inputs[0]]));
            }
            let weight = stored(graph, bundle, inputs[1])?;
            let shape = dims(inputs[1]).unwrap_or_default();
            let (m, k) = match (layout, shape.as_slice()) {
                (WeightLayout::Packed16 { out_features }, [_, k, _]) => (*out_features, *k),
                (WeightLayout::Rows, [m, k]) => (*m, *k),
                _ => return Err(format!("weight shape {shape:?} does not suit {layout:?}")),
            };
            let bias = match stored_bias(graph, bundle, node, m) {
                Ok(bias) => bias,
                Err(Some(e)) => return Err(e),
                Err(None) => return Ok((Kernel::LinearDynamic { layout: *layout }, inputs)),
            };
            let kernel = match layout {
                WeightLayout::Packed16 { .. } => {
                    let w = PackedWeight::from_packed(weight, m, k)
                        .ok_or("packed weight has the wrong length")?;
                    LinearKernel::from_packed(isa, w, bias, Act::Identity)
                }
                WeightLayout::Rows => {
                    LinearKernel::new(isa, weight.as_slice().to_vec(), bias, m, k, Act::Identity)
                }
            };
            return Ok((Kernel::Linear(kernel), vec![inputs[0]]));
        }
        Op::Linear { layout, .. } => Kernel::LinearDynamic { layout: *layout },
        // `x · B + C` with a stored B and a bias-shaped C is a linear layer with weight Bᵀ.
        Op::Gemm { alpha, beta, trans_a: false, trans_b }
            if *alpha == 1.0 && *beta == 1.0 && graph.is_initializer(inputs[1]) =>
        {
            let shape = dims(inputs[1]).unwrap_or_default();
            let [r, c] = shape.as_slice() else { return Err("B must be 2-D".into()) };
            let (m, k) = if *trans_b { (*r, *c) } else { (*c, *r) };
            match stored_bias(graph, bundle, node, m) {
                Ok(bias) => {
                    let b = stored(graph, bundle, inputs[1])?;
                    let w = if *trans_b { b.as_slice().to_vec() } else { transpose(b.as_slice(), k, m) };
                    return Ok((
                        Kernel::Linear(LinearKernel::new(isa, w, bias, m, k, Act::Identity)),
                        vec![inputs[0]],
                    ));
                }
                Err(Some(e)) => return Err(e),
                Err(None) => Kernel::Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: *trans_b },
            }
        }
        Op::Gemm { alpha, beta, trans_a, trans_b } => {
            Kernel::Gemm { alpha: *alpha, beta: *beta, trans_a: *trans_a, trans_b: *trans_b }
        }
        Op::MatMul if graph.is_initializer(inputs[1]) => {
            let shape = dims(inputs[1]).unwrap_or_default();
            let [k, m] = shape.as_slice() else { return Err("B must be 2-D".into()) };
            let b = stored(graph, bundle, inputs[1])?;
            let w = transpose(b.as_slice(), *k, *m);
            return Ok((
                Kernel::Linear(LinearKernel::new(isa, w, None, *m, *k, Act::Identity)),
                vec![inputs[0]],
            ));
        }
        Op::MatMul => Kernel::MatMul,
        Op::Add => Kernel::Binary(Binary::Add),
        Op::Sub => Kernel::Binary(Binary::Sub),
        Op::Mul => Kernel::Binary(Binary::Mul),
        Op::Div => Kernel::Binary(Binary::Div),
        Op::Relu => Kernel::Unary(Act::Relu),
        Op::Tanh => Kernel::Unary(Act::Tanh),
        Op::Sigmoid => Kernel::Unary(Act::Sigmoid),
        Op::Gelu => Kernel::Unary(Act::Gelu),
        Op::Identity => Kernel::Unary(Act::Identity),
        Op::Softmax { axis } => Kernel::Softmax { axis: *axis },
        Op::Concat { axis } => Kernel::Concat { axis: *axis },
        Op::Reshape { shape } => Kernel::Reshape { shape: shape.clone() },
        Op::Gather { scale } => {
            let shape = dims(inputs[0]).unwrap_or_default();
            let [rows, dim] = shape.as_slice() else { return Err("the table must be 2-D".into()) };
            let table = match scale {
                Some(scale) => dequantized_table(graph, bundle, inputs[0], scale, *dim)?,
                None => stored(graph, bundle, inputs[0])?,
            };
            return Ok((Kernel::Embedding(Embedding { table, rows: *rows, dim: *dim }), vec![inputs[1]]));
        }
        Op::LayerNorm { eps } => {
            let gamma = stored(graph, bundle, inputs[1])?.as_slice().to_vec();
            let beta = stored(graph, bundle, inputs[2])?.as_slice().to_vec();
            let ln = LayerNorm::new(gamma, beta, *eps);
            return Ok((Kernel::LayerNorm { ln, residual: false }, vec![inputs[0]]));
        }
        Op::MultiHeadAttention { heads } => Kernel::Attention(Attention { heads: *heads, isa }),
        Op::SequencePool { mode } => Kernel::Pool(match mode {
            PoolMode::Mean => SequencePool::Mean,
            PoolMode::Cls => SequencePool::Cls,
            PoolMode::Max => SequencePool::Max,
        }),
        Op::L2Normalize => Kernel::L2Normalize,
        Op::TreeEnsemble(attrs) => {
            let width = graph.values[inputs[0]].shape.get(1).and_then(|d| d.fixed()).unwrap_or(0);
            let views = inputs[1..]
                .iter()
                .map(|&v| {
                    let name = &graph.values[v].name;
                    bundle.tensor(name).ok_or_else(|| format!("stored tensor `{name}` is not in the file"))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let ensemble = crate::trees::from_tensors(attrs, width, &views)?;
            return Ok((Kernel::Trees(Box::new(Forest::pack(&ensemble))), vec![inputs[0]]));
        }
    };
    Ok((kernel, inputs))
}

/// Row-major `[cols, rows]` transpose of a `[rows, cols]` matrix.
pub(super) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).flat_map(|j| (0..rows).map(move |i| values[i * cols + j])).collect()
}

/// Number of steps and plan outputs reading value `v`.
fn readers(plan: &CpuPlan, v: usize) -> usize {
    plan.steps.iter().flat_map(|s| &s.inputs).filter(|&&i| i == v).count()
        + plan.outputs.iter().filter(|&&o| o == v).count()
}

/// Folds an activation step into the preceding linear kernel when nothing else reads the
/// intermediate value.
fn fuse_activations(plan: &mut CpuPlan) {
    let mut i = 0;
    while i + 1 < plan.steps.len() {
        let act = match plan.steps[i + 1].kernel {
            Kernel::Unary(act @ (Act::Relu | Act::Tanh | Act::Sigmoid | Act::Gelu)) => Some(act),
            _ => None,
        };
        let produced = plan.steps[i].output;
        let fusable = matches!(&plan.steps[i].kernel, Kernel::Linear(k) if k.act() == Act::Identity)
            && plan.steps[i + 1].inputs == [produced]
            && readers(plan, produced) == 1;
        if let (true, Some(act)) = (fusable, act) {
            let next = plan.steps.remove(i + 1);
            let step = &mut plan.steps[i];
            if let Kernel::Linear(k) = &step.kernel {
                step.kernel = Kernel::Linear(k.with_act(act));
            }
            step.output = next.output;
            step.name = format!("{}+{}", step.name, next.name);
        }
        i += 1;
    }
}

/// Marks each linear kernel whose input is a ReLU's output, so its GEMM may skip that input's
/// zeros (the sparse path of `kernels::gemm`).
fn mark_relu_inputs(plan: &mut CpuPlan) {
    let relu_outputs: Vec<usize> = plan
        .steps
        .iter()
        .filter(|s| match &s.kernel {
            Kernel::Unary(Act::Relu) => true,
            Kernel::Linear(k) => k.act() == Act::Relu,
            _ => false,
        })
        .map(|s| s.output)
        .collect();
    for step in &mut plan.steps {
        if let Kernel::Linear(k) = &step.kernel {
            if step.inputs.first().is_some_and(|i| relu_outputs.contains(i)) {
                step.kernel = Kernel::Linear(k.with_relu_input());
            }
        }
    }
}

/// Fuses `Add(a, b)` of two same-shaped values followed by a `LayerNorm` of its result into one
/// row pass.
fn fuse_residual_layernorm(plan: &mut CpuPlan, graph: &Graph) {
    let mut i = 0;
    while i + 1 < plan.steps.len() {
        let produced = plan.steps[i].output;
        let same_shapes = match plan.steps[i].inputs.as_slice() {
            &[a, b] => graph.values[a].shape == graph.values[b].shape,
            _ => false,
        };
        let fusable = matches!(plan.steps[i].kernel, Kernel::Binary(Binary::Add))
            && same_shapes
            && matches!(plan.steps[i + 1].kernel, Kernel::LayerNorm { residual: false, .. })
            && plan.steps[i + 1].inputs == [produced]
            && readers(plan, produced) == 1;
        if fusable {
            let next = plan.steps.remove(i + 1);
            let step = &mut plan.steps[i];
            if let Kernel::LayerNorm { ln, .. } = next.kernel {
                step.kernel = Kernel::LayerNorm { ln, residual: true };
            }
            step.output = next.output;
            step.name = format!("{}+{}", step.name, next.name);
        }
        i += 1;
    }
}

/// The stored tensors that steps still read as values (operands of generic ops).
fn constants(plan: &CpuPlan, graph: &Graph, bundle: &Bundle) -> Result<Vec<(usize, Constant)>> {
    let mut used: Vec<usize> = plan.steps.iter().flat_map(|s| s.inputs.iter().copied()).collect();
    used.retain(|&v| graph.is_initializer(v));
    used.sort_unstable();
    used.dedup();
    used.into_iter()
        .map(|v| {
            let info = &graph.values[v];
            let data = stored(graph, bundle, v).map_err(|detail| Error::Graph {
                node: "<constants>".into(),
                op: "load".into(),
                detail,
            })?;
            let shape = info.shape.iter().map(|d| d.fixed().unwrap_or(0)).collect();
            Ok((v, Constant { data, shape }))
        })
        .collect()
}

/// For each step, the values it is the last reader of (never plan outputs or constants).
fn release_plan(plan: &CpuPlan) -> Vec<Vec<usize>> {
    let mut last = vec![None; plan.slot_count];
    for (i, step) in plan.steps.iter().enumerate() {
        for &v in &step.inputs {
            last[v] = Some(i);
        }
    }
    let keep: Vec<usize> = plan.outputs.iter().copied().chain(plan.constants.iter().map(|c| c.0)).collect();
    let mut release = vec![Vec::new(); plan.steps.len()];
    for (v, step) in last.into_iter().enumerate() {
        if let Some(step) = step {
            if !keep.contains(&v) {
                release[step].push(v);
            }
        }
    }
    release
}

/// Whether the plan maps each row of its single `[rows, width]` input to the same row of every
/// output: linear kernels, element-wise activations, softmax and L2 normalization along the
/// features, and arithmetic with a constant that does not vary by row (rank ≤ 1, or a leading
/// dimension of 1). Such a plan may run a tall batch in independent chunks of rows.
fn is_row_wise(plan: &CpuPlan, graph: &Graph) -> bool {
    let constant_per_row = |v: usize| {
        plan.constants
            .iter()
            .find(|(c, _)| *c == v)
            .map(|(_, c)| matches!(c.shape.as_slice(), [] | [_] | [1, ..]))
    };
    let per_row = |step: &Step| match &step.kernel {
        Kernel::Linear(_) | Kernel::Unary(_) | Kernel::L2Normalize => true,
        Kernel::Softmax { axis } => *axis == 1,
        Kernel::Binary(_) => match step.inputs.as_slice() {
            &[a, b] => match (constant_per_row(a), constant_per_row(b)) {
                (None, Some(fixed)) | (Some(fixed), None) => fixed,
                _ => false,
            },
            _ => false,
        },
        _ => false,
    };
    graph.input_width().is_some() && plan.steps.iter().all(per_row)
}
