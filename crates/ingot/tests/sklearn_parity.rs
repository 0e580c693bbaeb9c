//! Parity with scikit-learn on held-out rows of its bundled data sets.
//!
//! Fixtures under `tests/fixtures/<case>/` are made by `scripts/make_fixtures.py`: the exported
//! model directory and `expected.json` with scikit-learn's float64 outputs on the same rows.
//!
//! Tolerances: Ingot computes the graph in f32 (pre-processing in f64). Probabilities must be
//! within `1e-5 · |p| + 1e-6` of scikit-learn's (relative 1e-5, with a 1e-6 floor for
//! probabilities that are ~0); labels must be identical; regression values within
//! `1e-5 · (|y| + scale)` where `scale` is the mean |y| of the case (the f32 rounding of a sum of
//! terms of that size).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ingot::format::{read_dir, to_bytes};
use ingot::{Model, Record, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

struct Expected {
    records: Vec<Record>,
    dense: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<Value>>,
    probabilities: Option<Vec<Vec<f64>>>,
    values: Option<Vec<Vec<f64>>>,
}

fn load(case: &str) -> (Model, Expected) {
    let dir = fixtures().join(case);
    let (manifest, tensors) = read_dir(dir.join("model")).unwrap();
    let model = Model::from_bytes(to_bytes(&manifest, &tensors).unwrap()).unwrap();
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let matrix = |key: &str| -> Option<Vec<Vec<f64>>> {
        v[key].as_array().map(|rows| {
            rows.iter()
                .map(|r| match r {
                    serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect(),
                    x => vec![x.as_f64().unwrap()],
                })
                .collect()
        })
    };
    let expected = Expected {
        records: serde_json::from_value(v["records"].clone()).unwrap(),
        dense: matrix("dense"),
        labels: v["labels"]
            .as_array()
            .map(|a| a.iter().map(|x| serde_json::from_value(x.clone()).unwrap()).collect()),
        probabilities: matrix("probabilities"),
        values: matrix("values"),
    };
    (model, expected)
}

fn compare(case: &str, p: &ingot::Prediction, e: &Expected) {
    assert_eq!(p.rows, e.records.len(), "{case}: row count");
    if let Some(labels) = &e.labels {
        assert_eq!(&p.labels.as_ref().unwrap().to_vec(), labels, "{case}: labels");
    }
    if let Some(probs) = &e.probabilities {
        let got = p.probabilities.as_ref().unwrap();
        for (i, row) in probs.iter().enumerate() {
            for (j, &want) in row.iter().enumerate() {
                let have = f64::from(got.row(i)[j]);
                assert!(
                    (have - want).abs() <= 1e-5 * want.abs() + 1e-6,
                    "{case}: probability [{i}][{j}] = {have}, scikit-learn {want}"
                );
            }
        }
    }
    if let Some(values) = &e.values {
        let got = p.values.as_ref().unwrap();
        let scale =
            values.iter().flatten().map(|v| v.abs()).sum::<f64>() / values.iter().flatten().count() as f64;
        for (i, row) in values.iter().enumerate() {
            for (j, &want) in row.iter().enumerate() {
                let have = f64::from(got.row(i)[j]);
                assert!(
                    (have - want).abs() <= 1e-5 * (want.abs() + scale),
                    "{case}: value [{i}][{j}] = {have}, scikit-learn {want}"
                );
            }
        }
    }
}

fn check_case(case: &str) {
    let (model, expected) = load(case);
    let p = model.predict_records(&expected.records).unwrap();
    compare(case, &p, &expected);
    if let Some(dense) = &expected.dense {
        let cols = dense[0].len();
        let flat: Vec<f64> = dense.iter().flatten().copied().collect();
        let d = ingot::Dense::f64(&flat, dense.len(), cols).unwrap();
        compare(case, &model.predict(ingot::Input::Dense(d)).unwrap(), &expected);
        // One row at a time gives the same answers as the batch.
        for (i, row) in dense.iter().enumerate() {
            let row32: Vec<f32> = row.iter().map(|&v| v as f32).collect();
            let single = model.predict_dense(&row32, 1, cols).unwrap();
            if let (Some(l), Some(all)) = (&single.labels, &p.labels) {
                assert_eq!(l[0], all[i], "{case}: row {i} alone");
            }
        }
    }
    // Columns form gives the same result as records.
    let mut columns = ingot::Columns::new();
    for input in &model.signature().inputs {
        let col =
            expected.records.iter().map(|r| r.get(&input.name).cloned().unwrap_or(Value::Null)).collect();
        columns.insert(input.name.clone(), col);
    }
    assert_eq!(model.predict_columns(&columns).unwrap(), p, "{case}: columns vs records");

    // An Arrow batch (strings as Utf8, numbers as Float64 or Int64, nulls for missing) through
    // the typed frame input: the same answers, bit for bit.
    let batch = arrow_batch(&model, &expected.records);
    let columns = ingot::io::arrow::BatchColumns::new(&batch).unwrap();
    let frame = columns.frame().unwrap();
    assert_eq!(model.predict(ingot::Input::Frame(&frame)).unwrap(), p, "{case}: arrow vs records");

    // A tall batch (the rows repeated past 2 000) runs a row-wise graph in chunks of rows spread
    // over threads: same tolerances against scikit-learn, and the same answers as the batch.
    let tall = repeated(&expected, 2000usize.div_ceil(expected.records.len()));
    let p_tall = model.predict_records(&tall.records).unwrap();
    compare(case, &p_tall, &tall);
    let head = &p_tall.scores.as_slice()[..p.scores.as_slice().len()];
    assert_eq!(head, p.scores.as_slice(), "{case}: a tall batch's first rows differ from the batch");

    // The outputs written into the caller's slices are those `predict` returns, bit for bit.
    check_predict_into(case, &model, ingot::Input::Records(&expected.records), &p);
    check_predict_into(case, &model, ingot::Input::Records(&tall.records), &p_tall);
}

/// Slices for every output of `model`'s layout over `rows` rows, filled with `fill`.
struct Slices {
    scores: Vec<f32>,
    probabilities: Option<Vec<f32>>,
    values: Option<Vec<f32>>,
    labels: Option<Vec<u32>>,
}

impl Slices {
    fn new(model: &Model, rows: usize, fill: f32) -> Slices {
        let layout = model.output_layout();
        assert_eq!(layout.embeddings, None, "tabular models give no embeddings");
        let matrix = |cols: Option<usize>| cols.map(|c| vec![fill; rows * c]);
        Slices {
            scores: vec![fill; rows * layout.scores],
            probabilities: matrix(layout.probabilities),
            values: matrix(layout.values),
            labels: layout.labels.then(|| vec![fill.to_bits(); rows]),
        }
    }

    fn out(&mut self) -> ingot::OutputSlices<'_> {
        ingot::OutputSlices {
            scores: &mut self.scores,
            probabilities: self.probabilities.as_deref_mut(),
            values: self.values.as_deref_mut(),
            embeddings: None,
            labels: self.labels.as_deref_mut(),
        }
    }
}

