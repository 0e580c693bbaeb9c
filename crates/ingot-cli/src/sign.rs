//! `ingot keygen` and `ingot sign`; `ingot verify --key` checks what they make.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ingot::signing::{sign_bundle, SigningKey};

/// Writes a new key pair, `PREFIX.key` (secret, owner-only) and `PREFIX.pub` (public); refuses
/// to replace either file unless `force`.
pub(crate) fn keygen(prefix: &Path, force: bool) -> Result<(), ingot::Error> {
    let secret = with_suffix(prefix, ".key");
    let public = with_suffix(prefix, ".pub");
    if !force {
        if let Some(existing) = [&secret, &public].into_iter().find(|p| std::fs::symlink_metadata(p).is_ok())
        {
            return Err(ingot::Error::usage(format!(
                "`{}` already exists; pass --force to replace it",
                existing.display()
            )));
        }
    }
    let key = SigningKey::generate()?;
    key.write(&secret)?;
    let verifying = key.verifying_key();
    verifying.write(&public)?;
    eprintln!(
        "wrote {} (secret: keep it private) and {} (public), key id {}",
        secret.display(),
        public.display(),
        verifying.key_id()
    );
    Ok(())
}

/// Signs `model` with the secret key in `key`, writing `MODEL.sig`.
pub(crate) fn sign(model: &Path, key: &Path) -> Result<(), ingot::Error> {
    let key = SigningKey::read(key)?;
    let signature = sign_bundle(model, &key)?;
    eprintln!(
        "signed {} -> {} (key id {})",
        model.display(),
        signature.display(),
        key.verifying_key().key_id()
    );
    Ok(())
}

/// `prefix` with `suffix` appended (`keys/prod` → `keys/prod.key`, dots in the prefix kept).
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut path = OsString::from(prefix.as_os_str());
    path.push(suffix);
    PathBuf::from(path)
}
