//! Reading CSV, JSONL and Parquet input in chunks of rows, with the columns to keep.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use arrow_array::RecordBatch;
use ingot::io::csv::{kinds, parse_cell, CellKind};
use ingot::{Error, Record, Signature, Value};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::Format;

/// A kept input value, as the input held it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kept {
    /// A CSV field, exactly as written.
    Text(String),
    /// A JSONL value.
    Json(serde_json::Value),
}

/// One chunk of input rows.
pub(crate) enum Chunk {
    /// CSV or JSONL rows: the records the model reads, the kept values of each, and each
    /// record's row number in the input. Rows that could not be read are in `bad`.
    Records { records: Vec<Record>, kept: Vec<Vec<Kept>>, rows: Vec<usize>, bad: Vec<(usize, Error)> },
    /// Parquet rows `first..first + batch.num_rows()`.
    Arrow { batch: RecordBatch, first: usize },
}

/// What to pass through beside the predictions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Keep {
    Columns(Vec<String>),
    All,
}

/// A source of chunks.
pub(crate) struct Reader {
    source: Source,
    /// Names of the kept columns, in output order.
    pub(crate) kept: Vec<String>,
    chunk_rows: usize,
    next_row: usize,
}

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn Read>>,
        headers: Vec<String>,
        kinds: Vec<Option<CellKind>>,
        kept: Vec<usize>,
    },
    Jsonl {
        lines: std::io::Lines<BufReader<Box<dyn Read>>>,
        line: usize,
        keep_all: bool,
        inputs: Vec<String>,
    },
    Parquet(ParquetRecordBatchReader),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl Reader {
    /// Opens `path` (`-` is stdin, not for Parquet) as `format`.
    pub(crate) fn open(
        path: &Path,
        format: Format,
        signature: &Signature,
        keep: &Keep,
        chunk_rows: usize,
        progress: &indicatif::ProgressBar,
    ) -> Result<Reader, Error> {
        let stdin = path.as_os_str() == "-";
        let kept_names = match keep {
            Keep::Columns(c) => c.clone(),
            Keep::All => Vec::new(),
        };
        let source = match format {
            Format::Parquet => {
                if stdin {
                    return Err(Error::usage("Parquet input must be a file, not stdin"));
                }
                let file = File::open(path).map_err(io_err(path))?;
                let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
                    Error::usage(format!("{}: not a readable Parquet file: {e}", path.display()))
                })?;
                let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
                let reader = builder
                    .with_batch_size(chunk_rows)
                    .build()
                    .map_err(|e| Error::usage(format!("{}: {e}", path.display())))?;
                let kept = resolve(&kept_names, keep, &names, path)?;
                return Ok(Reader { source: Source::Parquet(reader), kept, chunk_rows, next_row: 0 });
            }
            Format::Csv | Format::Jsonl => {
                let raw: Box<dyn Read> = if stdin {
                    Box::new(std::io::stdin().lock())
                } else {
                    let file = File::open(path).map_err(io_err(path))?;
                    if std::io::stderr().is_terminal() {
                        progress.set_length(file.metadata().map(|m| m.len()).unwrap_or(0));
                        progress.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                        progress.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{bar:40} {bytes}/{total_bytes} {msg} ({eta})",
                            )
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                        );
                    }
                    Box::new(progress.wrap_read(file))
                };
                if format == Format::Jsonl {
                    let lines = BufReader::with_capacity(1 << 20, raw).lines();
                    let inputs = signature.inputs.iter().map(|i| i.name.clone()).collect();
                    Source::Jsonl { lines, line: 0, keep_all: *keep == Keep::All, inputs }
                } else {
                    let mut reader = csv::ReaderBuilder::new()
                        .has_headers(true)
                        .from_reader(Box::new(BufReader::with_capacity(1 << 20, raw)) as Box<dyn Read>);
                    let headers: Vec<String> = reader
                        .headers()
                        .map_err(|e| Error::usage(format!("{}: {e}", path.display())))?
                        .iter()
                        .map(str::to_owned)
                        .collect();
                    let kept = resolve(&kept_names, keep, &headers, path)?;
                    let kept_idx = kept.iter().filter_map(|k| headers.iter().position(|h| h == k)).collect();
                    let kinds = kinds(signature, &headers);
                    return Ok(Reader {
                        source: Source::Csv { reader, headers, kinds, kept: kept_idx },
                        kept,
                        chunk_rows,
                        next_row: 0,
                    });
                }
            }
        };
        Ok(Reader { source, kept: kept_names, chunk_rows, next_row: 0 })
    }

    /// The next chunk of at most `chunk_rows` rows, or `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<Chunk>, Error> {
        let first = self.next_row;
        let chunk = match &mut self.source {
            Source::Parquet(reader) => match reader.next() {
                None => return Ok(None),
                Some(batch) => {
                    let batch =
                        batch.map_err(|e| Error::usage(format!("reading Parquet rows from {first}: {e}")))?;
                    self.next_row += batch.num_rows();
                    Chunk::Arrow { batch, first }
                }
            },
            Source::Csv { reader, headers, kinds, kept } => {
                let (mut records, mut kept_rows, mut rows, mut bad) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let mut fields = csv::StringRecord::new();
                while records.len() + bad.len() < self.chunk_rows {
                    let row = self.next_row;
                    match reader.read_record(&mut fields) {
                        Ok(false) => break,
                        Ok(true) => {}
                        Err(e) if e.is_io_error() => return Err(Error::usage(format!("row {row}: {e}"))),
                        Err(e) => {
                            self.next_row += 1;
                            bad.push((
                                row,
                                Error::MalformedRow { row, detail: format!("not a CSV record: {e}") },
                            ));
                            continue;
                        }
                    }
                    self.next_row += 1;
                    let parsed = headers
                        .iter()
                        .zip(fields.iter())
                        .zip(kinds.iter())
                        .filter_map(|((name, field), kind)| {
                            kind.map(|k| parse_cell(field, k, row, name).map(|v| (name.clone(), v)))
                        })
                        .collect::<Result<Record, Error>>();
                    match parsed {
                        Ok(record) => {
                            records.push(record);
                            kept_rows.push(
                                kept.iter()
                                    .map(|&i| Kept::Text(fields.get(i).unwrap_or("").to_owned()))
                                    .collect(),
                            );
                            rows.push(row);
                        }
                        Err(e) => bad.push((row, e)),
                    }
                }
                if records.is_empty() && bad.is_empty() {
                    return Ok(None);
                }
                Chunk::Records { records, kept: kept_rows, rows, bad }
            }
            Source::Jsonl { lines, line, keep_all, inputs } => {
                let (mut records, mut kept_rows, mut rows, mut bad) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                while records.len() + bad.len() < self.chunk_rows {
                    let Some(text) = lines.next() else { break };
                    *line += 1;
                    let text = text.map_err(|e| Error::usage(format!("line {line}: {e}")))?;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let row = self.next_row;
                    self.next_row += 1;
                    let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(&text)
                    {
                        Ok(o) => o,
                        Err(e) => {
                            let detail = format!("line {line} is not a JSON object of column values: {e}");
                            bad.push((row, Error::MalformedRow { row, detail }));
                            continue;
                        }
                    };
                    if *keep_all && self.kept.is_empty() {
                        self.kept = object.keys().cloned().collect();
                    }
                    match record_of(&object, inputs, row) {
                        Ok(record) => {
                            kept_rows.push(
                                self.kept
                                    .iter()
                                    .map(|k| Kept::Json(object.get(k).cloned().unwrap_or_default()))
                                    .collect(),
                            );
                            records.push(record);
                            rows.push(row);
                        }
                        Err(e) => bad.push((row, e)),
                    }
                }
                if records.is_empty() && bad.is_empty() {
                    return Ok(None);
                }
                Chunk::Records { records, kept: kept_rows, rows, bad }
            }
        };
        Ok(Some(chunk))
    }

    /// Rows read so far.
    pub(crate) fn rows_read(&self) -> usize {
        self.next_row
    }
}

