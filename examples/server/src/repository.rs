//! The model repository: `<root>/<name>/<version>/model.ingot`, scanned and loaded once at start.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ingot::{compare_versions, is_model_name, is_semver, LoadOptions, Model};

/// File name of the bundle inside each version directory.
pub const BUNDLE_FILE: &str = "model.ingot";

/// One loaded version of a model.
#[derive(Debug, Clone)]
pub struct ModelVersion {
    /// Version, as named by its directory (a semantic version).
    pub version: String,
    /// Path of the `.ingot` file it was loaded from.
    pub path: PathBuf,
    /// The loaded model, shared with the prediction tasks.
    pub model: Arc<Model>,
}

/// Every loaded version of one model.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    name: String,
    /// Sorted by ascending semantic-version precedence; never empty.
    versions: Vec<ModelVersion>,
    /// The highest version (also the last of `versions`).
    default: ModelVersion,
}

impl ModelEntry {
    /// Builds an entry from loaded versions; `None` when `versions` is empty.
    pub fn new(name: impl Into<String>, mut versions: Vec<ModelVersion>) -> Option<ModelEntry> {
        versions.sort_by(|a, b| compare_versions(&a.version, &b.version));
        let default = versions.last()?.clone();
        Some(ModelEntry { name: name.into(), versions, default })
    }

    /// Model name (its directory name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All versions, lowest to highest.
    pub fn versions(&self) -> &[ModelVersion] {
        &self.versions
    }

    /// Version names, lowest to highest.
    pub fn version_names(&self) -> Vec<&str> {
        self.versions.iter().map(|v| v.version.as_str()).collect()
    }

    /// The version served when a request names none: the highest semantic version.
    pub fn default_version(&self) -> &ModelVersion {
        &self.default
    }

    /// A version by exact name.
    pub fn version(&self, version: &str) -> Option<&ModelVersion> {
        self.versions.iter().find(|v| v.version == version)
    }
}

/// All models of a repository, by name.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    root: PathBuf,
    models: BTreeMap<String, ModelEntry>,
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

impl fmt::Display for RepositoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepositoryError::Unreadable { root, source } => {
                write!(f, "cannot read model repository `{}`: {source}", root.display())
            }
            RepositoryError::Empty { root, failed } => write!(
                f,
                "no model loaded from `{}` ({failed} bundle(s) failed to load); expected \
                 <name>/<version>/{BUNDLE_FILE}",
                root.display()
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

impl Repository {
    /// Scans `root` and loads every `<name>/<version>/model.ingot`.
    ///
    /// A directory whose name is not a valid model name or semantic version, a version without
    /// a bundle, or a bundle that fails to load is logged and skipped. Fails only when `root`
    /// cannot be read or nothing loads.
    pub fn scan(root: impl AsRef<Path>) -> Result<Repository, RepositoryError> {
        Self::scan_with(root, &LoadOptions::default())
    }

    /// [`Repository::scan`], loading every bundle with `options` (threads per call, checksum).
    pub fn scan_with(root: impl AsRef<Path>, options: &LoadOptions) -> Result<Repository, RepositoryError> {
        let root = root.as_ref().to_path_buf();
        let unreadable = |source| RepositoryError::Unreadable { root: root.clone(), source };
        let mut failed = 0;
        let mut models = BTreeMap::new();
        for (name, model_dir) in sorted_subdirs(&root).map_err(unreadable)? {
            if !is_model_name(&name) {
                tracing::warn!(dir = %model_dir.display(), "skipped: not a model name ([A-Za-z0-9._-]{{1,128}})");
                continue;
            }
            let version_dirs = match sorted_subdirs(&model_dir) {
                Ok(dirs) => dirs,
                Err(err) => {
                    tracing::warn!(dir = %model_dir.display(), "skipped: {err}");
                    continue;
                }
            };
            let mut versions = Vec::new();
            for (version, version_dir) in version_dirs {
                if !is_semver(&version) {
                    tracing::warn!(dir = %version_dir.display(), "skipped: not a MAJOR.MINOR.PATCH version");
                    continue;
                }
                let path = version_dir.join(BUNDLE_FILE);
                if !path.is_file() {
                    tracing::warn!(dir = %version_dir.display(), "skipped: no {BUNDLE_FILE}");
                    continue;
                }
                match Model::load_with(&path, options) {
                    Ok(model) => {
                        let card = model.metadata();
                        if card.name != name || card.version != version {
                            tracing::warn!(
                                path = %path.display(),
                                "model card says {} {}; serving it as {name} {version}",
                                card.name,
                                card.version
                            );
                        }
                        tracing::info!(model = %name, %version, path = %path.display(), "loaded");
                        versions.push(ModelVersion { version, path, model: Arc::new(model) });
                    }
                    Err(err) => {
                        failed += 1;
                        tracing::error!(path = %path.display(), code = err.code(), "skipped: {err}");
                    }
                }
            }
            if let Some(entry) = ModelEntry::new(name.clone(), versions) {
                models.insert(name, entry);
            }
        }
        if models.is_empty() {
            return Err(RepositoryError::Empty { root, failed });
        }
        Ok(Repository { root, models })
    }

    /// A repository of already loaded models (for tests and embedding).
    pub fn from_entries(root: impl Into<PathBuf>, entries: Vec<ModelEntry>) -> Repository {
        Repository { root: root.into(), models: entries.into_iter().map(|e| (e.name.clone(), e)).collect() }
    }

    /// The directory the models were loaded from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A model by name.
    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.get(name)
    }

    /// All models, by name.
    pub fn models(&self) -> impl Iterator<Item = &ModelEntry> {
        self.models.values()
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the repository holds no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// Subdirectories of `dir` as (UTF-8 name, path), sorted by name; other entries are ignored.
fn sorted_subdirs(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        match entry.file_name().into_string() {
            Ok(name) => out.push((name, path)),
            Err(name) => {
                tracing::warn!(dir = %path.display(), "skipped: name {name:?} is not UTF-8");
            }
        }
    }
    out.sort();
    Ok(out)
}
