//! JavaScript inputs → `ingot::Input`, read on the main thread into an [`OwnedInput`] that moves
//! to a worker. Typed arrays are kept by reference and read in place; records and strings are
//! copied once.

use ingot::{ColumnValues, Dense, Error, Frame, FrameColumn, Input, Model, Record, Value};
use napi::bindgen_prelude::{
    Array, BigInt, Float32Array, Float32ArraySlice, Float64Array, Float64ArraySlice, FromNapiValue,
    Int32Array, JsObjectValue, Object,
};
use napi::{Env, JsString, JsValue, Unknown, ValueType};

use crate::error::Result;

/// `v` as a `T`.
///
/// Conversions of values of the wrong type fail: each goes through N-API functions that check
/// the value's type (`napi_get_value_double` wants a number, `napi_get_typedarray_info` a typed
/// array, and so on) and return an error for any other.
pub(crate) fn cast<T: FromNapiValue>(v: &Unknown<'_>) -> napi::Result<T> {
    // SAFETY: `v` and its env come from N-API within the current call (valid handles), and
    // every `FromNapiValue` conversion checks the value's type through N-API (above).
    unsafe { v.cast::<T>() }
}

/// What a predict call reads, owned by the call.
pub(crate) enum OwnedInput {
    /// A row-major float32 matrix, read in place.
    DenseF32 { data: Float32Array, rows: usize, cols: usize },
    /// A row-major float64 matrix, read in place.
    DenseF64 { data: Float64Array, rows: usize, cols: usize },
    /// Named rows.
    Records(Vec<Record>),
    /// Strings, for text models.
    Texts(Vec<String>),
    /// Named columns (what `index.ts` makes of regular records).
    Columns(Vec<(String, OwnedColumn)>),
    /// No rows.
    Empty,
}

/// One column of [`OwnedInput::Columns`].
pub(crate) enum OwnedColumn {
    /// Numbers; NaN is missing.
    F64(Float64Array),
    /// Strings as dictionary codes (negative: missing) into the distinct values.
    Dict { codes: Int32Array, values: Vec<String> },
}

impl CoreInput for OwnedInput {
    fn rows(&self) -> usize {
        match self {
            OwnedInput::DenseF32 { rows, .. } | OwnedInput::DenseF64 { rows, .. } => *rows,
            OwnedInput::Records(r) => r.len(),
            OwnedInput::Texts(t) => t.len(),
            OwnedInput::Columns(c) => c.first().map_or(0, |(_, c)| match c {
                OwnedColumn::F64(v) => v.len(),
                OwnedColumn::Dict { codes, .. } => codes.len(),
            }),
            OwnedInput::Empty => 0,
        }
    }

    fn with<T>(&self, model: &Model, f: impl FnOnce(Input<'_>) -> ingot::Result<T>) -> ingot::Result<T> {
        match self {
            OwnedInput::DenseF32 { data, rows, cols } => f(Input::Dense(Dense::f32(data, *rows, *cols)?)),
            OwnedInput::DenseF64 { data, rows, cols } => f(Input::Dense(Dense::f64(data, *rows, *cols)?)),
            OwnedInput::Records(r) => f(Input::Records(r)),
            OwnedInput::Texts(t) => {
                let texts: Vec<&str> = t.iter().map(String::as_str).collect();
                f(Input::Texts(&texts))
            }
            OwnedInput::Columns(columns) => {
                let strings: Vec<Vec<&str>> = columns
                    .iter()
                    .map(|(_, c)| match c {
                        OwnedColumn::Dict { values, .. } => values.iter().map(String::as_str).collect(),
                        OwnedColumn::F64(_) => Vec::new(),
                    })
                    .collect();
                let frame = Frame::new(
                    columns
                        .iter()
                        .zip(&strings)
                        .map(|((name, c), s)| FrameColumn {
                            name,
                            values: match c {
                                OwnedColumn::F64(v) => ColumnValues::F64(v),
                                OwnedColumn::Dict { codes, .. } => {
                                    ColumnValues::Dict { keys: codes, values: s }
                                }
                            },
                            missing: None,
                        })
                        .collect(),
                )?;
                f(Input::Frame(&frame))
            }
            OwnedInput::Empty => f(model.empty_input()),
        }
    }
}

/// Reads `input`: an array of records (plain objects), an array of strings, or
/// `{ data: Float32Array | Float64Array, shape: [rows, cols] }`. Record fields are read for
/// the signature's `names` only (other fields are ignored, as the core ignores them).
pub(crate) fn read(input: &Unknown<'_>, names: &[String]) -> Result<OwnedInput> {
    match input.get_type()? {
        ValueType::Object if input.is_array()? => {
            let array = cast::<Array>(input)?;
            let Some(first) = array.get::<Unknown>(0)? else {
                return Ok(OwnedInput::Empty);
            };
            if first.get_type()? == ValueType::String {
                texts(&array).map(OwnedInput::Texts)
            } else {
                records(&array, names).map(OwnedInput::Records)
            }
        }
        ValueType::Object => {
            let object = cast::<Object>(input)?;
            dense_object(&object)
        }
        other => Err(Error::usage(format!(
            "predict takes an array of records, an array of strings or {{ data, shape }}, not {}",
            type_name(other)
        ))
        .into()),
    }
}

/// The usage error of a dense input that is not one.
fn not_dense() -> Error {
    Error::usage(
        "a dense input is { data: Float32Array | Float64Array, shape: [rows, cols] } \
         (or pass an array of records or of strings)",
    )
}

/// `{ data, shape }` as a dense matrix, kept by reference.
fn dense_object(object: &Object<'_>) -> Result<OwnedInput> {
    match (object.get::<Unknown>("data")?, object.get::<Unknown>("shape")?) {
        (Some(data), Some(shape)) => {
            let (rows, cols) = shape_of(&shape)?;
            dense(&data, rows, cols)
        }
        _ => Err(not_dense().into()),
    }
}

/// What a predict call reads, as the core takes it.
pub(crate) trait CoreInput {
    /// Number of rows.
    fn rows(&self) -> usize;

