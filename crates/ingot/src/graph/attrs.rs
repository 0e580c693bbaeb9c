//! Reading a node's attributes (the JSON values of `NodeSpec.attrs`): numbers, flags and integer
//! lists, each refusing a bad value with a message that names the attribute.

use std::collections::BTreeMap;

/// A node's attributes, by name.
pub(crate) type Attrs = BTreeMap<String, serde_json::Value>;

/// A number, `default` when absent.
pub(crate) fn attr_f64(attrs: &Attrs, key: &str, default: f64) -> Result<f64, String> {
    attr_number(attrs, key).map(|v| v.unwrap_or(default))
}

/// A number, `None` when absent.
pub(crate) fn attr_number(attrs: &Attrs, key: &str) -> Result<Option<f64>, String> {
    match attrs.get(key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| format!("attribute `{key}` must be a number")),
    }
}

/// A finite number that fits an f32, `default` when absent.
pub(crate) fn attr_f32(attrs: &Attrs, key: &str, default: f32) -> Result<f32, String> {
    let v = attr_f64(attrs, key, f64::from(default))?;
    let narrow = v as f32;
    if !narrow.is_finite() {
        return Err(format!("attribute `{key}` = {v} is not a finite f32"));
    }
    Ok(narrow)
}

/// A flag: `true`/`false` or `1`/`0`, `default` when absent.
pub(crate) fn attr_bool(attrs: &Attrs, key: &str, default: bool) -> Result<bool, String> {
    match attrs.get(key) {
        None => Ok(default),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(serde_json::Value::Number(n)) if n.as_i64() == Some(0) => Ok(false),
        Some(serde_json::Value::Number(n)) if n.as_i64() == Some(1) => Ok(true),
        Some(_) => Err(format!("attribute `{key}` must be a boolean (or 0 / 1)")),
    }
}

/// An integer; `default` when absent, required when `default` is `None`.
pub(crate) fn attr_i64(attrs: &Attrs, key: &str, default: Option<i64>) -> Result<i64, String> {
    match attrs.get(key) {
        None => default.ok_or_else(|| format!("attribute `{key}` is required")),
        Some(v) => v.as_i64().ok_or_else(|| format!("attribute `{key}` must be an integer")),
    }
}

/// A list of integers, `None` when absent.
pub(crate) fn attr_ints(attrs: &Attrs, key: &str) -> Result<Option<Vec<i64>>, String> {
    let Some(v) = attrs.get(key) else { return Ok(None) };
    v.as_array()
        .and_then(|a| a.iter().map(serde_json::Value::as_i64).collect::<Option<Vec<i64>>>())
        .map(Some)
        .ok_or_else(|| format!("attribute `{key}` must be a list of integers"))
}

/// Exactly `N` integers of at least `min` each, `default` when absent.
pub(crate) fn attr_sizes<const N: usize>(
    attrs: &Attrs,
    key: &str,
    default: Option<[usize; N]>,
    min: usize,
) -> Result<[usize; N], String> {
    let Some(values) = attr_ints(attrs, key)? else {
        return default.ok_or_else(|| format!("attribute `{key}` is required"));
    };
    let sizes: Vec<usize> = values
        .iter()
        .map(|&v| usize::try_from(v).ok().filter(|&v| v >= min))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("attribute `{key}` = {values:?}: every value must be at least {min}"))?;
    sizes.try_into().map_err(|_| format!("attribute `{key}` = {values:?} must have {N} values"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn flags_and_numbers_refuse_other_types() {
        let a = attrs(json!({"t": 1, "f": false, "bad": 2, "s": "x", "n": 1e300}));
        assert_eq!(attr_bool(&a, "t", false), Ok(true));
        assert_eq!(attr_bool(&a, "f", true), Ok(false));
        assert_eq!(attr_bool(&a, "absent", true), Ok(true));
        assert!(attr_bool(&a, "bad", false).unwrap_err().contains("`bad`"));
        assert!(attr_f64(&a, "s", 0.0).unwrap_err().contains("must be a number"));
        assert!(attr_f32(&a, "n", 0.0).unwrap_err().contains("finite f32"));
        assert!(attr_i64(&a, "absent", None).unwrap_err().contains("required"));
    }

    #[test]
    fn sizes_have_their_count_and_minimum() {
        let a = attrs(json!({"two": [2, 3], "zero": [0, 1], "three": [1, 1, 1], "mixed": [1, "a"]}));
        assert_eq!(attr_sizes::<2>(&a, "two", None, 1), Ok([2, 3]));
        assert_eq!(attr_sizes::<2>(&a, "absent", Some([1, 1]), 1), Ok([1, 1]));
        assert_eq!(attr_sizes::<2>(&a, "zero", None, 0), Ok([0, 1]));
        assert!(attr_sizes::<2>(&a, "zero", None, 1).unwrap_err().contains("at least 1"));
        assert!(attr_sizes::<2>(&a, "three", None, 1).unwrap_err().contains("must have 2 values"));
        assert!(attr_sizes::<2>(&a, "mixed", None, 1).unwrap_err().contains("list of integers"));
        assert!(attr_sizes::<2>(&a, "absent", None, 1).unwrap_err().contains("required"));
    }
}
