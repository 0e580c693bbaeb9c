//! Python inputs → `ingot::Input`: numpy arrays borrowed where their layout allows, lists and
//! dicts converted once. Everything here runs with the GIL held; the model runs after it.

use std::collections::HashMap;

use ingot::{ColumnValues, Dense, Error, Frame, FrameColumn, Record, Value};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

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

/// One column handed over by the Python side: a 1-D numpy array (borrowed), strings as
/// dictionary codes, or a list.
pub(crate) enum Column<'py> {
    F64(PyReadonlyArray1<'py, f64>),
    F32(PyReadonlyArray1<'py, f32>),
    I64(PyReadonlyArray1<'py, i64>),
    I32(PyReadonlyArray1<'py, i32>),
    Bool(PyReadonlyArray1<'py, bool>),
    /// Strings: one code per row (negative: missing) into the distinct values.
    Dict(Codes<'py>, Vec<String>),
    Values(Vec<Value>),
}

/// Dictionary codes: an int32 numpy array (a pandas categorical's, or [`encode_strings`]'s)
/// or codes made here from a list.
pub(crate) enum Codes<'py> {
    Borrowed(PyReadonlyArray1<'py, i32>),
    Owned(Vec<i32>),
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
    /// int64, int32 or bool; a `(codes, strings)` pair of an int32 array and a list of str; or a
    /// list of Python scalars) and `missing` (None or a bool array).
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
        } else if let Ok(pair) = values.cast::<PyTuple>() {
            let codes = if pair.len() == 2 { array::<i32>(&pair.get_item(0)?) } else { None };
            match codes {
                Some(codes) => Column::Dict(Codes::Borrowed(codes), pair.get_item(1)?.extract()?),
                None => {
                    return Err(to_py(Error::usage(format!(
                        "column `{name}`: a dictionary column is (int32 codes, list of str)"
                    ))))
                }
            }
        } else if let Ok(list) = values.cast::<PyList>() {
            match encode(list.iter())? {
                Some((codes, strings)) => Column::Dict(Codes::Owned(codes), strings),
                None => Column::Values(
                    list.iter()
                        .enumerate()
                        .map(|(row, v)| value_of(&v, row, &name))
                        .collect::<PyResult<_>>()?,
                ),
            }
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

impl NamedColumn<'_> {
    /// Whether the column reads a numpy array's own buffer (not a copy).
    pub(crate) fn borrowed(&self) -> bool {
        !matches!(self.data, Column::Dict(Codes::Owned(_), _) | Column::Values(_))
    }
}

/// Python objects that are all strings, None or float NaN (missing) as dictionary codes (-1 for
/// missing) and the distinct strings in order of appearance; `None` if one is anything else.
///
/// Each distinct object is read once: pandas and pyarrow hand out the same string object for
/// every occurrence of a value, so a row usually costs a pointer comparison.
fn encode<'py>(
    objects: impl Iterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Option<(Vec<i32>, Vec<String>)>> {
    /// Distinct objects looked up by scanning before they are hashed.
    const SCAN: usize = 32;
    let mut codes = Vec::with_capacity(objects.size_hint().0);
    let mut strings: Vec<String> = Vec::new();
    let mut by_string: HashMap<String, i32> = HashMap::new();
    let mut seen: Vec<(usize, i32)> = Vec::new();
    let mut by_address: HashMap<usize, i32> = HashMap::new();
    let mut last = (0usize, 0i32);
    for obj in objects {
        let address = obj.as_ptr() as usize;
        if address == last.0 {
            codes.push(last.1);
            continue;
        }
        let known = if seen.len() < SCAN {
            seen.iter().find(|(a, _)| *a == address).map(|&(_, c)| c)
        } else {
            by_address.get(&address).copied()
        };
        let code = match known {
            Some(c) => c,
            None => {
                let code = if obj.is_none() {
                    -1
                } else if let Ok(s) = obj.cast::<PyString>() {
                    let s = s.to_cow()?;
                    match by_string.get(s.as_ref()) {
                        Some(&c) => c,
                        None => {
                            let c = i32::try_from(strings.len()).map_err(|_| {
                                to_py(Error::usage("more than 2³¹ distinct strings in a column"))
                            })?;
                            strings.push(s.clone().into_owned());
                            by_string.insert(s.into_owned(), c);
                            c
                        }
                    }
                } else if obj.cast::<PyFloat>().is_ok_and(|f| f.value().is_nan()) {
                    -1
                } else {
                    return Ok(None);
                };
                if seen.len() < SCAN {
                    seen.push((address, code));
                    if seen.len() == SCAN {
                        by_address.extend(seen.iter().copied());
                    }
                } else {
                    by_address.insert(address, code);
                }
                code
            }
        };
        last = (address, code);
        codes.push(code);
    }
    Ok(Some((codes, strings)))
}

/// Dictionary codes as a numpy array, and the distinct strings they index.
type Encoded<'py> = (Bound<'py, PyArray1<i32>>, Vec<String>);

/// A 1-D numpy array of Python objects as `(int32 codes, distinct strings)` when every object
/// is a string, None or NaN (missing, code -1); `None` otherwise.
#[pyfunction]
pub(crate) fn encode_strings<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyArray1<Py<PyAny>>>,
) -> PyResult<Option<Encoded<'py>>> {
    let values = values.readonly();
    let objects = values.as_array();
    Ok(encode(objects.iter().map(|o| o.bind(py).clone()))?
        .map(|(codes, strings)| (PyArray1::from_vec(py, codes), strings)))
}

/// The columns as a frame for `Input::Frame`, borrowing them.
pub(crate) fn frame<'a>(columns: &'a [NamedColumn<'_>], strings: &'a [Vec<&'a str>]) -> PyResult<Frame<'a>> {
    let mut out = Vec::with_capacity(columns.len());
    for (c, s) in columns.iter().zip(strings) {
        let values = match &c.data {
            Column::F64(a) => ColumnValues::F64(a.as_slice()?),
            Column::F32(a) => ColumnValues::F32(a.as_slice()?),
            Column::I64(a) => ColumnValues::I64(a.as_slice()?),
            Column::I32(a) => ColumnValues::I32(a.as_slice()?),
            Column::Bool(a) => ColumnValues::Bool(a.as_slice()?),
            Column::Dict(codes, _) => ColumnValues::Dict {
                keys: match codes {
                    Codes::Borrowed(a) => a.as_slice()?,
                    Codes::Owned(v) => v,
                },
                values: s,
            },
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

/// The dictionary columns' distinct strings as `&str`, one list per column (empty for other
/// columns).
pub(crate) fn borrowed_strings<'a>(columns: &'a [NamedColumn<'_>]) -> Vec<Vec<&'a str>> {
    columns
        .iter()
        .map(|c| match &c.data {
            Column::Dict(_, v) => v.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect()
}
