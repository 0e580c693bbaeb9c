//! `ingot._ingot`: the native half of the Python package (python/ingot holds the other half).
//!
//! Each function converts its Python arguments, makes one call into `ingot` with the GIL
//! released, and converts the result; errors cross through one mapping (`error::to_py`).

mod convert;
mod error;
mod model;
mod prediction;

use std::collections::BTreeMap;

use ingot::{DType, Error, Manifest, TensorData};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use error::to_py;
use model::PyModel;

/// Loads an `.ingot` file.
#[pyfunction]
#[pyo3(signature = (path, *, verify_checksum = true, threads = None, device = "cpu", kernels = "auto"))]
fn load(
    py: Python<'_>,
    path: std::path::PathBuf,
    verify_checksum: bool,
    threads: Option<usize>,
    device: &str,
    kernels: &str,
) -> PyResult<PyModel> {
    model::load(py, path.display().to_string(), verify_checksum, threads, device, kernels)
}

/// Writes a bundle from a manifest (JSON text) and tensors (C-contiguous float32, float64 or
/// int32 numpy arrays, stored in their own dtype) after checking that it loads; returns the
/// loaded model.
#[pyfunction]
fn save(
    py: Python<'_>,
    path: std::path::PathBuf,
    manifest_json: &str,
    tensors: BTreeMap<String, Bound<'_, PyAny>>,
) -> PyResult<PyModel> {
    let manifest: Manifest = serde_json::from_str(manifest_json)
        .map_err(|e| to_py(Error::Manifest { field: "manifest".into(), detail: e.to_string() }))?;
    let tensors = tensors
        .iter()
        .map(|(name, a)| tensor(name, a).map(|t| (name.clone(), t)))
        .collect::<PyResult<Vec<_>>>()?;
    let model = py.detach(|| ingot::save(&path, &manifest, &tensors)).map_err(to_py)?;
    Ok(PyModel::new(model))
}

/// A numpy array as a tensor of the same dtype: float32, float64 or int32.
fn tensor(name: &str, array: &Bound<'_, PyAny>) -> PyResult<TensorData> {
    let (dtype, shape, data) = if let Ok(a) = array.cast::<PyArrayDyn<f32>>() {
        let (shape, data) = le_bytes(name, a, f32::to_le_bytes)?;
        (DType::F32, shape, data)
    } else if let Ok(a) = array.cast::<PyArrayDyn<f64>>() {
        let (shape, data) = le_bytes(name, a, f64::to_le_bytes)?;
        (DType::F64, shape, data)
    } else if let Ok(a) = array.cast::<PyArrayDyn<i32>>() {
        let (shape, data) = le_bytes(name, a, i32::to_le_bytes)?;
        (DType::I32, shape, data)
    } else {
        let got = match array.getattr("dtype") {
            Ok(d) => format!("dtype {d}"),
            Err(_) => array.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string()),
        };
        return Err(to_py(Error::usage(format!(
            "tensor `{name}` must be a float32, float64 or int32 numpy array, got {got}"
        ))));
    };
    TensorData::new(dtype, shape, data).map_err(to_py)
}

/// The shape and little-endian bytes of a C-contiguous array.
fn le_bytes<T: numpy::Element + Copy, const N: usize>(
    name: &str,
    array: &Bound<'_, PyArrayDyn<T>>,
    to_le: fn(T) -> [u8; N],
) -> PyResult<(Vec<usize>, Vec<u8>)> {
    let a = array.readonly();
    let values =
        a.as_slice().map_err(|_| to_py(Error::usage(format!("tensor `{name}` is not contiguous"))))?;
    Ok((a.shape().to_vec(), values.iter().flat_map(|&v| to_le(v)).collect()))
}

/// Imports a Hugging Face / sentence-transformers directory into an `.ingot` file.
#[pyfunction]
#[pyo3(signature = (directory, path, *, name = None, version = "1.0.0".to_string(), max_length = None))]
fn import_hf(
    py: Python<'_>,
    directory: std::path::PathBuf,
    path: std::path::PathBuf,
    name: Option<String>,
    version: String,
    max_length: Option<usize>,
) -> PyResult<PyModel> {
    let options = ingot::import::hf::ImportOptions { name, version, max_length };
    let model = py
        .detach(|| {
            let (manifest, tensors) = ingot::import::hf::import_dir(&directory, &options)?;
            ingot::save(&path, &manifest, &tensors)
        })
        .map_err(to_py)?;
    Ok(PyModel::new(model))
}

/// A tree importer of `ingot::import`.
type TreeImporter = fn(
    &std::path::Path,
    &ingot::import::TreeImportOptions,
) -> ingot::Result<(Manifest, Vec<(String, TensorData)>)>;

