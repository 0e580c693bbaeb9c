//! The layout ops of opset 2 — `Transpose`, `Slice`, `Pad` and the reductions — their
//! attributes and output shapes (docs/format.md §4).

use super::attrs::{attr_bool, attr_f32, attr_ints, Attrs};
use super::shape::{axis, Dim, Shape};

/// Highest rank `Transpose` takes.
const MAX_TRANSPOSE_RANK: usize = 6;

/// `Transpose`: the permutation (`perm`, default the axes reversed) and the output shape.
pub(crate) fn transpose(attrs: &Attrs, input: &Shape) -> Result<(Vec<usize>, Shape), String> {
    let rank = input.len();
    if !(1..=MAX_TRANSPOSE_RANK).contains(&rank) {
        return Err(format!("input rank must be 1 to {MAX_TRANSPOSE_RANK}, got {input:?}"));
    }
    let perm: Vec<usize> = match attr_ints(attrs, "perm")? {
        None => (0..rank).rev().collect(),
        Some(p) => p.iter().map(|&a| usize::try_from(a).unwrap_or(usize::MAX)).collect(),
    };
    let mut seen = vec![false; rank];
    let valid =
        perm.len() == rank && perm.iter().all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
    if !valid {
        return Err(format!("`perm` {perm:?} is not a permutation of the {rank} axes"));
    }
    let out = perm.iter().map(|&a| input[a]).collect();
    Ok((perm, out))
}

/// One sliced axis of a `Slice` node: `start..end` by `step`, as given (negative values count
/// from the end; they are clamped to the axis once its size is known, [`slice_range`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SliceAxis {
    /// The axis, resolved against the input's rank.
    pub(crate) axis: usize,
    /// First index (negative: from the end).
    pub(crate) start: i64,
    /// One past the last index (negative: from the end; `i64::MAX` for "to the end").
    pub(crate) end: i64,
    /// Step, never 0; negative walks backwards.
    pub(crate) step: i64,
}

/// The first index and length of `start..end` by `step` over an axis of `dim` values, clamped
/// by ONNX's rules: negative indices count from the end; with a positive step both ends clamp
/// to `[0, dim]`, with a negative one `start` to `[0, dim − 1]` and `end` to `[−1, dim − 1]`.
pub(crate) fn slice_range(dim: usize, start: i64, end: i64, step: i64) -> (usize, usize) {
    let d = dim as i128;
    if d == 0 || step == 0 {
        return (0, 0);
    }
    let resolve = |i: i64| if i < 0 { i128::from(i) + d } else { i128::from(i) };
    let (s, e, step) = (resolve(start), resolve(end), i128::from(step));
    let (first, len) = if step > 0 {
        let (s, e) = (s.clamp(0, d), e.clamp(0, d));
        (s, if e > s { (e - s + step - 1) / step } else { 0 })
    } else {
        let (s, e) = (s.clamp(0, d - 1), e.clamp(-1, d - 1));
        (s, if s > e { (s - e - step - 1) / -step } else { 0 })
    };
    // Both lie in 0..=dim, so they fit a usize.
    (first as usize, len as usize)
}

/// `Slice`: the sliced axes (`starts`, `ends`, `axes` default `0..`, `steps` default 1) and
/// the output shape; a slice of a fixed axis that is empty is refused.
pub(crate) fn slice(attrs: &Attrs, input: &Shape) -> Result<(Vec<SliceAxis>, Shape), String> {
    let list = |key: &str| attr_ints(attrs, key)?.ok_or_else(|| format!("attribute `{key}` is required"));
    let (starts, ends) = (list("starts")?, list("ends")?);
    let n = starts.len();
    let axes = attr_ints(attrs, "axes")?.unwrap_or_else(|| (0..n as i64).collect());
    let steps = attr_ints(attrs, "steps")?.unwrap_or_else(|| vec![1; n]);
    if n == 0 || ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(format!(
            "`starts`, `ends`, `axes` and `steps` must have the same positive length, got {n}, {}, {}, {}",
            ends.len(),
            axes.len(),
            steps.len()
        ));
    }
    let mut out = input.clone();
    let mut sliced: Vec<SliceAxis> = Vec::with_capacity(n);
    for i in 0..n {
        let a = axis(axes[i], input.len())?;
        if sliced.iter().any(|s| s.axis == a) {
            return Err(format!("axis {a} is sliced twice"));
        }
        if steps[i] == 0 {
            return Err("`steps` must not be 0".into());
        }
        let s = SliceAxis { axis: a, start: starts[i], end: ends[i], step: steps[i] };
        if let Dim::Fixed(d) = input[a] {
            let (_, len) = slice_range(d, s.start, s.end, s.step);
            if len == 0 {
                return Err(format!(
                    "the slice {}..{} by {} of axis {a} ({d} long) is empty",
                    s.start, s.end, s.step
                ));
            }
            out[a] = Dim::Fixed(len);
        }
        sliced.push(s);
    }
    sliced.sort_by_key(|s| s.axis);
    Ok((sliced, out))
}

