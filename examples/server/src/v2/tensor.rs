//! Tensors of the Open Inference Protocol and what they mean to a model, shared by the REST
//! ([`crate::v2`]) and gRPC ([`crate::grpc`]) front ends: decoding input tensors (JSON, raw
//! little-endian bytes), mapping them to a [`Payload`], and the output tensors of a
//! [`Prediction`].
//!
//! Inputs, by the model's pre-processing:
//!
//! - tabular models take either one numeric tensor of shape `[rows, width]` (named anything but
//!   a column; columns in signature order), or one tensor per signature column, named as the
//!   column, of shape `[rows]` or `[rows, 1]` (numbers; `BYTES` for string columns);
//! - text models take one `BYTES` tensor of shape `[rows]` (or `[rows, 1]`), named as the
//!   signature's input (`text`);
//! - models without pre-processing take one numeric tensor of shape `[rows, width]`.
//!
//! Outputs, by task: `label` (`INT64` when every class is an integer, else `BYTES`) and
//! `probabilities` (`FP32 [rows, classes]`, unless the model has none) for classifiers;
//! `value` (`FP32 [rows]`) or `values` (`FP32 [rows, targets]`) for regressors; `embedding`
//! (`FP32 [rows, dim]`) for text encoders; `scores` (`FP32 [rows, k]`) for models without
//! post-processing.

use std::collections::HashSet;

use ingot::format::{Activation, ElementType, PostprocessSpec, PreprocessSpec, TensorSpec};
use ingot::{DenseRows, Model, Prediction, Record, Task, Value};
use serde::Serialize;

use crate::error::ApiError;
use crate::payload::Payload;

/// Element type of a tensor: the protocol's `datatype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `BOOL`: one byte, 0 or 1.
    Bool,
    /// `UINT8`.
    Uint8,
    /// `UINT16`.
    Uint16,
    /// `UINT32`.
    Uint32,
    /// `UINT64`.
    Uint64,
    /// `INT8`.
    Int8,
    /// `INT16`.
    Int16,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FP16`: IEEE half precision.
    Fp16,
    /// `BF16`: bfloat16.
    Bf16,
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
    /// `BYTES`: strings (binary: each a 4-byte little-endian length, then the bytes).
    Bytes,
}

impl DataType {
    const ALL: [DataType; 14] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Bf16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    /// The protocol's name (`FP32`, `BYTES`, …).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Bf16 => "BF16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// The type named `name` (exactly as the protocol spells it).
    ///
    /// ```
    /// use ingot_server::v2::tensor::DataType;
    /// assert_eq!(DataType::parse("FP32"), Some(DataType::Fp32));
    /// assert_eq!(DataType::parse("float32"), None);
    /// ```
    pub fn parse(name: &str) -> Option<DataType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Bytes per element; `None` for `BYTES`.
    pub fn size(self) -> Option<usize> {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => Some(1),
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 | DataType::Bf16 => Some(2),
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }

    fn of(dtype: ElementType) -> DataType {
        match dtype {
            ElementType::F64 => DataType::Fp64,
            ElementType::F32 => DataType::Fp32,
            ElementType::F16 => DataType::Fp16,
            ElementType::I64 => DataType::Int64,
            ElementType::I32 => DataType::Int32,
            ElementType::U8 => DataType::Uint8,
            ElementType::String => DataType::Bytes,
        }
    }
}

/// Parses a request's `datatype` (400 naming the tensor otherwise).
pub fn parse_datatype(tensor: &str, name: &str) -> Result<DataType, ApiError> {
    DataType::parse(name).ok_or_else(|| {
        let known: Vec<&str> = DataType::ALL.iter().map(|t| t.name()).collect();
        ApiError::invalid_request(format!(
            "input `{tensor}`: unknown datatype `{name}` (one of {})",
            known.join(", ")
        ))
    })
}

