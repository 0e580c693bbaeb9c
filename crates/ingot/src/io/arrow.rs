//! Apache Arrow in and out: a [`RecordBatch`] as a model's [`Frame`] input (numeric columns
//! borrowed without a copy), and a [`Prediction`] as a record batch.
//!
//! This is what Parquet files (the CLI), pyarrow tables and pandas frames (the bindings) go
//! through, so they read columns exactly as records do.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, NullArray, RecordBatch,
    StringArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema};

use crate::error::{Error, Result};
use crate::input::{ColumnValues, Frame, FrameColumn};
use crate::output::{ColumnData, Prediction};
use crate::value::Value;

/// The columns of a record batch, ready to be borrowed as a [`Frame`]: numeric data stays in
/// the batch's buffers; strings, booleans, small integers and null masks are gathered once.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
/// # fn main() -> ingot::Result<()> {
/// let batch = RecordBatch::try_from_iter([
///     ("a", Arc::new(Float64Array::from(vec![Some(3.0), None])) as ArrayRef),
///     ("b", Arc::new(Float64Array::from(vec![1.0, 0.0])) as ArrayRef),
/// ])
/// .unwrap();
/// let columns = ingot::io::arrow::BatchColumns::new(&batch)?;
/// let frame = columns.frame()?;
/// assert_eq!(frame.rows(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BatchColumns<'a> {
    columns: Vec<(&'a str, Part<'a>, Option<Vec<bool>>)>,
}

/// One column's values: borrowed from the batch, or converted.
#[derive(Debug)]
enum Part<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
    I64(&'a [i64]),
    I32(&'a [i32]),
    F32Owned(Vec<f32>),
    I64Owned(Vec<i64>),
    F64Owned(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<Option<&'a str>>),
}

impl<'a> BatchColumns<'a> {
    /// Reads every column of `batch`: floats, integers, booleans, strings (also large, view and
    /// dictionary-encoded, as pandas categoricals arrive) and all-null columns. Any other type
    /// is a usage error naming the column.
    pub fn new(batch: &'a RecordBatch) -> Result<BatchColumns<'a>> {
        let schema = batch.schema_ref();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let name = field.name().as_str();
            let part = part(array.as_ref()).ok_or_else(|| {
                Error::usage(format!(
                    "column `{name}` has Arrow type {}, which Ingot does not read",
                    array.data_type()
                ))
            })?;
            // Strings carry their nulls as `None`; other columns get a mask when they have any.
            let missing = match part {
                Part::Str(_) => None,
                _ => (array.null_count() > 0).then(|| (0..array.len()).map(|i| array.is_null(i)).collect()),
            };
            columns.push((name, part, missing));
        }
        Ok(BatchColumns { columns })
    }

    /// The columns as a frame for [`crate::Input::Frame`].
    pub fn frame(&self) -> Result<Frame<'_>> {
        let columns = self
            .columns
            .iter()
            .map(|(name, part, missing)| {
                let values = match part {
                    Part::F64(v) => ColumnValues::F64(v),
                    Part::F32(v) => ColumnValues::F32(v),
                    Part::I64(v) => ColumnValues::I64(v),
                    Part::I32(v) => ColumnValues::I32(v),
                    Part::F32Owned(v) => ColumnValues::F32(v),
                    Part::I64Owned(v) => ColumnValues::I64(v),
                    Part::F64Owned(v) => ColumnValues::F64(v),
                    Part::Bool(v) => ColumnValues::Bool(v),
                    Part::Str(v) => ColumnValues::Str(v),
                };
                FrameColumn { name, values, missing: missing.as_deref() }
            })
            .collect();
        Frame::new(columns)
    }
}

/// The values of `array` as a frame part, or `None` for a type Ingot does not read.
fn part(array: &dyn Array) -> Option<Part<'_>> {
    let widened = |values: Vec<i64>| Some(Part::I64Owned(values));
    Some(match array.data_type() {
        DataType::Float64 => Part::F64(array.as_primitive::<Float64Type>().values()),
        DataType::Float32 => Part::F32(array.as_primitive::<Float32Type>().values()),
        DataType::Int64 => Part::I64(array.as_primitive::<Int64Type>().values()),
        DataType::Int32 => Part::I32(array.as_primitive::<Int32Type>().values()),
        DataType::Float16 => {
            Part::F32Owned(array.as_primitive::<Float16Type>().values().iter().map(|v| v.to_f32()).collect())
        }
        DataType::Int16 => {
            return widened(array.as_primitive::<Int16Type>().values().iter().map(|&v| v.into()).collect())
        }
        DataType::Int8 => {
            return widened(array.as_primitive::<Int8Type>().values().iter().map(|&v| v.into()).collect())
        }
        DataType::UInt8 => {
            return widened(array.as_primitive::<UInt8Type>().values().iter().map(|&v| v.into()).collect())
        }
        DataType::UInt16 => {
            return widened(array.as_primitive::<UInt16Type>().values().iter().map(|&v| v.into()).collect())
        }
        DataType::UInt32 => {
            return widened(array.as_primitive::<UInt32Type>().values().iter().map(|&v| v.into()).collect())
        }
        // Past 2⁶³ a u64 is still a number; as f64 it keeps its magnitude.
        DataType::UInt64 => {
            Part::F64Owned(array.as_primitive::<UInt64Type>().values().iter().map(|&v| v as f64).collect())
        }
        DataType::Boolean => {
            let b = array.as_boolean();
            Part::Bool((0..b.len()).map(|i| b.value(i)).collect())
        }
        DataType::Utf8 => {
            let s = array.as_string::<i32>();
            Part::Str((0..s.len()).map(|i| s.is_valid(i).then(|| s.value(i))).collect())
        }
        DataType::LargeUtf8 => {
            let s = array.as_string::<i64>();
            Part::Str((0..s.len()).map(|i| s.is_valid(i).then(|| s.value(i))).collect())
        }
        DataType::Utf8View => {
            let s = array.as_string_view();
            Part::Str((0..s.len()).map(|i| s.is_valid(i).then(|| s.value(i))).collect())
        }
        DataType::Dictionary(_, value_type)
            if matches!(**value_type, DataType::Utf8 | DataType::LargeUtf8) =>
        {
            let dict = array.as_any_dictionary_opt()?;
            let Part::Str(values) = part(dict.values().as_ref())? else { return None };
            let keys = dict.normalized_keys();
            Part::Str(
                (0..array.len())
                    .map(|i| if array.is_null(i) { None } else { values.get(keys[i]).copied().flatten() })
                    .collect(),
            )
        }
        DataType::Null => Part::Str(vec![None; array.len()]),
        _ => return None,
    })
}

