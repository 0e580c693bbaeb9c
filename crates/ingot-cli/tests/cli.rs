//! The `ingot` binary end to end: exit codes, outputs and no partial files on failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn ingot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ingot")).args(args).output().unwrap()
}

fn model(dir: &Path) -> String {
    let path = dir.join("m.ingot");
    std::fs::write(&path, ingot::testing::logistic_bundle().unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn verify_passes_a_good_file_and_fails_a_corrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let ok = ingot(&["verify", &m]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("logistic 1.0.0 is valid"));

    let mut bytes = std::fs::read(&m).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let bad = dir.path().join("bad.ingot");
    std::fs::write(&bad, bytes).unwrap();
    let out = ingot(&["verify", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
}

#[test]
fn inspect_json_lists_card_and_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let out = ingot(&["inspect", &model(dir.path()), "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manifest"]["model"]["name"], "logistic");
    assert_eq!(v["format"], "1.0");
    let names: Vec<&str> =
        v["tensors"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["coef", "intercept"]);
}

#[test]
fn predict_csv_and_jsonl_agree_and_bad_rows_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let csv_in = dir.path().join("x.csv");
    std::fs::write(&csv_in, "a,b\n3,1\n0,0\n").unwrap();
    let jsonl_in = dir.path().join("x.jsonl");
    std::fs::write(&jsonl_in, "{\"a\":3,\"b\":1}\n\n{\"a\":0,\"b\":0}\n").unwrap();
    let csv_out = dir.path().join("y.csv");
    let jsonl_out = dir.path().join("y.jsonl");
    for (i, o) in [(&csv_in, &csv_out), (&jsonl_in, &jsonl_out)] {
        let out = ingot(&[
            "predict",
            &m,
            "-i",
            i.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
            "--chunk-rows",
            "1",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let csv = std::fs::read_to_string(&csv_out).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("label,proba_no,proba_yes"));
    assert!(lines.next().unwrap().starts_with("yes,"));
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl_out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["label"], "yes");
    assert!(rows[1]["probabilities"]["no"].as_f64().unwrap() > 0.5);

    // Row 2 (counted across chunks) is bad: an error naming it, and no output file.
    std::fs::write(&csv_in, "a,b\n3,1\n0,0\n1,seven\n").unwrap();
    let failed = dir.path().join("never.csv");
    let out = ingot(&[
        "predict",
        &m,
        "-i",
        csv_in.to_str().unwrap(),
        "-o",
        failed.to_str().unwrap(),
        "--chunk-rows",
        "1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 2, column `b`"), "{err}");
    assert!(!failed.exists());
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| { e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".ingot") })
            .count(),
        0,
        "temporary files left behind"
    );
}

#[test]
fn pack_and_unpack_round_trip_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let unpacked = dir.path().join("unpacked");
    assert!(ingot(&["unpack", &m, "-o", unpacked.to_str().unwrap()]).status.success());
    let repacked = dir.path().join("re.ingot");
    assert!(ingot(&["pack", unpacked.to_str().unwrap(), "-o", repacked.to_str().unwrap()]).status.success());
    assert_eq!(std::fs::read(&m).unwrap(), std::fs::read(&repacked).unwrap());
}
