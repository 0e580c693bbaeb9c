//! Hugging Face / sentence-transformers directory → `.ingot` sentence encoder.
//!
//! Reads `config.json`, `model.safetensors`, `tokenizer.json` and, when present, `modules.json`,
//! `1_Pooling/config.json` and `sentence_bert_config.json`. The BERT (BERT, MiniLM), DistilBERT
//! and RoBERTa (RoBERTa, XLM-RoBERTa) layouts are supported; any other `model_type` is refused
//! naming it. All three become the same graph: the layouts differ only in tensor names, in
//! DistilBERT having no token-type embeddings, and in RoBERTa numbering positions from
//! `pad_token_id + 1` (the importer drops the unused rows of its position table).
//!
//! At import the query, key and value projections are fused into one `[3H, H]` weight and every
//! linear weight is stored pre-packed (`packed16`), so loading maps them without copying.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::format::packed;
use crate::format::{
    ElementType, GraphSpec, Manifest, ModelCard, NodeSpec, PostprocessSpec, PreprocessSpec, Producer,
    Quantization, Reference, RequestForm, Signature, TensorData, TensorSpec, TextSpec,
};
use crate::value::{Record, Value};

/// Options of [`import_dir`].
///
/// ```
/// let o = ingot::import::hf::ImportOptions::default();
/// assert_eq!(o.version, "1.0.0");
/// ```
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Model name (default: the directory name, sanitized).
    pub name: Option<String>,
    /// Model version (semver).
    pub version: String,
    /// Truncation length (default: `max_seq_length` of sentence_bert_config.json, else the
    /// model's `max_position_embeddings`).
    pub max_length: Option<usize>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { name: None, version: "1.0.0".into(), max_length: None }
    }
}

/// `config.json`; the aliases are DistilBERT's names for the same fields.
#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    model_type: String,
    #[serde(alias = "dim")]
    hidden_size: usize,
    #[serde(alias = "n_heads")]
    num_attention_heads: usize,
    #[serde(alias = "n_layers")]
    num_hidden_layers: usize,
    #[serde(alias = "hidden_dim")]
    intermediate_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    max_position_embeddings: usize,
    #[serde(default = "default_types")]
    type_vocab_size: usize,
    #[serde(default = "default_act", alias = "activation")]
    hidden_act: String,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    pad_token_id: Option<usize>,
    #[serde(default)]
    transformers_version: Option<String>,
}

/// The encoder layouts the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    Bert,
    DistilBert,
    Roberta,
}

impl Arch {
    fn from_model_type(model_type: &str) -> Option<Arch> {
        Some(match model_type {
            "bert" => Arch::Bert,
            "distilbert" => Arch::DistilBert,
            "roberta" | "xlm-roberta" => Arch::Roberta,
            _ => return None,
        })
    }

    /// Prefix of the tensor names in checkpoints saved from a task head (`BertForMaskedLM`, …).
    fn prefix(self) -> &'static str {
        match self {
            Arch::Bert => "bert.",
            Arch::DistilBert => "distilbert.",
            Arch::Roberta => "roberta.",
        }
    }

    /// Names of layer `l`'s tensors (without `.weight`/`.bias`): q, k, v, attention output,
    /// its LayerNorm, FFN in, FFN out, its LayerNorm.
    fn layer_names(self, l: usize) -> [String; 8] {
        let names: [&str; 8] = match self {
            Arch::Bert | Arch::Roberta => [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            ],
            Arch::DistilBert => [
                "attention.q_lin",
                "attention.k_lin",
                "attention.v_lin",
                "attention.out_lin",
                "sa_layer_norm",
                "ffn.lin1",
                "ffn.lin2",
                "output_layer_norm",
            ],
        };
        let stack = if self == Arch::DistilBert { "transformer" } else { "encoder" };
        names.map(|n| format!("{stack}.layer.{l}.{n}"))
    }

    /// Rows of the position table before position 0: RoBERTa counts from `pad_token_id + 1`.
    fn position_offset(self, cfg: &Config) -> Result<usize> {
        match self {
            Arch::Roberta => cfg.pad_token_id.unwrap_or(1).checked_add(1).ok_or_else(|| {
                Error::manifest("config.json.pad_token_id", format!("{:?} is too large", cfg.pad_token_id))
            }),
            Arch::Bert | Arch::DistilBert => Ok(0),
        }
    }
}

fn default_eps() -> f64 {
    1e-12
}
fn default_types() -> usize {
    2
}
fn default_act() -> String {
    "gelu".into()
}

