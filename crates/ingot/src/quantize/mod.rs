//! Reduced-precision copies of a bundle: int8, f16 or bf16 weights, with the accuracy cost
//! measured against the source and written into the new bundle's manifest.
//!
//! [`quantize`] rewrites the weights of every `Linear` layer and embedding table (`Gather`) of
//! the graph — nothing else: LayerNorm, attention and the activations stay f32 — and returns
//! the new bundle's bytes with a [`Report`]:
//!
//! - **int8**: `Linear` weights symmetric per output channel (`int8-per-channel`, one f32 scale
//!   per output, `q = round(w / scale)`, `|q| ≤ 127`), activations quantized per row at run time
//!   to u8 with their own scale and zero point; embedding tables per row (`int8-per-row`,
//!   dequantized to f32 at load: the file shrinks, the lookups do not change).
//! - **f16** / **bf16**: weights and tables rounded to nearest even; bf16 `Linear` layers also
//!   round their input activations to bf16 (what `vdpbf16ps` computes), f16 ones compute in f32.
//!
//! The report compares the candidate with the source on calibration data (a text file of
//! sentences, rows, or the bundle's reference sample): per-row cosine (min, mean), max
//! absolute error, label agreement and probability error for classifiers, and each layer's
//! sensitivity (the same figures with that layer alone reduced). With
//! [`QuantizeOptions::min_cosine`], the most sensitive layers are kept in f32, one at a time,
//! until the minimum cosine holds.

mod compare;

use std::collections::{BTreeMap, BTreeSet};

pub use compare::{Agreement, Calibration};

use crate::error::{Error, Result};
use crate::format::{packed, to_bytes, DType, LayerAccuracy, Manifest, Quantization, TensorData};
use crate::kernels::hgemm::{Half, HalfWeight};
use crate::kernels::qgemm;
use crate::model::Model;

/// The precision weights are reduced to.
///
/// ```
/// use ingot::quantize::Precision;
/// assert_eq!(Precision::parse("int8"), Some(Precision::Int8));
/// assert_eq!(Precision::Bf16.name(), "bf16");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 8-bit integers with f32 scales.
    Int8,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// `int8`, `f16` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    /// Parses a name of [`Precision::name`].
    pub fn parse(name: &str) -> Option<Precision> {
        [Precision::Int8, Precision::F16, Precision::Bf16].into_iter().find(|p| p.name() == name)
    }

    /// How a weight of `kind` is stored at this precision, as named in the manifest.
    fn scheme(self, kind: LayerKind) -> &'static str {
        match (self, kind) {
            (Precision::Int8, LayerKind::Linear) => "int8-per-channel",
            (Precision::Int8, LayerKind::Table) => "int8-per-row",
            (Precision::F16, _) => "f16",
            (Precision::Bf16, _) => "bf16",
        }
    }
}

/// What [`quantize`] does.
///
/// ```
/// let options = ingot::quantize::QuantizeOptions::new(ingot::quantize::Precision::F16);
/// assert!(options.keep_f32.is_empty() && options.min_cosine.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeOptions {
    /// The precision of the reduced weights.
    pub precision: Precision,
    /// Layers to keep in f32: node names or weight tensor names.
    pub keep_f32: Vec<String>,
    /// Keep the most sensitive layers in f32 until every calibration row's cosine to the
    /// source reaches this.
    pub min_cosine: Option<f64>,
    /// Version of the new bundle (default: the source's with `+int8`, `+f16` or `+bf16`).
    pub version: Option<String>,
    /// Measure each layer's sensitivity (one extra evaluation per layer); implied by
    /// `min_cosine`.
    pub per_layer: bool,
}

impl QuantizeOptions {
    /// Every layer reduced to `precision`, sensitivity measured.
    pub fn new(precision: Precision) -> QuantizeOptions {
        QuantizeOptions { precision, keep_f32: Vec::new(), min_cosine: None, version: None, per_layer: true }
    }
}

