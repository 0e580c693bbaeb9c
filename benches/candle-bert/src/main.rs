//! candle-transformers' `BertModel` on the text benchmark's sentences: the "candle" row of
//! `scripts/bench_text.py`.
//!
//! The pipeline is the one candle's BERT example uses for sentence embeddings: the `tokenizers`
//! crate padding each batch to its longest sentence (truncating at `--max-length`),
//! `BertModel::forward` with the attention mask, mean pooling over the mask and L2 normalization
//! as candle tensor ops. The workload and its measurement mirror the Python engines' in
//! `bench_text.py`: two warm-up batches, batch-32 throughput as the best of three passes over
//! the set, then the median latency of one call per sentence (tokenization included).
//!
//! ```text
//! candle-bert-bench MODEL_DIR SENTENCES [--max-length N] [--embeddings OUT.f32]
//! ```
//!
//! Prints one JSON object: `{"b32": sentences/s, "b1_ms": median ms, "load_ms": ms}`.
//! `--embeddings` writes the batch-32 embeddings as little-endian f32, row-major, so the caller
//! can compare them with sentence-transformers'.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Encoder {
    model: BertModel,
    tokenizer: Tokenizer,
}

impl Encoder {
    fn load(dir: &Path, max_length: usize) -> Result<Self> {
        let config: Config = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
        let weights = dir.join("model.safetensors");
        // SAFETY: the weights file is not modified while it is mapped.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &Device::Cpu)? };
        let model = BertModel::load(vb, &config)?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer.with_truncation(Some(TruncationParams { max_length, ..Default::default() }))?;
        Ok(Encoder { model, tokenizer })
    }

    /// Mean-pooled, L2-normalized embeddings of `sentences`, `[n, hidden]`.
    fn encode(&self, sentences: &[&str]) -> Result<Tensor> {
        let encodings = self.tokenizer.encode_batch(sentences.to_vec(), true)?;
        let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &Device::Cpu))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(|e| e.get_ids())?;
        let types = rows(|e| e.get_type_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let pooled = (hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?))?;
        Ok(pooled.broadcast_div(&pooled.sqr()?.sum_keepdim(1)?.sqrt()?)?)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut positional, mut max_length, mut embeddings_out) = (Vec::new(), 256, None::<PathBuf>);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--max-length" => max_length = args.next().ok_or("--max-length needs a value")?.parse()?,
            "--embeddings" => embeddings_out = Some(args.next().ok_or("--embeddings needs a path")?.into()),
            _ => positional.push(arg),
        }
    }
    let [dir, sentences] = positional.as_slice() else {
        return Err("usage: candle-bert-bench MODEL_DIR SENTENCES [--max-length N] [--embeddings OUT]".into());
    };
    let text = std::fs::read_to_string(sentences)?;
    let sentences: Vec<&str> = text.lines().collect();

    let start = Instant::now();
    let encoder = Encoder::load(Path::new(dir), max_length)?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;

    for batch in sentences.chunks(32).take(2) {
        encoder.encode(batch)?;
    }
    let mut b32: f64 = 0.0;
    let mut embeddings = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        embeddings.clear();
        for batch in sentences.chunks(32) {
            embeddings.extend(encoder.encode(batch)?.flatten_all()?.to_vec1::<f32>()?);
        }
        b32 = b32.max(sentences.len() as f64 / start.elapsed().as_secs_f64());
    }
    let mut latencies = sentences
        .iter()
        .map(|s| {
            let start = Instant::now();
            encoder.encode(&[s]).map(|_| start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<Vec<f64>>>()?;
    latencies.sort_by(f64::total_cmp);
    let mid = latencies.len() / 2;
    let b1_ms =
        if latencies.len() % 2 == 0 { (latencies[mid - 1] + latencies[mid]) / 2.0 } else { latencies[mid] };

    if let Some(path) = embeddings_out {
        std::fs::write(path, embeddings.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    }
    println!("{}", serde_json::json!({ "b32": b32, "b1_ms": b1_ms, "load_ms": load_ms }));
    Ok(())
}
