//! Packed GEMM with 16-bit weights: `out[n, m] = act(x[n, k] · Wᵀ + b)` with `W [m, k]` stored as
//! IEEE half ([`Half::F16`]) or bfloat16 ([`Half::Bf16`]) and packed once ([`HalfWeight`]).
//!
//! The structure is that of the f32 packed GEMM (`super::gemm`): panels of [`NR`] outputs,
//! register tiles of `R` rows × `P` panels, bias and activation fused into the single store of
//! each output tile, the same threading split. What differs is how a panel vector is read.
//!
//! * **F16**, panels `[k][16]` of half bits: each step widens 16 (AVX-512F, `vcvtph2ps`) or 8
//!   (AVX2 with F16C) halves to f32 and multiply-adds the f32 inputs. f16 → f32 is exact and every
//!   output accumulates `x_p · w_p` with one FMA per `p` in increasing `p`, from zero, as the
//!   scalar path does (`f32::mul_add`): every path gives the same bits, whatever the tile.
//! * **Bf16**, panels `[ceil(k/2)][16][2]`: the weights of two consecutive `p` side by side in a
//!   32-bit lane (zero past `k`). The inputs are rounded to bf16 too (round to nearest even,
//!   NaN kept and quieted), which is what `vdpbf16ps` computes: `Σ_p bf16(x_p) · w_p` in f32.
//!   With AVX-512 BF16 the inputs of each row are paired the same way and broadcast as 32-bit
//!   pairs into `vdpbf16ps`. Every other path widens the weights (`<< 16`, or masking the high
//!   half of a pair) and multiply-adds the bf16-rounded inputs: the product of two bf16 values
//!   is exact in f32, so those paths give the scalar path's bits. `vdpbf16ps` adds the two
//!   products of a pair in its own order and treats denormal inputs and results as zero, so it
//!   agrees with the others only to rounding (a few ulps of the sum).
//!
//! NaN and infinity in inputs or weights propagate as IEEE arithmetic does (`0 × ∞` is NaN);
//! nothing is skipped. The panels are allocated in 64-byte lines, so no vector load of a panel
//! crosses a cache line.

use std::ops::Range;

use super::activation::Act;
use super::gemm::{self, Dst, NR};
use super::isa::Isa;
#[cfg(target_arch = "x86_64")]
use super::isa::{Avx2, Avx512, Avx512Bf16};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Which 16-bit float the weights are stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Half {
    /// IEEE 754 binary16.
    F16,
    /// bfloat16: the high half of an f32.
    Bf16,
}

/// 64 bytes of packed weight bits: the unit the panels are allocated in, so that they start on
/// a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u16; LINE]);

/// 16-bit values per [`Line`].
const LINE: usize = 32;

/// 16-bit weights `[m, k]` (row-major bits as stored in the file), packed once for the kernels:
/// `ceil(m / 16)` panels, `[k][16]` for F16 and `[ceil(k/2)][16][2]` for Bf16, zero-padded.
#[derive(Clone)]
pub(crate) struct HalfWeight {
    /// How the bits are to be read.
    kind: Half,
    /// The panels, one after another (the last line zero-padded).
    lines: Vec<Line>,
    /// Output features.
    m: usize,
    /// Input features.
    k: usize,
}

impl std::fmt::Debug for HalfWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HalfWeight")
            .field("m", &self.m)
            .field("k", &self.k)
            .field("kind", &self.kind)
            .finish()
    }
}

impl HalfWeight {
    /// Packs row-major bits `[m * k]`; `Err` on a length mismatch or `k == 0`.
    pub(crate) fn pack(bits: &[u16], kind: Half, m: usize, k: usize) -> Result<HalfWeight, String> {
        if k == 0 {
            return Err(format!("16-bit weight [{m}, {k}]: no input features"));
        }
        if m.checked_mul(k) != Some(bits.len()) {
            return Err(format!("16-bit weight [{m}, {k}]: {} values", bits.len()));
        }
        let panel_len = Self::panel_len_of(kind, k);
        let mut packed = vec![0u16; m.div_ceil(NR) * panel_len];
        for (row, w) in bits.chunks_exact(k).enumerate() {
            let (q, j) = (row / NR, row % NR);
            let panel = &mut packed[q * panel_len..(q + 1) * panel_len];
            for (p, &b) in w.iter().enumerate() {
                let at = match kind {
                    Half::F16 => p * NR + j,
                    Half::Bf16 => p / 2 * 2 * NR + j * 2 + p % 2,
                };
                panel[at] = b;
            }
        }
        let lines = packed
            .chunks(LINE)
            .map(|c| {
                let mut line = [0u16; LINE];
                line[..c.len()].copy_from_slice(c);
                Line(line)
            })
            .collect();
        Ok(HalfWeight { kind, lines, m, k })
    }

