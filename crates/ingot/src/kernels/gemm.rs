//! Packed GEMM for large batches: `out[n, m] = act(x[n, k] · Wᵀ + b)` with `W [m, k]` packed once.
//!
//! At load, `W` is repacked into panels of [`NR`] output columns laid out `[k][NR]`, so the
//! micro-kernel streams one contiguous panel while broadcasting input values: each step loads
//! `P` panel vectors and `R` broadcasts and issues `R × P` FMAs into register accumulators.
//! Bias and activation are applied before the single store of each output tile.
//! AVX-512F (8 rows × 32 outputs) and AVX2+FMA (6 rows × 16 outputs) are chosen at run time
//! ([`Isa`]); `portable` is the scalar fallback; tests compare every path the CPU has with
//! `linear::linear_ref`.
//!
//! The panels are the file format's `packed16` layout (`crate::format::packed`), so weights
//! stored packed are used in place.

use std::sync::OnceLock;

use super::activation::Act;
use super::isa::Isa;
use super::PARALLEL_MIN_WORK;
use crate::format::packed;
use crate::parallel;
use crate::storage::F32Data;

#[cfg(target_arch = "x86_64")]
pub(crate) mod epilogue;
#[cfg(target_arch = "x86_64")]
mod sparse;

/// Output columns per packed panel: one 16-lane AVX-512 vector (two AVX2 vectors).
pub(crate) const NR: usize = 16;

// The kernels read the file format's panels in place: their widths must agree.
const _: () = assert!(NR == packed::PANEL_WIDTH, "GEMM panel width differs from the packed16 layout");

/// `W` packed into `ceil(m / NR)` panels of `[k][NR]`, zero-padded past `m`.
#[derive(Debug, Clone)]
pub(crate) struct PackedWeight {
    panels: F32Data,
    m: usize,
    k: usize,
    /// Whether every weight is finite, computed when first needed.
    finite: OnceLock<bool>,
}

impl PackedWeight {
    /// Packs a row-major `[m, k]` weight.
    pub(crate) fn pack(w: &[f32], m: usize, k: usize) -> Self {
        PackedWeight { panels: packed::pack(w, m, k).into(), m, k, finite: OnceLock::new() }
    }

    /// Wraps weights already stored in the packed layout (`[ceil(m / NR), k, NR]`), without
    /// copying; `None` if the length does not match.
    pub(crate) fn from_packed(panels: F32Data, m: usize, k: usize) -> Option<Self> {
        (panels.as_slice().len() == m.div_ceil(NR) * k * NR).then_some(PackedWeight {
            panels,
            m,
            k,
            finite: OnceLock::new(),
        })
    }

    /// Output features.
    pub(crate) fn m(&self) -> usize {
        self.m
    }

    /// Input features.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Whether no weight is infinite or NaN (scanned once, on first use).
    fn all_finite(&self) -> bool {
        *self.finite.get_or_init(|| self.panels.as_slice().iter().all(|v| v.is_finite()))
    }

    fn panel(&self, q: usize) -> &[f32] {
        &self.panels.as_slice()[q * self.k * NR..(q + 1) * self.k * NR]
    }
}

/// What the caller knows about a GEMM's input values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputKind {
    /// Nothing in particular.
    Dense,
    /// The output of a ReLU: often exactly zero, which the sparse kernel skips.
    ReluOutput,
}

/// Rows per micro-tile of the kernel `isa` selects.
fn mr(isa: Isa) -> usize {
    if isa.avx512().is_some() {
        8
    } else if isa.avx2().is_some() {
        6
    } else {
        4
    }
}

