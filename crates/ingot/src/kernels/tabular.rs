//! Row transforms of tabular pipelines run as graph ops: scikit-learn's `Normalizer`
//! (`Normalize`) and the fill of missing values (`Impute`).

/// The norm each row is divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Norm {
    /// `Σ |x|`.
    L1,
    /// `sqrt(Σ x²)`.
    L2,
    /// `max |x|`.
    Max,
}

/// Each `f`-wide row of `x` divided by its norm (computed in f64), into `out`; a row whose norm
/// is 0 is copied unchanged, as scikit-learn's `normalize` does.
///
/// # Panics
/// If `out` is not as long as `x`.
pub(crate) fn normalize(norm: Norm, x: &[f32], f: usize, out: &mut [f32]) {
    out.copy_from_slice(x);
    for row in out.chunks_exact_mut(f.max(1)) {
        let values = row.iter().map(|&v| f64::from(v));
        let n = match norm {
            Norm::L1 => values.map(f64::abs).sum::<f64>(),
            Norm::L2 => values.map(|v| v * v).sum::<f64>().sqrt(),
            Norm::Max => values.fold(0f64, |m, v| m.max(v.abs())),
        };
        if n != 0.0 {
            row.iter_mut().for_each(|v| *v = (f64::from(*v) / n) as f32);
        }
    }
}

/// `x` with each NaN in column `j` of its rows replaced by `fill[j]` (`fill` holds one value
/// per column, or one for all), into `out`.
///
/// # Panics
/// If `out` is not as long as `x` or `fill` is empty.
pub(crate) fn impute(x: &[f32], fill: &[f32], out: &mut [f32]) {
    assert_eq!(out.len(), x.len(), "impute: output size");
    let width = fill.len();
    for (row_in, row_out) in x.chunks(width).zip(out.chunks_mut(width)) {
        for ((o, &v), &f) in row_out.iter_mut().zip(row_in).zip(fill.iter().cycle()) {
            *o = if v.is_nan() { f } else { v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_divided_by_their_norm() {
        let x = [3.0, -4.0, 0.0, 0.0, 1.0, 1.0];
        let run = |norm| {
            let mut out = [f32::NAN; 6];
            normalize(norm, &x, 2, &mut out);
            out
        };
        assert_eq!(run(Norm::L1), [3.0 / 7.0, -4.0 / 7.0, 0.0, 0.0, 0.5, 0.5]);
        assert_eq!(
            run(Norm::L2),
            [0.6, -0.8, 0.0, 0.0, std::f32::consts::FRAC_1_SQRT_2, std::f32::consts::FRAC_1_SQRT_2]
        );
        assert_eq!(run(Norm::Max), [0.75, -1.0, 0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn missing_values_take_their_column_fill() {
        let x = [f32::NAN, 2.0, f32::NAN, 4.0, f32::NAN, f32::NAN];
        let mut out = [0.0; 6];
        impute(&x, &[10.0, 20.0], &mut out);
        assert_eq!(out, [10.0, 2.0, 10.0, 4.0, 10.0, 20.0]);
        impute(&x, &[-1.0], &mut out);
        assert_eq!(out, [-1.0, 2.0, -1.0, 4.0, -1.0, -1.0]);
    }
}
