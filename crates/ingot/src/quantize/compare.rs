//! How close a reduced bundle's outputs are to its source's: the figures of the accuracy report.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::input::Input;
use crate::model::Model;
use crate::output::Prediction;
use crate::value::Record;

/// What the accuracy is measured on.
///
/// ```
/// let data = ingot::quantize::Calibration::texts_from_lines("a cat\n\na dog\n");
/// assert_eq!(data.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Calibration {
    /// Sentences, for text models.
    Texts(Vec<String>),
    /// Rows, for tabular models.
    Records(Vec<Record>),
}

/// Sentences are run in batches of this many, so a long calibration file needs little memory.
const TEXT_BATCH: usize = 64;

impl Calibration {
    /// One sentence per non-empty line of `text`.
    pub fn texts_from_lines(text: &str) -> Calibration {
        Calibration::Texts(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect())
    }

    /// The reference sample stored in the bundle (its `reference.sample` rows; a text model's
    /// sample rows hold its one string input).
    pub fn from_reference(model: &Model) -> Result<Calibration> {
        let sample = model.manifest().reference.as_ref().map(|r| r.sample.clone()).unwrap_or_default();
        if sample.is_empty() {
            return Err(Error::usage(
                "the bundle has no reference sample to measure accuracy on; give calibration data",
            ));
        }
        if !matches!(model.empty_input(), Input::Texts(_)) {
            return Ok(Calibration::Records(sample));
        }
        let texts = sample
            .iter()
            .map(|r| match r.values().next().and_then(|v| v.as_str()) {
                Some(s) => Ok(s.to_owned()),
                None => Err(Error::usage("a text model's reference sample rows must hold one string")),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Calibration::Texts(texts))
    }

    /// Number of rows or sentences.
    pub fn len(&self) -> usize {
        match self {
            Calibration::Texts(t) => t.len(),
            Calibration::Records(r) => r.len(),
        }
    }

    /// Whether there is nothing to measure on.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `model` on every row.
    pub(crate) fn run(&self, model: &Model) -> Result<Prediction> {
        match self {
            Calibration::Records(records) => model.predict(Input::Records(records)),
            Calibration::Texts(texts) => {
                let parts = texts
                    .chunks(TEXT_BATCH)
                    .map(|chunk| {
                        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                        model.predict(Input::Texts(&refs))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Prediction::concat(parts).ok_or_else(|| Error::usage("no calibration data"))
            }
        }
    }
}

/// Agreement of a candidate's outputs with the source's, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// Rows compared.
    pub rows: usize,
    /// Lowest cosine similarity of a row's output vector (embedding, or raw scores) to the
    /// source's; two all-zero rows count as 1.
    pub min_cosine: f64,
    /// Mean of the per-row cosines.
    pub mean_cosine: f64,
    /// Largest absolute difference of any output value.
    pub max_abs_error: f64,
    /// Fraction of rows whose predicted label is the source's (classifiers).
    pub label_agreement: Option<f64>,
    /// Largest absolute difference of any class probability (classifiers).
    pub max_probability_error: Option<f64>,
}

impl Agreement {
    /// Compares two predictions over the same rows.
    pub(crate) fn between(source: &Prediction, candidate: &Prediction) -> Agreement {
        let pick = |p: &Prediction| p.embeddings.clone().unwrap_or_else(|| p.scores.clone());
        let (a, b) = (pick(source), pick(candidate));
        let rows = a.rows().min(b.rows());
        let cosines: Vec<f64> = (0..rows).map(|i| cosine(a.row(i), b.row(i))).collect();
        let max_abs = |x: &[f32], y: &[f32]| {
            x.iter().zip(y).map(|(p, q)| f64::from((p - q).abs())).fold(0.0, |m: f64, d| {
                if d.is_nan() {
                    f64::NAN
                } else {
                    m.max(d)
                }
            })
        };
        let label_agreement = match (&source.labels, &candidate.labels) {
            (Some(x), Some(y)) if !x.is_empty() => {
                let same = x.indices().iter().zip(y.indices()).filter(|(p, q)| p == q).count();
                Some(same as f64 / x.len() as f64)
            }
            _ => None,
        };
        let max_probability_error = match (&source.probabilities, &candidate.probabilities) {
            (Some(x), Some(y)) => Some(max_abs(x.as_slice(), y.as_slice())),
            _ => None,
        };
        Agreement {
            rows,
            min_cosine: cosines
                .iter()
                .copied()
                .fold(1.0, |m: f64, c| if c.is_nan() { f64::NAN } else { m.min(c) }),
            mean_cosine: if rows == 0 { 1.0 } else { cosines.iter().sum::<f64>() / rows as f64 },
            max_abs_error: max_abs(a.as_slice(), b.as_slice()),
            label_agreement,
            max_probability_error,
        }
    }

    /// The figures as the manifest's `quantization.accuracy` map.
    pub(crate) fn to_map(&self) -> BTreeMap<String, f64> {
        let mut map = BTreeMap::from([
            ("rows".to_string(), self.rows as f64),
            ("min_cosine".to_string(), self.min_cosine),
            ("mean_cosine".to_string(), self.mean_cosine),
            ("max_abs_error".to_string(), self.max_abs_error),
        ]);
        if let Some(v) = self.label_agreement {
            map.insert("label_agreement".into(), v);
        }
        if let Some(v) = self.max_probability_error {
            map.insert("max_probability_error".into(), v);
        }
        map
    }
}

/// Cosine similarity in f64; 1 for two all-zero rows, 0 when only one is zero, NaN when
/// either holds a NaN.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    match (na == 0.0, nb == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        _ => dot / (na.sqrt() * nb.sqrt()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_edges() {
        assert_eq!(cosine(&[0.0, 0.0], &[0.0, 0.0]), 1.0);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 0.0]), 0.0);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0])).abs() < 1e-12);
        assert!(cosine(&[f32::NAN, 0.0], &[1.0, 0.0]).is_nan());
    }
}
