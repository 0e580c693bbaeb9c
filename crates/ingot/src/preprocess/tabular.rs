//! Tabular pre-processing reproducing scikit-learn's fitted transformers (docs/format.md §3).
//!
//! [`TabularPipeline::compile`] validates a [`TabularSpec`] against the signature once, at load;
//! [`TabularPipeline::transform`] then maps each row's cells through the steps in f64 and writes
//! one f32 feature row. Errors name the row and the input column.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::format::{ElementType, HandleUnknown, TabularSpec, TabularStepSpec, TensorSpec};
use crate::input::{ColumnValues, Dense, FrameColumn, Input};
use crate::value::{Record, Value};

/// Rows processed per parallel task; small batches stay on the calling thread.
const ROWS_PER_TASK: usize = 512;

/// Whether a column carries numbers or strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Num,
    Str,
}

/// One input cell as it flows through the steps.
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Missing,
    Num(f64),
    Str(&'a str),
}

/// Category → index lookup for one encoded column.
#[derive(Debug)]
struct Categories {
    strings: HashMap<String, usize>,
    numbers: Vec<(f64, usize)>,
    null: Option<usize>,
    len: usize,
}

impl Categories {
    fn new(values: &[Value], field: &str) -> Result<Self> {
        let mut out =
            Categories { strings: HashMap::new(), numbers: Vec::new(), null: None, len: values.len() };
        for (i, v) in values.iter().enumerate() {
            let dup = match v {
                Value::Null => out.null.replace(i).is_some(),
                Value::Number(n) => {
                    let dup = out.numbers.iter().any(|(c, _)| c == n);
                    out.numbers.push((*n, i));
                    dup
                }
                Value::String(s) => out.strings.insert(s.clone(), i).is_some(),
            };
            if dup {
                return Err(Error::manifest(field, format!("category {v} is listed twice")));
            }
        }
        Ok(out)
    }

    #[inline]
    fn lookup(&self, cell: Cell<'_>) -> Option<usize> {
        match cell {
            Cell::Missing => self.null,
            Cell::Num(v) => self.numbers.iter().find(|(c, _)| *c == v).map(|&(_, i)| i),
            Cell::Str(s) => self.strings.get(s).copied(),
        }
    }
}

fn describe(cell: Cell<'_>) -> String {
    match cell {
        Cell::Missing => "null".into(),
        Cell::Num(v) => Value::Number(v).to_string(),
        Cell::Str(s) => format!("{s:?}"),
    }
}

/// A validated step over a block's cells.
#[derive(Debug)]
enum Step {
    Impute {
        fill: Vec<Value>,
    },
    /// `(x - sub) / div`; missing passes through.
    Affine {
        sub: Vec<f64>,
        div: Vec<f64>,
    },
    /// `x * mul + add`, then optional clip; missing passes through.
    Scale {
        mul: Vec<f64>,
        add: Vec<f64>,
        clip: Option<(f64, f64)>,
    },
    OneHot {
        cats: Vec<Categories>,
        drop: Vec<Option<usize>>,
        ignore: bool,
        origins: Vec<usize>,
    },
    Ordinal {
        cats: Vec<Categories>,
        unknown: Option<Option<f64>>,
        missing: Option<f64>,
        origins: Vec<usize>,
    },
}

/// One ColumnTransformer entry: input columns and steps.
#[derive(Debug)]
struct Block {
    sources: Vec<usize>,
    steps: Vec<Step>,
    /// Input column of each output position (for error messages).
    origins: Vec<usize>,
}

/// A validated tabular pipeline.
#[derive(Debug)]
pub(crate) struct TabularPipeline {
    columns: Vec<(String, Kind)>,
    /// Input columns declared integer (`I64`/`I32`): a number with a fractional part there is a
    /// wrong type, not an unseen category.
    integer: Vec<bool>,
    blocks: Vec<Block>,
    width: usize,
    /// Folded per-feature affine maps, when every step is numeric (imputers and scalers
    /// without clipping): the dense-input fast path.
    affine: Option<Vec<FeatureAffine>>,
}

