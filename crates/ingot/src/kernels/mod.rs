//! Ingot's own hot loops, written where candle's CPU ops are slow for our shapes.
//!
//! Each kernel keeps a plain scalar reference beside it (`*_ref`) that tests compare against.

pub(crate) mod activation;
pub(crate) mod gemm;
pub(crate) mod linear;

/// Work (multiply-adds) below which a kernel stays on the calling thread: waking rayon's
/// workers costs more than it saves for batch-1 requests.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 16;
