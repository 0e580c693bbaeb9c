//! Sequence pooling (`[tokens, hidden]` + offsets → `[batch, hidden]`) and row L2 normalization.

/// Pools each sequence of a packed batch into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequencePool {
    /// Mean over the sequence's tokens (sentence-transformers' mean pooling with its mask).
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
}

impl SequencePool {
    /// Writes one `hidden`-wide row per sequence of `x` (`[offsets.last(), hidden]`) into `out`.
    ///
    /// # Panics
    /// If `out` is not `(offsets.len() - 1) × hidden` values or `x` is too short.
    pub(crate) fn forward(&self, x: &[f32], offsets: &[usize], hidden: usize, out: &mut [f32]) {
        assert_eq!(out.len(), offsets.len().saturating_sub(1) * hidden, "pool: output size");
        out.fill(0.0);
        for (w, o) in offsets.windows(2).zip(out.chunks_exact_mut(hidden.max(1))) {
            let rows = x[w[0] * hidden..w[1] * hidden].chunks_exact(hidden);
            match self {
                SequencePool::Mean => {
                    rows.for_each(|r| o.iter_mut().zip(r).for_each(|(o, v)| *o += v));
                    // An empty sequence stays zero, as a fully masked mean does (sum / clamp(0, 1e-9)).
                    let n = (w[1] - w[0]).max(1) as f32;
                    o.iter_mut().for_each(|v| *v /= n);
                }
                SequencePool::Cls => {
                    if let Some(first) = x.get(w[0] * hidden..(w[0] + 1) * hidden).filter(|_| w[1] > w[0]) {
                        o.copy_from_slice(first);
                    }
                }
                SequencePool::Max => {
                    o.fill(f32::NEG_INFINITY);
                    rows.for_each(|r| o.iter_mut().zip(r).for_each(|(o, v)| *o = o.max(*v)));
                    if w[1] == w[0] {
                        o.fill(0.0);
                    }
                }
            }
        }
    }
}

/// `x / max(‖x‖₂, 1e-12)` per `d`-wide row, as `torch.nn.functional.normalize`, into `out`.
///
/// # Panics
/// If `out` is not as long as `x`.
pub(crate) fn l2_normalize(x: &[f32], d: usize, out: &mut [f32]) {
    out.copy_from_slice(x);
    for row in out.chunks_exact_mut(d.max(1)) {
        let norm = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v = (f64::from(*v) / norm) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(mode: SequencePool, x: &[f32], offsets: &[usize], hidden: usize) -> Vec<f32> {
        let len = (offsets.len() - 1) * hidden;
        let mut out = vec![f32::NAN; len];
        mode.forward(x, offsets, hidden, &mut out);
        out
    }

    #[test]
    fn pools_each_sequence() {
        let x: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.0];
        let offsets = [0, 2, 3, 3];
        assert_eq!(pool(SequencePool::Mean, &x, &offsets, 2), vec![2.0, 3.0, 5.0, 0.0, 0.0, 0.0]);
        assert_eq!(pool(SequencePool::Cls, &x, &offsets, 2), vec![1.0, 2.0, 5.0, 0.0, 0.0, 0.0]);
        assert_eq!(pool(SequencePool::Max, &x, &offsets, 2), vec![3.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn l2_rows_have_unit_norm_and_zero_rows_stay_zero() {
        let x = [3.0f32, 4.0, 0.0, 0.0];
        let mut out = [f32::NAN; 4];
        l2_normalize(&x, 2, &mut out);
        assert_eq!(out, [0.6, 0.8, 0.0, 0.0]);
    }
}
