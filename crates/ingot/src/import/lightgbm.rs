//! LightGBM text model (`Booster.save_model`, the CLI's `output_model`) → `.ingot` tabular
//! bundle of one `TreeEnsemble` node.
//!
//! Read: the header (`num_class`, `num_tree_per_iteration`, `max_feature_idx`, `objective`,
//! `feature_names`, `average_output`, `tree_sizes`), every `Tree=i` block up to `end of trees`,
//! and the `pandas_categorical` line after them. LightGBM numbers a tree's internal nodes
//! `0..num_leaves-1` (root 0) and its leaves `~0..~(num_leaves-1)`; each tree is renumbered in
//! pre-order into the one node array of [`TreeEnsemble`], which also proves that it is a tree
//! (no cycle, one parent per node, every node reached).
//!
//! Splits follow LightGBM's `NumericalDecision` and `CategoricalDecision` (include/LightGBM/
//! tree.h, 4.x): `x <= threshold` goes left; in `decision_type`, 1 is categorical, 2
//! `default_left` and bits 2–3 the missing type — None (NaN reads as 0), Zero (NaN and
//! |x| ≤ 1e-35 take the default direction) or NaN (NaN takes it). A categorical split sends the
//! truncated value left when it is in the split's bitset; NaN, negative values and values past
//! the bitset go right whatever the missing type (LightGBM ≥ 3.3 tests NaN first, and a value
//! too large for an `int` casts to `INT_MIN` on x86, so it is negative there too).
//!
//! Objectives: `binary` (logistic; a `sigmoid:k` other than 1 is folded into the leaf values),
//! `multiclass` (softmax), `regression`, `regression_l1`, `huber`, `fair`, `quantile`, `mape`,
//! `lambdarank` and `rank_xendcg` (identity), `poisson`, `gamma` and `tweedie` (exp),
//! `cross_entropy` (logistic), and no objective line (a custom objective: raw scores, as
//! LightGBM predicts them). Refused: `multiclassova`, `cross_entropy_lambda`, `regression
//! sqrt`, linear trees and a `pandas_categorical` mapping. A random forest (`average_output`)
//! averages over iterations, as LightGBM does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use super::TreeImportOptions;
use crate::error::{Error, Result};
use crate::format::{Activation, Link, Manifest, ModelCard, Producer, TensorData};
use crate::trees::{
    tabular_bundle, Aggregate, Comparison, Head, MissingValues, Split, Tree, TreeEnsemble, TreeNode,
    MAX_NODES, MAX_OUTPUTS, MAX_TREES,
};
use crate::value::Value;

/// `decision_type` bits (LightGBM's `kCategoricalMask`, `kDefaultLeftMask`); bits 2–3 hold the
/// missing type.
const CATEGORICAL: i64 = 1;
const DEFAULT_LEFT: i64 = 2;

/// Imports a LightGBM text model file; the model name defaults to the file name without its
/// extension.
///
/// ```no_run
/// # fn main() -> ingot::Result<()> {
/// use ingot::import::{lightgbm, TreeImportOptions};
/// let (manifest, tensors) = lightgbm::import_file("model.txt".as_ref(), &TreeImportOptions::default())?;
/// ingot::save("model.ingot", &manifest, &tensors)?;
/// # Ok(()) }
/// ```
pub fn import_file(
    path: &Path,
    options: &TreeImportOptions,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("model.txt");
    import(&text, &model_name(stem), file, options)
}

/// Imports a LightGBM text model held in memory; `default_name` is the model name unless
/// `options.name` is set.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::import::{lightgbm, TreeImportOptions};
/// // One split, x <= 0.5 → 1, else 3; missing type None reads NaN as 0.
/// let text = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
///     max_feature_idx=0\nobjective=regression\nfeature_names=x\nfeature_infos=[0:1]\n\n\
///     Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0.5\ndecision_type=2\n\
///     left_child=-1\nright_child=-2\nleaf_value=1 3\n\nend of trees\n";
/// let (manifest, tensors) = lightgbm::import_str(text, "stump", &TreeImportOptions::default())?;
/// let model = ingot::Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors)?)?;
/// let p = model.predict_dense(&[0.2, 0.7, f32::NAN], 3, 1)?;
/// assert_eq!(p.values.unwrap().as_slice(), &[1.0, 3.0, 1.0]);
///
/// let bad = text.replace("right_child=-2", "right_child=-9");
/// let err = lightgbm::import_str(&bad, "stump", &TreeImportOptions::default()).unwrap_err();
/// assert!(err.to_string().contains("right child ~8 is not a leaf of 2"), "{err}");
/// # Ok(()) }
/// ```
pub fn import_str(
    text: &str,
    default_name: &str,
    options: &TreeImportOptions,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    import(text, default_name, "lightgbm", options)
}

