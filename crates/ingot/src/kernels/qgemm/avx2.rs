//! The 256-bit kernels: AVX-VNNI (`vpdpbusd` on ymm, VEX) and plain AVX2.
//!
//! A panel's k-group is two ymm of weights (outputs 0–7 and 8–15). AVX-VNNI tiles are 6 rows ×
//! 1 panel (12 accumulators) and, for short batches, 2 rows × 2 panels. AVX2 has no u8 × s8 dot
//! product that is exact (`vpmaddubsw` saturates its i16 pair sums), so it widens each quarter of
//! a weight group to i16 (`vpmovsxbw`), spreads a row's 4 codes to i16 pairs and multiplies with
//! `vpmaddwd` (exact i32 pair sums): accumulators hold two partial sums per output, added
//! together in the epilogue; tiles of 3 rows × 1 panel.

use std::arch::x86_64::*;
use std::ops::Range;

use super::super::gemm::epilogue::avx2::Epilogue as F32Epilogue;
use super::super::gemm::Dst;
use super::super::isa::{Avx2, AvxVnni};
use super::{walk, Act, Group, QuantWeight, RowQuant, Rows, NR};

/// Rows of the tallest AVX-VNNI tile.
pub(super) const MR_VNNI: usize = 6;

/// Rows of the tallest AVX2 tile.
pub(super) const MR_AVX2: usize = 3;

/// Rows of the AVX-VNNI tile that starts with `rest` rows left.
fn rows_at_vnni(rest: usize) -> usize {
    match rest {
        r if r >= MR_VNNI => MR_VNNI,
        r if r >= 4 => 4,
        r if r >= 2 => 2,
        _ => 1,
    }
}

/// Most panels an AVX-VNNI tile of `rows` rows covers (16 registers in all).
fn panels_for_vnni(rows: usize) -> usize {
    if rows >= 4 {
        1
    } else {
        2
    }
}

/// The output columns of panels `panels` for every row of `x`, with AVX-VNNI.
#[target_feature(enable = "avx2,fma,avxvnni")]
pub(super) fn rows_vnni(
    t: AvxVnni,
    x: Rows<'_>,
    w: &QuantWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let n = x.n();
    walk(n, panels, panels_for_vnni(rows_at_vnni(n)), rows_at_vnni, |i, r, q0, g| {
        let mut j = 0;
        while j < g {
            let p = panels_for_vnni(r).min(g - j);
            let q = q0 + j;
            match (r, p) {
                (MR_VNNI, _) => tile_vnni::<MR_VNNI, 1>(t, x, w, i, q, bias, act, dst),
                (4, _) => tile_vnni::<4, 1>(t, x, w, i, q, bias, act, dst),
                (2, 2) => tile_vnni::<2, 2>(t, x, w, i, q, bias, act, dst),
                (2, _) => tile_vnni::<2, 1>(t, x, w, i, q, bias, act, dst),
                (_, 2) => tile_vnni::<1, 2>(t, x, w, i, q, bias, act, dst),
                _ => tile_vnni::<1, 1>(t, x, w, i, q, bias, act, dst),
            }
            j += p;
        }
    });
}

/// One `R`-row × `P`-panel AVX-VNNI tile at rows `i..i+R`, panels `q..q+P`.
#[target_feature(enable = "avx2,fma,avxvnni")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn tile_vnni<const R: usize, const P: usize>(
    t: AvxVnni,
    x: Rows<'_>,
    w: &QuantWeight,
    i: usize,
    q: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (kpad, k4) = (x.kpad, w.k4());
    assert!(i + R <= x.n() && (i + R) * kpad <= x.codes.len() && q + P <= w.n_panels() && 4 * k4 <= kpad);
    let cp = x.codes[i * kpad..].as_ptr();
    let bp: [*const Group; P] = std::array::from_fn(|j| w.panel(q + j).as_ptr());
    let mut acc = [[[_mm256_setzero_si256(); 2]; P]; R];
    for g in 0..k4 {
        // SAFETY: g < k4 ≤ kpad / 4, the groups of each panel (asserted above); a group is two
        // 32-byte aligned halves.
        let bv: [[__m256i; 2]; P] = std::array::from_fn(|j| unsafe {
            let p = bp[j].add(g).cast::<__m256i>();
            [_mm256_load_si256(p), _mm256_load_si256(p.add(1))]
        });
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: bytes 4g..4g + 4 ≤ kpad of row i + r < i + R, inside the codes (asserted).
            let a = _mm256_set1_epi32(unsafe { cp.add(r * kpad + 4 * g).cast::<i32>().read_unaligned() });
            for (acc, b) in acc_r.iter_mut().zip(&bv) {
                acc[0] = _mm256_dpbusd_avx_epi32(acc[0], a, b[0]);
                acc[1] = _mm256_dpbusd_avx_epi32(acc[1], a, b[1]);
            }
        }
    }
    for j in 0..P {
        let epilogue = Epilogue::new(t.avx2(), w, q + j, bias, act);
        for (r, acc_r) in acc.iter().enumerate() {
            epilogue.store(acc_r[j], x.quant[i + r], i + r, dst);
        }
    }
}

/// Rows of the AVX2 tile that starts with `rest` rows left.
fn rows_at_avx2(rest: usize) -> usize {
    rest.min(MR_AVX2)
}

