//! Int8 GEMM: `out[n, m] = act(x[n, k] · Wᵀ + b)` with `W [m, k]` quantized to int8 per output
//! channel once ([`quantize_weight`], [`QuantWeight::pack`]) and the input rows quantized to u8
//! per row on every call.
//!
//! # Numerics (identical on every path)
//! 1. Input row `i`: `lo = min(0, min x)`, `hi = max(0, max x)`. A NaN or infinity in the row
//!    makes its scale NaN, so every output of that row is NaN (before the activation: ReLU maps
//!    NaN to 0 as [`Act::Relu`] does everywhere). Else if `hi == lo` (an all-zero row) the scale
//!    is 1, the zero point 0 and every code 0. Else `s = (hi − lo) / 255` (`hi/255 − lo/255` where
//!    the difference overflows; rows whose `s` would be below `f32::MIN_POSITIVE`, a range under
//!    about 3e-36, count as all-zero), `inv = 1 / s`, `z = round_ties_even(−lo · inv)` clamped to
//!    `[0, 255]` and `code = clamp(round_ties_even(x · inv) + z, 0, 255)`. The quantizer is one
//!    scalar loop, compiled for each vector level; every build does the same float operations.
//! 2. `acc[i][j] = Σ_p code[i][p] · q[j][p]`, exact in i32 (`255 · 128 · MAX_K` fits).
//! 3. `c = acc − z_i · colsum_j`, exact in i32.
//! 4. `out = act((c as f32).mul_add(s_i · scale_j, bias_j))` (no bias: `(c as f32) · (s_i ·
//!    scale_j)`), one rounding of a fused multiply-add in every path, so the values before the
//!    activation are bit-identical across paths; only vectorized activations (GELU on AVX-512)
//!    differ from the scalar [`Act::apply`] by their approximation error.
//!
//! # Layout
//! The weights are packed into panels of [`NR`] = 16 outputs, `k` padded with zeros to a
//! multiple of 64, laid out `[k / 4][16][4]` bytes: one 64-byte, 64-byte aligned [`Group`] (one
//! zmm, two ymm) holds 4 consecutive `k` of each of the 16 outputs, which is what `vpdpbusd`
//! multiplies, and 16 consecutive groups (a 64-`k` block) are one 1 KiB AMX tile in the VNNI
//! layout. Every path reads this one layout. The input codes are rows of the same padded `k`
//! (zero past `k`), 64-byte aligned, with the row count padded to a multiple of 32 (zero rows)
//! so that an AMX tile may read past the last row.
//!
//! # Paths
//! Chosen at run time from the [`Isa`] token, best first: AMX-INT8 tiles (32 rows × 32 outputs
//! of `tdpbusd` per step, inline assembly), AVX-512 VNNI (`vpdpbusd` on zmm; register tiles of
//! 6 rows × 4 panels down to 1 row × 8 panels), AVX-VNNI (the 256-bit VEX `vpdpbusd`; 6 rows ×
//! 1 panel, 2 rows × 2 panels), AVX2 (weights widened to i16 and multiplied with `vpmaddwd`,
//! exact, where `vpmaddubsw` would saturate; 3 rows × 1 panel) and the portable scalar loop (the
//! reference the tests compare with). The epilogue (zero-point correction, scales, bias,
//! activation) is fused into the single store of each output tile.
//!
//! The AMX path was written for Intel Sapphire Rapids and later, but has not run on the
//! development machine (an AMD Zen 5 without AMX); the tests run it wherever the CPU has it.

use std::ops::Range;

use super::activation::Act;
use super::gemm::{self, Dst};
use super::isa::Isa;
#[cfg(target_arch = "x86_64")]
use super::isa::{Amx, Avx2, Avx512Vnni, AvxVnni};
use super::PARALLEL_MIN_WORK;
use crate::parallel;

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Largest k the int8 kernels accept: 255·128·k must fit in an i32 accumulator.
pub(crate) const MAX_K: usize = 65_536;

/// Output columns per packed panel.
const NR: usize = 16;

// The threading split ([`gemm::split`]) cuts the outputs at the f32 GEMM's panel width.
const _: () = assert!(NR == gemm::NR, "int8 panel width differs from the f32 GEMM's");

/// `k` is padded to a multiple of this: one AMX tile row of codes.
const KB: usize = 64;

/// Consecutive `k` values one `vpdpbusd` lane sums.
const KG: usize = 4;

/// Input rows are padded (with zero codes) to a multiple of this: the AMX tile height pair.
const ROW_PAD: usize = 32;

/// Bytes of input codes a kernel keeps hot (in L2) while it walks the weight panels.
const ROW_BLOCK_BYTES: usize = 192 * 1024;

/// Batches with at least this many rows per thread split rows across threads; shorter ones
/// split the panels.
const ROW_SPLIT_ROWS: usize = 64;

/// `1.5 · 2^23`: adding and subtracting it rounds an f32 of magnitude below 2^22 to an integer,
/// ties to even, in the default rounding mode (a vectorizable `round_ties_even`).
const ROUND: f32 = 12_582_912.0;

/// One k-group of a weight panel: 4 consecutive weights of each of 16 outputs (`[16][4]`).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Group([i8; 64]);

/// 64 input codes, 64-byte aligned; a row of codes is `kpad / 64` lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const _: () = assert!(size_of::<Group>() == 64 && size_of::<Line>() == 64 && NR * KG == 64);