/// Output feature `y = x·mul + add` of input column `source`; `missing` is the output for a
/// missing input (`None`: no imputer fills it).
#[derive(Debug, Clone, Copy)]
struct FeatureAffine {
    source: usize,
    mul: f64,
    add: f64,
    missing: Option<f64>,
}

impl FeatureAffine {
    /// Folds a block's numeric steps for its `j`-th column, or `None` if a step is not affine.
    fn fold(block: &Block, j: usize) -> Option<FeatureAffine> {
        let mut f = FeatureAffine { source: block.sources[j], mul: 1.0, add: 0.0, missing: None };
        let mut filled = false;
        for step in &block.steps {
            let (m, a) = match step {
                Step::Impute { fill } => {
                    if !filled {
                        f.missing = Some(fill.get(j)?.as_f64()?);
                        filled = true;
                    }
                    continue;
                }
                Step::Affine { sub, div } => (1.0 / div[j], -sub[j] / div[j]),
                Step::Scale { mul, add, clip: None } => (mul[j], add[j]),
                _ => return None,
            };
            f.mul *= m;
            f.add = f.add * m + a;
            f.missing = f.missing.map(|v| v * m + a);
        }
        Some(f)
    }
}

fn vec_len_check(field: &str, name: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::manifest(field, format!("`{name}` has {got} entries for {want} columns")));
    }
    Ok(())
}

