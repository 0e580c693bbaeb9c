//! The `Model` class: inputs converted with the GIL held, the core called with it released.

use std::sync::Arc;

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use ingot::{Error, Input, LoadOptions, Model, Prediction};
use numpy::PyArrayMethods;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyList};

use crate::convert::{self, Matrix, NamedColumn};
use crate::error::to_py;
use crate::prediction::{py_list, PyPrediction};

/// A loaded model; safe to share between threads (calls release the GIL).
#[pyclass(frozen, module = "ingot._ingot", name = "Model")]
pub(crate) struct PyModel {
    pub(crate) inner: Arc<Model>,
    /// The signature's input names, in order (a Fortran-ordered matrix's column names).
    inputs: Vec<String>,
}

impl PyModel {
    pub(crate) fn new(model: Model) -> PyModel {
        let inputs = model.signature().inputs.iter().map(|i| i.name.clone()).collect();
        PyModel { inner: Arc::new(model), inputs }
    }

    /// Runs `f` on the model with the GIL released and converts the prediction.
    fn run<'a>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Model) -> ingot::Result<Prediction> + Send + 'a,
    ) -> PyResult<PyPrediction> {
        let model = Arc::clone(&self.inner);
        let p = py.detach(move || f(&model)).map_err(to_py)?;
        PyPrediction::new(py, p)
    }
}

/// Loads an `.ingot` file (memory-mapped, every check, the checksum unless told not to).
pub(crate) fn load(
    py: Python<'_>,
    path: String,
    verify_checksum: bool,
    threads: Option<usize>,
    device: &str,
    kernels: &str,
) -> PyResult<PyModel> {
    let options = LoadOptions { verify_checksum, threads, ..LoadOptions::default() }
        .on(device, kernels)
        .map_err(to_py)?;
    let model = py.detach(|| Model::load_with(&path, &options)).map_err(to_py)?;
    Ok(PyModel::new(model))
}

#[pymethods]
impl PyModel {
    /// Predicts a 2-D float32/float64 numpy array whose columns follow the signature
    /// (row-major arrays are read in place; Fortran-ordered ones column by column, in place).
    fn predict_dense(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyPrediction> {
        let matrix = Matrix::extract(x)?;
        if let Some(dense) = matrix.dense()? {
            return self.run(py, move |m| m.predict(Input::Dense(dense)));
        }
        let frame = matrix.columns(&self.inputs)?;
        self.run(py, |m| m.predict(Input::Frame(&frame)))
    }

    /// Predicts named columns: ``names[i]`` holds ``values[i]`` (a 1-D numpy array or a list)
    /// with ``missing[i]`` (None or a bool array marking missing rows).
    fn predict_columns(
        &self,
        py: Python<'_>,
        names: Vec<String>,
        values: Vec<Bound<'_, PyAny>>,
        missing: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<PyPrediction> {
        if names.len() != values.len() || names.len() != missing.len() {
            return Err(to_py(Error::usage("names, values and missing must have one entry per column")));
        }
        let columns = names
            .into_iter()
            .zip(values.iter().zip(&missing))
            .map(|(n, (v, m))| NamedColumn::extract(n, v, m))
            .collect::<PyResult<Vec<_>>>()?;
        let strings = convert::borrowed_strings(&columns);
        let frame = convert::frame(&columns, &strings)?;
        self.run(py, |m| m.predict(Input::Frame(&frame)))
    }

    /// Predicts a list of dicts (column → value).
    fn predict_records(&self, py: Python<'_>, records: &Bound<'_, PyList>) -> PyResult<PyPrediction> {
        let records = convert::records(records)?;
        self.run(py, |m| m.predict_records(&records))
    }

    /// Predicts a list of strings (text models).
    fn predict_texts(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<PyPrediction> {
        self.run(py, |m| {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            m.predict(Input::Texts(&texts))
        })
    }

    /// Predicts an Arrow stream (any object with ``__arrow_c_stream__``: a pyarrow Table,
    /// RecordBatch or RecordBatchReader); numeric columns and strings are read in place, batch
    /// by batch. Errors number rows from ``row_offset`` (the stream's place in a larger file).
    #[pyo3(signature = (stream, row_offset = 0))]
    fn predict_arrow(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        row_offset: usize,
    ) -> PyResult<PyPrediction> {
        let capsule = stream.call_method0("__arrow_c_stream__")?;
        let capsule = capsule.cast::<PyCapsule>()?;
        let pointer = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
        // SAFETY: the capsule named `arrow_array_stream` holds an `ArrowArrayStream` of the Arrow
        // C stream interface (the protocol of `__arrow_c_stream__`); `from_raw` moves it out,
        // leaving a released stream for the capsule's destructor.
        let reader =
            unsafe { RecordBatchStreamReader::from_raw(pointer.as_ptr().cast::<FFI_ArrowArrayStream>()) }
                .map_err(|e| to_py(Error::usage(format!("arrow stream: {e}"))))?;
        let model = Arc::clone(&self.inner);
        let p = py
            .detach(move || {
                let mut parts = Vec::new();
                for batch in reader {
                    let batch = batch.map_err(|e| Error::usage(format!("arrow stream: {e}")))?;
                    let offset = row_offset + parts.iter().map(|p: &Prediction| p.rows).sum::<usize>();
                    let columns = ingot::io::arrow::BatchColumns::new(&batch)?;
                    let frame = columns.frame()?;
                    parts.push(model.predict(Input::Frame(&frame)).map_err(|e| e.with_row_offset(offset))?);
                }
                match Prediction::concat(parts) {
                    Some(p) => Ok(p),
                    None => model.predict(model.empty_input()),
                }
            })
            .map_err(to_py)?;
        PyPrediction::new(py, p)
    }

    /// The embedding of each string, ``float32 [len(texts), dim]``.
    fn embed<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Bound<'py, numpy::PyArray2<f32>>> {
        let model = Arc::clone(&self.inner);
        let m = py
            .detach(move || {
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                model.embed(&texts)
            })
            .map_err(to_py)?;
        let (rows, cols) = (m.rows(), m.cols());
        numpy::PyArray1::from_vec(py, m.into_vec()).reshape([rows, cols])
    }

    /// The whole manifest as JSON text.
    fn manifest_json(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.manifest()).map_err(|e| to_py(Error::usage(e.to_string())))
    }

    /// Model name.
    #[getter]
    fn name(&self) -> String {
        self.inner.metadata().name.clone()
    }

    /// Model version.
    #[getter]
    fn version(&self) -> String {
        self.inner.metadata().version.clone()
    }

    /// `classifier`, `regressor`, `embedding` or `scores`.
    #[getter]
    fn task(&self) -> &'static str {
        self.inner.task().name()
    }

    /// The class labels as trained, or None.
    #[getter]
    fn classes<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.inner.classes().map(|c| py_list(py, c)).transpose()
    }

    /// Input column names, in signature order.
    #[getter]
    fn input_names(&self) -> Vec<String> {
        self.inputs.clone()
    }

    /// Columns a dense input must have (0 for text models).
    #[getter]
    fn input_width(&self) -> usize {
        self.inner.input_width()
    }

    /// Where the graph runs and with which kernels: (`cpu` or `cuda:N`, `ingot` or `candle`).
    #[getter]
    fn runs_on(&self) -> (String, &'static str) {
        self.inner.runs_on()
    }

    /// Most threads one call uses, the caller included.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// Size of the file in bytes.
    #[getter]
    fn file_size(&self) -> usize {
        self.inner.bundle().file_size()
    }
}
