//! `ingot::Prediction` → JavaScript: one `ArrayBuffer` per call holding every output.
//!
//! Creating JavaScript objects, arrays and external buffers through N-API costs microseconds
//! each, more than a small prediction itself; one copied buffer costs one call, and `index.ts`
//! makes typed-array views of it. The layout, in little-endian 32-bit words:
//!
//! ```text
//! rows, parts, cols[scores], cols[probabilities], cols[values], cols[embeddings],
//! compute_ns (low word), compute_ns (high word)
//! f32 scores[rows × cols]          (when parts & SCORES)
//! f32 probabilities[rows × cols]   (when parts & PROBABILITIES)
//! f32 values[rows × cols]          (when parts & VALUES)
//! f32 embeddings[rows × cols]      (when parts & EMBEDDINGS)
//! u32 label_indices[rows]          (when parts & LABELS)
//! ```

use std::time::Duration;

use ingot::{Error, Matrix, Prediction, Result, Value};
use napi::bindgen_prelude::{ArrayBuffer, Either3, Null};
use napi::Env;

/// `parts` bits: which sections follow the header.
const SCORES: u32 = 1;
const PROBABILITIES: u32 = 2;
const VALUES: u32 = 4;
const EMBEDDINGS: u32 = 8;
const LABELS: u32 = 16;
/// Words in the header.
const HEADER: usize = 8;

/// The outputs of a call in the layout above, made on the worker thread; the main thread copies
/// them into an `ArrayBuffer` ([`Packed::into_js`]).
pub struct Packed(Vec<u8>);

impl Packed {
    /// A prediction's outputs, and how long the core took to compute them.
    pub(crate) fn prediction(p: Prediction, compute: Duration) -> Result<Packed> {
        Packed::new(
            compute,
            p.rows,
            [Some(&p.scores), p.probabilities.as_ref(), p.values.as_ref(), p.embeddings.as_ref()],
            p.labels.as_ref().map(|l| l.indices()),
        )
    }

    /// The embeddings of `embed`: only the embeddings section.
    pub(crate) fn embeddings(m: Matrix, compute: Duration) -> Result<Packed> {
        Packed::new(compute, m.rows(), [None, None, None, Some(&m)], None)
    }

    fn new(
        compute: Duration,
        rows: usize,
        matrices: [Option<&Matrix>; 4],
        labels: Option<&[u32]>,
    ) -> Result<Packed> {
        let mut header = [0u32; HEADER];
        header[0] = word(rows)?;
        let ns = u64::try_from(compute.as_nanos()).unwrap_or(u64::MAX);
        header[6] = ns as u32;
        header[7] = (ns >> 32) as u32;
        for (i, (m, bit)) in matrices.iter().zip([SCORES, PROBABILITIES, VALUES, EMBEDDINGS]).enumerate() {
            if let Some(m) = m {
                header[1] |= bit;
                header[2 + i] = word(m.cols())?;
            }
        }
        if labels.is_some() {
            header[1] |= LABELS;
        }
        let words = HEADER
            + matrices.iter().flatten().map(|m| m.as_slice().len()).sum::<usize>()
            + labels.map_or(0, <[u32]>::len);
        let mut out = vec![0u8; words * 4];
        let mut chunks = out.chunks_exact_mut(4);
        // `values` leads the zip: at its end the zip stops without taking a chunk.
        let mut put = |values: &mut dyn Iterator<Item = [u8; 4]>| {
            values.zip(chunks.by_ref()).for_each(|(bytes, chunk)| chunk.copy_from_slice(&bytes));
        };
        put(&mut header.iter().map(|w| w.to_le_bytes()));
        for m in matrices.iter().flatten() {
            put(&mut m.as_slice().iter().map(|v| v.to_le_bytes()));
        }
        put(&mut labels.unwrap_or_default().iter().map(|l| l.to_le_bytes()));
        Ok(Packed(out))
    }

    /// The outputs in a new `ArrayBuffer` that JavaScript owns.
    pub(crate) fn into_js<'env>(self, env: &'env Env) -> napi::Result<ArrayBuffer<'env>> {
        ArrayBuffer::copy_from(env, &self.0)
    }
}

/// A count as a 32-bit word.
fn word(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::usage(format!("an output of {n} rows or columns does not fit a JavaScript typed array"))
    })
}

/// A label, a category: a number, a string or null (missing).
pub(crate) type JsValueOf = Either3<f64, String, Null>;

/// A value as JavaScript holds it.
pub(crate) fn js_value(v: &Value) -> JsValueOf {
    match v {
        Value::Number(n) => Either3::A(*n),
        Value::String(s) => Either3::B(s.clone()),
        Value::Null => Either3::C(Null),
    }
}