/// What [`quantize`] wrote and measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The precision the layers were reduced to.
    pub precision: Precision,
    /// The written bundle's agreement with the source.
    pub agreement: Agreement,
    /// Each layer, in graph order, with its sensitivity when measured.
    pub layers: Vec<LayerReport>,
    /// Size of the source file and of the new one, in bytes.
    pub bytes: (usize, usize),
    /// What the accuracy was measured on.
    pub calibration: String,
    /// The version the new bundle carries.
    pub version: String,
}

/// One reducible layer in the [`Report`].
#[derive(Debug, Clone)]
pub struct LayerReport {
    /// Graph node name.
    pub node: String,
    /// Weight tensor name.
    pub weight: String,
    /// Weight shape, `[rows, columns]`.
    pub shape: [usize; 2],
    /// Whether the new bundle stores it reduced.
    pub reduced: bool,
    /// The agreement with this layer alone reduced, when measured.
    pub sensitivity: Option<Agreement>,
}

/// The new bundle and its report.
#[derive(Debug)]
pub struct Quantized {
    /// The new bundle's bytes (write them with [`crate::format::write_bytes`]).
    pub bytes: Vec<u8>,
    /// The new bundle, loaded.
    pub model: Model,
    /// What was measured.
    pub report: Report,
}

/// Whether a layer multiplies (`Linear`) or looks rows up (`Gather`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerKind {
    Linear,
    Table,
}

/// A reducible layer of the source graph.
#[derive(Debug, Clone)]
struct Layer {
    /// Index of the node in the manifest's graph.
    node: usize,
    name: String,
    weight: String,
    kind: LayerKind,
    rows: usize,
    cols: usize,
}

