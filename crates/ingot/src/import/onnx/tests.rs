//! The importer on small models built here: translation, folding, and every kind of malformed
//! or unsupported file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use prost::Message;

use super::proto::*;
use super::{check_file, import_bytes, OnnxImportOptions};
use crate::{Error, Model};

fn dims_type(elem: i32, dims: &[i64]) -> TypeProto {
    let dim = dims
        .iter()
        .map(|&d| DimensionProto {
            value: Some(if d < 0 { Dimension::Param("N".into()) } else { Dimension::Value(d) }),
        })
        .collect();
    TypeProto {
        tensor_type: Some(TensorTypeProto { elem_type: elem, shape: Some(TensorShapeProto { dim }) }),
        ..Default::default()
    }
}

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto { name: name.into(), r#type: Some(dims_type(data_type::FLOAT, dims)) }
}

fn floats(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: Bytes::from(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()),
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INTS, ints: v.to_vec(), ..Default::default() }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INT, i: v, ..Default::default() }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("{op}_{}", outputs[0]),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    input: Vec<ValueInfoProto>,
    output: &str,
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        producer_name: "test".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer,
            input,
            output: vec![value(output, &[-1, 2])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// `y = relu(x · Wᵀ + b)` over 3 features as MatMul + Add (the bias folds into `Linear`), then
/// a reshape whose target comes from a folded `Shape → Gather → Unsqueeze → Concat`.
fn mlp() -> Vec<u8> {
    let w = floats("W", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, -1.0]);
    let b = floats("b", &[2], &[0.5, -0.5]);
    let zero = TensorProto {
        name: "zero".into(),
        dims: vec![1],
        data_type: data_type::INT64,
        int64_data: vec![0],
        ..Default::default()
    };
    let two = TensorProto {
        name: "two".into(),
        dims: vec![1],
        data_type: data_type::INT64,
        int64_data: vec![2],
        ..Default::default()
    };
    let nodes = vec![
        node("MatMul", &["x", "W"], &["xw"], vec![]),
        node("Add", &["xw", "b"], &["h"], vec![]),
        node("Relu", &["h"], &["r"], vec![]),
        node("Shape", &["r"], &["s"], vec![]),
        node("Gather", &["s", "zero"], &["n"], vec![int_attr("axis", 0)]),
        node("Concat", &["n", "two"], &["target"], vec![int_attr("axis", 0)]),
        node("Reshape", &["r", "target"], &["y"], vec![]),
    ];
    model(nodes, vec![w, b, zero, two], vec![value("x", &[-1, 3])], "y")
}

fn load(bytes: &[u8]) -> Model {
    let (manifest, tensors) = import_bytes(bytes, None, "m", &OnnxImportOptions::default()).unwrap();
    Model::from_bytes(crate::format::to_bytes(&manifest, &tensors).unwrap()).unwrap()
}

#[test]
fn a_matmul_add_relu_graph_becomes_one_linear_and_a_relu() {
    let m = load(&mlp());
    let ops: Vec<&str> = m.manifest().graph.nodes.iter().map(|n| n.op.as_str()).collect();
    assert_eq!(ops, ["Linear", "Relu", "Reshape"], "the bias folds and the shape sub-graph folds");
    let p = m.predict_dense(&[1.0, 2.0, 3.0, -1.0, 0.0, 0.0], 2, 3).unwrap();
    // x·W = [1 + 3, 2 - 3] = [4, -1]; + b = [4.5, -1.5]; relu → [4.5, 0].  Row 2: [-1, 0] + b.
    assert_eq!(p.scores.as_slice(), &[4.5, 0.0, 0.0, 0.0]);
}

#[test]
fn truncated_and_garbage_files_are_clear_errors() {
    let bytes = mlp();
    for cut in [1, bytes.len() / 3, bytes.len() - 1] {
        let err = import_bytes(&bytes[..cut], None, "m", &OnnxImportOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Manifest { .. } | Error::Unsupported { .. }), "{err}");
    }
    let err = import_bytes(b"\xff\xff\xff\xff", None, "m", &OnnxImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not an ONNX model"), "{err}");
}

#[test]
fn a_field_of_the_wrong_wire_type_is_refused() {
    // Field 7 (graph) as a varint instead of a message.
    let err = import_bytes(&[0x38, 0x01], None, "m", &OnnxImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not an ONNX model"), "{err}");
}

#[test]
fn a_missing_initializer_names_the_node_and_the_input() {
    let nodes = vec![node("MatMul", &["x", "W"], &["y"], vec![])];
    let bytes = model(nodes, vec![], vec![value("x", &[-1, 3])], "y");
    let err = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("MatMul") && err.contains("`W`"), "{err}");
}