#[derive(Debug, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Debug, Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::manifest(path.display().to_string(), e.to_string()))
}

fn unsupported(what: String) -> Error {
    Error::Unsupported { what }
}

/// Pooling and normalization from sentence-transformers' module list (mean, no normalize when
/// the directory is a plain Hugging Face model).
fn pooling(dir: &Path) -> Result<(&'static str, bool)> {
    let modules_path = dir.join("modules.json");
    if !modules_path.exists() {
        return Ok(("mean", false));
    }
    let modules: Vec<Module> = read_json(&modules_path)?;
    let mut mode = "mean";
    let mut normalize = false;
    for m in &modules {
        match m.kind.rsplit('.').next().unwrap_or_default() {
            "Transformer" => {}
            "Pooling" => {
                let p: PoolingConfig = read_json(&dir.join(&m.path).join("config.json"))?;
                mode = match (
                    p.pooling_mode_cls_token,
                    p.pooling_mode_mean_tokens,
                    p.pooling_mode_max_tokens,
                    p.pooling_mode_mean_sqrt_len_tokens,
                ) {
                    (true, false, false, false) => "cls",
                    (false, true, false, false) => "mean",
                    (false, false, true, false) => "max",
                    _ => {
                        return Err(unsupported(format!(
                            "pooling in `{}`: exactly one of cls, mean, max is supported",
                            m.path
                        )))
                    }
                };
            }
            "Normalize" => normalize = true,
            other => return Err(unsupported(format!("sentence-transformers module `{other}`"))),
        }
    }
    Ok((mode, normalize))
}

struct Weights {
    st: memmap2::Mmap,
    prefix: &'static str,
}

impl Weights {
    fn open(dir: &Path, arch: Arch) -> Result<Weights> {
        let path = dir.join("model.safetensors");
        let file = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: read-only map of a file we only read during the import.
        let st = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let tensors = safetensors::SafeTensors::deserialize(&st)
            .map_err(|e| Error::format("header-json", format!("{}: {e}", path.display())))?;
        let probe = "embeddings.word_embeddings.weight";
        let prefix = ["", arch.prefix()]
            .into_iter()
            .find(|p| tensors.tensor(&format!("{p}{probe}")).is_ok())
            .ok_or_else(|| Error::TensorMissing {
                name: format!("{probe} or {}{probe}", arch.prefix()),
                needed_by: path.display().to_string(),
            })?;
        Ok(Weights { st, prefix })
    }

    /// Tensor `name` (without prefix) as f32 values, checking its shape.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let st = safetensors::SafeTensors::deserialize(&self.st)
            .map_err(|e| Error::format("header-json", e.to_string()))?;
        let full = format!("{}{name}", self.prefix);
        let view = st
            .tensor(&full)
            .map_err(|_| Error::TensorMissing { name: full.clone(), needed_by: "the encoder".into() })?;
        if view.shape() != shape {
            return Err(Error::ShapeMismatch {
                what: format!("`{full}`"),
                expected: format!("{shape:?}"),
                got: format!("{:?}", view.shape()),
            });
        }
        let dtype = crate::format::DType::parse(&format!("{:?}", view.dtype()))
            .ok_or_else(|| unsupported(format!("dtype {:?} of `{full}`", view.dtype())))?;
        crate::format::TensorView { dtype, shape, data: view.data() }.to_f32_vec()
    }
}

fn f32_tensor(shape: Vec<usize>, values: &[f32]) -> Result<TensorData> {
    TensorData::from_f32(shape, values)
}

fn spec(name: &str, dtype: ElementType, shape: Vec<i64>) -> TensorSpec {
    TensorSpec { name: name.into(), dtype, shape }
}

fn node(name: &str, op: &str, inputs: &[&str], output: &str, attrs: serde_json::Value) -> NodeSpec {
    let attrs: BTreeMap<String, serde_json::Value> = match attrs {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    NodeSpec {
        name: Some(name.into()),
        op: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.into()],
        attrs,
    }
}

