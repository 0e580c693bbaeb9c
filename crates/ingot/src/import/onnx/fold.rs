//! Constant folding at import: nodes whose inputs are all known (initializers, `Constant`
//! nodes, shapes of values whose only variable dimension is the batch) are evaluated here, so
//! the shape sub-graphs that exporters emit (`Shape → Gather → Unsqueeze → Concat → Reshape`)
//! leave nothing behind in the Ingot graph.

use super::attrs::Attrs;
use super::proto::{data_type, NodeProto};
use super::tensor::{Const, Data};
use super::translate::{SymDim, Val};
use super::Fail;
use crate::graph::{broadcast as broadcast_dims, reshape_shape, Dim};

/// NumPy broadcasting of two fixed shapes.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let fixed = |s: &[usize]| s.iter().map(|&d| Dim::Fixed(d)).collect::<Vec<_>>();
    broadcast_dims(&fixed(a), &fixed(b)).ok()?.iter().map(|d| d.fixed()).collect()
}

/// A 1-D integer vector whose entries may be the batch size, or a scalar one.
struct Ints {
    values: Vec<SymDim>,
    scalar: bool,
}

fn ints(v: &Val) -> Option<Ints> {
    match v {
        Val::Shape(values) => Some(Ints { values: values.clone(), scalar: false }),
        Val::SymScalar(d) => Some(Ints { values: vec![*d], scalar: true }),
        Val::Const(c @ Const { data: Data::I64(v), .. }) if c.dims.len() <= 1 => {
            Some(Ints { values: v.iter().map(|&x| SymDim::Known(x)).collect(), scalar: c.dims.is_empty() })
        }
        _ => None,
    }
}

/// An integer vector as a value: a constant when every entry is known.
fn from_ints(values: Vec<SymDim>, scalar: bool) -> Val {
    let known: Option<Vec<i64>> =
        values.iter().map(|d| if let SymDim::Known(v) = d { Some(*v) } else { None }).collect();
    match (known, scalar) {
        (Some(v), true) => Val::Const(Const::i64(vec![], v)),
        (Some(v), false) => Val::Const(Const::i64(vec![v.len()], v)),
        (None, true) => Val::SymScalar(values[0]),
        (None, false) => Val::Shape(values),
    }
}

fn konst(v: &Option<Val>) -> Option<&Const> {
    match v {
        Some(Val::Const(c)) => Some(c),
        _ => None,
    }
}

/// The integers of constant input `i` (absent: `None`).
pub(crate) fn const_ints(ins: &[Option<Val>], i: usize) -> Result<Option<Vec<i64>>, Fail> {
    match ins.get(i) {
        None | Some(None) => Ok(None),
        Some(Some(Val::Const(c))) => {
            c.to_i64().map(Some).ok_or_else(|| Fail::Invalid(format!("input {i} must be integers")))
        }
        Some(Some(other)) => Err(Fail::Unsupported(format!("input {i} is {}, not a constant", other.kind()))),
    }
}

fn axis_of(a: i64, rank: usize) -> Result<usize, Fail> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if (0..r).contains(&v) {
        Ok(v as usize)
    } else {
        Err(Fail::Invalid(format!("axis {a} is out of range for rank {rank}")))
    }
}

