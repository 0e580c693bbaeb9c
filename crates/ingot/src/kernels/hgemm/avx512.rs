//! The AVX-512 kernels: f16 weights widened by `vcvtph2ps`, bf16 weights widened by shifts, and
//! bf16 dot products (`vdpbf16ps`) where the CPU has AVX-512 BF16.
//!
//! Register tiles: 8 rows × 2 panels (16 accumulators), 4 × 4, 2 × 8 and 1 × 8 for the last
//! rows of a batch, so that batch-1 and few-row calls still keep eight or more independent
//! accumulators in flight.

use std::arch::x86_64::*;
use std::ops::Range;

use super::super::activation::Act;
use super::super::gemm::epilogue::avx512::Epilogue;
use super::super::gemm::{Dst, NR};
use super::super::isa::{Avx512, Avx512Bf16};
use super::{walk, HalfWeight};

/// Rows of the tallest tile.
pub(super) const MR: usize = 8;

/// The tile height for `rest` rows left: 8, then 4, 2, 1.
fn rows_at(rest: usize) -> usize {
    match rest {
        r if r >= MR => MR,
        r if r >= 4 => 4,
        r if r >= 2 => 2,
        _ => 1,
    }
}

/// The widest tile of `r` rows, in panels.
fn most_panels(r: usize) -> usize {
    match r {
        MR => 2,
        4 => 4,
        _ => 8,
    }
}

/// Calls `$tile::<R, P>(args…)` for the tile shape `(r, p)` that [`walk`] picked (one of those
/// [`rows_at`] and [`most_panels`] allow).
macro_rules! dispatch {
    ($tile:ident, $r:expr, $p:expr, $($arg:expr),* $(,)?) => {
        match ($r, $p) {
            (8, 2) => $tile::<8, 2>($($arg),*),
            (8, 1) => $tile::<8, 1>($($arg),*),
            (4, 4) => $tile::<4, 4>($($arg),*),
            (4, 2) => $tile::<4, 2>($($arg),*),
            (4, 1) => $tile::<4, 1>($($arg),*),
            (2, 8) => $tile::<2, 8>($($arg),*),
            (2, 4) => $tile::<2, 4>($($arg),*),
            (2, 2) => $tile::<2, 2>($($arg),*),
            (2, 1) => $tile::<2, 1>($($arg),*),
            (1, 8) => $tile::<1, 8>($($arg),*),
            (1, 4) => $tile::<1, 4>($($arg),*),
            (1, 2) => $tile::<1, 2>($($arg),*),
            (r, p) => {
                assert!(r == 1 && p == 1, "no {r} × {p} tile");
                $tile::<1, 1>($($arg),*)
            }
        }
    };
}

/// F16 weights: the output columns of panels `panels` for every row of `x`.
#[target_feature(enable = "avx512f")]
pub(super) fn f16_rows(
    t: Avx512,
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

/// One `R`-row × `P`-panel tile of F16 weights at rows `i..i+R`, panels `q..q+P`.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn f16_tile<const R: usize, const P: usize>(
    t: Avx512,
    x: &[f32],
    w: &HalfWeight,
    i: usize,
    q: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (m, k, len) = (w.m, w.k, w.panel_len());
    let bits = w.bits();
    assert!((i + R) * k <= x.len() && (q + P) * len <= bits.len());
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    let xp = x[i * k..].as_ptr();
    let bp: [*const u16; P] = std::array::from_fn(|j| bits[(q + j) * len..].as_ptr());
    for p in 0..k {
        // SAFETY: p < k, so the 16 halves at p·NR stay inside each panel (len = k·NR values), and
        // the input offsets below R·k (asserted above).
        let bv: [__m512; P] =
            std::array::from_fn(|j| unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(bp[j].add(p * NR).cast())) });
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let xv = _mm512_set1_ps(unsafe { *xp.add(r * k + p) });
            for j in 0..P {
                acc_r[j] = _mm512_fmadd_ps(xv, bv[j], acc_r[j]);
            }
        }
    }
    let epilogue = Epilogue::<P>::new(t, q, m, bias, act);
    for (r, acc_r) in acc.into_iter().enumerate() {
        epilogue.store(acc_r, i + r, dst);
    }
}

