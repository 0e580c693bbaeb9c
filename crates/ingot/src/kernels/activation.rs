//! Element-wise activations shared by fused kernels and post-processing.

use serde::{Deserialize, Serialize};

/// An element-wise activation fused into a kernel's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Act {
    Identity,
    Relu,
    Tanh,
    Sigmoid,
    /// GELU with the exact erf form, as Hugging Face's `gelu`.
    Gelu,
}

impl Act {
    #[inline]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Act::Identity => v,
            Act::Relu => v.max(0.0),
            Act::Tanh => v.tanh(),
            Act::Sigmoid => sigmoid(v),
            Act::Gelu => 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2)),
        }
    }
}

/// Logistic sigmoid, stable for large |v|.
#[inline]
pub(crate) fn sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// Error function, Abramowitz & Stegun 7.1.26 evaluated in f64 (|error| < 1.5e-7).
#[inline]
pub(crate) fn erf(x: f32) -> f32 {
    let x = f64::from(x);
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    (if x >= 0.0 { y } else { -y }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // erf values from tables (Abramowitz & Stegun, table 7.1).
        for (x, want) in
            [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (2.0, 0.995_322_3), (-1.5, -0.966_105_1)]
        {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
        assert_eq!(erf(10.0), 1.0);
        assert!((Act::Gelu.apply(1.0) - 0.841_344_7).abs() < 1e-6);
    }
}
