//! Ed25519 signatures over whole `.ingot` files, kept in a signature file beside the bundle.
//!
//! The manifest's `checksum` covers the data section only: it catches a corrupted tensor, not an
//! edited manifest. A signature covers every byte of the file. The signed message is
//! `b"ingot-bundle-signature-v1\0"` followed by the 32-byte BLAKE3 hash of the whole file, and
//! the signature lives in `<bundle>.sig` ([`signature_path`]). docs/format.md §7 specifies the
//! signature file and the key files.
//!
//! ```
//! # fn main() -> ingot::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let bundle = dir.path().join("logistic.ingot");
//! # std::fs::write(&bundle, ingot::testing::logistic_bundle()?).unwrap();
//! use ingot::signing::{sign_bundle, verify_bundle, SigningKey};
//!
//! let key = SigningKey::generate()?;
//! let sidecar = sign_bundle(&bundle, &key)?;
//! assert!(sidecar.ends_with("logistic.ingot.sig"));
//!
//! let public = key.verifying_key();
//! let verified = verify_bundle(&bundle, &public)?;
//! assert_eq!(verified.key_id(), public.key_id());
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use zeroize::Zeroizing;

use crate::atomic_file::{write_atomic, write_atomic_private};
use crate::error::{Error, Result};
use crate::format::Bundle;

/// What is signed: this prefix, then the 32-byte BLAKE3 hash of the file.
const MESSAGE_PREFIX: &[u8] = b"ingot-bundle-signature-v1\0";
/// The first line of a signature file.
const SIGNATURE_HEADER: &str = "ingot-signature v1";
/// The tag before the hex digits of a public key file.
const PUBLIC_TAG: &str = "ingot-ed25519-public";
/// The tag before the hex digits of a secret key file.
const SECRET_TAG: &str = "ingot-ed25519-secret";
/// Signature and key files larger than this are refused.
const MAX_FILE_SIZE: usize = 4096;
/// Bytes of BLAKE3(public key) that make its key id.
const KEY_ID_LEN: usize = 8;

/// An ed25519 secret key: signs bundles.
///
/// Its bytes are wiped from memory when it is dropped, and its `Debug` form shows only the key
/// id. On disk it is one line, `ingot-ed25519-secret <64 lowercase hex digits>`.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<SigningKey> {
        let mut seed = Zeroizing::new([0u8; ed25519_dalek::SECRET_KEY_LENGTH]);
        getrandom::fill(seed.as_mut_slice()).map_err(|e| {
            Error::signature(
                None,
                format!("cannot generate a key: the system's random number generator failed: {e}"),
            )
        })?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a secret key file.
    pub fn read(path: impl AsRef<Path>) -> Result<SigningKey> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let text = Zeroizing::new(read_capped(file, path)?);
        parse_secret(&text, Some(path))
    }

    /// Writes the key file atomically, readable and writable by its owner only (`0600` on Unix),
    /// replacing any file at `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = Zeroizing::new(format!("{SECRET_TAG} {}\n", hex(self.0.as_bytes())));
        write_atomic_private(path.as_ref(), text.as_bytes())
    }

    /// The public half, which verifies what this key signs.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }
}

impl FromStr for SigningKey {
    type Err = Error;

    /// Parses the text of a secret key file (trailing whitespace and newlines allowed).
    fn from_str(text: &str) -> Result<SigningKey> {
        parse_secret(text, None)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.verifying_key().key_id()).finish_non_exhaustive()
    }
}

/// An ed25519 public key: verifies bundle signatures.
///
/// On disk, and in its `Display` form, it is one line,
/// `ingot-ed25519-public <64 lowercase hex digits>`.
///
/// ```
/// let text = "ingot-ed25519-public 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\n";
/// let key: ingot::signing::VerifyingKey = text.parse()?;
/// assert_eq!(key.key_id().len(), 16);
/// assert_eq!(key.to_string(), text.trim_end());
/// # Ok::<(), ingot::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// Reads a public key file.
    pub fn read(path: impl AsRef<Path>) -> Result<VerifyingKey> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        parse_public(&read_capped(file, path)?, Some(path))
    }

    /// Writes the key file atomically, with the mode a plain new file gets under the umask.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), format!("{self}\n").as_bytes())
    }

    /// The key id: 16 hex digits, the first 8 bytes of BLAKE3 of the 32 key bytes. Signature
    /// files record it, so a wrong key is told apart from a forged signature.
    pub fn key_id(&self) -> String {
        key_id(&self.0)
    }
}

