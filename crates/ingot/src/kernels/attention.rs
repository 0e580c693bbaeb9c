//! Multi-head self-attention over ragged sequences: no padding, no mask.
//!
//! Input is the fused projection `qkv [tokens, 3·hidden]` (per token: q, k, v, each
//! `heads × head_dim`) of all sequences packed end to end, plus `offsets [batch + 1]` (sequence
//! `s` is tokens `offsets[s]..offsets[s+1]`). Each token attends only to the tokens of its own
//! sequence, which is exactly what a padded batch with an attention mask computes, without the
//! padded work. Scores are scaled by `1/sqrt(head_dim)`; the softmax runs on vector lanes
//! ([`super::softmax::softmax_scaled_in_place`]). The body is plain Rust over 16-value blocks,
//! compiled once per instruction set (AVX-512, AVX2, baseline) and chosen at run time: the
//! products and sums are the same operations in the same order on every path; only the
//! softmax's `e^x` differs between paths (within 1e-7). Work is split by sequence and, when
//! there are fewer sequences than threads, by blocks of query rows within a sequence (a single
//! sentence still uses every core).

use std::ops::Range;

use super::isa::{Avx2, Avx512, Isa};

/// The attention op: `heads` heads over `[tokens, 3·hidden]`.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub(crate) heads: usize,
    pub(crate) isa: Isa,
}

/// Checks that `offsets` rise from 0 to `tokens` and widens them.
pub(crate) fn sequence_offsets(offsets: &[u32], tokens: usize) -> Result<Vec<usize>, String> {
    let offsets: Vec<usize> = offsets.iter().map(|&o| o as usize).collect();
    let ordered = offsets.first() == Some(&0) && offsets.windows(2).all(|w| w[0] <= w[1]);
    if !ordered || offsets.last() != Some(&tokens) {
        return Err(format!("sequence offsets must rise from 0 to {tokens}"));
    }
    Ok(offsets)
}

