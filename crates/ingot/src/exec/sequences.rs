//! Packed sequences on a candle device: attention and pooling as padded, masked tensor ops.
//!
//! Text graphs hold a batch as its tokens end to end (`[tokens, width]`) plus sequence offsets;
//! the CPU kernels walk each sequence's rows (`crate::kernels::attention`, `pool`). Candle's
//! ops work on dense tensors instead, so here a batch is gathered into `[batch, longest, width]`
//! (padding slots repeat token 0), computed with masks that give padding no weight, and gathered
//! back to the packed rows. That is what a padded batch with an attention mask computes (what
//! sentence-transformers runs), with the extra work of the padding.

use candle_core::{DType, Device, Result, Tensor};

use crate::graph::PoolMode;

/// A score that `e^x` takes to zero next to any real score: a padding key's.
const MASKED: f32 = -1e30;

/// The padded layout of one batch of packed sequences, on the device.
#[derive(Debug)]
pub(crate) struct Padding {
    /// Sequences in the batch.
    batch: usize,
    /// Tokens of the longest sequence.
    longest: usize,
    /// Tokens of the batch (the packed rows).
    tokens: usize,
    /// `[batch · longest]`: the packed row of each padded slot (0 for padding).
    gather: Tensor,
    /// `[tokens]`: the padded slot of each packed row.
    scatter: Tensor,
    /// `[batch, 1, 1, longest]`: 0 for a token, [`MASKED`] for padding (added to scores).
    key_bias: Tensor,
    /// `[batch, longest, 1]`: 1 for a token, 0 for padding.
    keep: Tensor,
    /// `[batch, 1]`: tokens per sequence, at least 1 (the divisor of a mean).
    lengths: Tensor,
    /// `[batch, 1]`: 1 when the sequence has a token.
    nonempty: Tensor,
}

impl Padding {
    /// The layout of sequences `offsets` (checked: rising from 0 to their last value), on
    /// `device`.
    pub(crate) fn new(offsets: &[usize], device: &Device) -> Result<Padding> {
        let batch = offsets.len().saturating_sub(1);
        let longest = offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let mut gather = vec![0u32; batch * longest];
        let tokens = offsets.last().copied().unwrap_or(0);
        let mut scatter = Vec::with_capacity(tokens);
        let mut key_bias = vec![MASKED; batch * longest];
        let mut keep = vec![0u8; batch * longest];
        for (s, w) in offsets.windows(2).enumerate() {
            for (p, token) in (w[0]..w[1]).enumerate() {
                let slot = s * longest + p;
                gather[slot] = index(token)?;
                scatter.push(index(slot)?);
                key_bias[slot] = 0.0;
                keep[slot] = 1;
            }
        }
        let lengths: Vec<f32> = offsets.windows(2).map(|w| (w[1] - w[0]).max(1) as f32).collect();
        let nonempty: Vec<u8> = offsets.windows(2).map(|w| u8::from(w[1] > w[0])).collect();
        Ok(Padding {
            batch,
            longest,
            tokens,
            gather: Tensor::from_vec(gather, batch * longest, device)?,
            scatter: Tensor::from_vec(scatter, tokens, device)?,
            key_bias: Tensor::from_vec(key_bias, (batch, 1, 1, longest), device)?,
            keep: Tensor::from_vec(keep, (batch, longest, 1), device)?,
            lengths: Tensor::from_vec(lengths, (batch, 1), device)?,
            nonempty: Tensor::from_vec(nonempty, (batch, 1), device)?,
        })
    }

    /// Tokens of the batch (the packed rows).
    pub(crate) fn tokens(&self) -> usize {
        self.tokens
    }

    /// `x [tokens, width]` as `[batch, longest, width]`.
    fn pad(&self, x: &Tensor) -> Result<Tensor> {
        let width = x.dim(1)?;
        x.index_select(&self.gather, 0)?.reshape((self.batch, self.longest, width))
    }