/// The number of elements of an input tensor of `shape`, checked: no negative dimension, no
/// overflow, and at most `max_rows` rows (the first dimension; 413 beyond).
pub fn element_count(tensor: &str, shape: &[i64], max_rows: usize) -> Result<usize, ApiError> {
    let bad = |what: String| ApiError::invalid_request(format!("input `{tensor}`: {what}"));
    let mut count: usize = 1;
    for &dim in shape {
        let dim =
            usize::try_from(dim).map_err(|_| bad(format!("shape {shape:?} has a negative dimension")))?;
        count = count.checked_mul(dim).ok_or_else(|| bad(format!("shape {shape:?} is too large")))?;
    }
    if let Some(&rows) = shape.first() {
        let rows = usize::try_from(rows).unwrap_or(usize::MAX);
        if rows > max_rows {
            return Err(ApiError::too_many_rows(rows, max_rows));
        }
    }
    Ok(count)
}

/// The decoded elements of one input tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Elements {
    /// Any numeric or `BOOL` datatype, as numbers (`BOOL`: 0 or 1).
    Numbers(Vec<f64>),
    /// `BYTES`, as UTF-8 strings.
    Strings(Vec<String>),
}

impl Elements {
    fn len(&self) -> usize {
        match self {
            Elements::Numbers(v) => v.len(),
            Elements::Strings(v) => v.len(),
        }
    }
}

/// One decoded input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTensor {
    /// Its name.
    pub name: String,
    /// Its datatype as sent.
    pub datatype: DataType,
    /// Its shape (checked against the element count).
    pub shape: Vec<usize>,
    /// Its elements.
    pub elements: Elements,
}

impl InputTensor {
    /// A tensor from decoded `elements`; 400 when their number is not what `shape` holds.
    pub fn new(
        name: String,
        datatype: DataType,
        shape: &[i64],
        elements: Elements,
    ) -> Result<Self, ApiError> {
        let shape: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
        let expected = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if expected != Some(elements.len()) {
            return Err(ApiError::invalid_request(format!(
                "input `{name}`: shape {shape:?} holds {} elements; the data has {}",
                expected.map_or_else(|| "too many".to_owned(), |n| n.to_string()),
                elements.len()
            )));
        }
        Ok(InputTensor { name, datatype, shape, elements })
    }
}

fn utf8(tensor: &str, index: usize, bytes: Vec<u8>) -> Result<String, ApiError> {
    String::from_utf8(bytes).map_err(|_| {
        ApiError::invalid_request(format!("input `{tensor}`: BYTES element {index} is not valid UTF-8"))
    })
}

/// Decodes `BYTES` elements from a list of byte strings (gRPC `bytes_contents`).
pub fn strings(tensor: &str, items: Vec<Vec<u8>>) -> Result<Elements, ApiError> {
    let strings = items.into_iter().enumerate().map(|(i, b)| utf8(tensor, i, b)).collect::<Result<_, _>>()?;
    Ok(Elements::Strings(strings))
}

