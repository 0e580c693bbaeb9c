//! Bad predict input gets an error that names the row and column, and one test per variant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ingot::testing::logistic_bundle;
use ingot::{Error, Model, Record, Value};

fn model() -> Model {
    Model::from_bytes(logistic_bundle().unwrap()).unwrap()
}

fn row(a: Value, b: Value) -> Record {
    Record::from([("a".to_string(), a), ("b".to_string(), b)])
}

#[test]
fn wrong_column_count_in_dense_input() {
    let err = model().predict_dense(&[1.0, 2.0, 3.0], 1, 3).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("expected 2"), "{err}");
    let err = model().predict_dense(&[1.0, 2.0, 3.0], 2, 2).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
}

#[test]
fn missing_column_names_row_and_column() {
    let rows = vec![row(1.0.into(), 2.0.into()), Record::from([("a".to_string(), Value::from(1.0))])];
    match model().predict_records(&rows).unwrap_err() {
        Error::MissingColumn { row, column } => assert_eq!((row, column.as_str()), (1, "b")),
        other => panic!("{other}"),
    }
}

#[test]
fn wrong_type_names_row_and_column() {
    let rows = vec![row(1.0.into(), "seven".into())];
    let err = model().predict_records(&rows).unwrap_err();
    assert!(matches!(&err, Error::WrongType { row: 0, column, .. } if column == "b"), "{err}");
    assert_eq!(err.to_string(), "row 0, column `b`: expected a number, got string \"seven\"");
}

#[test]
fn nan_without_imputer_is_refused() {
    let rows = vec![row(1.0.into(), 2.0.into()), row(Value::Null, 2.0.into())];
    let err = model().predict_records(&rows).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidValue { row: 1, column, value: "missing" } if column == "a"),
        "{err}"
    );
    let err = model().predict_dense(&[1.0, f32::NAN], 1, 2).unwrap_err();
    assert!(matches!(&err, Error::InvalidValue { row: 0, column, .. } if column == "b"), "{err}");
    let err = model().predict_dense(&[f32::INFINITY, 1.0], 1, 2).unwrap_err();
    assert!(matches!(&err, Error::InvalidValue { value: "infinite", .. }), "{err}");
}

#[test]
fn ragged_columns_are_refused() {
    let cols = ingot::Columns::from([
        ("a".to_string(), vec![Value::from(1.0), Value::from(2.0)]),
        ("b".to_string(), vec![Value::from(1.0)]),
    ]);
    assert!(matches!(model().predict_columns(&cols).unwrap_err(), Error::ShapeMismatch { .. }));
}

#[test]
fn empty_batch_gives_empty_prediction() {
    let p = model().predict_records(&[]).unwrap();
    assert_eq!(p.rows, 0);
    assert_eq!(p.labels.unwrap().len(), 0);
}

#[test]
fn error_codes_are_stable() {
    assert_eq!(
        Error::UnknownCategory { row: 0, column: "c".into(), value: "\"x\"".into() }.code(),
        "IngotInputError"
    );
    assert_eq!(Model::from_bytes(vec![0; 4]).unwrap_err().code(), "IngotFormatError");
    let e = Model::load("/nonexistent/model.ingot").unwrap_err();
    assert!(matches!(&e, Error::Io { .. }) && e.code() == "IngotIoError", "{e}");
}

#[test]
fn model_is_send_and_sync_and_serves_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
    let model = std::sync::Arc::new(model());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let m = model.clone();
            std::thread::spawn(move || {
                let x = t as f32;
                let p = m.predict_dense(&[x, 1.0], 1, 2).unwrap();
                (x, p.scores.row(0)[0])
            })
        })
        .collect();
    for h in handles {
        let (x, s) = h.join().unwrap();
        // score = 2·(a − 1) − (b / 2) + 0.5
        assert!((s - (2.0 * (x - 1.0) - 0.5 + 0.5)).abs() < 1e-6);
    }
}