    /// Rounds a row-major f32 weight to `kind` (round to nearest even) and returns the bits.
    pub(crate) fn round(w: &[f32], kind: Half) -> Vec<u16> {
        match kind {
            Half::F16 => w.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect(),
            Half::Bf16 => w.iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect(),
        }
    }

    /// Output features.
    pub(crate) fn m(&self) -> usize {
        self.m
    }

    /// Input features.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// How the weights are stored.
    pub(crate) fn kind(&self) -> Half {
        self.kind
    }

    /// 16-bit values per panel of a `kind` weight with `k` inputs.
    fn panel_len_of(kind: Half, k: usize) -> usize {
        match kind {
            Half::F16 => k * NR,
            Half::Bf16 => k.div_ceil(2) * 2 * NR,
        }
    }

    /// 16-bit values per panel.
    fn panel_len(&self) -> usize {
        Self::panel_len_of(self.kind, self.k)
    }

    /// Every panel, one after another.
    fn bits(&self) -> &[u16] {
        // SAFETY: `Line` is `repr(C)` around `[u16; LINE]` (64 bytes, no padding), so the vector's
        // buffer is `lines.len() · LINE` initialized `u16`s, borrowed as long as `self`.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u16>(), self.lines.len() * LINE) }
    }

    /// Panel `q`'s bits.
    fn panel(&self, q: usize) -> &[u16] {
        let len = self.panel_len();
        &self.bits()[q * len..(q + 1) * len]
    }

    /// Panel `q` widened to f32, `[k][NR]`, into `out`.
    fn widen_panel(&self, q: usize, out: &mut [f32]) {
        let panel = self.panel(q);
        for (p, row) in out.chunks_exact_mut(NR).take(self.k).enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                *o = match self.kind {
                    Half::F16 => half::f16::from_bits(panel[p * NR + j]).to_f32(),
                    Half::Bf16 => bf16_to_f32(panel[p / 2 * 2 * NR + j * 2 + p % 2]),
                };
            }
        }
    }
}

/// The f32 a bf16 stands for (exact).
#[inline(always)]
fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// `v` rounded to bf16 (nearest, ties to even; NaN kept, quieted), as `half::bf16::from_f32`
/// does, without branches so that the input loops vectorize.
#[inline(always)]
fn f32_to_bf16(v: f32) -> u16 {
    let b = v.to_bits();
    let rounded = b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16;
    let quiet = (b >> 16) | 0x40;
    (if v.is_nan() { quiet } else { rounded }) as u16
}

/// The code path a kernel call takes, with the proofs it needs.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// Portable Rust; the reference of the vector paths.
    Scalar,
    /// AVX2, FMA and F16C, 8-lane vectors.
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    /// AVX-512F, 16-lane vectors, weights widened to f32.
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
    /// AVX-512 BF16 dot products (`vdpbf16ps`), for bf16 weights.
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16(Avx512Bf16, Avx512),
}

impl Path {
    /// The best path `isa` has for `kind`.
    fn of(isa: Isa, kind: Half) -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if let (Half::Bf16, Some(bf16), Some(t)) = (kind, isa.avx512_bf16(), isa.avx512()) {
                return Path::Avx512Bf16(bf16, t);
            }
            if let Some(t) = isa.avx512() {
                return Path::Avx512(t);
            }
            if let Some(t) = isa.avx2() {
                return Path::Avx2(t);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (isa, kind);
        Path::Scalar
    }

    /// Rows of the path's tallest register tile.
    fn mr(self) -> usize {
        match self {
            Path::Scalar => 4,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2(_) => avx2::MR,
            #[cfg(target_arch = "x86_64")]
            Path::Avx512(_) | Path::Avx512Bf16(..) => avx512::MR,
        }
    }
}