/// Decodes the raw little-endian contents of a tensor of `count` elements (the binary tensor
/// extension; gRPC `raw_input_contents`). Every length is checked against the bytes at hand
/// before anything is allocated.
pub fn decode_raw(
    tensor: &str,
    datatype: DataType,
    count: usize,
    bytes: &[u8],
) -> Result<Elements, ApiError> {
    let bad = |what: String| ApiError::invalid_request(format!("input `{tensor}`: {what}"));
    let Some(size) = datatype.size() else {
        return decode_raw_bytes(tensor, count, bytes).map(Elements::Strings);
    };
    if count.checked_mul(size) != Some(bytes.len()) {
        return Err(bad(format!(
            "{count} {} elements take {} bytes; the binary data has {}",
            datatype.name(),
            count.saturating_mul(size),
            bytes.len()
        )));
    }
    let numbers = match datatype {
        DataType::Bool => le(bytes, |[b]: [u8; 1]| f64::from(b != 0)),
        DataType::Uint8 => le(bytes, |[b]: [u8; 1]| f64::from(b)),
        DataType::Int8 => le(bytes, |b| f64::from(i8::from_le_bytes(b))),
        DataType::Uint16 => le(bytes, |b| f64::from(u16::from_le_bytes(b))),
        DataType::Int16 => le(bytes, |b| f64::from(i16::from_le_bytes(b))),
        DataType::Fp16 => le(bytes, |b| f64::from(half::f16::from_le_bytes(b))),
        DataType::Bf16 => le(bytes, |b| f64::from(half::bf16::from_le_bytes(b))),
        DataType::Uint32 => le(bytes, |b| f64::from(u32::from_le_bytes(b))),
        DataType::Int32 => le(bytes, |b| f64::from(i32::from_le_bytes(b))),
        DataType::Fp32 => le(bytes, |b| f64::from(f32::from_le_bytes(b))),
        DataType::Uint64 => le(bytes, |b| u64::from_le_bytes(b) as f64),
        DataType::Int64 => le(bytes, |b| i64::from_le_bytes(b) as f64),
        DataType::Fp64 => le(bytes, f64::from_le_bytes),
        DataType::Bytes => Vec::new(),
    };
    Ok(Elements::Numbers(numbers))
}

/// Each `N`-byte element of `bytes` through `f`.
fn le<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
    bytes.as_chunks::<N>().0.iter().map(|c| f(*c)).collect()
}

/// `count` length-prefixed strings filling `bytes` exactly.
fn decode_raw_bytes(tensor: &str, count: usize, bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    let bad = |what: String| ApiError::invalid_request(format!("input `{tensor}`: {what}"));
    // Each element takes at least its 4-byte length: never reserve more than the data can hold.
    let mut out = Vec::with_capacity(count.min(bytes.len() / 4));
    let mut rest = bytes;
    while !rest.is_empty() {
        let index = out.len();
        if index == count {
            return Err(bad(format!(
                "{} bytes are left after the {count} BYTES elements of its shape",
                rest.len()
            )));
        }
        let Some((prefix, tail)) = rest.split_first_chunk::<4>() else {
            return Err(bad(format!("BYTES element {index} is cut off inside its 4-byte length")));
        };
        let len = usize::try_from(u32::from_le_bytes(*prefix)).unwrap_or(usize::MAX);
        if len > tail.len() {
            return Err(bad(format!(
                "BYTES element {index} claims {len} bytes; only {} are left",
                tail.len()
            )));
        }
        let (item, tail) = tail.split_at(len);
        out.push(utf8(tensor, index, item.to_vec())?);
        rest = tail;
    }
    if out.len() != count {
        return Err(bad(format!(
            "its shape holds {count} BYTES elements; the binary data has {}",
            out.len()
        )));
    }
    Ok(out)
}

/// Decodes JSON `data` (flat, or nested as the shape) of a tensor of `count` elements: numbers
/// for numeric datatypes, `true`/`false` for `BOOL`, strings for `BYTES`.
pub fn decode_json(
    tensor: &str,
    datatype: DataType,
    count: usize,
    data: &serde_json::Value,
) -> Result<Elements, ApiError> {
    let bad = |what: String| ApiError::invalid_request(format!("input `{tensor}`: {what}"));
    let mut flat: Vec<&serde_json::Value> = Vec::new();
    let mut stack = vec![data];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Array(items) => stack.extend(items.iter().rev()),
            scalar => {
                if flat.len() == count {
                    return Err(bad(format!("its shape holds {count} elements; the data has more")));
                }
                flat.push(scalar);
            }
        }
    }
    if flat.len() != count {
        return Err(bad(format!("its shape holds {count} elements; the data has {}", flat.len())));
    }
    let wrong = |i: usize, v: &serde_json::Value| {
        let want = match datatype {
            DataType::Bytes => "a string",
            DataType::Bool => "true or false",
            _ => "a number",
        };
        bad(format!("element {i} is {v}, not {want} as datatype {} needs", datatype.name()))
    };
    match datatype {
        DataType::Bytes => flat
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_owned).ok_or_else(|| wrong(i, v)))
            .collect::<Result<_, _>>()
            .map(Elements::Strings),
        DataType::Bool => flat
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_bool().map(f64::from).ok_or_else(|| wrong(i, v)))
            .collect::<Result<_, _>>()
            .map(Elements::Numbers),
        _ => flat
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_f64().ok_or_else(|| wrong(i, v)))
            .collect::<Result<_, _>>()
            .map(Elements::Numbers),
    }
}

