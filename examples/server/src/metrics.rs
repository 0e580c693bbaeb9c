//! Prometheus metrics (`GET /metrics`), kept with prometheus-client.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of one served version.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: String,
}

/// Labels of a finished request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Model name.
    pub model: String,
    /// Version that answered (empty when none was found).
    pub version: String,
    /// `ingot`, `kserve-v1`, `v2`, `grpc`.
    pub protocol: String,
    /// HTTP status (gRPC answers are counted with the HTTP status of their code).
    pub status: u16,
}

/// Every protocol label, in the order of [`protocol_index`].
pub const PROTOCOLS: [&str; 4] = ["ingot", "kserve-v1", "v2", "grpc"];

/// The position of `protocol` in [`PROTOCOLS`].
pub fn protocol_index(protocol: &str) -> Option<usize> {
    PROTOCOLS.iter().position(|p| *p == protocol)
}

/// Labels of a drift gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureLabels {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: String,
    /// Input column.
    pub feature: String,
}

/// Labels of a load failure.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// Model name.
    pub model: String,
}

/// Labels of a repository rescan.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok` (everything found loaded) or `failed` (something did not).
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by model, version, protocol and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency in seconds, from the first byte of the body to the answer.
    pub latency: HistogramFamily<VersionLabels>,
    /// Rows per executed batch.
    pub batch_size: HistogramFamily<VersionLabels>,
    /// Requests waiting for a batch.
    pub queue_depth: Family<VersionLabels, Gauge>,
    /// Versions that failed to load (and were not served).
    pub load_failures: Family<ModelLabels, Counter>,
    /// 1 for every version taking traffic.
    pub loaded: Family<VersionLabels, Gauge>,
    /// Population stability index of each input column against the bundle's reference
    /// statistics, over the recent window.
    pub drift: Family<FeatureLabels, Gauge<f64, AtomicU64>>,
    /// Shadow requests compared with stable's answers.
    pub shadow_comparisons: Family<VersionLabels, Counter>,
    /// Shadow answers whose label (or, for numeric outputs, value beyond the tolerance)
    /// differed from stable's.
    pub shadow_disagreements: Family<VersionLabels, Counter>,
    /// Largest absolute difference between a shadow answer and stable's, per request.
    pub shadow_distance: HistogramFamily<VersionLabels>,
    /// Shadow copies dropped because too many were in flight.
    pub shadow_dropped: Family<VersionLabels, Counter>,
    /// Canaries taken out of rotation automatically.
    pub rollbacks: Family<VersionLabels, Counter>,
    /// Requests refused by a rate limit.
    pub rate_limited: Counter,
    /// Repository rescans by outcome.
    pub reloads: Family<OutcomeLabels, Counter>,
    /// Response cache hits.
    pub cache_hits: Counter,
    /// Response cache misses.
    pub cache_misses: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s.
    Histogram::new(exponential_buckets(50e-6, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

fn distance_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-7, 10.0, 9))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily<VersionLabels> = Family::new_with_constructor(latency_histogram);
        let batch_size: HistogramFamily<VersionLabels> = Family::new_with_constructor(batch_histogram);
        let queue_depth = Family::<VersionLabels, Gauge>::default();
        let load_failures = Family::<ModelLabels, Counter>::default();
        let loaded = Family::<VersionLabels, Gauge>::default();
        let drift = Family::<FeatureLabels, Gauge<f64, AtomicU64>>::default();
        let shadow_comparisons = Family::<VersionLabels, Counter>::default();
        let shadow_disagreements = Family::<VersionLabels, Counter>::default();
        let shadow_distance: HistogramFamily<VersionLabels> =
            Family::new_with_constructor(distance_histogram);
        let shadow_dropped = Family::<VersionLabels, Counter>::default();
        let rollbacks = Family::<VersionLabels, Counter>::default();
        let rate_limited = Counter::default();
        let reloads = Family::<OutcomeLabels, Counter>::default();
        let cache_hits = Counter::default();
        let cache_misses = Counter::default();

        registry.register(
            "ingot_requests",
            "Requests by model, version, protocol and status",
            requests.clone(),
        );
        registry.register("ingot_request_duration_seconds", "Request latency in seconds", latency.clone());
        registry.register("ingot_batch_size", "Rows per executed batch", batch_size.clone());
        registry.register("ingot_queue_depth", "Requests waiting for a batch", queue_depth.clone());
        registry.register("ingot_model_load_failures", "Versions that failed to load", load_failures.clone());
        registry.register("ingot_model_loaded", "1 for every version taking traffic", loaded.clone());
        registry.register(
            "ingot_drift_psi",
            "Population stability index of an input column against the bundle's reference deciles",
            drift.clone(),
        );
        registry.register(
            "ingot_shadow_comparisons",
            "Shadow answers compared with stable's",
            shadow_comparisons.clone(),
        );
        registry.register(
            "ingot_shadow_disagreements",
            "Shadow answers that differ from stable's",
            shadow_disagreements.clone(),
        );
        registry.register(
            "ingot_shadow_distance",
            "Largest absolute output difference between shadow and stable, per request",
            shadow_distance.clone(),
        );
        registry.register(
            "ingot_shadow_dropped",
            "Shadow copies dropped (too many in flight)",
            shadow_dropped.clone(),
        );
        registry.register(
            "ingot_rollbacks",
            "Canaries taken out of rotation automatically",
            rollbacks.clone(),
        );
        registry.register("ingot_rate_limited", "Requests refused by a rate limit", rate_limited.clone());
        registry.register("ingot_reloads", "Repository rescans by outcome", reloads.clone());
        registry.register("ingot_cache_hits", "Response cache hits", cache_hits.clone());
        registry.register("ingot_cache_misses", "Response cache misses", cache_misses.clone());
        registry.register(
            "ingot_build",
            "Server build",
            Info::new(vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]),
        );
        Metrics {
            registry,
            requests,
            latency,
            batch_size,
            queue_depth,
            load_failures,
            loaded,
            drift,
            shadow_comparisons,
            shadow_disagreements,
            shadow_distance,
            shadow_dropped,
            rollbacks,
            rate_limited,
            reloads,
            cache_hits,
            cache_misses,
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one finished request.
    pub fn request(&self, model: &str, version: &str, protocol: &str, status: u16) {
        let labels = RequestLabels {
            model: model.to_owned(),
            version: version.to_owned(),
            protocol: protocol.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// The counter of successful requests of `model` `version` under `protocol`, to keep
    /// instead of looking the series up on every request.
    pub fn ok_counter(&self, model: &str, version: &str, protocol: &str) -> Counter {
        let labels = RequestLabels {
            model: model.to_owned(),
            version: version.to_owned(),
            protocol: protocol.to_owned(),
            status: 200,
        };
        self.requests.get_or_create_owned(&labels)
    }

    /// Removes the series of a version that no longer serves.
    pub fn forget_version(&self, model: &str, version: &str, features: &[String]) {
        let labels = VersionLabels { model: model.to_owned(), version: version.to_owned() };
        self.loaded.remove(&labels);
        self.queue_depth.remove(&labels);
        for feature in features {
            self.drift.remove(&FeatureLabels {
                model: model.to_owned(),
                version: version.to_owned(),
                feature: feature.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_names() {
        let m = Metrics::new();
        m.request("m", "1.0.0", "ingot", 200);
        let labels = VersionLabels { model: "m".into(), version: "1.0.0".into() };
        m.latency.get_or_create(&labels).observe(0.001);
        m.loaded.get_or_create(&labels).set(1);
        let text = m.encode();
        for name in [
            "ingot_requests_total{model=\"m\",version=\"1.0.0\",protocol=\"ingot\",status=\"200\"} 1",
            "ingot_request_duration_seconds_bucket",
            "ingot_model_loaded{model=\"m\",version=\"1.0.0\"} 1",
            "ingot_build_info{version=",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        m.forget_version("m", "1.0.0", &[]);
        assert!(!m.encode().contains("ingot_model_loaded{"));
    }
}
