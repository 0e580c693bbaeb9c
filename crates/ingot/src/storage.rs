//! Aligned, read-only f32 storage: the one representation of weights that the file reader hands
//! out and the kernels read, and the aligned buffers the executor reuses between calls.
//!
//! A leaf module: it imports nothing else of the crate, so `format` and `kernels` can both
//! depend on it without depending on each other (docs/architecture.md).

use std::sync::Arc;

/// Floats per [`Line`].
pub(crate) const LINE_FLOATS: usize = 16;

/// Sixteen f32 values on a 64-byte boundary: the unit of owned f32 storage, so that vector loads
/// never straddle two cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([f32; LINE_FLOATS]);

/// The bytes of a file: memory-mapped, or owned.
pub(crate) enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// f32 values either owned (64-byte aligned) or borrowed in place from a file's bytes (no copy).
#[derive(Clone)]
pub(crate) enum F32Data {
    /// The first `len` values of `lines`.
    Owned { lines: Arc<[Line]>, len: usize },
    /// `len` f32 values at byte `start` of `bytes`; checked by [`F32Data::mapped`].
    Mapped { bytes: Arc<Bytes>, start: usize, len: usize },
}

impl std::fmt::Debug for F32Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            F32Data::Owned { len, .. } => write!(f, "F32Data::Owned({len})"),
            F32Data::Mapped { len, .. } => write!(f, "F32Data::Mapped({len})"),
        }
    }
}

impl F32Data {
    /// Borrows `len` little-endian f32 values at byte `start` of `bytes` in place; `None` if
    /// they are out of bounds, not 4-byte aligned in memory, or the target is big-endian.
    pub(crate) fn mapped(bytes: Arc<Bytes>, start: usize, len: usize) -> Option<F32Data> {
        let end = len.checked_mul(4).and_then(|n| n.checked_add(start))?;
        let slice = bytes.as_slice().get(start..end)?;
        let aligned = slice.as_ptr().align_offset(4) == 0;
        (aligned && cfg!(target_endian = "little")).then_some(F32Data::Mapped { bytes, start, len })
    }

    /// The values.
    pub(crate) fn as_slice(&self) -> &[f32] {
        match self {
            F32Data::Owned { lines, len } => &lines_as_floats(lines)[..*len],
            F32Data::Mapped { bytes, start, len } => {
                let b = &bytes.as_slice()[*start..*start + *len * 4];
                // SAFETY: `mapped` is the only constructor of this variant: it checked that the
                // bytes are in bounds and 4-byte aligned in memory on a little-endian target; any
                // bit pattern is a valid f32, and the bytes are immutable and kept alive by the
                // `Arc`.
                unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), *len) }
            }
        }
    }
}

impl From<Vec<f32>> for F32Data {
    fn from(v: Vec<f32>) -> Self {
        let lines = v
            .chunks(LINE_FLOATS)
            .map(|c| {
                let mut line = [0f32; LINE_FLOATS];
                line[..c.len()].copy_from_slice(c);
                Line(line)
            })
            .collect();
        F32Data::Owned { lines, len: v.len() }
    }
}

/// The f32 values of `lines`, end to end.
fn lines_as_floats(lines: &[Line]) -> &[f32] {
    // SAFETY: `Line` is a `repr(C)` array of 16 f32 without padding, so `lines` is
    // `lines.len() * 16` contiguous, initialized f32 values.
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<f32>(), lines.len() * LINE_FLOATS) }
}

/// A growable, 64-byte aligned f32 buffer: the executor's reusable activation storage (see
/// `crate::arena`).
///
/// New capacity is zeroed once, when the buffer grows; after that, values are whatever the last
/// user wrote, and each user overwrites what it reads. A buffer reused from call to call touches
/// no fresh memory.
#[derive(Default)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    /// Values in use.
    len: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} of {})", self.len, self.capacity())
    }
}

impl AlignedBuf {
    /// An empty buffer with room for `capacity` values.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut buf = AlignedBuf::default();
        buf.resize(capacity);
        buf.len = 0;
        buf
    }

    /// Values the buffer can hold without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.lines.len() * LINE_FLOATS
    }

    /// Makes the buffer `len` values long (growing it if needed) and returns them, holding
    /// whatever was written last: the caller overwrites what it needs.
    pub(crate) fn resize(&mut self, len: usize) -> &mut [f32] {
        let lines = len.div_ceil(LINE_FLOATS);
        if lines > self.lines.len() {
            self.lines.resize(lines, Line([0.0; LINE_FLOATS]));
        }
        self.len = len;
        &mut lines_as_floats_mut(&mut self.lines)[..len]
    }

    /// The buffer's values.
    pub(crate) fn as_slice(&self) -> &[f32] {
        &lines_as_floats(&self.lines)[..self.len]
    }
}

/// The f32 values of `lines`, end to end, for writing.
fn lines_as_floats_mut(lines: &mut [Line]) -> &mut [f32] {
    // SAFETY: as in `lines_as_floats`; the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<f32>(), lines.len() * LINE_FLOATS) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_data_is_aligned_and_keeps_its_values() {
        let values: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let data = F32Data::from(values.clone());
        assert_eq!(data.as_slice(), values.as_slice());
        assert_eq!(data.as_slice().as_ptr().align_offset(64), 0);
    }

    #[test]
    fn mapped_data_is_checked() {
        let floats: Vec<u8> = [1.5f32, -2.0, 3.25].iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut bytes = vec![0u8; 4];
        bytes.extend(&floats);
        let bytes = Arc::new(Bytes::Owned(bytes));
        // The allocator aligns the vector's bytes to at least 8.
        assert_eq!(bytes.as_slice().as_ptr().align_offset(8), 0);
        assert_eq!(F32Data::mapped(Arc::clone(&bytes), 4, 3).unwrap().as_slice(), [1.5, -2.0, 3.25]);
        assert!(F32Data::mapped(Arc::clone(&bytes), 4, 4).is_none(), "past the end");
        assert!(F32Data::mapped(Arc::clone(&bytes), usize::MAX - 2, 1).is_none(), "overflow");
        assert!(F32Data::mapped(bytes, 5, 1).is_none(), "misaligned");
    }

    #[test]
    fn aligned_buffers_grow_and_read_back_what_was_written() {
        let mut buf = AlignedBuf::with_capacity(10);
        assert_eq!(buf.capacity(), 16);
        for len in [3usize, 40, 7] {
            buf.resize(len).iter_mut().enumerate().for_each(|(i, v)| *v = i as f32);
            assert_eq!(buf.as_slice().len(), len);
            assert!(buf.as_slice().iter().enumerate().all(|(i, &v)| v == i as f32));
            assert_eq!(buf.as_slice().as_ptr().align_offset(64), 0);
        }
        assert!(buf.capacity() >= 40);
    }
}
