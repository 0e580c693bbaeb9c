use super::*;
use crate::testing::mlp_bundle;

fn source() -> Model {
    Model::from_bytes(mlp_bundle().unwrap()).unwrap()
}

fn run(precision: Precision, edit: impl FnOnce(&mut QuantizeOptions)) -> Result<Quantized> {
    let model = source();
    let data = Calibration::from_reference(&model)?;
    let mut options = QuantizeOptions::new(precision);
    edit(&mut options);
    quantize(&model, &data, &options)
}

#[test]
fn every_precision_writes_a_bundle_close_to_the_source() {
    // (precision, lowest acceptable per-row cosine of the 3 logits): the MLP's weights are in
    // [-1, 1], so int8 steps are 1/127 of the largest weight of a row.
    for (precision, min_cosine) in
        [(Precision::Int8, 0.999), (Precision::F16, 0.999_999), (Precision::Bf16, 0.9999)]
    {
        let out = run(precision, |_| {}).unwrap();
        let a = &out.report.agreement;
        assert_eq!(a.rows, 40);
        assert!(a.min_cosine >= min_cosine, "{precision:?}: {a:?}");
        assert_eq!(a.label_agreement, Some(1.0), "{precision:?}: {a:?}");
        let q = out.model.manifest().quantization.clone().unwrap();
        assert_eq!(q.scheme, precision.name());
        assert_eq!(q.weights.len(), 2);
        assert_eq!(q.layers.len(), 2, "sensitivity of each layer");
        assert_eq!(q.source.as_deref(), Some("mlp@1.0.0"));
        assert_eq!(out.model.metadata().parent.as_deref(), Some("mlp@1.0.0"));
        assert_eq!(out.model.metadata().version, format!("1.0.0+{}", precision.name()));
        assert_eq!(q.accuracy["min_cosine"], a.min_cosine);
        check_scheme(out.model.bundle()).unwrap();
        // The written bytes load again and predict what the report measured.
        let again = Model::from_bytes(out.bytes.clone()).unwrap();
        let data = Calibration::from_reference(&source()).unwrap();
        let measured = Agreement::between(&data.run(&source()).unwrap(), &data.run(&again).unwrap());
        assert_eq!(measured, *a);
    }
}

#[test]
fn int8_is_smaller_and_keeps_named_layers() {
    let all = run(Precision::Int8, |_| {}).unwrap();
    let kept = run(Precision::Int8, |o| o.keep_f32 = vec!["fc2".into()]).unwrap();
    let q = kept.model.manifest().quantization.clone().unwrap();
    assert_eq!(q.weights.keys().collect::<Vec<_>>(), ["fc1.weight"]);
    assert!(kept.report.layers.iter().any(|l| l.node == "fc2" && !l.reduced));
    // The tensors shrink (this MLP is so small that the manifest's report outweighs them).
    let data = |m: &Model| m.bundle().tensor_entries().values().map(|e| e.range.len()).sum::<usize>();
    assert!(data(&all.model) < data(&kept.model) && data(&kept.model) < data(&source()));
    let by_weight = run(Precision::Int8, |o| o.keep_f32 = vec!["fc1.weight".into()]).unwrap();
    assert!(by_weight.report.layers.iter().any(|l| l.node == "fc1" && !l.reduced));
}

#[test]
fn auto_keeps_the_most_sensitive_layers_until_the_cosine_holds() {
    // A target no reduced layer meets: every layer ends up f32, the most sensitive first.
    let out = run(Precision::Int8, |o| o.min_cosine = Some(1.0)).unwrap();
    assert!(out.report.layers.iter().all(|l| !l.reduced));
    assert!(out.report.agreement.min_cosine >= 1.0 - 1e-12, "{:?}", out.report.agreement);
    assert_eq!(out.report.agreement.max_abs_error, 0.0);
    // A target every candidate meets: nothing is kept.
    let out = run(Precision::Int8, |o| o.min_cosine = Some(0.5)).unwrap();
    assert!(out.report.layers.iter().all(|l| l.reduced));
}

#[test]
fn bad_requests_are_refused() {
    let err = run(Precision::Int8, |o| o.min_cosine = Some(1.5)).unwrap_err();
    assert!(err.to_string().contains("1.5"), "{err}");
    let err = run(Precision::Int8, |o| o.keep_f32 = vec!["nope".into()]).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = run(Precision::F16, |o| o.version = Some("two".into())).unwrap_err();
    assert!(err.to_string().contains("two"), "{err}");
    let model = source();
    let err =
        quantize(&model, &Calibration::Records(vec![]), &QuantizeOptions::new(Precision::Int8)).unwrap_err();
    assert!(err.to_string().contains("calibration"), "{err}");
    // The logistic test model has no reference sample.
    let logistic = Model::from_bytes(crate::testing::logistic_bundle().unwrap()).unwrap();
    assert!(Calibration::from_reference(&logistic).is_err());
}

#[test]
fn inconsistent_schemes_are_found() {
    let out = run(Precision::Int8, |_| {}).unwrap();
    let bundle = out.model.bundle();
    let rewrite = |edit: &dyn Fn(&mut Manifest)| {
        let mut manifest = bundle.manifest().clone();
        edit(&mut manifest);
        let tensors: Vec<(String, TensorData)> =
            bundle.tensor_entries().keys().map(|n| (n.clone(), bundle.tensor_data(n).unwrap())).collect();
        crate::Bundle::from_bytes(to_bytes(&manifest, &tensors).unwrap()).unwrap()
    };
    let unlisted = rewrite(&|m| {
        m.quantization.as_mut().unwrap().weights.remove("fc1.weight");
    });
    assert!(check_scheme(&unlisted).unwrap_err().to_string().contains("not listed"));
    let wrong = rewrite(&|m| {
        m.quantization.as_mut().unwrap().weights.insert("fc1.weight".into(), "f16".into());
    });
    assert!(check_scheme(&wrong).unwrap_err().to_string().contains("stored as I8"));
    let missing = rewrite(&|m| {
        m.quantization.as_mut().unwrap().weights.insert("ghost".into(), "bf16".into());
    });
    assert!(check_scheme(&missing).unwrap_err().to_string().contains("ghost"));
}

#[test]
fn an_int8_weight_without_scales_does_not_load() {
    let out = run(Precision::Int8, |_| {}).unwrap();
    let bundle = out.model.bundle();
    let mut manifest = bundle.manifest().clone();
    manifest.graph.nodes[0].attrs.remove("weight_scale");
    let tensors: Vec<(String, TensorData)> =
        bundle.tensor_entries().keys().map(|n| (n.clone(), bundle.tensor_data(n).unwrap())).collect();
    let err = Model::from_bytes(to_bytes(&manifest, &tensors).unwrap()).unwrap_err();
    assert!(err.to_string().contains("I8"), "{err}");
    // Scales of the wrong length.
    let mut tensors = tensors;
    for (name, t) in &mut tensors {
        if name == "fc1.weight.scale" {
            *t = TensorData::from_f32(vec![3], &[1.0, 1.0, 1.0]).unwrap();
        }
    }
    let err = Model::from_bytes(to_bytes(bundle.manifest(), &tensors).unwrap()).unwrap_err();
    assert!(err.to_string().contains("fc1.weight.scale"), "{err}");
}
