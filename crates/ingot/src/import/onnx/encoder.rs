//! BERT-style sentence encoders exported to ONNX (torch.onnx, TorchScript or dynamo exporter):
//! the graph is recognized layer by layer and its weights go to the same bundle builder as the
//! Hugging Face importer (`hf::encoder_bundle`), so the model runs Ingot's fused encoder
//! kernels — packed QKV projection, one attention kernel over packed sequences, fused GELU —
//! instead of the exported graph's reshapes, transposes and padded masks.
//!
//! What is recognized, in the exported graph's own terms:
//! - embeddings: `Gather`s of stored tables indexed by the `input_ids` and `token_type_ids`
//!   inputs and by positions `0, 1, 2, …` (a slice of a stored arange or a `Range` from 0),
//!   summed, then a `LayerNormalization`;
//! - per layer, between `LayerNormalization`s: three projections (`MatMul` with a stored weight,
//!   a bias `Add`) traced through their reshapes and transposes to the two attention products —
//!   query and key into the `Softmax`'s scores, value into the context — whose scaling must
//!   come to `1/√head_dim` (from which the head count follows); the output projection; the
//!   residual `LayerNormalization`; the FFN's two projections with the erf GELU between them
//!   (`Erf` or `Gelu`); the second `LayerNormalization`;
//! - pooling after the last layer: a masked mean (`ReduceSum` / `ReduceMean`), a max
//!   (`ReduceMax`) or the first token (`Gather`/`Slice` at 0), and an L2 normalization when
//!   there is one.
//!
//! A graph that does not follow this shape is refused with the step that did not match.

use std::collections::HashMap;

use super::attrs::Attrs;
use super::proto::{GraphProto, NodeProto};
use super::tensor::Const;
use super::Fail;
use crate::import::hf::{Arch, Encoder};

/// A recognized encoder: its dimensions and its weights by Hugging Face name.
pub(crate) struct Recognized {
    pub(crate) encoder: Encoder,
    pub(crate) weights: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

/// Stores `c` under Hugging Face name `name`.
fn put(weights: &mut HashMap<String, (Vec<usize>, Vec<f32>)>, name: &str, c: &Const) -> Result<(), Fail> {
    let values = c.to_f32().ok_or("weights must be numbers")?;
    weights.insert(name.to_string(), (c.dims.clone(), values));
    Ok(())
}

/// The graph input that node `n`'s indices come from (through casts), if any.
fn source<'g>(net: &Net<'g>, inputs: &[&str], n: &'g NodeProto) -> Option<&'g str> {
    let mut v = n.input.get(1)?.as_str();
    for _ in 0..4 {
        if inputs.contains(&v) {
            return Some(v);
        }
        let p = net.node_of(v)?;
        if p.op_type != "Cast" {
            return None;
        }
        v = p.input.first()?;
    }
    None
}

fn unsupported(what: impl Into<String>) -> Fail {
    Fail::Unsupported(what.into())
}

/// The graph as producer and reader maps.
struct Net<'g> {
    nodes: &'g [NodeProto],
    /// Node index by output name.
    producer: HashMap<&'g str, usize>,
    /// Node indices by input name.
    readers: HashMap<&'g str, Vec<usize>>,
    consts: &'g HashMap<String, Const>,
}

