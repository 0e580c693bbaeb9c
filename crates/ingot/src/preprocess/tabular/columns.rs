//! The column-at-a-time path of [`TabularPipeline::transform_into`].
//!
//! A block whose steps each map one value to one value (save a one-hot encoder at the end) lets
//! each input column go through its steps alone. Over one run of rows this path takes the
//! blocks column by column: a numeric column that only imputers and scalers touch is read into
//! a buffer and each step runs over the whole buffer; a dictionary column (a pandas
//! categorical, an Arrow dictionary) has each distinct value worked out once per call, so a row
//! costs one table lookup; a string column has each category its encoder knows worked out once,
//! so a row costs finding its category; any other value goes through the same functions the
//! reference uses. The arithmetic is the reference's, in the same order, so the features are
//! the same bits.
//!
//! It never reports an error itself: a run with any bad value returns `false` and is redone by
//! the reference (`rows_into`), which names the earliest bad row as every input path must.

use super::{Block, Categories, Cell, Kind, Source, Step, TabularPipeline};
use crate::input::ColumnValues;
use crate::value::Value;

/// What one value of an input column becomes after its block's steps.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    /// The position set to 1 in the column's one-hot group (`None`: the group is all zeros).
    Hot(Option<usize>),
    /// The column's one feature.
    Value(f32),
    /// An error, left to the reference path to report with its row.
    Fail,
}

/// What the values of one input column of a columnwise block become, worked out for one call.
#[derive(Debug)]
pub(super) enum Table<'a> {
    /// A dictionary column: the outcome of each of its values, index 0 for a missing value and
    /// `k + 1` for the dictionary's value `k`.
    Dict(Vec<Outcome>),
    /// A string column: the outcome of each category of the column's (first) encoder, by its
    /// index there, and of a missing value. A string the encoder does not know goes through the
    /// steps itself.
    Known { cats: &'a Categories, by_category: Vec<Outcome>, missing: Outcome },
}

/// Per block, per input column: its [`Table`], when it has one.
pub(super) type Tables<'a> = Vec<Vec<Option<Table<'a>>>>;

/// A numeric column's values over one run of rows, and which are missing.
#[derive(Default)]
struct Numbers {
    values: Vec<f64>,
    missing: Vec<bool>,
}

impl TabularPipeline {
    /// Works out, once for the call, the [`Table`] of each dictionary or string column that a
    /// columnwise block reads.
    pub(super) fn tables<'a>(&'a self, source: &Source<'_>) -> Tables<'a> {
        self.blocks
            .iter()
            .map(|block| {
                (0..block.sources.len())
                    .map(|j| block.columnwise.then(|| self.table(block, j, source))?)
                    .collect()
            })
            .collect()
    }

