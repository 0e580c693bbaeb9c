//! [`Value`]: one cell of tabular input, a category, a fill value or a class label.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One named row of tabular input: column name → value.
///
/// ```
/// use ingot::{Record, Value};
/// let mut row = Record::new();
/// row.insert("age".into(), Value::from(42.0));
/// row.insert("color".into(), Value::from("red"));
/// assert_eq!(row["color"], Value::String("red".into()));
/// ```
pub type Record = BTreeMap<String, Value>;

/// Column-oriented tabular input: column name → one value per row.
pub type Columns = BTreeMap<String, Vec<Value>>;

/// A scalar as it appears in requests and manifests: missing, a number or a string.
///
/// JSON `null` is [`Value::Null`] (missing, like NaN or `None` in Python). Numbers that hold an
/// integer serialize without a fractional part, so integer class labels round-trip as integers.
///
/// ```
/// use ingot::Value;
/// let v: Value = serde_json::from_str("3").unwrap();
/// assert_eq!(v, Value::Number(3.0));
/// assert_eq!(serde_json::to_string(&v).unwrap(), "3");
/// assert_eq!(serde_json::to_string(&Value::from(0.5)).unwrap(), "0.5");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Missing value.
    Null,
    /// A number (integers are stored exactly up to 2⁵³).
    Number(f64),
    /// A string.
    String(String),
}

impl Value {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value as a string slice, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Number(_) => "number",
            Value::String(_) => "string",
        }
    }

    /// The integer this number holds exactly, if any.
    pub(crate) fn as_exact_int(n: f64) -> Option<i64> {
        const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
        (n.fract() == 0.0 && n.abs() <= LIMIT).then_some(n as i64)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Number(n) => match Value::as_exact_int(*n) {
                Some(i) => write!(f, "{i}"),
                None => write!(f, "{n}"),
            },
            Value::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Number(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Number(f64::from(v))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Number(v as f64)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Number(n) if !n.is_finite() => s.serialize_none(),
            Value::Number(n) => match Value::as_exact_int(*n) {
                Some(i) => s.serialize_i64(i),
                None => s.serialize_f64(*n),
            },
            Value::String(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, a number or a string")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Number(v as f64))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::String(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::String(v))
            }
        }
        d.deserialize_any(Visitor)
    }
}