impl<'g> Net<'g> {
    fn new(graph: &'g GraphProto, consts: &'g HashMap<String, Const>) -> Net<'g> {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
            }
            for x in &n.input {
                readers.entry(x.as_str()).or_default().push(i);
            }
        }
        Net { nodes: &graph.node, producer, readers, consts }
    }

    fn node_of(&self, value: &str) -> Option<&'g NodeProto> {
        self.producer.get(value).map(|&i| &self.nodes[i])
    }

    fn readers_of(&self, value: &str) -> Vec<&'g NodeProto> {
        self.readers.get(value).map(|v| v.iter().map(|&i| &self.nodes[i]).collect()).unwrap_or_default()
    }

    fn konst(&self, value: &str) -> Option<&'g Const> {
        self.consts.get(value)
    }

    fn scalar(&self, value: &str) -> Option<f32> {
        self.konst(value).and_then(Const::scalar_f32)
    }

    /// The stored right-hand `[k, m]` weight of a `MatMul` node.
    fn matmul_weight(&self, n: &NodeProto) -> Option<&'g Const> {
        (n.op_type == "MatMul")
            .then(|| n.input.get(1).and_then(|w| self.konst(w)))
            .flatten()
            .filter(|c| c.dims.len() == 2)
    }

    /// The `MatMul` of two computed values that `value` derives from through scalings, casts
    /// and additive or `Where` masks (at most `depth` steps), and the product of the scalings.
    fn scores_of(&self, value: &str, depth: usize) -> Option<(&'g NodeProto, f64)> {
        let n = self.node_of(value)?;
        let computed: Vec<&str> =
            n.input.iter().map(String::as_str).filter(|i| self.konst(i).is_none()).collect();
        match n.op_type.as_str() {
            "MatMul" if computed.len() == 2 && self.projection_of(computed[0]).is_some() => Some((n, 1.0)),
            _ if depth == 0 => None,
            "Mul" | "Div" if computed.len() == 1 => {
                let c = n.input.iter().find_map(|i| self.scalar(i))?;
                let (m, s) = self.scores_of(computed[0], depth - 1)?;
                Some((m, if n.op_type == "Mul" { s * f64::from(c) } else { s / f64::from(c) }))
            }
            "Add" | "Where" | "Cast" | "Identity" => {
                computed.iter().find_map(|i| self.scores_of(i, depth - 1))
            }
            _ => None,
        }
    }

    /// Follows `value` back through reshapes, transposes, casts, bias adds and scalings to the
    /// `MatMul` with a stored weight that produced it; returns that node and the product of the
    /// scalings met on the way.
    fn projection_of(&self, value: &str) -> Option<(&'g NodeProto, f64)> {
        let mut scale = 1.0f64;
        let mut v = value;
        for _ in 0..16 {
            let n = self.node_of(v)?;
            if self.matmul_weight(n).is_some() {
                return Some((n, scale));
            }
            let computed: Vec<&str> =
                n.input.iter().map(String::as_str).filter(|i| self.konst(i).is_none()).collect();
            match (n.op_type.as_str(), computed.as_slice()) {
                (
                    "Reshape" | "Transpose" | "Cast" | "Identity" | "Squeeze" | "Unsqueeze" | "Add",
                    [x, ..],
                ) => {
                    v = x;
                }
                ("Mul" | "Div", [x]) => {
                    let c = n.input.iter().find_map(|i| self.scalar(i))?;
                    scale *= if n.op_type == "Mul" { f64::from(c) } else { 1.0 / f64::from(c) };
                    v = x;
                }
                _ => return None,
            }
        }
        None
    }
}

/// Whether the graph looks like a text encoder: every input is an integer `[batch, seq]`
/// tensor and one of them indexes a stored `[vocab, hidden]` table.
pub(crate) fn looks_like_encoder(graph: &GraphProto, consts: &HashMap<String, Const>) -> bool {
    let inputs: Vec<&str> =
        graph.input.iter().map(|i| i.name.as_str()).filter(|n| !consts.contains_key(*n)).collect();
    graph.node.iter().any(|n| {
        n.op_type == "Gather"
            && n.input.first().and_then(|t| consts.get(t)).is_some_and(|c| c.dims.len() == 2)
            && n.input.get(1).is_some_and(|i| inputs.contains(&i.as_str()))
    })
}