impl FromStr for VerifyingKey {
    type Err = Error;

    /// Parses the text of a public key file (trailing whitespace and newlines allowed).
    fn from_str(text: &str) -> Result<VerifyingKey> {
        parse_public(text, None)
    }
}

impl fmt::Display for VerifyingKey {
    /// The key file's line, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_TAG} {}", hex(self.0.as_bytes()))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey").field("key_id", &self.key_id()).finish()
    }
}

/// A parsed signature file: who signed (the key id), the BLAKE3 hash of the signed file and the
/// signature. Nothing is trusted until [`SignatureFile::verify`] succeeds.
///
/// Its `Display` form is the file's text:
///
/// ```text
/// ingot-signature v1
/// key-id <16 hex digits>
/// blake3 <64 hex digits: BLAKE3 of the whole bundle file>
/// signature <128 hex digits: the ed25519 signature>
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureFile {
    /// Where it was read from, named by errors.
    path: Option<PathBuf>,
    key_id: [u8; KEY_ID_LEN],
    file_hash: [u8; blake3::OUT_LEN],
    signature: ed25519_dalek::Signature,
}

impl SignatureFile {
    /// Reads and parses the signature file at `path` (usually [`signature_path`] of a bundle).
    ///
    /// A missing file is an [`Error::Signature`] saying the bundle is not signed; a file larger
    /// than 4 KiB is refused after reading at most that much.
    pub fn read(path: impl AsRef<Path>) -> Result<SignatureFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::signature(Some(path), "no such file: the bundle is not signed")
            }
            _ => Error::io(path, e),
        })?;
        parse_signature(&read_capped(file, path)?, Some(path))
    }

    /// Parses the text of a signature file. Errors name the line at fault.
    ///
    /// ```
    /// let err = ingot::signing::SignatureFile::parse("ingot-signature v1\nkey-id 12\n").unwrap_err();
    /// assert!(err.to_string().contains("line 2"), "{err}");
    /// ```
    pub fn parse(text: &str) -> Result<SignatureFile> {
        parse_signature(text, None)
    }

    /// The id of the key that made the signature, as recorded in the file (16 hex digits).
    pub fn key_id(&self) -> String {
        hex(&self.key_id)
    }

    /// Checks that `bundle_bytes` are the bytes that were signed and that the signature was made
    /// by `key`.
    ///
    /// Given the bytes a bundle was loaded from, this verifies exactly what runs, with no window
    /// in which the file could be replaced between the check and the load:
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("logistic.ingot");
    /// # std::fs::write(&path, ingot::testing::logistic_bundle()?).unwrap();
    /// # let secret = ingot::signing::SigningKey::generate()?;
    /// # ingot::signing::sign_bundle(&path, &secret)?;
    /// # let key = secret.verifying_key();
    /// use ingot::signing::{signature_path, SignatureFile};
    ///
    /// let bundle = ingot::Bundle::open(&path)?;
    /// SignatureFile::read(signature_path(&path))?.verify(bundle.as_bytes(), &key)?;
    /// let model = ingot::Model::from_bundle(bundle, &ingot::LoadOptions::default())?;
    /// # assert_eq!(model.metadata().name, "logistic");
    /// # Ok(()) }
    /// ```
    pub fn verify(&self, bundle_bytes: &[u8], key: &VerifyingKey) -> Result<VerifiedSignature> {
        self.check(blake3::hash(bundle_bytes), key)
    }

    /// Checks a file whose BLAKE3 hash is `hash`: the key id, then the hash, then the signature
    /// over the message built from `hash` (never from the hash the file records).
    fn check(&self, hash: blake3::Hash, key: &VerifyingKey) -> Result<VerifiedSignature> {
        let path = self.path.as_deref();
        let given = key.key_id();
        if self.key_id != key_id_bytes(&key.0) {
            return Err(Error::signature(
                path,
                format!("signed by key `{}`, not by the given key `{given}`", self.key_id()),
            ));
        }
        if hash.as_bytes() != &self.file_hash {
            return Err(Error::signature(
                path,
                format!(
                    "the bundle changed after it was signed: it hashes to `{}`, the signature is for `{}` (blake3)",
                    hash.to_hex(),
                    hex(&self.file_hash)
                ),
            ));
        }
        key.0.verify_strict(&message(&hash), &self.signature).map_err(|_| {
            Error::signature(
                path,
                format!("the signature does not verify under key `{given}`: it was altered or forged"),
            )
        })?;
        Ok(VerifiedSignature { key_id: given, file_hash: hash.to_hex().to_string() })
    }
}

