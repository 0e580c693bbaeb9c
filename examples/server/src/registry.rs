//! What is being served: every loaded version, each model's release (stable, canary), the load
//! failures, and the rescans that change them without a gap.
//!
//! The served state is an immutable [`Snapshot`] behind an atomic pointer. A rescan loads and
//! warms every new or changed bundle on the side, then publishes a new snapshot in one store;
//! requests that started on the old snapshot finish on it, and a replaced version's memory is
//! released when its last request ends. A bundle that fails to load is reported and never
//! replaces the version serving.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use ingot::signing::VerifyingKey;
use ingot::{compare_versions, LoadOptions};
use serde::Serialize;

use crate::config::{CanaryMode, ModelConfig};
use crate::deployed::Deployed;
use crate::metrics::{Metrics, ModelLabels, OutcomeLabels};
use crate::release::{splitmix, unit, Canary, Release, Route};
use crate::repository::{self, FileIdentity, FoundModel, Skipped};
use crate::stats::Summary;

/// Every served version of one model and its release.
#[derive(Debug)]
pub struct ModelState {
    /// Model name.
    pub name: String,
    /// Loaded versions, lowest to highest; never empty.
    pub versions: Vec<Arc<Deployed>>,
    /// Its `config.toml`.
    pub config: ModelConfig,
    config_text: Option<String>,
    release: RwLock<Release>,
    draws: AtomicU64,
}

impl ModelState {
    /// The current release (a copy).
    pub fn release(&self) -> Release {
        self.read_release().clone()
    }

    /// The current release, read in place (requests route through this without copying it).
    fn read_release(&self) -> std::sync::RwLockReadGuard<'_, Release> {
        self.release.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_release(&self, release: Release) {
        *self.release.write().unwrap_or_else(PoisonError::into_inner) = release;
    }

    /// Version names, lowest to highest.
    pub fn version_names(&self) -> Vec<&str> {
        self.versions.iter().map(|v| v.version.as_str()).collect()
    }

    fn exact(&self, version: &str) -> Option<&Arc<Deployed>> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// A version by name, or by alias: `stable`, `canary` (while active) and the aliases of
    /// `config.toml`.
    pub fn version(&self, name: &str) -> Option<&Arc<Deployed>> {
        if let Some(v) = self.exact(name) {
            return Some(v);
        }
        let release = self.read_release();
        let target = match name {
            "stable" => Some(release.stable.as_str()),
            "canary" => release.active_canary().map(|c| c.version.as_str()),
            alias => self.config.aliases.get(alias).map(String::as_str),
        }?;
        self.exact(target)
    }

    /// The version stable answers with.
    pub fn stable(&self) -> &Arc<Deployed> {
        self.stable_of(&self.read_release())
    }

    /// The version `release` names stable; the release only ever names loaded versions, the
    /// highest is the fallback.
    fn stable_of(&self, release: &Release) -> &Arc<Deployed> {
        self.exact(&release.stable).unwrap_or_else(|| self.highest())
    }

    fn highest(&self) -> &Arc<Deployed> {
        &self.versions[self.versions.len() - 1]
    }

    /// Picks who answers a request with routing key `key`, and who gets a shadow copy.
    pub fn pick(&self, key: Option<&str>) -> (Arc<Deployed>, Option<Arc<Deployed>>) {
        let release = self.read_release();
        let draw = unit(splitmix(self.draws.fetch_add(1, Ordering::Relaxed)));
        let stable = || Arc::clone(self.stable_of(&release));
        let canary = || release.active_canary().and_then(|c| self.exact(&c.version)).map(Arc::clone);
        match release.route(key, draw) {
            Route::Stable => (stable(), None),
            Route::Canary => (canary().unwrap_or_else(stable), None),
            Route::Shadow => (stable(), canary()),
        }
    }
}

/// A version that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadFailure {
    /// Model name.
    pub model: String,
    /// Version (empty for a model-level failure such as a bad `config.toml`).
    pub version: String,
    /// What failed and why.
    pub reason: String,
    /// Whether an earlier load of the same version is still serving.
    pub previous_serving: bool,
    /// When (seconds since the Unix epoch).
    pub at: u64,
}

