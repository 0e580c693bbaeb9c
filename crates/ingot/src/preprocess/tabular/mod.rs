//! Tabular pre-processing reproducing scikit-learn's fitted transformers (docs/format.md §3).
//!
//! [`TabularPipeline::compile`] validates a [`TabularSpec`] against the signature once, at load;
//! [`TabularPipeline::transform_into`] then maps each row's cells through the steps in f64 and
//! writes one f32 feature row. Errors name the row and the input column.
//!
//! Two paths compute the same features: the row-at-a-time one here (`rows_into`), which is the
//! reference and the source of every error, and the column-at-a-time one in [`columns`], which
//! runs each input column of a block through its steps over a run of rows at once and hands any
//! run with a bad value back to the reference.

mod columns;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::format::{ElementType, HandleUnknown, TabularSpec, TabularStepSpec, TensorSpec};
use crate::input::{ColumnValues, Dense, FrameColumn, Input};
use crate::value::{Record, Value};

/// Rows processed per parallel task; small batches stay on the calling thread.
const ROWS_PER_TASK: usize = 512;

/// Batches from this many rows go through the column path ([`columns`]); smaller ones, row by
/// row.
const COLUMN_PATH_ROWS: usize = 16;

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
    /// The string categories again, when there are at most [`FEW_CATEGORIES`] of them.
    few: Vec<(String, usize)>,
    /// Those of [`Categories::few`] of at most 16 bytes as (bytes zero-padded, length, index):
    /// [`Categories::find_in`] compares them with no branch per category.
    short: Vec<(u128, usize, usize)>,
    null: Option<usize>,
    len: usize,
}

/// `MASKS[n]` keeps the low `n` bytes of a `u128`.
const MASKS: [u128; 17] = {
    let mut masks = [0u128; 17];
    let mut n = 1;
    while n <= 16 {
        masks[n] = u128::MAX >> (128 - 8 * n);
        n += 1;
    }
    masks
};

/// Up to this many string categories are looked up by comparison instead of by hash.
const FEW_CATEGORIES: usize = 16;

impl Categories {
    fn new(values: &[Value], field: &str) -> Result<Self> {
        let mut out = Categories {
            strings: HashMap::new(),
            numbers: Vec::new(),
            few: Vec::new(),
            short: Vec::new(),
            null: None,
            len: values.len(),
        };
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
        if out.strings.len() <= FEW_CATEGORIES {
            out.few = out.strings.iter().map(|(s, &i)| (s.clone(), i)).collect();
            out.short = out
                .few
                .iter()
                .filter(|(s, _)| s.len() <= 16)
                .map(|(s, i)| {
                    let mut bytes = [0u8; 16];
                    bytes[..s.len()].copy_from_slice(s.as_bytes());
                    (u128::from_le_bytes(bytes), s.len(), *i)
                })
                .collect();
        }
        Ok(out)
    }

    /// The category of the string `data[span]`, as [`Categories::lookup`] finds it. A string of
    /// at most 16 bytes with 16 bytes of `data` from its start is read in one load and compared
    /// with every short category at once, which keeps a column of mixed categories free of
    /// mispredicted branches.
    #[inline]
    fn find_in(&self, data: &str, span: std::ops::Range<usize>) -> Option<usize> {
        let n = span.len();
        let window = data.as_bytes().get(span.start..span.start + 16);
        match window {
            Some(w) if n <= 16 && self.few.len() == self.strings.len() => {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(w);
                let key = u128::from_le_bytes(bytes) & MASKS[n];
                let mut found = usize::MAX;
                for &(k, len, i) in &self.short {
                    found = if k == key && len == n { i } else { found };
                }
                (found != usize::MAX).then_some(found)
            }
            _ => self.lookup(Cell::Str(&data[span])),
        }
    }

