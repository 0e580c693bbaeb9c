//! GEMM throughput per precision and kernel path: `y[n, m] = x[n, k] · W[m, k]ᵀ + b` at the
//! shapes of a MiniLM layer (docs/benchmarks.md, "Reduced precision"). Criterion's element rate
//! is operations per second (2·n·m·k per call): read Gelem/s as GOP/s.
// criterion_group! generates an undocumented pub fn; a bench that cannot set up should abort.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ingot::quantize::Precision;
use ingot::{IsaLevel, LinearLayer};

/// (rows n, inputs k, outputs m): a batch-1 token, a sentence batch, a long batch, and the
/// FFN's down projection.
const SHAPES: [(usize, usize, usize); 4] =
    [(1, 384, 1536), (32, 384, 1536), (512, 384, 1536), (512, 1536, 384)];

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

fn gemm(c: &mut Criterion) {
    // `INGOT_GEMM_LEVELS=scalar,avx2,avx512-vnni` chooses the paths; default: every vector
    // level the CPU has (the scalar references take seconds a call), deduplicated by the path
    // each precision actually takes.
    let levels: Vec<IsaLevel> = match std::env::var("INGOT_GEMM_LEVELS") {
        Ok(list) => list.split(',').filter_map(IsaLevel::parse).collect(),
        Err(_) => {
            IsaLevel::ALL.into_iter().filter(|&l| l > IsaLevel::Scalar && l <= ingot::isa_level()).collect()
        }
    };
    for (n, k, m) in SHAPES {
        let mut group = c.benchmark_group(format!("gemm/{n}x{k}x{m}"));
        group.throughput(Throughput::Elements((2 * n * k * m) as u64));
        let (x, w, b) = (values(n * k, 1), values(m * k, 2), values(m, 3));
        let mut out = vec![0f32; n * m];
        for precision in [None, Some(Precision::Int8), Some(Precision::F16), Some(Precision::Bf16)] {
            let mut seen = Vec::new();
            for &level in levels.iter().rev() {
                let layer = LinearLayer::new(&w, Some(&b), m, k, precision, Some(level)).expect("layer");
                let path = layer.path();
                if seen.contains(&path) {
                    continue;
                }
                seen.push(path.clone());
                group.bench_function(BenchmarkId::from_parameter(path.replace(' ', "-")), |bench| {
                    bench.iter(|| layer.forward(black_box(&x), &mut out).expect("forward"))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, gemm);
criterion_main!(benches);