/// The path `isa` runs for `kind`: "avx512-bf16", "avx512", "avx2-f16c", "avx2" or "scalar".
pub(crate) fn path_name(isa: Isa, kind: Half) -> &'static str {
    match (Path::of(isa, kind), kind) {
        (Path::Scalar, _) => "scalar",
        #[cfg(target_arch = "x86_64")]
        (Path::Avx2(_), Half::F16) => "avx2-f16c",
        #[cfg(target_arch = "x86_64")]
        (Path::Avx2(_), Half::Bf16) => "avx2",
        #[cfg(target_arch = "x86_64")]
        (Path::Avx512(_), _) => "avx512",
        #[cfg(target_arch = "x86_64")]
        (Path::Avx512Bf16(..), _) => "avx512-bf16",
    }
}

/// `out[n, m] = act(x[n, k] · Wᵀ + bias)`, `n = x.len() / k`, writing every value of `out`.
///
/// Threads split the work as `gemm::gemm` does ([`gemm::split`]): small problems run inline,
/// tall batches split rows, short ones (a few sentences' tokens, batch 1) split the panels so the
/// weights are still streamed once. The split never changes the results' bits.
///
/// # Panics
/// If `x` is not a whole number of rows, `out` not `n × m` values or `bias` not `m` values.
pub(crate) fn hgemm(isa: Isa, x: &[f32], w: &HalfWeight, bias: Option<&[f32]>, act: Act, out: &mut [f32]) {
    let (m, k) = (w.m, w.k);
    assert!(x.len().is_multiple_of(k), "hgemm: {} inputs are not rows of {k}", x.len());
    let n = x.len() / k;
    assert!(out.len() == n * m, "hgemm: {n} rows of {m} outputs into {} values", out.len());
    assert!(bias.is_none_or(|b| b.len() == m), "hgemm: bias length differs from {m} outputs");
    let path = Path::of(isa, w.kind);
    let mr = path.mr();
    gemm::split(out, (n, m, k), mr, 8 * mr, |rows, panels, dst| {
        kernel(path, &x[rows.start * k..rows.end * k], w, panels, bias, act, dst)
    });
}

/// Bytes of input rows a kernel keeps hot (in L2) while it walks the weight panels.
const ROW_BLOCK_BYTES: usize = 192 * 1024;

/// Packed weights up to this size are walked row-tile-outer (they stay in L2 anyway).
#[cfg(target_arch = "x86_64")]
const SMALL_WEIGHT_BYTES: usize = 256 * 1024;

/// Panels walked together by every row tile of a block when the weights are larger.
#[cfg(target_arch = "x86_64")]
const GROUP_PANELS: usize = 8;

