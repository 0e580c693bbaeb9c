//! Releases: which version answers (stable), which one is tried (canary, by weighted split or
//! in shadow), and how a shadow answer is compared with stable's.

use std::hash::{Hash, Hasher};

use ingot::{Matrix, Prediction};
use serde::Serialize;

use crate::config::{CanaryConfig, CanaryMode};

/// The canary of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Canary {
    /// Version under trial.
    pub version: String,
    /// Share of requests it answers in split mode.
    pub weight: f64,
    /// `split` or `shadow`.
    #[serde(serialize_with = "mode_name")]
    pub mode: CanaryMode,
    /// Why it was taken out of rotation, once it was (it then gets no traffic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

fn mode_name<S: serde::Serializer>(mode: &CanaryMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match mode {
        CanaryMode::Split => "split",
        CanaryMode::Shadow => "shadow",
    })
}

/// Who answers a model's requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    /// The version answering by default.
    pub stable: String,
    /// The version under trial, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Set by promote/rollback/canary admin calls: the release then survives repository
    /// rescans (as long as its versions do) instead of being taken from `config.toml` again.
    pub pinned: bool,
}

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Stable answers.
    Stable,
    /// The canary answers.
    Canary,
    /// Stable answers; the canary gets a copy to compare.
    Shadow,
}

impl Release {
    /// A release of `stable` with the canary `config` describes, if `canary` is given.
    pub fn new(stable: String, canary: Option<String>, config: &CanaryConfig) -> Release {
        let canary = canary.filter(|c| *c != stable).map(|version| Canary {
            version,
            weight: config.weight,
            mode: config.mode,
            retired: None,
        });
        Release { stable, canary, pinned: false }
    }

    /// The active (not retired) canary.
    pub fn active_canary(&self) -> Option<&Canary> {
        self.canary.as_ref().filter(|c| c.retired.is_none())
    }

    /// Routes a request: by `key` when the request has a routing key (the same key always
    /// goes the same way), else by `draw`, a uniform number in `[0, 1)`.
    pub fn route(&self, key: Option<&str>, draw: f64) -> Route {
        let Some(canary) = self.active_canary() else {
            return Route::Stable;
        };
        match canary.mode {
            CanaryMode::Shadow => Route::Shadow,
            CanaryMode::Split => {
                let u = key.map_or(draw, unit_hash);
                if u < canary.weight {
                    Route::Canary
                } else {
                    Route::Stable
                }
            }
        }
    }
}

/// A stable hash of `key` mapped to `[0, 1)`.
fn unit_hash(key: &str) -> f64 {
    // FNV-1a: the same on every run and every machine (std's hasher is seeded per process).
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    key.hash(&mut h);
    unit(splitmix(h.finish()))
}

/// SplitMix64: turns a counter into well-spread bits.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The top 53 bits of `x` as a number in `[0, 1)`.
pub fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// How a shadow answer compared with stable's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Rows compared.
    pub rows: usize,
    /// Rows whose answer differs: another label for classifiers, a value further than
    /// [`NUMERIC_TOLERANCE`] for the others.
    pub disagreements: usize,
    /// Largest absolute difference of any output value.
    pub distance: f64,
}

/// Beyond this absolute difference two numeric answers disagree.
pub const NUMERIC_TOLERANCE: f64 = 1e-4;

/// Compares a shadow answer with stable's, row by row.
pub fn compare(stable: &Prediction, shadow: &Prediction) -> Comparison {
    let rows = stable.rows.min(shadow.rows);
    fn numbers(p: &Prediction) -> &Matrix {
        p.probabilities.as_ref().or(p.values.as_ref()).or(p.embeddings.as_ref()).unwrap_or(&p.scores)
    }
    let (a, b) = (numbers(stable), numbers(shadow));
    let mut distance = 0.0f64;
    let mut disagreements = 0;
    for i in 0..rows {
        let row_distance = if a.cols() == b.cols() {
            a.row(i).iter().zip(b.row(i)).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max)
        } else {
            f64::INFINITY
        };
        distance = distance.max(row_distance);
        let differs = match (&stable.labels, &shadow.labels) {
            (Some(x), Some(y)) => x.get(i) != y.get(i),
            (None, None) => row_distance > NUMERIC_TOLERANCE,
            _ => true,
        };
        disagreements += usize::from(differs);
    }
    disagreements += stable.rows.abs_diff(shadow.rows);
    Comparison { rows: stable.rows.max(shadow.rows), disagreements, distance }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_the_weight_and_keys_are_sticky() {
        let config = CanaryConfig { weight: 0.25, ..CanaryConfig::default() };
        let release = Release::new("1.0.0".into(), Some("1.1.0".into()), &config);
        let n = 100_000u64;
        let canary = (0..n).filter(|&i| release.route(None, unit(splitmix(i))) == Route::Canary).count();
        // Binomial(100 000, 0.25): sd ≈ 137; allow 5 sd.
        assert!((canary as f64 - 25_000.0).abs() < 5.0 * 137.0, "{canary}");
        let keyed =
            (0..n).filter(|i| release.route(Some(&format!("user-{i}")), 0.0) == Route::Canary).count();
        assert!((keyed as f64 - 25_000.0).abs() < 5.0 * 137.0, "{keyed}");
        for i in 0..100 {
            let key = format!("user-{i}");
            let first = release.route(Some(&key), 0.0);
            assert!((0..5).all(|j| release.route(Some(&key), unit(splitmix(j))) == first));
        }
    }

    #[test]
    fn retired_or_shadow_canaries_answer_nothing() {
        let config = CanaryConfig { weight: 1.0, mode: CanaryMode::Shadow, ..CanaryConfig::default() };
        let mut release = Release::new("1.0.0".into(), Some("1.1.0".into()), &config);
        assert_eq!(release.route(None, 0.0), Route::Shadow);
        release.canary.as_mut().unwrap().retired = Some("errors".into());
        assert_eq!(release.route(None, 0.0), Route::Stable);
        assert!(Release::new("1.0.0".into(), Some("1.0.0".into()), &config).canary.is_none());
    }
}
