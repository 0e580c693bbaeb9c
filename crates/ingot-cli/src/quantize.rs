//! `ingot quantize`: a reduced-precision copy of a bundle and its accuracy report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ingot::quantize::{quantize, Agreement, Calibration, Precision, QuantizeOptions, Report};
use ingot::{Error, Model, Record};

/// Arguments of `ingot quantize`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The source `.ingot` file.
    model: PathBuf,
    /// The new `.ingot` file.
    #[arg(long, short)]
    output: PathBuf,
    /// Precision of the reduced weights: int8, f16 or bf16.
    #[arg(long = "to", value_parser = parse_precision)]
    precision: Precision,
    /// Calibration data the accuracy is measured on: for a text model a text file, one sentence
    /// a line; for a tabular model a CSV (with a header) or JSONL file of rows. Default: the
    /// bundle's reference sample.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Layers to keep in f32, by node or weight name (comma-separated or repeated).
    #[arg(long = "keep-f32", value_delimiter = ',')]
    keep_f32: Vec<String>,
    /// Keep the most sensitive layers in f32 until every calibration row's cosine to the source
    /// is at least MIN_COSINE.
    #[arg(long, value_name = "MIN_COSINE")]
    auto: Option<f64>,
    /// Version of the new bundle [default: the source's with +int8, +f16 or +bf16].
    #[arg(long)]
    version: Option<String>,
    /// Skip the per-layer sensitivity (one evaluation per layer).
    #[arg(long)]
    no_sensitivity: bool,
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    Precision::parse(s).ok_or_else(|| format!("`{s}`: expected int8, f16 or bf16"))
}

/// Writes the reduced bundle and prints the report.
pub(crate) fn run(args: &Args) -> Result<(), Error> {
    let source = Model::load(&args.model)?;
    let data = match &args.data {
        Some(path) => read_data(&source, path)?,
        None => Calibration::from_reference(&source)?,
    };
    let options = QuantizeOptions {
        precision: args.precision,
        keep_f32: args.keep_f32.clone(),
        min_cosine: args.auto,
        version: args.version.clone(),
        per_layer: !args.no_sensitivity,
    };
    let out = quantize(&source, &data, &options)?;
    ingot::format::write_bytes(&args.output, &out.bytes)?;
    print!("{}", render(&out.report, &args.model, &args.output));
    Ok(())
}

/// Calibration rows from a file: sentences for a text model, CSV or JSONL rows otherwise.
fn read_data(model: &Model, path: &Path) -> Result<Calibration, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if matches!(model.empty_input(), ingot::Input::Texts(_)) {
        return Ok(Calibration::texts_from_lines(&text));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let at = |line: usize, e: &dyn std::fmt::Display| Error::usage(format!("{}:{line}: {e}", path.display()));
    let records = match ext.as_str() {
        "jsonl" | "ndjson" | "json" => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str::<Record>(l).map_err(|e| at(i + 1, &e)))
            .collect::<Result<Vec<_>, _>>()?,
        "csv" => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers: Vec<String> =
                reader.headers().map_err(|e| at(1, &e))?.iter().map(str::to_owned).collect();
            let kinds = ingot::io::csv::kinds(model.signature(), &headers);
            let mut records = Vec::new();
            for (row, fields) in reader.records().enumerate() {
                let fields = fields.map_err(|e| at(row + 2, &e))?;
                let mut record = Record::new();
                for ((name, kind), field) in headers.iter().zip(&kinds).zip(fields.iter()) {
                    if let Some(kind) = kind {
                        record.insert(name.clone(), ingot::io::csv::parse_cell(field, *kind, row, name)?);
                    }
                }
                records.push(record);
            }
            records
        }
        _ => {
            return Err(Error::usage(format!("{}: calibration rows must be .csv or .jsonl", path.display())))
        }
    };
    Ok(Calibration::Records(records))
}

/// The report as printed: sizes, the agreement, then each layer.
fn render(report: &Report, source: &Path, output: &Path) -> String {
    let mut out = String::new();
    let (from, to) = report.bytes;
    let _ = writeln!(
        out,
        "wrote {} ({} {}, {} bytes = {:.1} % of {})",
        output.display(),
        report.precision.name(),
        report.version,
        to,
        100.0 * to as f64 / from.max(1) as f64,
        source.display()
    );
    let _ = writeln!(out, "accuracy against the source on {}:", report.calibration);
    let _ = writeln!(out, "  {}", agreement_line(&report.agreement));
    let reduced = report.layers.iter().filter(|l| l.reduced).count();
    let _ = writeln!(
        out,
        "layers ({reduced} of {} reduced; sensitivity = that layer alone reduced):",
        report.layers.len()
    );
    for l in &report.layers {
        let state = if l.reduced { report.precision.name() } else { "f32" };
        let sensitivity = l.sensitivity.as_ref().map(agreement_line).unwrap_or_default();
        let _ = writeln!(out, "  {:<28} {:<5} [{}×{}]  {sensitivity}", l.node, state, l.shape[0], l.shape[1]);
    }
    out
}

fn agreement_line(a: &Agreement) -> String {
    let mut line = format!(
        "cosine min {:.6} mean {:.6}, max abs error {:.3e}",
        a.min_cosine, a.mean_cosine, a.max_abs_error
    );
    if let Some(l) = a.label_agreement {
        let _ = write!(line, ", labels {:.2} %", 100.0 * l);
    }
    if let Some(p) = a.max_probability_error {
        let _ = write!(line, ", max probability error {p:.3e}");
    }
    line
}
