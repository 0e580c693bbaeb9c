//! Python inputs → `ingot::Input`: numpy arrays borrowed where their layout allows, lists and
//! dicts converted once. Everything here runs with the GIL held; the model runs after it.

use ingot::{ColumnValues, Dense, Error, Frame, FrameColumn, Record, Value};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::error::to_py;

/// A Python scalar as a value: `None` is missing, booleans are 0 and 1, numbers and strings are
/// themselves; anything else is a wrong type naming `row` and `column`.
fn value_of(obj: &Bound<'_, PyAny>, row: usize, column: &str) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>()?));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Number(f64::from(u8::from(obj.extract::<bool>()?))));
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Number(obj.extract::<f64>()?));
    }
    // numpy scalars and other numbers.
    match obj.extract::<f64>() {
        Ok(v) => Ok(Value::Number(v)),
        Err(_) => Err(to_py(Error::WrongType {
            row,
            column: column.to_owned(),
            expected: "a number, a string or None",
            got: obj.get_type().name().map_or_else(|_| "an object".into(), |n| n.to_string()),
        })),
    }
}

/// `list[dict[str, object]]` as records.
pub(crate) fn records(list: &Bound<'_, PyList>) -> PyResult<Vec<Record>> {
    let mut out = Vec::with_capacity(list.len());
    for (row, item) in list.iter().enumerate() {
        let dict = item
            .cast::<PyDict>()
            .map_err(|_| to_py(Error::usage(format!("records: row {row} is not a dict of column values"))))?;
        let mut record = Record::new();
        for (k, v) in dict.iter() {
            let key: String = k
                .extract()
                .map_err(|_| to_py(Error::usage(format!("records: row {row} has a non-string key"))))?;
            let value = value_of(&v, row, &key)?;
            record.insert(key, value);
        }
        out.push(record);
    }
    Ok(out)
}

/// A row-major f32 or f64 matrix: borrowed when C-contiguous, copied otherwise; or, when
/// Fortran-ordered, its columns borrowed as a frame named by `names`.
pub(crate) enum Matrix<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
    Owned(Vec<f64>, usize, usize),
}

impl<'py> Matrix<'py> {
    /// Extracts a 2-D float32 or float64 numpy array.
    pub(crate) fn extract(obj: &Bound<'py, PyAny>) -> PyResult<Matrix<'py>> {
        if let Ok(a) = obj.cast::<PyArray2<f32>>() {
            return Ok(Matrix::F32(a.readonly()));
        }
        if let Ok(a) = obj.cast::<PyArray2<f64>>() {
            let a = a.readonly();
            if a.is_c_contiguous() || a.is_fortran_contiguous() {
                return Ok(Matrix::F64(a));
            }
            let (rows, cols) = (a.shape()[0], a.shape()[1]);
            return Ok(Matrix::Owned(a.as_array().iter().copied().collect(), rows, cols));
        }
        Err(to_py(Error::usage("expected a 2-D float32 or float64 numpy array")))
    }

    /// Whether the matrix reads the numpy array's own buffer (not a copy).
    pub(crate) fn borrowed(&self) -> bool {
        !matches!(self, Matrix::Owned(..))
    }

    /// The matrix as a dense input, when it is row-major.
    pub(crate) fn dense(&self) -> PyResult<Option<Dense<'_>>> {
        let d = match self {
            Matrix::F32(a) if a.is_c_contiguous() => Dense::f32(a.as_slice()?, a.shape()[0], a.shape()[1]),
            Matrix::F64(a) if a.is_c_contiguous() => Dense::f64(a.as_slice()?, a.shape()[0], a.shape()[1]),
            Matrix::Owned(v, rows, cols) => Dense::f64(v, *rows, *cols),
            _ => return Ok(None),
        };
        d.map(Some).map_err(to_py)
    }

    /// A Fortran-ordered matrix's columns, named `names` (which must be one per column).
    pub(crate) fn columns<'a>(&'a self, names: &'a [String]) -> PyResult<Frame<'a>> {
        let (rows, cols, values): (usize, usize, Vec<ColumnValues<'_>>) = match self {
            Matrix::F32(a) => {
                let (r, c) = (a.shape()[0], a.shape()[1]);
                let data = a.as_slice()?;
                (r, c, (0..c).map(|j| ColumnValues::F32(&data[j * r..(j + 1) * r])).collect())
            }
            Matrix::F64(a) => {
                let (r, c) = (a.shape()[0], a.shape()[1]);
                let data = a.as_slice()?;
                (r, c, (0..c).map(|j| ColumnValues::F64(&data[j * r..(j + 1) * r])).collect())
            }
            Matrix::Owned(_, r, c) => (*r, *c, Vec::new()),
        };
        if cols != names.len() {
            return Err(to_py(Error::ShapeMismatch {
                what: "dense input columns".into(),
                expected: names.len().to_string(),
                got: cols.to_string(),
            }));
        }
        debug_assert!(values.iter().all(|v| v.len() == rows));
        let columns = names
            .iter()
            .zip(values)
            .map(|(name, values)| FrameColumn { name, values, missing: None })
            .collect();
        Frame::new(columns).map_err(to_py)
    }
}