/// How `Pad` fills the border.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PadMode {
    /// A constant (`value`).
    Constant(f32),
    /// The input mirrored about its first and last values (each pad smaller than its axis).
    Reflect,
    /// The input's first or last value repeated.
    Edge,
}

/// `Pad`: `pads` (`[begin…, end…]`, one pair per axis, non-negative, none on the batch axis 0),
/// `mode` (default `constant`) with `value` (default 0), and the output shape.
pub(crate) fn pad(attrs: &Attrs, input: &Shape) -> Result<(Vec<usize>, PadMode, Shape), String> {
    let rank = input.len();
    if !(1..=MAX_TRANSPOSE_RANK).contains(&rank) {
        return Err(format!("input rank must be 1 to {MAX_TRANSPOSE_RANK}, got {input:?}"));
    }
    let given = attr_ints(attrs, "pads")?.ok_or("attribute `pads` is required")?;
    if given.len() != 2 * rank {
        return Err(format!("`pads` {given:?} must have 2 × {rank} values"));
    }
    let pads: Vec<usize> = given
        .iter()
        .map(|&p| usize::try_from(p).ok())
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`pads` {given:?} must be non-negative (cropping is not supported)"))?;
    if pads[0] != 0 || pads[rank] != 0 {
        return Err(format!("`pads` {given:?} pad the batch axis 0"));
    }
    let mode = match attrs.get("mode").map(|v| v.as_str()) {
        None | Some(Some("constant")) => PadMode::Constant(attr_f32(attrs, "value", 0.0)?),
        Some(Some("reflect")) => PadMode::Reflect,
        Some(Some("edge")) => PadMode::Edge,
        _ => return Err("attribute `mode` must be \"constant\", \"reflect\" or \"edge\"".into()),
    };
    if attrs.contains_key("value") && !matches!(mode, PadMode::Constant(_)) {
        return Err("`value` goes with the constant mode only".into());
    }
    let mut out = input.clone();
    for a in 0..rank {
        let (begin, end) = (pads[a], pads[rank + a]);
        if let Dim::Fixed(d) = input[a] {
            let empty = d == 0 && begin + end > 0 && mode != PadMode::Constant(0.0);
            if mode == PadMode::Reflect && (begin >= d || end >= d) || empty {
                return Err(format!(
                    "pads {begin} and {end} do not fit axis {a} of {d} values in {mode:?} mode"
                ));
            }
            out[a] =
                Dim::Fixed(d.checked_add(begin).and_then(|v| v.checked_add(end)).ok_or("`pads` overflow")?);
        }
    }
    Ok((pads, mode, out))
}

