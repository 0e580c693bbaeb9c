//! Running a lowered plan on the CPU: values live in buffers leased from the model's [`Arena`],
//! so a stream of calls reuses memory instead of faulting in fresh pages.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::lower::{kernel_window, transpose};
use super::Feed;
use crate::arena::{Arena, Lease};
use crate::error::{Error, Result};
use crate::graph::{slice_range, SliceAxis, WeightLayout, Window};
use crate::kernels::activation::Act;
use crate::kernels::attention::{sequence_offsets, Attention};
use crate::kernels::conv::Conv2d;
use crate::kernels::elementwise::{self, broadcast_shape, Binary};
use crate::kernels::embedding::Embedding;
use crate::kernels::gemm::{gemm, InputKind, PackedWeight};
use crate::kernels::isa::Isa;
use crate::kernels::layernorm::LayerNorm;
use crate::kernels::layout;
use crate::kernels::linear::LinearKernel;
use crate::kernels::matmul::{batch_shape, batched_matmul};
use crate::kernels::pool::{l2_normalize, SequencePool};
use crate::kernels::pool2d::{global_pool, pool2d, Pool2d};
use crate::kernels::reduce::{reduce, Reduce};
use crate::kernels::resize::{pad, resize, PadFill, Resize};
use crate::kernels::tabular::{impute, normalize, Norm};
use crate::kernels::trees::Forest;
use crate::kernels::unary::{self, Unary};
use crate::storage::F32Data;

/// What one step runs.
#[derive(Debug)]
pub(crate) enum Kernel {
    /// A linear layer with its stored weights (and fused activation).
    Linear(LinearKernel),
    /// `x·wᵀ + b` with weights computed at predict time.
    LinearDynamic {
        layout: WeightLayout,
    },
    MatMul,
    Gemm {
        alpha: f64,
        beta: f64,
        trans_a: bool,
        trans_b: bool,
    },
    Binary(Binary),
    Unary(Act),
    Softmax {
        axis: usize,
    },
    Concat {
        axis: usize,
    },
    Reshape {
        shape: Vec<i64>,
    },
    Embedding(Embedding),
    /// LayerNorm of its input, or of the sum of its two inputs (`residual`).
    LayerNorm {
        ln: LayerNorm,
        residual: bool,
    },
    Attention(Attention),
    Pool(SequencePool),
    L2Normalize,
    /// A tree ensemble, packed.
    Trees(Box<Forest>),
    /// A convolution with its stored weights (and fused activation) and its window.
    Conv {
        conv: Box<Conv2d>,
        window: Window,
    },
    /// A window pool.
    Pool2d {
        pool: Pool2d,
        window: Window,
        ceil_mode: bool,
    },
    /// The maximum (`max`) or mean of each `[N, C]` plane.
    GlobalPool {
        max: bool,
    },
    Transpose {
        perm: Vec<usize>,
    },
    /// An element-wise function other than the fusable activations.
    Map(Unary),
    LogSoftmax {
        axis: usize,
    },
    Reduce {
        op: Reduce,
        axes: Vec<usize>,
        keepdims: bool,
    },
    Slice {
        axes: Vec<SliceAxis>,
    },
    Normalize(Norm),
    /// Missing values replaced by the stored fill values, one per column (or one for all).
    Impute {
        fill: Vec<f32>,
    },
    /// A border of `pads` (`[begin…, end…]`) around the input.
    Pad {
        pads: Vec<usize>,
        fill: PadFill,
    },
    /// `[N, C, H, W]` planes resized to `sizes`.
    Resize {
        resize: Resize,
        sizes: [usize; 2],
    },
}

/// One step: a kernel, the values it reads and the value it writes.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) kernel: Kernel,
    pub(crate) inputs: Vec<usize>,
    pub(crate) output: usize,
}

/// A stored tensor read as a value.
#[derive(Debug)]
pub(crate) struct Constant {
    pub(crate) data: F32Data,
    pub(crate) shape: Vec<usize>,
}

