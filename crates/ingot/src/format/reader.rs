//! Reading and checking an `.ingot` file: [`Bundle`].
//!
//! The checks run in the order of docs/format.md §1; each failure names its check.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use safetensors::tensor::{Metadata, SafeTensorError, SafeTensors};

use super::manifest::Manifest;
use super::tensor::{DType, TensorData, TensorView};
use super::{FORMAT_MAJOR, FORMAT_VERSION};
use crate::error::{Error, Result};
use crate::storage::{Bytes, F32Data};

/// Header-size cap, as in the safetensors reference reader.
pub const MAX_HEADER_SIZE: usize = 100_000_000;
/// The data section starts at a multiple of this many bytes.
pub const DATA_ALIGNMENT: usize = 64;

/// Options for opening a bundle.
///
/// ```
/// let opts = ingot::ReadOptions::default();
/// assert!(opts.verify_checksum);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Verify the BLAKE3 checksum of the data section (on by default; turn off only for
    /// trusted files where load time matters more than catching corruption).
    pub verify_checksum: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { verify_checksum: true }
    }
}

/// Where one tensor lives in the data section.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte range relative to the data section.
    pub range: std::ops::Range<usize>,
}

/// A checked `.ingot` file: its manifest and its tensors (memory-mapped when opened from disk).
///
/// A `Bundle` only exists after every structural check of docs/format.md §1 has passed;
/// validating what the manifest *means* is [`crate::Model`]'s job.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("m.ingot");
/// # ingot::format::write_file(&path, &ingot::testing::tiny_manifest(), &[])?;
/// let bundle = ingot::Bundle::open(&path)?;
/// assert_eq!(bundle.manifest().model.name, "tiny");
/// # Ok(()) }
/// ```
pub struct Bundle {
    bytes: Arc<Bytes>,
    data_start: usize,
    manifest: Manifest,
    format_version: String,
    tensors: BTreeMap<String, TensorEntry>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("model", &self.manifest.model.name)
            .field("version", &self.manifest.model.version)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Bundle {
    /// Opens and checks a file, memory-mapping it.
    pub fn open(path: impl AsRef<Path>) -> Result<Bundle> {
        Self::open_with(path, ReadOptions::default())
    }

    /// Opens and checks a file with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<Bundle> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only. Ingot's writer never modifies a file in place (it writes a
        // temporary file and renames it), so a file mapped here is only changed underneath us if
        // another program truncates or rewrites it in place, which is the documented mmap caveat.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::parse(Bytes::Mapped(map), options)
    }

    /// Checks a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Bundle> {
        Self::from_bytes_with(bytes, ReadOptions::default())
    }

    /// Checks a file held in memory, with explicit options.
    pub fn from_bytes_with(bytes: Vec<u8>, options: ReadOptions) -> Result<Bundle> {
        Self::parse(Bytes::Owned(bytes), options)
    }

    fn parse(bytes: Bytes, options: ReadOptions) -> Result<Bundle> {
        let buf = bytes.as_slice();
        let (header_len, metadata) = SafeTensors::read_metadata(buf).map_err(map_st_error)?;
        // read_metadata has checked 8 + header_len <= buf.len().
        let data_start = header_len + 8;
        if buf.get(8) != Some(&b'{') {
            return Err(Error::format("header-start", "header does not start with `{`"));
        }
        if data_start % DATA_ALIGNMENT != 0 {
            return Err(Error::format(
                "data-alignment",
                format!("data section starts at byte {data_start}, not a multiple of {DATA_ALIGNMENT}"),
            ));
        }
        let tensors = tensor_entries(&metadata)?;
        let meta = metadata.metadata().as_ref();
        let (format_version, manifest) = read_manifest(meta)?;
        let data = buf.get(data_start..).unwrap_or_default();
        match &manifest.checksum {
            None => {
                return Err(Error::format("checksum-missing", "manifest has no `checksum`"));
            }
            Some(expected) if options.verify_checksum => {
                let found = blake3::hash(data).to_hex().to_string();
                if &found != expected {
                    return Err(Error::ChecksumMismatch { expected: expected.clone(), found });
                }
            }
            Some(_) => {}
        }
        Ok(Bundle { bytes: Arc::new(bytes), data_start, manifest, format_version, tensors })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The `ingot.format` version string of the file, e.g. `1.0`.
    pub fn format_version(&self) -> &str {
        &self.format_version
    }

    /// Total size of the file in bytes.
    pub fn file_size(&self) -> usize {
        self.bytes.as_slice().len()
    }

    /// The stored tensors with their location, sorted by name.
    pub fn tensor_entries(&self) -> &BTreeMap<String, TensorEntry> {
        &self.tensors
    }

    /// A float tensor as f32 values: borrowed in place for aligned little-endian F32 data,
    /// converted otherwise.
    pub(crate) fn f32_data(&self, name: &str) -> Option<Result<F32Data>> {
        let entry = self.tensors.get(name)?;
        if entry.dtype == DType::F32 {
            let start = self.data_start.checked_add(entry.range.start)?;
            if let Some(data) = F32Data::mapped(Arc::clone(&self.bytes), start, entry.range.len() / 4) {
                return Some(Ok(data));
            }
        }
        Some(self.tensor(name)?.to_f32_vec().map(F32Data::from))
    }

    /// The whole file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// An owned copy of a tensor, e.g. to write it into another bundle.
    ///
    /// ```
    /// # fn main() -> ingot::Result<()> {
    /// let bundle = ingot::Bundle::from_bytes(ingot::testing::logistic_bundle()?)?;
    /// let coef = bundle.tensor_data("coef").unwrap();
    /// assert_eq!((coef.shape.as_slice(), coef.data.len()), (&[1, 2][..], 8));
    /// # Ok(()) }
    /// ```
    pub fn tensor_data(&self, name: &str) -> Option<TensorData> {
        let view = self.tensor(name)?;
        Some(TensorData { dtype: view.dtype, shape: view.shape.to_vec(), data: view.data.to_vec() })
    }

    /// Borrows a tensor by name.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let entry = self.tensors.get(name)?;
        let start = self.data_start.checked_add(entry.range.start)?;
        let end = self.data_start.checked_add(entry.range.end)?;
        let data = self.bytes.as_slice().get(start..end)?;
        Some(TensorView { dtype: entry.dtype, shape: &entry.shape, data })
    }
}

