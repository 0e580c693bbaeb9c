//! Batched matrix products with NumPy (ONNX `MatMul`) broadcasting of the batch dimensions:
//! `[…, n, k] × […, k, m] → […, n, m]`, each product on the packed GEMM.

use super::activation::Act;
use super::elementwise::broadcast_shape;
use super::gemm::{gemm, InputKind, PackedWeight};
use super::isa::Isa;
use super::layout::transpose;

/// The batch dimensions of the product of `a_shape` and `b_shape` (both of rank ≥ 2), with the
/// inner dimensions checked; `None` if they do not multiply.
pub(crate) fn batch_shape(a_shape: &[usize], b_shape: &[usize]) -> Option<Vec<usize>> {
    let ([lead_a @ .., _, k], [lead_b @ .., kb, _]) = (a_shape, b_shape) else { return None };
    if k != kb {
        return None;
    }
    broadcast_shape(lead_a, lead_b)
}

/// `out = a · b` batch by batch; `batch` is [`batch_shape`] of the shapes.
///
/// # Panics
/// If the shapes do not multiply or the lengths do not match them.
pub(crate) fn batched_matmul(
    isa: Isa,
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    out: &mut [f32],
) {
    let batch = batch_shape(a_shape, b_shape).unwrap_or_default();
    let (&[.., n, k], &[.., _, m]) = (a_shape, b_shape) else { return };
    let count: usize = batch.iter().product();
    assert!(out.len() == count * n * m, "matmul: output size");
    // Offsets of each operand's matrix for each output batch (0 along broadcast dimensions).
    let offsets = |shape: &[usize], matrix: usize| -> Vec<usize> {
        let dims = &shape[..shape.len() - 2];
        let pad = batch.len() - dims.len();
        (0..count)
            .map(|mut f| {
                let (mut offset, mut stride) = (0, matrix);
                for d in (0..batch.len()).rev() {
                    let i = f % batch[d];
                    f /= batch[d];
                    if let Some(&size) = d.checked_sub(pad).map(|j| &dims[j]) {
                        if size != 1 {
                            offset += i * stride;
                        }
                        stride *= size;
                    }
                }
                offset
            })
            .collect()
    };
    let (a_off, b_off) = (offsets(a_shape, n * k), offsets(b_shape, k * m));
    let mut packed: Option<(usize, PackedWeight)> = None;
    let mut bt = vec![0f32; k * m];
    for ((o, &ao), &bo) in out.chunks_exact_mut((n * m).max(1)).zip(&a_off).zip(&b_off) {
        if packed.as_ref().is_none_or(|(at, _)| *at != bo) {
            transpose(&b[bo..bo + k * m], &[k, m], &[1, 0], &mut bt);
            packed = Some((bo, PackedWeight::pack(&bt, m, k)));
        }
        if let Some((_, w)) = &packed {
            gemm(isa, &a[ao..ao + n * k], w, None, Act::Identity, InputKind::Dense, o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a · b` by the definition, batches broadcast by index.
    fn reference(a: &[f32], sa: &[usize], b: &[f32], sb: &[usize]) -> Vec<f32> {
        let batch = batch_shape(sa, sb).unwrap();
        let (n, k, m) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
        let index = |shape: &[usize], idx: &[usize]| -> usize {
            let dims = &shape[..shape.len() - 2];
            let pad = idx.len() - dims.len();
            dims.iter().enumerate().fold(0, |acc, (j, &d)| acc * d + if d == 1 { 0 } else { idx[pad + j] })
        };
        let count: usize = batch.iter().product();
        let mut out = Vec::new();
        for mut f in 0..count {
            let mut idx = vec![0; batch.len()];
            for d in (0..batch.len()).rev() {
                idx[d] = f % batch[d];
                f /= batch[d];
            }
            let (ma, mb) = (index(sa, &idx) * n * k, index(sb, &idx) * k * m);
            for i in 0..n {
                for j in 0..m {
                    out.push((0..k).map(|p| a[ma + i * k + p] * b[mb + p * m + j]).sum());
                }
            }
        }
        out
    }

    #[test]
    fn batches_broadcast_like_numpy() {
        for (sa, sb) in [
            (vec![2, 3, 4], vec![4, 5]),
            (vec![3, 4], vec![2, 4, 5]),
            (vec![2, 1, 3, 4], vec![3, 4, 2]),
            (vec![1, 2, 2, 3], vec![2, 1, 3, 1]),
            (vec![5, 9, 17], vec![5, 17, 33]),
        ] {
            let a: Vec<f32> =
                (0..sa.iter().product::<usize>()).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
            let b: Vec<f32> =
                (0..sb.iter().product::<usize>()).map(|i| ((i * 5) % 13) as f32 / 4.0 - 1.0).collect();
            let want = reference(&a, &sa, &b, &sb);
            for isa in Isa::available() {
                let mut out = vec![f32::NAN; want.len()];
                batched_matmul(isa, (&a, &sa), (&b, &sb), &mut out);
                for (x, y) in out.iter().zip(&want) {
                    assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{isa:?} {sa:?}×{sb:?}: {x} vs {y}");
                }
            }
        }
        assert_eq!(batch_shape(&[2, 3, 4], &[3, 4, 5]), None);
        assert_eq!(batch_shape(&[2, 3, 4], &[5, 5]), None);
    }
}
