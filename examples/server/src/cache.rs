//! An optional bounded cache of answers for repeated inputs (`--cache-entries N`, off by
//! default). Keyed by the version that answers and a BLAKE3 hash of the input rows; the oldest
//! entry goes first when it is full. A cached answer is exactly what the model gave: the
//! models are deterministic.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use ingot::{Prediction, Value};

use crate::payload::Payload;

/// A key: hash of (model, version, load serial, rows).
pub type Key = [u8; 32];

/// The cache.
#[derive(Debug)]
pub struct AnswerCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Key, Prediction>,
    order: VecDeque<Key>,
}

impl AnswerCache {
    /// A cache of at most `capacity` answers.
    ///
    /// ```
    /// use ingot_server::cache::AnswerCache;
    /// use ingot_server::Payload;
    /// let cache = AnswerCache::new(1);
    /// let key = AnswerCache::key("m", "1.0.0", 0, &Payload::Texts(vec!["hi".into()]));
    /// assert!(cache.get(&key).is_none());
    /// ```
    pub fn new(capacity: usize) -> AnswerCache {
        AnswerCache { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// The key of `payload` answered by `model` `version` (its load `serial`, so a reloaded
    /// bundle never answers from the old one's entries).
    pub fn key(model: &str, version: &str, serial: u64, payload: &Payload) -> Key {
        let mut h = blake3::Hasher::new();
        for part in [model, version] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.update(&serial.to_le_bytes());
        let value = |h: &mut blake3::Hasher, v: &Value| match v {
            Value::Null => {
                h.update(&[0]);
            }
            Value::Number(x) => {
                h.update(&[1]);
                h.update(&x.to_bits().to_le_bytes());
            }
            Value::String(s) => {
                h.update(&[2]);
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        };
        match payload {
            Payload::Records(records) => {
                h.update(b"records");
                for record in records {
                    h.update(&(record.len() as u64).to_le_bytes());
                    for (name, v) in record {
                        h.update(&(name.len() as u64).to_le_bytes());
                        h.update(name.as_bytes());
                        value(&mut h, v);
                    }
                }
            }
            Payload::Dense(rows) => {
                h.update(b"dense");
                h.update(&(rows.cols() as u64).to_le_bytes());
                for x in rows.as_slice() {
                    h.update(&x.to_bits().to_le_bytes());
                }
            }
            Payload::Texts(texts) => {
                h.update(b"texts");
                for t in texts {
                    h.update(&(t.len() as u64).to_le_bytes());
                    h.update(t.as_bytes());
                }
            }
        }
        *h.finalize().as_bytes()
    }

    /// The cached answer for `key`.
    pub fn get(&self, key: &Key) -> Option<Prediction> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).map.get(key).cloned()
    }

    /// Stores an answer, dropping the oldest when full.
    pub fn put(&self, key: Key, answer: &Prediction) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.map.insert(key, answer.clone()).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.map.remove(&old);
            }
        }
    }

    /// Number of answers held.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keyed_by_version_and_rows() {
        let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle().unwrap()).unwrap();
        let answer = model.predict_dense(&[1.0, 2.0], 1, 2).unwrap();
        let rows = |x: f64| Payload::Dense(ingot::DenseRows::new("x", vec![x, 2.0], 2).unwrap());
        let cache = AnswerCache::new(2);
        let k1 = AnswerCache::key("m", "1.0.0", 7, &rows(1.0));
        assert_ne!(k1, AnswerCache::key("m", "1.0.1", 7, &rows(1.0)));
        assert_ne!(k1, AnswerCache::key("m", "1.0.0", 8, &rows(1.0)));
        assert_ne!(k1, AnswerCache::key("m", "1.0.0", 7, &rows(1.5)));
        cache.put(k1, &answer);
        assert_eq!(cache.get(&k1), Some(answer.clone()));
        for x in [2.0, 3.0] {
            cache.put(AnswerCache::key("m", "1.0.0", 7, &rows(x)), &answer);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&k1).is_none(), "the oldest entry goes first");
    }
}
