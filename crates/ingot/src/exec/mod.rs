//! Execution: lowering a validated [`Graph`] to what runs it, and running it.
//!
//! On the CPU a graph becomes a [`cpu::CpuPlan`]: kernels with their weights bound in place
//! (`lower`), activations and residual adds fused, values living in buffers reused from call to
//! call (`crate::arena`). On other devices, or on the CPU with [`Kernels::Candle`], it becomes
//! a [`device::DevicePlan`] of candle's own ops. The device and kernels are chosen here, once, at
//! load.

mod cpu;

pub(crate) use cpu::LinearInputs;
mod device;
mod lower;
mod sequences;

use candle_core::Device;

pub use device::{device_name, parse_device};

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::format::Bundle;
use crate::graph::Graph;
use crate::kernels::isa::Isa;

/// Rows per chunk when a row-wise graph runs chunk by chunk ([`Plan::run_rows`]): 256 rows of a
/// few hundred features keep every intermediate activation within a core's L2 cache.
pub(crate) const CHUNK_ROWS: usize = 256;

/// The f32 values of int8 rows `[rows, cols]` (the stored bytes): `q[r, c] · row_scales[r]`,
/// times `column_scales[c]` when given. Embedding tables on the CPU and int8 weights on a device
/// run dequantized.
pub(crate) fn dequantize_int8(
    codes: &[u8],
    cols: usize,
    row_scales: &[f32],
    column_scales: Option<&[f32]>,
) -> Vec<f32> {
    let rows = codes.chunks_exact(cols.max(1)).zip(row_scales);
    match column_scales {
        None => rows.flat_map(|(row, &s)| row.iter().map(move |&q| f32::from(q as i8) * s)).collect(),
        Some(columns) => rows
            .flat_map(|(row, &s)| row.iter().zip(columns).map(move |(&q, &c)| f32::from(q as i8) * s * c))
            .collect(),
    }
}

/// One graph input's data for a run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Feed<'a> {
    /// A `[rows, cols]` f32 matrix, row-major.
    F32 { data: &'a [f32], rows: usize, cols: usize },
    /// Integers (token ids, positions, sequence offsets).
    U32(&'a [u32]),
}

/// Tokens per pass of a text model through a CPU plan: a large request is split into runs of
/// consecutive sentences of about this many tokens, so the activations of one pass stay in
/// cache-sized buffers that the next pass reuses (docs/benchmarks.md measures the choice).
const CPU_PASS_TOKENS: usize = 1024;

/// Tokens per pass on a GPU, which wants large batches and has the memory for them (a pass's
/// padded attention scores are `heads × sequences × longest²` values).
const DEVICE_PASS_TOKENS: usize = 16 * 1024;

/// Which kernels run a model's graph.
///
/// ```
/// let opts = ingot::LoadOptions { kernels: ingot::Kernels::Candle, ..Default::default() };
/// assert_eq!(opts.kernels.name(), "candle");
/// assert_eq!(ingot::Kernels::default(), ingot::Kernels::Auto);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kernels {
    /// Ingot's fused kernels on the CPU, candle's ops on any other device (the default).
    #[default]
    Auto,
    /// Candle's ops on every device, the CPU included: the path a GPU runs, on any machine. On
    /// the CPU it is the reference the fused kernels are tested against, and slower than them.
    Candle,
}

impl Kernels {
    /// `auto` or `candle`.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Auto => "auto",
            Kernels::Candle => "candle",
        }
    }

    /// The kernels named `auto` or `candle`.
    ///
    /// ```
    /// assert_eq!(ingot::Kernels::parse("candle").unwrap(), ingot::Kernels::Candle);
    /// assert!(ingot::Kernels::parse("fast").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<Kernels> {
        match name {
            "auto" => Ok(Kernels::Auto),
            "candle" => Ok(Kernels::Candle),
            other => Err(Error::Usage { what: format!("kernels `{other}` (expected auto or candle)") }),
        }
    }
}

/// A graph lowered for the device it runs on.
#[derive(Debug)]
pub(crate) enum Plan {
    Cpu(cpu::CpuPlan),
    Device(device::DevicePlan),
}

impl Plan {
    /// Lowers `graph` for `device` with `kernels`, binding the tensors of `bundle`.
    pub(crate) fn lower(graph: &Graph, bundle: &Bundle, device: &Device, kernels: Kernels) -> Result<Plan> {
        if device.is_cpu() && kernels == Kernels::Auto {
            Ok(Plan::Cpu(lower::lower(graph, bundle, Isa::detect())?))
        } else {
            Ok(Plan::Device(device::DevicePlan::lower(graph, bundle, device)?))
        }
    }

    /// The kernel path of each linear layer with stored weights (CPU plans; empty on a device).
    pub(crate) fn linear_paths(&self) -> Vec<String> {
        match self {
            Plan::Cpu(p) => p.linear_paths(),
            Plan::Device(_) => Vec::new(),
        }
    }

    /// Records the input ranges of every linear layer from now on (CPU plans; `None` on a
    /// device).
    pub(crate) fn record_linear_inputs(&mut self) -> Option<std::sync::Arc<cpu::LinearInputs>> {
        match self {
            Plan::Cpu(p) => Some(p.record_linear_inputs()),
            Plan::Device(_) => None,
        }
    }