    /// Multi-head self-attention of `qkv [tokens, 3 · hidden]` (per token q, k, v, each
    /// `heads × head_dim`), each token attending to its own sequence: `[tokens, hidden]`.
    pub(crate) fn attention(&self, qkv: &Tensor, heads: usize) -> Result<Tensor> {
        let (tokens, width) = qkv.dims2()?;
        let hidden = width / 3;
        if self.longest == 0 {
            return Tensor::zeros((tokens, hidden), DType::F32, qkv.device());
        }
        let d = hidden / heads;
        let padded = self.pad(qkv)?.reshape((self.batch, self.longest, 3, heads, d))?;
        // [batch, heads, longest, d] each.
        let part = |i: usize| padded.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous();
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(&self.key_bias)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights.matmul(&v)?.transpose(1, 2)?.reshape((self.batch * self.longest, hidden))?;
        out.index_select(&self.scatter, 0)
    }

    /// One `[batch, width]` row per sequence of `x [tokens, width]`; an empty sequence's is 0.
    pub(crate) fn pool(&self, x: &Tensor, mode: PoolMode) -> Result<Tensor> {
        let width = x.dim(1)?;
        if self.longest == 0 {
            return Tensor::zeros((self.batch, width), DType::F32, x.device());
        }
        let padded = self.pad(x)?;
        let keep = self.keep.broadcast_as(padded.shape())?;
        let zeros = padded.zeros_like()?;
        let pooled = match mode {
            PoolMode::Mean => keep.where_cond(&padded, &zeros)?.sum(1)?.broadcast_div(&self.lengths)?,
            PoolMode::Cls => padded.narrow(1, 0, 1)?.squeeze(1)?,
            PoolMode::Max => keep.where_cond(&padded, &(zeros.clone() + f64::NEG_INFINITY)?)?.max(1)?,
        };
        self.nonempty.broadcast_as(pooled.shape())?.where_cond(&pooled, &pooled.zeros_like()?)
    }
}

/// A row or slot number as a `u32` index.
fn index(i: usize) -> Result<u32> {
    u32::try_from(i).map_err(|_| candle_core::Error::Msg(format!("row {i} does not fit a u32 index")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::attention::Attention;
    use crate::kernels::isa::Isa;
    use crate::kernels::pool::SequencePool;

    /// Sequences of 3, 0, 4 and 1 tokens: an empty one between others, one longest.
    const OFFSETS: [usize; 5] = [0, 3, 3, 7, 8];

    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 1.5).collect()
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "value {i}: padded {g} vs packed {w}");
        }
    }

    #[test]
    fn padded_pooling_is_the_packed_kernels_including_an_empty_sequence() {
        let width = 5;
        let x = values(8 * width);
        let padding = Padding::new(&OFFSETS, &Device::Cpu).unwrap();
        let tensor = Tensor::from_slice(&x, (8, width), &Device::Cpu).unwrap();
        for (mode, kernel) in [
            (PoolMode::Mean, SequencePool::Mean),
            (PoolMode::Cls, SequencePool::Cls),
            (PoolMode::Max, SequencePool::Max),
        ] {
            let mut want = vec![f32::NAN; 4 * width];
            kernel.forward(&x, &OFFSETS, width, &mut want);
            let got = padding.pool(&tensor, mode).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            close(&got, &want);
        }
    }

    #[test]
    fn padded_attention_is_the_packed_kernel_including_an_empty_sequence() {
        let (heads, hidden) = (2, 8);
        let qkv = values(8 * 3 * hidden);
        let mut want = vec![f32::NAN; 8 * hidden];
        Attention { heads, isa: Isa::detect() }.forward(&qkv, &OFFSETS, hidden, &mut want);
        let padding = Padding::new(&OFFSETS, &Device::Cpu).unwrap();
        let tensor = Tensor::from_slice(&qkv, (8, 3 * hidden), &Device::Cpu).unwrap();
        let got = padding.attention(&tensor, heads).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        close(&got, &want);
        let none = Padding::new(&[0], &Device::Cpu).unwrap();
        let empty = Tensor::zeros((0, 3 * hidden), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(none.attention(&empty, heads).unwrap().dims(), [0, hidden]);
        assert_eq!(
            none.pool(&Tensor::zeros((0, hidden), DType::F32, &Device::Cpu).unwrap(), PoolMode::Mean)
                .unwrap()
                .dims(),
            [0, hidden]
        );
    }
}
