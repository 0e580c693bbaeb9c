//! [`Input`]: the request forms a model accepts (dense matrix, records, columns).

use crate::error::{Error, Result};
use crate::value::{Columns, Record};

/// Borrowed numbers of a dense row-major matrix.
#[derive(Debug, Clone, Copy)]
pub enum DenseData<'a> {
    /// f32 values.
    F32(&'a [f32]),
    /// f64 values.
    F64(&'a [f64]),
}

/// A dense row-major matrix whose columns follow the model's signature order.
///
/// ```
/// let x = [0.5f32, 1.0, 2.0, 3.0];
/// let m = ingot::Dense::f32(&x, 2, 2).unwrap();
/// assert_eq!(m.rows(), 2);
/// assert!(ingot::Dense::f32(&x, 3, 2).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Dense<'a> {
    data: DenseData<'a>,
    rows: usize,
    cols: usize,
}

impl<'a> Dense<'a> {
    fn new(data: DenseData<'a>, len: usize, rows: usize, cols: usize) -> Result<Self> {
        if rows.checked_mul(cols) != Some(len) {
            return Err(Error::ShapeMismatch {
                what: "dense input".into(),
                expected: format!("{rows} × {cols} = {} values", rows.saturating_mul(cols)),
                got: format!("{len} values"),
            });
        }
        Ok(Dense { data, rows, cols })
    }

    /// Wraps `rows × cols` f32 values.
    pub fn f32(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        Self::new(DenseData::F32(data), data.len(), rows, cols)
    }

    /// Wraps `rows × cols` f64 values.
    pub fn f64(data: &'a [f64], rows: usize, cols: usize) -> Result<Self> {
        Self::new(DenseData::F64(data), data.len(), rows, cols)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The borrowed values.
    pub fn data(&self) -> DenseData<'a> {
        self.data
    }

    /// The value at `(row, col)`; both must be in range.
    #[inline]
    pub(crate) fn get(&self, row: usize, col: usize) -> f64 {
        let i = row * self.cols + col;
        match self.data {
            DenseData::F32(d) => f64::from(d[i]),
            DenseData::F64(d) => d[i],
        }
    }
}

/// One request: a batch of rows in one of the accepted forms.
///
/// ```
/// use ingot::{Input, Record, Value};
/// let rows = vec![Record::from([("age".to_string(), Value::from(31.0))])];
/// let input = Input::Records(&rows);
/// assert_eq!(input.rows().unwrap(), 1);
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A dense numeric matrix, columns in signature order.
    Dense(Dense<'a>),
    /// Named rows.
    Records(&'a [Record]),
    /// Named columns of equal length.
    Columns(&'a Columns),
    /// Strings, for text models.
    Texts(&'a [&'a str]),
}

impl Input<'_> {
    /// Number of rows; for columns, checks that all columns have the same length.
    pub fn rows(&self) -> Result<usize> {
        match self {
            Input::Dense(d) => Ok(d.rows),
            Input::Records(r) => Ok(r.len()),
            Input::Texts(t) => Ok(t.len()),
            Input::Columns(c) => {
                let mut lens = c.iter().map(|(name, v)| (name, v.len()));
                let Some((_, n)) = lens.next() else {
                    return Ok(0);
                };
                for (name, len) in lens {
                    if len != n {
                        return Err(Error::ShapeMismatch {
                            what: format!("column `{name}`"),
                            expected: format!("{n} values like the other columns"),
                            got: format!("{len} values"),
                        });
                    }
                }
                Ok(n)
            }
        }
    }
}
