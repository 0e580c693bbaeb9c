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
use crate::input::{ColumnValues, Frame, FrameColumn, Offsets};
use crate::output::{ColumnData, Labels, Prediction};
use crate::value::Value;

/// The columns of a record batch, ready to be borrowed as a [`Frame`]: numeric data and
/// strings (`Utf8`, `LargeUtf8`) stay in the batch's buffers; dictionary keys, string views,
/// booleans, small integers and null masks are gathered once.
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
    /// A dictionary of strings: keys (`-1` missing) and the distinct values.
    Dict(Vec<i32>, Vec<&'a str>),
    /// Strings in place: offsets and data.
    Utf8(Offsets<'a>, &'a str),
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
                Part::Str(_) | Part::Dict(..) => None,
                _ => array
                    .logical_nulls()
                    .filter(|n| n.null_count() > 0)
                    .map(|n| n.iter().map(|valid| !valid).collect()),
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
                    Part::Dict(keys, values) => ColumnValues::Dict { keys, values },
                    Part::Utf8(offsets, data) => ColumnValues::Utf8 { offsets: *offsets, data },
                };
                FrameColumn { name, values, missing: missing.as_deref() }
            })
            .collect();
        Frame::new(columns)
    }
}

impl Part<'_> {
    /// Numeric values as f64 (the values of a numeric dictionary); `None` for strings.
    fn as_f64(&self) -> Option<Vec<f64>> {
        Some(match self {
            Part::F64(v) => v.to_vec(),
            Part::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Part::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Part::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Part::F32Owned(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Part::I64Owned(v) => v.iter().map(|&x| x as f64).collect(),
            Part::F64Owned(v) => v.clone(),
            Part::Bool(v) => v.iter().map(|&b| f64::from(u8::from(b))).collect(),
            Part::Str(_) | Part::Dict(..) | Part::Utf8(..) => return None,
        })
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
        // Strings are read in place; their data must be UTF-8 (the frame checks the offsets).
        DataType::Utf8 => {
            let s = array.as_string::<i32>();
            Part::Utf8(Offsets::I32(s.value_offsets()), std::str::from_utf8(s.value_data()).ok()?)
        }
        DataType::LargeUtf8 => {
            let s = array.as_string::<i64>();
            Part::Utf8(Offsets::I64(s.value_offsets()), std::str::from_utf8(s.value_data()).ok()?)
        }
        DataType::Utf8View => {
            let s = array.as_string_view();
            Part::Str((0..s.len()).map(|i| s.is_valid(i).then(|| s.value(i))).collect())
        }
        // Dictionary-encoded (pandas categoricals): strings stay a dictionary, numbers are
        // gathered by key; a missing key (or value) is missing.
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary_opt()?;
            let keys = dict.normalized_keys();
            let values = dict.values();
            let distinct: Vec<Option<&str>> = match part(values.as_ref())? {
                Part::Str(v) => v,
                Part::Utf8(offsets, data) => {
                    (0..offsets.rows()).map(|k| values.is_valid(k).then(|| &data[offsets.span(k)])).collect()
                }
                Part::Dict(..) => return None,
                numeric => {
                    let v = numeric.as_f64()?;
                    let at = |i: usize| if array.is_valid(i) { v.get(keys[i]).copied() } else { None };
                    return Some(Part::F64Owned(
                        (0..array.len()).map(|i| at(i).unwrap_or(f64::NAN)).collect(),
                    ));
                }
            };
            i32::try_from(distinct.len()).ok()?;
            // A null key, or a key to a null value, is missing.
            let key = |i: usize| match keys.get(i) {
                Some(&k) if array.is_valid(i) && distinct.get(k).is_some_and(Option::is_some) => k as i32,
                _ => -1,
            };
            Part::Dict(
                (0..array.len()).map(key).collect(),
                distinct.iter().map(|s| s.unwrap_or_default()).collect(),
            )
        }
        DataType::Null => Part::Str(vec![None; array.len()]),
        _ => return None,
    })
}

/// A prediction's labels as one Arrow column, typed by the model's classes (so every batch of
/// one model has the same type): integers (`Int64`) when every class is an integer, floats
/// (`Float64`) when every class is a number, else strings (`Utf8`, numbers written as text); a
/// `null` class is a null.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use arrow_array::Array;
/// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let p = model.predict_dense(&[3.0, 1.0, 0.0, 0.0], 2, 2)?;
/// let a = ingot::io::arrow::labels_array(p.labels.as_ref().unwrap());
/// assert_eq!(a.data_type(), &arrow_schema::DataType::Utf8);
/// assert_eq!(a.len(), 2);
/// # Ok(()) }
/// ```
pub fn labels_array(labels: &Labels) -> ArrayRef {
    let classes = labels.classes();
    let rows = labels.indices().iter().map(|&i| i as usize);
    let numbers = classes.iter().all(|v| !matches!(v, Value::String(_)));
    let integers =
        numbers && classes.iter().all(|v| v.as_f64().is_none_or(|n| Value::as_exact_int(n).is_some()));
    if classes.iter().all(|v| *v == Value::Null) {
        Arc::new(NullArray::new(labels.len()))
    } else if integers {
        let ints: Vec<Option<i64>> =
            classes.iter().map(|v| v.as_f64().and_then(Value::as_exact_int)).collect();
        Arc::new(rows.map(|i| ints[i]).collect::<Int64Array>())
    } else if numbers {
        let floats: Vec<Option<f64>> = classes.iter().map(Value::as_f64).collect();
        Arc::new(rows.map(|i| floats[i]).collect::<Float64Array>())
    } else {
        let text: Vec<Option<String>> = classes
            .iter()
            .map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .collect();
        Arc::new(rows.map(|i| text[i].as_deref()).collect::<StringArray>())
    }
}

