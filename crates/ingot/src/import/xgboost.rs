//! XGBoost model file (JSON or UBJSON) → `.ingot` tabular bundle, without Python.
//!
//! Reads what `Booster.save_model("model.json")` or `("model.ubj")` writes (XGBoost 1.0 and
//! later): the `gbtree` and `dart` boosters with one value per leaf, and the objectives listed
//! in docs/trees.md. The trees become one [`TreeEnsemble`] with XGBoost's own rule (`x <
//! threshold` goes left, a missing value — NaN — goes to `default_left`), its f32 thresholds
//! and leaf values kept exactly, and the base score converted to margin space as XGBoost does
//! when it loads a model; the post-processing applies the objective's transform.
//!
//! **Format detection.** Both formats start with `{`. XGBoost's UBJSON writes the length of
//! the first key right after it, so a `{` directly followed by a UBJSON integer marker (`i`,
//! `U`, `I`, `l`, `L`) or an optimized-container marker (`$`, `#`) is read as UBJSON;
//! anything else as JSON text (whose second byte is whitespace, `"` or `}`). The file name is
//! not consulted. XGBoost writes non-finite floats in JSON text as bare `NaN` / `Infinity`;
//! those are read as missing numbers and refused where a number is needed.
//!
//! **Categorical splits.** XGBoost sends a category in the split's set *right*; a category not
//! in the set, a negative value, a value of 2²⁴ or more and one beyond the set's bit field go
//! *left*, and a missing value to `default_left` (`common::Decision` in
//! `src/common/categorical.h`, `GetNextNode` in `src/predictor/predict_fn.h`). Ingot sends a
//! set member left and a missing, negative or out-of-range value to one side, truncating
//! before it looks a value up, so the importer swaps the children, and where XGBoost sends
//! NaN right (`default_left` false) or where the set holds category 0 (a value in (-1, 0)
//! truncates to 0 in Ingot but is an invalid category, hence left, in XGBoost) it puts a
//! numeric split on the same feature in front that routes those values to a copy of the
//! subtree XGBoost sends them to. The result decides exactly as XGBoost does for every finite
//! input; the copies make such trees larger.

use std::borrow::Cow;
use std::path::Path;

use serde_json::Value as Json;

use super::{ubjson, TreeImportOptions};
use crate::error::{Error, Result};
use crate::format::{Activation, Link, Manifest, ModelCard, Producer, TensorData};
use crate::trees::{
    tabular_bundle, Aggregate, Comparison, Head, MissingValues, Split, Tree, TreeEnsemble, TreeNode,
    MAX_NODES, MAX_OUTPUTS, MAX_TREES,
};
use crate::value::Value;

/// Most features a model may read (a file claiming more is refused before any name is made).
const MAX_FEATURES: usize = 1 << 20;
/// Most 32-bit words all category sets together may take.
const MAX_CATEGORY_WORDS: usize = 1 << 22;
/// XGBoost's `OutOfRangeCat()`: category values from here on are invalid and go left.
const OUT_OF_RANGE_CAT: i64 = 1 << 24;
/// XGBoost's `kRtEps`, the bound of a logistic base score.
const RT_EPS: f32 = 1e-6;

/// Imports an XGBoost model file: JSON (`model.json`) or UBJSON (`model.ubj`), told apart by
/// its bytes. The model name defaults to the file name without its extension.
///
/// Returns the manifest and tensors; write them with [`crate::save`].
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("stump.json");
/// std::fs::write(&path, r#"{"version": [3, 2, 0], "learner": {
///   "learner_model_param": {"base_score": "[5E-1]", "num_class": "0", "num_feature": "1"},
///   "objective": {"name": "reg:squarederror"},
///   "gradient_booster": {"name": "gbtree", "model": {"tree_info": [0], "trees": [{
///     "left_children": [1, -1, -1], "right_children": [2, -1, -1],
///     "split_indices": [0, 0, 0], "split_conditions": [0.5, -1.0, 1.0],
///     "default_left": [1, 0, 0]}]}}}}"#).unwrap();
/// let (manifest, _tensors) = ingot::import::xgboost::import_file(&path, &Default::default())?;
/// assert_eq!(manifest.model.name, "stump");
/// assert_eq!(manifest.signature.inputs[0].name, "f0");
/// # Ok(()) }
/// ```
pub fn import_file(
    path: &Path,
    options: &TreeImportOptions,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    import_bytes(&bytes, stem, options).map_err(|e| match e {
        Error::Manifest { field, detail } => {
            Error::Manifest { field: format!("{}: {field}", path.display()), detail }
        }
        other => other,
    })
}