/// A file stem as a model name, `[A-Za-z0-9._-]{1,128}`.
fn model_name(stem: &str) -> String {
    let clean: String = stem
        .chars()
        .take(128)
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    if clean.is_empty() {
        "model".into()
    } else {
        clean
    }
}

/// The error for `place` (a header key, `Tree=3`, `Tree=3 node 4`) of the model from `source`.
fn bad(source: &str, place: impl Display, detail: impl Into<String>) -> Error {
    Error::manifest(format!("{source} {place}"), detail)
}

/// At most 40 characters of `s`, for messages.
fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// One `Tree=i` block: its `key=value` lines.
struct Block<'a> {
    keys: BTreeMap<&'a str, &'a str>,
}

/// The text split into its header, tree blocks and what follows `end of trees`.
struct Parsed<'a> {
    header: BTreeMap<&'a str, &'a str>,
    trees: Vec<Block<'a>>,
    pandas_categorical: Option<&'a str>,
}

fn parse<'a>(text: &'a str, source: &str) -> Result<Parsed<'a>> {
    let mut lines = text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()).peekable();
    match lines.next() {
        Some((_, "tree")) => {}
        first => {
            return Err(bad(
                source,
                "line 1",
                format!(
                    "not a LightGBM text model: it starts with `{}`, not `tree` (the file \
                     `Booster.save_model` writes; JSON dumps are not read)",
                    excerpt(first.map_or("", |(_, l)| l))
                ),
            ))
        }
    }
    // Checked first: a file cut anywhere before this line is reported as truncated rather
    // than by whatever half line the cut left.
    if !text.lines().any(|l| l.trim() == "end of trees") {
        return Err(bad(source, "end of trees", "no `end of trees` line: the file is truncated"));
    }
    let mut header = BTreeMap::new();
    while let Some(&(_, line)) = lines.peek() {
        if line.starts_with("Tree=") || line == "end of trees" {
            break;
        }
        lines.next();
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        header.insert(key.trim(), value.trim());
    }
    let mut trees: Vec<Block<'a>> = Vec::new();
    while let Some((n, line)) = lines.next() {
        if line == "end of trees" {
            break;
        }
        let Some(id) = line.strip_prefix("Tree=") else {
            return Err(bad(
                source,
                format_args!("line {}", n + 1),
                format!("expected `Tree=…` or `end of trees`, found `{}`", excerpt(line)),
            ));
        };
        if id.trim().parse::<usize>().ok() != Some(trees.len()) {
            return Err(bad(
                source,
                format_args!("line {}", n + 1),
                format!("`Tree={}` where `Tree={}` should come next", excerpt(id), trees.len()),
            ));
        }
        if trees.len() == MAX_TREES {
            return Err(bad(source, "trees", format!("more than {MAX_TREES} trees")));
        }
        let mut keys = BTreeMap::new();
        while let Some(&(n, line)) = lines.peek() {
            if line.starts_with("Tree=") || line == "end of trees" {
                break;
            }
            lines.next();
            let Some((key, value)) = line.split_once('=') else {
                return Err(bad(
                    source,
                    format_args!("Tree={} (line {})", trees.len(), n + 1),
                    format!("`{}` is not a `key=value` line", excerpt(line)),
                ));
            };
            keys.insert(key.trim(), value.trim());
        }
        trees.push(Block { keys });
    }
    let pandas_categorical = lines.find_map(|(_, l)| l.strip_prefix("pandas_categorical:")).map(str::trim);
    Ok(Parsed { header, trees, pandas_categorical })
}

