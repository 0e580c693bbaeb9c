//! The model repository on disk: `<root>/<name>/<version>/model.ingot`, with an optional
//! `<root>/<name>/config.toml` and, when signatures are required, `model.ingot.sig` beside each
//! bundle. This module lists what is there and loads one bundle; [`crate::registry`] keeps what
//! is served.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ingot::signing::{signature_path, SignatureFile, VerifyingKey};
use ingot::{is_model_name, is_semver, Bundle, LoadOptions, Model, ReadOptions};

use crate::config::ModelConfig;

/// File name of the bundle inside each version directory.
pub const BUNDLE_FILE: &str = "model.ingot";

/// What identifies a file's content cheaply: size and modification time (of the bundle and of
/// its signature). A rescan reloads a version only when this changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileIdentity {
    len: u64,
    modified: Option<SystemTime>,
    signature: Option<(u64, Option<SystemTime>)>,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        let meta = std::fs::metadata(path)?;
        let signature = std::fs::metadata(signature_path(path)).ok().map(|m| (m.len(), m.modified().ok()));
        Ok(FileIdentity { len: meta.len(), modified: meta.modified().ok(), signature })
    }
}

/// One version directory found by a scan.
#[derive(Debug, Clone)]
pub struct FoundVersion {
    /// Its name (a semantic version).
    pub version: String,
    /// The bundle.
    pub path: PathBuf,
    /// The bundle's identity when scanned.
    pub identity: FileIdentity,
}

/// One model directory found by a scan.
#[derive(Debug, Clone)]
pub struct FoundModel {
    /// Its name.
    pub name: String,
    /// Its `config.toml`, parsed (with the text, to tell changes), or why it could not be.
    pub config: Result<(ModelConfig, Option<String>), String>,
    /// Its version directories with a bundle, in directory-name order.
    pub versions: Vec<FoundVersion>,
}

/// Something a scan passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The directory or file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Lists the models of `root`. Fails only when `root` itself cannot be read.
pub fn scan(root: &Path) -> std::io::Result<(Vec<FoundModel>, Vec<Skipped>)> {
    let mut models = Vec::new();
    let mut skipped = Vec::new();
    for (name, model_dir) in sorted_subdirs(root, &mut skipped)? {
        if !is_model_name(&name) {
            skipped
                .push(Skipped { path: model_dir, reason: "not a model name ([A-Za-z0-9._-]{1,128})".into() });
            continue;
        }
        let version_dirs = match sorted_subdirs(&model_dir, &mut skipped) {
            Ok(dirs) => dirs,
            Err(err) => {
                skipped.push(Skipped { path: model_dir, reason: err.to_string() });
                continue;
            }
        };
        let mut versions = Vec::new();
        for (version, version_dir) in version_dirs {
            if !is_semver(&version) {
                skipped.push(Skipped { path: version_dir, reason: "not a MAJOR.MINOR.PATCH version".into() });
                continue;
            }
            let path = version_dir.join(BUNDLE_FILE);
            match FileIdentity::of(&path) {
                Ok(identity) if path.is_file() => versions.push(FoundVersion { version, path, identity }),
                _ => skipped.push(Skipped { path: version_dir, reason: format!("no {BUNDLE_FILE}") }),
            }
        }
        let config = ModelConfig::read(&model_dir);
        models.push(FoundModel { name, config, versions });
    }
    Ok((models, skipped))
}

/// Loads `path` as version `version` of model `name`: maps it, checks its signature against
/// `trusted` over exactly the mapped bytes (when a key is given), validates and prepares it.
/// The message of the error is what the status endpoint and the logs show.
pub fn load(
    name: &str,
    version: &str,
    path: &Path,
    options: &LoadOptions,
    trusted: Option<&VerifyingKey>,
) -> Result<Model, ingot::Error> {
    let bundle = Bundle::open_with(path, ReadOptions { verify_checksum: options.verify_checksum })?;
    if let Some(key) = trusted {
        SignatureFile::read(signature_path(path))?.verify(bundle.as_bytes(), key)?;
    }
    let model = Model::from_bundle(bundle, options)?;
    let card = model.metadata();
    if card.name != name || card.version != version {
        tracing::warn!(
            path = %path.display(),
            "model card says {} {}; serving it as {name} {version}",
            card.name,
            card.version
        );
    }
    Ok(model)
}

/// Subdirectories of `dir` as (UTF-8 name, path), sorted by name; other entries are ignored.
fn sorted_subdirs(dir: &Path, skipped: &mut Vec<Skipped>) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        match entry.file_name().into_string() {
            Ok(name) => out.push((name, path)),
            Err(name) => skipped.push(Skipped { path, reason: format!("name {name:?} is not UTF-8") }),
        }
    }
    out.sort();
    Ok(out)
}
