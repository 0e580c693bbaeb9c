//! Running a graph on a candle [`Device`] (CUDA with the `cuda` feature) with candle's own ops.
//!
//! The CPU has its own plan ([`super::cpu`]) of fused kernels; this one runs every op with
//! candle's, on any device: CUDA, or the CPU itself, where it is the reference the fused kernels
//! are tested against ([`super::Kernels::Candle`]). Packed text batches are padded for attention
//! and pooling ([`super::sequences`]). The ops no short composition of candle ops computes
//! exactly ([`unsupported`]: trees, and some uses of the opset-2 ops) are refused at load,
//! naming the op and the device.

use candle_core::{DType, Device, DeviceLocation, Tensor};

use super::sequences::Padding;
use super::Feed;
use crate::error::{Error, Result};
use crate::format::packed;
use crate::format::Bundle;
use crate::graph::{
    slice_range, CoordMode, Graph, NearestMode, Node, NormKind, Op, PadMode, ReduceKind, ResizeAttrs,
    WeightLayout,
};
use crate::kernels::attention::sequence_offsets;

/// A graph prepared for a device: its stored tensors uploaded, nodes kept as ops.
#[derive(Debug)]
pub(crate) struct DevicePlan {
    device: Device,
    graph: Graph,
    constants: Vec<(usize, Tensor)>,
    /// Values whose last reader is node `i`: freed after it runs.
    release_after: Vec<Vec<usize>>,
}

impl DevicePlan {
    /// Uploads the stored tensors `graph` reads to `device`.
    pub(crate) fn lower(graph: &Graph, bundle: &Bundle, device: &Device) -> Result<DevicePlan> {
        let mut constants = Vec::new();
        for node in &graph.nodes {
            if let Some(why) = unsupported(&node.op).or_else(|| offsets_not_fed(graph, node)) {
                return Err(Error::Unsupported {
                    what: format!(
                        "op `{:?}` (node `{}`) on device {} with candle's ops: {why}; it runs on the CPU \
                         with Ingot's kernels",
                        node.op,
                        node.name,
                        device_name(device)
                    ),
                });
            }
            for (i, &v) in node.inputs.iter().enumerate() {
                if !graph.is_initializer(v) || constants.iter().any(|(c, _)| *c == v) {
                    continue;
                }
                let info = &graph.values[v];
                let view = bundle.tensor(&info.name).ok_or_else(|| Error::TensorMissing {
                    name: info.name.clone(),
                    needed_by: node.name.clone(),
                })?;
                let mut values = match (&node.op, i) {
                    // int8 weights run dequantized on a device: q · scale per output row.
                    (Op::Linear { scale: Some(scale), input_scale, .. }, 1) => {
                        dequantize(bundle, view, scale, input_scale.as_deref())?
                    }
                    (Op::Gather { scale: Some(scale) }, 0) => dequantize(bundle, view, scale, None)?,
                    _ => view.to_f32_vec()?,
                };
                let mut shape = view.shape.to_vec();
                if let (Op::Linear { layout: WeightLayout::Packed16 { out_features }, .. }, 1, [_, k, _]) =
                    (&node.op, i, shape.as_slice())
                {
                    let k = *k;
                    values = packed::unpack(&values, *out_features, k);
                    shape = vec![*out_features, k];
                }
                let tensor = Tensor::from_vec(values, shape, device)
                    .map_err(Error::backend(format!("loading `{}`", info.name)))?;
                constants.push((v, tensor));
            }
        }
        let release_after = release_plan(graph);
        Ok(DevicePlan { device: device.clone(), graph: graph.clone(), constants, release_after })
    }

    /// The device's name ([`device_name`]).
    pub(crate) fn device_name(&self) -> String {
        device_name(&self.device)
    }

    /// Whether the device is the CPU ([`super::Kernels::Candle`]).
    pub(crate) fn on_cpu(&self) -> bool {
        self.device.is_cpu()
    }

    /// Width of the first output.
    pub(crate) fn output_width(&self) -> usize {
        self.graph.output_width
    }