/// Parses one number of a header key or tree array.
fn number<T: FromStr>(source: &str, place: impl Display, key: &str, s: &str) -> Result<T> {
    s.parse().map_err(|_| bad(source, place, format!("{key} `{}` is not a valid number here", excerpt(s))))
}

/// What the scores mean: the head and the factor folded into the leaf values.
struct Objective {
    head: Head,
    /// LightGBM's `sigmoid:k` of a binary model (1 otherwise).
    leaf_scale: f64,
    /// A short description for the model card.
    kind: &'static str,
}

fn objective(source: &str, spec: Option<&str>, num_class: usize, per_iteration: usize) -> Result<Objective> {
    let Some(spec) = spec else {
        // No objective line: a custom objective. LightGBM predicts the raw scores.
        let targets = per_iteration;
        let kind = if targets == 1 { "regressor (raw scores)" } else { "model (raw scores)" };
        return Ok(Objective { head: Head::Regressor { link: Link::Identity }, leaf_scale: 1.0, kind });
    };
    let mut words = spec.split_whitespace();
    let name = words.next().unwrap_or("");
    let params: BTreeMap<&str, &str> = words.filter_map(|w| w.split_once(':')).collect();
    let has_sqrt = spec.split_whitespace().any(|w| w == "sqrt");
    let single = |kind| {
        if per_iteration == 1 {
            Ok(kind)
        } else {
            Err(bad(
                source,
                "num_tree_per_iteration",
                format!("{per_iteration} trees per iteration for objective `{name}` (expected 1)"),
            ))
        }
    };
    let regressor = |link, kind| -> Result<Objective> {
        Ok(Objective { head: Head::Regressor { link }, leaf_scale: 1.0, kind: single(kind)? })
    };
    match name {
        "binary" => {
            let sigmoid = match params.get("sigmoid") {
                Some(s) => number::<f64>(source, "objective", "sigmoid", s)?,
                None => 1.0,
            };
            if !(sigmoid.is_finite() && sigmoid > 0.0) {
                return Err(bad(source, "objective", format!("sigmoid {sigmoid} is not a positive number")));
            }
            if num_class != 1 {
                return Err(bad(
                    source,
                    "num_class",
                    format!("{num_class} for objective `binary` (expected 1)"),
                ));
            }
            Ok(Objective {
                head: Head::Classifier {
                    classes: vec![Value::Number(0.0), Value::Number(1.0)],
                    activation: Activation::Logistic,
                },
                leaf_scale: sigmoid,
                kind: single("binary classifier")?,
            })
        }
        "multiclass" => {
            if let Some(k) = params.get("num_class") {
                if number::<usize>(source, "objective", "num_class", k)? != num_class {
                    return Err(bad(
                        source,
                        "objective",
                        format!("`{}` but num_class={num_class}", excerpt(spec)),
                    ));
                }
            }
            if num_class < 2 || per_iteration != num_class {
                return Err(bad(
                    source,
                    "num_tree_per_iteration",
                    format!("{per_iteration} trees per iteration for multiclass num_class {num_class}"),
                ));
            }
            let classes = (0..num_class).map(|c| Value::Number(c as f64)).collect();
            Ok(Objective {
                head: Head::Classifier { classes, activation: Activation::Softmax },
                leaf_scale: 1.0,
                kind: "multiclass classifier",
            })
        }
        "multiclassova" => Err(Error::Unsupported {
            what: "LightGBM objective `multiclassova`: its probabilities are one sigmoid per class, not \
                   normalised, while Ingot's one-vs-rest logistic normalises them to sum to 1; retrain \
                   with `multiclass` (softmax)"
                .into(),
        }),
        "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" if has_sqrt => {
            Err(Error::Unsupported {
                what: format!(
                    "LightGBM objective `{}` (reg_sqrt: LightGBM squares the score); retrain \
                     without reg_sqrt",
                    excerpt(spec)
                ),
            })
        }
        "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" => {
            regressor(Link::Identity, "regressor")
        }
        "lambdarank" | "rank_xendcg" => regressor(Link::Identity, "ranker"),
        "poisson" | "gamma" | "tweedie" => regressor(Link::Exp, "regressor (log link)"),
        "cross_entropy" => regressor(Link::Logistic, "regressor (logistic link)"),
        other => Err(Error::Unsupported {
            what: format!(
                "LightGBM objective `{}`; the importer reads binary, multiclass, regression, \
                 regression_l1, huber, fair, quantile, mape, poisson, gamma, tweedie, cross_entropy, \
                 lambdarank and rank_xendcg",
                excerpt(other)
            ),
        }),
    }
}