    /// `f` of the input as an `ingot::Input` (`model` gives an empty one its columns).
    fn with<T>(&self, model: &Model, f: impl FnOnce(Input<'_>) -> ingot::Result<T>) -> ingot::Result<T>;
}

/// A dense matrix borrowed from JavaScript for a call on the calling thread (no reference is
/// made: the typed array cannot change or go while no JavaScript runs).
pub(crate) struct DenseSlice<'env> {
    data: DenseData<'env>,
    rows: usize,
    cols: usize,
}

/// The values of a [`DenseSlice`].
enum DenseData<'env> {
    F32(Float32ArraySlice<'env>),
    F64(Float64ArraySlice<'env>),
}

impl CoreInput for DenseSlice<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn with<T>(&self, _: &Model, f: impl FnOnce(Input<'_>) -> ingot::Result<T>) -> ingot::Result<T> {
        let (rows, cols) = (self.rows, self.cols);
        f(Input::Dense(match &self.data {
            DenseData::F32(data) => Dense::f32(data, rows, cols)?,
            DenseData::F64(data) => Dense::f64(data, rows, cols)?,
        }))
    }
}

/// `data` (a `Float32Array` or `Float64Array`) as a dense `rows × cols` matrix, borrowed.
pub(crate) fn dense_slice<'env>(data: &Unknown<'env>, rows: usize, cols: usize) -> Result<DenseSlice<'env>> {
    let expected = rows.checked_mul(cols).ok_or_else(|| Error::usage("dense input: shape overflows"))?;
    if data.get_type()? != ValueType::Object || !data.is_typedarray()? {
        return Err(not_dense().into());
    }
    let data = if let Ok(data) = cast::<Float32ArraySlice>(data) {
        DenseData::F32(data)
    } else if let Ok(data) = cast::<Float64ArraySlice>(data) {
        DenseData::F64(data)
    } else {
        return Err(Error::usage("dense input: data must be a Float32Array or a Float64Array").into());
    };
    let len = match &data {
        DenseData::F32(d) => d.len(),
        DenseData::F64(d) => d.len(),
    };
    if len != expected {
        return Err(Error::ShapeMismatch {
            what: "dense input data".into(),
            expected: format!("{expected} values (shape [{rows}, {cols}])"),
            got: len.to_string(),
        }
        .into());
    }
    Ok(DenseSlice { data, rows, cols })
}

/// `data` as a dense `rows × cols` matrix, kept by reference (for a call on the thread pool).
pub(crate) fn dense(data: &Unknown<'_>, rows: usize, cols: usize) -> Result<OwnedInput> {
    Ok(match dense_slice(data, rows, cols)?.data {
        DenseData::F32(_) => OwnedInput::DenseF32 { data: cast(data)?, rows, cols },
        DenseData::F64(_) => OwnedInput::DenseF64 { data: cast(data)?, rows, cols },
    })
}

/// The usage error of a shape that is not one.
fn bad_shape() -> Error {
    Error::usage("dense input: shape must be [rows, cols], two non-negative integers")
}

/// `[rows, cols]`: an array of two non-negative integers.
fn shape_of(shape: &Unknown<'_>) -> Result<(usize, usize)> {
    if !shape.is_array()? {
        return Err(bad_shape().into());
    }
    let array = cast::<Array>(shape)?;
    if array.len() != 2 {
        return Err(bad_shape().into());
    }
    let dim = |i| -> Result<Unknown<'_>> { array.get::<Unknown>(i)?.ok_or_else(|| bad_shape().into()) };
    dims(&dim(0)?, &dim(1)?)
}

/// A dense input's `rows` and `cols`: two non-negative integers.
pub(crate) fn dims(rows: &Unknown<'_>, cols: &Unknown<'_>) -> Result<(usize, usize)> {
    let dim = |v: &Unknown<'_>| -> Result<usize> {
        if v.get_type()? != ValueType::Number {
            return Err(bad_shape().into());
        }
        let n = cast::<f64>(v)?;
        if !(n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_992.0) {
            return Err(bad_shape().into());
        }
        Ok(n as usize)
    };
    Ok((dim(rows)?, dim(cols)?))
}

