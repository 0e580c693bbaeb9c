//! Element-wise and shape ops on row-major f32 data: NumPy-broadcast arithmetic, activations,
//! softmax and log-softmax along an axis and concatenation — the generic ops of a graph that no fused kernel
//! absorbed.

use super::activation::Act;
use super::write_all;

/// A binary arithmetic op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    #[inline(always)]
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
        }
    }
}

/// The NumPy broadcast of two shapes (`[4, 1, 3]` and `[2, 1]` give `[4, 2, 3]`), or `None` if
/// they do not broadcast.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() < rank { 1 } else { s[i + s.len() - rank] };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Strides of `shape` (row-major) seen from a broadcast `out` shape: 0 along broadcast axes.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; out.len()];
    let mut stride = 1;
    for (i, &d) in shape.iter().enumerate().rev() {
        let o = i + out.len() - shape.len();
        strides[o] = if d == 1 { 0 } else { stride };
        stride *= d;
    }
    strides
}

/// `out = a op b` with NumPy broadcasting; `out` has the broadcast shape `out_shape`.
///
/// # Panics
/// If the lengths do not match the shapes, or the shapes do not broadcast to `out_shape`.
pub(crate) fn binary(
    op: Binary,
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    out_shape: &[usize],
    out: &mut [f32],
) {
    assert_eq!(broadcast_shape(a_shape, b_shape).as_deref(), Some(out_shape), "binary: shapes");
    assert!(a.len() == a_shape.iter().product::<usize>() && b.len() == b_shape.iter().product::<usize>());
    assert_eq!(out.len(), out_shape.iter().product::<usize>(), "binary: output size");
    if a_shape == b_shape {
        write_all(out, a.iter().zip(b).map(|(&x, &y)| op.apply(x, y)));
        return;
    }
    // The common case of a bias or scale: `b` (or `a`) repeats along the leading axes.
    let last = out_shape.last().copied().unwrap_or(1).max(1);
    let tail = |s: &[usize]| s.iter().product::<usize>() == last && s.last() == Some(&last);
    if tail(b_shape) && a.len() == out.len() {
        let values = a.chunks_exact(last).flat_map(|row| row.iter().zip(b).map(|(&x, &y)| op.apply(x, y)));
        write_all(out, values);
        return;
    }
    if tail(a_shape) && b.len() == out.len() {
        let values = b.chunks_exact(last).flat_map(|row| a.iter().zip(row).map(|(&x, &y)| op.apply(x, y)));
        write_all(out, values);
        return;
    }
    let (sa, sb) = (broadcast_strides(a_shape, out_shape), broadcast_strides(b_shape, out_shape));
    let mut index = vec![0usize; out_shape.len()];
    let (mut ia, mut ib) = (0usize, 0usize);
    let values = (0..out.len()).map(|_| {
        let v = op.apply(a[ia], b[ib]);
        // Odometer over the output index, moving both input offsets along.
        for d in (0..out_shape.len()).rev() {
            index[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if index[d] < out_shape[d] {
                break;
            }
            ia -= sa[d] * out_shape[d];
            ib -= sb[d] * out_shape[d];
            index[d] = 0;
        }
        v
    });
    write_all(out, values);
}

/// `out = act(x)` element by element.
pub(crate) fn unary(act: Act, x: &[f32], out: &mut [f32]) {
    write_all(out, x.iter().map(|&v| act.apply(v)));
}

/// Softmax of `x` (shape `shape`) along `axis`, in f32: `e^(x - max) / Σ e^(x - max)`.
///
/// # Panics
/// If `axis` is out of range or the lengths do not match.
pub(crate) fn softmax_axis(x: &[f32], shape: &[usize], axis: usize, out: &mut [f32]) {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let out = write_all(out, x.iter().copied());
    if n == 0 || inner == 0 {
        return;
    }
    for block in out.chunks_exact_mut(n * inner) {
        for i in 0..inner {
            let max = (0..n).map(|j| block[j * inner + i]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for j in 0..n {
                let e = (block[j * inner + i] - max).exp();
                block[j * inner + i] = e;
                sum += e;
            }
            (0..n).for_each(|j| block[j * inner + i] /= sum);
        }
    }
}

/// Log-softmax of `x` (shape `shape`) along `axis`, in f32: `(x − max) − ln Σ e^(x − max)`.
///
/// # Panics
/// If `axis` is out of range or the lengths do not match.
pub(crate) fn log_softmax_axis(x: &[f32], shape: &[usize], axis: usize, out: &mut [f32]) {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let out = write_all(out, x.iter().copied());
    if n == 0 || inner == 0 {
        return;
    }
    for block in out.chunks_exact_mut(n * inner) {
        for i in 0..inner {
            let max = (0..n).map(|j| block[j * inner + i]).fold(f32::NEG_INFINITY, f32::max);
            let log_sum = (0..n).map(|j| (block[j * inner + i] - max).exp()).sum::<f32>().ln();
            (0..n).for_each(|j| block[j * inner + i] = (block[j * inner + i] - max) - log_sum);
        }
    }
}

/// Concatenation of `parts` (data and shape; equal but for `axis`) along `axis` into `out`.
///
/// # Panics
/// If the output size does not match.
pub(crate) fn concat(parts: &[(&[f32], &[usize])], axis: usize, out: &mut [f32]) {
    let outer: usize = parts.first().map_or(1, |(_, s)| s[..axis].iter().product());
    let runs: Vec<usize> = parts.iter().map(|(_, s)| s[axis..].iter().product()).collect();
    let values =
        (0..outer).flat_map(|o| parts.iter().zip(&runs).flat_map(move |((d, _), &r)| &d[o * r..(o + 1) * r]));
    write_all(out, values.copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut [f32]), len: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; len];
        f(&mut out);
        out
    }

    /// Plain reference: the value at each output index from the broadcast input indices.
    fn broadcast_ref(op: Binary, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let out = broadcast_shape(sa, sb).unwrap();
        let total: usize = out.iter().product();
        let at = |data: &[f32], shape: &[usize], idx: &[usize]| {
            let off = idx.len() - shape.len();
            let mut flat = 0;
            for (i, &d) in shape.iter().enumerate() {
                flat = flat * d + if d == 1 { 0 } else { idx[off + i] };
            }
            data[flat]
        };
        let values = (0..total)
            .map(|mut f| {
                let mut idx = vec![0; out.len()];
                for d in (0..out.len()).rev() {
                    idx[d] = f % out[d];
                    f /= out[d];
                }
                op.apply(at(a, sa, &idx), at(b, sb, &idx))
            })
            .collect();
        (values, out)
    }

    #[test]
    fn broadcasting_matches_the_index_reference() {
        let cases: [(&[usize], &[usize]); 7] = [
            (&[2, 3], &[2, 3]),
            (&[4, 3], &[3]),
            (&[3], &[4, 3]),
            (&[4, 1, 3], &[2, 1]),
            (&[1], &[5, 2]),
            (&[2, 1, 4], &[1, 3, 1]),
            (&[], &[2, 2]),
        ];
        for (sa, sb) in cases {
            let a: Vec<f32> = (0..sa.iter().product::<usize>()).map(|i| i as f32 + 1.0).collect();
            let b: Vec<f32> = (0..sb.iter().product::<usize>()).map(|i| 0.5 * i as f32 - 2.0).collect();
            for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
                let (want, shape) = broadcast_ref(op, &a, sa, &b, sb);
                let got = run(|o| binary(op, (&a, sa), (&b, sb), &shape, o), want.len());
                assert_eq!(got, want, "{op:?} {sa:?} {sb:?}");
            }
        }
        assert_eq!(broadcast_shape(&[2, 3], &[4]), None);
    }

    #[test]
    fn softmax_along_each_axis_sums_to_one() {
        let shape = [2, 3, 4];
        let x: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        for axis in 0..3 {
            let y = run(|o| softmax_axis(&x, &shape, axis, o), 24);
            let (n, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
            for block in y.chunks(n * inner) {
                for i in 0..inner {
                    let s: f32 = (0..n).map(|j| block[j * inner + i]).sum();
                    assert!((s - 1.0).abs() < 1e-6, "axis {axis}: {s}");
                }
            }
        }
    }

    #[test]
    fn log_softmax_is_the_log_of_softmax() {
        let shape = [2, 3, 4];
        let x: Vec<f32> = (0..24).map(|i| ((i * 5) % 13) as f32 - 6.0).collect();
        for axis in 0..3 {
            let soft = run(|o| softmax_axis(&x, &shape, axis, o), 24);
            let log = run(|o| log_softmax_axis(&x, &shape, axis, o), 24);
            for (s, l) in soft.iter().zip(&log) {
                assert!((s.ln() - l).abs() < 1e-5, "axis {axis}: ln {s} vs {l}");
            }
        }
        // Large logits stay finite: log_softmax([1000, 0]) = [0, -1000].
        assert_eq!(run(|o| log_softmax_axis(&[1000.0, 0.0], &[1, 2], 1, o), 2), [0.0, -1000.0]);
    }

    #[test]
    fn concat_interleaves_along_the_axis() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [9.0, 8.0]);
        let got = run(|o| concat(&[(&a, &[2, 2]), (&b, &[2, 1])], 1, o), 6);
        assert_eq!(got, [1.0, 2.0, 9.0, 3.0, 4.0, 8.0]);
        let got = run(|o| concat(&[(&a, &[2, 2]), (&a, &[2, 2])], 0, o), 8);
        assert_eq!(got, [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    }
}
