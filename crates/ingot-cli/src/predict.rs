//! `ingot predict`: stream a CSV/JSONL file through a model in fixed-size chunks.
//!
//! Memory stays constant whatever the input size: one chunk of rows is parsed, predicted and
//! written before the next is read. The output goes to a temporary file renamed into place at
//! the end, so a failed run never leaves a partial output.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use ingot::format::ElementType;
use ingot::{Error, Model, Prediction, Record, Value};

/// A file format for `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// One `predict` invocation.
pub(crate) struct Job {
    pub(crate) model: PathBuf,
    pub(crate) input: PathBuf,
    pub(crate) output: PathBuf,
    pub(crate) input_format: Option<Format>,
    pub(crate) output_format: Option<Format>,
    pub(crate) chunk_rows: usize,
}

fn usage(what: String) -> Error {
    Error::Unsupported { what }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io { path: path.to_path_buf(), source: e }
}

/// Runs the job.
pub(crate) fn run(job: &Job) -> Result<(), Error> {
    let model = Model::load(&job.model)?;
    let stdin = job.input.as_os_str() == "-";
    let in_format = job.input_format.or_else(|| Format::from_path(&job.input)).ok_or_else(|| {
        usage(format!("cannot tell the format of `{}`; pass --input-format", job.input.display()))
    })?;
    let stdout = job.output.as_os_str() == "-";
    let out_format = job.output_format.or_else(|| Format::from_path(&job.output)).unwrap_or(Format::Jsonl);
    let chunk_rows = job.chunk_rows.max(1);

    let progress = indicatif::ProgressBar::hidden();
    let reader: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(&job.input).map_err(io_err(&job.input))?;
        if std::io::stderr().is_terminal() {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            progress.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            progress.set_length(len);
            progress.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
        }
        Box::new(progress.wrap_read(file))
    };
    let reader = BufReader::with_capacity(1 << 20, reader);

    let (sink, tmp): (Box<dyn Write>, Option<tempfile::NamedTempFile>) = if stdout {
        (Box::new(std::io::stdout().lock()), None)
    } else {
        let dir = match job.output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp =
            tempfile::Builder::new().prefix(".ingot-predict-").tempfile_in(&dir).map_err(io_err(&dir))?;
        let file = tmp.reopen().map_err(io_err(tmp.path()))?;
        (Box::new(file), Some(tmp))
    };
    let mut out =
        Output { w: BufWriter::with_capacity(1 << 20, sink), format: out_format, wrote_header: false };

    // Both formats become one stream of records, predicted `chunk_rows` at a time.
    let records: Box<dyn Iterator<Item = Result<Record, Error>> + '_> = match in_format {
        Format::Jsonl => Box::new(reader.lines().enumerate().filter_map(|(line_no, line)| match line {
            Err(e) => Some(Err(Error::Io { path: job.input.clone(), source: e })),
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(serde_json::from_str(&line).map_err(|e| {
                usage(format!(
                    "{} line {}: not a JSON object of column values: {e}",
                    job.input.display(),
                    line_no + 1
                ))
            })),
        })),
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
            let headers = csv.headers().map_err(|e| usage(format!("{}: {e}", job.input.display())))?.clone();
            let numeric: Vec<Option<bool>> = headers
                .iter()
                .map(|h| {
                    model
                        .signature()
                        .inputs
                        .iter()
                        .find(|i| i.name == h)
                        .map(|i| i.dtype != ElementType::String)
                })
                .collect();
            Box::new(csv.into_records().enumerate().map(move |(r, record)| {
                let record = record.map_err(|e| usage(format!("{}: {e}", job.input.display())))?;
                let mut row = Record::new();
                for ((name, field), numeric) in headers.iter().zip(record.iter()).zip(&numeric) {
                    let Some(numeric) = numeric else { continue };
                    row.insert(name.to_owned(), parse_cell(field, *numeric, r, name)?);
                }
                Ok(row)
            }))
        }
    };
    let mut rows = 0usize;
    let mut chunk = Vec::with_capacity(chunk_rows);
    let mut records = records.peekable();
    while let Some(record) = records.next() {
        chunk.push(record?);
        if chunk.len() == chunk_rows || records.peek().is_none() {
            let p = model.predict_records(&chunk).map_err(|e| e.with_row_offset(rows))?;
            out.write(&p).map_err(io_err(&job.output))?;
            rows += chunk.len();
            chunk.clear();
        }
    }
    out.w.flush().map_err(io_err(&job.output))?;
    drop(out);
    if let Some(tmp) = tmp {
        tmp.persist(&job.output).map_err(|e| Error::Io { path: job.output.clone(), source: e.error })?;
    }
    progress.finish_and_clear();
    if !stdout {
        eprintln!("predicted {rows} rows -> {}", job.output.display());
    }
    Ok(())
}

/// Converts one CSV field: empty (or NaN/NA) is missing; numeric columns must parse as numbers.
fn parse_cell(field: &str, numeric: bool, row: usize, column: &str) -> Result<Value, Error> {
    let t = field.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    if !numeric {
        return Ok(Value::String(field.to_owned()));
    }
    if matches!(t, "nan" | "NaN" | "NA" | "null") {
        return Ok(Value::Null);
    }
    t.parse::<f64>().map(Value::Number).map_err(|_| Error::WrongType {
        row,
        column: column.to_owned(),
        expected: "a number",
        got: format!("{field:?}"),
    })
}

struct Output<W: Write> {
    w: BufWriter<W>,
    format: Format,
    wrote_header: bool,
}

impl<W: Write> Output<W> {
    fn write(&mut self, p: &Prediction) -> std::io::Result<()> {
        match self.format {
            Format::Jsonl => {
                for i in 0..p.rows {
                    serde_json::to_writer(&mut self.w, &p.row(i))?;
                    self.w.write_all(b"\n")?;
                }
            }
            Format::Csv => {
                if !self.wrote_header {
                    writeln!(self.w, "{}", csv_header(p).join(","))?;
                    self.wrote_header = true;
                }
                for i in 0..p.rows {
                    let mut fields: Vec<String> = Vec::new();
                    if let Some(labels) = &p.labels {
                        fields.push(csv_field(&labels[i]));
                        if let Some(probs) = &p.probabilities {
                            fields.extend(probs.row(i).iter().map(f32::to_string));
                        }
                    } else {
                        let m = p.values.as_ref().unwrap_or(&p.scores);
                        fields.extend(m.row(i).iter().map(f32::to_string));
                    }
                    writeln!(self.w, "{}", fields.join(","))?;
                }
            }
        }
        Ok(())
    }
}

fn csv_field(v: &Value) -> String {
    match v {
        Value::String(s) if s.contains([',', '"', '\n']) => {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_header(p: &Prediction) -> Vec<String> {
    let plain = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if p.labels.is_some() {
        let mut h = vec!["label".to_string()];
        if let (Some(_), Some(classes)) = (&p.probabilities, &p.classes) {
            h.extend(classes.iter().map(|c| csv_field(&Value::String(format!("proba_{}", plain(c))))));
        }
        h
    } else if let Some(values) = &p.values {
        match &p.targets {
            Some(t) if values.cols() > 1 => t.iter().map(|t| csv_field(&Value::String(t.clone()))).collect(),
            _ if values.cols() == 1 => vec!["value".into()],
            _ => (0..values.cols()).map(|i| format!("value_{i}")).collect(),
        }
    } else {
        (0..p.scores.cols()).map(|i| format!("score_{i}")).collect()
    }
}