/// An array of strings.
pub(crate) fn texts(array: &Array<'_>) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(array.len() as usize);
    for row in 0..array.len() {
        let v = element(array, row)?;
        match v.get_type()? {
            ValueType::String => out.push(cast::<String>(&v)?),
            other => {
                return Err(Error::WrongType {
                    row: row as usize,
                    column: "text".into(),
                    expected: "a string",
                    got: type_name(other).into(),
                }
                .into())
            }
        }
    }
    Ok(out)
}

/// Element `i` of `array` (below its length; a hole reads as `undefined`).
fn element<'env>(array: &Array<'env>, i: u32) -> Result<Unknown<'env>> {
    array
        .get::<Unknown>(i)?
        .ok_or_else(|| Error::usage(format!("element {i} is past the array's end")).into())
}

/// An array of plain objects as records of the columns `names`: a field that is `undefined`
/// is absent (the core says which row lacks it), `null` is missing, booleans are 0 and 1.
fn records(array: &Array<'_>, names: &[String]) -> Result<Vec<Record>> {
    let env = Env::from_raw(array.value().env);
    let keys = names.iter().map(|n| env.create_string(n)).collect::<napi::Result<Vec<JsString>>>()?;
    let mut out = Vec::with_capacity(array.len() as usize);
    for row in 0..array.len() {
        let item = element(array, row)?;
        if item.get_type()? != ValueType::Object || item.is_array()? {
            return Err(Error::usage(format!(
                "records: row {row} is {}, not an object of column values",
                if item.is_array()? { "an array" } else { type_name(item.get_type()?) }
            ))
            .into());
        }
        let object = cast::<Object>(&item)?;
        let mut record = Record::new();
        for (name, key) in names.iter().zip(&keys) {
            let v: Unknown = object.get_property_unchecked(*key)?;
            if let Some(value) = cell(&v, row as usize, name)? {
                record.insert(name.clone(), value);
            }
        }
        out.push(record);
    }
    Ok(out)
}

/// One record field: `None` when absent (`undefined`).
fn cell(v: &Unknown<'_>, row: usize, column: &str) -> Result<Option<Value>> {
    Ok(Some(match v.get_type()? {
        ValueType::Undefined => return Ok(None),
        ValueType::Null => Value::Null,
        ValueType::Number => Value::Number(cast::<f64>(v)?),
        ValueType::String => Value::String(cast::<String>(v)?),
        ValueType::Boolean => Value::Number(f64::from(u8::from(cast::<bool>(v)?))),
        ValueType::BigInt => {
            let (n, lossless) = cast::<BigInt>(v)?.get_i64();
            if !lossless {
                return Err(Error::WrongType {
                    row,
                    column: column.to_owned(),
                    expected: "a number, a string or null",
                    got: "a BigInt beyond 64 bits".into(),
                }
                .into());
            }
            Value::Number(n as f64)
        }
        other => {
            return Err(Error::WrongType {
                row,
                column: column.to_owned(),
                expected: "a number, a string or null",
                got: type_name(other).into(),
            }
            .into())
        }
    }))
}

/// `names[i]` → `columns[i]`, each a `Float64Array` (NaN is missing) or
/// `{ codes: Int32Array, values: string[] }` (a negative code is missing).
pub(crate) fn columns(names: Vec<String>, columns: &Array<'_>) -> Result<OwnedInput> {
    if names.len() != columns.len() as usize {
        return Err(Error::usage("columns: one name per column").into());
    }
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let bad =
            || Error::usage(format!("column `{name}`: a Float64Array or {{ codes: Int32Array, values }}"));
        let v = columns.get::<Unknown>(i as u32)?.ok_or_else(bad)?;
        let column = if v.is_typedarray()? {
            OwnedColumn::F64(cast::<Float64Array>(&v).map_err(|_| bad())?)
        } else if v.get_type()? == ValueType::Object {
            let object = cast::<Object>(&v)?;
            let codes = object.get::<Unknown>("codes")?.ok_or_else(bad)?;
            if !codes.is_typedarray()? {
                return Err(bad().into());
            }
            let codes = cast::<Int32Array>(&codes).map_err(|_| bad())?;
            let values = object.get::<Unknown>("values")?.ok_or_else(bad)?;
            if !values.is_array()? {
                return Err(bad().into());
            }
            let values = texts(&cast::<Array>(&values)?)?;
            OwnedColumn::Dict { codes, values }
        } else {
            return Err(bad().into());
        };
        out.push((name, column));
    }
    Ok(OwnedInput::Columns(out))
}

/// A value's type as error messages name it.
fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::External => "an external",
        ValueType::BigInt => "a BigInt",
        ValueType::Unknown => "a value",
    }
}
