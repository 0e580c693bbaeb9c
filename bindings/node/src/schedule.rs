//! Where a call runs: on the libuv thread pool, or in place when this model's past calls of
//! that size took less time than the hop to the pool and back.
//!
//! A pool hop costs tens of microseconds (queueing, waking a worker, waking the event loop to
//! resolve the promise); a small tabular prediction takes one or two. Running such a call in
//! place holds the event loop for less time than the hop would delay it. Each model keeps, per
//! power-of-two bucket of rows, a moving average of how long its calls took, and a moving
//! average of what its pool calls spent on the hop; a call whose bucket is known to take less
//! than the hop (at least 50 µs, at most 100 µs; or a budget the caller set) runs in place,
//! every other call on the pool. The first call of each size always goes to the pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets of rows: 1, 2–3, 4–7, …; the last holds every larger call.
const BUCKETS: usize = 24;

/// The least budget: calls this short run in place whatever the hop costs (`JSON.parse` of a
/// 6 KB request body holds the event loop about as long: 40 µs on a Zen 5 core).
const MIN_BUDGET_NS: u64 = 50_000;

/// The most a measured hop lets a call hold the event loop.
const MAX_BUDGET_NS: u64 = 100_000;

/// Past call durations of one model, and the budget for running in place.
pub(crate) struct Schedule {
    /// The caller's budget in nanoseconds; `None`: the measured hop.
    fixed_ns: Option<u64>,
    /// Moving average of the hop to the pool and back, in nanoseconds (0: never measured).
    hop_ns: AtomicU64,
    /// Moving average of call durations in nanoseconds, per bucket (0: never measured).
    average_ns: [AtomicU64; BUCKETS],
}

impl Schedule {
    /// A schedule that runs calls expected to take under `inline_micros` µs in place (`Some(0)`:
    /// none), or under the measured hop (`None`).
    pub(crate) fn new(inline_micros: Option<u32>) -> Schedule {
        Schedule {
            fixed_ns: inline_micros.map(|us| u64::from(us) * 1000),
            hop_ns: AtomicU64::new(0),
            average_ns: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Whether a call of `rows` rows should run in place.
    pub(crate) fn in_place(&self, rows: usize) -> bool {
        let budget = self
            .fixed_ns
            .unwrap_or_else(|| self.hop_ns.load(Ordering::Relaxed).clamp(MIN_BUDGET_NS, MAX_BUDGET_NS));
        let average = self.average_ns[bucket(rows)].load(Ordering::Relaxed);
        average != 0 && average < budget
    }

    /// Records that a call of `rows` rows took `elapsed`.
    pub(crate) fn record(&self, rows: usize, elapsed: Duration) {
        update(&self.average_ns[bucket(rows)], elapsed);
    }

    /// Records that a pool call spent `elapsed` on the hop (its time from queueing to
    /// resolving, less its computation).
    pub(crate) fn record_hop(&self, elapsed: Duration) {
        update(&self.hop_ns, elapsed);
    }
}

/// Folds `sample` into the moving average in `slot` (about the last eight samples; a lost
/// update between threads only drops one sample).
fn update(slot: &AtomicU64, sample: Duration) {
    let ns = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX).max(1);
    let old = slot.load(Ordering::Relaxed);
    let new = if old == 0 { ns } else { old - old / 8 + ns / 8 };
    slot.store(new.max(1), Ordering::Relaxed);
}

/// The bucket of a call of `rows` rows: ⌊log₂ rows⌋, at most the last.
fn bucket(rows: usize) -> usize {
    (rows.max(1).ilog2() as usize).min(BUCKETS - 1)
}