    /// Runs the graph on `feeds` and returns the first output's values, row-major.
    pub(crate) fn run(&self, feeds: &[Feed<'_>]) -> Result<Vec<f32>> {
        let graph = &self.graph;
        let mut slots: Vec<Option<Tensor>> = vec![None; graph.values.len()];
        // The integer feeds as the host holds them: ids are checked and offsets read here.
        let mut host: Vec<Option<&[u32]>> = vec![None; graph.values.len()];
        for (v, tensor) in &self.constants {
            slots[*v] = Some(tensor.clone());
        }
        for (input, feed) in graph.inputs.iter().zip(feeds) {
            let tensor = match feed {
                Feed::F32 { data, rows, cols } => Tensor::from_slice(data, (*rows, *cols), &self.device),
                Feed::U32(data) => {
                    host[input.value] = Some(data);
                    Tensor::from_slice(data, data.len(), &self.device)
                }
            };
            slots[input.value] = Some(tensor.map_err(Error::backend("input"))?);
        }
        // One padded layout per offsets value, made by its first reader.
        let mut paddings: Vec<Option<Padding>> = (0..graph.values.len()).map(|_| None).collect();
        for (node, release) in graph.nodes.iter().zip(&self.release_after) {
            let failed = |detail: String| graph_error(node, detail);
            let backend = || Error::backend(format!("node `{}`", node.name));
            let args: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|&v| slots[v].as_ref())
                .collect::<Option<_>>()
                .ok_or_else(|| failed("an input was not computed".into()))?;
            let out = match &node.op {
                Op::Gather { .. } => {
                    let rows = args[0].dim(0).map_err(backend())?;
                    if let Some(id) =
                        host[node.inputs[1]].and_then(|ids| ids.iter().find(|&&i| i as usize >= rows))
                    {
                        return Err(failed(format!("id {id} is out of range for a table of {rows} rows")));
                    }
                    args[0].index_select(args[1], 0)
                }
                Op::MultiHeadAttention { heads } => {
                    padding(&mut paddings, &host, node, args[0], &self.device)?.attention(args[0], *heads)
                }
                Op::SequencePool { mode } => {
                    padding(&mut paddings, &host, node, args[0], &self.device)?.pool(args[0], *mode)
                }
                op => eval(op, &args),
            }
            .map_err(backend())?;
            for &v in release {
                slots[v] = None;
            }
            slots[node.outputs[0]] = Some(out);
        }
        let first = slots[graph.outputs[0]].take().ok_or_else(|| Error::Graph {
            node: "<outputs>".into(),
            op: "output".into(),
            detail: "the first output was not computed".into(),
        })?;
        first.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(Error::backend("output"))
    }
}

/// A failure of `node`, saying what.
fn graph_error(node: &Node, detail: String) -> Error {
    Error::Graph { node: node.name.clone(), op: format!("{:?}", node.op), detail }
}

/// The padded layout of the sequence offsets `node` reads (its input 1, a graph input the host
/// holds in `host`) for the tokens of `x`; made by the offsets' first reader and kept in
/// `paddings` for the others.
fn padding<'p>(
    paddings: &'p mut [Option<Padding>],
    host: &[Option<&[u32]>],
    node: &Node,
    x: &Tensor,
    device: &Device,
) -> Result<&'p Padding> {
    let backend = || Error::backend(format!("node `{}`", node.name));
    let v = node.inputs[1];
    let tokens = x.dim(0).map_err(backend())?;
    let padding = match paddings[v].take() {
        Some(p) if p.tokens() == tokens => p,
        Some(p) => {
            let detail = format!("{tokens} tokens where the sequence offsets end at {}", p.tokens());
            return Err(graph_error(node, detail));
        }
        None => {
            let offsets =
                sequence_offsets(host[v].unwrap_or_default(), tokens).map_err(|d| graph_error(node, d))?;
            Padding::new(&offsets, device).map_err(backend())?
        }
    };
    Ok(paddings[v].insert(padding))
}