/// Imports `model_path` with `import` and writes the bundle to `path`, without the GIL.
fn import_trees(
    py: Python<'_>,
    import: TreeImporter,
    model_path: &std::path::Path,
    path: &std::path::Path,
    options: &ingot::import::TreeImportOptions,
) -> PyResult<PyModel> {
    let model = py
        .detach(|| {
            let (manifest, tensors) = import(model_path, options)?;
            ingot::save(path, &manifest, &tensors)
        })
        .map_err(to_py)?;
    Ok(PyModel::new(model))
}

/// Imports an XGBoost model file (JSON or UBJSON, told apart by its bytes) into an `.ingot`
/// file.
#[pyfunction]
#[pyo3(signature = (model_path, path, *, name = None, version = "1.0.0".to_string(), feature_names = None))]
fn import_xgboost(
    py: Python<'_>,
    model_path: std::path::PathBuf,
    path: std::path::PathBuf,
    name: Option<String>,
    version: String,
    feature_names: Option<Vec<String>>,
) -> PyResult<PyModel> {
    let options = ingot::import::TreeImportOptions { name, version, feature_names };
    import_trees(py, ingot::import::xgboost::import_file, &model_path, &path, &options)
}

/// Imports a LightGBM text model (`Booster.save_model`) into an `.ingot` file.
#[pyfunction]
#[pyo3(signature = (model_path, path, *, name = None, version = "1.0.0".to_string(), feature_names = None))]
fn import_lightgbm(
    py: Python<'_>,
    model_path: std::path::PathBuf,
    path: std::path::PathBuf,
    name: Option<String>,
    version: String,
    feature_names: Option<Vec<String>>,
) -> PyResult<PyModel> {
    let options = ingot::import::TreeImportOptions { name, version, feature_names };
    import_trees(py, ingot::import::lightgbm::import_file, &model_path, &path, &options)
}

/// Imports an ONNX model into an `.ingot` file (external data files are read next to it).
#[pyfunction]
#[pyo3(signature = (
    model_path, path, *, name = None, version = "1.0.0".to_string(), input_shapes = Vec::new(),
    classes = None, feature_names = None, output = None, embedding = false, tokenizer = None,
    max_length = None
))]
#[allow(clippy::too_many_arguments)]
fn import_onnx(
    py: Python<'_>,
    model_path: std::path::PathBuf,
    path: std::path::PathBuf,
    name: Option<String>,
    version: String,
    input_shapes: Vec<(String, Vec<i64>)>,
    classes: Option<Vec<Bound<'_, PyAny>>>,
    feature_names: Option<Vec<String>>,
    output: Option<String>,
    embedding: bool,
    tokenizer: Option<std::path::PathBuf>,
    max_length: Option<usize>,
) -> PyResult<PyModel> {
    let classes = classes.map(|c| c.iter().map(class_label).collect::<PyResult<Vec<_>>>()).transpose()?;
    let options = ingot::import::onnx::OnnxImportOptions {
        name,
        version,
        input_shapes,
        classes,
        feature_names,
        output,
        embedding,
        tokenizer,
        max_length,
    };
    let model = py
        .detach(|| {
            let (manifest, tensors) = ingot::import::onnx::import_file(&model_path, &options)?;
            ingot::save(&path, &manifest, &tensors)
        })
        .map_err(to_py)?;
    Ok(PyModel::new(model))
}

/// A class label: a string or a number.
fn class_label(label: &Bound<'_, PyAny>) -> PyResult<ingot::Value> {
    if let Ok(s) = label.cast::<pyo3::types::PyString>() {
        return Ok(ingot::Value::String(s.extract::<String>()?));
    }
    if !label.is_instance_of::<pyo3::types::PyBool>() {
        if let Ok(n) = label.extract::<f64>() {
            return Ok(ingot::Value::Number(n));
        }
    }
    let got = label.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string());
    Err(to_py(Error::usage(format!("class labels must be strings or numbers, got {got}"))))
}

