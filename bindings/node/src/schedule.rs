//! Where a call runs: on the libuv thread pool, or in place when this model's past calls of
//! that size took less than the hop to the pool would cost.
//!
//! A pool hop costs tens of microseconds (queueing, waking a worker, waking the event loop to
//! resolve the promise); a small tabular prediction takes one or two. Running such a call in
//! place holds the event loop for less time than the hop itself would. Each model keeps, per
//! power-of-two bucket of rows, a moving average of how long its calls took; a call whose bucket
//! is known and under the budget runs in place, every other call on the pool. The first call of
//! each size always goes to the pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets of rows: 1, 2–3, 4–7, …; the last holds every larger call.
const BUCKETS: usize = 24;

/// The default budget: calls expected to take less run in place.
pub(crate) const DEFAULT_INLINE_MICROS: u32 = 20;

/// Past call durations of one model, and the budget for running in place.
pub(crate) struct Schedule {
    budget_ns: u64,
    /// Moving average of call durations in nanoseconds, per bucket (0: never measured).
    average_ns: [AtomicU64; BUCKETS],
}

impl Schedule {
    /// A schedule that runs calls expected to take under `inline_micros` µs in place (0: none).
    pub(crate) fn new(inline_micros: u32) -> Schedule {
        Schedule {
            budget_ns: u64::from(inline_micros) * 1000,
            average_ns: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Whether a call of `rows` rows should run in place.
    pub(crate) fn in_place(&self, rows: usize) -> bool {
        let average = self.average_ns[bucket(rows)].load(Ordering::Relaxed);
        average != 0 && average < self.budget_ns
    }

    /// Records that a call of `rows` rows took `elapsed`.
    pub(crate) fn record(&self, rows: usize, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        let slot = &self.average_ns[bucket(rows)];
        let old = slot.load(Ordering::Relaxed);
        // An average over about the last eight calls; a lost update between threads only
        // drops one sample.
        let new = if old == 0 { ns } else { old - old / 8 + ns / 8 };
        slot.store(new.max(1), Ordering::Relaxed);
    }
}

/// The bucket of a call of `rows` rows: ⌊log₂ rows⌋, at most the last.
fn bucket(rows: usize) -> usize {
    (rows.max(1).ilog2() as usize).min(BUCKETS - 1)
}