/// A graph lowered for the CPU.
#[derive(Debug)]
pub(crate) struct CpuPlan {
    pub(crate) steps: Vec<Step>,
    pub(crate) slot_count: usize,
    /// Graph inputs in order: value and whether it is integer.
    pub(crate) inputs: Vec<(usize, bool)>,
    pub(crate) outputs: Vec<usize>,
    pub(crate) output_width: usize,
    pub(crate) constants: Vec<(usize, Constant)>,
    /// Values whose last reader is step `i`: released after it runs.
    pub(crate) release_after: Vec<Vec<usize>>,
    /// Every output row depends only on the same input row.
    pub(crate) row_wise: bool,
    /// Kernel level of the steps that pack weights at predict time.
    pub(crate) isa: Isa,
    /// Where the input ranges of the linear layers are recorded, when asked to
    /// ([`CpuPlan::record_linear_inputs`]; calibration only).
    pub(crate) observer: Option<Arc<LinearInputs>>,
}

/// The largest `|x|` seen in each input column of each linear layer, by step (node) name: the
/// activation statistics int8 calibration needs.
#[derive(Debug, Default)]
pub(crate) struct LinearInputs {
    columns: Mutex<BTreeMap<String, Vec<f32>>>,
}

impl LinearInputs {
    /// Folds the rows `x` (of `k` columns) into `step`'s column maxima.
    fn record(&self, step: &str, x: &[f32], k: usize) {
        let Ok(mut columns) = self.columns.lock() else { return };
        let max = columns.entry(step.to_owned()).or_insert_with(|| vec![0.0; k]);
        for row in x.chunks_exact(k) {
            for (m, v) in max.iter_mut().zip(row) {
                *m = m.max(v.abs());
            }
        }
    }

    /// The column maxima recorded so far, by step name.
    pub(crate) fn take(&self) -> BTreeMap<String, Vec<f32>> {
        self.columns.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default()
    }
}

/// A value during a run.
enum Slot<'a> {
    Empty,
    F32 { data: Data<'a>, shape: Vec<usize> },
    U32(&'a [u32]),
}

enum Data<'a> {
    Leased(Lease<'a>),
    Borrowed(&'a [f32]),
}

impl Data<'_> {
    fn as_slice(&self) -> &[f32] {
        match self {
            Data::Leased(l) => l.as_slice(),
            Data::Borrowed(s) => s,
        }
    }
}

/// A failure of step `step` on this input.
fn failed(step: &Step, detail: impl Into<String>) -> Error {
    Error::Graph { node: step.name.clone(), op: format!("{:?}", step.kernel), detail: detail.into() }
}

/// An output of `shape` in a buffer from the arena, written by `fill` (which overwrites every
/// value it later reads).
fn output<'a>(arena: &'a Arena, shape: Vec<usize>, fill: impl FnOnce(&mut [f32])) -> Slot<'a> {
    let len = shape.iter().product();
    let mut lease = arena.take(len);
    fill(lease.resize(len));
    Slot::F32 { data: Data::Leased(lease), shape }
}

/// [`output`] with a fill that may fail.
fn try_output<'a>(
    arena: &'a Arena,
    shape: Vec<usize>,
    fill: impl FnOnce(&mut [f32]) -> Result<()>,
) -> Result<Slot<'a>> {
    let len = shape.iter().product();
    let mut lease = arena.take(len);
    fill(lease.resize(len))?;
    Ok(Slot::F32 { data: Data::Leased(lease), shape })
}

impl CpuPlan {
    /// What each linear kernel knows about its input, in step order.
    #[cfg(test)]
    pub(crate) fn linear_inputs(&self) -> Vec<InputKind> {
        self.steps
            .iter()
            .filter_map(|s| match &s.kernel {
                Kernel::Linear(k) => Some(k.input()),
                _ => None,
            })
            .collect()
    }

