//! Sequence pooling (`[tokens, hidden]` + offsets → `[batch, hidden]`) and row L2 normalization.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};

use super::attention::sequence_offsets;
use super::contiguous_f32;

/// How a sequence's token vectors become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolMode {
    /// Mean over the sequence's tokens (sentence-transformers' mean pooling with its mask).
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
}

/// Pools each sequence of a packed batch.
#[derive(Debug, Clone)]
pub(crate) struct SequencePool {
    pub(crate) mode: PoolMode,
}

impl SequencePool {
    pub(crate) fn forward(&self, x: &[f32], offsets: &[usize], hidden: usize) -> Vec<f32> {
        let mut out = vec![0f32; (offsets.len() - 1) * hidden];
        for (w, o) in offsets.windows(2).zip(out.chunks_exact_mut(hidden)) {
            let rows = x[w[0] * hidden..w[1] * hidden].chunks_exact(hidden);
            match self.mode {
                PoolMode::Mean => {
                    rows.for_each(|r| o.iter_mut().zip(r).for_each(|(o, v)| *o += v));
                    // An empty sequence stays zero, as a fully masked mean does (sum / clamp(0, 1e-9)).
                    let n = (w[1] - w[0]).max(1) as f32;
                    o.iter_mut().for_each(|v| *v /= n);
                }
                PoolMode::Cls => {
                    if let Some(first) = x.get(w[0] * hidden..(w[0] + 1) * hidden).filter(|_| w[1] > w[0]) {
                        o.copy_from_slice(first);
                    }
                }
                PoolMode::Max => {
                    o.fill(f32::NEG_INFINITY);
                    rows.for_each(|r| o.iter_mut().zip(r).for_each(|(o, v)| *o = o.max(*v)));
                    if w[1] == w[0] {
                        o.fill(0.0);
                    }
                }
            }
        }
        out
    }
}

impl CustomOp2 for SequencePool {
    fn name(&self) -> &'static str {
        "ingot-sequence-pool"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (tokens, hidden) = l1.shape().dims2()?;
        let x = contiguous_f32(s1, l1, self.name())?;
        let offsets = sequence_offsets(s2, l2, tokens)?;
        let batch = offsets.len() - 1;
        Ok((CpuStorage::F32(self.forward(x, &offsets, hidden)), Shape::from((batch, hidden))))
    }
}

/// `x / max(‖x‖₂, 1e-12)` per row, as `torch.nn.functional.normalize`.
#[derive(Debug, Clone)]
pub(crate) struct L2Normalize;

impl CustomOp1 for L2Normalize {
    fn name(&self) -> &'static str {
        "ingot-l2-normalize"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, d) = l.shape().dims2()?;
        let mut out = contiguous_f32(s, l, self.name())?.to_vec();
        for row in out.chunks_exact_mut(d.max(1)) {
            let norm = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt().max(1e-12);
            row.iter_mut().for_each(|v| *v = (f64::from(*v) / norm) as f32);
        }
        Ok((CpuStorage::F32(out), Shape::from((n, d))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_each_sequence() {
        let x: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.0];
        let offsets = [0, 2, 3];
        assert_eq!(SequencePool { mode: PoolMode::Mean }.forward(&x, &offsets, 2), vec![2.0, 3.0, 5.0, 0.0]);
        assert_eq!(SequencePool { mode: PoolMode::Cls }.forward(&x, &offsets, 2), vec![1.0, 2.0, 5.0, 0.0]);
        assert_eq!(SequencePool { mode: PoolMode::Max }.forward(&x, &offsets, 2), vec![3.0, 4.0, 5.0, 0.0]);
    }
}
