//! The `.ingot` container: round-trips, determinism and one crafted bad file per reader check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ingot::format::{to_bytes, write_file};
use ingot::testing::{logistic_bundle, tiny_manifest};
use ingot::{Bundle, Error, Model, TensorData};
use proptest::prelude::*;

fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// Rewrites the JSON header of a valid file (keeping the data section) and fixes the length.
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = header_len(bytes);
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let mut text = serde_json::to_vec(&header).unwrap();
    let padded = (8 + text.len()).div_ceil(64) * 64 - 8;
    text.resize(padded, b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

fn edit_manifest(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    with_header(bytes, |h| {
        let text = h["__metadata__"]["ingot.manifest"].as_str().unwrap().to_owned();
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        edit(&mut m);
        h["__metadata__"]["ingot.manifest"] = serde_json::Value::String(m.to_string());
    })
}

fn check_of(result: Result<Bundle, Error>) -> &'static str {
    match result {
        Err(Error::Format { check, .. }) => check,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn writer_output_is_deterministic_and_aligned() {
    let a = logistic_bundle().unwrap();
    let b = logistic_bundle().unwrap();
    assert_eq!(a, b);
    assert_eq!((8 + header_len(&a)) % 64, 0);
    // Re-serializing what was read gives identical bytes.
    let bundle = Bundle::from_bytes(a.clone()).unwrap();
    let tensors: Vec<(String, TensorData)> =
        bundle.tensor_entries().keys().map(|n| (n.clone(), bundle.tensor_data(n).unwrap())).collect();
    assert_eq!(to_bytes(bundle.manifest(), &tensors).unwrap(), a);
}

#[test]
fn golden_bytes_of_tiny_bundle() {
    let t = TensorData::from_f32(vec![2], &[1.0, -1.0]).unwrap();
    let bytes = to_bytes(&tiny_manifest(), &[("w".into(), t)]).unwrap();
    let n = header_len(&bytes);
    assert_eq!(n, 504);
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end();
    let checksum = blake3::hash(&bytes[8 + n..]).to_hex().to_string();
    let expected = format!(
        concat!(
            r#"{{"__metadata__":{{"ingot.format":"1.0","ingot.manifest":"{{\"checksum\":\"{c}\","#,
            r#"\"graph\":{{\"inputs\":[],\"nodes\":[],\"opset\":1,\"outputs\":[]}},"#,
            r#"\"model\":{{\"name\":\"tiny\",\"version\":\"0.1.0\"}},\"postprocess\":[],\"preprocess\":[],"#,
            r#"\"producer\":{{\"name\":\"test\",\"version\":\"0\"}},"#,
            r#"\"signature\":{{\"inputs\":[],\"outputs\":[],\"request_forms\":[]}}}}","name":"tiny","version":"0.1.0"}},"#,
            r#""w":{{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}}}"#
        ),
        c = checksum
    );
    assert_eq!(header, expected);
    assert_eq!(&bytes[8 + n..], &[0, 0, 128, 63, 0, 0, 128, 191]);
}

#[test]
fn tensors_are_ordered_by_alignment_then_name() {
    let f64s = TensorData::new(ingot::DType::F64, vec![1], 1f64.to_le_bytes().to_vec()).unwrap();
    let u8s = TensorData::new(ingot::DType::U8, vec![3], vec![1, 2, 3]).unwrap();
    let f32s = TensorData::from_f32(vec![1], &[2.0]).unwrap();
    let tensors = vec![("a_u8".into(), u8s), ("b_f32".into(), f32s), ("c_f64".into(), f64s)];
    let bundle = Bundle::from_bytes(to_bytes(&tiny_manifest(), &tensors).unwrap()).unwrap();
    let e = bundle.tensor_entries();
    assert_eq!(e["c_f64"].range, 0..8);
    assert_eq!(e["b_f32"].range, 8..12);
    assert_eq!(e["a_u8"].range, 12..15);
}

#[test]
fn atomic_write_replaces_and_failed_write_leaves_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ingot");
    write_file(&path, &tiny_manifest(), &[]).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A duplicate tensor name fails before anything is written.
    let t = TensorData::from_f32(vec![1], &[1.0]).unwrap();
    let err = write_file(&path, &tiny_manifest(), &[("x".into(), t.clone()), ("x".into(), t)]).unwrap_err();
    assert!(matches!(err, Error::Manifest { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[test]
fn rewrite_while_mapped_keeps_old_mapping_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ingot");
    std::fs::write(&path, logistic_bundle().unwrap()).unwrap();
    let model = Model::load(&path).unwrap();
    write_file(&path, &tiny_manifest(), &[]).unwrap();
    assert_eq!(model.metadata().name, "logistic");
    assert_eq!(model.predict_dense(&[3.0, 1.0], 1, 2).unwrap().rows, 1);
    assert_eq!(Bundle::open(&path).unwrap().manifest().model.name, "tiny");
}

#[test]
fn each_reader_check_has_a_crafted_file() {
    let good = logistic_bundle().unwrap();
    let n = header_len(&good);

    assert_eq!(check_of(Bundle::from_bytes(vec![1, 2, 3])), "header-too-small");

    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(200_000_000u64).to_le_bytes());
    assert_eq!(check_of(Bundle::from_bytes(huge)), "header-too-large");

    let mut overflow = good.clone();
    overflow[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(check_of(Bundle::from_bytes(overflow)), "header-too-large");

    let mut past_end = good.clone();
    past_end[..8].copy_from_slice(&((good.len() as u64) + 1).to_le_bytes());
    assert_eq!(check_of(Bundle::from_bytes(past_end)), "header-length");

    let mut not_utf8 = good.clone();
    not_utf8[8 + 20] = 0xff;
    assert_eq!(check_of(Bundle::from_bytes(not_utf8)), "header-utf8");

    let mut not_brace = good.clone();
    not_brace.copy_within(8..8 + n - 1, 9);
    not_brace[8] = b' ';
    assert_eq!(check_of(Bundle::from_bytes(not_brace)), "header-start");

    let mut bad_json = good.clone();
    bad_json[8 + 1] = b'!';
    assert_eq!(check_of(Bundle::from_bytes(bad_json)), "header-json");

    let gap = with_header(&good, |h| h["intercept"]["data_offsets"] = serde_json::json!([9, 13]));
    assert_eq!(check_of(Bundle::from_bytes(gap)), "tensor-offsets");

    let big = with_header(&good, |h| {
        h["coef"]["shape"] = serde_json::json!([u64::MAX / 2, 4]);
    });
    assert_eq!(check_of(Bundle::from_bytes(big)), "tensor-size-overflow");

    let wrong_len = with_header(&good, |h| h["coef"]["shape"] = serde_json::json!([1, 3]));
    assert_eq!(check_of(Bundle::from_bytes(wrong_len)), "tensor-byte-length");

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(check_of(Bundle::from_bytes(trailing)), "trailing-bytes");

    let mut unaligned = good.clone();
    let m = header_len(&unaligned) as u64 - 1;
    unaligned[..8].copy_from_slice(&m.to_le_bytes());
    unaligned.remove(8 + m as usize);
    assert_eq!(check_of(Bundle::from_bytes(unaligned)), "data-alignment");

    let dtype = with_header(&good, |h| {
        h["intercept"]["dtype"] = serde_json::json!("I16");
        h["intercept"]["shape"] = serde_json::json!([2]);
    });
    assert_eq!(check_of(Bundle::from_bytes(dtype)), "tensor-dtype");

    let no_meta = with_header(&good, |h| {
        h.as_object_mut().unwrap().remove("__metadata__");
    });
    assert_eq!(check_of(Bundle::from_bytes(no_meta)), "metadata-missing");

    let bad_version = with_header(&good, |h| h["__metadata__"]["ingot.format"] = serde_json::json!("one"));
    assert_eq!(check_of(Bundle::from_bytes(bad_version)), "format-version");

    let bad_manifest = with_header(&good, |h| h["__metadata__"]["ingot.manifest"] = serde_json::json!("{"));
    assert_eq!(check_of(Bundle::from_bytes(bad_manifest)), "manifest-json");

    let renamed = with_header(&good, |h| h["__metadata__"]["name"] = serde_json::json!("other"));
    assert_eq!(check_of(Bundle::from_bytes(renamed)), "name-version");

    let no_sum = edit_manifest(&good, |m| {
        m.as_object_mut().unwrap().remove("checksum");
    });
    assert_eq!(check_of(Bundle::from_bytes(no_sum)), "checksum-missing");
}

#[test]
fn newer_major_is_refused_naming_both_versions_and_newer_minor_loads() {
    let good = logistic_bundle().unwrap();
    let newer = with_header(&good, |h| h["__metadata__"]["ingot.format"] = serde_json::json!("2.0"));
    match Bundle::from_bytes(newer) {
        Err(e @ Error::UnsupportedFormatVersion { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("`2.0`") && msg.contains("`1.0`"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let minor = with_header(&good, |h| h["__metadata__"]["ingot.format"] = serde_json::json!("1.3"));
    let minor = edit_manifest(&minor, |m| m["future_optional_field"] = serde_json::json!({"x": 1}));
    let model = Model::from_bytes(minor).unwrap();
    assert_eq!(model.bundle().format_version(), "1.3");
}

#[test]
fn corrupted_data_fails_the_checksum() {
    let mut bad = logistic_bundle().unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(Bundle::from_bytes(bad), Err(Error::ChecksumMismatch { .. })));
}

#[test]
fn truncations_and_bit_flips_never_panic() {
    let good = logistic_bundle().unwrap();
    for len in 0..good.len() {
        assert!(Model::from_bytes(good[..len].to_vec()).is_err(), "truncated to {len} bytes loaded");
    }
    for i in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = good.clone();
            b[i] ^= bit;
            let _ = Model::from_bytes(b);
        }
    }
}

#[test]
fn semantic_errors_name_the_field() {
    let good = logistic_bundle().unwrap();
    let missing = edit_manifest(&good, |m| m["graph"]["nodes"][0]["inputs"][1] = serde_json::json!("nope"));
    assert!(matches!(Model::from_bytes(missing), Err(Error::TensorMissing { name, .. }) if name == "nope"));

    let unknown_op = edit_manifest(&good, |m| m["graph"]["nodes"][0]["op"] = serde_json::json!("Conv9d"));
    match Model::from_bytes(unknown_op) {
        Err(Error::Graph { node, detail, .. }) => {
            assert!(node == "fc" && detail.contains("Conv9d"))
        }
        other => panic!("{other:?}"),
    }
    let bad_shape = edit_manifest(&good, |m| m["graph"]["inputs"][0]["shape"] = serde_json::json!([-1, 3]));
    assert!(matches!(Model::from_bytes(bad_shape), Err(Error::Graph { .. })));

    let opset = edit_manifest(&good, |m| m["graph"]["opset"] = serde_json::json!(9));
    assert!(matches!(Model::from_bytes(opset), Err(Error::Manifest { field, .. }) if field == "graph.opset"));

    let version = edit_manifest(&good, |m| m["model"]["version"] = serde_json::json!("1.0"));
    let version = with_header(&version, |h| h["__metadata__"]["version"] = serde_json::json!("1.0"));
    assert!(
        matches!(Model::from_bytes(version), Err(Error::Manifest { field, .. }) if field == "model.version")
    );

    let classes =
        edit_manifest(&good, |m| m["postprocess"][0]["classes"] = serde_json::json!(["a", "b", "c"]));
    assert!(
        matches!(Model::from_bytes(classes), Err(Error::Manifest { field, .. }) if field.starts_with("postprocess"))
    );

    let scaler = edit_manifest(&good, |m| {
        m["preprocess"][0]["transformers"][0]["steps"][0]["scale"] = serde_json::json!([1.0])
    });
    assert!(
        matches!(Model::from_bytes(scaler), Err(Error::Manifest { field, .. }) if field.contains("steps[0]"))
    );
}

fn arb_tensor() -> impl Strategy<Value = TensorData> {
    let dtype = prop_oneof![
        Just(ingot::DType::F64),
        Just(ingot::DType::F32),
        Just(ingot::DType::F16),
        Just(ingot::DType::I64),
        Just(ingot::DType::I32),
        Just(ingot::DType::U8)
    ];
    (dtype, prop::collection::vec(0usize..5, 0..3)).prop_flat_map(|(dtype, shape)| {
        let len = shape.iter().product::<usize>() * dtype.size();
        prop::collection::vec(any::<u8>(), len)
            .prop_map(move |data| TensorData::new(dtype, shape.clone(), data).unwrap())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn roundtrip_preserves_manifest_and_tensors(
        tensors in prop::collection::btree_map("[a-z][a-z0-9._-]{0,12}", arb_tensor(), 0..6),
        name in "[a-zA-Z0-9._-]{1,20}",
        description in proptest::option::of(".{0,40}"),
    ) {
        let mut manifest = tiny_manifest();
        manifest.model.name = name;
        manifest.model.description = description;
        let tensors: Vec<(String, TensorData)> = tensors.into_iter().collect();
        let bytes = to_bytes(&manifest, &tensors).unwrap();
        let bundle = Bundle::from_bytes(bytes.clone()).unwrap();
        let mut read_back = bundle.manifest().clone();
        read_back.checksum = None;
        prop_assert_eq!(read_back, manifest.clone());
        for (name, t) in &tensors {
            let v = bundle.tensor(name).unwrap();
            prop_assert_eq!(v.dtype, t.dtype);
            prop_assert_eq!(v.shape, t.shape.as_slice());
            prop_assert_eq!(v.data, t.data.as_slice());
        }
        prop_assert_eq!(to_bytes(bundle.manifest(), &tensors).unwrap(), bytes);
    }
}
