//! `y = act(x·Wᵀ + b)` for a constant weight `W [m, k]`: the Linear/Gemm op of tabular models.
//!
//! candle's matmul (the `gemm` crate) pays a fixed dispatch cost that dominates batch-1 tabular
//! predicts, and adds the bias and activation in separate passes. This kernel computes dot
//! products of each input row with each weight row (both contiguous), two rows × four outputs
//! at a time, with the bias and activation fused in the epilogue. AVX2+FMA is chosen at run time;
//! [`linear_ref`] is the scalar reference. Taller batches go to the packed GEMM; layers with
//! int8 or f16/bf16 weights ([`Weights`]) always run their own GEMM (`qgemm`, `hgemm`).

use std::sync::Arc;

use super::activation::Act;
use super::gemm::{gemm, InputKind, PackedWeight};
use super::hgemm::{self, Half, HalfWeight};
use super::isa::Isa;
use super::qgemm::{self, QuantWeight};
use super::PARALLEL_MIN_WORK;

/// Batches at least this tall with at least [`GEMM_MIN_OUTPUTS`] outputs use the packed GEMM;
/// smaller ones (batch-1 requests, single-output models) use the dot-product kernel.
const GEMM_MIN_ROWS: usize = 8;
const GEMM_MIN_OUTPUTS: usize = 8;

/// How a layer's weights are held, each in the layout its kernel reads.
#[derive(Debug, Clone)]
pub(crate) enum Weights {
    /// f32: the packed panels, and row-major `[m, k]` weights for the dot-product path of short
    /// batches (absent for weights stored pre-packed).
    F32 { rows: Option<Arc<[f32]>>, packed: Arc<PackedWeight> },
    /// int8 per output channel, activations quantized per row at run time ([`qgemm`]), each
    /// input column first multiplied by `input_scale` when there is one.
    Int8 { weight: Arc<QuantWeight>, input_scale: Option<Arc<[f32]>> },
    /// f16 or bf16, f32 accumulation ([`hgemm`]).
    Half(Arc<HalfWeight>),
}

/// A linear layer with its weights, for `[n, k]` f32 input.
#[derive(Debug, Clone)]
pub(crate) struct LinearKernel {
    weights: Weights,
    isa: Isa,
    bias: Option<Arc<[f32]>>,
    m: usize,
    k: usize,
    act: Act,
    input: InputKind,
}

impl LinearKernel {
    /// `weight` is `[m, k]` row-major; `bias` has `m` entries; kernels of `isa`.
    pub(crate) fn new(
        isa: Isa,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        m: usize,
        k: usize,
        act: Act,
    ) -> Self {
        let packed = Arc::new(PackedWeight::pack(&weight, m, k));
        let weights = Weights::F32 { rows: Some(weight.into()), packed };
        LinearKernel::with_weights(isa, weights, bias, m, k, act)
    }

    /// A layer whose weights are already packed (e.g. mapped from the file); always uses GEMM.
    pub(crate) fn from_packed(isa: Isa, packed: PackedWeight, bias: Option<Vec<f32>>, act: Act) -> Self {
        let (m, k) = (packed.m(), packed.k());
        let weights = Weights::F32 { rows: None, packed: Arc::new(packed) };
        LinearKernel::with_weights(isa, weights, bias, m, k, act)
    }

    /// A layer with int8 weights; `input_scale` (`k` values) multiplies each input column.
    pub(crate) fn int8(
        isa: Isa,
        weight: QuantWeight,
        input_scale: Option<Vec<f32>>,
        bias: Option<Vec<f32>>,
        act: Act,
    ) -> Self {
        let (m, k) = (weight.m(), weight.k());
        let weights = Weights::Int8 { weight: Arc::new(weight), input_scale: input_scale.map(Into::into) };
        LinearKernel::with_weights(isa, weights, bias, m, k, act)
    }

    /// A layer with f16 or bf16 weights.
    pub(crate) fn half(isa: Isa, weight: HalfWeight, bias: Option<Vec<f32>>, act: Act) -> Self {
        let (m, k) = (weight.m(), weight.k());
        LinearKernel::with_weights(isa, Weights::Half(Arc::new(weight)), bias, m, k, act)
    }

    fn with_weights(
        isa: Isa,
        weights: Weights,
        bias: Option<Vec<f32>>,
        m: usize,
        k: usize,
        act: Act,
    ) -> Self {
        LinearKernel { weights, isa, bias: bias.map(Into::into), m, k, act, input: InputKind::Dense }
    }

    /// The kernel path this layer runs, e.g. `avx512-vnni` for int8 weights on a Zen 4.
    pub(crate) fn path(&self) -> String {
        match &self.weights {
            Weights::F32 { .. } => {
                let path = match (self.isa.avx512(), self.isa.avx2()) {
                    (Some(_), _) => "avx512",
                    (None, Some(_)) => "avx2",
                    (None, None) => "scalar",
                };
                format!("f32 {path}")
            }
            Weights::Int8 { .. } => format!("int8 {}", qgemm::path_name(self.isa)),
            Weights::Half(w) => {
                let kind = match w.kind() {
                    Half::F16 => "f16",
                    Half::Bf16 => "bf16",
                };
                format!("{kind} {}", hgemm::path_name(self.isa, w.kind()))
            }
        }
    }