fn tensor_entries(metadata: &Metadata) -> Result<BTreeMap<String, TensorEntry>> {
    let mut out = BTreeMap::new();
    for (name, info) in metadata.tensors() {
        let dtype_name = format!("{:?}", info.dtype);
        let dtype = DType::parse(&dtype_name).ok_or_else(|| {
            Error::format("tensor-dtype", format!("tensor `{name}` has unsupported dtype {dtype_name}"))
        })?;
        let (start, end) = info.data_offsets;
        out.insert(name, TensorEntry { dtype, shape: info.shape.clone(), range: start..end });
    }
    Ok(out)
}

fn read_manifest(meta: Option<&HashMap<String, String>>) -> Result<(String, Manifest)> {
    let meta = meta.ok_or_else(|| Error::format("metadata-missing", "no `__metadata__` in header"))?;
    let version = meta
        .get("ingot.format")
        .ok_or_else(|| Error::format("metadata-missing", "no `ingot.format` in `__metadata__`"))?;
    check_version(version)?;
    let text = meta
        .get("ingot.manifest")
        .ok_or_else(|| Error::format("metadata-missing", "no `ingot.manifest` in `__metadata__`"))?;
    let manifest: Manifest = serde_json::from_str(text)
        .map_err(|e| Error::format("manifest-json", format!("`ingot.manifest`: {e}")))?;
    for (key, value) in [("name", &manifest.model.name), ("version", &manifest.model.version)] {
        if let Some(plain) = meta.get(key) {
            if plain != value {
                return Err(Error::format(
                    "name-version",
                    format!("metadata `{key}` is `{plain}` but the manifest says `{value}`"),
                ));
            }
        }
    }
    Ok((version.clone(), manifest))
}

/// Checks an `ingot.format` string: `MAJOR.MINOR`, MAJOR not newer than this reader's.
///
/// ```
/// assert!(ingot::format::check_version("1.0").is_ok());
/// assert!(ingot::format::check_version("1.7").is_ok());
/// let err = ingot::format::check_version("2.0").unwrap_err();
/// assert!(err.to_string().contains("2.0") && err.to_string().contains("1.0"));
/// ```
pub fn check_version(version: &str) -> Result<()> {
    let parsed =
        version.split_once('.').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let Some((major, _minor)) = parsed else {
        return Err(Error::format(
            "format-version",
            format!("`ingot.format` is `{version}`, expected MAJOR.MINOR"),
        ));
    };
    if major > FORMAT_MAJOR {
        return Err(Error::UnsupportedFormatVersion {
            found: version.to_owned(),
            supported: FORMAT_VERSION.to_owned(),
        });
    }
    Ok(())
}

fn map_st_error(e: SafeTensorError) -> Error {
    let (check, detail) = match e {
        SafeTensorError::HeaderTooSmall => ("header-too-small", "file is shorter than 8 bytes".into()),
        SafeTensorError::HeaderTooLarge => {
            ("header-too-large", format!("header length exceeds {MAX_HEADER_SIZE} bytes"))
        }
        SafeTensorError::InvalidHeaderLength => {
            ("header-length", "header length points past the end of the file".into())
        }
        SafeTensorError::InvalidHeader(e) => ("header-utf8", format!("header is not UTF-8: {e}")),
        SafeTensorError::InvalidHeaderDeserialization(e) => ("header-json", e.to_string()),
        SafeTensorError::InvalidOffset(name) => {
            ("tensor-offsets", format!("tensor `{name}` does not start where the previous one ends"))
        }
        SafeTensorError::ValidationOverflow => {
            ("tensor-size-overflow", "element count × element size overflows".into())
        }
        SafeTensorError::TensorInvalidInfo | SafeTensorError::MisalignedSlice => {
            ("tensor-byte-length", "a tensor's byte range does not match its dtype and shape".into())
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            ("trailing-bytes", "the data section does not end exactly at the end of the file".into())
        }
        other => ("header-json", other.to_string()),
    };
    Error::format(check, detail)
}