/// Recognizes the encoder in `graph`; `output` is the graph output to reproduce.
pub(crate) fn recognize(
    graph: &GraphProto,
    consts: &HashMap<String, Const>,
    output: &str,
) -> Result<Recognized, Fail> {
    let net = Net::new(graph, consts);
    let inputs: Vec<&str> =
        graph.input.iter().map(|i| i.name.as_str()).filter(|n| !consts.contains_key(*n)).collect();
    let mut weights: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();

    // Embeddings: the tables gathered by the ids, the token types and the positions.
    let gathers: Vec<(&NodeProto, &Const)> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Gather")
        .filter_map(|n| {
            n.input.first().and_then(|t| net.konst(t)).filter(|c| c.dims.len() == 2).map(|c| (n, c))
        })
        .collect();

    let ids = gathers
        .iter()
        .find(|(n, _)| {
            source(&net, &inputs, n).is_some_and(|s| s.contains("input_ids"))
                || source(&net, &inputs, n).is_some()
        })
        .ok_or_else(|| unsupported("no embedding lookup of a graph input"))?;
    let ids_input = source(&net, &inputs, ids.0).unwrap_or_default();
    let (vocab, hidden) = (ids.1.dims[0], ids.1.dims[1]);
    put(&mut weights, "embeddings.word_embeddings.weight", ids.1)?;
    let types = gathers
        .iter()
        .find(|(n, c)| source(&net, &inputs, n).is_some_and(|s| s != ids_input) && c.dims[1] == hidden);
    let type_vocab = match types {
        Some((_, c)) => {
            put(&mut weights, "embeddings.token_type_embeddings.weight", c)?;
            c.dims[0]
        }
        None => {
            // No token-type input: the export used its zero token types; row 0 of a table of one.
            return Err(unsupported(
                "an encoder without a token_type_ids input (export it with token_type_ids)",
            ));
        }
    };
    let positions = gathers
        .iter()
        .find(|(n, c)| source(&net, &inputs, n).is_none() && c.dims[1] == hidden)
        .ok_or_else(|| unsupported("no position embedding lookup"))?;
    check_positions(&net, positions.0)?;
    put(&mut weights, "embeddings.position_embeddings.weight", positions.1)?;

    // Layer norms in graph order: the embeddings' one, then two per layer.
    let norms: Vec<(usize, &NodeProto)> =
        graph.node.iter().enumerate().filter(|(_, n)| n.op_type == "LayerNormalization").collect();
    if norms.len() < 3 || norms.len().is_multiple_of(2) {
        return Err(unsupported(format!(
            "{} LayerNormalization nodes (an encoder has one for the embeddings and two per layer; decomposed layer norms are not recognized)",
            norms.len()
        )));
    }
    let mut eps = None;
    let mut norm = |weights: &mut HashMap<String, (Vec<usize>, Vec<f32>)>,
                    name: &str,
                    n: &NodeProto|
     -> Result<(), Fail> {
        let a = Attrs::of(n);
        let e = f64::from(a.float_or("epsilon", 1e-5)?);
        if eps.is_some_and(|prev: f64| (prev - e).abs() > 1e-15) {
            return Err(unsupported("layer norms with different epsilons"));
        }
        eps = Some(e);
        if a.int_or("axis", -1)? != -1 {
            return Err(unsupported("a layer norm over more than the last axis"));
        }
        let gamma = n
            .input
            .get(1)
            .and_then(|g| net.konst(g))
            .ok_or_else(|| unsupported("a layer norm with computed scale"))?;
        let beta = n
            .input
            .get(2)
            .and_then(|b| net.konst(b))
            .ok_or_else(|| unsupported("a layer norm without a stored bias"))?;
        put(weights, &format!("{name}.weight"), gamma)?;
        put(weights, &format!("{name}.bias"), beta)?;
        Ok(())
    };
    norm(&mut weights, "embeddings.LayerNorm", norms[0].1)?;
    let layers = (norms.len() - 1) / 2;
    let mut heads = None;
    let mut ffn = None;
    for l in 0..layers {
        let (start, input_ln) = norms[2 * l];
        let (mid, mid_ln) = norms[2 * l + 1];
        let (end, _) = norms[2 * l + 2];
        let x = input_ln.output.first().ok_or("a layer norm without output")?;
        let projections: Vec<&NodeProto> =
            graph.node[start..mid].iter().filter(|n| net.matmul_weight(n).is_some()).collect();
        let ffn_projections: Vec<&NodeProto> =
            graph.node[mid..end].iter().filter(|n| net.matmul_weight(n).is_some()).collect();
        let (q, k, v, h) = attention(&net, &graph.node[start..mid], x, hidden)?;
        let out = projections
            .iter()
            .find(|n| ![q, k, v].iter().any(|p| std::ptr::eq(*p, **n)))
            .ok_or_else(|| unsupported(format!("layer {l}: no attention output projection")))?;
        if projections.len() != 4 || ffn_projections.len() != 2 {
            return Err(unsupported(format!(
                "layer {l}: {} attention and {} FFN projections (4 and 2 expected)",
                projections.len(),
                ffn_projections.len()
            )));
        }
        let h_heads = heads.get_or_insert(h);
        if *h_heads != h {
            return Err(unsupported("layers with different head counts"));
        }
        let prefix = format!("encoder.layer.{l}");
        for (name, node) in [
            ("attention.self.query", q),
            ("attention.self.key", k),
            ("attention.self.value", v),
            ("attention.output.dense", *out),
            ("intermediate.dense", ffn_projections[0]),
            ("output.dense", ffn_projections[1]),
        ] {
            linear(&net, node, &format!("{prefix}.{name}"), &mut weights)?;
        }
        let f = net.matmul_weight(ffn_projections[0]).map_or(0, |w| w.dims[1]);
        if *ffn.get_or_insert(f) != f {
            return Err(unsupported("layers with different FFN widths"));
        }
        let gelu = graph.node[mid..end].iter().any(|n| n.op_type == "Erf" || n.op_type == "Gelu");
        if !gelu || graph.node[mid..end].iter().any(|n| n.op_type == "Tanh") {
            return Err(unsupported(format!("layer {l}: the FFN activation is not the erf GELU")));
        }
        norm(&mut weights, &format!("{prefix}.attention.output.LayerNorm"), mid_ln)?;
        norm(&mut weights, &format!("{prefix}.output.LayerNorm"), norms[2 * l + 2].1)?;
    }
    let last = norms[norms.len() - 1].1.output.first().ok_or("a layer norm without output")?;
    let (pooling, normalize) = pooling(&net, last, output)?;
    let encoder = Encoder {
        arch: Arch::Bert,
        hidden,
        heads: heads.unwrap_or(1),
        layers,
        ffn: ffn.unwrap_or(0),
        eps: eps.unwrap_or(1e-12),
        vocab,
        max_positions: positions.1.dims[0],
        position_offset: 0,
        type_vocab,
        pooling,
        normalize,
        max_length: positions.1.dims[0],
    };
    Ok(Recognized { encoder, weights })
}

