//! Ingot's own hot loops on plain slices: GEMM, convolution, attention, LayerNorm, softmax,
//! pooling, reductions, layout copies, element-wise ops.
//!
//! Each kernel keeps a plain scalar reference beside it (`*_ref`, or the portable path) that
//! tests compare against; the vector paths are chosen at run time from [`isa::Isa`]. Kernels
//! know nothing of models, graphs or the executor (docs/architecture.md): they read slices and
//! overwrite every value of the output slice they are given (tests hand them NaN-filled ones).

pub(crate) mod activation;
mod amx;
pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod embedding;
pub(crate) mod gemm;
pub(crate) mod hgemm;
pub(crate) mod isa;
pub(crate) mod layernorm;
pub(crate) mod layout;
pub(crate) mod linear;
pub(crate) mod matmul;
pub(crate) mod pool;
pub(crate) mod pool2d;
pub(crate) mod qgemm;
pub(crate) mod reduce;
pub(crate) mod resize;
pub(crate) mod softmax;
pub(crate) mod tabular;
pub(crate) mod trees;
pub(crate) mod unary;
pub(crate) mod vmath;
pub(crate) mod window;

/// Work (multiply-adds) below which a kernel stays on the calling thread: handing work to
/// workers costs more than it saves for batch-1 requests.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 16;

/// Writes `values` into every element of `out` and returns it.
///
/// # Panics
/// If `values` yields fewer or more values than `out` holds.
pub(crate) fn write_all(out: &mut [f32], values: impl IntoIterator<Item = f32>) -> &mut [f32] {
    let mut values = values.into_iter();
    let mut written = 0;
    for (slot, v) in out.iter_mut().zip(&mut values) {
        *slot = v;
        written += 1;
    }
    assert!(written == out.len() && values.next().is_none(), "write_all: value count differs");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_fills_every_value_and_checks_the_count() {
        let mut out = [0f32; 4];
        write_all(&mut out, [1.0, 2.0, 3.0, 4.0]).iter_mut().for_each(|v| *v *= 2.0);
        assert_eq!(out, [2.0, 4.0, 6.0, 8.0]);
        for values in [vec![1.0; 3], vec![1.0; 5]] {
            let wrong = std::panic::catch_unwind(move || {
                write_all(&mut [0f32; 4], values);
            });
            assert!(wrong.is_err(), "a count other than the slice's must panic");
        }
    }
}