/// Reduces the weights of `source` as `options` say, measuring on `data`.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::quantize::{quantize, Calibration, Precision, QuantizeOptions};
/// let source = ingot::Model::from_bytes(ingot::testing::mlp_bundle()?)?;
/// let data = Calibration::from_reference(&source)?;
/// let out = quantize(&source, &data, &QuantizeOptions::new(Precision::Int8))?;
/// assert!(out.report.agreement.min_cosine > 0.99);
/// assert_eq!(out.model.manifest().quantization.as_ref().unwrap().scheme, "int8");
/// # Ok(()) }
/// ```
pub fn quantize(source: &Model, data: &Calibration, options: &QuantizeOptions) -> Result<Quantized> {
    if data.is_empty() {
        return Err(Error::usage("no calibration data to measure accuracy on"));
    }
    if let Some(c) = options.min_cosine.filter(|c| !(0.0..=1.0).contains(c)) {
        return Err(Error::usage(format!("the minimum cosine must be in [0, 1], got {c}")));
    }
    let layers = reducible_layers(source)?;
    if layers.is_empty() {
        return Err(Error::usage("the graph has no Linear layer or embedding table with stored f32 weights"));
    }
    for name in &options.keep_f32 {
        if !layers.iter().any(|l| &l.name == name || &l.weight == name) {
            return Err(Error::usage(format!("--keep-f32: no reducible layer or weight is named `{name}`")));
        }
    }
    // The source once more, recording each linear layer's input ranges as it runs.
    let mut probe = Model::from_bytes(source.bundle().as_bytes().to_vec())?;
    let ranges = probe.record_linear_inputs()?;
    let expected = data.run(&probe)?;
    let input_max = ranges.take();
    let mut writer = Writer::new(source, &layers, &input_max, options)?;
    let measure = |writer: &mut Writer, set: &BTreeSet<usize>| -> Result<Agreement> {
        let model = Model::from_bytes(writer.bytes(set, None)?)?;
        Ok(Agreement::between(&expected, &data.run(&model)?))
    };

    let kept: BTreeSet<usize> = (0..layers.len())
        .filter(|&i| options.keep_f32.iter().any(|n| *n == layers[i].name || *n == layers[i].weight))
        .collect();
    let mut sensitivity: Vec<Option<Agreement>> = vec![None; layers.len()];
    if options.per_layer || options.min_cosine.is_some() {
        for (i, slot) in sensitivity.iter_mut().enumerate() {
            *slot = Some(measure(&mut writer, &BTreeSet::from([i]))?);
        }
    }
    let mut reduced: BTreeSet<usize> = (0..layers.len()).filter(|i| !kept.contains(i)).collect();
    let mut agreement = measure(&mut writer, &reduced)?;
    if let Some(target) = options.min_cosine {
        // Most sensitive first: the lowest minimum cosine when reduced alone.
        let mut order: Vec<usize> = reduced.iter().copied().collect();
        order.sort_by(|&a, &b| {
            let key = |i: usize| sensitivity[i].as_ref().map_or(1.0, |s| s.min_cosine);
            key(a).total_cmp(&key(b))
        });
        // With every layer back in f32 the bundle computes what the source does: stop there.
        let mut order = order.into_iter();
        while agreement.min_cosine.partial_cmp(&target).is_none_or(|o| o.is_lt()) {
            let Some(next) = order.next() else { break };
            reduced.remove(&next);
            agreement = measure(&mut writer, &reduced)?;
        }
    }

    let calibration = match data {
        Calibration::Texts(t) => format!("{} sentences", t.len()),
        Calibration::Records(r) => format!("{} rows", r.len()),
    };
    let report_layers: Vec<LayerReport> = layers
        .iter()
        .zip(sensitivity)
        .enumerate()
        .map(|(i, (l, s))| LayerReport {
            node: l.name.clone(),
            weight: l.weight.clone(),
            shape: [l.rows, l.cols],
            reduced: reduced.contains(&i),
            sensitivity: s,
        })
        .collect();
    let card =
        quantization_card(options.precision, source, &layers, &report_layers, &agreement, &calibration);
    let bytes = writer.bytes(&reduced, Some(card))?;
    let model = Model::from_bytes(bytes.clone())?;
    let version = model.metadata().version.clone();
    let report = Report {
        precision: options.precision,
        agreement,
        layers: report_layers,
        bytes: (source.bundle().file_size(), bytes.len()),
        calibration,
        version,
    };
    Ok(Quantized { bytes, model, report })
}

/// The `quantization` section of the written manifest.
fn quantization_card(
    precision: Precision,
    source: &Model,
    layers: &[Layer],
    report: &[LayerReport],
    agreement: &Agreement,
    calibration: &str,
) -> Quantization {
    let weights = layers
        .iter()
        .zip(report)
        .filter(|(_, r)| r.reduced)
        .map(|(l, _)| (l.weight.clone(), precision.scheme(l.kind).to_string()))
        .collect();
    let card = source.metadata();
    Quantization {
        scheme: precision.name().into(),
        accuracy: agreement.to_map(),
        weights,
        activations: Some(
            match precision {
                Precision::Int8 => "u8 per row, scale and zero point computed at run time",
                Precision::F16 => "f32",
                Precision::Bf16 => "rounded to bf16 at the reduced Linear layers",
            }
            .into(),
        ),
        source: Some(format!("{}@{}", card.name, card.version)),
        calibration: Some(calibration.into()),
        layers: report
            .iter()
            .filter_map(|r| {
                let s = r.sensitivity.as_ref()?;
                Some(LayerAccuracy {
                    node: r.node.clone(),
                    weight: r.weight.clone(),
                    reduced: r.reduced,
                    min_cosine: s.min_cosine,
                    mean_cosine: s.mean_cosine,
                    max_abs_error: s.max_abs_error,
                })
            })
            .collect(),
    }
}

