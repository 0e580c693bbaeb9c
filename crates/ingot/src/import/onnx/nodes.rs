//! Translation of `ai.onnx` nodes into Ingot graph nodes.
//!
//! Nodes over constants fold (`fold`). `Gemm` and `MatMul` with a stored weight become
//! `Linear` (the weight transposed to `[out, in]`, `alpha`/`beta` folded in), and a bias `Add`
//! that only they read joins them; `BatchNormalization` folds into the `Conv` or `Linear`
//! before it when nothing else reads that output, and becomes a per-channel `Mul`/`Add`
//! otherwise; 1-D convolutions and pools run as 2-D ones of height 1. Shape-changing ops whose
//! result is known at import (`Flatten`, `Squeeze`, `Unsqueeze`, `Reshape` with a folded target)
//! become one `Reshape`.

use serde_json::json;

use super::attrs::Attrs;
use super::fold::{self, const_ints, slice_params, squeezed_dims};
use super::proto::{data_type, NodeProto};
use super::tensor::Const;
use super::translate::{attrs, Arg, Dyn, SymDim, Val};
use super::{Fail, Importer};
use crate::format::Activation;
use crate::graph::Dim;

/// The `ai.onnx` ops the importer translates (some only when their inputs are constants).
pub(crate) fn supported(op: &str) -> bool {
    matches!(
        op,
        "Constant"
            | "Shape"
            | "Gather"
            | "Unsqueeze"
            | "Squeeze"
            | "Concat"
            | "Reshape"
            | "Range"
            | "ConstantOfShape"
            | "Equal"
            | "Where"
            | "Identity"
            | "Dropout"
            | "Cast"
            | "Gemm"
            | "MatMul"
            | "Add"
            | "Sub"
            | "Mul"
            | "Div"
            | "Pow"
            | "Relu"
            | "Sigmoid"
            | "Tanh"
            | "Exp"
            | "Log"
            | "Sqrt"
            | "Abs"
            | "Neg"
            | "Erf"
            | "Reciprocal"
            | "Softplus"
            | "HardSwish"
            | "LeakyRelu"
            | "HardSigmoid"
            | "Clip"
            | "Gelu"
            | "LayerNormalization"
            | "Softmax"
            | "LogSoftmax"
            | "Conv"
            | "BatchNormalization"
            | "MaxPool"
            | "AveragePool"
            | "GlobalAveragePool"
            | "GlobalMaxPool"
            | "Flatten"
            | "Transpose"
            | "Slice"
            | "ReduceMean"
            | "ReduceSum"
            | "ReduceMax"
            | "ArgMax"
            | "Pad"
            | "Resize"
            | "Upsample"
    )
}

/// Element-wise ops without attributes, Ingot's name for each.
const UNARY: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
    "Neg",
    "Erf",
    "Reciprocal",
    "Softplus",
    "HardSwish",
];

/// A stored tensor or a computed value, as an operand.
enum Operand {
    Value(Dyn),
    Stored(String),
}

impl Operand {
    fn arg(&self) -> Arg<'_> {
        match self {
            Operand::Value(d) => Arg::Value(d),
            Operand::Stored(s) => Arg::Stored(s),
        }
    }
}

fn unsupported(what: impl Into<String>) -> Fail {
    Fail::Unsupported(what.into())
}

/// Input `i`, which must be present.
fn input(ins: &[Option<Val>], i: usize) -> Result<&Val, Fail> {
    ins.get(i).and_then(Option::as_ref).ok_or_else(|| Fail::Invalid(format!("input {i} is missing")))
}

/// Input `i` as a constant.
fn constant(ins: &[Option<Val>], i: usize, what: &str) -> Result<Const, Fail> {
    match input(ins, i)? {
        Val::Const(c) => Ok(c.clone()),
        other => Err(unsupported(format!("{what} is {} (it must be a stored tensor)", other.kind()))),
    }
}

fn optional_constant(ins: &[Option<Val>], i: usize, what: &str) -> Result<Option<Const>, Fail> {
    match ins.get(i) {
        None | Some(None) => Ok(None),
        Some(Some(_)) => constant(ins, i, what).map(Some),
    }
}

impl Importer {
    /// Input `i` as a computed value (classifier scores get their activation first).
    pub(crate) fn value(&mut self, ins: &[Option<Val>], i: usize) -> Result<Dyn, Fail> {
        match input(ins, i)? {
            Val::Dyn(d) => Ok(d.clone()),
            Val::Scores { scores, activation, .. } => {
                let (scores, activation) = (scores.clone(), *activation);
                self.activate(scores, activation)
            }
            other => Err(unsupported(format!("input {i} is {}", other.kind()))),
        }
    }

    /// Classifier scores through their activation, as graph nodes (when something other than
    /// post-processing reads the probabilities).
    pub(crate) fn activate(&mut self, scores: Dyn, activation: Activation) -> Result<Dyn, Fail> {
        let out = format!("{}.probabilities", scores.name);
        match activation {
            Activation::Identity | Activation::None => Ok(scores),
            Activation::Softmax => {
                Ok(self.out.emit("Softmax", &[Arg::Value(&scores)], attrs([("axis", json!(-1))]), &out)?)
            }
            Activation::Logistic if scores.shape.get(1) != Some(&Dim::Fixed(1)) => {
                Ok(self.out.emit("Sigmoid", &[Arg::Value(&scores)], Default::default(), &out)?)
            }
            Activation::Logistic => {
                Err(unsupported("reading a binary classifier's probabilities inside the graph"))
            }
        }
    }