#[test]
fn a_cyclic_or_unsorted_graph_is_refused() {
    let nodes = vec![node("Relu", &["b"], &["a"], vec![]), node("Relu", &["a"], &["b"], vec![])];
    let bytes = model(nodes, vec![], vec![value("x", &[-1, 2])], "b");
    let err = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("not produced by an earlier node"), "{err}");
}

#[test]
fn inconsistent_shapes_name_the_node() {
    let w = floats("W", &[4, 2], &[0.0; 8]);
    let nodes = vec![node("MatMul", &["x", "W"], &["y"], vec![])];
    let bytes = model(nodes, vec![w], vec![value("x", &[-1, 3])], "y");
    let err = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("MatMul") && err.contains("3 vs 4"), "{err}");
}

#[test]
fn huge_or_lying_dimensions_are_refused_without_allocating() {
    let mut w = floats("W", &[3, 2], &[0.0; 6]);
    w.dims = vec![1 << 40, 1 << 40];
    let bytes =
        model(vec![node("MatMul", &["x", "W"], &["y"], vec![])], vec![w], vec![value("x", &[-1, 3])], "y");
    let err = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("more than"), "{err}");
    let mut w = floats("W", &[3, 2], &[0.0; 6]);
    w.dims = vec![3, 3];
    let bytes =
        model(vec![node("MatMul", &["x", "W"], &["y"], vec![])], vec![w], vec![value("x", &[-1, 3])], "y");
    let err = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("raw data holds 24 bytes"), "{err}");
}

#[test]
fn every_unsupported_node_is_listed_at_once() {
    let nodes = vec![
        node("Resize", &["x"], &["a"], vec![]),
        node("Relu", &["a"], &["b"], vec![]),
        node("NonMaxSuppression", &["x"], &["c"], vec![]),
        node("Gemm", &["x", "x"], &["y"], vec![int_attr("transA", 1)]),
    ];
    let bytes = model(nodes, vec![], vec![value("x", &[-1, 2])], "y");
    let err = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Unsupported { .. }));
    assert!(
        text.contains("2 ONNX nodes") && text.contains("Resize") && text.contains("NonMaxSuppression"),
        "{text}"
    );
    assert!(!text.contains("Relu"), "a node downstream of an unsupported one is not reported: {text}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let report = check_file(&path, &OnnxImportOptions::default()).unwrap();
    assert_eq!(report.unsupported.len(), 2);
    assert!(report.error.is_none());
    assert_eq!(report.ops["Relu"], 1);
    assert!(!report.ok());
}

#[test]
fn external_data_is_read_next_to_the_model_and_must_stay_inside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let values = [1.0f32, 0.0, 0.0, 1.0, 1.0, -1.0];
    let mut blob = vec![0u8; 8];
    blob.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.path().join("weights.bin"), &blob).unwrap();
    let external = |location: &str| TensorProto {
        name: "W".into(),
        dims: vec![3, 2],
        data_type: data_type::FLOAT,
        data_location: 1,
        external_data: [("location", location), ("offset", "8"), ("length", "24")]
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: k.to_string(), value: v.to_string() })
            .collect(),
        ..Default::default()
    };
    let nodes = vec![node("MatMul", &["x", "W"], &["y"], vec![])];
    let bytes = model(nodes.clone(), vec![external("weights.bin")], vec![value("x", &[-1, 3])], "y");
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let (manifest, tensors) = super::import_file(&path, &OnnxImportOptions::default()).unwrap();
    let m = Model::from_bytes(crate::format::to_bytes(&manifest, &tensors).unwrap()).unwrap();
    assert_eq!(m.predict_dense(&[1.0, 2.0, 3.0], 1, 3).unwrap().scores.as_slice(), &[4.0, -1.0]);

    for bad in ["../weights.bin", "/etc/passwd"] {
        let bytes = model(nodes.clone(), vec![external(bad)], vec![value("x", &[-1, 3])], "y");
        std::fs::write(&path, &bytes).unwrap();
        let err = super::import_file(&path, &OnnxImportOptions::default()).unwrap_err().to_string();
        assert!(err.contains("inside the model's directory"), "{err}");
    }
}

#[test]
fn a_symbolic_dimension_beyond_the_batch_needs_an_input_shape() {
    let nodes = vec![node("Relu", &["x"], &["y"], vec![])];
    let bytes = model(nodes, vec![], vec![value("x", &[-1, -1])], "y");
    let err = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("--input-shape"), "{err}");
    let options = OnnxImportOptions { input_shapes: vec![("x".into(), vec![-1, 2])], ..Default::default() };
    let (manifest, _) = import_bytes(&bytes, None, "m", &options).unwrap();
    assert_eq!(manifest.graph.inputs[0].shape, [-1, 2]);
}

