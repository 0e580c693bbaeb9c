//! Tree-ensemble evaluation over a packed node array.
//!
//! Layout (docs/benchmarks.md "Tree ensembles"): every node is 12 bytes — an f32 threshold, the
//! feature with two flag bits, and the left child; repacking lays each split's two children side
//! by side, so the right child is `left + 1`. A leaf is a node that leads to itself (threshold +∞, missing goes
//! left), so every tree runs a fixed number of steps — its depth — with no test for leaves and
//! no mispredicted loop exit. Rows go through each tree in lock-step blocks of [`BLOCK`]: the
//! block's walks are independent, so their loads overlap, and a tree's nodes stay in L1 for
//! the whole batch (trees are the outer loop).
//!
//! A split decides "right" as `x > t | (x is NaN & missing goes right)` with `t` the largest
//! f32 that the source's comparison (`x <= t64` or `x < t64`, with `x` an f32) lets through:
//! the same branch as the source library for every f32 input. Categorical splits and
//! zero-as-missing splits take a slower path ([`Special`]).

use crate::trees::{Aggregate, Comparison, MissingValues, Split, TreeEnsemble, TreeNode};

/// Rows walked through a tree together.
const BLOCK: usize = 8;

const FEATURE_MASK: u32 = (1 << 30) - 1;
/// The split is categorical or treats zero as missing: see `specials`.
const SPECIAL: u32 = 1 << 30;
/// NaN goes right.
const NAN_RIGHT: u32 = 1 << 31;

/// One packed node.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Node {
    /// Threshold, or for a special node the index of its [`Special`] (as bits).
    threshold: f32,
    /// Feature, [`SPECIAL`], [`NAN_RIGHT`].
    meta: u32,
    /// Left child; the right child is `left + 1`. A leaf's is itself.
    left: u32,
}

/// A split the fast comparison cannot express.
#[derive(Debug, Clone)]
struct Special {
    split: Split,
}

/// One tree: root, steps to a leaf, and the output column it adds to (`u32::MAX`: all).
#[derive(Debug, Clone, Copy)]
struct TreeInfo {
    root: u32,
    depth: u32,
    target: u32,
}

/// A tree ensemble packed for the CPU.
#[derive(Debug)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    /// Leaf row of each node (leaves only).
    leaf_of: Vec<u32>,
    trees: Vec<TreeInfo>,
    specials: Vec<Special>,
    category_sets: Vec<Vec<u32>>,
    leaves: Vec<f64>,
    leaf_width: usize,
    n_features: usize,
    n_outputs: usize,
    base: Vec<f64>,
    scale: f64,
    comparison: Comparison,
}

/// The largest f32 `v` for which the comparison sends `v` left (`v <= t` or `v < t`).
fn f32_threshold(t: f64, comparison: Comparison) -> f32 {
    let passes = |v: f32| match comparison {
        Comparison::LessOrEqual => f64::from(v) <= t,
        Comparison::Less => f64::from(v) < t,
    };
    let mut v = t as f32;
    while !passes(v) && v > f32::NEG_INFINITY {
        v = v.next_down();
    }
    while v < f32::INFINITY && passes(v.next_up()) {
        v = v.next_up();
    }
    v
}

impl Forest {
    /// Packs a validated ensemble: each split's children side by side, trees one after
    /// another in depth-first order.
    pub(crate) fn pack(e: &TreeEnsemble) -> Forest {
        let depths = e.depths();
        let mut nodes = Vec::with_capacity(e.nodes.len());
        let mut leaf_of = Vec::with_capacity(e.nodes.len());
        let mut specials = Vec::new();
        let mut trees = Vec::with_capacity(e.trees.len());
        // Old index → new index of each node placed; a node shared by two parents is copied.
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for tree in &e.trees {
            let root = nodes.len();
            nodes.push(Node { threshold: 0.0, meta: 0, left: 0 });
            leaf_of.push(0);
            stack.push((tree.root as usize, root));
            while let Some((old, new)) = stack.pop() {
                match &e.nodes[old] {
                    TreeNode::Leaf { value } => {
                        nodes[new] = Node { threshold: f32::INFINITY, meta: 0, left: new as u32 };
                        leaf_of[new] = *value;
                    }
                    TreeNode::Split(s) => {
                        let left = nodes.len();
                        for _ in 0..2 {
                            nodes.push(Node { threshold: 0.0, meta: 0, left: 0 });
                            leaf_of.push(0);
                        }
                        let simple = s.category_set.is_none() && s.missing != MissingValues::ZeroAndNan;
                        nodes[new] = if simple {
                            let t = f32_threshold(s.threshold, e.comparison);
                            let nan_right = match s.missing {
                                MissingValues::NanIsZero => 0.0 > t,
                                _ => !s.missing_left,
                            };
                            let meta = s.feature | if nan_right { NAN_RIGHT } else { 0 };
                            Node { threshold: t, meta, left: left as u32 }
                        } else {
                            specials.push(Special { split: s.clone() });
                            let index = f32::from_bits(specials.len() as u32 - 1);
                            Node { threshold: index, meta: s.feature | SPECIAL, left: left as u32 }
                        };
                        stack.push((s.right as usize, left + 1));
                        stack.push((s.left as usize, left));
                    }
                }
            }
            let target = tree.target.unwrap_or(u32::MAX);
            trees.push(TreeInfo { root: root as u32, depth: depths[tree.root as usize], target });
        }
        let scale = match e.aggregate {
            Aggregate::Sum => 1.0,
            Aggregate::Mean => 1.0 / e.trees.len() as f64,
        };
        Forest {
            nodes,
            leaf_of,
            trees,
            specials,
            category_sets: e.category_sets.clone(),
            leaves: e.leaf_values.clone(),
            leaf_width: e.leaf_width,
            n_features: e.n_features,
            n_outputs: e.n_outputs,
            base: e.base_score.clone(),
            scale,
            comparison: e.comparison,
        }
    }

