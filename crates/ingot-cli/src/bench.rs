//! `ingot bench`: load time, per-call latency percentiles and throughput at given batch sizes.
//!
//! Rows come from `--input` (`.txt`: one text per line, for text models; `.jsonl`: records) or
//! from the bundle's reference sample. A batch of size `b` is `b` consecutive rows; successive
//! calls walk through the whole set, so a batch-1 median is the median over the set.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ingot::format::ElementType;
use ingot::{Error, Input, Model, Record, Value};

use crate::load::LoadArgs;

/// Arguments of `ingot bench`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The `.ingot` file.
    model: PathBuf,
    /// Batch sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32, 1024, 10000])]
    batch: Vec<usize>,
    /// Seconds of measurement per batch size.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Request form: `auto` (dense when every column is numeric), `dense` or `records`.
    #[arg(long, value_enum, default_value_t = Form::Auto)]
    form: Form,
    /// Rows to use: `.txt` (one text per line) or `.jsonl` records; default: the bundle's
    /// reference sample.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    load: LoadArgs,
}

/// How bench rows are presented to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Form {
    /// Dense if the model's columns are all numeric, records otherwise.
    Auto,
    /// A dense f32 matrix in signature order.
    Dense,
    /// Named records.
    Records,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn usage(what: String) -> Error {
    Error::usage(what)
}

/// The benchmark rows: texts (a `.txt` file) or records.
enum Rows {
    Texts(Vec<String>),
    Records(Vec<Record>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Texts(t) => t.len(),
            Rows::Records(r) => r.len(),
        }
    }
}

/// The benchmark rows.
fn rows(args: &Args, model: &Model) -> Result<Rows, Error> {
    let Some(path) = &args.input else {
        let sample = model.manifest().reference.as_ref().map(|r| r.sample.clone()).unwrap_or_default();
        if sample.is_empty() {
            return Err(usage("the bundle has no reference sample rows; pass --input".into()));
        }
        return Ok(Rows::Records(sample));
    };
    let rows = match path.extension().and_then(|e| e.to_str()) {
        Some("txt") => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            Rows::Texts(text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
        }
        Some("jsonl") => Rows::Records(crate::read_records(path)?),
        _ => return Err(usage(format!("{}: expected a .txt or .jsonl file", path.display()))),
    };
    if rows.len() == 0 {
        return Err(usage(format!("{} has no rows", path.display())));
    }
    Ok(rows)
}

/// Runs the benchmark.
pub(crate) fn run(args: &Args) -> Result<(), Error> {
    if let Some(b) = args.batch.iter().find(|&&b| b == 0) {
        return Err(usage(format!("--batch {b}: batch sizes must be at least 1")));
    }
    let options = args.load.options()?;
    let mut loads = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let m = Model::load_with(&args.model, &options)?;
        loads.push(t.elapsed());
        drop(m);
    }
    loads.sort();
    let model = Model::load_with(&args.model, &options)?;
    let set = rows(args, &model)?;
    let columns = &model.signature().inputs;
    let numeric = columns.iter().all(|c| c.dtype != ElementType::String);
    let form = match (args.form, &set) {
        (_, Rows::Texts(_)) => Form::Records,
        (Form::Auto, _) if numeric => Form::Dense,
        (Form::Auto, _) => Form::Records,
        (Form::Dense, _) if !numeric => {
            return Err(usage("dense bench on a model with string columns; use --form records".into()))
        }
        (other, _) => other,
    };
    let dense_row = |r: &Record| -> Vec<f32> {
        columns
            .iter()
            .map(|c| r.get(&c.name).and_then(Value::as_f64).map_or(f32::NAN, |v| v as f32))
            .collect()
    };

    /// One call's rows, prepared before timing.
    enum Batch {
        Texts(Vec<String>),
        Records(Vec<Record>),
        Dense(Vec<f32>),
    }
    let mut results = Vec::new();
    for &batch in &args.batch {
        let batches: Vec<Batch> = (0..set.len().div_ceil(batch).max(1))
            .map(|c| {
                let take = |n: usize| (0..batch).map(move |i| (c * batch + i) % n);
                match &set {
                    Rows::Texts(t) => Batch::Texts(take(t.len()).map(|i| t[i].clone()).collect()),
                    Rows::Records(r) if form == Form::Dense => {
                        Batch::Dense(take(r.len()).flat_map(|i| dense_row(&r[i])).collect())
                    }
                    Rows::Records(r) => Batch::Records(take(r.len()).map(|i| r[i].clone()).collect()),
                }
            })
            .collect();
        let call = |i: usize| match &batches[i % batches.len()] {
            Batch::Dense(dense) => model.predict_dense(dense, batch, columns.len()),
            Batch::Records(records) => model.predict_records(records),
            Batch::Texts(texts) => {
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                model.predict(Input::Texts(&texts))
            }
        };
        let warm = Instant::now();
        let mut i = 0;
        while warm.elapsed() < Duration::from_millis(200) {
            call(i)?;
            i += 1;
        }
        let mut times = Vec::new();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < args.seconds || times.len() < batches.len().clamp(5, 1000) {
            let t = Instant::now();
            std::hint::black_box(call(times.len())?);
            times.push(t.elapsed());
        }
        let total: Duration = times.iter().sum();
        times.sort();
        let rows_per_s = (batch * times.len()) as f64 / total.as_secs_f64();
        results.push(serde_json::json!({
            "batch": batch,
            "calls": times.len(),
            "p50_us": percentile(&times, 0.5).as_secs_f64() * 1e6,
            "p90_us": percentile(&times, 0.9).as_secs_f64() * 1e6,
            "p99_us": percentile(&times, 0.99).as_secs_f64() * 1e6,
            "rows_per_s": rows_per_s,
        }));
    }
    let load_us = percentile(&loads, 0.5).as_secs_f64() * 1e6;
    let threads = model.threads();
    let isa = ingot::isa_level().name();
    let (device, family) = model.runs_on();
    let mut kernels: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for path in model.linear_kernels() {
        *kernels.entry(path).or_default() += 1;
    }
    let form =
        if matches!(set, Rows::Texts(_)) { "texts".to_string() } else { format!("{form:?}").to_lowercase() };
    if args.json {
        let out = serde_json::json!({
            "model": model.metadata().name, "version": model.metadata().version,
            "form": form, "threads": threads, "isa": isa, "device": device, "kernels": family,
            "rows": set.len(),
            "linear_kernels": kernels, "load_p50_us": load_us, "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    let card = model.metadata();
    println!(
        "{} {}  form={form}  rows={}  threads={threads}  isa={isa}  device={device}  kernels={family}  \
         load p50 {load_us:.1} µs",
        card.name,
        card.version,
        set.len()
    );
    if !kernels.is_empty() {
        let list: Vec<String> = kernels.iter().map(|(path, n)| format!("{n} × {path}")).collect();
        println!("linear layers: {}", list.join(", "));
    }
    println!(
        "{:>8} {:>9} {:>11} {:>11} {:>11} {:>14}",
        "batch", "calls", "p50 µs", "p90 µs", "p99 µs", "rows/s"
    );
    for r in &results {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        println!(
            "{:>8} {:>9} {:>11.2} {:>11.2} {:>11.2} {:>14.0}",
            r["batch"].as_u64().unwrap_or(0),
            r["calls"].as_u64().unwrap_or(0),
            f("p50_us"),
            f("p90_us"),
            f("p99_us"),
            f("rows_per_s")
        );
    }
    Ok(())
}
