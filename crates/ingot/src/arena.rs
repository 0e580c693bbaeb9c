//! [`Arena`]: a model's pool of activation buffers, reused from call to call.
//!
//! Every predict needs buffers for its pre-processed features and its intermediate activations.
//! Freshly allocated, large buffers come from the kernel as zero pages (glibc maps allocations
//! past its mmap threshold and unmaps them on free), and touching them costs a page fault per
//! 4 KiB: a stream of text predicts spent a third of its CPU time in the kernel that way. The
//! arena keeps released buffers and hands them out again, so a steady stream of calls touches
//! memory that is already mapped. Buffers are 64-byte aligned and zeroed only when they grow:
//! each user overwrites the values it reads.
//!
//! A leaf module (docs/architecture.md): pre-processing and execution both draw from it.

use std::sync::{Mutex, PoisonError};

use crate::storage::AlignedBuf;

/// Most bytes of idle buffers an arena keeps; past this, returned buffers are freed.
const IDLE_LIMIT_BYTES: usize = 512 << 20;

/// A pool of reusable [`AlignedBuf`]s.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    /// By increasing capacity.
    buffers: Vec<AlignedBuf>,
    bytes: usize,
}

impl Arena {
    /// A buffer for at least `len` values: the smallest idle one that holds them (and is not
    /// more than four times too large), else a new one.
    pub(crate) fn take(&self, len: usize) -> Lease<'_> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let fit = idle.buffers.partition_point(|b| b.capacity() < len);
        let buf = match idle.buffers.get(fit) {
            Some(b) if b.capacity() <= len.saturating_mul(4).max(1 << 14) => {
                let b = idle.buffers.remove(fit);
                idle.bytes -= b.capacity() * 4;
                b
            }
            _ => {
                drop(idle);
                AlignedBuf::with_capacity(len)
            }
        };
        Lease { buf, arena: self }
    }

    fn give_back(&self, buf: AlignedBuf) {
        let bytes = buf.capacity() * 4;
        if bytes == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.bytes + bytes > IDLE_LIMIT_BYTES {
            return;
        }
        let at = idle.buffers.partition_point(|b| b.capacity() < buf.capacity());
        idle.buffers.insert(at, buf);
        idle.bytes += bytes;
    }

    /// Bytes held by idle buffers.
    #[cfg(test)]
    pub(crate) fn idle_bytes(&self) -> usize {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).bytes
    }
}

/// A buffer on loan from an [`Arena`]; it goes back when dropped.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    buf: AlignedBuf,
    arena: &'a Arena,
}

impl Lease<'_> {
    /// `len` values to overwrite (holding whatever was written last); see
    /// [`AlignedBuf::resize`].
    pub(crate) fn resize(&mut self, len: usize) -> &mut [f32] {
        self.buf.resize(len)
    }

    /// The values.
    pub(crate) fn as_slice(&self) -> &[f32] {
        self.buf.as_slice()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.arena.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(arena: &Arena, len: usize, v: f32) -> Lease<'_> {
        let mut lease = arena.take(len);
        lease.resize(len).fill(v);
        lease
    }

    #[test]
    fn released_buffers_are_reused_by_the_next_call() {
        let arena = Arena::default();
        let first = filled(&arena, 100_000, 1.0);
        let address = first.as_slice().as_ptr();
        drop(first);
        assert_eq!(arena.idle_bytes(), 100_000 * 4);
        let again = filled(&arena, 90_000, 2.0);
        assert_eq!(again.as_slice().as_ptr(), address, "the idle buffer is handed out again");
        assert!(again.as_slice().iter().all(|&v| v == 2.0));
        assert_eq!(arena.idle_bytes(), 0);
        // A buffer far too large for the request stays idle; a new one is made.
        drop(again);
        let small = filled(&arena, 100, 3.0);
        assert_ne!(small.as_slice().as_ptr(), address);
        assert_eq!(arena.idle_bytes(), 100_000 * 4);
    }

    #[test]
    fn idle_memory_is_bounded() {
        let arena = Arena::default();
        let big: Vec<Lease<'_>> = (0..3).map(|_| arena.take(IDLE_LIMIT_BYTES / 4 / 2)).collect();
        drop(big);
        assert!(arena.idle_bytes() <= IDLE_LIMIT_BYTES);
    }
}