/// Evaluates `node` if every input is known; `Ok(None)` when one is computed at predict time.
pub(crate) fn fold(node: &NodeProto, ins: &[Option<Val>], opset: i64) -> Result<Option<Vec<Val>>, Fail> {
    let a = Attrs::of(node);
    let op = node.op_type.as_str();
    if op == "Constant" {
        return constant(&a).map(|c| Some(vec![Val::Const(c)]));
    }
    if op == "Shape" {
        return shape(&a, ins).map(|v| v.map(|v| vec![v]));
    }
    let all_known =
        ins.iter().flatten().all(|v| matches!(v, Val::Const(_) | Val::Shape(_) | Val::SymScalar(_)));
    if !all_known || ins.is_empty() {
        return Ok(None);
    }
    let out = match op {
        "Identity" => ins[0].clone().ok_or("Identity has no input")?,
        "Cast" => cast(&a, ins[0].as_ref().ok_or("Cast has no input")?)?,
        "Gather" => gather(&a, ins)?,
        "Unsqueeze" | "Squeeze" => squeeze(op, &a, ins, opset)?,
        "Concat" => concat(&a, ins)?,
        "Reshape" => {
            let c = konst(&ins[0]).ok_or(Fail::Unsupported("reshaping a shape vector".into()))?;
            let target = const_ints(ins, 1)?.ok_or("Reshape needs a shape")?;
            let input: Vec<Dim> = c.dims.iter().map(|&d| Dim::Fixed(d)).collect();
            let dims = reshape_shape(&input, &target)
                .map_err(Fail::Invalid)?
                .iter()
                .map(|d| d.fixed().ok_or("a constant reshaped to a variable size"))
                .collect::<Result<Vec<usize>, _>>()?;
            Val::Const(Const { dims, data: c.data.clone() })
        }
        "Add" | "Sub" | "Mul" | "Div" => arithmetic(op, ins)?,
        "Range" => range(ins)?,
        "ConstantOfShape" => {
            let dims = const_ints(ins, 0)?.ok_or("ConstantOfShape needs a shape")?;
            let dims: Vec<usize> = dims
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| "negative dimension"))
                .collect::<Result<_, _>>()?;
            let n: usize = dims.iter().product();
            match a.tensor("value")? {
                None => Val::Const(Const::f32(dims, vec![0.0; n])),
                Some(Const { data: Data::F32(v), .. }) => {
                    Val::Const(Const::f32(dims, vec![*v.first().unwrap_or(&0.0); n]))
                }
                Some(Const { data: Data::I64(v), .. }) => {
                    Val::Const(Const::i64(dims, vec![*v.first().unwrap_or(&0); n]))
                }
                Some(_) => return Err(Fail::Unsupported("string ConstantOfShape".into())),
            }
        }
        "Slice" => slice(&a, ins, opset)?,
        "Equal" => {
            let (x, y) = (konst(&ins[0]), konst(&ins[1]));
            let (Some(x), Some(y)) = (x, y) else { return Err(Fail::Unsupported("comparing shapes".into())) };
            let (dims, v) = broadcast(x, y, |p, q| if p == q { 1.0 } else { 0.0 })?;
            Val::Const(Const::i64(dims, v.iter().map(|&b| b as i64).collect()))
        }
        "Where" => {
            let (Some(c), Some(x), Some(y)) = (konst(&ins[0]), konst(&ins[1]), konst(&ins[2])) else {
                return Err(Fail::Unsupported("Where over shapes".into()));
            };
            let (dims, picked) = broadcast3(c, x, y)?;
            let integer = matches!(x.data, Data::I64(_)) && matches!(y.data, Data::I64(_));
            if integer {
                Val::Const(Const::i64(dims, picked.iter().map(|&v| v as i64).collect()))
            } else {
                Val::Const(Const::f32(dims, picked.iter().map(|&v| v as f32).collect()))
            }
        }
        "Sqrt" | "Neg" | "Exp" | "Reciprocal" | "Abs" | "Relu" => {
            let c = konst(&ins[0]).ok_or(Fail::Unsupported(format!("{op} of a shape")))?;
            let f: fn(f32) -> f32 = match op {
                "Sqrt" => f32::sqrt,
                "Neg" => |x| -x,
                "Exp" => f32::exp,
                "Reciprocal" => |x| 1.0 / x,
                "Relu" => |x| x.max(0.0),
                _ => f32::abs,
            };
            match &c.data {
                Data::I64(v) if op == "Neg" || op == "Abs" => Val::Const(Const::i64(
                    c.dims.clone(),
                    v.iter().map(|&x| if op == "Neg" { -x } else { x.abs() }).collect(),
                )),
                _ => Val::Const(Const::f32(
                    c.dims.clone(),
                    c.to_f32().ok_or("strings")?.into_iter().map(f).collect(),
                )),
            }
        }
        "Transpose" => {
            let c = konst(&ins[0]).ok_or(Fail::Unsupported("transposing a shape".into()))?;
            let perm = a.ints("perm")?.unwrap_or_else(|| (0..c.dims.len() as i64).rev().collect());
            transpose(c, &perm)?
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}