/// The `Linear` layers and `Gather` tables whose weight is a stored f32 tensor read by that
/// node alone (a shared weight stays f32).
fn reducible_layers(source: &Model) -> Result<Vec<Layer>> {
    let manifest = source.manifest();
    let bundle = source.bundle();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for node in &manifest.graph.nodes {
        for input in &node.inputs {
            *uses.entry(input.as_str()).or_default() += 1;
        }
    }
    let mut layers = Vec::new();
    for (index, node) in manifest.graph.nodes.iter().enumerate() {
        let (kind, operand) = match node.op.as_str() {
            "Linear" => (LayerKind::Linear, 1),
            "Gather" => (LayerKind::Table, 0),
            _ => continue,
        };
        let Some(weight) = node.inputs.get(operand) else { continue };
        let Some(entry) = bundle.tensor_entries().get(weight) else { continue };
        if entry.dtype != DType::F32 || uses.get(weight.as_str()) != Some(&1) {
            continue;
        }
        let (rows, cols) =
            match (node.attrs.get("out_features").and_then(|v| v.as_u64()), entry.shape.as_slice()) {
                (Some(m), [_, k, _]) if kind == LayerKind::Linear => (m as usize, *k),
                (_, [r, c]) => (*r, *c),
                _ => continue,
            };
        if kind == LayerKind::Linear && cols > qgemm::MAX_K {
            continue;
        }
        let name = node.name.clone().unwrap_or_else(|| format!("{}_{index}", node.op));
        layers.push(Layer { node: index, name, weight: weight.clone(), kind, rows, cols });
    }
    Ok(layers)
}

/// Builds candidate bundles: the source's tensors with a chosen set of layers reduced.
struct Writer<'a> {
    source: &'a Model,
    layers: &'a [Layer],
    /// The largest `|x|` of each input column of each linear layer on the calibration data.
    input_max: &'a BTreeMap<String, Vec<f32>>,
    precision: Precision,
    version: String,
    /// Each layer's reduced tensors (the weight, and int8 scales), made on first use.
    reduced: Vec<Option<Vec<(String, TensorData)>>>,
}

