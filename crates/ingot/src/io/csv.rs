//! The CSV rules every shell follows: how a field becomes a [`Value`] of a model's column, and how
//! a [`Prediction`] becomes a header and rows of fields.
//!
//! The `csv` crate (in the CLI) splits lines into fields and quotes what it writes; these
//! functions decide what the fields mean.

use crate::error::{Error, Result};
use crate::format::{ElementType, Signature};
use crate::output::{ColumnData, Prediction};
use crate::value::Value;

/// How a CSV column of a model input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// A numeric model input: a number, or missing.
    Number,
    /// A string model input: the field as it is, or missing when empty.
    Text,
}

/// The kind of each column in `headers`, from the model's signature; `None` for a column that
/// is not a model input (an id kept beside the predictions stays text, exactly as written).
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// use ingot::io::csv::{kinds, CellKind};
/// let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// assert_eq!(kinds(model.signature(), &["id", "a"]), [None, Some(CellKind::Number)]);
/// # Ok(()) }
/// ```
pub fn kinds<S: AsRef<str>>(signature: &Signature, headers: &[S]) -> Vec<Option<CellKind>> {
    headers
        .iter()
        .map(|h| {
            signature.inputs.iter().find(|i| i.name == h.as_ref()).map(|i| match i.dtype {
                ElementType::String => CellKind::Text,
                _ => CellKind::Number,
            })
        })
        .collect()
}

/// Reads one field of `column` in data row `row` (counted from 0): an empty field is missing, and
/// so are `NaN`, `nan`, `NA` and `null` in a numeric column; a numeric column's other fields must
/// parse as numbers.
///
/// ```
/// use ingot::io::csv::{parse_cell, CellKind};
/// use ingot::Value;
/// assert_eq!(parse_cell(" 2.5 ", CellKind::Number, 0, "a").unwrap(), Value::from(2.5));
/// assert_eq!(parse_cell("NA", CellKind::Number, 0, "a").unwrap(), Value::Null);
/// assert_eq!(parse_cell("NA", CellKind::Text, 0, "c").unwrap(), Value::from("NA"));
/// let err = parse_cell("seven", CellKind::Number, 3, "a").unwrap_err();
/// assert_eq!(err.to_string(), "row 3, column `a`: expected a number, got \"seven\"");
/// ```
pub fn parse_cell(field: &str, kind: CellKind, row: usize, column: &str) -> Result<Value> {
    let t = field.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    match kind {
        CellKind::Text => Ok(Value::String(field.to_owned())),
        CellKind::Number if matches!(t, "nan" | "NaN" | "NA" | "null") => Ok(Value::Null),
        CellKind::Number => t.parse::<f64>().map(Value::Number).map_err(|_| Error::WrongType {
            row,
            column: column.to_owned(),
            expected: "a number",
            got: format!("{field:?}"),
        }),
    }
}

/// The header of a prediction's CSV rows: [`Prediction::columns`], a vector column expanded
/// to `<name>_<i>`.
///
/// ```
/// # fn main() -> ingot::Result<()> {
/// # let model = ingot::Model::from_bytes(ingot::testing::logistic_bundle()?)?;
/// let p = model.predict_dense(&[3.0, 1.0], 1, 2)?;
/// assert_eq!(ingot::io::csv::header(&p), ["label", "proba_no", "proba_yes"]);
/// let mut fields = Vec::new();
/// ingot::io::csv::fields(&p, 0, &mut fields);
/// assert_eq!(fields[0], "yes");
/// # Ok(()) }
/// ```
pub fn header(p: &Prediction) -> Vec<String> {
    let mut names = Vec::new();
    for c in p.columns() {
        match c.data {
            ColumnData::Vector(m) => names.extend((0..m.cols()).map(|i| format!("{}_{i}", c.name))),
            _ => names.push(c.name),
        }
    }
    names
}

/// Appends the fields of row `row` of `p`, in [`header`] order, to `out`: labels as trained
/// (numbers without a needless `.0`), numbers in their shortest exact form.
pub fn fields(p: &Prediction, row: usize, out: &mut Vec<String>) {
    for c in p.columns() {
        match c.data {
            ColumnData::Labels(labels) => out.push(match &labels[row] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            ColumnData::Number { matrix, col } => out.push(matrix.row(row)[col].to_string()),
            ColumnData::Vector(m) => out.extend(m.row(row).iter().map(f32::to_string)),
        }
    }
}