    /// Input `i` as an operand: computed, or a constant stored under a name derived from `base`.
    fn operand(&mut self, ins: &[Option<Val>], i: usize, base: &str) -> Result<Operand, Fail> {
        match input(ins, i)? {
            Val::Const(c) => Ok(Operand::Stored(self.out.store_const(base, c)?)),
            _ => self.value(ins, i).map(Operand::Value),
        }
    }

    /// Translates one `ai.onnx` node.
    pub(crate) fn onnx_node(&mut self, node: &NodeProto, ins: &[Option<Val>]) -> Result<Vec<Val>, Fail> {
        let a = Attrs::of(node);
        if a.has_graph() {
            return Err(unsupported("control flow (sub-graphs)"));
        }
        if node.op_type == "Identity" {
            return Ok(vec![input(ins, 0)?.clone()]);
        }
        if let Some(v) = ins.iter().flatten().find(|v| matches!(v, Val::Labels | Val::Category(_))) {
            return Err(unsupported(format!("reads {} inside the graph", v.kind())));
        }
        if let Some(vals) = fold::fold(node, ins, self.opset)? {
            return Ok(vals);
        }
        let op = node.op_type.as_str();
        let out = node.output.first().cloned().unwrap_or_else(|| op.to_string());
        let emitted = match op {
            "Dropout" => {
                if node.output.get(1).is_some_and(|m| !m.is_empty() && self.readers.contains_key(m)) {
                    return Err(unsupported("Dropout's mask output is read"));
                }
                return Ok(vec![input(ins, 0)?.clone()]);
            }
            "Cast" => {
                let to = a.int("to")?.unwrap_or(0) as i32;
                if matches!(to, data_type::FLOAT | data_type::DOUBLE) {
                    return Ok(vec![input(ins, 0)?.clone()]);
                }
                return Err(unsupported(format!("Cast of a computed value to {}", data_type::name(to))));
            }
            "ArgMax" => return Ok(vec![Val::Labels]),
            "Gemm" => self.gemm(&a, ins, &out)?,
            "MatMul" => self.matmul(ins, &out)?,
            "Add" | "Sub" | "Mul" | "Div" => self.binary(node, op, ins, &out)?,
            "Pow" => {
                let x = self.value(ins, 0)?;
                let e = constant(ins, 1, "the exponent")?
                    .scalar_f32()
                    .ok_or_else(|| unsupported("a non-scalar exponent"))?;
                self.out.emit("Pow", &[Arg::Value(&x)], attrs([("exponent", json!(e))]), &out)?
            }
            op if UNARY.contains(&op) => {
                let x = self.value(ins, 0)?;
                self.out.emit(op, &[Arg::Value(&x)], Default::default(), &out)?
            }
            "LeakyRelu" => {
                let x = self.value(ins, 0)?;
                self.out.emit(
                    "LeakyRelu",
                    &[Arg::Value(&x)],
                    attrs([("alpha", json!(a.float_or("alpha", 0.01)?))]),
                    &out,
                )?
            }
            "HardSigmoid" => {
                let x = self.value(ins, 0)?;
                let at = attrs([
                    ("alpha", json!(a.float_or("alpha", 0.2)?)),
                    ("beta", json!(a.float_or("beta", 0.5)?)),
                ]);
                self.out.emit("HardSigmoid", &[Arg::Value(&x)], at, &out)?
            }
            "Clip" => self.clip(&a, ins, &out)?,
            "Gelu" => {
                if a.string("approximate")?.is_some_and(|s| s != "none") {
                    return Err(unsupported("Gelu with the tanh approximation"));
                }
                let x = self.value(ins, 0)?;
                self.out.emit("Gelu", &[Arg::Value(&x)], Default::default(), &out)?
            }
            "LayerNormalization" => {
                let x = self.value(ins, 0)?;
                let axis = a.int_or("axis", -1)?;
                if axis != -1 && axis != x.rank() as i64 - 1 {
                    return Err(unsupported(format!(
                        "LayerNormalization over axes from {axis} (only the last axis)"
                    )));
                }
                if node.output.iter().skip(1).any(|o| !o.is_empty() && self.readers.contains_key(o)) {
                    return Err(unsupported("LayerNormalization's mean and inverse deviation outputs"));
                }
                let gamma = constant(ins, 1, "the layer norm's scale")?;
                let h = gamma.len();
                let beta = optional_constant(ins, 2, "the layer norm's bias")?
                    .map_or_else(|| Some(vec![0.0; h]), |b| b.to_f32())
                    .ok_or("the bias must be numbers")?;
                let g = self.out.store(
                    &format!("{out}.gamma"),
                    vec![h],
                    &gamma.to_f32().ok_or("the scale must be numbers")?,
                )?;
                let b = self.out.store(&format!("{out}.beta"), vec![beta.len()], &beta)?;
                let eps = attrs([("epsilon", json!(a.float_or("epsilon", 1e-5)?))]);
                self.out.emit("LayerNorm", &[Arg::Value(&x), Arg::Stored(&g), Arg::Stored(&b)], eps, &out)?
            }
            "Softmax" | "LogSoftmax" => {
                let x = self.value(ins, 0)?;
                let rank = x.rank() as i64;
                let axis = a.int_or("axis", if self.opset >= 13 { -1 } else { 1 })?;
                let last = axis == -1 || axis == rank - 1;
                if self.opset < 13 && !last {
                    return Err(unsupported(format!("{op} before opset 13 over axis {axis} of rank {rank}")));
                }
                self.out.emit(op, &[Arg::Value(&x)], attrs([("axis", json!(axis))]), &out)?
            }
            "Conv" => self.conv(&a, ins, &out)?,
            "BatchNormalization" => self.batch_norm(node, &a, ins, &out)?,
            "MaxPool" | "AveragePool" => {
                if node.output.get(1).is_some_and(|m| !m.is_empty()) {
                    return Err(unsupported("MaxPool's indices output"));
                }
                self.pool(op, &a, ins, &out)?
            }
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let x = self.value(ins, 0)?;
                self.spatial_2d(&x, &out, |me, x4, out| {
                    Ok(me.out.emit(op, &[Arg::Value(x4)], Default::default(), out)?)
                })?
            }
            "Flatten" => {
                let x = self.value(ins, 0)?;
                let axis = a.int_or("axis", 1)?;
                let rank = x.rank() as i64;
                let axis = if axis < 0 { axis + rank } else { axis };
                let rest: Option<usize> =
                    x.dims().get(axis.max(0) as usize..).map(|d| d.iter().map(|v| v.unwrap_or(0)).product());
                match (axis, rest) {
                    (1, _) => self.reshape(&x, &[0, -1])?,
                    (a, Some(r)) if a > 1 && r > 0 => self.reshape(&x, &[-1, r as i64])?,
                    _ => {
                        return Err(unsupported(format!(
                            "Flatten at axis {axis} (the batch must stay the first dimension)"
                        )))
                    }
                }
            }
            "Reshape" => self.reshape_node(&a, ins)?,
            "Squeeze" | "Unsqueeze" => {
                let x = self.value(ins, 0)?;
                let axes = if self.opset >= 13 { const_ints(ins, 1)? } else { a.ints("axes")? };
                let dims = squeezed_dims(op, &x.dims(), axes.as_deref())?;
                let target = self.reshape_target(&x, &dims)?;
                self.reshape(&x, &target)?
            }
            "Transpose" => {
                let x = self.value(ins, 0)?;
                let perm = a.ints("perm")?.unwrap_or_else(|| (0..x.rank() as i64).rev().collect());
                if perm.first() != Some(&0) && x.shape.first() == Some(&Dim::Var) {
                    return Err(unsupported("Transpose that moves the batch dimension"));
                }
                self.out.emit("Transpose", &[Arg::Value(&x)], attrs([("perm", json!(perm))]), &out)?
            }
            "Concat" => {
                let parts: Vec<Operand> = (0..ins.len())
                    .map(|i| self.operand(ins, i, &format!("{out}.part{i}")))
                    .collect::<Result<_, _>>()?;
                let args: Vec<Arg<'_>> = parts.iter().map(Operand::arg).collect();
                let axis = a.int("axis")?.ok_or("Concat needs `axis`")?;
                self.out.emit("Concat", &args, attrs([("axis", json!(axis))]), &out)?
            }
            "Slice" => {
                let x = self.value(ins, 0)?;
                let (starts, ends, axes, steps) = slice_params(&a, ins, self.opset)?;
                let at = attrs([
                    ("starts", json!(starts)),
                    ("ends", json!(ends)),
                    ("axes", json!(axes)),
                    ("steps", json!(steps)),
                ]);
                self.out.emit("Slice", &[Arg::Value(&x)], at, &out)?
            }
            "ReduceMean" | "ReduceSum" | "ReduceMax" => {
                let x = self.value(ins, 0)?;
                let from_input = op == "ReduceSum" && self.opset >= 13 || self.opset >= 18;
                let axes = if from_input { const_ints(ins, 1)? } else { a.ints("axes")? };
                let axes = match axes {
                    Some(axes) if !axes.is_empty() => axes,
                    _ if a.int_or("noop_with_empty_axes", 0)? == 1 => return Ok(vec![Val::Dyn(x)]),
                    _ => (0..x.rank() as i64).collect(),
                };
                let at = attrs([("axes", json!(axes)), ("keepdims", json!(a.int_or("keepdims", 1)? == 1))]);
                self.out.emit(op, &[Arg::Value(&x)], at, &out)?
            }
            "Pad" => self.pad(&a, ins, &out)?,
            "Resize" | "Upsample" => self.resize(op, &a, ins, &out)?,
            "Gather" => return Err(unsupported("Gather of a computed value (only constant gathers fold)")),
            other => {
                return Err(unsupported(format!("{other} over computed values (only constant inputs fold)")))
            }
        };
        Ok(vec![Val::Dyn(emitted)])
    }

    /// `Gemm` with a stored `B` → `Linear`; otherwise Ingot's own `Gemm`.
    fn gemm(&mut self, a: &Attrs<'_>, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        let (alpha, beta) = (a.float_or("alpha", 1.0)?, a.float_or("beta", 1.0)?);
        let (trans_a, trans_b) = (a.int_or("transA", 0)? == 1, a.int_or("transB", 0)? == 1);
        let x = self.value(ins, 0)?;
        let (Val::Const(b), false) = (input(ins, 1)?, trans_a) else {
            let b = self.operand(ins, 1, &format!("{out}.B"))?;
            let c = ins
                .get(2)
                .and_then(Option::as_ref)
                .map(|_| self.operand(ins, 2, &format!("{out}.C")))
                .transpose()?;
            let mut args = vec![Arg::Value(&x), b.arg()];
            if let Some(c) = &c {
                args.push(c.arg());
            }
            let at = attrs([
                ("alpha", json!(alpha)),
                ("beta", json!(beta)),
                ("trans_a", json!(trans_a)),
                ("trans_b", json!(trans_b)),
            ]);
            return Ok(self.out.emit("Gemm", &args, at, out)?);
        };
        let b = b.clone();
        let &[r, c] = b.dims.as_slice() else { return Err("Gemm's B must be 2-D".into()) };
        let values = b.to_f32().ok_or("B must be numbers")?;
        let (m, k, mut w) = if trans_b { (r, c, values) } else { (c, r, transpose_2d(&values, r, c)) };
        if alpha != 1.0 {
            w.iter_mut().for_each(|v| *v *= alpha);
        }
        let bias = optional_constant(ins, 2, "Gemm's C")?
            .map(|c| {
                let v = c.to_f32().ok_or("C must be numbers")?;
                let v: Vec<f32> = match v.len() {
                    1 => vec![v[0]; m],
                    n if n == m && c.dims.iter().rev().skip(1).all(|&d| d == 1) => v,
                    _ => {
                        return Err(unsupported(format!(
                            "Gemm's C of shape {:?} (a per-output bias is read)",
                            c.dims
                        )))
                    }
                };
                Ok(v.into_iter().map(|b| b * beta).collect::<Vec<f32>>())
            })
            .transpose()?;
        self.linear(&x, &w, m, k, bias.as_deref(), out)
    }

    /// `MatMul` with a stored 2-D right operand → `Linear`; otherwise Ingot's `MatMul`.
    fn matmul(&mut self, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        if matches!(input(ins, 0)?, Val::Const(_)) {
            return Err(unsupported("MatMul with a stored left operand"));
        }
        let x = self.value(ins, 0)?;
        match input(ins, 1)? {
            Val::Const(b) if b.dims.len() == 2 => {
                let (k, m) = (b.dims[0], b.dims[1]);
                let w = transpose_2d(&b.to_f32().ok_or("B must be numbers")?, k, m);
                self.linear(&x, &w, m, k, None, out)
            }
            _ => {
                let b = self.operand(ins, 1, &format!("{out}.B"))?;
                Ok(self.out.emit("MatMul", &[Arg::Value(&x), b.arg()], Default::default(), out)?)
            }
        }
    }

    /// A `Linear` node with row-major weight `w` `[m, k]`.
    fn linear(
        &mut self,
        x: &Dyn,
        w: &[f32],
        m: usize,
        k: usize,
        bias: Option<&[f32]>,
        out: &str,
    ) -> Result<Dyn, Fail> {
        let w_name = self.out.store(&format!("{out}.weight"), vec![m, k], w)?;
        let b_name = bias.map(|b| self.out.store(&format!("{out}.bias"), vec![m], b)).transpose()?;
        let mut args = vec![Arg::Value(x), Arg::Stored(&w_name)];
        if let Some(b) = &b_name {
            args.push(Arg::Stored(b));
        }
        Ok(self.out.emit("Linear", &args, Default::default(), out)?)
    }

    /// Element-wise arithmetic; a bias `Add` that only a bias-less `Linear` or `Conv` reads is
    /// folded into it.
    fn binary(&mut self, node: &NodeProto, op: &str, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        if op == "Add" {
            for (x_i, c_i) in [(0, 1), (1, 0)] {
                if let (Some(Val::Dyn(x)), Some(Val::Const(c))) = (input(ins, x_i).ok(), input(ins, c_i).ok())
                {
                    let (x, c) = (x.clone(), c.clone());
                    if self.single_reader(&node.input[x_i]) {
                        if let Some(d) = self.fold_bias(&x, &c)? {
                            return Ok(d);
                        }
                    }
                }
            }
        }
        let l = self.operand(ins, 0, &format!("{out}.a"))?;
        let r = self.operand(ins, 1, &format!("{out}.b"))?;
        Ok(self.out.emit(op, &[l.arg(), r.arg()], Default::default(), out)?)
    }

    /// Adds constant `c` to the bias of the bias-less `Linear` or `Conv` that produced `x`,
    /// when `c` is one value per output channel.
    fn fold_bias(&mut self, x: &Dyn, c: &Const) -> Result<Option<Dyn>, Fail> {
        let Some(i) = self.out.producer(&x.name) else { return Ok(None) };
        let (op, n_inputs) = (self.out.nodes[i].op.clone(), self.out.nodes[i].inputs.len());
        let channels = match (op.as_str(), x.dims().as_slice()) {
            ("Linear", [.., Some(m)]) if n_inputs == 2 => *m,
            ("Conv", [_, Some(m), _, _]) if n_inputs == 2 => *m,
            _ => return Ok(None),
        };
        let per_channel = match op.as_str() {
            "Linear" => c.dims.last() == Some(&channels) && c.dims.iter().rev().skip(1).all(|&d| d == 1),
            _ => {
                let d = &c.dims;
                d.len() >= 3
                    && d[d.len() - 3] == channels
                    && d[d.len() - 2..] == [1, 1]
                    && d[..d.len() - 3].iter().all(|&v| v == 1)
            }
        };
        if !per_channel || c.len() != channels {
            return Ok(None);
        }
        let bias = c.to_f32().ok_or("a bias must be numbers")?;
        let name = self.out.store(&format!("{}.bias", x.name), vec![channels], &bias)?;
        self.out.nodes[i].inputs.push(name);
        Ok(Some(x.clone()))
    }

    /// `Pad`: pads (and from opset 11 the constant value and, from 18, the axes) as constant
    /// inputs, or attributes before opset 11.
    fn pad(&mut self, a: &Attrs<'_>, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        let x = self.value(ins, 0)?;
        let rank = x.rank();
        let (given, value, axes) = if self.opset >= 11 {
            let value = optional_constant(ins, 2, "Pad's constant value")?
                .map(|c| c.scalar_f32().ok_or_else(|| unsupported("a non-scalar Pad value")))
                .transpose()?;
            (const_ints(ins, 1)?, value, const_ints(ins, 3)?)
        } else {
            (a.ints("pads")?, a.float("value")?, None)
        };
        let given = given.ok_or("Pad needs pads")?;
        let axes: Vec<usize> = match axes {
            None => (0..rank).collect(),
            Some(axes) => axes
                .iter()
                .map(|&v| usize::try_from(if v < 0 { v + rank as i64 } else { v }).ok().filter(|&v| v < rank))
                .collect::<Option<_>>()
                .ok_or_else(|| Fail::Invalid(format!("Pad axes {axes:?} out of range for rank {rank}")))?,
        };
        let k = axes.len();
        if given.len() != 2 * k {
            return Err(format!("Pad has {} pads for {k} axes", given.len()).into());
        }
        if given.iter().any(|&p| p < 0) {
            return Err(unsupported(format!("Pad with negative pads {given:?} (cropping)")));
        }
        let mut pads = vec![0i64; 2 * rank];
        for (i, &ax) in axes.iter().enumerate() {
            pads[ax] = given[i];
            pads[rank + ax] = given[k + i];
        }
        if pads[0] != 0 || pads[rank] != 0 {
            return Err(unsupported("Pad of the batch dimension"));
        }
        let mode = a.string("mode")?.unwrap_or_else(|| "constant".into());
        if !matches!(mode.as_str(), "constant" | "reflect" | "edge") {
            return Err(unsupported(format!("Pad in mode `{mode}`")));
        }
        let mut at = attrs([("pads", json!(pads)), ("mode", json!(mode))]);
        if mode == "constant" {
            at.insert("value".into(), json!(value.unwrap_or(0.0)));
        }
        Ok(self.out.emit("Pad", &[Arg::Value(&x)], at, out)?)
    }

    /// `Resize` (opset 10: `[X, scales]`; 11+: `[X, roi, scales, sizes]`) and `Upsample` over
    /// `[N, C, H, W]`, nearest or bilinear, with constant scales or sizes.
    fn resize(&mut self, op: &str, a: &Attrs<'_>, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        let x = self.value(ins, 0)?;
        let [_, _, h, w] = x.dims()[..] else {
            return Err(unsupported(format!("{op} of rank {} (only [N, C, H, W])", x.rank())));
        };
        let modern = op == "Resize" && self.opset >= 11;
        for (name, default) in [("antialias", 0), ("exclude_outside", 0)] {
            if a.int_or(name, default)? != default {
                return Err(unsupported(format!("{op} with `{name}`")));
            }
        }
        if a.string("keep_aspect_ratio_policy")?.is_some_and(|p| p != "stretch") {
            return Err(unsupported(format!("{op} with `keep_aspect_ratio_policy`")));
        }
        if a.has("axes") {
            return Err(unsupported(format!("{op} with `axes`")));
        }
        let mode = a.string("mode")?.unwrap_or_else(|| "nearest".into());
        let mode = match mode.as_str() {
            "nearest" => "nearest",
            "linear" | "bilinear" => "linear",
            other => return Err(unsupported(format!("{op} in mode `{other}`"))),
        };
        let (scales_at, sizes_at) = if modern { (2, 3) } else { (1, usize::MAX) };
        let scales = optional_constant(ins, scales_at, "Resize's scales")?
            .map(|c| c.to_f32().ok_or("scales must be numbers"))
            .transpose()?
            .filter(|s| !s.is_empty());
        let scales = match (scales, op == "Upsample" && self.opset < 9) {
            (None, true) => a.floats("scales")?,
            (s, _) => s,
        };
        let sizes: Option<Vec<Option<usize>>> = match ins.get(sizes_at).and_then(Option::as_ref) {
            None => None,
            Some(Val::Const(c)) => Some(
                c.to_i64()
                    .ok_or("sizes must be integers")?
                    .iter()
                    .map(|&v| usize::try_from(v).ok())
                    .collect(),
            ),
            Some(Val::Shape(dims)) => Some(
                dims.iter()
                    .map(|d| match d {
                        SymDim::Known(v) => usize::try_from(*v).ok(),
                        SymDim::Batch => None,
                    })
                    .collect(),
            ),
            Some(other) => return Err(unsupported(format!("{op} sizes that are {}", other.kind()))),
        };
        let (out_hw, given) = match (scales, sizes) {
            (Some(s), None) => {
                let &[sn, sc, sh, sw] = s.as_slice() else {
                    return Err(format!("{op} scales {s:?} for rank 4").into());
                };
                if sn != 1.0 || sc != 1.0 {
                    return Err(unsupported(format!("{op} that scales N or C ({s:?})")));
                }
                let (Some(h), Some(w)) = (h, w) else {
                    return Err(unsupported(format!("{op} by scales of a variable height or width")));
                };
                // ONNX Runtime's output size: the f32 product, truncated.
                let size = |d: usize, s: f32| (d as f32 * s) as usize;
                ([size(h, sh), size(w, sw)], Some([sh, sw]))
            }
            (None, Some(d)) => match d.as_slice() {
                [_, _, Some(oh), Some(ow)] if d[1].is_none_or(|c| Some(c) == x.dims()[1]) => {
                    ([*oh, *ow], None)
                }
                _ => return Err(unsupported(format!("{op} to sizes {d:?} (only H and W may change)"))),
            },
            _ => return Err(Fail::Invalid(format!("{op} needs exactly one of scales and sizes"))),
        };
        if out_hw.contains(&0) {
            return Err(Fail::Invalid(format!("{op} to an empty output {out_hw:?}")));
        }
        let (coord, nearest) = if modern {
            let coord = a.string("coordinate_transformation_mode")?.unwrap_or_else(|| "half_pixel".into());
            if !matches!(coord.as_str(), "half_pixel" | "asymmetric" | "align_corners" | "pytorch_half_pixel")
            {
                return Err(unsupported(format!("{op} with coordinate_transformation_mode `{coord}`")));
            }
            (coord, a.string("nearest_mode")?.unwrap_or_else(|| "round_prefer_floor".into()))
        } else {
            // Opset 10 and Upsample: asymmetric; nearest truncates up-sampling and rounds a
            // down-sampling up (ONNX Runtime's rule).
            let down = given.map(|s| s.map(|v| v < 1.0));
            let nearest = match down {
                Some([false, false]) | None => "floor",
                Some([true, true]) => "ceil",
                Some(_) => {
                    return Err(unsupported(format!(
                        "nearest {op} that grows one axis and shrinks the other"
                    )))
                }
            };
            ("asymmetric".into(), nearest.into())
        };
        let mut at = attrs([
            ("mode", json!(mode)),
            ("coordinate_transformation_mode", json!(coord)),
            ("sizes", json!(out_hw)),
        ]);
        if mode == "nearest" {
            at.insert("nearest_mode".into(), json!(nearest));
        }
        if let Some(s) = given {
            at.insert("scales".into(), json!(s));
        }
        Ok(self.out.emit("Resize", &[Arg::Value(&x)], at, out)?)
    }

    fn clip(&mut self, a: &Attrs<'_>, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        let x = self.value(ins, 0)?;
        let (min, max) = if self.opset >= 11 {
            let bound = |i: usize| -> Result<Option<f32>, Fail> {
                optional_constant(ins, i, "a Clip bound")?
                    .map(|c| c.scalar_f32().ok_or_else(|| unsupported("a non-scalar Clip bound")))
                    .transpose()
            };
            (bound(1)?, bound(2)?)
        } else {
            (a.float("min")?, a.float("max")?)
        };
        let mut at = serde_json::Map::new();
        if let Some(v) = min.filter(|v| v.is_finite()) {
            at.insert("min".into(), json!(v));
        }
        if let Some(v) = max.filter(|v| v.is_finite()) {
            at.insert("max".into(), json!(v));
        }
        Ok(self.out.emit("Clip", &[Arg::Value(&x)], at.into_iter().collect(), out)?)
    }

    /// Runs `f` on `x` as a 4-D `[N, C, H, W]` value: a 3-D `[N, C, L]` one goes through it as
    /// `[N, C, 1, L]` and comes back 3-D.
    fn spatial_2d(
        &mut self,
        x: &Dyn,
        out: &str,
        f: impl FnOnce(&mut Self, &Dyn, &str) -> Result<Dyn, Fail>,
    ) -> Result<Dyn, Fail> {
        match x.dims().as_slice() {
            [_, _, _, _] => f(self, x, out),
            [_, Some(c), Some(l)] => {
                let x4 = self.reshape(x, &[0, *c as i64, 1, *l as i64])?;
                let y = f(self, &x4, &format!("{out}.2d"))?;
                let (m, w) = match y.dims().as_slice() {
                    [_, Some(m), Some(1), Some(w)] => (*m, *w),
                    other => return Err(Fail::Invalid(format!("1-D op gave shape {other:?}"))),
                };
                Ok(self.reshape(&y, &[0, m as i64, w as i64])?)
            }
            other => Err(unsupported(format!("spatial op over shape {other:?} (1-D and 2-D are read)"))),
        }
    }

    /// Explicit `[top, left, bottom, right]` pads from `pads` / `auto_pad` for input `hw`.
    fn pads(
        &self,
        a: &Attrs<'_>,
        spatial: usize,
        hw: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
    ) -> Result<[usize; 4], Fail> {
        let auto = a.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
        let explicit = a.ints("pads")?.unwrap_or_else(|| vec![0; 2 * spatial]);
        if explicit.len() != 2 * spatial || explicit.iter().any(|&p| p < 0) {
            return Err(format!("pads {explicit:?} for {spatial} spatial dimensions").into());
        }
        let p = |v: i64| v as usize;
        match auto.as_str() {
            "NOTSET" if spatial == 1 => Ok([0, p(explicit[0]), 0, p(explicit[1])]),
            "NOTSET" => Ok([p(explicit[0]), p(explicit[1]), p(explicit[2]), p(explicit[3])]),
            "VALID" => Ok([0; 4]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut pads = [0; 4];
                for d in 0..2 {
                    let out = hw[d].div_ceil(strides[d]);
                    let need =
                        ((out - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1).saturating_sub(hw[d]);
                    let (small, big) = (need / 2, need - need / 2);
                    let (begin, end) = if auto == "SAME_UPPER" { (small, big) } else { (big, small) };
                    pads[d] = begin;
                    pads[d + 2] = end;
                }
                Ok(pads)
            }
            other => Err(format!("unknown auto_pad `{other}`").into()),
        }
    }

    fn conv(&mut self, a: &Attrs<'_>, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        let x = self.value(ins, 0)?;
        let w = constant(ins, 1, "Conv's weight")?;
        let bias = optional_constant(ins, 2, "Conv's bias")?;
        let spatial = w.dims.len().saturating_sub(2);
        if !(1..=2).contains(&spatial) || x.rank() != spatial + 2 {
            return Err(unsupported(format!(
                "Conv of weight {:?} over rank {} (1-D and 2-D are read)",
                w.dims,
                x.rank()
            )));
        }
        let lift = |v: Vec<i64>, fill: i64| if spatial == 1 { vec![fill, v[0]] } else { v };
        let strides = lift(a.ints("strides")?.unwrap_or_else(|| vec![1; spatial]), 1);
        let dilations = lift(a.ints("dilations")?.unwrap_or_else(|| vec![1; spatial]), 1);
        let group = a.int_or("group", 1)?;
        let mut wdims = w.dims.clone();
        if spatial == 1 {
            wdims.insert(2, 1);
        }
        let hw = match x.dims().as_slice() {
            [_, _, Some(h), Some(w)] => [*h, *w],
            [_, _, Some(l)] => [1, *l],
            other => return Err(format!("Conv input {other:?}").into()),
        };
        let us = |v: &[i64]| [v[0].max(1) as usize, v[1].max(1) as usize];
        let pads = self.pads(a, spatial, hw, [wdims[2], wdims[3]], us(&strides), us(&dilations))?;
        let w_name =
            self.out.store(&format!("{out}.weight"), wdims, &w.to_f32().ok_or("weights must be numbers")?)?;
        let b_name = bias
            .map(|b| self.out.store(&format!("{out}.bias"), vec![b.len()], &b.to_f32().unwrap_or_default()))
            .transpose()?;
        let at = attrs([
            ("strides", json!(strides)),
            ("pads", json!(pads)),
            ("dilations", json!(dilations)),
            ("group", json!(group)),
        ]);
        self.spatial_2d(&x, out, |me, x4, out| {
            let mut args = vec![Arg::Value(x4), Arg::Stored(&w_name)];
            if let Some(b) = &b_name {
                args.push(Arg::Stored(b));
            }
            Ok(me.out.emit("Conv", &args, at, out)?)
        })
    }

    fn pool(&mut self, op: &str, a: &Attrs<'_>, ins: &[Option<Val>], out: &str) -> Result<Dyn, Fail> {
        let x = self.value(ins, 0)?;
        let kernel = a.ints("kernel_shape")?.ok_or("pools need `kernel_shape`")?;
        let spatial = kernel.len();
        if !(1..=2).contains(&spatial) || x.rank() != spatial + 2 {
            return Err(unsupported(format!("{op} of kernel {kernel:?} over rank {}", x.rank())));
        }
        if a.int_or("storage_order", 0)? != 0 {
            return Err(unsupported("storage_order 1"));
        }
        let lift = |v: Vec<i64>| if spatial == 1 { vec![1, v[0]] } else { v };
        let kernel = lift(kernel);
        let strides = lift(a.ints("strides")?.unwrap_or_else(|| vec![1; spatial]));
        let dilations = lift(a.ints("dilations")?.unwrap_or_else(|| vec![1; spatial]));
        let hw = match x.dims().as_slice() {
            [_, _, Some(h), Some(w)] => [*h, *w],
            [_, _, Some(l)] => [1, *l],
            other => return Err(format!("{op} input {other:?}").into()),
        };
        let us = |v: &[i64]| [v[0].max(1) as usize, v[1].max(1) as usize];
        let pads = self.pads(a, spatial, hw, us(&kernel), us(&strides), us(&dilations))?;
        let mut at = attrs([
            ("kernel_shape", json!(kernel)),
            ("strides", json!(strides)),
            ("pads", json!(pads)),
            ("ceil_mode", json!(a.int_or("ceil_mode", 0)? == 1)),
        ]);
        if op == "MaxPool" {
            at.insert("dilations".into(), json!(dilations));
        } else {
            if dilations.iter().any(|&d| d != 1) {
                return Err(unsupported("AveragePool with dilations"));
            }
            at.insert("count_include_pad".into(), json!(a.int_or("count_include_pad", 0)? == 1));
        }
        self.spatial_2d(&x, out, |me, x4, out| Ok(me.out.emit(op, &[Arg::Value(x4)], at, out)?))
    }

    fn batch_norm(
        &mut self,
        node: &NodeProto,
        a: &Attrs<'_>,
        ins: &[Option<Val>],
        out: &str,
    ) -> Result<Dyn, Fail> {
        if node.output.iter().skip(1).any(|o| !o.is_empty()) || a.int_or("training_mode", 0)? == 1 {
            return Err(unsupported("BatchNormalization in training mode"));
        }
        let x = self.value(ins, 0)?;
        let eps = a.float_or("epsilon", 1e-5)?;
        let get = |i: usize, what: &str| -> Result<Vec<f32>, Fail> {
            constant(ins, i, what)?.to_f32().ok_or_else(|| Fail::Invalid(format!("{what} must be numbers")))
        };
        let (gamma, beta, mean, var) =
            (get(1, "scale")?, get(2, "bias")?, get(3, "mean")?, get(4, "variance")?);
        let c = gamma.len();
        if [beta.len(), mean.len(), var.len()].iter().any(|&n| n != c) || x.dims().get(1) != Some(&Some(c)) {
            return Err(
                format!("BatchNormalization parameters of {c} channels for input {:?}", x.dims()).into()
            );
        }
        let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + eps).sqrt()).collect();
        let shift: Vec<f32> = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        if self.single_reader(&node.input[0]) && self.fold_scale(&x, &scale, &shift)? {
            return Ok(x);
        }
        let mut dims = vec![c];
        dims.extend(std::iter::repeat_n(1, x.rank().saturating_sub(2)));
        let s = self.out.store(&format!("{out}.scale"), dims.clone(), &scale)?;
        let t = self.out.store(&format!("{out}.shift"), dims, &shift)?;
        let y = self.out.emit(
            "Mul",
            &[Arg::Value(&x), Arg::Stored(&s)],
            Default::default(),
            &format!("{out}.scaled"),
        )?;
        Ok(self.out.emit("Add", &[Arg::Value(&y), Arg::Stored(&t)], Default::default(), out)?)
    }

    /// Folds a per-channel `x · scale + shift` into the `Conv` or 2-D `Linear` that produced
    /// `x`; false when there is none.
    fn fold_scale(&mut self, x: &Dyn, scale: &[f32], shift: &[f32]) -> Result<bool, Fail> {
        let Some(i) = self.out.producer(&x.name) else { return Ok(false) };
        let node = &self.out.nodes[i];
        let fits = match node.op.as_str() {
            "Conv" => x.rank() == 4,
            "Linear" => x.rank() == 2,
            _ => false,
        };
        if !fits {
            return Ok(false);
        }
        let (w_name, b_name) = (node.inputs[1].clone(), node.inputs.get(2).cloned());
        let Some(mut w) = self.out.stored_values(&w_name) else { return Ok(false) };
        let m = scale.len();
        let per = w.len() / m.max(1);
        let w_dims = self
            .out
            .tensors
            .iter()
            .find(|(n, _)| n == &w_name)
            .map(|(_, t)| t.shape.clone())
            .unwrap_or_default();
        for (row, s) in w.chunks_exact_mut(per).zip(scale) {
            row.iter_mut().for_each(|v| *v *= s);
        }
        self.out.restore(&w_name, w_dims, &w)?;
        let old = b_name.as_ref().and_then(|b| self.out.stored_values(b)).unwrap_or_else(|| vec![0.0; m]);
        let bias: Vec<f32> = old.iter().zip(scale).zip(shift).map(|((b, s), t)| b * s + t).collect();
        match b_name {
            Some(b) => self.out.restore(&b, vec![m], &bias)?,
            None => {
                let b = self.out.store(&format!("{}.bias", x.name), vec![m], &bias)?;
                self.out.nodes[i].inputs.push(b);
            }
        }
        Ok(true)
    }

    fn reshape_node(&mut self, a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<Dyn, Fail> {
        let x = self.value(ins, 0)?;
        let target: Vec<SymDim> = match input(ins, 1)? {
            Val::Const(c) => {
                c.to_i64().ok_or("a shape must be integers")?.into_iter().map(SymDim::Known).collect()
            }
            Val::Shape(s) => s.clone(),
            other => {
                return Err(unsupported(format!(
                    "Reshape to {} (the target must fold at import)",
                    other.kind()
                )))
            }
        };
        if a.int_or("allowzero", 0)? == 1 && target.contains(&SymDim::Known(0)) {
            return Err(unsupported("Reshape with allowzero and a 0 in the shape"));
        }
        let dims = x.dims();
        let batch_at = dims.iter().position(Option::is_none);
        let mut shape: Vec<i64> = target
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                SymDim::Known(v) => *v,
                SymDim::Batch if batch_at == Some(i) => 0,
                SymDim::Batch => -1,
            })
            .collect();
        if shape.iter().filter(|&&v| v == -1).count() > 1 {
            // The batch and an inferred dimension: compute the inferred one from fixed sizes.
            let known_in: usize = dims.iter().flatten().product();
            let mut fixed_out = 1usize;
            for (i, v) in shape.iter().enumerate() {
                match v {
                    0 => fixed_out *= dims.get(i).copied().flatten().unwrap_or(1),
                    v if *v > 0 => fixed_out *= *v as usize,
                    _ => {}
                }
            }
            let inferred =
                target.iter().position(|d| *d == SymDim::Known(-1)).ok_or("two batch dimensions")?;
            if fixed_out == 0 || !known_in.is_multiple_of(fixed_out) {
                return Err(format!("cannot reshape {dims:?} to {target:?}").into());
            }
            shape[inferred] = (known_in / fixed_out) as i64;
        }
        Ok(self.reshape(&x, &shape)?)
    }

    /// A `Reshape` target that gives `dims` (the batch at its place, `0` when it does not move).
    fn reshape_target(&self, x: &Dyn, dims: &[Option<usize>]) -> Result<Vec<i64>, Fail> {
        let from = x.dims().iter().position(Option::is_none);
        Ok(dims
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Some(v) => *v as i64,
                None if from == Some(i) => 0,
                None => -1,
            })
            .collect())
    }
}

/// `[r, c]` → `[c, r]`.
pub(crate) fn transpose_2d(v: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = v[i * c + j];
        }
    }
    out
}
