//! Post-processing: graph scores → probabilities, class labels or regression values.

use crate::error::{Error, Result};
use crate::format::{Activation, Link, PostprocessSpec};
use crate::kernels::activation::sigmoid;
use crate::kernels::softmax::softmax_rows;
use crate::output::{Labels, Matrix, Prediction};
use crate::value::Value;

/// What a model predicts, from its post-processing.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// assert_eq!(model.task(), ingot::Task::Classifier);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Class labels (and probabilities, unless the activation is `none`).
    Classifier,
    /// Numbers, one per target.
    Regressor,
    /// Embedding vectors.
    Embedding,
    /// The graph's raw scores.
    Scores,
}

impl Task {
    /// The task's name as the bindings and the server spell it: `classifier`, `regressor`,
    /// `embedding` or `scores`.
    ///
    /// ```
    /// assert_eq!(ingot::Task::Regressor.name(), "regressor");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Task::Classifier => "classifier",
            Task::Regressor => "regressor",
            Task::Embedding => "embedding",
            Task::Scores => "scores",
        }
    }
}

/// A validated post-processing stage.
#[derive(Debug)]
pub(crate) enum Postprocess {
    Classify {
        activation: Activation,
        classes: std::sync::Arc<[Value]>,
    },
    Regress {
        targets: Vec<String>,
        link: Link,
    },
    /// Scores are embeddings.
    Embedding,
    /// No step: scores are returned as they are.
    Raw,
}

impl Postprocess {
    /// What the stage makes of the scores.
    pub(crate) fn task(&self) -> Task {
        match self {
            Postprocess::Classify { .. } => Task::Classifier,
            Postprocess::Regress { .. } => Task::Regressor,
            Postprocess::Embedding => Task::Embedding,
            Postprocess::Raw => Task::Scores,
        }
    }

    /// The class labels of a classifier, in probability-column order.
    pub(crate) fn classes(&self) -> Option<&[Value]> {
        match self {
            Postprocess::Classify { classes, .. } => Some(classes),
            _ => None,
        }
    }

    /// The target names of a regressor that names them.
    pub(crate) fn targets(&self) -> Option<&[String]> {
        match self {
            Postprocess::Regress { targets, .. } if !targets.is_empty() => Some(targets),
            _ => None,
        }
    }

    /// Validates the steps against the graph's output width.
    pub(crate) fn compile(specs: &[PostprocessSpec], width: usize) -> Result<Postprocess> {
        let spec = match specs {
            [] => return Ok(Postprocess::Raw),
            [one] => one,
            _ => return Err(Error::manifest("postprocess", "opset 1 supports one post-processing step")),
        };
        match spec {
            PostprocessSpec::Classify { activation, classes } => {
                let expected = match (activation, width) {
                    (Activation::Logistic | Activation::None, 1) => 2,
                    _ => width,
                };
                if classes.len() != expected || expected < 2 {
                    return Err(Error::manifest(
                        "postprocess[0].classes",
                        format!(
                            "{} classes for {width} score column(s); expected {expected} (at least 2)",
                            classes.len()
                        ),
                    ));
                }
                if matches!(activation, Activation::Softmax | Activation::Identity) && width == 1 {
                    return Err(Error::manifest(
                        "postprocess[0].activation",
                        "softmax and identity need a score column per class",
                    ));
                }
                Ok(Postprocess::Classify { activation: *activation, classes: classes.as_slice().into() })
            }
            PostprocessSpec::Embedding {} => Ok(Postprocess::Embedding),
            PostprocessSpec::Regress { targets, link } => {
                if !targets.is_empty() && targets.len() != width {
                    return Err(Error::manifest(
                        "postprocess[0].targets",
                        format!("{} targets for {width} output column(s)", targets.len()),
                    ));
                }
                Ok(Postprocess::Regress { targets: targets.clone(), link: *link })
            }
        }
    }

    /// Applies the stage to a `[rows, width]` score matrix.
    pub(crate) fn apply(&self, scores: Matrix) -> Prediction {
        let rows = scores.rows();
        let mut p = Prediction {
            rows,
            scores,
            probabilities: None,
            labels: None,
            classes: None,
            values: None,
            embeddings: None,
            targets: None,
        };
        match self {
            Postprocess::Raw => {}
            Postprocess::Embedding => p.embeddings = Some(p.scores.clone()),
            Postprocess::Regress { targets, link } => {
                p.values = Some(match link {
                    Link::Identity => p.scores.clone(),
                    Link::Exp => p.scores.map(|v| (f64::from(v).exp()) as f32),
                    Link::Logistic => p.scores.map(|v| sigmoid64(f64::from(v)) as f32),
                });
                p.targets = (!targets.is_empty()).then(|| targets.clone());
            }
            Postprocess::Classify { activation, classes } => {
                let width = p.scores.cols();
                let label_index: Vec<u32> = p
                    .scores
                    .iter_rows()
                    .map(|s| if width == 1 { u32::from(s[0] > 0.0) } else { argmax(s) as u32 })
                    .collect();
                p.labels = Some(Labels::new(std::sync::Arc::clone(classes), label_index));
                p.classes = Some(classes.to_vec());
                p.probabilities = match activation {
                    Activation::None => None,
                    Activation::Identity => Some(p.scores.clone()),
                    Activation::Logistic if width == 1 => {
                        let mut data = vec![0f32; rows * 2];
                        let scores = p.scores.as_slice();
                        crate::parallel::for_each_chunk_mut(&mut data, ROWS_PER_TASK * 2, |c, out| {
                            let scores = &scores[c * ROWS_PER_TASK..][..out.len() / 2];
                            for (pair, &s) in out.chunks_exact_mut(2).zip(scores) {
                                let pos = sigmoid64(f64::from(s));
                                pair.copy_from_slice(&[(1.0 - pos) as f32, pos as f32]);
                            }
                        });
                        Matrix::new(data, rows, 2)
                    }
                    Activation::Logistic => {
                        let mut data = Vec::with_capacity(rows * width);
                        for s in p.scores.iter_rows() {
                            let start = data.len();
                            data.extend(s.iter().map(|&v| sigmoid(v)));
                            let sum: f32 = data[start..].iter().sum();
                            data[start..].iter_mut().for_each(|v| *v /= sum);
                        }
                        Matrix::new(data, rows, width)
                    }
                    Activation::Softmax => {
                        let mut data = vec![0f32; rows * width];
                        let scores = p.scores.as_slice();
                        let chunk = ROWS_PER_TASK * width;
                        let isa = crate::kernels::isa::Isa::detect();
                        crate::parallel::for_each_chunk_mut(&mut data, chunk, |c, out| {
                            softmax_rows(isa, &scores[c * chunk..][..out.len()], width, out);
                        });
                        Matrix::new(data, rows, width)
                    }
                };
            }
        }
        p
    }
}

/// Rows per parallel task of the probability transforms.
const ROWS_PER_TASK: usize = 1024;

fn sigmoid64(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// Index of the first maximum (NumPy's `argmax`).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