    /// The kernel path of each linear layer, in step order.
    pub(crate) fn linear_paths(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| match &s.kernel {
                Kernel::Linear(k) => Some(k.path()),
                _ => None,
            })
            .collect()
    }

    /// From now on, records the input ranges of every linear layer.
    pub(crate) fn record_linear_inputs(&mut self) -> Arc<LinearInputs> {
        Arc::clone(self.observer.get_or_insert_with(Default::default))
    }

    /// Runs the plan on `feeds` (one per graph input, in order) and returns the first output's
    /// values, row-major.
    pub(crate) fn run(&self, feeds: &[Feed<'_>], arena: &Arena) -> Result<Vec<f32>> {
        let mut slots: Vec<Slot<'_>> = (0..self.slot_count).map(|_| Slot::Empty).collect();
        for (v, c) in &self.constants {
            slots[*v] = Slot::F32 { data: Data::Borrowed(c.data.as_slice()), shape: c.shape.clone() };
        }
        if feeds.len() != self.inputs.len() {
            return Err(Error::ShapeMismatch {
                what: "graph inputs".into(),
                expected: self.inputs.len().to_string(),
                got: feeds.len().to_string(),
            });
        }
        for (&(v, integer), feed) in self.inputs.iter().zip(feeds) {
            slots[v] = match (feed, integer) {
                (Feed::F32 { data, rows, cols }, false) => {
                    Slot::F32 { data: Data::Borrowed(data), shape: vec![*rows, *cols] }
                }
                (Feed::U32(data), true) => Slot::U32(data),
                _ => {
                    return Err(Error::Graph {
                        node: "<inputs>".into(),
                        op: "feed".into(),
                        detail: "a graph input got data of the wrong type".into(),
                    })
                }
            };
        }
        for (step, release) in self.steps.iter().zip(&self.release_after) {
            let out = self.eval(step, &slots, arena)?;
            for &v in release {
                slots[v] = Slot::Empty;
            }
            slots[step.output] = out;
        }
        match slots.get(self.outputs[0]) {
            Some(Slot::F32 { data, .. }) => Ok(data.as_slice().to_vec()),
            _ => Err(Error::Graph {
                node: "<outputs>".into(),
                op: "output".into(),
                detail: "the first output was not computed".into(),
            }),
        }
    }

    fn eval<'a>(&self, step: &Step, slots: &[Slot<'a>], arena: &'a Arena) -> Result<Slot<'a>> {
        let f32_arg = |i: usize| -> Result<(&[f32], &[usize])> {
            match step.inputs.get(i).and_then(|&v| slots.get(v)) {
                Some(Slot::F32 { data, shape }) => Ok((data.as_slice(), shape.as_slice())),
                _ => Err(failed(step, format!("input {i} is not a computed f32 value"))),
            }
        };
        let u32_arg = |i: usize| -> Result<&[u32]> {
            match step.inputs.get(i).and_then(|&v| slots.get(v)) {
                Some(Slot::U32(data)) => Ok(data),
                _ => Err(failed(step, format!("input {i} is not an integer input"))),
            }
        };
        let rows_of = |shape: &[usize], width: usize| -> Result<usize> {
            match shape {
                [n, w] if *w == width => Ok(*n),
                other => Err(failed(step, format!("expected [rows, {width}], got {other:?}"))),
            }
        };
        // `[…, width]` of rank ≥ 2 as rows: their number, and the shape with `out` columns.
        let leading_rows = |shape: &[usize], width: usize, out: usize| -> Result<(usize, Vec<usize>)> {
            match shape {
                [lead @ .., w] if *w == width && !lead.is_empty() => {
                    Ok((lead.iter().product(), lead.iter().copied().chain([out]).collect()))
                }
                other => Err(failed(step, format!("expected […, {width}] of rank ≥ 2, got {other:?}"))),
            }
        };
        match &step.kernel {
            Kernel::Linear(k) => {
                let (x, shape) = f32_arg(0)?;
                let (n, out_shape) = leading_rows(shape, k.in_features(), k.out_features())?;
                if let Some(observer) = &self.observer {
                    observer.record(&step.name, x, k.in_features());
                }
                Ok(output(arena, out_shape, |o| k.forward(x, n, o)))
            }
            Kernel::LinearDynamic { layout } => {
                let (x, xs) = f32_arg(0)?;
                let (w, ws) = f32_arg(1)?;
                let (m, k) = match (layout, ws) {
                    (WeightLayout::Rows, [m, k]) => (*m, *k),
                    _ => return Err(failed(step, "computed weights must be [out, in]")),
                };
                let (_, out_shape) = leading_rows(xs, k, m)?;
                let bias = step.inputs.get(2).map(|_| f32_arg(2)).transpose()?.map(|(b, _)| b);
                if bias.is_some_and(|b| b.len() != m) {
                    return Err(failed(step, format!("the bias does not have {m} values")));
                }
                let packed = PackedWeight::pack(w, m, k);
                Ok(output(arena, out_shape, |o| {
                    gemm(self.isa, x, &packed, bias, Act::Identity, InputKind::Dense, o)
                }))
            }
            Kernel::MatMul => {
                let (x, xs) = f32_arg(0)?;
                let (b, bs) = f32_arg(1)?;
                if let (&[_, _], &[k, m]) = (xs, bs) {
                    let n = rows_of(xs, k)?;
                    let packed = PackedWeight::pack(&transpose(b, k, m), m, k);
                    return Ok(output(arena, vec![n, m], |o| {
                        gemm(self.isa, x, &packed, None, Act::Identity, InputKind::Dense, o)
                    }));
                }
                let batch = batch_shape(xs, bs)
                    .ok_or_else(|| failed(step, format!("{xs:?} and {bs:?} do not multiply")))?;
                let shape = batch.into_iter().chain([xs[xs.len() - 2], bs[bs.len() - 1]]).collect();
                Ok(output(arena, shape, |o| batched_matmul(self.isa, (x, xs), (b, bs), o)))
            }
            Kernel::Gemm { alpha, beta, trans_a, trans_b } => {
                let (a, a_shape) = f32_arg(0)?;
                let (b, b_shape) = f32_arg(1)?;
                let (&[ar, ac], &[br, bc]) = (a_shape, b_shape) else {
                    return Err(failed(step, "A and B must be 2-D"));
                };
                let (x, n, k) = if *trans_a { (transpose(a, ar, ac), ac, ar) } else { (a.to_vec(), ar, ac) };
                let (w, m, kb) = if *trans_b { (b.to_vec(), br, bc) } else { (transpose(b, br, bc), bc, br) };
                if kb != k {
                    return Err(failed(step, format!("inner dimensions {k} and {kb} differ")));
                }
                let shape = vec![n, m];
                let c = step.inputs.get(2).map(|_| f32_arg(2)).transpose()?;
                if c.is_some_and(|(_, cs)| broadcast_shape(cs, &shape).as_ref() != Some(&shape)) {
                    return Err(failed(step, format!("C does not broadcast to {shape:?}")));
                }
                let mut product = vec![0f32; n * m];
                gemm(
                    self.isa,
                    &x,
                    &PackedWeight::pack(&w, m, k),
                    None,
                    Act::Identity,
                    InputKind::Dense,
                    &mut product,
                );
                product.iter_mut().for_each(|v| *v *= *alpha as f32);
                match c.filter(|_| *beta != 0.0) {
                    None => Ok(output(arena, shape, |o| o.copy_from_slice(&product))),
                    Some((c, cs)) => {
                        let c: Vec<f32> = c.iter().map(|v| v * *beta as f32).collect();
                        let s = shape.clone();
                        Ok(output(arena, shape, |o| {
                            elementwise::binary(Binary::Add, (&product, &s), (&c, cs), &s, o)
                        }))
                    }
                }
            }
            Kernel::Binary(op) => {
                let (a, a_shape) = f32_arg(0)?;
                let (b, b_shape) = f32_arg(1)?;
                let shape = broadcast_shape(a_shape, b_shape).ok_or_else(|| {
                    failed(step, format!("shapes {a_shape:?} and {b_shape:?} do not broadcast"))
                })?;
                let s = shape.clone();
                Ok(output(arena, shape, |o| elementwise::binary(*op, (a, a_shape), (b, b_shape), &s, o)))
            }
            Kernel::Unary(act) => {
                let (x, shape) = f32_arg(0)?;
                Ok(output(arena, shape.to_vec(), |o| elementwise::unary(*act, x, o)))
            }
            Kernel::Softmax { axis } => {
                let (x, shape) = f32_arg(0)?;
                Ok(output(arena, shape.to_vec(), |o| elementwise::softmax_axis(x, shape, *axis, o)))
            }
            Kernel::Concat { axis } => {
                let parts = (0..step.inputs.len()).map(f32_arg).collect::<Result<Vec<_>>>()?;
                let mut shape = parts[0].1.to_vec();
                for (_, s) in &parts[1..] {
                    let same = s.len() == shape.len()
                        && s.iter().zip(&shape).enumerate().all(|(d, (a, b))| d == *axis || a == b);
                    if !same {
                        return Err(failed(step, format!("cannot concatenate {s:?} to {shape:?}")));
                    }
                    shape[*axis] += s[*axis];
                }
                Ok(output(arena, shape, |o| elementwise::concat(&parts, *axis, o)))
            }
            Kernel::Reshape { shape } => {
                let (x, in_shape) = f32_arg(0)?;
                let dims = resolve_reshape(in_shape, shape).map_err(|e| failed(step, e))?;
                Ok(output(arena, dims, |o| o.copy_from_slice(x)))
            }
            Kernel::Embedding(e) => {
                let ids = u32_arg(0)?;
                try_output(arena, vec![ids.len(), e.dim], |o| e.forward(ids, o).map_err(|d| failed(step, d)))
            }
            Kernel::LayerNorm { ln, residual } => {
                let (x, shape) = f32_arg(0)?;
                if shape.last() != Some(&ln.dim()) {
                    return Err(failed(step, format!("rows of {shape:?} are not {} wide", ln.dim())));
                }
                let r = if *residual {
                    let (r, r_shape) = f32_arg(1)?;
                    if r_shape != shape {
                        return Err(failed(step, format!("residual {r_shape:?} differs from {shape:?}")));
                    }
                    Some(r)
                } else {
                    None
                };
                Ok(output(arena, shape.to_vec(), |o| ln.forward(x, r, o)))
            }
            Kernel::Attention(att) => {
                let (qkv, shape) = f32_arg(0)?;
                let &[tokens, width] = shape else { return Err(failed(step, "qkv must be 2-D")) };
                let offsets = sequence_offsets(u32_arg(1)?, tokens).map_err(|e| failed(step, e))?;
                let hidden = width / 3;
                Ok(output(arena, vec![tokens, hidden], |o| att.forward(qkv, &offsets, hidden, o)))
            }
            Kernel::Pool(pool) => {
                let (x, shape) = f32_arg(0)?;
                let &[tokens, hidden] = shape else { return Err(failed(step, "input must be 2-D")) };
                let offsets = sequence_offsets(u32_arg(1)?, tokens).map_err(|e| failed(step, e))?;
                Ok(output(arena, vec![offsets.len() - 1, hidden], |o| pool.forward(x, &offsets, hidden, o)))
            }
            Kernel::Trees(forest) => {
                let (x, shape) = f32_arg(0)?;
                let n = rows_of(shape, forest.n_features())?;
                Ok(output(arena, vec![n, forest.n_outputs()], |o| forest.forward(x, n, o)))
            }
            Kernel::L2Normalize => {
                let (x, shape) = f32_arg(0)?;
                let d = shape.last().copied().unwrap_or(1);
                Ok(output(arena, shape.to_vec(), |o| l2_normalize(x, d, o)))
            }
            Kernel::Conv { conv, window } => {
                let (x, shape) = f32_arg(0)?;
                let (n, hw, out_hw) =
                    image(shape, conv.in_channels(), window, false).map_err(|e| failed(step, e))?;
                let out_shape = vec![n, conv.out_channels(), out_hw[0], out_hw[1]];
                let residual = match conv.has_residual() {
                    true => match f32_arg(1)? {
                        (r, s) if s == out_shape.as_slice() => Some(r),
                        (_, s) => {
                            return Err(failed(
                                step,
                                format!("the residual is {s:?}, the output {out_shape:?}"),
                            ));
                        }
                    },
                    false => None,
                };
                Ok(output(arena, out_shape, |o| conv.forward(x, n, hw, out_hw, residual, o)))
            }
            Kernel::Pool2d { pool, window, ceil_mode } => {
                let (x, shape) = f32_arg(0)?;
                let c = shape.get(1).copied().unwrap_or(0);
                let (n, hw, out_hw) = image(shape, c, window, *ceil_mode).map_err(|e| failed(step, e))?;
                let win = kernel_window(window);
                Ok(output(arena, vec![n, c, out_hw[0], out_hw[1]], |o| {
                    pool2d(*pool, &win, x, n * c, hw, out_hw, o)
                }))
            }
            Kernel::GlobalPool { max } => {
                let (x, shape) = f32_arg(0)?;
                if shape.len() < 3 {
                    return Err(failed(step, format!("expected [N, C, spatial…], got {shape:?}")));
                }
                let mut out_shape = shape.to_vec();
                out_shape[2..].fill(1);
                let size = shape[2..].iter().product();
                Ok(output(arena, out_shape, |o| global_pool(*max, x, size, o)))
            }
            Kernel::Transpose { perm } => {
                let (x, shape) = f32_arg(0)?;
                if shape.len() != perm.len() {
                    return Err(failed(step, format!("{shape:?} does not have {} axes", perm.len())));
                }
                let out_shape = perm.iter().map(|&a| shape[a]).collect();
                Ok(output(arena, out_shape, |o| layout::transpose(x, shape, perm, o)))
            }
            Kernel::Map(f) => {
                let (x, shape) = f32_arg(0)?;
                Ok(output(arena, shape.to_vec(), |o| unary::map(*f, x, o)))
            }
            Kernel::LogSoftmax { axis } => {
                let (x, shape) = f32_arg(0)?;
                if *axis >= shape.len() {
                    return Err(failed(step, format!("axis {axis} is out of range for {shape:?}")));
                }
                Ok(output(arena, shape.to_vec(), |o| elementwise::log_softmax_axis(x, shape, *axis, o)))
            }
            Kernel::Reduce { op, axes, keepdims } => {
                let (x, shape) = f32_arg(0)?;
                if axes.iter().any(|&a| a >= shape.len()) {
                    return Err(failed(step, format!("axes {axes:?} are out of range for {shape:?}")));
                }
                let reduced: Vec<bool> = (0..shape.len()).map(|a| axes.contains(&a)).collect();
                let out_shape = shape
                    .iter()
                    .zip(&reduced)
                    .filter_map(|(&d, &r)| match (r, keepdims) {
                        (false, _) => Some(d),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                Ok(output(arena, out_shape, |o| reduce(*op, x, shape, &reduced, o)))
            }
            Kernel::Slice { axes } => {
                let (x, shape) = f32_arg(0)?;
                let mut ranges: Vec<(usize, usize, isize)> = shape.iter().map(|&d| (0, d, 1)).collect();
                for s in axes {
                    let Some(&d) = shape.get(s.axis) else {
                        return Err(failed(step, format!("axis {} is out of range for {shape:?}", s.axis)));
                    };
                    let (first, len) = slice_range(d, s.start, s.end, s.step);
                    ranges[s.axis] = (first, len, s.step as isize);
                }
                let out_shape = ranges.iter().map(|r| r.1).collect();
                Ok(output(arena, out_shape, |o| layout::slice(x, shape, &ranges, o)))
            }
            Kernel::Normalize(norm) => {
                let (x, shape) = f32_arg(0)?;
                let &[_, f] = shape else {
                    return Err(failed(step, format!("expected [rows, features], got {shape:?}")));
                };
                Ok(output(arena, shape.to_vec(), |o| normalize(*norm, x, f, o)))
            }
            Kernel::Pad { pads, fill } => {
                let (x, shape) = f32_arg(0)?;
                let rank = shape.len();
                if pads.len() != 2 * rank {
                    return Err(failed(step, format!("{shape:?} does not have {} axes", pads.len() / 2)));
                }
                let mut out_shape = Vec::with_capacity(rank);
                for (a, &d) in shape.iter().enumerate() {
                    let (begin, end) = (pads[a], pads[rank + a]);
                    let fits = match fill {
                        PadFill::Constant(_) => true,
                        PadFill::Edge => d > 0 || begin + end == 0,
                        PadFill::Reflect => begin < d && end < d || begin + end == 0,
                    };
                    if !fits {
                        return Err(failed(
                            step,
                            format!("pads {begin}, {end} do not fit axis {a} of {shape:?}"),
                        ));
                    }
                    out_shape.push(d + begin + end);
                }
                Ok(output(arena, out_shape, |o| pad(x, shape, pads, *fill, o)))
            }
            Kernel::Resize { resize: r, sizes } => {
                let (x, shape) = f32_arg(0)?;
                let &[n, c, h, w] = shape else {
                    return Err(failed(step, format!("expected [N, C, H, W], got {shape:?}")));
                };
                if h == 0 || w == 0 {
                    return Err(failed(step, format!("cannot resize empty planes {shape:?}")));
                }
                Ok(output(arena, vec![n, c, sizes[0], sizes[1]], |o| resize(r, x, n * c, [h, w], *sizes, o)))
            }
            Kernel::Impute { fill } => {
                let (x, shape) = f32_arg(0)?;
                match shape {
                    [_, f] if *f == fill.len() || fill.len() == 1 => {}
                    other => {
                        return Err(failed(step, format!("expected [rows, {}], got {other:?}", fill.len())))
                    }
                }
                Ok(output(arena, shape.to_vec(), |o| impute(x, fill, o)))
            }
        }
    }
}

/// The batch, `[H, W]` and output `[OH, OW]` of `window` over an `[N, C, H, W]` input of
/// `channels` channels.
fn image(
    shape: &[usize],
    channels: usize,
    window: &Window,
    ceil: bool,
) -> std::result::Result<(usize, [usize; 2], [usize; 2]), String> {
    let &[n, c, h, w] = shape else { return Err(format!("expected [N, C, H, W], got {shape:?}")) };
    if c != channels {
        return Err(format!("expected {channels} channels, got {shape:?}"));
    }
    let out =
        window.output([h, w], ceil).ok_or_else(|| format!("the window does not fit a {h}×{w} input"))?;
    Ok((n, [h, w], out))
}

/// Output dimensions of a reshape: `-1` infers one dimension, `0` copies the input's.
pub(super) fn resolve_reshape(input: &[usize], target: &[i64]) -> std::result::Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    let mut dims = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 => {
                infer = Some(i);
                dims.push(1);
            }
            0 => dims.push(input.get(i).copied().unwrap_or(1)),
            d => dims.push(usize::try_from(d).map_err(|_| format!("invalid dimension {d}"))?),
        }
    }
    if let Some(i) = infer {
        let known: usize = dims.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} into {target:?}"));
        }
        dims[i] = total / known;
    }
    if dims.iter().product::<usize>() != total {
        return Err(format!("cannot reshape {input:?} ({total} values) into {target:?}"));
    }
    Ok(dims)
}
