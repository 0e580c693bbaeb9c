//! The fork-join pool the kernels split work on.
//!
//! A model call runs dozens of short parallel regions back to back (a sentence encoder at batch 1:
//! about 40, each a few tens of microseconds). A pool whose idle workers sleep at once (rayon's)
//! pays a wake-up — a futex and a reschedule, tens of microseconds on a virtual machine — for
//! every region, which ate most of the second core's gain. Here idle workers spin between the
//! regions of a call (at most [`SPIN`]), so consecutive regions find them awake; the caller runs
//! tasks too. Once no call is running ([`call`] marks them), a worker spins only [`GRACE`] more
//! before it parks, so a process between requests burns no CPU.
//!
//! One region runs at a time. A call made while the pool is busy (another thread's model call, or
//! a task that itself splits) runs its tasks on the calling thread, which is what concurrent
//! requests want anyway: they already keep the cores busy.
//!
//! The pool has `INGOT_NUM_THREADS` threads in all (the caller included; default: the number of
//! CPUs the process may use), read once at the first parallel call. [`with_threads`] lowers the
//! count for one call (a model loaded with `LoadOptions::threads`).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks while a call is running.
const SPIN: Duration = Duration::from_micros(500);

/// How long an idle worker spins once no call is running.
const GRACE: Duration = Duration::from_micros(20);