    /// The [`Table`] of input column `j` of a columnwise block, if it has one.
    fn table<'a>(&'a self, block: &'a Block, j: usize, source: &Source<'_>) -> Option<Table<'a>> {
        let s = block.sources[j];
        // Errors are left to the reference, which knows the row.
        let outcome = |cell| self.outcome(block, j, 0, cell).unwrap_or(Outcome::Fail);
        if let Source::Frame(cols) = source {
            if let ColumnValues::Dict { values, .. } = cols[s].values {
                let strings = values.iter().map(|&v| match self.columns[s].1 {
                    Kind::Str => outcome(Cell::Str(v)),
                    Kind::Num => Outcome::Fail,
                });
                return Some(Table::Dict(std::iter::once(outcome(Cell::Missing)).chain(strings).collect()));
            }
        }
        if self.columns[s].1 != Kind::Str {
            return None;
        }
        // Only imputers come before a string column's first encoder, and they leave a string
        // as it is: what a string becomes depends only on its category there.
        let cats = block.steps.iter().find_map(|step| match step {
            Step::OneHot { cats, .. } | Step::Ordinal { cats, .. } => Some(&cats[j]),
            _ => None,
        })?;
        let mut by_category = vec![Outcome::Fail; cats.len];
        for (category, &i) in &cats.strings {
            by_category[i] = outcome(Cell::Str(category));
        }
        Some(Table::Known { cats, by_category, missing: outcome(Cell::Missing) })
    }

    /// Rows `first_row..` into `out` (whole rows of features), column by column where a block
    /// allows it; `false` if any value is bad (`out` is then partly written).
    pub(super) fn columns_into(
        &self,
        source: &Source<'_>,
        tables: &Tables<'_>,
        first_row: usize,
        out: &mut [f32],
    ) -> bool {
        let rows = out.len() / self.width;
        let mut numbers = Numbers::default();
        let (mut cur, mut next) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for (b, block) in self.blocks.iter().enumerate() {
            let block_width = block.origins.len();
            if block.columnwise {
                let mut at = offset;
                for j in 0..block.sources.len() {
                    let table = tables.get(b).and_then(|t| t[j].as_ref());
                    let Some(width) =
                        self.column_into(block, j, source, table, first_row, rows, out, at, &mut numbers)
                    else {
                        return false;
                    };
                    at += width;
                }
            } else {
                for r in 0..rows {
                    let row_out = &mut out[r * self.width + offset..][..block_width];
                    if self.block_row(block, source, first_row + r, row_out, &mut cur, &mut next).is_err() {
                        return false;
                    }
                }
            }
            offset += block_width;
        }
        true
    }

    /// Input column `j` of a columnwise block for `rows` rows from `first_row`, its features
    /// written from position `at` of each row of `out`. Returns how many features the column
    /// has, or `None` if a value is bad.
    #[allow(clippy::too_many_arguments)]
    fn column_into(
        &self,
        block: &Block,
        j: usize,
        source: &Source<'_>,
        table: Option<&Table<'_>>,
        first_row: usize,
        rows: usize,
        out: &mut [f32],
        at: usize,
        numbers: &mut Numbers,
    ) -> Option<usize> {
        let s = block.sources[j];
        let width = match block.split_one_hot().0 {
            Some(Step::OneHot { cats, drop, .. }) => cats[j].len - usize::from(drop[j].is_some()),
            _ => 1,
        };
        let mut put = |r: usize, outcome: Outcome| -> Option<()> {
            let features = &mut out[r * self.width + at..][..width];
            match outcome {
                Outcome::Hot(hot) => {
                    features.fill(0.0);
                    if let Some(i) = hot {
                        features[i] = 1.0;
                    }
                }
                Outcome::Value(v) => features[0] = v,
                Outcome::Fail => return None,
            }
            Some(())
        };
        let frame_column = match source {
            Source::Frame(cols) => Some(cols[s]),
            _ => None,
        };
        if let (Some(table), Some(c)) = (table, frame_column) {
            match (table, c.values) {
                (Table::Dict(outcomes), ColumnValues::Dict { keys, .. }) => {
                    for (r, &key) in keys[first_row..first_row + rows].iter().enumerate() {
                        let missing = key < 0 || c.is_missing(first_row + r);
                        // A key is at least 0 here and in range (`Frame::new` checks).
                        put(r, outcomes[if missing { 0 } else { key as usize + 1 }])?;
                    }
                }
                (Table::Known { cats, by_category, missing }, ColumnValues::Str(values)) => {
                    for (r, value) in values[first_row..first_row + rows].iter().enumerate() {
                        let row = first_row + r;
                        let outcome = match value {
                            _ if c.is_missing(row) => *missing,
                            None => *missing,
                            Some(v) => match cats.lookup(Cell::Str(v)) {
                                Some(i) => by_category[i],
                                None => self.outcome(block, j, row, Cell::Str(v)).ok()?,
                            },
                        };
                        put(r, outcome)?;
                    }
                }
                (Table::Known { cats, by_category, missing }, ColumnValues::Utf8 { offsets, data }) => {
                    for r in 0..rows {
                        let row = first_row + r;
                        let span = offsets.span(row);
                        let outcome = if c.is_missing(row) {
                            *missing
                        } else {
                            match cats.find_in(data, span.clone()) {
                                Some(i) => by_category[i],
                                None => self.outcome(block, j, row, Cell::Str(&data[span])).ok()?,
                            }
                        };
                        put(r, outcome)?;
                    }
                }
                _ => self.column_by_cell(block, j, source, first_row, rows, &mut put)?,
            }
        } else if block.numeric[j] {
            self.numbers(source, s, first_row, rows, numbers)?;
            for step in &block.steps {
                numeric_step(step, j, numbers)?;
            }
            for (r, (&v, &missing)) in numbers.values.iter().zip(&numbers.missing).enumerate() {
                out[r * self.width + at] = match (missing, v.is_finite()) {
                    (false, true) => v as f32,
                    (true, _) if self.keep_missing => f32::NAN,
                    _ => return None,
                };
            }
        } else {
            self.column_by_cell(block, j, source, first_row, rows, &mut put)?;
        }
        Some(width)
    }

    /// Input column `j` of a block value by value, each outcome handed to `put(r, outcome)`.
    fn column_by_cell(
        &self,
        block: &Block,
        j: usize,
        source: &Source<'_>,
        first_row: usize,
        rows: usize,
        put: &mut impl FnMut(usize, Outcome) -> Option<()>,
    ) -> Option<()> {
        for r in 0..rows {
            let row = first_row + r;
            let cell = self.cell(source, row, block.sources[j]).ok()?;
            put(r, self.outcome(block, j, row, cell).ok()?)?;
        }
        Some(())
    }

    /// Column `j`'s `cell` of row `row` through its block's steps.
    fn outcome<'a>(
        &'a self,
        block: &'a Block,
        j: usize,
        row: usize,
        mut cell: Cell<'a>,
    ) -> crate::Result<Outcome> {
        let (one_hot, scalar) = block.split_one_hot();
        for step in scalar {
            cell = self.apply_one(step, row, j, cell)?;
        }
        Ok(match one_hot {
            Some(Step::OneHot { cats, drop, ignore, origins }) => {
                Outcome::Hot(self.one_hot(cats, drop, *ignore, origins, row, j, cell)?)
            }
            _ => Outcome::Value(self.finish(cell, row, block.sources[j])?),
        })
    }

    /// Input column `s`'s numbers for `rows` rows from `first_row`; `None` if one is not a
    /// number (or not an integer in an integer column).
    fn numbers(
        &self,
        source: &Source<'_>,
        s: usize,
        first_row: usize,
        rows: usize,
        out: &mut Numbers,
    ) -> Option<()> {
        out.values.clear();
        out.missing.clear();
        let range = first_row..first_row + rows;
        let (values, mask) = match source {
            Source::Frame(cols) => (cols[s].values, cols[s].missing),
            _ => return self.numbers_by_cell(source, s, first_row, rows, out),
        };
        let floats = match values {
            ColumnValues::F64(v) => {
                out.values.extend_from_slice(&v[range.clone()]);
                true
            }
            ColumnValues::F32(v) => {
                out.values.extend(v[range.clone()].iter().map(|&x| f64::from(x)));
                true
            }
            ColumnValues::I64(v) => {
                out.values.extend(v[range.clone()].iter().map(|&x| x as f64));
                false
            }
            ColumnValues::I32(v) => {
                out.values.extend(v[range.clone()].iter().map(|&x| f64::from(x)));
                false
            }
            ColumnValues::Bool(v) => {
                out.values.extend(v[range.clone()].iter().map(|&x| f64::from(u8::from(x))));
                false
            }
            _ => return self.numbers_by_cell(source, s, first_row, rows, out),
        };
        match mask {
            Some(m) => out.missing.extend(out.values.iter().zip(&m[range]).map(|(v, &m)| m || v.is_nan())),
            None => out.missing.extend(out.values.iter().map(|v| v.is_nan())),
        }
        // Integers (and missing values) become integer input columns; a fraction does not.
        let fraction = |(v, &missing): (&f64, &bool)| !missing && v.fract() != 0.0 && v.is_finite();
        if floats && self.integer[s] && out.values.iter().zip(&out.missing).any(fraction) {
            return None;
        }
        Some(())
    }

    /// [`Self::numbers`] through [`Self::cell`], for the sources read one value at a time.
    fn numbers_by_cell(
        &self,
        source: &Source<'_>,
        s: usize,
        first_row: usize,
        rows: usize,
        out: &mut Numbers,
    ) -> Option<()> {
        for row in first_row..first_row + rows {
            let (v, missing) = match self.cell(source, row, s).ok()? {
                Cell::Missing => (f64::NAN, true),
                Cell::Num(v) => (v, false),
                Cell::Str(_) => return None,
            };
            out.values.push(v);
            out.missing.push(missing);
        }
        Some(())
    }
}

/// A numeric step on column `j`'s values, as [`TabularPipeline::apply_one`] computes it on one
/// (a missing value passes through every step but the imputer); `None` for another step.
fn numeric_step(step: &Step, j: usize, numbers: &mut Numbers) -> Option<()> {
    let values = &mut numbers.values;
    match step {
        Step::Impute { fill } => {
            let Value::Number(fill) = fill[j] else { return None };
            for (v, missing) in values.iter_mut().zip(&mut numbers.missing) {
                if *missing {
                    *v = fill;
                    *missing = false;
                }
            }
        }
        Step::Affine { sub, div } => {
            let (sub, div) = (sub[j], div[j]);
            values.iter_mut().for_each(|v| *v = (*v - sub) / div);
        }
        Step::Scale { mul, add, clip } => {
            let (mul, add) = (mul[j], add[j]);
            match *clip {
                Some((lo, hi)) => values.iter_mut().for_each(|v| *v = (*v * mul + add).clamp(lo, hi)),
                None => values.iter_mut().for_each(|v| *v = *v * mul + add),
            }
        }
        Step::OneHot { .. } | Step::Ordinal { .. } => return None,
    }
    Some(())
}
