//! Helpers shared by the server's test files.

use std::path::Path;

use ingot::{Record, Value};

/// A record of the test logistic model's two columns.
pub fn record(a: f64, b: f64) -> Record {
    Record::from([("a".to_string(), Value::from(a)), ("b".to_string(), Value::from(b))])
}

/// Writes `bytes` to `root/rel`, creating its directories.
pub fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}
