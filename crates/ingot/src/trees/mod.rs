//! Tree ensembles as importers and exporters describe them: decision trees, random forests and
//! gradient-boosted trees from scikit-learn, XGBoost and LightGBM, in one form.
//!
//! A [`TreeEnsemble`] says what each split decides — the comparison, where missing values go,
//! which categories go left — in the source library's own terms and precision (f64 thresholds
//! and leaf values). It is stored in a bundle as one `TreeEnsemble` graph node over a handful of
//! tensors ([`TreeEnsemble::to_graph`], docs/format.md §4); the CPU kernel repacks it at load
//! into the layout it runs (`kernels::trees`).
//!
//! ```
//! use ingot::trees::{Aggregate, Comparison, MissingValues, Split, Tree, TreeEnsemble, TreeNode};
//! // One stump: x0 <= 0.5 → 1.0, else 3.0; missing values go right.
//! let stump = TreeEnsemble {
//!     n_features: 1,
//!     n_outputs: 1,
//!     comparison: Comparison::LessOrEqual,
//!     aggregate: Aggregate::Sum,
//!     base_score: vec![0.0],
//!     trees: vec![Tree { root: 0, target: Some(0) }],
//!     nodes: vec![
//!         TreeNode::Split(Split::numeric(0, 0.5, 1, 2)),
//!         TreeNode::Leaf { value: 0 },
//!         TreeNode::Leaf { value: 1 },
//!     ],
//!     leaf_width: 1,
//!     leaf_values: vec![1.0, 3.0],
//!     category_sets: vec![],
//! };
//! assert!(stump.validate().is_ok());
//! assert_eq!(stump.predict_row(&[0.5]), vec![1.0]);
//! assert_eq!(stump.predict_row(&[f32::NAN]), vec![3.0]);
//! ```

mod bundle;
mod tensors;

pub(crate) use bundle::head_outputs;
pub use bundle::{tabular_bundle, Head};

pub use tensors::GraphParts;
pub(crate) use tensors::{from_tensors, EnsembleAttrs};

/// How a split compares a feature with its threshold; `true` sends the row left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `x <= threshold` (scikit-learn, LightGBM).
    LessOrEqual,
    /// `x < threshold` (XGBoost).
    Less,
    /// `x <= threshold` where the source compares float64 features (scikit-learn's
    /// HistGradientBoosting, LightGBM). Ingot's features are float32, so a split compares
    /// `f32(x)` with a float32 cut ([`f32_cut`]): the float32 `r` nearest the threshold, or the
    /// one below it when `r` and the shortest decimal that rounds to `r` both lie above the
    /// threshold. Float32 inputs go where the source sends them, and so do decimal inputs on
    /// the grid the model was trained on (thresholds fall midway between training values, or
    /// one float64 step above one); an input within a float32 step of a threshold that is
    /// neither may not.
    LessOrEqualF64,
}

/// The float32 cut `c` of a split: `f32(x) <= c` sends `x` left.
///
/// For [`Comparison::LessOrEqual`] and [`Comparison::Less`] the source compares float32
/// features, and `c` is the largest float32 the comparison lets through: the same branch for
/// every input. For [`Comparison::LessOrEqualF64`], see there.
///
/// ```
/// use ingot::trees::{f32_cut, Comparison};
/// assert_eq!(f32_cut(0.5, Comparison::Less), 0.5f32.next_down());
/// assert_eq!(f32_cut(0.15, Comparison::LessOrEqualF64), 0.15f32);
/// // LightGBM's threshold one f64 step above a float32 training value keeps that value left…
/// let v = f64::from(3.0584667f32);
/// assert_eq!(f32_cut(v.next_up(), Comparison::LessOrEqualF64), 3.0584667f32);
/// // …and one step above the decimal 0.1712 keeps the decimal (f32 0.1712000072) left too.
/// assert_eq!(f32_cut(0.1712f64.next_up(), Comparison::LessOrEqualF64), 0.1712f32);
/// // A midpoint just below a decimal the float32 rounds above: that decimal goes right.
/// assert_eq!(f32_cut(0.15f64.next_down(), Comparison::LessOrEqualF64), 0.15f32.next_down());
/// ```
pub fn f32_cut(t: f64, comparison: Comparison) -> f32 {
    let strict = match comparison {
        Comparison::LessOrEqual => false,
        Comparison::Less => true,
        Comparison::LessOrEqualF64 => {
            let r = t as f32;
            if f64::from(r) <= t || !r.is_finite() {
                return r;
            }
            let decimal: f64 = r.to_string().parse().unwrap_or(f64::from(r));
            return if decimal > t { r.next_down() } else { r };
        }
    };
    let passes = |v: f32| if strict { f64::from(v) < t } else { f64::from(v) <= t };
    let mut v = t as f32;
    while !passes(v) && v > f32::NEG_INFINITY {
        v = v.next_down();
    }
    while v < f32::INFINITY && passes(v.next_up()) {
        v = v.next_up();
    }
    v
}