#[test]
fn class_labels_turn_logits_into_a_classifier() {
    let w = floats("W", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, -1.0]);
    let bytes =
        model(vec![node("MatMul", &["x", "W"], &["y"], vec![])], vec![w], vec![value("x", &[-1, 3])], "y");
    let options = OnnxImportOptions {
        classes: Some(vec![crate::Value::String("a".into()), crate::Value::String("b".into())]),
        ..Default::default()
    };
    let (manifest, tensors) = import_bytes(&bytes, None, "m", &options).unwrap();
    let m = Model::from_bytes(crate::format::to_bytes(&manifest, &tensors).unwrap()).unwrap();
    let p = m.predict_dense(&[1.0, 2.0, 3.0], 1, 3).unwrap();
    let probs = p.probabilities.unwrap();
    let e = (-5f32).exp();
    assert!((probs.as_slice()[0] - 1.0 / (1.0 + e)).abs() < 1e-6, "softmax of the logits [4, -1]");
    assert_eq!(p.labels.unwrap().get(0), Some(&crate::Value::String("a".into())));
    let bad =
        OnnxImportOptions { classes: Some(vec![crate::Value::String("a".into())]), ..Default::default() };
    assert!(import_bytes(&bytes, None, "m", &bad).unwrap_err().to_string().contains("1 class labels for 2"));
}

#[test]
fn an_opset_outside_the_range_is_refused_by_name() {
    let mut m = ModelProto::decode(Bytes::from(mlp())).unwrap();
    m.opset_import[0].version = 7;
    let err =
        import_bytes(&m.encode_to_vec(), None, "m", &OnnxImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("opset 7"), "{err}");
}

#[test]
fn a_1d_convolution_with_same_padding_runs_as_a_2d_one() {
    // One channel, kernel [1, 2, 1] over length 4, SAME_UPPER: out[i] = x[i-1] + 2 x[i] + x[i+1].
    let w = floats("W", &[1, 1, 3], &[1.0, 2.0, 1.0]);
    let auto = AttributeProto {
        name: "auto_pad".into(),
        r#type: attribute_type::STRING,
        s: Bytes::from_static(b"SAME_UPPER"),
        ..Default::default()
    };
    let nodes = vec![
        node("Conv", &["x", "W"], &["c"], vec![auto, ints_attr("kernel_shape", &[3])]),
        node("Flatten", &["c"], &["y"], vec![]),
    ];
    let mut input = value("x", &[-1, 1, 4]);
    input.name = "x".into();
    let m = load(&model(nodes, vec![w], vec![input], "y"));
    let p = m.predict_dense(&[1.0, 2.0, 3.0, 4.0], 1, 4).unwrap();
    assert_eq!(p.scores.as_slice(), &[4.0, 8.0, 12.0, 11.0]);
}

fn scalar(name: &str, v: f32) -> TensorProto {
    floats(name, &[], &[v])
}

#[test]
fn torchs_erf_gelu_becomes_one_gelu_node() {
    // y = x · 0.5 · (1 + erf(x / √2)), as torch exports nn.GELU().
    let nodes = vec![
        node("Div", &["x", "sqrt2"], &["d"], vec![]),
        node("Erf", &["d"], &["e"], vec![]),
        node("Add", &["e", "one"], &["a"], vec![]),
        node("Mul", &["x", "a"], &["m"], vec![]),
        node("Mul", &["m", "half"], &["y"], vec![]),
    ];
    let consts = vec![scalar("sqrt2", std::f32::consts::SQRT_2), scalar("one", 1.0), scalar("half", 0.5)];
    let m = load(&model(nodes, consts, vec![value("x", &[-1, 2])], "y"));
    let ops: Vec<&str> = m.manifest().graph.nodes.iter().map(|n| n.op.as_str()).collect();
    assert_eq!(ops, ["Gelu"]);
    let p = m.predict_dense(&[1.0, -2.0], 1, 2).unwrap();
    let gelu = |x: f64| 0.5 * x * (1.0 + libm_erf(x / std::f64::consts::SQRT_2));
    for (got, x) in p.scores.as_slice().iter().zip([1.0, -2.0]) {
        assert!((f64::from(*got) - gelu(x)).abs() < 1e-6, "{got} vs {}", gelu(x));
    }
}

