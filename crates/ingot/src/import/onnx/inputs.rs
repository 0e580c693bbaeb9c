//! The graph inputs of an ONNX model as Ingot sees them.
//!
//! Batch-first 2-D inputs (`[N, k]` floats or integers, `[N, 1]` strings, as skl2onnx writes
//! one per column) become the columns of a tabular pre-processing stage whose output is the
//! Ingot graph's one input, `features`: numeric columns first, then one block per categorical
//! column one-hot encoded by the stage (the `OneHotEncoder` that reads it in the ONNX graph).
//! Each ONNX input is then a `Slice` of `features`. A single input of higher rank (an image
//! batch `[N, C, H, W]`) is a dense input, flattened per row and reshaped back in the graph.

use serde_json::json;

use super::proto::{data_type, Dimension, GraphProto, TypeProto, ValueInfoProto};
use super::translate::{attrs, Arg, Dyn, Val};
use super::{Importer, OnnxImportOptions};
use crate::error::{Error, Result};
use crate::format::{
    ElementType, HandleUnknown, PreprocessSpec, RequestForm, TabularSpec, TabularStepSpec, TensorSpec,
    TransformerSpec,
};
use crate::graph::Dim;
use crate::value::Value;

/// A categorical input column and the one-hot block the pre-processing gives it.
#[derive(Debug, Clone)]
pub(crate) struct Categorical {
    /// The ONNX input's name.
    pub(crate) input: String,
    pub(crate) categories: Vec<Value>,
    pub(crate) handle_unknown: HandleUnknown,
    /// First column of the block in `features`.
    pub(crate) offset: usize,
}

/// How the ONNX inputs map onto the bundle's input.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    /// Signature entries (the raw columns, or the dense input).
    signature: Vec<TensorSpec>,
    /// Numeric column names, in `features` order.
    numeric: Vec<String>,
    pub(crate) categorical: Vec<Categorical>,
    /// Width of the graph input.
    width: usize,
    /// A single dense input of rank > 2 (no pre-processing).
    dense: bool,
    /// The graph input of a tabular model.
    pub(crate) features: Option<Dyn>,
}

/// A graph input's element type and dimensions (`None` = symbolic).
fn tensor_type(v: &ValueInfoProto) -> std::result::Result<(i32, Vec<Option<i64>>), String> {
    let Some(TypeProto { tensor_type: Some(t), .. }) = &v.r#type else {
        return Err("is not a tensor (sequences and maps are not supported as inputs)".into());
    };
    let dims = t
        .shape
        .as_ref()
        .ok_or("has no shape")?
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(Dimension::Value(v)) if *v > 0 => Some(*v),
            _ => None,
        })
        .collect();
    Ok((t.elem_type, dims))
}

