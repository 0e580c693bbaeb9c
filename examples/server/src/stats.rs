//! Per-version request statistics over a sliding window of seconds: request count, errors and a
//! latency histogram, from which the canary is compared with stable.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Latency buckets: bucket `i` ends at `FIRST_EDGE_US · GROWTH^i` microseconds.
const LATENCY_BUCKETS: usize = 64;
const FIRST_EDGE_US: f64 = 10.0;
const GROWTH: f64 = 1.25;
/// Longest window kept, in seconds.
pub const MAX_WINDOW_S: usize = 3600;

#[derive(Debug, Clone)]
struct Second {
    at: u64,
    count: u64,
    errors: u64,
    latency: [u32; LATENCY_BUCKETS],
}

impl Second {
    fn empty(at: u64) -> Second {
        Second { at, count: 0, errors: 0, latency: [0; LATENCY_BUCKETS] }
    }
}

/// What a window held.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Requests answered.
    pub count: u64,
    /// Of which failed with a server-side error.
    pub errors: u64,
    /// 99th percentile latency in milliseconds (the upper edge of its histogram bucket, so
    /// within 25 % above the true value); 0 without requests.
    pub p99_ms: f64,
}

impl Summary {
    /// Errors per request (0 without requests).
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }
}

/// Request statistics of one version.
#[derive(Debug)]
pub struct Stats {
    epoch: Instant,
    /// One slot per second of the longest window asked for.
    slots: usize,
    ring: Mutex<Vec<Second>>,
}

impl Stats {
    /// Statistics kept for windows of up to `window_s` seconds (at most [`MAX_WINDOW_S`]).
    pub fn new(window_s: u64) -> Stats {
        let slots = (window_s as usize).clamp(1, MAX_WINDOW_S) + 1;
        Stats { epoch: Instant::now(), slots, ring: Mutex::new(Vec::new()) }
    }
}

fn bucket(latency: Duration) -> usize {
    let us = latency.as_secs_f64() * 1e6;
    if us <= FIRST_EDGE_US {
        return 0;
    }
    (((us / FIRST_EDGE_US).ln() / GROWTH.ln()).ceil() as usize).min(LATENCY_BUCKETS - 1)
}

impl Stats {
    fn now_s(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Forgets every recorded request (a canary started again is judged afresh).
    pub fn clear(&self) {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Records one answered request.
    pub fn record(&self, latency: Duration, error: bool) {
        self.record_at(self.now_s(), latency, error);
    }

    fn record_at(&self, at: u64, latency: Duration, error: bool) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.is_empty() {
            ring.resize(self.slots, Second::empty(u64::MAX));
        }
        let slot = &mut ring[(at % self.slots as u64) as usize];
        if slot.at != at {
            *slot = Second::empty(at);
        }
        slot.count += 1;
        slot.errors += u64::from(error);
        slot.latency[bucket(latency)] += 1;
    }

    /// The last `window_s` seconds (the current one included).
    pub fn summary(&self, window_s: u64) -> Summary {
        self.summary_at(self.now_s(), window_s)
    }

    fn summary_at(&self, now: u64, window_s: u64) -> Summary {
        let window_s = window_s.clamp(1, self.slots as u64 - 1);
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Summary::default();
        let mut latency = [0u64; LATENCY_BUCKETS];
        for s in ring.iter().filter(|s| s.at != u64::MAX && s.at <= now && now - s.at < window_s) {
            out.count += s.count;
            out.errors += s.errors;
            for (l, n) in latency.iter_mut().zip(&s.latency) {
                *l += u64::from(*n);
            }
        }
        if out.count > 0 {
            let rank = (out.count as f64 * 0.99).ceil() as u64;
            let mut seen = 0;
            for (i, n) in latency.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    out.p99_ms = FIRST_EDGE_US * GROWTH.powi(i as i32) / 1e3;
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_errors_and_p99() {
        let stats = Stats::new(60);
        for i in 0..1000u64 {
            let ms = if i % 100 == 0 { 50 } else { 1 };
            stats.record_at(10, Duration::from_millis(ms), i % 10 == 0);
        }
        let s = stats.summary_at(10, 60);
        assert_eq!((s.count, s.errors), (1000, 100));
        assert!((s.error_rate() - 0.1).abs() < 1e-12);
        // 1 % of requests took 50 ms: the 99th percentile is still the 1 ms bucket.
        assert!(s.p99_ms >= 1.0 && s.p99_ms < 1.25 * 1.01, "{}", s.p99_ms);
        let copy = Stats::new(60);
        copy.record_at(10, Duration::from_millis(1), true);
        copy.clear();
        assert_eq!(copy.summary_at(10, 60).count, 0);
        // Seconds older than the window are left out.
        assert_eq!(stats.summary_at(80, 60).count, 0);
        stats.record_at(80, Duration::from_millis(40), false);
        let later = stats.summary_at(80, 60);
        assert_eq!(later.count, 1);
        assert!(later.p99_ms >= 40.0 && later.p99_ms < 50.0, "{}", later.p99_ms);
    }
}