    /// Input width.
    pub(crate) fn n_features(&self) -> usize {
        self.n_features
    }

    /// Output width.
    pub(crate) fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Whether the walk goes right at special node `node` for `x`.
    #[cold]
    fn special_right(&self, node: &Node, x: f32) -> bool {
        let s = &self.specials[node.threshold.to_bits() as usize].split;
        !crate::trees::goes_left(s, x, &self.category_sets, self.comparison)
    }

    /// The next node after `node` for feature value `x`.
    #[inline(always)]
    fn step(&self, node: &Node, x: f32) -> u32 {
        let right = if node.meta & SPECIAL != 0 {
            self.special_right(node, x)
        } else {
            (x > node.threshold) | (x.is_nan() & (node.meta & NAN_RIGHT != 0))
        };
        node.left + u32::from(right)
    }

    /// Walks `R` rows (starting at row `first` of `x`) through `tree` together; returns the
    /// leaf row each ends in.
    #[inline(always)]
    fn walk<const R: usize>(&self, tree: &TreeInfo, x: &[f32], first: usize) -> [u32; R] {
        let f = self.n_features;
        let mut at = [tree.root; R];
        for _ in 0..tree.depth {
            for (r, i) in at.iter_mut().enumerate() {
                let node = &self.nodes[*i as usize];
                let v = x[(first + r) * f + (node.meta & FEATURE_MASK) as usize];
                *i = self.step(node, v);
            }
        }
        at.map(|i| self.leaf_of[i as usize])
    }

    /// Adds leaf row `leaf` of `tree` into `acc` (one row of outputs).
    #[inline(always)]
    fn add(&self, tree: &TreeInfo, leaf: u32, acc: &mut [f64]) {
        let w = self.leaf_width;
        if tree.target == u32::MAX {
            let values = &self.leaves[leaf as usize * w..][..w];
            acc.iter_mut().zip(values).for_each(|(a, v)| *a += v);
        } else {
            acc[tree.target as usize] += self.leaves[leaf as usize * w];
        }
    }

