//! Reductions over a set of axes (`ReduceMean`, `ReduceSum`, `ReduceMax`): sums in f64, a
//! maximum that propagates NaN.

/// What a reduction computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    Mean,
    Sum,
    Max,
}

/// Reduces `x` (of `shape`) over `reduced` axes (flags, one per axis) into `out`: one value per
/// index of the kept axes, row-major.
///
/// # Panics
/// If the lengths do not match the shapes.
pub(crate) fn reduce(op: Reduce, x: &[f32], shape: &[usize], reduced: &[bool], out: &mut [f32]) {
    let kept: usize = shape.iter().zip(reduced).filter(|(_, &r)| !r).map(|(d, _)| d).product();
    assert!(x.len() == shape.iter().product::<usize>() && out.len() == kept && reduced.len() == shape.len());
    // Output strides of each input axis (0 along reduced ones).
    let mut out_strides = vec![0usize; shape.len()];
    let mut stride = 1;
    for a in (0..shape.len()).rev() {
        if !reduced[a] {
            out_strides[a] = stride;
            stride *= shape[a];
        }
    }
    let mut sums = vec![0f64; if op == Reduce::Max { 0 } else { out.len() }];
    if op == Reduce::Max {
        out.fill(f32::NEG_INFINITY);
    }
    let Some((&inner, outer)) = shape.split_last() else {
        out.copy_from_slice(x);
        return;
    };
    if x.is_empty() {
        if op != Reduce::Max {
            let fill = if op == Reduce::Mean { f32::NAN } else { 0.0 };
            out.fill(fill);
        }
        return;
    }
    let last_reduced = reduced[shape.len() - 1];
    let mut index = vec![0usize; outer.len()];
    let mut base = 0usize;
    for run in x.chunks_exact(inner) {
        match (op, last_reduced) {
            (Reduce::Max, true) => out[base] = run.iter().fold(out[base], |m, &v| max(m, v)),
            (Reduce::Max, false) => {
                out[base..base + inner].iter_mut().zip(run).for_each(|(m, &v)| *m = max(*m, v));
            }
            (_, true) => sums[base] += run.iter().map(|&v| f64::from(v)).sum::<f64>(),
            (_, false) => {
                sums[base..base + inner].iter_mut().zip(run).for_each(|(s, &v)| *s += f64::from(v));
            }
        }
        for d in (0..outer.len()).rev() {
            index[d] += 1;
            base += out_strides[d];
            if index[d] < outer[d] {
                break;
            }
            base -= out_strides[d] * outer[d];
            index[d] = 0;
        }
    }
    if op != Reduce::Max {
        let count = if op == Reduce::Mean { (x.len() / out.len().max(1)) as f64 } else { 1.0 };
        out.iter_mut().zip(&sums).for_each(|(o, s)| *o = (s / count) as f32);
    }
}

/// The larger of `m` and `v`, NaN if either is.
#[inline(always)]
fn max(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: Reduce, x: &[f32], shape: &[usize], reduced: &[bool]) -> Vec<f32> {
        let kept: usize = shape.iter().zip(reduced).filter(|(_, &r)| !r).map(|(d, _)| d).product();
        let mut out = vec![f32::NAN; kept];
        reduce(op, x, shape, reduced, &mut out);
        out
    }

    #[test]
    fn reduces_any_set_of_axes() {
        // [2, 3]: 0 1 2 / 3 4 5.
        let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
        assert_eq!(run(Reduce::Sum, &x, &[2, 3], &[true, false]), [3.0, 5.0, 7.0]);
        assert_eq!(run(Reduce::Mean, &x, &[2, 3], &[false, true]), [1.0, 4.0]);
        assert_eq!(run(Reduce::Max, &x, &[2, 3], &[true, true]), [5.0]);
        // [2, 2, 2] over axes 0 and 2: pairs (0, 1, 4, 5) and (2, 3, 6, 7).
        let y: Vec<f32> = (0..8).map(|v| v as f32).collect();
        assert_eq!(run(Reduce::Sum, &y, &[2, 2, 2], &[true, false, true]), [10.0, 18.0]);
        assert_eq!(run(Reduce::Max, &y, &[2, 2, 2], &[true, false, true]), [5.0, 7.0]);
        assert_eq!(run(Reduce::Mean, &y, &[2, 2, 2], &[false, true, false]), [1.0, 2.0, 5.0, 6.0]);
    }

    #[test]
    fn max_propagates_nan() {
        let x = [1.0, f32::NAN, 3.0, 2.0];
        let out = run(Reduce::Max, &x, &[2, 2], &[false, true]);
        assert!(out[0].is_nan());
        assert_eq!(out[1], 3.0);
    }
}
