//! GEMM over inputs that are mostly exact zeros: the hidden layers after a ReLU.
//!
//! About half of a trained ReLU layer's outputs are exactly zero (49 % in the digits
//! MLP(256, 128) of docs/benchmarks.md), and the dense kernel multiplies every one of them. This
//! kernel lists each input row's non-zero positions and accumulates only the weight rows at
//! those positions. It needs one weight load per FMA where the dense kernel shares each load
//! among eight rows, so it only wins on inputs with at least [`MIN_ZERO_PERCENT`] zeros
//! (measured); a block with fewer runs the dense kernel.
//!
//! Rows are sorted by their number of non-zeros and taken [`R`] at a time, each list padded to
//! the longest of its group with a position where that row is zero, so the rows of a group run
//! in lock step with `R × P` independent accumulators. Positions are visited in increasing
//! order and every skipped term would have added an exact zero, so each output has the same
//! bits as the dense kernel's, provided the weights are finite (`0 × ∞` is NaN), which
//! [`super::gemm`] checks before it comes here.

use std::cell::RefCell;

use super::super::isa::Avx512;
use super::{Act, Dst, PackedWeight, NR};

/// Batches shorter than this use the dense kernel.
pub(super) const MIN_ROWS: usize = 32;

/// Rows listed and computed together for `k` inputs: at most 128, fewer for wide inputs so the
/// block's lists (about 256 KB) stay in L2 while every group of panels walks them; this also
/// bounds each thread's scratch buffer.
pub(super) fn block_rows(k: usize) -> usize {
    (256 * 1024 / (4 * (k + NR))).clamp(MIN_ROWS, 128)
}

/// Layers with fewer outputs use the dense kernel: below four panels each broadcast input
/// feeds too few FMAs (64 × 128 breaks even at 40 % zeros; 10 outputs lose even at 60 %).
pub(super) const MIN_OUTPUTS: usize = 4 * NR;

/// A block takes the sparse path when at least this share of its inputs is zero. Measured on
/// 256-row blocks, one thread: 128 × 256, 256 × 64 and 512 × 512 layers break even near 30 %
/// zeros and run 0.73–0.78× the dense time at 50 %.
const MIN_ZERO_PERCENT: usize = 40;

/// Rows per lock-step group.
const R: usize = 4;

/// Per-thread buffers, reused across calls.
#[derive(Default)]
struct Scratch {
    /// Row `i`'s non-zero positions at `i * (k + NR)..`, then padding up to its group's longest.
    idx: Vec<u32>,
    /// Non-zeros per row.
    count: Vec<u32>,
    /// A position where the row is zero (`k` if there is none).
    zero: Vec<u32>,
    /// Rows by increasing non-zero count.
    order: Vec<u32>,
    /// Counting-sort histogram.
    hist: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

impl Scratch {
    /// Sorts the `n` listed rows by non-zero count into `order` and pads every row's list to
    /// the longest of its group of [`R`] with a position where the row is zero.
    fn sort_and_pad(&mut self, n: usize, k: usize) {
        let stride = k + NR;
        self.hist.clear();
        self.hist.resize(k + 2, 0);
        for &c in &self.count[..n] {
            self.hist[c as usize + 1] += 1;
        }
        for c in 1..self.hist.len() {
            self.hist[c] += self.hist[c - 1];
        }
        self.order.clear();
        self.order.resize(n, 0);
        for (row, &c) in self.count[..n].iter().enumerate() {
            let slot = &mut self.hist[c as usize];
            self.order[*slot as usize] = row as u32;
            *slot += 1;
        }
        for group in self.order.chunks(R) {
            let longest = group.last().map_or(0, |&r| self.count[r as usize] as usize);
            for &row in group {
                let (row, c) = (row as usize, self.count[row as usize] as usize);
                // A row shorter than `longest <= k` has a zero, so `zero[row] < k` here.
                self.idx[row * stride + c..row * stride + longest].fill(self.zero[row]);
            }
        }
    }
}

/// Computes `act(x · Wᵀ + bias)` for one block of rows like the dense kernel, taking the
/// sparse path when at least [`MIN_ZERO_PERCENT`] of `x` is zero.
pub(super) fn block(
    t: Avx512,
    x: &[f32],
    w: &PackedWeight,
    bias: Option<&[f32]>,
    act: Act,
    mut dst: Dst<'_>,
) {
    let (n, k) = (x.len() / w.k, w.k);
    SCRATCH.with_borrow_mut(|s| {
        // SAFETY: the `Avx512` token proves AVX-512F and POPCNT.
        let nonzero = unsafe { avx512::list(t, x, k, s) };
        if nonzero * 100 > (100 - MIN_ZERO_PERCENT) * n * k {
            super::kernel(t.into(), x, w, 0..w.m.div_ceil(NR), bias, act, dst);
            return;
        }
        s.sort_and_pad(n, k);
        // SAFETY: see above; `s` holds `x`'s lists, sorted and padded just above.
        unsafe { avx512::rows(&avx512::Ctx { t, x, w, bias, act, s }, &mut dst) };
    })
}

mod avx512 {
    use std::arch::x86_64::*;

