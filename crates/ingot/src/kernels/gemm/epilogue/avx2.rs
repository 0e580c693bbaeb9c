//! The AVX2 epilogue: each 16-column panel as two 8-lane halves; full panels are stored
//! whole, the last (partial) one under a lane mask.

use std::arch::x86_64::*;

use super::super::super::activation::Act;
use super::super::super::isa::Avx2;
use super::super::super::vmath::avx2::gelu;
use super::super::{Dst, NR};

/// The epilogue of one tile's panels `q..q+P`: bias vectors and lane masks loaded once, then
/// applied to each row's accumulators before the single store of that row.
///
/// Accumulators are taken by value, as in the AVX-512 epilogue (a reference lets the tile's
/// accumulator array escape to the stack).
pub(crate) struct Epilogue<'b, const P: usize> {
    bias: Option<[[__m256; 2]; P]>,
    /// The bias as given, for the scalar activations.
    bias_values: Option<&'b [f32]>,
    /// Per panel and half, the lanes below `m` (all ones where the panel is full).
    mask: [[__m256i; 2]; P],
    /// Whether every lane of the `P` panels is below `m`: plain stores, no mask.
    full: bool,
    /// First output column and number of columns the panels cover.
    col: usize,
    cols: usize,
    act: Act,
    /// Holding the epilogue proves AVX2 and FMA.
    _t: Avx2,
}

/// Stores a finished `R`-row × `P`-panel tile at rows `i..i+R`, panels `q..q+P` of an
/// `m`-output layer: the epilogue is built and applied out of line, so that its constants are
/// never kept in registers across the tile's multiply-add loop (with 12 accumulators, the 16
/// registers have none to spare).
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_tile<const R: usize, const P: usize>(
    t: Avx2,
    acc: [[[__m256; 2]; P]; R],
    i: usize,
    q: usize,
    m: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let epilogue = Epilogue::<P>::new(t, q, m, bias, act);
    for (r, acc_r) in acc.into_iter().enumerate() {
        epilogue.store(acc_r, i + r, dst);
    }
}

impl<'b, const P: usize> Epilogue<'b, P> {
    /// For panels `q..q+P` of an `m`-output layer.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) fn new(t: Avx2, q: usize, m: usize, bias: Option<&'b [f32]>, act: Act) -> Self {
        let col = q * NR;
        assert!(col < m);
        let cols = (P * NR).min(m - col);
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask: [[__m256i; 2]; P] = std::array::from_fn(|j| {
            std::array::from_fn(|h| {
                let lanes = cols.saturating_sub(j * NR + h * 8).min(8) as i32;
                _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), lane)
            })
        });
        let bias_vectors = bias.map(|b| {
            let b = &b[col..col + cols];
            std::array::from_fn(|j| {
                std::array::from_fn(|h| {
                    // SAFETY: the mask enables only lanes j·NR + 8h + l < cols, inside `b`.
                    unsafe { _mm256_maskload_ps(b.as_ptr().add(j * NR + h * 8), mask[j][h]) }
                })
            })
        });
        Epilogue { bias: bias_vectors, bias_values: bias, mask, full: cols == P * NR, col, cols, act, _t: t }
    }

    /// Adds the bias to one output row's accumulators (panel, then half), applies the
    /// activation and stores them into row `row` of `dst`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) fn store(&self, acc: [[__m256; 2]; P], row: usize, dst: &mut Dst<'_>) {
        if !matches!(self.act, Act::Identity | Act::Relu) {
            self.store_other(acc, row, dst);
            return;
        }
        let out = dst.row_slice(row, self.col, self.cols);
        for (j, halves) in acc.into_iter().enumerate() {
            for (h, mut v) in halves.into_iter().enumerate() {
                if let Some(b) = &self.bias {
                    v = _mm256_add_ps(v, b[j][h]);
                }
                if self.act == Act::Relu {
                    v = _mm256_max_ps(v, _mm256_setzero_ps());
                }
                self.put(out, j * NR + h * 8, self.mask[j][h], v);
            }
        }
    }

    /// Stores the 8 lanes of `v` at `out[at..]`: whole when the panels are full, else the
    /// lanes `mask` enables.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn put(&self, out: &mut [f32], at: usize, mask: __m256i, v: __m256) {
        if self.full {
            assert!(at + 8 <= out.len());
            // SAFETY: 8 values from `at` are inside `out` (asserted).
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at), v) };
        } else if at < out.len() {
            // SAFETY: `mask` enables only lanes at + l < cols = out.len(), and `at` is inside.
            unsafe { _mm256_maskstore_ps(out.as_mut_ptr().add(at), mask, v) };
        }
    }

    /// [`Self::store`] for the activations with longer code (GELU vectorized, the others
    /// through the scalar epilogue), kept out of line so the common case stays small.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn store_other(&self, acc: [[__m256; 2]; P], row: usize, dst: &mut Dst<'_>) {
        if self.act == Act::Gelu {
            let out = dst.row_slice(row, self.col, self.cols);
            for (j, halves) in acc.into_iter().enumerate() {
                for (h, a) in halves.into_iter().enumerate() {
                    let v = match &self.bias {
                        Some(b) => _mm256_add_ps(a, b[j][h]),
                        None => a,
                    };
                    self.put(out, j * NR + h * 8, self.mask[j][h], gelu(v));
                }
            }
            return;
        }
        let mut buf = [0f32; NR];
        for (j, [lo, hi]) in acc.into_iter().enumerate() {
            let col = j * NR;
            if col >= self.cols {
                break;
            }
            // SAFETY: `buf` holds 16 values, two 8-lane halves.
            unsafe {
                _mm256_storeu_ps(buf.as_mut_ptr(), lo);
                _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi);
            }
            let lanes = NR.min(self.cols - col);
            dst.store(row, self.col + col, &buf[..lanes], self.bias_values, self.act);
        }
    }
}
