//! The AVX-512 epilogue: 16-lane vectors, one per panel, stored under a lane mask.

use std::arch::x86_64::*;

use super::super::super::activation::Act;
use super::super::super::isa::Avx512;
use super::super::super::vmath::avx512::gelu;
use super::super::{Dst, NR};

/// The epilogue of one tile's panels `q..q+P`: bias vectors and lane masks loaded once,
/// then applied to each row's accumulators before the single store of that row.
///
/// Accumulators are taken by value: a reference to the tile's accumulator array, handed to
/// the out-of-line [`Self::store_other`], let the array's address escape, and one build then
/// stored all 16 accumulators of the 8 × 2 tile to the stack on every step of the
/// multiply-add loop (batch-1 sentence encoding 1.8× slower).
pub(crate) struct Epilogue<'b, const P: usize> {
    bias: Option<[__m512; P]>,
    /// The bias as given, for the scalar activations.
    bias_values: Option<&'b [f32]>,
    mask: [__mmask16; P],
    /// First output column and number of columns the panels cover.
    col: usize,
    cols: usize,
    act: Act,
    /// Holding the epilogue proves AVX-512F.
    _t: Avx512,
}

impl<'b, const P: usize> Epilogue<'b, P> {
    /// For panels `q..q+P` of an `m`-output layer.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn new(t: Avx512, q: usize, m: usize, bias: Option<&'b [f32]>, act: Act) -> Self {
        let col = q * NR;
        assert!(col < m);
        let cols = (P * NR).min(m - col);
        let mask: [__mmask16; P] = std::array::from_fn(|j| {
            let lanes = (m - col).saturating_sub(j * NR).min(NR);
            ((1u32 << lanes) - 1) as __mmask16
        });
        let bias_vectors = bias.map(|b| {
            let b = &b[col..col + cols];
            // SAFETY: panel j's mask enables only lanes j·NR + l < cols, inside `b`; the CPU
            // has AVX-512F (the token `t`).
            std::array::from_fn(|j| unsafe { _mm512_maskz_loadu_ps(mask[j], b.as_ptr().add(j * NR)) })
        });
        Epilogue { bias: bias_vectors, bias_values: bias, mask, col, cols, act, _t: t }
    }

    /// Each panel's lanes below `m`.
    pub(crate) fn mask(&self) -> [__mmask16; P] {
        self.mask
    }

    /// Adds the bias to one output row's accumulators, applies the activation and stores
    /// them into row `row` of `dst`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn store(&self, acc: [__m512; P], row: usize, dst: &mut Dst<'_>) {
        if !matches!(self.act, Act::Identity | Act::Relu) {
            self.store_other(acc, row, dst);
            return;
        }
        let out = dst.row_slice(row, self.col, self.cols);
        for (j, mut v) in acc.into_iter().enumerate() {
            if let Some(b) = &self.bias {
                v = _mm512_add_ps(v, b[j]);
            }
            if self.act == Act::Relu {
                v = _mm512_max_ps(v, _mm512_setzero_ps());
            }
            // SAFETY: panel j's mask enables only lanes j·NR + l < cols, inside `out`.
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(j * NR), self.mask[j], v) };
        }
    }

    /// [`Self::store`] for the activations with longer code (GELU vectorized, the others
    /// through the scalar epilogue), kept out of line so the common case stays small.
    #[target_feature(enable = "avx512f")]
    #[inline(never)]
    fn store_other(&self, acc: [__m512; P], row: usize, dst: &mut Dst<'_>) {
        if self.act == Act::Gelu {
            let out = dst.row_slice(row, self.col, self.cols);
            for (j, a) in acc.into_iter().enumerate() {
                let v = match &self.bias {
                    Some(b) => _mm512_add_ps(a, b[j]),
                    None => a,
                };
                // SAFETY: panel j's mask enables only lanes j·NR + l < cols, inside `out`.
                unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(j * NR), self.mask[j], gelu(v)) };
            }
            return;
        }
        let mut buf = [0f32; NR];
        for (j, a) in acc.into_iter().enumerate() {
            let lanes = self.mask[j].count_ones() as usize;
            // SAFETY: `buf` holds 16 values.
            unsafe { _mm512_storeu_ps(buf.as_mut_ptr(), a) };
            dst.store(row, self.col + j * NR, &buf[..lanes], self.bias_values, self.act);
        }
    }
}