/// Imports an XGBoost model from its bytes (JSON or UBJSON, see the module docs);
/// `default_name` is the model name unless `options.name` is set.
///
/// Malformed input is an [`Error::Manifest`] whose field is the JSON path of the offending
/// value and whose detail names the tree and node; an objective, booster or tree kind this
/// importer does not read is an [`Error::Unsupported`] naming it.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let model = br#"{"learner": {
///   "learner_model_param": {"base_score": "5E-1", "num_feature": "1"},
///   "objective": {"name": "binary:logistic"},
///   "gradient_booster": {"name": "gbtree", "model": {"tree_info": [0], "trees": [{
///     "left_children": [1, -1, -1], "right_children": [2, -1, -1],
///     "split_indices": [0, 0, 0], "split_conditions": [0.5, -1.0, 1.0],
///     "default_left": [0, 0, 0]}]}}}}"#;
/// let (manifest, tensors) = ingot::import::xgboost::import_bytes(model, "stump", &Default::default())?;
/// let model = ingot::Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors)?)?;
/// // base score 0.5 is margin 0; x = 0.2 < 0.5 goes left (-1), NaN goes right (+1).
/// let p = model.predict_dense(&[0.2, f32::NAN], 2, 1)?;
/// assert_eq!(p.scores.as_slice(), &[-1.0, 1.0]);
///
/// let err = ingot::import::xgboost::import_bytes(b"{\"learner\": 1}", "m", &Default::default());
/// assert!(err.unwrap_err().to_string().contains("learner"));
/// # Ok(()) }
/// ```
pub fn import_bytes(
    bytes: &[u8],
    default_name: &str,
    options: &TreeImportOptions,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    let doc = parse(bytes)?;
    let learner = field(&doc, "learner", "")?;
    object(learner, "learner")?;
    let version = xgboost_version(&doc);

    let param = field(learner, "learner_model_param", "learner")?;
    let at_param = "learner.learner_model_param";
    let n_features =
        count_param(field(param, "num_feature", at_param)?, "learner.learner_model_param.num_feature")?;
    if n_features == 0 || n_features > MAX_FEATURES {
        return Err(Error::manifest(
            "learner.learner_model_param.num_feature",
            format!("{n_features} features (1 to {MAX_FEATURES})"),
        ));
    }
    let n_classes = optional_count(param, "num_class", at_param)?.unwrap_or(0);
    let n_targets = optional_count(param, "num_target", at_param)?.unwrap_or(1);
    let n_outputs = n_classes.max(n_targets).max(1);
    if n_outputs > MAX_OUTPUTS {
        return Err(Error::manifest(at_param, format!("{n_outputs} outputs (at most {MAX_OUTPUTS})")));
    }

    let objective_value = field(field(learner, "objective", "learner")?, "name", "learner.objective")?;
    let objective = string(objective_value, "learner.objective.name")?;
    let objective = Objective::parse(objective, n_classes, n_outputs)?;
    let base_score = base_score(field(param, "base_score", at_param)?, n_outputs, objective)?;

    let booster = field(learner, "gradient_booster", "learner")?;
    let at_booster = "learner.gradient_booster";
    let booster_name = string(field(booster, "name", at_booster)?, "learner.gradient_booster.name")?;
    let (model, at_model, weight_drop) = match booster_name {
        "gbtree" => {
            let model = field(booster, "model", at_booster)?;
            let weights =
                optional(model, "weight_drop").map(|w| (w, "learner.gradient_booster.model.weight_drop"));
            (model, "learner.gradient_booster.model", weights)
        }
        "dart" => {
            let model =
                field(field(booster, "gbtree", at_booster)?, "model", "learner.gradient_booster.gbtree")?;
            // The weights sit beside the tree model (newer XGBoost saves DART as a gbtree whose
            // model holds them, read above).
            let weights = optional(booster, "weight_drop")
                .map(|w| (w, "learner.gradient_booster.weight_drop"))
                .or_else(|| {
                    optional(model, "weight_drop")
                        .map(|w| (w, "learner.gradient_booster.gbtree.model.weight_drop"))
                });
            (model, "learner.gradient_booster.gbtree.model", weights)
        }
        other => {
            return Err(unsupported(format!(
                "XGBoost booster `{other}` ({at_booster}.name); the importer reads gbtree and dart"
            )))
        }
    };
    let feature_names = feature_names(learner, n_features, options)?;
    let ensemble = Builder::new(n_features, n_outputs, base_score).trees(model, at_model, weight_drop)?;
    let version_text = version.as_deref().unwrap_or("(unknown version)");
    let card = ModelCard {
        name: model_name(options.name.as_deref().unwrap_or(default_name)),
        version: options.version.clone(),
        description: Some(format!(
            "imported from XGBoost {version_text}: {} booster, objective {}, {} trees, {n_features} features",
            booster_name,
            objective.name(),
            ensemble.trees.len()
        )),
        tags: vec!["tabular".into(), "trees".into(), "xgboost".into()],
        ..ModelCard::default()
    };
    let producer = Producer {
        name: "ingot import xgboost".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        framework: Some(match &version {
            Some(v) => format!("xgboost {v}"),
            None => "xgboost".into(),
        }),
    };
    tabular_bundle(&ensemble, &feature_names, objective.head(n_outputs), card, producer)
}