/// Everything served at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Models by name.
    pub models: BTreeMap<String, Arc<ModelState>>,
    /// What failed to load in the latest scan.
    pub failures: Vec<LoadFailure>,
    /// What the latest scan passed over.
    pub skipped: Vec<Skipped>,
    /// Bundles that failed, by path and identity: not retried until they change.
    failed: HashMap<PathBuf, (FileIdentity, LoadFailure)>,
}

impl Snapshot {
    /// A model by name.
    pub fn get(&self, name: &str) -> Option<&Arc<ModelState>> {
        self.models.get(name)
    }
}

/// Why a repository could not be served at all.
#[derive(Debug)]
pub enum RepositoryError {
    /// The root directory could not be read.
    Unreadable {
        /// The directory.
        root: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Nothing in the directory loaded.
    Empty {
        /// The directory.
        root: PathBuf,
        /// How many bundles were found but failed to load.
        failed: usize,
    },
}

impl std::fmt::Display for RepositoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepositoryError::Unreadable { root, source } => {
                write!(f, "cannot read model repository `{}`: {source}", root.display())
            }
            RepositoryError::Empty { root, failed } => write!(
                f,
                "no model loaded from `{}` ({failed} bundle(s) failed to load); expected \
                 <name>/<version>/{}",
                root.display(),
                repository::BUNDLE_FILE
            ),
        }
    }
}

impl std::error::Error for RepositoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RepositoryError::Unreadable { source, .. } => Some(source),
            RepositoryError::Empty { .. } => None,
        }
    }
}

/// What one rescan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Versions loaded (new or changed), as `name@version`.
    pub loaded: Vec<String>,
    /// Versions no longer served.
    pub removed: Vec<String>,
    /// Versions that failed to load in this rescan.
    pub failed: Vec<LoadFailure>,
}

/// How to open a repository.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Options every bundle is loaded with.
    pub load: LoadOptions,
    /// When set, only bundles with a valid signature by this key are served.
    pub trusted_key: Option<VerifyingKey>,
}

/// The served repository.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    options: RegistryOptions,
    metrics: Arc<Metrics>,
    current: ArcSwap<Snapshot>,
    reload_lock: Mutex<()>,
    ready: AtomicBool,
}