impl Attention {
    /// Attention for query rows `rows` of one sequence: `qkv` holds all its token rows, `out`
    /// the output rows of `rows`, every value of which is written.
    fn sequence(&self, qkv: &[f32], hidden: usize, rows: Range<usize>, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = self.isa.avx512() {
            // SAFETY: the `Avx512` token proves the CPU has AVX-512F, AVX2 and FMA.
            unsafe { self.sequence_avx512(t, qkv, hidden, rows, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = self.isa.avx2() {
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            unsafe { self.sequence_avx2(t, qkv, hidden, rows, out) };
            return;
        }
        self.sequence_body(qkv, hidden, rows, out);
    }

    /// [`Self::sequence_body`] compiled with AVX2 enabled.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn sequence_avx2(&self, _t: Avx2, qkv: &[f32], hidden: usize, rows: Range<usize>, out: &mut [f32]) {
        self.sequence_body(qkv, hidden, rows, out);
    }

    /// [`Self::sequence_body`] compiled with AVX-512 enabled: plain safe Rust, wider vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn sequence_avx512(&self, _t: Avx512, qkv: &[f32], hidden: usize, rows: Range<usize>, out: &mut [f32]) {
        self.sequence_body(qkv, hidden, rows, out);
    }

    #[inline(always)]
    fn sequence_body(&self, qkv: &[f32], hidden: usize, rows: Range<usize>, out: &mut [f32]) {
        let d = hidden / self.heads;
        let len = qkv.len() / (3 * hidden);
        let scale = 1.0 / (d as f32).sqrt();
        // This head's keys transposed, `[d][stride]` (zero-padded to whole 16-key blocks): a
        // query's scores for 16 keys are then `d` vector multiply-adds held in registers,
        // instead of 16 dot products that each end in a horizontal sum.
        let stride = len.next_multiple_of(16);
        let mut keys_t = vec![0f32; d * stride];
        let mut scores = vec![0f32; stride];
        for h in 0..self.heads {
            for j in 0..len {
                let k = &qkv[j * 3 * hidden + hidden + h * d..][..d];
                for (c, &kc) in k.iter().enumerate() {
                    keys_t[c * stride + j] = kc;
                }
            }
            for i in rows.clone() {
                let q = &qkv[i * 3 * hidden + h * d..][..d];
                let mut b = 0;
                while b < stride / 16 {
                    b += match stride / 16 - b {
                        1 => score_blocks::<1>(q, &keys_t, stride, b, &mut scores),
                        2 => score_blocks::<2>(q, &keys_t, stride, b, &mut scores),
                        3 => score_blocks::<3>(q, &keys_t, stride, b, &mut scores),
                        _ => score_blocks::<4>(q, &keys_t, stride, b, &mut scores),
                    };
                }
                let scores = &mut scores[..len];
                super::softmax::softmax_scaled_in_place(self.isa, scores, scale);
                let o = &mut out[(i - rows.start) * hidden + h * d..][..d];
                let values = &qkv[2 * hidden + h * d..];
                if d.is_multiple_of(32) {
                    for (cb, oc) in o.chunks_exact_mut(32).enumerate() {
                        weighted_values(scores, &values[cb * 32..], 3 * hidden, oc);
                    }
                } else {
                    o.fill(0.0);
                    for (j, &p) in scores.iter().enumerate() {
                        let v = &values[j * 3 * hidden..][..d];
                        o.iter_mut().zip(v).for_each(|(o, v)| *o += p * v);
                    }
                }
            }
        }
    }

    /// Runs all sequences of a packed batch into `out`, `[offsets.last(), hidden]` values, each
    /// written once (the buffer is never zeroed first).
    ///
    /// # Panics
    /// If `hidden` is not a multiple of the head count, `qkv` does not hold `3 · hidden` values
    /// for each of the tokens `offsets` covers, or `out` is not `tokens × hidden`.
    pub(crate) fn forward(&self, qkv: &[f32], offsets: &[usize], hidden: usize, out: &mut [f32]) {
        let tokens = offsets.last().map_or(0, |&t| t - offsets[0]);
        assert!(hidden.is_multiple_of(self.heads), "attention: {hidden} values over {} heads", self.heads);
        assert!(offsets.last().is_none_or(|&t| t * 3 * hidden <= qkv.len()), "attention: qkv too short");
        assert_eq!(out.len(), tokens * hidden, "attention: output size");
        let sequences = offsets.len().saturating_sub(1);
        let wanted = 2 * crate::parallel::threads();
        let split = if sequences >= wanted { 1 } else { wanted.div_ceil(sequences.max(1)) };
        // Work items: (sequence, query rows), with the output bounds of each.
        let mut items = Vec::with_capacity(sequences * split);
        let mut bounds = vec![0];
        for (s, w) in offsets.windows(2).enumerate() {
            let len = w[1] - w[0];
            let per = len.div_ceil(split).max(1);
            for start in (0..len).step_by(per) {
                let end = (start + per).min(len);
                items.push((s, start..end));
                bounds.push((w[0] + end - offsets[0]) * hidden);
            }
        }
        // The parts cover the whole buffer, and `sequence` writes every value of its part: each
        // row's `heads × d = hidden` values, one head slice at a time.
        crate::parallel::for_each_part_mut(out, &bounds, |item, o| {
            let (s, rows) = &items[item];
            let seq = &qkv[offsets[*s] * 3 * hidden..offsets[*s + 1] * 3 * hidden];
            self.sequence(seq, hidden, rows.clone(), o)
        });
    }
}

/// `acc[blk][l] += a · x[16·blk + l]` for `B` blocks of 16 lanes.
#[inline(always)]
fn axpy_blocks<const B: usize>(acc: &mut [[f32; 16]; B], a: f32, x: &[f32]) {
    for (acc, x) in acc.iter_mut().zip(x.chunks_exact(16)) {
        for (s, &v) in acc.iter_mut().zip(x) {
            *s += a * v;
        }
    }
}

/// Scores of one query for key blocks `b..b + B` (16 keys each) from the transposed keys
/// `[d][stride]`: `B` blocks × 2 partial sums (even and odd dimensions) are independent
/// accumulator chains held in registers. Returns `B`.
#[inline(always)]
fn score_blocks<const B: usize>(
    q: &[f32],
    keys_t: &[f32],
    stride: usize,
    b: usize,
    scores: &mut [f32],
) -> usize {
    let mut even = [[0f32; 16]; B];
    let mut odd = [[0f32; 16]; B];
    let pairs = q.len() / 2;
    for (qp, kp) in q.chunks_exact(2).zip(keys_t.chunks_exact(2 * stride)) {
        let (k0, k1) = kp.split_at(stride);
        axpy_blocks(&mut even, qp[0], &k0[b * 16..][..16 * B]);
        axpy_blocks(&mut odd, qp[1], &k1[b * 16..][..16 * B]);
    }
    if q.len() % 2 == 1 {
        axpy_blocks(&mut even, q[2 * pairs], &keys_t[2 * pairs * stride + b * 16..][..16 * B]);
    }
    for (blk, (e, o)) in even.iter().zip(&odd).enumerate() {
        for ((s, e), o) in scores[(b + blk) * 16..][..16].iter_mut().zip(e).zip(o) {
            *s = e + o;
        }
    }
    B
}

/// `out[0..32] = Σ_j p[j] · values[j·ld ..][0..32]`: two 16-wide halves × two interleaved key
/// phases, four accumulator chains in registers.
#[inline(always)]
fn weighted_values(p: &[f32], values: &[f32], ld: usize, out: &mut [f32]) {
    let mut phase0 = [[0f32; 16]; 2];
    let mut phase1 = [[0f32; 16]; 2];
    let pairs = p.len() / 2;
    for (j, pp) in p.chunks_exact(2).enumerate() {
        axpy_blocks(&mut phase0, pp[0], &values[2 * j * ld..][..32]);
        axpy_blocks(&mut phase1, pp[1], &values[(2 * j + 1) * ld..][..32]);
    }
    if p.len() % 2 == 1 {
        axpy_blocks(&mut phase0, p[2 * pairs], &values[2 * pairs * ld..][..32]);
    }
    for (half, o) in out.chunks_exact_mut(16).enumerate() {
        for ((o, a), b) in o.iter_mut().zip(&phase0[half]).zip(&phase1[half]) {
            *o = a + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Padded-batch reference: every sequence padded to the longest, masked with -inf.
    fn padded_reference(qkv: &[f32], offsets: &[usize], hidden: usize, heads: usize) -> Vec<f32> {
        let d = hidden / heads;
        let longest = offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        let mut out = vec![0f32; offsets[offsets.len() - 1] * hidden];
        for w in offsets.windows(2) {
            for h in 0..heads {
                for i in w[0]..w[1] {
                    let mut s: Vec<f64> = (0..longest)
                        .map(|jj| {
                            let j = w[0] + jj;
                            if j >= w[1] {
                                return f64::NEG_INFINITY;
                            }
                            (0..d)
                                .map(|c| {
                                    f64::from(qkv[i * 3 * hidden + h * d + c])
                                        * f64::from(qkv[j * 3 * hidden + hidden + h * d + c])
                                })
                                .sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    s.iter_mut().for_each(|v| *v = (*v - max).exp());
                    let sum: f64 = s.iter().sum();
                    for c in 0..d {
                        let v: f64 = (0..w[1] - w[0])
                            .map(|jj| {
                                s[jj] / sum
                                    * f64::from(qkv[(w[0] + jj) * 3 * hidden + 2 * hidden + h * d + c])
                            })
                            .sum();
                        out[i * hidden + h * d + c] = v as f32;
                    }
                }
            }
        }
        out
    }

    /// Many short sequences, a few of mixed length (split into row blocks), one long one alone.
    #[test]
    fn ragged_equals_padded_and_masked() {
        let many: Vec<usize> = (0..=12).map(|s| s * 3).collect();
        let cases = [vec![0, 1, 6, 6 + 13, 6 + 13 + 2], vec![0, 37], many];
        // Head widths 5 (odd), 8 (the generic value path) and 32 (the register-blocked one).
        for ((hidden, heads), offsets) in
            [(15, 3), (24, 3), (64, 2)].into_iter().flat_map(|h| cases.iter().map(move |o| (h, o.clone())))
        {
            let tokens = *offsets.last().unwrap();
            let qkv: Vec<f32> =
                (0..tokens * 3 * hidden).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0).collect();
            let reference = padded_reference(&qkv, &offsets, hidden, heads);
            for isa in Isa::available() {
                let attention = Attention { heads, isa };
                let mut out = vec![f32::NAN; tokens * hidden];
                attention.forward(&qkv, &offsets, hidden, &mut out);
                for (a, b) in out.iter().zip(&reference) {
                    assert!((a - b).abs() < 1e-5, "{isa:?} hidden {hidden} {offsets:?}: {a} vs {b}");
                }
            }
        }
    }
}
