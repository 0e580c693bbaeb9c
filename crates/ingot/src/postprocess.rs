//! Post-processing: graph scores → probabilities, class labels or regression values.

use crate::error::{Error, Result};
use crate::format::{Activation, Link, PostprocessSpec};
use crate::kernels::activation::sigmoid;
use crate::kernels::softmax::softmax_rows;
use crate::output::{Labels, Matrix, OutputLayout, Prediction};
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

    /// The outputs besides the scores that the stage makes of `width` score columns.
    pub(crate) fn layout(&self, width: usize) -> OutputLayout {
        let mut layout = OutputLayout { scores: width, ..OutputLayout::default() };
        match self {
            Postprocess::Raw => {}
            Postprocess::Embedding => layout.embeddings = Some(width),
            Postprocess::Regress { .. } => layout.values = Some(width),
            Postprocess::Classify { activation, classes } => {
                layout.labels = true;
                if *activation != Activation::None {
                    layout.probabilities = Some(classes.len());
                }
            }
        }
        layout
    }

    /// Applies the stage to a `[rows, width]` score matrix.
    pub(crate) fn apply(&self, scores: Matrix) -> Prediction {
        let (rows, width) = (scores.rows(), scores.cols());
        let layout = self.layout(width);
        let matrix = |cols: Option<usize>| cols.map(|c| vec![0f32; rows * c]);
        let (mut probabilities, mut values, mut embeddings) =
            (matrix(layout.probabilities), matrix(layout.values), matrix(layout.embeddings));
        let mut labels = layout.labels.then(|| vec![0u32; rows]);
        self.apply_into(
            scores.as_slice(),
            width,
            Derived {
                probabilities: probabilities.as_deref_mut(),
                values: values.as_deref_mut(),
                embeddings: embeddings.as_deref_mut(),
                labels: labels.as_deref_mut(),
            },
        );
        let wrap = |data: Option<Vec<f32>>, cols: Option<usize>| {
            data.zip(cols).and_then(|(d, c)| Matrix::new(d, rows, c))
        };
        let (classes, targets) = match self {
            Postprocess::Classify { classes, .. } => (Some(classes), None),
            Postprocess::Regress { targets, .. } => (None, (!targets.is_empty()).then(|| targets.clone())),
            _ => (None, None),
        };
        Prediction {
            rows,
            scores,
            probabilities: wrap(probabilities, layout.probabilities),
            labels: classes.zip(labels).map(|(c, l)| Labels::new(std::sync::Arc::clone(c), l)),
            classes: classes.map(|c| c.to_vec()),
            values: wrap(values, layout.values),
            embeddings: wrap(embeddings, layout.embeddings),
            targets,
        }
    }

    /// Writes what the stage makes of `rows × width` scores into `out`, whose parts are those
    /// of [`Postprocess::layout`], each of `rows` rows.
    pub(crate) fn apply_into(&self, scores: &[f32], width: usize, out: Derived<'_>) {
        match self {
            Postprocess::Raw => {}
            Postprocess::Embedding => {
                if let Some(e) = out.embeddings {
                    e.copy_from_slice(scores);
                }
            }
            Postprocess::Regress { link, .. } => {
                if let Some(values) = out.values {
                    for (v, &s) in values.iter_mut().zip(scores) {
                        *v = match link {
                            Link::Identity => s,
                            Link::Exp => f64::from(s).exp() as f32,
                            Link::Logistic => sigmoid64(f64::from(s)) as f32,
                        };
                    }
                }
            }
            Postprocess::Classify { activation, .. } => {
                if let Some(labels) = out.labels {
                    for (label, s) in labels.iter_mut().zip(scores.chunks_exact(width.max(1))) {
                        *label = if width == 1 { u32::from(s[0] > 0.0) } else { argmax(s) as u32 };
                    }
                }
                let Some(data) = out.probabilities else { return };
                match activation {
                    Activation::None => {}
                    Activation::Identity => data.copy_from_slice(scores),
                    Activation::Logistic if width == 1 => {
                        crate::parallel::for_each_chunk_mut(data, ROWS_PER_TASK * 2, |c, out| {
                            let scores = &scores[c * ROWS_PER_TASK..][..out.len() / 2];
                            for (pair, &s) in out.chunks_exact_mut(2).zip(scores) {
                                let pos = sigmoid64(f64::from(s));
                                pair.copy_from_slice(&[(1.0 - pos) as f32, pos as f32]);
                            }
                        });
                    }
                    Activation::Logistic => {
                        for (p, s) in data.chunks_exact_mut(width).zip(scores.chunks_exact(width)) {
                            p.iter_mut().zip(s).for_each(|(p, &v)| *p = sigmoid(v));
                            let sum: f32 = p.iter().sum();
                            p.iter_mut().for_each(|v| *v /= sum);
                        }
                    }
                    Activation::Softmax => {
                        let chunk = ROWS_PER_TASK * width;
                        let isa = crate::kernels::isa::Isa::detect();
                        crate::parallel::for_each_chunk_mut(data, chunk, |c, out| {
                            softmax_rows(isa, &scores[c * chunk..][..out.len()], width, out);
                        });
                    }
                }
            }
        }
    }
}

/// Where [`Postprocess::apply_into`] writes: the outputs derived from the scores.
pub(crate) struct Derived<'a> {
    pub(crate) probabilities: Option<&'a mut [f32]>,
    pub(crate) values: Option<&'a mut [f32]>,
    pub(crate) embeddings: Option<&'a mut [f32]>,
    pub(crate) labels: Option<&'a mut [u32]>,
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