/// The outputs of panels `panels` for every row of `x`, on one thread.
fn kernel(
    path: Path,
    x: &[f32],
    w: &HalfWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    mut dst: Dst<'_>,
) {
    let k = w.k;
    let mr = path.mr();
    let rows = (ROW_BLOCK_BYTES / (k * 4)).max(mr) / mr * mr;
    // Bf16: the block's inputs rounded to bf16, as f32 values or (for `vdpbf16ps`) as pairs.
    let mut rounded: Vec<f32> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    let mut pairs: Vec<u32> = Vec::new();
    for (b, xb) in x.chunks(rows * k).enumerate() {
        dst.row0 = b * rows;
        let xb = match w.kind {
            Half::F16 => xb,
            #[cfg(target_arch = "x86_64")]
            Half::Bf16 if matches!(path, Path::Avx512Bf16(..)) => {
                pairs.clear();
                for xr in xb.chunks_exact(k) {
                    pairs.extend(xr.chunks(2).map(|c| {
                        let odd = c.get(1).map_or(0, |&v| f32_to_bf16(v));
                        u32::from(f32_to_bf16(c[0])) | u32::from(odd) << 16
                    }));
                }
                &[]
            }
            Half::Bf16 => {
                rounded.clear();
                rounded.extend(xb.iter().map(|&v| bf16_to_f32(f32_to_bf16(v))));
                &rounded
            }
        };
        match (path, w.kind) {
            (Path::Scalar, _) => portable(xb, w, panels.clone(), bias, act, &mut dst),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `Avx2` token proves the CPU has AVX2, FMA and F16C.
            (Path::Avx2(t), Half::F16) => unsafe {
                avx2::f16_rows(t, xb, w, panels.clone(), bias, act, &mut dst)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            (Path::Avx2(t), Half::Bf16) => unsafe {
                avx2::bf16_rows(t, xb, w, panels.clone(), bias, act, &mut dst)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
            (Path::Avx512(t), Half::F16) => unsafe {
                avx512::f16_rows(t, xb, w, panels.clone(), bias, act, &mut dst)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
            (Path::Avx512(t), Half::Bf16) => unsafe {
                avx512::bf16_rows(t, xb, w, panels.clone(), bias, act, &mut dst)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the tokens prove the CPU has AVX-512F and AVX-512 BF16.
            (Path::Avx512Bf16(bf16, t), _) => unsafe {
                avx512::bf16_dot_rows(bf16, t, &pairs, w, panels.clone(), bias, act, &mut dst)
            },
        }
    }
}

/// Scalar kernel over the packed layout; also the reference of the vector paths. `x` holds the
/// inputs as the path multiplies them (rounded to bf16 for bf16 weights).
fn portable(
    x: &[f32],
    w: &HalfWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (m, k) = (w.m, w.k);
    let mut wide = vec![0f32; k * NR];
    for q in panels {
        w.widen_panel(q, &mut wide);
        let cols = NR.min(m - q * NR);
        for (i, xr) in x.chunks_exact(k).enumerate() {
            let mut acc = [0f32; NR];
            for (&xv, wp) in xr.iter().zip(wide.chunks_exact(NR)) {
                for (a, &wv) in acc.iter_mut().zip(wp) {
                    *a = xv.mul_add(wv, *a);
                }
            }
            dst.store(i, q * NR, &acc[..cols], bias, act);
        }
    }
}

/// Walks the tiles of `n` rows × `panels`, calling `tile(i, q, r, p)` for the tile of rows
/// `i..i + r` and panels `q..q + p`. `rows_at(rest)` picks the tile height for `rest` rows left,
/// `most_panels(r)` the widest tile of `r` rows (a power of two; narrower ones, halving, cover
/// what is left). `panel_bytes`: bytes of one packed panel.
///
/// Small weights (the panels in L2) are walked row-tile-outer, so every output row is written
/// once, contiguously; larger ones in groups of [`GROUP_PANELS`] panels that every row tile
/// of the block walks while they stay in cache.
#[cfg(target_arch = "x86_64")]
#[inline]
fn walk(
    n: usize,
    panels: Range<usize>,
    panel_bytes: usize,
    rows_at: impl Fn(usize) -> usize,
    most_panels: impl Fn(usize) -> usize,
    mut tile: impl FnMut(usize, usize, usize, usize),
) {
    let group =
        if panels.len() * panel_bytes <= SMALL_WEIGHT_BYTES { panels.len().max(1) } else { GROUP_PANELS };
    let mut g = panels.start;
    while g < panels.end {
        let end = (g + group).min(panels.end);
        let mut i = 0;
        while i < n {
            let r = rows_at(n - i);
            let mut q = g;
            while q < end {
                let mut p = most_panels(r);
                while p > end - q {
                    p /= 2;
                }
                tile(i, q, r, p);
                q += p;
            }
            i += r;
        }
        g = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::linear::linear_ref;
    use proptest::prelude::*;

    /// `n` pseudo-random values in [-1, 1).
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

    /// One level per distinct path this CPU runs for `kind`, the scalar one first.
    fn paths(kind: Half) -> Vec<Isa> {
        let mut isas: Vec<Isa> = Vec::new();
        for isa in Isa::available() {
            if isas.iter().all(|&i| path_name(i, kind) != path_name(isa, kind)) {
                isas.push(isa);
            }
        }
        assert_eq!(path_name(isas[0], kind), "scalar");
        isas
    }

    /// Row-major bits widened to f32, straight from the row-major layout.
    fn widen(bits: &[u16], kind: Half) -> Vec<f32> {
        match kind {
            Half::F16 => bits.iter().map(|&b| half::f16::from_bits(b).to_f32()).collect(),
            Half::Bf16 => bits.iter().map(|&b| half::bf16::from_bits(b).to_f32()).collect(),
        }
    }

    /// `hgemm` into a NaN-filled output: a value the kernel misses stays NaN.
    fn run(isa: Isa, x: &[f32], w: &HalfWeight, bias: Option<&[f32]>, act: Act) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.len() / w.k() * w.m()];
        hgemm(isa, x, w, bias, act, &mut out);
        out
    }

    /// The same bits (zeros of either sign count as one: ReLU of -0).
    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a == 0.0 && b == 0.0)
    }

    /// Tolerance for sums of `k` products of values in [-1, 1] in different orders.
    fn tol(k: usize, r: f32) -> f32 {
        1e-5 * (k as f32).sqrt() * (1.0 + r.abs())
    }

    /// Every path against the scalar one for one shape: the same bits where the arithmetic is
    /// the same (f32 FMAs in input order, an epilogue of exact operations), within rounding
    /// otherwise (bf16 dot products, the vector GELU's polynomial).
    fn check_paths(n: usize, m: usize, k: usize, kind: Half, act: Act, with_bias: bool, seed: u64) {
        let x = seeded(n * k, seed);
        let bits = HalfWeight::round(&seeded(m * k, seed + 1), kind);
        let b = seeded(m, seed + 2);
        let bias = with_bias.then_some(&b[..]);
        let w = HalfWeight::pack(&bits, kind, m, k).unwrap();
        let isas = paths(kind);
        let reference = run(isas[0], &x, &w, bias, act);
        for &isa in &isas[1..] {
            let name = path_name(isa, kind);
            let out = run(isa, &x, &w, bias, act);
            let exact = name != "avx512-bf16" && act != Act::Gelu;
            for (idx, (&a, &r)) in out.iter().zip(&reference).enumerate() {
                let ok = if exact { same(a, r) } else { (a - r).abs() <= tol(k, r) };
                assert!(ok, "{name} {kind:?} {act:?} n={n} m={m} k={k} [{idx}]: {a} vs scalar {r}");
            }
        }
    }

    #[test]
    fn packing_checks_its_input() {
        assert!(HalfWeight::pack(&[0; 6], Half::F16, 2, 3).is_ok());
        assert!(HalfWeight::pack(&[0; 5], Half::F16, 2, 3).is_err());
        assert!(HalfWeight::pack(&[], Half::Bf16, 2, 0).is_err());
        assert!(HalfWeight::pack(&[0; 4], Half::Bf16, usize::MAX, 2).is_err());
        let w = HalfWeight::pack(&[0; 70 * 9], Half::Bf16, 70, 9).unwrap();
        assert_eq!((w.m(), w.k(), w.kind()), (70, 9, Half::Bf16));
        assert_eq!(format!("{w:?}"), "HalfWeight { m: 70, k: 9, kind: Bf16 }");
        // 5 panels of [5][16][2] values.
        assert_eq!(w.bits().len(), (5 * 5 * 32usize).div_ceil(LINE) * LINE);
        assert_eq!(w.bits().as_ptr() as usize % 64, 0);
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(HalfWeight::round(&[1.0, -2.0, 65520.0], Half::F16), [0x3C00, 0xC000, 0x7C00]);
        // Bf16 ties: 1 + 2^-8 rounds down to 1 (even), 1 + 3·2^-8 up to 1 + 2^-6.
        let ties = [f32::from_bits(0x3F80_8000), f32::from_bits(0x3F81_8000), f32::from_bits(0x3F80_8001)];
        assert_eq!(HalfWeight::round(&ties, Half::Bf16), [0x3F80, 0x3F82, 0x3F81]);
    }

    #[test]
    fn input_rounding_matches_half() {
        let edges =
            [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x0000_8000, 0x0001_8000];
        let nans = [0x7FC0_0000, 0x7F80_0001, 0xFFFF_FFFF, 0x7FBF_FFFF];
        let mut s = 0x1234_5678_9ABC_DEF0u64;
        let random = (0..200_000).map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u32
        });
        for bits in edges.into_iter().chain(nans).chain(random) {
            let v = f32::from_bits(bits);
            let want = half::bf16::from_f32(v).to_bits();
            assert_eq!(f32_to_bf16(v), want, "{bits:#010x}");
        }
    }

    #[test]
    fn every_path_matches_linear_ref() {
        for kind in [Half::F16, Half::Bf16] {
            let isas = paths(kind);
            eprintln!(
                "hgemm {kind:?} paths: {:?}",
                isas.iter().map(|&i| path_name(i, kind)).collect::<Vec<_>>()
            );
            for (n, m, k) in [
                (1, 1, 1),
                (1, 1, 300),
                (1, 70, 33),
                (2, 17, 2),
                (3, 48, 384),
                (9, 33, 17),
                (12, 130, 64),
                // Packed weights over SMALL_WEIGHT_BYTES: the grouped order, split by panels.
                (20, 600, 300),
                // Several row blocks of ROW_BLOCK_BYTES, split by rows.
                (200, 40, 300),
            ] {
                let x = seeded(n * k, (n * m + k) as u64);
                let bits = HalfWeight::round(&seeded(m * k, m as u64 + 7), kind);
                let b = seeded(m, 11);
                let w = HalfWeight::pack(&bits, kind, m, k).unwrap();
                // What the kernels compute: bf16 weights also round the inputs.
                let xr: Vec<f32> = match kind {
                    Half::F16 => x.clone(),
                    Half::Bf16 => x.iter().map(|&v| half::bf16::from_f32(v).to_f32()).collect(),
                };
                for act in [Act::Identity, Act::Relu, Act::Gelu, Act::Sigmoid] {
                    let reference = linear_ref(&xr, &widen(&bits, kind), Some(&b), m, k, act);
                    for &isa in &isas {
                        let name = path_name(isa, kind);
                        let out = run(isa, &x, &w, Some(&b), act);
                        // The split over threads never changes the bits.
                        let mut serial = vec![f32::NAN; n * m];
                        let path = Path::of(isa, kind);
                        kernel(path, &x, &w, 0..m.div_ceil(NR), Some(&b), act, Dst::new(&mut serial, m));
                        assert!(
                            out.iter().zip(&serial).all(|(a, s)| a.to_bits() == s.to_bits()),
                            "{name}: split"
                        );
                        for (idx, (&a, &r)) in out.iter().zip(&reference).enumerate() {
                            let ok = (a - r).abs() <= tol(k, r);
                            assert!(ok, "{name} {kind:?} {act:?} n={n} m={m} k={k} [{idx}]: {a} vs {r}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn nan_and_infinity_propagate() {
        let (n, m, k) = (3, 20, 7);
        for kind in [Half::F16, Half::Bf16] {
            let mut wt = seeded(m * k, 5);
            // Output 3 has an infinite weight: inf or NaN in every row.
            wt[3 * k + 2] = f32::INFINITY;
            let w = HalfWeight::pack(&HalfWeight::round(&wt, kind), kind, m, k).unwrap();
            let mut x = seeded(n * k, 6);
            // Row 1 has a NaN input.
            x[k + 4] = f32::NAN;
            for isa in paths(kind) {
                let out = run(isa, &x, &w, None, Act::Identity);
                for (idx, v) in out.iter().enumerate() {
                    let (row, col) = (idx / m, idx % m);
                    let name = path_name(isa, kind);
                    if row == 1 {
                        assert!(v.is_nan(), "{name} {kind:?} [{row}, {col}]: {v}");
                    } else if col == 3 {
                        assert!(!v.is_finite(), "{name} {kind:?} [{row}, {col}]: {v}");
                    } else {
                        assert!(v.is_finite(), "{name} {kind:?} [{row}, {col}]: {v}");
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_shape_matches_the_scalar_path(
            n in prop_oneof![Just(1usize), 1usize..24],
            m in 1usize..70,
            k in 1usize..300,
            bf16 in any::<bool>(),
            act in prop_oneof![Just(Act::Identity), Just(Act::Relu), Just(Act::Gelu), Just(Act::Tanh)],
            with_bias in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let kind = if bf16 { Half::Bf16 } else { Half::F16 };
            check_paths(n, m, k, kind, act, with_bias, seed);
        }
    }
}
