//! One linear layer on its own, `y = act(x·Wᵀ + b)`, with the kernels the executor uses: for
//! code that needs a fast dense layer without a bundle, and for the GEMM benchmarks.

use crate::error::{Error, Result};
use crate::kernels::activation::Act;
use crate::kernels::hgemm::{Half, HalfWeight};
use crate::kernels::isa::{Isa, IsaLevel};
use crate::kernels::linear::LinearKernel;
use crate::kernels::qgemm::{quantize_weight, QuantWeight};
use crate::quantize::Precision;

/// A dense layer `y = x·Wᵀ + b` for a weight `W [outputs, inputs]`, in f32 or reduced
/// precision, on the kernels of a given instruction-set level.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::{LinearLayer, quantize::Precision};
/// let w = [1.0, 2.0, 3.0, -1.0, 0.5, 0.25]; // 2 outputs × 3 inputs
/// let layer = LinearLayer::new(&w, Some(&[0.5, 0.0]), 2, 3, Some(Precision::Int8), None)?;
/// let mut y = [0.0f32; 2];
/// layer.forward(&[1.0, 1.0, 1.0], &mut y)?;
/// assert!((y[0] - 6.5).abs() < 0.05 && (y[1] + 0.25).abs() < 0.05);
/// println!("{}", layer.path()); // e.g. "int8 avx512-vnni"
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LinearLayer {
    kernel: LinearKernel,
}

impl LinearLayer {
    /// A layer of `outputs × inputs` row-major weights and an optional bias; `precision`
    /// `None` keeps f32; `level` caps the kernels' instruction set (default: the process's,
    /// see [`crate::isa_level`]).
    pub fn new(
        weight: &[f32],
        bias: Option<&[f32]>,
        outputs: usize,
        inputs: usize,
        precision: Option<Precision>,
        level: Option<IsaLevel>,
    ) -> Result<LinearLayer> {
        if outputs == 0 || inputs == 0 || weight.len() != outputs * inputs {
            return Err(Error::ShapeMismatch {
                what: "linear layer weight".into(),
                expected: format!("{outputs} × {inputs} values"),
                got: format!("{} values", weight.len()),
            });
        }
        if let Some(b) = bias.filter(|b| b.len() != outputs) {
            return Err(Error::ShapeMismatch {
                what: "linear layer bias".into(),
                expected: format!("{outputs} values"),
                got: format!("{} values", b.len()),
            });
        }
        let isa = level.map_or_else(Isa::detect, Isa::at_most);
        let bias = bias.map(<[f32]>::to_vec);
        let usage = |e: String| Error::usage(format!("linear layer: {e}"));
        let kernel = match precision {
            None => LinearKernel::new(isa, weight.to_vec(), bias, outputs, inputs, Act::Identity),
            Some(Precision::Int8) => {
                let (q, scales) = quantize_weight(weight, outputs, inputs).map_err(usage)?;
                let w = QuantWeight::pack(&q, &scales, outputs, inputs).map_err(usage)?;
                LinearKernel::int8(isa, w, None, bias, Act::Identity)
            }
            Some(p) => {
                let kind = if p == Precision::F16 { Half::F16 } else { Half::Bf16 };
                let w = HalfWeight::pack(&HalfWeight::round(weight, kind), kind, outputs, inputs)
                    .map_err(usage)?;
                LinearKernel::half(isa, w, bias, Act::Identity)
            }
        };
        Ok(LinearLayer { kernel })
    }

    /// Computes `out = x·Wᵀ + b` for `x.len() / inputs` rows.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) -> Result<()> {
        let (m, k) = (self.kernel.out_features(), self.kernel.in_features());
        let n = x.len() / k;
        if x.len() != n * k || out.len() != n * m {
            return Err(Error::ShapeMismatch {
                what: "linear layer input and output".into(),
                expected: format!("rows of {k} inputs and {m} outputs"),
                got: format!("{} input and {} output values", x.len(), out.len()),
            });
        }
        crate::parallel::call(|| self.kernel.forward(x, n, out));
        Ok(())
    }

    /// The kernel path it runs, e.g. `int8 avx512-vnni` or `f32 avx2`.
    pub fn path(&self) -> String {
        self.kernel.path()
    }
}