/// Calls running now (see [`call`]).
static ACTIVE_CALLS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Most threads a region started on this thread may use (0: the whole pool).
    static LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` as one call: the pool's workers keep spinning between its regions, and stop soon
/// after the last call ends.
pub(crate) fn call<T>(f: impl FnOnce() -> T) -> T {
    struct Active;
    impl Drop for Active {
        fn drop(&mut self) {
            ACTIVE_CALLS.fetch_sub(1, Ordering::Release);
        }
    }
    ACTIVE_CALLS.fetch_add(1, Ordering::AcqRel);
    let _active = Active;
    f()
}

/// Runs `f` with at most `threads` threads (the caller included) in the regions it starts.
pub(crate) fn with_threads<T>(threads: Option<usize>, f: impl FnOnce() -> T) -> T {
    let Some(threads) = threads else { return f() };
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            LIMIT.set(self.0);
        }
    }
    let _restore = Restore(LIMIT.replace(threads.max(1)));
    f()
}

/// Most tasks in one region (the task counter has 16 bits).
const MAX_TASKS: usize = u16::MAX as usize;

/// Threads that run the regions this thread starts, the caller included.
pub(crate) fn threads() -> usize {
    let all = pool().workers + 1;
    match LIMIT.get() {
        0 => all,
        limit => limit.min(all),
    }
}

/// Threads of the pool, the caller included (`INGOT_NUM_THREADS`, default the CPUs the process
/// may use).
pub fn pool_threads() -> usize {
    pool().workers + 1
}

/// Runs `f(i)` for every `i` in `0..tasks`, spread over the pool; returns when all have run.
///
/// A panic in a task is re-raised on the caller once every task has finished.
pub(crate) fn for_each(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    let pool = pool();
    let helpers = threads() - 1;
    if tasks <= 1 || helpers == 0 {
        (0..tasks).for_each(f);
        return;
    }
    let mut epoch = match pool.submit.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            (0..tasks).for_each(f);
            return;
        }
    };
    for start in (0..tasks).step_by(MAX_TASKS) {
        let count = MAX_TASKS.min(tasks - start);
        let shifted = |i: usize| f(start + i);
        *epoch = epoch.wrapping_add(1);
        pool.shared.run(*epoch, count, helpers, &shifted);
    }
}

/// Calls `f(i, part)` for each of the consecutive parts of `out` that `bounds` delimits
/// (`part i = out[bounds[i]..bounds[i + 1]]`), in parallel.
pub(crate) fn for_each_part_mut<T: Send>(
    out: &mut [T],
    bounds: &[usize],
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    assert!(bounds.windows(2).all(|w| w[0] <= w[1]) && bounds.last().is_none_or(|&b| b <= out.len()));
    let base = SendPtr(out.as_mut_ptr());
    for_each(bounds.len().saturating_sub(1), &|i| {
        let (a, b) = (bounds[i], bounds[i + 1]);
        let base = &base;
        // SAFETY: the bounds are increasing and within `out` (asserted above), so the parts are
        // disjoint, and each index runs exactly once: no two tasks alias a part.
        let part = unsafe { std::slice::from_raw_parts_mut(base.0.add(a), b - a) };
        f(i, part)
    });
}

/// Calls `f(i, chunk)` for consecutive chunks of `chunk` elements of `out` (the last may be
/// shorter), in parallel.
pub(crate) fn for_each_chunk_mut<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let chunk = chunk.max(1);
    let bounds: Vec<usize> = (0..out.len().div_ceil(chunk)).map(|i| i * chunk).chain([out.len()]).collect();
    for_each_part_mut(out, &bounds, f);
}

/// [`for_each_chunk_mut`] with fallible tasks: every chunk runs, and the result is the error of
/// the earliest failing chunk (the one a serial loop would have stopped at), if any.
pub(crate) fn try_for_each_chunk_mut<T: Send, E: Send + Sync>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let errors: Vec<OnceLock<E>> = (0..out.len().div_ceil(chunk.max(1))).map(|_| OnceLock::new()).collect();
    for_each_chunk_mut(out, chunk, |c, part| {
        if let Err(e) = f(c, part) {
            let _ = errors[c].set(e);
        }
    });
    errors.into_iter().find_map(OnceLock::into_inner).map_or(Ok(()), Err)
}

/// A buffer's base pointer shared by the tasks of one region, each writing its own disjoint
/// part of the buffer.
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
// SAFETY: only used to hand disjoint parts of one `&mut [T]` (T: Send) to the pool's threads.
unsafe impl<T: Send> Sync for SendPtr<T> {}

struct Pool {
    shared: &'static Shared,
    workers: usize,
    /// Held while a region runs; holds the last epoch.
    submit: Mutex<u32>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::env::var("INGOT_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let shared: &'static Shared = Box::leak(Box::new(Shared::default()));
        let workers = (1..threads)
            .map_while(|i| {
                std::thread::Builder::new()
                    .name(format!("ingot-worker-{i}"))
                    .spawn(move || shared.work())
                    .ok()
            })
            .count();
        Pool { shared, workers, submit: Mutex::new(0) }
    })
}

/// What the submitter and the workers share.
///
/// `state` packs the region's epoch (high 32 bits), its task count (16 bits) and the next
/// unclaimed task (low 16 bits), so a task is claimed with one compare-and-swap that also proves
/// the region is still the one the claimer saw: a worker never runs a task of a finished region.
#[derive(Default)]
struct Shared {
    state: AtomicU64,
    /// Workers that may still join the running region.
    seats: AtomicUsize,
    job: AtomicPtr<Job>,
    done: AtomicUsize,
    panicked: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// The task function of the running region, on the submitter's stack.
struct Job {
    f: *const (dyn Fn(usize) + Sync),
}

fn epoch_of(state: u64) -> u32 {
    (state >> 32) as u32
}

impl Shared {
    /// Runs one region: publishes it, takes part, waits for every task.
    fn run(&self, epoch: u32, tasks: usize, helpers: usize, f: &(dyn Fn(usize) + Sync)) {
        let f: *const (dyn Fn(usize) + Sync + '_) = f;
        // SAFETY: (lifetime) `job` outlives every use of it: workers dereference it only after
        // claiming a task of this epoch, and this function returns only once all `tasks` claimed
        // tasks have finished.
        let f = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync + 'static)>(
                f,
            )
        };
        let job = Job { f };
        self.done.store(0, Ordering::Relaxed);
        self.seats.store(helpers, Ordering::Relaxed);
        self.job.store(ptr::from_ref(&job).cast_mut(), Ordering::Release);
        self.state.store((u64::from(epoch) << 32) | ((tasks as u64) << 16), Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_all();
        }
        while let Some(i) = self.claim(epoch) {
            self.execute(&job, i);
        }
        let mut spins = 0u32;
        while self.done.load(Ordering::Acquire) < tasks {
            spins = spins.saturating_add(1);
            if spins < 4096 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.job.store(ptr::null_mut(), Ordering::Relaxed);
        if self.panicked.swap(false, Ordering::AcqRel) {
            resume_unwind(Box::new("a parallel task panicked"));
        }
    }

    /// Claims the next task of region `epoch`, if any is left.
    fn claim(&self, epoch: u32) -> Option<usize> {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let (tasks, next) = ((s >> 16) & 0xffff, s & 0xffff);
            if epoch_of(s) != epoch || next >= tasks {
                return None;
            }
            match self.state.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(next as usize),
                Err(now) => s = now,
            }
        }
    }

    fn execute(&self, job: &Job, i: usize) {
        // SAFETY: see `run`: the region that owns `job` waits for this task.
        let f = unsafe { &*job.f };
        if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
            self.panicked.store(true, Ordering::Release);
        }
        self.done.fetch_add(1, Ordering::Release);
    }

    /// A worker's life: wait for a region, take a seat in it if one is left, run its tasks,
    /// repeat.
    fn work(&self) {
        let mut seen = 0u32;
        loop {
            seen = self.next_epoch(seen);
            let seated = self.seats.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| s.checked_sub(1));
            if seated.is_err() {
                continue;
            }
            while let Some(i) = self.claim(seen) {
                let job = self.job.load(Ordering::Acquire);
                // SAFETY: a task of region `seen` is claimed, so its submitter is waiting and
                // `job` (published before the epoch) points at its live `Job`.
                self.execute(unsafe { &*job }, i);
            }
        }
    }

    /// Spins, then parks, until a region newer than `seen` is published: spins up to [`SPIN`]
    /// while a call runs, [`GRACE`] when none does.
    fn next_epoch(&self, seen: u32) -> u32 {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = epoch_of(self.state.load(Ordering::Acquire));
            if e != seen {
                return e;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                let budget = if ACTIVE_CALLS.load(Ordering::Acquire) > 0 { SPIN } else { GRACE };
                if start.elapsed() > budget {
                    break;
                }
            }
            std::hint::spin_loop();
        }
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        loop {
            let e = epoch_of(self.state.load(Ordering::SeqCst));
            if e != seen {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                return e;
            }
            guard = self.wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn a_failing_region_reports_its_earliest_failing_chunk() {
        let mut out = vec![0u32; 1000];
        let result = try_for_each_chunk_mut(&mut out, 10, |c, part| {
            part.fill(1);
            if c % 7 == 3 {
                Err(c)
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err(3));
        assert!(out.iter().all(|&v| v == 1), "every chunk still runs");
        assert_eq!(try_for_each_chunk_mut(&mut out, 10, |_, _| Ok::<(), usize>(())), Ok(()));
    }

    #[test]
    fn a_thread_limit_of_one_keeps_every_task_on_the_caller() {
        let me = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        with_threads(Some(1), || {
            assert_eq!(threads(), 1);
            for_each(64, &|_| {
                if std::thread::current().id() != me {
                    elsewhere.fetch_add(1, Ordering::Relaxed);
                }
            });
        });
        assert_eq!(elsewhere.load(Ordering::Relaxed), 0);
        assert_eq!(threads(), pool_threads(), "the limit ends with the call");
    }

    #[test]
    fn every_task_runs_once() {
        for tasks in [0, 1, 2, 3, 17, 1000] {
            let hits: Vec<AtomicU32> = (0..tasks).map(|_| AtomicU32::new(0)).collect();
            for_each(tasks, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{tasks} tasks");
        }
    }

    #[test]
    fn parts_cover_the_slice_disjointly() {
        let mut out = vec![0usize; 1003];
        for_each_chunk_mut(&mut out, 10, |c, part| part.iter_mut().for_each(|v| *v += c + 1));
        assert!(out.iter().enumerate().all(|(i, &v)| v == i / 10 + 1));
        let bounds = [0, 0, 5, 500, 1003];
        for_each_part_mut(&mut out, &bounds, |p, part| part.iter_mut().for_each(|v| *v = p));
        assert!(out[..5].iter().all(|&v| v == 1) && out[5..500].iter().all(|&v| v == 2));
        assert!(out[500..].iter().all(|&v| v == 3));
    }

    #[test]
    fn concurrent_and_nested_regions_complete() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        for_each(8, &|_| {
                            for_each(3, &|_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            });
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 200 * 8 * 3);
    }

    #[test]
    fn a_panicking_task_is_raised_on_the_caller() {
        let ran = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            for_each(16, &|i| {
                ran.fetch_add(1, Ordering::Relaxed);
                assert!(i != 7, "task 7 fails");
            })
        }));
        assert!(r.is_err());
        // On the pool every task runs before the panic is raised; when the pool is busy (other
        // tests) the tasks run in order on this thread and stop at the panic.
        assert!(ran.load(Ordering::Relaxed) >= 8);
        // The pool still works afterwards.
        let hits = AtomicUsize::new(0);
        for_each(5, &|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 5);
    }
}
