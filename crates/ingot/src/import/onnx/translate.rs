//! The translation state: what each ONNX value is at import time, and the Ingot nodes and
//! tensors emitted so far.
//!
//! An ONNX value is a constant known at import ([`Val::Const`], folded by `fold`), a shape
//! vector whose entries may be the batch size ([`Val::Shape`], what `Shape` of a batch-sized
//! value gives), a value computed at predict time ([`Val::Dyn`], one named value of the Ingot
//! graph with its inferred shape), a classifier's scores whose probabilities post-processing
//! computes ([`Val::Scores`]), or a label output that post-processing recomputes
//! ([`Val::Labels`]). The batch is the only dimension that stays variable; every other
//! dimension is fixed at import.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value as Json;

use super::tensor::{Const, Data};
use crate::format::{Activation, DType, NodeSpec, TensorData};
use crate::graph::{infer_node, Dim, Shape};
use crate::value::Value;

/// One entry of a shape vector: a size, or the batch size (unknown until predict time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymDim {
    Known(i64),
    Batch,
}

/// A value of the Ingot graph: its name and load-time shape.
#[derive(Debug, Clone)]
pub(crate) struct Dyn {
    pub(crate) name: String,
    pub(crate) shape: Shape,
}

impl Dyn {
    /// The fixed dimensions, `None` for the batch.
    pub(crate) fn dims(&self) -> Vec<Option<usize>> {
        self.shape.iter().map(|d| d.fixed()).collect()
    }

    /// The rank.
    pub(crate) fn rank(&self) -> usize {
        self.shape.len()
    }
}

/// What an ONNX value is at import time.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Const(Const),
    Shape(Vec<SymDim>),
    /// One entry of a shape vector (`Gather` of a shape with a scalar index).
    SymScalar(SymDim),
    Dyn(Dyn),
    /// Raw classifier scores `[rows, k]`: post-processing applies `activation` and picks labels
    /// from `classes`.
    Scores {
        scores: Dyn,
        activation: Activation,
        classes: Vec<Value>,
    },
    /// A classifier's label output (Ingot's post-processing computes labels).
    Labels,
    /// A categorical input column (named), one-hot encoded by the pre-processing.
    Category(String),
}