/// Imports a Hugging Face / sentence-transformers directory.
///
/// Returns the manifest and tensors; write them with [`crate::format::write_file`].
pub fn import_dir(
    dir: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    let dir = dir.as_ref();
    let cfg: Config = read_json(&dir.join("config.json"))?;
    let arch = Arch::from_model_type(&cfg.model_type).ok_or_else(|| {
        unsupported(format!(
            "architecture `{}` (config.json model_type); the importer reads bert, distilbert, roberta and xlm-roberta encoders",
            if cfg.model_type.is_empty() { "<missing>" } else { &cfg.model_type }
        ))
    })?;
    if cfg.hidden_act != "gelu" {
        return Err(unsupported(format!("hidden_act `{}` (only `gelu`, the erf form)", cfg.hidden_act)));
    }
    if cfg.position_embedding_type.as_deref().is_some_and(|p| p != "absolute") {
        return Err(unsupported(format!("position_embedding_type `{:?}`", cfg.position_embedding_type)));
    }
    let (h, heads, ffn) = (cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size);
    if heads == 0 || h % heads != 0 {
        return Err(Error::manifest(
            "config.json",
            format!("hidden_size {h} is not a multiple of num_attention_heads {heads}"),
        ));
    }
    let offset = arch.position_offset(&cfg)?;
    let positions = cfg.max_position_embeddings.checked_sub(offset).filter(|&p| p > 0).ok_or_else(|| {
        Error::manifest(
            "config.json.pad_token_id",
            format!(
                "max_position_embeddings {} leaves no positions after pad_token_id",
                cfg.max_position_embeddings
            ),
        )
    })?;
    let max_length = match options.max_length {
        Some(m) => m,
        None => {
            let sb = dir.join("sentence_bert_config.json");
            let from_st = if sb.exists() {
                read_json::<serde_json::Value>(&sb)?["max_seq_length"].as_u64().map(|v| v as usize)
            } else {
                None
            };
            from_st.unwrap_or(positions)
        }
    };
    if max_length > positions || max_length < 2 {
        return Err(Error::manifest(
            "max_length",
            format!("{max_length} must be between 2 and the model's {positions} positions"),
        ));
    }
    let (pool_mode, normalize) = pooling(dir)?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = fs::read(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
    let w = Weights::open(dir, arch)?;
    let vocab = {
        let st = safetensors::SafeTensors::deserialize(&w.st)
            .map_err(|e| Error::format("header-json", e.to_string()))?;
        let name = format!("{}embeddings.word_embeddings.weight", w.prefix);
        st.tensor(&name).map(|t| t.shape().first().copied().unwrap_or(0)).unwrap_or(0)
    };
    let name = options.name.clone().unwrap_or_else(|| {
        let base = dir.file_name().and_then(|n| n.to_str()).unwrap_or("model");
        let clean: String = base
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
            .collect();
        if clean.is_empty() {
            "model".into()
        } else {
            clean
        }
    });
    let encoder = Encoder {
        arch,
        hidden: h,
        heads,
        layers: cfg.num_hidden_layers,
        ffn,
        eps: cfg.layer_norm_eps,
        vocab,
        max_positions: cfg.max_position_embeddings,
        position_offset: offset,
        type_vocab: cfg.type_vocab_size,
        pooling: pool_mode,
        normalize,
        max_length,
    };
    let card = ModelCard {
        name,
        version: options.version.clone(),
        description: Some(format!(
            "{} sentence encoder ({} layers, hidden {h}, {pool_mode} pooling{}) imported from {}",
            cfg.model_type,
            cfg.num_hidden_layers,
            if normalize { ", L2-normalized" } else { "" },
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("a Hugging Face directory"),
        )),
        tags: vec!["text".into(), "embedding".into()],
        ..ModelCard::default()
    };
    let producer = Producer {
        name: "ingot import hf".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        framework: cfg.transformers_version.as_ref().map(|v| format!("transformers {v}")),
    };
    encoder_bundle(&encoder, &|name: &str, shape: &[usize]| w.get(name, shape), tokenizer, card, producer)
}

/// A BERT-family encoder's dimensions, pooling and truncation: what [`encoder_bundle`] needs
/// besides the weights. The Hugging Face importer reads it from `config.json`; the ONNX
/// importer recognizes it in an exported graph.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder {
    pub(crate) arch: Arch,
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
    pub(crate) layers: usize,
    pub(crate) ffn: usize,
    pub(crate) eps: f64,
    pub(crate) vocab: usize,
    /// Rows of the position table.
    pub(crate) max_positions: usize,
    /// Rows of the position table before position 0 (RoBERTa).
    pub(crate) position_offset: usize,
    pub(crate) type_vocab: usize,
    /// `mean`, `cls` or `max`.
    pub(crate) pooling: &'static str,
    pub(crate) normalize: bool,
    pub(crate) max_length: usize,
}