/// [`Model::predict_into`] on `input` writes exactly the values of `p`.
fn check_predict_into(case: &str, model: &Model, input: ingot::Input<'_>, p: &ingot::Prediction) {
    let mut s = Slices::new(model, p.rows, f32::NAN);
    assert_eq!(model.predict_into(input, s.out()).unwrap(), p.rows, "{case}: rows");
    assert_eq!(s.scores, p.scores.as_slice(), "{case}: scores");
    assert_eq!(
        s.probabilities.as_deref(),
        p.probabilities.as_ref().map(|m| m.as_slice()),
        "{case}: probabilities"
    );
    assert_eq!(s.values.as_deref(), p.values.as_ref().map(|m| m.as_slice()), "{case}: values");
    assert_eq!(s.labels.as_deref(), p.labels.as_ref().map(|l| l.indices()), "{case}: label indices");
}

#[test]
fn predict_into_refuses_slices_of_the_wrong_size_and_writes_nothing_when_it_fails() {
    let (model, expected) = load("breast_cancer_logreg");
    let (regressor, regressor_rows) = load("diabetes_ridge");
    let rows = expected.records.len();
    let input = || ingot::Input::Records(&expected.records);
    let message = |r: ingot::Result<usize>| r.unwrap_err().to_string();

    let mut short = Slices::new(&model, rows - 1, 0.5);
    let e = message(model.predict_into(input(), short.out()));
    assert!(e.contains("scores slice") && e.contains(&format!("{rows} rows")), "{e}");

    let mut no_probabilities = Slices::new(&model, rows, 0.5);
    no_probabilities.probabilities = None;
    let e = message(model.predict_into(input(), no_probabilities.out()));
    assert!(e.contains("probabilities slice") && e.contains("got none"), "{e}");

    let n = regressor_rows.records.len();
    let mut extra = Slices::new(&regressor, n, 0.5);
    extra.probabilities = Some(vec![0.5; n * 2]);
    let e = message(regressor.predict_into(ingot::Input::Records(&regressor_rows.records), extra.out()));
    assert!(e.contains("probabilities slice") && e.contains("gives no such output"), "{e}");

    // A NaN in the last row fails the call after the first chunks have been computed: the
    // slices still hold what they held.
    let mut tall = repeated(&expected, 2000usize.div_ceil(rows)).records;
    let last = tall.len() - 1;
    let column = model.signature().inputs[0].name.clone();
    tall[last].insert(column.clone(), Value::Number(f64::NAN));
    let mut s = Slices::new(&model, tall.len(), 0.5);
    let e = message(model.predict_into(ingot::Input::Records(&tall), s.out()));
    assert!(e.contains(&format!("row {last}")) && e.contains(&column), "{e}");
    assert!(s.scores.iter().chain(s.probabilities.iter().flatten()).all(|&v| v == 0.5));
    assert!(s.labels.iter().flatten().all(|&v| v == 0.5f32.to_bits()));
}