/// `values` as one Arrow column: integers (`Int64`) when every value is an integer, floats
/// (`Float64`) when every value is a number, else strings (`Utf8`, numbers written as text);
/// `Null` is a null.
///
/// ```
/// use arrow_array::Array;
/// use ingot::Value;
/// let a = ingot::io::arrow::values_array(&[Value::from(1.0), Value::Null, Value::from(3.0)]);
/// assert_eq!(a.data_type(), &arrow_schema::DataType::Int64);
/// assert!(a.is_null(1));
/// ```
pub fn values_array(values: &[Value]) -> ArrayRef {
    let numbers = values.iter().all(|v| !matches!(v, Value::String(_)));
    let integers =
        numbers && values.iter().all(|v| v.as_f64().is_none_or(|n| Value::as_exact_int(n).is_some()));
    if values.iter().all(|v| *v == Value::Null) {
        Arc::new(NullArray::new(values.len()))
    } else if integers {
        Arc::new(values.iter().map(|v| v.as_f64().and_then(Value::as_exact_int)).collect::<Int64Array>())
    } else if numbers {
        Arc::new(values.iter().map(Value::as_f64).collect::<Float64Array>())
    } else {
        let text = |v: &Value| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        Arc::new(values.iter().map(text).collect::<StringArray>())
    }
}

/// The prediction as a record batch in the layout of [`Prediction::columns`]: labels through
/// [`values_array`], numbers as `Float32`, an embedding as a fixed-size list of `Float32`.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let p = model.predict_dense(&[3.0, 1.0, 0.0, 0.0], 2, 2)?;
/// let batch = ingot::io::arrow::prediction_batch(&p)?;
/// assert_eq!((batch.num_rows(), batch.num_columns()), (2, 3));
/// assert_eq!(batch.schema().field(1).name(), "proba_no");
/// # Ok(()) }
/// ```
pub fn prediction_batch(p: &Prediction) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in p.columns() {
        let array: ArrayRef = match c.data {
            ColumnData::Labels(labels) => values_array(labels),
            ColumnData::Number { matrix, col } => {
                Arc::new(matrix.iter_rows().map(|r| r[col]).collect::<Float32Array>())
            }
            ColumnData::Vector(m) => {
                let item = Arc::new(Field::new("item", DataType::Float32, false));
                let values = Arc::new(Float32Array::from(m.as_slice().to_vec()));
                let dim =
                    i32::try_from(m.cols()).map_err(|_| Error::usage("embedding too wide for Arrow"))?;
                Arc::new(FixedSizeListArray::try_new(item, dim, values, None).map_err(arrow_error)?)
            }
        };
        fields.push(Field::new(
            c.name,
            array.data_type().clone(),
            array.null_count() > 0 || array.data_type() == &DataType::Null,
        ));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(arrow_error)
}

fn arrow_error(e: ArrowError) -> Error {
    Error::usage(format!("arrow: {e}"))
}