    /// Output features.
    pub(crate) fn out_features(&self) -> usize {
        self.m
    }

    /// Input features.
    pub(crate) fn in_features(&self) -> usize {
        self.k
    }

    pub(crate) fn act(&self) -> Act {
        self.act
    }

    pub(crate) fn with_act(&self, act: Act) -> Self {
        LinearKernel { act, ..self.clone() }
    }

    /// What the layer knows about its input.
    #[cfg(test)]
    pub(crate) fn input(&self) -> InputKind {
        self.input
    }

    /// The same layer, told that its input is a ReLU's output (see [`InputKind::ReluOutput`]).
    pub(crate) fn with_relu_input(&self) -> Self {
        LinearKernel { input: InputKind::ReluOutput, ..self.clone() }
    }

    /// Writes the `n × m` output for `n` input rows into `out` (every value).
    ///
    /// # Panics
    /// If `x` is not `n × k` values or `out` not `n × m`.
    pub(crate) fn forward(&self, x: &[f32], n: usize, out: &mut [f32]) {
        let (m, k) = (self.m, self.k);
        assert!(x.len() == n * k && out.len() == n * m, "linear: {n} rows of {k} into {m} outputs");
        let (rows, packed) = match &self.weights {
            Weights::F32 { rows, packed } => (rows, packed),
            Weights::Int8 { weight, input_scale: None } => {
                return qgemm::qgemm(self.isa, x, weight, self.bias.as_deref(), self.act, out)
            }
            Weights::Int8 { weight, input_scale: Some(s) } => {
                let scaled: Vec<f32> =
                    x.chunks_exact(k).flat_map(|row| row.iter().zip(s.iter()).map(|(v, s)| v * s)).collect();
                return qgemm::qgemm(self.isa, &scaled, weight, self.bias.as_deref(), self.act, out);
            }
            Weights::Half(w) => return hgemm::hgemm(self.isa, x, w, self.bias.as_deref(), self.act, out),
        };
        let Some(weight) = rows.as_deref().filter(|_| n < GEMM_MIN_ROWS || m < GEMM_MIN_OUTPUTS) else {
            gemm(self.isa, x, packed, self.bias.as_deref(), self.act, self.input, out);
            return;
        };
        let work = n.saturating_mul(m).saturating_mul(k);
        if work < PARALLEL_MIN_WORK || n < 4 {
            self.rows(weight, x, out);
            return;
        }
        let chunk_rows = (n / (crate::parallel::threads() * 4)).max(2);
        crate::parallel::for_each_chunk_mut(out, chunk_rows * m, |c, oc| {
            let xc = &x[c * chunk_rows * k..(c * chunk_rows + oc.len() / m) * k];
            self.rows(weight, xc, oc)
        });
    }

    fn rows(&self, weight: &[f32], x: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = self.isa.avx2() {
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            unsafe { avx2::rows(t, x, weight, self.m, self.k, out) };
            self.epilogue(out);
            return;
        }
        rows_portable(x, weight, self.m, self.k, out);
        self.epilogue(out);
    }

    fn epilogue(&self, out: &mut [f32]) {
        let act = self.act;
        match &self.bias {
            Some(b) => {
                for row in out.chunks_exact_mut(self.m) {
                    for (o, &bj) in row.iter_mut().zip(b.iter()) {
                        *o = act.apply(*o + bj);
                    }
                }
            }
            None if act != Act::Identity => out.iter_mut().for_each(|o| *o = act.apply(*o)),
            None => {}
        }
    }
}

