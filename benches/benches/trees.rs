//! Tree-ensemble predict through the whole pipeline (docs/benchmarks.md, "Tree ensembles"):
//! 500 complete trees of depth 8 over 30 features, a binary classifier, at batch 1 and 100 000
//! rows. The ensemble is synthetic (random splits); the comparison with XGBoost, LightGBM,
//! scikit-learn and ONNX Runtime on trained models is `make bench-trees`.
// criterion_group! generates an undocumented pub fn; a bench that cannot set up should abort.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ingot::format::{to_bytes, Activation, ModelCard, Producer};
use ingot::trees::{tabular_bundle, Aggregate, Comparison, Head, Split, Tree, TreeEnsemble, TreeNode};
use ingot::{Model, Value};

const FEATURES: usize = 30;

fn unit(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// `trees` complete trees of `depth` levels, breadth-first, random features and thresholds in
/// [-1, 1], missing values going left or right at random.
fn ensemble(trees: usize, depth: u32) -> TreeEnsemble {
    let mut state = 0x2545_F491_4F6C_DD1D;
    let (mut nodes, mut roots, mut leaves) = (Vec::new(), Vec::new(), Vec::new());
    let internal = (1usize << depth) - 1;
    for _ in 0..trees {
        let root = nodes.len();
        roots.push(Tree { root: root as u32, target: Some(0) });
        for i in 0..internal {
            let feature = (unit(&mut state) * FEATURES as f64) as u32;
            let threshold = unit(&mut state) * 2.0 - 1.0;
            let (l, r) = ((root + 2 * i + 1) as u32, (root + 2 * i + 2) as u32);
            let mut split = Split::numeric(feature, threshold, l, r);
            split.missing_left = unit(&mut state) < 0.5;
            nodes.push(TreeNode::Split(split));
        }
        for _ in 0..=internal {
            nodes.push(TreeNode::Leaf { value: leaves.len() as u32 });
            leaves.push(unit(&mut state) * 0.2 - 0.1);
        }
    }
    TreeEnsemble {
        n_features: FEATURES,
        n_outputs: 1,
        comparison: Comparison::LessOrEqual,
        aggregate: Aggregate::Sum,
        base_score: vec![0.0],
        trees: roots,
        nodes,
        leaf_width: 1,
        leaf_values: leaves,
        category_sets: vec![],
    }
}

fn trees(c: &mut Criterion) {
    let e = ensemble(500, 8);
    let names: Vec<String> = (0..FEATURES).map(|i| format!("f{i}")).collect();
    let head = Head::Classifier {
        classes: vec![Value::from(0i64), Value::from(1i64)],
        activation: Activation::Logistic,
    };
    let card = ModelCard { name: "forest".into(), version: "1.0.0".into(), ..ModelCard::default() };
    let producer = Producer { name: "bench".into(), version: "0".into(), framework: None };
    let (manifest, tensors) = tabular_bundle(&e, &names, head, card, producer).expect("bundle");
    let model = Model::from_bytes(to_bytes(&manifest, &tensors).expect("bytes")).expect("model");
    let mut state = 7u64;
    let mut group = c.benchmark_group("trees/500x8");
    for rows in [1usize, 100_000] {
        let x: Vec<f32> = (0..rows * FEATURES).map(|_| (unit(&mut state) * 2.2 - 1.1) as f32).collect();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(BenchmarkId::from_parameter(rows), |b| {
            b.iter(|| black_box(model.predict_dense(black_box(&x), rows, FEATURES).expect("predict")))
        });
    }
    group.finish();
}

criterion_group!(benches, trees);
criterion_main!(benches);
