//! Shared set-up for Ingot's criterion benches: models built from the committed fixtures.

use std::path::{Path, PathBuf};

use ingot::format::{read_dir, to_bytes};

/// Path of `tests/fixtures/<case>`.
pub fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(case)
}

/// The `.ingot` bytes of a fixture case.
pub fn bundle_bytes(case: &str) -> ingot::Result<Vec<u8>> {
    let (manifest, tensors) = read_dir(fixture(case).join("model"))?;
    to_bytes(&manifest, &tensors)
}

/// `rows` dense f32 rows in signature order, cycling the fixture's held-out rows.
pub fn dense_rows(case: &str, rows: usize) -> Vec<f32> {
    let text = std::fs::read_to_string(fixture(case).join("expected.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let held_out: Vec<Vec<f32>> = v["dense"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0) as f32).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    held_out.iter().cycle().take(rows).flatten().copied().collect()
}