/// The emitted graph and its tensors.
#[derive(Default)]
pub(crate) struct Emitted {
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) tensors: Vec<(String, TensorData)>,
    /// Shapes of the stored tensors, by name.
    stored: HashMap<String, Shape>,
    /// Names in use (values and tensors).
    taken: HashSet<String>,
    /// The lowest opset the emitted nodes need.
    pub(crate) opset: u32,
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_` (Ingot's tensor names),
/// at most 180 characters.
pub(crate) fn clean(name: &str) -> String {
    let mut s: String = name
        .trim_start_matches(['/', ':'])
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    s.truncate(180);
    if s.is_empty() {
        s.push('v');
    }
    s
}

impl Emitted {
    /// A fresh value or tensor name derived from `base`.
    pub(crate) fn fresh(&mut self, base: &str) -> String {
        let base = clean(base);
        let mut name = base.clone();
        let mut i = 1;
        while self.taken.contains(&name) {
            name = format!("{base}.{i}");
            i += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// Reserves `name` exactly (graph inputs).
    pub(crate) fn reserve(&mut self, name: &str) {
        self.taken.insert(name.to_string());
    }

    /// Stores f32 `values` of shape `dims` as a tensor; returns its name.
    pub(crate) fn store(&mut self, base: &str, dims: Vec<usize>, values: &[f32]) -> Result<String, String> {
        let name = self.fresh(base);
        let data = TensorData::from_f32(dims.clone(), values).map_err(|e| e.to_string())?;
        self.stored.insert(name.clone(), dims.into_iter().map(Dim::Fixed).collect());
        self.tensors.push((name.clone(), data));
        Ok(name)
    }

    /// Stores a tensor already encoded (the tree ensembles' integer tables).
    pub(crate) fn store_encoded(&mut self, name: String, data: TensorData) {
        self.stored.insert(name.clone(), data.shape.iter().map(|&d| Dim::Fixed(d)).collect());
        self.taken.insert(name.clone());
        self.tensors.push((name, data));
    }

    /// Stores a float constant (any kind converted to f32).
    pub(crate) fn store_const(&mut self, base: &str, c: &Const) -> Result<String, String> {
        let values = c.to_f32().ok_or("a string constant cannot be an operand")?;
        self.store(base, c.dims.clone(), &values)
    }

    /// The f32 values of stored tensor `name`.
    pub(crate) fn stored_values(&self, name: &str) -> Option<Vec<f32>> {
        self.tensors
            .iter()
            .find(|(n, _)| n == name)
            .filter(|(_, t)| t.dtype == DType::F32)
            .and_then(|(_, t)| t.view().to_f32_vec().ok())
    }

    /// Replaces the values of stored f32 tensor `name` (same length).
    pub(crate) fn restore(&mut self, name: &str, dims: Vec<usize>, values: &[f32]) -> Result<(), String> {
        let data = TensorData::from_f32(dims.clone(), values).map_err(|e| e.to_string())?;
        let slot = self.tensors.iter_mut().find(|(n, _)| n == name).ok_or("no such tensor")?;
        slot.1 = data;
        self.stored.insert(name.to_string(), dims.into_iter().map(Dim::Fixed).collect());
        Ok(())
    }

    /// Emits node `op` over `args` (computed values or stored tensors, in order), inferring
    /// its output shape with the graph's own rules; its output is named after `out`.
    pub(crate) fn emit(
        &mut self,
        op: &str,
        args: &[Arg<'_>],
        attrs: BTreeMap<String, Json>,
        out: &str,
    ) -> Result<Dyn, String> {
        let mut shapes: Vec<Shape> = Vec::with_capacity(args.len());
        let mut names: Vec<String> = Vec::with_capacity(args.len());
        for arg in args {
            match arg {
                Arg::Value(d) => {
                    shapes.push(d.shape.clone());
                    names.push(d.name.clone());
                }
                Arg::Stored(s) => {
                    shapes.push(
                        self.stored.get(*s).cloned().ok_or_else(|| format!("tensor `{s}` was not stored"))?,
                    );
                    names.push(s.to_string());
                }
            }
        }
        let refs: Vec<&Shape> = shapes.iter().collect();
        let (mut outs, opset) = infer_node(op, &attrs, &refs)?;
        self.opset = self.opset.max(opset);
        if outs.len() != 1 {
            return Err(format!("{op} has {} outputs", outs.len()));
        }
        let name = self.fresh(out);
        self.nodes.push(NodeSpec {
            name: Some(format!("{name}.{op}")),
            op: op.into(),
            inputs: names,
            outputs: vec![name.clone()],
            attrs,
        });
        Ok(Dyn { name, shape: outs.remove(0) })
    }

    /// The index of the node that produced `value`.
    pub(crate) fn producer(&self, value: &str) -> Option<usize> {
        self.nodes.iter().rposition(|n| n.outputs.iter().any(|o| o == value))
    }
}

/// An operand of an emitted node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// A value computed at predict time.
    Value(&'a Dyn),
    /// A tensor stored in the bundle, by name.
    Stored(&'a str),
}

/// Attributes from `(key, value)` pairs.
pub(crate) fn attrs<const N: usize>(pairs: [(&str, Json); N]) -> BTreeMap<String, Json> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

impl Val {
    /// What kind of value this is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Val::Const(c) => match c.data {
                Data::F32(_) => "a float constant",
                Data::I64(_) => "an integer constant",
                Data::Str(_) => "a string constant",
            },
            Val::Shape(_) | Val::SymScalar(_) => "a shape",
            Val::Dyn(_) => "a computed value",
            Val::Scores { .. } => "classifier scores",
            Val::Labels => "class labels",
            Val::Category(_) => "a categorical input column",
        }
    }
}
