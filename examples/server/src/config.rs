//! Configuration: the server's own settings (from flags) and each model's `config.toml`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// File name of a model's optional configuration, beside its version directories.
pub const MODEL_CONFIG_FILE: &str = "config.toml";

/// Request size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body, in bytes (larger → 413).
    pub max_body_bytes: usize,
    /// Largest accepted batch, in rows (larger → 413).
    pub max_batch_rows: usize,
}

impl Default for Limits {
    /// 8 MiB and 10 000 rows.
    fn default() -> Self {
        Limits { max_body_bytes: 8 * 1024 * 1024, max_batch_rows: 10_000 }
    }
}

/// How a model is served, from `<repository>/<name>/config.toml` (every key optional).
///
/// ```
/// let config: ingot_server::ModelConfig = toml::from_str(r#"
///     max_batch_size = 32
///     max_queue_delay_us = 2000
///     [aliases]
///     stable = "1.0.0"
///     canary = "1.1.0"
///     [canary]
///     weight = 0.2
/// "#).unwrap();
/// assert_eq!(config.max_batch_size, 32);
/// assert_eq!(config.aliases["canary"], "1.1.0");
/// assert_eq!(config.canary.weight, 0.2);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Largest batch, in rows, that dynamic batching forms from concurrent requests; 0 or 1
    /// runs every request on its own (no batching).
    pub max_batch_size: usize,
    /// How long the first request of a batch waits for others, in microseconds (Triton's
    /// `max_queue_delay_microseconds`): the batch runs when it is full or this has passed.
    pub max_queue_delay_us: u64,
    /// Most requests waiting for a batch; one more is answered 503 with `Retry-After`.
    pub max_queue_size: usize,
    /// Batches of one version that may run at the same time.
    pub instances: usize,
    /// Version aliases: `stable` (answers by default), `canary` (gets a share of the traffic
    /// or a shadow copy), and any other name a request may use in place of a version.
    pub aliases: BTreeMap<String, String>,
    /// How the canary is released.
    pub canary: CanaryConfig,
    /// Batch sizes the reference sample is run at before a version takes traffic (default:
    /// 1 and `max_batch_size`).
    pub warmup_batch_sizes: Vec<usize>,
    /// Device the model's graph runs on: `cpu` (default) or `cuda:N` (a server built with
    /// `--features cuda`); a version that cannot run there fails to load, naming the op.
    pub device: String,
    /// Kernels: `auto` (default: Ingot's on the CPU, candle's on a GPU) or `candle`.
    pub kernels: String,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            max_batch_size: 0,
            max_queue_delay_us: 0,
            max_queue_size: 1024,
            instances: 1,
            aliases: BTreeMap::new(),
            canary: CanaryConfig::default(),
            warmup_batch_sizes: Vec::new(),
            device: "cpu".into(),
            kernels: "auto".into(),
        }
    }
}

/// Whether the canary answers part of the traffic or only sees a copy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CanaryMode {
    /// `weight` of the requests are answered by the canary.
    Split,
    /// Every request is answered by stable; the canary gets a copy, compared and never returned.
    Shadow,
}

/// The canary's share of traffic and when it is rolled back automatically.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryConfig {
    /// Share of requests the canary answers in `split` mode (0 to 1).
    pub weight: f64,
    /// `split` or `shadow`.
    pub mode: CanaryMode,
    /// Header whose value routes a request: the same value always goes to the same side.
    pub sticky_header: String,
    /// The canary is taken out when its error rate exceeds stable's by more than this.
    pub max_error_rate_margin: f64,
    /// …or its p99 latency exceeds stable's by more than this many milliseconds.
    pub max_p99_margin_ms: f64,
    /// The sliding window both are measured over, in seconds.
    pub window_s: u64,
    /// Requests the canary must have answered in the window before it is judged.
    pub min_requests: u64,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            weight: 0.1,
            mode: CanaryMode::Split,
            sticky_header: "x-ingot-routing-key".into(),
            max_error_rate_margin: 0.02,
            max_p99_margin_ms: 5.0,
            window_s: 60,
            min_requests: 100,
        }
    }
}

