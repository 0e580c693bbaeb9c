//! `ai.onnx.ml` `TreeEnsembleClassifier` and `TreeEnsembleRegressor` (ai.onnx.ml opsets 1–3)
//! as Ingot's [`TreeEnsemble`] and [`Head`], with onnxruntime's semantics.
//!
//! The node lists every tree's nodes in parallel arrays (`nodes_*`, keyed by tree id and node
//! id) and the leaf weights in another set (`class_*` or `target_*`). onnxruntime reads them so:
//!
//! - A tree's root is the first node listed of each run of equal `nodes_treeids`; every node must
//!   be reachable from it (a tree listed in two runs, an unreachable node, a cycle or a subtree
//!   shared by two parents is refused here). Nodes are renumbered in pre-order, children after
//!   their parent.
//! - A split sends `x` to its true node when `x <= t` (`BRANCH_LEQ`), `x < t`, `x >= t` or
//!   `x > t`, comparing the float32 feature with the threshold; NaN compares false, so it goes to
//!   the false node unless `nodes_missing_value_tracks_true` is 1. `BRANCH_GTE` and `BRANCH_GT`
//!   swap the children of `Less` and `LessOrEqual`; a mix of `<=`-like and `<`-like modes is
//!   brought to `LessOrEqual` by replacing a `<` threshold `t` with the largest float32 below
//!   it ([`f32_cut`]), exact for float32 features. `BRANCH_EQ` and `BRANCH_NEQ` are refused.
//! - Weights attached to a split are ignored, as onnxruntime does; every leaf needs one.
//! - Regressor: `SUM` is `base + Σ trees`, `AVERAGE` is `base + Σ trees / tree count`
//!   ([`Aggregate::Mean`]); `MIN` and `MAX` are refused.
//! - Classifier: per class `base + Σ weights`, then the post-transform, except for two classes,
//!   where onnxruntime has special cases (see `classifier_columns`), reproduced with complement
//!   columns (negated leaf values) where needed. Every case whose probabilities Ingot's
//!   post-processing cannot reproduce exactly is refused with the reason.

use std::collections::{BTreeSet, HashMap};

use super::attrs::{Attrs, PostTransform};
use super::proto::{data_type, NodeProto};
use super::tensor::Data;
use crate::format::{Activation, Link};
use crate::trees::{
    f32_cut, Aggregate, Comparison, Head, MissingValues, Split, Tree, TreeEnsemble, TreeNode, MAX_NODES,
    MAX_OUTPUTS,
};
use crate::value::Value;

/// The attributes of both ops.
const NODE_ATTRIBUTES: &[&str] = &[
    "nodes_treeids",
    "nodes_nodeids",
    "nodes_featureids",
    "nodes_values",
    "nodes_values_as_tensor",
    "nodes_modes",
    "nodes_truenodeids",
    "nodes_falsenodeids",
    "nodes_missing_value_tracks_true",
    "nodes_hitrates",
    "nodes_hitrates_as_tensor",
    "base_values",
    "base_values_as_tensor",
    "post_transform",
];

/// The classifier's own attributes.
const CLASSIFIER_ATTRIBUTES: &[&str] = &[
    "class_treeids",
    "class_nodeids",
    "class_ids",
    "class_weights",
    "class_weights_as_tensor",
    "classlabels_strings",
    "classlabels_int64s",
];

/// The regressor's own attributes.
const REGRESSOR_ATTRIBUTES: &[&str] = &[
    "target_treeids",
    "target_nodeids",
    "target_ids",
    "target_weights",
    "target_weights_as_tensor",
    "n_targets",
    "aggregate_function",
];

/// What a node does, from `nodes_modes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `BRANCH_LEQ`: `x <= t` goes to the true node.
    Leq,
    /// `BRANCH_LT`: `x < t`.
    Lt,
    /// `BRANCH_GTE`: `x >= t`.
    Gte,
    /// `BRANCH_GT`: `x > t`.
    Gt,
    /// `LEAF`.
    Leaf,
}

impl Mode {
    /// Whether the true node becomes the left (comparison-passing) child in Ingot's form.
    fn true_is_left(self) -> bool {
        matches!(self, Mode::Leq | Mode::Lt)
    }

    /// Whether the mode compares strictly (`<`, or `>=` as its negation).
    fn strict(self) -> bool {
        matches!(self, Mode::Lt | Mode::Gte)
    }
}

/// One output column of the ensemble: `constant + Σ coefficient × (leaf weights of class)`.
#[derive(Debug, Clone, PartialEq)]
struct Column {
    /// Added to every row (the base score).
    constant: f64,
    /// (class or target, coefficient).
    terms: Vec<(usize, f64)>,
}

impl Column {
    /// `constant + Σ weights of class`.
    fn class(constant: f64, class: usize) -> Column {
        Column { constant, terms: vec![(class, 1.0)] }
    }

    /// A column that reads no weights.
    fn constant(constant: f64) -> Column {
        Column { constant, terms: Vec::new() }
    }

    /// `a + b × self`.
    fn affine(&self, a: f64, b: f64) -> Column {
        Column {
            constant: a + b * self.constant,
            terms: self.terms.iter().map(|&(k, c)| (k, b * c)).collect(),
        }
    }
}

/// The ensemble and head of an `ai.onnx.ml` `TreeEnsembleClassifier` or `TreeEnsembleRegressor`
/// node reading `n_features` input columns, predicting what onnxruntime predicts (module docs):
/// `predict_row` plus the head's activation or link gives onnxruntime's `probabilities` (or
/// `Y`). Errors name the attribute and index at fault, or the case that cannot be reproduced.
pub(crate) fn tree_ensemble(node: &NodeProto, n_features: usize) -> Result<(TreeEnsemble, Head), String> {
    let classifier = match node.op_type.as_str() {
        "TreeEnsembleClassifier" => true,
        "TreeEnsembleRegressor" => false,
        other => return Err(format!("`{other}` is not a tree ensemble")),
    };
    let attrs = Attrs::of(node);
    let own = if classifier { CLASSIFIER_ATTRIBUTES } else { REGRESSOR_ATTRIBUTES };
    if let Some(name) = attrs.names().find(|n| !NODE_ATTRIBUTES.contains(n) && !own.contains(n)) {
        return Err(format!("attribute `{name}` is not one of {}'s", node.op_type));
    }
    let nodes = Nodes::read(node, &attrs, n_features)?;
    let post = attrs.post_transform()?;
    let base = floats_or_tensor(node, &attrs, "base_values")?;
    let (n_outputs, classes, prefix) = if classifier {
        let strings = attrs.strings("classlabels_strings")?.unwrap_or_default();
        let ints = attrs.ints("classlabels_int64s")?.unwrap_or_default();
        let classes: Vec<Value> = match (strings.is_empty(), ints.is_empty()) {
            (false, true) => strings.into_iter().map(Value::from).collect(),
            (true, false) => ints.into_iter().map(Value::from).collect(),
            (false, false) => {
                return Err("both `classlabels_strings` and `classlabels_int64s` are set".into())
            }
            (true, true) => {
                return Err("neither `classlabels_strings` nor `classlabels_int64s` is set".into())
            }
        };
        if classes.len() < 2 || classes.len() > MAX_OUTPUTS {
            return Err(format!("{} class labels (2 to {MAX_OUTPUTS})", classes.len()));
        }
        (classes.len(), classes, "class")
    } else {
        let n = attrs.int("n_targets")?.ok_or("attribute `n_targets` is missing")?;
        let n = usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_OUTPUTS).contains(n))
            .ok_or_else(|| format!("`n_targets` {n} is not 1 to {MAX_OUTPUTS}"))?;
        (n, Vec::new(), "target")
    };
    let weights = Weights::read(node, &attrs, prefix, n_outputs, &nodes)?;
    let forest = Forest::build(&nodes, &weights, n_outputs, !classifier && n_outputs == 1)?;

    let (columns, aggregate, head) = if classifier {
        let class_one_every_row = forest
            .trees
            .iter()
            .any(|leaves| leaves.iter().all(|&i| weights.of_node[i].iter().any(|&(k, _)| k == 1)));
        let (columns, activation) =
            classifier_columns(post, classes.len(), &base, &weights, class_one_every_row)?;
        (columns, Aggregate::Sum, Head::Classifier { classes, activation })
    } else {
        let aggregate = match attrs.string("aggregate_function")?.as_deref() {
            None | Some("SUM") => Aggregate::Sum,
            Some("AVERAGE") => Aggregate::Mean,
            Some(f @ ("MIN" | "MAX")) => {
                return Err(format!(
                    "`aggregate_function` {f} is not supported (Ingot sums or averages trees)"
                ))
            }
            Some(other) => return Err(format!("unknown `aggregate_function` `{other}`")),
        };
        let (columns, link) = regressor_columns(post, n_outputs, &base)?;
        (columns, aggregate, Head::Regressor { link })
    };
    let ensemble = forest.ensemble(&columns, &weights, n_features, nodes.comparison, aggregate);
    ensemble.validate()?;
    Ok((ensemble, head))
}

