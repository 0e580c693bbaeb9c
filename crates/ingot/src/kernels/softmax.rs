//! Row-wise softmax: `p[j] = e^(s[j] - max) / Σₖ e^(s[k] - max)`.
//!
//! The class probabilities of every multi-class classifier ([`softmax_rows`]) and the attention
//! probabilities of one query ([`softmax_scaled_in_place`]). The AVX-512 and AVX2 paths take 16
//! or 8 values at a time through the vector `e^x` of [`super::vmath`] (relative error ~1e-7,
//! well inside the 1e-5 parity budget); a row holding NaN or an infinity takes the scalar path,
//! which propagates them as the reference does. [`softmax_row_ref`] computes in f64 and is the
//! path elsewhere and the tests' reference.

use super::isa::Isa;

/// Writes the softmax of each `width`-value row of `scores` into the same row of `out`.
pub(crate) fn softmax_rows(isa: Isa, scores: &[f32], width: usize, out: &mut [f32]) {
    assert!(width > 0 && scores.len() == out.len() && scores.len().is_multiple_of(width));
    let mut exps = vec![0f64; width];
    for (s, o) in scores.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = isa.avx512() {
            // SAFETY: the `Avx512` token proves AVX-512F; `s` and `o` hold `width` values.
            if unsafe { avx512::row(t, s.as_ptr(), width, 1.0, o.as_mut_ptr()) } {
                continue;
            }
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = isa.avx2() {
            // SAFETY: the `Avx2` token proves AVX2 and FMA; `s` and `o` hold `width` values.
            if unsafe { avx2::row(t, s.as_ptr(), width, 1.0, o.as_mut_ptr()) } {
                continue;
            }
        }
        softmax_row_ref(s, &mut exps, o);
    }
}