/// The document as JSON values: UBJSON or JSON text (module docs).
fn parse(bytes: &[u8]) -> Result<Json> {
    if ubjson::looks_like_ubjson(bytes) {
        return ubjson::decode(bytes)
            .map_err(|e| Error::manifest("(UBJSON)", format!("not a UBJSON document: {e}")));
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    serde_json::from_slice(&non_finite_to_null(text))
        .map_err(|e| Error::manifest("(JSON)", format!("not an XGBoost JSON model: {e}")))
}

/// JSON text with XGBoost's bare `NaN`, `Infinity` and `-Infinity` (outside strings) replaced
/// by `null`; borrowed when there are none.
fn non_finite_to_null(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < text.len() {
        let b = text[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"].into_iter().find(|t| text[i..].starts_with(t));
        match token {
            Some(t) => {
                let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
                buf.extend_from_slice(&text[copied..i]);
                buf.extend_from_slice(b"null");
                i += t.len();
                copied = i;
            }
            None => i += 1,
        }
    }
    match out {
        Some(mut buf) => {
            buf.extend_from_slice(&text[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(text),
    }
}

/// `"1.7.6"` from `"version": [1, 7, 6]`, when present.
fn xgboost_version(doc: &Json) -> Option<String> {
    let parts = doc.get("version")?.as_array()?;
    let nums: Option<Vec<String>> = parts.iter().map(|p| p.as_u64().map(|n| n.to_string())).collect();
    nums.filter(|n| !n.is_empty()).map(|n| n.join("."))
}

fn unsupported(what: String) -> Error {
    Error::Unsupported { what }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// `v[key]`, which must exist; `at` is `v`'s path.
fn field<'a>(v: &'a Json, key: &str, at: &str) -> Result<&'a Json> {
    match v {
        Json::Object(map) => map.get(key).ok_or_else(|| Error::manifest(join(at, key), "missing")),
        other => Err(Error::manifest(
            if at.is_empty() { "(document)" } else { at },
            format!("expected an object with `{key}`, found {}", kind(other)),
        )),
    }
}

fn optional<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    v.get(key).filter(|v| !v.is_null())
}

fn object(v: &Json, at: &str) -> Result<()> {
    match v {
        Json::Object(_) => Ok(()),
        other => Err(Error::manifest(at, format!("expected an object, found {}", kind(other)))),
    }
}

fn string<'a>(v: &'a Json, at: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| Error::manifest(at, format!("expected a string, found {}", kind(v))))
}

fn array<'a>(v: &'a Json, at: &str) -> Result<&'a [Json]> {
    match v {
        Json::Array(a) => Ok(a),
        other => Err(Error::manifest(at, format!("expected an array, found {}", kind(other)))),
    }
}

/// A non-negative integer parameter, written by XGBoost as a string (`"30"`) or a number.
fn count_param(v: &Json, at: &str) -> Result<usize> {
    let n = match v {
        Json::String(s) => s.trim().parse::<u64>().ok(),
        Json::Number(n) => n.as_u64(),
        _ => None,
    };
    let shown = match v {
        Json::String(s) => format!("`{s}`"),
        other => kind(other).to_string(),
    };
    n.and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::manifest(at, format!("expected a non-negative integer, found {shown}")))
}

fn optional_count(v: &Json, key: &str, at: &str) -> Result<Option<usize>> {
    optional(v, key).map(|n| count_param(n, &join(at, key))).transpose()
}

/// An array of exactly `n` integers.
fn ints(v: &Json, at: &str, n: usize) -> Result<Vec<i64>> {
    let a = array(v, at)?;
    if a.len() != n {
        return Err(Error::manifest(at, format!("{} values for {n} nodes", a.len())));
    }
    a.iter()
        .enumerate()
        .map(|(i, x)| match x {
            Json::Number(num) => num
                .as_i64()
                .ok_or_else(|| Error::manifest(format!("{at}[{i}]"), format!("{num} is not an integer"))),
            Json::Bool(b) => Ok(i64::from(*b)),
            other => Err(Error::manifest(
                format!("{at}[{i}]"),
                format!("expected an integer, found {}", kind(other)),
            )),
        })
        .collect()
}

/// An array of exactly `n` numbers as XGBoost's f32; `None` for `null` (a non-finite value).
fn floats(v: &Json, at: &str, n: usize) -> Result<Vec<Option<f32>>> {
    let a = array(v, at)?;
    if a.len() != n {
        return Err(Error::manifest(at, format!("{} values for {n} nodes", a.len())));
    }
    a.iter()
        .enumerate()
        .map(|(i, x)| match x {
            Json::Number(num) => Ok(num.as_f64().map(|f| f as f32)),
            Json::Null => Ok(None),
            other => Err(Error::manifest(
                format!("{at}[{i}]"),
                format!("expected a number, found {}", kind(other)),
            )),
        })
        .collect()
}