impl fmt::Display for SignatureFile {
    /// The file's text, four lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{SIGNATURE_HEADER}")?;
        writeln!(f, "key-id {}", hex(&self.key_id))?;
        writeln!(f, "blake3 {}", hex(&self.file_hash))?;
        writeln!(f, "signature {}", hex(&self.signature.to_bytes()))
    }
}

impl fmt::Debug for SignatureFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureFile")
            .field("path", &self.path)
            .field("key_id", &self.key_id())
            .field("file_hash", &hex(&self.file_hash))
            .finish_non_exhaustive()
    }
}

/// What a successful verification established: the file with this BLAKE3 hash was signed by
/// the key with this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    key_id: String,
    file_hash: String,
}

impl VerifiedSignature {
    /// The id of the key that signed (16 hex digits).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The BLAKE3 hash of the whole bundle file (64 lowercase hex digits).
    pub fn file_hash(&self) -> &str {
        &self.file_hash
    }
}

/// Where a bundle's signature file lives: the bundle's path with `.sig` appended.
///
/// ```
/// use std::path::Path;
/// let sig = ingot::signing::signature_path("models/churn.ingot");
/// assert_eq!(sig, Path::new("models/churn.ingot.sig"));
/// ```
pub fn signature_path(bundle: impl AsRef<Path>) -> PathBuf {
    let mut path = bundle.as_ref().as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

/// Signs the bundle at `bundle` with `key`, writing its signature file ([`signature_path`])
/// atomically; returns that file's path.
///
/// Only a file that passes the structural checks and the checksum (as [`Bundle::open`] runs
/// them) is signed, and the signature is over exactly the bytes that were checked.
pub fn sign_bundle(bundle: impl AsRef<Path>, key: &SigningKey) -> Result<PathBuf> {
    let bundle = bundle.as_ref();
    let checked = Bundle::open(bundle)?;
    let hash = blake3::hash(checked.as_bytes());
    let signature = SignatureFile {
        path: None,
        key_id: key_id_bytes(&key.0.verifying_key()),
        file_hash: *hash.as_bytes(),
        signature: key.0.sign(&message(&hash)),
    };
    let path = signature_path(bundle);
    write_atomic(&path, signature.to_string().as_bytes())?;
    Ok(path)
}

/// Verifies the bundle at `bundle` against its signature file ([`signature_path`]) and `key`:
/// the file must hash to the recorded BLAKE3 hash, and the signature over it must be `key`'s.
///
/// Every failure (no signature file, a malformed one, another key, a changed bundle, a forged
/// signature) is an [`Error::Signature`]. Loading the bundle afterwards reads the file again;
/// to verify exactly the bytes that get loaded, use [`SignatureFile::verify`] on
/// [`Bundle::as_bytes`].
pub fn verify_bundle(bundle: impl AsRef<Path>, key: &VerifyingKey) -> Result<VerifiedSignature> {
    let bundle = bundle.as_ref();
    let signature = SignatureFile::read(signature_path(bundle))?;
    let file = File::open(bundle).map_err(|e| Error::io(bundle, e))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file).map_err(|e| Error::io(bundle, e))?;
    signature.check(hasher.finalize(), key)
}

/// The signed message for a file with BLAKE3 hash `hash`.
fn message(hash: &blake3::Hash) -> Vec<u8> {
    [MESSAGE_PREFIX, hash.as_bytes()].concat()
}