impl Importer<'_> {
    /// Maps the graph inputs (initializers excluded) to the bundle's input.
    pub(super) fn graph_inputs(&mut self, graph: &GraphProto, options: &OnnxImportOptions) -> Result<()> {
        let mut found = Vec::new();
        for (i, v) in graph.input.iter().enumerate() {
            if self.values.contains_key(&v.name) {
                continue;
            }
            let field = format!("onnx.graph.input[{i}] `{}`", v.name);
            let (elem, mut dims) = tensor_type(v).map_err(|e| Error::manifest(&field, e))?;
            if let Some((_, fixed)) = options.input_shapes.iter().find(|(n, _)| n == &v.name) {
                if fixed.len() != dims.len() {
                    return Err(Error::usage(format!(
                        "--input-shape for `{}` has {} dimensions; the model's input has {}",
                        v.name,
                        fixed.len(),
                        dims.len()
                    )));
                }
                dims = fixed.iter().map(|&d| (d > 0).then_some(d)).collect();
            }
            if dims.is_empty() {
                return Err(Error::Unsupported { what: format!("{field}: scalar inputs") });
            }
            if dims[1..].iter().any(Option::is_none) {
                return Err(Error::Unsupported {
                    what: format!(
                        "{field}: dimensions {dims:?} are symbolic beyond the batch; fix them with --input-shape {}=-1x…",
                        v.name
                    ),
                });
            }
            let dims: Vec<usize> = dims[1..].iter().map(|d| d.unwrap_or(1) as usize).collect();
            found.push((v.name.clone(), elem, dims));
        }
        match found.as_slice() {
            [] => Err(Error::manifest("onnx.graph.input", "the model has no inputs")),
            [(name, elem, dims)] if dims.len() > 1 => {
                if !matches!(*elem, data_type::FLOAT | data_type::DOUBLE) {
                    return Err(Error::Unsupported {
                        what: format!(
                            "input `{name}` of {} with rank {}",
                            data_type::name(*elem),
                            dims.len() + 1
                        ),
                    });
                }
                self.dense_input(name, dims)
            }
            _ => self.tabular_inputs(graph, &found, options),
        }
        .map_err(|e| match e {
            Error::Manifest { .. } | Error::Unsupported { .. } | Error::Usage { .. } => e,
            other => Error::manifest("onnx.graph.input", other.to_string()),
        })
    }

    fn dense_input(&mut self, name: &str, dims: &[usize]) -> Result<()> {
        let width: usize = dims.iter().product();
        let flat = format!("{}.flat", super::translate::clean(name));
        self.out.reserve(&flat);
        let input = Dyn { name: flat, shape: vec![Dim::Var, Dim::Fixed(width)] };
        let mut target = vec![0i64];
        target.extend(dims.iter().map(|&d| d as i64));
        let shaped = self.reshape(&input, &target).map_err(|e| Error::manifest("onnx.graph.input", e))?;
        self.values.insert(name.to_string(), Val::Dyn(shaped));
        let mut shape = vec![-1];
        shape.extend(dims.iter().map(|&d| d as i64));
        self.inputs = Inputs {
            signature: vec![TensorSpec { name: name.into(), dtype: ElementType::F32, shape }],
            width,
            dense: true,
            ..Inputs::default()
        };
        Ok(())
    }

    fn tabular_inputs(
        &mut self,
        graph: &GraphProto,
        found: &[(String, i32, Vec<usize>)],
        options: &OnnxImportOptions,
    ) -> Result<()> {
        let mut numeric: Vec<(String, usize, ElementType)> = Vec::new();
        let mut categorical = Vec::new();
        for (name, elem, dims) in found {
            let k = match dims.as_slice() {
                [k] => *k,
                [] => 1,
                _ => unreachable!("rank > 2 inputs are dense"),
            };
            let encoder =
                graph.node.iter().find(|n| n.op_type == "OneHotEncoder" && n.input.first() == Some(name));
            match (*elem, encoder) {
                (data_type::STRING, None) => {
                    return Err(Error::Unsupported {
                        what: format!("string input `{name}` that no OneHotEncoder reads"),
                    })
                }
                (data_type::STRING | data_type::INT64 | data_type::INT32, Some(node)) => {
                    if k != 1 {
                        return Err(Error::Unsupported {
                            what: format!("categorical input `{name}` of {k} columns (one column per input)"),
                        });
                    }
                    let a = super::attrs::Attrs::of(node);
                    let field = |e: String| Error::manifest(format!("OneHotEncoder `{}`", node.name), e);
                    let categories: Vec<Value> = if *elem == data_type::STRING {
                        a.strings("cats_strings")
                            .map_err(field)?
                            .unwrap_or_default()
                            .into_iter()
                            .map(Value::String)
                            .collect()
                    } else {
                        a.ints("cats_int64s")
                            .map_err(field)?
                            .unwrap_or_default()
                            .into_iter()
                            .map(|v| Value::Number(v as f64))
                            .collect()
                    };
                    if categories.is_empty() {
                        return Err(field("no categories for the input's type".into()));
                    }
                    let handle_unknown = if a.int_or("zeros", 1).map_err(field)? == 1 {
                        HandleUnknown::Ignore
                    } else {
                        HandleUnknown::Error
                    };
                    let dtype =
                        if *elem == data_type::STRING { ElementType::String } else { ElementType::I64 };
                    categorical.push((
                        Categorical { input: name.clone(), categories, handle_unknown, offset: 0 },
                        dtype,
                    ));
                }
                (data_type::FLOAT | data_type::DOUBLE, _) => {
                    numeric.push((name.clone(), k, ElementType::F64))
                }
                (data_type::INT64 | data_type::INT32, None) => {
                    numeric.push((name.clone(), k, ElementType::I64))
                }
                (other, _) => {
                    return Err(Error::Unsupported {
                        what: format!("input `{name}` of element type {}", data_type::name(other)),
                    })
                }
            }
        }
        let n_numeric: usize = numeric.iter().map(|(_, k, _)| k).sum();
        let names: Vec<String> = match &options.feature_names {
            Some(names) if names.len() == n_numeric => names.clone(),
            Some(names) => {
                return Err(Error::usage(format!(
                    "{} feature names for {n_numeric} numeric input columns",
                    names.len()
                )))
            }
            None => numeric
                .iter()
                .flat_map(|(name, k, _)| {
                    (0..*k).map(move |j| if *k == 1 { name.clone() } else { format!("{name}_{j}") })
                })
                .collect(),
        };
        let mut offset = n_numeric;
        for (c, _) in &mut categorical {
            c.offset = offset;
            offset += c.categories.len();
        }
        let width = offset;
        self.out.reserve("features");
        let features = Dyn { name: "features".into(), shape: vec![Dim::Var, Dim::Fixed(width)] };
        let whole = numeric.len() == 1 && categorical.is_empty();
        let mut column = 0;
        let mut signature = Vec::new();
        let mut names_iter = names.iter().cloned();
        for (name, k, dtype) in &numeric {
            let value = if whole {
                features.clone()
            } else {
                self.slice_columns(&features, column, *k, name)
                    .map_err(|e| Error::manifest("onnx.graph.input", e))?
            };
            self.values.insert(name.clone(), Val::Dyn(value));
            for col in names_iter.by_ref().take(*k) {
                signature.push(TensorSpec { name: col, dtype: *dtype, shape: vec![-1] });
            }
            column += k;
        }
        for (c, dtype) in &categorical {
            signature.push(TensorSpec { name: c.input.clone(), dtype: *dtype, shape: vec![-1] });
            self.values.insert(c.input.clone(), Val::Category(c.input.clone()));
        }
        self.inputs = Inputs {
            signature,
            numeric: names,
            categorical: categorical.into_iter().map(|(c, _)| c).collect(),
            width,
            dense: false,
            features: Some(features),
        };
        Ok(())
    }

    /// Columns `start..start + k` of `[N, width]` value `x`.
    pub(crate) fn slice_columns(
        &mut self,
        x: &Dyn,
        start: usize,
        k: usize,
        out: &str,
    ) -> std::result::Result<Dyn, String> {
        let a = attrs([("starts", json!([start])), ("ends", json!([start + k])), ("axes", json!([1]))]);
        self.out.emit("Slice", &[Arg::Value(x)], a, out)
    }
}