/// What an objective's scores mean and how its base score becomes a margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objective {
    /// Identity link: the squared, squared-log, pseudo-Huber, absolute and quantile errors.
    Identity(&'static str),
    /// `reg:logistic`: values through the sigmoid.
    LogisticRegression,
    /// `binary:logistic`: one score column through the sigmoid.
    BinaryLogistic,
    /// `binary:logitraw` and `binary:hinge`: the score's sign is the class.
    BinaryRaw(&'static str),
    /// `multi:softprob` and `multi:softmax`: softmax over the classes.
    Softmax(&'static str),
    /// `count:poisson`, `reg:gamma`, `reg:tweedie`: values through `exp`.
    Exp(&'static str),
}

impl Objective {
    fn parse(name: &str, n_classes: usize, n_outputs: usize) -> Result<Objective> {
        let objective = match name {
            "reg:squarederror" => Objective::Identity("reg:squarederror"),
            "reg:linear" => Objective::Identity("reg:linear"),
            "reg:squaredlogerror" => Objective::Identity("reg:squaredlogerror"),
            "reg:pseudohubererror" => Objective::Identity("reg:pseudohubererror"),
            "reg:absoluteerror" => Objective::Identity("reg:absoluteerror"),
            "reg:quantileerror" => Objective::Identity("reg:quantileerror"),
            "reg:logistic" => Objective::LogisticRegression,
            "binary:logistic" => Objective::BinaryLogistic,
            "binary:logitraw" => Objective::BinaryRaw("binary:logitraw"),
            "binary:hinge" => Objective::BinaryRaw("binary:hinge"),
            "multi:softprob" => Objective::Softmax("multi:softprob"),
            "multi:softmax" => Objective::Softmax("multi:softmax"),
            "count:poisson" => Objective::Exp("count:poisson"),
            "reg:gamma" => Objective::Exp("reg:gamma"),
            "reg:tweedie" => Objective::Exp("reg:tweedie"),
            other => {
                return Err(unsupported(format!(
                    "XGBoost objective `{other}` (learner.objective.name); the importer reads \
                     reg:squarederror, reg:linear, reg:squaredlogerror, reg:pseudohubererror, \
                     reg:absoluteerror, reg:quantileerror, reg:logistic, binary:logistic/logitraw/hinge, multi:softprob/softmax, \
                     count:poisson, reg:gamma and reg:tweedie objectives"
                )))
            }
        };
        match objective {
            Objective::Softmax(name) if n_classes < 2 || n_outputs != n_classes => Err(Error::manifest(
                "learner.learner_model_param.num_class",
                format!("{name} needs num_class of at least 2 (and no other targets), found {n_classes}"),
            )),
            Objective::BinaryLogistic | Objective::BinaryRaw(_) if n_outputs != 1 => Err(unsupported(
                format!("{} with {n_outputs} outputs (multi-label binary classification)", objective.name()),
            )),
            _ => Ok(objective),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Objective::Identity(n) | Objective::BinaryRaw(n) | Objective::Softmax(n) | Objective::Exp(n) => n,
            Objective::LogisticRegression => "reg:logistic",
            Objective::BinaryLogistic => "binary:logistic",
        }
    }

    fn head(self, n_outputs: usize) -> Head {
        let binary = || vec![Value::from(0i64), Value::from(1i64)];
        match self {
            Objective::Identity(_) => Head::Regressor { link: Link::Identity },
            Objective::LogisticRegression => Head::Regressor { link: Link::Logistic },
            Objective::Exp(_) => Head::Regressor { link: Link::Exp },
            Objective::BinaryLogistic => {
                Head::Classifier { classes: binary(), activation: Activation::Logistic }
            }
            Objective::BinaryRaw(_) => Head::Classifier { classes: binary(), activation: Activation::None },
            Objective::Softmax(_) => Head::Classifier {
                classes: (0..n_outputs as i64).map(Value::from).collect(),
                activation: Activation::Softmax,
            },
        }
    }

    /// XGBoost's `ProbToMargin` of one base score, in f32 as XGBoost computes it.
    fn margin(self, p: f32) -> std::result::Result<f32, String> {
        match self {
            Objective::LogisticRegression | Objective::BinaryLogistic => {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("{p} is not in [0, 1], as {} needs", self.name()));
                }
                let p = p.clamp(RT_EPS, 1.0 - RT_EPS);
                Ok(-(1.0f32 / p - 1.0).ln())
            }
            Objective::Exp(name) if p <= 0.0 => Err(format!("{p} is not positive, as {name} needs")),
            Objective::Exp(_) => Ok(p.ln()),
            _ => Ok(p),
        }
    }
}

/// The margin-space base score, one per output, from `learner_model_param.base_score`: a
/// number or a vector (`"[5E-1]"`, XGBoost ≥ 3.0) in output space as a string; one value for
/// several outputs is repeated, as XGBoost does.
fn base_score(v: &Json, n_outputs: usize, objective: Objective) -> Result<Vec<f64>> {
    let at = "learner.learner_model_param.base_score";
    let parsed: Json = match v {
        Json::String(s) => {
            let s = s.trim();
            let s = match (s.strip_prefix('('), s.strip_suffix(')')) {
                (Some(_), Some(_)) => Cow::Owned(format!("[{}]", &s[1..s.len() - 1])),
                _ => Cow::Borrowed(s),
            };
            serde_json::from_str(&s)
                .map_err(|_| Error::manifest(at, format!("`{s}` is not a number or a list of numbers")))?
        }
        other => other.clone(),
    };
    let values: Vec<f32> = match &parsed {
        Json::Number(n) => n.as_f64().map(|f| vec![f as f32]).unwrap_or_default(),
        Json::Array(a) if a.len() <= MAX_OUTPUTS => {
            a.iter().filter_map(|x| x.as_f64()).map(|f| f as f32).collect()
        }
        _ => Vec::new(),
    };
    let shown = match &parsed {
        Json::Array(a) => a.len(),
        _ => 1,
    };
    if values.is_empty() || shown != values.len() {
        return Err(Error::manifest(at, format!("expected a number or a list of numbers, found {v}")));
    }
    let values = match values.len() {
        1 => vec![values[0]; n_outputs],
        n if n == n_outputs => values,
        n => return Err(Error::manifest(at, format!("{n} base scores for {n_outputs} outputs"))),
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if !p.is_finite() {
                return Err(Error::manifest(at, format!("base score {i} is not finite")));
            }
            let m = objective.margin(p).map_err(|e| Error::manifest(at, format!("base score {i}: {e}")))?;
            if m.is_finite() {
                Ok(f64::from(m))
            } else {
                Err(Error::manifest(at, format!("base score {i}: {p} has no finite margin")))
            }
        })
        .collect()
}