/// How the trees' outputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `base_score + Σ trees` (boosting).
    Sum,
    /// `base_score + Σ trees / tree count` (random forests).
    Mean,
}

/// What counts as a missing value at a split, and so takes its `missing_left` direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingValues {
    /// NaN is missing.
    Nan,
    /// NaN is read as 0.0 and compared like any number (LightGBM's `missing_type` None).
    NanIsZero,
    /// NaN and zero (|x| ≤ 1e-35) are missing (LightGBM's `missing_type` Zero).
    ZeroAndNan,
}

/// A split of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Feature (input column of the graph) the split reads.
    pub feature: u32,
    /// Threshold of a numeric split (unused by a categorical one).
    pub threshold: f64,
    /// Node index of the left child; must be greater than this node's.
    pub left: u32,
    /// Node index of the right child; must be greater than this node's.
    pub right: u32,
    /// Where a missing value goes.
    pub missing_left: bool,
    /// What counts as missing.
    pub missing: MissingValues,
    /// For a categorical split, the index of its set in [`TreeEnsemble::category_sets`]: a
    /// value whose integer part is in the set goes left, any other value right, a missing,
    /// negative or out-of-range value to `missing_left`.
    pub category_set: Option<u32>,
}

impl Split {
    /// A numeric split where NaN is missing and goes right.
    ///
    /// ```
    /// let s = ingot::trees::Split::numeric(3, 1.5, 1, 2);
    /// assert!(!s.missing_left && s.category_set.is_none());
    /// ```
    pub fn numeric(feature: u32, threshold: f64, left: u32, right: u32) -> Split {
        Split {
            feature,
            threshold,
            left,
            right,
            missing_left: false,
            missing: MissingValues::Nan,
            category_set: None,
        }
    }
}

/// One node of a tree.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeNode {
    /// An internal node.
    Split(Split),
    /// A leaf: row `value` of [`TreeEnsemble::leaf_values`].
    Leaf {
        /// Leaf row index.
        value: u32,
    },
}

/// One tree: its root node and the output column it adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    /// Index of the root in [`TreeEnsemble::nodes`].
    pub root: u32,
    /// Output column of a tree with one value per leaf (`leaf_width` 1); `None` when each leaf
    /// holds one value per output.
    pub target: Option<u32>,
}

/// A tree ensemble: nodes of every tree in one array, leaf values in another.
///
/// The prediction of a row is `base_score + Σ leaf values` (or the mean over the trees for
/// [`Aggregate::Mean`]), one value per output; post-processing turns it into probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEnsemble {
    /// Width of the input rows.
    pub n_features: usize,
    /// Outputs per row (1 for regression and binary boosting, the class count otherwise).
    pub n_outputs: usize,
    /// The comparison of every numeric split.
    pub comparison: Comparison,
    /// How tree outputs combine.
    pub aggregate: Aggregate,
    /// Added to every row, one value per output.
    pub base_score: Vec<f64>,
    /// The trees.
    pub trees: Vec<Tree>,
    /// Every tree's nodes; children come after their parent, and each node has one parent.
    pub nodes: Vec<TreeNode>,
    /// Values per leaf: 1, or `n_outputs` (each tree adds to every output).
    pub leaf_width: usize,
    /// `leaf_width` values per leaf, leaf after leaf.
    pub leaf_values: Vec<f64>,
    /// Category sets of categorical splits: bit `c % 32` of word `c / 32` set for category `c`.
    pub category_sets: Vec<Vec<u32>>,
}

