//! Translation of `ai.onnx.ml` nodes (what skl2onnx and onnxmltools emit for scikit-learn,
//! XGBoost and LightGBM models).
//!
//! Scalers and imputers become element-wise graph nodes; a `OneHotEncoder` over a categorical
//! input column is done by the tabular pre-processing (`inputs`), so here it is a slice of the
//! graph input; linear models become `Linear`; tree ensembles become Ingot's `TreeEnsemble`.
//! A classifier's `post_transform` and labels become post-processing ([`Val::Scores`]): its
//! label output is dropped (Ingot computes labels from the probabilities), `ZipMap` passes the
//! scores through, and the L1 `Normalizer` that follows a one-vs-rest `LOGISTIC` is what
//! Ingot's `logistic` activation does over several columns.

use serde_json::json;

use super::attrs::{Attrs, PostTransform};
use super::proto::NodeProto;
use super::translate::{attrs, Arg, Dyn, Val};
use super::{ml_trees, Fail, Importer};
use crate::format::{Activation, Link};
use crate::trees::Head;
use crate::value::Value;

/// The `ai.onnx.ml` ops the importer translates.
pub(crate) fn supported(op: &str) -> bool {
    matches!(
        op,
        "Scaler"
            | "Normalizer"
            | "Imputer"
            | "LinearClassifier"
            | "LinearRegressor"
            | "ZipMap"
            | "OneHotEncoder"
            | "LabelEncoder"
            | "ArrayFeatureExtractor"
            | "FeatureVectorizer"
            | "TreeEnsembleClassifier"
            | "TreeEnsembleRegressor"
    )
}

fn unsupported(what: impl Into<String>) -> Fail {
    Fail::Unsupported(what.into())
}

/// Class labels from `classlabels_strings` / `classlabels_int64s` (or `_ints`).
fn class_labels(a: &Attrs<'_>) -> Result<Option<Vec<Value>>, Fail> {
    if let Some(s) = a.strings("classlabels_strings")?.filter(|s| !s.is_empty()) {
        return Ok(Some(s.into_iter().map(Value::String).collect()));
    }
    for key in ["classlabels_int64s", "classlabels_ints"] {
        if let Some(v) = a.ints(key)?.filter(|v| !v.is_empty()) {
            return Ok(Some(v.into_iter().map(|i| Value::Number(i as f64)).collect()));
        }
    }
    Ok(None)
}

/// `values` for `n` columns: one per column, or one for all.
fn per_column(values: Vec<f32>, n: usize, what: &str) -> Result<Vec<f32>, Fail> {
    match values.len() {
        1 => Ok(vec![values[0]; n]),
        len if len == n => Ok(values),
        len => Err(Fail::Invalid(format!("{len} {what} for {n} columns"))),
    }
}

impl Importer {
    /// The computed `[N, F]` input `i` and its width.
    fn rows(&mut self, ins: &[Option<Val>], i: usize) -> Result<(Dyn, usize), Fail> {
        let d = self.value(ins, i)?;
        match d.dims().as_slice() {
            [None, Some(f)] => {
                let f = *f;
                Ok((d, f))
            }
            other => Err(unsupported(format!("input of shape {other:?} (rows of features are read)"))),
        }
    }