impl Inputs {
    /// The request forms the bundle accepts.
    pub(crate) fn forms(&self) -> Vec<RequestForm> {
        if self.dense {
            vec![RequestForm::Dense]
        } else if self.categorical.is_empty() {
            vec![RequestForm::Records, RequestForm::Columns, RequestForm::Dense]
        } else {
            vec![RequestForm::Records, RequestForm::Columns]
        }
    }

    /// The signature inputs, the pre-processing stage (none for a dense input) and the graph
    /// input.
    pub(crate) fn finish(&self, keep_missing: bool) -> (Vec<TensorSpec>, Option<PreprocessSpec>, TensorSpec) {
        let (name, preprocess) = if self.dense {
            (format!("{}.flat", super::translate::clean(&self.signature[0].name)), None)
        } else {
            let mut transformers = Vec::new();
            if !self.numeric.is_empty() {
                transformers.push(TransformerSpec {
                    name: "numeric".into(),
                    columns: self.numeric.clone(),
                    steps: vec![TabularStepSpec::Passthrough],
                });
            }
            for c in &self.categorical {
                transformers.push(TransformerSpec {
                    name: format!("onehot_{}", c.input),
                    columns: vec![c.input.clone()],
                    steps: vec![TabularStepSpec::OneHotEncoder {
                        categories: vec![c.categories.clone()],
                        handle_unknown: c.handle_unknown,
                        drop: None,
                    }],
                });
            }
            (
                "features".to_string(),
                Some(PreprocessSpec::Tabular(TabularSpec { transformers, keep_missing })),
            )
        };
        let graph_input = TensorSpec { name, dtype: ElementType::F32, shape: vec![-1, self.width as i64] };
        (self.signature.clone(), preprocess, graph_input)
    }
}