fn constant(a: &Attrs<'_>) -> Result<Const, Fail> {
    if let Some(t) = a.tensor("value")? {
        return Ok(t);
    }
    if let Some(f) = a.float("value_float")? {
        return Ok(Const::f32(vec![], vec![f]));
    }
    if let Some(v) = a.floats("value_floats")? {
        return Ok(Const::f32(vec![v.len()], v));
    }
    if let Some(i) = a.int("value_int")? {
        return Ok(Const::i64(vec![], vec![i]));
    }
    if let Some(v) = a.ints("value_ints")? {
        return Ok(Const::i64(vec![v.len()], v));
    }
    Err(Fail::Unsupported(format!(
        "Constant with attributes {:?} (value, value_float(s) and value_int(s) are read)",
        a.names().collect::<Vec<_>>()
    )))
}

fn shape(a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<Option<Val>, Fail> {
    let dims: Vec<SymDim> = match ins.first() {
        Some(Some(Val::Const(c))) => c.dims.iter().map(|&d| SymDim::Known(d as i64)).collect(),
        Some(Some(Val::Dyn(d))) => {
            d.shape.iter().map(|d| d.fixed().map_or(SymDim::Batch, |v| SymDim::Known(v as i64))).collect()
        }
        Some(Some(other)) => return Err(Fail::Unsupported(format!("Shape of {}", other.kind()))),
        _ => return Err("Shape has no input".into()),
    };
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(a.int_or("start", 0)?);
    let end = clamp(a.int("end")?.unwrap_or(r));
    Ok(Some(from_ints(dims.get(start..end.max(start)).unwrap_or_default().to_vec(), false)))
}

fn cast(a: &Attrs<'_>, v: &Val) -> Result<Val, Fail> {
    let to = a.int("to")?.ok_or("Cast needs `to`")? as i32;
    let float = matches!(to, data_type::FLOAT | data_type::DOUBLE | data_type::FLOAT16 | data_type::BFLOAT16);
    Ok(match v {
        Val::Const(c) if float => {
            Val::Const(Const::f32(c.dims.clone(), c.to_f32().ok_or("casting strings")?))
        }
        Val::Const(c) if to == data_type::BOOL => Val::Const(Const::i64(
            c.dims.clone(),
            c.to_f32().ok_or("casting strings")?.iter().map(|&x| i64::from(x != 0.0)).collect(),
        )),
        Val::Const(_) if to == data_type::STRING => return Err(Fail::Unsupported("Cast to string".into())),
        Val::Const(c) => Val::Const(Const::i64(c.dims.clone(), c.to_i64().ok_or("casting strings")?)),
        other if !float => other.clone(),
        _ => return Err(Fail::Unsupported("casting a shape to floats".into())),
    })
}

fn gather(a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<Val, Fail> {
    let axis = a.int_or("axis", 0)?;
    let idx = konst(&ins[1]).ok_or(Fail::Unsupported("Gather with computed indices".into()))?;
    let indices = idx.to_i64().ok_or("indices must be integers")?;
    if let Some(data) = ins[0].as_ref().and_then(ints) {
        if data.scalar {
            return Err("Gather from a scalar".into());
        }
        let n = data.values.len() as i64;
        let picked = indices
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + n } else { i };
                data.values
                    .get(j as usize)
                    .copied()
                    .filter(|_| (0..n).contains(&j))
                    .ok_or_else(|| format!("index {i} is out of range"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(from_ints(picked, idx.dims.is_empty()));
    }
    let c = konst(&ins[0]).ok_or("Gather from a shape")?;
    let ax = axis_of(axis, c.dims.len())?;
    let outer: usize = c.dims[..ax].iter().product();
    let inner: usize = c.dims[ax + 1..].iter().product();
    let n = c.dims[ax];
    let mut order = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in &indices {
            let j = if i < 0 { i + n as i64 } else { i };
            if !(0..n as i64).contains(&j) {
                return Err(format!("index {i} is out of range for {n}").into());
            }
            order.extend((0..inner).map(|k| (o * n + j as usize) * inner + k));
        }
    }
    let mut dims = c.dims[..ax].to_vec();
    dims.extend(&idx.dims);
    dims.extend(&c.dims[ax + 1..]);
    Ok(Val::Const(Const { dims, data: pick(&c.data, &order) }))
}

fn pick(data: &Data, order: &[usize]) -> Data {
    match data {
        Data::F32(v) => Data::F32(order.iter().map(|&i| v[i]).collect()),
        Data::I64(v) => Data::I64(order.iter().map(|&i| v[i]).collect()),
        Data::Str(v) => Data::Str(order.iter().map(|&i| v[i].clone()).collect()),
    }
}

fn squeeze(op: &str, a: &Attrs<'_>, ins: &[Option<Val>], opset: i64) -> Result<Val, Fail> {
    let axes = if opset >= 13 { const_ints(ins, 1)? } else { a.ints("axes")? };
    let v = ins[0].as_ref().ok_or("no input")?;
    if let Some(i) = ints(v) {
        return match (op, i.scalar, axes.as_deref()) {
            ("Unsqueeze", true, Some([0] | [-1])) => Ok(from_ints(i.values, false)),
            ("Squeeze", false, Some([0] | [-1]) | None) if i.values.len() == 1 => {
                Ok(from_ints(i.values, true))
            }
            _ => Err(Fail::Unsupported(format!("{op} of a shape vector with axes {axes:?}"))),
        };
    }
    let c = konst(&ins[0]).ok_or("no input")?;
    let dims = squeezed_dims(op, &c.dims.iter().map(|&d| Some(d)).collect::<Vec<_>>(), axes.as_deref())?
        .into_iter()
        .map(|d| d.unwrap_or(1))
        .collect();
    Ok(Val::Const(Const { dims, data: c.data.clone() }))
}

/// The dimensions after `Squeeze` or `Unsqueeze` with `axes` (`None` = batch).
pub(crate) fn squeezed_dims(
    op: &str,
    dims: &[Option<usize>],
    axes: Option<&[i64]>,
) -> Result<Vec<Option<usize>>, Fail> {
    if op == "Unsqueeze" {
        let axes = axes.ok_or("Unsqueeze needs axes")?;
        let rank = dims.len() + axes.len();
        let mut norm = axes.iter().map(|&x| axis_of(x, rank)).collect::<Result<Vec<_>, _>>()?;
        norm.sort_unstable();
        let mut out = dims.to_vec();
        for ax in norm {
            out.insert(ax, Some(1));
        }
        return Ok(out);
    }
    let squeeze: Vec<usize> = match axes {
        Some(axes) => axes.iter().map(|&x| axis_of(x, dims.len())).collect::<Result<_, _>>()?,
        None => (0..dims.len()).filter(|&i| dims[i] == Some(1)).collect(),
    };
    if let Some(&bad) = squeeze.iter().find(|&&i| dims[i] != Some(1)) {
        return Err(Fail::Invalid(format!("cannot squeeze dimension {bad} of {dims:?}")));
    }
    Ok(dims.iter().enumerate().filter(|(i, _)| !squeeze.contains(i)).map(|(_, d)| *d).collect())
}

fn concat(a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<Val, Fail> {
    if ins.iter().flatten().all(|v| ints(v).is_some_and(|i| !i.scalar)) {
        let values = ins.iter().flatten().filter_map(ints).flat_map(|i| i.values).collect();
        return Ok(from_ints(values, false));
    }
    let parts: Vec<&Const> =
        ins.iter().map(konst).collect::<Option<_>>().ok_or("Concat of shapes and tensors")?;
    let rank = parts[0].dims.len();
    let ax = axis_of(a.int("axis")?.ok_or("Concat needs `axis`")?, rank)?;
    let outer: usize = parts[0].dims[..ax].iter().product();
    let mut dims = parts[0].dims.clone();
    dims[ax] = parts.iter().map(|p| p.dims.get(ax).copied().unwrap_or(0)).sum();
    let float = parts.iter().any(|p| matches!(p.data, Data::F32(_)));
    let mut f = Vec::new();
    let mut i = Vec::new();
    for o in 0..outer {
        for p in &parts {
            if p.dims.len() != rank {
                return Err("Concat of tensors of different ranks".into());
            }
            let chunk: usize = p.dims[ax..].iter().product();
            if float {
                f.extend_from_slice(&p.to_f32().ok_or("strings")?[o * chunk..(o + 1) * chunk]);
            } else {
                i.extend_from_slice(&p.to_i64().ok_or("strings")?[o * chunk..(o + 1) * chunk]);
            }
        }
    }
    Ok(Val::Const(if float { Const::f32(dims, f) } else { Const::i64(dims, i) }))
}

fn arithmetic(op: &str, ins: &[Option<Val>]) -> Result<Val, Fail> {
    let f = |p: f64, q: f64| match op {
        "Add" => p + q,
        "Sub" => p - q,
        "Mul" => p * q,
        _ => p / q,
    };
    if let (Some(x), Some(y)) = (konst(&ins[0]), konst(&ins[1])) {
        let integer = matches!(x.data, Data::I64(_)) && matches!(y.data, Data::I64(_));
        if !integer {
            let (dims, v) = broadcast(x, y, f)?;
            return Ok(Val::Const(Const::f32(dims, v.iter().map(|&t| t as f32).collect())));
        }
        // Integer division truncates toward zero; a zero divisor gives 0.
        let (dims, v) = broadcast(x, y, |p, q| match op {
            "Div" if q == 0.0 => 0.0,
            "Div" => (p / q).trunc(),
            _ => f(p, q),
        })?;
        return Ok(Val::Const(Const::i64(dims, v.iter().map(|&t| t as i64).collect())));
    }
    // Arithmetic on shape vectors: every entry that meets the batch must be an identity.
    let (x, y) = (ins[0].as_ref().and_then(ints), ins[1].as_ref().and_then(ints));
    let (Some(x), Some(y)) = (x, y) else { return Err(Fail::Unsupported(format!("{op} on a shape"))) };
    let n = x.values.len().max(y.values.len());
    let at = |v: &Ints, i: usize| if v.values.len() == 1 { v.values[0] } else { v.values[i] };
    let out = (0..n)
        .map(|i| match (at(&x, i), at(&y, i)) {
            (SymDim::Known(p), SymDim::Known(q)) => {
                if op == "Div" && q == 0 {
                    return Err(Fail::Invalid("division by zero in a shape".into()));
                }
                Ok(SymDim::Known(f(p as f64, q as f64) as i64))
            }
            (SymDim::Batch, SymDim::Known(1)) if op == "Mul" || op == "Div" => Ok(SymDim::Batch),
            (SymDim::Known(1), SymDim::Batch) if op == "Mul" => Ok(SymDim::Batch),
            (SymDim::Batch, SymDim::Known(0)) | (SymDim::Known(0), SymDim::Batch) if op == "Add" => {
                Ok(SymDim::Batch)
            }
            _ => Err(Fail::Unsupported(format!("{op} with the batch size (only the batch may vary)"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(from_ints(out, x.scalar && y.scalar))
}

fn range(ins: &[Option<Val>]) -> Result<Val, Fail> {
    let scalar = |i: usize| konst(&ins[i]).and_then(|c| c.to_f32()).and_then(|v| v.first().copied());
    let (Some(start), Some(limit), Some(delta)) = (scalar(0), scalar(1), scalar(2)) else {
        return Err(Fail::Unsupported("Range over the batch size".into()));
    };
    if delta == 0.0 {
        return Err("Range with delta 0".into());
    }
    let n = ((limit - start) / delta).ceil().max(0.0) as usize;
    if n > 1 << 24 {
        return Err("Range of more than 2^24 values".into());
    }
    let integer = konst(&ins[0]).is_some_and(|c| matches!(c.data, Data::I64(_)));
    let values: Vec<f32> = (0..n).map(|i| start + i as f32 * delta).collect();
    Ok(Val::Const(if integer {
        Const::i64(vec![n], values.iter().map(|&v| v as i64).collect())
    } else {
        Const::f32(vec![n], values)
    }))
}

fn slice(a: &Attrs<'_>, ins: &[Option<Val>], opset: i64) -> Result<Val, Fail> {
    let (starts, ends, axes, steps) = slice_params(a, ins, opset)?;
    let Some(v) = ins[0].as_ref().and_then(ints) else {
        return match konst(&ins[0]) {
            Some(c) => slice_const(c, &starts, &ends, &axes, &steps),
            None => Err(Fail::Unsupported("Slice of a constant tensor of rank > 1".into())),
        };
    };
    if axes.iter().any(|&x| x != 0 && x != -1) || starts.len() != 1 {
        return Err("Slice of a 1-D vector on another axis".into());
    }
    let idx = slice_indices(v.values.len(), starts[0], ends[0], steps.first().copied().unwrap_or(1))?;
    Ok(from_ints(idx.into_iter().map(|i| v.values[i]).collect(), false))
}

/// `Slice` of a constant tensor of any rank (the pads an exporter computes from a `[-1, 2]`
/// reshape, for one).
fn slice_const(c: &Const, starts: &[i64], ends: &[i64], axes: &[i64], steps: &[i64]) -> Result<Val, Fail> {
    let rank = c.dims.len();
    let mut picks: Vec<Vec<usize>> = c.dims.iter().map(|&d| (0..d).collect()).collect();
    for (i, &a) in axes.iter().enumerate() {
        let a = axis_of(a, rank)?;
        picks[a] = slice_indices(c.dims[a], starts[i], ends[i], steps[i])?;
    }
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * c.dims[i + 1];
    }
    let mut order = vec![0usize];
    for (p, st) in picks.iter().zip(&strides) {
        order = order.iter().flat_map(|&base| p.iter().map(move |&i| base + i * st)).collect();
    }
    let dims = picks.iter().map(Vec::len).collect();
    Ok(Val::Const(Const { dims, data: pick(&c.data, &order) }))
}

/// `starts, ends, axes, steps` of a `Slice`.
pub(crate) type SliceParams = (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>);

/// `starts, ends, axes, steps` of a `Slice` (inputs from opset 10, attributes before).
pub(crate) fn slice_params(a: &Attrs<'_>, ins: &[Option<Val>], opset: i64) -> Result<SliceParams, Fail> {
    let (starts, ends, axes, steps) = if opset >= 10 {
        (const_ints(ins, 1)?, const_ints(ins, 2)?, const_ints(ins, 3)?, const_ints(ins, 4)?)
    } else {
        (a.ints("starts")?, a.ints("ends")?, a.ints("axes")?, None)
    };
    let starts = starts.ok_or("Slice needs starts")?;
    let ends = ends.ok_or("Slice needs ends")?;
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("Slice's starts, ends, axes and steps differ in length".into());
    }
    Ok((starts, ends, axes, steps))
}

/// The indices ONNX's `Slice` picks from a dimension of `n`.
fn slice_indices(n: usize, start: i64, end: i64, step: i64) -> Result<Vec<usize>, Fail> {
    if step == 0 {
        return Err("Slice with step 0".into());
    }
    let n = n as i64;
    let clamp = |v: i64, lo: i64, hi: i64| (if v < 0 { v + n } else { v }).clamp(lo, hi);
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, e) = (clamp(start, 0, n), clamp(end, 0, n));
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        let (mut i, e) = (clamp(start, 0, n - 1), clamp(end, -1, n - 1));
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    Ok(out)
}

/// NumPy broadcasting of two constants through `f` (in f64).
fn broadcast(x: &Const, y: &Const, f: impl Fn(f64, f64) -> f64) -> Result<(Vec<usize>, Vec<f64>), Fail> {
    let (xs, ys) = (x.to_f32().ok_or("strings")?, y.to_f32().ok_or("strings")?);
    let dims = broadcast_shape(&x.dims, &y.dims)
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", x.dims, y.dims))?;
    let n: usize = dims.iter().product();
    let (ix, iy) = (index_map(&x.dims, &dims), index_map(&y.dims, &dims));
    Ok((dims, (0..n).map(|i| f(f64::from(xs[ix(i)]), f64::from(ys[iy(i)]))).collect()))
}

fn broadcast3(c: &Const, x: &Const, y: &Const) -> Result<(Vec<usize>, Vec<f64>), Fail> {
    let (cs, xs, ys) =
        (c.to_f32().ok_or("strings")?, x.to_f32().ok_or("strings")?, y.to_f32().ok_or("strings")?);
    let d1 = broadcast_shape(&c.dims, &x.dims).ok_or("Where's shapes do not broadcast")?;
    let dims = broadcast_shape(&d1, &y.dims).ok_or("Where's shapes do not broadcast")?;
    let n: usize = dims.iter().product();
    let (ic, ix, iy) = (index_map(&c.dims, &dims), index_map(&x.dims, &dims), index_map(&y.dims, &dims));
    Ok((dims, (0..n).map(|i| f64::from(if cs[ic(i)] != 0.0 { xs[ix(i)] } else { ys[iy(i)] })).collect()))
}

/// Maps a flat index of `out` dims to the flat index of a broadcast operand of `dims`.
fn index_map(dims: &[usize], out: &[usize]) -> impl Fn(usize) -> usize {
    let pad = out.len() - dims.len();
    let mut strides = vec![0usize; out.len()];
    let mut s = 1;
    for i in (0..dims.len()).rev() {
        strides[pad + i] = if dims[i] == 1 { 0 } else { s };
        s *= dims[i];
    }
    let out = out.to_vec();
    move |mut flat| {
        let mut idx = 0;
        for d in (0..out.len()).rev() {
            idx += (flat % out[d]) * strides[d];
            flat /= out[d];
        }
        idx
    }
}

/// A constant transposed by `perm`.
pub(crate) fn transpose(c: &Const, perm: &[i64]) -> Result<Val, Fail> {
    let rank = c.dims.len();
    let perm: Vec<usize> = perm.iter().map(|&p| axis_of(p, rank)).collect::<Result<_, _>>()?;
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(format!("perm {perm:?} is not a permutation of {rank} axes").into());
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| c.dims[p]).collect();
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * c.dims[i + 1];
    }
    let n: usize = out_dims.iter().product();
    let order: Vec<usize> = (0..n)
        .map(|mut flat| {
            let mut idx = 0;
            for d in (0..rank).rev() {
                idx += (flat % out_dims[d]) * in_strides[perm[d]];
                flat /= out_dims[d];
            }
            idx
        })
        .collect();
    Ok(Val::Const(Const { dims: out_dims, data: pick(&c.data, &order) }))
}
