//! Tiny in-memory bundles for doc examples and tests. Not part of the stable API.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::format::Bundle;
use crate::format::{
    to_bytes, Activation, ElementType, GraphSpec, Manifest, ModelCard, NodeSpec, PostprocessSpec,
    PreprocessSpec, Producer, RequestForm, Signature, TabularSpec, TabularStepSpec, TensorData, TensorSpec,
    TransformerSpec,
};
use crate::value::Value;

/// Cosine similarity of two vectors, accumulated in f64 (the embedding parity tests).
///
/// ```
/// assert!((ingot::testing::cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
/// ```
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn spec(name: &str, dtype: ElementType, shape: Vec<i64>) -> TensorSpec {
    TensorSpec { name: name.into(), dtype, shape }
}

/// A minimal manifest with an empty graph, named `tiny` version `0.1.0`.
pub fn tiny_manifest() -> Manifest {
    Manifest {
        model: ModelCard { name: "tiny".into(), version: "0.1.0".into(), ..ModelCard::default() },
        producer: Producer { name: "test".into(), version: "0".into(), framework: None },
        signature: Signature { inputs: vec![], outputs: vec![], request_forms: vec![] },
        preprocess: vec![],
        graph: GraphSpec { opset: 1, inputs: vec![], outputs: vec![], nodes: vec![] },
        postprocess: vec![],
        quantization: None,
        reference: None,
        checksum: None,
    }
}

/// Bytes of a two-feature logistic regression (`a`, `b` → classes `"no"`, `"yes"`) with a
/// standard scaler: score = 2·(a − 1) − 1·(b / 2) + 0.5.
pub fn logistic_bundle() -> Result<Vec<u8>> {
    let mut m = tiny_manifest();
    m.model.name = "logistic".into();
    m.model.version = "1.0.0".into();
    m.signature = Signature {
        inputs: vec![spec("a", ElementType::F64, vec![-1]), spec("b", ElementType::F64, vec![-1])],
        outputs: vec![
            spec("probabilities", ElementType::F32, vec![-1, 2]),
            spec("label", ElementType::String, vec![-1]),
        ],
        request_forms: vec![RequestForm::Records, RequestForm::Columns, RequestForm::Dense],
    };
    m.preprocess = vec![PreprocessSpec::Tabular(TabularSpec {
        keep_missing: false,
        transformers: vec![TransformerSpec {
            name: "num".into(),
            columns: vec!["a".into(), "b".into()],
            steps: vec![TabularStepSpec::StandardScaler {
                mean: Some(vec![1.0, 0.0]),
                scale: Some(vec![1.0, 2.0]),
            }],
        }],
    })];
    m.graph = GraphSpec {
        opset: 1,
        inputs: vec![spec("features", ElementType::F32, vec![-1, 2])],
        outputs: vec![spec("scores", ElementType::F32, vec![-1, 1])],
        nodes: vec![NodeSpec {
            name: Some("fc".into()),
            op: "Linear".into(),
            inputs: vec!["features".into(), "coef".into(), "intercept".into()],
            outputs: vec!["scores".into()],
            attrs: BTreeMap::new(),
        }],
    };
    m.postprocess = vec![PostprocessSpec::Classify {
        activation: Activation::Logistic,
        classes: vec![Value::from("no"), Value::from("yes")],
    }];
    let tensors = vec![
        ("coef".to_string(), TensorData::from_f32(vec![1, 2], &[2.0, -1.0])?),
        ("intercept".to_string(), TensorData::from_f32(vec![1], &[0.5])?),
    ];
    to_bytes(&m, &tensors)
}