/// Where a kernel writes: rows of `ldo` values, of which it may touch columns `cols`.
///
/// Kernels only ever write the buffer. Several kernels may write the
/// same rows at once when their column ranges are disjoint (the few-rows split of [`gemm`]), so
/// the output is held as a pointer and every slice handed out is bounds-checked against both the
/// buffer and the column range.
pub(crate) struct Dst<'a> {
    out: *mut f32,
    len: usize,
    ldo: usize,
    cols: std::ops::Range<usize>,
    /// Output row of the kernel's first input row (row sub-blocks of one call).
    pub(crate) row0: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> Dst<'a> {
    /// All of `out`, rows of `ldo` values.
    pub(crate) fn new(out: &'a mut [f32], ldo: usize) -> Self {
        // SAFETY: `out` is borrowed mutably for 'a, so this is the only writer.
        unsafe { Dst::columns(out.as_mut_ptr(), out.len(), ldo, 0..ldo) }
    }

    /// Columns `cols` of the `len` values at `out`.
    ///
    /// # Safety
    /// `out..out + len` must be valid for writes for 'a, and every other `Dst` over it alive at
    /// the same time must have a disjoint column range.
    pub(crate) unsafe fn columns(
        out: *mut f32,
        len: usize,
        ldo: usize,
        cols: std::ops::Range<usize>,
    ) -> Self {
        Dst { out, len, ldo, cols, row0: 0, _out: std::marker::PhantomData }
    }

    /// The `cols` output values of row `row` starting at output column `col`.
    #[inline(always)]
    pub(crate) fn row_slice(&mut self, row: usize, col: usize, cols: usize) -> &mut [f32] {
        let start = (self.row0 + row) * self.ldo + col;
        assert!(col >= self.cols.start && col + cols <= self.cols.end && start + cols <= self.len);
        // SAFETY: in bounds (asserted), and within this Dst's columns, which no other live Dst
        // over the same buffer shares (`columns`' contract).
        unsafe { std::slice::from_raw_parts_mut(self.out.add(start), cols) }
    }

    /// Stores one finished accumulator row of `cols` values for output row `row`, columns
    /// `col..col + cols`, adding the bias and applying the activation.
    #[inline(always)]
    pub(crate) fn store(&mut self, row: usize, col: usize, acc: &[f32], bias: Option<&[f32]>, act: Act) {
        let dst = self.row_slice(row, col, acc.len());
        match bias {
            Some(b) => {
                let b = &b[col..col + acc.len()];
                dst.iter_mut().zip(acc).zip(b).for_each(|((d, a), b)| *d = act.apply(a + b));
            }
            None => dst.iter_mut().zip(acc).for_each(|(d, a)| *d = act.apply(*a)),
        }
    }
}

/// Computes `out = act(x · Wᵀ + bias)` for `n = x.len() / k` rows, writing every value of `out`.
///
/// Loops run panel-outer, row-tile-inner, so each weight panel is read from memory once per
/// row block and reused from cache by every row tile (weights small enough to stay in L2 are
/// walked row-tile-outer instead, so each output row is written once). Tall batches split rows
/// across threads; short ones (a few sentences' tokens) split the panels, so the weights are
/// still streamed once. A ReLU's output ([`InputKind::ReluOutput`]) goes to the sparse kernel
/// when enough of it is zero (`sparse`, AVX-512 only).
pub(crate) fn gemm(
    isa: Isa,
    x: &[f32],
    w: &PackedWeight,
    bias: Option<&[f32]>,
    act: Act,
    input: InputKind,
    out: &mut [f32],
) {
    let (m, k) = (w.m, w.k);
    let n = x.len() / k;
    #[cfg(target_arch = "x86_64")]
    if let Some(avx512) = isa.avx512().filter(|_| input == InputKind::ReluOutput) {
        if n >= sparse::MIN_ROWS && m >= sparse::MIN_OUTPUTS && w.all_finite() {
            let block = sparse::block_rows(k);
            parallel::for_each_chunk_mut(out, block * m, |b, ob| {
                let xb = &x[b * block * k..][..ob.len() / m * k];
                sparse::block(avx512, xb, w, bias, act, Dst::new(ob, m))
            });
            return;
        }
    }
    let mr = mr(isa);
    split(out, (n, m, k), mr, 8 * mr, |rows, panels, dst| {
        kernel(isa, &x[rows.start * k..rows.end * k], w, panels, bias, act, dst)
    });
}

