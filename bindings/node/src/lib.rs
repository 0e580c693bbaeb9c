//! The native half of the npm package `ingot-ml` (`index.ts` is the other half).
//!
//! Each method converts its JavaScript arguments on the main thread, runs the core on the libuv
//! thread pool (an `AsyncTask`) or, for the `…Sync` variants, on the calling thread, and converts
//! the result. Errors cross through one mapping ([`error::to_js`]): a JS `Error` whose `code` is
//! `ERR_INGOT_*` and whose message is the core's.

mod error;
mod input;
mod model;
mod output;
mod schedule;
mod tasks;

use napi_derive::napi;

/// The kernels' instruction set in this process: `scalar`, `avx2`, `avx-vnni`, `avx512`,
/// `avx512-vnni` or `amx`.
#[napi]
pub fn isa_level() -> &'static str {
    ingot::isa_level().name()
}

/// Threads of Ingot's pool, the calling thread included.
#[napi]
pub fn pool_threads() -> u32 {
    u32::try_from(ingot::pool_threads()).unwrap_or(u32::MAX)
}

/// The version of the native addon (the crate's version).
#[napi]
pub fn native_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