/// Symmetric per-output-channel quantization of a row-major `[m, k]` f32 weight:
/// `scale_j = max_p |w[j,p]| / 127` (1.0 if the row is all zero or scale would be 0), `q =
/// round_ties_even(w / scale)` clamped to `[-127, 127]`. (Choosing the scale that minimizes each
/// row's squared error instead, clipping outliers, made MiniLM's embeddings slightly worse.)
///
/// Returns `(q [m*k] row-major, scales [m])`. Non-finite weights: an error naming the row.
pub(crate) fn quantize_weight(w: &[f32], m: usize, k: usize) -> Result<(Vec<i8>, Vec<f32>), String> {
    if k == 0 || Some(w.len()) != m.checked_mul(k) {
        return Err(format!("int8 weight: {} values is not {m} rows of {k} (k > 0)", w.len()));
    }
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(m);
    for (j, row) in w.chunks_exact(k).enumerate() {
        if let Some(p) = row.iter().position(|v| !v.is_finite()) {
            return Err(format!("int8 weight: row {j} has a non-finite value ({}) at column {p}", row[p]));
        }
        let scale = row.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
        let scale = if scale > 0.0 { scale } else { 1.0 };
        scales.push(scale);
        q.extend(row.iter().map(|v| (v / scale).round_ties_even().clamp(-127.0, 127.0) as i8));
    }
    Ok((q, scales))
}

/// int8 weights `[m, k]` row-major with their per-output scales, packed once for the kernels.
pub(crate) struct QuantWeight {
    /// `ceil(m / 16)` panels of `kpad / 4` groups (see the module doc), zero past `m` and `k`.
    panels: Vec<Group>,
    /// Per-output scales, padded with zeros to whole panels.
    scales: Vec<f32>,
    /// Per-output sums of the int8 weights over `k` (the zero-point correction), padded with
    /// zeros to whole panels.
    colsum: Vec<i32>,
    /// Output features.
    m: usize,
    /// Input features.
    k: usize,
}

impl std::fmt::Debug for QuantWeight {
    /// The shape; the weights themselves are not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantWeight").field("m", &self.m).field("k", &self.k).finish_non_exhaustive()
    }
}

impl QuantWeight {
    /// Packs; Err if lengths mismatch, k == 0, k > MAX_K, or a scale is not finite and > 0. Any
    /// i8 incl. -128 is accepted.
    pub(crate) fn pack(q: &[i8], scales: &[f32], m: usize, k: usize) -> Result<QuantWeight, String> {
        if k == 0 || k > MAX_K {
            return Err(format!("int8 weight: k = {k} is outside 1..={MAX_K}"));
        }
        if Some(q.len()) != m.checked_mul(k) || scales.len() != m {
            return Err(format!(
                "int8 weight: {} values and {} scales for {m} rows of {k}",
                q.len(),
                scales.len()
            ));
        }
        if let Some(j) = scales.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!(
                "int8 weight: the scale of row {j} ({}) is not finite and positive",
                scales[j]
            ));
        }
        let kg = k.div_ceil(KB) * KB / KG;
        let n_panels = m.div_ceil(NR);
        let mut panels = vec![Group([0; 64]); n_panels * kg];
        let mut colsum = vec![0i32; n_panels * NR];
        let mut padded_scales = vec![0f32; n_panels * NR];
        padded_scales[..m].copy_from_slice(scales);
        for (j, row) in q.chunks_exact(k).enumerate() {
            let (panel, o) = (j / NR, j % NR);
            for (p, &v) in row.iter().enumerate() {
                panels[panel * kg + p / KG].0[o * KG + p % KG] = v;
            }
            colsum[j] = row.iter().map(|&v| i32::from(v)).sum();
        }
        Ok(QuantWeight { panels, scales: padded_scales, colsum, m, k })
    }

    /// Output features.
    pub(crate) fn m(&self) -> usize {
        self.m
    }

    /// Input features.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Dequantized row-major `[m, k]` f32 (`q · scale`): the tests' f32 reference.
    #[cfg(test)]
    pub(crate) fn dequantize(&self) -> Vec<f32> {
        let kg = self.kg();
        (0..self.m)
            .flat_map(|j| {
                let (panel, o, scale) = (j / NR, j % NR, self.scales[j]);
                (0..self.k)
                    .map(move |p| f32::from(self.panels[panel * kg + p / KG].0[o * KG + p % KG]) * scale)
            })
            .collect()
    }

    /// `k` rounded up to a multiple of 64: the length of a row of codes.
    fn kpad(&self) -> usize {
        self.k.div_ceil(KB) * KB
    }

    /// Groups per panel (`kpad / 4`).
    fn kg(&self) -> usize {
        self.kpad() / KG
    }

    /// Groups of a panel that hold weights (`ceil(k / 4)`): what the VNNI and AVX2 loops walk.
    fn k4(&self) -> usize {
        self.k.div_ceil(KG)
    }

    /// Number of 16-output panels.
    fn n_panels(&self) -> usize {
        self.m.div_ceil(NR)
    }

    /// The groups of panel `q`.
    fn panel(&self, q: usize) -> &[Group] {
        let kg = self.kg();
        &self.panels[q * kg..(q + 1) * kg]
    }
}

/// Scale and zero point of one quantized input row: `x ≈ scale · (code − zero)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RowQuant {
    /// The step between codes, `s_i` (NaN for a row with a non-finite value).
    scale: f32,
    /// The code of 0, `z_i`, in `0..=255`.
    zero: i32,
}