    /// The outputs of `n` rows `x` (`[n, n_features]`) into `out` (`[n, n_outputs]`).
    pub(crate) fn forward(&self, x: &[f32], n: usize, out: &mut [f32]) {
        let k = self.n_outputs;
        let mut acc = vec![0f64; n * k];
        let full = n - n % BLOCK;
        for tree in &self.trees {
            for first in (0..full).step_by(BLOCK) {
                let leaves = self.walk::<BLOCK>(tree, x, first);
                for (r, &leaf) in leaves.iter().enumerate() {
                    self.add(tree, leaf, &mut acc[(first + r) * k..][..k]);
                }
            }
            for row in full..n {
                let [leaf] = self.walk::<1>(tree, x, row);
                self.add(tree, leaf, &mut acc[row * k..][..k]);
            }
        }
        for (o, a) in out.chunks_exact_mut(k).zip(acc.chunks_exact(k)) {
            for ((o, a), b) in o.iter_mut().zip(a).zip(&self.base) {
                *o = (b + a * self.scale) as f32;
            }
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::trees::Tree;

    /// xorshift: deterministic pseudo-random numbers for the property tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random ensemble of `trees` trees up to `depth` deep with every kind of split.
    fn random_ensemble(rng: &mut Rng, trees: usize, depth: usize, features: usize, outputs: usize) -> TreeEnsemble {
        let mut nodes = Vec::new();
        let mut roots = Vec::new();
        let mut leaf_values = Vec::new();
        let leaf_width = if outputs > 1 && rng.below(2) == 0 { outputs } else { 1 };
        let category_sets = vec![vec![0b1011_0110u32], vec![0xFFFF_0000, 0x1]];
        let comparison = if rng.below(2) == 0 { Comparison::Less } else { Comparison::LessOrEqual };
        for t in 0..trees {
            roots.push(Tree {
                root: nodes.len() as u32,
                target: (leaf_width == 1).then_some((t % outputs) as u32),
            });
            // Breadth-first: each split's children are pushed after it.
            let mut queue = std::collections::VecDeque::from([(nodes.len(), 0usize)]);
            nodes.push(TreeNode::Leaf { value: 0 });
            while let Some((i, d)) = queue.pop_front() {
                if d == depth || (d > 1 && rng.below(4) == 0) {
                    nodes[i] = TreeNode::Leaf { value: (leaf_values.len() / leaf_width) as u32 };
                    leaf_values.extend((0..leaf_width).map(|_| rng.unit() * 2.0 - 1.0));
                    continue;
                }
                let (left, right) = (nodes.len() as u32, nodes.len() as u32 + 1);
                nodes.push(TreeNode::Leaf { value: 0 });
                nodes.push(TreeNode::Leaf { value: 0 });
                queue.push_back((left as usize, d + 1));
                queue.push_back((right as usize, d + 1));
                let mut s = Split::numeric(rng.below(features) as u32, (rng.unit() * 4.0 - 2.0) as f32 as f64, left, right);
                if rng.below(3) == 0 {
                    s.threshold = rng.unit() * 4.0 - 2.0;
                }
                s.missing_left = rng.below(2) == 0;
                s.missing = match rng.below(6) {
                    0 => MissingValues::NanIsZero,
                    1 => MissingValues::ZeroAndNan,
                    _ => MissingValues::Nan,
                };
                if rng.below(8) == 0 {
                    s.category_set = Some(rng.below(category_sets.len()) as u32);
                }
                nodes[i] = TreeNode::Split(s);
            }
        }
        TreeEnsemble {
            n_features: features,
            n_outputs: outputs,
            comparison,
            aggregate: if rng.below(2) == 0 { Aggregate::Sum } else { Aggregate::Mean },
            base_score: (0..outputs).map(|_| rng.unit()).collect(),
            trees: roots,
            nodes,
            leaf_width,
            leaf_values,
            category_sets,
        }
    }

    /// Feature values that hit every branch: thresholds themselves and their f32 neighbours,
    /// zeros, NaN, small integers (categories) and negatives.
    fn random_row(rng: &mut Rng, features: usize) -> Vec<f32> {
        (0..features)
            .map(|_| match rng.below(8) {
                0 => f32::NAN,
                1 => 0.0,
                2 => rng.below(40) as f32,
                3 => -(rng.below(3) as f32) - 0.5,
                _ => (rng.unit() * 4.0 - 2.0) as f32,
            })
            .collect()
    }

    #[test]
    fn the_packed_forest_gives_the_reference_walk() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..40 {
            let (features, outputs) = (1 + rng.below(12), 1 + rng.below(4));
            let (trees, depth) = (1 + rng.below(30), 1 + rng.below(9));
            let e = random_ensemble(&mut rng, trees, depth, features, outputs);
            e.validate().unwrap();
            let forest = Forest::pack(&e);
            let n = rng.below(40);
            let x: Vec<f32> = (0..n).flat_map(|_| random_row(&mut rng, features)).collect();
            let mut out = vec![f32::NAN; n * outputs];
            forest.forward(&x, n, &mut out);
            for (r, row) in x.chunks_exact(features).enumerate() {
                let want = e.predict_row(row);
                for (j, w) in want.iter().enumerate() {
                    let got = out[r * outputs + j];
                    assert_eq!(got, *w as f32, "case {case} row {r} output {j}: {row:?}");
                }
            }
        }
    }

    #[test]
    fn f32_thresholds_keep_the_source_comparison() {
        for t in [0.1f64, -0.1, 1.0, 1e-40, 3.0e38, 0.5 + 1e-12, 16_777_217.0] {
            for cmp in [Comparison::Less, Comparison::LessOrEqual] {
                let v = f32_threshold(t, cmp);
                let left = |x: f32| match cmp {
                    Comparison::LessOrEqual => f64::from(x) <= t,
                    Comparison::Less => f64::from(x) < t,
                };
                assert!(left(v) && !left(v.next_up()), "{t} {cmp:?} -> {v}");
            }
        }
    }
}
