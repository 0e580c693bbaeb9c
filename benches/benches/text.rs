//! Sentence-encoder throughput and latency (all-MiniLM-L6-v2 from `INGOT_MINILM_DIR`, which
//! `make bench` sets from the test venv) on the committed benchmark sentences.
// criterion_group! generates an undocumented pub fn; a bench that cannot set up should abort.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ingot::import::hf::{import_dir, ImportOptions};
use ingot::Model;

fn encoder(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("INGOT_MINILM_DIR") else {
        eprintln!("INGOT_MINILM_DIR is not set; text benches skipped (run `make bench`)");
        return;
    };
    let (manifest, tensors) = import_dir(&dir, &ImportOptions::default()).expect("import");
    let model =
        Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).expect("bytes")).expect("model");
    let text = std::fs::read_to_string(ingot_benches::fixture("minilm").join("bench_sentences.txt"))
        .expect("sentences");
    let sentences: Vec<&str> = text.lines().collect();
    let mut group = c.benchmark_group("embed/all-MiniLM-L6-v2");
    group.sample_size(10);
    for batch in [1usize, 32] {
        group.throughput(Throughput::Elements(batch as u64));
        let mut start = 0;
        group.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter(|| {
                let chunk: Vec<&str> = sentences.iter().cycle().skip(start).take(batch).copied().collect();
                start = (start + batch) % sentences.len();
                black_box(model.embed(&chunk).expect("embed"))
            })
        });
    }
    group.finish();

    // Tokenization three ways on batches of 256: the tokenizers crate's `encode_batch` (its own
    // rayon pool), one `encode` per text on the calling thread, and `Model::tokenize` (one text
    // per task on Ingot's pool, what predict does).
    let tokenizer = tokenizers::Tokenizer::from_file(std::path::Path::new(&dir).join("tokenizer.json"))
        .expect("tokenizer");
    let batch: Vec<&str> = sentences.iter().cycle().take(256).copied().collect();
    let mut group = c.benchmark_group("tokenize/256");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("encode_batch", |b| {
        b.iter(|| black_box(tokenizer.encode_batch(batch.clone(), true)))
    });
    group.bench_function("serial", |b| {
        b.iter(|| batch.iter().map(|s| tokenizer.encode(*s, true).map(|e| e.len())).collect::<Vec<_>>())
    });
    group.bench_function("ingot_pool", |b| b.iter(|| black_box(model.tokenize(&batch).expect("tokenize"))));
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
