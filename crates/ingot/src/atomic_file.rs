//! [`AtomicFile`]: an output file that appears complete or not at all.
//!
//! A leaf module (docs/architecture.md): the bundle writer and every shell that writes files
//! (the CLI's predictions, rejects and run records) share it.

#[cfg(unix)]
use std::fs::Permissions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file written through a temporary file in the target's directory and renamed into place by
/// [`AtomicFile::commit`]; dropped without a commit, it leaves nothing behind.
///
/// The file gets the permissions a plain `File::create` would give it: `0o666` minus the
/// process's umask (`0o644` under the usual `022`), or the mode of the file it replaces. A process
/// that has the old file memory-mapped keeps reading the old bytes.
///
/// ```
/// use std::io::Write;
/// # fn main() -> ingot::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("out.txt");
/// let mut f = ingot::AtomicFile::create(&path)?;
/// f.write_all(b"hello").unwrap();
/// assert!(!path.exists());
/// f.commit()?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path`; nothing is visible there until [`AtomicFile::commit`].
    pub fn create(path: impl AsRef<Path>) -> Result<AtomicFile> {
        Self::create_with(path.as_ref(), Access::Shared)
    }

    fn create_with(path: &Path, access: Access) -> Result<AtomicFile> {
        let path = path.to_path_buf();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".ingot-tmp-");
        #[cfg(unix)]
        builder.permissions(match access {
            Access::Shared => target_permissions(&path),
            Access::OwnerOnly => owner_only(),
        });
        #[cfg(not(unix))]
        let _ = access;
        let tmp = builder.tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(AtomicFile { path, writer: BufWriter::with_capacity(1 << 20, tmp) })
    }

    /// The path the file will have once committed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let tmp = self.writer.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
        tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// Who may read the file once written.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// What a plain `File::create` gives: the umask's mode, or the replaced file's.
    Shared,
    /// Only the owner (`0o600` on Unix, from the moment the temporary file exists), whatever
    /// the mode of a file it replaces: for secret keys.
    OwnerOnly,
}

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, bytes, Access::Shared)
}

/// Writes `bytes` to `path` atomically, readable and writable by the owner only (`0o600` on
/// Unix).
pub(crate) fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, bytes, Access::OwnerOnly)
}

fn write_with(path: &Path, bytes: &[u8], access: Access) -> Result<()> {
    let mut file = AtomicFile::create_with(path, access)?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.commit()
}

/// `0o600`: read and write for the owner, nothing for anyone else.
#[cfg(unix)]
fn owner_only() -> Permissions {
    use std::os::unix::fs::PermissionsExt;
    Permissions::from_mode(0o600)
}

/// The mode of the file being replaced, or `0o666` (the OS applies the umask at creation).
#[cfg(unix)]
fn target_permissions(path: &Path) -> Permissions {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => meta.permissions(),
        _ => Permissions::from_mode(0o666),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn new_files_honour_the_umask_and_replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let new = dir.path().join("new.bin");
        write_atomic(&new, b"x").unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        assert_eq!(mode(&new), 0o666 & !umask, "umask {umask:o}");

        let kept = dir.path().join("kept.bin");
        std::fs::write(&kept, b"old").unwrap();
        std::fs::set_permissions(&kept, Permissions::from_mode(0o640)).unwrap();
        write_atomic(&kept, b"new").unwrap();
        assert_eq!((mode(&kept), std::fs::read(&kept).unwrap()), (0o640, b"new".to_vec()));
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only_even_when_replacing_a_shared_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let new = dir.path().join("new.key");
        write_atomic_private(&new, b"secret").unwrap();
        assert_eq!(mode(&new), 0o600);

        let replaced = dir.path().join("replaced.key");
        std::fs::write(&replaced, b"old").unwrap();
        std::fs::set_permissions(&replaced, Permissions::from_mode(0o644)).unwrap();
        write_atomic_private(&replaced, b"new").unwrap();
        assert_eq!((mode(&replaced), std::fs::read(&replaced).unwrap()), (0o600, b"new".to_vec()));
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("never.txt");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