/// A reduction's `axes` (required; resolved, sorted, distinct) and `keepdims` (default true),
/// with the output shape.
pub(crate) fn reduce(attrs: &Attrs, input: &Shape) -> Result<(Vec<usize>, bool, Shape), String> {
    let given = attr_ints(attrs, "axes")?.ok_or("attribute `axes` is required")?;
    if given.is_empty() {
        return Err("`axes` must name at least one axis".into());
    }
    let mut axes = given.iter().map(|&a| axis(a, input.len())).collect::<Result<Vec<usize>, String>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("`axes` {given:?} names an axis twice"));
    }
    let keepdims = attr_bool(attrs, "keepdims", true)?;
    let out = input
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(Dim::Fixed(1)),
            (true, false) => None,
        })
        .collect();
    Ok((axes, keepdims, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    fn fixed(d: &[usize]) -> Shape {
        d.iter().map(|&d| Dim::Fixed(d)).collect()
    }

    #[test]
    fn transpose_permutes_and_defaults_to_reversed() {
        let x = vec![Dim::Var, Dim::Fixed(3), Dim::Fixed(4)];
        let (perm, out) = transpose(&attrs(json!({})), &x).unwrap();
        assert_eq!((perm, out), (vec![2, 1, 0], vec![Dim::Fixed(4), Dim::Fixed(3), Dim::Var]));
        let (_, out) = transpose(&attrs(json!({"perm": [0, 2, 1]})), &x).unwrap();
        assert_eq!(out, vec![Dim::Var, Dim::Fixed(4), Dim::Fixed(3)]);
        for bad in [json!([0, 1]), json!([0, 1, 1]), json!([0, 1, 3]), json!([0, -1, 2])] {
            let err = transpose(&attrs(json!({ "perm": bad })), &x).unwrap_err();
            assert!(err.contains("not a permutation"), "{err}");
        }
        assert!(transpose(&attrs(json!({})), &fixed(&[1; 7])).unwrap_err().contains("rank"));
    }

    #[test]
    fn slice_ranges_clamp_like_onnx() {
        assert_eq!(slice_range(10, 2, 5, 1), (2, 3));
        assert_eq!(slice_range(10, -3, i64::MAX, 1), (7, 3));
        assert_eq!(slice_range(10, 0, 100, 3), (0, 4));
        assert_eq!(slice_range(10, -100, 2, 1), (0, 2));
        assert_eq!(slice_range(10, 5, 2, 1), (5, 0));
        // Backwards: 9, 8, …, 0 and 8, 6, 4.
        assert_eq!(slice_range(10, -1, i64::MIN, -1), (9, 10));
        assert_eq!(slice_range(10, 8, 3, -2), (8, 3));
        assert_eq!(slice_range(10, 100, -100, -4), (9, 3));
        assert_eq!(slice_range(10, 2, 5, -1), (2, 0));
        assert_eq!(slice_range(0, 0, 5, 1), (0, 0));
    }

    #[test]
    fn slice_shapes_and_errors() {
        let x = vec![Dim::Var, Dim::Fixed(10), Dim::Fixed(6)];
        let a = attrs(
            json!({"starts": [1, -1], "ends": [i64::MAX, i64::MIN], "axes": [1, -1], "steps": [2, -2]}),
        );
        let (axes, out) = slice(&a, &x).unwrap();
        assert_eq!(out, vec![Dim::Var, Dim::Fixed(5), Dim::Fixed(3)]);
        assert_eq!(axes.iter().map(|s| s.axis).collect::<Vec<_>>(), [1, 2]);
        let (_, out) = slice(&attrs(json!({"starts": [0], "ends": [3]})), &x).unwrap();
        assert_eq!(out[0], Dim::Var, "a slice of the variable batch stays variable");
        let err = |v: serde_json::Value| slice(&attrs(v), &x).unwrap_err();
        assert!(err(json!({"ends": [1]})).contains("`starts`"));
        assert!(err(json!({"starts": [0], "ends": [1, 2]})).contains("same positive length"));
        assert!(err(json!({"starts": [0, 0], "ends": [1, 1], "axes": [1, 1]})).contains("twice"));
        assert!(err(json!({"starts": [0], "ends": [1], "axes": [3]})).contains("out of range"));
        assert!(err(json!({"starts": [0], "ends": [1], "axes": [1], "steps": [0]})).contains("not be 0"));
        assert!(err(json!({"starts": [4], "ends": [2], "axes": [1]})).contains("empty"));
    }

    #[test]
    fn pads_grow_axes_and_check_their_modes() {
        let x = vec![Dim::Var, Dim::Fixed(3), Dim::Fixed(4)];
        let (pads, mode, out) = pad(&attrs(json!({"pads": [0, 1, 2, 0, 0, 1]})), &x).unwrap();
        assert_eq!((pads, mode), (vec![0, 1, 2, 0, 0, 1], PadMode::Constant(0.0)));
        assert_eq!(out, vec![Dim::Var, Dim::Fixed(4), Dim::Fixed(7)]);
        let a = attrs(json!({"pads": [0, 2, 3, 0, 2, 3], "mode": "reflect"}));
        assert_eq!(pad(&a, &x).unwrap().1, PadMode::Reflect);
        let a = attrs(json!({"pads": [0, 0, 0, 0, 5, 5], "mode": "constant", "value": -1.5}));
        assert_eq!(pad(&a, &x).unwrap().1, PadMode::Constant(-1.5));
        let err = |v: serde_json::Value| pad(&attrs(v), &x).unwrap_err();
        assert!(err(json!({})).contains("required"));
        assert!(err(json!({"pads": [0, 1, 0, 1]})).contains("2 × 3"));
        assert!(err(json!({"pads": [0, -1, 0, 0, 0, 0]})).contains("non-negative"));
        assert!(err(json!({"pads": [1, 0, 0, 0, 0, 0]})).contains("batch"));
        assert!(err(json!({"pads": [0, 3, 0, 0, 0, 0], "mode": "reflect"})).contains("do not fit"));
        assert!(err(json!({"pads": [0, 0, 0, 0, 0, 0], "mode": "wrap"})).contains("`mode`"));
        assert!(err(json!({"pads": [0, 0, 0, 0, 0, 0], "mode": "edge", "value": 1})).contains("`value`"));
    }

    #[test]
    fn reductions_keep_or_drop_their_axes() {
        let x = vec![Dim::Var, Dim::Fixed(3), Dim::Fixed(4)];
        let (axes, keep, out) = reduce(&attrs(json!({"axes": [-1, 1]})), &x).unwrap();
        assert_eq!((axes, keep), (vec![1, 2], true));
        assert_eq!(out, vec![Dim::Var, Dim::Fixed(1), Dim::Fixed(1)]);
        let (_, _, out) = reduce(&attrs(json!({"axes": [0, 2], "keepdims": 0})), &x).unwrap();
        assert_eq!(out, vec![Dim::Fixed(3)]);
        let err = |v: serde_json::Value| reduce(&attrs(v), &x).unwrap_err();
        assert!(err(json!({})).contains("required"));
        assert!(err(json!({"axes": []})).contains("at least one"));
        assert!(err(json!({"axes": [1, -2]})).contains("twice"));
        assert!(err(json!({"axes": [3]})).contains("out of range"));
        assert!(err(json!({"axes": [1], "keepdims": 2})).contains("keepdims"));
    }
}
