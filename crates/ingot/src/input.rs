//! [`Input`]: the request forms a model accepts (dense matrix, records, columns, typed column
//! frames, strings).

use crate::error::{Error, Result};
use crate::value::{Columns, Record, Value};

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

/// An owned row-major f64 matrix made from nested rows (JSON `instances`, a list of lists), for
/// [`Input::Dense`].
///
/// ```
/// let m = ingot::DenseRows::from_rows("instances", &[vec![1.0, 2.0], vec![3.0, 4.0]], 2).unwrap();
/// assert_eq!((m.rows(), m.cols()), (2, 2));
/// let err = ingot::DenseRows::from_rows("instances", &[vec![1.0, 2.0], vec![3.0]], 2).unwrap_err();
/// assert!(err.to_string().contains("instances row 1"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DenseRows {
    data: Vec<f64>,
    rows: usize,
    cols: usize,
}

impl DenseRows {
    /// Flattens `rows` (called `what` in errors), which must all have the same length (a ragged
    /// row is an error naming it); an empty list has `width` columns.
    pub fn from_rows<R: AsRef<[f64]>>(what: &str, rows: &[R], width: usize) -> Result<DenseRows> {
        let cols = rows.first().map_or(width, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len().saturating_mul(cols));
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != cols {
                return Err(Error::ShapeMismatch {
                    what: format!("{what} row {i}"),
                    expected: format!("{cols} values, like row 0"),
                    got: format!("{} values", row.len()),
                });
            }
            data.extend_from_slice(row);
        }
        Ok(DenseRows { data, rows: rows.len(), cols })
    }

    /// Wraps row-major `data` of `cols` columns (called `what` in errors); its length must be a
    /// multiple of `cols`.
    ///
    /// ```
    /// let m = ingot::DenseRows::new("inputs", vec![1.0, 2.0, 3.0, 4.0], 2).unwrap();
    /// assert_eq!((m.rows(), m.as_slice()), (2, &[1.0, 2.0, 3.0, 4.0][..]));
    /// assert!(ingot::DenseRows::new("inputs", vec![1.0, 2.0, 3.0], 2).is_err());
    /// ```
    pub fn new(what: &str, data: Vec<f64>, cols: usize) -> Result<DenseRows> {
        let rows = match cols {
            0 if data.is_empty() => Some(0),
            0 => None,
            _ if data.len().is_multiple_of(cols) => Some(data.len() / cols),
            _ => None,
        };
        let Some(rows) = rows else {
            return Err(Error::ShapeMismatch {
                what: what.to_owned(),
                expected: format!("a multiple of {cols} values (rows × {cols} columns)"),
                got: format!("{} values", data.len()),
            });
        };
        Ok(DenseRows { data, rows, cols })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// Appends `other`'s rows; an error when the widths differ.
    pub fn append(&mut self, other: &DenseRows) -> Result<()> {
        if other.cols != self.cols && other.rows > 0 && self.rows > 0 {
            return Err(Error::ShapeMismatch {
                what: "appended rows".into(),
                expected: format!("{} columns", self.cols),
                got: format!("{} columns", other.cols),
            });
        }
        if self.rows == 0 {
            self.cols = other.cols;
        }
        self.data.extend_from_slice(&other.data);
        self.rows += other.rows;
        Ok(())
    }

    /// The matrix as a dense input.
    pub fn as_dense(&self) -> Dense<'_> {
        Dense { data: DenseData::F64(&self.data), rows: self.rows, cols: self.cols }
    }
}