/// The input names: the override, else the file's `feature_names`, else XGBoost's `f0, f1, …`.
fn feature_names(learner: &Json, n_features: usize, options: &TreeImportOptions) -> Result<Vec<String>> {
    if let Some(names) = &options.feature_names {
        if names.len() != n_features {
            return Err(Error::usage(format!(
                "{} feature names given for an XGBoost model of {n_features} features",
                names.len()
            )));
        }
        return Ok(names.clone());
    }
    let at = "learner.feature_names";
    match optional(learner, "feature_names") {
        Some(v) if !array(v, at)?.is_empty() => {
            let names = array(v, at)?;
            if names.len() != n_features {
                return Err(Error::manifest(at, format!("{} names for {n_features} features", names.len())));
            }
            names
                .iter()
                .enumerate()
                .map(|(i, n)| string(n, &format!("{at}[{i}]")).map(str::to_string))
                .collect()
        }
        _ => Ok((0..n_features).map(|i| format!("f{i}")).collect()),
    }
}

/// `[A-Za-z0-9._-]{1,128}` from a file name.
fn model_name(base: &str) -> String {
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .take(128)
        .collect();
    if clean.is_empty() {
        "model".into()
    } else {
        clean
    }
}

/// One XGBoost tree, checked: every node reachable from the root once, children in range.
struct XgbTree {
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<u32>,
    condition: Vec<Option<f32>>,
    default_left: Vec<bool>,
    /// Per node: its category set as XGBoost's bit field (bit `c` of word `c / 32`), for
    /// categorical splits.
    categories: Vec<Option<Vec<u32>>>,
}

impl XgbTree {
    fn is_leaf(&self, i: usize) -> bool {
        self.left[i] == -1
    }
}

/// One step of the pre-order emission of a tree (module docs, "Categorical splits").
#[derive(Debug, Clone, Copy)]
enum Step {
    /// XGBoost node `i` as XGBoost has it.
    Node(usize),
    /// The split in front of categorical node `i` that sends negative values to a copy of its
    /// left subtree, then [`Step::Core`].
    Negative(usize),
    /// Categorical node `i` itself, its children swapped.
    Core(usize),
}

struct Builder {
    ensemble: TreeEnsemble,
    category_words: usize,
}

impl Builder {
    fn new(n_features: usize, n_outputs: usize, base_score: Vec<f64>) -> Builder {
        Builder {
            ensemble: TreeEnsemble {
                n_features,
                n_outputs,
                comparison: Comparison::Less,
                aggregate: Aggregate::Sum,
                base_score,
                trees: Vec::new(),
                nodes: Vec::new(),
                leaf_width: 1,
                leaf_values: Vec::new(),
                category_sets: Vec::new(),
            },
            category_words: 0,
        }
    }