/// The kept columns: those asked for (each must exist in `available`), or all of them.
fn resolve(asked: &[String], keep: &Keep, available: &[String], path: &Path) -> Result<Vec<String>, Error> {
    if *keep == Keep::All {
        return Ok(available.to_vec());
    }
    match asked.iter().find(|k| !available.contains(k)) {
        Some(missing) => Err(Error::usage(format!(
            "--keep `{missing}`: {} has no such column (it has {})",
            path.display(),
            available.join(", ")
        ))),
        None => Ok(asked.to_vec()),
    }
}

/// The model's input columns of a JSON object as a record: `null`, numbers and strings;
/// anything else is a wrong type naming the row and column. Other keys are not read.
fn record_of(
    object: &serde_json::Map<String, serde_json::Value>,
    inputs: &[String],
    row: usize,
) -> Result<Record, Error> {
    object
        .iter()
        .filter(|(k, _)| inputs.contains(k))
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
                serde_json::Value::String(s) => Value::String(s.clone()),
                other => {
                    let got = match other {
                        serde_json::Value::Bool(_) => "a boolean",
                        serde_json::Value::Array(_) => "an array",
                        _ => "an object",
                    };
                    return Err(Error::WrongType {
                        row,
                        column: k.clone(),
                        expected: "null, a number or a string",
                        got: got.into(),
                    });
                }
            };
            Ok((k.clone(), value))
        })
        .collect()
}
