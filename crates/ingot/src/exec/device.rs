//! Running a graph on a candle [`Device`] (CUDA with the `cuda` feature) with candle's own ops.
//!
//! The CPU has its own plan ([`super::cpu`]); this one exists for the other devices, and runs the
//! generic ops of opset 1. The ops that have only CPU kernels so far (`Gather`, `LayerNorm`,
//! `MultiHeadAttention`, `SequencePool`, `TreeEnsemble`) are refused at load, naming the op and the device.

use candle_core::{Device, Tensor};

use super::Feed;
use crate::error::{Error, Result};
use crate::format::packed;
use crate::format::Bundle;
use crate::graph::{Graph, Op, WeightLayout};

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
            if matches!(
                node.op,
                Op::Gather { .. }
                    | Op::LayerNorm { .. }
                    | Op::MultiHeadAttention { .. }
                    | Op::SequencePool { .. }
                    | Op::TreeEnsemble(_)
            ) {
                return Err(Error::Unsupported {
                    what: format!(
                        "op `{:?}` (node `{}`) on device {device:?}; it runs on the CPU",
                        node.op, node.name
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

    /// Width of the first output.
    pub(crate) fn output_width(&self) -> usize {
        self.graph.output_width
    }

    /// Runs the graph on `feeds` and returns the first output's values, row-major.
    pub(crate) fn run(&self, feeds: &[Feed<'_>]) -> Result<Vec<f32>> {
        let graph = &self.graph;
        let mut slots: Vec<Option<Tensor>> = vec![None; graph.values.len()];
        for (v, tensor) in &self.constants {
            slots[*v] = Some(tensor.clone());
        }
        for (input, feed) in graph.inputs.iter().zip(feeds) {
            let tensor = match feed {
                Feed::F32 { data, rows, cols } => Tensor::from_slice(data, (*rows, *cols), &self.device),
                Feed::U32(data) => Tensor::from_slice(data, data.len(), &self.device),
            };
            slots[input.value] = Some(tensor.map_err(Error::backend("input"))?);
        }
        for (node, release) in graph.nodes.iter().zip(&self.release_after) {
            let args: Vec<&Tensor> =
                node.inputs.iter().map(|&v| slots[v].as_ref()).collect::<Option<_>>().ok_or_else(|| {
                    Error::Graph {
                        node: node.name.clone(),
                        op: format!("{:?}", node.op),
                        detail: "an input was not computed".into(),
                    }
                })?;
            let out = eval(&node.op, &args).map_err(Error::backend(format!("node `{}`", node.name)))?;
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
            let y = x.matmul(&args[1].t()?)?;
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
        Op::MatMul => x.matmul(args[1])?,
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
        Op::Gather { .. }
        | Op::LayerNorm { .. }
        | Op::MultiHeadAttention { .. }
        | Op::SequencePool { .. }
        | Op::TreeEnsemble(_) => {
            candle_core::bail!("{op:?} has no device implementation (refused at load)")
        }
    })
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