/// How a model takes its rows.
enum Form<'m> {
    /// Strings, through a text pre-processing stage; the input's name.
    Text(&'m str),
    /// Named columns (or a dense matrix in their order).
    Tabular(&'m [TensorSpec]),
    /// A dense matrix straight into the graph.
    Dense(usize),
}

fn form(model: &Model) -> Form<'_> {
    match model.manifest().preprocess.first() {
        Some(PreprocessSpec::Text(_)) => {
            Form::Text(model.signature().inputs.first().map_or("text", |i| i.name.as_str()))
        }
        Some(PreprocessSpec::Tabular(_)) => Form::Tabular(&model.signature().inputs),
        None => Form::Dense(model.input_width()),
    }
}

/// Metadata of a tensor: name, datatype, shape (`-1`: any size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorMetadata {
    /// Name.
    pub name: String,
    /// Datatype (`FP32`, `BYTES`, …).
    pub datatype: &'static str,
    /// Shape; `-1` is a variable dimension.
    pub shape: Vec<i64>,
}

impl TensorMetadata {
    fn new(name: &str, datatype: DataType, shape: Vec<i64>) -> TensorMetadata {
        TensorMetadata { name: name.to_owned(), datatype: datatype.name(), shape }
    }
}

/// The input tensors `model` takes (for tabular models, one per column; a single
/// `[rows, width]` tensor is accepted too).
pub fn input_metadata(model: &Model) -> Vec<TensorMetadata> {
    match form(model) {
        Form::Text(name) => vec![TensorMetadata::new(name, DataType::Bytes, vec![-1])],
        Form::Tabular(columns) => {
            columns.iter().map(|c| TensorMetadata::new(&c.name, DataType::of(c.dtype), vec![-1])).collect()
        }
        Form::Dense(width) => {
            let name = match model.signature().inputs.as_slice() {
                [one] => one.name.as_str(),
                _ => "input",
            };
            vec![TensorMetadata::new(name, DataType::Fp32, vec![-1, dim(width)])]
        }
    }
}

fn dim(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(-1)
}

/// Whether every class is an integer (labels are then `INT64`, else `BYTES`).
fn integer_classes(classes: &[Value]) -> bool {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53: integers exact in f64
    classes.iter().all(|c| matches!(c, Value::Number(n) if n.fract() == 0.0 && n.abs() <= LIMIT))
}

/// The output tensors `model` produces.
pub fn output_metadata(model: &Model) -> Vec<TensorMetadata> {
    let width = model
        .manifest()
        .graph
        .outputs
        .first()
        .and_then(|o| o.shape.last())
        .copied()
        .filter(|&w| w > 0)
        .unwrap_or(-1);
    let vector = |name: &str| TensorMetadata::new(name, DataType::Fp32, vec![-1, width]);
    match model.task() {
        Task::Classifier => {
            let classes = model.classes().unwrap_or_default();
            let label = if integer_classes(classes) { DataType::Int64 } else { DataType::Bytes };
            let mut out = vec![TensorMetadata::new("label", label, vec![-1])];
            let no_probabilities = model
                .manifest()
                .postprocess
                .iter()
                .any(|p| matches!(p, PostprocessSpec::Classify { activation: Activation::None, .. }));
            if !no_probabilities {
                out.push(TensorMetadata::new("probabilities", DataType::Fp32, vec![-1, dim(classes.len())]));
            }
            out
        }
        Task::Regressor => {
            let targets = model.targets().map_or(1, <[String]>::len);
            if width == 1 || (width < 0 && targets == 1) {
                vec![TensorMetadata::new("value", DataType::Fp32, vec![-1])]
            } else {
                vec![vector("values")]
            }
        }
        Task::Embedding => vec![vector("embedding")],
        Task::Scores => vec![vector("scores")],
    }
}

