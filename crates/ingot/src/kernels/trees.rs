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

use super::PARALLEL_MIN_WORK;
use crate::trees::{f32_cut, Aggregate, Comparison, MissingValues, Split, TreeEnsemble, TreeNode};

/// Rows walked through a tree together.
const BLOCK: usize = 16;
/// Trees one row walks together (batches smaller than [`BLOCK`]).
const GROUP: usize = 8;
/// Bytes of a cache line (prefetch stride).
const LINE: usize = 64;

const FEATURE_MASK: u32 = (1 << 30) - 1;
/// The split is categorical or treats zero as missing: see `specials`.
const SPECIAL_BIT: u32 = 1 << 30;
/// Most rows per parallel chunk of a large batch.
const CHUNK_ROWS: usize = 2048;
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
    /// One past the tree's last node.
    end: u32,
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
    /// Node visits one row costs (the sum of the tree depths).
    visits_per_row: usize,
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
                            let t = f32_cut(s.threshold, e.comparison);
                            let nan_right = match s.missing {
                                MissingValues::NanIsZero => 0.0 > t,
                                _ => !s.missing_left,
                            };
                            let meta = s.feature | if nan_right { NAN_RIGHT } else { 0 };
                            Node { threshold: t, meta, left: left as u32 }
                        } else {
                            specials.push(Special { split: s.clone() });
                            let index = f32::from_bits(specials.len() as u32 - 1);
                            Node { threshold: index, meta: s.feature | SPECIAL_BIT, left: left as u32 }
                        };
                        stack.push((s.right as usize, left + 1));
                        stack.push((s.left as usize, left));
                    }
                }
            }
            let target = tree.target.unwrap_or(u32::MAX);
            let (depth, end) = (depths[tree.root as usize], nodes.len() as u32);
            trees.push(TreeInfo { root: root as u32, depth, target, end });
        }
        let scale = match e.aggregate {
            Aggregate::Sum => 1.0,
            Aggregate::Mean => 1.0 / e.trees.len() as f64,
        };
        let visits_per_row = trees.iter().map(|t| t.depth as usize).sum();
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
            visits_per_row,
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

    /// The next node after `node` for feature value `x`. `NAN`: `x` may be NaN; `SPECIAL`:
    /// the forest has special splits. With both false, a split is one comparison.
    #[inline(always)]
    fn step<const NAN: bool, const SPECIAL: bool>(&self, node: &Node, x: f32) -> u32 {
        let right = if SPECIAL && node.meta & SPECIAL_BIT != 0 {
            self.special_right(node, x)
        } else if NAN {
            (x > node.threshold) | (x.is_nan() & (node.meta & NAN_RIGHT != 0))
        } else {
            x > node.threshold
        };
        node.left + u32::from(right)
    }

    /// Walks `R` rows (row `first` on, of `x`) through `tree` together; returns the leaf row
    /// each ends in.
    #[inline(always)]
    fn walk<const R: usize, const NAN: bool, const SPECIAL: bool>(
        &self,
        tree: &TreeInfo,
        x: &[f32],
        first: usize,
    ) -> [u32; R] {
        let f = self.n_features;
        let rows: [&[f32]; R] = std::array::from_fn(|r| &x[(first + r) * f..][..f]);
        let mut at = [tree.root; R];
        for _ in 0..tree.depth {
            for (i, row) in at.iter_mut().zip(&rows) {
                // SAFETY: `pack` made every `left` (and `left + 1`) a node of `nodes` and every
                // feature less than `n_features`, the length of `row`.
                let (node, v) = unsafe {
                    let node = self.nodes.get_unchecked(*i as usize);
                    (node, *row.get_unchecked((node.meta & FEATURE_MASK) as usize))
                };
                *i = self.step::<NAN, SPECIAL>(node, v);
            }
        }
        for i in at.iter_mut() {
            *i = self.leaf_of[*i as usize];
        }
        at
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

    /// Asks for `tree`'s nodes to be brought into cache while another tree runs: a forest
    /// larger than L2 would otherwise pay a memory round trip per level of each new tree.
    #[inline(always)]
    fn prefetch(&self, tree: &TreeInfo) {
        let nodes = &self.nodes[tree.root as usize..tree.end as usize];
        for line in (0..std::mem::size_of_val(nodes)).step_by(LINE) {
            prefetch(nodes.as_ptr().cast::<u8>().wrapping_add(line));
        }
    }

    /// Walks one row through [`GROUP`] trees at a time (their walks overlap) into `acc`.
    fn row_by_groups(&self, x: &[f32], acc: &mut [f64]) {
        let nan = x.iter().any(|v| v.is_nan());
        let special = !self.specials.is_empty();
        for group in self.trees.chunks(GROUP) {
            let mut at = [0u32; GROUP];
            let mut steps = 0;
            for (a, t) in at.iter_mut().zip(group) {
                *a = t.root;
                steps = steps.max(t.depth);
            }
            // A short group walks its first tree again in the spare lanes (results unused).
            for a in at.iter_mut().skip(group.len()) {
                *a = group[0].root;
            }
            for _ in 0..steps {
                for a in at.iter_mut() {
                    // SAFETY: as in `walk`: `pack` placed every child in `nodes`, and every
                    // feature is less than `n_features`, the length of `x`.
                    let (node, v) = unsafe {
                        let node = self.nodes.get_unchecked(*a as usize);
                        (node, *x.get_unchecked((node.meta & FEATURE_MASK) as usize))
                    };
                    *a = match (nan, special) {
                        (false, false) => self.step::<false, false>(node, v),
                        (true, false) => self.step::<true, false>(node, v),
                        _ => self.step::<true, true>(node, v),
                    };
                }
            }
            for (t, &a) in group.iter().zip(&at) {
                self.add(t, self.leaf_of[a as usize], acc);
            }
        }
    }

    /// Walks rows `first..first + R` of `x` through `tree` (`nan`: whether one of them holds
    /// a NaN) and adds the leaves into `acc` (`[rows of x, n_outputs]`).
    #[inline(always)]
    fn block<const R: usize>(&self, tree: &TreeInfo, x: &[f32], first: usize, nan: bool, acc: &mut [f64]) {
        let leaves = match (nan, self.specials.is_empty()) {
            (false, true) => self.walk::<R, false, false>(tree, x, first),
            (true, true) => self.walk::<R, true, false>(tree, x, first),
            _ => self.walk::<R, true, true>(tree, x, first),
        };
        self.add_leaves(tree, &leaves, first, acc);
    }

    /// Adds the leaves `leaves` that rows `first..` ended in into `acc`.
    #[inline(always)]
    fn add_leaves(&self, tree: &TreeInfo, leaves: &[u32], first: usize, acc: &mut [f64]) {
        let k = self.n_outputs;
        for (r, &leaf) in leaves.iter().enumerate() {
            self.add(tree, leaf, &mut acc[(first + r) * k..][..k]);
        }
    }

    /// [`Forest::forward`] on the calling thread.
    fn forward_rows(&self, x: &[f32], n: usize, out: &mut [f32]) {
        let (f, k) = (self.n_features, self.n_outputs);
        let mut acc = vec![0f64; n * k];
        if n < BLOCK {
            for (row, acc) in acc.chunks_exact_mut(k).enumerate() {
                self.row_by_groups(&x[row * f..][..f], acc);
            }
        } else {
            let nan: Vec<bool> = x.chunks_exact(f).map(|r| r.iter().any(|v| v.is_nan())).collect();
            let any_nan = |rows: std::ops::Range<usize>| nan[rows].iter().any(|&b| b);
            let full = n - n % BLOCK;
            for (t, tree) in self.trees.iter().enumerate() {
                if let Some(next) = self.trees.get(t + 1) {
                    self.prefetch(next);
                }
                for first in (0..full).step_by(BLOCK) {
                    self.block::<BLOCK>(tree, x, first, any_nan(first..first + BLOCK), &mut acc);
                }
                for (row, &nan) in nan.iter().enumerate().skip(full) {
                    self.block::<1>(tree, x, row, nan, &mut acc);
                }
            }
        }
        for (o, a) in out.chunks_exact_mut(k).zip(acc.chunks_exact(k)) {
            for ((o, a), b) in o.iter_mut().zip(a).zip(&self.base) {
                *o = (b + a * self.scale) as f32;
            }
        }
    }

    /// The outputs of `n` rows `x` (`[n, n_features]`) into `out` (`[n, n_outputs]`).
    ///
    /// A batch worth more than [`PARALLEL_MIN_WORK`] node visits is cut into row chunks that
    /// run in parallel; a chunk is at most [`CHUNK_ROWS`] rows, enough to pay each tree's
    /// first pass through memory over many rows.
    pub(crate) fn forward(&self, x: &[f32], n: usize, out: &mut [f32]) {
        let work = n * self.visits_per_row;
        let threads = crate::parallel::threads();
        if work < PARALLEL_MIN_WORK || threads == 1 || n < 2 * BLOCK {
            return self.forward_rows(x, n, out);
        }
        let chunk = n.div_ceil(4 * threads).next_multiple_of(BLOCK).clamp(BLOCK, CHUNK_ROWS);
        let (f, k) = (self.n_features, self.n_outputs);
        crate::parallel::for_each_chunk_mut(out, chunk * k, |c, out| {
            let rows = out.len() / k;
            self.forward_rows(&x[c * chunk * f..][..rows * f], rows, out);
        });
    }
}