/// The `nodes_*` arrays, checked: equal lengths, known modes, features in range, contiguous
/// trees, unique ids, and the comparison every split is expressed in.
struct Nodes {
    /// `nodes_treeids`.
    tree_ids: Vec<i64>,
    /// `nodes_nodeids`.
    node_ids: Vec<i64>,
    /// `nodes_featureids`, checked on splits (0 on leaves).
    features: Vec<u32>,
    /// Split thresholds in the ensemble's comparison.
    thresholds: Vec<f64>,
    /// `nodes_modes`.
    modes: Vec<Mode>,
    /// `nodes_truenodeids`.
    true_ids: Vec<i64>,
    /// `nodes_falsenodeids`.
    false_ids: Vec<i64>,
    /// `nodes_missing_value_tracks_true`: NaN goes to the true node.
    tracks_true: Vec<bool>,
    /// (tree id, node id) → index in the arrays.
    index: HashMap<(i64, i64), usize>,
    /// Index of each tree's root, in listing order.
    roots: Vec<usize>,
    /// The comparison of every split.
    comparison: Comparison,
}

impl Nodes {
    /// Reads and checks the `nodes_*` attributes of a node reading `n_features` inputs.
    fn read(node: &NodeProto, attrs: &Attrs, n_features: usize) -> Result<Nodes, String> {
        let ints = |name: &str| -> Result<Vec<i64>, String> { Ok(attrs.ints(name)?.unwrap_or_default()) };
        let tree_ids = ints("nodes_treeids")?;
        let n = tree_ids.len();
        if n == 0 {
            return Err("`nodes_treeids` is empty: the ensemble has no nodes".into());
        }
        if n > MAX_NODES {
            return Err(format!("{n} nodes (at most {MAX_NODES})"));
        }
        let node_ids = ints("nodes_nodeids")?;
        let feature_ids = ints("nodes_featureids")?;
        let true_ids = ints("nodes_truenodeids")?;
        let false_ids = ints("nodes_falsenodeids")?;
        let mode_names = attrs.strings("nodes_modes")?.unwrap_or_default();
        let values = floats_or_tensor(node, attrs, "nodes_values")?;
        let tracks = ints("nodes_missing_value_tracks_true")?;
        for (name, len) in [
            ("nodes_nodeids", node_ids.len()),
            ("nodes_featureids", feature_ids.len()),
            ("nodes_truenodeids", true_ids.len()),
            ("nodes_falsenodeids", false_ids.len()),
            ("nodes_modes", mode_names.len()),
            ("nodes_values", values.len()),
        ] {
            if len != n {
                return Err(format!("`{name}` holds {len} values for the {n} nodes of `nodes_treeids`"));
            }
        }
        if !tracks.is_empty() && tracks.len() != n {
            return Err(format!(
                "`nodes_missing_value_tracks_true` holds {} values for the {n} nodes of `nodes_treeids`",
                tracks.len()
            ));
        }
        let mut modes = Vec::with_capacity(n);
        for (i, m) in mode_names.iter().enumerate() {
            modes.push(match m.as_str() {
                "BRANCH_LEQ" => Mode::Leq,
                "BRANCH_LT" => Mode::Lt,
                "BRANCH_GTE" => Mode::Gte,
                "BRANCH_GT" => Mode::Gt,
                "LEAF" => Mode::Leaf,
                "BRANCH_EQ" | "BRANCH_NEQ" => {
                    return Err(format!("`nodes_modes[{i}]`: {m} splits are not supported"))
                }
                other => return Err(format!("`nodes_modes[{i}]`: unknown mode `{other}`")),
            });
        }
        let mut tracks_true = vec![false; n];
        for (i, &t) in tracks.iter().enumerate() {
            match t {
                0 => {}
                1 => tracks_true[i] = true,
                other => {
                    return Err(format!("`nodes_missing_value_tracks_true[{i}]` is {other}, not 0 or 1"))
                }
            }
        }
        let mut features = vec![0u32; n];
        for i in (0..n).filter(|&i| modes[i] != Mode::Leaf) {
            let f = feature_ids[i];
            features[i] = u32::try_from(f).ok().filter(|&f| (f as usize) < n_features).ok_or_else(|| {
                format!("`nodes_featureids[{i}]`: feature {f} is not one of the {n_features} inputs")
            })?;
            if values[i].is_nan() {
                return Err(format!("`nodes_values[{i}]`: the threshold is NaN"));
            }
        }

        let mut index = HashMap::with_capacity(n);
        let mut roots = Vec::new();
        let mut seen_trees = BTreeSet::new();
        for i in 0..n {
            if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
                return Err(format!(
                    "`nodes_nodeids[{i}]`: node {} of tree {} is listed twice",
                    node_ids[i], tree_ids[i]
                ));
            }
            if i == 0 || tree_ids[i] != tree_ids[i - 1] {
                if !seen_trees.insert(tree_ids[i]) {
                    return Err(format!(
                        "`nodes_treeids[{i}]`: the nodes of tree {} are not listed together",
                        tree_ids[i]
                    ));
                }
                roots.push(i);
            }
        }

        let splits = || (0..n).filter(|&i| modes[i] != Mode::Leaf);
        let strict = splits().filter(|&i| modes[i].strict()).count();
        let comparison =
            if strict > 0 && strict == splits().count() { Comparison::Less } else { Comparison::LessOrEqual };
        let mut thresholds = values;
        if comparison == Comparison::LessOrEqual {
            for i in splits().filter(|&i| modes[i].strict()) {
                // `x < t` is `x <= c` for the largest float32 c below t, for every float32 x;
                // only t = -inf (where -inf itself would pass) has no such c.
                if thresholds[i] == f64::NEG_INFINITY {
                    return Err(format!(
                        "`nodes_values[{i}]`: a {} split at -inf among <= splits cannot be expressed",
                        mode_names[i]
                    ));
                }
                thresholds[i] = f64::from(f32_cut(thresholds[i], Comparison::Less));
            }
        }
        Ok(Nodes {
            tree_ids,
            node_ids,
            features,
            thresholds,
            modes,
            true_ids,
            false_ids,
            tracks_true,
            index,
            roots,
            comparison,
        })
    }

    /// The index of node `id` of node `i`'s tree, named by `attribute[i]` in errors.
    fn child(&self, i: usize, id: i64, attribute: &str) -> Result<usize, String> {
        let tree = self.tree_ids[i];
        match self.index.get(&(tree, id)) {
            Some(&c) => Ok(c),
            None => Err(format!("`{attribute}[{i}]`: node {id} is not a node of tree {tree}")),
        }
    }

    /// "node N of tree T", for messages.
    fn name(&self, i: usize) -> String {
        format!("node {} of tree {}", self.node_ids[i], self.tree_ids[i])
    }
}

/// The `class_*` or `target_*` arrays: the weights of each node, and what onnxruntime derives
/// from all of them (those on splits included).
struct Weights {
    /// Per node (index in the `nodes_*` arrays): (output, weight) in listing order.
    of_node: Vec<Vec<(usize, f64)>>,
    /// The distinct output ids named.
    ids: BTreeSet<usize>,
    /// No weight is negative (onnxruntime's `weights_are_all_positive_`).
    all_positive: bool,
}