    /// All trees of `model` (at JSON path `at`), each leaf scaled by its tree's `weight_drop`.
    fn trees(mut self, model: &Json, at: &str, weight_drop: Option<(&Json, &str)>) -> Result<TreeEnsemble> {
        let at_trees = join(at, "trees");
        let trees = array(field(model, "trees", at)?, &at_trees)?;
        if trees.is_empty() || trees.len() > MAX_TREES {
            return Err(Error::manifest(&at_trees, format!("{} trees (1 to {MAX_TREES})", trees.len())));
        }
        let at_info = join(at, "tree_info");
        let info = ints(field(model, "tree_info", at)?, &at_info, trees.len()).map_err(|_| {
            Error::manifest(&at_info, format!("expected {} integers, one per tree", trees.len()))
        })?;
        if let Some(n) = optional(model, "gbtree_model_param").and_then(|p| optional(p, "num_trees")) {
            let n = count_param(n, &format!("{at}.gbtree_model_param.num_trees"))?;
            if n != trees.len() {
                return Err(Error::manifest(
                    format!("{at}.gbtree_model_param.num_trees"),
                    format!("{n} trees declared, {} in `trees`", trees.len()),
                ));
            }
        }
        let weights = match weight_drop {
            Some((w, at_w)) if !array(w, at_w)?.is_empty() => {
                let w = floats(w, at_w, trees.len()).map_err(|_| {
                    Error::manifest(at_w, format!("expected {} numbers, one per tree", trees.len()))
                })?;
                Some((w, at_w))
            }
            _ => None,
        };
        self.ensemble.trees.reserve_exact(trees.len());
        for (t, tree) in trees.iter().enumerate() {
            let at_tree = format!("{at_trees}[{t}]");
            let target = match u32::try_from(info[t]) {
                Ok(c) if (c as usize) < self.ensemble.n_outputs => c,
                _ => {
                    return Err(Error::manifest(
                        format!("{at_info}[{t}]"),
                        format!(
                            "tree {t}: output {} is not one of the {} outputs",
                            info[t], self.ensemble.n_outputs
                        ),
                    ))
                }
            };
            let weight = match &weights {
                Some((w, at_w)) => match w[t] {
                    Some(w) if w.is_finite() => w,
                    _ => return Err(Error::manifest(format!("{at_w}[{t}]"), "not a finite number")),
                },
                None => 1.0,
            };
            let xgb = self.read_tree(tree, t, &at_tree)?;
            let root = self.emit(&xgb, t, weight).map_err(|detail| Error::manifest(&at_tree, detail))?;
            self.ensemble.trees.push(Tree { root, target: Some(target) });
        }
        self.ensemble.validate().map_err(|e| Error::manifest(at_trees, e))?;
        Ok(self.ensemble)
    }