/// Softmax of `row · scale`, in place, in f32: the attention probabilities of one query.
pub(crate) fn softmax_scaled_in_place(isa: Isa, row: &mut [f32], scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = isa.avx512() {
        let p = row.as_mut_ptr();
        // SAFETY: the `Avx512` token proves AVX-512F; `row` holds `row.len()` values.
        if unsafe { avx512::row(t, p, row.len(), scale, p) } {
            return;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = isa.avx2() {
        let p = row.as_mut_ptr();
        // SAFETY: the `Avx2` token proves AVX2 and FMA; `row` holds `row.len()` values.
        if unsafe { avx2::row(t, p, row.len(), scale, p) } {
            return;
        }
    }
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale));
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = (*v * scale - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

/// Softmax of one row in f64 (`exps` is scratch of the row's width), stored as f32.
pub(crate) fn softmax_row_ref(scores: &[f32], exps: &mut [f64], out: &mut [f32]) {
    let max = scores.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let mut sum = 0.0;
    for (e, &v) in exps.iter_mut().zip(scores) {
        *e = (f64::from(v) - max).exp();
        sum += *e;
    }
    for (o, e) in out.iter_mut().zip(exps.iter()) {
        *o = (e / sum) as f32;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::isa::Avx512;
    use super::super::vmath::avx512::exp_neg;

    /// Lanes of the 16-wide block starting at column `j` of a `width`-column row.
    fn mask(width: usize, j: usize) -> __mmask16 {
        match width - j {
            rest if rest >= 16 => 0xffff,
            rest => (1u16 << rest) - 1,
        }
    }

    /// Softmax of the `width` values at `src` times `scale`, written to `dst` (which may be
    /// `src`). Returns `false`, having written nothing, if a scaled value is NaN or infinite.
    ///
    /// # Safety
    /// `src` must be valid for reading and `dst` for writing `width` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row(_t: Avx512, src: *const f32, width: usize, scale: f32, dst: *mut f32) -> bool {
        let scale = _mm512_set1_ps(scale);
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut bad: __mmask16 = 0;
        for j in (0..width).step_by(16) {
            let m = mask(width, j);
            // SAFETY: (this and every masked load and store below) the mask enables only the
            // lanes of values j..min(j + 16, width), which the caller guarantees are valid.
            let loaded = unsafe { _mm512_maskz_loadu_ps(m, src.add(j)) };
            let v = _mm512_mul_ps(loaded, scale);
            // v - v is NaN exactly where v is NaN or infinite.
            let d = _mm512_sub_ps(v, v);
            bad |= _mm512_mask_cmp_ps_mask::<_CMP_UNORD_Q>(m, d, d);
            max = _mm512_mask_max_ps(max, m, max, v);
        }
        if bad != 0 {
            return false;
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
        let mut sum = _mm512_setzero_ps();
        for j in (0..width).step_by(16) {
            let m = mask(width, j);
            // SAFETY: see the first loop.
            let loaded = unsafe { _mm512_maskz_loadu_ps(m, src.add(j)) };
            let v = _mm512_mul_ps(loaded, scale);
            let e = _mm512_maskz_mov_ps(m, exp_neg(_mm512_sub_ps(v, max)));
            sum = _mm512_add_ps(sum, e);
            // SAFETY: see the first loop.
            unsafe { _mm512_mask_storeu_ps(dst.add(j), m, e) };
        }
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        for j in (0..width).step_by(16) {
            let m = mask(width, j);
            // SAFETY: see the first loop.
            unsafe {
                _mm512_mask_storeu_ps(dst.add(j), m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dst.add(j)), inv))
            };
        }
        true
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::isa::Avx2;
    use super::super::vmath::avx2::exp_neg;

    /// Lanes of the 8-wide block starting at column `j` of a `width`-column row, as a mask of
    /// all-ones lanes.
    #[target_feature(enable = "avx2")]
    fn mask(width: usize, j: usize) -> __m256i {
        let lanes = (width - j).min(8) as i32;
        _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    /// The largest of the 8 lanes.
    #[target_feature(enable = "avx2")]
    fn reduce_max(v: __m256) -> f32 {
        let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
    }

    /// The sum of the 8 lanes.
    #[target_feature(enable = "avx2")]
    fn reduce_add(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// The AVX-512 `row` on 8 lanes: softmax of the `width` values at `src` times `scale`,
    /// written to `dst` (which may be `src`). Returns `false`, having written nothing, if a
    /// scaled value is NaN or infinite.
    ///
    /// # Safety
    /// `src` must be valid for reading and `dst` for writing `width` values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row(_t: Avx2, src: *const f32, width: usize, scale: f32, dst: *mut f32) -> bool {
        let scale = _mm256_set1_ps(scale);
        let mut max = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut bad = _mm256_setzero_ps();
        for j in (0..width).step_by(8) {
            let m = mask(width, j);
            // SAFETY: (this and every masked load and store below) the mask enables only the
            // lanes of values j..min(j + 8, width), which the caller guarantees are valid.
            let v = _mm256_mul_ps(unsafe { _mm256_maskload_ps(src.add(j), m) }, scale);
            // v - v is NaN exactly where v is NaN or infinite (disabled lanes load 0).
            let d = _mm256_sub_ps(v, v);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps::<_CMP_UNORD_Q>(d, d));
            max = _mm256_blendv_ps(max, _mm256_max_ps(max, v), _mm256_castsi256_ps(m));
        }
        if _mm256_movemask_ps(bad) != 0 {
            return false;
        }
        let max = _mm256_set1_ps(reduce_max(max));
        let mut sum = _mm256_setzero_ps();
        for j in (0..width).step_by(8) {
            let m = mask(width, j);
            // SAFETY: see the first loop.
            let v = _mm256_mul_ps(unsafe { _mm256_maskload_ps(src.add(j), m) }, scale);
            let e = _mm256_and_ps(exp_neg(_mm256_sub_ps(v, max)), _mm256_castsi256_ps(m));
            sum = _mm256_add_ps(sum, e);
            // SAFETY: see the first loop.
            unsafe { _mm256_maskstore_ps(dst.add(j), m, e) };
        }
        let inv = _mm256_set1_ps(1.0 / reduce_add(sum));
        for j in (0..width).step_by(8) {
            let m = mask(width, j);
            // SAFETY: see the first loop.
            unsafe {
                _mm256_maskstore_ps(dst.add(j), m, _mm256_mul_ps(_mm256_maskload_ps(dst.add(j), m), inv))
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_f64_reference() {
        for width in [2, 3, 10, 16, 17, 40] {
            let rows = 50;
            let scores: Vec<f32> =
                (0..rows * width).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 * 60.0 - 30.0).collect();
            for isa in Isa::available() {
                let mut got = vec![0f32; scores.len()];
                softmax_rows(isa, &scores, width, &mut got);
                let mut exps = vec![0f64; width];
                for (r, s) in scores.chunks_exact(width).enumerate() {
                    let mut want = vec![0f32; width];
                    softmax_row_ref(s, &mut exps, &mut want);
                    let row = &got[r * width..(r + 1) * width];
                    for (j, (g, w)) in row.iter().zip(&want).enumerate() {
                        // Parity with scikit-learn allows 1e-5 · p + 1e-6; this kernel uses a tenth.
                        assert!((g - w).abs() <= 1e-6 * w + 1e-7, "width {width} row {r} [{j}]: {g} vs {w}");
                    }
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn scaled_in_place_matches_the_reference() {
        for len in [1, 5, 16, 25, 33, 200] {
            let row: Vec<f32> = (0..len).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
            let scale = 0.177f32;
            let scaled: Vec<f32> = row.iter().map(|v| v * scale).collect();
            let (mut want, mut exps) = (vec![0f32; len], vec![0f64; len]);
            softmax_row_ref(&scaled, &mut exps, &mut want);
            for isa in Isa::available() {
                let mut got = row.clone();
                softmax_scaled_in_place(isa, &mut got, scale);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-6 * w + 1e-7, "{isa:?} len {len}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn huge_and_equal_scores_stay_finite() {
        let scores = [1e30f32, -1e30, 0.0, 88.0, 1e30, 3.0, 5.0, 5.0, 5.0];
        let mut out = [0f32; 9];
        softmax_rows(Isa::detect(), &scores, 3, &mut out);
        // The vector e^x stops at e^-87 ≈ 1.6e-38: a probability that is 0 to f32 precision.
        assert!(out[0] == 1.0 && out[1] < 1e-37 && out[2] < 1e-37, "{out:?}");
        assert!(out[4] == 1.0 && out[3] < 1e-37 && out[5] < 1e-37, "{out:?}");
        assert!(out[6..].iter().all(|&p| (p - 1.0 / 3.0).abs() < 1e-7), "{out:?}");
    }

    #[test]
    fn rows_far_below_zero_still_sum_to_one() {
        // A partial vector block must not count its unused lanes (zeros) in the row's maximum:
        // e^(-200 - 0) is 0 in f32, and the row would divide 0 by 0.
        for width in [1, 3, 9, 17] {
            let scores: Vec<f32> = (0..width).map(|j| -200.0 - j as f32).collect();
            let (mut want, mut exps) = (vec![0f32; width], vec![0f64; width]);
            softmax_row_ref(&scores, &mut exps, &mut want);
            for isa in Isa::available() {
                let mut got = vec![0f32; width];
                softmax_rows(isa, &scores, width, &mut got);
                assert!(
                    got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-6 * w + 1e-7),
                    "{isa:?}: {got:?}"
                );
                let mut scaled = scores.clone();
                softmax_scaled_in_place(isa, &mut scaled, 1.0);
                assert!((scaled.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{isa:?}: {scaled:?}");
            }
        }
    }

    #[test]
    fn nan_and_infinity_propagate_as_in_the_reference() {
        let scores = [1.0f32, f32::NAN, 2.0, f32::INFINITY, 0.0, 1.0, 3.0, 1.0, 2.0];
        let (mut got, mut want, mut exps) = ([0f32; 9], [0f32; 9], [0f64; 3]);
        softmax_rows(Isa::detect(), &scores, 3, &mut got);
        for (s, w) in scores.chunks_exact(3).zip(want.chunks_exact_mut(3)) {
            softmax_row_ref(s, &mut exps, w);
        }
        assert!(got[..6]
            .iter()
            .zip(&want[..6])
            .all(|(g, w)| g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan()));
        assert!(got[..3].iter().all(|v| v.is_nan()), "{got:?}");
        let mut row = [f32::INFINITY, 1.0, 0.0];
        softmax_scaled_in_place(Isa::detect(), &mut row, 0.5);
        assert!(row[0].is_nan(), "{row:?}");
    }
}
