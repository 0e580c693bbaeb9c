//! The ops of opset 1: parsing attributes and inferring output shapes (docs/format.md §4).

use std::collections::BTreeMap;

use super::shape::{axis, broadcast, Dim, Shape};
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

type Attrs = BTreeMap<String, serde_json::Value>;

/// The `weight_scale` attribute: the name of an int8 weight's stored scales.
fn weight_scale(attrs: &Attrs) -> Result<Option<String>, String> {
    match attrs.get("weight_scale") {
        None => Ok(None),
        Some(serde_json::Value::String(name)) => Ok(Some(name.clone())),
        Some(_) => Err("attribute `weight_scale` must be a tensor name".into()),
    }
}

fn attr_f64(attrs: &Attrs, key: &str, default: f64) -> Result<f64, String> {
    match attrs.get(key) {
        None => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| format!("attribute `{key}` must be a number")),
    }
}

fn attr_bool(attrs: &Attrs, key: &str) -> Result<bool, String> {
    match attrs.get(key) {
        None => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(serde_json::Value::Number(n)) => Ok(n.as_i64() == Some(1)),
        Some(_) => Err(format!("attribute `{key}` must be a boolean")),
    }
}

fn attr_i64(attrs: &Attrs, key: &str, default: Option<i64>) -> Result<i64, String> {
    match attrs.get(key) {
        None => default.ok_or_else(|| format!("attribute `{key}` is required")),
        Some(v) => v.as_i64().ok_or_else(|| format!("attribute `{key}` must be an integer")),
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
        _ => &[],
    };
    if let Some(unknown) = attrs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown attribute `{unknown}`"));
    }
    let out = match op {
        "Linear" => {
            arity(inputs, 2, 3)?;
            let (n, k) = rank2(inputs[0], "input")?;
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
            (Op::Linear { layout, scale, input_scale }, vec![vec![n, m]])
        }
        "Gemm" => {
            arity(inputs, 2, 3)?;
            let trans_a = attr_bool(attrs, "trans_a")?;
            let trans_b = attr_bool(attrs, "trans_b")?;
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
            let (n, k) = rank2(inputs[0], "A")?;
            let (kb, m) = rank2(inputs[1], "B")?;
            same(k, kb, "inner dimensions")?;
            (Op::MatMul, vec![vec![n, m]])
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
        other => return Err(format!("unknown op `{other}` in opset 1")),
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
    let known_in: Option<usize> = input.iter().try_fold(1usize, |acc, d| match d {
        Dim::Fixed(v) => acc.checked_mul(*v),
        Dim::Var => None,
    });
    let fixed_out: Option<usize> = out.iter().try_fold(1usize, |acc, d| match d {
        Dim::Fixed(v) => acc.checked_mul(*v),
        Dim::Var => Some(acc),
    });
    if let (Some(total), Some(fixed)) = (known_in, fixed_out) {
        let has_var = out.contains(&Dim::Var);
        if has_var {
            if fixed == 0 || !total.is_multiple_of(fixed) {
                return Err(format!("cannot reshape {input:?} into {target:?}"));
            }
            for d in out.iter_mut() {
                if *d == Dim::Var {
                    *d = Dim::Fixed(total / fixed);
                }
            }
        } else if total != fixed {
            return Err(format!("cannot reshape {input:?} ({total} elements) into {target:?}"));
        }
    }
    Ok(out)
}