    #[inline]
    fn lookup(&self, cell: Cell<'_>) -> Option<usize> {
        match cell {
            Cell::Missing => self.null,
            Cell::Num(v) => self.numbers.iter().find(|(c, _)| *c == v).map(|&(_, i)| i),
            // A few categories (the usual case) are found faster by comparing than by hashing,
            // and short strings faster byte by byte than through `memcmp`.
            Cell::Str(s) if self.few.len() == self.strings.len() => {
                let s = s.as_bytes();
                let same = |c: &[u8]| c.len() == s.len() && c.iter().zip(s).all(|(a, b)| a == b);
                self.few.iter().find(|(c, _)| same(c.as_bytes())).map(|&(_, i)| i)
            }
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
    /// No one-hot encoder before the last step: each input column can go through the steps
    /// alone ([`columns`]).
    columnwise: bool,
    /// For each input column: a number that only imputers and scalers touch (the column path
    /// runs those over a whole run of values).
    numeric: Vec<bool>,
}

impl Block {
    /// The steps as (a final one-hot encoder, the steps before it); `None` when the last step
    /// is not a one-hot encoder.
    fn split_one_hot(&self) -> (Option<&Step>, &[Step]) {
        match self.steps.split_last() {
            Some((last @ Step::OneHot { .. }, rest)) => (Some(last), rest),
            _ => (None, &self.steps),
        }
    }
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
    /// Missing values no imputer fills become NaN features instead of errors.
    keep_missing: bool,
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
                        if *clip && feature_range[0] > feature_range[1] {
                            return Err(Error::manifest(
                                &sfield,
                                "`feature_range` must run from its smaller value to its larger",
                            ));
                        }
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
            let columnwise = steps.iter().rev().skip(1).all(|s| !matches!(s, Step::OneHot { .. }));
            let scalar_only = steps
                .iter()
                .all(|s| matches!(s, Step::Impute { .. } | Step::Affine { .. } | Step::Scale { .. }));
            let numeric = sources.iter().map(|&s| scalar_only && columns[s].1 == Kind::Num).collect();
            blocks.push(Block { sources, steps, origins, columnwise, numeric });
        }
        if width == 0 {
            return Err(Error::manifest(field, "the transformers produce no features"));
        }
        let affine = blocks
            .iter()
            .flat_map(|b| (0..b.sources.len()).map(move |j| FeatureAffine::fold(b, j)))
            .collect::<Option<Vec<_>>>()
            .filter(|a| a.len() == width);
        Ok(TabularPipeline { columns, integer, blocks, width, affine, keep_missing: spec.keep_missing })
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
    /// value overwritten), in parallel runs of rows.
    ///
    /// # Panics
    /// If `out` is not `rows × width` values.
    #[cfg(test)]
    pub(crate) fn transform_into(&self, input: &Input<'_>, out: &mut [f32]) -> Result<()> {
        self.rows_in_parallel(&self.prepare(input)?, out)
    }

    /// Every row of a prepared batch into `out`, `[rows, width]` row-major, in parallel runs
    /// of rows.
    ///
    /// # Panics
    /// If `out` is not `rows × width` values.
    pub(crate) fn rows_in_parallel(&self, batch: &Batch<'_>, out: &mut [f32]) -> Result<()> {
        assert_eq!(out.len(), batch.rows * self.width, "tabular: output size");
        if batch.rows <= ROWS_PER_TASK {
            return self.rows_of(batch, 0, out);
        }
        crate::parallel::try_for_each_chunk_mut(out, ROWS_PER_TASK * self.width, |c, chunk| {
            self.rows_of(batch, c * ROWS_PER_TASK, chunk)
        })
    }

    /// Checks `input` against the signature and works out what the call needs once.
    pub(crate) fn prepare<'a>(&'a self, input: &Input<'a>) -> Result<Batch<'a>> {
        let rows = input.rows()?;
        let source = self.source(input)?;
        // Records are read row by row (each row is its own map: read column by column, a batch
        // would walk every row's map once per column); so are small batches, where working out
        // the tables would cost more than it saves.
        let by_columns = rows >= COLUMN_PATH_ROWS
            && match &source {
                Source::Records(_) => false,
                Source::Dense(_) => self.affine.is_none(),
                Source::Columns(_) | Source::Frame(_) => true,
            };
        let tables = if by_columns { self.tables(&source) } else { Vec::new() };
        Ok(Batch { rows, source, tables, by_columns })
    }

    /// Rows `first_row..` of a prepared batch into `out` (whole rows of features): column by
    /// column where the blocks allow, a bad value's run again through the reference for its
    /// error.
    pub(crate) fn rows_of(&self, batch: &Batch<'_>, first_row: usize, out: &mut [f32]) -> Result<()> {
        if let (Source::Dense(d), Some(affine)) = (&batch.source, &self.affine) {
            return self.dense_affine(d, affine, first_row, out);
        }
        if batch.by_columns && self.columns_into(&batch.source, &batch.tables, first_row, out) {
            Ok(())
        } else {
            self.rows_into(&batch.source, first_row, out)
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

    /// The fast path: rows `first_row..` of dense numeric input through folded affine maps.
    fn dense_affine(
        &self,
        d: &Dense<'_>,
        affine: &[FeatureAffine],
        first_row: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let width = self.width;
        let checked = |chunk: &mut [f32]| -> Result<()> {
            for (r, out_row) in chunk.chunks_exact_mut(width).enumerate() {
                let row = first_row + r;
                for (o, f) in out_row.iter_mut().zip(affine) {
                    let x = d.get(row, f.source);
                    self.number(row, f.source, x)?;
                    let y = if x.is_nan() {
                        match f.missing {
                            Some(fill) => fill,
                            None if self.keep_missing => {
                                *o = f32::NAN;
                                continue;
                            }
                            None => return Err(self.invalid(row, f.source, "missing")),
                        }
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
        let Some(x) = fast else { return checked(out) };
        let mul: Vec<f64> = affine.iter().map(|f| f.mul).collect();
        let add: Vec<f64> = affine.iter().map(|f| f.add).collect();
        let xs = &x[first_row * width..first_row * width + out.len()];
        for (xr, or) in xs.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            for (((o, &v), m), a) in or.iter_mut().zip(xr).zip(&mul).zip(&add) {
                *o = (f64::from(v) * m + a) as f32;
            }
        }
        // NaN (missing, possibly imputed) or ±∞ anywhere, or a fraction in an integer column:
        // redo the run with the checks.
        let mut bad = out.iter().fold(false, |bad, v| bad | !v.is_finite());
        if self.integer.iter().any(|&i| i) {
            bad |= xs.chunks_exact(width).any(|r| {
                r.iter().zip(&self.integer).any(|(v, &int)| int && v.is_finite() && v.fract() != 0.0)
            });
        }
        if bad {
            checked(out)
        } else {
            Ok(())
        }
    }

    fn column_list(&self) -> String {
        let names: Vec<&str> = self.column_names().take(6).collect();
        let more = if self.columns.len() > 6 { ", …" } else { "" };
        format!("{}{more}", names.join(", "))
    }

    /// A number `v` for column `col`, refused when the column is integer and `v` is not.
    #[inline(always)]
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

    #[inline(always)]
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
    #[inline(always)]
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
    #[inline(always)]
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
            (
                strings @ (ColumnValues::Str(_) | ColumnValues::Utf8 { .. } | ColumnValues::Dict { .. }),
                kind,
            ) => match (strings.string(row), kind) {
                (None, _) => Ok(Cell::Missing),
                (Some(s), Kind::Str) => Ok(Cell::Str(s)),
                (Some(s), Kind::Num) => Err(wrong("a number", format!("string {s:?}"))),
            },
            (ColumnValues::F64(v), Kind::Str) if v[row].is_nan() => Ok(Cell::Missing),
            (ColumnValues::F32(v), Kind::Str) if v[row].is_nan() => Ok(Cell::Missing),
            (_, Kind::Str) => Err(wrong("a string", "a number".into())),
        }
    }

    /// The reference path: row by row, every block through its steps on one row's cells. It
    /// reports the earliest bad row's error.
    fn rows_into<'a>(&'a self, source: &Source<'a>, first_row: usize, out: &mut [f32]) -> Result<()> {
        let mut cur: Vec<Cell<'a>> = Vec::new();
        let mut next: Vec<Cell<'a>> = Vec::new();
        for (r, out_row) in out.chunks_exact_mut(self.width).enumerate() {
            let mut offset = 0;
            for block in &self.blocks {
                let out = &mut out_row[offset..offset + block.origins.len()];
                offset += block.origins.len();
                self.block_row(block, source, first_row + r, out, &mut cur, &mut next)?;
            }
        }
        Ok(())
    }

    /// Row `row` of one block into `out` (the block's features), `cur` and `next` as scratch.
    #[inline(always)]
    fn block_row<'a>(
        &'a self,
        block: &'a Block,
        source: &Source<'a>,
        row: usize,
        out: &mut [f32],
        cur: &mut Vec<Cell<'a>>,
        next: &mut Vec<Cell<'a>>,
    ) -> Result<()> {
        cur.clear();
        for &s in &block.sources {
            cur.push(self.cell(source, row, s)?);
        }
        for step in &block.steps {
            self.apply(step, row, cur, next)?;
            std::mem::swap(cur, next);
        }
        for (j, cell) in cur.iter().enumerate() {
            out[j] = self.finish(*cell, row, block.origins[j])?;
        }
        Ok(())
    }

    /// A finished cell as a feature value: a finite number (or NaN for a missing value when
    /// the pipeline keeps them), else an error naming input column `origin`.
    #[inline(always)]
    fn finish(&self, cell: Cell<'_>, row: usize, origin: usize) -> Result<f32> {
        match cell {
            Cell::Num(v) if v.is_finite() => Ok(v as f32),
            Cell::Missing if self.keep_missing => Ok(f32::NAN),
            Cell::Num(v) => Err(self.invalid(row, origin, if v.is_nan() { "NaN" } else { "infinite" })),
            Cell::Missing => Err(self.invalid(row, origin, "missing")),
            Cell::Str(_) => Err(self.invalid(row, origin, "string")),
        }
    }

    fn invalid(&self, row: usize, col: usize, value: &'static str) -> Error {
        Error::InvalidValue { row, column: self.columns[col].0.clone(), value }
    }

    /// Step `step` on column `j`'s value of one row, for every step but the one-hot encoder.
    #[inline(always)]
    fn apply_one<'a>(&'a self, step: &'a Step, row: usize, j: usize, cell: Cell<'a>) -> Result<Cell<'a>> {
        Ok(match step {
            Step::Impute { fill } => match (cell, &fill[j]) {
                (Cell::Missing, Value::Number(n)) => Cell::Num(*n),
                (Cell::Missing, Value::String(s)) => Cell::Str(s),
                (other, _) => other,
            },
            Step::Affine { sub, div } => match cell {
                Cell::Num(v) => Cell::Num((v - sub[j]) / div[j]),
                other => other,
            },
            Step::Scale { mul, add, clip } => match cell {
                Cell::Num(v) => {
                    let y = v * mul[j] + add[j];
                    Cell::Num(match clip {
                        Some((lo, hi)) => y.clamp(*lo, *hi),
                        None => y,
                    })
                }
                other => other,
            },
            Step::Ordinal { cats, unknown, missing, origins } => match (cell, missing) {
                (Cell::Missing, Some(m)) => Cell::Num(*m),
                (Cell::Missing, None) => Cell::Missing,
                _ => match (cats[j].lookup(cell), unknown) {
                    (Some(i), _) => Cell::Num(i as f64),
                    (None, Some(Some(u))) => Cell::Num(*u),
                    (None, Some(None)) => Cell::Missing,
                    (None, None) => {
                        return Err(Error::UnknownCategory {
                            row,
                            column: self.columns[origins[j]].0.clone(),
                            value: describe(cell),
                        })
                    }
                },
            },
            // Its callers hand the one-hot encoder to `one_hot`, never here.
            Step::OneHot { .. } => {
                return Err(Error::manifest("preprocess", "a one-hot encoder in a per-value position"))
            }
        })
    }

