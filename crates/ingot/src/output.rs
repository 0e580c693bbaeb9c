//! [`Prediction`] and [`Matrix`]: what `predict` returns.

use std::sync::Arc;

use serde::Serialize;

use crate::value::Value;

/// Each row's class label, held as its index into the model's classes: a batch of a million
/// rows holds a million small integers, not a million copies of a few labels. Indexes and
/// iterates like a slice of labels and serializes as one.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::Value;
/// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let p = model.predict_dense(&[3.0, 1.0, 0.0, 0.0], 2, 2)?;
/// let labels = p.labels.as_ref().unwrap();
/// assert_eq!(labels[0], Value::from("yes"));
/// assert_eq!(labels.indices(), &[1, 0]);
/// assert_eq!(labels.to_vec(), [Value::from("yes"), Value::from("no")]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    classes: Arc<[Value]>,
    indices: Vec<u32>,
}

impl Labels {
    /// Labels `classes[indices[i]]`; every index must be one of `classes`.
    pub(crate) fn new(classes: Arc<[Value]>, indices: Vec<u32>) -> Labels {
        debug_assert!(
            indices.iter().all(|&i| (i as usize) < classes.len()),
            "labels: class index out of range"
        );
        Labels { classes, indices }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Each row's index into [`Labels::classes`].
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Consumes the labels, returning each row's class index.
    pub fn into_indices(self) -> Vec<u32> {
        self.indices
    }

    /// The classes the labels index, in probability-column order.
    pub fn classes(&self) -> &[Value] {
        &self.classes
    }

    /// Row `i`'s label, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.indices.get(i).map(|&c| &self.classes[c as usize])
    }

    /// The labels, in row order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Value> + '_ {
        self.indices.iter().map(|&c| &self.classes[c as usize])
    }

    /// The labels as values.
    pub fn to_vec(&self) -> Vec<Value> {
        self.iter().cloned().collect()
    }

    /// Appends `other`'s rows (labels of the same classes).
    fn extend(&mut self, other: Labels) {
        debug_assert_eq!(self.classes, other.classes);
        self.indices.extend(other.indices);
    }

    /// Rows `range` (panics if out of range, like slice indexing).
    fn slice(&self, range: std::ops::Range<usize>) -> Labels {
        Labels { classes: Arc::clone(&self.classes), indices: self.indices[range].to_vec() }
    }
}

impl std::ops::Index<usize> for Labels {
    type Output = Value;

    fn index(&self, i: usize) -> &Value {
        &self.classes[self.indices[i] as usize]
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

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

    /// Rows `range` as a new matrix (panics if out of range, like slice indexing).
    ///
    /// ```
    /// let m = ingot::Matrix::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2).unwrap();
    /// assert_eq!(m.slice_rows(1..3).as_slice(), &[3.0, 4.0, 5.0, 6.0]);
    /// ```
    pub fn slice_rows(&self, range: std::ops::Range<usize>) -> Matrix {
        let data = self.data[range.start * self.cols..range.end * self.cols].to_vec();
        Matrix { data, rows: range.len(), cols: self.cols }
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
    pub labels: Option<Labels>,
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

/// The columns of each output a model gives per row: what [`Model::predict_into`] writes.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let layout = model.output_layout();
/// assert_eq!((layout.scores, layout.probabilities, layout.labels), (1, Some(2), true));
/// assert_eq!(layout.values_per_row(), 3); // floats per row: one score, two probabilities
/// # Ok(()) }
/// ```
///
/// [`Model::predict_into`]: crate::Model::predict_into
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputLayout {
    /// Columns of the raw graph output (always present).
    pub scores: usize,
    /// Class probabilities' columns (classifiers with an activation).
    pub probabilities: Option<usize>,
    /// Regression values' columns (regressors).
    pub values: Option<usize>,
    /// Embedding width (text encoders).
    pub embeddings: Option<usize>,
    /// Whether there is a label index per row (classifiers).
    pub labels: bool,
}

impl OutputLayout {
    /// Float values of every matrix output in one row, in the order scores, probabilities,
    /// values, embeddings.
    pub fn values_per_row(&self) -> usize {
        self.scores
            + self.probabilities.unwrap_or(0)
            + self.values.unwrap_or(0)
            + self.embeddings.unwrap_or(0)
    }
}

/// Where [`Model::predict_into`] writes a call's outputs: one slice per output of the model's
/// [`OutputLayout`], row-major, each of exactly `rows × columns` values (`rows` for `labels`,
/// each row's index into [`Model::classes`]). Slices for outputs the model does not give
/// must be `None`.
///
/// [`Model::predict_into`]: crate::Model::predict_into
/// [`Model::classes`]: crate::Model::classes
#[derive(Debug, Default)]
pub struct OutputSlices<'a> {
    /// The raw graph output.
    pub scores: &'a mut [f32],
    /// Class probabilities.
    pub probabilities: Option<&'a mut [f32]>,
    /// Regression values.
    pub values: Option<&'a mut [f32]>,
    /// Embeddings.
    pub embeddings: Option<&'a mut [f32]>,
    /// Label indices.
    pub labels: Option<&'a mut [u32]>,
}

/// Probabilities of one row, serialized as a JSON object `{"<class>": p, …}` in class order.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassProbabilities(pub Vec<(String, f32)>);

impl Serialize for ClassProbabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (class, p) in &self.0 {
            map.serialize_entry(class, p)?;
        }
        map.end()
    }
}

