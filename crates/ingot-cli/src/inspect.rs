//! `ingot inspect` and `ingot verify`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use ingot::signing::{signature_path, SignatureFile, VerifyingKey};
use ingot::{Bundle, Model};

/// Prints the model card, signature, pipeline and tensors.
pub(crate) fn inspect(path: &Path, json: bool) -> Result<(), ingot::Error> {
    let model = Model::load(path)?;
    let bundle = model.bundle();
    let manifest = model.manifest();
    let tensors: Vec<serde_json::Value> = bundle
        .tensor_entries()
        .iter()
        .map(|(name, e)| {
            serde_json::json!({"name": name, "dtype": e.dtype.name(), "shape": e.shape, "bytes": e.range.len()})
        })
        .collect();
    if json {
        let out = serde_json::json!({
            "file": path.display().to_string(),
            "file_bytes": bundle.file_size(),
            "format": bundle.format_version(),
            "manifest": manifest,
            "tensors": tensors,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    let mut out = String::new();
    let card = &manifest.model;
    let _ = writeln!(
        out,
        "{} {}  ({}, format {}, {} bytes)",
        card.name,
        card.version,
        path.display(),
        bundle.format_version(),
        bundle.file_size()
    );
    for (label, value) in [
        ("description", card.description.as_deref()),
        ("created", card.created.as_deref()),
        ("license", card.license.as_deref()),
        ("parent", card.parent.as_deref()),
        ("data digest", card.training_data_digest.as_deref()),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "  {label:<12} {v}");
        }
    }
    if !card.authors.is_empty() {
        let _ = writeln!(out, "  {:<12} {}", "authors", card.authors.join(", "));
    }
    if !card.tags.is_empty() {
        let _ = writeln!(out, "  {:<12} {}", "tags", card.tags.join(", "));
    }
    for (k, v) in &card.metrics {
        let _ = writeln!(out, "  metric       {k} = {v}");
    }
    let p = &manifest.producer;
    let _ = writeln!(
        out,
        "  producer     {} {}{}",
        p.name,
        p.version,
        p.framework.as_ref().map(|f| format!(" / {f}")).unwrap_or_default()
    );
    let _ = writeln!(out, "signature");
    for i in &manifest.signature.inputs {
        let _ = writeln!(out, "  in   {:<32} {:?} {:?}", i.name, i.dtype, i.shape);
    }
    for o in &manifest.signature.outputs {
        let _ = writeln!(out, "  out  {:<32} {:?} {:?}", o.name, o.dtype, o.shape);
    }
    let _ = writeln!(out, "pipeline");
    for step in &manifest.preprocess {
        match step {
            ingot::format::PreprocessSpec::Tabular(t) => {
                for tr in &t.transformers {
                    let steps: Vec<String> = tr.steps.iter().map(step_name).collect();
                    let steps =
                        if steps.is_empty() { "passthrough".to_string() } else { steps.join(" → ") };
                    let _ = writeln!(out, "  pre  {} [{} column(s)]: {}", tr.name, tr.columns.len(), steps);
                }
            }
            ingot::format::PreprocessSpec::Text(t) => {
                let _ = writeln!(
                    out,
                    "  pre  tokenizer `{}`, truncation at {} tokens, no padding",
                    t.tokenizer, t.max_length
                );
            }
        }
    }
    for n in &manifest.graph.nodes {
        let _ = writeln!(out, "  op   {:<10} {} → {}", n.op, n.inputs.join(", "), n.outputs.join(", "));
        if n.op == "TreeEnsemble" {
            let _ = writeln!(out, "       {}", tree_summary(bundle, n));
        }
    }
    for post in &manifest.postprocess {
        let _ = writeln!(out, "  post {}", serde_json::to_string(post).unwrap_or_default());
    }
    if let Some(q) = &manifest.quantization {
        quantization(&mut out, q);
    }
    let _ = writeln!(out, "tensors");
    for t in tensors {
        let _ = writeln!(
            out,
            "  {:<24} {:<4} {:<14} {} bytes",
            t["name"].as_str().unwrap_or(""),
            t["dtype"].as_str().unwrap_or(""),
            t["shape"].to_string(),
            t["bytes"]
        );
    }
    // A closed pipe (`ingot inspect m | head`) is not an error worth reporting.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// The `quantization` section: scheme, accuracy, and each layer's sensitivity.
fn quantization(out: &mut String, q: &ingot::format::Quantization) {
    let source = q.source.as_ref().map(|s| format!(" from {s}")).unwrap_or_default();
    let _ = writeln!(out, "quantization {}{source} ({} reduced weights)", q.scheme, q.weights.len());
    if let Some(a) = &q.activations {
        let _ = writeln!(out, "  activations  {a}");
    }
    if !q.accuracy.is_empty() {
        let on = q.calibration.as_ref().map(|c| format!(" on {c}")).unwrap_or_default();
        let figures: Vec<String> = q.accuracy.iter().map(|(k, v)| format!("{k} {v:.6}")).collect();
        let _ = writeln!(out, "  accuracy{on}: {}", figures.join(", "));
    }
    for l in &q.layers {
        let state = if l.reduced { q.scheme.as_str() } else { "f32" };
        let _ = writeln!(
            out,
            "  layer {:<28} {:<5} alone: cosine min {:.6} mean {:.6}, max abs error {:.3e}",
            l.node, state, l.min_cosine, l.mean_cosine, l.max_abs_error
        );
    }
}

/// Sizes of a `TreeEnsemble` node: trees (rows of its `*.trees` tensor, shape [T, 2]), nodes
/// (rows of `*.nodes`, shape [N, 5]) and outputs (its `n_outputs` attribute).
fn tree_summary(bundle: &Bundle, node: &ingot::format::NodeSpec) -> String {
    let rows = |suffix: &str| {
        node.inputs
            .iter()
            .filter(|i| i.ends_with(suffix))
            .find_map(|i| bundle.tensor_entries().get(i))
            .and_then(|e| e.shape.first().copied())
            .map_or_else(|| "?".to_string(), |n| n.to_string())
    };
    let outputs = node.attrs.get("n_outputs").map_or_else(|| "?".to_string(), |v| v.to_string());
    format!("{} trees, {} nodes, {} output(s)", rows(".trees"), rows(".nodes"), outputs)
}

fn step_name(step: &ingot::format::TabularStepSpec) -> String {
    serde_json::to_value(step).ok().and_then(|v| v["type"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// Runs every check and reports each stage; an error ends with a non-zero exit code. With a
/// public key, the signature file must also verify, over the very bytes that were checked.
pub(crate) fn verify(path: &Path, key: Option<&Path>) -> Result<(), ingot::Error> {
    let key = key.map(VerifyingKey::read).transpose()?;
    let bundle = Bundle::open(path)?;
    println!("ok  container: header, offsets, alignment, dtypes ({} tensors)", bundle.tensor_entries().len());
    println!("ok  format version {}", bundle.format_version());
    println!("ok  checksum (blake3) {}", bundle.manifest().checksum.as_deref().unwrap_or(""));
    let model = Model::from_bundle(bundle, &ingot::LoadOptions::default())?;
    println!("ok  manifest, pipeline and graph (opset {})", model.manifest().graph.opset);
    ingot::quantize::check_scheme(model.bundle())?;
    if let Some(q) = &model.manifest().quantization {
        println!("ok  quantization {}: {} reduced weights match their tensors", q.scheme, q.weights.len());
    }
    if let Some(key) = key {
        let signature = SignatureFile::read(signature_path(path))?;
        let verified = signature.verify(model.bundle().as_bytes(), &key)?;
        println!("ok  signature (ed25519) by key {} over blake3 {}", verified.key_id(), verified.file_hash());
    }
    println!("{} {} is valid", model.metadata().name, model.metadata().version);
    Ok(())
}
