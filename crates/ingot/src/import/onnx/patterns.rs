//! Rewrites of exporter patterns into the single ONNX ops Ingot translates, before anything
//! else reads the graph:
//!
//! - the erf GELU `x · 0.5 · (1 + erf(x / √2))` as torch writes it (`Div`/`Mul` by √2 or 1/√2,
//!   `Erf`, `Add 1`, and the two products in either order) → `Gelu`, which the CPU plan fuses
//!   into the GEMM epilogue before it;
//! - the decomposed layer norm of older opsets (`ReduceMean → Sub → Pow 2 → ReduceMean → Add
//!   eps → Sqrt → Div → Mul γ → Add β` over the last axis) → `LayerNormalization`.
//!
//! A pattern is rewritten only when its intermediate values are read by nothing else.

use std::collections::HashMap;

use super::attrs::Attrs;
use super::proto::{attribute_type, AttributeProto, NodeProto};
use super::tensor::Const;

/// The graph's nodes with the patterns rewritten.
pub(crate) fn rewrite(nodes: &[NodeProto], consts: &HashMap<String, Const>, opset: i64) -> Vec<NodeProto> {
    let mut g = Nodes::new(nodes, consts, opset);
    for (i, n) in nodes.iter().enumerate() {
        match n.op_type.as_str() {
            "Erf" => g.gelu(i),
            "ReduceMean" => g.layer_norm(i),
            _ => None,
        };
    }
    g.finish()
}

struct Nodes<'a> {
    nodes: &'a [NodeProto],
    consts: &'a HashMap<String, Const>,
    opset: i64,
    producer: HashMap<&'a str, usize>,
    readers: HashMap<&'a str, Vec<usize>>,
    /// Nodes removed by a rewrite.
    removed: Vec<bool>,
    /// Nodes put in place of node `i`.
    replaced: HashMap<usize, NodeProto>,
}