/// Input rows quantized for one call: their codes, scales and zero points.
struct Quantized {
    /// Rows of `kpad` codes (whole lines), the row count padded to a multiple of [`ROW_PAD`].
    lines: Vec<Line>,
    /// One entry per input row.
    quant: Vec<RowQuant>,
    /// Codes per row: `k` rounded up to a multiple of 64.
    kpad: usize,
}

/// A view of consecutive quantized rows, as a kernel reads them.
#[derive(Clone, Copy)]
struct Rows<'a> {
    /// The codes from the first row of the view to the end of the buffer (padding included).
    codes: &'a [u8],
    /// One entry per row of the view.
    quant: &'a [RowQuant],
    /// Codes per row.
    kpad: usize,
}

impl<'a> Rows<'a> {
    /// Rows in the view.
    fn n(&self) -> usize {
        self.quant.len()
    }

    /// Rows `a..b` of the view.
    fn slice(&self, a: usize, b: usize) -> Rows<'a> {
        Rows { codes: &self.codes[a * self.kpad..], quant: &self.quant[a..b], kpad: self.kpad }
    }
}

impl Quantized {
    /// All rows.
    fn rows(&self) -> Rows<'_> {
        Rows { codes: line_bytes(&self.lines), quant: &self.quant, kpad: self.kpad }
    }
}

/// The bytes of `lines`.
fn line_bytes(lines: &[Line]) -> &[u8] {
    // SAFETY: `Line` is `repr(C)` around `[u8; 64]` and 64 bytes long (asserted above), so the
    // lines are `64 · len` initialized, contiguous bytes, borrowed for as long as `lines`.
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<u8>(), lines.len() * 64) }
}

/// The bytes of `lines`, writable.
fn line_bytes_mut(lines: &mut [Line]) -> &mut [u8] {
    // SAFETY: as in `line_bytes`; the borrow is exclusive and any byte value is a valid `Line`.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<u8>(), lines.len() * 64) }
}

/// Quantizes the `x.len() / k` rows of `x` (step 1 of the module doc) into rows of `kpad` codes.
fn quantize(isa: Isa, x: &[f32], k: usize, kpad: usize) -> Quantized {
    let n = x.len() / k;
    let lines_per_row = kpad / KB;
    let mut lines = vec![Line([0; 64]); n.div_ceil(ROW_PAD) * ROW_PAD * lines_per_row];
    let mut quant = vec![RowQuant { scale: 1.0, zero: 0 }; n];
    let per = if n.saturating_mul(k) >= PARALLEL_MIN_WORK { n.div_ceil(parallel::threads()) } else { n };
    let per = per.max(1);
    parallel::for_each_chunk_mut(&mut quant, per, |c, part| {
        scan(isa, &x[c * per * k..][..part.len() * k], k, part)
    });
    let quant_ref = &quant;
    parallel::for_each_chunk_mut(&mut lines[..n * lines_per_row], per * lines_per_row, |c, part| {
        let rows = part.len() / lines_per_row;
        let first = c * per;
        encode(isa, &x[first * k..][..rows * k], k, &quant_ref[first..first + rows], line_bytes_mut(part))
    });
    Quantized { lines, quant, kpad }
}

/// Each row's scale and zero point, with the best vector instructions `isa` has (the same
/// operations, so the same results, on every level).
fn scan(isa: Isa, x: &[f32], k: usize, quant: &mut [RowQuant]) {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(t) = isa.avx512() {
            // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
            unsafe { scan_avx512(t, x, k, quant) };
            return;
        }
        if let Some(t) = isa.avx2() {
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            unsafe { scan_avx2(t, x, k, quant) };
            return;
        }
    }
    let _ = isa;
    scan_rows(x, k, quant)
}

/// [`scan_rows`] in AVX-512 intrinsics: `vminps(v, lo)` is `v < lo ? v : lo` (NaN keeps `lo`),
/// as in [`row_quant`], so the lanes, and the results, are the same. Left to the compiler the
/// loop stayed scalar: 19 % of a 512 × 1536 GEMM.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn scan_avx512(_t: super::isa::Avx512, x: &[f32], k: usize, quant: &mut [RowQuant]) {
    use std::arch::x86_64::*;
    let inf = _mm512_set1_ps(f32::INFINITY);
    for (rq, row) in quant.iter_mut().zip(x.chunks_exact(k)) {
        let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut finite: __mmask16 = 0xFFFF;
        let mut p = 0;
        while p < k {
            let lanes = (k - p).min(16);
            let mask: __mmask16 = ((1u32 << lanes) - 1) as __mmask16;
            // SAFETY: the mask enables only lanes p + l < k, inside `row`.
            let v = unsafe { _mm512_maskz_loadu_ps(mask, row.as_ptr().add(p)) };
            // Masked-off lanes load 0, which changes neither a minimum nor a maximum started at 0.
            lo = _mm512_min_ps(v, lo);
            hi = _mm512_max_ps(v, hi);
            finite &= _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(v), inf) | !mask;
            p += 16;
        }
        let (mut l, mut h) = ([0f32; 16], [0f32; 16]);
        // SAFETY: each array holds 16 f32.
        unsafe {
            _mm512_storeu_ps(l.as_mut_ptr(), lo);
            _mm512_storeu_ps(h.as_mut_ptr(), hi);
        }
        *rq = finish_row_quant(&l, &h, finite == 0xFFFF);
    }
}

