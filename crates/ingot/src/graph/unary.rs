//! The element-wise functions of opset 2 (`LeakyRelu`, `Clip`, `Exp`, …, `Pow`): their
//! attributes (docs/format.md §4). Each maps its input's shape to itself.

use super::attrs::{attr_f32, attr_number, Attrs};
use super::ops::Op;

/// The op names this module parses.
pub(crate) const NAMES: [&str; 13] = [
    "LeakyRelu",
    "Clip",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
    "Neg",
    "Erf",
    "Reciprocal",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Pow",
];

/// The element-wise op `op` (one of [`NAMES`]) with its attributes.
pub(crate) fn parse(op: &str, attrs: &Attrs) -> Result<Op, String> {
    Ok(match op {
        "LeakyRelu" => Op::LeakyRelu { alpha: attr_f32(attrs, "alpha", 0.01)? },
        "Clip" => {
            let bound = |key: &str, unbounded: f32| match attr_number(attrs, key)? {
                None => Ok::<f32, String>(unbounded),
                Some(_) => attr_f32(attrs, key, unbounded),
            };
            let (min, max) = (bound("min", f32::NEG_INFINITY)?, bound("max", f32::INFINITY)?);
            if min > max {
                return Err(format!("`min` {min} is above `max` {max}"));
            }
            Op::Clip { min, max }
        }
        "Exp" => Op::Exp,
        "Log" => Op::Log,
        "Sqrt" => Op::Sqrt,
        "Abs" => Op::Abs,
        "Neg" => Op::Neg,
        "Erf" => Op::Erf,
        "Reciprocal" => Op::Reciprocal,
        "HardSigmoid" => {
            Op::HardSigmoid { alpha: attr_f32(attrs, "alpha", 0.2)?, beta: attr_f32(attrs, "beta", 0.5)? }
        }
        "HardSwish" => Op::HardSwish,
        "Softplus" => Op::Softplus,
        "Pow" => {
            attr_number(attrs, "exponent")?.ok_or("attribute `exponent` is required")?;
            Op::Pow { exponent: attr_f32(attrs, "exponent", 1.0)? }
        }
        other => return Err(format!("`{other}` is not an element-wise function")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(op: &str, v: serde_json::Value) -> Result<Op, String> {
        parse(op, &serde_json::from_value(v).unwrap())
    }

    #[test]
    fn attributes_have_onnx_defaults() {
        assert_eq!(parsed("LeakyRelu", json!({})), Ok(Op::LeakyRelu { alpha: 0.01 }));
        assert_eq!(
            parsed("HardSigmoid", json!({"beta": 0.25})),
            Ok(Op::HardSigmoid { alpha: 0.2, beta: 0.25 })
        );
        assert_eq!(parsed("Clip", json!({"max": 6})), Ok(Op::Clip { min: f32::NEG_INFINITY, max: 6.0 }));
        assert_eq!(parsed("Clip", json!({})), Ok(Op::Clip { min: f32::NEG_INFINITY, max: f32::INFINITY }));
        assert_eq!(parsed("Pow", json!({"exponent": 2})), Ok(Op::Pow { exponent: 2.0 }));
        for name in NAMES {
            let attrs = if name == "Pow" { json!({"exponent": 0.5}) } else { json!({}) };
            assert!(parsed(name, attrs).is_ok(), "{name}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parsed("Pow", json!({})).unwrap_err().contains("required"));
        assert!(parsed("Pow", json!({"exponent": "2"})).unwrap_err().contains("number"));
        assert!(parsed("Clip", json!({"min": 1, "max": 0})).unwrap_err().contains("above"));
        assert!(parsed("LeakyRelu", json!({"alpha": 1e40})).unwrap_err().contains("finite"));
        assert!(parsed("Relu", json!({})).is_err());
    }
}
