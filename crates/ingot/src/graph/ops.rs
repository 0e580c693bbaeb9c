//! The ops of opset 1: parsing attributes and inferring output shapes (docs/format.md §4).

use std::collections::BTreeMap;

use super::shape::{axis, broadcast, Dim, Shape};
use crate::kernels::linear::LinearKernel;

/// A validated op with its attributes.
#[derive(Debug)]
pub(crate) enum Op {
    /// `x·wᵀ + b` with non-constant weights.
    Linear,
    /// `Linear`/`Gemm` with constant weights: the fused CPU kernel.
    LinearConst(LinearKernel),
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
}

type Attrs = BTreeMap<String, serde_json::Value>;

fn attr_f64(attrs: &Attrs, key: &str, default: f64) -> Result<f64, String> {
    match attrs.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("attribute `{key}` must be a number")),
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
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("attribute `{key}` must be an integer")),
    }
}

fn arity(inputs: &[&Shape], min: usize, max: usize) -> Result<(), String> {
    if inputs.len() < min || inputs.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
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
pub(crate) fn build(
    op: &str,
    attrs: &Attrs,
    inputs: &[&Shape],
) -> Result<(Op, Vec<Shape>), String> {
    let known: &[&str] = match op {
        "Gemm" => &["alpha", "beta", "trans_a", "trans_b"],
        "Softmax" => &["axis"],
        "Concat" => &["axis"],
        "Reshape" => &["shape"],
        _ => &[],
    };
    if let Some(unknown) = attrs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown attribute `{unknown}`"));
    }
    let out = match op {
        "Linear" => {
            arity(inputs, 2, 3)?;
            let (n, k) = rank2(inputs[0], "input")?;
            let (m, kw) = rank2(inputs[1], "weight")?;
            same(k, kw, "input features vs weight columns")?;
            if let Some(b) = inputs.get(2) {
                match b.as_slice() {
                    [bm] => same(*bm, m, "bias length vs weight rows")?,
                    other => return Err(format!("bias must be 1-D, got {other:?}")),
                }
            }
            (Op::Linear, vec![vec![n, m]])
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
            0 => *input
                .get(i)
                .ok_or(format!("`0` at position {i} has no input dimension"))?,
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
            if fixed == 0 || total % fixed != 0 {
                return Err(format!("cannot reshape {input:?} into {target:?}"));
            }
            for d in out.iter_mut() {
                if *d == Dim::Var {
                    *d = Dim::Fixed(total / fixed);
                }
            }
        } else if total != fixed {
            return Err(format!(
                "cannot reshape {input:?} ({total} elements) into {target:?}"
            ));
        }
    }
    Ok(out)
}
