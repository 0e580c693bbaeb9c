//! `ingot import onnx`: import an ONNX model, or only report what would not import (`--check`).

use std::path::PathBuf;

use ingot::import::onnx::{check_file, import_file, OnnxImportOptions};

/// The arguments of `ingot import onnx`.
#[derive(clap::Args)]
pub(crate) struct OnnxArgs {
    /// The `.onnx` file (external data files are read from its directory).
    model: PathBuf,
    /// Output `.ingot` file (not needed with `--check`).
    #[arg(long, short, required_unless_present = "check")]
    output: Option<PathBuf>,
    /// Only report the model's ops and every node that cannot be imported; write nothing.
    #[arg(long)]
    check: bool,
    /// Model name (default: the file name without its extension).
    #[arg(long)]
    name: Option<String>,
    /// Model version (semver).
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// Fix the shape of an input with symbolic dimensions, e.g. `pixel_values=-1x3x224x224`
    /// (`-1` or `N` for the batch). Repeatable.
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    input_shapes: Vec<String>,
    /// Class labels of the output columns, comma-separated (a classifier exported from torch).
    #[arg(long, conflicts_with = "labels")]
    classes: Option<String>,
    /// A file of class labels, one per line.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Input column names, comma-separated (default: `<input>_0, <input>_1, …`).
    #[arg(long)]
    feature_names: Option<String>,
    /// The graph output that feeds post-processing (default: the first that is not a label).
    #[arg(long)]
    output_name: Option<String>,
    /// The output is an embedding (one vector per row) rather than predicted values.
    #[arg(long)]
    embedding: bool,
    /// The `tokenizer.json` of a text encoder (BERT-style exports take strings through it).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Truncation length in tokens of a text encoder (default: its position table's size).
    #[arg(long)]
    max_length: Option<usize>,
}

/// `NAME=1x3x224x224` → the name and dimensions.
fn input_shape(spec: &str) -> Result<(String, Vec<i64>), ingot::Error> {
    let bad =
        || ingot::Error::usage(format!("--input-shape `{spec}` is not NAME=DIMxDIM… (e.g. x=-1x3x32x32)"));
    let (name, dims) = spec.rsplit_once('=').ok_or_else(bad)?;
    let dims = dims
        .split(['x', 'X', ','])
        .map(|d| match d.trim() {
            "N" | "n" | "-1" => Ok(-1),
            d => d.parse::<i64>().ok().filter(|&v| v > 0).ok_or_else(bad),
        })
        .collect::<Result<Vec<i64>, _>>()?;
    Ok((name.to_string(), dims))
}

/// Runs `ingot import onnx`.
pub(crate) fn run(args: OnnxArgs) -> Result<(), ingot::Error> {
    let classes = match (&args.classes, &args.labels) {
        (Some(list), _) => {
            Some(list.split(',').map(|c| ingot::Value::String(c.trim().to_string())).collect())
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| ingot::Error::io(path, e))?;
            Some(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| ingot::Value::String(l.trim().to_string()))
                    .collect(),
            )
        }
        (None, None) => None,
    };
    let options = OnnxImportOptions {
        name: args.name,
        version: args.version,
        input_shapes: args.input_shapes.iter().map(|s| input_shape(s)).collect::<Result<_, _>>()?,
        classes,
        feature_names: args.feature_names.map(|f| f.split(',').map(|n| n.trim().to_string()).collect()),
        output: args.output_name,
        embedding: args.embedding,
        tokenizer: args.tokenizer,
        max_length: args.max_length,
    };
    if args.check {
        let report = check_file(&args.model, &options)?;
        let opsets: Vec<String> = report.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
        println!("{}: {} ({})", args.model.display(), report.producer, opsets.join(", "));
        let ops: Vec<String> = report.ops.iter().map(|(op, n)| format!("{op} ×{n}")).collect();
        println!("ops: {}", ops.join(", "));
        if let Some(encoder) = &report.encoder {
            println!("{encoder}: imports as Ingot's fused encoder (give --tokenizer)");
        }
        if let Some(error) = &report.error {
            println!("the import stops: {error}");
        }
        if !report.unsupported.is_empty() {
            println!("{} node(s) cannot be imported:", report.unsupported.len());
            for node in &report.unsupported {
                println!("  - {node}");
            }
        }
        if report.ok() {
            println!("every node imports");
            return Ok(());
        }
        return Err(ingot::Error::Unsupported { what: format!("{} does not import", args.model.display()) });
    }
    let output = args.output.ok_or_else(|| ingot::Error::usage("--output is required"))?;
    let (manifest, tensors) = import_file(&args.model, &options)?;
    let bytes = ingot::save(&output, &manifest, &tensors)?.bundle().file_size();
    eprintln!("imported {} -> {} ({bytes} bytes)", args.model.display(), output.display());
    Ok(())
}