/// The output columns of panels `panels` for every row of `x`, with AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) fn rows_avx2(
    t: Avx2,
    x: Rows<'_>,
    w: &QuantWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    walk(x.n(), panels, 1, rows_at_avx2, |i, r, q, _| match r {
        MR_AVX2 => tile_avx2::<MR_AVX2>(t, x, w, i, q, bias, act, dst),
        2 => tile_avx2::<2>(t, x, w, i, q, bias, act, dst),
        _ => tile_avx2::<1>(t, x, w, i, q, bias, act, dst),
    });
}

/// One `R`-row × 1-panel AVX2 tile at rows `i..i+R`, panel `q`.
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn tile_avx2<const R: usize>(
    t: Avx2,
    x: Rows<'_>,
    w: &QuantWeight,
    i: usize,
    q: usize,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (kpad, k4) = (x.kpad, w.k4());
    assert!(i + R <= x.n() && (i + R) * kpad <= x.codes.len() && q < w.n_panels() && 4 * k4 <= kpad);
    let cp = x.codes[i * kpad..].as_ptr();
    let bp = w.panel(q).as_ptr();
    // Codes c0..c3 (bytes 0..3 of each 32-bit lane) to i16 lanes c0, c1, c2, c3, c0, ...
    let spread = _mm256_setr_epi8(
        0, -128, 1, -128, 2, -128, 3, -128, 0, -128, 1, -128, 2, -128, 3, -128, 0, -128, 1, -128, 2, -128, 3,
        -128, 0, -128, 1, -128, 2, -128, 3, -128,
    );
    // acc[r][h]: outputs 4h..4h + 4 of row r, two partial sums each (k 0–1 and 2–3 of a group).
    let mut acc = [[_mm256_setzero_si256(); 4]; R];
    for g in 0..k4 {
        let c: [__m256i; R] = std::array::from_fn(|r| {
            // SAFETY: bytes 4g..4g + 4 ≤ kpad of row i + r < i + R, inside the codes (asserted).
            let four = unsafe { cp.add(r * kpad + 4 * g).cast::<i32>().read_unaligned() };
            _mm256_shuffle_epi8(_mm256_set1_epi32(four), spread)
        });
        for h in 0..4 {
            // SAFETY: g < k4 ≤ kpad / 4, the groups of the panel (asserted above); quarter h
            // is 16 aligned bytes of the group.
            let wq = _mm256_cvtepi8_epi16(unsafe { _mm_load_si128(bp.add(g).cast::<__m128i>().add(h)) });
            for (acc_r, c) in acc.iter_mut().zip(&c) {
                acc_r[h] = _mm256_add_epi32(acc_r[h], _mm256_madd_epi16(wq, *c));
            }
        }
    }
    let epilogue = Epilogue::new(t, w, q, bias, act);
    for (r, a) in acc.into_iter().enumerate() {
        // hadd gives outputs [0, 1, 4, 5 | 2, 3, 6, 7] of each pair of quarters: reorder the
        // 64-bit pairs to [0, 1, 2, 3 | 4, 5, 6, 7].
        let lo = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(a[0], a[1]));
        let hi = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(a[2], a[3]));
        epilogue.store([lo, hi], x.quant[i + r], i + r, dst);
    }
}

/// The 256-bit epilogue of panel `q` (steps 3 and 4 of the module doc); the activation and
/// store are the f32 GEMM's AVX2 epilogue.
struct Epilogue {
    /// Per-output weight sums, outputs 0–7 and 8–15.
    colsum: [__m256i; 2],
    /// Per-output weight scales.
    scale: [__m256; 2],
    /// The bias (zero past `m`).
    bias: Option<[__m256; 2]>,
    /// The activation and store of the dequantized values.
    out: F32Epilogue<'static, 1>,
}

impl Epilogue {
    /// For panel `q` of `w`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn new(t: Avx2, w: &QuantWeight, q: usize, bias: Option<&[f32]>, act: Act) -> Self {
        let col = q * NR;
        assert!(col < w.m && w.colsum.len() >= col + NR && w.scales.len() >= col + NR);
        let cols = NR.min(w.m - col);
        let (cs, sc) = (w.colsum[col..].as_ptr(), w.scales[col..].as_ptr());
        // SAFETY: 16 values from `col` are inside the padded column sums and scales (asserted).
        let (colsum, scale) = unsafe {
            (
                [_mm256_loadu_si256(cs.cast()), _mm256_loadu_si256(cs.add(8).cast())],
                [_mm256_loadu_ps(sc), _mm256_loadu_ps(sc.add(8))],
            )
        };
        let bias = bias.map(|b| {
            let mut padded = [0f32; NR];
            padded[..cols].copy_from_slice(&b[col..col + cols]);
            // SAFETY: `padded` holds 16 values.
            unsafe { [_mm256_loadu_ps(padded.as_ptr()), _mm256_loadu_ps(padded.as_ptr().add(8))] }
        });
        Epilogue { colsum, scale, bias, out: F32Epilogue::new(t, q, w.m, None, act) }
    }

    /// Corrects, scales and biases one row's 16 accumulators (quantized with `rq`) and stores
    /// them, activated, into row `row` of `dst`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn store(&self, acc: [__m256i; 2], rq: RowQuant, row: usize, dst: &mut Dst<'_>) {
        let (zero, s) = (_mm256_set1_epi32(rq.zero), _mm256_set1_ps(rq.scale));
        let v: [__m256; 2] = std::array::from_fn(|h| {
            let c = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[h], _mm256_mullo_epi32(zero, self.colsum[h])));
            let mult = _mm256_mul_ps(s, self.scale[h]);
            match &self.bias {
                Some(b) => _mm256_fmadd_ps(c, mult, b[h]),
                None => _mm256_mul_ps(c, mult),
            }
        });
        self.out.store([v], row, dst);
    }
}