/// A hint to bring the line at `p` into cache; nothing where there is no prefetch instruction.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address, and reads nothing
    // the program sees.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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
    fn random_ensemble(
        rng: &mut Rng,
        trees: usize,
        depth: usize,
        features: usize,
        outputs: usize,
    ) -> TreeEnsemble {
        let mut nodes = Vec::new();
        let mut roots = Vec::new();
        let mut leaf_values = Vec::new();
        let leaf_width = if outputs > 1 && rng.below(2) == 0 { outputs } else { 1 };
        let category_sets = vec![vec![0b1011_0110u32], vec![0xFFFF_0000, 0x1]];
        let comparison =
            [Comparison::Less, Comparison::LessOrEqual, Comparison::LessOrEqualF64][rng.below(3)];
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
                let mut s = Split::numeric(
                    rng.below(features) as u32,
                    (rng.unit() * 4.0 - 2.0) as f32 as f64,
                    left,
                    right,
                );
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

    /// The walk of NaN-free blocks without special splits (one comparison per split) against
    /// the reference walk, with full blocks, a partial block and single rows.
    #[test]
    fn the_clean_row_walk_gives_the_reference_walk() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for case in 0..30 {
            let (features, outputs) = (1 + rng.below(40), 1 + rng.below(3));
            let (trees, depth) = (1 + rng.below(20), 1 + rng.below(10));
            let mut e = random_ensemble(&mut rng, trees, depth, features, outputs);
            for node in &mut e.nodes {
                if let TreeNode::Split(s) = node {
                    s.category_set = None;
                    if s.missing == MissingValues::ZeroAndNan {
                        s.missing = MissingValues::Nan;
                    }
                }
            }
            let n = 33 + rng.below(70);
            let x: Vec<f32> = (0..n * features)
                .map(|_| {
                    if rng.below(6) == 0 {
                        rng.below(5) as f32 - 2.0
                    } else {
                        (rng.unit() * 4.0 - 2.0) as f32
                    }
                })
                .collect();
            let forest = Forest::pack(&e);
            let mut out = vec![f32::NAN; n * outputs];
            forest.forward_rows(&x, n, &mut out);
            for (r, row) in x.chunks_exact(features).enumerate() {
                for (j, w) in e.predict_row(row).iter().enumerate() {
                    assert_eq!(out[r * outputs + j], *w as f32, "case {case} row {r} output {j}");
                }
            }
        }
    }

    #[test]
    fn f32_thresholds_keep_the_source_comparison() {
        for t in [0.1f64, -0.1, 1.0, 1e-40, 3.0e38, 0.5 + 1e-12, 16_777_217.0] {
            for cmp in [Comparison::Less, Comparison::LessOrEqual] {
                let v = f32_cut(t, cmp);
                let left = |x: f32| match cmp {
                    Comparison::LessOrEqual => f64::from(x) <= t,
                    _ => f64::from(x) < t,
                };
                assert!(left(v) && !left(v.next_up()), "{t} {cmp:?} -> {v}");
            }
        }
    }
}
