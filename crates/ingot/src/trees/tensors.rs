//! A [`TreeEnsemble`] as one `TreeEnsemble` graph node and its tensors, and back
//! (docs/format.md §4, `TreeEnsemble`).
//!
//! Tensors, named `<prefix>.<part>`:
//! - `nodes` I32 `[N, 5]`: feature (−1 for a leaf), left, right, flags, and the leaf row of a
//!   leaf or the category set of a categorical split. Flags: 1 missing goes left, 2
//!   categorical, 4 zero is missing, 8 NaN reads as zero.
//! - `thresholds` F64 (or F32) `[N]`.
//! - `leaves` F64 (or F32) `[L, W]`.
//! - `trees` I32 `[T, 2]`: root node, output column (−1: every output).
//! - `category_sets` I32 `[S, 2]` (first word, word count) and `category_bits` I32 `[words]`,
//!   present when a split is categorical.
//!
//! Attributes: `n_outputs`, `comparison` (`le` | `lt` | `le_f64`), `aggregate` (`sum` | `mean`),
//! `base_score` (one number per output).

use std::collections::BTreeMap;

use serde_json::json;

use super::{Aggregate, Comparison, MissingValues, Split, Tree, TreeEnsemble, TreeNode};
use crate::error::Result;
use crate::format::{DType, NodeSpec, TensorData, TensorView};

const MISSING_LEFT: i32 = 1;
const CATEGORICAL: i32 = 2;
const ZERO_MISSING: i32 = 4;
const NAN_IS_ZERO: i32 = 8;

/// A tree ensemble ready to go into a manifest: its graph node and the tensors it reads.
#[derive(Debug, Clone)]
pub struct GraphParts {
    /// The `TreeEnsemble` node.
    pub node: NodeSpec,
    /// Its tensors, by name.
    pub tensors: Vec<(String, TensorData)>,
}

fn i32_tensor(shape: Vec<usize>, values: impl IntoIterator<Item = i32>) -> Result<TensorData> {
    TensorData::new(DType::I32, shape, values.into_iter().flat_map(i32::to_le_bytes).collect())
}

fn f64_tensor(shape: Vec<usize>, values: &[f64]) -> Result<TensorData> {
    TensorData::new(DType::F64, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

fn to_i32(v: usize, what: &str) -> std::result::Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("{what} {v} does not fit the file's i32 indices"))
}

