//! Packed GEMM for large batches: `out[n, m] = act(x[n, k] · Wᵀ + b)` with `W [m, k]` packed once.
//!
//! At load, `W` is repacked into panels of [`NR`] output columns laid out `[k][NR]`, so the
//! micro-kernel streams one contiguous panel while broadcasting input values: each step loads
//! `P` panel vectors and `R` broadcasts and issues `R × P` FMAs into register accumulators.
//! Bias and activation are applied before the single store of each output tile.
//! AVX-512F (8 rows × 32 outputs) and AVX2+FMA (6 rows × 16 outputs) are chosen at run time;
//! [`gemm_portable`] is the scalar fallback and the reference the fast paths are tested against.

use rayon::prelude::*;

use super::activation::Act;
use super::PARALLEL_MIN_WORK;

/// Output columns per packed panel.
pub(crate) const NR: usize = 16;

/// `W` packed into `ceil(m / NR)` panels of `[k][NR]`, zero-padded past `m`.
#[derive(Debug, Clone)]
pub(crate) struct PackedWeight {
    panels: Vec<f32>,
    m: usize,
    k: usize,
}

impl PackedWeight {
    /// Packs a row-major `[m, k]` weight.
    pub(crate) fn pack(w: &[f32], m: usize, k: usize) -> Self {
        let n_panels = m.div_ceil(NR);
        let mut panels = vec![0f32; n_panels * k * NR];
        for (q, panel) in panels.chunks_exact_mut(k * NR).enumerate() {
            for c in 0..NR.min(m - q * NR) {
                let row = &w[(q * NR + c) * k..(q * NR + c + 1) * k];
                for (p, &v) in row.iter().enumerate() {
                    panel[p * NR + c] = v;
                }
            }
        }
        PackedWeight { panels, m, k }
    }

    fn panel(&self, q: usize) -> &[f32] {
        &self.panels[q * self.k * NR..(q + 1) * self.k * NR]
    }
}

/// Which micro-kernel this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The best kernel the running CPU supports.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Rows per micro-tile.
    fn mr(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 => 6,
            Isa::Portable => 4,
        }
    }
}

/// Computes `out = act(x · Wᵀ + bias)` for `n = x.len() / k` rows, in parallel over row blocks
/// when the work is large enough.
pub(crate) fn gemm(
    isa: Isa,
    x: &[f32],
    w: &PackedWeight,
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let (m, k) = (w.m, w.k);
    let n = x.len() / k;
    let mr = isa.mr();
    let work = n.saturating_mul(m).saturating_mul(k);
    if work < PARALLEL_MIN_WORK {
        rows(isa, x, w, bias, act, out);
        return;
    }
    let threads = rayon::current_num_threads();
    let block = (n.div_ceil(threads * 4)).div_ceil(mr).max(1) * mr;
    x.par_chunks(block * k)
        .zip(out.par_chunks_mut(block * m))
        .for_each(|(xb, ob)| rows(isa, xb, w, bias, act, ob));
}

fn rows(isa: Isa, x: &[f32], w: &PackedWeight, bias: Option<&[f32]>, act: Act, out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only produced by `detect` after checking avx512f.
        Isa::Avx512 => unsafe { avx512::rows(x, w, bias, act, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only produced by `detect` after checking avx2 and fma.
        Isa::Avx2 => unsafe { avx2::rows(x, w, bias, act, out) },
        _ => gemm_portable(x, w, bias, act, out),
    }
}

/// Scalar kernel over the packed layout; also the reference for the SIMD kernels.
pub(crate) fn gemm_portable(
    x: &[f32],
    w: &PackedWeight,
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let (m, k) = (w.m, w.k);
    for (xr, or) in x.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
        for q in 0..m.div_ceil(NR) {
            let panel = w.panel(q);
            let mut acc = [0f32; NR];
            for (p, &xv) in xr.iter().enumerate() {
                for (a, &bv) in acc.iter_mut().zip(&panel[p * NR..(p + 1) * NR]) {
                    *a = xv.mul_add(bv, *a);
                }
            }
            for (c, a) in acc.iter().enumerate().take(NR.min(m - q * NR)) {
                let j = q * NR + c;
                or[j] = act.apply(a + bias.map_or(0.0, |b| b[j]));
            }
        }
    }
}

