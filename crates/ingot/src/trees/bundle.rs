//! A whole tabular bundle around a tree ensemble: signature, pass-through pre-processing that
//! keeps missing values, the `TreeEnsemble` node and the post-processing of its scores. The
//! XGBoost and LightGBM importers end here.

use super::TreeEnsemble;
use crate::error::{Error, Result};
use crate::format::{
    Activation, ElementType, GraphSpec, Link, Manifest, ModelCard, PostprocessSpec, PreprocessSpec, Producer,
    RequestForm, Signature, TabularSpec, TabularStepSpec, TensorData, TensorSpec, TransformerSpec,
};
use crate::value::Value;

/// What the ensemble's scores mean.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// Class labels: scores become probabilities through `activation` (one score column and
    /// `logistic` for binary boosting).
    Classifier {
        /// Class labels in score-column order.
        classes: Vec<Value>,
        /// How scores become probabilities.
        activation: Activation,
    },
    /// Values, one per output, through `link`.
    Regressor {
        /// Inverse link of the scores.
        link: Link,
    },
}

fn spec(name: &str, dtype: ElementType, shape: Vec<i64>) -> TensorSpec {
    TensorSpec { name: name.into(), dtype, shape }
}

/// The manifest and tensors of a bundle that runs `ensemble` on input columns `features` (one
/// f64 column per feature, in order; missing values allowed).
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::format::{Link, ModelCard, Producer};
/// use ingot::trees::{tabular_bundle, Aggregate, Comparison, Head, Split, Tree, TreeEnsemble, TreeNode};
/// let stump = TreeEnsemble {
///     n_features: 1, n_outputs: 1, comparison: Comparison::Less, aggregate: Aggregate::Sum,
///     base_score: vec![0.0], trees: vec![Tree { root: 0, target: Some(0) }],
///     nodes: vec![
///         TreeNode::Split(Split::numeric(0, 0.5, 1, 2)),
///         TreeNode::Leaf { value: 0 },
///         TreeNode::Leaf { value: 1 },
///     ],
///     leaf_width: 1, leaf_values: vec![0.0, 1.0], category_sets: vec![],
/// };
/// let card = ModelCard { name: "stump".into(), version: "1.0.0".into(), ..ModelCard::default() };
/// let producer = Producer { name: "doc".into(), version: "0".into(), framework: None };
/// let head = Head::Regressor { link: Link::Exp };
/// let (manifest, tensors) = tabular_bundle(&stump, &["x".into()], head, card, producer)?;
/// let model = ingot::Model::from_bytes(ingot::format::to_bytes(&manifest, &tensors)?)?;
/// let p = model.predict_dense(&[1.0, f32::NAN], 2, 1)?;
/// assert_eq!(p.values.unwrap().as_slice(), &[1f32.exp(), 1f32.exp()]);
/// # Ok(()) }
/// ```
pub fn tabular_bundle(
    ensemble: &TreeEnsemble,
    features: &[String],
    head: Head,
    card: ModelCard,
    producer: Producer,
) -> Result<(Manifest, Vec<(String, TensorData)>)> {
    if features.len() != ensemble.n_features {
        return Err(Error::usage(format!(
            "{} feature names for a model of {} features",
            features.len(),
            ensemble.n_features
        )));
    }
    let parts = ensemble.to_graph("features", "scores", "trees")?;
    let width = ensemble.n_outputs as i64;
    let (outputs, post) = head_outputs(head, ensemble.n_outputs);
    let manifest = Manifest {
        model: card,
        producer,
        signature: Signature {
            inputs: features.iter().map(|f| spec(f, ElementType::F64, vec![-1])).collect(),
            outputs,
            request_forms: vec![RequestForm::Records, RequestForm::Columns, RequestForm::Dense],
        },
        preprocess: vec![PreprocessSpec::Tabular(TabularSpec {
            transformers: vec![TransformerSpec {
                name: "features".into(),
                columns: features.to_vec(),
                steps: vec![TabularStepSpec::Passthrough],
            }],
            keep_missing: true,
        })],
        graph: GraphSpec {
            opset: 1,
            inputs: vec![spec("features", ElementType::F32, vec![-1, ensemble.n_features as i64])],
            outputs: vec![spec("scores", ElementType::F32, vec![-1, width])],
            nodes: vec![parts.node],
        },
        postprocess: vec![post],
        quantization: None,
        reference: None,
        checksum: None,
    };
    Ok((manifest, parts.tensors))
}

/// The signature outputs and the post-processing of `head` over `width` score columns: a
/// classifier's `probabilities` (unless its scores are decisions) and `label`, a regressor's
/// `value` (one column) or `values`. Every importer that ends in a head shares this.
pub(crate) fn head_outputs(head: Head, width: usize) -> (Vec<TensorSpec>, PostprocessSpec) {
    let width = width as i64;
    match head {
        Head::Classifier { classes, activation } => {
            let k = classes.len() as i64;
            let label_dtype = match classes.first() {
                Some(Value::String(_)) => ElementType::String,
                Some(Value::Number(n)) if n.fract() == 0.0 => ElementType::I64,
                _ => ElementType::F64,
            };
            let mut outputs = Vec::new();
            if activation != Activation::None {
                outputs.push(spec("probabilities", ElementType::F32, vec![-1, k]));
            }
            outputs.push(spec("label", label_dtype, vec![-1]));
            (outputs, PostprocessSpec::Classify { activation, classes })
        }
        Head::Regressor { link } => {
            let (outputs, targets) = if width == 1 {
                (vec![spec("value", ElementType::F32, vec![-1])], vec!["target".to_string()])
            } else {
                let targets = (0..width).map(|i| format!("target{i}")).collect();
                (vec![spec("values", ElementType::F32, vec![-1, width])], targets)
            };
            (outputs, PostprocessSpec::Regress { targets, link })
        }
    }
}