fn key_id_bytes(key: &ed25519_dalek::VerifyingKey) -> [u8; KEY_ID_LEN] {
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&blake3::hash(key.as_bytes()).as_bytes()[..KEY_ID_LEN]);
    id
}

fn key_id(key: &ed25519_dalek::VerifyingKey) -> String {
    hex(&key_id_bytes(key))
}

/// Reads at most [`MAX_FILE_SIZE`] bytes of UTF-8 text, refusing a larger file.
fn read_capped(file: File, path: &Path) -> Result<String> {
    let mut bytes = Vec::with_capacity(MAX_FILE_SIZE + 1);
    file.take(MAX_FILE_SIZE as u64 + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() > MAX_FILE_SIZE {
        return Err(too_large(Some(path)));
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::signature(
            Some(path),
            format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn too_large(path: Option<&Path>) -> Error {
    Error::signature(path, format!("larger than {MAX_FILE_SIZE} bytes: not a signature or key file"))
}

/// The lines of a small text file, numbered from 1, each without its line ending and trailing
/// whitespace.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().map(str::trim_end).enumerate().map(|(i, line)| (i + 1, line))
}

/// Refuses anything but blank lines after the last expected line, quoting it when `quote`.
fn expect_end<'a>(
    mut rest: impl Iterator<Item = (usize, &'a str)>,
    path: Option<&Path>,
    quote: bool,
) -> Result<()> {
    match rest.find(|(_, line)| !line.is_empty()) {
        Some((n, line)) => {
            let found = if quote { format!(": `{}`", excerpt(line)) } else { String::new() };
            Err(Error::signature(path, format!("line {n}: unexpected content after the last field{found}")))
        }
        None => Ok(()),
    }
}

fn parse_signature(text: &str, path: Option<&Path>) -> Result<SignatureFile> {
    if text.len() > MAX_FILE_SIZE {
        return Err(too_large(path));
    }
    let at = |n: usize, detail: String| Error::signature(path, format!("line {n}: {detail}"));
    let mut lines = numbered_lines(text);
    match lines.next() {
        Some((_, SIGNATURE_HEADER)) => {}
        Some((n, line)) => {
            let detail = match line.strip_prefix("ingot-signature ") {
                Some(version) => format!(
                    "unsupported signature file version `{}`; this reader knows `v1`",
                    excerpt(version)
                ),
                None => format!("expected `{SIGNATURE_HEADER}`, found `{}`", excerpt(line)),
            };
            return Err(at(n, detail));
        }
        None => return Err(Error::signature(path, format!("empty file; expected `{SIGNATURE_HEADER}`"))),
    }
    let key_id = hex_field::<KEY_ID_LEN>(&mut lines, 2, "key-id", path)?;
    let file_hash = hex_field::<{ blake3::OUT_LEN }>(&mut lines, 3, "blake3", path)?;
    let signature = hex_field::<{ ed25519_dalek::SIGNATURE_LENGTH }>(&mut lines, 4, "signature", path)?;
    expect_end(lines, path, true)?;
    Ok(SignatureFile {
        path: path.map(Path::to_path_buf),
        key_id,
        file_hash,
        signature: ed25519_dalek::Signature::from_bytes(&signature),
    })
}

/// The `N` bytes of line `n`, `<name> <2·N lowercase hex digits>`.
fn hex_field<'a, const N: usize>(
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    n: usize,
    name: &str,
    path: Option<&Path>,
) -> Result<[u8; N]> {
    let at = |detail: String| Error::signature(path, format!("line {n}: {detail}"));
    let (_, line) =
        lines.next().ok_or_else(|| at(format!("missing `{name} <…>`: the file ends before it")))?;
    let value = match line.split_once(' ') {
        Some((key, value)) if key == name => value,
        _ => return Err(at(format!("expected `{name} <hex digits>`, found `{}`", excerpt(line)))),
    };
    decode_hex::<N>(value).ok_or_else(|| {
        at(format!("`{name}` must be {} lowercase hex digits, found `{}`", 2 * N, excerpt(value)))
    })
}

/// The two kinds of key file.
#[derive(Clone, Copy)]
enum KeyKind {
    Public,
    Secret,
}

impl KeyKind {
    fn tag(self) -> &'static str {
        match self {
            KeyKind::Public => PUBLIC_TAG,
            KeyKind::Secret => SECRET_TAG,
        }
    }
}

/// The 32 key bytes of a key file of kind `kind`. Errors about a secret key file never quote it.
fn parse_key(text: &str, kind: KeyKind, path: Option<&Path>) -> Result<Zeroizing<[u8; 32]>> {
    if text.len() > MAX_FILE_SIZE {
        return Err(too_large(path));
    }
    let tag = kind.tag();
    let expected = format!("`{tag} <64 lowercase hex digits>`");
    let mut lines = numbered_lines(text);
    let Some((n, line)) = lines.next().filter(|(_, line)| !line.is_empty()) else {
        return Err(Error::signature(path, format!("empty key file; expected {expected}")));
    };
    let at = |detail: String| Error::signature(path, format!("line {n}: {detail}"));
    let (found_tag, digits) = line.split_once(' ').unwrap_or((line, ""));
    if found_tag != tag {
        return Err(at(match (kind, found_tag) {
            (KeyKind::Public, SECRET_TAG) => {
                "this is a secret key file; verifying takes the public key (`.pub`)".to_string()
            }
            (KeyKind::Secret, PUBLIC_TAG) => {
                "this is a public key file; signing takes the secret key (`.key`)".to_string()
            }
            (KeyKind::Public, _) => format!("expected {expected}, found `{}`", excerpt(line)),
            (KeyKind::Secret, _) => format!("expected {expected}"),
        }));
    }
    let bytes = decode_hex::<32>(digits).map(Zeroizing::new).ok_or_else(|| match kind {
        KeyKind::Public => {
            at(format!("the key must be 64 lowercase hex digits, found `{}`", excerpt(digits)))
        }
        KeyKind::Secret => {
            at(format!("the key must be 64 lowercase hex digits, found {} characters", digits.len()))
        }
    })?;
    expect_end(lines, path, matches!(kind, KeyKind::Public))?;
    Ok(bytes)
}

fn parse_public(text: &str, path: Option<&Path>) -> Result<VerifyingKey> {
    let bytes = parse_key(text, KeyKind::Public, path)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| Error::signature(path, "line 1: not an ed25519 public key (not a curve point)"))?;
    if key.is_weak() {
        return Err(Error::signature(path, "line 1: a weak (small-order) ed25519 key, which proves nothing"));
    }
    Ok(VerifyingKey(key))
}

