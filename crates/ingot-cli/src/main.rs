//! `ingot`: inspect, verify, sign, predict, bench, pack and unpack `.ingot` bundles.

mod bench;
mod inspect;
mod load;
mod onnx;
mod predict;
mod quantize;
mod sign;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Inspect, check and run `.ingot` model bundles.
#[derive(Parser)]
#[command(name = "ingot", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the model card, signature, pipeline steps and tensor table.
    Inspect {
        /// The `.ingot` file.
        model: PathBuf,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run every structural and semantic check; exit code 0 only if the file is valid.
    Verify {
        /// The `.ingot` file.
        model: PathBuf,
        /// Also check the signature in `MODEL.sig` against this public key file: a missing,
        /// malformed or non-matching signature fails.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Generate an ed25519 key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public).
    Keygen {
        /// Path prefix of the two key files.
        #[arg(long, short)]
        output: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Sign an `.ingot` file with a secret key, writing the signature to MODEL.sig.
    Sign {
        /// The `.ingot` file.
        model: PathBuf,
        /// The secret key file (written by `ingot keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Batch scoring: predict on a CSV, JSONL or Parquet file (or `-` for stdin), streaming in
    /// chunks, with input columns kept beside the predictions and a run record.
    Predict(predict::Args),
    /// Measure latency percentiles and throughput at given batch sizes.
    Bench(bench::Args),
    /// Write a copy with int8, f16 or bf16 weights and print its accuracy against the source
    /// (also stored in the new bundle's manifest).
    Quantize(quantize::Args),
    /// Pack an unpacked directory (manifest.json + tensors/*.npy) into an `.ingot` file.
    Pack {
        /// Directory written by an exporter or `ingot unpack`.
        dir: PathBuf,
        /// Output `.ingot` file.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Import a model trained elsewhere into an `.ingot` file.
    #[command(subcommand)]
    Import(ImportKind),
    /// Unpack an `.ingot` file into manifest.json + tensors/*.npy.
    Unpack {
        /// The `.ingot` file.
        model: PathBuf,
        /// Output directory.
        #[arg(long, short)]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum ImportKind {
    /// A Hugging Face / sentence-transformers directory (config.json, model.safetensors,
    /// tokenizer.json, modules.json, 1_Pooling/config.json) of a BERT, DistilBERT, RoBERTa or
    /// XLM-RoBERTa encoder.
    Hf {
        /// The model directory.
        dir: PathBuf,
        /// Output `.ingot` file.
        #[arg(long, short)]
        output: PathBuf,
        /// Model name (default: the directory name).
        #[arg(long)]
        name: Option<String>,
        /// Model version (semver).
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// Truncation length in tokens (default: the model's max_seq_length).
        #[arg(long)]
        max_length: Option<usize>,
    },
    /// A LightGBM text model (`Booster.save_model`, `model.txt`): binary, multiclass, regression
    /// (including Poisson, gamma, Tweedie, cross-entropy) and ranking objectives, numeric and
    /// categorical splits, missing values, random forests.
    Lightgbm(TreeArgs),
    /// An ONNX model (`.onnx`, opsets 11–23): MLPs and CNNs exported from PyTorch, scikit-learn
    /// pipelines converted by skl2onnx, tree ensembles from onnxmltools. `--check` lists every
    /// node that cannot be imported without writing anything.
    Onnx(onnx::OnnxArgs),
    /// An XGBoost model, JSON (`model.json`) or UBJSON (`model.ubj`, told from its bytes) as
    /// `Booster.save_model` writes it: gbtree and dart boosters, regression, binary, multiclass,
    /// Poisson, gamma and Tweedie objectives, numeric and categorical splits, missing values.
    Xgboost(TreeArgs),
}

/// The arguments of the tree-ensemble importers.
#[derive(clap::Args)]
struct TreeArgs {
    /// The model file.
    model: PathBuf,
    /// Output `.ingot` file.
    #[arg(long, short)]
    output: PathBuf,
    /// Model name (default: the file name without its extension).
    #[arg(long)]
    name: Option<String>,
    /// Model version (semver).
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// Input column names, comma-separated, one per feature (default: the model's feature
    /// names; without them, the library's defaults: XGBoost `f0, f1, …`, LightGBM `Column_0, …`).
    #[arg(long)]
    feature_names: Option<String>,
    /// Training rows (JSONL, one record per line): the first 5 become the bundle's reference
    /// sample (what `ingot bench` runs without `--input`), and every numeric column's
    /// statistics the reference for drift.
    #[arg(long)]
    sample: Option<PathBuf>,
}

type TreeImporter = fn(
    &std::path::Path,
    &ingot::import::TreeImportOptions,
) -> Result<(ingot::Manifest, Vec<(String, ingot::TensorData)>), ingot::Error>;

/// Imports a tree-ensemble model file with `import` and writes the bundle.
fn import_trees(args: TreeArgs, import: TreeImporter) -> Result<(), ingot::Error> {
    let TreeArgs { model, output, name, version, feature_names, sample } = args;
    let feature_names = feature_names.map(|f| f.split(',').map(|n| n.trim().to_string()).collect());
    let options = ingot::import::TreeImportOptions { name, version, feature_names };
    let (mut manifest, tensors) = import(&model, &options)?;
    if let Some(path) = sample {
        let records = read_records(&path)?;
        let columns: Vec<String> = manifest.signature.inputs.iter().map(|i| i.name.clone()).collect();
        manifest.reference = Some(ingot::format::Reference::from_records(&records, &columns, 5));
    }
    let bytes = ingot::save(&output, &manifest, &tensors)?.bundle().file_size();
    eprintln!("imported {} -> {} ({bytes} bytes)", model.display(), output.display());
    Ok(())
}

/// The records of a JSONL file, one object per line.
fn read_records(path: &std::path::Path) -> Result<Vec<ingot::Record>, ingot::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| ingot::Error::io(path, e))?;
    let records: Vec<ingot::Record> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| ingot::Error::usage(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect::<Result<_, _>>()?;
    if records.is_empty() {
        return Err(ingot::Error::usage(format!("{} has no rows", path.display())));
    }
    Ok(records)
}

fn run(cli: Cli) -> Result<(), ingot::Error> {
    match cli.command {
        Command::Inspect { model, json } => inspect::inspect(&model, json),
        Command::Verify { model, key } => inspect::verify(&model, key.as_deref()),
        Command::Keygen { output, force } => sign::keygen(&output, force),
        Command::Sign { model, key } => sign::sign(&model, &key),
        Command::Predict(args) => predict::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Quantize(args) => quantize::run(&args),
        Command::Pack { dir, output } => {
            ingot::pack(&dir, &output)?;
            eprintln!("packed {} -> {}", dir.display(), output.display());
            Ok(())
        }
        Command::Import(ImportKind::Hf { dir, output, name, version, max_length }) => {
            let options = ingot::import::hf::ImportOptions { name, version, max_length };
            let (manifest, tensors) = ingot::import::hf::import_dir(&dir, &options)?;
            let model = ingot::save(&output, &manifest, &tensors)?;
            let bytes = model.bundle().file_size();
            eprintln!("imported {} -> {} ({bytes} bytes)", dir.display(), output.display());
            Ok(())
        }
        Command::Import(ImportKind::Lightgbm(args)) => {
            import_trees(args, ingot::import::lightgbm::import_file)
        }
        Command::Import(ImportKind::Onnx(args)) => onnx::run(args),
        Command::Import(ImportKind::Xgboost(args)) => import_trees(args, ingot::import::xgboost::import_file),
        Command::Unpack { model, output } => {
            let bundle = ingot::Bundle::open(&model)?;
            ingot::format::unpack(&bundle, &output)?;
            eprintln!("unpacked {} -> {}", model.display(), output.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