impl Weights {
    /// Reads and checks the `<prefix>_*` attributes against `nodes`, for `n_outputs` outputs.
    fn read(
        node: &NodeProto,
        attrs: &Attrs,
        prefix: &str,
        n_outputs: usize,
        nodes: &Nodes,
    ) -> Result<Weights, String> {
        let ints = |name: &str| -> Result<Vec<i64>, String> { Ok(attrs.ints(name)?.unwrap_or_default()) };
        let (tree_name, node_name, id_name, weight_name) = (
            format!("{prefix}_treeids"),
            format!("{prefix}_nodeids"),
            format!("{prefix}_ids"),
            format!("{prefix}_weights"),
        );
        let tree_ids = ints(&tree_name)?;
        let node_ids = ints(&node_name)?;
        let ids = ints(&id_name)?;
        let values = floats_or_tensor(node, attrs, &weight_name)?;
        for (name, len) in [(&node_name, node_ids.len()), (&id_name, ids.len()), (&weight_name, values.len())]
        {
            if len != tree_ids.len() {
                return Err(format!(
                    "`{name}` holds {len} values for the {} of `{tree_name}`",
                    tree_ids.len()
                ));
            }
        }
        let mut weights = Weights {
            of_node: vec![Vec::new(); nodes.modes.len()],
            ids: BTreeSet::new(),
            all_positive: values.iter().all(|&w| w >= 0.0),
        };
        for j in 0..tree_ids.len() {
            let i = *nodes.index.get(&(tree_ids[j], node_ids[j])).ok_or_else(|| {
                format!("`{node_name}[{j}]`: node {} of tree {} does not exist", node_ids[j], tree_ids[j])
            })?;
            let id = usize::try_from(ids[j]).ok().filter(|&k| k < n_outputs).ok_or_else(|| {
                format!("`{id_name}[{j}]`: {} is not one of the {n_outputs} outputs", ids[j])
            })?;
            if !values[j].is_finite() {
                return Err(format!("`{weight_name}[{j}]`: the weight is not finite"));
            }
            weights.ids.insert(id);
            if nodes.modes[i] == Mode::Leaf {
                weights.of_node[i].push((id, values[j]));
            }
        }
        Ok(weights)
    }
}

/// The trees in Ingot's node order, before leaf values are chosen.
struct Forest {
    /// Every tree's nodes, leaves numbered by their row.
    nodes: Vec<TreeNode>,
    /// Each tree's root in `nodes`.
    roots: Vec<u32>,
    /// Per tree: its leaves (indices in the `nodes_*` arrays), in the order of their leaf rows.
    trees: Vec<Vec<usize>>,
}

impl Forest {
    /// Walks every tree from its root, emitting nodes in pre-order; `single` means one output
    /// read from one weight per leaf (onnxruntime reads only a leaf's first weight then).
    fn build(nodes: &Nodes, weights: &Weights, n_outputs: usize, single: bool) -> Result<Forest, String> {
        let n = nodes.modes.len();
        let mut forest = Forest { nodes: Vec::with_capacity(n), roots: Vec::new(), trees: Vec::new() };
        let mut visited = vec![false; n];
        let mut leaf_rows = 0u32;
        for &root in &nodes.roots {
            forest.roots.push(forest.nodes.len() as u32);
            let mut leaves = Vec::new();
            let mut stack: Vec<(usize, Option<(usize, bool)>)> = vec![(root, None)];
            while let Some((i, parent)) = stack.pop() {
                if visited[i] {
                    return Err(format!(
                        "{} is reached twice from the root of its tree (a cycle or a shared subtree)",
                        nodes.name(i)
                    ));
                }
                visited[i] = true;
                let index = forest.nodes.len();
                if let Some((p, is_left)) = parent {
                    if let TreeNode::Split(s) = &mut forest.nodes[p] {
                        if is_left {
                            s.left = index as u32;
                        } else {
                            s.right = index as u32;
                        }
                    }
                }
                let mode = nodes.modes[i];
                if mode == Mode::Leaf {
                    let count = weights.of_node[i].len();
                    if count == 0 {
                        return Err(format!("{} is a leaf without weights", nodes.name(i)));
                    }
                    if single && count > 1 {
                        return Err(format!(
                            "{} holds {count} weights for {n_outputs} target (onnxruntime reads only the first)",
                            nodes.name(i)
                        ));
                    }
                    forest.nodes.push(TreeNode::Leaf { value: leaf_rows });
                    leaf_rows += 1;
                    leaves.push(i);
                    continue;
                }
                let on_true = nodes.child(i, nodes.true_ids[i], "nodes_truenodeids")?;
                let on_false = nodes.child(i, nodes.false_ids[i], "nodes_falsenodeids")?;
                let tracks = nodes.tracks_true[i];
                let (left, right, missing_left) = if mode.true_is_left() {
                    (on_true, on_false, tracks)
                } else {
                    (on_false, on_true, !tracks)
                };
                forest.nodes.push(TreeNode::Split(Split {
                    feature: nodes.features[i],
                    threshold: nodes.thresholds[i],
                    left: 0,
                    right: 0,
                    missing_left,
                    missing: MissingValues::Nan,
                    category_set: None,
                }));
                stack.push((right, Some((index, false))));
                stack.push((left, Some((index, true))));
            }
            forest.trees.push(leaves);
        }
        if let Some(i) = visited.iter().position(|v| !v) {
            return Err(format!("{} is not reachable from the root of its tree", nodes.name(i)));
        }
        Ok(forest)
    }

    /// The ensemble whose outputs are `columns` of the leaf weights: one leaf value per tree
    /// when every tree adds to one column only, a row per leaf otherwise.
    fn ensemble(
        self,
        columns: &[Column],
        weights: &Weights,
        n_features: usize,
        comparison: Comparison,
        aggregate: Aggregate,
    ) -> TreeEnsemble {
        let width = columns.len();
        // Class → the (column, coefficient) pairs that read it.
        let n_classes = weights.ids.iter().next_back().map_or(0, |&k| k + 1);
        let mut readers: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_classes];
        for (c, column) in columns.iter().enumerate() {
            for &(k, coefficient) in &column.terms {
                if let Some(r) = readers.get_mut(k) {
                    r.push((c, coefficient));
                }
            }
        }
        // Per tree, per leaf, the (column, value) pairs of its row; the rest is zero.
        let mut scratch = vec![0f64; width];
        let mut touched = Vec::new();
        let rows: Vec<Vec<Vec<(usize, f64)>>> = self
            .trees
            .iter()
            .map(|leaves| {
                leaves
                    .iter()
                    .map(|&i| {
                        for &(k, w) in &weights.of_node[i] {
                            for &(c, coefficient) in &readers[k] {
                                if !touched.contains(&c) {
                                    touched.push(c);
                                }
                                scratch[c] += coefficient * w;
                            }
                        }
                        touched.drain(..).map(|c| (c, std::mem::take(&mut scratch[c]))).collect()
                    })
                    .collect()
            })
            .collect();
        // The one column each tree adds to, if every tree has one.
        let targets: Option<Vec<u32>> = rows
            .iter()
            .map(|leaves| {
                let mut used = leaves.iter().flatten().filter(|&&(_, v)| v != 0.0).map(|&(c, _)| c);
                let first = used.next().unwrap_or(0);
                used.all(|c| c == first).then_some(first as u32)
            })
            .collect();
        let n_leaves: usize = rows.iter().map(Vec::len).sum();
        let (leaf_width, targets) = match targets {
            Some(t) => (1, t.into_iter().map(Some).collect()),
            None => (width, vec![None; rows.len()]),
        };
        let mut leaf_values = vec![0f64; n_leaves * leaf_width];
        let mut row = 0;
        for (leaves, target) in rows.iter().zip(&targets) {
            for leaf in leaves {
                for &(c, v) in leaf {
                    match target {
                        Some(t) if c == *t as usize => leaf_values[row] = v,
                        Some(_) => {}
                        None => leaf_values[row * width + c] = v,
                    }
                }
                row += 1;
            }
        }
        TreeEnsemble {
            n_features,
            n_outputs: width,
            comparison,
            aggregate,
            base_score: columns.iter().map(|c| c.constant).collect(),
            trees: self.roots.iter().zip(targets).map(|(&root, target)| Tree { root, target }).collect(),
            nodes: self.nodes,
            leaf_width,
            leaf_values,
            category_sets: Vec::new(),
        }
    }
}

