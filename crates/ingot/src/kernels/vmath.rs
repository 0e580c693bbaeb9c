//! Vector math for the kernels' epilogues: `e^x` and GELU on 16 f32 lanes (AVX-512F) and on 8
//! (AVX2 + FMA), the same polynomials in both.
//!
//! Each function agrees with its scalar counterpart ([`f32::exp`], [`Act::Gelu`]) within the
//! error stated on it; the tests check that over a dense sweep of inputs.
//!
//! [`Act::Gelu`]: super::activation::Act::Gelu

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    /// `e^a` for `a ≤ 0` (Cephes `expf` polynomial on the reduced argument, then `scalef`);
    /// relative error about 1e-7.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn exp_neg(a: __m512) -> __m512 {
        let a = _mm512_max_ps(a, _mm512_set1_ps(-87.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            a,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), a);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0));
        _mm512_scalef_ps(e, n)
    }

    /// GELU with the erf form (Abramowitz & Stegun 7.1.26 for erf), 16 lanes at a time; agrees
    /// with [`Act::Gelu`](crate::kernels::activation::Act::Gelu) within a few 1e-7.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn gelu(v: __m512) -> __m512 {
        let x = _mm512_mul_ps(v, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
        let ax = _mm512_abs_ps(x);
        let t = _mm512_div_ps(
            _mm512_set1_ps(1.0),
            _mm512_fmadd_ps(ax, _mm512_set1_ps(0.327_591_1), _mm512_set1_ps(1.0)),
        );
        let mut poly = _mm512_set1_ps(1.061_405_4);
        for c in [-1.453_152, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
            poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(c));
        }
        poly = _mm512_mul_ps(poly, t);
        let e = exp_neg(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(x, x)));
        let y = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0));
        // erf(x) has the sign of x: copy the sign bit of x onto y.
        let sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
        let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
        _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5), v), _mm512_add_ps(_mm512_set1_ps(1.0), erf))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// `e^a` for `a ≤ 0`: [`avx512::exp_neg`](super::avx512::exp_neg) on 8 lanes, with `2^n`
    /// built from its exponent bits (AVX2 has no `scalef`); relative error about 1e-7.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn exp_neg(a: __m256) -> __m256 {
        // Clamped at -87, n ≥ -126: 2^n is a normal float.
        let a = _mm256_max_ps(a, _mm256_set1_ps(-87.0));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            a,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), a);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
        let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
        _mm256_mul_ps(e, _mm256_castsi256_ps(two_n))
    }

    /// GELU with the erf form, 8 lanes at a time: [`avx512::gelu`](super::avx512::gelu)'s
    /// arithmetic; agrees with [`Act::Gelu`](crate::kernels::activation::Act::Gelu) within a
    /// few 1e-7.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn gelu(v: __m256) -> __m256 {
        let sign_bit = _mm256_set1_ps(-0.0);
        let x = _mm256_mul_ps(v, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
        let ax = _mm256_andnot_ps(sign_bit, x);
        let t = _mm256_div_ps(
            _mm256_set1_ps(1.0),
            _mm256_fmadd_ps(ax, _mm256_set1_ps(0.327_591_1), _mm256_set1_ps(1.0)),
        );
        let mut poly = _mm256_set1_ps(1.061_405_4);
        for c in [-1.453_152, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
            poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(c));
        }
        poly = _mm256_mul_ps(poly, t);
        let e = exp_neg(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(x, x)));
        let y = _mm256_fnmadd_ps(poly, e, _mm256_set1_ps(1.0));
        // erf(x) has the sign of x: copy the sign bit of x onto y.
        let erf = _mm256_or_ps(y, _mm256_and_ps(x, sign_bit));
        _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), v), _mm256_add_ps(_mm256_set1_ps(1.0), erf))
    }
}

#[cfg(test)]
mod tests {
    use super::super::activation::Act;

    /// The functions under test.
    #[derive(Clone, Copy)]
    enum Func {
        ExpNeg,
        Gelu,
    }

    /// `f` of every value of `xs` on each vector path this CPU has, named; a note on stderr
    /// names the paths that ran.
    fn on_every_path(f: Func, xs: &[f32]) -> Vec<(&'static str, Vec<f32>)> {
        let mut results = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::isa::Isa;
            use std::arch::x86_64::*;
            let best = *Isa::available().last().expect("the portable level is always available");
            if let Some(_t) = best.avx512() {
                let out = xs.chunks(16).flat_map(|chunk| {
                    let mut lanes = [0f32; 16];
                    lanes[..chunk.len()].copy_from_slice(chunk);
                    // SAFETY: the loads and stores cover the 16 floats of `lanes`; the token
                    // proves AVX-512F.
                    unsafe {
                        let v = _mm512_loadu_ps(lanes.as_ptr());
                        let y = match f {
                            Func::ExpNeg => super::avx512::exp_neg(v),
                            Func::Gelu => super::avx512::gelu(v),
                        };
                        _mm512_storeu_ps(lanes.as_mut_ptr(), y);
                    }
                    lanes.into_iter().take(chunk.len())
                });
                results.push(("avx512", out.collect()));
            }
            if let Some(_t) = best.avx2() {
                let out = xs.chunks(8).flat_map(|chunk| {
                    let mut lanes = [0f32; 8];
                    lanes[..chunk.len()].copy_from_slice(chunk);
                    // SAFETY: the loads and stores cover the 8 floats of `lanes`; the token
                    // proves AVX2 and FMA.
                    unsafe {
                        let v = _mm256_loadu_ps(lanes.as_ptr());
                        let y = match f {
                            Func::ExpNeg => super::avx2::exp_neg(v),
                            Func::Gelu => super::avx2::gelu(v),
                        };
                        _mm256_storeu_ps(lanes.as_mut_ptr(), y);
                    }
                    lanes.into_iter().take(chunk.len())
                });
                results.push(("avx2", out.collect()));
            }
        }
        let ran: Vec<&str> = results.iter().map(|(name, _)| *name).collect();
        if ran.is_empty() {
            eprintln!("not run: this CPU has neither AVX-512 nor AVX2, the vector paths of vmath");
        } else {
            eprintln!("vector paths tested: {ran:?}");
        }
        results
    }

    #[test]
    fn vector_gelu_matches_the_scalar_one() {
        let xs: Vec<f32> =
            (-16_000..16_000).map(|i| i as f32 / 1000.0).chain([1e-30, -1e-30, 80.0, -80.0]).collect();
        for (path, out) in on_every_path(Func::Gelu, &xs) {
            for (x, y) in xs.iter().zip(out) {
                let want = Act::Gelu.apply(*x);
                assert!(
                    (y - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{path}: gelu({x}) = {y}, scalar {want}"
                );
            }
        }
    }

    #[test]
    fn vector_exp_matches_the_scalar_one() {
        let xs: Vec<f32> = (0..=90_000).map(|i| -(i as f32) / 1000.0).collect();
        for (path, out) in on_every_path(Func::ExpNeg, &xs) {
            for (x, y) in xs.iter().zip(out) {
                let want = f64::from(*x).exp();
                // Below e^-87 the result is clamped to e^-87 (≈ 1.6e-38): a probability of 0.
                let tol = 2e-7 * want + 1.7e-38;
                assert!((f64::from(y) - want).abs() <= tol, "{path}: exp({x}) = {y}, f64 {want}");
            }
        }
    }
}