impl<'a> Nodes<'a> {
    fn new(nodes: &'a [NodeProto], consts: &'a HashMap<String, Const>, opset: i64) -> Nodes<'a> {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
            }
            for x in &n.input {
                readers.entry(x.as_str()).or_default().push(i);
            }
        }
        Nodes {
            nodes,
            consts,
            opset,
            producer,
            readers,
            removed: vec![false; nodes.len()],
            replaced: HashMap::new(),
        }
    }

    fn finish(self) -> Vec<NodeProto> {
        let mut replaced = self.replaced;
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match replaced.remove(&i) {
                Some(r) => Some(r),
                None if self.removed[i] => None,
                None => Some(n.clone()),
            })
            .collect()
    }

    /// The single live reader of node `i`'s first output, if it is an `op`.
    fn only_reader(&self, i: usize, op: &str) -> Option<usize> {
        let out = self.nodes[i].output.first()?;
        match self.readers.get(out.as_str()).map(Vec::as_slice) {
            Some([r]) if self.nodes[*r].op_type == op && !self.removed[*r] => Some(*r),
            _ => None,
        }
    }

    fn scalar(&self, name: &str) -> Option<f32> {
        self.consts.get(name).and_then(Const::scalar_f32)
    }

    /// The operand of binary node `n` that is not `x`, and whether `x` is one of its operands.
    fn other<'n>(n: &'n NodeProto, x: &str) -> Option<&'n str> {
        match n.input.as_slice() {
            [a, b] if a == x => Some(b),
            [a, b] if b == x => Some(a),
            _ => None,
        }
    }

    fn close(v: Option<f32>, want: f32) -> bool {
        v.is_some_and(|v| (v - want).abs() <= 1e-4 * want.abs())
    }

    fn gelu(&mut self, erf: usize) -> Option<()> {
        let d = self.nodes[erf].input.first()?;
        let div = *self.producer.get(d.as_str())?;
        let dn = &self.nodes[div];
        let [x, c] = dn.input.as_slice() else { return None };
        let scaled = match dn.op_type.as_str() {
            "Div" => Self::close(self.scalar(c), std::f32::consts::SQRT_2),
            "Mul" => Self::close(self.scalar(c), std::f32::consts::FRAC_1_SQRT_2),
            _ => false,
        };
        if !scaled || self.only_reader(div, "Erf") != Some(erf) {
            return None;
        }
        let add = self.only_reader(erf, "Add")?;
        let one = Self::other(&self.nodes[add], &self.nodes[erf].output[0])?;
        if !Self::close(self.scalar(one), 1.0) {
            return None;
        }
        let times_x = self.only_reader(add, "Mul")?;
        let (last, chain) = match Self::other(&self.nodes[times_x], &self.nodes[add].output[0]) {
            // (x · (1 + erf)) · 0.5
            Some(other) if other == x => {
                let half = self.only_reader(times_x, "Mul")?;
                let c = Self::other(&self.nodes[half], &self.nodes[times_x].output[0])?;
                Self::close(self.scalar(c), 0.5).then_some((half, vec![div, erf, add, times_x]))?
            }
            // (x · 0.5) · (1 + erf)
            Some(other) => {
                let p = *self.producer.get(other)?;
                let pn = &self.nodes[p];
                let c = Self::other(pn, x)?;
                let ok = pn.op_type == "Mul"
                    && Self::close(self.scalar(c), 0.5)
                    && self.only_reader(p, "Mul") == Some(times_x);
                ok.then_some((times_x, vec![div, erf, add, p]))?
            }
            None => return None,
        };
        for i in chain {
            self.removed[i] = true;
        }
        let out = self.nodes[last].output.first()?.clone();
        let node = NodeProto {
            op_type: "Gelu".into(),
            name: format!("{}.gelu", self.nodes[last].name),
            input: vec![x.clone()],
            output: vec![out],
            ..Default::default()
        };
        self.replaced.insert(last, node);
        Some(())
    }

    /// Whether `ReduceMean` node `i` averages over the last axis only.
    fn mean_last_axis(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        let a = Attrs::of(n);
        let axes = if self.opset >= 18 {
            n.input.get(1).and_then(|x| self.consts.get(x)).and_then(Const::to_i64)
        } else {
            a.ints("axes").ok().flatten()
        };
        axes.as_deref() == Some(&[-1]) && a.int_or("keepdims", 1).ok() == Some(1)
    }

    fn layer_norm(&mut self, mean: usize) -> Option<()> {
        if !self.mean_last_axis(mean) {
            return None;
        }
        let x = self.nodes[mean].input.first()?.clone();
        let m = self.nodes[mean].output.first()?.clone();
        // x − mean, read by the Pow and by the Div.
        let sub = *self.readers.get(m.as_str())?.first()?;
        let sn = &self.nodes[sub];
        if sn.op_type != "Sub" || sn.input != [x.clone(), m.clone()] || self.readers[m.as_str()].len() != 1 {
            return None;
        }
        let centered = sn.output.first()?.clone();
        let users = self.readers.get(centered.as_str())?.clone();
        let (pow, div) = match users.as_slice() {
            [a, b] if self.nodes[*a].op_type == "Pow" && self.nodes[*b].op_type == "Div" => (*a, *b),
            [a, b] if self.nodes[*b].op_type == "Pow" && self.nodes[*a].op_type == "Div" => (*b, *a),
            _ => return None,
        };
        if !Self::close(self.nodes[pow].input.get(1).and_then(|e| self.scalar(e)), 2.0) {
            return None;
        }
        let var = self.only_reader(pow, "ReduceMean")?;
        if !self.mean_last_axis(var) {
            return None;
        }
        let add = self.only_reader(var, "Add")?;
        let eps = self.scalar(Self::other(&self.nodes[add], &self.nodes[var].output[0])?)?;
        let sqrt = self.only_reader(add, "Sqrt")?;
        if self.nodes[div].input != [centered.clone(), self.nodes[sqrt].output[0].clone()] {
            return None;
        }
        let mul = self.only_reader(div, "Mul")?;
        let gamma = Self::other(&self.nodes[mul], &self.nodes[div].output[0])?.to_string();
        let bias = self.only_reader(mul, "Add")?;
        let beta = Self::other(&self.nodes[bias], &self.nodes[mul].output[0])?.to_string();
        if !self.consts.contains_key(&gamma) || !self.consts.contains_key(&beta) || eps.is_nan() || eps <= 0.0
        {
            return None;
        }
        for i in [mean, sub, pow, var, add, sqrt, div, mul] {
            self.removed[i] = true;
        }
        let float = |name: &str, f: f32| AttributeProto {
            name: name.into(),
            r#type: attribute_type::FLOAT,
            f,
            ..Default::default()
        };
        let axis =
            AttributeProto { name: "axis".into(), r#type: attribute_type::INT, i: -1, ..Default::default() };
        let node = NodeProto {
            op_type: "LayerNormalization".into(),
            name: format!("{}.layer_norm", self.nodes[bias].name),
            input: vec![x, gamma, beta],
            output: vec![self.nodes[bias].output.first()?.clone()],
            attribute: vec![float("epsilon", eps), axis],
            ..Default::default()
        };
        self.replaced.insert(bias, node);
        Some(())
    }
}
