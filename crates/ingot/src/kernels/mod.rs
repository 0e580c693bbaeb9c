//! Ingot's own hot loops, written where candle's CPU ops are slow for our shapes.
//!
//! Each kernel keeps a plain scalar reference beside it (`*_ref`) that tests compare against.

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod embedding;
pub(crate) mod gemm;
pub(crate) mod layernorm;
pub(crate) mod linear;
pub(crate) mod pool;
pub(crate) mod softmax;
pub(crate) mod vmath;

/// Work (multiply-adds) below which a kernel stays on the calling thread: handing work to
/// workers costs more than it saves for batch-1 requests.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 16;

/// The f32 values of a contiguous CPU tensor, or a candle error naming `op`.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = storage else { candle_core::bail!("{op}: input must be f32") };
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// A buffer of `len` values that `fill` writes completely, without zeroing it first.
///
/// Zeroing a fresh multi-megabyte output costs as much as a cheap kernel (glibc's `calloc`
/// memsets reused heap memory), and kernels such as [`gemm::gemm`] overwrite every value anyway.
///
/// # Safety
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn filled(len: usize, fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the first `len` values were written by `fill` (the caller's contract).
    unsafe { out.set_len(len) };
    out
}

/// Whether this CPU has AVX-512F (checked once by std, then cached).
#[inline]
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
