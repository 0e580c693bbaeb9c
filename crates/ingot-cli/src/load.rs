//! How the commands that run a model load it: threads, device and kernels.

use ingot::{Error, LoadOptions};

/// The load flags of `ingot predict` and `ingot bench`.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Threads for the model (default: INGOT_NUM_THREADS, else every CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Device the graph runs on: `cpu`, or `cuda:N` (a build with `--features cuda`).
    /// Pre- and post-processing run on the CPU.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Kernels: `auto` (Ingot's fused kernels on the CPU, candle's ops on a GPU) or `candle`
    /// (candle's ops on the CPU too: what a GPU runs, and what it costs on this CPU).
    #[arg(long, default_value = "auto")]
    kernels: String,
}

impl LoadArgs {
    /// The load options these flags ask for.
    pub(crate) fn options(&self) -> Result<LoadOptions, Error> {
        if self.threads == Some(0) {
            return Err(Error::usage("--threads must be at least 1"));
        }
        LoadOptions { threads: self.threads, ..LoadOptions::default() }.on(&self.device, &self.kernels)
    }
}
