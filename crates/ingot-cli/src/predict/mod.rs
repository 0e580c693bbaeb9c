//! `ingot predict`: batch scoring of a CSV, JSONL or Parquet file, streamed in chunks.
//!
//! Memory stays constant whatever the input size: one chunk of rows is read, predicted and
//! written before the next is read (Parquet: one row group per chunk). Kept columns (`--keep`)
//! pass through beside the predictions. Every output — predictions, rejects, the run record —
//! goes to a temporary file renamed into place at the end, so a failed run leaves nothing.

mod read;
mod write;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ingot::{AtomicFile, Error, Input, Model, Prediction, Task};

use read::{Chunk, Keep, Reader};
use write::{Sink, Writer};

use crate::load::LoadArgs;

/// A file format for `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// What to do with a row whose input is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OnError {
    /// Stop at the first bad row, naming it; write nothing.
    Fail,
    /// Write bad rows, with their error, to the rejects file and go on.
    Skip,
}

/// Arguments of `ingot predict`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The `.ingot` file.
    model: PathBuf,
    /// Input path (`.csv`, `.jsonl` or `.parquet`), or `-` for stdin (CSV or JSONL).
    #[arg(long, short)]
    input: PathBuf,
    /// Output path (`.csv`, `.jsonl` or `.parquet`), or `-` for stdout (CSV or JSONL).
    #[arg(long, short, default_value = "-")]
    output: PathBuf,
    /// Input format when it cannot be told from the extension.
    #[arg(long, value_enum)]
    input_format: Option<Format>,
    /// Output format when it cannot be told from the extension (default jsonl).
    #[arg(long, value_enum)]
    output_format: Option<Format>,
    /// Rows per predict call [default: 4096; 256 for text models].
    #[arg(long)]
    chunk_rows: Option<usize>,
    /// Input columns to write beside the predictions (an id, say), comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "keep_all")]
    keep: Vec<String>,
    /// Write every input column beside the predictions.
    #[arg(long)]
    keep_all: bool,
    /// What a row whose input is invalid does: stop the run, or go to the rejects file.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    on_error: OnError,
    /// Rejects file for `--on-error skip` (JSONL) [default: OUTPUT.rejects.jsonl].
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Run record (JSON) [default: OUTPUT.run.json; none when writing to stdout].
    #[arg(long)]
    run_record: Option<PathBuf>,
    #[command(flatten)]
    load: LoadArgs,
}

