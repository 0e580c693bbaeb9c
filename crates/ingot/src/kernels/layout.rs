//! Copies of strided views into contiguous row-major data: `Transpose` and `Slice`.

use super::write_all;

/// Copies the view of `x` with dimensions `dims` whose element `[i₀, i₁, …]` is
/// `x[offset + Σ iₐ · strides[a]]` into `out`, row-major. Runs along the last dimension with
/// stride 1 are copied as slices.
///
/// # Panics
/// If `out` is not the view's size or the view reaches outside `x`.
pub(crate) fn strided_copy(x: &[f32], offset: usize, dims: &[usize], strides: &[isize], out: &mut [f32]) {
    assert!(
        dims.len() == strides.len() && out.len() == dims.iter().product::<usize>(),
        "strided copy: shapes"
    );
    let Some((&inner, outer)) = dims.split_last() else {
        write_all(out, [x[offset]]);
        return;
    };
    if out.is_empty() {
        return;
    }
    let step = strides[dims.len() - 1];
    let mut index = vec![0usize; outer.len()];
    let mut base = offset as isize;
    for run in out.chunks_exact_mut(inner) {
        if step == 1 {
            run.copy_from_slice(&x[base as usize..][..inner]);
        } else {
            run.iter_mut().enumerate().for_each(|(j, o)| *o = x[(base + j as isize * step) as usize]);
        }
        // Odometer over the outer dimensions, moving the input offset along.
        for d in (0..outer.len()).rev() {
            index[d] += 1;
            base += strides[d];
            if index[d] < outer[d] {
                break;
            }
            base -= strides[d] * outer[d] as isize;
            index[d] = 0;
        }
    }
}

/// Row-major strides of `shape`, in elements.
pub(crate) fn strides(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![1isize; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1] as isize;
    }
    s
}

/// `x` (of `shape`) with its axes permuted: output axis `i` is input axis `perm[i]`.
///
/// # Panics
/// If `perm` is not a permutation of the axes or the lengths do not match.
pub(crate) fn transpose(x: &[f32], shape: &[usize], perm: &[usize], out: &mut [f32]) {
    let s = strides(shape);
    let dims: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    let view: Vec<isize> = perm.iter().map(|&a| s[a]).collect();
    strided_copy(x, 0, &dims, &view, out);
}

/// `x` (of `shape`) sliced: along axis `a`, `ranges[a] = (first, len, step)` keeps indices
/// `first, first + step, …` (`len` of them).
///
/// # Panics
/// If a range reaches outside its axis or the lengths do not match.
pub(crate) fn slice(x: &[f32], shape: &[usize], ranges: &[(usize, usize, isize)], out: &mut [f32]) {
    let s = strides(shape);
    let offset: usize = ranges.iter().zip(&s).map(|(&(first, _, _), &st)| first * st as usize).sum();
    let dims: Vec<usize> = ranges.iter().map(|r| r.1).collect();
    let view: Vec<isize> = ranges.iter().zip(&s).map(|(&(_, _, step), &st)| step * st).collect();
    strided_copy(x, offset, &dims, &view, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32).collect()
    }

    /// The flat index of `idx` in row-major `shape`.
    fn flat(idx: &[usize], shape: &[usize]) -> usize {
        idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
    }

    /// Every index of `shape`, row-major.
    fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
        let total: usize = shape.iter().product();
        (0..total)
            .map(|mut f| {
                let mut idx = vec![0; shape.len()];
                for d in (0..shape.len()).rev() {
                    idx[d] = f % shape[d];
                    f /= shape[d];
                }
                idx
            })
            .collect()
    }

    #[test]
    fn transposes_match_index_by_index() {
        for (shape, perm) in [
            (vec![2, 3], vec![1, 0]),
            (vec![2, 3, 4], vec![0, 2, 1]),
            (vec![2, 3, 4], vec![2, 0, 1]),
            (vec![1, 3, 5, 2], vec![0, 2, 3, 1]),
            (vec![2, 1, 2, 3, 1, 2], vec![5, 3, 1, 0, 2, 4]),
            (vec![7], vec![0]),
        ] {
            let x = iota(shape.iter().product());
            let out_shape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
            let mut out = vec![f32::NAN; x.len()];
            transpose(&x, &shape, &perm, &mut out);
            for idx in indices(&out_shape) {
                let mut src = vec![0; shape.len()];
                for (i, &a) in perm.iter().enumerate() {
                    src[a] = idx[i];
                }
                assert_eq!(out[flat(&idx, &out_shape)], x[flat(&src, &shape)], "{shape:?} {perm:?} {idx:?}");
            }
        }
    }

    #[test]
    fn slices_walk_forwards_and_backwards() {
        // [3, 4]: rows 2, 1 (backwards), columns 1, 3.
        let x = iota(12);
        let mut out = vec![f32::NAN; 4];
        slice(&x, &[3, 4], &[(2, 2, -1), (1, 2, 2)], &mut out);
        assert_eq!(out, [9.0, 11.0, 5.0, 7.0]);
        // [2, 3, 4] keeping axis 0, the last two of axis 1, every column.
        let x = iota(24);
        let mut out = vec![f32::NAN; 16];
        slice(&x, &[2, 3, 4], &[(0, 2, 1), (1, 2, 1), (0, 4, 1)], &mut out);
        let want: Vec<f32> = (4..12).chain(16..24).map(|v| v as f32).collect();
        assert_eq!(out, want);
        let mut scalar = [f32::NAN];
        strided_copy(&[5.0, 6.0], 1, &[], &[], &mut scalar);
        assert_eq!(scalar, [6.0]);
    }
}