impl TabularPipeline {
    /// Validates `spec` against the signature's input columns.
    pub(crate) fn compile(spec: &TabularSpec, inputs: &[TensorSpec], field: &str) -> Result<Self> {
        let mut columns = Vec::with_capacity(inputs.len());
        let integer = inputs.iter().map(|i| matches!(i.dtype, ElementType::I64 | ElementType::I32)).collect();
        let mut index = HashMap::new();
        for (i, input) in inputs.iter().enumerate() {
            let kind = match input.dtype {
                ElementType::String => Kind::Str,
                ElementType::F64 | ElementType::F32 | ElementType::I64 | ElementType::I32 => Kind::Num,
                other => {
                    return Err(Error::manifest(
                        format!("signature.inputs[{i}]"),
                        format!("tabular column `{}` has unsupported dtype {other:?}", input.name),
                    ))
                }
            };
            if index.insert(input.name.clone(), i).is_some() {
                return Err(Error::manifest(
                    format!("signature.inputs[{i}]"),
                    format!("column `{}` is listed twice", input.name),
                ));
            }
            columns.push((input.name.clone(), kind));
        }

        let mut blocks = Vec::with_capacity(spec.transformers.len());
        let mut width = 0usize;
        for (t, transformer) in spec.transformers.iter().enumerate() {
            let tfield = format!("{field}.transformers[{t}]");
            let sources = transformer
                .columns
                .iter()
                .map(|c| {
                    index.get(c).copied().ok_or_else(|| {
                        Error::manifest(
                            format!("{tfield}.columns"),
                            format!("column `{c}` is not a signature input"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let mut kinds: Vec<Kind> = sources.iter().map(|&s| columns[s].1).collect();
            let mut origins = sources.clone();
            let mut steps = Vec::with_capacity(transformer.steps.len());
            for (s, step) in transformer.steps.iter().enumerate() {
                let sfield = format!("{tfield}.steps[{s}]");
                let w = kinds.len();
                let numeric_only = |kinds: &[Kind], name: &str| -> Result<()> {
                    match kinds.iter().position(|k| *k == Kind::Str) {
                        Some(p) => Err(Error::manifest(
                            &sfield,
                            format!(
                                "{name} needs numbers but column `{}` holds strings",
                                columns[origins[p]].0
                            ),
                        )),
                        None => Ok(()),
                    }
                };
                let compiled = match step {
                    TabularStepSpec::Passthrough => continue,
                    TabularStepSpec::SimpleImputer { fill } => {
                        vec_len_check(&sfield, "fill", fill.len(), w)?;
                        for (j, (f, k)) in fill.iter().zip(&kinds).enumerate() {
                            let ok = matches!((f, k), (Value::Number(n), Kind::Num) if n.is_finite())
                                || matches!((f, k), (Value::Number(n), Kind::Str) if n.is_finite())
                                || matches!((f, k), (Value::String(_), Kind::Str));
                            if !ok {
                                return Err(Error::manifest(
                                    &sfield,
                                    format!("fill {f} does not suit column `{}`", columns[origins[j]].0),
                                ));
                            }
                        }
                        Step::Impute { fill: fill.clone() }
                    }
                    TabularStepSpec::StandardScaler { mean, scale } => {
                        numeric_only(&kinds, "standard_scaler")?;
                        affine(&sfield, mean.as_deref(), scale.as_deref(), w, "mean")?
                    }
                    TabularStepSpec::RobustScaler { center, scale } => {
                        numeric_only(&kinds, "robust_scaler")?;
                        affine(&sfield, center.as_deref(), scale.as_deref(), w, "center")?
                    }
                    TabularStepSpec::MaxAbsScaler { scale } => {
                        numeric_only(&kinds, "max_abs_scaler")?;
                        affine(&sfield, None, Some(scale), w, "center")?
                    }
                    TabularStepSpec::MinMaxScaler { scale, min, clip, feature_range } => {
                        numeric_only(&kinds, "min_max_scaler")?;
                        vec_len_check(&sfield, "scale", scale.len(), w)?;
                        vec_len_check(&sfield, "min", min.len(), w)?;
                        finite(&sfield, scale.iter().chain(min).chain(feature_range))?;
                        Step::Scale {
                            mul: scale.clone(),
                            add: min.clone(),
                            clip: clip.then_some((feature_range[0], feature_range[1])),
                        }
                    }
                    TabularStepSpec::OneHotEncoder { categories, handle_unknown, drop } => {
                        vec_len_check(&sfield, "categories", categories.len(), w)?;
                        let drop = drop.clone().unwrap_or_else(|| vec![None; w]);
                        vec_len_check(&sfield, "drop", drop.len(), w)?;
                        let ignore = match handle_unknown {
                            HandleUnknown::Error => false,
                            HandleUnknown::Ignore => true,
                            HandleUnknown::UseEncodedValue => {
                                return Err(Error::manifest(
                                    &sfield,
                                    "one_hot_encoder handle_unknown must be `error` or `ignore`",
                                ))
                            }
                        };
                        let cats = categories
                            .iter()
                            .map(|c| Categories::new(c, &sfield))
                            .collect::<Result<Vec<_>>>()?;
                        let mut new_origins = Vec::new();
                        for (j, (c, d)) in cats.iter().zip(&drop).enumerate() {
                            if let Some(d) = d {
                                if *d >= c.len {
                                    return Err(Error::manifest(
                                        &sfield,
                                        format!("drop index {d} is out of range for column {j}"),
                                    ));
                                }
                            }
                            let out_w = c.len - usize::from(d.is_some());
                            new_origins.extend(std::iter::repeat_n(origins[j], out_w));
                        }
                        let step_origins = std::mem::replace(&mut origins, new_origins);
                        kinds = vec![Kind::Num; origins.len()];
                        steps.push(Step::OneHot { cats, drop, ignore, origins: step_origins });
                        continue;
                    }
                    TabularStepSpec::OrdinalEncoder {
                        categories,
                        handle_unknown,
                        unknown_value,
                        encoded_missing_value,
                    } => {
                        vec_len_check(&sfield, "categories", categories.len(), w)?;
                        let unknown =
                            match handle_unknown {
                                HandleUnknown::Error => None,
                                HandleUnknown::UseEncodedValue => Some(*unknown_value),
                                HandleUnknown::Ignore => return Err(Error::manifest(
                                    &sfield,
                                    "ordinal_encoder handle_unknown must be `error` or `use_encoded_value`",
                                )),
                            };
                        let cats = categories
                            .iter()
                            .map(|c| Categories::new(c, &sfield))
                            .collect::<Result<Vec<_>>>()?;
                        kinds = vec![Kind::Num; w];
                        Step::Ordinal {
                            cats,
                            unknown,
                            missing: *encoded_missing_value,
                            origins: origins.clone(),
                        }
                    }
                };
                steps.push(compiled);
            }
            if let Some(p) = kinds.iter().position(|k| *k == Kind::Str) {
                return Err(Error::manifest(
                    &tfield,
                    format!(
                        "column `{}` still holds strings after the last step; add an encoder",
                        columns[origins[p]].0
                    ),
                ));
            }
            width += origins.len();
            blocks.push(Block { sources, steps, origins });
        }
        if width == 0 {
            return Err(Error::manifest(field, "the transformers produce no features"));
        }
        let affine = blocks
            .iter()
            .flat_map(|b| (0..b.sources.len()).map(move |j| FeatureAffine::fold(b, j)))
            .collect::<Option<Vec<_>>>()
            .filter(|a| a.len() == width);
        Ok(TabularPipeline { columns, integer, blocks, width, affine })
    }

    /// Number of features produced per row.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Input column names in signature order.
    pub(crate) fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }

    /// Transforms a batch into a row-major `[rows, width]` f32 matrix (see [`Self::transform_into`]).
    #[cfg(test)]
    pub(crate) fn transform(&self, input: &Input<'_>) -> Result<(Vec<f32>, usize)> {
        let rows = input.rows()?;
        let mut out = vec![0f32; rows * self.width];
        self.transform_into(input, &mut out)?;
        Ok((out, rows))
    }

    /// Transforms a batch of `input.rows()` rows into `out`, `[rows, width]` row-major (every
    /// value overwritten).
    ///
    /// # Panics
    /// If `out` is not `rows × width` values.
    pub(crate) fn transform_into(&self, input: &Input<'_>, out: &mut [f32]) -> Result<()> {
        let rows = input.rows()?;
        assert_eq!(out.len(), rows * self.width, "tabular: output size");
        let source = self.source(input)?;
        if let (Source::Dense(d), Some(affine)) = (&source, &self.affine) {
            return self.dense_affine(d, affine, out);
        }
        if rows <= ROWS_PER_TASK {
            self.rows_into(&source, 0, out)
        } else {
            crate::parallel::try_for_each_chunk_mut(out, ROWS_PER_TASK * self.width, |c, chunk| {
                self.rows_into(&source, c * ROWS_PER_TASK, chunk)
            })
        }
    }

    fn source<'a>(&self, input: &Input<'a>) -> Result<Source<'a>> {
        Ok(match *input {
            Input::Texts(_) => {
                return Err(Error::Usage {
                    what: "a list of strings for a tabular model; send records".into(),
                })
            }
            Input::Dense(d) => {
                if d.cols() != self.columns.len() {
                    return Err(Error::ShapeMismatch {
                        what: "dense input columns".into(),
                        expected: format!("{} ({})", self.columns.len(), self.column_list()),
                        got: d.cols().to_string(),
                    });
                }
                if let Some((name, _)) = self.columns.iter().find(|(_, k)| *k == Kind::Str) {
                    return Err(Error::Usage {
                        what: format!(
                            "dense input for a model with string column `{name}`; send records or columns"
                        ),
                    });
                }
                Source::Dense(d)
            }
            Input::Records(r) => Source::Records(r),
            Input::Frame(f) => {
                let cols = self
                    .columns
                    .iter()
                    .map(|(name, _)| {
                        f.column(name).ok_or_else(|| Error::MissingColumn { row: 0, column: name.clone() })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Source::Frame(cols)
            }
            Input::Columns(c) => {
                let cols = self
                    .columns
                    .iter()
                    .map(|(name, _)| {
                        c.get(name)
                            .map(Vec::as_slice)
                            .ok_or_else(|| Error::MissingColumn { row: 0, column: name.clone() })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Source::Columns(cols)
            }
        })
    }

    /// The fast path: dense numeric input through folded affine maps, rows split across threads.
    fn dense_affine(&self, d: &Dense<'_>, affine: &[FeatureAffine], out: &mut [f32]) -> Result<()> {
        let width = self.width;
        let rows_into = |first_row: usize, chunk: &mut [f32]| -> Result<()> {
            for (r, out_row) in chunk.chunks_exact_mut(width).enumerate() {
                let row = first_row + r;
                for (o, f) in out_row.iter_mut().zip(affine) {
                    let x = d.get(row, f.source);
                    self.number(row, f.source, x)?;
                    let y = if x.is_nan() {
                        f.missing.ok_or_else(|| self.invalid(row, f.source, "missing"))?
                    } else {
                        x * f.mul + f.add
                    };
                    if !y.is_finite() {
                        return Err(self.invalid(row, f.source, "infinite"));
                    }
                    *o = y as f32;
                }
            }
            Ok(())
        };
        // f32 input whose features are its columns in order: a branch-free loop the compiler
        // vectorizes; a non-finite result (a missing value to impute, or bad input) sends the
        // chunk through the checked loop above, which imputes or names the row and column.
        let in_order = affine.iter().enumerate().all(|(j, f)| f.source == j) && d.cols() == width;
        let fast = match d.data() {
            crate::input::DenseData::F32(x) if in_order => Some(x),
            _ => None,
        };
        let mul: Vec<f64> = affine.iter().map(|f| f.mul).collect();
        let add: Vec<f64> = affine.iter().map(|f| f.add).collect();
        let chunk_into = |first_row: usize, chunk: &mut [f32]| -> Result<()> {
            let Some(x) = fast else { return rows_into(first_row, chunk) };
            let xs = &x[first_row * width..first_row * width + chunk.len()];
            for (xr, or) in xs.chunks_exact(width).zip(chunk.chunks_exact_mut(width)) {
                for (((o, &v), m), a) in or.iter_mut().zip(xr).zip(&mul).zip(&add) {
                    *o = (f64::from(v) * m + a) as f32;
                }
            }
            // NaN (missing, possibly imputed) or ±∞ anywhere, or a fraction in an integer column:
            // redo the chunk with the checks.
            let mut bad = chunk.iter().fold(false, |bad, v| bad | !v.is_finite());
            if self.integer.iter().any(|&i| i) {
                bad |= xs.chunks_exact(width).any(|r| {
                    r.iter().zip(&self.integer).any(|(v, &int)| int && v.is_finite() && v.fract() != 0.0)
                });
            }
            if bad {
                rows_into(first_row, chunk)
            } else {
                Ok(())
            }
        };
        if d.rows() <= ROWS_PER_TASK {
            return chunk_into(0, out);
        }
        crate::parallel::try_for_each_chunk_mut(out, ROWS_PER_TASK * width, |c, chunk| {
            chunk_into(c * ROWS_PER_TASK, chunk)
        })
    }

    fn column_list(&self) -> String {
        let names: Vec<&str> = self.column_names().take(6).collect();
        let more = if self.columns.len() > 6 { ", …" } else { "" };
        format!("{}{more}", names.join(", "))
    }

    /// A number `v` for column `col`, refused when the column is integer and `v` is not.
    fn number(&self, row: usize, col: usize, v: f64) -> Result<Cell<'static>> {
        if v.is_nan() {
            return Ok(Cell::Missing);
        }
        if self.integer[col] && v.fract() != 0.0 {
            return Err(Error::WrongType {
                row,
                column: self.columns[col].0.clone(),
                expected: "an integer",
                got: format!("number {v}"),
            });
        }
        Ok(Cell::Num(v))
    }

    fn cell<'a>(&'a self, source: &Source<'a>, row: usize, col: usize) -> Result<Cell<'a>> {
        let name = &self.columns[col].0;
        let value = match source {
            Source::Dense(d) => return self.number(row, col, d.get(row, col)),
            Source::Records(r) => {
                r[row].get(name).ok_or_else(|| Error::MissingColumn { row, column: name.clone() })?
            }
            Source::Columns(c) => &c[col][row],
            Source::Frame(cols) => return self.frame_cell(cols[col], row, col),
        };
        self.value_cell(value, row, col)
    }

    /// A [`Value`] of input column `col` in row `row`, checked against the column's type.
    fn value_cell<'a>(&self, value: &'a Value, row: usize, col: usize) -> Result<Cell<'a>> {
        let (name, kind) = &self.columns[col];
        match (value, kind) {
            (Value::Null, _) => Ok(Cell::Missing),
            (Value::Number(v), Kind::Num) => self.number(row, col, *v),
            (Value::String(s), Kind::Str) => Ok(Cell::Str(s)),
            (other, Kind::Num) => Err(Error::WrongType {
                row,
                column: name.clone(),
                expected: "a number",
                got: format!("{} {other}", other.type_name()),
            }),
            (other, Kind::Str) => Err(Error::WrongType {
                row,
                column: name.clone(),
                expected: "a string",
                got: format!("{} {other}", other.type_name()),
            }),
        }
    }

    /// Row `row` of frame column `c`, the input column `col`.
    fn frame_cell<'a>(&self, c: &FrameColumn<'a>, row: usize, col: usize) -> Result<Cell<'a>> {
        if c.is_missing(row) {
            return Ok(Cell::Missing);
        }
        let (name, kind) = &self.columns[col];
        let wrong = |expected, got: String| Error::WrongType { row, column: name.clone(), expected, got };
        match (c.values, kind) {
            (ColumnValues::F64(v), Kind::Num) => self.number(row, col, v[row]),
            (ColumnValues::F32(v), Kind::Num) => self.number(row, col, f64::from(v[row])),
            (ColumnValues::I64(v), Kind::Num) => Ok(Cell::Num(v[row] as f64)),
            (ColumnValues::I32(v), Kind::Num) => Ok(Cell::Num(f64::from(v[row]))),
            (ColumnValues::Bool(v), Kind::Num) => Ok(Cell::Num(f64::from(u8::from(v[row])))),
            (ColumnValues::Values(v), _) => self.value_cell(&v[row], row, col),
            (ColumnValues::Str(v), Kind::Str) => Ok(v[row].map_or(Cell::Missing, Cell::Str)),
            (ColumnValues::Str(v), Kind::Num) => match v[row] {
                None => Ok(Cell::Missing),
                Some(s) => Err(wrong("a number", format!("string {s:?}"))),
            },
            (ColumnValues::F64(v), Kind::Str) if v[row].is_nan() => Ok(Cell::Missing),
            (ColumnValues::F32(v), Kind::Str) if v[row].is_nan() => Ok(Cell::Missing),
            (_, Kind::Str) => Err(wrong("a string", "a number".into())),
        }
    }

    fn rows_into<'a>(&'a self, source: &Source<'a>, first_row: usize, out: &mut [f32]) -> Result<()> {
        let mut cur: Vec<Cell<'a>> = Vec::new();
        let mut next: Vec<Cell<'a>> = Vec::new();
        for (r, out_row) in out.chunks_exact_mut(self.width).enumerate() {
            let row = first_row + r;
            let mut offset = 0;
            for block in &self.blocks {
                cur.clear();
                for &s in &block.sources {
                    cur.push(self.cell(source, row, s)?);
                }
                for step in &block.steps {
                    self.apply(step, row, &cur, &mut next)?;
                    std::mem::swap(&mut cur, &mut next);
                }
                for (j, cell) in cur.iter().enumerate() {
                    let v = match *cell {
                        Cell::Num(v) if v.is_finite() => v,
                        Cell::Num(v) => {
                            return Err(self.invalid(
                                row,
                                block.origins[j],
                                if v.is_nan() { "NaN" } else { "infinite" },
                            ))
                        }
                        Cell::Missing => return Err(self.invalid(row, block.origins[j], "missing")),
                        Cell::Str(_) => return Err(self.invalid(row, block.origins[j], "string")),
                    };
                    out_row[offset + j] = v as f32;
                }
                offset += cur.len();
            }
        }
        Ok(())
    }

    fn invalid(&self, row: usize, col: usize, value: &'static str) -> Error {
        Error::InvalidValue { row, column: self.columns[col].0.clone(), value }
    }

    fn apply<'a>(
        &'a self,
        step: &'a Step,
        row: usize,
        cur: &[Cell<'a>],
        next: &mut Vec<Cell<'a>>,
    ) -> Result<()> {
        next.clear();
        match step {
            Step::Impute { fill } => next.extend(cur.iter().zip(fill).map(|(c, f)| match (c, f) {
                (Cell::Missing, Value::Number(n)) => Cell::Num(*n),
                (Cell::Missing, Value::String(s)) => Cell::Str(s),
                (other, _) => *other,
            })),
            Step::Affine { sub, div } => {
                next.extend(cur.iter().zip(sub.iter().zip(div)).map(|(c, (s, d))| match c {
                    Cell::Num(v) => Cell::Num((v - s) / d),
                    other => *other,
                }))
            }
            Step::Scale { mul, add, clip } => {
                next.extend(cur.iter().zip(mul.iter().zip(add)).map(|(c, (m, a))| match c {
                    Cell::Num(v) => {
                        let y = v * m + a;
                        Cell::Num(match clip {
                            Some((lo, hi)) => y.clamp(*lo, *hi),
                            None => y,
                        })
                    }
                    other => *other,
                }))
            }
            Step::OneHot { cats, drop, ignore, origins } => {
                for (j, (cell, c)) in cur.iter().zip(cats).enumerate() {
                    let width = c.len - usize::from(drop[j].is_some());
                    let start = next.len();
                    next.extend(std::iter::repeat_n(Cell::Num(0.0), width));
                    match (c.lookup(*cell), drop[j]) {
                        (Some(i), Some(d)) if i == d => {}
                        (Some(i), Some(d)) => next[start + i - usize::from(i > d)] = Cell::Num(1.0),
                        (Some(i), None) => next[start + i] = Cell::Num(1.0),
                        (None, _) if *ignore => {}
                        (None, _) => {
                            return Err(Error::UnknownCategory {
                                row,
                                column: self.columns[origins[j]].0.clone(),
                                value: describe(*cell),
                            })
                        }
                    }
                }
            }
            Step::Ordinal { cats, unknown, missing, origins } => {
                for (j, (cell, c)) in cur.iter().zip(cats).enumerate() {
                    let encoded = match (cell, missing) {
                        (Cell::Missing, Some(m)) => Cell::Num(*m),
                        (Cell::Missing, None) => Cell::Missing,
                        _ => match (c.lookup(*cell), unknown) {
                            (Some(i), _) => Cell::Num(i as f64),
                            (None, Some(Some(u))) => Cell::Num(*u),
                            (None, Some(None)) => Cell::Missing,
                            (None, None) => {
                                return Err(Error::UnknownCategory {
                                    row,
                                    column: self.columns[origins[j]].0.clone(),
                                    value: describe(*cell),
                                })
                            }
                        },
                    };
                    next.push(encoded);
                }
            }
        }
        Ok(())
    }
}

/// Where cells come from for one batch.
enum Source<'a> {
    Dense(Dense<'a>),
    Records(&'a [Record]),
    Columns(Vec<&'a [Value]>),
    /// The frame's column for each input column, in signature order.
    Frame(Vec<&'a FrameColumn<'a>>),
}

fn finite<'a>(field: &str, values: impl IntoIterator<Item = &'a f64>) -> Result<()> {
    if values.into_iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::manifest(field, "parameters must be finite numbers"))
    }
}

