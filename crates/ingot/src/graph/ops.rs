//! The ops of opsets 1 and 2: parsing attributes and inferring output shapes (docs/format.md
//! §4). The window ops live in `spatial`, the layout ops in `layout`, the element-wise
//! functions in `unary`; this module holds the op set itself and dispatches.

use super::attrs::{attr_bool, attr_f64, attr_i64, Attrs};
use super::layout::{self, PadMode, SliceAxis};
use super::shape::{axis, broadcast, Dim, Shape};
use super::spatial::{self, ResizeAttrs, Window};
use super::unary;
use crate::format::packed::{packed_shape, PANEL_WIDTH};
use crate::trees::EnsembleAttrs;

/// A validated op with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// `x·wᵀ + b`, the weight stored as `layout`; an int8 weight names its per-output scales.
    Linear {
        layout: WeightLayout,
        /// The stored F32 `[out]` tensor of an I8 weight's scales (`weight_scale`).
        scale: Option<String>,
        /// The stored F32 `[in]` tensor each input column is multiplied by before an int8
        /// weight (`input_scale`: the calibration moved that much of the column's range into
        /// the weight).
        input_scale: Option<String>,
    },
    Gemm {
        alpha: f64,
        beta: f64,
        trans_a: bool,
        trans_b: bool,
    },
    MatMul,
    Add,
    Sub,
    Mul,
    Div,
    Relu,
    Tanh,
    Sigmoid,
    Identity,
    Softmax {
        axis: usize,
    },
    Concat {
        axis: usize,
    },
    Reshape {
        shape: Vec<i64>,
    },
    /// Rows of a stored table; an int8 table names its per-row scales.
    Gather {
        /// The stored F32 `[rows]` tensor of an I8 table's scales (`weight_scale`).
        scale: Option<String>,
    },
    LayerNorm {
        eps: f32,
    },
    Gelu,
    MultiHeadAttention {
        heads: usize,
    },
    SequencePool {
        mode: PoolMode,
    },
    L2Normalize,
    /// Trees over `[rows, features]` rows; the ensemble itself is read from the stored
    /// operands when the graph is lowered (`crate::trees`).
    TreeEnsemble(EnsembleAttrs),
    /// 2-D convolution of `[N, C, H, W]` images with a stored `[M, C/group, kH, kW]` weight
    /// and an optional stored `[M]` bias (opset 2).
    Conv {
        window: Window,
        group: usize,
    },
    /// The maximum of each window's input values; padding never wins (opset 2).
    MaxPool {
        window: Window,
        ceil_mode: bool,
    },
    /// The mean of each window's input values, or (`count_include_pad`) their sum divided by
    /// the number of the window's taps within the padded input (opset 2).
    AveragePool {
        window: Window,
        ceil_mode: bool,
        count_include_pad: bool,
    },
    /// The mean of each `[N, C]` plane (opset 2).
    GlobalAveragePool,
    /// The maximum of each `[N, C]` plane (opset 2).
    GlobalMaxPool,
    /// Axes permuted: output axis `i` is input axis `perm[i]` (opset 2).
    Transpose {
        perm: Vec<usize>,
    },
    /// `x` for `x ≥ 0`, else `alpha·x` (opset 2).
    LeakyRelu {
        alpha: f32,
    },
    /// `x` clamped to `[min, max]` (±∞ when unbounded); NaN stays NaN (opset 2).
    Clip {
        min: f32,
        max: f32,
    },
    /// `eˣ` (opset 2).
    Exp,
    /// Natural logarithm (opset 2).
    Log,
    /// Square root (opset 2).
    Sqrt,
    /// `|x|` (opset 2).
    Abs,
    /// `−x` (opset 2).
    Neg,
    /// The error function (opset 2).
    Erf,
    /// `1 / x` (opset 2).
    Reciprocal,
    /// `max(0, min(1, alpha·x + beta))` (opset 2).
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x · max(0, min(1, x/6 + 1/2))` (opset 2).
    HardSwish,
    /// `ln(1 + eˣ)` (opset 2).
    Softplus,
    /// `x^exponent` for a constant exponent (opset 2).
    Pow {
        exponent: f32,
    },
    /// `x − max − ln Σ e^(x − max)` along `axis` (opset 2).
    LogSoftmax {
        axis: usize,
    },
    /// A mean, sum or maximum over `axes` (sorted, distinct), which stay as size 1 with
    /// `keepdims` (opset 2).
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        keepdims: bool,
    },
    /// A strided slice of some axes (sorted by axis) (opset 2).
    Slice {
        axes: Vec<SliceAxis>,
    },
    /// Rows of `[N, F]` divided by their norm; a zero row stays zero (opset 2).
    Normalize {
        norm: NormKind,
    },
    /// `[N, F]` with each NaN in column `j` replaced by a stored `[F]` fill value (opset 2).
    Impute,
    /// The input with a border: `pads` `[begin…, end…]` per axis, filled by `mode` (opset 2).
    Pad {
        pads: Vec<usize>,
        mode: PadMode,
    },
    /// `[N, C, H, W]` planes resized to a fixed `[OH, OW]`, nearest or bilinear (opset 2).
    Resize(ResizeAttrs),
}

/// What a `Reduce*` op computes over its axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReduceKind {
    /// `ReduceMean`.
    Mean,
    /// `ReduceSum`.
    Sum,
    /// `ReduceMax`.
    Max,
}

/// The norm a `Normalize` node divides each row by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NormKind {
    /// `Σ |x|`.
    L1,
    /// `sqrt(Σ x²)`.
    L2,
    /// `max |x|`.
    Max,
}

impl Op {
    /// The opset that introduced this op used on inputs of `shapes`: 2 for the ops added in
    /// opset 2, and for a `Linear` or `MatMul` on operands of rank other than 2.
    pub(crate) fn opset(&self, shapes: &[&Shape]) -> u32 {
        let beyond_2d = shapes.iter().take(2).any(|s| s.len() != 2);
        match self {
            Op::Linear { .. } => 1 + u32::from(shapes.first().is_some_and(|s| s.len() != 2)),
            Op::MatMul => 1 + u32::from(beyond_2d),
            Op::Gemm { .. }
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Relu
            | Op::Tanh
            | Op::Sigmoid
            | Op::Identity
            | Op::Softmax { .. }
            | Op::Concat { .. }
            | Op::Reshape { .. }
            | Op::Gather { .. }
            | Op::LayerNorm { .. }
            | Op::Gelu
            | Op::MultiHeadAttention { .. }
            | Op::SequencePool { .. }
            | Op::L2Normalize
            | Op::TreeEnsemble(_) => 1,
            _ => 2,
        }
    }
}

/// How a `Linear` node's weight is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightLayout {
    /// Row-major `[out, in]`.
    Rows,
    /// The `packed16` layout (`crate::format::packed`) for `out_features` outputs.
    Packed16 { out_features: usize },
}

/// How a sequence's token vectors become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolMode {
    /// Mean over the sequence's tokens (sentence-transformers' mean pooling with its mask).
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
}

/// Weight layout of a `Linear` node: plain `[m, k]`, or pre-packed `[ceil(m/16), k, 16]`.
fn weight_layout(attrs: &Attrs) -> Result<WeightLayout, String> {
    match attrs.get("weight_layout").and_then(|v| v.as_str()) {
        None | Some("rows") => Ok(WeightLayout::Rows),
        Some("packed16") => attrs
            .get("out_features")
            .and_then(|v| v.as_u64())
            .and_then(|m| usize::try_from(m).ok())
            .filter(|&m| m > 0)
            .map(|out_features| WeightLayout::Packed16 { out_features })
            .ok_or_else(|| "`packed16` weights need a positive `out_features`".into()),
        Some(other) => Err(format!("unknown weight_layout `{other}`")),
    }
}

/// The `weight_scale` attribute: the name of an int8 weight's stored scales.
fn weight_scale(attrs: &Attrs) -> Result<Option<String>, String> {
    match attrs.get("weight_scale") {
        None => Ok(None),
        Some(serde_json::Value::String(name)) => Ok(Some(name.clone())),
        Some(_) => Err("attribute `weight_scale` must be a tensor name".into()),
    }
}

fn arity(inputs: &[&Shape], min: usize, max: usize) -> Result<(), String> {
    if inputs.len() < min || inputs.len() > max {
        let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
        return Err(format!("takes {want} inputs, got {}", inputs.len()));
    }
    Ok(())
}

fn rank2(s: &Shape, what: &str) -> Result<(Dim, Dim), String> {
    match s.as_slice() {
        [a, b] => Ok((*a, *b)),
        other => Err(format!("{what} must be 2-D, got shape {other:?}")),
    }
}

/// The leading dimensions and the last two of a shape of rank ≥ 2.
fn matrices(s: &Shape, what: &str) -> Result<(Shape, Dim, Dim), String> {
    match s.as_slice() {
        [lead @ .., a, b] => Ok((lead.to_vec(), *a, *b)),
        other => Err(format!("{what} must have rank ≥ 2, got shape {other:?}")),
    }
}

fn same(a: Dim, b: Dim, what: &str) -> Result<(), String> {
    match (a, b) {
        (Dim::Fixed(x), Dim::Fixed(y)) if x != y => Err(format!("{what}: {x} vs {y}")),
        _ => Ok(()),
    }
}

/// Parses one node's op and attributes and infers its output shapes.
pub(crate) fn build(op: &str, attrs: &Attrs, inputs: &[&Shape]) -> Result<(Op, Vec<Shape>), String> {
    let known: &[&str] = match op {
        "Gemm" => &["alpha", "beta", "trans_a", "trans_b"],
        "Softmax" => &["axis"],
        "Concat" => &["axis"],
        "Reshape" => &["shape"],
        "Linear" => &["weight_layout", "out_features", "weight_scale", "input_scale"],
        "Gather" => &["weight_scale"],
        "LayerNorm" => &["epsilon"],
        "MultiHeadAttention" => &["num_heads"],
        "SequencePool" => &["mode"],
        "TreeEnsemble" => &["n_outputs", "comparison", "aggregate", "base_score"],
        "Conv" => &["strides", "pads", "dilations", "group", "kernel_shape"],
        "MaxPool" => &["kernel_shape", "strides", "pads", "dilations", "ceil_mode"],
        "AveragePool" => &["kernel_shape", "strides", "pads", "dilations", "ceil_mode", "count_include_pad"],
        "Transpose" => &["perm"],
        "LeakyRelu" => &["alpha"],
        "Clip" => &["min", "max"],
        "HardSigmoid" => &["alpha", "beta"],
        "Pow" => &["exponent"],
        "LogSoftmax" => &["axis"],
        "ReduceMean" | "ReduceSum" | "ReduceMax" => &["axes", "keepdims"],
        "Slice" => &["starts", "ends", "axes", "steps"],
        "Normalize" => &["norm"],
        "Pad" => &["pads", "mode", "value"],
        "Resize" => &["mode", "coordinate_transformation_mode", "nearest_mode", "sizes", "scales"],
        _ => &[],
    };
    if let Some(unknown) = attrs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown attribute `{unknown}`"));
    }
    let out = match op {
        "Linear" => {
            arity(inputs, 2, 3)?;
            let (lead, k) = match inputs[0].as_slice() {
                [lead @ .., k] if !lead.is_empty() => (lead.to_vec(), *k),
                other => return Err(format!("input must have rank ≥ 2, got shape {other:?}")),
            };
            let layout = weight_layout(attrs)?;
            let (m, kw) = match layout {
                WeightLayout::Rows => rank2(inputs[1], "weight")?,
                WeightLayout::Packed16 { out_features: m } => {
                    let [panels, _, lanes] = packed_shape(m, 0);
                    match inputs[1].as_slice() {
                        [Dim::Fixed(p), kw, Dim::Fixed(l)] if *p == panels && *l == lanes => (Dim::Fixed(m), *kw),
                        other => {
                            return Err(format!(
                                "packed16 weight for {m} outputs must be [{panels}, k, {PANEL_WIDTH}], got {other:?}"
                            ))
                        }
                    }
                }
            };
            same(k, kw, "input features vs weight columns")?;
            if let Some(b) = inputs.get(2) {
                match b.as_slice() {
                    [bm] => same(*bm, m, "bias length vs weight rows")?,
                    other => return Err(format!("bias must be 1-D, got {other:?}")),
                }
            }
            let scale = weight_scale(attrs)?;
            if scale.is_some() && layout != WeightLayout::Rows {
                return Err("`weight_scale` needs the `rows` weight layout".into());
            }
            let input_scale = match attrs.get("input_scale") {
                None => None,
                Some(serde_json::Value::String(name)) if scale.is_some() => Some(name.clone()),
                Some(serde_json::Value::String(_)) => return Err("`input_scale` needs `weight_scale`".into()),
                Some(_) => return Err("attribute `input_scale` must be a tensor name".into()),
            };
            let out = lead.into_iter().chain([m]).collect();
            (Op::Linear { layout, scale, input_scale }, vec![out])
        }
        "Gemm" => {
            arity(inputs, 2, 3)?;
            let trans_a = attr_bool(attrs, "trans_a", false)?;
            let trans_b = attr_bool(attrs, "trans_b", false)?;
            let (a0, a1) = rank2(inputs[0], "A")?;
            let (b0, b1) = rank2(inputs[1], "B")?;
            let (m, ka) = if trans_a { (a1, a0) } else { (a0, a1) };
            let (kb, n) = if trans_b { (b1, b0) } else { (b0, b1) };
            same(ka, kb, "inner dimensions")?;
            if let Some(c) = inputs.get(2) {
                broadcast(c, &[m, n])?;
            }
            let gemm = Op::Gemm {
                alpha: attr_f64(attrs, "alpha", 1.0)?,
                beta: attr_f64(attrs, "beta", 1.0)?,
                trans_a,
                trans_b,
            };
            (gemm, vec![vec![m, n]])
        }
        "MatMul" => {
            arity(inputs, 2, 2)?;
            let (batch_a, n, k) = matrices(inputs[0], "A")?;
            let (batch_b, kb, m) = matrices(inputs[1], "B")?;
            same(k, kb, "inner dimensions")?;
            let batch = broadcast(&batch_a, &batch_b).map_err(|e| format!("batch dimensions: {e}"))?;
            (Op::MatMul, vec![batch.into_iter().chain([n, m]).collect()])
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            arity(inputs, 2, 2)?;
            let shape = broadcast(inputs[0], inputs[1])?;
            let op = match op {
                "Add" => Op::Add,
                "Sub" => Op::Sub,
                "Mul" => Op::Mul,
                _ => Op::Div,
            };
            (op, vec![shape])
        }
        "Relu" | "Tanh" | "Sigmoid" | "Identity" => {
            arity(inputs, 1, 1)?;
            let op = match op {
                "Relu" => Op::Relu,
                "Tanh" => Op::Tanh,
                "Sigmoid" => Op::Sigmoid,
                _ => Op::Identity,
            };
            (op, vec![inputs[0].clone()])
        }
        "Softmax" => {
            arity(inputs, 1, 1)?;
            let axis = axis(attr_i64(attrs, "axis", Some(-1))?, inputs[0].len())?;
            (Op::Softmax { axis }, vec![inputs[0].clone()])
        }
        "Concat" => {
            if inputs.is_empty() {
                return Err("takes at least 1 input".into());
            }
            let ax = axis(attr_i64(attrs, "axis", None)?, inputs[0].len())?;
            (Op::Concat { axis: ax }, vec![concat_shape(inputs, ax)?])
        }
        "Reshape" => {
            arity(inputs, 1, 1)?;
            let shape: Vec<i64> = attrs
                .get("shape")
                .and_then(|v| v.as_array())
                .and_then(|a| a.iter().map(|d| d.as_i64()).collect())
                .ok_or("attribute `shape` must be a list of integers")?;
            let out = reshape_shape(inputs[0], &shape)?;
            (Op::Reshape { shape }, vec![out])
        }
        "Gather" => {
            arity(inputs, 2, 2)?;
            let (_, h) = rank2(inputs[0], "table")?;
            let [t] = inputs[1].as_slice() else { return Err("ids must be 1-D".into()) };
            (Op::Gather { scale: weight_scale(attrs)? }, vec![vec![*t, h]])
        }
        "LayerNorm" => {
            arity(inputs, 3, 3)?;
            let h = *inputs[0].last().ok_or("input must have at least one dimension")?;
            for (what, s) in [("gamma", inputs[1]), ("beta", inputs[2])] {
                match s.as_slice() {
                    [d] => same(*d, h, &format!("{what} length vs last dimension"))?,
                    other => return Err(format!("{what} must be 1-D, got {other:?}")),
                }
            }
            let eps = attr_f64(attrs, "epsilon", 1e-5)?;
            if !(eps > 0.0 && eps.is_finite()) {
                return Err("`epsilon` must be positive".into());
            }
            (Op::LayerNorm { eps: eps as f32 }, vec![inputs[0].clone()])
        }
        "Gelu" => {
            arity(inputs, 1, 1)?;
            (Op::Gelu, vec![inputs[0].clone()])
        }
        "MultiHeadAttention" => {
            arity(inputs, 2, 2)?;
            let (t, w) = rank2(inputs[0], "qkv")?;
            let heads = attr_i64(attrs, "num_heads", None)?;
            let heads =
                usize::try_from(heads).ok().filter(|&h| h > 0).ok_or("`num_heads` must be positive")?;
            let hidden = match w {
                Dim::Fixed(w) if w % 3 == 0 && w > 0 && (w / 3) % heads == 0 => w / 3,
                other => return Err(format!("qkv width {other:?} is not 3 × num_heads({heads}) × head_dim")),
            };
            if inputs[1].len() != 1 {
                return Err("sequence offsets must be 1-D".into());
            }
            (Op::MultiHeadAttention { heads }, vec![vec![t, Dim::Fixed(hidden)]])
        }
        "SequencePool" => {
            arity(inputs, 2, 2)?;
            let (_, h) = rank2(inputs[0], "input")?;
            let mode = match attrs.get("mode").and_then(|v| v.as_str()).unwrap_or("mean") {
                "mean" => PoolMode::Mean,
                "cls" => PoolMode::Cls,
                "max" => PoolMode::Max,
                other => return Err(format!("unknown pooling mode `{other}` (mean, cls, max)")),
            };
            if inputs[1].len() != 1 {
                return Err("sequence offsets must be 1-D".into());
            }
            (Op::SequencePool { mode }, vec![vec![Dim::Var, h]])
        }
        "L2Normalize" => {
            arity(inputs, 1, 1)?;
            rank2(inputs[0], "input")?;
            (Op::L2Normalize, vec![inputs[0].clone()])
        }
        "TreeEnsemble" => {
            arity(inputs, 5, 7)?;
            if inputs.len() == 6 {
                return Err("category sets come with their bits: 4 or 6 stored tensors".into());
            }
            let (n, f) = rank2(inputs[0], "input")?;
            if f.fixed().is_none() {
                return Err("the input width must be fixed".into());
            }
            let attrs = EnsembleAttrs::parse(attrs)?;
            let width = Dim::Fixed(attrs.n_outputs);
            (Op::TreeEnsemble(attrs), vec![vec![n, width]])
        }
        "Conv" => {
            arity(inputs, 2, 3)?;
            spatial::conv(attrs, inputs)?
        }
        "MaxPool" | "AveragePool" => {
            arity(inputs, 1, 1)?;
            spatial::pool(op, attrs, inputs[0])?
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            arity(inputs, 1, 1)?;
            spatial::global_pool(op, inputs[0])?
        }
        "Transpose" => {
            arity(inputs, 1, 1)?;
            let (perm, out) = layout::transpose(attrs, inputs[0])?;
            (Op::Transpose { perm }, vec![out])
        }
        "LogSoftmax" => {
            arity(inputs, 1, 1)?;
            let axis = axis(attr_i64(attrs, "axis", Some(-1))?, inputs[0].len())?;
            (Op::LogSoftmax { axis }, vec![inputs[0].clone()])
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" => {
            arity(inputs, 1, 1)?;
            let (axes, keepdims, out) = layout::reduce(attrs, inputs[0])?;
            let kind = match op {
                "ReduceMean" => ReduceKind::Mean,
                "ReduceSum" => ReduceKind::Sum,
                _ => ReduceKind::Max,
            };
            (Op::Reduce { kind, axes, keepdims }, vec![out])
        }
        "Slice" => {
            arity(inputs, 1, 1)?;
            let (axes, out) = layout::slice(attrs, inputs[0])?;
            (Op::Slice { axes }, vec![out])
        }
        "Pad" => {
            arity(inputs, 1, 1)?;
            let (pads, mode, out) = layout::pad(attrs, inputs[0])?;
            (Op::Pad { pads, mode }, vec![out])
        }
        "Resize" => {
            arity(inputs, 1, 1)?;
            spatial::resize(attrs, inputs[0])?
        }
        "Normalize" => {
            arity(inputs, 1, 1)?;
            rank2(inputs[0], "input")?;
            let norm = match attrs.get("norm").and_then(|v| v.as_str()) {
                Some("l1") => NormKind::L1,
                Some("l2") => NormKind::L2,
                Some("max") => NormKind::Max,
                _ => return Err("attribute `norm` must be \"l1\", \"l2\" or \"max\"".into()),
            };
            (Op::Normalize { norm }, vec![inputs[0].clone()])
        }
        "Impute" => {
            arity(inputs, 2, 2)?;
            let (_, f) = rank2(inputs[0], "input")?;
            match inputs[1].as_slice() {
                [Dim::Fixed(1)] => {}
                [fill] => same(*fill, f, "fill values vs input columns")?,
                other => return Err(format!("fill values must be 1-D, got {other:?}")),
            }
            (Op::Impute, vec![inputs[0].clone()])
        }
        name if unary::NAMES.contains(&name) => {
            arity(inputs, 1, 1)?;
            (unary::parse(name, attrs)?, vec![inputs[0].clone()])
        }
        other => return Err(format!("unknown op `{other}` (this build implements opset {})", super::OPSET)),
    };
    Ok(out)
}

fn concat_shape(inputs: &[&Shape], ax: usize) -> Result<Shape, String> {
    let mut shape = inputs[0].clone();
    for s in &inputs[1..] {
        if s.len() != shape.len() {
            return Err(format!("inputs have ranks {} and {}", shape.len(), s.len()));
        }
        for d in 0..shape.len() {
            if d == ax {
                shape[d] = match (shape[d], s[d]) {
                    (Dim::Fixed(a), Dim::Fixed(b)) => Dim::Fixed(a + b),
                    _ => Dim::Var,
                };
            } else {
                same(shape[d], s[d], &format!("dimension {d}"))?;
                if shape[d] == Dim::Var {
                    shape[d] = s[d];
                }
            }
        }
    }
    Ok(shape)
}

/// Output shape of a reshape; `-1` infers one dimension, `0` copies the input's.
pub(crate) fn reshape_shape(input: &Shape, target: &[i64]) -> Result<Shape, String> {
    if target.iter().filter(|&&d| d == -1).count() > 1 {
        return Err("at most one `-1` in `shape`".into());
    }
    let mut out = Vec::with_capacity(target.len());
    for (i, &d) in target.iter().enumerate() {
        out.push(match d {
            -1 => Dim::Var,
            0 => *input.get(i).ok_or(format!("`0` at position {i} has no input dimension"))?,
            d if d > 0 => Dim::Fixed(d as usize),
            d => return Err(format!("invalid dimension {d} in `shape`")),
        });
    }
    // A variable input dimension that a `0` copies to the same position cancels out: the
    // rest of the sizes still decide a `-1` (`[0, -1]` of `[-1, 8, 4]` is `[-1, 32]`).
    let copied_var = |i: usize| target.get(i) == Some(&0) && input.get(i) == Some(&Dim::Var);
    let known_in: Option<usize> =
        input.iter().enumerate().filter(|(i, _)| !copied_var(*i)).try_fold(1usize, |acc, (_, d)| match d {
            Dim::Fixed(v) => acc.checked_mul(*v),
            Dim::Var => None,
        });
    let fixed_out: Option<usize> =
        out.iter().enumerate().filter(|(i, _)| !copied_var(*i)).try_fold(1usize, |acc, (_, d)| match d {
            Dim::Fixed(v) => acc.checked_mul(*v),
            Dim::Var => Some(acc),
        });
    if let (Some(total), Some(fixed)) = (known_in, fixed_out) {
        match target.iter().position(|&d| d == -1) {
            Some(infer) => {
                if fixed == 0 || !total.is_multiple_of(fixed) {
                    return Err(format!("cannot reshape {input:?} into {target:?}"));
                }
                out[infer] = Dim::Fixed(total / fixed);
            }
            None if total != fixed => {
                return Err(format!("cannot reshape {input:?} ({total} elements) into {target:?}"));
            }
            None => {}
        }
    }
    Ok(out)
}
