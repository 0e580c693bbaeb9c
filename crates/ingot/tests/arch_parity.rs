//! The DistilBERT, RoBERTa and XLM-RoBERTa layouts of the Hugging Face importer against
//! sentence-transformers.
//!
//! `tests/fixtures/arch/<name>/` holds a small encoder of each layout with random weights and its
//! own trained tokenizer (WordPiece, byte-level BPE, Unigram), as a sentence-transformers
//! directory, plus the token ids and `SentenceTransformer.encode` embeddings of the parity
//! sentences (made by `scripts/make_arch_fixtures.py`). The three also cover CLS, max and mean
//! pooling, RoBERTa's position offset, truncation at `max_seq_length` and a model without
//! token-type embeddings.
//!
//! Tolerances: token ids identical; per-sentence cosine ≥ 0.99999 and
//! |Δ| ≤ 1e-4 · max(1, |expected|) per value (these embeddings are not normalized; values reach ±4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ingot::import::hf::{import_dir, ImportOptions};
use ingot::Model;

struct Case {
    model: Model,
    pooling: String,
    max_length: usize,
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/arch").join(name)
}

fn case(name: &str) -> Case {
    let (manifest, tensors) = import_dir(dir(name).join("model"), &ImportOptions::default()).unwrap();
    let model = Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).unwrap()).unwrap();
    let text = std::fs::read_to_string(dir(name).join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let field = |k: &str| v[k].clone();
    Case {
        model,
        pooling: serde_json::from_value(field("pooling")).unwrap(),
        max_length: serde_json::from_value(field("max_length")).unwrap(),
        sentences: serde_json::from_value(field("sentences")).unwrap(),
        token_ids: serde_json::from_value(field("token_ids")).unwrap(),
        embeddings: serde_json::from_value(field("embeddings")).unwrap(),
    }
}

fn check(name: &str, pooling: &str) {
    let c = case(name);
    assert_eq!(c.pooling, pooling, "{name}: the fixture's pooling");
    let description = c.model.metadata().description.clone().unwrap_or_default();
    assert!(description.contains(&format!("{pooling} pooling")), "{name}: {description}");
    let texts: Vec<&str> = c.sentences.iter().map(String::as_str).collect();
    let batch = c.model.tokenize(&texts).unwrap();
    for (i, want) in c.token_ids.iter().enumerate() {
        assert_eq!(batch.sequence(i), want.as_slice(), "{name} sentence {i}: {:?}", texts[i]);
    }
    assert!(c.token_ids.iter().any(|t| t.len() == c.max_length), "{name}: truncation not exercised");

    let got = c.model.embed(&texts).unwrap();
    for (i, want) in c.embeddings.iter().enumerate() {
        let row = got.row(i);
        let cosine = ingot::testing::cosine(row, want);
        assert!(cosine >= 0.99999, "{name} sentence {i}: cosine {cosine}");
        for (j, (a, b)) in row.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{name} sentence {i} value {j}: {a} vs {b}");
        }
    }
}

#[test]
fn distilbert_with_cls_pooling_matches_sentence_transformers() {
    check("distilbert", "cls");
}

#[test]
fn roberta_with_max_pooling_matches_sentence_transformers() {
    check("roberta", "max");
}

#[test]
fn xlm_roberta_with_mean_pooling_matches_sentence_transformers() {
    check("xlm-roberta", "mean");
}

#[test]
fn distilbert_graph_has_no_token_type_input() {
    let c = case("distilbert");
    let inputs: Vec<&str> = c.model.manifest().graph.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, ["input_ids", "position_ids", "sequence_offsets"]);
}