fn affine(field: &str, sub: Option<&[f64]>, div: Option<&[f64]>, w: usize, sub_name: &str) -> Result<Step> {
    if let Some(s) = sub {
        vec_len_check(field, sub_name, s.len(), w)?;
        finite(field, s)?;
    }
    if let Some(d) = div {
        vec_len_check(field, "scale", d.len(), w)?;
        finite(field, d)?;
        if d.contains(&0.0) {
            return Err(Error::manifest(field, "`scale` contains 0"));
        }
    }
    Ok(Step::Affine {
        sub: sub.map_or_else(|| vec![0.0; w], <[f64]>::to_vec),
        div: div.map_or_else(|| vec![1.0; w], <[f64]>::to_vec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::TransformerSpec;

    fn spec(steps: Vec<TabularStepSpec>) -> (TabularSpec, Vec<TensorSpec>) {
        let inputs = (0..3)
            .map(|i| TensorSpec { name: format!("x{i}"), dtype: ElementType::F64, shape: vec![-1] })
            .collect();
        let t =
            TransformerSpec { name: "t".into(), columns: vec!["x0".into(), "x1".into(), "x2".into()], steps };
        (TabularSpec { transformers: vec![t] }, inputs)
    }

    #[test]
    fn dense_fast_path_matches_the_general_path() {
        let (s, inputs) = spec(vec![
            TabularStepSpec::StandardScaler {
                mean: Some(vec![1.0, -2.0, 1e4]),
                scale: Some(vec![3.0, 0.5, 7.0]),
            },
            TabularStepSpec::SimpleImputer {
                fill: vec![Value::from(0.25), Value::from(-1.0), Value::from(2.0)],
            },
            TabularStepSpec::MinMaxScaler {
                scale: vec![0.5, 2.0, 1.0],
                min: vec![0.1, -0.2, 0.0],
                clip: false,
                feature_range: [0.0, 1.0],
            },
            TabularStepSpec::MaxAbsScaler { scale: vec![2.0, 4.0, 8.0] },
        ]);
        let p = TabularPipeline::compile(&s, &inputs, "t").unwrap();
        assert!(p.affine.is_some());
        let data: Vec<f64> =
            (0..3000).map(|i| if i % 17 == 0 { f64::NAN } else { (i as f64 * 0.37).sin() * 1e4 }).collect();
        let dense = Dense::f64(&data, 1000, 3).unwrap();
        let (fast, _) = p.transform(&Input::Dense(dense)).unwrap();
        let general = TabularPipeline { affine: None, ..TabularPipeline::compile(&s, &inputs, "t").unwrap() };
        let (slow, _) = general.transform(&Input::Dense(dense)).unwrap();
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
        }
        // The f32 in-order loop (vectorized) agrees too, across parallel chunks.
        let data32: Vec<f32> = data.iter().map(|&v| v as f32).collect();
        let dense32 = Dense::f32(&data32, 1000, 3).unwrap();
        let (fast32, _) = p.transform(&Input::Dense(dense32)).unwrap();
        let (slow32, _) = general.transform(&Input::Dense(dense32)).unwrap();
        for (a, b) in fast32.iter().zip(&slow32) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }

    /// Integer columns: 2.0 is the integer 2, 2.5 is a wrong type (not an unseen category),
    /// through records, the general dense path and the vectorized affine one.
    #[test]
    fn a_fraction_in_an_integer_column_is_a_wrong_type() {
        let (mut s, mut inputs) = spec(vec![TabularStepSpec::OneHotEncoder {
            categories: vec![vec![Value::from(1.0), Value::from(2.0)]; 3],
            handle_unknown: HandleUnknown::Ignore,
            drop: None,
        }]);
        inputs.iter_mut().for_each(|i| i.dtype = ElementType::I64);
        let p = TabularPipeline::compile(&s, &inputs, "t").unwrap();
        let record = |x1: f64| {
            Record::from([("x0", 1.0), ("x1", x1), ("x2", 2.0)].map(|(k, v)| (k.to_string(), Value::from(v))))
        };
        let (ok, _) = p.transform(&Input::Records(&[record(2.0)])).unwrap();
        assert_eq!(ok, [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        let wrong = |r: Result<(Vec<f32>, usize)>| match r {
            Err(Error::WrongType { row: 1, column, expected: "an integer", got }) => {
                assert_eq!((column.as_str(), got.as_str()), ("x1", "number 2.5"))
            }
            other => panic!("{other:?}"),
        };
        wrong(p.transform(&Input::Records(&[record(2.0), record(2.5)])));
        let dense = [1.0, 2.0, 2.0, 1.0, 2.5, 2.0];
        wrong(p.transform(&Input::Dense(Dense::f64(&dense, 2, 3).unwrap())));

        s.transformers[0].steps = vec![TabularStepSpec::StandardScaler { mean: None, scale: None }];
        let p = TabularPipeline::compile(&s, &inputs, "t").unwrap();
        assert!(p.affine.is_some());
        let dense32: Vec<f32> = dense.iter().map(|&v| v as f32).collect();
        wrong(p.transform(&Input::Dense(Dense::f32(&dense32, 2, 3).unwrap())));
        let whole = [1.0f32, 2.0, 2.0, 1.0, 3.0, -4.0];
        assert_eq!(p.transform(&Input::Dense(Dense::f32(&whole, 2, 3).unwrap())).unwrap().0, whole);
    }

    #[test]
    fn clipping_and_encoders_use_the_general_path() {
        let (s, inputs) = spec(vec![TabularStepSpec::MinMaxScaler {
            scale: vec![1.0; 3],
            min: vec![0.0; 3],
            clip: true,
            feature_range: [0.0, 1.0],
        }]);
        assert!(TabularPipeline::compile(&s, &inputs, "t").unwrap().affine.is_none());
    }
}