/// [`scan_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn scan_avx2(_t: Avx2, x: &[f32], k: usize, quant: &mut [RowQuant]) {
    scan_rows(x, k, quant)
}

/// The scale and zero point of each row of `x` (rows of `k`).
#[inline(always)]
fn scan_rows(x: &[f32], k: usize, quant: &mut [RowQuant]) {
    for (rq, row) in quant.iter_mut().zip(x.chunks_exact(k)) {
        *rq = row_quant(row);
    }
}

/// The scale and zero point of one row (step 1 of the module doc).
#[inline(always)]
fn row_quant(row: &[f32]) -> RowQuant {
    const L: usize = 16;
    let (mut lo, mut hi, mut finite) = ([0f32; L], [0f32; L], [true; L]);
    let chunks = row.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for (((&v, lo), hi), finite) in c.iter().zip(&mut lo).zip(&mut hi).zip(&mut finite) {
            *lo = if v < *lo { v } else { *lo };
            *hi = if v > *hi { v } else { *hi };
            *finite &= v.abs() < f32::INFINITY;
        }
    }
    for (((&v, lo), hi), finite) in tail.iter().zip(&mut lo).zip(&mut hi).zip(&mut finite) {
        *lo = if v < *lo { v } else { *lo };
        *hi = if v > *hi { v } else { *hi };
        *finite &= v.abs() < f32::INFINITY;
    }
    finish_row_quant(&lo, &hi, finite.iter().all(|&f| f))
}

/// A row's scale and zero point from per-lane minima and maxima (each started at 0) and
/// whether every value was finite.
fn finish_row_quant(lo: &[f32; 16], hi: &[f32; 16], finite: bool) -> RowQuant {
    if !finite {
        return RowQuant { scale: f32::NAN, zero: 0 };
    }
    let lo = lo.iter().fold(0f32, |a, &v| if v < a { v } else { a });
    let hi = hi.iter().fold(0f32, |a, &v| if v > a { v } else { a });
    let range = hi - lo;
    let scale = if range.is_finite() { range / 255.0 } else { hi / 255.0 - lo / 255.0 };
    // Also an all-zero row (range 0): every code 0.
    if scale < f32::MIN_POSITIVE {
        return RowQuant { scale: 1.0, zero: 0 };
    }
    let zero = (-lo * (1.0 / scale)).round_ties_even().clamp(0.0, 255.0) as i32;
    RowQuant { scale, zero }
}

/// Writes the codes of each row of `x` into `codes` (rows of `kpad`; the bytes past `k` stay 0),
/// with the best vector instructions `isa` has (the same operations on every level).
fn encode(isa: Isa, x: &[f32], k: usize, quant: &[RowQuant], codes: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(t) = isa.avx512() {
            // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
            unsafe { encode_avx512(t, x, k, quant, codes) };
            return;
        }
        if let Some(t) = isa.avx2() {
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            unsafe { encode_avx2(t, x, k, quant, codes) };
            return;
        }
    }
    let _ = isa;
    encode_rows(x, k, quant, codes)
}

/// [`encode_rows`] in AVX-512 intrinsics, 16 values a step (the tail under a mask): the same
/// multiply, the same rounding constant, the same clamp, so the same codes. Left to the
/// compiler, the saturating `as u8` kept this loop scalar and it took 13 % of a 512-row GEMM.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn encode_avx512(_t: super::isa::Avx512, x: &[f32], k: usize, quant: &[RowQuant], codes: &mut [u8]) {
    use std::arch::x86_64::*;
    let kpad = codes.len() / quant.len().max(1);
    assert!(k <= kpad && x.len() == quant.len() * k);
    let (round, lo, hi) = (_mm512_set1_ps(ROUND), _mm512_setzero_ps(), _mm512_set1_ps(255.0));
    for ((row, rq), out) in x.chunks_exact(k).zip(quant).zip(codes.chunks_exact_mut(kpad)) {
        if rq.scale.is_nan() {
            continue;
        }
        let (inv, zero) = (_mm512_set1_ps(1.0 / rq.scale), _mm512_set1_ps(rq.zero as f32));
        let mut p = 0;
        while p < k {
            let lanes = (k - p).min(16);
            let mask: __mmask16 = ((1u32 << lanes) - 1) as __mmask16;
            // SAFETY: the mask enables only lanes p + l < k, inside `row` (k values) and `out`
            // (kpad ≥ k bytes).
            unsafe {
                let v = _mm512_maskz_loadu_ps(mask, row.as_ptr().add(p));
                let r = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(v, inv), round), round);
                let c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, zero), lo), hi);
                _mm512_mask_cvtepi32_storeu_epi8(
                    out.as_mut_ptr().add(p).cast(),
                    mask,
                    _mm512_cvttps_epi32(c),
                );
            }
            p += 16;
        }
    }
}

/// [`encode_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn encode_avx2(_t: Avx2, x: &[f32], k: usize, quant: &[RowQuant], codes: &mut [u8]) {
    encode_rows(x, k, quant, codes)
}

/// The codes of each row of `x` (rows of `k`) into `codes` (rows of `codes.len() / rows`).
#[inline(always)]
fn encode_rows(x: &[f32], k: usize, quant: &[RowQuant], codes: &mut [u8]) {
    let kpad = codes.len() / quant.len().max(1);
    for ((row, rq), out) in x.chunks_exact(k).zip(quant).zip(codes.chunks_exact_mut(kpad)) {
        if rq.scale.is_nan() {
            // A non-finite row: its codes stay 0 and its outputs are NaN.
            continue;
        }
        let (inv, zero) = (1.0 / rq.scale, rq.zero as f32);
        for (c, &v) in out[..k].iter_mut().zip(row) {
            let r = (v * inv + ROUND) - ROUND;
            *c = (r + zero).clamp(0.0, 255.0) as u8;
        }
    }
}

