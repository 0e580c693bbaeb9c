//! The rows of one request, whatever protocol brought them: what the batcher merges and the
//! model runs.

use ingot::{DenseRows, Input, Model, Prediction, Record};

/// The input rows of one request.
///
/// ```
/// use ingot_server::Payload;
/// let p = Payload::Texts(vec!["hello".into(), "world".into()]);
/// assert_eq!(p.rows(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Named rows.
    Records(Vec<Record>),
    /// Numeric rows in signature column order.
    Dense(DenseRows),
    /// Strings, for text models.
    Texts(Vec<String>),
}

impl Payload {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Payload::Records(r) => r.len(),
            Payload::Dense(d) => d.rows(),
            Payload::Texts(t) => t.len(),
        }
    }

    /// Whether `other` can be appended to `self` in one batch (same form and width).
    pub fn can_merge(&self, other: &Payload) -> bool {
        match (self, other) {
            (Payload::Records(_), Payload::Records(_)) | (Payload::Texts(_), Payload::Texts(_)) => true,
            (Payload::Dense(a), Payload::Dense(b)) => a.cols() == b.cols(),
            _ => false,
        }
    }

    /// Appends `other`'s rows; callers check [`Payload::can_merge`] first.
    pub fn append(&mut self, other: &Payload) -> ingot::Result<()> {
        match (self, other) {
            (Payload::Records(a), Payload::Records(b)) => a.extend_from_slice(b),
            (Payload::Texts(a), Payload::Texts(b)) => a.extend_from_slice(b),
            (Payload::Dense(a), Payload::Dense(b)) => a.append(b)?,
            _ => return Err(ingot::Error::usage("a batch mixes input forms")),
        }
        Ok(())
    }

    /// Runs `model` on the rows.
    pub fn predict(&self, model: &Model) -> ingot::Result<Prediction> {
        match self {
            Payload::Records(records) => model.predict_records(records),
            Payload::Dense(rows) => model.predict(Input::Dense(rows.as_dense())),
            Payload::Texts(texts) => {
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                model.predict(Input::Texts(&texts))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_only_like_forms() {
        let dense = |data: Vec<f64>, cols| Payload::Dense(DenseRows::new("x", data, cols).unwrap());
        let mut a = dense(vec![1.0, 2.0], 2);
        assert!(a.can_merge(&dense(vec![3.0, 4.0, 5.0, 6.0], 2)));
        assert!(!a.can_merge(&dense(vec![3.0], 1)));
        assert!(!a.can_merge(&Payload::Texts(vec![])));
        a.append(&dense(vec![3.0, 4.0], 2)).unwrap();
        assert_eq!(a, dense(vec![1.0, 2.0, 3.0, 4.0], 2));
        assert!(a.append(&Payload::Records(vec![])).is_err());
    }
}