impl<'a> Writer<'a> {
    fn new(
        source: &'a Model,
        layers: &'a [Layer],
        input_max: &'a BTreeMap<String, Vec<f32>>,
        options: &QuantizeOptions,
    ) -> Result<Writer<'a>> {
        let card = source.metadata();
        let version = match &options.version {
            Some(v) => v.clone(),
            None => {
                let base = card.version.split('+').next().unwrap_or(&card.version);
                format!("{base}+{}", options.precision.name())
            }
        };
        if !crate::version::is_semver(&version) {
            return Err(Error::usage(format!("version `{version}` is not semver MAJOR.MINOR.PATCH")));
        }
        for layer in layers {
            for name in [scale_name(&layer.weight), input_scale_name(&layer.weight)] {
                if options.precision == Precision::Int8
                    && source.bundle().tensor_entries().contains_key(&name)
                {
                    return Err(Error::usage(format!("the bundle already has a tensor named `{name}`")));
                }
            }
        }
        let reduced = vec![None; layers.len()];
        Ok(Writer { source, layers, input_max, precision: options.precision, version, reduced })
    }

    /// The bytes of the source with the layers in `set` reduced; `card` is the quantization
    /// section of the final bundle (candidates carry none).
    fn bytes(&mut self, set: &BTreeSet<usize>, card: Option<Quantization>) -> Result<Vec<u8>> {
        let bundle = self.source.bundle();
        let mut manifest: Manifest = self.source.manifest().clone();
        let replaced: BTreeSet<&str> = set.iter().map(|&i| self.layers[i].weight.as_str()).collect();
        let mut tensors = Vec::with_capacity(bundle.tensor_entries().len() + set.len());
        for name in bundle.tensor_entries().keys() {
            if replaced.contains(name.as_str()) {
                continue;
            }
            let tensor =
                bundle.tensor_data(name).ok_or_else(|| Error::usage(format!("tensor `{name}` vanished")))?;
            tensors.push((name.clone(), tensor));
        }
        for &i in set {
            if self.reduced[i].is_none() {
                self.reduced[i] = Some(self.reduce(&self.layers[i])?);
            }
            tensors.extend(self.reduced[i].iter().flatten().cloned());
            let layer = &self.layers[i];
            let attrs = &mut manifest.graph.nodes[layer.node].attrs;
            if layer.kind == LayerKind::Linear {
                attrs.remove("out_features");
                attrs.insert("weight_layout".into(), "rows".into());
            }
            if self.precision == Precision::Int8 {
                attrs.insert("weight_scale".into(), scale_name(&layer.weight).into());
                if self.reduced[i].iter().flatten().any(|(n, _)| *n == input_scale_name(&layer.weight)) {
                    attrs.insert("input_scale".into(), input_scale_name(&layer.weight).into());
                }
            }
        }
        let card_fields = &mut manifest.model;
        card_fields.parent = Some(format!("{}@{}", card_fields.name, card_fields.version));
        card_fields.version = self.version.clone();
        manifest.quantization = card
            .or_else(|| Some(Quantization { scheme: self.precision.name().into(), ..Quantization::f32() }));
        to_bytes(&manifest, &tensors)
    }

    /// The tensors that replace `layer`'s weight.
    fn reduce(&self, layer: &Layer) -> Result<Vec<(String, TensorData)>> {
        let bundle = self.source.bundle();
        let view = bundle
            .tensor(&layer.weight)
            .ok_or_else(|| Error::usage(format!("tensor `{}` vanished", layer.weight)))?;
        let mut w = view.to_f32_vec()?;
        if view.shape.len() == 3 {
            w = packed::unpack(&w, layer.rows, layer.cols);
        }
        let (rows, cols) = (layer.rows, layer.cols);
        let bad = |e: String| Error::usage(format!("`{}`: {e}", layer.weight));
        Ok(match self.precision {
            Precision::Int8 => {
                let smoothing = match (layer.kind, self.input_max.get(&layer.name)) {
                    (LayerKind::Linear, Some(x_max)) if x_max.len() == cols => {
                        Some(smooth(&mut w, x_max, cols))
                    }
                    _ => None,
                };
                let (q, scales) = qgemm::quantize_weight(&w, rows, cols).map_err(bad)?;
                let bytes = q.iter().map(|&v| v as u8).collect();
                let mut out = vec![
                    (layer.weight.clone(), TensorData::new(DType::I8, vec![rows, cols], bytes)?),
                    (scale_name(&layer.weight), TensorData::from_f32(vec![rows], &scales)?),
                ];
                if let Some(input_scale) = smoothing {
                    out.push((
                        input_scale_name(&layer.weight),
                        TensorData::from_f32(vec![cols], &input_scale)?,
                    ));
                }
                out
            }
            Precision::F16 | Precision::Bf16 => {
                let (kind, dtype) = match self.precision {
                    Precision::F16 => (Half::F16, DType::F16),
                    _ => (Half::Bf16, DType::BF16),
                };
                if let Some(bad_at) = w.iter().position(|v| !v.is_finite()) {
                    return Err(bad(format!("value {bad_at} is not finite")));
                }
                let bits = HalfWeight::round(&w, kind);
                let bytes = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
                vec![(layer.weight.clone(), TensorData::new(dtype, vec![rows, cols], bytes)?)]
            }
        })
    }
}

/// How far the calibration moves each input column's range into the weight (SmoothQuant's
/// migration strength: 0.5 splits it evenly between activations and weights; on MiniLM 0.4 and
/// 0.65 gave lower held-out cosines).
const SMOOTHING: f32 = 0.5;