impl TreeEnsemble {
    /// The graph node (reading `input`, writing `output`) and tensors (named `prefix.*`) that
    /// store this ensemble; validates it first.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// use ingot::trees::{Aggregate, Comparison, Split, Tree, TreeEnsemble, TreeNode};
    /// let stump = TreeEnsemble {
    ///     n_features: 2, n_outputs: 1, comparison: Comparison::Less, aggregate: Aggregate::Sum,
    ///     base_score: vec![0.5], trees: vec![Tree { root: 0, target: Some(0) }],
    ///     nodes: vec![
    ///         TreeNode::Split(Split::numeric(1, 2.0, 1, 2)),
    ///         TreeNode::Leaf { value: 0 },
    ///         TreeNode::Leaf { value: 1 },
    ///     ],
    ///     leaf_width: 1, leaf_values: vec![-1.0, 1.0], category_sets: vec![],
    /// };
    /// let parts = stump.to_graph("features", "scores", "trees")?;
    /// assert_eq!(parts.node.op, "TreeEnsemble");
    /// assert_eq!(parts.tensors[0].0, "trees.nodes");
    /// # Ok(()) }
    /// ```
    pub fn to_graph(&self, input: &str, output: &str, prefix: &str) -> Result<GraphParts> {
        let bad =
            |detail: String| crate::Error::Graph { node: prefix.into(), op: "TreeEnsemble".into(), detail };
        self.validate().map_err(bad)?;
        let mut nodes = Vec::with_capacity(self.nodes.len() * 5);
        let mut thresholds = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            match node {
                TreeNode::Leaf { value } => {
                    nodes.extend([-1, -1, -1, 0, *value as i32]);
                    thresholds.push(0.0);
                }
                TreeNode::Split(s) => {
                    let mut flags = if s.missing_left { MISSING_LEFT } else { 0 };
                    flags |= match s.missing {
                        MissingValues::Nan => 0,
                        MissingValues::ZeroAndNan => ZERO_MISSING,
                        MissingValues::NanIsZero => NAN_IS_ZERO,
                    };
                    let aux = match s.category_set {
                        Some(c) => {
                            flags |= CATEGORICAL;
                            c as i32
                        }
                        None => -1,
                    };
                    nodes.extend([s.feature as i32, s.left as i32, s.right as i32, flags, aux]);
                    thresholds.push(if s.category_set.is_some() { 0.0 } else { s.threshold });
                }
            }
        }
        let n = self.nodes.len();
        for (what, v) in [("node count", n), ("feature count", self.n_features)] {
            to_i32(v, what).map_err(bad)?;
        }
        let leaves = self.leaf_values.len() / self.leaf_width;
        let trees = self.trees.iter().flat_map(|t| [t.root as i32, t.target.map_or(-1, |c| c as i32)]);
        let mut tensors = vec![
            (format!("{prefix}.nodes"), i32_tensor(vec![n, 5], nodes)?),
            (format!("{prefix}.thresholds"), f64_tensor(vec![n], &thresholds)?),
            (format!("{prefix}.leaves"), f64_tensor(vec![leaves, self.leaf_width], &self.leaf_values)?),
            (format!("{prefix}.trees"), i32_tensor(vec![self.trees.len(), 2], trees)?),
        ];
        if !self.category_sets.is_empty() {
            let mut sets = Vec::with_capacity(self.category_sets.len() * 2);
            let mut bits = Vec::new();
            for set in &self.category_sets {
                sets.extend([to_i32(bits.len(), "category word").map_err(bad)?, set.len() as i32]);
                bits.extend(set.iter().map(|&w| w as i32));
            }
            let count = self.category_sets.len();
            tensors.push((format!("{prefix}.category_sets"), i32_tensor(vec![count, 2], sets)?));
            tensors.push((format!("{prefix}.category_bits"), i32_tensor(vec![bits.len()], bits)?));
        }
        let attrs: BTreeMap<String, serde_json::Value> = [
            ("n_outputs", json!(self.n_outputs)),
            (
                "comparison",
                json!(match self.comparison {
                    Comparison::LessOrEqual => "le",
                    Comparison::Less => "lt",
                    Comparison::LessOrEqualF64 => "le_f64",
                }),
            ),
            (
                "aggregate",
                json!(match self.aggregate {
                    Aggregate::Sum => "sum",
                    Aggregate::Mean => "mean",
                }),
            ),
            ("base_score", json!(self.base_score)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut inputs = vec![input.to_string()];
        inputs.extend(tensors.iter().map(|(name, _)| name.clone()));
        let node = NodeSpec {
            name: Some(prefix.into()),
            op: "TreeEnsemble".into(),
            inputs,
            outputs: vec![output.into()],
            attrs,
        };
        Ok(GraphParts { node, tensors })
    }
}

/// The attributes of a `TreeEnsemble` node, parsed with the graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnsembleAttrs {
    pub(crate) n_outputs: usize,
    pub(crate) comparison: Comparison,
    pub(crate) aggregate: Aggregate,
    pub(crate) base_score: Vec<f64>,
}

impl EnsembleAttrs {
    /// Reads and checks the node's attributes.
    pub(crate) fn parse(attrs: &BTreeMap<String, serde_json::Value>) -> std::result::Result<Self, String> {
        let n_outputs = attrs
            .get("n_outputs")
            .and_then(|v| v.as_u64())
            .and_then(|v| usize::try_from(v).ok())
            .filter(|&v| v > 0 && v <= super::MAX_OUTPUTS)
            .ok_or_else(|| format!("`n_outputs` must be an integer from 1 to {}", super::MAX_OUTPUTS))?;
        let comparison = match attrs.get("comparison").and_then(|v| v.as_str()) {
            Some("le") => Comparison::LessOrEqual,
            Some("lt") => Comparison::Less,
            Some("le_f64") => Comparison::LessOrEqualF64,
            _ => return Err("`comparison` must be `le`, `lt` or `le_f64`".into()),
        };
        let aggregate = match attrs.get("aggregate").and_then(|v| v.as_str()).unwrap_or("sum") {
            "sum" => Aggregate::Sum,
            "mean" => Aggregate::Mean,
            other => return Err(format!("unknown `aggregate` `{other}` (sum, mean)")),
        };
        let base_score = match attrs.get("base_score") {
            None => vec![0.0; n_outputs],
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(|x| x.as_f64()).collect::<Option<Vec<f64>>>())
                .filter(|b| b.len() == n_outputs)
                .ok_or_else(|| format!("`base_score` must be a list of {n_outputs} numbers"))?,
        };
        Ok(EnsembleAttrs { n_outputs, comparison, aggregate, base_score })
    }
}

fn rows<'a>(view: &TensorView<'a>, what: &str, width: usize) -> std::result::Result<usize, String> {
    match (view.dtype, view.shape) {
        (DType::I32, [n, w]) if *w == width => Ok(*n),
        (dtype, shape) => Err(format!("`{what}` must be I32 [n, {width}], got {} {shape:?}", dtype.name())),
    }
}

fn i32s(view: &TensorView<'_>) -> Vec<i32> {
    view.data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn f64s(view: &TensorView<'_>, what: &str) -> std::result::Result<Vec<f64>, String> {
    match view.dtype {
        DType::F64 => Ok(view
            .data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()),
        DType::F32 => Ok(view
            .data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect()),
        other => Err(format!("`{what}` must be F64 or F32, got {}", other.name())),
    }
}

fn index(v: i32, what: &str, i: usize) -> std::result::Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("node {i}: {what} {v} is negative"))
}

