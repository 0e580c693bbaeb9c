//! Input drift: the population stability index (PSI) of each numeric input column over a
//! sliding window of recent rows, against the deciles the bundle recorded at export
//! (`reference.columns[*].quantiles`).
//!
//! The bins are the reference deciles; deciles that tie (a column that is often 0) merge into
//! one bin whose expected share is the reference mass at that value. PSI is
//! `Σ (actual − expected) · ln(actual / expected)` with shares floored at 10⁻⁴; by the usual
//! rule of thumb below 0.1 is stable, above 0.25 a shift worth a look.

use std::collections::VecDeque;
use std::sync::Mutex;

use ingot::Model;

use crate::payload::Payload;

/// Rows per window bucket; the window is [`BUCKETS`] of them.
const BUCKET_ROWS: usize = 500;
/// Buckets in the sliding window (so the window holds the last 5 000 rows or so).
const BUCKETS: usize = 10;
/// Smallest share used in the PSI sum (an empty bin would otherwise be infinite).
const FLOOR: f64 = 1e-4;

#[derive(Debug)]
struct Feature {
    name: String,
    /// Distinct inner decile values, ascending: bin `j` holds `edges[j-1] < x <= edges[j]`,
    /// the last bin everything above.
    edges: Vec<f64>,
    /// Reference share of each bin (`edges.len() + 1` of them).
    expected: Vec<f64>,
}

impl Feature {
    fn from_quantiles(name: &str, q: &[f64]) -> Option<Feature> {
        if q.len() != 11 || q.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut edges: Vec<f64> = Vec::new();
        let mut cumulative: Vec<f64> = Vec::new();
        for (k, &value) in q.iter().enumerate().take(10).skip(1) {
            let share = k as f64 / 10.0;
            match edges.last() {
                Some(&last) if last == value => {
                    if let Some(c) = cumulative.last_mut() {
                        *c = share;
                    }
                }
                _ => {
                    edges.push(value);
                    cumulative.push(share);
                }
            }
        }
        let mut expected = Vec::with_capacity(edges.len() + 1);
        let mut previous = 0.0;
        for &c in &cumulative {
            expected.push(c - previous);
            previous = c;
        }
        expected.push(1.0 - previous);
        Some(Feature { name: name.to_owned(), edges, expected })
    }

    fn bin(&self, x: f64) -> usize {
        self.edges.partition_point(|&e| e < x)
    }
}

#[derive(Debug, Default)]
struct Window {
    /// Finished buckets, oldest first: per feature, counts per bin.
    full: VecDeque<Vec<Vec<u64>>>,
    current: Vec<Vec<u64>>,
    current_rows: usize,
}

/// Drift monitor of one served version.
#[derive(Debug)]
pub struct Drift {
    /// For each signature input column, the index of its monitored feature.
    column_feature: Vec<Option<usize>>,
    /// Monitored column names with their feature index, sorted by name (the order records
    /// iterate in).
    by_name: Vec<(String, usize)>,
    features: Vec<Feature>,
    window: Mutex<Window>,
}