/// `PATH` with `suffix` appended to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Runs the job.
pub(crate) fn run(args: &Args) -> Result<(), Error> {
    let started = std::time::SystemTime::now();
    let clock = Instant::now();
    if args.chunk_rows == Some(0) {
        return Err(Error::usage("--chunk-rows must be at least 1"));
    }
    let options = args.load.options()?;
    let model = Model::load_with(&args.model, &options)?;
    let stdin = args.input.as_os_str() == "-";
    let stdout = args.output.as_os_str() == "-";
    let in_format = args.input_format.or_else(|| Format::from_path(&args.input)).ok_or_else(|| {
        Error::usage(format!("cannot tell the format of `{}`; pass --input-format", args.input.display()))
    })?;
    let out_format = args.output_format.or_else(|| Format::from_path(&args.output)).unwrap_or(Format::Jsonl);
    if stdout && out_format == Format::Parquet {
        return Err(Error::usage("Parquet output must be a file, not stdout"));
    }
    let default_chunk = if model.task() == Task::Embedding || model.input_width() == 0 { 256 } else { 4096 };
    let chunk_rows = args.chunk_rows.unwrap_or(default_chunk);
    let keep = if args.keep_all { Keep::All } else { Keep::Columns(args.keep.clone()) };
    let rejects_path = match (args.on_error, &args.rejects) {
        (OnError::Fail, _) => None,
        (OnError::Skip, Some(p)) => Some(p.clone()),
        (OnError::Skip, None) if stdout => {
            return Err(Error::usage("--on-error skip with output to stdout needs --rejects PATH"))
        }
        (OnError::Skip, None) => Some(beside(&args.output, ".rejects.jsonl")),
    };
    let record_path =
        args.run_record.clone().or_else(|| (!stdout).then(|| beside(&args.output, ".run.json")));

    let progress = indicatif::ProgressBar::hidden();
    let mut reader = Reader::open(&args.input, in_format, model.signature(), &keep, chunk_rows, &progress)?;
    let sink =
        if stdout { Sink::Stdout(std::io::stdout()) } else { Sink::File(AtomicFile::create(&args.output)?) };
    let mut writer = Writer::new(out_format, sink, chunk_rows);
    let mut rejects = rejects_path.as_ref().map(AtomicFile::create).transpose()?;
    let (mut predicted, mut rejected) = (0usize, 0usize);
    let mut columns_checked = false;

    while let Some(mut chunk) = reader.next_chunk()? {
        let (parts, mut bad) = score(&model, &mut chunk)?;
        if args.on_error == OnError::Fail && !bad.is_empty() {
            return Err(bad.swap_remove(0).1);
        }
        for (rows, p) in &parts {
            if !columns_checked {
                check_names(&reader.kept, p)?;
                columns_checked = true;
            }
            writer.write(&reader.kept, &chunk, rows.clone(), p, &args.output)?;
            predicted += rows.len();
        }
        if let Some(file) = rejects.as_mut() {
            for (row, e) in &bad {
                write_reject(file, &chunk, *row, e)?;
            }
        }
        rejected += bad.len();
    }
    if predicted == 0 {
        // No row was predicted: still write a well-formed, empty output (CSV header, Parquet
        // schema) from a zero-row prediction.
        let empty = model.predict(model.empty_input())?;
        let chunk =
            Chunk::Records { records: Vec::new(), kept: Vec::new(), rows: Vec::new(), bad: Vec::new() };
        writer.write(&reader.kept, &chunk, 0..0, &empty, &args.output)?;
    }
    let rows_read = reader.rows_read();
    let sink = writer.finish(&args.output)?;
    if let Some(file) = rejects {
        file.commit()?;
    }
    sink.commit()?;
    progress.finish_and_clear();
    if let Some(path) = &record_path {
        let seconds = clock.elapsed().as_secs_f64();
        let record = serde_json::json!({
            "model": {
                "name": model.metadata().name,
                "version": model.metadata().version,
                "checksum": model.manifest().checksum,
                "path": args.model.display().to_string(),
            },
            "input": { "path": if stdin { "-".to_string() } else { args.input.display().to_string() }, "format": in_format.name() },
            "output": { "path": args.output.display().to_string(), "format": out_format.name() },
            "rows": { "read": rows_read, "predicted": predicted, "rejected": rejected },
            "rejects": rejects_path.as_ref().map(|p| p.display().to_string()),
            "kept": reader.kept,
            "started": rfc3339(started),
            "seconds": seconds,
            "ingot": env!("CARGO_PKG_VERSION"),
            "threads": model.threads(),
            "isa": ingot::isa_level().name(),
        });
        let mut file = AtomicFile::create(path)?;
        let text = serde_json::to_string_pretty(&record).unwrap_or_default();
        file.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))?;
        file.commit()?;
    }
    if !stdout {
        eprintln!(
            "predicted {predicted} rows -> {}{}",
            args.output.display(),
            if rejected > 0 {
                format!(
                    " ({rejected} rejected -> {})",
                    rejects_path.as_deref().unwrap_or(Path::new("")).display()
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// Predicts one chunk around its bad rows: the predicted runs (indices into the chunk's rows)
/// and every bad row with its error, both in row order; rows are numbered across the input.
type Scored = (Vec<(std::ops::Range<usize>, Prediction)>, Vec<(usize, Error)>);

fn score(model: &Model, chunk: &mut Chunk) -> Result<Scored, Error> {
    let mut parts = Vec::new();
    let mut bad = Vec::new();
    // A row error's number counts from the start of the run that was predicted; make it the
    // row's number in the whole input.
    let renumber = |row: usize, e: Error| {
        let shift = row.saturating_sub(e.row().unwrap_or(row));
        (row, e.with_row_offset(shift))
    };
    match chunk {
        Chunk::Records { records, rows, bad: unread, .. } => {
            ingot::io::predict_around_errors(
                records.len(),
                |r| model.predict_records(&records[r]),
                |r, p| {
                    parts.push((r, p));
                    Ok(())
                },
                |i, e| {
                    bad.push(renumber(rows[i], e));
                    Ok(())
                },
            )?;
            bad.append(unread);
            bad.sort_by_key(|(row, _)| *row);
        }
        Chunk::Arrow { batch, first } => {
            let columns = ingot::io::arrow::BatchColumns::new(batch)?;
            let frame = columns.frame()?;
            ingot::io::predict_around_errors(
                frame.rows(),
                |r| model.predict(Input::Frame(&frame.slice(r))),
                |r, p| {
                    parts.push((r, p));
                    Ok(())
                },
                |i, e| {
                    bad.push(renumber(*first + i, e));
                    Ok(())
                },
            )?;
        }
    }
    Ok((parts, bad))
}

/// Kept columns must not take a prediction column's name.
fn check_names(kept: &[String], p: &Prediction) -> Result<(), Error> {
    let taken: Vec<String> = p.columns().into_iter().map(|c| c.name).collect();
    match kept.iter().find(|k| taken.contains(k) || *k == "probabilities" || *k == "embedding") {
        Some(k) => Err(Error::usage(format!("kept column `{k}` has the name of a prediction column"))),
        None => Ok(()),
    }
}

/// One rejected row as a JSON line: its row number, error code and message, and its input.
fn write_reject(file: &mut AtomicFile, chunk: &Chunk, row: usize, e: &Error) -> Result<(), Error> {
    let input = match chunk {
        Chunk::Records { records, rows, .. } => {
            rows.iter().position(|r| *r == row).and_then(|i| serde_json::to_value(&records[i]).ok())
        }
        Chunk::Arrow { batch, first } => {
            let i = row - first;
            let schema = batch.schema();
            let object: serde_json::Map<String, serde_json::Value> = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, a)| (f.name().clone(), write::arrow_json(a.as_ref(), i).unwrap_or_default()))
                .collect();
            Some(serde_json::Value::Object(object))
        }
    };
    let line = serde_json::json!({ "row": row, "code": e.code(), "message": e.to_string(), "input": input });
    let path = file.path().to_path_buf();
    writeln!(file, "{line}").map_err(|err| Error::io(path, err))
}

/// `t` as an RFC 3339 UTC timestamp, to the second.
fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_581_000);
        assert_eq!(rfc3339(t), "2025-12-01T09:23:20Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