/// The ensemble being assembled, tree after tree.
struct Builder<'s> {
    source: &'s str,
    n_features: usize,
    per_iteration: usize,
    /// Factor applied to every leaf value (`sigmoid`, 1 / iterations of a multiclass forest).
    leaf_scale: f64,
    nodes: Vec<TreeNode>,
    leaf_values: Vec<f64>,
    category_sets: Vec<Vec<u32>>,
    trees: Vec<Tree>,
}

/// The per-internal-node arrays of one tree (all `num_leaves - 1` long) and where its category
/// sets start in [`TreeEnsemble::category_sets`].
struct Arrays {
    features: Vec<i64>,
    thresholds: Vec<f64>,
    decisions: Vec<i64>,
    set_base: usize,
    num_cat: usize,
}

/// The split a child reference of the renumbering stack hangs from.
struct Parent {
    /// Its index in the ensemble's node array.
    new: usize,
    /// Its LightGBM node index, for messages.
    node: usize,
    /// Whether the child is its left one.
    left: bool,
}

/// A tree's key, parsed as whitespace-separated values.
fn array<T: FromStr>(source: &str, t: usize, block: &Block<'_>, key: &str) -> Result<Vec<T>> {
    let Some(text) = block.keys.get(key) else {
        return Err(bad(source, format_args!("Tree={t}"), format!("no `{key}` line")));
    };
    text.split_whitespace()
        .enumerate()
        .map(|(i, s)| number(source, format_args!("Tree={t}"), &format!("{key} value {i}"), s))
        .collect()
}