/// Maps decoded input tensors to the rows `model` takes (see the module documentation); 400
/// naming the tensor when one does not fit.
pub fn to_payload(model: &Model, inputs: Vec<InputTensor>) -> Result<Payload, ApiError> {
    let bad = ApiError::invalid_request;
    if inputs.is_empty() {
        return Err(bad("the request has no input tensors (GET the model's metadata for its inputs)".into()));
    }
    match form(model) {
        Form::Text(name) => {
            let [input] = one(inputs, &format!("one BYTES tensor `{name}` of shape [rows]"))?;
            if input.name != name {
                return Err(bad(format!(
                    "unknown input `{}`: this text model takes one BYTES tensor `{name}` of shape [rows]",
                    input.name
                )));
            }
            rows_of(&input)?;
            match input.elements {
                Elements::Strings(texts) => Ok(Payload::Texts(texts)),
                Elements::Numbers(_) => Err(bad(format!(
                    "input `{name}`: datatype {} for a text input; send BYTES",
                    input.datatype.name()
                ))),
            }
        }
        Form::Dense(width) => {
            let [input] = one(inputs, &format!("one numeric tensor of shape [rows, {width}]"))?;
            dense(input, width, "")
        }
        Form::Tabular(columns) => match <[InputTensor; 1]>::try_from(inputs) {
            Ok([only]) if !columns.iter().any(|c| c.name == only.name) => {
                let hint = format!(
                    " (a single tensor not named as a column is the dense form, columns in signature \
                     order; or send one tensor per column, named as the column: {})",
                    column_list(columns)
                );
                dense(only, columns.len(), &hint)
            }
            Ok([only]) => records(columns, vec![only]),
            Err(inputs) => records(columns, inputs),
        },
    }
}

/// The first column names, for error messages.
fn column_list(columns: &[TensorSpec]) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = columns.iter().take(SHOWN).map(|c| c.name.as_str()).collect();
    if columns.len() > SHOWN {
        format!("{}, … ({} in all: GET the model's metadata)", names.join(", "), columns.len())
    } else {
        names.join(", ")
    }
}

fn one(inputs: Vec<InputTensor>, what: &str) -> Result<[InputTensor; 1], ApiError> {
    let n = inputs.len();
    <[InputTensor; 1]>::try_from(inputs).map_err(|_| {
        ApiError::invalid_request(format!("this model takes {what}; the request has {n} input tensors"))
    })
}

/// The rows of a one-value-per-row tensor: shape `[rows]` or `[rows, 1]`.
fn rows_of(input: &InputTensor) -> Result<usize, ApiError> {
    match input.shape.as_slice() {
        [rows] | [rows, 1] => Ok(*rows),
        shape => Err(ApiError::invalid_request(format!(
            "input `{}`: shape {shape:?}; one value per row is shape [rows] or [rows, 1]",
            input.name
        ))),
    }
}

/// A `[rows, width]` numeric tensor → dense rows; `hint` ends the shape error.
fn dense(input: InputTensor, width: usize, hint: &str) -> Result<Payload, ApiError> {
    let name = input.name;
    if !matches!(input.shape.as_slice(), [_, cols] if *cols == width) {
        return Err(ApiError::invalid_request(format!(
            "input `{name}`: shape {:?}; this model takes shape [rows, {width}]{hint}",
            input.shape
        )));
    }
    match input.elements {
        Elements::Numbers(values) => {
            Ok(Payload::Dense(DenseRows::new(&format!("input `{name}`"), values, width)?))
        }
        Elements::Strings(_) => Err(ApiError::invalid_request(format!(
            "input `{name}`: datatype BYTES for a dense numeric input; send FP32, FP64 or an integer type"
        ))),
    }
}