/// Largest tree count, node count and output count a bundle may hold (a file claiming more is
/// refused before anything is allocated for it).
pub const MAX_TREES: usize = 1 << 20;
/// See [`MAX_TREES`].
pub const MAX_NODES: usize = 1 << 26;
/// See [`MAX_TREES`].
pub const MAX_OUTPUTS: usize = 1 << 16;

impl TreeEnsemble {
    /// Checks every index and count: features within `n_features`, children after their
    /// parent and within the node array, leaf rows and category sets that exist, one base score
    /// per output, finite leaf values and non-NaN thresholds.
    ///
    /// ```
    /// use ingot::trees::{Aggregate, Comparison, Split, Tree, TreeEnsemble, TreeNode};
    /// let cyclic = TreeEnsemble {
    ///     n_features: 1, n_outputs: 1, comparison: Comparison::Less, aggregate: Aggregate::Sum,
    ///     base_score: vec![0.0], trees: vec![Tree { root: 0, target: Some(0) }],
    ///     nodes: vec![TreeNode::Split(Split::numeric(0, 0.0, 0, 0))],
    ///     leaf_width: 1, leaf_values: vec![], category_sets: vec![],
    /// };
    /// assert!(cyclic.validate().unwrap_err().contains("node 0"));
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        let n = self.nodes.len();
        if self.trees.is_empty() || self.trees.len() > MAX_TREES {
            return Err(format!("{} trees (1 to {MAX_TREES})", self.trees.len()));
        }
        if n > MAX_NODES {
            return Err(format!("{n} nodes (at most {MAX_NODES})"));
        }
        if self.n_features == 0 {
            return Err("the ensemble reads no features".into());
        }
        if self.n_outputs == 0 || self.n_outputs > MAX_OUTPUTS {
            return Err(format!("{} outputs (1 to {MAX_OUTPUTS})", self.n_outputs));
        }
        if self.base_score.len() != self.n_outputs {
            return Err(format!("{} base scores for {} outputs", self.base_score.len(), self.n_outputs));
        }
        if let Some(b) = self.base_score.iter().position(|b| !b.is_finite()) {
            return Err(format!("base score {b} is not finite"));
        }
        if self.leaf_width != 1 && self.leaf_width != self.n_outputs {
            return Err(format!(
                "leaf width {} is neither 1 nor {} outputs",
                self.leaf_width, self.n_outputs
            ));
        }
        if !self.leaf_values.len().is_multiple_of(self.leaf_width) {
            return Err(format!(
                "{} leaf values are not rows of {}",
                self.leaf_values.len(),
                self.leaf_width
            ));
        }
        if let Some(v) = self.leaf_values.iter().position(|v| !v.is_finite()) {
            return Err(format!("leaf value {v} is not finite"));
        }
        let leaves = self.leaf_values.len() / self.leaf_width;
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.root as usize >= n {
                return Err(format!("tree {t}: root {} is not one of the {n} nodes", tree.root));
            }
            match (tree.target, self.leaf_width) {
                (Some(c), 1) if (c as usize) < self.n_outputs => {}
                (None, w) if w == self.n_outputs => {}
                (target, w) => {
                    return Err(format!(
                        "tree {t}: target {target:?} does not suit leaves of {w} value(s) for {} outputs",
                        self.n_outputs
                    ))
                }
            }
        }
        let mut parents = vec![0u8; n];
        for tree in &self.trees {
            parents[tree.root as usize] = 1;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            match node {
                TreeNode::Leaf { value } if (*value as usize) < leaves => {}
                TreeNode::Leaf { value } => {
                    return Err(format!("node {i}: leaf row {value} is not one of the {leaves} leaves"))
                }
                TreeNode::Split(s) => {
                    if s.feature as usize >= self.n_features {
                        return Err(format!(
                            "node {i}: feature {} is not one of the {} features",
                            s.feature, self.n_features
                        ));
                    }
                    for (side, child) in [("left", s.left), ("right", s.right)] {
                        if child as usize <= i || child as usize >= n {
                            return Err(format!(
                                "node {i}: {side} child {child} is not a later node (children follow \
                                 their parent, which also rules out cycles; {n} nodes)"
                            ));
                        }
                        if parents[child as usize] != 0 {
                            return Err(format!(
                                "node {i}: {side} child {child} already has a parent or is a root"
                            ));
                        }
                        parents[child as usize] = 1;
                    }
                    match s.category_set {
                        Some(c) if c as usize >= self.category_sets.len() => {
                            return Err(format!("node {i}: category set {c} does not exist"))
                        }
                        None if s.threshold.is_nan() => {
                            return Err(format!("node {i}: the threshold is NaN"))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Depth of every node's subtree (a leaf: 0), computed from the last node back (children
    /// come after their parent). Call on a validated ensemble.
    pub(crate) fn depths(&self) -> Vec<u32> {
        let mut depth = vec![0u32; self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            if let TreeNode::Split(s) = &self.nodes[i] {
                depth[i] = 1 + depth[s.left as usize].max(depth[s.right as usize]);
            }
        }
        depth
    }

    /// The outputs for one row by walking every tree node by node: the reference
    /// implementation (the kernels run a packed form). Call on a validated ensemble.
    pub fn predict_row(&self, x: &[f32]) -> Vec<f64> {
        let mut sums = vec![0f64; self.n_outputs];
        for tree in &self.trees {
            let mut i = tree.root as usize;
            let leaf = loop {
                match &self.nodes[i] {
                    TreeNode::Leaf { value } => break *value as usize,
                    TreeNode::Split(s) => {
                        let left = goes_left(s, x[s.feature as usize], &self.category_sets, self.comparison);
                        i = if left { s.left } else { s.right } as usize;
                    }
                }
            };
            let values = &self.leaf_values[leaf * self.leaf_width..][..self.leaf_width];
            match tree.target {
                Some(c) => sums[c as usize] += values[0],
                None => sums.iter_mut().zip(values).for_each(|(s, v)| *s += v),
            }
        }
        let scale = match self.aggregate {
            Aggregate::Sum => 1.0,
            Aggregate::Mean => 1.0 / self.trees.len() as f64,
        };
        sums.iter().zip(&self.base_score).map(|(s, b)| b + s * scale).collect()
    }
}

/// Whether split `s` sends `x` left: the plain reference the kernels are tested against.
pub(crate) fn goes_left(s: &Split, x: f32, category_sets: &[Vec<u32>], comparison: Comparison) -> bool {
    let x = if x.is_nan() && s.missing == MissingValues::NanIsZero { 0.0 } else { x };
    let zero = s.missing == MissingValues::ZeroAndNan && x.abs() <= 1e-35;
    if x.is_nan() || zero {
        return s.missing_left;
    }
    match s.category_set {
        Some(c) => {
            let v = x.trunc();
            if v < 0.0 {
                return s.missing_left;
            }
            let v = v as u64;
            match category_sets[c as usize].get((v / 32) as usize) {
                Some(w) => w >> (v % 32) & 1 == 1,
                None => s.missing_left,
            }
        }
        None => match comparison {
            Comparison::LessOrEqual => f64::from(x) <= s.threshold,
            Comparison::Less => f64::from(x) < s.threshold,
            Comparison::LessOrEqualF64 => x <= f32_cut(s.threshold, comparison),
        },
    }
}