    use super::super::epilogue::avx512::Epilogue;
    use super::{Act, Avx512, Dst, PackedWeight, Scratch, NR, R};

    /// Lists the non-zero positions of every row of `x` (`[n, k]`) into `s` (positions, counts
    /// and one zero position per row); returns the number of non-zeros. NaN counts as non-zero.
    #[target_feature(enable = "avx512f,popcnt")]
    pub(super) fn list(_t: Avx512, x: &[f32], k: usize, s: &mut Scratch) -> usize {
        let n = x.len() / k;
        let stride = k + NR;
        s.idx.resize(n * stride, 0);
        s.count.resize(n, 0);
        s.zero.resize(n, 0);
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut total = 0;
        for (i, row) in x.chunks_exact(k).enumerate() {
            let out = &mut s.idx[i * stride..(i + 1) * stride];
            let (mut c, mut zero) = (0, k);
            for p in (0..k).step_by(NR) {
                let live: __mmask16 = if k - p >= NR { 0xffff } else { (1 << (k - p)) - 1 };
                // SAFETY: the mask enables only lanes p..min(p + 16, k) of the row.
                let v = unsafe { _mm512_maskz_loadu_ps(live, row.as_ptr().add(p)) };
                let nz = _mm512_mask_cmpneq_ps_mask(live, v, _mm512_setzero_ps());
                if zero == k && nz != live {
                    zero = p + (!nz & live).trailing_zeros() as usize;
                }
                let ids = _mm512_add_epi32(_mm512_set1_epi32(p as i32), lanes);
                // SAFETY: c <= p < k, so the 16 values written end before k + 16 = out.len().
                unsafe {
                    _mm512_storeu_si512(out.as_mut_ptr().add(c).cast(), _mm512_maskz_compress_epi32(nz, ids))
                };
                c += nz.count_ones() as usize;
            }
            s.count[i] = c as u32;
            s.zero[i] = zero as u32;
            total += c;
        }
        total
    }

    /// What every group of one block shares.
    pub(super) struct Ctx<'a> {
        pub(super) t: Avx512,
        pub(super) x: &'a [f32],
        pub(super) w: &'a PackedWeight,
        pub(super) bias: Option<&'a [f32]>,
        pub(super) act: Act,
        /// Listed, sorted and padded for `x`.
        pub(super) s: &'a Scratch,
    }