/// `records` as an Arrow batch typed by the model's signature: string inputs as Utf8, integer
/// inputs as Int64, the others as Float64, missing values as nulls.
fn arrow_batch(model: &Model, records: &[Record]) -> arrow_array::RecordBatch {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use ingot::format::ElementType;
    use std::sync::Arc;
    let columns = model.signature().inputs.iter().map(|input| {
        let cells = records.iter().map(|r| r.get(&input.name).cloned().unwrap_or(Value::Null));
        let array: ArrayRef = match input.dtype {
            ElementType::String => {
                Arc::new(cells.map(|v| v.as_str().map(str::to_owned)).collect::<StringArray>())
            }
            ElementType::I64 | ElementType::I32 => {
                Arc::new(cells.map(|v| v.as_f64().map(|n| n as i64)).collect::<Int64Array>())
            }
            _ => Arc::new(cells.map(|v| v.as_f64()).collect::<Float64Array>()),
        };
        (input.name.clone(), array)
    });
    arrow_array::RecordBatch::try_from_iter(columns).unwrap()
}

/// `e`'s rows and expectations, `times` over.
fn repeated(e: &Expected, times: usize) -> Expected {
    fn rep<T: Clone>(v: &[T], times: usize) -> Vec<T> {
        v.iter().cycle().take(v.len() * times).cloned().collect()
    }
    Expected {
        records: rep(&e.records, times),
        dense: e.dense.as_ref().map(|d| rep(d, times)),
        labels: e.labels.as_ref().map(|l| rep(l, times)),
        probabilities: e.probabilities.as_ref().map(|p| rep(p, times)),
        values: e.values.as_ref().map(|v| rep(v, times)),
    }
}

#[test]
fn breast_cancer_logistic_regression() {
    check_case("breast_cancer_logreg");
}

#[test]
fn digits_mlp() {
    check_case("digits_mlp");
}

#[test]
fn diabetes_ridge() {
    check_case("diabetes_ridge");
}

#[test]
fn wine_multinomial() {
    check_case("wine_multinomial");
}

#[test]
fn iris_sgd() {
    check_case("iris_sgd");
}

#[test]
fn mixed_columns_with_nan_and_unseen_categories() {
    check_case("mixed_columns");
}

#[test]
fn mixed_regression() {
    check_case("mixed_regression");
}
