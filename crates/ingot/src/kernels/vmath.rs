//! Vector math on 16 f32 lanes (AVX-512F): `e^x` and GELU, for the kernels' epilogues.
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

#[cfg(test)]
mod tests {
    use super::super::activation::Act;
    #[cfg(target_arch = "x86_64")]
    use super::super::isa::{Avx512, Isa};
    #[cfg(target_arch = "x86_64")]
    use super::avx512;

    /// `f` applied to up to 16 values through one vector (unused lanes hold 0).
    #[cfg(target_arch = "x86_64")]
    fn lanes(
        _t: Avx512,
        values: &[f32],
        f: impl Fn(std::arch::x86_64::__m512) -> std::arch::x86_64::__m512,
    ) -> [f32; 16] {
        use std::arch::x86_64::*;
        let mut input = [0f32; 16];
        input[..values.len()].copy_from_slice(values);
        let mut out = [0f32; 16];
        // SAFETY: loads and stores cover exactly the 16 floats of `input` and `out`; the token
        // proves AVX-512F.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), f(_mm512_loadu_ps(input.as_ptr()))) };
        out
    }

    /// The AVX-512 token, or `None` (with a note on stderr) on a CPU without it.
    #[cfg(target_arch = "x86_64")]
    fn token() -> Option<Avx512> {
        let t = Isa::available().last().and_then(|i| i.avx512());
        if t.is_none() {
            eprintln!("not run: this CPU has no AVX-512, the only vector path of vmath");
        }
        t
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_gelu_matches_the_scalar_one() {
        let Some(t) = token() else { return };
        let xs: Vec<f32> =
            (-16_000..16_000).map(|i| i as f32 / 1000.0).chain([1e-30, -1e-30, 80.0, -80.0]).collect();
        for chunk in xs.chunks(16) {
            // SAFETY: the token proves AVX-512F.
            let out = lanes(t, chunk, |v| unsafe { avx512::gelu(v) });
            for (x, y) in chunk.iter().zip(out) {
                let want = Act::Gelu.apply(*x);
                assert!((y - want).abs() <= 1e-6 * (1.0 + want.abs()), "gelu({x}) = {y}, scalar {want}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_exp_matches_the_scalar_one() {
        let Some(t) = token() else { return };
        let xs: Vec<f32> = (0..=90_000).map(|i| -(i as f32) / 1000.0).collect();
        for chunk in xs.chunks(16) {
            // SAFETY: the token proves AVX-512F.
            let out = lanes(t, chunk, |v| unsafe { avx512::exp_neg(v) });
            for (x, y) in chunk.iter().zip(out) {
                let want = f64::from(*x).exp();
                // Below e^-87 the result is clamped to e^-87 (≈ 1.6e-38): a probability of 0.
                let tol = 2e-7 * want + 1.7e-38;
                assert!((f64::from(y) - want).abs() <= tol, "exp({x}) = {y}, f64 {want}");
            }
        }
    }
}