/// The values of one [`FrameColumn`], borrowed in their own type.
#[derive(Debug, Clone, Copy)]
pub enum ColumnValues<'a> {
    /// 64-bit floats (NaN is missing).
    F64(&'a [f64]),
    /// 32-bit floats (NaN is missing).
    F32(&'a [f32]),
    /// 64-bit integers.
    I64(&'a [i64]),
    /// 32-bit integers.
    I32(&'a [i32]),
    /// Booleans, seen by the model as the numbers 0 and 1.
    Bool(&'a [bool]),
    /// Strings (`None` is missing).
    Str(&'a [Option<&'a str>]),
    /// Values of any kind, checked one by one as records are (a column of Python objects).
    Values(&'a [Value]),
    /// Strings laid out as Arrow lays them out: row `i` is `data[offsets[i]..offsets[i + 1]]`
    /// (missing rows are marked in [`FrameColumn::missing`]). [`Frame::new`] checks that the
    /// offsets rise, stay within `data` and fall on character boundaries.
    Utf8 {
        /// One more offset than rows.
        offsets: Offsets<'a>,
        /// The strings, end to end.
        data: &'a str,
    },
    /// Dictionary-encoded strings (a pandas categorical, an Arrow dictionary array): row `i` is
    /// `values[keys[i]]`, and a negative key is missing. Each distinct string is looked up once
    /// per call, not once per row. [`Frame::new`] checks that every key is in range.
    Dict {
        /// One key per row.
        keys: &'a [i32],
        /// The distinct strings.
        values: &'a [&'a str],
    },
}

impl<'a> ColumnValues<'a> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::F64(v) => v.len(),
            ColumnValues::F32(v) => v.len(),
            ColumnValues::I64(v) => v.len(),
            ColumnValues::I32(v) => v.len(),
            ColumnValues::Bool(v) => v.len(),
            ColumnValues::Str(v) => v.len(),
            ColumnValues::Values(v) => v.len(),
            ColumnValues::Dict { keys, .. } => keys.len(),
            ColumnValues::Utf8 { offsets, .. } => offsets.rows(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row`'s string, for the string forms (`None`: missing, or not a string column).
    ///
    /// # Panics
    /// If `row` is out of range.
    #[inline]
    pub(crate) fn string(&self, row: usize) -> Option<&'a str> {
        match *self {
            ColumnValues::Str(v) => v[row],
            ColumnValues::Utf8 { offsets, data } => Some(&data[offsets.span(row)]),
            ColumnValues::Dict { keys, values } => usize::try_from(keys[row]).ok().map(|k| values[k]),
            _ => None,
        }
    }
}

/// The offsets of an Arrow string array ([`ColumnValues::Utf8`]): 32-bit (`Utf8`) or 64-bit
/// (`LargeUtf8`, what pandas' Arrow-backed strings use).
#[derive(Debug, Clone, Copy)]
pub enum Offsets<'a> {
    /// 32-bit offsets.
    I32(&'a [i32]),
    /// 64-bit offsets.
    I64(&'a [i64]),
}

impl<'a> Offsets<'a> {
    /// Number of strings (one less than offsets).
    pub fn rows(&self) -> usize {
        match self {
            Offsets::I32(o) => o.len().saturating_sub(1),
            Offsets::I64(o) => o.len().saturating_sub(1),
        }
    }

    /// The byte range of string `i` (valid offsets, as [`Frame::new`] checks).
    #[inline]
    pub(crate) fn span(&self, i: usize) -> std::ops::Range<usize> {
        match self {
            Offsets::I32(o) => o[i] as usize..o[i + 1] as usize,
            Offsets::I64(o) => o[i] as usize..o[i + 1] as usize,
        }
    }

    /// The offsets of strings `rows`.
    fn slice(&self, rows: std::ops::Range<usize>) -> Offsets<'a> {
        match self {
            Offsets::I32(o) => Offsets::I32(&o[rows.start..=rows.end]),
            Offsets::I64(o) => Offsets::I64(&o[rows.start..=rows.end]),
        }
    }

    /// Checks that the offsets rise from at least 0 to at most `data.len()`, each on a
    /// character boundary of `data`; names the first bad one.
    fn check(&self, data: &str) -> std::result::Result<(), String> {
        let check = |offsets: &mut dyn Iterator<Item = i64>| {
            let mut prev = 0i64;
            for (i, o) in offsets.enumerate() {
                let ok = o >= prev && usize::try_from(o).is_ok_and(|o| data.is_char_boundary(o));
                if !ok {
                    return Err(format!(
                        "string offset {i} ({o}) does not follow {prev} within {} bytes",
                        data.len()
                    ));
                }
                prev = o;
            }
            Ok(())
        };
        match self {
            Offsets::I32(o) => check(&mut o.iter().map(|&o| i64::from(o))),
            Offsets::I64(o) => check(&mut o.iter().copied()),
        }
    }
}

/// A named column of a [`Frame`]: its values and which rows are missing.
#[derive(Debug, Clone, Copy)]
pub struct FrameColumn<'a> {
    /// Column name.
    pub name: &'a str,
    /// The values.
    pub values: ColumnValues<'a>,
    /// `true` where the row's value is missing (a null); `None` when no value is (a NaN in a float
    /// column is missing either way).
    pub missing: Option<&'a [bool]>,
}

impl FrameColumn<'_> {
    /// Whether row `row`'s value is marked missing.
    #[inline]
    pub(crate) fn is_missing(&self, row: usize) -> bool {
        self.missing.is_some_and(|m| m[row])
    }
}

/// Named columns of equal length, each in its own type and borrowed where it lives: the
/// zero-copy form of a DataFrame or an Arrow record batch ([`crate::io::arrow`]).
///
/// ```
/// use ingot::{ColumnValues, Frame, FrameColumn, Input};
/// let ages = [31.0, f64::NAN];
/// let colors = [Some("red"), None];
/// let frame = Frame::new(vec![
///     FrameColumn { name: "age", values: ColumnValues::F64(&ages), missing: None },
///     FrameColumn { name: "color", values: ColumnValues::Str(&colors), missing: None },
/// ])
/// .unwrap();
/// assert_eq!(Input::Frame(&frame).rows().unwrap(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    columns: Vec<FrameColumn<'a>>,
    rows: usize,
}

impl<'a> Frame<'a> {
    /// A frame of `columns`, which must all have the same length (as must their `missing` masks),
    /// with every dictionary key in range.
    pub fn new(columns: Vec<FrameColumn<'a>>) -> Result<Frame<'a>> {
        let rows = columns.first().map_or(0, |c| c.values.len());
        for c in &columns {
            if let ColumnValues::Utf8 { offsets, data } = c.values {
                offsets
                    .check(data)
                    .map_err(|e| Error::Usage { what: format!("column `{}`: {e}", c.name) })?;
            }
            if let ColumnValues::Dict { keys, values } = c.values {
                if let Some(row) = keys.iter().position(|&k| k >= 0 && k as usize >= values.len()) {
                    return Err(Error::Usage {
                        what: format!(
                            "column `{}`: row {row} has dictionary key {} of {} values",
                            c.name,
                            keys[row],
                            values.len()
                        ),
                    });
                }
            }
            let lens = (c.values.len(), c.missing.map_or(rows, <[bool]>::len));
            if lens != (rows, rows) {
                return Err(Error::ShapeMismatch {
                    what: format!("column `{}`", c.name),
                    expected: format!("{rows} values like the other columns"),
                    got: format!("{} values and {} missing flags", lens.0, lens.1),
                });
            }
        }
        Ok(Frame { columns, rows })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The columns.
    pub fn columns(&self) -> &[FrameColumn<'a>] {
        &self.columns
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&FrameColumn<'a>> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Rows `rows` of every column.
    ///
    /// # Panics
    /// If `rows` is out of range.
    pub fn slice(&self, rows: std::ops::Range<usize>) -> Frame<'a> {
        let r = rows.clone();
        let columns = self
            .columns
            .iter()
            .map(|c| FrameColumn {
                name: c.name,
                values: match c.values {
                    ColumnValues::F64(v) => ColumnValues::F64(&v[r.clone()]),
                    ColumnValues::F32(v) => ColumnValues::F32(&v[r.clone()]),
                    ColumnValues::I64(v) => ColumnValues::I64(&v[r.clone()]),
                    ColumnValues::I32(v) => ColumnValues::I32(&v[r.clone()]),
                    ColumnValues::Bool(v) => ColumnValues::Bool(&v[r.clone()]),
                    ColumnValues::Str(v) => ColumnValues::Str(&v[r.clone()]),
                    ColumnValues::Values(v) => ColumnValues::Values(&v[r.clone()]),
                    ColumnValues::Dict { keys, values } => {
                        ColumnValues::Dict { keys: &keys[r.clone()], values }
                    }
                    ColumnValues::Utf8 { offsets, data } => {
                        ColumnValues::Utf8 { offsets: offsets.slice(r.clone()), data }
                    }
                },
                missing: c.missing.map(|m| &m[r.clone()]),
            })
            .collect();
        Frame { columns, rows: rows.len() }
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
    /// Typed columns of equal length (a DataFrame, an Arrow batch).
    Frame(&'a Frame<'a>),
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
            Input::Frame(f) => Ok(f.rows),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(values: ColumnValues<'_>) -> Result<Frame<'_>> {
        Frame::new(vec![FrameColumn { name: "c", values, missing: None }])
    }

    #[test]
    fn strings_in_arrow_layout_are_checked() {
        let data = "aéb";
        let good = [0i32, 1, 3, 4];
        let f = frame(ColumnValues::Utf8 { offsets: Offsets::I32(&good), data }).unwrap();
        let c = &f.columns()[0];
        assert_eq!((0..3).map(|r| c.values.string(r).unwrap()).collect::<Vec<_>>(), ["a", "é", "b"]);
        assert_eq!(f.slice(1..3).columns()[0].values.string(1), Some("b"));
        for bad in [[0i32, 2, 3, 4], [0, 3, 1, 4], [0, 1, 3, 5], [-1, 1, 3, 4]] {
            let err = frame(ColumnValues::Utf8 { offsets: Offsets::I32(&bad), data }).unwrap_err();
            assert!(
                matches!(&err, Error::Usage { what } if what.starts_with("column `c`: string offset")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn dictionary_keys_are_checked() {
        let values = ["x", "y"];
        assert!(frame(ColumnValues::Dict { keys: &[0, -1, 1], values: &values }).is_ok());
        let err = frame(ColumnValues::Dict { keys: &[0, 2], values: &values }).unwrap_err();
        assert!(err.to_string().contains("row 1 has dictionary key 2 of 2 values"), "{err}");
    }
}