/// The int8 kernel a level runs, with the token it needs.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// AMX-INT8 tiles ([`amx`]).
    #[cfg(target_arch = "x86_64")]
    Amx(Amx),
    /// `vpdpbusd` on zmm ([`avx512`]).
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni(Avx512Vnni),
    /// `vpdpbusd` on ymm, VEX-encoded ([`avx2`]).
    #[cfg(target_arch = "x86_64")]
    AvxVnni(AvxVnni),
    /// Widened to i16, `vpmaddwd` ([`avx2`]).
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    /// The portable loop ([`scalar`]).
    Scalar,
}

impl Path {
    /// The best path `isa` allows.
    fn of(isa: Isa) -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(t) = isa.amx() {
                return Path::Amx(t);
            }
            if let Some(t) = isa.avx512_vnni() {
                return Path::Avx512Vnni(t);
            }
            if let Some(t) = isa.avx_vnni() {
                return Path::AvxVnni(t);
            }
            if let Some(t) = isa.avx2() {
                return Path::Avx2(t);
            }
        }
        let _ = isa;
        Path::Scalar
    }

    /// Its name, as [`path_name`] gives it.
    fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Path::Amx(_) => "amx",
            #[cfg(target_arch = "x86_64")]
            Path::Avx512Vnni(_) => "avx512-vnni",
            #[cfg(target_arch = "x86_64")]
            Path::AvxVnni(_) => "avx-vnni",
            #[cfg(target_arch = "x86_64")]
            Path::Avx2(_) => "avx2",
            Path::Scalar => "scalar",
        }
    }

    /// Rows of the kernel's tallest tile: row blocks are multiples of it.
    fn mr(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Path::Amx(_) => amx::MR,
            #[cfg(target_arch = "x86_64")]
            Path::Avx512Vnni(_) => avx512::MR,
            #[cfg(target_arch = "x86_64")]
            Path::AvxVnni(_) => avx2::MR_VNNI,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2(_) => avx2::MR_AVX2,
            Path::Scalar => 4,
        }
    }
}

/// Which int8 path `isa` runs: "amx", "avx512-vnni", "avx-vnni", "avx2" or "scalar".
pub(crate) fn path_name(isa: Isa) -> &'static str {
    Path::of(isa).name()
}

/// `out[n, m] = act(x[n, k] · Wᵀ + bias)`, `n = x.len() / k`, writing every value of `out`.
/// Activations are quantized dynamically per row.
///
/// Small problems run on the calling thread; tall batches split rows across the pool, short
/// ones split the weight panels (each task writes its columns of every row), so the weights are
/// streamed once either way.
///
/// # Panics
/// If `x` is not whole rows of `k`, `out` not `n × m` values or `bias` not `m` values.
pub(crate) fn qgemm(isa: Isa, x: &[f32], w: &QuantWeight, bias: Option<&[f32]>, act: Act, out: &mut [f32]) {
    let (m, k) = (w.m, w.k);
    let n = x.len() / k;
    assert!(
        x.len() == n * k && out.len() == n * m && bias.is_none_or(|b| b.len() == m),
        "qgemm: {} inputs, {} outputs, {:?} biases for k = {k}, m = {m}",
        x.len(),
        out.len(),
        bias.map(<[f32]>::len)
    );
    if out.is_empty() {
        return;
    }
    let path = Path::of(isa);
    let quantized = quantize(isa, x, k, w.kpad());
    let rows = quantized.rows();
    gemm::split(out, (n, m, k), path.mr(), ROW_SPLIT_ROWS, |sub, panels, mut dst| {
        kernel(path, rows.slice(sub.start, sub.end), w, panels, bias, act, &mut dst)
    });
}

