//! The graph inputs of an ONNX model as Ingot sees them.
//!
//! Batch-first 2-D inputs (`[N, k]` floats or integers, `[N, 1]` strings, as skl2onnx writes
//! one per column) become the columns of a tabular pre-processing stage whose output is the
//! Ingot graph's one input, `features`: numeric columns first, then one block per categorical
//! column one-hot encoded by the stage (the `OneHotEncoder` that reads it in the ONNX graph).
//! Each ONNX input is then a `Slice` of `features`. A single input of higher rank (an image
//! batch `[N, C, H, W]`) is a dense input, flattened per row and reshaped back in the graph.

use serde_json::json;

use super::attrs::Attrs;
use super::proto::{data_type, Dimension, GraphProto, NodeProto, TypeProto, ValueInfoProto};
use super::translate::{attrs, Arg, Dyn, Val};
use super::{Importer, OnnxImportOptions};
use crate::error::{Error, Result};
use crate::format::{
    ElementType, HandleUnknown, PreprocessSpec, RequestForm, TabularSpec, TabularStepSpec, TensorSpec,
    TransformerSpec,
};
use crate::graph::Dim;
use crate::value::Value;

/// A categorical input column and the block of `features` the pre-processing gives it: one
/// column per category (a `OneHotEncoder` reads it) or one code (a `LabelEncoder`).
#[derive(Debug, Clone)]
pub(crate) struct Categorical {
    /// The ONNX input's name.
    pub(crate) input: String,
    /// The pre-processing step that encodes it.
    pub(crate) step: TabularStepSpec,
    /// Columns of its block.
    pub(crate) width: usize,
    /// First column of the block in `features`.
    pub(crate) offset: usize,
}

/// The encoding of categorical input `name` by `node` (a `OneHotEncoder` or a `LabelEncoder`
/// whose values number the keys `0 … k-1`).
fn categorical_column(node: &NodeProto, name: &str, strings: bool) -> Result<Categorical> {
    let a = Attrs::of(node);
    let field = |e: String| Error::manifest(format!("{} `{}`", node.op_type, node.name), e);
    let keys = |s: &str, i: &str| -> Result<Vec<Value>> {
        Ok(if strings {
            a.strings(s).map_err(field)?.unwrap_or_default().into_iter().map(Value::String).collect()
        } else {
            a.ints(i)
                .map_err(field)?
                .unwrap_or_default()
                .into_iter()
                .map(|v| Value::Number(v as f64))
                .collect()
        })
    };
    if node.op_type == "OneHotEncoder" {
        let categories = keys("cats_strings", "cats_int64s")?;
        if categories.is_empty() {
            return Err(field("no categories for the input's type".into()));
        }
        let handle_unknown = if a.int_or("zeros", 1).map_err(field)? == 1 {
            HandleUnknown::Ignore
        } else {
            HandleUnknown::Error
        };
        let width = categories.len();
        let step =
            TabularStepSpec::OneHotEncoder { categories: vec![categories], handle_unknown, drop: None };
        return Ok(Categorical { input: name.into(), step, width, offset: 0 });
    }
    let keys = keys("keys_strings", "keys_int64s")?;
    let (codes, default): (Vec<f64>, f64) = if let Some(v) = a.ints("values_int64s").map_err(field)? {
        (v.iter().map(|&c| c as f64).collect(), a.int_or("default_int64", -1).map_err(field)? as f64)
    } else if let Some(v) = a.floats("values_floats").map_err(field)? {
        (
            v.iter().map(|&c| f64::from(c)).collect(),
            f64::from(a.float_or("default_float", -0.0).map_err(field)?),
        )
    } else {
        return Err(Error::Unsupported {
            what: format!("LabelEncoder `{}` to strings or tensors", node.name),
        });
    };
    if keys.is_empty() || codes.len() != keys.len() {
        return Err(field(format!("{} keys for {} values", keys.len(), codes.len())));
    }
    // Ingot's ordinal encoder numbers its categories in order: sort the keys by their codes.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&i, &j| codes[i].total_cmp(&codes[j]));
    if order.iter().enumerate().any(|(rank, &i)| codes[i] != rank as f64) {
        return Err(Error::Unsupported {
            what: format!("LabelEncoder `{}` whose values are not 0 … k-1 (an ordinal encoding)", node.name),
        });
    }
    let step = TabularStepSpec::OrdinalEncoder {
        categories: vec![order.iter().map(|&i| keys[i].clone()).collect()],
        handle_unknown: HandleUnknown::UseEncodedValue,
        unknown_value: Some(default),
        encoded_missing_value: None,
    };
    Ok(Categorical { input: name.into(), step, width: 1, offset: 0 })
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

impl Importer {
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
            let encoder = graph.node.iter().find(|n| {
                matches!(n.op_type.as_str(), "OneHotEncoder" | "LabelEncoder")
                    && n.input.first() == Some(name)
            });
            match (*elem, encoder) {
                (data_type::STRING, None) => {
                    return Err(Error::Unsupported {
                        what: format!("string input `{name}` that no OneHotEncoder or LabelEncoder reads"),
                    })
                }
                (data_type::STRING | data_type::INT64 | data_type::INT32, Some(node)) => {
                    if k != 1 {
                        return Err(Error::Unsupported {
                            what: format!("categorical input `{name}` of {k} columns (one column per input)"),
                        });
                    }
                    let strings = *elem == data_type::STRING;
                    let dtype = if strings { ElementType::String } else { ElementType::I64 };
                    categorical.push((categorical_column(node, name, strings)?, dtype));
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
            offset += c.width;
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
                    name: format!("encode_{}", c.input),
                    columns: vec![c.input.clone()],
                    steps: vec![c.step.clone()],
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