fn parse_secret(text: &str, path: Option<&Path>) -> Result<SigningKey> {
    let bytes = parse_key(text, KeyKind::Secret, path)?;
    Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&bytes)))
}

/// At most 40 characters of `text`, escaped, for an error message.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut out: String = text.chars().take(MAX_CHARS).flat_map(char::escape_debug).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Exactly `2 * N` lowercase hex digits as `N` bytes.
fn decode_hex<const N: usize>(digits: &str) -> Option<[u8; N]> {
    let digits = digits.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let &[hi, lo] = pair else { return None };
        *byte = nibble(hi)? << 4 | nibble(lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A signed logistic bundle in a fresh directory: (directory, bundle path, the key).
    fn signed_bundle() -> (tempfile::TempDir, PathBuf, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("m.ingot");
        std::fs::write(&bundle, crate::testing::logistic_bundle().unwrap()).unwrap();
        let key = SigningKey::generate().unwrap();
        sign_bundle(&bundle, &key).unwrap();
        (dir, bundle, key)
    }

    fn detail(err: &Error) -> &str {
        match err {
            Error::Signature { detail, .. } => detail,
            other => panic!("not a signature error: {other}"),
        }
    }

    /// The text of a valid signature file.
    fn valid_text() -> &'static str {
        static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let (_dir, bundle, _key) = signed_bundle();
            std::fs::read_to_string(signature_path(&bundle)).unwrap()
        });
        &TEXT
    }

    #[test]
    fn a_signed_bundle_verifies_from_disk_and_from_memory() {
        let (_dir, bundle, key) = signed_bundle();
        let public = key.verifying_key();
        let verified = verify_bundle(&bundle, &public).unwrap();
        let bytes = std::fs::read(&bundle).unwrap();
        assert_eq!(verified.key_id(), public.key_id());
        assert_eq!(verified.file_hash(), blake3::hash(&bytes).to_hex().as_str());

        let sidecar = SignatureFile::read(signature_path(&bundle)).unwrap();
        assert_eq!(sidecar.verify(&bytes, &public).unwrap(), verified);
        assert_eq!(sidecar.key_id(), public.key_id());

        let text = std::fs::read_to_string(signature_path(&bundle)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "ingot-signature v1");
        assert_eq!(lines[1], format!("key-id {}", public.key_id()));
        assert_eq!(lines[2], format!("blake3 {}", verified.file_hash()));
        assert_eq!(lines[3].len(), "signature ".len() + 128);
        assert_eq!(SignatureFile::parse(&text).unwrap().to_string(), text);
    }

    #[test]
    fn the_message_is_the_prefix_then_the_file_hash() {
        let hash = blake3::hash(b"file");
        let m = message(&hash);
        assert_eq!(m.len(), 26 + 32);
        assert_eq!(&m[..26], b"ingot-bundle-signature-v1\0");
        assert_eq!(&m[26..], hash.as_bytes());
        // A signature made over that message, outside this module, verifies.
        let (_dir, bundle, key) = signed_bundle();
        let bytes = std::fs::read(&bundle).unwrap();
        let sidecar = SignatureFile::read(signature_path(&bundle)).unwrap();
        let expected = key.0.sign(&[MESSAGE_PREFIX, blake3::hash(&bytes).as_bytes()].concat());
        assert_eq!(sidecar.signature, expected);
    }

    #[test]
    fn one_changed_byte_anywhere_fails_even_where_the_checksum_does_not_look() {
        let (_dir, bundle, key) = signed_bundle();
        let public = key.verifying_key();
        let original = std::fs::read(&bundle).unwrap();
        // The header length, the manifest (the producer's name `test`), the last data byte.
        let producer = original.windows(4).position(|w| w == b"test").unwrap();
        for at in [0, producer, original.len() - 1] {
            let mut bytes = original.clone();
            bytes[at] ^= 0x20;
            std::fs::write(&bundle, &bytes).unwrap();
            let err = verify_bundle(&bundle, &public).unwrap_err();
            assert!(detail(&err).contains("the bundle changed after it was signed"), "byte {at}: {err}");
            let sidecar = SignatureFile::read(signature_path(&bundle)).unwrap();
            assert!(sidecar.verify(&bytes, &public).is_err(), "byte {at}");
        }
        // `test` → `Test` in the manifest still loads: the checksum covers the data section only.
        let mut bytes = original.clone();
        bytes[producer] = b'T';
        assert!(crate::Model::from_bytes(bytes).is_ok());
    }

    #[test]
    fn a_changed_signature_or_hash_line_fails() {
        let (_dir, bundle, key) = signed_bundle();
        let public = key.verifying_key();
        let bytes = std::fs::read(&bundle).unwrap();
        let text = std::fs::read_to_string(signature_path(&bundle)).unwrap();
        let last = text.trim_end().chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        let forged = format!("{}{flipped}\n", &text.trim_end()[..text.trim_end().len() - 1]);
        let err = SignatureFile::parse(&forged).unwrap().verify(&bytes, &public).unwrap_err();
        assert!(detail(&err).contains("does not verify"), "{err}");

        // A hash line rewritten to match tampered bytes still needs a signature over them.
        let mut tampered = bytes.clone();
        tampered[0] ^= 1;
        let rehashed: String = text
            .lines()
            .map(|l| match l.strip_prefix("blake3 ") {
                Some(_) => format!("blake3 {}\n", blake3::hash(&tampered).to_hex()),
                None => format!("{l}\n"),
            })
            .collect();
        let err = SignatureFile::parse(&rehashed).unwrap().verify(&tampered, &public).unwrap_err();
        assert!(detail(&err).contains("does not verify"), "{err}");
    }

    #[test]
    fn another_key_fails_naming_both_key_ids() {
        let (_dir, bundle, key) = signed_bundle();
        let other = SigningKey::generate().unwrap().verifying_key();
        let err = verify_bundle(&bundle, &other).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&key.verifying_key().key_id()), "{message}");
        assert!(message.contains(&other.key_id()), "{message}");
        assert!(matches!(&err, Error::Signature { path: Some(p), .. } if *p == signature_path(&bundle)));
        assert_eq!(err.code(), "IngotSignatureError");
        assert!(!err.is_caller_error());
    }

    #[test]
    fn an_unsigned_bundle_fails_saying_so() {
        let (_dir, bundle, key) = signed_bundle();
        std::fs::remove_file(signature_path(&bundle)).unwrap();
        let err = verify_bundle(&bundle, &key.verifying_key()).unwrap_err();
        assert!(matches!(&err, Error::Signature { path: Some(p), .. } if *p == signature_path(&bundle)));
        assert!(err.to_string().contains("the bundle is not signed"), "{err}");
    }

    #[test]
    fn only_a_valid_bundle_is_signed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not.ingot");
        std::fs::write(&path, b"not a bundle").unwrap();
        let err = sign_bundle(&path, &SigningKey::generate().unwrap()).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        assert!(!signature_path(&path).exists());
    }

    #[test]
    fn malformed_signature_files_name_the_line() {
        let valid = valid_text();
        let lines: Vec<&str> = valid.lines().collect();
        let with = |n: usize, replacement: &str| -> String {
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{}\n", if i == n { replacement } else { l }))
                .collect()
        };
        let cases = [
            (String::new(), "empty file"),
            ("signature v1\n".to_string(), "line 1: expected `ingot-signature v1`"),
            (with(0, "ingot-signature v2"), "line 1: unsupported signature file version `v2`"),
            (with(1, "key-id 0123"), "line 2: `key-id` must be 16 lowercase hex digits, found `0123`"),
            (with(1, "keyid 0123456789abcdef"), "line 2: expected `key-id <hex digits>`"),
            (with(2, &lines[2].to_uppercase()), "line 3: expected `blake3 <hex digits>`"),
            (with(2, &format!("blake3 {}", lines[2][7..].to_uppercase())), "line 3: `blake3` must be 64"),
            (with(2, &format!("blake3 {}", "g".repeat(64))), "line 3: `blake3` must be 64"),
            (with(3, "signature 00"), "line 4: `signature` must be 128"),
            (format!("{valid}\nmore\n"), "line 6: unexpected content"),
            (format!("{}\n{}\n", lines[0], lines[1]), "line 3: missing `blake3 <…>`"),
            (with(1, "key-id  0123456789abcdef"), "line 2: `key-id` must be 16"),
            (with(1, "key-id\u{1b}[31m"), "found `key-id\\u{1b}[31m`"),
        ];
        for (text, expected) in cases {
            let err = SignatureFile::parse(&text).unwrap_err();
            assert!(detail(&err).contains(expected), "{text:?}: {err}");
        }
        // CRLF line endings, trailing spaces and blank lines at the end are fine.
        let relaxed: String = valid.lines().map(|l| format!("{l}  \r\n")).collect::<String>() + "\n\n";
        assert_eq!(SignatureFile::parse(&relaxed).unwrap(), SignatureFile::parse(valid).unwrap());
    }

    #[test]
    fn a_read_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ingot.sig");
        std::fs::write(&path, "ingot-signature v1\nkey-id zz\n").unwrap();
        let err = SignatureFile::read(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "signature error in `{}`: line 2: `key-id` must be 16 lowercase hex digits, found `zz`",
                path.display()
            )
        );
        std::fs::write(&path, b"ingot-signature v1\n\xff\n").unwrap();
        assert!(detail(&SignatureFile::read(&path).unwrap_err()).contains("not UTF-8"));
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.sig");
        let big = format!("{}{}", valid_text(), " ".repeat(MAX_FILE_SIZE));
        std::fs::write(&path, &big).unwrap();
        for err in [SignatureFile::read(&path).unwrap_err(), SignatureFile::parse(&big).unwrap_err()] {
            assert!(detail(&err).contains("larger than 4096 bytes"), "{err}");
        }
        std::fs::write(&path, format!("{PUBLIC_TAG} {}", "0".repeat(MAX_FILE_SIZE))).unwrap();
        assert!(detail(&VerifyingKey::read(&path).unwrap_err()).contains("larger than 4096 bytes"));
    }

    #[test]
    fn key_files_round_trip_and_the_secret_one_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let (secret_path, public_path) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        key.write(&secret_path).unwrap();
        key.verifying_key().write(&public_path).unwrap();
        let secret = std::fs::read_to_string(&secret_path).unwrap();
        assert!(secret.starts_with("ingot-ed25519-secret ") && secret.ends_with('\n') && secret.len() == 86);
        let public = std::fs::read_to_string(&public_path).unwrap();
        assert_eq!(public, format!("{}\n", key.verifying_key()));
        assert_eq!(SigningKey::read(&secret_path).unwrap().verifying_key(), key.verifying_key());
        assert_eq!(VerifyingKey::read(&public_path).unwrap(), key.verifying_key());
        assert_eq!(format!("{public}  \n\n").parse::<VerifyingKey>().unwrap(), key.verifying_key());
        assert!(!format!("{key:?}").contains(&secret[21..85]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret_path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn malformed_key_files_say_what_is_wrong() {
        let key = SigningKey::generate().unwrap();
        let public = key.verifying_key().to_string();
        let digits = &public[PUBLIC_TAG.len() + 1..];
        let secret = format!("{SECRET_TAG} {digits}");
        let err = |text: &str| detail(&text.parse::<VerifyingKey>().unwrap_err()).to_string();
        assert!(err("").contains("empty key file"));
        assert!(err(&secret).contains("line 1: this is a secret key file"));
        assert!(err(&format!("{public}\nextra")).contains("line 2: unexpected content"));
        assert!(err(&format!("{PUBLIC_TAG} {}", &digits[1..])).contains("must be 64 lowercase hex digits"));
        assert!(err(&format!("{PUBLIC_TAG}  {digits}")).contains("line 1: the key must be 64"));
        assert!(err(&format!("ssh-ed25519 {digits}")).contains("expected `ingot-ed25519-public"));
        // y = 1 encodes the identity, a small-order point.
        assert!(err(&format!("{PUBLIC_TAG} 01{}", "0".repeat(62))).contains("weak"));
        let off_curve = (2u8..)
            .map(|y| [[y].as_slice(), &[0; 31]].concat())
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b.as_slice().try_into().unwrap()).is_err())
            .unwrap();
        assert!(
            err(&format!("{PUBLIC_TAG} {}", hex(&off_curve))).contains("line 1: not an ed25519 public key")
        );
        let secret_err = public.parse::<SigningKey>().unwrap_err();
        assert!(detail(&secret_err).contains("this is a public key file"));
        // Nothing of a secret key file is quoted back.
        for text in [
            format!("{SECRET_TAG} {}zz", &digits[2..]),
            format!("ingot-ed25519-secrt {digits}"),
            digits.to_string(),
            format!("{SECRET_TAG} {digits}\n{digits}"),
        ] {
            let err = text.parse::<SigningKey>().unwrap_err().to_string();
            assert!(!err.contains(&digits[2..34]), "{err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parsers_never_panic_on_any_text(text in any::<String>()) {
            let _ = SignatureFile::parse(&text);
            let _ = text.parse::<VerifyingKey>();
            let _ = text.parse::<SigningKey>();
        }

        #[test]
        fn parsers_never_panic_on_near_valid_text(at in 0usize..300, c in any::<char>(), cut in any::<bool>()) {
            let valid = valid_text();
            let at = valid.char_indices().nth(at % valid.chars().count()).map_or(0, |(i, _)| i);
            let mut text = valid.to_string();
            if cut { text.truncate(at) } else { text.insert(at, c) }
            if let Ok(parsed) = SignatureFile::parse(&text) {
                // Only whitespace at a line end, or a blank line at the end, may be added.
                prop_assert_eq!(parsed, SignatureFile::parse(valid).unwrap());
            }
            let key = format!("{}\n", SigningKey::generate().unwrap().verifying_key());
            let at = at.min(key.len() - 1);
            let mut key = key;
            if cut { key.truncate(at) } else if key.is_char_boundary(at) { key.insert(at, c) }
            let _ = key.parse::<VerifyingKey>();
        }
    }
}
