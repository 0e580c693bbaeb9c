//! Runs a validated [`Graph`] on candle tensors.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::kernels::pool::L2Normalize;

/// Rows per chunk when a row-wise graph runs chunk by chunk ([`run_chunked`]): 256 rows of a
/// few hundred features keep every intermediate activation within a core's L2 cache.
pub(crate) const CHUNK_ROWS: usize = 256;

/// Runs a row-wise graph ([`Graph::row_wise`]) on `rows` rows of `width` values in chunks of
/// [`CHUNK_ROWS`], spread over the pool, and returns the first output's values.
///
/// Each chunk runs every node on one thread (kernels called inside a busy pool stay serial), so
/// the results are those of [`run`] on the whole batch, row for row. A failure is that of the
/// earliest failing chunk.
pub(crate) fn run_chunked(graph: &Graph, x: &[f32], rows: usize, width: usize) -> Result<Vec<f32>> {
    let out_width = graph.output_width;
    let mut out = vec![0f32; rows * out_width];
    crate::parallel::try_for_each_chunk_mut(&mut out, CHUNK_ROWS * out_width, |c, out| {
        let n = out.len() / out_width;
        let chunk = &x[c * CHUNK_ROWS * width..][..n * width];
        Tensor::from_slice(chunk, (n, width), &Device::Cpu)
            .map_err(Error::backend("input"))
            .and_then(|t| first_output(run(graph, vec![t])?))
            .and_then(|values| {
                if values.len() != out.len() {
                    return Err(Error::ShapeMismatch {
                        what: "graph output".into(),
                        expected: format!("{n} × {out_width}"),
                        got: format!("{} values", values.len()),
                    });
                }
                out.copy_from_slice(&values);
                Ok(())
            })
    })?;
    Ok(out)
}

/// The values of the first of `outputs`, flattened.
pub(crate) fn first_output(outputs: Vec<Tensor>) -> Result<Vec<f32>> {
    let first = outputs.into_iter().next().ok_or_else(|| Error::Graph {
        node: "<outputs>".into(),
        op: "output".into(),
        detail: "no output".into(),
    })?;
    first.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(Error::backend("output"))
}

/// Runs `graph` on its inputs (in `graph.inputs` order) and returns the graph outputs in order.
pub(crate) fn run(graph: &Graph, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let mut slots: Vec<Option<Tensor>> = vec![None; graph.slot_count];
    for (slot, tensor) in &graph.constants {
        slots[*slot] = Some(tensor.clone());
    }
    if inputs.len() != graph.inputs.len() {
        return Err(Error::ShapeMismatch {
            what: "graph inputs".into(),
            expected: graph.inputs.len().to_string(),
            got: inputs.len().to_string(),
        });
    }
    for (input, tensor) in graph.inputs.iter().zip(inputs) {
        slots[input.slot] = Some(tensor);
    }
    for (node, release) in graph.nodes.iter().zip(&graph.release_after) {
        let args: Vec<&Tensor> =
            node.inputs.iter().map(|&s| slots[s].as_ref()).collect::<Option<_>>().ok_or_else(|| {
                Error::Graph {
                    node: node.name.clone(),
                    op: format!("{:?}", node.op),
                    detail: "an input was not computed".into(),
                }
            })?;
        let out = eval(&node.op, &args).map_err(Error::backend(format!("node `{}`", node.name)))?;
        for &s in release {
            slots[s] = None;
        }
        if let Some(&slot) = node.outputs.first() {
            slots[slot] = Some(out);
        }
    }
    graph
        .output_slots
        .iter()
        .map(|&s| {
            slots[s].take().ok_or_else(|| Error::Graph {
                node: "<outputs>".into(),
                op: "output".into(),
                detail: format!("output slot {s} was not computed"),
            })
        })
        .collect()
}

fn eval(op: &Op, args: &[&Tensor]) -> candle_core::Result<Tensor> {
    let x = args[0];
    Ok(match op {
        Op::LinearConst(kernel) => x.contiguous()?.apply_op1_no_bwd(kernel)?,
        Op::Linear => linear_generic(x, args[1], args.get(2).copied())?,
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
        Op::Gather | Op::LayerNorm { .. } | Op::MultiHeadAttention { .. } | Op::SequencePool { .. } => {
            candle_core::bail!("{op:?} is bound to its kernel at load")
        }
        Op::L2Normalize => {
            if x.device().is_cpu() {
                x.contiguous()?.apply_op1_no_bwd(&L2Normalize)?
            } else {
                let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
                x.broadcast_div(&norm)?
            }
        }
        Op::EmbeddingConst(k) => x.contiguous()?.apply_op1_no_bwd(k)?,
        Op::LayerNormConst(k) => x.contiguous()?.apply_op1_no_bwd(k)?,
        Op::AddLayerNormConst(k) => x.contiguous()?.apply_op2_no_bwd(&args[1].contiguous()?, k)?,
        Op::Attention(k) => x.contiguous()?.apply_op2_no_bwd(args[1], k)?,
        Op::Pool(k) => x.contiguous()?.apply_op2_no_bwd(args[1], k)?,
        Op::Reshape { shape } => {
            let dims = resolve_reshape(x.dims(), shape)?;
            x.reshape(dims)?
        }
    })
}

fn linear_generic(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let y = x.matmul(&w.t()?)?;
    match b {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

fn resolve_reshape(input: &[usize], target: &[i64]) -> candle_core::Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut dims: Vec<usize> = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 => {
                infer = Some(i);
                dims.push(1);
            }
            0 => dims.push(input.get(i).copied().unwrap_or(1)),
            d => dims.push(d as usize),
        }
    }
    if let Some(i) = infer {
        let known: usize = dims.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            candle_core::bail!("cannot reshape {input:?} into {target:?}");
        }
        dims[i] = total / known;
    }
    Ok(dims)
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
                .map_err(|_| Error::Unsupported { what: format!("device `{name}` (expected cuda:N)") })?;
            Device::new_cuda(index).map_err(Error::backend(format!("opening {name}")))
        }
        other => Err(Error::Unsupported { what: format!("device `{other}` (expected cpu or cuda[:N])") }),
    }
}