/// The weight reader of [`encoder_bundle`]: the f32 values of a tensor by its Hugging Face name
/// (e.g. `encoder.layer.0.attention.self.query.weight`, `[out, in]`), checked against `shape`.
pub(crate) type WeightFn<'a> = dyn Fn(&str, &[usize]) -> Result<Vec<f32>> + 'a;

/// The bundle of a sentence encoder: the tokenizer, embeddings, fused QKV projections, Ingot's
/// attention, FFN and pooling nodes. Every encoder importer ends here, so the same model runs
/// the same kernels whichever file it came from.
pub(crate) fn encoder_bundle(
    e: &Encoder,
    get: &WeightFn<'_>,
    tokenizer: Vec<u8>,
    card: ModelCard,
    producer: Producer,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    let Encoder {
        arch,
        hidden: h,
        heads,
        ffn,
        vocab,
        position_offset: offset,
        pooling: pool_mode,
        normalize,
        ..
    } = *e;
    let positions = e.max_positions - offset;
    let mut tensors: Vec<(String, TensorData)> = Vec::new();
    let mut push = |name: &str, t: TensorData| tensors.push((name.to_string(), t));
    push("tokenizer.json", TensorData::new(crate::format::DType::U8, vec![tokenizer.len()], tokenizer)?);
    push(
        "embeddings.word",
        f32_tensor(vec![vocab, h], &get("embeddings.word_embeddings.weight", &[vocab, h])?)?,
    );
    let table = get("embeddings.position_embeddings.weight", &[e.max_positions, h])?;
    push("embeddings.position", f32_tensor(vec![positions, h], &table[offset * h..])?);
    if arch != Arch::DistilBert {
        let types = e.type_vocab;
        push(
            "embeddings.token_type",
            f32_tensor(vec![types, h], &get("embeddings.token_type_embeddings.weight", &[types, h])?)?,
        );
    }
    push("embeddings.ln.gamma", f32_tensor(vec![h], &get("embeddings.LayerNorm.weight", &[h])?)?);
    push("embeddings.ln.beta", f32_tensor(vec![h], &get("embeddings.LayerNorm.bias", &[h])?)?);

    let packed = |values: &[f32], m: usize, k: usize| {
        f32_tensor(packed::packed_shape(m, k).to_vec(), &packed::pack(values, m, k))
    };
    let eps = json!({"epsilon": e.eps});
    let mut nodes = vec![
        node("embed_word", "Gather", &["embeddings.word", "input_ids"], "e_word", json!({})),
        node("embed_position", "Gather", &["embeddings.position", "position_ids"], "e_pos", json!({})),
        node("embed_sum1", "Add", &["e_word", "e_pos"], "e_sum1", json!({})),
    ];
    let embedded = if arch == Arch::DistilBert {
        "e_sum1"
    } else {
        nodes.push(node(
            "embed_type",
            "Gather",
            &["embeddings.token_type", "token_type_ids"],
            "e_type",
            json!({}),
        ));
        nodes.push(node("embed_sum2", "Add", &["e_sum1", "e_type"], "e_sum2", json!({})));
        "e_sum2"
    };
    nodes.push(node(
        "embed_ln",
        "LayerNorm",
        &[embedded, "embeddings.ln.gamma", "embeddings.ln.beta"],
        "h0",
        eps.clone(),
    ));
    for l in 0..e.layers {
        let [q, k, v, attn_out, ln1, ffn_in, ffn_out, ln2] = arch.layer_names(l);
        let mut qkv_w = Vec::with_capacity(3 * h * h);
        let mut qkv_b = Vec::with_capacity(3 * h);
        for part in [q, k, v] {
            qkv_w.extend(get(&format!("{part}.weight"), &[h, h])?);
            qkv_b.extend(get(&format!("{part}.bias"), &[h])?);
        }
        let t = |s: &str| format!("layer{l}.{s}");
        push(&t("qkv.weight"), packed(&qkv_w, 3 * h, h)?);
        push(&t("qkv.bias"), f32_tensor(vec![3 * h], &qkv_b)?);
        let weight = |name: &str, m: usize, k: usize| packed(&get(&format!("{name}.weight"), &[m, k])?, m, k);
        let vector = |name: &str, suffix: &str, m: usize| {
            f32_tensor(vec![m], &get(&format!("{name}.{suffix}"), &[m])?)
        };
        push(&t("attn_out.weight"), weight(&attn_out, h, h)?);
        push(&t("attn_out.bias"), vector(&attn_out, "bias", h)?);
        push(&t("ln1.gamma"), vector(&ln1, "weight", h)?);
        push(&t("ln1.beta"), vector(&ln1, "bias", h)?);
        push(&t("ffn_in.weight"), weight(&ffn_in, ffn, h)?);
        push(&t("ffn_in.bias"), vector(&ffn_in, "bias", ffn)?);
        push(&t("ffn_out.weight"), weight(&ffn_out, h, ffn)?);
        push(&t("ffn_out.bias"), vector(&ffn_out, "bias", h)?);
        push(&t("ln2.gamma"), vector(&ln2, "weight", h)?);
        push(&t("ln2.beta"), vector(&ln2, "bias", h)?);

        let (x, n) = (format!("h{l}"), |s: &str| format!("l{l}_{s}"));
        let lin = |m: usize| json!({"weight_layout": "packed16", "out_features": m});
        nodes.push(node(&n("qkv"), "Linear", &[&x, &t("qkv.weight"), &t("qkv.bias")], &n("qkv"), lin(3 * h)));
        nodes.push(node(
            &n("attention"),
            "MultiHeadAttention",
            &[&n("qkv"), "sequence_offsets"],
            &n("ctx"),
            json!({"num_heads": heads}),
        ));
        nodes.push(node(
            &n("attn_out"),
            "Linear",
            &[&n("ctx"), &t("attn_out.weight"), &t("attn_out.bias")],
            &n("attn"),
            lin(h),
        ));
        nodes.push(node(&n("residual1"), "Add", &[&n("attn"), &x], &n("res1"), json!({})));
        nodes.push(node(
            &n("ln1"),
            "LayerNorm",
            &[&n("res1"), &t("ln1.gamma"), &t("ln1.beta")],
            &n("h_mid"),
            eps.clone(),
        ));
        nodes.push(node(
            &n("ffn_in"),
            "Linear",
            &[&n("h_mid"), &t("ffn_in.weight"), &t("ffn_in.bias")],
            &n("ffn_pre"),
            lin(ffn),
        ));
        nodes.push(node(&n("gelu"), "Gelu", &[&n("ffn_pre")], &n("ffn_act"), json!({})));
        nodes.push(node(
            &n("ffn_out"),
            "Linear",
            &[&n("ffn_act"), &t("ffn_out.weight"), &t("ffn_out.bias")],
            &n("ffn"),
            lin(h),
        ));
        nodes.push(node(&n("residual2"), "Add", &[&n("ffn"), &n("h_mid")], &n("res2"), json!({})));
        nodes.push(node(
            &n("ln2"),
            "LayerNorm",
            &[&n("res2"), &t("ln2.gamma"), &t("ln2.beta")],
            &format!("h{}", l + 1),
            eps.clone(),
        ));
    }
    let last = format!("h{}", e.layers);
    let pooled = if normalize { "pooled" } else { "embedding" };
    nodes.push(node(
        "pool",
        "SequencePool",
        &[&last, "sequence_offsets"],
        pooled,
        json!({"mode": pool_mode}),
    ));
    if normalize {
        nodes.push(node("normalize", "L2Normalize", &["pooled"], "embedding", json!({})));
    }

    let ids = |n: &str| spec(n, ElementType::I64, vec![-1]);
    let manifest = Manifest {
        model: card,
        producer,
        signature: Signature {
            inputs: vec![spec("text", ElementType::String, vec![-1])],
            outputs: vec![spec("embedding", ElementType::F32, vec![-1, h as i64])],
            request_forms: vec![RequestForm::Strings, RequestForm::Records, RequestForm::Columns],
        },
        preprocess: vec![PreprocessSpec::Text(TextSpec {
            tokenizer: "tokenizer.json".into(),
            max_length: e.max_length,
        })],
        graph: GraphSpec {
            opset: 1,
            inputs: ["input_ids", "token_type_ids", "position_ids", "sequence_offsets"]
                .into_iter()
                .filter(|&i| arch != Arch::DistilBert || i != "token_type_ids")
                .map(ids)
                .collect(),
            outputs: vec![spec("embedding", ElementType::F32, vec![-1, h as i64])],
            nodes,
        },
        postprocess: vec![PostprocessSpec::Embedding {}],
        quantization: Some(Quantization::f32()),
        reference: Some(Reference {
            sample: [
                "A quick brown fox jumps over the lazy dog.",
                "Ingot runs the tokenizer, the encoder and the pooling in one file.",
            ]
            .iter()
            .map(|s| Record::from([("text".to_string(), Value::from(*s))]))
            .collect(),
            columns: BTreeMap::new(),
        }),
        checksum: None,
    };
    Ok((manifest, tensors))
}