/// The score columns and activation that give onnxruntime's `probabilities`, where
/// `S_k` is the sum of the weights of class `k` over the leaves a row reaches and `b` the base
/// values:
///
/// - more than two classes: `transform(b_k + S_k)`; NONE → identity, SOFTMAX → softmax.
///   LOGISTIC is a sigmoid per column without normalisation, which Ingot does not have.
/// - two classes with weights for one class id only (`binary_case_`), class 0, at most one base
///   value `b0`: with `s = b0 + S_0`, `[1 - s, s]` when no weight is negative, whatever the
///   transform; otherwise `[σ(-s), σ(s)]` for LOGISTIC (Ingot's one-column logistic) and
///   `[-s, s]` for NONE and SOFTMAX (no softmax is applied).
/// - two classes, two base values: when class 1 has a weight on every row, onnxruntime scores
///   `[-(b1 + S_0), b1 + S_0]` (ignoring class 1's weights) then transforms; when class 1 has
///   no weights, `transform([b0 + S_0, b1])`.
/// - two classes otherwise: `transform([b0 + S_0, S_1])`, class 1 needing a weight on every row
///   (onnxruntime's output depends on whether a row reached one).
fn classifier_columns(
    post: PostTransform,
    n_classes: usize,
    base: &[f64],
    weights: &Weights,
    class_one_every_row: bool,
) -> Result<(Vec<Column>, Activation), String> {
    if matches!(post, PostTransform::Probit | PostTransform::SoftmaxZero) {
        return Err(format!(
            "post_transform {} is not supported (Ingot has no such activation)",
            transform_name(post)
        ));
    }
    let per_column_sigmoid = || {
        Err(format!(
            "post_transform LOGISTIC over {n_classes} score columns: onnxruntime applies a sigmoid to each \
             column without normalising, which Ingot's logistic activation (normalised) does not reproduce"
        ))
    };
    // transform(columns) with the transform applied to every column.
    let each = |columns: Vec<Column>| match post {
        PostTransform::Softmax => Ok((columns, Activation::Softmax)),
        PostTransform::Logistic => per_column_sigmoid(),
        _ => Ok((columns, Activation::Identity)),
    };
    // transform([-a, a]).
    let pair = |a: Column| match post {
        PostTransform::Logistic => Ok((vec![a], Activation::Logistic)),
        PostTransform::Softmax => Ok((vec![a.affine(0.0, -1.0), a], Activation::Softmax)),
        _ => Ok((vec![a.affine(0.0, -1.0), a], Activation::Identity)),
    };
    let base_ok = if n_classes > 2 { base.is_empty() || base.len() == n_classes } else { base.len() <= 2 };
    if !base_ok {
        return Err(format!("`base_values` holds {} values for {n_classes} classes", base.len()));
    }
    let b = |k: usize| base.get(k).copied().unwrap_or(0.0);
    if n_classes > 2 {
        return each((0..n_classes).map(|k| Column::class(b(k), k)).collect());
    }
    let only = match weights.ids.iter().collect::<Vec<_>>().as_slice() {
        [k] => Some(**k),
        _ => None,
    };
    match (only, base.len()) {
        (Some(1), 2) => pair(Column::constant(b(1))),
        (Some(0), 2) => each(vec![Column::class(b(0), 0), Column::constant(b(1))]),
        (Some(1), _) => each(vec![Column::constant(b(0)), Column::class(0.0, 1)]),
        // Class 0 only (the class ids are below 2).
        (Some(_), _) => {
            let s = Column::class(b(0), 0);
            if weights.all_positive {
                Ok((vec![s.affine(1.0, -1.0), s], Activation::Identity))
            } else if post == PostTransform::Logistic {
                Ok((vec![s], Activation::Logistic))
            } else {
                Ok((vec![s.affine(0.0, -1.0), s], Activation::Identity))
            }
        }
        (None, _) if !class_one_every_row => {
            Err("a binary classifier whose rows may reach no weight of class 1: onnxruntime's probabilities \
             then depend on the row (its binary special case)"
                .into())
        }
        (None, 2) => pair(Column::class(b(1), 0)),
        (None, _) => each(vec![Column::class(b(0), 0), Column::class(0.0, 1)]),
    }
}

/// The value columns and link of a regressor with `n_targets` targets: `b_k + S_k`, through
/// the post-transform when there are several targets (onnxruntime applies none but PROBIT to a
/// single target, where the ONNX specification applies it: refused rather than guessed).
fn regressor_columns(
    post: PostTransform,
    n_targets: usize,
    base: &[f64],
) -> Result<(Vec<Column>, Link), String> {
    if !base.is_empty() && base.len() != n_targets {
        return Err(format!("`base_values` holds {} values for {n_targets} targets", base.len()));
    }
    let link = match post {
        PostTransform::None => Link::Identity,
        PostTransform::Logistic if n_targets > 1 => Link::Logistic,
        PostTransform::Logistic | PostTransform::Softmax if n_targets == 1 => {
            return Err(format!(
                "post_transform {} on a one-target regressor: onnxruntime ignores it, the ONNX \
                 specification applies it",
                transform_name(post)
            ))
        }
        other => {
            return Err(format!("post_transform {} is not supported on a regressor", transform_name(other)))
        }
    };
    let b = |k: usize| base.get(k).copied().unwrap_or(0.0);
    Ok(((0..n_targets).map(|k| Column::class(b(k), k)).collect(), link))
}

/// The name ONNX gives a post-transform, for messages.
fn transform_name(post: PostTransform) -> &'static str {
    match post {
        PostTransform::None => "NONE",
        PostTransform::Logistic => "LOGISTIC",
        PostTransform::Softmax => "SOFTMAX",
        PostTransform::SoftmaxZero => "SOFTMAX_ZERO",
        PostTransform::Probit => "PROBIT",
    }
}

