//! Reading a node's attributes by name, with the node named in every error.

use super::proto::{attribute_type as ty, AttributeProto, NodeProto};
use super::tensor::{self, Const};

/// A node's attributes.
pub(crate) struct Attrs<'a> {
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    /// The attributes of `node`.
    pub(crate) fn of(node: &'a NodeProto) -> Attrs<'a> {
        Attrs { list: &node.attribute }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name == name)
    }

    /// Whether the attribute is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The names of the attributes present.
    pub(crate) fn names(&self) -> impl Iterator<Item = &'a str> {
        self.list.iter().map(|a| a.name.as_str())
    }

    fn typed(&self, name: &str, want: i32, what: &str) -> Result<Option<&'a AttributeProto>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if !a.ref_attr_name.is_empty() => {
                Err(format!("attribute `{name}` refers to a function attribute (not supported)"))
            }
            // Writers before IR version 3 leave `type` unset.
            Some(a) if a.r#type == want || a.r#type == 0 => Ok(Some(a)),
            Some(_) => Err(format!("attribute `{name}` must be {what}")),
        }
    }

    /// An integer attribute.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(self.typed(name, ty::INT, "an integer")?.map(|a| a.i))
    }

    /// An integer attribute with a default.
    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// A float attribute.
    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, String> {
        Ok(self.typed(name, ty::FLOAT, "a float")?.map(|a| a.f))
    }

    /// A float attribute with a default.
    pub(crate) fn float_or(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    /// A string attribute.
    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, String> {
        self.typed(name, ty::STRING, "a string")?
            .map(|a| String::from_utf8(a.s.to_vec()).map_err(|_| format!("attribute `{name}` is not UTF-8")))
            .transpose()
    }

    /// A list of integers.
    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self.typed(name, ty::INTS, "a list of integers")?.map(|a| a.ints.clone()))
    }

    /// A list of floats.
    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        Ok(self.typed(name, ty::FLOATS, "a list of floats")?.map(|a| a.floats.clone()))
    }

    /// A list of strings.
    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        self.typed(name, ty::STRINGS, "a list of strings")?
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| {
                        String::from_utf8(s.to_vec()).map_err(|_| format!("attribute `{name}` is not UTF-8"))
                    })
                    .collect()
            })
            .transpose()
    }

    /// A tensor attribute, decoded.
    pub(crate) fn tensor(&self, name: &str) -> Result<Option<Const>, String> {
        self.typed(name, ty::TENSOR, "a tensor")?
            .map(|a| {
                let t = a.t.as_ref().ok_or_else(|| format!("attribute `{name}` has no tensor"))?;
                tensor::decode(t, None).map_err(|e| format!("attribute `{name}`: {e}"))
            })
            .transpose()
    }

    /// Whether the attribute holds a graph (control flow), which the importer does not run.
    pub(crate) fn has_graph(&self) -> bool {
        self.list.iter().any(|a| a.r#type == ty::GRAPH || a.g.is_some())
    }
}

/// The `post_transform` of the ai.onnx.ml classifiers and regressors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl Attrs<'_> {
    /// The `post_transform` attribute (default `NONE`).
    pub(crate) fn post_transform(&self) -> Result<PostTransform, String> {
        Ok(match self.string("post_transform")?.as_deref() {
            None | Some("NONE") => PostTransform::None,
            Some("LOGISTIC") => PostTransform::Logistic,
            Some("SOFTMAX") => PostTransform::Softmax,
            Some("SOFTMAX_ZERO") => PostTransform::SoftmaxZero,
            Some("PROBIT") => PostTransform::Probit,
            Some(other) => return Err(format!("unknown post_transform `{other}`")),
        })
    }
}