/// Why `op` has no device implementation, or `None` when it has one.
fn unsupported(op: &Op) -> Option<&'static str> {
    match op {
        Op::TreeEnsemble(_) => Some("it has only a CPU kernel"),
        Op::Conv { window, .. }
            if window.strides[0] != window.strides[1] || window.dilations[0] != window.dilations[1] =>
        {
            Some("candle's convolution takes one stride and one dilation for both axes")
        }
        Op::MaxPool { window, ceil_mode } | Op::AveragePool { window, ceil_mode, .. }
            if *ceil_mode || window.pads != [0; 4] || window.dilations != [1, 1] =>
        {
            Some("candle's pools have no padding, dilation or ceil mode")
        }
        Op::Slice { axes } if axes.iter().any(|s| s.step != 1) => Some("candle slices with step 1 only"),
        Op::Pad { mode: PadMode::Reflect, .. } => Some("candle has no reflect padding"),
        Op::Pad { mode: PadMode::Constant(v), .. } if *v != 0.0 => Some("candle pads with zeros only"),
        Op::Resize(r) if !nearest_doubling(r) => {
            Some("candle resizes only nearest, asymmetric, floor, by power-of-two scales")
        }
        Op::Pow { exponent } if ![0.5, 2.0, 3.0].contains(exponent) => {
            Some("candle's powf is exact only for positive bases; exponents 0.5, 2 and 3 run")
        }
        _ => None,
    }
}

/// Why `node` cannot run here when it reads sequence offsets that are not a graph input (the
/// host reads them to pad the batch), or `None`.
fn offsets_not_fed(graph: &Graph, node: &Node) -> Option<&'static str> {
    let reads_offsets = matches!(node.op, Op::MultiHeadAttention { .. } | Op::SequencePool { .. });
    let fed = |v: usize| graph.inputs.iter().any(|i| i.value == v);
    (reads_offsets && !node.inputs.get(1).is_some_and(|&v| fed(v)))
        .then_some("its sequence offsets are computed in the graph, not given as a graph input")
}

/// Whether `r` is a nearest `asymmetric`/`floor` upsampling by powers of two, which candle's
/// `upsample_nearest2d` computes exactly (its source index is `⌊o · in / out⌋`).
fn nearest_doubling(r: &ResizeAttrs) -> bool {
    let power_of_two = |s: f32| s >= 1.0 && s.fract() == 0.0 && (s as u32).is_power_of_two();
    r.nearest == Some(NearestMode::Floor)
        && r.coord == CoordMode::Asymmetric
        && r.scales.is_some_and(|s| s.iter().all(|&v| power_of_two(v)))
}

/// For each node, the values it is the last reader of (never graph outputs or stored tensors).
fn release_plan(graph: &Graph) -> Vec<Vec<usize>> {
    let mut last = vec![None; graph.values.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            last[v] = Some(i);
        }
    }
    let mut release = vec![Vec::new(); graph.nodes.len()];
    for (v, node) in last.into_iter().enumerate() {
        if let Some(node) = node {
            if !graph.outputs.contains(&v) && !graph.is_initializer(v) {
                release[node].push(v);
            }
        }
    }
    release
}

/// The f32 values `q · scale` of an int8 weight `[m, k]` with its per-row scales `scale`, times
/// the per-column `input_scale` when there is one.
fn dequantize(
    bundle: &Bundle,
    weight: crate::format::TensorView<'_>,
    scale: &str,
    input_scale: Option<&str>,
) -> Result<Vec<f32>> {
    let read = |name: &str| {
        bundle
            .tensor(name)
            .ok_or_else(|| Error::TensorMissing { name: name.into(), needed_by: "an int8 weight".into() })?
            .to_f32_vec()
    };
    let scales = read(scale)?;
    let columns = input_scale.map(read).transpose()?;
    let k = weight.shape.get(1).copied().unwrap_or(1);
    Ok(super::dequantize_int8(weight.data, k, &scales, columns.as_deref()))
}