    /// Translates one `ai.onnx.ml` node.
    pub(crate) fn ml_node(&mut self, node: &NodeProto, ins: &[Option<Val>]) -> Result<Vec<Val>, Fail> {
        let a = Attrs::of(node);
        let op = node.op_type.as_str();
        let out = node.output.first().cloned().unwrap_or_else(|| op.to_string());
        match op {
            "ZipMap" => {
                let classes = class_labels(&a)?.ok_or("ZipMap without class labels")?;
                match ins.first().and_then(Option::as_ref) {
                    Some(Val::Scores { scores, activation, .. }) => {
                        Ok(vec![Val::Scores { scores: scores.clone(), activation: *activation, classes }])
                    }
                    Some(Val::Dyn(d)) => {
                        Ok(vec![Val::Scores { scores: d.clone(), activation: Activation::Identity, classes }])
                    }
                    _ => Err(unsupported("ZipMap over something other than probabilities")),
                }
            }
            "Normalizer" => {
                let norm = a.string("norm")?.unwrap_or_else(|| "MAX".into());
                if let Some(Val::Scores { scores, activation, classes }) =
                    ins.first().and_then(Option::as_ref)
                {
                    // Ingot's post-processing normalises one-vs-rest sigmoids and softmax sums to 1.
                    let multi = scores.shape.get(1).and_then(|d| d.fixed()).is_some_and(|w| w > 1);
                    if norm == "L1"
                        && multi
                        && matches!(activation, Activation::Logistic | Activation::Softmax)
                    {
                        return Ok(vec![Val::Scores {
                            scores: scores.clone(),
                            activation: *activation,
                            classes: classes.clone(),
                        }]);
                    }
                }
                let (x, _) = self.rows(ins, 0)?;
                let norm = match norm.as_str() {
                    "MAX" => "max",
                    "L1" => "l1",
                    "L2" => "l2",
                    other => return Err(Fail::Invalid(format!("unknown norm `{other}`"))),
                };
                Ok(vec![Val::Dyn(self.out.emit(
                    "Normalize",
                    &[Arg::Value(&x)],
                    attrs([("norm", json!(norm))]),
                    &out,
                )?)])
            }
            "Scaler" => {
                let (x, f) = self.rows(ins, 0)?;
                let offset = per_column(a.floats("offset")?.unwrap_or_else(|| vec![0.0]), f, "offsets")?;
                let scale = per_column(a.floats("scale")?.unwrap_or_else(|| vec![1.0]), f, "scales")?;
                let mut y = x;
                if offset.iter().any(|&v| v != 0.0) {
                    let o = self.out.store(&format!("{out}.offset"), vec![f], &offset)?;
                    y = self.out.emit(
                        "Sub",
                        &[Arg::Value(&y), Arg::Stored(&o)],
                        Default::default(),
                        &format!("{out}.centered"),
                    )?;
                }
                if scale.iter().any(|&v| v != 1.0) {
                    let s = self.out.store(&format!("{out}.scale"), vec![f], &scale)?;
                    y = self.out.emit("Mul", &[Arg::Value(&y), Arg::Stored(&s)], Default::default(), &out)?;
                }
                Ok(vec![Val::Dyn(y)])
            }
            "Imputer" => {
                let (x, f) = self.rows(ins, 0)?;
                if a.has("imputed_value_int64s") {
                    return Err(unsupported("integer imputation"));
                }
                let replaced = a.float_or("replaced_value_float", 0.0)?;
                if !replaced.is_nan() {
                    return Err(unsupported(format!("Imputer replacing {replaced} (NaN is read)")));
                }
                let fill = per_column(
                    a.floats("imputed_value_floats")?.ok_or("Imputer needs imputed_value_floats")?,
                    f,
                    "fill values",
                )?;
                let name = self.out.store(&format!("{out}.fill"), vec![f], &fill)?;
                self.keep_missing = true;
                Ok(vec![Val::Dyn(self.out.emit(
                    "Impute",
                    &[Arg::Value(&x), Arg::Stored(&name)],
                    Default::default(),
                    &out,
                )?)])
            }
            "LinearRegressor" => {
                if a.post_transform()? != PostTransform::None {
                    return Err(unsupported("LinearRegressor with a post_transform"));
                }
                let (x, f) = self.rows(ins, 0)?;
                let targets = a.int_or("targets", 1)?.max(1) as usize;
                let (w, b) = self.coefficients(&a, f, targets)?;
                Ok(vec![Val::Dyn(self.linear_rows(&x, &w, targets, f, &b, &out)?)])
            }
            "LinearClassifier" => self.linear_classifier(node, &a, ins),
            "OneHotEncoder" | "LabelEncoder" => match ins.first().and_then(Option::as_ref) {
                Some(Val::Category(name)) => {
                    let c = self
                        .inputs
                        .categorical
                        .iter()
                        .find(|c| &c.input == name)
                        .cloned()
                        .ok_or("unknown column")?;
                    let features = self.inputs.features.clone().ok_or("no tabular input")?;
                    let cols = self.slice_columns(&features, c.offset, c.width, &out)?;
                    if op == "LabelEncoder" {
                        return Ok(vec![Val::Dyn(cols)]);
                    }
                    Ok(vec![Val::Dyn(self.reshape(&cols, &[0, 1, c.width as i64])?)])
                }
                _ => {
                    Err(unsupported(format!("{op} inside the graph (only over a categorical input column)")))
                }
            },
            "ArrayFeatureExtractor" => {
                let (x, f) = self.rows(ins, 0)?;
                let idx = match ins.get(1).and_then(Option::as_ref) {
                    Some(Val::Const(c)) => c.to_i64().ok_or("indices must be integers")?,
                    _ => return Err(unsupported("ArrayFeatureExtractor with computed indices")),
                };
                if idx.is_empty() || idx.iter().any(|&i| i < 0 || i as usize >= f) {
                    return Err(Fail::Invalid(format!("indices {idx:?} out of range for {f} columns")));
                }
                // Runs of consecutive columns become one slice each.
                let mut runs: Vec<(usize, usize)> = Vec::new();
                for &i in &idx {
                    match runs.last_mut() {
                        Some((s, n)) if *s + *n == i as usize => *n += 1,
                        _ => runs.push((i as usize, 1)),
                    }
                }
                let parts: Vec<Dyn> = runs
                    .iter()
                    .enumerate()
                    .map(|(r, &(s, n))| self.slice_columns(&x, s, n, &format!("{out}.cols{r}")))
                    .collect::<Result<_, _>>()?;
                if let [one] = parts.as_slice() {
                    return Ok(vec![Val::Dyn(one.clone())]);
                }
                let args: Vec<Arg<'_>> = parts.iter().map(Arg::Value).collect();
                Ok(vec![Val::Dyn(self.out.emit("Concat", &args, attrs([("axis", json!(1))]), &out)?)])
            }
            "FeatureVectorizer" => {
                let parts: Vec<Dyn> =
                    (0..ins.len()).map(|i| self.rows(ins, i).map(|(d, _)| d)).collect::<Result<_, _>>()?;
                let args: Vec<Arg<'_>> = parts.iter().map(Arg::Value).collect();
                Ok(vec![Val::Dyn(self.out.emit("Concat", &args, attrs([("axis", json!(1))]), &out)?)])
            }
            "TreeEnsembleClassifier" | "TreeEnsembleRegressor" => self.tree_ensemble(node, ins, &out),
            other => Err(unsupported(format!("{other} has no translation"))),
        }
    }