/// Shares one GEMM call's outputs among the pool's threads: `run(rows, panels, dst)` computes
/// the output columns of panels `panels` for input rows `rows` into `dst`, whose row 0 is output
/// row `rows.start`; `(n, m, k)` are the rows, outputs and inputs of the call, `out` its `n × m`
/// outputs.
///
/// Below [`PARALLEL_MIN_WORK`] multiply-adds, or with one thread, everything runs inline as
/// one part. Batches of at least `tall_rows` rows per thread split rows into blocks of whole
/// `mr`-row tiles (about two per thread); shorter ones (a few sentences' tokens, batch 1) split
/// the [`NR`]-output panels into about two ranges per thread, each part writing its columns of
/// every row, so the weights are still streamed once. Each output is computed by exactly one
/// part, with the same row blocks the kernel would walk inline, so the split never changes the
/// results' bits.
pub(crate) fn split(
    out: &mut [f32],
    (n, m, k): (usize, usize, usize),
    mr: usize,
    tall_rows: usize,
    run: impl Fn(std::ops::Range<usize>, std::ops::Range<usize>, Dst<'_>) + Sync,
) {
    let n_panels = m.div_ceil(NR);
    let work = n.saturating_mul(m).saturating_mul(k);
    let threads = parallel::threads();
    if work < PARALLEL_MIN_WORK || threads == 1 {
        run(0..n, 0..n_panels, Dst::new(out, m));
        return;
    }
    if n >= threads * tall_rows {
        let block = n.div_ceil(threads * 2).div_ceil(mr) * mr;
        parallel::for_each_chunk_mut(out, block * m, |b, ob| {
            let row0 = b * block;
            run(row0..row0 + ob.len() / m, 0..n_panels, Dst::new(ob, m))
        });
        return;
    }
    // Few rows: each task computes a range of panels, writing its columns of every row.
    let groups = (threads * 2).min(n_panels).max(1);
    let per = n_panels.div_ceil(groups);
    let (base, len) = (parallel::SendPtr(out.as_mut_ptr()), out.len());
    parallel::for_each(n_panels.div_ceil(per), &|g| {
        let panels = g * per..((g + 1) * per).min(n_panels);
        let cols = panels.start * NR..(panels.end * NR).min(m);
        let base = &base;
        // SAFETY: `out` stays borrowed until `for_each` returns; task `g` writes only the columns
        // of its own panel range, disjoint from every other task's.
        let dst = unsafe { Dst::columns(base.0, len, m, cols) };
        run(0..n, panels, dst);
    });
}

/// Bytes of input rows a kernel keeps hot (in L2) while it walks the weight panels.
const ROW_BLOCK_BYTES: usize = 192 * 1024;

pub(super) fn kernel(
    isa: Isa,
    x: &[f32],
    w: &PackedWeight,
    panels: std::ops::Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    mut dst: Dst<'_>,
) {
    // Panels are the outer loop; rows are cut into sub-blocks that stay in L2 meanwhile.
    let mr = mr(isa);
    let rows = (ROW_BLOCK_BYTES / (w.k * 4)).max(mr) / mr * mr;
    for (b, xb) in x.chunks(rows * w.k).enumerate() {
        dst.row0 = b * rows;
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(t) = isa.avx512() {
                // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
                unsafe { avx512::rows(t, xb, w, panels.clone(), bias, act, &mut dst) };
                continue;
            }
            if let Some(t) = isa.avx2() {
                // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
                unsafe { avx2::rows(t, xb, w, panels.clone(), bias, act, &mut dst) };
                continue;
            }
        }
        portable(xb, w, panels.clone(), bias, act, &mut dst);
    }
}