    /// All outputs of the block: panels in groups of 4 (then 2, 1), rows in sorted groups of R.
    ///
    /// # Safety
    /// `c.s` must hold `c.x`'s lists, sorted and padded (every listed or padded position below
    /// `k`).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows(c: &Ctx<'_>, dst: &mut Dst<'_>) {
        let n = c.x.len() / c.w.k;
        let n_panels = c.w.m.div_ceil(NR);
        let mut q = 0;
        while q < n_panels {
            let p = match n_panels - q {
                left if left >= 4 => 4,
                left if left >= 2 => 2,
                _ => 1,
            };
            for g in (0..n).step_by(R) {
                // A short last group repeats its last row, which is then stored twice.
                let rows: [usize; R] = std::array::from_fn(|r| c.s.order[(g + r).min(n - 1)] as usize);
                // SAFETY: the lists are sorted and padded (this function's contract).
                unsafe {
                    match p {
                        4 => group::<4>(c, q, rows, dst),
                        2 => group::<2>(c, q, rows, dst),
                        _ => group::<1>(c, q, rows, dst),
                    }
                }
            }
            q += p;
        }
    }

    /// Panels `q..q+P` of the `R` rows `rows` (sorted by count, so the last is the longest).
    ///
    /// # Safety
    /// As [`rows`]: every listed or padded position of `rows` is below `k`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn group<const P: usize>(c: &Ctx<'_>, q: usize, rows: [usize; R], dst: &mut Dst<'_>) {
        let (m, k) = (c.w.m, c.w.k);
        let stride = k + NR;
        let len = c.s.count[rows[R - 1]] as usize;
        assert!(q + P <= m.div_ceil(NR) && len <= k);
        assert!(rows.iter().all(|&r| (r + 1) * k <= c.x.len() && (r + 1) * stride <= c.s.idx.len()));
        let panels: [*const f32; P] = std::array::from_fn(|j| c.w.panel(q + j).as_ptr());
        let lists: [*const u32; R] = std::array::from_fn(|r| c.s.idx[rows[r] * stride..].as_ptr());
        let xs: [*const f32; R] = std::array::from_fn(|r| c.x[rows[r] * k..].as_ptr());
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for t in 0..len {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: t < len <= stride, inside row r's list (asserted); every listed or
                // padded position is below k (this function's contract), so the input offset
                // stays inside row r and the panel offset below k·NR.
                unsafe {
                    let pos = *lists[r].add(t) as usize;
                    let xv = _mm512_set1_ps(*xs[r].add(pos));
                    for j in 0..P {
                        acc_r[j] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(panels[j].add(pos * NR)), acc_r[j]);
                    }
                }
            }
        }
        let epilogue = Epilogue::<P>::new(c.t, q, m, c.bias, c.act);
        for (r, acc_r) in acc.into_iter().enumerate() {
            epilogue.store(acc_r, rows[r], dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{nan_filled, seeded};
    use super::*;

    /// `n × k` values in [-1, 1), about `zero_percent` % of them zero.
    fn sparse_input(n: usize, k: usize, zero_percent: u64, seed: u64) -> Vec<f32> {
        let threshold = zero_percent as f32 / 50.0 - 1.0;
        let pick = seeded(n * k, seed ^ 0x5EED);
        seeded(n * k, seed).into_iter().zip(pick).map(|(v, p)| if p < threshold { 0.0 } else { v }).collect()
    }

    /// Runs the sparse path unconditionally.
    fn sparse_only(t: Avx512, x: &[f32], w: &PackedWeight, bias: &[f32], act: Act) -> Vec<f32> {
        let n = x.len() / w.k;
        let mut out = nan_filled(n * w.m);
        let s = &mut Scratch::default();
        // SAFETY: the token proves AVX-512F and POPCNT; `list` and `sort_and_pad` prepare the
        // lists `rows` needs.
        unsafe {
            avx512::list(t, x, w.k, s);
            s.sort_and_pad(n, w.k);
            let c = avx512::Ctx { t, x, w, bias: Some(bias), act, s };
            avx512::rows(&c, &mut Dst::new(&mut out, w.m));
        }
        out
    }

    fn dense(t: Avx512, x: &[f32], w: &PackedWeight, bias: &[f32], act: Act) -> Vec<f32> {
        let mut out = nan_filled(x.len() / w.k * w.m);
        let dst = Dst::new(&mut out, w.m);
        super::super::kernel(t.into(), x, w, 0..w.m.div_ceil(NR), Some(bias), act, dst);
        out
    }

    /// The AVX-512 token, or `None` (with a note on stderr) on a CPU without it.
    fn token() -> Option<Avx512> {
        let t = crate::kernels::isa::Isa::available().last().and_then(|i| i.avx512());
        if t.is_none() {
            eprintln!("not run: this CPU has no AVX-512, the only path of the sparse kernel");
        }
        t
    }

    #[test]
    fn same_bits_as_the_dense_kernel() {
        let Some(t) = token() else { return };
        for (n, m, k) in
            [(1, 1, 1), (7, 10, 64), (32, 128, 256), (33, 70, 17), (130, 200, 100), (300, 16, 256)]
        {
            for zero_percent in [0, 30, 50, 90, 100] {
                let mut x = sparse_input(n, k, zero_percent, (n * m * k) as u64 + zero_percent);
                // A NaN input propagates as in the dense kernel.
                x[(n / 2) * k] = f32::NAN;
                let wt = sparse_input(m, k, 0, 5);
                let b = sparse_input(1, m, 0, 9);
                let w = PackedWeight::pack(&wt, m, k);
                for act in [Act::Identity, Act::Relu, Act::Tanh] {
                    let got = sparse_only(t, &x, &w, &b, act);
                    let want = dense(t, &x, &w, &b, act);
                    let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "n={n} m={m} k={k} zeros={zero_percent}% {act:?}");
                }
            }
        }
    }

    #[test]
    fn padding_keeps_groups_in_lock_step() {
        let (n, k) = (12, 40);
        let x = sparse_input(n, k, 60, 3);
        let mut s = Scratch::default();
        let Some(t) = token() else { return };
        // SAFETY: the token proves AVX-512F and POPCNT.
        let total = unsafe { avx512::list(t, &x, k, &mut s) };
        assert_eq!(total, x.iter().filter(|v| **v != 0.0).count());
        s.sort_and_pad(n, k);
        let stride = k + NR;
        for group in s.order.chunks(R) {
            let longest = s.count[*group.last().unwrap() as usize] as usize;
            for &row in group {
                let row = row as usize;
                let list = &s.idx[row * stride..row * stride + longest];
                let c = s.count[row] as usize;
                assert!(list[..c].windows(2).all(|p| p[0] < p[1]), "positions increase");
                assert!(list[..c].iter().all(|&p| x[row * k + p as usize] != 0.0));
                assert!(list[c..].iter().all(|&p| x[row * k + p as usize] == 0.0), "padding reads a zero");
            }
        }
    }
}
