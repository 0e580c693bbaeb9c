//! Tabular predict latency/throughput and bundle load time (the workloads of docs/benchmarks.md).
// criterion_group! generates an undocumented pub fn; a bench that cannot set up should abort.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ingot::Model;
use ingot_benches::{bundle_bytes, dense_rows};

const CASES: [(&str, &str); 2] =
    [("breast_cancer_logreg", "breast-cancer scaler+logreg"), ("digits_mlp", "digits scaler+mlp(256,128)")];

fn predict(c: &mut Criterion) {
    for (case, label) in CASES {
        let model = Model::from_bytes(bundle_bytes(case).expect("fixture")).expect("model");
        let cols = model.input_width();
        let mut group = c.benchmark_group(format!("predict_dense/{label}"));
        for rows in [1usize, 32, 10_000] {
            let x = dense_rows(case, rows);
            group.throughput(Throughput::Elements(rows as u64));
            group.bench_with_input(BenchmarkId::from_parameter(rows), &x, |b, x| {
                b.iter(|| black_box(model.predict_dense(black_box(x), rows, cols).expect("predict")))
            });
        }
        group.finish();
    }
}

fn load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (case, label) in CASES {
        let path = dir.path().join(format!("{case}.ingot"));
        std::fs::write(&path, bundle_bytes(case).expect("fixture")).expect("write");
        c.bench_function(&format!("load/{label}"), |b| {
            b.iter(|| black_box(Model::load(&path).expect("load")))
        });
    }
}

criterion_group!(benches, predict, load);
criterion_main!(benches);