impl ModelConfig {
    /// Reads `dir/config.toml`; the defaults when there is none.
    pub fn read(dir: &Path) -> Result<(ModelConfig, Option<String>), String> {
        let path = dir.join(MODEL_CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok((ModelConfig::default(), None))
            }
            Err(err) => return Err(format!("cannot read {MODEL_CONFIG_FILE}: {err}")),
        };
        let config = Self::parse(&text)?;
        Ok((config, Some(text)))
    }

    /// Parses and checks a `config.toml`.
    pub fn parse(text: &str) -> Result<ModelConfig, String> {
        let config: ModelConfig =
            toml::from_str(text).map_err(|err| format!("{MODEL_CONFIG_FILE}: {}", err.message()))?;
        let canary = &config.canary;
        if !(0.0..=1.0).contains(&canary.weight) {
            return Err(format!(
                "{MODEL_CONFIG_FILE}: canary.weight must be within 0..=1, not {}",
                canary.weight
            ));
        }
        if config.instances == 0 {
            return Err(format!("{MODEL_CONFIG_FILE}: instances must be at least 1"));
        }
        if config.max_queue_size == 0 {
            return Err(format!("{MODEL_CONFIG_FILE}: max_queue_size must be at least 1"));
        }
        if canary.window_s == 0 {
            return Err(format!("{MODEL_CONFIG_FILE}: canary.window_s must be at least 1"));
        }
        ingot::Kernels::parse(&config.kernels).map_err(|e| format!("{MODEL_CONFIG_FILE}: {e}"))?;
        for (alias, version) in &config.aliases {
            if !ingot::is_model_name(alias) || !ingot::is_semver(version) {
                return Err(format!(
                    "{MODEL_CONFIG_FILE}: alias `{alias}` = `{version}`: aliases are names for MAJOR.MINOR.PATCH versions"
                ));
            }
        }
        Ok(config)
    }

    /// `base` (the server's options) with this model's device and kernels; opening the device
    /// fails when it is not there (no GPU, a build without `cuda`).
    pub fn load_options(&self, base: &ingot::LoadOptions) -> Result<ingot::LoadOptions, ingot::Error> {
        base.clone().on(&self.device, &self.kernels)
    }

    /// Whether both configurations load a bundle the same way (device and kernels).
    pub fn loads_like(&self, other: &ModelConfig) -> bool {
        (&self.device, &self.kernels) == (&other.device, &other.kernels)
    }

    /// Whether concurrent requests are batched.
    pub fn batching(&self) -> bool {
        self.max_batch_size > 1
    }

    /// The batch sizes a new version is warmed up at.
    pub fn warmup_sizes(&self) -> Vec<usize> {
        let mut sizes = if self.warmup_batch_sizes.is_empty() {
            vec![1, self.max_batch_size.max(1)]
        } else {
            self.warmup_batch_sizes.clone()
        };
        sizes.sort_unstable();
        sizes.dedup();
        sizes.retain(|&s| s > 0);
        sizes
    }

    /// The queue delay as a duration.
    pub fn queue_delay(&self) -> Duration {
        Duration::from_micros(self.max_queue_delay_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (config, text) = ModelConfig::read(dir.path()).unwrap();
        assert_eq!((config, text), (ModelConfig::default(), None));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(ModelConfig::parse("max_batch = 3").unwrap_err().contains("unknown field"));
        assert!(ModelConfig::parse("[canary]\nweight = 1.5").unwrap_err().contains("canary.weight"));
        assert!(ModelConfig::parse("instances = 0").unwrap_err().contains("instances"));
        assert!(ModelConfig::parse("[aliases]\nstable = \"latest\"").unwrap_err().contains("alias"));
        let shadow = ModelConfig::parse("[canary]\nmode = \"shadow\"").unwrap();
        assert_eq!(shadow.canary.mode, CanaryMode::Shadow);
    }

    #[test]
    fn warmup_sizes_follow_the_batch_size() {
        let config = ModelConfig { max_batch_size: 32, ..ModelConfig::default() };
        assert_eq!(config.warmup_sizes(), [1, 32]);
        assert_eq!(ModelConfig::default().warmup_sizes(), [1]);
    }
}
