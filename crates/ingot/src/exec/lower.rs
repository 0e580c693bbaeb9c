//! Lowering a validated [`Graph`] to a [`CpuPlan`]: binding stored weights into kernels, fusing
//! activations and residual adds, marking ReLU-fed layers, and planning when each value dies.
//!
//! Each rewrite is a local pass over the steps; none changes what the graph computes.

use super::cpu::{Constant, CpuPlan, Kernel, Step};
use crate::error::{Error, Result};
use crate::format::{Bundle, DType};
use crate::graph::{
    CoordMode, Dim, Graph, NearestMode, Node, NormKind, Op, PadMode, PoolMode, ReduceKind, ResizeAttrs,
    Shape, WeightLayout, Window,
};
use crate::kernels::activation::Act;
use crate::kernels::attention::Attention;
use crate::kernels::conv::Conv2d;
use crate::kernels::elementwise::Binary;
use crate::kernels::embedding::Embedding;
use crate::kernels::gemm::PackedWeight;
use crate::kernels::hgemm::{Half, HalfWeight};
use crate::kernels::isa::Isa;
use crate::kernels::layernorm::LayerNorm;
use crate::kernels::linear::LinearKernel;
use crate::kernels::pool::SequencePool;
use crate::kernels::pool2d::Pool2d;
use crate::kernels::qgemm::QuantWeight;
use crate::kernels::reduce::Reduce;
use crate::kernels::resize::{Coord, Interpolation, PadFill, Resize, Rounding};
use crate::kernels::tabular::Norm;
use crate::kernels::trees::Forest;
use crate::kernels::unary::Unary;
use crate::kernels::window;
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
    fuse_conv_residuals(&mut plan, graph);
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
        Op::MatMul if graph.is_initializer(inputs[1]) && graph.values[inputs[1]].shape.len() == 2 => {
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
        Op::Conv { window, group } => {
            let shape = dims(inputs[1]).unwrap_or_default();
            let shape = <[usize; 4]>::try_from(shape.as_slice()).map_err(|_| "the weight must be 4-D")?;
            let weight = stored(graph, bundle, inputs[1])?;
            let bias = inputs
                .get(2)
                .map(|&b| stored(graph, bundle, b).map(|d| d.as_slice().to_vec()))
                .transpose()?;
            let conv = Conv2d::new(isa, weight.as_slice(), bias, shape, *group, kernel_window(window))?;
            return Ok((Kernel::Conv { conv: Box::new(conv), window: *window }, vec![inputs[0]]));
        }
        Op::MaxPool { window, ceil_mode } => {
            Kernel::Pool2d { pool: Pool2d::Max, window: *window, ceil_mode: *ceil_mode }
        }
        Op::AveragePool { window, ceil_mode, count_include_pad } => Kernel::Pool2d {
            pool: Pool2d::Average { count_include_pad: *count_include_pad },
            window: *window,
            ceil_mode: *ceil_mode,
        },
        Op::GlobalAveragePool => Kernel::GlobalPool { max: false },
        Op::GlobalMaxPool => Kernel::GlobalPool { max: true },
        Op::Transpose { perm } => Kernel::Transpose { perm: perm.clone() },
        Op::LeakyRelu { alpha } => Kernel::Map(Unary::LeakyRelu(*alpha)),
        Op::Clip { min, max } => Kernel::Map(Unary::Clip { min: *min, max: *max }),
        Op::Exp => Kernel::Map(Unary::Exp),
        Op::Log => Kernel::Map(Unary::Log),
        Op::Sqrt => Kernel::Map(Unary::Sqrt),
        Op::Abs => Kernel::Map(Unary::Abs),
        Op::Neg => Kernel::Map(Unary::Neg),
        Op::Erf => Kernel::Map(Unary::Erf),
        Op::Reciprocal => Kernel::Map(Unary::Reciprocal),
        Op::HardSigmoid { alpha, beta } => Kernel::Map(Unary::HardSigmoid { alpha: *alpha, beta: *beta }),
        Op::HardSwish => Kernel::Map(Unary::HardSwish),
        Op::Softplus => Kernel::Map(Unary::Softplus),
        Op::Pow { exponent } => Kernel::Map(Unary::Pow(*exponent)),
        Op::LogSoftmax { axis } => Kernel::LogSoftmax { axis: *axis },
        Op::Reduce { kind, axes, keepdims } => {
            let op = match kind {
                ReduceKind::Mean => Reduce::Mean,
                ReduceKind::Sum => Reduce::Sum,
                ReduceKind::Max => Reduce::Max,
            };
            Kernel::Reduce { op, axes: axes.clone(), keepdims: *keepdims }
        }
        Op::Slice { axes } => Kernel::Slice { axes: axes.clone() },
        Op::Normalize { norm } => Kernel::Normalize(match norm {
            NormKind::L1 => Norm::L1,
            NormKind::L2 => Norm::L2,
            NormKind::Max => Norm::Max,
        }),
        Op::Pad { pads, mode } => {
            let fill = match mode {
                PadMode::Constant(v) => PadFill::Constant(*v),
                PadMode::Reflect => PadFill::Reflect,
                PadMode::Edge => PadFill::Edge,
            };
            Kernel::Pad { pads: pads.clone(), fill }
        }
        Op::Resize(r) => Kernel::Resize { resize: kernel_resize(r), sizes: r.sizes },
        Op::Impute => {
            let fill = stored(graph, bundle, inputs[1])?.as_slice().to_vec();
            if fill.is_empty() {
                return Err("the fill values are empty".into());
            }
            return Ok((Kernel::Impute { fill }, vec![inputs[0]]));
        }
    };
    Ok((kernel, inputs))
}