/// Scalar kernel over the packed layout; also the reference for the SIMD kernels.
fn portable(
    x: &[f32],
    w: &PackedWeight,
    panels: std::ops::Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (m, k) = (w.m, w.k);
    for q in panels {
        let panel = w.panel(q);
        let cols = NR.min(m - q * NR);
        for (i, xr) in x.chunks_exact(k).enumerate() {
            let mut acc = [0f32; NR];
            for (p, &xv) in xr.iter().enumerate() {
                for (a, &bv) in acc.iter_mut().zip(&panel[p * NR..(p + 1) * NR]) {
                    *a = xv.mul_add(bv, *a);
                }
            }
            dst.store(i, q * NR, &acc[..cols], bias, act);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::super::isa::Avx512;
    use super::epilogue::avx512::Epilogue;
    use super::{Act, Dst, PackedWeight, NR};

    const MR: usize = 8;

    /// Packed weights up to this size are walked row-tile-outer (they fit in L2).
    const SMALL_WEIGHT_BYTES: usize = 256 * 1024;

    /// The output columns of panels `panels` for every row of `x`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn rows(
        t: Avx512,
        x: &[f32],
        w: &PackedWeight,
        panels: Range<usize>,
        bias: Option<&[f32]>,
        act: Act,
        dst: &mut Dst<'_>,
    ) {
        let n = x.len() / w.k;
        // Row tiles of 8, then 4, 2, 1 for the remainder: short batches stay vectorized.
        let rows_at = |i: usize| match n - i {
            rest if rest >= MR => MR,
            rest if rest >= 4 => 4,
            rest if rest >= 2 => 2,
            _ => 1,
        };
        let step = |i: usize, q: usize, dst: &mut Dst<'_>| {
            let two = q + 1 < panels.end;
            match (rows_at(i), two) {
                (MR, true) => tile::<MR, 2>(t, x, w, i, q, bias, act, dst),
                (MR, false) => tile::<MR, 1>(t, x, w, i, q, bias, act, dst),
                (4, true) => tile::<4, 2>(t, x, w, i, q, bias, act, dst),
                (4, false) => tile::<4, 1>(t, x, w, i, q, bias, act, dst),
                (2, true) => tile::<2, 2>(t, x, w, i, q, bias, act, dst),
                (2, false) => tile::<2, 1>(t, x, w, i, q, bias, act, dst),
                (_, true) => tile::<1, 2>(t, x, w, i, q, bias, act, dst),
                (_, false) => tile::<1, 1>(t, x, w, i, q, bias, act, dst),
            }
            if two {
                2
            } else {
                1
            }
        };
        if panels.len() * w.k * NR * 4 <= SMALL_WEIGHT_BYTES {
            // The weights stay in L2 anyway: finish each row tile across all panels, so every
            // output row is written once, contiguously.
            let mut i = 0;
            while i < n {
                let mut q = panels.start;
                while q < panels.end {
                    q += step(i, q, dst);
                }
                i += rows_at(i);
            }
        } else {
            // Each panel pair is read once per row block and reused by every row tile.
            let mut q = panels.start;
            while q < panels.end {
                let mut i = 0;
                let mut advance = 1;
                while i < n {
                    advance = step(i, q, dst);
                    i += rows_at(i);
                }
                q += advance;
            }
        }
    }

    /// One `R`-row × `P`-panel tile at rows `i..i+R`, panels `q..q+P`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn tile<const R: usize, const P: usize>(
        t: Avx512,
        x: &[f32],
        w: &PackedWeight,
        i: usize,
        q: usize,
        bias: Option<&[f32]>,
        act: Act,
        dst: &mut Dst<'_>,
    ) {
        let (m, k) = (w.m, w.k);
        assert!((i + R) * k <= x.len() && (q + P) * NR * k <= w.panels.as_slice().len());
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        let xp = x[i * k..].as_ptr();
        let bp: [*const f32; P] = std::array::from_fn(|j| w.panel(q + j).as_ptr());
        for p in 0..k {
            // SAFETY: p < k, so the panel offsets stay below k·NR (each panel holds k·NR values)
            // and the input offsets below R·k (asserted above).
            let bv: [__m512; P] = std::array::from_fn(|j| unsafe { _mm512_loadu_ps(bp[j].add(p * NR)) });
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
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::super::isa::Avx2;
    use super::epilogue::avx2::store_tile;
    use super::{Act, Dst, PackedWeight, NR};

    const MR: usize = 6;

    /// Packed weights up to this size are walked row-tile-outer (they fit in L2).
    const SMALL_WEIGHT_BYTES: usize = 256 * 1024;

    /// The tile height for `rest` rows left: 6 (12 accumulators on one panel), then 3 and 2 on
    /// two panels, so the last rows of a batch still keep 12 or 8 multiply-add chains going.
    fn rows_at(rest: usize) -> usize {
        match rest {
            r if r >= MR => MR,
            r if r >= 3 => 3,
            r if r >= 2 => 2,
            _ => 1,
        }
    }

    /// The output columns of panels `panels` for every row of `x`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn rows(
        t: Avx2,
        x: &[f32],
        w: &PackedWeight,
        panels: Range<usize>,
        bias: Option<&[f32]>,
        act: Act,
        dst: &mut Dst<'_>,
    ) {
        let n = x.len() / w.k;
        // One tile at rows `i..`, panels `q..`; returns the panels it covered.
        let step = |i: usize, q: usize, dst: &mut Dst<'_>| {
            let two = q + 1 < panels.end;
            match (rows_at(n - i), two) {
                (MR, _) => tile::<MR, 1>(t, x, w, i, q, bias, act, dst),
                (3, true) => tile::<3, 2>(t, x, w, i, q, bias, act, dst),
                (3, false) => tile::<3, 1>(t, x, w, i, q, bias, act, dst),
                (2, true) => tile::<2, 2>(t, x, w, i, q, bias, act, dst),
                (2, false) => tile::<2, 1>(t, x, w, i, q, bias, act, dst),
                (_, true) => tile::<1, 2>(t, x, w, i, q, bias, act, dst),
                (_, false) => tile::<1, 1>(t, x, w, i, q, bias, act, dst),
            }
            if two && rows_at(n - i) != MR {
                2
            } else {
                1
            }
        };
        if panels.len() * w.k * NR * 4 <= SMALL_WEIGHT_BYTES {
            // The weights stay in L2 anyway: finish each row tile across all panels, so every
            // output row is written once, contiguously.
            let mut i = 0;
            while i < n {
                let mut q = panels.start;
                while q < panels.end {
                    q += step(i, q, dst);
                }
                i += rows_at(n - i);
            }
        } else {
            // Each panel is read once per row block and reused by every row tile; the last
            // rows' tiles cover two panels, full tiles one, so the walk goes a panel pair at a
            // time.
            let mut q = panels.start;
            while q < panels.end {
                let pair = (q + 1 < panels.end) as usize + 1;
                let mut i = 0;
                while i < n {
                    let r = rows_at(n - i);
                    let mut p = q;
                    while p < q + pair {
                        p += step(i, p, dst);
                    }
                    i += r;
                }
                q += pair;
            }
        }
    }

    /// One `R`-row × `P`-panel tile at rows `i..i+R`, panels `q..q+P`, each panel two 8-lane
    /// halves.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn tile<const R: usize, const P: usize>(
        t: Avx2,
        x: &[f32],
        w: &PackedWeight,
        i: usize,
        q: usize,
        bias: Option<&[f32]>,
        act: Act,
        dst: &mut Dst<'_>,
    ) {
        let (m, k) = (w.m, w.k);
        assert!((i + R) * k <= x.len() && (q + P) * NR * k <= w.panels.as_slice().len());
        let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
        let xp = x[i * k..].as_ptr();
        let bp: [*const f32; P] = std::array::from_fn(|j| w.panel(q + j).as_ptr());
        for p in 0..k {
            // SAFETY: p < k, so the panel offsets stay below k·NR (each panel holds k·NR values)
            // and the input offsets below R·k (asserted above).
            let bv: [[__m256; 2]; P] = std::array::from_fn(|j| unsafe {
                [_mm256_loadu_ps(bp[j].add(p * NR)), _mm256_loadu_ps(bp[j].add(p * NR + 8))]
            });
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let xv = _mm256_set1_ps(unsafe { *xp.add(r * k + p) });
                for j in 0..P {
                    acc_r[j][0] = _mm256_fmadd_ps(xv, bv[j][0], acc_r[j][0]);
                    acc_r[j][1] = _mm256_fmadd_ps(xv, bv[j][1], acc_r[j][1]);
                }
            }
        }
        store_tile(t, acc, i, q, m, bias, act, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::linear::linear_ref;

    /// `n` pseudo-random values in [-1, 1).
    pub(super) fn seeded(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// An output buffer of NaNs: a value a kernel fails to write stays NaN and fails the test.
    pub(super) fn nan_filled(len: usize) -> Vec<f32> {
        vec![f32::NAN; len]
    }

    #[test]
    fn relu_inputs_give_the_dense_bits() {
        let isa = *Isa::available().last().unwrap();
        // (200, 64, 3000): blocks of 32 rows for wide inputs.
        for (n, m, k) in [(40, 128, 64), (300, 70, 33), (1000, 64, 256), (200, 10, 128), (200, 64, 3000)] {
            // ReLU outputs (half zeros); in tall batches, the second half without zeros, so some
            // row blocks take the sparse kernel and others the dense one.
            let mut x: Vec<f32> = seeded(n * k, (n + m + k) as u64).into_iter().map(|v| v.max(0.0)).collect();
            if n >= 100 {
                x[n / 2 * k..].iter_mut().for_each(|v| *v += 0.5);
            }
            let mut wt = seeded(m * k, 3);
            let b = seeded(m, 4);
            for infinite in [false, true] {
                if infinite {
                    // 0 × ∞ is NaN: with a non-finite weight, zeros must not be skipped.
                    wt[k - 1] = f32::INFINITY;
                }
                let packed = PackedWeight::pack(&wt, m, k);
                let run = |input| {
                    let mut out = nan_filled(n * m);
                    gemm(isa, &x, &packed, Some(&b), Act::Identity, input, &mut out);
                    out
                };
                let (dense, relu) = (run(InputKind::Dense), run(InputKind::ReluOutput));
                let same = dense.iter().zip(&relu).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "n={n} m={m} k={k} infinite={infinite}");
                assert_eq!(dense.iter().any(|v| v.is_nan()), infinite);
            }
        }
    }

    #[test]
    fn every_isa_matches_the_reference() {
        let isas = Isa::available();
        for (n, m, k) in [
            (1, 1, 1),
            (7, 10, 64),
            (8, 16, 3),
            (9, 33, 17),
            (50, 256, 64),
            (13, 128, 256),
            (300, 10, 128),
            (5000, 3, 30),
            // Weights over avx512::SMALL_WEIGHT_BYTES: the panel-outer order, odd panel counts.
            (20, 1100, 80),
            (37, 600, 200),
            (700, 520, 160),
        ] {
            let x = seeded(n * k, (n * m + k) as u64);
            let wt = seeded(m * k, m as u64 + 7);
            let b = seeded(m, 11);
            let packed = PackedWeight::pack(&wt, m, k);
            for act in [Act::Identity, Act::Relu, Act::Tanh, Act::Gelu] {
                let reference = linear_ref(&x, &wt, Some(&b), m, k, act);
                for &isa in &isas {
                    // NaN-filled outputs: a value the kernel misses fails the comparison.
                    let mut out = nan_filled(n * m);
                    gemm(isa, &x, &packed, Some(&b), act, InputKind::Dense, &mut out);
                    let mut serial = nan_filled(n * m);
                    kernel(isa, &x, &packed, 0..m.div_ceil(NR), Some(&b), act, Dst::new(&mut serial, m));
                    assert_eq!(serial, out, "{isa:?}: parallel split changes results");
                    for (idx, (a, r)) in out.iter().zip(&reference).enumerate() {
                        let tol = 1e-5 * (k as f32).sqrt() * (1.0 + r.abs());
                        assert!((a - r).abs() <= tol, "{isa:?} n={n} m={m} k={k} [{idx}]: {a} vs {r}");
                    }
                }
            }
        }
    }
}