/// Balances an int8 layer's input columns against its weight columns: column `p` of the
/// weight `w` (`[rows, cols]`) is multiplied by `s_p = x_max_p^α / w_max_p^(1−α)` and the
/// returned input scales are `1 / s_p`, so `x · wᵀ` is unchanged while a column whose
/// activations run far larger than the rest (LayerNorm outputs have a few) no longer sets
/// every row's quantization step alone. Columns never seen non-zero keep `s = 1`.
fn smooth(w: &mut [f32], x_max: &[f32], cols: usize) -> Vec<f32> {
    let mut w_max = vec![0f32; cols];
    for row in w.chunks_exact(cols) {
        for (m, v) in w_max.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
    let s: Vec<f32> = x_max
        .iter()
        .zip(&w_max)
        .map(|(&a, &b)| {
            let s = a.powf(SMOOTHING) / b.powf(1.0 - SMOOTHING);
            if a > 0.0 && b > 0.0 && s.is_finite() {
                s.clamp(1e-4, 1e4)
            } else {
                1.0
            }
        })
        .collect();
    for row in w.chunks_exact_mut(cols) {
        row.iter_mut().zip(&s).for_each(|(v, s)| *v *= s);
    }
    s.iter().map(|s| 1.0 / s).collect()
}

/// The name of an int8 layer's input scales.
fn input_scale_name(weight: &str) -> String {
    format!("{weight}.input_scale")
}

/// The name of an int8 weight's scales.
fn scale_name(weight: &str) -> String {
    format!("{weight}.scale")
}

/// Checks that a bundle's `quantization.weights` agrees with its tensors: each listed weight
/// is stored in the dtype its scheme names (an int8 one with its scales beside it, named by the
/// node that reads it), and every I8, F16 or BF16 weight of a `Linear` or `Gather` is listed.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let bundle = ingot::Bundle::from_bytes(ingot::testing::mlp_bundle()?)?;
/// ingot::quantize::check_scheme(&bundle)?;
/// # Ok(()) }
/// ```
pub fn check_scheme(bundle: &crate::Bundle) -> Result<()> {
    let manifest = bundle.manifest();
    let listed = manifest.quantization.as_ref().map(|q| q.weights.clone()).unwrap_or_default();
    let bad = |detail: String| Error::manifest("quantization.weights", detail);
    for (weight, scheme) in &listed {
        let entry = bundle
            .tensor_entries()
            .get(weight)
            .ok_or_else(|| bad(format!("`{weight}` is listed as {scheme} but is not in the file")))?;
        let want = match scheme.as_str() {
            "int8-per-channel" | "int8-per-row" => DType::I8,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            "f32" => DType::F32,
            other => return Err(bad(format!("`{weight}`: unknown scheme `{other}`"))),
        };
        if entry.dtype != want {
            return Err(bad(format!(
                "`{weight}` is listed as {scheme} but stored as {}",
                entry.dtype.name()
            )));
        }
    }
    for node in &manifest.graph.nodes {
        let operand = match node.op.as_str() {
            "Linear" => 1,
            "Gather" => 0,
            _ => continue,
        };
        let Some(weight) = node.inputs.get(operand) else { continue };
        let Some(entry) = bundle.tensor_entries().get(weight) else { continue };
        let scale = node.attrs.get("weight_scale").and_then(|v| v.as_str());
        match (entry.dtype, scale) {
            (DType::I8 | DType::F16 | DType::BF16, _) if !listed.contains_key(weight) => {
                return Err(bad(format!("{} weight `{weight}` is not listed", entry.dtype.name())))
            }
            (DType::I8, Some(scale)) => {
                let scheme = if operand == 1 { "int8-per-channel" } else { "int8-per-row" };
                if listed.get(weight).map(String::as_str) != Some(scheme) {
                    return Err(bad(format!("`{weight}` of a {} node must be listed as {scheme}", node.op)));
                }
                let scales = bundle
                    .tensor(scale)
                    .ok_or_else(|| bad(format!("scales `{scale}` of `{weight}` are not in the file")))?
                    .to_f32_vec()?;
                if let Some(row) = scales.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(bad(format!("scale {row} of `{weight}` is not a positive number")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