/// Portable kernel: plain dot products with eight partial sums (vectorizes on any target).
fn rows_portable(x: &[f32], w: &[f32], m: usize, k: usize, out: &mut [f32]) {
    for (xr, or) in x.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
        for (o, wr) in or.iter_mut().zip(w.chunks_exact(k)) {
            let mut acc = [0f32; 8];
            let (xc, xt) = xr.split_at(k - k % 8);
            let (wc, wt) = wr.split_at(k - k % 8);
            for (a, b) in xc.chunks_exact(8).zip(wc.chunks_exact(8)) {
                for l in 0..8 {
                    acc[l] = a[l].mul_add(b[l], acc[l]);
                }
            }
            let mut s: f32 = acc.iter().sum();
            for (a, b) in xt.iter().zip(wt) {
                s = a.mul_add(*b, s);
            }
            *o = s;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::isa::Avx2;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    /// Dot products of every row of `x` (`[n, k]`) with every row of `w` (`[m, k]`) into `out`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn rows(_t: Avx2, x: &[f32], w: &[f32], m: usize, k: usize, out: &mut [f32]) {
        assert!(k > 0 && m > 0 && x.len().is_multiple_of(k) && w.len() == m * k);
        let n = x.len() / k;
        assert!(out.len() == n * m);
        let k8 = k - k % 8;
        let (xp, wp, op) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
        // SAFETY: every offset below stays in bounds by the asserts above: rows i, i + 1 < n of
        // `x` and rows j + c < m of `w` are read at columns p < k (p + 8 <= k8 for the vector
        // loads), and outputs (i, j + c) and (i + 1, j + c) with j + c < m are written.
        unsafe {
            let mut i = 0;
            while i < n {
                let two = i + 1 < n;
                let x0 = xp.add(i * k);
                let x1 = if two { xp.add((i + 1) * k) } else { x0 };
                let mut j = 0;
                while j < m {
                    let cols = (m - j).min(4);
                    let wr = [0, 1, 2, 3].map(|c| wp.add((j + c.min(cols - 1)) * k));
                    let mut a0 = [_mm256_setzero_ps(); 4];
                    let mut a1 = [_mm256_setzero_ps(); 4];
                    let mut p = 0;
                    while p < k8 {
                        let v0 = _mm256_loadu_ps(x0.add(p));
                        let v1 = _mm256_loadu_ps(x1.add(p));
                        for c in 0..4 {
                            let wv = _mm256_loadu_ps(wr[c].add(p));
                            a0[c] = _mm256_fmadd_ps(v0, wv, a0[c]);
                            a1[c] = _mm256_fmadd_ps(v1, wv, a1[c]);
                        }
                        p += 8;
                    }
                    for c in 0..cols {
                        let mut s0 = hsum(a0[c]);
                        let mut s1 = hsum(a1[c]);
                        for q in k8..k {
                            let wq = *wr[c].add(q);
                            s0 = (*x0.add(q)).mul_add(wq, s0);
                            s1 = (*x1.add(q)).mul_add(wq, s1);
                        }
                        *op.add(i * m + j + c) = s0;
                        if two {
                            *op.add((i + 1) * m + j + c) = s1;
                        }
                    }
                    j += cols;
                }
                i += 2;
            }
        }
    }
}

/// Scalar reference: `act(x·Wᵀ + b)` with straightforward loops.
#[cfg(test)]
pub(crate) fn linear_ref(x: &[f32], w: &[f32], b: Option<&[f32]>, m: usize, k: usize, act: Act) -> Vec<f32> {
    let n = x.len() / k;
    let mut out = vec![0f32; n * m];
    for i in 0..n {
        for j in 0..m {
            let mut s = 0f32;
            for p in 0..k {
                s += x[i * k + p] * w[j * k + p];
            }
            out[i * m + j] = act.apply(s + b.map_or(0.0, |b| b[j]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seeded(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn forward(kernel: &LinearKernel, x: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; n * kernel.out_features()];
        kernel.forward(x, n, &mut out);
        out
    }

    fn check(n: usize, m: usize, k: usize, act: Act, seed: u64) {
        let x = seeded(n * k, seed);
        let w = seeded(m * k, seed + 1);
        let b = seeded(m, seed + 2);
        let reference = linear_ref(&x, &w, Some(&b), m, k, act);
        // Every kernel path this CPU has: the dot products (AVX2 or portable) for short
        // batches, the packed GEMM of each level for taller ones.
        for isa in Isa::available() {
            let kernel = LinearKernel::new(isa, w.clone(), Some(b.clone()), m, k, act);
            let out = forward(&kernel, &x, n);
            for (i, (a, r)) in out.iter().zip(&reference).enumerate() {
                // Both sum k products of values in [-1, 1] in f32 in different orders.
                let tol = 1e-5 * (k as f32).sqrt() * (1.0 + r.abs());
                assert!((a - r).abs() <= tol, "{isa:?} n={n} m={m} k={k} at {i}: {a} vs {r}");
            }
        }
    }

    #[test]
    fn matches_reference_on_tabular_shapes() {
        for (n, m, k) in [(1, 1, 30), (1, 10, 64), (3, 256, 64), (7, 128, 256), (64, 3, 13), (2000, 10, 128)]
        {
            for act in [Act::Identity, Act::Relu, Act::Tanh, Act::Sigmoid] {
                check(n, m, k, act, (n * 31 + m * 7 + k) as u64);
            }
        }
    }

    #[test]
    fn large_magnitudes_stay_finite() {
        let k = 16;
        let x = vec![1e18f32; k];
        let w = vec![1e18f32; k];
        for isa in Isa::available() {
            let kernel = LinearKernel::new(isa, w.clone(), None, 1, k, Act::Sigmoid);
            assert_eq!(forward(&kernel, &x, 1), [1.0]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_shape_matches_reference(n in 1usize..40, m in 1usize..20, k in 1usize..70, seed in 0u64..1000) {
            check(n, m, k, Act::Identity, seed);
        }
    }
}