fn eval(op: &Op, args: &[&Tensor]) -> candle_core::Result<Tensor> {
    let x = args[0];
    Ok(match op {
        Op::Linear { .. } => {
            let y = x.broadcast_matmul(&args[1].t()?)?;
            match args.get(2) {
                Some(b) => y.broadcast_add(b)?,
                None => y,
            }
        }
        Op::Gemm { alpha, beta, trans_a, trans_b } => {
            let a = if *trans_a { x.t()? } else { x.clone() };
            let b = if *trans_b { args[1].t()? } else { args[1].clone() };
            let mut y = a.matmul(&b)?;
            if *alpha != 1.0 {
                y = (y * *alpha)?;
            }
            match args.get(2) {
                Some(c) if *beta != 0.0 => y.broadcast_add(&(*c * *beta)?)?,
                _ => y,
            }
        }
        Op::MatMul => x.broadcast_matmul(args[1])?,
        Op::Add => x.broadcast_add(args[1])?,
        Op::Sub => x.broadcast_sub(args[1])?,
        Op::Mul => x.broadcast_mul(args[1])?,
        Op::Div => x.broadcast_div(args[1])?,
        Op::Relu => x.relu()?,
        Op::Tanh => x.tanh()?,
        Op::Sigmoid => (x.neg()?.exp()? + 1.0)?.recip()?,
        Op::Identity => x.clone(),
        Op::Softmax { axis } => {
            let max = x.max_keepdim(*axis)?;
            let e = x.broadcast_sub(&max)?.exp()?;
            let sum = e.sum_keepdim(*axis)?;
            e.broadcast_div(&sum)?
        }
        Op::Concat { axis } => Tensor::cat(args, *axis)?,
        Op::Gelu => x.gelu_erf()?,
        Op::L2Normalize => {
            let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
            x.broadcast_div(&norm)?
        }
        Op::Reshape { shape } => {
            let dims = super::cpu::resolve_reshape(x.dims(), shape).map_err(candle_core::Error::Msg)?;
            x.reshape(dims)?
        }
        Op::Conv { window, group } => {
            let [top, left, bottom, right] = window.pads;
            let padded = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
            let y = padded.conv2d(args[1], 0, window.strides[0], window.dilations[0], *group)?;
            match args.get(2) {
                Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?,
                None => y,
            }
        }
        Op::MaxPool { window, .. } => x.max_pool2d_with_stride(window.kernel_pair(), window.stride_pair())?,
        Op::AveragePool { window, .. } => {
            x.avg_pool2d_with_stride(window.kernel_pair(), window.stride_pair())?
        }
        Op::GlobalAveragePool => x.mean_keepdim((2..x.rank()).collect::<Vec<_>>())?,
        Op::GlobalMaxPool => (2..x.rank()).try_fold(x.clone(), |t, d| t.max_keepdim(d))?,
        Op::Transpose { perm } => x.permute(perm.clone())?.contiguous()?,
        Op::LeakyRelu { alpha } => x.ge(0f64)?.where_cond(x, &(x * f64::from(*alpha))?)?,
        Op::Clip { min, max } => x.clamp(*min, *max)?,
        Op::Exp => x.exp()?,
        Op::Log => x.log()?,
        Op::Sqrt => x.sqrt()?,
        Op::Abs => x.abs()?,
        Op::Neg => x.neg()?,
        Op::Erf => x.erf()?,
        Op::Reciprocal => x.recip()?,
        Op::HardSigmoid { alpha, beta } => {
            x.affine(f64::from(*alpha), f64::from(*beta))?.clamp(0f32, 1f32)?
        }
        Op::HardSwish => (x * x.affine(1.0 / 6.0, 0.5)?.clamp(0f32, 1f32)?)?,
        // max(x, 0) + ln(1 + e^−|x|): no overflow for large |x|.
        Op::Softplus => (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?,
        Op::Pow { exponent } if *exponent == 2.0 => x.sqr()?,
        Op::Pow { exponent } if *exponent == 3.0 => (x.sqr()? * x)?,
        Op::Pow { .. } => x.sqrt()?,
        Op::LogSoftmax { axis } => {
            let shifted = x.broadcast_sub(&x.max_keepdim(*axis)?)?;
            shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(*axis)?.log()?)?
        }
        Op::Reduce { kind, axes, keepdims } => {
            let mut y = match kind {
                ReduceKind::Mean => x.mean_keepdim(axes.clone())?,
                ReduceKind::Sum => x.sum_keepdim(axes.clone())?,
                ReduceKind::Max => axes.iter().try_fold(x.clone(), |t, &a| t.max_keepdim(a))?,
            };
            if !keepdims {
                for &a in axes.iter().rev() {
                    y = y.squeeze(a)?;
                }
            }
            y
        }
        Op::Slice { axes } => axes.iter().try_fold(x.clone(), |t, s| {
            let (first, len) = slice_range(t.dim(s.axis)?, s.start, s.end, s.step);
            t.narrow(s.axis, first, len)
        })?,
        Op::Normalize { norm } => {
            let n = match norm {
                NormKind::L1 => x.abs()?.sum_keepdim(1)?,
                NormKind::L2 => x.sqr()?.sum_keepdim(1)?.sqrt()?,
                NormKind::Max => x.abs()?.max_keepdim(1)?,
            };
            // A zero norm divides by 1: the row stays as it is.
            let n = (&n + n.eq(0f64)?.to_dtype(DType::F32)?)?;
            x.broadcast_div(&n)?
        }
        Op::Pad { pads, mode } => {
            let rank = pads.len() / 2;
            (0..rank).try_fold(x.clone(), |t, a| match mode {
                PadMode::Edge => t.pad_with_same(a, pads[a], pads[rank + a]),
                _ => t.pad_with_zeros(a, pads[a], pads[rank + a]),
            })?
        }
        Op::Resize(r) => {
            let (h, w) = (x.dim(2)?, x.dim(3)?);
            let exact = r.scales.is_some_and(|s| {
                (h as f32 * s[0], w as f32 * s[1]) == (r.sizes[0] as f32, r.sizes[1] as f32)
            });
            if !exact {
                candle_core::bail!("{h}×{w} does not resize to {:?} by {:?}", r.sizes, r.scales)
            }
            x.upsample_nearest2d(r.sizes[0], r.sizes[1])?
        }
        Op::Impute => x.ne(x)?.where_cond(&args[1].broadcast_as(x.shape())?, x)?,
        Op::LayerNorm { eps } => candle_nn::ops::layer_norm(x, args[1], args[2], *eps)?,
        // Read with the host's ids and offsets in `DevicePlan::run`; trees are refused at load.
        Op::Gather { .. } | Op::MultiHeadAttention { .. } | Op::SequencePool { .. } | Op::TreeEnsemble(_) => {
            candle_core::bail!("{op:?} is not a plain tensor op")
        }
    })
}

/// The name [`parse_device`] reads for `device`: `cpu`, `cuda:N` or `metal:N`.
///
/// ```
/// assert_eq!(ingot::device_name(&ingot::Device::Cpu), "cpu");
/// ```
pub fn device_name(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "cpu".into(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// The device a model runs on, parsed from `cpu` or `cuda[:N]`.
///
/// ```
/// assert!(ingot::parse_device("cpu").unwrap().is_cpu());
/// assert!(ingot::parse_device("tpu").is_err());
/// ```
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        n if n == "cuda" || n.starts_with("cuda:") => {
            let index = n
                .strip_prefix("cuda:")
                .map_or(Ok(0), str::parse::<usize>)
                .map_err(|_| Error::Usage { what: format!("device `{name}` (expected cuda:N)") })?;
            Device::new_cuda(index).map_err(Error::backend(format!("opening {name}")))
        }
        other => Err(Error::Usage { what: format!("device `{other}` (expected cpu or cuda[:N])") }),
    }
}
