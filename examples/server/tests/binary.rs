//! Starts the real `ingot-server` binary on a loopback port and drives it over HTTP: hot
//! reload (admin call, SIGHUP, interval), signed bundles, canary split, shadow, automatic
//! rollback, promotion under load, API keys, rate and size limits, overload, drift, metrics
//! and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingot::format::Reference;
use ingot::{Bundle, Record, Value};
use serde_json::{json, Value as Json};

/// sha256("admin-key"), sha256("user-key"), sha256("metrics-key"), sha256("slow-key").
const KEYS: &str = "\
admin predict,admin,metrics 6b9bb3a3c4ce6b5e3ac7ac1e1ef7b2efb35a5baff98e3a3ad4cb0a1b6fcd5e19
user predict HASH_USER
slow predict HASH_SLOW rate=2 burst=2
";

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn keys_file(dir: &Path) -> PathBuf {
    let text = KEYS
        .replace("6b9bb3a3c4ce6b5e3ac7ac1e1ef7b2efb35a5baff98e3a3ad4cb0a1b6fcd5e19", &sha256_hex("admin-key"))
        .replace("HASH_USER", &sha256_hex("user-key"))
        .replace("HASH_SLOW", &sha256_hex("slow-key"));
    let path = dir.join("keys.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// The test logistic model, renamed to `version`, reading columns `cols` (the second one in
/// place of `b`), with a reference sample of one row.
fn bundle(version: &str, cols: [&str; 2]) -> Vec<u8> {
    ingot::testing::logistic_with(|manifest| {
        manifest.model.version = version.into();
        manifest.signature.inputs[1].name = cols[1].into();
        let ingot::format::PreprocessSpec::Tabular(spec) = &mut manifest.preprocess[0] else {
            panic!("tabular")
        };
        spec.transformers[0].columns = vec![cols[0].into(), cols[1].into()];
        let row =
            Record::from([(cols[0].to_string(), Value::from(3.0)), (cols[1].to_string(), Value::from(1.0))]);
        manifest.reference = Some(Reference { sample: vec![row], ..Reference::default() });
    })
    .unwrap()
}

fn good(version: &str) -> Vec<u8> {
    bundle(version, ["a", "b"])
}

/// Errors on every request without a `c` column (the usual requests), passes its warm-up.
fn faulty(version: &str) -> Vec<u8> {
    bundle(version, ["a", "c"])
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Written aside and renamed, as a deployment would, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn start(models: &Path, extra: &[&str]) -> Server {
        Self::start_logging(models, extra, Stdio::null(), "warn")
    }

    /// Starts the server with its standard error going to `stderr` at level `level`.
    fn start_logging(models: &Path, extra: &[&str], stderr: impl Into<Stdio>, level: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ingot-server"))
            .args(["--models", models.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(if extra.contains(&"--poll-interval") { &[][..] } else { &["--poll-interval", "0"][..] })
            .args(extra)
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Keep reading, so the server never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr, _dir: None }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args(["-s", signal, &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    fn get(&self, path: &str, key: Option<&str>) -> Answer {
        http(self.addr, "GET", path, key, &[], "")
    }

    fn post(&self, path: &str, key: Option<&str>, body: &str) -> Answer {
        http(self.addr, "POST", path, key, &[], body)
    }

    fn predict(&self, key: Option<&str>) -> Answer {
        self.post("/v1/models/m/predict", key, r#"{"records":[{"a":3,"b":1}]}"#)
    }

    fn reload(&self) -> Json {
        let answer = self.post("/admin/reload", Some("admin-key"), "");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    }

    fn metric(&self, name_and_labels: &str) -> f64 {
        let text = self.get("/metrics", Some("admin-key")).body;
        text.lines()
            .filter(|l| l.starts_with(name_and_labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", self.status, self.body))
    }

    fn version(&self) -> &str {
        self.headers.get("x-ingot-version").map_or("", String::as_str)
    }
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {raw:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if headers.get("transfer-encoding").is_some_and(|t| t == "chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Answer { status, headers, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn repo(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, bytes) in files {
        put(dir.path(), rel, bytes);
    }
    dir
}

fn with_keys(dir: &tempfile::TempDir) -> String {
    keys_file(dir.path()).to_str().unwrap().to_owned()
}

#[test]
fn hot_reload_loads_new_versions_and_keeps_serving_through_bad_ones() {
    let dir = repo(&[("models/m/1.0.0/model.ingot", good("1.0.0"))]);
    let models = dir.path().join("models");
    let server = Server::start(&models, &["--api-keys", &with_keys(&dir)]);
    assert_eq!(server.predict(Some("user-key")).version(), "1.0.0");

    // A new version is loaded and takes traffic.
    put(&models, "m/1.1.0/model.ingot", &good("1.1.0"));
    let report = server.reload();
    assert_eq!(report["loaded"], json!(["m@1.1.0"]), "{report}");
    assert_eq!(server.predict(Some("user-key")).version(), "1.1.0");

    // A corrupted new version is reported and never served.
    put(&models, "m/1.2.0/model.ingot", b"not a bundle at all");
    let report = server.reload();
    assert_eq!(report["failed"][0]["version"], "1.2.0", "{report}");
    assert_eq!(server.predict(Some("user-key")).version(), "1.1.0");
    let status = server.get("/admin/status", Some("admin-key")).json();
    assert_eq!(status["failures"][0]["model"], "m", "{status}");
    assert!(status["failures"][0]["reason"].as_str().unwrap().contains("IngotFormatError"), "{status}");
    assert!(server.metric("ingot_model_load_failures_total{model=\"m\"}") >= 1.0);
    // Not retried while unchanged.
    assert_eq!(server.reload()["failed"], json!([]));

    // The serving version overwritten by a corrupt file: the loaded one keeps serving.
    put(&models, "m/1.1.0/model.ingot", &good("1.1.0")[..100]);
    let report = server.reload();
    assert_eq!(report["failed"][0]["previous_serving"], true, "{report}");
    let answer = server.predict(Some("user-key"));
    assert_eq!((answer.status, answer.version()), (200, "1.1.0"));

    // SIGHUP rescans too.
    put(&models, "m/1.3.0/model.ingot", &good("1.3.0"));
    server.signal("HUP");
    wait_until("SIGHUP reload", || server.predict(Some("user-key")).version() == "1.3.0");

    // A removed version stops being served.
    std::fs::remove_dir_all(models.join("m/1.3.0")).unwrap();
    assert_eq!(server.reload()["removed"], json!(["m@1.3.0"]));
    assert_eq!(server.predict(Some("user-key")).version(), "1.1.0");
}

#[test]
fn the_interval_rescans_on_its_own() {
    let dir = repo(&[("m/1.0.0/model.ingot", good("1.0.0"))]);
    let server = Server::start(dir.path(), &["--poll-interval", "1"]);
    put(dir.path(), "m/2.0.0/model.ingot", &good("2.0.0"));
    wait_until("interval reload", || server.predict(None).version() == "2.0.0");
    // Without keys, the admin API is off.
    assert_eq!(server.post("/admin/reload", None, "").status, 404);
}

#[test]
fn memory_comes_back_after_many_reloads() {
    let dir = repo(&[("models/m/1.0.0/model.ingot", good("1.0.0"))]);
    let models = dir.path().join("models");
    let server = Server::start(&models, &["--api-keys", &with_keys(&dir)]);
    let reload_changed = |i: usize| {
        // New bytes each time (another version string in the card), so the bundle is reloaded.
        put(&models, "m/1.0.0/model.ingot", &good(&format!("1.0.{}", i % 2)));
        let report = server.reload();
        assert_eq!(report["loaded"], json!(["m@1.0.0"]), "{report}");
        assert_eq!(server.predict(Some("user-key")).status, 200);
    };
    for i in 0..20 {
        reload_changed(i);
    }
    let before = server.rss_kib();
    for i in 0..100 {
        reload_changed(i);
    }
    let after = server.rss_kib();
    eprintln!("RSS after 20 reloads: {before} KiB, after 120: {after} KiB");
    assert!(after < before + 4096, "RSS grew from {before} KiB to {after} KiB over 100 reloads");
}

#[test]
fn only_signed_bundles_are_served_with_a_trusted_key() {
    let dir =
        repo(&[("models/m/1.0.0/model.ingot", good("1.0.0")), ("models/m/1.1.0/model.ingot", good("1.1.0"))]);
    let models = dir.path().join("models");
    let key = ingot::signing::SigningKey::generate().unwrap();
    let public = dir.path().join("trusted.pub");
    key.verifying_key().write(&public).unwrap();
    ingot::signing::sign_bundle(models.join("m/1.0.0/model.ingot"), &key).unwrap();
    let server =
        Server::start(&models, &["--trusted-key", public.to_str().unwrap(), "--api-keys", &with_keys(&dir)]);
    // 1.1.0 has no signature: not served.
    assert_eq!(server.predict(Some("user-key")).version(), "1.0.0");
    let status = server.get("/admin/status", Some("admin-key")).json();
    assert_eq!(status["failures"][0]["version"], "1.1.0", "{status}");
    assert!(status["failures"][0]["reason"].as_str().unwrap().contains("IngotSignatureError"), "{status}");

    // Signed by another key: refused; the signed 1.0.0 keeps serving.
    let other = ingot::signing::SigningKey::generate().unwrap();
    ingot::signing::sign_bundle(models.join("m/1.1.0/model.ingot"), &other).unwrap();
    let report = server.reload();
    assert_eq!(report["failed"][0]["version"], "1.1.0", "{report}");
    assert_eq!(server.predict(Some("user-key")).version(), "1.0.0");

    // A tampered signed bundle is refused too.
    let mut bytes = std::fs::read(models.join("m/1.0.0/model.ingot")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    put(&models, "m/1.0.0/model.ingot", &bytes);
    let report = server.reload();
    assert_eq!(report["failed"][0]["version"], "1.0.0", "{report}");
    let status = server.get("/admin/status", Some("admin-key")).json();
    assert_eq!(status["failures"].as_array().unwrap().len(), 2, "{status}");
    assert_eq!(server.predict(Some("user-key")).version(), "1.0.0");

    // Signed by the trusted key: served.
    ingot::signing::sign_bundle(models.join("m/1.1.0/model.ingot"), &key).unwrap();
    server.reload();
    assert_eq!(server.predict(Some("user-key")).version(), "1.1.0");
}

const CANARY: &str = r#"
[aliases]
stable = "1.0.0"
canary = "1.1.0"
[canary]
weight = 0.3
min_requests = 20
window_s = 30
max_error_rate_margin = 0.05
"#;

#[test]
fn the_canary_gets_its_share_and_keys_are_sticky() {
    let dir = repo(&[
        ("m/1.0.0/model.ingot", good("1.0.0")),
        ("m/1.1.0/model.ingot", good("1.1.0")),
        ("m/config.toml", CANARY.as_bytes().to_vec()),
    ]);
    let server = Server::start(dir.path(), &[]);
    let n = 1000;
    let canary = (0..n).filter(|_| server.predict(None).version() == "1.1.0").count();
    // Binomial(1000, 0.3): sd ≈ 14.5; allow 5 sd.
    assert!((canary as f64 - 300.0).abs() < 5.0 * 14.5, "{canary} of {n} went to the canary");
    for user in 0..20 {
        let key = format!("user-{user}");
        let ask = || {
            let a = http(
                server.addr,
                "POST",
                "/v1/models/m/predict",
                None,
                &[("x-ingot-routing-key", &key)],
                r#"{"records":[{"a":3,"b":1}]}"#,
            );
            a.version().to_owned()
        };
        let first = ask();
        assert!((0..5).all(|_| ask() == first), "{key} moved between versions");
    }
    // A healthy canary is not rolled back.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.metric("ingot_rollbacks_total"), 0.0);
    let status = http(server.addr, "GET", "/v1/models/m", None, &[], "").json();
    assert_eq!(status["release"]["canary"]["version"], "1.1.0", "{status}");
    assert!(status["release"]["canary"].get("retired").is_none(), "{status}");
}

#[test]
fn a_faulty_canary_is_rolled_back_automatically() {
    let dir = repo(&[
        ("m/1.0.0/model.ingot", good("1.0.0")),
        ("m/1.1.0/model.ingot", faulty("1.1.0")),
        ("m/config.toml", CANARY.as_bytes().to_vec()),
    ]);
    let server = Server::start(dir.path(), &[]);
    let mut failed = 0;
    for _ in 0..200 {
        let a = server.predict(None);
        if a.status != 200 {
            failed += 1;
            assert_eq!((a.status, a.version()), (400, "1.1.0"), "errors name the version that failed");
        }
    }
    assert!(failed > 20, "{failed} failures: the canary should have taken some traffic");
    wait_until("automatic rollback", || server.metric("ingot_rollbacks_total") == 1.0);
    // Out of rotation: every request is stable's now.
    assert!((0..100).all(|_| server.predict(None).version() == "1.0.0"));
    let info = server.get("/v1/models/m", None).json();
    let reason = info["release"]["canary"]["retired"].as_str().unwrap();
    assert!(reason.contains("error rate"), "{reason}");
    // A rescan with the same configuration keeps it out.
    put(dir.path(), "m/2.0.0/model.ingot", &good("2.0.0"));
    server.signal("HUP");
    wait_until("rescan", || {
        server.get("/v1/models/m", None).json()["versions"].as_array().unwrap().len() == 3
    });
    assert!((0..50).all(|_| server.predict(None).version() == "1.0.0"));
}

#[test]
fn shadow_answers_are_compared_and_never_returned() {
    let config = CANARY.replace("weight = 0.3", "mode = \"shadow\"");
    let dir = repo(&[
        ("m/1.0.0/model.ingot", good("1.0.0")),
        ("m/1.1.0/model.ingot", good("1.1.0")),
        ("m/config.toml", config.into_bytes()),
    ]);
    let server = Server::start(dir.path(), &[]);
    for _ in 0..50 {
        assert_eq!(server.predict(None).version(), "1.0.0");
    }
    let compared = "ingot_shadow_comparisons_total{model=\"m\",version=\"1.1.0\"}";
    wait_until("shadow comparisons", || server.metric(compared) == 50.0);
    assert_eq!(server.metric("ingot_shadow_disagreements_total{model=\"m\",version=\"1.1.0\"}"), 0.0);
}

#[test]
fn a_disagreeing_shadow_is_counted() {
    let config = CANARY
        .replace("weight = 0.3", "mode = \"shadow\"")
        .replace("min_requests = 20", "min_requests = 1000");
    let dir = repo(&[
        ("m/1.0.0/model.ingot", good("1.0.0")),
        ("m/1.1.0/model.ingot", faulty("1.1.0")),
        ("m/config.toml", config.into_bytes()),
    ]);
    let server = Server::start(dir.path(), &[]);
    for _ in 0..30 {
        assert_eq!(server.predict(None).status, 200);
    }
    let disagreed = "ingot_shadow_disagreements_total{model=\"m\",version=\"1.1.0\"}";
    wait_until("shadow disagreements", || server.metric(disagreed) == 30.0);
}

#[test]
fn promotion_and_rollback_under_load_lose_no_request() {
    let dir = repo(&[
        ("models/m/1.0.0/model.ingot", good("1.0.0")),
        ("models/m/1.1.0/model.ingot", good("1.1.0")),
        ("models/m/config.toml", CANARY.as_bytes().to_vec()),
    ]);
    let models = dir.path().join("models");
    let server = Arc::new(Server::start(&models, &["--api-keys", &with_keys(&dir)]));
    let sent = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (server, sent, ok, stop) =
                (Arc::clone(&server), Arc::clone(&sent), Arc::clone(&ok), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if server.predict(Some("user-key")).status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let admin = |path: &str, body: &str| {
        let a = server.post(path, Some("admin-key"), body);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        a.json()
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin("/admin/models/m/promote", "")["release"]["stable"], "1.1.0");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin("/admin/models/m/rollback", r#"{"version":"1.0.0"}"#)["release"]["stable"], "1.0.0");
    admin("/admin/models/m/canary", r#"{"version":"1.1.0","weight":0.5}"#);
    put(&models, "m/1.2.0/model.ingot", &good("1.2.0"));
    admin("/admin/reload", "");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin("/admin/models/m/rollback", "")["release"]["canary"], Json::Null);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (sent, ok) = (sent.load(Ordering::Relaxed), ok.load(Ordering::Relaxed));
    assert!(sent > 50, "only {sent} requests sent");
    assert_eq!(ok, sent, "{} of {sent} requests failed during release changes", sent - ok);
    // The pinned release survived the rescan.
    assert_eq!(server.predict(Some("user-key")).version(), "1.0.0");

    // Admin errors.
    assert_eq!(server.post("/admin/models/m/promote", Some("admin-key"), "").status, 409);
    assert_eq!(server.post("/admin/models/nope/promote", Some("admin-key"), "").status, 404);
    assert_eq!(
        server.post("/admin/models/m/canary", Some("admin-key"), r#"{"version":"9.9.9"}"#).status,
        404
    );
    assert_eq!(
        server.post("/admin/models/m/canary", Some("admin-key"), r#"{"version":"1.1.0","weight":2}"#).status,
        400
    );
    assert_eq!(server.post("/admin/models/m/promote", Some("user-key"), "").status, 403);
}

#[test]
fn keys_scopes_rate_and_size_limits() {
    let dir = repo(&[("models/m/1.0.0/model.ingot", good("1.0.0"))]);
    let models = dir.path().join("models");
    let server = Server::start(
        &models,
        &["--api-keys", &with_keys(&dir), "--max-body-bytes", "2048", "--max-batch-rows", "4"],
    );
    let no_key = server.predict(None);
    assert_eq!(no_key.status, 401);
    assert_eq!(no_key.headers.get("www-authenticate").map(String::as_str), Some("Bearer"));
    assert_eq!(server.predict(Some("wrong")).status, 401);
    assert_eq!(server.predict(Some("user-key")).status, 200);
    let via_header = http(
        server.addr,
        "POST",
        "/v1/models/m/predict",
        None,
        &[("x-api-key", "user-key")],
        r#"{"records":[{"a":3,"b":1}]}"#,
    );
    assert_eq!(via_header.status, 200);
    // Scopes: the user key cannot read metrics or call admin.
    assert_eq!(server.get("/metrics", Some("user-key")).status, 403);
    assert_eq!(server.get("/metrics", Some("admin-key")).status, 200);
    assert_eq!(server.post("/admin/reload", Some("user-key"), "").status, 403);
    // Health needs no key.
    assert_eq!(server.get("/v2/health/live", None).status, 200);
    assert_eq!(server.get("/v2/health/ready", None).status, 200);
    // Rate limit: burst 2, then 429 with Retry-After.
    let statuses: Vec<u16> = (0..4).map(|_| server.predict(Some("slow-key")).status).collect();
    assert_eq!(&statuses[..2], [200, 200]);
    let limited = server.predict(Some("slow-key"));
    assert_eq!(limited.status, 429, "{statuses:?}");
    assert_eq!(limited.headers.get("retry-after").map(String::as_str), Some("1"));
    assert_eq!(limited.json()["error"]["code"], "RateLimited");
    assert!(server.metric("ingot_rate_limited_total") >= 1.0);
    // Body and batch limits.
    let big = format!(r#"{{"records":[{}]}}"#, vec![r#"{"a":3,"b":1}"#; 200].join(","));
    assert_eq!(server.post("/v1/models/m/predict", Some("user-key"), &big).status, 413);
    let five = format!(r#"{{"records":[{}]}}"#, [r#"{"a":3,"b":1}"#; 5].join(","));
    let too_many = server.post("/v1/models/m/predict", Some("user-key"), &five);
    assert_eq!(too_many.status, 413);
    assert_eq!(too_many.json()["error"]["code"], "TooManyRows");
    // Validation against the signature: the core's message, no internals.
    let bad = server.post("/v1/models/m/predict", Some("user-key"), r#"{"records":[{"a":"x","b":1}]}"#);
    assert_eq!(bad.status, 400);
    let message = bad.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("`a`") && !message.contains(models.to_str().unwrap()), "{message}");
}

#[test]
fn concurrent_requests_are_batched() {
    let config = "max_batch_size = 4\nmax_queue_delay_us = 200000\n";
    let dir = repo(&[("m/1.0.0/model.ingot", good("1.0.0")), ("m/config.toml", config.as_bytes().to_vec())]);
    let server = Arc::new(Server::start(dir.path(), &[]));
    let answers: Vec<_> = (0..12)
        .map(|_| {
            let server = Arc::clone(&server);
            std::thread::spawn(move || server.predict(None))
        })
        .collect();
    for a in answers {
        let a = a.join().unwrap();
        assert_eq!(
            (a.status, a.json()["predictions"][0]["label"].as_str()),
            (200, Some("yes")),
            "{}",
            a.body
        );
    }
    let batches = server.metric("ingot_batch_size_count{model=\"m\",version=\"1.0.0\"}");
    let rows = server.metric("ingot_batch_size_sum{model=\"m\",version=\"1.0.0\"}");
    // The warm-up runs on the model directly, not through the batcher.
    assert_eq!(rows, 12.0);
    assert!(batches < 12.0, "{batches} batches for 12 concurrent requests");
}

#[test]
fn overload_is_503_with_retry_after() {
    // One request at a time may run or wait; a large batch keeps it busy for a while.
    let dir =
        repo(&[("m/1.0.0/model.ingot", good("1.0.0")), ("m/config.toml", b"max_queue_size = 1\n".to_vec())]);
    let server = Arc::new(Server::start(dir.path(), &[]));
    let big = format!(r#"{{"instances":[{}]}}"#, vec!["[3,1]"; 10_000].join(","));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let small: Vec<_> = (0..3)
        .map(|_| {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push(server.predict(None));
                }
                seen
            })
        })
        .collect();
    let mut big_statuses = Vec::new();
    for _ in 0..20 {
        big_statuses.push(server.post("/v1/models/m/predict", None, &big).status);
    }
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Answer> = small.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(answers.iter().all(|a| a.status == 200 || a.status == 503));
    assert!(big_statuses.iter().all(|&s| s == 200 || s == 503), "{big_statuses:?}");
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    let refused_big = big_statuses.iter().filter(|&&s| s == 503).count();
    assert!(!refused.is_empty() || refused_big > 0, "no request was refused");
    if let Some(r) = refused.first() {
        assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
        assert_eq!(r.json()["error"]["code"], "Overloaded");
    }
    assert!(
        server
            .metric("ingot_requests_total{model=\"m\",version=\"1.0.0\",protocol=\"ingot\",status=\"503\"}")
            >= 1.0
    );
}

#[test]
fn drift_is_measured_against_the_reference_deciles() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1.0.0/model.ingot"))
            .unwrap();
    let dir = repo(&[("bc/1.0.0/model.ingot", bytes.clone())]);
    let server = Server::start(dir.path(), &[]);
    let reference = Bundle::from_bytes(bytes).unwrap().manifest().reference.clone().unwrap();
    // Rows drawn from the reference distribution (a decile at random, uniform within it),
    // once as they are and once with `mean radius` tripled.
    let mut state = 0u64;
    let mut draw = || {
        state = ingot_server::release::splitmix(state);
        ingot_server::release::unit(state)
    };
    let mut rows = |scale: f64| -> Vec<Json> {
        (0..100)
            .map(|_| {
                let row: serde_json::Map<String, Json> = reference
                    .columns
                    .iter()
                    .map(|(name, stats)| {
                        let q = &stats.quantiles;
                        let k = ((draw() * 10.0) as usize).min(9);
                        let x = q[k] + draw() * (q[k + 1] - q[k]);
                        let x = if name == "mean radius" { x * scale } else { x };
                        (name.clone(), json!(x))
                    })
                    .collect();
                Json::Object(row)
            })
            .collect()
    };
    let psi = |server: &Server, feature: &str| {
        server.metric(&format!("ingot_drift_psi{{model=\"bc\",version=\"1.0.0\",feature=\"{feature}\"}}"))
    };
    for _ in 0..50 {
        let body = json!({ "records": rows(1.0) }).to_string();
        assert_eq!(server.post("/v1/models/bc/predict", None, &body).status, 200);
    }
    let (radius, texture) = (psi(&server, "mean radius"), psi(&server, "mean texture"));
    assert!(radius < 0.1 && texture < 0.1, "PSI of reference-like rows: {radius}, {texture}");
    for _ in 0..50 {
        let body = json!({ "records": rows(3.0) }).to_string();
        assert_eq!(server.post("/v1/models/bc/predict", None, &body).status, 200);
    }
    let (radius, texture) = (psi(&server, "mean radius"), psi(&server, "mean texture"));
    assert!(radius > 1.0, "PSI of the tripled column: {radius}");
    assert!(texture < 0.1, "PSI of an unchanged column: {texture}");
}

#[test]
fn graceful_shutdown_finishes_accepted_requests() {
    let config = "max_batch_size = 8\nmax_queue_delay_us = 700000\n";
    let dir = repo(&[("m/1.0.0/model.ingot", good("1.0.0")), ("m/config.toml", config.as_bytes().to_vec())]);
    let mut server = Server::start(dir.path(), &[]);
    let addr = server.addr;
    let pending = std::thread::spawn(move || {
        http(addr, "POST", "/v1/models/m/predict", None, &[], r#"{"records":[{"a":3,"b":1}]}"#)
    });
    // The request waits in the batch queue for 0.7 s; SIGTERM arrives meanwhile.
    std::thread::sleep(Duration::from_millis(250));
    server.signal("TERM");
    let answer = pending.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(TcpStream::connect(addr).is_err(), "still listening after shutdown");
}

#[test]
fn the_openapi_document_lists_every_route() {
    let dir = repo(&[("models/m/1.0.0/model.ingot", good("1.0.0"))]);
    let models = dir.path().join("models");
    let server = Server::start(&models, &["--api-keys", &with_keys(&dir)]);
    let doc = server.get("/openapi.json", None).json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= ingot_server::routes::ROUTES.len(), "{} paths", paths.len());
    for (path, ops) in paths {
        let concrete = path.replace("{name}", "m").replace("{version}", "1.0.0");
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let a = http(server.addr, &method, &concrete, Some("admin-key"), &[], "");
            let fallback = a.body.contains("no route for") || a.body.contains("MethodNotAllowed");
            assert!(!fallback, "{method} {path} is documented but not routed: {} {}", a.status, a.body);
        }
    }
    // Every route of the router is documented.
    for route in ingot_server::routes::ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        assert!(
            paths.get(path).and_then(|p| p.get(method.to_ascii_lowercase())).is_some(),
            "{route} is routed but not in /openapi.json"
        );
        let concrete = path.replace("{name}", "m").replace("{version}", "1.0.0");
        let a = http(server.addr, method, &concrete, Some("admin-key"), &[], "");
        assert!(!a.body.contains("no route for"), "{route} is listed but not routed");
    }
}

#[test]
fn repeated_inputs_are_answered_from_the_cache_when_enabled() {
    let dir = repo(&[("m/1.0.0/model.ingot", good("1.0.0"))]);
    let server = Server::start(dir.path(), &["--cache-entries", "100"]);
    let first = server.predict(None);
    let again = server.predict(None);
    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(first.json()["predictions"], again.json()["predictions"]);
    assert_eq!(server.metric("ingot_cache_hits_total"), 1.0);
    assert_eq!(server.metric("ingot_cache_misses_total"), 1.0);
    let other = server.post("/v1/models/m/predict", None, r#"{"records":[{"a":0,"b":4}]}"#);
    assert_eq!(other.json()["predictions"][0]["label"], "no");
    assert_eq!(server.metric("ingot_cache_misses_total"), 2.0);

    // Off by default.
    let plain = Server::start(dir.path(), &[]);
    plain.predict(None);
    plain.predict(None);
    assert_eq!(plain.metric("ingot_cache_hits_total"), 0.0);
}

#[test]
fn json_logs_carry_the_request_id() {
    let dir = repo(&[("m/1.0.0/model.ingot", good("1.0.0"))]);
    let log = dir.path().join("server.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut server =
        Server::start_logging(dir.path(), &["--log-format", "json", "--access-log"], file, "info");
    let answer = http(
        server.addr,
        "POST",
        "/v1/models/m/predict",
        None,
        &[("x-request-id", "req-42")],
        r#"{"records":[{"a":3,"b":1}]}"#,
    );
    assert_eq!(answer.headers.get("x-request-id").map(String::as_str), Some("req-42"));
    let generated = server.predict(None);
    assert_eq!(generated.headers.get("x-request-id").map_or(0, String::len), 16);
    server.signal("TERM");
    server.child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Json> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let access = lines
        .iter()
        .find(|l| l["message"] == "request" && l["span"]["request_id"] == "req-42")
        .unwrap_or_else(|| panic!("no access line for req-42 in\n{text}"));
    assert_eq!(
        (access["status"].as_u64(), access["path"].as_str()),
        (Some(200), Some("/v1/models/m/predict"))
    );
}

#[test]
fn cors_is_off_unless_an_origin_is_allowed() {
    let dir = repo(&[("m/1.0.0/model.ingot", good("1.0.0"))]);
    let preflight = |server: &Server| {
        let headers = [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")];
        http(server.addr, "OPTIONS", "/v1/models/m/predict", None, &headers, "")
    };
    let closed = Server::start(dir.path(), &[]);
    assert!(!preflight(&closed).headers.contains_key("access-control-allow-origin"));
    let open = Server::start(dir.path(), &["--cors-origin", "https://app.example"]);
    let answer = preflight(&open);
    assert_eq!(
        answer.headers.get("access-control-allow-origin").map(String::as_str),
        Some("https://app.example")
    );
    let other = Server::start(dir.path(), &["--cors-origin", "https://other.example"]);
    assert!(!preflight(&other).headers.contains_key("access-control-allow-origin"));
}

#[test]
fn the_binary_probes_and_changes_releases_as_a_client() {
    let dir = repo(&[
        ("models/m/1.0.0/model.ingot", good("1.0.0")),
        ("models/m/1.1.0/model.ingot", good("1.1.0")),
        ("models/m/config.toml", CANARY.as_bytes().to_vec()),
    ]);
    let models = dir.path().join("models");
    let server = Server::start(&models, &["--api-keys", &with_keys(&dir)]);
    let client = |args: &[&str], key: &str| {
        Command::new(env!("CARGO_BIN_EXE_ingot-server"))
            .args(args)
            .env("INGOT_ADMIN_KEY", key)
            .output()
            .unwrap()
    };
    let url = format!("http://{}", server.addr);
    assert!(client(&["--probe", &format!("{url}/v2/health/ready")], "").status.success());
    assert!(!client(&["--probe", &format!("{url}/nowhere")], "").status.success());
    assert!(!client(&["--probe", "http://127.0.0.1:1/v2/health/ready"], "").status.success());

    let refused = client(&["--server", &url, "--promote", "m"], "user-key");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{refused:?}");
    let promoted = client(&["--server", &url, "--promote", "m"], "admin-key");
    assert!(promoted.status.success(), "{promoted:?}");
    assert_eq!(server.predict(Some("user-key")).version(), "1.1.0");
    let rolled = client(&["--server", &url, "--rollback", "m", "--to", "1.0.0"], "admin-key");
    assert!(rolled.status.success(), "{rolled:?}");
    assert_eq!(server.predict(Some("user-key")).version(), "1.0.0");
}

#[test]
fn a_broken_config_keeps_the_model_as_served_and_is_reported_once() {
    let dir = repo(&[("models/m/1.0.0/model.ingot", good("1.0.0"))]);
    let models = dir.path().join("models");
    let server = Server::start(&models, &["--api-keys", &with_keys(&dir)]);
    put(&models, "m/config.toml", b"max_batch = 4\n");
    let report = server.reload();
    assert!(report["failed"][0]["reason"].as_str().unwrap().contains("unknown field"), "{report}");
    assert_eq!(server.reload()["failed"], json!([]), "reported again");
    assert_eq!(server.metric("ingot_model_load_failures_total{model=\"m\"}"), 1.0);
    assert_eq!(server.predict(Some("user-key")).version(), "1.0.0");
    let status = server.get("/admin/status", Some("admin-key")).json();
    assert_eq!(status["failures"][0]["previous_serving"], true, "{status}");
    put(&models, "m/config.toml", b"max_batch_size = 4\n");
    assert_eq!(server.reload()["loaded"], json!(["m@1.0.0"]));
    assert_eq!(server.get("/admin/status", Some("admin-key")).json()["failures"], json!([]));
}
