//! The epilogues shared by the GEMMs that accumulate in f32 (this module's f32 kernels, dense
//! and sparse, the 16-bit-weight kernels of `kernels::hgemm` and, after dequantization, the int8
//! kernels of `kernels::qgemm`): bias, activation and the single store of each output row of a
//! register tile, vectorized for each instruction set (GELU included), so the output is written
//! once and never read back.

pub(crate) mod avx2;
pub(crate) mod avx512;