    /// Reads and checks tree `t`.
    fn read_tree(&mut self, tree: &Json, t: usize, at: &str) -> Result<XgbTree> {
        object(tree, at)?;
        if let Some(id) = optional(tree, "id") {
            if id.as_u64() != Some(t as u64) {
                return Err(Error::manifest(join(at, "id"), format!("tree {t} has id {id}")));
            }
        }
        if let Some(param) = optional(tree, "tree_param") {
            if let Some(w) = optional_count(param, "size_leaf_vector", &join(at, "tree_param"))? {
                if w > 1 {
                    return Err(unsupported(format!(
                        "tree {t} has vector leaves (size_leaf_vector {w}, multi_strategy \
                         `multi_output_tree`); the importer reads one value per leaf"
                    )));
                }
            }
        }
        let at_left = join(at, "left_children");
        let n = array(field(tree, "left_children", at)?, &at_left)?.len();
        if n == 0 {
            return Err(Error::manifest(at_left, format!("tree {t} has no nodes")));
        }
        if let Some(declared) = optional(tree, "tree_param").and_then(|p| optional(p, "num_nodes")) {
            let declared = count_param(declared, &format!("{at}.tree_param.num_nodes"))?;
            if declared != n {
                return Err(Error::manifest(
                    format!("{at}.tree_param.num_nodes"),
                    format!("tree {t}: {declared} nodes declared, {n} in left_children"),
                ));
            }
        }
        let get = |key: &str| field(tree, key, at);
        let left = ints(get("left_children")?, &join(at, "left_children"), n)?;
        let right = ints(get("right_children")?, &join(at, "right_children"), n)?;
        let features = ints(get("split_indices")?, &join(at, "split_indices"), n)?;
        let condition = floats(get("split_conditions")?, &join(at, "split_conditions"), n)?;
        let default_left: Vec<bool> =
            ints(get("default_left")?, &join(at, "default_left"), n)?.into_iter().map(|d| d != 0).collect();
        let split_type = match optional(tree, "split_type") {
            Some(v) => ints(v, &join(at, "split_type"), n)?,
            None => vec![0; n],
        };

        let mut xgb = XgbTree {
            left,
            right,
            feature: Vec::with_capacity(n),
            condition,
            default_left,
            categories: vec![None; n],
        };
        // Walk from the root: each node once (which rules out cycles and shared children),
        // children in range and side by side as XGBoost's predictor assumes.
        let mut seen = vec![false; n];
        seen[0] = true;
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            let node = format!("tree {t} node {i}");
            if xgb.is_leaf(i) {
                if xgb.condition[i].is_none_or(|v| !v.is_finite()) {
                    return Err(Error::manifest(
                        format!("{at}.split_conditions[{i}]"),
                        format!("{node}: the leaf value is not a finite number"),
                    ));
                }
                continue;
            }
            for (side, child) in [("left", xgb.left[i]), ("right", xgb.right[i])] {
                let Some(c) = usize::try_from(child).ok().filter(|&c| c < n) else {
                    return Err(Error::manifest(
                        format!("{at}.{side}_children[{i}]"),
                        format!("{node}: {side} child {child} out of range ({n} nodes)"),
                    ));
                };
                if seen[c] {
                    return Err(Error::manifest(
                        format!("{at}.{side}_children[{i}]"),
                        format!("{node}: {side} child {c} is reached twice (a cycle or a shared node)"),
                    ));
                }
                seen[c] = true;
                stack.push(c);
            }
            if xgb.right[i] != xgb.left[i] + 1 {
                return Err(Error::manifest(
                    format!("{at}.right_children[{i}]"),
                    format!(
                        "{node}: right child {} is not left child {} + 1, as XGBoost's predictor assumes",
                        xgb.right[i], xgb.left[i]
                    ),
                ));
            }
            match u32::try_from(features[i]).ok().filter(|&f| (f as usize) < self.ensemble.n_features) {
                Some(_) => {}
                None => {
                    return Err(Error::manifest(
                        format!("{at}.split_indices[{i}]"),
                        format!(
                            "{node}: feature {} out of range ({} features)",
                            features[i], self.ensemble.n_features
                        ),
                    ))
                }
            }
            match split_type[i] {
                0 if xgb.condition[i].is_none() => {
                    return Err(Error::manifest(
                        format!("{at}.split_conditions[{i}]"),
                        format!("{node}: the threshold is not a finite number"),
                    ))
                }
                0 | 1 => {}
                other => {
                    return Err(Error::manifest(
                        format!("{at}.split_type[{i}]"),
                        format!("{node}: split type {other} (0 numerical, 1 categorical)"),
                    ))
                }
            }
        }
        xgb.feature = features.iter().map(|&f| u32::try_from(f).unwrap_or(0)).collect();
        self.read_categories(tree, t, at, &split_type, &seen, &mut xgb)?;
        Ok(xgb)
    }

    /// The category sets of tree `t`'s categorical splits (`categories_nodes`, `_segments`,
    /// `_sizes` and `categories`, as `RegTree::LoadCategoricalSplit` reads them).
    fn read_categories(
        &mut self,
        tree: &Json,
        t: usize,
        at: &str,
        split_type: &[i64],
        reached: &[bool],
        xgb: &mut XgbTree,
    ) -> Result<()> {
        let n = xgb.left.len();
        let categorical: Vec<bool> =
            (0..n).map(|i| reached[i] && split_type[i] == 1 && !xgb.is_leaf(i)).collect();
        if !categorical.contains(&true) {
            return Ok(());
        }
        let get = |key: &str| field(tree, key, at);
        let list = |key: &str| -> Result<Vec<i64>> {
            let v = get(key)?;
            let len = array(v, &join(at, key))?.len();
            ints(v, &join(at, key), len)
        };
        let nodes = list("categories_nodes")?;
        let segments = list("categories_segments")?;
        let sizes = list("categories_sizes")?;
        let categories = list("categories")?;
        if segments.len() != nodes.len() || sizes.len() != nodes.len() {
            return Err(Error::manifest(
                join(at, "categories_nodes"),
                format!(
                    "tree {t}: {} categorical nodes, {} segments, {} sizes",
                    nodes.len(),
                    segments.len(),
                    sizes.len()
                ),
            ));
        }
        let mut previous = -1i64;
        for (k, &node) in nodes.iter().enumerate() {
            let at_k = format!("{at}.categories_nodes[{k}]");
            let i = match usize::try_from(node).ok().filter(|&i| i < n) {
                Some(i) if node > previous => i,
                _ => {
                    return Err(Error::manifest(
                        at_k,
                        format!(
                            "tree {t}: node {node} is out of range ({n} nodes) or not after node {previous}"
                        ),
                    ))
                }
            };
            previous = node;
            let (start, size) = (segments[k], sizes[k]);
            let range = usize::try_from(start)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(s, z)| Some(s..s.checked_add(z)?))
                .filter(|r| r.end <= categories.len() && !r.is_empty());
            let Some(range) = range else {
                return Err(Error::manifest(
                    format!("{at}.categories_segments[{k}]"),
                    format!(
                        "tree {t} node {i}: categories {start}..{start}+{size} are not a non-empty part of the {} \
                         categories",
                        categories.len()
                    ),
                ));
            };
            let members = &categories[range];
            let max = members.iter().copied().max().unwrap_or(0);
            if let Some(&bad) = members.iter().find(|&&c| !(0..OUT_OF_RANGE_CAT).contains(&c)) {
                return Err(Error::manifest(
                    format!("{at}.categories"),
                    format!("tree {t} node {i}: category {bad} is not in 0..{OUT_OF_RANGE_CAT}"),
                ));
            }
            let words = (max as usize) / 32 + 1;
            self.category_words += words;
            if self.category_words > MAX_CATEGORY_WORDS {
                return Err(unsupported(format!(
                    "category sets of more than {MAX_CATEGORY_WORDS} words in all (tree {t} node {i} has \
                     category {max})"
                )));
            }
            let mut bits = vec![0u32; words];
            for &c in members {
                bits[c as usize / 32] |= 1 << (c % 32);
            }
            xgb.categories[i] = Some(bits);
        }
        if let Some(i) = (0..n).find(|&i| categorical[i] && xgb.categories[i].is_none()) {
            return Err(Error::manifest(
                join(at, "categories_nodes"),
                format!("tree {t} node {i}: a categorical split without categories"),
            ));
        }
        Ok(())
    }

    /// Appends tree `t`'s nodes in pre-order (module docs), leaves scaled by `weight`; returns
    /// the root's index or what went wrong.
    fn emit(&mut self, xgb: &XgbTree, t: usize, weight: f32) -> std::result::Result<u32, String> {
        let e = &mut self.ensemble;
        let root = e.nodes.len();
        // The category set of each categorical node, shared by its copies.
        let mut set_of: Vec<Option<u32>> = vec![None; xgb.left.len()];
        let mut stack: Vec<(Step, Option<(usize, bool)>)> = vec![(Step::Node(0), None)];
        while let Some((step, parent)) = stack.pop() {
            let index = e.nodes.len();
            if index >= MAX_NODES {
                return Err(format!(
                    "tree {t}: more than {MAX_NODES} nodes in all (categorical splits are expanded, see docs/trees.md)"
                ));
            }
            let index32 = index as u32;
            if let Some((p, is_left)) = parent {
                if let TreeNode::Split(s) = &mut e.nodes[p] {
                    if is_left {
                        s.left = index32;
                    } else {
                        s.right = index32;
                    }
                }
            }
            let child = |i: usize, side: &[i64]| side[i] as usize;
            let split = |feature: u32, threshold: f64, missing_left: bool| Split {
                feature,
                threshold,
                left: 0,
                right: 0,
                missing_left,
                missing: MissingValues::Nan,
                category_set: None,
            };
            // Children are pushed right first, so the left subtree is emitted first.
            let (node, left, right) = match step {
                Step::Node(i) if xgb.is_leaf(i) => {
                    let value = xgb.condition[i].unwrap_or(0.0) * weight;
                    if !value.is_finite() {
                        return Err(format!("tree {t} node {i}: leaf value times weight_drop is not finite"));
                    }
                    e.nodes.push(TreeNode::Leaf { value: (e.leaf_values.len()) as u32 });
                    e.leaf_values.push(f64::from(value));
                    continue;
                }
                Step::Node(i) => match &xgb.categories[i] {
                    None => {
                        let threshold = f64::from(xgb.condition[i].unwrap_or(0.0));
                        let s = split(xgb.feature[i], threshold, xgb.default_left[i]);
                        (s, Step::Node(child(i, &xgb.left)), Step::Node(child(i, &xgb.right)))
                    }
                    Some(bits) => {
                        let next = if bits.first().is_some_and(|w| w & 1 == 1) {
                            Step::Negative(i)
                        } else {
                            Step::Core(i)
                        };
                        if xgb.default_left[i] {
                            // NaN goes left with the invalid values: nothing to route.
                            stack.push((next, parent));
                            continue;
                        }
                        // NaN goes right in XGBoost: in front, a split that sends every number
                        // right (`x < -inf` never holds) and NaN left, to a copy of the right
                        // subtree.
                        (
                            split(xgb.feature[i], f64::NEG_INFINITY, true),
                            Step::Node(child(i, &xgb.right)),
                            next,
                        )
                    }
                },
                // Values below 0 (invalid categories) go to a copy of the left subtree.
                Step::Negative(i) => {
                    (split(xgb.feature[i], 0.0, true), Step::Node(child(i, &xgb.left)), Step::Core(i))
                }
                Step::Core(i) => {
                    let set = match set_of[i] {
                        Some(s) => s,
                        None => {
                            let bits = xgb.categories[i].clone().unwrap_or_default();
                            e.category_sets.push(bits);
                            let s = (e.category_sets.len() - 1) as u32;
                            set_of[i] = Some(s);
                            s
                        }
                    };
                    let mut s = split(xgb.feature[i], 0.0, false);
                    s.category_set = Some(set);
                    (s, Step::Node(child(i, &xgb.right)), Step::Node(child(i, &xgb.left)))
                }
            };
            e.nodes.push(TreeNode::Split(node));
            stack.push((right, Some((index, false))));
            stack.push((left, Some((index, true))));
        }
        Ok(root as u32)
    }
}