impl Builder<'_> {
    fn add(&mut self, t: usize, block: &Block<'_>) -> Result<()> {
        let source = self.source;
        let at = format!("Tree={t}");
        let scalar = |key: &str| -> Result<usize> {
            let v = block.keys.get(key).ok_or_else(|| bad(source, &at, format!("no `{key}` line")))?;
            number(source, &at, key, v)
        };
        let num_leaves = scalar("num_leaves")?;
        let num_cat = scalar("num_cat")?;
        if block.keys.get("is_linear").is_some_and(|v| v.trim() != "0") {
            return Err(Error::Unsupported {
                what: format!(
                    "LightGBM Tree={t} is a linear tree (linear_tree=true): its leaves are linear models"
                ),
            });
        }
        let values: Vec<f64> = array(source, t, block, "leaf_value")?;
        if num_leaves == 0 || values.len() != num_leaves {
            return Err(bad(
                source,
                &at,
                format!("leaf_value has {} values for num_leaves {num_leaves}", values.len()),
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(source, &at, format!("leaf_value {i} is {}, not a finite number", values[i])));
        }
        let leaf_base = self.leaf_values.len();
        self.leaf_values.extend(values.iter().map(|v| v * self.leaf_scale));
        let target = Some((t % self.per_iteration) as u32);
        let root = self.index(&at)?;
        self.trees.push(Tree { root, target });
        if num_leaves == 1 {
            self.nodes.push(TreeNode::Leaf { value: self.row(&at, leaf_base)? });
            return Ok(());
        }
        let internal = num_leaves - 1;
        let counted = |key: &str, len: usize| -> Result<()> {
            if len == internal {
                Ok(())
            } else {
                Err(bad(source, &at, format!("{key} has {len} values for num_leaves {num_leaves}")))
            }
        };
        let features: Vec<i64> = array(source, t, block, "split_feature")?;
        counted("split_feature", features.len())?;
        let thresholds: Vec<f64> = array(source, t, block, "threshold")?;
        counted("threshold", thresholds.len())?;
        let decisions: Vec<i64> = if block.keys.contains_key("decision_type") {
            array(source, t, block, "decision_type")?
        } else {
            vec![0; internal]
        };
        counted("decision_type", decisions.len())?;
        let left: Vec<i64> = array(source, t, block, "left_child")?;
        counted("left_child", left.len())?;
        let right: Vec<i64> = array(source, t, block, "right_child")?;
        counted("right_child", right.len())?;
        let set_base = self.category_sets.len();
        if num_cat > 0 {
            let bounds: Vec<usize> = array(source, t, block, "cat_boundaries")?;
            if Some(bounds.len()) != num_cat.checked_add(1) {
                return Err(bad(
                    source,
                    &at,
                    format!(
                        "cat_boundaries has {} values for num_cat {num_cat} (expected num_cat + 1)",
                        bounds.len()
                    ),
                ));
            }
            let words: Vec<u32> = array(source, t, block, "cat_threshold")?;
            for (i, pair) in bounds.windows(2).enumerate() {
                let (start, end) = (pair[0], pair[1]);
                if start > end || end > words.len() {
                    return Err(bad(
                        source,
                        &at,
                        format!(
                            "cat_boundaries {i}..{} = {start}..{end} is not a range of the {} cat_threshold words",
                            i + 1,
                            words.len()
                        ),
                    ));
                }
                self.category_sets.push(words[start..end].to_vec());
            }
        }

        let arrays = Arrays { features, thresholds, decisions, set_base, num_cat };

        // Pre-order renumbering: a stack of LightGBM child references and the split they
        // hang from (none for the root).
        let mut reached_node = vec![false; internal];
        let mut reached_leaf = vec![false; num_leaves];
        let mut stack: Vec<(i64, Option<Parent>)> = vec![(0, None)];
        while let Some((child, parent)) = stack.pop() {
            let new = self.nodes.len();
            let new_index = self.index(&at)?;
            let (place, side) = match &parent {
                Some(p) => {
                    (format!("{at} node {}", p.node), if p.left { "left child" } else { "right child" })
                }
                None => (at.clone(), "root"),
            };
            if child < 0 {
                let leaf = usize::try_from(-(child + 1)).unwrap_or(usize::MAX);
                if leaf >= num_leaves {
                    return Err(bad(source, place, format!("{side} ~{leaf} is not a leaf of {num_leaves}")));
                }
                if std::mem::replace(&mut reached_leaf[leaf], true) {
                    return Err(bad(
                        source,
                        place,
                        format!("{side} ~{leaf} is already the child of another node"),
                    ));
                }
                let value = self.row(&at, leaf_base + leaf)?;
                self.nodes.push(TreeNode::Leaf { value });
            } else {
                let node = usize::try_from(child).unwrap_or(usize::MAX);
                if node >= internal {
                    return Err(bad(
                        source,
                        place,
                        format!("{side} {node} is not one of the {internal} internal nodes"),
                    ));
                }
                if std::mem::replace(&mut reached_node[node], true) {
                    return Err(bad(
                        source,
                        place,
                        format!(
                            "{side} {node} already has a parent (or is the root): the nodes form a cycle or \
                             share a child"
                        ),
                    ));
                }
                let split = self.split(&at, node, &arrays)?;
                self.nodes.push(TreeNode::Split(split));
                stack.push((right[node], Some(Parent { new, node, left: false })));
                stack.push((left[node], Some(Parent { new, node, left: true })));
            }
            if let Some(p) = parent {
                if let Some(TreeNode::Split(s)) = self.nodes.get_mut(p.new) {
                    if p.left {
                        s.left = new_index;
                    } else {
                        s.right = new_index;
                    }
                }
            }
        }
        if let Some(node) = reached_node.iter().position(|r| !r) {
            return Err(bad(source, &at, format!("node {node} is not reachable from the root")));
        }
        if let Some(leaf) = reached_leaf.iter().position(|r| !r) {
            return Err(bad(source, &at, format!("leaf ~{leaf} is not reachable from the root")));
        }
        Ok(())
    }

    /// The index the next node gets, refused past [`MAX_NODES`].
    fn index(&self, at: &str) -> Result<u32> {
        match u32::try_from(self.nodes.len()) {
            Ok(i) if self.nodes.len() < MAX_NODES => Ok(i),
            _ => Err(bad(self.source, at, format!("the model has more than {MAX_NODES} nodes"))),
        }
    }

    /// A leaf row index as stored in a node.
    fn row(&self, at: &str, row: usize) -> Result<u32> {
        u32::try_from(row).map_err(|_| bad(self.source, at, format!("leaf row {row} does not fit u32")))
    }

    /// LightGBM internal node `node` (an index checked against `a`), with placeholder children.
    fn split(&self, at: &str, node: usize, a: &Arrays) -> Result<Split> {
        let place = format!("{at} node {node}");
        let (feature, threshold, decision) = (a.features[node], a.thresholds[node], a.decisions[node]);
        let (set_base, num_cat) = (a.set_base, a.num_cat);
        let feature = match u32::try_from(feature) {
            Ok(f) if (f as usize) < self.n_features => f,
            _ => {
                return Err(bad(
                    self.source,
                    &place,
                    format!(
                        "split_feature {feature} is not one of the {} features (max_feature_idx {})",
                        self.n_features,
                        self.n_features - 1
                    ),
                ))
            }
        };
        if !(0..16).contains(&decision) || (decision >> 2) & 3 == 3 {
            return Err(bad(
                self.source,
                &place,
                format!(
                    "decision_type {decision} is not one LightGBM writes (1 categorical + 2 \
                     default_left + 4 × missing type 0 None, 1 Zero or 2 NaN)"
                ),
            ));
        }
        if decision & CATEGORICAL != 0 {
            // `threshold` holds the index of the split's bitset among the tree's `num_cat`.
            let set = threshold as usize;
            if threshold.fract() != 0.0 || threshold < 0.0 || set >= num_cat {
                return Err(bad(
                    self.source,
                    &place,
                    format!(
                        "categorical threshold {threshold} is not one of the tree's {num_cat} category sets"
                    ),
                ));
            }
            let set = u32::try_from(set_base + set)
                .map_err(|_| bad(self.source, &place, "too many category sets"))?;
            // LightGBM's CategoricalDecision sends NaN, negative values and values past the
            // bitset right for every missing type and ignores `default_left`; Ingot's split
            // sends those to `missing_left`, so it is false, and NaN is what is missing.
            // (A value whose `int` cast overflows is INT_MIN on x86, negative: right as well,
            // and past the bitset in Ingot: right.)
            return Ok(Split {
                feature,
                threshold: 0.0,
                left: 0,
                right: 0,
                missing_left: false,
                missing: MissingValues::Nan,
                category_set: Some(set),
            });
        }
        if threshold.is_nan() {
            return Err(bad(self.source, &place, "threshold is NaN"));
        }
        let missing = match (decision >> 2) & 3 {
            0 => MissingValues::NanIsZero,
            1 => MissingValues::ZeroAndNan,
            _ => MissingValues::Nan,
        };
        Ok(Split {
            feature,
            threshold,
            left: 0,
            right: 0,
            missing_left: decision & DEFAULT_LEFT != 0,
            missing,
            category_set: None,
        })
    }
}