/// The prediction for one input row: what the CLI writes per JSONL line and the server returns
/// per item (one definition for every front end).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PredictionRow {
    /// A classifier's label, with per-class probabilities when the model produces them.
    Class {
        /// Predicted class, as in training (string or number).
        label: Value,
        /// Class → probability, in class order.
        #[serde(skip_serializing_if = "Option::is_none")]
        probabilities: Option<ClassProbabilities>,
    },
    /// A text encoder's embedding.
    Embedding {
        /// The vector.
        embedding: Vec<f32>,
    },
    /// A single-target regressor's value.
    Value {
        /// The prediction.
        value: f32,
    },
    /// A multi-target regressor's values, in target order.
    Values {
        /// One value per target.
        values: Vec<f32>,
    },
    /// Raw scores of a model without post-processing.
    Scores {
        /// The graph output row.
        scores: Vec<f32>,
    },
}

/// A class label as a JSON object key or column name: strings as they are, numbers without a
/// needless `.0`.
fn class_key(class: &Value) -> String {
    match class {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values of one [`OutputColumn`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnData<'a> {
    /// One label per row, as in training.
    Labels(&'a Labels),
    /// One number per row: column `col` of `matrix`.
    Number {
        /// The matrix holding the column.
        matrix: &'a Matrix,
        /// Its column index.
        col: usize,
    },
    /// One vector per row: the rows of `matrix` (an embedding).
    Vector(&'a Matrix),
}

/// One named column of the flat layout of a [`Prediction`] (see [`Prediction::columns`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn<'a> {
    /// Column name: `label`, `proba_<class>`, `value`, a target name, `embedding`, `score_<i>`.
    pub name: String,
    /// Its values.
    pub data: ColumnData<'a>,
}

impl Prediction {
    /// Row `i` as a [`PredictionRow`]; panics if `i >= self.rows`, like slice indexing.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// let p = model.predict_dense(&[3.0, 1.0], 1, 2)?;
    /// let row = serde_json::to_value(p.row(0)).unwrap();
    /// assert_eq!(row["label"], "yes");
    /// assert!(row["probabilities"]["yes"].as_f64().unwrap() > 0.5);
    /// # Ok(()) }
    /// ```
    pub fn row(&self, i: usize) -> PredictionRow {
        if let Some(labels) = &self.labels {
            let probabilities = self.probabilities.as_ref().map(|probs| {
                let keys = self.classes.iter().flatten().map(class_key);
                ClassProbabilities(keys.zip(probs.row(i).iter().copied()).collect())
            });
            PredictionRow::Class { label: labels[i].clone(), probabilities }
        } else if let Some(e) = &self.embeddings {
            PredictionRow::Embedding { embedding: e.row(i).to_vec() }
        } else if let Some(values) = &self.values {
            match values.row(i) {
                [one] => PredictionRow::Value { value: *one },
                many => PredictionRow::Values { values: many.to_vec() },
            }
        } else {
            PredictionRow::Scores { scores: self.scores.row(i).to_vec() }
        }
    }

    /// The predictions of consecutive batches of one model as one prediction, rows in order;
    /// `None` for no parts.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// let a = model.predict_dense(&[3.0, 1.0], 1, 2)?;
    /// let b = model.predict_dense(&[0.0, 0.0, 1.0, 1.0], 2, 2)?;
    /// let all = ingot::Prediction::concat(vec![a, b]).unwrap();
    /// assert_eq!(all, model.predict_dense(&[3.0, 1.0, 0.0, 0.0, 1.0, 1.0], 3, 2)?);
    /// # Ok(()) }
    /// ```
    pub fn concat(parts: Vec<Prediction>) -> Option<Prediction> {
        let mut parts = parts.into_iter();
        let mut all = parts.next()?;
        fn join(a: &mut Matrix, b: Matrix) {
            a.data.extend(b.data);
            a.rows += b.rows;
        }
        fn join_opt(a: &mut Option<Matrix>, b: Option<Matrix>) {
            if let (Some(a), Some(b)) = (a.as_mut(), b) {
                join(a, b);
            }
        }
        for p in parts {
            all.rows += p.rows;
            join(&mut all.scores, p.scores);
            join_opt(&mut all.probabilities, p.probabilities);
            join_opt(&mut all.values, p.values);
            join_opt(&mut all.embeddings, p.embeddings);
            if let (Some(a), Some(b)) = (all.labels.as_mut(), p.labels) {
                a.extend(b);
            }
        }
        Some(all)
    }

    /// Rows `range` as a prediction of their own (panics if out of range, like slice indexing):
    /// the inverse of [`Prediction::concat`], used to hand each caller its part of a batch.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// let all = model.predict_dense(&[3.0, 1.0, 0.0, 0.0, 1.0, 1.0], 3, 2)?;
    /// assert_eq!(all.slice(1..3), model.predict_dense(&[0.0, 0.0, 1.0, 1.0], 2, 2)?);
    /// # Ok(()) }
    /// ```
    pub fn slice(&self, range: std::ops::Range<usize>) -> Prediction {
        let rows = |m: &Matrix| m.slice_rows(range.clone());
        Prediction {
            rows: range.len(),
            scores: rows(&self.scores),
            probabilities: self.probabilities.as_ref().map(rows),
            labels: self.labels.as_ref().map(|l| l.slice(range.clone())),
            classes: self.classes.clone(),
            values: self.values.as_ref().map(rows),
            embeddings: self.embeddings.as_ref().map(rows),
            targets: self.targets.clone(),
        }
    }

    /// Every row, in input order.
    pub fn to_rows(&self) -> Vec<PredictionRow> {
        (0..self.rows).map(|i| self.row(i)).collect()
    }

    /// The prediction as named columns, one value (or one vector) per row — the layout of CSV
    /// and Parquet outputs and of data frames in the bindings:
    ///
    /// - classifiers: `label`, then `proba_<class>` per class when probabilities are produced;
    /// - regressors: `value` for one target, else each target's name (or `value_<i>`);
    /// - text encoders: `embedding`, one vector per row;
    /// - models without post-processing: `score_<i>` per graph output column.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// let p = model.predict_dense(&[3.0, 1.0], 1, 2)?;
    /// let names: Vec<String> = p.columns().into_iter().map(|c| c.name).collect();
    /// assert_eq!(names, ["label", "proba_no", "proba_yes"]);
    /// # Ok(()) }
    /// ```
    pub fn columns(&self) -> Vec<OutputColumn<'_>> {
        fn numbers(m: &Matrix, names: Vec<String>) -> Vec<OutputColumn<'_>> {
            names
                .into_iter()
                .enumerate()
                .map(|(col, name)| OutputColumn { name, data: ColumnData::Number { matrix: m, col } })
                .collect()
        }
        if let Some(labels) = &self.labels {
            let mut cols = vec![OutputColumn { name: "label".into(), data: ColumnData::Labels(labels) }];
            if let (Some(probs), Some(classes)) = (&self.probabilities, &self.classes) {
                cols.extend(numbers(
                    probs,
                    classes.iter().map(|c| format!("proba_{}", class_key(c))).collect(),
                ));
            }
            cols
        } else if let Some(e) = &self.embeddings {
            vec![OutputColumn { name: "embedding".into(), data: ColumnData::Vector(e) }]
        } else if let Some(values) = &self.values {
            let names = match &self.targets {
                Some(t) if values.cols() > 1 => t.clone(),
                _ if values.cols() == 1 => vec!["value".into()],
                _ => (0..values.cols()).map(|i| format!("value_{i}")).collect(),
            };
            numbers(values, names)
        } else {
            numbers(&self.scores, (0..self.scores.cols()).map(|i| format!("score_{i}")).collect())
        }
    }
}