/// erf by its series (enough terms for |x| ≤ 2).
fn libm_erf(x: f64) -> f64 {
    let mut sum = 0.0;
    let mut term = x;
    for n in 0..60 {
        sum += term / f64::from(2 * n + 1);
        term *= -x * x / f64::from(n + 1);
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn a_decomposed_layer_norm_becomes_one_layer_norm_node() {
    let axes = || AttributeProto {
        name: "axes".into(),
        r#type: attribute_type::INTS,
        ints: vec![-1],
        ..Default::default()
    };
    let mut nodes = vec![
        node("ReduceMean", &["x"], &["mean"], vec![axes()]),
        node("Sub", &["x", "mean"], &["c"], vec![]),
        node("Pow", &["c", "two"], &["sq"], vec![]),
        node("ReduceMean", &["sq"], &["var"], vec![axes()]),
        node("Add", &["var", "eps"], &["ve"], vec![]),
        node("Sqrt", &["ve"], &["sd"], vec![]),
        node("Div", &["c", "sd"], &["n"], vec![]),
        node("Mul", &["n", "gamma"], &["g"], vec![]),
        node("Add", &["g", "beta"], &["y"], vec![]),
    ];
    let consts = vec![
        scalar("two", 2.0),
        scalar("eps", 1e-5),
        floats("gamma", &[2], &[1.0, 2.0]),
        floats("beta", &[2], &[0.0, 1.0]),
    ];
    let m = load(&model(nodes.clone(), consts.clone(), vec![value("x", &[-1, 2])], "y"));
    let ops: Vec<&str> = m.manifest().graph.nodes.iter().map(|n| n.op.as_str()).collect();
    assert_eq!(ops, ["LayerNorm"]);
    // [1, 3]: mean 2, variance 1 → normalized [-1, 1] (eps aside) → [-1·1 + 0, 1·2 + 1].
    let p = m.predict_dense(&[1.0, 3.0], 1, 2).unwrap();
    assert!((p.scores.as_slice()[0] + 1.0).abs() < 1e-4 && (p.scores.as_slice()[1] - 3.0).abs() < 1e-4);
    // A second reader of an intermediate value keeps the nodes as they are.
    nodes.push(node("Relu", &["c"], &["other"], vec![]));
    let bytes = model(nodes, consts, vec![value("x", &[-1, 2])], "y");
    let (manifest, _) = import_bytes(&bytes, None, "m", &OnnxImportOptions::default()).unwrap();
    assert!(!manifest.graph.nodes.iter().any(|n| n.op == "LayerNorm"), "nothing is fused");
}

#[test]
fn a_label_encoder_over_a_string_column_becomes_an_ordinal_encoder() {
    let strings = |name: &str, v: &[&str]| AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRINGS,
        strings: v.iter().map(|s| Bytes::from(s.to_string())).collect(),
        ..Default::default()
    };
    let encoder = NodeProto {
        domain: "ai.onnx.ml".into(),
        ..node(
            "LabelEncoder",
            &["color"],
            &["code"],
            vec![strings("keys_strings", &["red", "green", "blue"]), ints_attr("values_int64s", &[2, 0, 1])],
        )
    };
    let cast = node("Cast", &["code"], &["codef"], vec![int_attr("to", data_type::FLOAT as i64)]);
    let concat = node("Concat", &["x", "codef"], &["both"], vec![int_attr("axis", 1)]);
    let w = floats("W", &[2, 2], &[1.0, 0.0, 0.0, 1.0]);
    let mut bytes_model = ModelProto::decode(Bytes::from(model(
        vec![encoder, cast, concat, node("MatMul", &["both", "W"], &["y"], vec![])],
        vec![w],
        vec![
            value("x", &[-1, 1]),
            ValueInfoProto { name: "color".into(), r#type: Some(dims_type(data_type::STRING, &[-1, 1])) },
        ],
        "y",
    )))
    .unwrap();
    bytes_model.opset_import.push(OperatorSetIdProto { domain: "ai.onnx.ml".into(), version: 2 });
    let m = load(&bytes_model.encode_to_vec());
    let records: Vec<crate::Record> = [("blue", 1.5), ("red", 2.0), ("purple", 0.0)]
        .iter()
        .map(|(c, x)| {
            [
                ("x".to_string(), crate::Value::Number(*x)),
                ("color".to_string(), crate::Value::String(c.to_string())),
            ]
            .into_iter()
            .collect()
        })
        .collect();
    let p = m.predict_records(&records).unwrap();
    // blue → 1, red → 2, an unknown color → LabelEncoder's default -1.
    assert_eq!(p.scores.as_slice(), &[1.5, 1.0, 2.0, 2.0, 0.0, -1.0]);
}

#[test]
fn integer_division_of_constants_broadcasts_and_truncates() {
    use super::fold::fold;
    use super::tensor::Const;
    use super::translate::Val;
    let div = node("Div", &["a", "b"], &["c"], vec![]);
    let a = Some(Val::Const(Const::i64(vec![], vec![-12])));
    let b = Some(Val::Const(Const::i64(vec![3], vec![5, 0, 4])));
    let Ok(Some(out)) = fold(&div, &[a, b], 17) else { panic!("Div of constants folds") };
    match &out[0] {
        Val::Const(c) => assert_eq!((c.dims.clone(), c.to_i64().unwrap()), (vec![3], vec![-2, 0, -3])),
        other => panic!("{other:?}"),
    }
}
