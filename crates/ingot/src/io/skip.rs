//! Batch scoring that keeps going past bad rows: [`predict_around_errors`].

use std::ops::Range;

use crate::error::{Error, Result};
use crate::output::Prediction;

/// Predicts rows `0..rows` in runs around the rows whose input is invalid.
///
/// `predict(range)` predicts the rows `range`; when it fails with an input error naming a row
/// (row numbers relative to `range.start`, the earliest bad row, as every input path of
/// [`crate::Model::predict`] reports), the rows before it are predicted alone, that row goes to
/// `on_reject(row, error)` with its number in `0..rows`, and scoring resumes after it. Each
/// prediction goes to `on_part(range, prediction)`, in row order. Any other error (a malformed
/// batch, a model failure) stops the run and is returned.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::{Record, Value};
/// let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let row = |b: Value| Record::from([("a".to_string(), Value::from(1.0)), ("b".to_string(), b)]);
/// let rows = vec![row(1.0.into()), row("x".into()), row(2.0.into())];
/// let (mut parts, mut rejected) = (Vec::new(), Vec::new());
/// ingot::io::predict_around_errors(
///     rows.len(),
///     |r| model.predict_records(&rows[r]),
///     |r, p| {
///         parts.push((r, p.rows));
///         Ok(())
///     },
///     |row, e| {
///         rejected.push((row, e.code()));
///         Ok(())
///     },
/// )?;
/// assert_eq!(parts, [(0..1, 1), (2..3, 1)]);
/// assert_eq!(rejected, [(1, "IngotInputError")]);
/// # Ok(()) }
/// ```
pub fn predict_around_errors(
    rows: usize,
    mut predict: impl FnMut(Range<usize>) -> Result<Prediction>,
    mut on_part: impl FnMut(Range<usize>, Prediction) -> Result<()>,
    mut on_reject: impl FnMut(usize, Error) -> Result<()>,
) -> Result<()> {
    let mut start = 0;
    while start < rows {
        let mut end = rows;
        let mut rejected = None;
        loop {
            match predict(start..end) {
                Ok(p) => {
                    if end > start {
                        on_part(start..end, p)?;
                    }
                    break;
                }
                Err(e) => match e.row().filter(|r| e.is_input_error() && start + r < end) {
                    Some(r) => {
                        rejected = Some((start + r, e));
                        end = start + r;
                        if end == start {
                            break;
                        }
                    }
                    None => return Err(e),
                },
            }
        }
        match rejected {
            Some((row, e)) => {
                on_reject(row, e)?;
                start = row + 1;
            }
            None => start = end,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Record, Value};
    use crate::Model;

    /// Runs the logistic model over rows whose `b` is bad where `bad[i]`; returns the predicted
    /// runs and the rejected rows.
    fn run(bad: &[bool]) -> (Vec<(usize, usize)>, Vec<usize>) {
        let model = Model::from_bytes(crate::testing::logistic_bundle().unwrap()).unwrap();
        let rows: Vec<Record> = bad
            .iter()
            .map(|&b| {
                let v = if b { Value::from("x") } else { Value::from(1.0) };
                Record::from([("a".to_string(), Value::from(2.0)), ("b".to_string(), v)])
            })
            .collect();
        let (mut parts, mut rejected) = (Vec::new(), Vec::new());
        predict_around_errors(
            rows.len(),
            |r| model.predict_records(&rows[r]),
            |r, p| {
                assert_eq!(p.rows, r.len());
                parts.push((r.start, r.end));
                Ok(())
            },
            |row, e| {
                assert!(matches!(e, Error::WrongType { .. }), "{e}");
                rejected.push(row);
                Ok(())
            },
        )
        .unwrap();
        (parts, rejected)
    }

    #[test]
    fn bad_rows_anywhere_are_rejected_and_the_rest_predicted() {
        assert_eq!(run(&[false, false, false]), (vec![(0, 3)], vec![]));
        assert_eq!(run(&[true, false, true, true, false]), (vec![(1, 2), (4, 5)], vec![0, 2, 3]));
        assert_eq!(run(&[true, true]), (vec![], vec![0, 1]));
        assert_eq!(run(&[false, true]), (vec![(0, 1)], vec![1]));
        assert_eq!(run(&[]), (vec![], vec![]));
    }

    #[test]
    fn an_error_without_a_row_stops_the_run() {
        let err = predict_around_errors(
            3,
            |_| Err(Error::usage("wrong form")),
            |_, _| Ok(()),
            |_, _| panic!("nothing is rejected"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Usage { .. }));
    }
}
