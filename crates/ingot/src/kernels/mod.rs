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

/// Writes `values` into every element of `out` and returns it as initialized values.
///
/// The safe way for a kernel that fills an output with [`filled`] to then work on it in place.
///
/// # Panics
/// If `values` yields fewer or more values than `out` holds.
pub(crate) fn write_all(
    out: &mut [std::mem::MaybeUninit<f32>],
    values: impl IntoIterator<Item = f32>,
) -> &mut [f32] {
    let mut values = values.into_iter();
    let mut written = 0;
    for (slot, v) in out.iter_mut().zip(&mut values) {
        slot.write(v);
        written += 1;
    }
    assert!(written == out.len() && values.next().is_none(), "write_all: value count differs");
    // SAFETY: every element was written just above, and f32 has no invalid bit patterns.
    unsafe { &mut *(std::ptr::from_mut(out) as *mut [f32]) }
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

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::*;

    #[test]
    fn write_all_fills_every_value_and_checks_the_count() {
        // SAFETY: `write_all` writes all four values or panics.
        let out =
            unsafe { filled(4, |o| write_all(o, [1.0, 2.0, 3.0, 4.0]).iter_mut().for_each(|v| *v *= 2.0)) };
        assert_eq!(out, [2.0, 4.0, 6.0, 8.0]);
        for values in [vec![1.0; 3], vec![1.0; 5]] {
            let mut slots = [MaybeUninit::<f32>::uninit(); 4];
            let wrong = std::panic::catch_unwind(move || {
                write_all(&mut slots, values);
            });
            assert!(wrong.is_err(), "a count other than the slice's must panic");
        }
    }
}