/// Bf16 weights without `vdpbf16ps`: `x` holds the inputs rounded to bf16 (as f32).
#[target_feature(enable = "avx512f")]
pub(super) fn bf16_rows(
    t: Avx512,
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

/// One `R`-row × `P`-panel tile of bf16 weights, widened to f32: each 64-byte load holds the
/// weights of two consecutive inputs, the low halves (shifted up) and the high halves (masked).
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn bf16_tile<const R: usize, const P: usize>(
    t: Avx512,
    x: &[f32],
    w: &HalfWeight,
    i: usize,
    q: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (m, k, len) = (w.m, w.k, w.panel_len());
    let bits = w.bits();
    assert!((i + R) * k <= x.len() && (q + P) * len <= bits.len());
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    let xp = x[i * k..].as_ptr();
    let bp: [*const u16; P] = std::array::from_fn(|j| bits[(q + j) * len..].as_ptr());
    let high = _mm512_set1_epi32(0xFFFF_0000_u32 as i32);
    // SAFETY: called for pairs p < ceil(k/2) only, so the 32 values at p·2·NR stay inside each
    // panel (len = ceil(k/2)·2·NR values).
    let load = |j: usize, p: usize| unsafe { _mm512_loadu_si512(bp[j].add(p * 2 * NR).cast()) };
    // SAFETY: called for r < R and p < k only (the odd input of the last pair only when k is
    // even), so the offset stays below R·k (asserted above).
    let input = |r: usize, p: usize| _mm512_set1_ps(unsafe { *xp.add(r * k + p) });
    for p in 0..k / 2 {
        let raw: [__m512i; P] = std::array::from_fn(|j| load(j, p));
        let even: [__m512; P] = std::array::from_fn(|j| _mm512_castsi512_ps(_mm512_slli_epi32::<16>(raw[j])));
        let odd: [__m512; P] = std::array::from_fn(|j| _mm512_castsi512_ps(_mm512_and_si512(raw[j], high)));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let (xe, xo) = (input(r, 2 * p), input(r, 2 * p + 1));
            for j in 0..P {
                acc_r[j] = _mm512_fmadd_ps(xo, odd[j], _mm512_fmadd_ps(xe, even[j], acc_r[j]));
            }
        }
    }
    if k % 2 == 1 {
        let p = k / 2;
        let even: [__m512; P] =
            std::array::from_fn(|j| _mm512_castsi512_ps(_mm512_slli_epi32::<16>(load(j, p))));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xe = input(r, 2 * p);
            for j in 0..P {
                acc_r[j] = _mm512_fmadd_ps(xe, even[j], acc_r[j]);
            }
        }
    }
    let epilogue = Epilogue::<P>::new(t, q, m, bias, act);
    for (r, acc_r) in acc.into_iter().enumerate() {
        epilogue.store(acc_r, i + r, dst);
    }
}

/// Bf16 weights with `vdpbf16ps`: `pairs` holds each row's inputs rounded to bf16, two per
/// 32-bit lane (`ceil(k/2)` per row, the last zero-padded for odd `k`).
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
pub(super) fn bf16_dot_rows(
    bf16: Avx512Bf16,
    t: Avx512,
    pairs: &[u32],
    w: &HalfWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let n = pairs.len() / w.k.div_ceil(2);
    walk(n, panels, w.panel_len() * 2, rows_at, most_panels, |i, q, r, p| {
        dispatch!(bf16_dot_tile, r, p, bf16, t, pairs, w, i, q, bias, act, dst)
    });
}

/// One `R`-row × `P`-panel tile of `vdpbf16ps` dot products: each step multiplies a pair of
/// inputs (broadcast) by the pairs of weights of 16 outputs and adds both products.
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn bf16_dot_tile<const R: usize, const P: usize>(
    _bf16: Avx512Bf16,
    t: Avx512,
    pairs: &[u32],
    w: &HalfWeight,
    i: usize,
    q: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (m, k2, len) = (w.m, w.k.div_ceil(2), w.panel_len());
    let bits = w.bits();
    assert!((i + R) * k2 <= pairs.len() && (q + P) * len <= bits.len());
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    let xp = pairs[i * k2..].as_ptr();
    let bp: [*const u16; P] = std::array::from_fn(|j| bits[(q + j) * len..].as_ptr());
    for p in 0..k2 {
        // SAFETY: p < k2, so the 32 values at p·2·NR stay inside each panel (len = k2·2·NR
        // values), and the input offsets below R·k2 (asserted above). Any 64 bytes are a valid
        // vector of 32 bf16 values.
        let bv: [__m512bh; P] = std::array::from_fn(|j| unsafe {
            std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp[j].add(p * 2 * NR).cast()))
        });
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let xv = unsafe {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*xp.add(r * k2 + p) as i32))
            };
            for j in 0..P {
                acc_r[j] = _mm512_dpbf16_ps(acc_r[j], xv, bv[j]);
            }
        }
    }
    let epilogue = Epilogue::<P>::new(t, q, m, bias, act);
    for (r, acc_r) in acc.into_iter().enumerate() {
        epilogue.store(acc_r, i + r, dst);
    }
}