/// Reads an ONNX model and reports its ops and every node that cannot be imported, without
/// writing anything: a dict of `ingot::import::onnx::CheckReport`'s fields.
#[pyfunction]
#[pyo3(signature = (model_path, *, input_shapes = Vec::new(), output = None))]
fn check_onnx<'py>(
    py: Python<'py>,
    model_path: std::path::PathBuf,
    input_shapes: Vec<(String, Vec<i64>)>,
    output: Option<String>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    use pyo3::types::PyDict;
    let options = ingot::import::onnx::OnnxImportOptions { input_shapes, output, ..Default::default() };
    let report = py.detach(|| ingot::import::onnx::check_file(&model_path, &options)).map_err(to_py)?;
    let unsupported = report
        .unsupported
        .iter()
        .map(|n| {
            let d = PyDict::new(py);
            d.set_item("op_type", &n.op_type)?;
            d.set_item("domain", &n.domain)?;
            d.set_item("node", &n.node)?;
            d.set_item("opset", n.opset)?;
            d.set_item("reason", &n.reason)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    let out = PyDict::new(py);
    out.set_item("ok", report.ok())?;
    out.set_item("producer", &report.producer)?;
    out.set_item("opsets", &report.opsets)?;
    out.set_item("ops", &report.ops)?;
    out.set_item("unsupported", unsupported)?;
    out.set_item("error", &report.error)?;
    out.set_item("encoder", &report.encoder)?;
    Ok(out)
}

/// Where the data of each input column starts, as `Model.predict_dense` (one 2-D array `x`,
/// `names` unused) or `Model.predict_columns` would read it: 0 for data that is copied. Tests use
/// it to show that numpy arrays cross without a copy.
#[pyfunction]
#[pyo3(signature = (x = None, names = Vec::new(), values = Vec::new(), missing = Vec::new()))]
fn _input_addresses<'py>(
    x: Option<Bound<'py, PyAny>>,
    names: Vec<String>,
    values: Vec<Bound<'py, PyAny>>,
    missing: Vec<Bound<'py, PyAny>>,
) -> PyResult<Vec<usize>> {
    use ingot::{ColumnValues, DenseData};
    let address = |v: &ColumnValues<'_>| match v {
        ColumnValues::F64(s) => s.as_ptr() as usize,
        ColumnValues::F32(s) => s.as_ptr() as usize,
        ColumnValues::I64(s) => s.as_ptr() as usize,
        ColumnValues::I32(s) => s.as_ptr() as usize,
        ColumnValues::Bool(s) => s.as_ptr() as usize,
        ColumnValues::Dict { keys, .. } => keys.as_ptr() as usize,
        ColumnValues::Utf8 { data, .. } => data.as_ptr() as usize,
        ColumnValues::Str(_) | ColumnValues::Values(_) => 0,
    };
    if let Some(x) = x {
        let matrix = convert::Matrix::extract(&x)?;
        if let Some(d) = matrix.dense()? {
            return Ok(vec![match d.data() {
                DenseData::F32(s) if matrix.borrowed() => s.as_ptr() as usize,
                DenseData::F64(s) if matrix.borrowed() => s.as_ptr() as usize,
                _ => 0,
            }]);
        }
        let names: Vec<String> =
            (0..x.getattr("shape")?.get_item(1)?.extract::<usize>()?).map(|i| i.to_string()).collect();
        let frame = matrix.columns(&names)?;
        return Ok(frame.columns().iter().map(|c| address(&c.values)).collect());
    }
    let columns = names
        .into_iter()
        .zip(values.iter().zip(&missing))
        .map(|(n, (v, m))| convert::NamedColumn::extract(n, v, m))
        .collect::<PyResult<Vec<_>>>()?;
    let strings = convert::borrowed_strings(&columns);
    let frame = convert::frame(&columns, &strings)?;
    Ok(frame
        .columns()
        .iter()
        .zip(&columns)
        .map(|(c, n)| if n.borrowed() { address(&c.values) } else { 0 })
        .collect())
}

/// The kernels' instruction set in this process: `scalar`, `avx2` or `avx512`.
#[pyfunction]
fn isa_level() -> &'static str {
    ingot::isa_level().name()
}

/// Threads of Ingot's pool, the calling thread included.
#[pyfunction]
fn pool_threads() -> usize {
    ingot::pool_threads()
}

#[pymodule(gil_used = false)]
fn _ingot(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyModel>()?;
    m.add_class::<prediction::PyPrediction>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(save, m)?)?;
    m.add_function(wrap_pyfunction!(import_hf, m)?)?;
    m.add_function(wrap_pyfunction!(import_xgboost, m)?)?;
    m.add_function(wrap_pyfunction!(import_lightgbm, m)?)?;
    m.add_function(wrap_pyfunction!(import_onnx, m)?)?;
    m.add_function(wrap_pyfunction!(check_onnx, m)?)?;
    m.add_function(wrap_pyfunction!(isa_level, m)?)?;
    m.add_function(wrap_pyfunction!(pool_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_input_addresses, m)?)?;
    m.add_function(wrap_pyfunction!(convert::encode_strings, m)?)?;
    error::register(m)
}
