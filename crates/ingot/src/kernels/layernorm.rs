//! LayerNorm over the last dimension, optionally fused with the residual add before it:
//! `y = (z - mean(z)) / sqrt(var(z) + eps) · γ + β` with `z = x (+ r)`, two-pass variance.

use super::PARALLEL_MIN_WORK;

/// Layer normalization with its parameters, over `[rows, dim]` f32 input.
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    pub(crate) fn new(gamma: Vec<f32>, beta: Vec<f32>, eps: f32) -> Self {
        LayerNorm { gamma, beta, eps }
    }

    /// Row width.
    pub(crate) fn dim(&self) -> usize {
        self.gamma.len()
    }

    /// Writes each `dim`-wide row of `x + residual`, normalized, into `out` (every value, once).
    ///
    /// # Panics
    /// If `x` is not whole rows, or `residual` or `out` is not as long as `x`.
    pub(crate) fn forward(&self, x: &[f32], residual: Option<&[f32]>, out: &mut [f32]) {
        assert!(x.len().is_multiple_of(self.gamma.len()), "layernorm: partial row");
        assert!(residual.is_none_or(|r| r.len() == x.len()), "layernorm: residual length");
        assert_eq!(out.len(), x.len(), "layernorm: output length");
        let dim = self.gamma.len();
        let row = |i: usize, o: &mut [f32]| {
            let xr = &x[i * dim..(i + 1) * dim];
            match residual {
                Some(r) => o
                    .iter_mut()
                    .zip(xr.iter().zip(&r[i * dim..(i + 1) * dim]))
                    .for_each(|(o, (a, b))| *o = a + b),
                None => o.copy_from_slice(xr),
            }
            // f64 accumulation: rows with |mean| ≫ std keep their digits.
            let mean = (sum_f64(o, f64::from) / dim as f64) as f32;
            let var = sum_f64(o, |v| f64::from(v - mean).powi(2)) / dim as f64;
            let inv = (1.0 / (var + f64::from(self.eps)).sqrt()) as f32;
            for ((v, g), b) in o.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        };
        // A row costs ~4 passes in f64: a sentence's 25 rows of 384 are worth splitting in two.
        if out.len() < PARALLEL_MIN_WORK / 8 {
            out.chunks_exact_mut(dim).enumerate().for_each(|(i, o)| row(i, o));
        } else {
            let rows = (out.len() / dim).div_ceil(crate::parallel::threads() * 4).max(8);
            crate::parallel::for_each_chunk_mut(out, rows * dim, |c, part| {
                part.chunks_exact_mut(dim).enumerate().for_each(|(i, o)| row(c * rows + i, o))
            });
        }
    }
}

/// `Σ f(v)` over `values` in f64, in 16 independent partial sums: one running sum is a chain of
/// dependent adds (4 cycles each), which made LayerNorm cost ~7 cycles per value.
#[inline(always)]
fn sum_f64(values: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; 16];
    let blocks = values.chunks_exact(16);
    let tail: f64 = blocks.remainder().iter().map(|&v| f(v)).sum();
    for block in blocks {
        acc.iter_mut().zip(block).for_each(|(a, &v)| *a += f(v));
    }
    acc.iter().sum::<f64>() + tail
}

/// Reference: the textbook formula in f64.
#[cfg(test)]
pub(crate) fn layer_norm_ref(x: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
    let d = gamma.len();
    x.chunks(d)
        .flat_map(|r| {
            let mean = r.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
            let var = r.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / d as f64;
            r.iter()
                .zip(gamma.iter().zip(beta))
                .map(move |(&v, (&g, &b))| {
                    ((f64::from(v) - mean) / (var + eps).sqrt() * f64::from(g) + f64::from(b)) as f32
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(ln: &LayerNorm, x: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.len()];
        ln.forward(x, residual, &mut out);
        out
    }

    #[test]
    fn matches_reference_including_large_offsets() {
        let d = 384;
        let gamma: Vec<f32> = (0..d).map(|i| 0.5 + (i as f32 * 0.01).sin()).collect();
        let beta: Vec<f32> = (0..d).map(|i| (i as f32 * 0.03).cos() * 0.1).collect();
        for offset in [0.0f32, 1e4] {
            let x: Vec<f32> = (0..d * 300).map(|i| offset + (i as f32 * 0.37).sin() * 3.0).collect();
            let ln = LayerNorm::new(gamma.clone(), beta.clone(), 1e-12);
            let out = forward(&ln, &x, None);
            let reference = layer_norm_ref(&x, &gamma, &beta, 1e-12);
            let max = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            // |mean| ≫ std loses f32 digits in x itself (1e4 has ulp 1e-3), not in the kernel.
            let tol = if offset == 0.0 { 1e-5 } else { 2e-3 };
            assert!(max < tol, "offset {offset}: max diff {max}");
        }
    }

    #[test]
    fn fused_residual_equals_add_then_norm() {
        let d = 8;
        let ln = LayerNorm::new(vec![1.0; d], vec![0.0; d], 1e-5);
        let x: Vec<f32> = (0..d * 3).map(|i| i as f32).collect();
        let r: Vec<f32> = (0..d * 3).map(|i| (i as f32).cos()).collect();
        let sum: Vec<f32> = x.iter().zip(&r).map(|(a, b)| a + b).collect();
        assert_eq!(forward(&ln, &x, Some(&r)), forward(&ln, &sum, None));
    }
}
