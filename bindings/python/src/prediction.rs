//! `ingot::Prediction` → numpy: every matrix moves into a numpy array without a copy.

use ingot::{ColumnData, Matrix, Prediction, Value};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::IntoPyObjectExt;

/// A value as a Python object: `None`, an `int` for an integer, a `float`, a `str`.
pub(crate) fn py_value(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    match v {
        Value::Null => Ok(py.None()),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
            (*n as i64).into_py_any(py)
        }
        Value::Number(n) => n.into_py_any(py),
        Value::String(s) => s.into_py_any(py),
    }
}

/// Values as a Python list of [`py_value`]s.
pub(crate) fn py_list<'py>(py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, values.iter().map(|v| py_value(py, v)).collect::<PyResult<Vec<_>>>()?)
}

/// A `[rows, cols]` matrix as a 2-D float32 array (the values move, no copy).
fn array2(py: Python<'_>, m: Matrix) -> PyResult<Py<PyArray2<f32>>> {
    let (rows, cols) = (m.rows(), m.cols());
    Ok(PyArray1::from_vec(py, m.into_vec()).reshape([rows, cols])?.unbind())
}

/// The outputs of one predict call, as numpy arrays.
#[pyclass(frozen, module = "ingot._ingot", name = "Prediction")]
pub(crate) struct PyPrediction {
    rows: usize,
    scores: Py<PyArray2<f32>>,
    probabilities: Option<Py<PyArray2<f32>>>,
    label_indices: Option<Py<PyArray1<u32>>>,
    classes: Option<Vec<Value>>,
    values: Option<Py<PyArray2<f32>>>,
    embeddings: Option<Py<PyArray2<f32>>>,
    targets: Option<Vec<String>>,
    /// The flat layout: column name, which array it comes from, and its column in it.
    columns: Vec<(String, &'static str, Option<usize>)>,
}

impl PyPrediction {
    pub(crate) fn new(py: Python<'_>, p: Prediction) -> PyResult<PyPrediction> {
        let source = |m: &Matrix| -> &'static str {
            let is = |o: &Option<Matrix>| o.as_ref().is_some_and(|x| std::ptr::eq(x, m));
            if is(&p.probabilities) {
                "probabilities"
            } else if is(&p.values) {
                "values"
            } else if is(&p.embeddings) {
                "embeddings"
            } else {
                "scores"
            }
        };
        let columns = p
            .columns()
            .into_iter()
            .map(|c| match c.data {
                ColumnData::Labels(_) => (c.name, "labels", None),
                ColumnData::Number { matrix, col } => (c.name, source(matrix), Some(col)),
                ColumnData::Vector(m) => (c.name, source(m), None),
            })
            .collect();
        let opt = |m: Option<Matrix>| m.map(|m| array2(py, m)).transpose();
        Ok(PyPrediction {
            rows: p.rows,
            label_indices: p.labels.map(|l| PyArray1::from_vec(py, l.into_indices()).unbind()),
            classes: p.classes,
            targets: p.targets,
            probabilities: opt(p.probabilities)?,
            values: opt(p.values)?,
            embeddings: opt(p.embeddings)?,
            scores: array2(py, p.scores)?,
            columns,
        })
    }
}

#[pymethods]
impl PyPrediction {
    /// Number of rows.
    #[getter]
    fn rows(&self) -> usize {
        self.rows
    }

    /// The graph's raw output, ``float32 [rows, outputs]``.
    #[getter]
    fn scores(&self, py: Python<'_>) -> Py<PyArray2<f32>> {
        self.scores.clone_ref(py)
    }

    /// Class probabilities, ``float32 [rows, classes]`` in ``classes`` order, or None.
    #[getter]
    fn probabilities(&self, py: Python<'_>) -> Option<Py<PyArray2<f32>>> {
        self.probabilities.as_ref().map(|a| a.clone_ref(py))
    }

    /// Index into ``classes`` of each row's label (``uint32 [rows]``), or None.
    #[getter]
    fn label_indices(&self, py: Python<'_>) -> Option<Py<PyArray1<u32>>> {
        self.label_indices.as_ref().map(|a| a.clone_ref(py))
    }

    /// The class labels as trained, or None.
    #[getter]
    fn classes<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.classes.as_deref().map(|c| py_list(py, c)).transpose()
    }

    /// Regression values, ``float32 [rows, targets]``, or None.
    #[getter]
    fn values(&self, py: Python<'_>) -> Option<Py<PyArray2<f32>>> {
        self.values.as_ref().map(|a| a.clone_ref(py))
    }

    /// Embeddings, ``float32 [rows, dim]``, or None.
    #[getter]
    fn embeddings(&self, py: Python<'_>) -> Option<Py<PyArray2<f32>>> {
        self.embeddings.as_ref().map(|a| a.clone_ref(py))
    }

    /// Regression target names, or None.
    #[getter]
    fn targets(&self) -> Option<Vec<String>> {
        self.targets.clone()
    }

    /// The flat column layout: ``(name, source, column)`` with ``source`` one of ``labels``,
    /// ``probabilities``, ``values``, ``scores``, ``embeddings`` and ``column`` None for labels
    /// and vectors.
    fn columns(&self) -> Vec<(String, &'static str, Option<usize>)> {
        self.columns.clone()
    }
}