/// The positions must be `0, 1, 2, …`: a slice from 0 of a stored arange, or a `Range` from 0.
fn check_positions(net: &Net<'_>, gather: &NodeProto) -> Result<(), Fail> {
    let bad =
        || unsupported("position ids that are not 0, 1, 2, … (RoBERTa-style positions are not recognized)");
    let mut v = gather.input.get(1).map(String::as_str).ok_or_else(bad)?;
    for _ in 0..8 {
        let n = net.node_of(v).ok_or_else(bad)?;
        match n.op_type.as_str() {
            "Slice" => {
                let data = n.input.first().and_then(|d| net.konst(d)).ok_or_else(bad)?;
                let values = data.to_i64().ok_or_else(bad)?;
                let starts =
                    n.input.get(1).and_then(|s| net.konst(s)).and_then(Const::to_i64).ok_or_else(bad)?;
                let arange = values.iter().enumerate().all(|(i, &p)| p == i as i64);
                return if arange && starts.iter().all(|&s| s == 0) { Ok(()) } else { Err(bad()) };
            }
            "Range" => {
                let start = n.input.first().and_then(|s| net.scalar(s)).ok_or_else(bad)?;
                let delta = n.input.get(2).and_then(|s| net.scalar(s)).ok_or_else(bad)?;
                return if start == 0.0 && delta == 1.0 { Ok(()) } else { Err(bad()) };
            }
            "Unsqueeze" | "Expand" | "Cast" | "Reshape" => v = n.input.first().ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    Err(bad())
}

/// The query, key and value projections of the attention block `block` over input `x`, and
/// the head count their scaling implies.
fn attention<'g>(
    net: &Net<'g>,
    block: &'g [NodeProto],
    x: &str,
    hidden: usize,
) -> Result<(&'g NodeProto, &'g NodeProto, &'g NodeProto, usize), Fail> {
    let softmax =
        block.iter().find(|n| n.op_type == "Softmax").ok_or_else(|| unsupported("no attention softmax"))?;
    // Scores: back from the softmax through the mask and any scaling to a product of two
    // computed values.
    let (scores, scale) = net
        .scores_of(softmax.input.first().ok_or("a softmax without input")?, 8)
        .ok_or_else(|| unsupported("attention scores that are not a product of two projections"))?;
    // Context: forward from the softmax (through a masking `Where`) to the product with V.
    let mut v = softmax.output.first().ok_or("a softmax without output")?.as_str();
    let context = loop {
        let readers = net.readers_of(v);
        if let Some(m) = readers.iter().find(|n| n.op_type == "MatMul") {
            break *m;
        }
        match readers.iter().find(|n| matches!(n.op_type.as_str(), "Where" | "Cast" | "Identity")) {
            Some(n) => v = n.output.first().ok_or("a node without output")?,
            None => return Err(unsupported("the softmax does not feed a MatMul")),
        }
    };
    let trace = |value: &str, what: &str| {
        net.projection_of(value).ok_or_else(|| {
            unsupported(format!("the attention's {what} is not a projection of the layer input"))
        })
    };
    let (q, sq) = trace(&scores.input[0], "query")?;
    let (k, sk) = trace(&scores.input[1], "key")?;
    let (v, sv) = trace(&context.input[1], "value")?;
    if (sv - 1.0).abs() > 1e-6 {
        return Err(unsupported("a scaled value projection"));
    }
    for p in [q, k, v] {
        if p.input.first().map(String::as_str) != Some(x) {
            return Err(unsupported("an attention projection that does not read the layer input"));
        }
    }
    let total = scale * sq * sk;
    let head_dim = (1.0 / (total * total)).round() as usize;
    if head_dim == 0
        || !hidden.is_multiple_of(head_dim)
        || ((total * (head_dim as f64).sqrt()) - 1.0).abs() > 1e-4
    {
        return Err(unsupported(format!(
            "attention scaling {total} is not 1/sqrt(head_dim) for hidden {hidden}"
        )));
    }
    Ok((q, k, v, hidden / head_dim))
}

/// A projection's weight (transposed to `[out, in]`) and bias under `name`.
fn linear(
    net: &Net<'_>,
    matmul: &NodeProto,
    name: &str,
    weights: &mut HashMap<String, (Vec<usize>, Vec<f32>)>,
) -> Result<(), Fail> {
    let w = net.matmul_weight(matmul).ok_or("not a projection")?;
    let (k, m) = (w.dims[0], w.dims[1]);
    let values = w.to_f32().ok_or("weights must be numbers")?;
    put(
        weights,
        &format!("{name}.weight"),
        &Const::f32(vec![m, k], super::nodes::transpose_2d(&values, k, m)),
    )?;
    let out = matmul.output.first().ok_or("a MatMul without output")?;
    let bias = net
        .readers_of(out)
        .into_iter()
        .find(|n| n.op_type == "Add")
        .and_then(|n| n.input.iter().find_map(|i| net.konst(i)))
        .filter(|c| c.len() == m)
        .cloned()
        .unwrap_or_else(|| Const::f32(vec![m], vec![0.0; m]));
    put(weights, &format!("{name}.bias"), &Const::f32(vec![m], bias.to_f32().unwrap_or_default()))
}

/// The pooling between the last layer's output `last` and the graph output `output`, and
/// whether an L2 normalization follows.
fn pooling(net: &Net<'_>, last: &str, output: &str) -> Result<(&'static str, bool), Fail> {
    if output == last {
        return Err(unsupported("a token-level output (choose the pooled output with --output-name)"));
    }
    // Every node between the last layer norm and the output.
    let mut ops: Vec<&str> = Vec::new();
    let mut stack = vec![output];
    let mut seen = std::collections::HashSet::new();
    while let Some(v) = stack.pop() {
        if v == last || !seen.insert(v) {
            continue;
        }
        let Some(n) = net.node_of(v) else { continue };
        ops.push(n.op_type.as_str());
        stack.extend(n.input.iter().map(String::as_str));
    }
    let has = |op: &str| ops.contains(&op);
    let normalize = has("LpNormalization")
        || has("ReduceL2")
        || (has("Sqrt") && ops.iter().filter(|&&o| o == "ReduceSum").count() > 2);
    let mode = if has("ReduceMax") {
        "max"
    } else if has("ReduceSum") || has("ReduceMean") {
        "mean"
    } else if has("Gather") || has("Slice") {
        "cls"
    } else {
        return Err(unsupported(format!("the pooling from the last layer to `{output}` ({ops:?})")));
    };
    Ok((mode, normalize))
}
