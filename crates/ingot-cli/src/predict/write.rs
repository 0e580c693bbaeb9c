//! Writing predictions beside the kept input columns, as CSV, JSONL or Parquet.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingot::{AtomicFile, Error, Prediction};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::read::{Chunk, Kept};
use super::Format;

/// Where the bytes go: a file that appears only when complete, or stdout.
pub(crate) enum Sink {
    File(AtomicFile),
    Stdout(std::io::Stdout),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
        }
    }
}

impl Sink {
    /// Flushes, and renames a file into place.
    pub(crate) fn commit(self) -> Result<(), Error> {
        match self {
            Sink::File(f) => f.commit(),
            Sink::Stdout(mut s) => s.flush().map_err(|e| Error::io("<stdout>", e)),
        }
    }
}

/// A prediction writer of one format.
pub(crate) enum Writer {
    Csv { w: csv::Writer<Sink>, header: bool },
    Jsonl { w: std::io::BufWriter<Sink> },
    Parquet { w: Option<ArrowWriter<Sink>>, sink: Option<Sink>, schema: Option<SchemaRef>, row_group: usize },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl Writer {
    /// A writer of `format` into `sink`; Parquet row groups hold `row_group` rows.
    pub(crate) fn new(format: Format, sink: Sink, row_group: usize) -> Writer {
        match format {
            Format::Csv => Writer::Csv { w: csv::WriterBuilder::new().from_writer(sink), header: false },
            Format::Jsonl => Writer::Jsonl { w: std::io::BufWriter::with_capacity(1 << 20, sink) },
            Format::Parquet => Writer::Parquet { w: None, sink: Some(sink), schema: None, row_group },
        }
    }

    /// Writes the rows `rows` (indices into `chunk`'s rows) with their predictions `p`.
    pub(crate) fn write(
        &mut self,
        kept: &[String],
        chunk: &Chunk,
        rows: Range<usize>,
        p: &Prediction,
        path: &Path,
    ) -> Result<(), Error> {
        match self {
            Writer::Csv { w, header } => {
                let csv_err = |e: csv::Error| Error::usage(format!("{}: {e}", path.display()));
                if !*header {
                    let mut names = kept.to_vec();
                    names.extend(ingot::io::csv::header(p));
                    w.write_record(&names).map_err(csv_err)?;
                    *header = true;
                }
                let mut fields = Vec::new();
                for (i, r) in rows.enumerate() {
                    fields.clear();
                    for k in 0..kept.len() {
                        fields.push(text(&kept_value(chunk, r, k, kept)?));
                    }
                    ingot::io::csv::fields(p, i, &mut fields);
                    w.write_record(&fields).map_err(csv_err)?;
                }
            }
            Writer::Jsonl { w } => {
                let json_err = |e: serde_json::Error| Error::io(path, e.into());
                for (i, r) in rows.enumerate() {
                    // The kept fields, then the prediction's own (serialized directly, so f32
                    // values keep their shortest form).
                    let row = serde_json::to_string(&p.row(i)).map_err(json_err)?;
                    let mut line = String::from("{");
                    for (k, name) in kept.iter().enumerate() {
                        line.push_str(&serde_json::to_string(name).map_err(json_err)?);
                        line.push(':');
                        line.push_str(
                            &serde_json::to_string(&kept_value(chunk, r, k, kept)?).map_err(json_err)?,
                        );
                        line.push(',');
                    }
                    match row.strip_prefix('{') {
                        Some("}") | None => {
                            if line.ends_with(',') {
                                line.pop();
                            }
                            line.push('}');
                        }
                        Some(rest) => line.push_str(rest),
                    }
                    w.write_all(line.as_bytes()).and_then(|()| w.write_all(b"\n")).map_err(io_error(path))?;
                }
            }
            Writer::Parquet { w, sink, schema, row_group } => {
                let predictions = ingot::io::arrow::prediction_batch(p)?;
                let mut fields: Vec<Field> = Vec::new();
                let mut arrays: Vec<ArrayRef> = Vec::new();
                for (k, name) in kept.iter().enumerate() {
                    let fixed = schema.as_ref().map(|s| s.field(k).data_type().clone());
                    let array = kept_array(chunk, rows.clone(), k, name, fixed.as_ref())?;
                    fields.push(Field::new(name, array.data_type().clone(), true));
                    arrays.push(array);
                }
                for (f, a) in predictions.schema().fields().iter().zip(predictions.columns()) {
                    fields.push(f.as_ref().clone().with_nullable(true));
                    arrays.push(Arc::clone(a));
                }
                let this = Arc::new(Schema::new(fields));
                let parquet_err =
                    |e: parquet::errors::ParquetError| Error::usage(format!("{}: {e}", path.display()));
                if w.is_none() {
                    let props =
                        WriterProperties::builder().set_max_row_group_row_count(Some(*row_group)).build();
                    let sink = sink.take().ok_or_else(|| Error::usage("parquet writer used after close"))?;
                    *w = Some(
                        ArrowWriter::try_new(sink, Arc::clone(&this), Some(props)).map_err(parquet_err)?,
                    );
                    *schema = Some(Arc::clone(&this));
                }
                let batch = RecordBatch::try_new(schema.clone().unwrap_or(this), arrays).map_err(|e| {
                    Error::usage(format!(
                        "{}: a chunk does not match the first chunk's columns: {e}",
                        path.display()
                    ))
                })?;
                if let Some(w) = w {
                    w.write(&batch).map_err(parquet_err)?;
                    w.flush().map_err(parquet_err)?;
                }
            }
        }
        Ok(())
    }

    /// Finishes the file (Parquet footer) and hands back the sink to commit.
    pub(crate) fn finish(self, path: &Path) -> Result<Sink, Error> {
        match self {
            Writer::Csv { w, .. } => w.into_inner().map_err(|e| Error::io(path, e.into_error())),
            Writer::Jsonl { w } => w.into_inner().map_err(|e| Error::io(path, e.into_error())),
            Writer::Parquet { w: Some(w), .. } => {
                w.into_inner().map_err(|e| Error::usage(format!("{}: {e}", path.display())))
            }
            // No chunk was written: an empty input. Write an empty file of the prediction
            // columns' schema? There is no prediction to take it from, so the file is empty.
            Writer::Parquet { w: None, sink, .. } => {
                sink.ok_or_else(|| Error::usage("parquet writer closed twice"))
            }
        }
    }
}

/// Kept column `k` of chunk row `r` as a JSON value.
pub(crate) fn kept_value(
    chunk: &Chunk,
    r: usize,
    k: usize,
    kept: &[String],
) -> Result<serde_json::Value, Error> {
    match chunk {
        Chunk::Records { kept: values, .. } => Ok(match &values[r][k] {
            Kept::Text(s) => serde_json::Value::String(s.clone()),
            Kept::Json(v) => v.clone(),
        }),
        Chunk::Arrow { batch, .. } => {
            let array = batch
                .column_by_name(&kept[k])
                .ok_or_else(|| Error::usage(format!("no column `{}`", kept[k])))?;
            arrow_json(array.as_ref(), r).ok_or_else(|| {
                Error::usage(format!(
                    "kept column `{}` has type {}; write Parquet to keep it",
                    kept[k],
                    array.data_type()
                ))
            })
        }
    }
}

/// A JSON value as a CSV field: strings as they are, `null` as an empty field.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Row `i` of `array` as JSON, for the types a kept column usually has.
pub(crate) fn arrow_json(array: &dyn Array, i: usize) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    if array.is_null(i) {
        return Some(J::Null);
    }
    Some(match array.data_type() {
        DataType::Int64 => J::from(array.as_primitive::<Int64Type>().value(i)),
        DataType::Int32 => J::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int16 => J::from(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int8 => J::from(array.as_primitive::<Int8Type>().value(i)),
        DataType::UInt64 => J::from(array.as_primitive::<UInt64Type>().value(i)),
        DataType::UInt32 => J::from(array.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt16 => J::from(array.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt8 => J::from(array.as_primitive::<UInt8Type>().value(i)),
        DataType::Float64 => J::from(array.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => J::from(array.as_primitive::<Float32Type>().value(i)),
        DataType::Boolean => J::from(array.as_boolean().value(i)),
        DataType::Utf8 => J::from(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => J::from(array.as_string::<i64>().value(i)),
        DataType::Utf8View => J::from(array.as_string_view().value(i)),
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary_opt()?;
            let key = *dict.normalized_keys().get(i)?;
            return arrow_json(dict.values().as_ref(), key);
        }
        _ => return None,
    })
}

/// Kept column `k` of chunk rows `rows` as an Arrow array: Parquet input passes its column
/// through; CSV fields are strings; JSON values take the type the first chunk gave the column
/// (`fixed`), or the narrowest of Int64, Float64, Boolean and Utf8 that holds them all.
fn kept_array(
    chunk: &Chunk,
    rows: Range<usize>,
    k: usize,
    name: &str,
    fixed: Option<&DataType>,
) -> Result<ArrayRef, Error> {
    let values: Vec<serde_json::Value> = match chunk {
        Chunk::Arrow { batch, .. } => {
            let array =
                batch.column_by_name(name).ok_or_else(|| Error::usage(format!("no column `{name}`")))?;
            return Ok(array.slice(rows.start, rows.len()));
        }
        Chunk::Records { kept, .. } => rows
            .map(|r| match &kept[r][k] {
                Kept::Text(s) => serde_json::Value::String(s.clone()),
                Kept::Json(v) => v.clone(),
            })
            .collect(),
    };
    let dtype = fixed.cloned().unwrap_or_else(|| {
        let present = || values.iter().filter(|v| !v.is_null());
        if values.iter().all(serde_json::Value::is_null) {
            DataType::Utf8
        } else if present().all(|v| v.is_i64()) {
            DataType::Int64
        } else if present().all(serde_json::Value::is_number) {
            DataType::Float64
        } else if present().all(serde_json::Value::is_boolean) {
            DataType::Boolean
        } else {
            DataType::Utf8
        }
    });
    let misfit = |v: &serde_json::Value| {
        Error::usage(format!("kept column `{name}` holds {v} where the first rows held {dtype}"))
    };
    Ok(match dtype {
        DataType::Int64 => Arc::new(
            values
                .iter()
                .map(|v| if v.is_null() { Ok(None) } else { v.as_i64().map(Some).ok_or_else(|| misfit(v)) })
                .collect::<Result<Int64Array, Error>>()?,
        ),
        DataType::Float64 => Arc::new(
            values
                .iter()
                .map(|v| if v.is_null() { Ok(None) } else { v.as_f64().map(Some).ok_or_else(|| misfit(v)) })
                .collect::<Result<Float64Array, Error>>()?,
        ),
        DataType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| if v.is_null() { Ok(None) } else { v.as_bool().map(Some).ok_or_else(|| misfit(v)) })
                .collect::<Result<BooleanArray, Error>>()?,
        ),
        _ => Arc::new(values.iter().map(|v| (!v.is_null()).then(|| text(v))).collect::<StringArray>()),
    })
}