    /// The position of `cell`'s category in column `j`'s one-hot group, `None` for all zeros
    /// (the dropped category, or an unknown one under `ignore`).
    #[allow(clippy::too_many_arguments)]
    fn one_hot(
        &self,
        cats: &[Categories],
        drop: &[Option<usize>],
        ignore: bool,
        origins: &[usize],
        row: usize,
        j: usize,
        cell: Cell<'_>,
    ) -> Result<Option<usize>> {
        match (cats[j].lookup(cell), drop[j]) {
            (Some(i), Some(d)) if i == d => Ok(None),
            (Some(i), Some(d)) => Ok(Some(i - usize::from(i > d))),
            (Some(i), None) => Ok(Some(i)),
            (None, _) if ignore => Ok(None),
            (None, _) => Err(Error::UnknownCategory {
                row,
                column: self.columns[origins[j]].0.clone(),
                value: describe(cell),
            }),
        }
    }

    /// Step `step` on every value of one row's block.
    fn apply<'a>(
        &'a self,
        step: &'a Step,
        row: usize,
        cur: &[Cell<'a>],
        next: &mut Vec<Cell<'a>>,
    ) -> Result<()> {
        next.clear();
        match step {
            Step::OneHot { cats, drop, ignore, origins } => {
                for (j, &cell) in cur.iter().enumerate() {
                    let width = cats[j].len - usize::from(drop[j].is_some());
                    let start = next.len();
                    next.extend(std::iter::repeat_n(Cell::Num(0.0), width));
                    if let Some(i) = self.one_hot(cats, drop, *ignore, origins, row, j, cell)? {
                        next[start + i] = Cell::Num(1.0);
                    }
                }
            }
            other => {
                for (j, &cell) in cur.iter().enumerate() {
                    next.push(self.apply_one(other, row, j, cell)?);
                }
            }
        }
        Ok(())
    }
}