fn import(
    text: &str,
    default_name: &str,
    source: &str,
    options: &TreeImportOptions,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    let name = options.name.clone().unwrap_or_else(|| default_name.to_string());
    if !crate::version::is_model_name(&name) {
        return Err(Error::usage(format!("model name `{}` is not [A-Za-z0-9._-]{{1,128}}", excerpt(&name))));
    }
    if !crate::version::is_semver(&options.version) {
        return Err(Error::usage(format!(
            "model version `{}` is not MAJOR.MINOR.PATCH",
            excerpt(&options.version)
        )));
    }
    let parsed = parse(text, source)?;
    let header = |key: &str| parsed.header.get(key).copied();
    let required =
        |key: &str| header(key).ok_or_else(|| bad(source, key, format!("no `{key}=` line in the header")));
    let num_class: usize = number(source, "num_class", "num_class", required("num_class")?)?;
    let per_iteration: usize = match header("num_tree_per_iteration") {
        Some(v) => number(source, "num_tree_per_iteration", "num_tree_per_iteration", v)?,
        None => num_class,
    };
    if per_iteration == 0 || per_iteration > MAX_OUTPUTS {
        return Err(bad(
            source,
            "num_tree_per_iteration",
            format!("{per_iteration} trees per iteration (1 to {MAX_OUTPUTS})"),
        ));
    }
    let max_feature: usize =
        number(source, "max_feature_idx", "max_feature_idx", required("max_feature_idx")?)?;
    let n_features = max_feature
        .checked_add(1)
        .ok_or_else(|| bad(source, "max_feature_idx", format!("{max_feature} is too large")))?;
    let file_names: Vec<&str> = required("feature_names")?.split_whitespace().collect();
    if file_names.len() != n_features {
        return Err(bad(
            source,
            "feature_names",
            format!("{} names for max_feature_idx {max_feature} ({n_features} features)", file_names.len()),
        ));
    }
    let features: Vec<String> = match &options.feature_names {
        Some(names) if names.len() != n_features => {
            return Err(Error::usage(format!(
                "{} feature names given for a LightGBM model of {n_features} features (max_feature_idx {max_feature})",
                names.len()
            )))
        }
        Some(names) => names.clone(),
        None => file_names.iter().map(|s| s.to_string()).collect(),
    };
    let mut seen = BTreeSet::new();
    if let Some(dup) = features.iter().find(|f| !seen.insert(f.as_str())) {
        return Err(Error::usage(format!(
            "feature name `{}` appears twice; give unique names with --feature-names",
            excerpt(dup)
        )));
    }
    if let Some(mapping) = parsed.pandas_categorical.filter(|p| !matches!(*p, "null" | "[]")) {
        return Err(Error::Unsupported {
            what: format!(
                "LightGBM pandas_categorical mapping `{}`: the model was trained on pandas categories \
                 that the Python package turns into codes before predicting; retrain on integer codes",
                excerpt(mapping)
            ),
        });
    }
    let objective_spec = header("objective");
    let objective = objective(source, objective_spec, num_class, per_iteration)?;
    let n_trees = parsed.trees.len();
    if n_trees == 0 || n_trees % per_iteration != 0 {
        return Err(bad(
            source,
            "trees",
            format!("{n_trees} trees are not a positive number of iterations of {per_iteration} trees"),
        ));
    }
    if let Some(sizes) = header("tree_sizes") {
        let listed = sizes.split_whitespace().count();
        if listed != n_trees {
            return Err(bad(
                source,
                "tree_sizes",
                format!(
                    "the header lists {listed} trees but the file holds {n_trees}: it is truncated or edited"
                ),
            ));
        }
    }
    let iterations = n_trees / per_iteration;
    // LightGBM's random forest divides each output by the iteration count. Aggregate::Mean
    // divides by the tree count: the same for one tree per iteration; with several (multiclass)
    // the leaf values are divided instead.
    let average = parsed.header.contains_key("average_output");
    let (aggregate, leaf_scale) = match (average, per_iteration) {
        (true, 1) => (Aggregate::Mean, objective.leaf_scale),
        (true, _) => (Aggregate::Sum, objective.leaf_scale / iterations as f64),
        (false, _) => (Aggregate::Sum, objective.leaf_scale),
    };
    let mut builder = Builder {
        source,
        n_features,
        per_iteration,
        leaf_scale,
        nodes: Vec::new(),
        leaf_values: Vec::new(),
        category_sets: Vec::new(),
        trees: Vec::with_capacity(n_trees),
    };
    for (t, block) in parsed.trees.iter().enumerate() {
        builder.add(t, block)?;
    }
    let ensemble = TreeEnsemble {
        n_features,
        n_outputs: per_iteration,
        comparison: Comparison::LessOrEqualF64,
        aggregate,
        base_score: vec![0.0; per_iteration],
        trees: builder.trees,
        nodes: builder.nodes,
        leaf_width: 1,
        leaf_values: builder.leaf_values,
        category_sets: builder.category_sets,
    };
    let format_version = header("version").unwrap_or("unknown");
    let card = ModelCard {
        name,
        version: options.version.clone(),
        description: Some(format!(
            "LightGBM {}{} ({n_trees} trees, objective `{}`)",
            if average { "random forest " } else { "" },
            objective.kind,
            objective_spec.map_or("none".to_string(), excerpt),
        )),
        tags: vec!["tabular".into(), "trees".into(), "lightgbm".into()],
        ..ModelCard::default()
    };
    let producer = Producer {
        name: "ingot import lightgbm".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        framework: Some(format!("LightGBM (model format {})", excerpt(format_version))),
    };
    tabular_bundle(&ensemble, &features, objective.head, card, producer)
}