/// One tensor per column → records.
fn records(columns: &[TensorSpec], inputs: Vec<InputTensor>) -> Result<Payload, ApiError> {
    let bad = ApiError::invalid_request;
    let mut seen = HashSet::new();
    let mut rows: Option<(usize, String)> = None;
    let mut named = Vec::with_capacity(inputs.len());
    for input in inputs {
        let Some(column) = columns.iter().find(|c| c.name == input.name) else {
            return Err(bad(format!(
                "unknown input `{}`: this model's columns are {} (or send one tensor of shape \
                 [rows, {}], columns in that order)",
                input.name,
                column_list(columns),
                columns.len()
            )));
        };
        if !seen.insert(input.name.clone()) {
            return Err(bad(format!("input `{}` is sent twice", input.name)));
        }
        let n = rows_of(&input)?;
        match &rows {
            Some((first_rows, first)) if *first_rows != n => {
                return Err(bad(format!(
                    "input `{}` has {n} rows; input `{first}` has {first_rows}",
                    input.name
                )))
            }
            Some(_) => {}
            None => rows = Some((n, input.name.clone())),
        }
        let string_column = column.dtype == ElementType::String;
        match (&input.elements, string_column) {
            (Elements::Strings(_), false) => {
                return Err(bad(format!(
                    "input `{}`: datatype BYTES for a numeric column; send {} (or any numeric datatype)",
                    input.name,
                    DataType::of(column.dtype).name()
                )))
            }
            (Elements::Numbers(_), true) => {
                return Err(bad(format!(
                    "input `{}`: datatype {} for a string column; send BYTES",
                    input.name,
                    input.datatype.name()
                )))
            }
            _ => {}
        }
        named.push((column.name.as_str(), input.elements));
    }
    let rows = rows.map_or(0, |(n, _)| n);
    let mut records = vec![Record::new(); rows];
    for (name, elements) in named {
        match elements {
            Elements::Numbers(values) => {
                for (record, v) in records.iter_mut().zip(values) {
                    record.insert(name.to_owned(), Value::Number(v));
                }
            }
            Elements::Strings(values) => {
                for (record, v) in records.iter_mut().zip(values) {
                    record.insert(name.to_owned(), Value::String(v));
                }
            }
        }
    }
    Ok(Payload::Records(records))
}

/// The elements of one output tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OutputData {
    /// `FP32`.
    Fp32(Vec<f32>),
    /// `INT64`.
    Int64(Vec<i64>),
    /// `BYTES` (labels, always UTF-8).
    Strings(Vec<String>),
}

impl OutputData {
    /// The elements as the binary extension and gRPC `raw_output_contents` carry them:
    /// little-endian, `BYTES` each prefixed by its 4-byte little-endian length.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            OutputData::Fp32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            OutputData::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            OutputData::Strings(v) => {
                let mut out = Vec::with_capacity(v.iter().map(|s| s.len() + 4).sum());
                for s in v {
                    // Labels are short; a longer one is cut at the largest length the prefix holds.
                    let bytes = &s.as_bytes()[..s.len().min(u32::MAX as usize)];
                    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                    out.extend_from_slice(bytes);
                }
                out
            }
        }
    }
}

/// One output tensor of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    /// Name (`label`, `probabilities`, `value`, `values`, `embedding`, `scores`).
    pub name: &'static str,
    /// Datatype.
    pub datatype: DataType,
    /// Shape.
    pub shape: Vec<i64>,
    /// Elements, row-major.
    pub data: OutputData,
}