/// A batch checked against the signature, with what its call works out once
/// ([`TabularPipeline::prepare`]).
pub(crate) struct Batch<'a> {
    rows: usize,
    source: Source<'a>,
    tables: columns::Tables<'a>,
    /// Whether the column path runs (else the reference).
    by_columns: bool,
}

impl Batch<'_> {
    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
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
    use crate::input::{Frame, Offsets};

    fn spec(steps: Vec<TabularStepSpec>) -> (TabularSpec, Vec<TensorSpec>) {
        let inputs = (0..3)
            .map(|i| TensorSpec { name: format!("x{i}"), dtype: ElementType::F64, shape: vec![-1] })
            .collect();
        let t =
            TransformerSpec { name: "t".into(), columns: vec!["x0".into(), "x1".into(), "x2".into()], steps };
        (TabularSpec { transformers: vec![t], keep_missing: false }, inputs)
    }

    /// With `keep_missing`, a missing value no imputer fills is a NaN feature on every input
    /// path (dense fast and checked, records, columns), and imputed ones are still filled;
    /// without it the same input is refused naming the row and column.
    #[test]
    fn keep_missing_passes_nan_through_every_path() {
        let steps = vec![TabularStepSpec::StandardScaler {
            mean: Some(vec![1.0, 0.0, 0.0]),
            scale: Some(vec![2.0, 1.0, 1.0]),
        }];
        let (mut s, inputs) = spec(steps);
        let refuse = TabularPipeline::compile(&s, &inputs, "t").unwrap();
        s.keep_missing = true;
        let keep = TabularPipeline::compile(&s, &inputs, "t").unwrap();
        let data = [3.0, f64::NAN, 1.0, f64::NAN, 2.0, 5.0];
        let want = |out: &[f32]| {
            assert_eq!(out[0], 1.0);
            assert!(out[1].is_nan() && out[3].is_nan());
            assert_eq!(&out[4..], &[2.0, 5.0]);
        };
        let (dense, _) = keep.transform(&Input::Dense(Dense::f64(&data, 2, 3).unwrap())).unwrap();
        want(&dense);
        let f32_data: Vec<f32> = data.iter().map(|&v| v as f32).collect();
        let (dense32, _) = keep.transform(&Input::Dense(Dense::f32(&f32_data, 2, 3).unwrap())).unwrap();
        want(&dense32);
        let records: Vec<crate::value::Record> = data
            .chunks(3)
            .map(|r| {
                (0..3)
                    .map(|j| (format!("x{j}"), if r[j].is_nan() { Value::Null } else { Value::from(r[j]) }))
                    .collect()
            })
            .collect();
        let (from_records, _) = keep.transform(&Input::Records(&records)).unwrap();
        want(&from_records);
        let cols: Vec<Vec<f64>> = (0..3).map(|j| vec![data[j], data[3 + j]]).collect();
        let frame_cols: Vec<crate::input::FrameColumn<'_>> = cols
            .iter()
            .enumerate()
            .map(|(j, c)| crate::input::FrameColumn {
                name: ["x0", "x1", "x2"][j],
                values: ColumnValues::F64(c),
                missing: None,
            })
            .collect();
        let frame = Frame::new(frame_cols).unwrap();
        let (from_columns, _) = keep.transform(&Input::Frame(&frame)).unwrap();
        want(&from_columns);
        let err = refuse.transform(&Input::Dense(Dense::f64(&data, 2, 3).unwrap())).unwrap_err();
        assert!(err.to_string().contains("x1"), "{err}");
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

    /// A pipeline with every kind of block: numbers imputed and scaled (one column integer),
    /// strings imputed and one-hot encoded, an ordinal encoder then a clipping scaler, and a
    /// one-hot encoder followed by a scaler (not columnwise).
    fn mixed() -> TabularPipeline {
        let num = |name: &str, dtype| TensorSpec { name: name.into(), dtype, shape: vec![-1] };
        let inputs = vec![
            num("a", ElementType::F64),
            num("n", ElementType::I64),
            num("s", ElementType::String),
            num("t", ElementType::String),
            num("u", ElementType::String),
        ];
        let cats = |c: &[&str]| c.iter().map(|&s| Value::from(s)).collect::<Vec<_>>();
        let block = |columns: &[&str], steps| TransformerSpec {
            name: "b".into(),
            columns: columns.iter().map(|&c| c.into()).collect(),
            steps,
        };
        let transformers = vec![
            block(
                &["a", "n"],
                vec![
                    TabularStepSpec::SimpleImputer { fill: vec![Value::from(0.5), Value::from(3.0)] },
                    TabularStepSpec::StandardScaler {
                        mean: Some(vec![1.5, 2.0]),
                        scale: Some(vec![0.3, 7.0]),
                    },
                ],
            ),
            block(
                &["s", "t"],
                vec![
                    TabularStepSpec::SimpleImputer { fill: vec![Value::from("x"), Value::from("q")] },
                    TabularStepSpec::OneHotEncoder {
                        categories: vec![cats(&["x", "y", "z"]), cats(&["p", "q"])],
                        handle_unknown: HandleUnknown::Ignore,
                        drop: Some(vec![None, Some(0)]),
                    },
                ],
            ),
            block(
                &["u"],
                vec![
                    TabularStepSpec::OrdinalEncoder {
                        categories: vec![cats(&["lo", "mid", "hi"])],
                        handle_unknown: HandleUnknown::UseEncodedValue,
                        unknown_value: Some(-1.0),
                        encoded_missing_value: Some(9.0),
                    },
                    TabularStepSpec::MinMaxScaler {
                        scale: vec![0.5],
                        min: vec![0.0],
                        clip: true,
                        feature_range: [0.0, 1.0],
                    },
                ],
            ),
            block(
                &["t"],
                vec![
                    TabularStepSpec::OneHotEncoder {
                        categories: vec![cats(&["p", "q"])],
                        handle_unknown: HandleUnknown::Error,
                        drop: None,
                    },
                    TabularStepSpec::MaxAbsScaler { scale: vec![2.0, 4.0] },
                ],
            ),
        ];
        TabularPipeline::compile(&TabularSpec { transformers, keep_missing: false }, &inputs, "t").unwrap()
    }

    /// The reference path's features (or error) for the same input.
    fn reference(p: &TabularPipeline, input: &Input<'_>) -> Result<Vec<f32>> {
        let rows = input.rows()?;
        let mut out = vec![0f32; rows * p.width];
        p.rows_into(&p.source(input)?, 0, &mut out)?;
        Ok(out)
    }

    proptest::proptest! {
        /// Column by column, from a frame of any column types (strings as a slice, in Arrow's
        /// layout or dictionary-encoded; floats or integers; missing masks), the features are the reference's bit for bit,
        /// and a bad value anywhere gives the reference's error (the earliest bad row).
        #[test]
        fn the_column_path_is_the_reference(
            rows in proptest::collection::vec(
                (
                    proptest::option::of(-1e3f64..1e3),
                    0i64..6,
                    0usize..5,
                    0usize..4,
                    0usize..5,
                    proptest::bool::ANY,
                ),
                0..1400,
            ),
            form in 0u8..3,
            int_as_float in proptest::bool::ANY,
            bad_at in proptest::option::of(0usize..1400),
        ) {
            let p = mixed();
            const S_VALS: [&str; 4] = ["x", "y", "z", "w"];
            const T_VALS: [&str; 3] = ["p", "q", "r"];
            const U_VALS: [&str; 4] = ["lo", "mid", "hi", "max"];
            let (s_vals, t_vals, u_vals) = (&S_VALS[..], &T_VALS[..], &U_VALS[..]);
            let mut a: Vec<f64> = rows.iter().map(|r| r.0.unwrap_or(f64::NAN)).collect();
            let n: Vec<i64> = rows.iter().map(|r| r.1).collect();
            let mut nf: Vec<f64> = n.iter().map(|&v| v as f64).collect();
            let mask: Vec<bool> = rows.iter().map(|r| r.5).collect();
            // Code 4 is missing; t is never missing (the last block refuses a missing t) and
            // "r" only at the bad row.
            let codes = |picked: Vec<usize>| picked.into_iter().map(|c| if c >= 4 { -1 } else { c as i32 }).collect::<Vec<i32>>();
            let s_codes = codes(rows.iter().map(|r| r.2).collect());
            let mut t_codes: Vec<i32> = rows.iter().map(|r| (r.3 % 2) as i32).collect();
            let u_codes = codes(rows.iter().map(|r| r.4).collect());
            if let Some(b) = bad_at.filter(|&b| b < rows.len()) {
                match b % 3 {
                    0 => nf[b] = 2.5,
                    1 => a[b] = f64::INFINITY,
                    _ => t_codes[b] = 2,
                }
            }
            let strings = |codes: &[i32], vals: &[&'static str]| -> Vec<Option<&'static str>> {
                codes.iter().map(|&c| usize::try_from(c).ok().map(|c| vals[c])).collect()
            };
            let (s_str, t_str, u_str) =
                (strings(&s_codes, s_vals), strings(&t_codes, t_vals), strings(&u_codes, u_vals));
            // Arrow's layout: the strings end to end, missing ones empty and marked.
            let arrow = |values: &[Option<&str>]| {
                let mut offsets = vec![0i64];
                let mut data = String::new();
                for v in values {
                    data.push_str(v.unwrap_or_default());
                    offsets.push(data.len() as i64);
                }
                (offsets, data, values.iter().map(Option::is_none).collect::<Vec<bool>>())
            };
            let (s_arrow, t_arrow, u_arrow) = (arrow(&s_str), arrow(&t_str), arrow(&u_str));
            let col = |name: &'static str, values| FrameColumn { name, values, missing: None };
            fn string_col<'a>(
                form: u8,
                name: &'a str,
                keys: &'a [i32],
                values: &'a [&'a str],
                plain: &'a [Option<&'a str>],
                (offsets, data, missing): &'a (Vec<i64>, String, Vec<bool>),
            ) -> FrameColumn<'a> {
                let (values, missing) = match form {
                    0 => (ColumnValues::Dict { keys, values }, None),
                    1 => (ColumnValues::Str(plain), None),
                    _ => (ColumnValues::Utf8 { offsets: Offsets::I64(offsets), data }, Some(missing.as_slice())),
                };
                FrameColumn { name, values, missing }
            }
            let columns = vec![
                FrameColumn { name: "a", values: ColumnValues::F64(&a), missing: Some(&mask) },
                if int_as_float { col("n", ColumnValues::F64(&nf)) } else { col("n", ColumnValues::I64(&n)) },
                string_col(form, "s", &s_codes, s_vals, &s_str, &s_arrow),
                string_col(form, "t", &t_codes, t_vals, &t_str, &t_arrow),
                string_col(form, "u", &u_codes, u_vals, &u_str, &u_arrow),
            ];
            let frame = Frame::new(columns).unwrap();
            let input = Input::Frame(&frame);
            let expected = reference(&p, &input);
            // The column path alone: it succeeds exactly when the reference does.
            let source = p.source(&input).unwrap();
            let mut columns = vec![0f32; rows.len() * p.width];
            let ok = p.columns_into(&source, &p.tables(&source), 0, &mut columns);
            proptest::prop_assert_eq!(ok, expected.is_ok());
            if let Ok(e) = &expected {
                proptest::prop_assert!(e.iter().zip(&columns).all(|(x, y)| x.to_bits() == y.to_bits()));
            }
            let got = p.transform(&input).map(|(f, _)| f);
            match (&expected, &got) {
                (Ok(e), Ok(g)) => {
                    proptest::prop_assert_eq!(e.len(), g.len());
                    for (x, y) in e.iter().zip(g) {
                        proptest::prop_assert_eq!(x.to_bits(), y.to_bits());
                    }
                }
                (Err(e), Err(g)) => proptest::prop_assert_eq!(e.to_string(), g.to_string()),
                _ => proptest::prop_assert!(false, "{expected:?} vs {got:?}"),
            }
        }
    }

    /// The one-load comparison finds what the hash finds: prefixes, trailing NULs, 16 and 17
    /// bytes, the empty string, strings near the end of the data and unknown ones.
    #[test]
    fn short_strings_are_found_as_the_hash_finds_them() {
        let known = ["", "a", "ab", "ab\0", "exactly16bytes!!", "seventeen bytes!!", "é"];
        let cats = Categories::new(&known.map(Value::from), "t").unwrap();
        assert_eq!(cats.short.len(), 6);
        let probes = [known.as_slice(), &["b", "abc", "ab\0\0", "exactly16bytes!?", "e", "a"]].concat();
        let data: String = probes.concat();
        let mut start = 0;
        for p in &probes {
            let span = start..start + p.len();
            start = span.end;
            let by_hash = cats.strings.get(*p).copied();
            assert_eq!(cats.find_in(&data, span), by_hash, "{p:?}");
        }
    }

    #[test]
    fn a_reversed_clipping_range_is_refused() {
        let (s, inputs) = spec(vec![TabularStepSpec::MinMaxScaler {
            scale: vec![1.0; 3],
            min: vec![0.0; 3],
            clip: true,
            feature_range: [1.0, 0.0],
        }]);
        let err = TabularPipeline::compile(&s, &inputs, "t").unwrap_err();
        assert!(err.to_string().contains("feature_range"), "{err}");
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
