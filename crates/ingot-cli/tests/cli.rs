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

/// Runs `ingot` with extra environment variables.
fn ingot_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ingot")).args(args).envs(env.iter().copied()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Names of the files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn written_files_honour_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let unpacked = dir.path().join("unpacked");
    assert!(ingot(&["unpack", &m, "-o", unpacked.to_str().unwrap()]).status.success());
    std::fs::write(dir.path().join("x.csv"), "a,b\n3,1\n").unwrap();
    let script = format!(
        "umask 022 && {bin} pack {u} -o {d}/packed.ingot && {bin} predict {m} -i {d}/x.csv -o {d}/y.csv",
        bin = env!("CARGO_BIN_EXE_ingot"),
        u = unpacked.display(),
        d = dir.path().display(),
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["packed.ingot", "y.csv", "y.csv.run.json"] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{name} under umask 022");
    }
}

#[test]
fn usage_mistakes_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    for args in [
        vec!["bench", &m, "--batch", "0"],
        vec!["bench", &m, "--batch", "1,0", "--seconds", "0.01"],
        vec!["predict", &m, "-i", "rows.unknown"],
        vec!["predict", &m, "-i", "-", "--input-format", "parquet"],
    ] {
        let out = ingot(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("error [IngotUsageError]"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn predict_keeps_columns_and_records_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let input = dir.path().join("x.csv");
    std::fs::write(&input, "id,a,b,note\n007,3,1,\"a, b\"\n8,0,0,\n").unwrap();
    let output = dir.path().join("y.csv");
    let out = ingot(&[
        "predict",
        &m,
        "-i",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--keep",
        "id,note",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,note,label,proba_no,proba_yes");
    assert!(lines[1].starts_with("007,\"a, b\",yes,"), "kept fields pass through exactly: {}", lines[1]);
    assert!(lines[2].starts_with("8,,no,"), "{}", lines[2]);

    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("y.csv.run.json")).unwrap()).unwrap();
    assert_eq!(record["model"]["name"], "logistic");
    assert_eq!(record["model"]["version"], "1.0.0");
    assert_eq!(record["model"]["checksum"].as_str().unwrap().len(), 64);
    assert_eq!(record["rows"], serde_json::json!({"read": 2, "predicted": 2, "rejected": 0}));
    assert_eq!(record["input"]["format"], "csv");
    assert!(record["seconds"].as_f64().unwrap() >= 0.0);
    assert!(record["started"].as_str().unwrap().ends_with('Z'));

    let clash = ingot(&["predict", &m, "-i", input.to_str().unwrap(), "-o", "-", "--keep", "nope"]);
    assert!(stderr(&clash).contains("--keep `nope`"), "{}", stderr(&clash));
}

#[test]
fn parquet_in_and_out_gives_the_csv_answers() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let p = |name: &str| dir.path().join(name).display().to_string();
    let rows: String =
        (0..300).map(|i| format!("{{\"id\":{i},\"a\":{},\"b\":{}}}\n", i % 7, (i * 3) % 5)).collect();
    std::fs::write(p("x.jsonl"), rows).unwrap();
    let run = |args: &[&str]| {
        let out = ingot(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    // JSONL → Parquet (every column kept, row groups of 64) → CSV, against JSONL → CSV.
    run(&["predict", &m, "-i", &p("x.jsonl"), "-o", &p("all.parquet"), "--keep-all", "--chunk-rows", "64"]);
    run(&["predict", &m, "-i", &p("all.parquet"), "-o", &p("via.csv"), "--keep", "id"]);
    run(&["predict", &m, "-i", &p("x.jsonl"), "-o", &p("direct.csv"), "--keep", "id"]);
    assert_eq!(
        std::fs::read_to_string(p("via.csv")).unwrap(),
        std::fs::read_to_string(p("direct.csv")).unwrap()
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("all.parquet.run.json")).unwrap()).unwrap();
    assert_eq!(record["rows"]["predicted"], 300);
    assert_eq!(record["kept"], serde_json::json!(["a", "b", "id"]));
}

#[test]
fn bad_rows_stop_the_run_or_go_to_the_rejects_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        p("x.jsonl"),
        "{\"a\":3,\"b\":1}\n{\"a\":\"x\",\"b\":1}\nnot json\n{\"a\":0,\"b\":0}\n{\"b\":2}\n",
    )
    .unwrap();
    let before = files(dir.path());

    let failed = ingot(&["predict", &m, "-i", &p("x.jsonl"), "-o", &p("y.jsonl"), "--chunk-rows", "2"]);
    assert!(!failed.status.success());
    assert!(stderr(&failed).contains("row 1, column `a`"), "{}", stderr(&failed));
    assert_eq!(files(dir.path()), before, "a failed run leaves no output, rejects, record or temporary file");

    let out = ingot(&[
        "predict",
        &m,
        "-i",
        &p("x.jsonl"),
        "-o",
        &p("y.jsonl"),
        "--chunk-rows",
        "2",
        "--on-error",
        "skip",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let predicted = std::fs::read_to_string(p("y.jsonl")).unwrap();
    assert_eq!(predicted.lines().count(), 2);
    let rejects: Vec<serde_json::Value> = std::fs::read_to_string(p("y.jsonl.rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows: Vec<u64> = rejects.iter().map(|r| r["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, [1, 2, 4]);
    assert!(rejects[0]["message"].as_str().unwrap().starts_with("row 1, column `a`"));
    assert!(rejects[1]["message"].as_str().unwrap().starts_with("row 2: line 3 is not a JSON object"));
    assert_eq!(rejects[2]["message"], "row 4: missing column `a`");
    assert_eq!(rejects[2]["input"], serde_json::json!({"b": 2}));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("y.jsonl.run.json")).unwrap()).unwrap();
    assert_eq!(record["rows"], serde_json::json!({"read": 5, "predicted": 2, "rejected": 3}));
}

#[test]
fn every_kernel_level_gives_the_same_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/digits_mlp");
    let m = dir.path().join("mlp.ingot");
    assert!(ingot(&["pack", fixture.join("model").to_str().unwrap(), "-o", m.to_str().unwrap()])
        .status
        .success());
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap()).unwrap();
    let rows: String = expected["records"].as_array().unwrap().iter().map(|r| format!("{r}\n")).collect();
    let input = dir.path().join("x.jsonl");
    std::fs::write(&input, rows.repeat(20)).unwrap();
    let probabilities = |isa: &str| -> Vec<f64> {
        let out = ingot_env(
            &["predict", m.to_str().unwrap(), "-i", input.to_str().unwrap()],
            &[("INGOT_ISA", isa)],
        );
        assert!(out.status.success(), "{isa}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .flat_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["probabilities"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|p| p.as_f64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let reference = probabilities("scalar");
    for isa in ["avx2", "avx512"] {
        // Each level sums the same products in its own order: f32 rounding, not algorithms.
        for (a, b) in probabilities(isa).iter().zip(&reference) {
            assert!((a - b).abs() <= 1e-5 * b + 1e-6, "{isa}: {a} vs scalar {b}");
        }
    }
    let bench = ingot_env(
        &["bench", m.to_str().unwrap(), "--batch", "1", "--seconds", "0.01", "--json"],
        &[("INGOT_ISA", "scalar")],
    );
    let report: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap();
    assert_eq!(report["isa"], "scalar");
}

#[test]
fn keygen_sign_and_verify_with_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let p = |name: &str| dir.path().join(name).display().to_string();

    let out = ingot(&["keygen", "-o", &p("release")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key_id = ingot::signing::VerifyingKey::read(p("release.pub")).unwrap().key_id();
    assert!(stderr(&out).contains(&key_id), "{}", stderr(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p("release.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = ingot(&["keygen", "-o", &p("release")]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("error [IngotUsageError]") && stderr(&again).contains("--force"));
    let secret = std::fs::read(p("release.key")).unwrap();
    assert!(ingot(&["keygen", "-o", &p("release"), "--force"]).status.success());
    assert_ne!(std::fs::read(p("release.key")).unwrap(), secret, "--force writes a new key");
    let key_id = ingot::signing::VerifyingKey::read(p("release.pub")).unwrap().key_id();

    let signed = ingot(&["sign", &m, "--key", &p("release.key")]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    assert!(stderr(&signed).contains(&p("m.ingot.sig")) && stderr(&signed).contains(&key_id));

    let ok = ingot(&["verify", &m, "--key", &p("release.pub")]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.contains(&format!("ok  signature (ed25519) by key {key_id}")), "{stdout}");
    assert!(stdout.contains("logistic 1.0.0 is valid"), "{stdout}");
    let plain = ingot(&["verify", &m]);
    assert!(plain.status.success() && !String::from_utf8_lossy(&plain.stdout).contains("signature"));

    // The secret key where the public one belongs.
    let swapped = ingot(&["verify", &m, "--key", &p("release.key")]);
    assert!(!swapped.status.success());
    assert!(stderr(&swapped).contains("this is a secret key file"), "{}", stderr(&swapped));
}

#[test]
fn verify_with_a_key_fails_on_a_changed_bundle_another_key_or_no_signature() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let p = |name: &str| dir.path().join(name).display().to_string();
    for prefix in ["a", "b"] {
        assert!(ingot(&["keygen", "-o", &p(prefix)]).status.success());
    }
    assert!(ingot(&["sign", &m, "--key", &p("a.key")]).status.success());
    let fails = |key: &str, expected: &str| {
        let out = ingot(&["verify", &m, "--key", key]);
        assert!(!out.status.success(), "{expected}");
        assert!(stderr(&out).contains("error [IngotSignatureError]"), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    };

    let key_id = |prefix: &str| ingot::signing::VerifyingKey::read(p(prefix)).unwrap().key_id();
    fails(
        &p("b.pub"),
        &format!("signed by key `{}`, not by the given key `{}`", key_id("a.pub"), key_id("b.pub")),
    );

    // An edit to the manifest (the producer's name) that the checksum does not cover.
    let original = std::fs::read(&m).unwrap();
    let mut edited = original.clone();
    let at = edited.windows(6).position(|w| w == b"\\\"test").unwrap() + 2;
    edited[at] = b'T';
    std::fs::write(&m, &edited).unwrap();
    assert!(ingot(&["verify", &m]).status.success(), "the checksum does not cover the manifest");
    fails(&p("a.pub"), "the bundle changed after it was signed");

    std::fs::write(&m, &original).unwrap();
    assert!(ingot(&["verify", &m, "--key", &p("a.pub")]).status.success());
    std::fs::remove_file(p("m.ingot.sig")).unwrap();
    fails(&p("a.pub"), "the bundle is not signed");
}