thread_local! {
    /// (feature, bin) of the values of one request, gathered before the window is locked.
    static BINS: std::cell::RefCell<Vec<(u32, u32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drift {
    /// A monitor over the numeric columns `model`'s bundle has reference deciles for; `None`
    /// when it has none (text models, bundles exported without statistics).
    pub fn new(model: &Model) -> Option<Drift> {
        let stats = &model.manifest().reference.as_ref()?.columns;
        let mut features = Vec::new();
        let mut column_feature = Vec::new();
        for name in model.signature().inputs.iter().map(|i| &i.name) {
            let feature = stats.get(name).and_then(|s| Feature::from_quantiles(name, &s.quantiles));
            column_feature.push(feature.map(|f| {
                features.push(f);
                features.len() - 1
            }));
        }
        if features.is_empty() {
            return None;
        }
        let empty = features.iter().map(|f| vec![0; f.expected.len()]).collect();
        let window = Mutex::new(Window { current: empty, ..Window::default() });
        let mut by_name: Vec<(String, usize)> =
            features.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect();
        by_name.sort();
        Some(Drift { column_feature, by_name, features, window })
    }

    /// Names of the monitored columns.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// Counts the rows of `payload`; returns the PSI of every monitored column, in
    /// [`Drift::feature_names`] order, when a window bucket just filled up.
    pub fn observe(&self, payload: &Payload) -> Option<Vec<f64>> {
        let rows = payload.rows();
        if rows == 0 {
            return None;
        }
        BINS.with_borrow_mut(|bins| {
            bins.clear();
            self.bins(payload, bins);
            let mut window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let w = &mut *window;
            for &(f, b) in bins.iter() {
                w.current[f as usize][b as usize] += 1;
            }
            w.current_rows += rows;
            self.roll(w)
        })
    }

    /// The (feature, bin) of every monitored, non-missing value of `payload`.
    fn bins(&self, payload: &Payload, out: &mut Vec<(u32, u32)>) {
        let mut push = |f: usize, x: f64| {
            if !x.is_nan() {
                out.push((f as u32, self.features[f].bin(x) as u32));
            }
        };
        match payload {
            Payload::Records(records) => {
                for record in records {
                    // Both sorted by name: one merge walk.
                    let mut wanted = self.by_name.iter().peekable();
                    for (name, value) in record {
                        while wanted.next_if(|(w, _)| w.as_str() < name.as_str()).is_some() {}
                        match wanted.peek() {
                            Some((w, f)) if w == name => {
                                if let ingot::Value::Number(x) = value {
                                    push(*f, *x);
                                }
                                wanted.next();
                            }
                            Some(_) => {}
                            None => break,
                        }
                    }
                }
            }
            Payload::Dense(rows) if rows.cols() == self.column_feature.len() => {
                for row in rows.as_slice().chunks_exact(rows.cols().max(1)) {
                    for (x, f) in row.iter().zip(&self.column_feature) {
                        if let Some(f) = f {
                            push(*f, *x);
                        }
                    }
                }
            }
            Payload::Dense(_) | Payload::Texts(_) => {}
        }
    }

    /// Closes the current bucket once it is full; the PSI of every feature then.
    fn roll(&self, w: &mut Window) -> Option<Vec<f64>> {
        if w.current_rows < BUCKET_ROWS {
            return None;
        }
        let fresh = self.features.iter().map(|f| vec![0; f.expected.len()]).collect();
        let done = std::mem::replace(&mut w.current, fresh);
        w.current_rows = 0;
        w.full.push_back(done);
        if w.full.len() > BUCKETS {
            w.full.pop_front();
        }
        Some(self.psi(&w.full))
    }

    fn psi(&self, buckets: &VecDeque<Vec<Vec<u64>>>) -> Vec<f64> {
        self.features
            .iter()
            .enumerate()
            .map(|(f, feature)| {
                let mut counts = vec![0u64; feature.expected.len()];
                for bucket in buckets {
                    for (c, n) in counts.iter_mut().zip(&bucket[f]) {
                        *c += n;
                    }
                }
                psi(&counts, &feature.expected)
            })
            .collect()
    }
}

/// PSI of observed `counts` against `expected` shares.
pub fn psi(counts: &[u64], expected: &[f64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    counts
        .iter()
        .zip(expected)
        .map(|(&n, &e)| {
            let a = (n as f64 / total as f64).max(FLOOR);
            let e = e.max(FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deciles(values: &mut [f64]) -> Vec<f64> {
        values.sort_by(f64::total_cmp);
        (0..=10).map(|k| values[(k * (values.len() - 1)) / 10]).collect()
    }

    #[test]
    fn same_distribution_is_stable_and_a_shift_is_not() {
        let mut reference: Vec<f64> = (0..10_000).map(|i| (i as f64 * 0.618_033_988_75).fract()).collect();
        let f = Feature::from_quantiles("x", &deciles(&mut reference)).unwrap();
        let mut same = vec![0u64; f.expected.len()];
        let mut shifted = same.clone();
        for i in 0..5_000 {
            let x = (i as f64 * 0.414_213_562).fract();
            same[f.bin(x)] += 1;
            shifted[f.bin(x * 0.5 + 0.5)] += 1;
        }
        assert!(psi(&same, &f.expected) < 0.01, "{}", psi(&same, &f.expected));
        assert!(psi(&shifted, &f.expected) > 0.25, "{}", psi(&shifted, &f.expected));
    }

    #[test]
    fn tied_deciles_merge_into_one_bin() {
        // Half the reference is 0.
        let q = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let f = Feature::from_quantiles("x", &q).unwrap();
        assert_eq!(f.edges, [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert!((f.expected[0] - 0.5).abs() < 1e-12, "{:?}", f.expected);
        assert!((f.expected.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // A window that is half zeros is then stable.
        let mut counts = vec![0u64; f.expected.len()];
        for i in 0..1000 {
            let x = if i % 2 == 0 { 0.0 } else { 0.5 + (i % 5) as f64 };
            counts[f.bin(x)] += 1;
        }
        assert!(psi(&counts, &f.expected) < 0.05, "{}", psi(&counts, &f.expected));
        assert!(Feature::from_quantiles("x", &[1.0, 2.0]).is_none());
    }
}