impl Registry {
    /// Scans and loads `root`. Fails when `root` cannot be read or nothing loads.
    pub fn open(
        root: impl Into<PathBuf>,
        options: RegistryOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Registry, RepositoryError> {
        let registry = Registry {
            root: root.into(),
            options,
            metrics,
            current: ArcSwap::from_pointee(Snapshot::default()),
            reload_lock: Mutex::new(()),
            ready: AtomicBool::new(false),
        };
        let report = registry
            .reload()
            .map_err(|source| RepositoryError::Unreadable { root: registry.root.clone(), source })?;
        if registry.snapshot().models.is_empty() {
            return Err(RepositoryError::Empty { root: registry.root.clone(), failed: report.failed.len() });
        }
        registry.ready.store(true, Ordering::Release);
        Ok(registry)
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The metrics this registry reports to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The state served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Whether the first load has finished and every model found has a version serving.
    pub fn ready(&self) -> bool {
        let snapshot = self.current.load();
        self.ready.load(Ordering::Acquire)
            && snapshot.failures.iter().all(|f| f.previous_serving || snapshot.get(&f.model).is_some())
    }

    /// Rescans the repository: loads new and changed versions (warm-up included) on the
    /// calling thread, then publishes them at once. Blocking; one rescan runs at a time.
    pub fn reload(&self) -> std::io::Result<ReloadReport> {
        let _one = self.reload_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self.rescan();
        let outcome = match &result {
            Ok(report) if report.failed.is_empty() => "ok",
            _ => "failed",
        };
        self.metrics.reloads.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
        result
    }

    fn rescan(&self) -> std::io::Result<ReloadReport> {
        let old = self.snapshot();
        let (found, skipped) = repository::scan(&self.root)?;
        for s in &skipped {
            tracing::debug!(path = %s.path.display(), "skipped: {}", s.reason);
        }
        let mut report = ReloadReport::default();
        let mut next = Snapshot { skipped, ..Snapshot::default() };
        for model in found {
            let name = model.name.clone();
            if let Some(state) = self.build_model(model, old.get(&name), &old, &mut next, &mut report) {
                next.models.insert(name, Arc::new(state));
            }
        }
        for (name, state) in &old.models {
            for v in &state.versions {
                let kept = next.get(name).is_some_and(|s| s.exact(&v.version).is_some());
                if !kept {
                    report.removed.push(format!("{name}@{}", v.version));
                    self.metrics.forget_version(name, &v.version, &v.drift_features());
                    tracing::info!(model = %name, version = %v.version, "no longer served");
                }
            }
        }
        for state in next.models.values() {
            for v in &state.versions {
                self.metrics.loaded.get_or_create(&v.labels()).set(1);
            }
        }
        next.failures = next.failed.values().map(|(_, f)| f.clone()).collect();
        next.failures.sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
        self.current.store(Arc::new(next));
        Ok(report)
    }

    /// The new state of one model directory; `None` when nothing of it can be served.
    fn build_model(
        &self,
        found: FoundModel,
        old_state: Option<&Arc<ModelState>>,
        old: &Snapshot,
        next: &mut Snapshot,
        report: &mut ReloadReport,
    ) -> Option<ModelState> {
        let name = found.name;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (config, config_text) = match found.config {
            Ok(config) => config,
            Err(reason) => {
                // A broken config.toml keeps the model as it is served; the same error is
                // reported once, not on every rescan.
                let key = self.root.join(&name);
                let failure = match old.failed.get(&key).filter(|(_, f)| f.reason == reason) {
                    Some((_, before)) => before.clone(),
                    None => {
                        let failure = LoadFailure {
                            model: name.clone(),
                            version: String::new(),
                            reason,
                            previous_serving: old_state.is_some(),
                            at: now,
                        };
                        self.report_failure(&failure);
                        report.failed.push(failure.clone());
                        failure
                    }
                };
                next.failed.insert(key, (FileIdentity::default(), failure));
                return old_state.map(|s| s.rebuild_same());
            }
        };
        let same_config = old_state.is_some_and(|s| s.config_text == config_text);
        let mut versions: Vec<Arc<Deployed>> = Vec::new();
        for v in found.versions {
            let previous = old_state.and_then(|s| s.exact(&v.version));
            if let Some(p) = previous.filter(|p| p.identity == v.identity && p.config == config) {
                versions.push(Arc::clone(p));
                continue;
            }
            if let Some((identity, failure)) = old.failed.get(&v.path).filter(|(id, _)| *id == v.identity) {
                // Failed before and unchanged since: not retried.
                next.failed.insert(v.path.clone(), (*identity, failure.clone()));
                versions.extend(previous.cloned());
                continue;
            }
            let loaded = if let Some(p) =
                previous.filter(|p| p.identity == v.identity && p.config.loads_like(&config))
            {
                // Same bundle, new serving configuration: the loaded model is set up again.
                Deployed::new(
                    &name,
                    &v.version,
                    v.path.clone(),
                    v.identity,
                    Arc::clone(p.model()),
                    &config,
                    &self.metrics,
                )
            } else {
                config
                    .load_options(&self.options.load)
                    .and_then(|load| {
                        repository::load(&name, &v.version, &v.path, &load, self.options.trusted_key.as_ref())
                    })
                    .and_then(|model| {
                        Deployed::new(
                            &name,
                            &v.version,
                            v.path.clone(),
                            v.identity,
                            Arc::new(model),
                            &config,
                            &self.metrics,
                        )
                    })
            };
            match loaded {
                Ok(deployed) => {
                    tracing::info!(model = %name, version = %v.version, path = %v.path.display(), "loaded");
                    report.loaded.push(format!("{name}@{}", v.version));
                    versions.push(Arc::new(deployed));
                }
                Err(err) => {
                    let failure = LoadFailure {
                        model: name.clone(),
                        version: v.version.clone(),
                        reason: format!("{}: {err}", err.code()),
                        previous_serving: previous.is_some(),
                        at: now,
                    };
                    self.report_failure(&failure);
                    report.failed.push(failure.clone());
                    next.failed.insert(v.path.clone(), (v.identity, failure));
                    versions.extend(previous.cloned());
                }
            }
        }
        if versions.is_empty() {
            return None;
        }
        versions.sort_by(|a, b| compare_versions(&a.version, &b.version));
        let release = derive_release(&name, &config, &versions, old_state.filter(|_| same_config));
        Some(ModelState {
            name,
            versions,
            config,
            config_text,
            release: RwLock::new(release),
            draws: AtomicU64::new(0),
        })
    }

    fn report_failure(&self, failure: &LoadFailure) {
        tracing::error!(
            model = %failure.model,
            version = %failure.version,
            previous_serving = failure.previous_serving,
            "load failed: {}",
            failure.reason
        );
        self.metrics.load_failures.get_or_create(&ModelLabels { model: failure.model.clone() }).inc();
    }

    fn model(&self, name: &str) -> Result<Arc<ModelState>, AdminError> {
        self.snapshot()
            .get(name)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no model named `{name}`")))
    }

    /// Makes `version` (default: the active canary) the stable version and ends the canary.
    pub fn promote(&self, model: &str, version: Option<&str>) -> Result<Release, AdminError> {
        let state = self.model(model)?;
        let mut release = state.release();
        let target =
            match version {
                Some(v) => v.to_owned(),
                None => release.canary.as_ref().map(|c| c.version.clone()).ok_or_else(|| {
                    AdminError::Conflict(format!("model `{model}` has no canary to promote"))
                })?,
            };
        let target = state.version(&target).map(|v| v.version.clone()).ok_or_else(|| {
            AdminError::NotFound(format!(
                "model `{model}` has no version `{target}`; loaded: {}",
                state.version_names().join(", ")
            ))
        })?;
        release.stable = target;
        release.canary = None;
        release.pinned = true;
        tracing::info!(model, stable = %release.stable, "promoted");
        state.set_release(release.clone());
        Ok(release)
    }

    /// Ends the canary; with `version`, also makes that version stable (a rollback of stable).
    pub fn rollback(&self, model: &str, version: Option<&str>) -> Result<Release, AdminError> {
        let state = self.model(model)?;
        let mut release = state.release();
        if let Some(v) = version {
            release.stable = state.version(v).map(|d| d.version.clone()).ok_or_else(|| {
                AdminError::NotFound(format!(
                    "model `{model}` has no version `{v}`; loaded: {}",
                    state.version_names().join(", ")
                ))
            })?;
        } else if release.canary.is_none() {
            return Err(AdminError::Conflict(format!(
                "model `{model}` has no canary; name the version to roll stable back to"
            )));
        }
        release.canary = None;
        release.pinned = true;
        tracing::info!(model, stable = %release.stable, "rolled back");
        state.set_release(release.clone());
        Ok(release)
    }

    /// Starts (or changes) a canary.
    pub fn set_canary(
        &self,
        model: &str,
        version: &str,
        weight: Option<f64>,
        mode: Option<CanaryMode>,
    ) -> Result<Release, AdminError> {
        let state = self.model(model)?;
        let deployed = state.exact(version).ok_or_else(|| {
            AdminError::NotFound(format!(
                "model `{model}` has no version `{version}`; loaded: {}",
                state.version_names().join(", ")
            ))
        })?;
        let mut release = state.release();
        if version == release.stable {
            return Err(AdminError::Conflict(format!("`{version}` is already stable")));
        }
        let weight = weight.unwrap_or(state.config.canary.weight);
        if !(0.0..=1.0).contains(&weight) {
            return Err(AdminError::Invalid(format!("weight must be within 0..=1, not {weight}")));
        }
        // Judged afresh: errors from an earlier trial do not count against it.
        deployed.stats.clear();
        let version = deployed.version.clone();
        release.canary =
            Some(Canary { version, weight, mode: mode.unwrap_or(state.config.canary.mode), retired: None });
        release.pinned = true;
        state.set_release(release.clone());
        Ok(release)
    }

    /// Compares every active canary with its stable over the configured window and takes out
    /// of rotation each whose error rate or p99 latency is worse by more than the margins.
    /// Returns the canaries retired, as `name@version: reason`.
    pub fn check_canaries(&self) -> Vec<String> {
        let mut retired = Vec::new();
        for state in self.snapshot().models.values() {
            let release = state.release();
            let Some(canary) = release.active_canary() else { continue };
            let (Some(c), Some(s)) = (state.exact(&canary.version), state.exact(&release.stable)) else {
                continue;
            };
            let rules = &state.config.canary;
            let (cs, ss) = (c.stats.summary(rules.window_s), s.stats.summary(rules.window_s));
            if let Some(reason) = verdict(&cs, &ss, rules) {
                let mut next = release.clone();
                if let Some(canary) = next.canary.as_mut() {
                    canary.retired = Some(reason.clone());
                }
                state.set_release(next);
                self.metrics.rollbacks.get_or_create(&c.labels()).inc();
                tracing::warn!(model = %state.name, canary = %c.version, "canary taken out of rotation: {reason}");
                retired.push(format!("{}@{}: {reason}", state.name, c.version));
            }
        }
        retired
    }
}

/// Why a canary with window `canary` fails against `stable`, if it does.
fn verdict(canary: &Summary, stable: &Summary, rules: &crate::config::CanaryConfig) -> Option<String> {
    if canary.count < rules.min_requests.max(1) {
        return None;
    }
    let (ce, se) = (canary.error_rate(), stable.error_rate());
    if ce - se > rules.max_error_rate_margin {
        return Some(format!(
            "error rate {:.2} % vs stable's {:.2} % over {} s (margin {:.2} %)",
            ce * 100.0,
            se * 100.0,
            rules.window_s,
            rules.max_error_rate_margin * 100.0
        ));
    }
    if stable.count > 0 && canary.p99_ms - stable.p99_ms > rules.max_p99_margin_ms {
        return Some(format!(
            "p99 latency {:.2} ms vs stable's {:.2} ms over {} s (margin {} ms)",
            canary.p99_ms, stable.p99_ms, rules.window_s, rules.max_p99_margin_ms
        ));
    }
    None
}

impl ModelState {
    /// The same versions and release under a fresh state (a rescan that changed nothing).
    fn rebuild_same(&self) -> ModelState {
        ModelState {
            name: self.name.clone(),
            versions: self.versions.clone(),
            config: self.config.clone(),
            config_text: self.config_text.clone(),
            release: RwLock::new(self.release()),
            draws: AtomicU64::new(0),
        }
    }
}

/// The release of a model after a rescan: the one before when an admin call set it (and its
/// versions are still loaded), else `config.toml`'s aliases (stable falling back to the highest
/// loaded version); a canary retired before stays retired while the configuration is the same.
fn derive_release(
    name: &str,
    config: &ModelConfig,
    versions: &[Arc<Deployed>],
    old: Option<&Arc<ModelState>>,
) -> Release {
    let has = |v: &str| versions.iter().any(|d| d.version == v);
    let previous = old.map(|s| s.release());
    if let Some(p) = &previous {
        if p.pinned && has(&p.stable) && p.canary.as_ref().is_none_or(|c| has(&c.version)) {
            return p.clone();
        }
    }
    let highest = versions.last().map(|v| v.version.clone()).unwrap_or_default();
    let stable = match config.aliases.get("stable") {
        Some(v) if has(v) => v.clone(),
        Some(v) => {
            tracing::warn!(model = name, "alias stable = {v} is not loaded; serving {highest}");
            highest.clone()
        }
        None => highest.clone(),
    };
    let canary = match config.aliases.get("canary") {
        Some(v) if has(v) => Some(v.clone()),
        Some(v) => {
            tracing::warn!(model = name, "alias canary = {v} is not loaded; no canary");
            None
        }
        None => None,
    };
    let mut release = Release::new(stable, canary, &config.canary);
    if let (Some(p), Some(c)) = (previous.as_ref().and_then(|p| p.canary.as_ref()), release.canary.as_mut()) {
        if p.version == c.version {
            c.retired.clone_from(&p.retired);
        }
    }
    release
}

/// Why an admin call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// No such model or version (404).
    NotFound(String),
    /// The call does not fit the current state (409).
    Conflict(String),
    /// A parameter is out of range (400).
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_needs_enough_requests_and_a_real_margin() {
        let rules = crate::config::CanaryConfig { min_requests: 100, ..Default::default() };
        let stable = Summary { count: 1000, errors: 10, p99_ms: 2.0 };
        assert!(verdict(&Summary { count: 50, errors: 50, p99_ms: 1.0 }, &stable, &rules).is_none());
        assert!(verdict(&Summary { count: 200, errors: 5, p99_ms: 2.5 }, &stable, &rules).is_none());
        let errors = verdict(&Summary { count: 200, errors: 20, p99_ms: 2.0 }, &stable, &rules).unwrap();
        assert!(errors.contains("error rate 10.00 %"), "{errors}");
        let slow = verdict(&Summary { count: 200, errors: 2, p99_ms: 9.0 }, &stable, &rules).unwrap();
        assert!(slow.contains("p99 latency"), "{slow}");
    }
}
