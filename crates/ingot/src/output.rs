//! [`Prediction`] and [`Matrix`]: what `predict` returns.

use serde::Serialize;

use crate::value::Value;

/// A dense row-major f32 matrix.
///
/// ```
/// let m = ingot::Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 2, 2).unwrap();
/// assert_eq!(m.row(1), &[3.0, 4.0]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Matrix {
    /// Wraps `data` as `rows × cols`; `None` if the length does not match.
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Option<Matrix> {
        (rows.checked_mul(cols) == Some(data.len())).then_some(Matrix { data, rows, cols })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` (panics if out of range, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterates over rows.
    pub fn iter_rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.cols.max(1))
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the matrix, returning its row-major values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// The result of one `predict` call: one entry per input row, in input order.
///
/// Classifiers fill `labels` and `classes` (and `probabilities` unless their activation is
/// `none`); regressors fill `values`. `scores` is always the raw graph output.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let p = model.predict_dense(&[0.5, -1.0], 1, 2)?;
/// let probs = p.probabilities.as_ref().unwrap();
/// assert!((probs.row(0).iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert_eq!(p.labels.as_ref().unwrap().len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Number of rows.
    pub rows: usize,
    /// Raw graph output, `[rows, outputs]`.
    pub scores: Matrix,
    /// Class probabilities, `[rows, classes]`, columns in `classes` order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Matrix>,
    /// Predicted class label per row, exactly as in training.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Value>>,
    /// All class labels, in probability-column order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<Value>>,
    /// Regression values, `[rows, targets]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Matrix>,
    /// Embeddings, `[rows, dim]`, for text encoders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<Matrix>,
    /// Regression target names, one per `values` column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
}

impl Prediction {
    /// Row `i` as the JSON object every front end returns (CLI JSONL, server, bindings):
    /// classifiers `{"label": …, "probabilities": [p per class]}` (no `probabilities` when the
    /// model has none), single-target regressors `{"value": x}`, multi-target `{"values": […]}`,
    /// text encoders `{"embedding": […]}`, models without post-processing `{"scores": […]}`.
    ///
    /// Panics if `i >= self.rows`, like slice indexing.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// let p = model.predict_dense(&[3.0, 1.0], 1, 2)?;
    /// let row = p.row_json(0);
    /// assert_eq!(row["label"], "yes");
    /// assert_eq!(row["probabilities"].as_array().unwrap().len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn row_json(&self, i: usize) -> serde_json::Value {
        let floats = |r: &[f32]| r.iter().map(|&v| serde_json::json!(v)).collect::<Vec<_>>();
        let mut obj = serde_json::Map::new();
        if let Some(labels) = &self.labels {
            obj.insert("label".into(), serde_json::to_value(&labels[i]).unwrap_or_default());
            if let Some(p) = &self.probabilities {
                obj.insert("probabilities".into(), floats(p.row(i)).into());
            }
        } else if let Some(e) = &self.embeddings {
            obj.insert("embedding".into(), floats(e.row(i)).into());
        } else if let Some(values) = &self.values {
            match values.row(i) {
                [one] => obj.insert("value".into(), serde_json::json!(one)),
                many => obj.insert("values".into(), floats(many).into()),
            };
        } else {
            obj.insert("scores".into(), floats(self.scores.row(i)).into());
        }
        serde_json::Value::Object(obj)
    }
}