/// The test logistic model ([`logistic_bundle`]) re-encoded with `edit` applied to its manifest:
/// another version, column names, a reference sample…
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let bytes = ingot::testing::logistic_with(|m| m.model.version = "2.0.0".into())?;
/// assert_eq!(ingot::Model::from_bytes(bytes)?.metadata().version, "2.0.0");
/// # Ok(()) }
/// ```
pub fn logistic_with(edit: impl FnOnce(&mut Manifest)) -> Result<Vec<u8>> {
    let bundle = Bundle::from_bytes(logistic_bundle()?)?;
    let mut manifest = bundle.manifest().clone();
    edit(&mut manifest);
    let tensors: Vec<(String, TensorData)> =
        bundle.tensor_entries().keys().filter_map(|n| Some((n.clone(), bundle.tensor_data(n)?))).collect();
    to_bytes(&manifest, &tensors)
}

/// Bytes of a small MLP classifier: 8 columns `x0`…`x7` → Linear(32) → ReLU → Linear(3) →
/// softmax over classes 0, 1, 2, with fixed pseudo-random weights and a 40-row reference
/// sample (for the quantization examples and tests).
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// let model = ingot::Model::from_bytes(ingot::testing::mlp_bundle()?)?;
/// assert_eq!(model.classes().map(<[_]>::len), Some(3));
/// # Ok(()) }
/// ```
pub fn mlp_bundle() -> Result<Vec<u8>> {
    let (inputs, hidden, classes) = (8usize, 32usize, 3usize);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let mut values = |n: usize| (0..n).map(|_| next()).collect::<Vec<f32>>();
    let (w1, b1, w2, b2) =
        (values(hidden * inputs), values(hidden), values(classes * hidden), values(classes));
    let columns: Vec<String> = (0..inputs).map(|i| format!("x{i}")).collect();
    let sample = (0..40)
        .map(|_| columns.iter().map(|c| (c.clone(), Value::from(f64::from(2.0 * next())))).collect())
        .collect();
    let mut m = tiny_manifest();
    m.model.name = "mlp".into();
    m.model.version = "1.0.0".into();
    m.signature = Signature {
        inputs: columns.iter().map(|c| spec(c, ElementType::F64, vec![-1])).collect(),
        outputs: vec![
            spec("probabilities", ElementType::F32, vec![-1, classes as i64]),
            spec("label", ElementType::I64, vec![-1]),
        ],
        request_forms: vec![RequestForm::Records, RequestForm::Columns, RequestForm::Dense],
    };
    m.preprocess = vec![PreprocessSpec::Tabular(TabularSpec {
        keep_missing: false,
        transformers: vec![TransformerSpec {
            name: "num".into(),
            columns: columns.clone(),
            steps: vec![TabularStepSpec::Passthrough],
        }],
    })];
    let node = |name: &str, op: &str, inputs: &[&str], output: &str| NodeSpec {
        name: Some(name.into()),
        op: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.into()],
        attrs: BTreeMap::new(),
    };
    m.graph = GraphSpec {
        opset: 1,
        inputs: vec![spec("features", ElementType::F32, vec![-1, inputs as i64])],
        outputs: vec![spec("scores", ElementType::F32, vec![-1, classes as i64])],
        nodes: vec![
            node("fc1", "Linear", &["features", "fc1.weight", "fc1.bias"], "h"),
            node("relu", "Relu", &["h"], "a"),
            node("fc2", "Linear", &["a", "fc2.weight", "fc2.bias"], "scores"),
        ],
    };
    m.postprocess = vec![PostprocessSpec::Classify {
        activation: Activation::Softmax,
        classes: (0..classes as i64).map(Value::from).collect(),
    }];
    m.reference = Some(crate::format::Reference { sample, columns: BTreeMap::new() });
    let tensors = vec![
        ("fc1.weight".to_string(), TensorData::from_f32(vec![hidden, inputs], &w1)?),
        ("fc1.bias".to_string(), TensorData::from_f32(vec![hidden], &b1)?),
        ("fc2.weight".to_string(), TensorData::from_f32(vec![classes, hidden], &w2)?),
        ("fc2.bias".to_string(), TensorData::from_f32(vec![classes], &b2)?),
    ];
    to_bytes(&m, &tensors)
}