/// A float list given as `name` (floats) or `name_as_tensor` (a float tensor; doubles keep
/// every bit), empty when neither is set; an empty one counts as unset, as in onnxruntime.
fn floats_or_tensor(node: &NodeProto, attrs: &Attrs, name: &str) -> Result<Vec<f64>, String> {
    let tensor_name = format!("{name}_as_tensor");
    let list = attrs.floats(name)?.unwrap_or_default();
    let tensor = match attrs.tensor(&tensor_name)? {
        Some(t) if t.len() > 0 => t,
        _ => return Ok(list.into_iter().map(f64::from).collect()),
    };
    if !list.is_empty() {
        return Err(format!("both `{name}` and `{tensor_name}` are set"));
    }
    let Data::F32(narrow) = tensor.data else {
        return Err(format!("`{tensor_name}` is not a float tensor"));
    };
    // The decoder narrows doubles to float32; read them again at full precision (the decoder
    // has checked their count).
    let stored = node.attribute.iter().find(|a| a.name == tensor_name).and_then(|a| a.t.as_ref());
    Ok(match stored.filter(|t| t.data_type == data_type::DOUBLE) {
        Some(t) if t.raw_data.is_empty() => t.double_data.clone(),
        Some(t) => t
            .raw_data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
        None => narrow.into_iter().map(f64::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::format::{ModelCard, Producer};
    use crate::import::onnx::proto::{attribute_type as ty, AttributeProto, TensorProto};
    use crate::trees::tabular_bundle;

    /// One ONNX node: (tree, id, feature, threshold, mode, true id, false id, missing tracks true).
    type Row = (i64, i64, i64, f32, &'static str, i64, i64, i64);
    /// One leaf weight: (tree, node id, class or target, weight).
    type Weight = (i64, i64, i64, f32);

    /// `x0 <= 0.5` → node 1, else node 2.
    const STUMP: &[Row] = &[
        (0, 0, 0, 0.5, "BRANCH_LEQ", 1, 2, 0),
        (0, 1, 0, 0.0, "LEAF", 0, 0, 0),
        (0, 2, 0, 0.0, "LEAF", 0, 0, 0),
    ];

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: ty::INTS, ints: v.to_vec(), ..Default::default() }
    }

    fn floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: ty::FLOATS, floats: v.to_vec(), ..Default::default() }
    }

    fn strings(name: &str, v: &[&str]) -> AttributeProto {
        let strings = v.iter().map(|s| Bytes::from(s.to_string())).collect();
        AttributeProto { name: name.into(), r#type: ty::STRINGS, strings, ..Default::default() }
    }

    fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: ty::STRING,
            s: Bytes::from(v.to_string()),
            ..Default::default()
        }
    }

    fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: ty::INT, i: v, ..Default::default() }
    }

    fn node_attrs(rows: &[Row]) -> Vec<AttributeProto> {
        vec![
            ints("nodes_treeids", &rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            ints("nodes_nodeids", &rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            ints("nodes_featureids", &rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            floats("nodes_values", &rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            strings("nodes_modes", &rows.iter().map(|r| r.4).collect::<Vec<_>>()),
            ints("nodes_truenodeids", &rows.iter().map(|r| r.5).collect::<Vec<_>>()),
            ints("nodes_falsenodeids", &rows.iter().map(|r| r.6).collect::<Vec<_>>()),
            ints("nodes_missing_value_tracks_true", &rows.iter().map(|r| r.7).collect::<Vec<_>>()),
            floats("nodes_hitrates", &vec![1.0; rows.len()]),
        ]
    }

    fn weight_attrs(prefix: &str, w: &[Weight]) -> Vec<AttributeProto> {
        vec![
            ints(&format!("{prefix}_treeids"), &w.iter().map(|r| r.0).collect::<Vec<_>>()),
            ints(&format!("{prefix}_nodeids"), &w.iter().map(|r| r.1).collect::<Vec<_>>()),
            ints(&format!("{prefix}_ids"), &w.iter().map(|r| r.2).collect::<Vec<_>>()),
            floats(&format!("{prefix}_weights"), &w.iter().map(|r| r.3).collect::<Vec<_>>()),
        ]
    }

    fn proto(op: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto { op_type: op.into(), domain: "ai.onnx.ml".into(), attribute, ..Default::default() }
    }

    /// A regressor of `n_targets` targets; `extra` adds or (by name) replaces attributes.
    fn regressor(rows: &[Row], w: &[Weight], n_targets: i64, extra: Vec<AttributeProto>) -> NodeProto {
        let mut a = node_attrs(rows);
        a.extend(weight_attrs("target", w));
        a.push(int("n_targets", n_targets));
        with(proto("TreeEnsembleRegressor", a), extra)
    }

    /// A classifier with int64 labels `labels`.
    fn classifier(rows: &[Row], w: &[Weight], labels: &[i64], extra: Vec<AttributeProto>) -> NodeProto {
        let mut a = node_attrs(rows);
        a.extend(weight_attrs("class", w));
        a.push(ints("classlabels_int64s", labels));
        with(proto("TreeEnsembleClassifier", a), extra)
    }

    fn with(mut node: NodeProto, extra: Vec<AttributeProto>) -> NodeProto {
        for e in extra {
            node.attribute.retain(|a| a.name != e.name);
            node.attribute.push(e);
        }
        node
    }

    /// Ingot's post-processing of one row's scores.
    fn probabilities(scores: &[f64], activation: Activation) -> Vec<f64> {
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        match activation {
            Activation::Identity => scores.to_vec(),
            Activation::Logistic if scores.len() == 1 => vec![1.0 - sigmoid(scores[0]), sigmoid(scores[0])],
            Activation::Softmax => {
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                e.iter().map(|v| v / sum).collect()
            }
            other => panic!("no probabilities for {other:?} over {} columns", scores.len()),
        }
    }

    fn activation(head: &Head) -> Activation {
        match head {
            Head::Classifier { activation, .. } => *activation,
            Head::Regressor { .. } => panic!("not a classifier"),
        }
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    /// Runs the ensemble as a whole bundle (kernels and post-processing) on `rows`.
    fn run(ensemble: &TreeEnsemble, head: Head, rows: &[Vec<f32>]) -> crate::Prediction {
        let features: Vec<String> = (0..ensemble.n_features).map(|i| format!("x{i}")).collect();
        let card = ModelCard { name: "onnx".into(), version: "1.0.0".into(), ..ModelCard::default() };
        let producer = Producer { name: "test".into(), version: "0".into(), framework: None };
        let (manifest, tensors) = tabular_bundle(ensemble, &features, head, card, producer).unwrap();
        let model = crate::Model::from_bytes(crate::format::to_bytes(&manifest, &tensors).unwrap()).unwrap();
        model.predict_dense(&rows.concat(), rows.len(), ensemble.n_features).unwrap()
    }

    #[test]
    fn regressor_stump_adds_base_values_and_routes_missing_values() {
        let w = [(0, 1, 0, 1.0), (0, 2, 0, 3.0)];
        let node = regressor(STUMP, &w, 1, vec![floats("base_values", &[10.0])]);
        let (e, head) = tree_ensemble(&node, 1).unwrap();
        assert_eq!(head, Head::Regressor { link: Link::Identity });
        assert_eq!((e.comparison, e.aggregate, e.leaf_width), (Comparison::LessOrEqual, Aggregate::Sum, 1));
        assert_eq!(e.predict_row(&[0.5]), vec![11.0]);
        assert_eq!(e.predict_row(&[0.5f32.next_up()]), vec![13.0]);
        assert_eq!(e.predict_row(&[f32::NAN]), vec![13.0]);
        let mut tracked = STUMP.to_vec();
        tracked[0].7 = 1;
        let (e, _) = tree_ensemble(&regressor(&tracked, &w, 1, vec![]), 1).unwrap();
        assert_eq!(e.predict_row(&[f32::NAN]), vec![1.0]);
        assert_eq!(e.predict_row(&[0.7]), vec![3.0]);
        let p = run(&e, Head::Regressor { link: Link::Identity }, &[vec![f32::NAN], vec![0.7]]);
        assert_eq!(p.values.unwrap().as_slice(), &[1.0, 3.0]);
    }

    #[test]
    fn average_divides_by_the_tree_count_then_adds_the_base() {
        let rows = [STUMP, &STUMP.iter().map(|r| (1, r.1, r.2, r.3, r.4, r.5, r.6, r.7)).collect::<Vec<_>>()]
            .concat();
        let w = [(0, 1, 0, 2.0), (0, 2, 0, 4.0), (1, 1, 0, 6.0), (1, 2, 0, 8.0)];
        let extra = vec![floats("base_values", &[1.0]), string("aggregate_function", "AVERAGE")];
        let (e, _) = tree_ensemble(&regressor(&rows, &w, 1, extra), 1).unwrap();
        assert_eq!((e.aggregate, e.trees.len()), (Aggregate::Mean, 2));
        assert_eq!(e.predict_row(&[0.0]), vec![1.0 + (2.0 + 6.0) / 2.0]);
        let extra = vec![string("aggregate_function", "MAX")];
        let err = tree_ensemble(&regressor(&rows, &w, 1, extra), 1).unwrap_err();
        assert!(err.contains("aggregate_function") && err.contains("MAX"), "{err}");
    }

    #[test]
    fn multi_target_regressor_keeps_rows_and_maps_logistic() {
        let w = [(0, 1, 0, 1.0), (0, 1, 1, -1.0), (0, 2, 0, 2.0), (0, 2, 1, 0.5), (0, 2, 1, 0.25)];
        let extra = vec![floats("base_values", &[0.5, 1.0]), string("post_transform", "LOGISTIC")];
        let (e, head) = tree_ensemble(&regressor(STUMP, &w, 2, extra), 1).unwrap();
        assert_eq!(head, Head::Regressor { link: Link::Logistic });
        assert_eq!((e.n_outputs, e.leaf_width), (2, 2));
        assert_eq!(e.predict_row(&[0.0]), vec![1.5, 0.0]);
        assert_eq!(e.predict_row(&[1.0]), vec![2.5, 1.75]);
        // One target: onnxruntime skips LOGISTIC, the specification applies it.
        let extra = vec![string("post_transform", "LOGISTIC")];
        let err = tree_ensemble(&regressor(STUMP, &[w[0], w[2]], 1, extra), 1).unwrap_err();
        assert!(err.contains("one-target"), "{err}");
        // One target, two weights on a leaf: onnxruntime reads only the first.
        let w = [(0, 1, 0, 1.0), (0, 1, 0, 2.0), (0, 2, 0, 3.0)];
        let err = tree_ensemble(&regressor(STUMP, &w, 1, vec![]), 1).unwrap_err();
        assert!(err.contains("node 1 of tree 0") && err.contains("first"), "{err}");
    }

    /// Three stumps on x0, x1, x2, one per class (XGBoost's multiclass layout).
    fn per_class_trees() -> (Vec<Row>, Vec<Weight>) {
        let rows = (0..3)
            .flat_map(|t| {
                STUMP
                    .iter()
                    .map(move |r| (t, r.1, if r.4 == "LEAF" { 0 } else { t }, r.3, r.4, r.5, r.6, r.7))
            })
            .collect();
        let w = (0..3).flat_map(|t| [(t, 1, t, 1.0 + t as f32), (t, 2, t, -0.5 * t as f32)]).collect();
        (rows, w)
    }

    #[test]
    fn three_classes_softmax_over_base_plus_weights() {
        let (rows, w) = per_class_trees();
        let extra = vec![floats("base_values", &[0.5, 0.25, 0.0]), string("post_transform", "SOFTMAX")];
        let (e, head) = tree_ensemble(&classifier(&rows, &w, &[10, 20, 30], extra), 3).unwrap();
        assert_eq!(
            head,
            Head::Classifier {
                classes: vec![10i64.into(), 20i64.into(), 30i64.into()],
                activation: Activation::Softmax
            }
        );
        // One tree per class: a value per leaf, each tree adding to its class.
        assert_eq!(e.leaf_width, 1);
        assert_eq!(e.trees.iter().map(|t| t.target).collect::<Vec<_>>(), vec![Some(0), Some(1), Some(2)]);
        let scores = e.predict_row(&[0.0, 1.0, 0.0]);
        assert_eq!(scores, vec![1.5, 0.25 - 0.5, 3.0]);
        let p = run(&e, head, &[vec![0.0, 1.0, 0.0]]);
        let want = probabilities(&scores, Activation::Softmax);
        close(&p.probabilities.unwrap().as_slice().iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), &want);

        let err = tree_ensemble(
            &classifier(&rows, &w, &[10, 20, 30], vec![string("post_transform", "LOGISTIC")]),
            3,
        )
        .unwrap_err();
        assert!(err.contains("LOGISTIC") && err.contains("normalising"), "{err}");
        let err =
            tree_ensemble(&classifier(&rows, &w, &[10, 20, 30], vec![string("post_transform", "PROBIT")]), 3)
                .unwrap_err();
        assert!(err.contains("PROBIT"), "{err}");
    }

    #[test]
    fn random_forest_leaves_with_every_class_are_rows() {
        // Probabilities already divided by the tree count, every class on every leaf.
        let w = [
            (0, 1, 0, 0.5),
            (0, 1, 1, 0.25),
            (0, 1, 2, 0.25),
            (0, 2, 0, 0.0),
            (0, 2, 1, 0.0),
            (0, 2, 2, 1.0),
        ];
        let node = classifier(STUMP, &w, &[0, 1, 2], vec![strings("classlabels_strings", &[])]);
        let (e, head) = tree_ensemble(&node, 1).unwrap();
        assert_eq!(activation(&head), Activation::Identity);
        assert_eq!((e.leaf_width, e.trees[0].target), (3, None));
        assert_eq!(e.predict_row(&[0.0]), vec![0.5, 0.25, 0.25]);
        assert_eq!(e.predict_row(&[1.0]), vec![0.0, 0.0, 1.0]);
    }

    /// Two stumps on x0 whose leaves hold one weight each, for class 0 (skl2onnx's binary
    /// layout: the weight is the probability of the second class).
    fn binary_forest(leaves: [f32; 4]) -> (Vec<Row>, Vec<Weight>) {
        let rows =
            [STUMP, &STUMP.iter().map(|r| (1, r.1, r.2, 0.25, r.4, r.5, r.6, r.7)).collect::<Vec<_>>()]
                .concat();
        let w = vec![(0, 1, 0, leaves[0]), (0, 2, 0, leaves[1]), (1, 1, 0, leaves[2]), (1, 2, 0, leaves[3])];
        (rows, w)
    }

    #[test]
    fn binary_random_forest_gets_a_complement_column() {
        let (rows, w) = binary_forest([0.1, 0.4, 0.05, 0.3]);
        let node = with(
            classifier(&rows, &w, &[0, 1], vec![]),
            vec![strings("classlabels_strings", &["no", "yes"])],
        );
        let node = with(node, vec![ints("classlabels_int64s", &[])]);
        let (e, head) = tree_ensemble(&node, 1).unwrap();
        assert_eq!(
            head,
            Head::Classifier { classes: vec!["no".into(), "yes".into()], activation: Activation::Identity }
        );
        // onnxruntime: all weights positive → [1 - s, s], whatever the transform.
        for (x, s) in [(0.0f32, 0.1 + 0.05), (0.3, 0.1 + 0.3), (1.0, 0.4 + 0.3)] {
            close(&e.predict_row(&[x]), &[1.0 - s, s]);
        }
        let p = run(&e, head, &[vec![0.0], vec![1.0]]);
        close(
            &p.probabilities.unwrap().as_slice().iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            &[0.85, 0.15, 0.3, 0.7],
        );
        assert_eq!(p.labels.unwrap().indices(), &[0, 1]);
        // LOGISTIC does not change it.
        let (e, head) = tree_ensemble(&with(node, vec![string("post_transform", "LOGISTIC")]), 1).unwrap();
        assert_eq!(activation(&head), Activation::Identity);
        close(&e.predict_row(&[1.0]), &[0.3, 0.7]);
    }

    #[test]
    fn binary_boosting_with_one_weight_column() {
        // Mixed signs (onnxmltools' XGBoost layout): a base margin of 0.2 plus the leaves.
        let (rows, w) = binary_forest([-0.5, 0.75, 0.25, -1.0]);
        let base = floats("base_values", &[0.2]);
        let node = classifier(&rows, &w, &[0, 1], vec![base, string("post_transform", "LOGISTIC")]);
        let (e, head) = tree_ensemble(&node, 1).unwrap();
        assert_eq!(activation(&head), Activation::Logistic);
        assert_eq!(e.n_outputs, 1);
        let s = 0.2 - 0.5 + 0.25;
        close(&e.predict_row(&[0.0]), &[s]);
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        close(&probabilities(&e.predict_row(&[0.0]), Activation::Logistic), &[sigmoid(-s), sigmoid(s)]);
        // NONE and SOFTMAX: [-s, s] (onnxruntime applies no softmax to one column).
        for post in ["NONE", "SOFTMAX"] {
            let (e, head) =
                tree_ensemble(&with(node.clone(), vec![string("post_transform", post)]), 1).unwrap();
            assert_eq!(activation(&head), Activation::Identity);
            close(&e.predict_row(&[1.0]), &[-(0.2 + 0.75 - 1.0), 0.2 + 0.75 - 1.0]);
        }
        // All-positive weights and LOGISTIC: onnxruntime writes [1 - s, s], no sigmoid.
        let (rows, w) = binary_forest([0.5, 0.75, 0.25, 1.0]);
        let node = classifier(&rows, &w, &[0, 1], vec![string("post_transform", "LOGISTIC")]);
        let (e, head) = tree_ensemble(&node, 1).unwrap();
        assert_eq!(activation(&head), Activation::Identity);
        close(&e.predict_row(&[0.0]), &[1.0 - 0.75, 0.75]);
    }

    #[test]
    fn binary_with_weights_for_both_classes() {
        let w = [(0, 1, 0, 0.75), (0, 1, 1, 0.25), (0, 2, 0, 0.0), (0, 2, 1, 1.0)];
        let (e, head) = tree_ensemble(&classifier(STUMP, &w, &[0, 1], vec![]), 1).unwrap();
        assert_eq!(activation(&head), Activation::Identity);
        assert_eq!(e.predict_row(&[0.0]), vec![0.75, 0.25]);
        let node = classifier(STUMP, &w, &[0, 1], vec![string("post_transform", "SOFTMAX")]);
        assert_eq!(activation(&tree_ensemble(&node, 1).unwrap().1), Activation::Softmax);
        let node = classifier(STUMP, &w, &[0, 1], vec![string("post_transform", "LOGISTIC")]);
        assert!(tree_ensemble(&node, 1).unwrap_err().contains("LOGISTIC"));
        // Two base values: onnxruntime scores [-(b1 + S0), b1 + S0].
        let node = classifier(STUMP, &w, &[0, 1], vec![floats("base_values", &[0.5, 0.125])]);
        let (e, _) = tree_ensemble(&node, 1).unwrap();
        assert_eq!(e.predict_row(&[0.0]), vec![-0.875, 0.875]);
        // A leaf without a class-1 weight: rows reaching it change onnxruntime's layout.
        let w = [(0, 1, 0, 0.75), (0, 2, 0, 0.0), (0, 2, 1, 1.0)];
        let err = tree_ensemble(&classifier(STUMP, &w, &[0, 1], vec![]), 1).unwrap_err();
        assert!(err.contains("class 1"), "{err}");
    }

    #[test]
    fn gte_and_gt_swap_the_children() {
        let t = 0.3f32;
        let w = [(0, 1, 0, 1.0), (0, 2, 0, 2.0)];
        for (mode, comparison, at_t) in
            [("BRANCH_GTE", Comparison::Less, 1.0), ("BRANCH_GT", Comparison::LessOrEqual, 2.0)]
        {
            let rows = [(0, 0, 0, t, mode, 1, 2, 0), STUMP[1], STUMP[2]];
            let (e, _) = tree_ensemble(&regressor(&rows, &w, 1, vec![]), 1).unwrap();
            assert_eq!(e.comparison, comparison, "{mode}");
            assert_eq!(e.predict_row(&[t]), vec![at_t], "{mode}");
            assert_eq!(e.predict_row(&[t.next_up()]), vec![1.0], "{mode}");
            assert_eq!(e.predict_row(&[t.next_down()]), vec![2.0], "{mode}");
            assert_eq!(e.predict_row(&[f32::NAN]), vec![2.0], "{mode}: NaN takes the false node");
            let tracked = [(0, 0, 0, t, mode, 1, 2, 1), STUMP[1], STUMP[2]];
            let (e, _) = tree_ensemble(&regressor(&tracked, &w, 1, vec![]), 1).unwrap();
            assert_eq!(e.predict_row(&[f32::NAN]), vec![1.0], "{mode}: NaN tracks the true node");
            let p = run(
                &e,
                Head::Regressor { link: Link::Identity },
                &[vec![t], vec![t.next_down()], vec![f32::NAN]],
            );
            assert_eq!(p.values.unwrap().as_slice(), &[at_t as f32, 2.0, 1.0], "{mode}");
        }
    }

    #[test]
    fn mixed_modes_become_less_or_equal() {
        // x0 <= 0.5 ? (x0 < 0.25 ? 1 : 2) : (x0 >= 0.75 ? 3 : 4)
        let rows = [
            (0, 0, 0, 0.5, "BRANCH_LEQ", 1, 2, 0),
            (0, 1, 0, 0.25, "BRANCH_LT", 3, 4, 0),
            (0, 2, 0, 0.75, "BRANCH_GTE", 5, 6, 1),
            (0, 3, 0, 0.0, "LEAF", 0, 0, 0),
            (0, 4, 0, 0.0, "LEAF", 0, 0, 0),
            (0, 5, 0, 0.0, "LEAF", 0, 0, 0),
            (0, 6, 0, 0.0, "LEAF", 0, 0, 0),
        ];
        let w = [(0, 3, 0, 1.0), (0, 4, 0, 2.0), (0, 5, 0, 3.0), (0, 6, 0, 4.0)];
        let (e, _) = tree_ensemble(&regressor(&rows, &w, 1, vec![]), 1).unwrap();
        assert_eq!(e.comparison, Comparison::LessOrEqual);
        let cases = [
            (0.25f32.next_down(), 1.0),
            (0.25, 2.0),
            (0.5, 2.0),
            (0.5f32.next_up(), 4.0),
            (0.75f32.next_down(), 4.0),
            (0.75, 3.0),
            (f32::INFINITY, 3.0),
            (f32::NEG_INFINITY, 1.0),
        ];
        for (x, want) in cases {
            assert_eq!(e.predict_row(&[x]), vec![want], "x = {x}");
        }
        // NaN: false at the root, then tracked to the true node of x0 >= 0.75.
        assert_eq!(e.predict_row(&[f32::NAN]), vec![3.0]);
        // The runtime refuses infinite inputs: run the finite ones.
        let finite = &cases[..6];
        let p = run(
            &e,
            Head::Regressor { link: Link::Identity },
            &finite.iter().map(|c| vec![c.0]).collect::<Vec<_>>(),
        );
        assert_eq!(p.values.unwrap().as_slice(), &finite.iter().map(|c| c.1 as f32).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn double_thresholds_keep_every_bit() {
        let raw: Vec<u8> = [0.1f64, 0.0, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = TensorProto {
            dims: vec![3],
            data_type: data_type::DOUBLE,
            raw_data: raw.into(),
            ..Default::default()
        };
        let tensor = AttributeProto {
            name: "nodes_values_as_tensor".into(),
            r#type: ty::TENSOR,
            t: Some(t),
            ..Default::default()
        };
        let mut node = regressor(STUMP, &[(0, 1, 0, 1.0), (0, 2, 0, 2.0)], 1, vec![]);
        node.attribute.retain(|a| a.name != "nodes_values");
        node.attribute.push(tensor.clone());
        let (e, _) = tree_ensemble(&node, 1).unwrap();
        assert!(matches!(&e.nodes[0], TreeNode::Split(s) if s.threshold == 0.1));
        assert_eq!(e.predict_row(&[0.1]), vec![2.0], "f32 0.1 is above f64 0.1");
        let err = tree_ensemble(&with(node, vec![floats("nodes_values", &[0.1, 0.0, 0.0])]), 1).unwrap_err();
        assert!(err.contains("both `nodes_values` and `nodes_values_as_tensor`"), "{err}");
    }

    /// The error for `rows` with the stump's weights, on one feature.
    fn error(rows: &[Row], w: &[Weight]) -> String {
        tree_ensemble(&regressor(rows, w, 1, vec![]), 1).unwrap_err()
    }

    #[test]
    fn malformed_trees_are_refused() {
        let w = [(0, 1, 0, 1.0), (0, 2, 0, 2.0)];
        let leaf = |id| (0, id, 0, 0.0, "LEAF", 0, 0, 0);
        let split = |id, t, f| (0, id, 0, 0.5, "BRANCH_LEQ", t, f, 0);
        // A cycle: node 1 points back to the root.
        let e = error(&[split(0, 1, 2), split(1, 0, 2), leaf(2)], &w);
        assert!(e.contains("reached twice"), "{e}");
        // A shared subtree (a DAG).
        let e = error(&[split(0, 1, 2), split(1, 2, 3), leaf(2), leaf(3)], &[(0, 2, 0, 1.0), (0, 3, 0, 1.0)]);
        assert!(e.contains("node 2 of tree 0 is reached twice"), "{e}");
        // A node pointing to itself.
        assert!(error(&[split(0, 0, 1), leaf(1)], &[(0, 1, 0, 1.0)]).contains("reached twice"));
        // Children that do not exist.
        let e = error(&[split(0, 7, 2), leaf(1), leaf(2)], &w);
        assert!(e.contains("`nodes_truenodeids[0]`") && e.contains("node 7"), "{e}");
        let e = error(&[split(0, 1, -1), leaf(1), leaf(2)], &w);
        assert!(e.contains("`nodes_falsenodeids[0]`"), "{e}");
        // An unreachable node.
        let e = error(&[split(0, 1, 2), leaf(1), leaf(2), leaf(3)], &[w[0], w[1], (0, 3, 0, 1.0)]);
        assert!(e.contains("node 3 of tree 0 is not reachable"), "{e}");
        // A duplicate id, a tree listed in two runs.
        assert!(error(&[split(0, 1, 2), leaf(1), leaf(1)], &w).contains("`nodes_nodeids[2]`"));
        let rows = [split(0, 1, 2), (1, 0, 0, 0.0, "LEAF", 0, 0, 0), leaf(1), leaf(2)];
        let e = error(&rows, &[w[0], w[1], (1, 0, 0, 1.0)]);
        assert!(e.contains("`nodes_treeids[2]`") && e.contains("not listed together"), "{e}");
        // A feature beyond the input, an unsupported mode, a NaN threshold.
        let e = error(&[(0, 0, 1, 0.5, "BRANCH_LEQ", 1, 2, 0), leaf(1), leaf(2)], &w);
        assert!(e.contains("`nodes_featureids[0]`") && e.contains("feature 1"), "{e}");
        let e = error(&[(0, 0, 0, 0.5, "BRANCH_EQ", 1, 2, 0), leaf(1), leaf(2)], &w);
        assert!(e.contains("`nodes_modes[0]`") && e.contains("BRANCH_EQ"), "{e}");
        let e = error(&[(0, 0, 0, f32::NAN, "BRANCH_LEQ", 1, 2, 0), leaf(1), leaf(2)], &w);
        assert!(e.contains("`nodes_values[0]`"), "{e}");
        let e = error(&[(0, 0, 0, 0.5, "BRANCH_LEQ", 1, 2, 2), leaf(1), leaf(2)], &w);
        assert!(e.contains("`nodes_missing_value_tracks_true[0]`"), "{e}");
        // A leaf without weights.
        assert!(error(STUMP, &w[..1]).contains("node 2 of tree 0 is a leaf without weights"));
    }

    #[test]
    fn malformed_attributes_are_refused() {
        let w = [(0, 1, 0, 1.0), (0, 2, 0, 2.0)];
        let lengths = regressor(STUMP, &w, 1, vec![ints("nodes_falsenodeids", &[2, 0])]);
        let e = tree_ensemble(&lengths, 1).unwrap_err();
        assert!(e.contains("`nodes_falsenodeids` holds 2 values for the 3 nodes"), "{e}");
        let e =
            tree_ensemble(&regressor(STUMP, &w, 1, vec![floats("target_weights", &[1.0])]), 1).unwrap_err();
        assert!(e.contains("`target_weights` holds 1 values"), "{e}");
        let e = tree_ensemble(&regressor(STUMP, &[w[0], (0, 2, 1, 2.0)], 1, vec![]), 1).unwrap_err();
        assert!(e.contains("`target_ids[1]`"), "{e}");
        let e = tree_ensemble(&regressor(STUMP, &[w[0], (0, 5, 0, 2.0)], 1, vec![]), 1).unwrap_err();
        assert!(e.contains("`target_nodeids[1]`") && e.contains("node 5"), "{e}");
        let e =
            tree_ensemble(&regressor(STUMP, &w, 1, vec![floats("base_values", &[1.0, 2.0])]), 1).unwrap_err();
        assert!(e.contains("`base_values`"), "{e}");
        let e = tree_ensemble(&regressor(STUMP, &w, 0, vec![]), 1).unwrap_err();
        assert!(e.contains("`n_targets`"), "{e}");
        let e = tree_ensemble(&regressor(STUMP, &w, 1, vec![int("nodes_unknown", 1)]), 1).unwrap_err();
        assert!(e.contains("`nodes_unknown`"), "{e}");
        let e = tree_ensemble(&classifier(STUMP, &w, &[0, 1, 2], vec![floats("base_values", &[0.0; 2])]), 1)
            .unwrap_err();
        assert!(e.contains("`base_values` holds 2 values for 3 classes"), "{e}");
        let e = tree_ensemble(&classifier(STUMP, &w, &[0], vec![]), 1).unwrap_err();
        assert!(e.contains("1 class labels"), "{e}");
    }

    /// The `TreeEnsemble*` node of fixture `case` (tests/fixtures/onnx, made by onnxruntime) and
    /// its expected outputs.
    fn fixture(case: &str) -> (NodeProto, serde_json::Value) {
        use prost::Message;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx");
        let bytes = std::fs::read(dir.join(format!("{case}.onnx"))).unwrap();
        let model = crate::import::onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.unwrap();
        let node = graph.node.into_iter().find(|n| n.op_type.starts_with("TreeEnsemble")).unwrap();
        let json = std::fs::read_to_string(dir.join(format!("{case}.expected.json"))).unwrap();
        (node, serde_json::from_str(&json).unwrap())
    }

    /// The rows of the fixture's `input` (null = NaN) and their width.
    fn fixture_rows(expected: &serde_json::Value) -> (Vec<Vec<f32>>, usize) {
        let input = &expected["inputs"]["input"];
        let width = input["shape"][1].as_u64().unwrap() as usize;
        let data: Vec<f32> = input["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().map_or(f32::NAN, |v| v as f32))
            .collect();
        (data.chunks(width).map(<[f32]>::to_vec).collect(), width)
    }

    fn numbers(v: &serde_json::Value) -> Vec<f64> {
        v["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
    }

    #[test]
    fn fixture_classifiers_match_onnxruntime() {
        for (case, activation) in
            [("sk_random_forest", Activation::Identity), ("xgb_breast_cancer", Activation::Logistic)]
        {
            let (node, expected) = fixture(case);
            let (rows, width) = fixture_rows(&expected);
            let (e, head) = tree_ensemble(&node, width).unwrap();
            assert_eq!(super::tests::activation(&head), activation, "{case}");
            let want = numbers(&expected["outputs"]["probabilities"]);
            let k = want.len() / rows.len();
            for (r, row) in rows.iter().enumerate() {
                let got = probabilities(&e.predict_row(row), activation);
                for (c, (g, w)) in got.iter().zip(&want[r * k..][..k]).enumerate() {
                    assert!((g - w).abs() < 1e-5, "{case} row {r} class {c}: {g} vs onnxruntime {w}");
                }
            }
            // The whole bundle: kernels, post-processing and labels.
            let p = run(&e, head, &rows);
            let got = p.probabilities.unwrap();
            for (i, (g, w)) in got.as_slice().iter().zip(&want).enumerate() {
                assert!((f64::from(*g) - w).abs() < 1e-5, "{case} value {i}: {g} vs onnxruntime {w}");
            }
            let labels = p.labels.unwrap();
            let want_labels = numbers(&expected["outputs"]["label"]);
            for (r, w) in want_labels.iter().enumerate() {
                assert_eq!(labels.get(r), Some(&Value::Number(*w)), "{case} row {r}");
            }
        }
    }

    #[test]
    fn fixture_regressor_matches_onnxruntime() {
        let (node, expected) = fixture("xgb_regressor");
        let (rows, width) = fixture_rows(&expected);
        let (e, head) = tree_ensemble(&node, width).unwrap();
        assert_eq!(head, Head::Regressor { link: Link::Identity });
        let want = numbers(&expected["outputs"]["variable"]);
        let p = run(&e, head, &rows);
        for (r, row) in rows.iter().enumerate() {
            // onnxruntime sums in float32: within a few float32 steps of the values.
            let tolerance = 1e-5 * want[r].abs().max(1.0);
            let got = e.predict_row(row)[0];
            assert!((got - want[r]).abs() < tolerance, "row {r}: {got} vs onnxruntime {}", want[r]);
            let kernel = f64::from(p.values.as_ref().unwrap().as_slice()[r]);
            assert!(
                (kernel - want[r]).abs() < tolerance,
                "row {r}: kernel {kernel} vs onnxruntime {}",
                want[r]
            );
        }
    }
}
