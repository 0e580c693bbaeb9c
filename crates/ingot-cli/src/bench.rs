//! `ingot bench`: load time, per-call latency percentiles and throughput at given batch sizes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ingot::format::ElementType;
use ingot::{Error, Model, Record, Value};

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
    /// Request form: `dense` (f32 matrix; numeric models only) or `records`.
    #[arg(long, value_enum, default_value_t = Form::Dense)]
    form: Form,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// How bench rows are presented to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Form {
    /// A dense f32 matrix in signature order.
    Dense,
    /// Named records.
    Records,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Runs the benchmark.
pub(crate) fn run(args: &Args) -> Result<(), Error> {
    let mut loads = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let m = Model::load(&args.model)?;
        loads.push(t.elapsed());
        drop(m);
    }
    loads.sort();
    let model = Model::load(&args.model)?;
    let sample: Vec<Record> = model
        .manifest()
        .reference
        .as_ref()
        .map(|r| r.sample.clone())
        .unwrap_or_default();
    if sample.is_empty() {
        return Err(Error::Unsupported {
            what: "bench needs reference sample rows in the bundle (export with sample=)".into(),
        });
    }
    let columns = &model.signature().inputs;
    if args.form == Form::Dense && columns.iter().any(|c| c.dtype == ElementType::String) {
        return Err(Error::Unsupported {
            what: "dense bench on a model with string columns; use --form records".into(),
        });
    }
    let dense_row = |r: &Record| -> Vec<f32> {
        columns
            .iter()
            .map(|c| {
                r.get(&c.name)
                    .and_then(Value::as_f64)
                    .map_or(f32::NAN, |v| v as f32)
            })
            .collect()
    };

    let mut results = Vec::new();
    for &batch in &args.batch {
        let records: Vec<Record> = sample.iter().cycle().take(batch).cloned().collect();
        let dense: Vec<f32> = records.iter().flat_map(dense_row).collect();
        let call = || match args.form {
            Form::Dense => model.predict_dense(&dense, batch, columns.len()),
            Form::Records => model.predict_records(&records),
        };
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_millis(200) {
            call()?;
        }
        let mut times = Vec::new();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < args.seconds || times.len() < 5 {
            let t = Instant::now();
            std::hint::black_box(call()?);
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
    if args.json {
        let out = serde_json::json!({
            "model": model.metadata().name, "version": model.metadata().version,
            "form": format!("{:?}", args.form).to_lowercase(), "threads": rayon_threads(),
            "load_p50_us": load_us, "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{} {}  form={:?}  load p50 {:.1} µs",
        model.metadata().name,
        model.metadata().version,
        args.form,
        load_us
    );
    println!(
        "{:>8} {:>9} {:>11} {:>11} {:>11} {:>14}",
        "batch", "calls", "p50 µs", "p90 µs", "p99 µs", "rows/s"
    );
    for r in &results {
        println!(
            "{:>8} {:>9} {:>11.2} {:>11.2} {:>11.2} {:>14.0}",
            r["batch"].as_u64().unwrap_or(0),
            r["calls"].as_u64().unwrap_or(0),
            r["p50_us"].as_f64().unwrap_or(0.0),
            r["p90_us"].as_f64().unwrap_or(0.0),
            r["p99_us"].as_f64().unwrap_or(0.0),
            r["rows_per_s"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