/// Rebuilds and validates the ensemble of a `TreeEnsemble` node from its tensors (`nodes`,
/// `thresholds`, `leaves`, `trees`, then optionally `category_sets` and `category_bits`).
pub(crate) fn from_tensors(
    attrs: &EnsembleAttrs,
    n_features: usize,
    tensors: &[TensorView<'_>],
) -> std::result::Result<TreeEnsemble, String> {
    let (nodes, thresholds, leaves, trees) = match tensors {
        [a, b, c, d] | [a, b, c, d, _, _] => (a, b, c, d),
        _ => return Err(format!("takes 4 or 6 stored tensors, got {}", tensors.len())),
    };
    let n = rows(nodes, "nodes", 5)?;
    if thresholds.shape != [n] {
        return Err(format!("`thresholds` has shape {:?} for {n} nodes", thresholds.shape));
    }
    let leaf_width = match leaves.shape {
        [_, w] => *w,
        other => return Err(format!("`leaves` must be 2-D, got {other:?}")),
    };
    if leaf_width == 0 {
        return Err("`leaves` rows are empty".into());
    }
    let t = rows(trees, "trees", 2)?;
    let thresholds = f64s(thresholds, "thresholds")?;
    let leaf_values = f64s(leaves, "leaves")?;
    let category_sets = match tensors {
        [_, _, _, _, sets, bits] => {
            let s = rows(sets, "category_sets", 2)?;
            if bits.dtype != DType::I32 || bits.shape.len() != 1 {
                return Err(format!("`category_bits` must be I32 [words], got {:?}", bits.shape));
            }
            let bits = i32s(bits);
            let sets = i32s(sets);
            (0..s)
                .map(|k| {
                    let (start, len) = (sets[2 * k], sets[2 * k + 1]);
                    let range = usize::try_from(start)
                        .ok()
                        .zip(usize::try_from(len).ok())
                        .and_then(|(a, l)| Some(a..a.checked_add(l)?))
                        .filter(|r| r.end <= bits.len())
                        .ok_or_else(|| format!("category set {k}: words {start}+{len} of {}", bits.len()))?;
                    Ok(bits[range].iter().map(|&w| w as u32).collect())
                })
                .collect::<std::result::Result<Vec<Vec<u32>>, String>>()?
        }
        _ => Vec::new(),
    };
    let raw = i32s(nodes);
    let mut parsed = Vec::with_capacity(n);
    for (i, (row, &threshold)) in raw.chunks_exact(5).zip(&thresholds).enumerate() {
        let (feature, left, right, flags, aux) = (row[0], row[1], row[2], row[3], row[4]);
        if feature == -1 {
            parsed.push(TreeNode::Leaf { value: index(aux, "leaf row", i)? });
            continue;
        }
        if flags & !(MISSING_LEFT | CATEGORICAL | ZERO_MISSING | NAN_IS_ZERO) != 0 {
            return Err(format!("node {i}: unknown flags {flags:#x}"));
        }
        let missing = match (flags & ZERO_MISSING != 0, flags & NAN_IS_ZERO != 0) {
            (false, false) => MissingValues::Nan,
            (true, false) => MissingValues::ZeroAndNan,
            (false, true) => MissingValues::NanIsZero,
            (true, true) => return Err(format!("node {i}: zero cannot be both missing and NaN's stand-in")),
        };
        parsed.push(TreeNode::Split(Split {
            feature: index(feature, "feature", i)?,
            threshold,
            left: index(left, "left child", i)?,
            right: index(right, "right child", i)?,
            missing_left: flags & MISSING_LEFT != 0,
            missing,
            category_set: if flags & CATEGORICAL != 0 { Some(index(aux, "category set", i)?) } else { None },
        }));
    }
    let trees = i32s(trees)
        .chunks_exact(2)
        .enumerate()
        .map(|(k, r)| {
            let root = u32::try_from(r[0]).map_err(|_| format!("tree {k}: root {} is negative", r[0]))?;
            let target = match r[1] {
                -1 => None,
                c => Some(u32::try_from(c).map_err(|_| format!("tree {k}: output {c} is negative"))?),
            };
            Ok(Tree { root, target })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    debug_assert_eq!(trees.len(), t);
    let ensemble = TreeEnsemble {
        n_features,
        n_outputs: attrs.n_outputs,
        comparison: attrs.comparison,
        aggregate: attrs.aggregate,
        base_score: attrs.base_score.clone(),
        trees,
        nodes: parsed,
        leaf_width,
        leaf_values,
        category_sets,
    };
    ensemble.validate()?;
    Ok(ensemble)
}