/// The kernels' form of a graph window.
pub(super) fn kernel_window(w: &Window) -> window::Window {
    window::Window { kernel: w.kernel, strides: w.strides, pads: w.pads, dilations: w.dilations }
}

/// The kernels' form of a graph `Resize`.
fn kernel_resize(r: &ResizeAttrs) -> Resize {
    let interpolation = match r.nearest {
        None => Interpolation::Linear,
        Some(NearestMode::RoundPreferFloor) => Interpolation::Nearest(Rounding::RoundPreferFloor),
        Some(NearestMode::RoundPreferCeil) => Interpolation::Nearest(Rounding::RoundPreferCeil),
        Some(NearestMode::Floor) => Interpolation::Nearest(Rounding::Floor),
        Some(NearestMode::Ceil) => Interpolation::Nearest(Rounding::Ceil),
    };
    let coord = match r.coord {
        CoordMode::HalfPixel => Coord::HalfPixel,
        CoordMode::Asymmetric => Coord::Asymmetric,
        CoordMode::AlignCorners => Coord::AlignCorners,
        CoordMode::PytorchHalfPixel => Coord::PytorchHalfPixel,
    };
    Resize { interpolation, coord, scales: r.scales }
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

/// Folds `Add(conv(x), r)` of two same-shaped values into the convolution, which then adds `r`
/// to each output while it is in cache (a residual block's sum), when nothing else reads the
/// convolution's output and `r` is computed before it. An activation of the sum then folds
/// into the same step ([`fuse_activations`]).
fn fuse_conv_residuals(plan: &mut CpuPlan, graph: &Graph) {
    let producer = |plan: &CpuPlan, v: usize| plan.steps.iter().position(|s| s.output == v);
    let mut j = 0;
    while j < plan.steps.len() {
        let pair = match (&plan.steps[j].kernel, plan.steps[j].inputs.as_slice()) {
            (Kernel::Binary(Binary::Add), &[a, b])
                if a != b && graph.values[a].shape == graph.values[b].shape =>
            {
                Some((a, b))
            }
            _ => None,
        };
        let target = pair.and_then(|(a, b)| {
            [(a, b), (b, a)].into_iter().find_map(|(conv_out, other)| {
                let i = producer(plan, conv_out)?;
                let plain = matches!(&plan.steps[i].kernel,
                    Kernel::Conv { conv, .. } if conv.act() == Act::Identity && !conv.has_residual());
                let ready = producer(plan, other).is_some_and(|k| k < i);
                (plain && ready && readers(plan, conv_out) == 1).then_some((i, other))
            })
        });
        let Some((i, other)) = target else {
            j += 1;
            continue;
        };
        let add = plan.steps.remove(j);
        let step = &mut plan.steps[i];
        if let Kernel::Conv { conv, .. } = &mut step.kernel {
            conv.set_residual();
        }
        step.inputs.push(other);
        step.output = add.output;
        step.name = format!("{}+{}", step.name, add.name);
    }
}

/// Folds an activation step into the preceding linear or convolution kernel when nothing else
/// reads the intermediate value.
fn fuse_activations(plan: &mut CpuPlan) {
    let mut i = 0;
    while i + 1 < plan.steps.len() {
        let act = match plan.steps[i + 1].kernel {
            Kernel::Unary(act @ (Act::Relu | Act::Tanh | Act::Sigmoid | Act::Gelu)) => Some(act),
            _ => None,
        };
        let produced = plan.steps[i].output;
        let unfused = match &plan.steps[i].kernel {
            Kernel::Linear(k) => k.act() == Act::Identity,
            Kernel::Conv { conv, .. } => conv.act() == Act::Identity,
            _ => false,
        };
        let fusable = unfused && plan.steps[i + 1].inputs == [produced] && readers(plan, produced) == 1;
        if let (true, Some(act)) = (fusable, act) {
            let next = plan.steps.remove(i + 1);
            let step = &mut plan.steps[i];
            match &mut step.kernel {
                Kernel::Linear(k) => *k = k.with_act(act),
                Kernel::Conv { conv, .. } => conv.set_act(act),
                _ => {}
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
/// output, so that it may run a tall batch in independent chunks of rows.
///
/// A value *carries the rows* when its axis 0 is the input's rows: the input does, and so does
/// the output of a step that works row by row on values that carry them — linear layers,
/// element-wise functions, convolutions, pools and resizes (per image), pads of later axes, normalizations of rows, softmax
/// along a later axis, transposes, slices and reductions that leave axis 0 in place, reshapes
/// that keep each row's values in its row, and arithmetic of two row-carrying values of the
/// same rank or of one and a constant that does not vary by row (of lower rank, or with a
/// leading dimension of 1). The plan is row-wise when every step is such a step.
fn is_row_wise(plan: &CpuPlan, graph: &Graph) -> bool {
    let Some(input) = graph.input_width().map(|_| graph.inputs[0].value) else { return false };
    let mut rows = vec![false; plan.slot_count];
    rows[input] = true;
    let rank = |v: usize| graph.values[v].shape.len();
    let constant = |v: usize| plan.constants.iter().find(|(c, _)| *c == v).map(|(_, c)| c.shape.as_slice());
    let per_row_constant = |c: &[usize], r: usize| c.len() < r || (c.len() == r && c.first() == Some(&1));
    for step in &plan.steps {
        let first = step.inputs.first().is_some_and(|&v| rows[v]);
        let row_wise = match &step.kernel {
            Kernel::Linear(_)
            | Kernel::Unary(_)
            | Kernel::Map(_)
            | Kernel::L2Normalize
            | Kernel::Normalize(_)
            | Kernel::Impute { .. }
            | Kernel::Pool2d { .. }
            | Kernel::Resize { .. }
            | Kernel::GlobalPool { .. } => first,
            // A convolution with a residual reads both per row.
            Kernel::Conv { .. } => step.inputs.iter().all(|&v| rows[v]),
            Kernel::Pad { pads, .. } => {
                first && pads.first() == Some(&0) && pads.get(pads.len() / 2) == Some(&0)
            }
            Kernel::Softmax { axis } | Kernel::LogSoftmax { axis } => first && *axis >= 1,
            Kernel::Transpose { perm } => first && perm.first() == Some(&0),
            Kernel::Slice { axes } => first && axes.iter().all(|s| s.axis != 0),
            Kernel::Reduce { axes, .. } => first && !axes.contains(&0),
            Kernel::Reshape { .. } => {
                first && keeps_rows(&graph.values[step.inputs[0]].shape, &graph.values[step.output].shape)
            }
            Kernel::Binary(_) => match *step.inputs.as_slice() {
                [a, b] => match (rows[a], rows[b]) {
                    (true, true) => rank(a) == rank(b),
                    (true, false) => constant(b).is_some_and(|c| per_row_constant(c, rank(a))),
                    (false, true) => constant(a).is_some_and(|c| per_row_constant(c, rank(b))),
                    (false, false) => false,
                },
                _ => false,
            },
            _ => false,
        };
        if !row_wise {
            return false;
        }
        rows[step.output] = true;
    }
    true
}

/// Whether a reshape from `input` to `output` keeps each row's values in its row: both are
/// `[-1, fixed…]` with as many values per row.
fn keeps_rows(input: &Shape, output: &Shape) -> bool {
    let per_row = |s: &Shape| match s.split_first() {
        Some((Dim::Var, rest)) => rest.iter().map(|d| d.fixed()).product::<Option<usize>>(),
        _ => None,
    };
    per_row(input).is_some() && per_row(input) == per_row(output)
}