    /// Runs the graph on `feeds` (one per graph input) and returns the first output's values.
    pub(crate) fn run(&self, feeds: &[Feed<'_>], arena: &Arena) -> Result<Vec<f32>> {
        match self {
            Plan::Cpu(p) => p.run(feeds, arena),
            Plan::Device(p) => p.run(feeds),
        }
    }

    /// Runs a graph with one `[rows, width]` f32 input; returns `rows × out_width` values.
    ///
    /// A tall batch through a row-wise graph on the CPU is cut into chunks of [`CHUNK_ROWS`]
    /// rows that run the whole graph on one thread each, in parallel: the layers' intermediate
    /// activations stay in the core's cache instead of making a round trip through memory per
    /// layer, and the pool forks once per batch instead of once per layer. The results are those
    /// of one run on the whole batch, row for row; a failure is that of the earliest failing
    /// chunk.
    pub(crate) fn run_rows(&self, x: &[f32], rows: usize, width: usize, arena: &Arena) -> Result<Vec<f32>> {
        if rows == 0 {
            return Ok(Vec::new());
        }
        if !self.chunked(rows) {
            return self.run(&[Feed::F32 { data: x, rows, cols: width }], arena);
        }
        let out_width = self.output_width();
        let mut out = vec![0f32; rows * out_width];
        crate::parallel::try_for_each_chunk_mut(&mut out, CHUNK_ROWS * out_width, |c, out| {
            let n = out.len() / out_width;
            self.run_chunk(&x[c * CHUNK_ROWS * width..][..n * width], width, out, arena)
        })?;
        Ok(out)
    }

    /// Whether [`Plan::run_rows`] runs a batch of `rows` rows in chunks of [`CHUNK_ROWS`].
    pub(crate) fn chunked(&self, rows: usize) -> bool {
        match self {
            Plan::Cpu(p) => p.row_wise && rows >= 2 * CHUNK_ROWS,
            Plan::Device(_) => false,
        }
    }

    /// Runs one chunk of `[rows, width]` rows `x` on the calling thread into `out` (its rows of
    /// the first output).
    pub(crate) fn run_chunk(&self, x: &[f32], width: usize, out: &mut [f32], arena: &Arena) -> Result<()> {
        let n = x.len() / width.max(1);
        let values = self.run(&[Feed::F32 { data: x, rows: n, cols: width }], arena)?;
        if values.len() != out.len() {
            return Err(Error::ShapeMismatch {
                what: "graph output".into(),
                expected: format!("{n} × {}", self.output_width()),
                got: format!("{} values", values.len()),
            });
        }
        out.copy_from_slice(&values);
        Ok(())
    }

    /// The device's name and the kernels' (`ingot` or `candle`).
    pub(crate) fn runs_on(&self) -> (String, &'static str) {
        match self {
            Plan::Cpu(_) => ("cpu".into(), "ingot"),
            Plan::Device(p) => (p.device_name(), "candle"),
        }
    }

    /// Tokens per pass of a text model (see [`CPU_PASS_TOKENS`]).
    pub(crate) fn pass_tokens(&self) -> usize {
        match self {
            Plan::Device(p) if !p.on_cpu() => DEVICE_PASS_TOKENS,
            _ => CPU_PASS_TOKENS,
        }
    }

    /// Width of the first output.
    pub(crate) fn output_width(&self) -> usize {
        match self {
            Plan::Cpu(p) => p.output_width,
            Plan::Device(p) => p.output_width(),
        }
    }

    /// Whether tall batches run in independent row chunks (see [`Plan::run_rows`]).
    #[cfg(test)]
    pub(crate) fn row_wise(&self) -> bool {
        matches!(self, Plan::Cpu(p) if p.row_wise)
    }

    /// What each linear kernel knows about its input, in step order (tests of the fusions).
    #[cfg(test)]
    pub(crate) fn linear_inputs(&self) -> Vec<crate::kernels::gemm::InputKind> {
        match self {
            Plan::Cpu(p) => p.linear_inputs(),
            Plan::Device(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod op_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// The candle plan (for non-CPU devices), run on the CPU, against the CPU plan.
    #[test]
    fn the_device_plan_gives_the_cpu_plan_results() {
        let bundle = Bundle::from_bytes(crate::testing::logistic_bundle().unwrap()).unwrap();
        let graph = Graph::validate(&bundle.manifest().graph, bundle.tensor_entries()).unwrap();
        let cpu = Plan::lower(&graph, &bundle, &Device::Cpu, Kernels::Auto).unwrap();
        let candle = Plan::lower(&graph, &bundle, &Device::Cpu, Kernels::Candle).unwrap();
        assert!(matches!(candle, Plan::Device(_)));
        let x: Vec<f32> = (0..40).map(|i| i as f32 / 7.0 - 2.0).collect();
        let arena = Arena::default();
        let (a, b) = (cpu.run_rows(&x, 20, 2, &arena).unwrap(), candle.run_rows(&x, 20, 2, &arena).unwrap());
        assert_eq!(a.len(), 20);
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-6 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }
}