    /// `coefficients` as `[rows, f]` and `intercepts` as `[rows]`.
    fn coefficients(&self, a: &Attrs<'_>, f: usize, rows: usize) -> Result<(Vec<f32>, Vec<f32>), Fail> {
        let w = a.floats("coefficients")?.ok_or("no coefficients")?;
        if w.len() != rows * f {
            return Err(Fail::Invalid(format!("{} coefficients for {rows} × {f}", w.len())));
        }
        let b = a.floats("intercepts")?.unwrap_or_else(|| vec![0.0; rows]);
        if b.len() != rows {
            return Err(Fail::Invalid(format!("{} intercepts for {rows} outputs", b.len())));
        }
        Ok((w, b))
    }

    fn linear_rows(
        &mut self,
        x: &Dyn,
        w: &[f32],
        m: usize,
        k: usize,
        b: &[f32],
        out: &str,
    ) -> Result<Dyn, Fail> {
        let wn = self.out.store(&format!("{out}.coefficients"), vec![m, k], w)?;
        let bn = self.out.store(&format!("{out}.intercepts"), vec![m], b)?;
        Ok(self.out.emit(
            "Linear",
            &[Arg::Value(x), Arg::Stored(&wn), Arg::Stored(&bn)],
            Default::default(),
            out,
        )?)
    }

    fn linear_classifier(
        &mut self,
        node: &NodeProto,
        a: &Attrs<'_>,
        ins: &[Option<Val>],
    ) -> Result<Vec<Val>, Fail> {
        let (x, f) = self.rows(ins, 0)?;
        let classes = class_labels(a)?.ok_or("LinearClassifier without class labels")?;
        let n = a.floats("coefficients")?.map_or(0, |w| w.len()) / f.max(1);
        let out = node.output.get(1).cloned().unwrap_or_else(|| "scores".into());
        let (w, b) = self.coefficients(a, f, n.max(1))?;
        let post = a.post_transform()?;
        let activation = match (post, n, classes.len()) {
            (PostTransform::Logistic, 1, 2) => Activation::Logistic,
            (_, 1, _) => {
                return Err(unsupported(format!("a binary LinearClassifier with post_transform {post:?}")))
            }
            (_, n, k) if n != k => {
                return Err(Fail::Invalid(format!("{n} coefficient rows for {k} classes")))
            }
            (PostTransform::None, ..) => Activation::None,
            (PostTransform::Logistic, ..) => Activation::Logistic,
            (PostTransform::Softmax, ..) => Activation::Softmax,
            (other, ..) => return Err(unsupported(format!("post_transform {other:?}"))),
        };
        let scores = self.linear_rows(&x, &w, n, f, &b, &out)?;
        Ok(vec![Val::Labels, Val::Scores { scores, activation, classes }])
    }

    fn tree_ensemble(&mut self, node: &NodeProto, ins: &[Option<Val>], out: &str) -> Result<Vec<Val>, Fail> {
        let (x, f) = self.rows(ins, 0)?;
        let (ensemble, head) = ml_trees::tree_ensemble(node, f).map_err(Fail::Invalid)?;
        let scores_name = self.out.fresh(&format!("{out}.scores"));
        let prefix = self.out.fresh(&format!("{out}.trees"));
        let parts =
            ensemble.to_graph(&x.name, &scores_name, &prefix).map_err(|e| Fail::Invalid(e.to_string()))?;
        for (name, data) in parts.tensors {
            self.out.store_encoded(name, data);
        }
        self.out.nodes.push(parts.node);
        self.keep_missing = true;
        let scores = Dyn {
            name: scores_name,
            shape: vec![crate::graph::Dim::Var, crate::graph::Dim::Fixed(ensemble.n_outputs)],
        };
        match head {
            Head::Classifier { classes, activation } => {
                Ok(vec![Val::Labels, Val::Scores { scores, activation, classes }])
            }
            Head::Regressor { link: Link::Identity } => Ok(vec![Val::Dyn(scores)]),
            Head::Regressor { link } => Err(unsupported(format!("a regressor with link {link:?}"))),
        }
    }
}
