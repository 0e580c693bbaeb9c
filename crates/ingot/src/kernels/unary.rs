//! Element-wise functions beyond the fusable activations ([`Act`](super::activation::Act)):
//! the opset-2 unary ops of ONNX models, with ONNX Runtime's definitions.

use super::activation::erf;
use super::write_all;

/// An element-wise function with its constant parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unary {
    /// `x` for `x ≥ 0`, else `alpha · x`.
    LeakyRelu(f32),
    /// `x` clamped to `[min, max]`; NaN stays NaN.
    Clip {
        min: f32,
        max: f32,
    },
    Exp,
    Log,
    Sqrt,
    Abs,
    Neg,
    Erf,
    Reciprocal,
    /// `max(0, min(1, alpha · x + beta))`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x · max(0, min(1, x / 6 + 1/2))`.
    HardSwish,
    /// `ln(1 + eˣ)`, without overflow for large `x`.
    Softplus,
    /// `x^e` (`x · x` for 2 and `x · x · x` for 3, as ONNX Runtime).
    Pow(f32),
}

impl Unary {
    /// The function at one value.
    #[inline]
    pub(crate) fn apply(self, x: f32) -> f32 {
        match self {
            Unary::LeakyRelu(alpha) => leaky_relu(x, alpha),
            Unary::Clip { min, max } => clip(x, min, max),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Neg => -x,
            Unary::Erf => erf(x),
            Unary::Reciprocal => 1.0 / x,
            Unary::HardSigmoid { alpha, beta } => clip(alpha * x + beta, 0.0, 1.0),
            Unary::HardSwish => x * clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0),
            Unary::Softplus => softplus(x),
            Unary::Pow(e) => pow(x, e),
        }
    }
}

#[inline(always)]
fn leaky_relu(x: f32, alpha: f32) -> f32 {
    if x >= 0.0 {
        x
    } else {
        alpha * x
    }
}

#[inline(always)]
fn clip(x: f32, min: f32, max: f32) -> f32 {
    if x < min {
        min
    } else if x > max {
        max
    } else {
        x
    }
}

#[inline(always)]
fn softplus(x: f32) -> f32 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

#[inline(always)]
fn pow(x: f32, e: f32) -> f32 {
    if e == 2.0 {
        x * x
    } else if e == 3.0 {
        x * x * x
    } else {
        x.powf(e)
    }
}

/// `out = f(x)` element by element (the function chosen once, outside the loop).
///
/// # Panics
/// If `out` is not as long as `x`.
pub(crate) fn map(f: Unary, x: &[f32], out: &mut [f32]) {
    fn each(x: &[f32], out: &mut [f32], g: impl Fn(f32) -> f32) {
        write_all(out, x.iter().map(|&v| g(v)));
    }
    match f {
        Unary::LeakyRelu(alpha) => each(x, out, |v| leaky_relu(v, alpha)),
        Unary::Clip { min, max } => each(x, out, |v| clip(v, min, max)),
        Unary::Abs => each(x, out, f32::abs),
        Unary::Neg => each(x, out, |v| -v),
        Unary::Pow(2.0) => each(x, out, |v| v * v),
        other => each(x, out, |v| other.apply(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function and its definition in f64.
    type Case = (Unary, fn(f64) -> f64);

    #[test]
    fn functions_match_their_definitions() {
        let xs = [-3.0f32, -0.5, 0.0, 0.25, 2.0, 40.0];
        let cases: [Case; 13] = [
            (Unary::LeakyRelu(0.1), |x| if x >= 0.0 { x } else { 0.1 * x }),
            (Unary::Clip { min: -1.0, max: 1.5 }, |x| x.clamp(-1.0, 1.5)),
            (Unary::Exp, f64::exp),
            (Unary::Log, f64::ln),
            (Unary::Sqrt, f64::sqrt),
            (Unary::Abs, f64::abs),
            (Unary::Neg, |x| -x),
            (Unary::Erf, |x| {
                // erf by its Taylor series (|x| ≤ 3 here) or its limit.
                if x.abs() > 6.0 {
                    return x.signum();
                }
                let (mut term, mut sum) = (x, x);
                for n in 1..200 {
                    term *= -x * x / n as f64;
                    sum += term / (2 * n + 1) as f64;
                }
                sum * 2.0 / std::f64::consts::PI.sqrt()
            }),
            (Unary::Reciprocal, |x| 1.0 / x),
            (Unary::HardSigmoid { alpha: 0.2, beta: 0.5 }, |x| (0.2 * x + 0.5).clamp(0.0, 1.0)),
            (Unary::HardSwish, |x| x * (x / 6.0 + 0.5).clamp(0.0, 1.0)),
            (Unary::Softplus, |x| x.exp().ln_1p()),
            (Unary::Pow(1.5), |x| x.powf(1.5)),
        ];
        for (f, reference) in cases {
            let mut out = vec![f32::NAN; xs.len()];
            map(f, &xs, &mut out);
            for (&x, y) in xs.iter().zip(out) {
                let want = reference(f64::from(x));
                assert_eq!(y.is_nan(), want.is_nan(), "{f:?}({x}) = {y}, want {want}");
                if want.is_finite() {
                    assert!(
                        (f64::from(y) - want).abs() <= 2e-7 * (1.0 + want.abs()),
                        "{f:?}({x}) = {y}, want {want}"
                    );
                } else if !want.is_nan() {
                    assert_eq!(f64::from(y), want, "{f:?}({x})");
                }
            }
        }
    }

    #[test]
    fn edge_values() {
        assert!(Unary::Clip { min: 0.0, max: 6.0 }.apply(f32::NAN).is_nan());
        assert_eq!(Unary::Softplus.apply(100.0), 100.0);
        assert!(Unary::Softplus.apply(-100.0) < 1e-40);
        assert_eq!(Unary::Pow(2.0).apply(-3.0), 9.0);
        assert_eq!(Unary::Pow(3.0).apply(-2.0), -8.0);
        assert!(Unary::Pow(0.5).apply(-4.0).is_nan());
        assert_eq!(Unary::Reciprocal.apply(0.0), f32::INFINITY);
        assert_eq!(Unary::LeakyRelu(0.01).apply(-0.0), -0.0);
    }
}