/// The names of the outputs a prediction has, in answer order.
fn output_names(p: &Prediction) -> Vec<&'static str> {
    if p.labels.is_some() {
        if p.probabilities.is_some() {
            vec!["label", "probabilities"]
        } else {
            vec!["label"]
        }
    } else if p.embeddings.is_some() {
        vec!["embedding"]
    } else if let Some(values) = &p.values {
        vec![if values.cols() == 1 { "value" } else { "values" }]
    } else {
        vec!["scores"]
    }
}

/// Output `name` of `p`, if it has it.
fn output(p: &Prediction, name: &str) -> Option<OutputTensor> {
    let rows = dim(p.rows);
    let matrix = |name: &'static str, m: &ingot::Matrix| OutputTensor {
        name,
        datatype: DataType::Fp32,
        shape: vec![rows, dim(m.cols())],
        data: OutputData::Fp32(m.as_slice().to_vec()),
    };
    match name {
        "label" => {
            let labels = p.labels.as_ref()?;
            let data = if integer_classes(labels.classes()) {
                OutputData::Int64(labels.iter().map(|v| v.as_f64().map_or(0, |n| n as i64)).collect())
            } else {
                OutputData::Strings(
                    labels
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect(),
                )
            };
            let datatype =
                if matches!(data, OutputData::Int64(_)) { DataType::Int64 } else { DataType::Bytes };
            Some(OutputTensor { name: "label", datatype, shape: vec![rows], data })
        }
        "probabilities" => p.probabilities.as_ref().map(|m| matrix("probabilities", m)),
        "embedding" => p.embeddings.as_ref().map(|m| matrix("embedding", m)),
        "value" => p.values.as_ref().filter(|m| m.cols() == 1).map(|m| OutputTensor {
            name: "value",
            datatype: DataType::Fp32,
            shape: vec![rows],
            data: OutputData::Fp32(m.as_slice().to_vec()),
        }),
        "values" => p.values.as_ref().filter(|m| m.cols() != 1).map(|m| matrix("values", m)),
        "scores" if p.labels.is_none() && p.embeddings.is_none() && p.values.is_none() => {
            Some(matrix("scores", &p.scores))
        }
        _ => None,
    }
}

/// Checks that every name in `requested` is an output of `model` (400 naming the unknown one).
pub fn check_requested(model: &Model, requested: &[String]) -> Result<(), ApiError> {
    let known = output_metadata(model);
    match requested.iter().find(|r| !known.iter().any(|k| &k.name == *r)) {
        Some(unknown) => Err(unknown_output(unknown, known.iter().map(|k| k.name.as_str()))),
        None => Ok(()),
    }
}

fn unknown_output<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> ApiError {
    let known: Vec<&str> = known.collect();
    ApiError::invalid_request(format!(
        "unknown output `{name}`; this model's outputs are {}",
        known.join(", ")
    ))
}

