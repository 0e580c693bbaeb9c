//! The AVX-512 VNNI kernel (`vpdpbusd` on zmm), and the AVX-512 epilogue the AMX kernel shares.
//!
//! A register tile of `R` rows × `P` panels keeps `R · P` i32 accumulators of 16 outputs; each
//! k-group step loads `P` 64-byte weight groups, broadcasts 4 codes of each row and issues
//! `R · P` `vpdpbusd`. Tiles: 6 rows × 4 panels for tall batches (24 accumulators, 4 weight
//! vectors and a broadcast: 29 of the 32 registers; 6 × 4 measured 2–3 % above 8 × 2 on Zen 5);
//! shorter row counts take 4 × 4, 2 × 4, 1 × 8, so even a single row keeps 8 independent
//! accumulators in flight.

use std::arch::x86_64::*;
use std::ops::Range;

use super::super::gemm::epilogue::avx512::Epilogue as F32Epilogue;
use super::super::gemm::Dst;
use super::super::isa::{Avx512, Avx512Vnni};
use super::{walk, Act, Group, QuantWeight, RowQuant, Rows, NR};

/// Rows of the tallest tile.
pub(super) const MR: usize = 6;

/// Rows of the tile that starts with `rest` rows left.
fn rows_at(rest: usize) -> usize {
    match rest {
        r if r >= MR => MR,
        r if r >= 4 => 4,
        r if r >= 2 => 2,
        _ => 1,
    }
}

/// Most panels a tile of `rows` rows covers (24 accumulators at most, 8 for one row).
fn panels_for(rows: usize) -> usize {
    match rows {
        MR | 4 | 2 => 4,
        _ => 8,
    }
}

/// The output columns of panels `panels` for every row of `x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) fn rows(
    t: Avx512Vnni,
    x: Rows<'_>,
    w: &QuantWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let n = x.n();
    walk(n, panels, panels_for(rows_at(n)), rows_at, |i, r, q0, g| {
        let mut j = 0;
        while j < g {
            let most = panels_for(r).min(g - j);
            let p = 1 << most.ilog2();
            let q = q0 + j;
            macro_rules! tile {
                ($r:literal, $p:literal) => {
                    tile::<$r, $p>(t, x, w, i, q, bias, act, dst)
                };
            }
            match (r, p) {
                (6, 4) => tile!(6, 4),
                (6, 2) => tile!(6, 2),
                (6, _) => tile!(6, 1),
                (4, 4) => tile!(4, 4),
                (4, 2) => tile!(4, 2),
                (4, _) => tile!(4, 1),
                (2, 4) => tile!(2, 4),
                (2, 2) => tile!(2, 2),
                (2, _) => tile!(2, 1),
                (_, 8) => tile!(1, 8),
                (_, 4) => tile!(1, 4),
                (_, 2) => tile!(1, 2),
                _ => tile!(1, 1),
            }
            j += p;
        }
    });
}

/// One `R`-row × `P`-panel tile at rows `i..i+R`, panels `q..q+P`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn tile<const R: usize, const P: usize>(
    t: Avx512Vnni,
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
    let mut acc = [[_mm512_setzero_si512(); P]; R];
    for g in 0..k4 {
        // SAFETY: g < k4 ≤ kpad / 4, the groups of each panel (asserted above); groups are
        // 64-byte aligned.
        let bv: [__m512i; P] = std::array::from_fn(|j| unsafe { _mm512_load_si512(bp[j].add(g).cast()) });
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: bytes 4g..4g + 4 ≤ kpad of row i + r < i + R, inside the codes (asserted).
            let a = _mm512_set1_epi32(unsafe { cp.add(r * kpad + 4 * g).cast::<i32>().read_unaligned() });
            for (acc, b) in acc_r.iter_mut().zip(bv) {
                *acc = _mm512_dpbusd_epi32(*acc, a, b);
            }
        }
    }
    let epilogue = Epilogue::<P>::new(t.avx512(), w, q, bias, act);
    for (r, acc_r) in acc.into_iter().enumerate() {
        epilogue.store(acc_r, x.quant[i + r], i + r, dst);
    }
}

/// The epilogue of panels `q..q+P` (steps 3 and 4 of the module doc): column sums, scales, bias
/// vectors and lane masks loaded once, then applied to each row's accumulators before the single
/// store of that row.
///
/// Accumulators are taken by value, so the tile's accumulator array never has its address taken
/// (see `gemm::epilogue::avx512::Epilogue`).
pub(super) struct Epilogue<const P: usize> {
    /// Per-output weight sums of each panel.
    colsum: [__m512i; P],
    /// Per-output weight scales of each panel.
    scale: [__m512; P],
    /// The bias of each panel's outputs (zero past `m`).
    bias: Option<[__m512; P]>,
    /// The activation and masked store of the dequantized values: the f32 GEMM's epilogue,
    /// without a bias (added here, fused into the dequantization).
    out: F32Epilogue<'static, P>,
}

impl<const P: usize> Epilogue<P> {
    /// For panels `q..q+P` of `w`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn new(t: Avx512, w: &QuantWeight, q: usize, bias: Option<&[f32]>, act: Act) -> Self {
        let col = q * NR;
        assert!(col < w.m && q + P <= w.n_panels() && w.colsum.len() >= (q + P) * NR);
        let cols = (P * NR).min(w.m - col);
        let out = F32Epilogue::<P>::new(t, q, w.m, None, act);
        let mask = out.mask();
        // SAFETY: panel j's 16 values start at (q + j)·16 < colsum.len() = scales.len()
        // (asserted; both are padded to whole panels).
        let colsum =
            std::array::from_fn(|j| unsafe { _mm512_loadu_si512(w.colsum[(q + j) * NR..].as_ptr().cast()) });
        // SAFETY: as above.
        let scale = std::array::from_fn(|j| unsafe { _mm512_loadu_ps(w.scales[(q + j) * NR..].as_ptr()) });
        let bias_vectors = bias.map(|b| {
            let b = &b[col..col + cols];
            // SAFETY: panel j's mask enables only lanes j·16 + l < cols, inside `b`.
            std::array::from_fn(|j| unsafe { _mm512_maskz_loadu_ps(mask[j], b.as_ptr().add(j * NR)) })
        });
        Epilogue { colsum, scale, bias: bias_vectors, out }
    }

    /// Corrects, scales and biases one row's accumulators (quantized with `rq`), applies the
    /// activation and stores them into row `row` of `dst`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn store(&self, acc: [__m512i; P], rq: RowQuant, row: usize, dst: &mut Dst<'_>) {
        let (zero, s) = (_mm512_set1_epi32(rq.zero), _mm512_set1_ps(rq.scale));
        let v: [__m512; P] = std::array::from_fn(|j| {
            let c = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[j], _mm512_mullo_epi32(zero, self.colsum[j])));
            let mult = _mm512_mul_ps(s, self.scale[j]);
            match &self.bias {
                Some(b) => _mm512_fmadd_ps(c, mult, b[j]),
                None => _mm512_mul_ps(c, mult),
            }
        });
        self.out.store(v, row, dst);
    }
}