/// The prediction as a record batch in the layout of [`Prediction::columns`]: labels through
/// [`labels_array`], numbers as `Float32`, an embedding as a fixed-size list of `Float32`.
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
            ColumnData::Labels(labels) => labels_array(labels),
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

#[cfg(test)]
mod tests {
    use arrow_array::{DictionaryArray, Int32Array, Int8Array, LargeStringArray, StringViewArray};

    use super::*;

    /// Every row of column `name` as its string (`None` for missing), as the models read it.
    fn strings(frame: &Frame<'_>, name: &str) -> Vec<Option<String>> {
        let c = frame.column(name).unwrap();
        (0..frame.rows())
            .map(|r| c.values.string(r).filter(|_| !c.is_missing(r)).map(str::to_owned))
            .collect()
    }

    #[test]
    fn numbers_and_strings_are_read_where_arrow_keeps_them() {
        let numbers = Float64Array::from(vec![1.0, f64::NAN, 3.0]);
        let strings = StringArray::from(vec![Some("red"), None, Some("blue")]);
        let (numbers_at, strings_at) = (numbers.values().as_ptr(), strings.values().as_ptr());
        let batch = RecordBatch::try_from_iter([
            ("x", Arc::new(numbers) as ArrayRef),
            ("s", Arc::new(strings) as ArrayRef),
        ])
        .unwrap();
        let columns = BatchColumns::new(&batch).unwrap();
        let frame = columns.frame().unwrap();
        match frame.column("x").unwrap().values {
            ColumnValues::F64(v) => assert_eq!(v.as_ptr(), numbers_at),
            other => panic!("x read as {other:?}"),
        }
        match frame.column("s").unwrap().values {
            ColumnValues::Utf8 { data, .. } => assert_eq!(data.as_ptr(), strings_at),
            other => panic!("s read as {other:?}"),
        }
    }

    #[test]
    fn every_string_layout_reads_the_same_values() {
        let values = vec![Some("red"), None, Some("ünïcode"), Some(""), Some("red")];
        let expected: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_owned)).collect();
        let dict_values = Arc::new(StringArray::from(vec![Some("red"), Some("ünïcode"), Some(""), None]));
        // Keys 0 and 3: a null key and a key to a null value are both missing.
        let keys = Int8Array::from(vec![Some(0), Some(3), Some(1), Some(2), Some(0)]);
        let dict = DictionaryArray::<Int8Type>::try_new(keys, dict_values).unwrap();
        let batch = RecordBatch::try_from_iter([
            ("utf8", Arc::new(StringArray::from(values.clone())) as ArrayRef),
            ("large", Arc::new(LargeStringArray::from(values.clone())) as ArrayRef),
            ("view", Arc::new(StringViewArray::from(values.clone())) as ArrayRef),
            ("dict", Arc::new(dict) as ArrayRef),
        ])
        .unwrap();
        for batch in [batch.clone(), batch.slice(1, 3)] {
            let columns = BatchColumns::new(&batch).unwrap();
            let frame = columns.frame().unwrap();
            let want = &expected[if batch.num_rows() == 3 { 1..4 } else { 0..5 }];
            for name in ["utf8", "large", "view", "dict"] {
                assert_eq!(strings(&frame, name), want, "{name}");
            }
        }
    }

    #[test]
    fn a_numeric_dictionary_reads_as_numbers() {
        let keys = Int8Array::from(vec![Some(1), None, Some(0)]);
        let dict =
            DictionaryArray::<Int8Type>::try_new(keys, Arc::new(Int32Array::from(vec![7, 9]))).unwrap();
        let batch = RecordBatch::try_from_iter([("d", Arc::new(dict) as ArrayRef)]).unwrap();
        let columns = BatchColumns::new(&batch).unwrap();
        let frame = columns.frame().unwrap();
        let ColumnValues::F64(v) = frame.column("d").unwrap().values else { panic!("not numbers") };
        assert_eq!((v[0], v[1].is_nan(), v[2]), (9.0, true, 7.0));
    }
}