/// The output tensors of `p`: those `requested`, in that order, else all of them.
pub fn output_tensors(p: &Prediction, requested: Option<&[String]>) -> Result<Vec<OutputTensor>, ApiError> {
    match requested {
        None => Ok(output_names(p).into_iter().filter_map(|n| output(p, n)).collect()),
        Some(names) => names
            .iter()
            .map(|n| output(p, n).ok_or_else(|| unknown_output(n, output_names(p).into_iter())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_are_length_checked() {
        let mut raw = Vec::new();
        for s in ["ab", "", "ç"] {
            raw.extend_from_slice(&(s.len() as u32).to_le_bytes());
            raw.extend_from_slice(s.as_bytes());
        }
        let got = decode_raw("t", DataType::Bytes, 3, &raw).unwrap();
        assert_eq!(got, Elements::Strings(vec!["ab".into(), String::new(), "ç".into()]));
        let err = |count, bytes: &[u8]| decode_raw("t", DataType::Bytes, count, bytes).unwrap_err().message;
        assert!(err(2, &raw).contains("left after the 2 BYTES elements"), "{}", err(2, &raw));
        assert!(err(4, &raw).contains("holds 4 BYTES elements; the binary data has 3"));
        assert!(err(1, &[1, 0]).contains("cut off inside its 4-byte length"));
        assert!(err(1, &[0xff, 0xff, 0xff, 0xff, b'a']).contains("claims 4294967295 bytes; only 1"));
        assert!(err(1, &[1, 0, 0, 0, 0xff]).contains("not valid UTF-8"));
        // A huge shape with little data is refused without reserving for the shape.
        assert!(err(usize::MAX, &raw).contains("holds"));
    }

    #[test]
    fn raw_numbers_decode_little_endian() {
        let raw: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(decode_raw("t", DataType::Fp32, 2, &raw).unwrap(), Elements::Numbers(vec![1.5, -2.0]));
        let raw: Vec<u8> = [-3i64].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(decode_raw("t", DataType::Int64, 1, &raw).unwrap(), Elements::Numbers(vec![-3.0]));
        assert_eq!(decode_raw("t", DataType::Bool, 2, &[1, 0]).unwrap(), Elements::Numbers(vec![1.0, 0.0]));
        let raw = half::f16::from_f32(0.5).to_le_bytes();
        assert_eq!(decode_raw("t", DataType::Fp16, 1, &raw).unwrap(), Elements::Numbers(vec![0.5]));
        let err = decode_raw("t", DataType::Fp64, 2, &[0; 15]).unwrap_err().message;
        assert!(err.contains("2 FP64 elements take 16 bytes; the binary data has 15"), "{err}");
        assert!(decode_raw("t", DataType::Fp32, usize::MAX, &[0; 4]).is_err());
    }

    #[test]
    fn json_data_is_flat_or_nested() {
        let nested = serde_json::json!([[1, 2], [3.5, 4]]);
        let flat = serde_json::json!([1, 2, 3.5, 4]);
        let want = Elements::Numbers(vec![1.0, 2.0, 3.5, 4.0]);
        assert_eq!(decode_json("t", DataType::Fp64, 4, &nested).unwrap(), want);
        assert_eq!(decode_json("t", DataType::Fp64, 4, &flat).unwrap(), want);
        let err = decode_json("t", DataType::Fp64, 3, &flat).unwrap_err().message;
        assert!(err.contains("holds 3 elements; the data has more"), "{err}");
        let err = decode_json("t", DataType::Fp32, 1, &serde_json::json!(["x"])).unwrap_err().message;
        assert!(err.contains("element 0 is \"x\", not a number as datatype FP32 needs"), "{err}");
        let texts = decode_json("t", DataType::Bytes, 2, &serde_json::json!(["a", "b"])).unwrap();
        assert_eq!(texts, Elements::Strings(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(element_count("t", &[2, 3], 10).unwrap(), 6);
        assert!(element_count("t", &[2, -1], 10).unwrap_err().message.contains("negative"));
        assert!(element_count("t", &[i64::MAX, i64::MAX], usize::MAX)
            .unwrap_err()
            .message
            .contains("too large"));
        assert_eq!(element_count("t", &[11, 1], 10).unwrap_err().status.as_u16(), 413);
        assert_eq!(DataType::parse("BYTES").and_then(DataType::size), None);
        assert!(parse_datatype("t", "FLOAT").unwrap_err().message.contains("unknown datatype `FLOAT`"));
    }

    #[test]
    fn bytes_outputs_are_length_prefixed() {
        let data = OutputData::Strings(vec!["no".into(), "yes".into()]);
        assert_eq!(data.to_le_bytes(), [2, 0, 0, 0, b'n', b'o', 3, 0, 0, 0, b'y', b'e', b's']);
        assert_eq!(OutputData::Int64(vec![1]).to_le_bytes(), [1, 0, 0, 0, 0, 0, 0, 0]);
    }
}