/// One column handed over by the Python side: a 1-D numpy array (borrowed) or a list.
pub(crate) enum Column<'py> {
    F64(PyReadonlyArray1<'py, f64>),
    F32(PyReadonlyArray1<'py, f32>),
    I64(PyReadonlyArray1<'py, i64>),
    I32(PyReadonlyArray1<'py, i32>),
    Bool(PyReadonlyArray1<'py, bool>),
    Str(Vec<Option<String>>),
    Values(Vec<Value>),
}

/// A column with its name and optional missing mask.
pub(crate) struct NamedColumn<'py> {
    name: String,
    data: Column<'py>,
    missing: Option<PyReadonlyArray1<'py, bool>>,
}

/// `obj` as a contiguous 1-D numpy array of `T`, if it is one.
fn array<'py, T: numpy::Element>(obj: &Bound<'py, PyAny>) -> Option<PyReadonlyArray1<'py, T>> {
    obj.cast::<PyArray1<T>>().ok().map(|a| a.readonly()).filter(|a| a.is_c_contiguous())
}

impl<'py> NamedColumn<'py> {
    /// Extracts column `name` from `values` (a contiguous 1-D numpy array of float64, float32,
    /// int64, int32 or bool, or a list of Python scalars) and `missing` (None or a bool array).
    pub(crate) fn extract(
        name: String,
        values: &Bound<'py, PyAny>,
        missing: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        let data = if let Some(a) = array::<f64>(values) {
            Column::F64(a)
        } else if let Some(a) = array::<f32>(values) {
            Column::F32(a)
        } else if let Some(a) = array::<i64>(values) {
            Column::I64(a)
        } else if let Some(a) = array::<i32>(values) {
            Column::I32(a)
        } else if let Some(a) = array::<bool>(values) {
            Column::Bool(a)
        } else if let Ok(list) = values.cast::<PyList>() {
            list_column(list, &name)?
        } else {
            return Err(to_py(Error::usage(format!(
                "column `{name}`: expected a contiguous 1-D numpy array of float64, float32, int64, \
                 int32 or bool, or a list"
            ))));
        };
        let missing = if missing.is_none() {
            None
        } else {
            Some(array::<bool>(missing).ok_or_else(|| {
                to_py(Error::usage(format!(
                    "column `{name}`: the missing mask must be a contiguous bool array"
                )))
            })?)
        };
        Ok(NamedColumn { name, data, missing })
    }
}

/// A list of Python scalars: all strings (or None) become a string column, anything else a
/// column of values checked like records.
fn list_column(list: &Bound<'_, PyList>, name: &str) -> PyResult<Column<'static>> {
    let mut strings: Vec<Option<String>> = Vec::with_capacity(list.len());
    for item in list.iter() {
        if item.is_none() {
            strings.push(None);
        } else if let Ok(s) = item.cast::<PyString>() {
            strings.push(Some(s.extract::<String>()?));
        } else if item.cast::<PyFloat>().is_ok_and(|f| f.value().is_nan()) {
            strings.push(None);
        } else {
            let values =
                list.iter().enumerate().map(|(row, v)| value_of(&v, row, name)).collect::<PyResult<_>>()?;
            return Ok(Column::Values(values));
        }
    }
    Ok(Column::Str(strings))
}

/// The columns as a frame for `Input::Frame`, borrowing them.
pub(crate) fn frame<'a>(
    columns: &'a [NamedColumn<'_>],
    strings: &'a [Vec<Option<&'a str>>],
) -> PyResult<Frame<'a>> {
    let mut out = Vec::with_capacity(columns.len());
    for (c, s) in columns.iter().zip(strings) {
        let values = match &c.data {
            Column::F64(a) => ColumnValues::F64(a.as_slice()?),
            Column::F32(a) => ColumnValues::F32(a.as_slice()?),
            Column::I64(a) => ColumnValues::I64(a.as_slice()?),
            Column::I32(a) => ColumnValues::I32(a.as_slice()?),
            Column::Bool(a) => ColumnValues::Bool(a.as_slice()?),
            Column::Str(_) => ColumnValues::Str(s),
            Column::Values(v) => ColumnValues::Values(v),
        };
        let missing = match &c.missing {
            Some(m) => Some(m.as_slice()?),
            None => None,
        };
        out.push(FrameColumn { name: &c.name, values, missing });
    }
    Frame::new(out).map_err(to_py)
}

/// The string columns' values as `&str`, one list per column (empty for other columns).
pub(crate) fn borrowed_strings<'a>(columns: &'a [NamedColumn<'_>]) -> Vec<Vec<Option<&'a str>>> {
    columns
        .iter()
        .map(|c| match &c.data {
            Column::Str(v) => v.iter().map(Option::as_deref).collect(),
            _ => Vec::new(),
        })
        .collect()
}