/// Output columns of panels `panels` for every row of `rows`, into `dst` (whose row 0 is the
/// first row of `rows`), in row blocks that stay in L2 while the panels are walked.
fn kernel(
    path: Path,
    rows: Rows<'_>,
    w: &QuantWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let mr = path.mr();
    let block = (ROW_BLOCK_BYTES / rows.kpad).max(mr) / mr * mr;
    let n = rows.n();
    for b0 in (0..n).step_by(block) {
        let sub = rows.slice(b0, (b0 + block).min(n));
        dst.row0 = b0;
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `Amx` token proves the CPU has AMX-INT8 and AVX-512 VNNI and that the
            // OS granted the tile state.
            Path::Amx(t) => unsafe { amx::rows(t, sub, w, panels.clone(), bias, act, dst) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `Avx512Vnni` token proves the CPU has AVX-512F and VNNI.
            Path::Avx512Vnni(t) => unsafe { avx512::rows(t, sub, w, panels.clone(), bias, act, dst) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `AvxVnni` token proves the CPU has AVX2, FMA and AVX-VNNI.
            Path::AvxVnni(t) => unsafe { avx2::rows_vnni(t, sub, w, panels.clone(), bias, act, dst) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            Path::Avx2(t) => unsafe { avx2::rows_avx2(t, sub, w, panels.clone(), bias, act, dst) },
            Path::Scalar => scalar(sub, w, panels.clone(), bias, act, dst),
        }
    }
}

/// Walks register tiles over `n` rows and panels `panels`: panel groups of `group` panels outer,
/// row tiles of `rows_at(rows left)` rows inner, calling `tile(row, rows, panel, panels)` for
/// each; a group's weights stay in cache while every row tile uses them.
#[inline(always)]
fn walk(
    n: usize,
    panels: Range<usize>,
    group: usize,
    rows_at: impl Fn(usize) -> usize,
    mut tile: impl FnMut(usize, usize, usize, usize),
) {
    let mut q = panels.start;
    while q < panels.end {
        let g = group.min(panels.end - q);
        let mut i = 0;
        while i < n {
            let r = rows_at(n - i);
            tile(i, r, q, g);
            i += r;
        }
        q += g;
    }
}

/// Step 4 of the module doc for one output: the value before the activation.
#[inline(always)]
fn finish(acc: i32, rq: RowQuant, colsum: i32, scale: f32, bias: Option<f32>) -> f32 {
    let c = (acc - rq.zero * colsum) as f32;
    let mult = rq.scale * scale;
    match bias {
        Some(b) => c.mul_add(mult, b),
        None => c * mult,
    }
}

/// Portable kernel over the packed layout; also the reference for the vector paths.
fn scalar(
    rows: Rows<'_>,
    w: &QuantWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (k4, kpad) = (w.k4(), rows.kpad);
    for q in panels {
        let groups = &w.panel(q)[..k4];
        let col = q * NR;
        let cols = NR.min(w.m - col);
        for (i, &rq) in rows.quant.iter().enumerate() {
            let codes = &rows.codes[i * kpad..(i + 1) * kpad];
            let mut acc = [0i32; NR];
            for (group, c) in groups.iter().zip(codes.chunks_exact(KG)) {
                for (a, wo) in acc.iter_mut().zip(group.0.chunks_exact(KG)) {
                    *a += c.iter().zip(wo).map(|(&c, &w)| i32::from(c) * i32::from(w)).sum::<i32>();
                }
            }
            let mut v = [0f32; NR];
            for (o, v) in v[..cols].iter_mut().enumerate() {
                let j = col + o;
                *v = finish(acc[o], rq, w.colsum[j], w.scales[j], bias.map(|b| b[j]));
            }
            dst.store(i, col, &v[..cols], None, act);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::linear::linear_ref;
    use proptest::prelude::*;

    /// `n` pseudo-random values in [lo, hi).
    fn seeded(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x2545_F491_4F6C_DD1D);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                lo + ((s >> 40) as f32 / (1u64 << 24) as f32) * (hi - lo)
            })
            .collect()
    }

    /// One level per distinct int8 path this CPU runs, scalar first.
    fn paths() -> Vec<Isa> {
        let mut seen = Vec::new();
        let mut isas = Vec::new();
        for isa in Isa::available() {
            if !seen.contains(&path_name(isa)) {
                seen.push(path_name(isa));
                isas.push(isa);
            }
        }
        isas
    }

    fn weight(w: &[f32], m: usize, k: usize) -> QuantWeight {
        let (q, s) = quantize_weight(w, m, k).unwrap();
        QuantWeight::pack(&q, &s, m, k).unwrap()
    }

    /// `qgemm` into a NaN-filled output (a value it misses stays NaN).
    fn run(isa: Isa, x: &[f32], w: &QuantWeight, bias: Option<&[f32]>, act: Act) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.len() / w.k() * w.m()];
        qgemm(isa, x, w, bias, act, &mut out);
        out
    }

    /// The kernel on the calling thread, all panels in one task.
    fn serial(isa: Isa, x: &[f32], w: &QuantWeight, bias: Option<&[f32]>, act: Act) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.len() / w.k() * w.m()];
        let quantized = quantize(isa, x, w.k(), w.kpad());
        kernel(
            Path::of(isa),
            quantized.rows(),
            w,
            0..w.n_panels(),
            bias,
            act,
            &mut Dst::new(&mut out, w.m()),
        );
        out
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// Every path against the scalar one: bit-identical for Identity and ReLU, within the
    /// vector approximation for GELU and Tanh; and Identity within the quantization error of the
    /// f32 reference.
    fn check_paths(x: &[f32], w: &QuantWeight, bias: Option<&[f32]>) {
        let (m, k) = (w.m(), w.k());
        let scalar_isa = Isa::available()[0];
        assert_eq!(path_name(scalar_isa), "scalar");
        let identity = run(scalar_isa, x, w, bias, Act::Identity);
        check_reference(x, w, bias, &identity);
        for isa in paths() {
            for act in [Act::Identity, Act::Relu, Act::Gelu, Act::Tanh] {
                let out = run(isa, x, w, bias, act);
                let want: Vec<f32> = identity.iter().map(|&v| act.apply(v)).collect();
                if matches!(act, Act::Identity | Act::Relu) {
                    assert!(
                        same_bits(&out, &want),
                        "{} {act:?} m={m} k={k}: differs from scalar",
                        path_name(isa)
                    );
                } else {
                    for (a, b) in out.iter().zip(&want) {
                        assert!(
                            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "{} {act:?}: {a} vs {b}",
                            path_name(isa)
                        );
                    }
                }
            }
        }
    }

    /// `out` (Identity) against the f32 product with the dequantized weights: each input value
    /// is off by at most half its row's step `s_i`, so output `j` by `Σ_p |w[j,p]| · s_i / 2`.
    fn check_reference(x: &[f32], w: &QuantWeight, bias: Option<&[f32]>, out: &[f32]) {
        let (m, k) = (w.m(), w.k());
        let wd = w.dequantize();
        let reference = linear_ref(x, &wd, bias, m, k, Act::Identity);
        for (i, xr) in x.chunks_exact(k).enumerate() {
            let rq = row_quant(xr);
            for j in 0..m {
                let wr = &wd[j * k..(j + 1) * k];
                let abs_w: f32 = wr.iter().map(|v| v.abs()).sum();
                let abs_xw: f32 = xr.iter().zip(wr).map(|(a, b)| (a * b).abs()).sum();
                let b = bias.map_or(0.0, |b| b[j]);
                let tol = abs_w * rq.scale * 0.5001 + 1e-5 * (abs_xw + b.abs()) + 1e-6;
                let (got, want) = (out[i * m + j], reference[i * m + j]);
                assert!((got - want).abs() <= tol, "row {i} out {j}: {got} vs {want} (tol {tol})");
            }
        }
    }

    #[test]
    fn paths_that_ran() {
        let names: Vec<&str> = paths().into_iter().map(path_name).collect();
        eprintln!("int8 GEMM paths this CPU runs: {names:?}");
        assert_eq!(names[0], "scalar");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_path_matches_the_scalar_one(
            n in 1usize..24,
            m in 1usize..70,
            k in 1usize..300,
            seed in 0u64..10_000,
            shift in -1.0f32..1.0,
            with_bias in proptest::bool::ANY,
        ) {
            let x = seeded(n * k, seed, shift - 1.0, shift + 1.0);
            let w = weight(&seeded(m * k, seed + 1, -1.0, 1.0), m, k);
            let b = seeded(m, seed + 2, -1.0, 1.0);
            check_paths(&x, &w, with_bias.then_some(&b[..]));
        }
    }

    #[test]
    fn matches_the_f32_reference_within_the_quantization_error() {
        // Positive weights and shifted inputs: a zero point off by one moves every output by
        // `s_i · Σ_p |w[j,p]|`, twice the bound.
        for (n, m, k, lo) in
            [(1, 1, 1, 0.0), (3, 17, 64, 0.3), (5, 40, 100, -0.7), (150, 40, 100, -0.2), (20, 100, 130, -1.0)]
        {
            let x = seeded(n * k, (n * m + k) as u64, lo, lo + 1.0);
            let w = weight(&seeded(m * k, k as u64, 0.0, 1.0), m, k);
            let b = seeded(m, 5, -1.0, 1.0);
            for isa in paths() {
                check_reference(&x, &w, Some(&b), &run(isa, &x, &w, Some(&b), Act::Identity));
                check_reference(&x, &w, None, &run(isa, &x, &w, None, Act::Identity));
            }
        }
    }

    #[test]
    fn extreme_weights_and_inputs() {
        let (m, k) = (37, 203);
        // Weights of -128 (only `pack` accepts them) and 127, scales of 1.
        for fill in [-128i8, 127] {
            let q = vec![fill; m * k];
            let w = QuantWeight::pack(&q, &vec![1.0; m], m, k).unwrap();
            // All-255 codes (every value equals the row's maximum) and mixed rows.
            let mut x = vec![3.0f32; 2 * k];
            x.extend(seeded(5 * k, 9, -2.0, 1.0));
            check_paths(&x, &w, None);
        }
        let w = weight(&seeded(m * k, 1, -1.0, 1.0), m, k);
        let b = seeded(m, 2, -1.0, 1.0);
        let mut x = seeded(6 * k, 3, -1.0, 1.0);
        // Row 1: all zeros; row 2: one huge value and the rest small; row 4: tiny values.
        x[k..2 * k].fill(0.0);
        x[2 * k + 7] = 1e30;
        x[4 * k..5 * k].iter_mut().for_each(|v| *v *= 1e-37);
        check_paths(&x, &w, Some(&b));
        for isa in paths() {
            let out = run(isa, &x, &w, Some(&b), Act::Identity);
            assert!(same_bits(&out[m..2 * m], &b), "{}: a zero row gives the bias", path_name(isa));
            assert!(same_bits(&out[4 * m..5 * m], &b), "{}: a tiny row gives the bias", path_name(isa));
            assert!(out[2 * m..3 * m].iter().all(|v| v.is_finite()));
            let none = run(isa, &x, &w, None, Act::Identity);
            assert!(none[m..2 * m].iter().all(|&v| v == 0.0));
        }
        // Rows with NaN and infinity: every output of those rows is NaN, the others unchanged.
        let mut bad = x.clone();
        bad[k + 3] = f32::NAN;
        bad[3 * k + 100] = f32::NEG_INFINITY;
        bad[5 * k] = f32::INFINITY;
        for isa in paths() {
            let (good, out) =
                (run(isa, &x, &w, Some(&b), Act::Identity), run(isa, &bad, &w, Some(&b), Act::Identity));
            for (i, (g, o)) in good.chunks_exact(m).zip(out.chunks_exact(m)).enumerate() {
                if [1, 3, 5].contains(&i) {
                    assert!(o.iter().all(|v| v.is_nan()), "{}: row {i} must be NaN", path_name(isa));
                } else {
                    assert!(same_bits(g, o), "{}: row {i} changed", path_name(isa));
                }
            }
        }
        // k = 1.
        let w = weight(&[0.5, -2.0, 0.0], 3, 1);
        check_paths(&[1.0, -3.0, 0.25, 0.0], &w, Some(&[0.1, 0.2, 0.3]));
        check_paths(&seeded(40, 4, -1.0, 1.0), &w, None);
    }

    #[test]
    fn a_parallel_split_gives_the_serial_bits() {
        // (n, m, k): rows split (n ≥ 64 per thread), panels split (few rows), row blocks of
        // ROW_BLOCK_BYTES (k = 3000: 64-row blocks), odd panel counts.
        for (n, m, k) in [(200, 50, 40), (9, 300, 70), (1, 700, 100), (140, 33, 3000)] {
            let x = seeded(n * k, n as u64, -1.0, 0.5);
            let w = weight(&seeded(m * k, 7, -1.0, 1.0), m, k);
            let b = seeded(m, 8, -1.0, 1.0);
            let scalar_isa = Isa::available()[0];
            let want = serial(scalar_isa, &x, &w, Some(&b), Act::Relu);
            for isa in paths() {
                let out = run(isa, &x, &w, Some(&b), Act::Relu);
                assert!(
                    same_bits(&out, &serial(isa, &x, &w, Some(&b), Act::Relu)),
                    "{}: split",
                    path_name(isa)
                );
                assert!(same_bits(&out, &want), "{} n={n} m={m} k={k}: differs from scalar", path_name(isa));
            }
        }
    }

    #[test]
    fn every_quantizer_build_gives_the_same_codes() {
        let k = 77;
        let mut x = seeded(9 * k, 11, -3.0, 2.0);
        x[2 * k..3 * k].fill(0.0);
        x[4 * k + 5] = f32::NAN;
        x[5 * k..6 * k].iter_mut().for_each(|v| *v = v.abs() + 0.5);
        x[6 * k + 1] = -1e38;
        x[6 * k + 2] = 3e38;
        let scalar_isa = Isa::available()[0];
        let want = quantize(scalar_isa, &x, k, 128);
        let codes = want.rows().codes;
        for (i, (xr, rq)) in x.chunks_exact(k).zip(&want.quant).enumerate() {
            let row = &codes[i * 128..(i + 1) * 128];
            assert!(row[k..].iter().all(|&c| c == 0));
            if rq.scale.is_nan() {
                assert_eq!(i, 4);
                continue;
            }
            assert!(rq.scale.is_finite() && rq.scale > 0.0 && (0..=255).contains(&rq.zero));
            // The codes are round_ties_even(x / s) + z, clamped.
            for (&v, &c) in xr.iter().zip(row) {
                let r = (v * (1.0 / rq.scale)).round_ties_even() + rq.zero as f32;
                assert_eq!(f32::from(c), r.clamp(0.0, 255.0), "row {i}: {v}");
            }
        }
        assert_eq!(want.quant[2], RowQuant { scale: 1.0, zero: 0 });
        assert!(want.quant[5].zero == 0 && codes[5 * 128..5 * 128 + k].contains(&255));
        for isa in Isa::available() {
            let got = quantize(isa, &x, k, 128);
            assert_eq!(got.rows().codes, codes, "{isa:?}");
            let bits =
                |q: &Quantized| q.quant.iter().map(|r| (r.scale.to_bits(), r.zero)).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{isa:?}");
        }
    }

    #[test]
    fn weights_quantize_pack_and_dequantize() {
        let w = [0.0, 0.0, 0.0, 1.0, -0.6, 0.25, 1e-3, 3e-3, -4e-3];
        let (q, s) = quantize_weight(&w, 3, 3).unwrap();
        assert_eq!(s[0], 1.0, "an all-zero row gets scale 1");
        assert_eq!(q, [0, 0, 0, 127, -76, 32, 32, 95, -127]);
        let packed = QuantWeight::pack(&q, &s, 3, 3).unwrap();
        assert_eq!((packed.m(), packed.k()), (3, 3));
        let d = packed.dequantize();
        for (i, (a, b)) in d.iter().zip(&w).enumerate() {
            assert!((a - b).abs() <= s[i / 3] * 0.5001, "{a} vs {b}");
        }
        assert!(format!("{packed:?}").contains("m: 3"));
        assert!(quantize_weight(&[1.0, f32::NAN], 2, 1).unwrap_err().contains("row 1"));
        assert!(quantize_weight(&[1.0; 3], 2, 2).is_err());
        assert!(QuantWeight::pack(&[-128; 4], &[1.0, 2.0], 2, 2).is_ok());
        assert!(QuantWeight::pack(&[0; 4], &[1.0], 2, 2).is_err());
        assert!(QuantWeight::pack(&[0; 4], &[1.0, 0.0], 2, 2).is_err());
        assert!(QuantWeight::pack(&[0; 4], &[1.0, f32::INFINITY], 2, 2).is_err());
        assert!(QuantWeight::pack(&[], &[], 0, 0).is_err());
        assert!(QuantWeight::pack(&vec![0; MAX_K + 1], &[1.0], 1, MAX_K + 1).is_err());
        // The largest k: the accumulators of 255 · -128 over MAX_K still fit.
        let w = QuantWeight::pack(&vec![-128; MAX_K], &[1.0], 1, MAX_K).unwrap();
        let x = vec![1.0f32; MAX_K];
        for isa in paths() {
            let out = run(isa, &x, &w, None, Act::Identity)[0];
            let want = -128.0 * MAX_K as f32;
            assert!((out - want).abs() <= 1e-6 * want.abs(), "{}: {out}", path_name(isa));
        }
    }
}
