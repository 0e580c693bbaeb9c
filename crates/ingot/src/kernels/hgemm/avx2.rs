//! The AVX2 kernels: f16 weights widened by F16C's `vcvtph2ps`, bf16 weights widened by shifts,
//! multiply-added on 8-lane vectors.
//!
//! Register tiles: 6 rows × 1 panel (12 accumulators of the 16 registers), then 2 × 2 and
//! 1 × 2 for the last rows of a batch. Tiles store through the f32 GEMM's AVX2 epilogue
//! (bias, activation, one store per row).

use std::arch::x86_64::*;
use std::ops::Range;

use super::super::activation::Act;
use super::super::gemm::epilogue::avx2::store_tile;
use super::super::gemm::{Dst, NR};
use super::super::isa::Avx2;
use super::{walk, HalfWeight};

/// Rows of the tallest tile.
pub(super) const MR: usize = 6;

/// The tile height for `rest` rows left: 6, then 2, 1.
fn rows_at(rest: usize) -> usize {
    match rest {
        r if r >= MR => MR,
        r if r >= 2 => 2,
        _ => 1,
    }
}

/// The widest tile of `r` rows, in panels.
fn most_panels(r: usize) -> usize {
    if r == MR {
        1
    } else {
        2
    }
}

/// Calls `$tile::<R, P>(args…)` for the tile shape `(r, p)` that [`walk`] picked (one of those
/// [`rows_at`] and [`most_panels`] allow).
macro_rules! dispatch {
    ($tile:ident, $r:expr, $p:expr, $($arg:expr),* $(,)?) => {
        match ($r, $p) {
            (6, 1) => $tile::<6, 1>($($arg),*),
            (2, 2) => $tile::<2, 2>($($arg),*),
            (2, 1) => $tile::<2, 1>($($arg),*),
            (1, 2) => $tile::<1, 2>($($arg),*),
            (r, p) => {
                assert!(r == 1 && p == 1, "no {r} × {p} tile");
                $tile::<1, 1>($($arg),*)
            }
        }
    };
}

/// F16 weights: the output columns of panels `panels` for every row of `x`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_rows(
    t: Avx2,
    x: &[f32],
    w: &HalfWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let n = x.len() / w.k;
    walk(n, panels, w.panel_len() * 2, rows_at, most_panels, |i, q, r, p| {
        dispatch!(f16_tile, r, p, t, x, w, i, q, bias, act, dst)
    });
}

/// One `R`-row × `P`-panel tile of F16 weights (two 8-lane halves per panel).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn f16_tile<const R: usize, const P: usize>(
    t: Avx2,
    x: &[f32],
    w: &HalfWeight,
    i: usize,
    q: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (k, len) = (w.k, w.panel_len());
    let bits = w.bits();
    assert!((i + R) * k <= x.len() && (q + P) * len <= bits.len());
    let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
    let xp = x[i * k..].as_ptr();
    let bp: [*const u16; P] = std::array::from_fn(|j| bits[(q + j) * len..].as_ptr());
    for p in 0..k {
        let bv: [[__m256; 2]; P] = std::array::from_fn(|j| {
            // SAFETY: p < k, so the 16 halves at p·NR stay inside each panel (len = k·NR values),
            // and the input offsets below R·k (asserted above).
            std::array::from_fn(|h| unsafe {
                _mm256_cvtph_ps(_mm_loadu_si128(bp[j].add(p * NR + h * 8).cast()))
            })
        });
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let xv = _mm256_set1_ps(unsafe { *xp.add(r * k + p) });
            for (a, b) in acc_r.iter_mut().zip(&bv) {
                a[0] = _mm256_fmadd_ps(xv, b[0], a[0]);
                a[1] = _mm256_fmadd_ps(xv, b[1], a[1]);
            }
        }
    }
    store_tile(t, acc, i, q, w.m, bias, act, dst);
}

/// Bf16 weights: `x` holds the inputs rounded to bf16 (as f32).
#[target_feature(enable = "avx2,fma")]
pub(super) fn bf16_rows(
    t: Avx2,
    x: &[f32],
    w: &HalfWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let n = x.len() / w.k;
    walk(n, panels, w.panel_len() * 2, rows_at, most_panels, |i, q, r, p| {
        dispatch!(bf16_tile, r, p, t, x, w, i, q, bias, act, dst)
    });
}

/// One `R`-row × `P`-panel tile of bf16 weights, widened to f32: each 32-byte load holds the
/// weights of two consecutive inputs for 8 outputs, the low halves (shifted up) and the high
/// halves (masked).
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn bf16_tile<const R: usize, const P: usize>(
    t: Avx2,
    x: &[f32],
    w: &HalfWeight,
    i: usize,
    q: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (k, len) = (w.k, w.panel_len());
    let bits = w.bits();
    assert!((i + R) * k <= x.len() && (q + P) * len <= bits.len());
    let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
    let xp = x[i * k..].as_ptr();
    let bp: [*const u16; P] = std::array::from_fn(|j| bits[(q + j) * len..].as_ptr());
    let high = _mm256_set1_epi32(0xFFFF_0000_u32 as i32);
    // One input's step: the weights `$wv` (for each panel, two 8-output halves) times input
    // `$p`. A macro, not a closure, so it is always inlined into this target-feature function.
    macro_rules! step {
        ($wv:expr, $p:expr) => {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: r < R and $p < k, so the offset stays below R·k (asserted above).
                let xv = _mm256_set1_ps(unsafe { *xp.add(r * k + $p) });
                for (a, b) in acc_r.iter_mut().zip($wv) {
                    a[0] = _mm256_fmadd_ps(xv, b[0], a[0]);
                    a[1] = _mm256_fmadd_ps(xv, b[1], a[1]);
                }
            }
        };
    }
    for p in 0..k.div_ceil(2) {
        let mut even = [[_mm256_setzero_ps(); 2]; P];
        let mut odd = even;
        for j in 0..P {
            for h in 0..2 {
                // SAFETY: p < ceil(k/2) and h < 2, so the 16 values at p·2·NR + h·16 stay
                // inside each panel (len = ceil(k/2)·2·NR values).
                let v = unsafe { _mm256_loadu_si256(bp[j].add(p * 2 * NR + h * 16).cast()) };
                even[j][h] = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v));
                odd[j][h] = _mm256_castsi256_ps(_mm256_and_si256(v, high));
            }
        }
        step!(&even, 2 * p);
        if 2 * p + 1 < k {
            step!(&odd, 2 * p + 1);
        }
    }
    store_tile(t, acc, i, q, w.m, bias, act, dst);
}