/// Applies bias and activation to a finished accumulator tile row and stores `cols` values.
#[inline(always)]
fn store_row(acc: &[f32], dst: &mut [f32], bias: Option<&[f32]>, act: Act) {
    match bias {
        Some(b) => dst
            .iter_mut()
            .zip(acc)
            .zip(b)
            .for_each(|((d, a), b)| *d = act.apply(a + b)),
        None => dst
            .iter_mut()
            .zip(acc)
            .for_each(|(d, a)| *d = act.apply(*a)),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{store_row, Act, PackedWeight, NR};

    const MR: usize = 8;

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows(
        x: &[f32],
        w: &PackedWeight,
        bias: Option<&[f32]>,
        act: Act,
        out: &mut [f32],
    ) {
        let (m, k) = (w.m, w.k);
        let n = x.len() / k;
        let n_panels = m.div_ceil(NR);
        let mut i = 0;
        while i < n {
            let r = (n - i).min(MR);
            let mut q = 0;
            while q < n_panels {
                let p2 = q + 1 < n_panels;
                match (r, p2) {
                    (MR, true) => tile::<MR, 2>(x, w, i, q, bias, act, out),
                    (MR, false) => tile::<MR, 1>(x, w, i, q, bias, act, out),
                    (_, true) => tail(x, w, i, r, q, 2, bias, act, out),
                    (_, false) => tail(x, w, i, r, q, 1, bias, act, out),
                }
                q += if p2 { 2 } else { 1 };
            }
            i += r;
        }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tail(
        x: &[f32],
        w: &PackedWeight,
        i: usize,
        r: usize,
        q: usize,
        p: usize,
        bias: Option<&[f32]>,
        act: Act,
        out: &mut [f32],
    ) {
        for row in i..i + r {
            if p == 2 {
                tile::<1, 2>(x, w, row, q, bias, act, out);
            } else {
                tile::<1, 1>(x, w, row, q, bias, act, out);
            }
        }
    }

    /// One `R`-row × `P`-panel tile at rows `i..i+R`, panels `q..q+P`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const R: usize, const P: usize>(
        x: &[f32],
        w: &PackedWeight,
        i: usize,
        q: usize,
        bias: Option<&[f32]>,
        act: Act,
        out: &mut [f32],
    ) {
        let (m, k) = (w.m, w.k);
        debug_assert!((i + R) * k <= x.len() && (q + P) <= m.div_ceil(NR));
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        let xp = x.as_ptr().add(i * k);
        let bp: [*const f32; P] = std::array::from_fn(|j| w.panel(q + j).as_ptr());
        for p in 0..k {
            let bv: [__m512; P] = std::array::from_fn(|j| _mm512_loadu_ps(bp[j].add(p * NR)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xp.add(r * k + p));
                for j in 0..P {
                    acc_r[j] = _mm512_fmadd_ps(xv, bv[j], acc_r[j]);
                }
            }
        }
        let mut buf = [0f32; NR];
        for (r, acc_r) in acc.iter().enumerate() {
            for (j, a) in acc_r.iter().enumerate() {
                let col = (q + j) * NR;
                let cols = NR.min(m - col);
                _mm512_storeu_ps(buf.as_mut_ptr(), *a);
                let dst = &mut out[(i + r) * m + col..(i + r) * m + col + cols];
                store_row(&buf[..cols], dst, bias.map(|b| &b[col..col + cols]), act);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{store_row, Act, PackedWeight, NR};

    const MR: usize = 6;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows(
        x: &[f32],
        w: &PackedWeight,
        bias: Option<&[f32]>,
        act: Act,
        out: &mut [f32],
    ) {
        let (m, k) = (w.m, w.k);
        let n = x.len() / k;
        let mut i = 0;
        while i < n {
            let r = (n - i).min(MR);
            for q in 0..m.div_ceil(NR) {
                if r == MR {
                    tile::<MR>(x, w, i, q, bias, act, out);
                } else {
                    for row in i..i + r {
                        tile::<1>(x, w, row, q, bias, act, out);
                    }
                }
            }
            i += r;
        }
    }

    /// One `R`-row × 16-column tile (two 8-lane halves).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const R: usize>(
        x: &[f32],
        w: &PackedWeight,
        i: usize,
        q: usize,
        bias: Option<&[f32]>,
        act: Act,
        out: &mut [f32],
    ) {
        let (m, k) = (w.m, w.k);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let xp = x.as_ptr().add(i * k);
        let bp = w.panel(q).as_ptr();
        for p in 0..k {
            let b0 = _mm256_loadu_ps(bp.add(p * NR));
            let b1 = _mm256_loadu_ps(bp.add(p * NR + 8));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(*xp.add(r * k + p));
                acc_r[0] = _mm256_fmadd_ps(xv, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(xv, b1, acc_r[1]);
            }
        }
        let col = q * NR;
        let cols = NR.min(m - col);
        let mut buf = [0f32; NR];
        for (r, acc_r) in acc.iter().enumerate() {
            _mm256_storeu_ps(buf.as_mut_ptr(), acc_r[0]);
            _mm256_storeu_ps(buf.as_mut_ptr().add(8), acc_r[1]);
            let dst = &mut out[(i + r) * m + col..(i + r) * m + col + cols];
            store_row(&buf[..cols], dst, bias.map(|b| &b[col..col + cols]), act);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::linear::linear_ref;

    fn seeded(n: usize, seed: u64) -> Vec<f32> {
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

    #[test]
    fn every_isa_matches_the_reference() {
        let isas: Vec<Isa> = [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| match i {
                Isa::Portable => true,
                Isa::Avx2 => Isa::detect() != Isa::Portable,
                Isa::Avx512 => Isa::detect() == Isa::Avx512,
            })
            .collect();
        for (n, m, k) in [
            (1, 1, 1),
            (7, 10, 64),
            (8, 16, 3),
            (9, 33, 17),
            (50, 256, 64),
            (13, 128, 256),
            (300, 10, 128),
            (5000, 3, 30),
        ] {
            let x = seeded(n * k, (n * m + k) as u64);
            let wt = seeded(m * k, m as u64 + 7);
            let b = seeded(m, 11);
            let packed = PackedWeight::pack(&wt, m, k);
            for act in [Act::Identity, Act::Relu, Act::Tanh] {
                let reference = linear_ref(&x, &wt, Some(&b), m, k, act);
                for &isa in &isas {
                    let mut out = vec![f32::NAN; n * m];
                    gemm(isa, &x, &packed, Some(&b), act, &mut out);
                    for (idx, (a, r)) in out.iter().zip(&reference).enumerate() {
                        let tol = 1e-5 * (k as f32).sqrt() * (1.0 + r.abs());
                        assert!(
                            (a - r).abs() <= tol,
                            "{isa:?} n={n} m={m} k={k} [{idx}]: {a} vs {r}"
                        );
                    }
                }
            }
        }
    }
}
