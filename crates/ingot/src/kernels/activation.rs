//! Element-wise activations shared by fused kernels and post-processing.

use serde::{Deserialize, Serialize};

/// An element-wise activation fused into a kernel's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Act {
    Identity,
    Relu,
    Tanh,
    Sigmoid,
}

impl Act {
    #[inline]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Act::Identity => v,
            Act::Relu => v.max(0.0),
            Act::Tanh => v.tanh(),
            Act::Sigmoid => sigmoid(v),
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
