//! `ingot::Prediction` → JavaScript: one buffer per call holding every output.
//!
//! Creating JavaScript objects, arrays and external buffers through N-API costs microseconds
//! each, more than a small prediction itself; one buffer costs one call, and `index.ts` makes
//! typed-array views of it. The buffer is the caller's `OutputBuffer` when it is long enough
//! (reused from call to call: a new `ArrayBuffer` of a few KiB costs V8 microseconds), else a
//! new `ArrayBuffer`. The layout, in little-endian 32-bit words:
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

use std::ptr;
use std::time::Duration;

use ingot::{Error, Matrix, OutputLayout, OutputSlices, Prediction, Result, Value};
use napi::bindgen_prelude::{
    ArrayBuffer, Either3, FromNapiValue, Null, ToNapiValue, Uint8Array, Uint8ArraySlice,
};
use napi::{check_status, sys, Env};

use crate::schedule::Schedule;
use crate::tasks::timed;

/// `parts` bits: which sections follow the header.
const SCORES: u32 = 1;
const PROBABILITIES: u32 = 2;
const VALUES: u32 = 4;
const EMBEDDINGS: u32 = 8;
const LABELS: u32 = 16;
/// Words in the header.
const HEADER: usize = 8;

/// The outputs of a call, made on the worker thread and kept as the core returned them; the
/// main thread writes them once, straight into the caller's reusable buffer or an `ArrayBuffer`
/// it creates ([`Packed::into_js`]).
pub struct Packed {
    header: Header,
    outputs: Outputs,
}

/// What the sections are read from.
enum Outputs {
    Prediction(Box<Prediction>),
    Embeddings(Matrix),
}

/// The header words of an output buffer, and the words of the whole buffer.
struct Header {
    words: [u32; HEADER],
    /// 32-bit words of the whole buffer, header included.
    len: usize,
}

impl Header {
    /// The header of `rows` rows of matrices of `cols` columns (scores, probabilities, values,
    /// embeddings; `None`: absent), then label indices when `labels`, computed in `compute`.
    fn new(rows: usize, cols: [Option<usize>; 4], labels: bool, compute: Duration) -> Result<Header> {
        let mut words = [0; HEADER];
        words[0] = word(rows)?;
        let ns = u64::try_from(compute.as_nanos()).unwrap_or(u64::MAX);
        words[6] = ns as u32;
        words[7] = (ns >> 32) as u32;
        let mut len = HEADER;
        for (i, (c, bit)) in cols.iter().zip([SCORES, PROBABILITIES, VALUES, EMBEDDINGS]).enumerate() {
            if let Some(c) = *c {
                words[1] |= bit;
                words[2 + i] = word(c)?;
                len = len.saturating_add(rows.saturating_mul(c));
            }
        }
        if labels {
            words[1] |= LABELS;
            len = len.saturating_add(rows);
        }
        // The buffer's byte length must fit too (checked once here, not when it is written).
        word(len.saturating_mul(4))?;
        Ok(Header { words, len })
    }
}

impl Packed {
    /// A prediction's outputs, and how long the core took to compute them.
    pub(crate) fn prediction(p: Prediction, compute: Duration) -> Result<Packed> {
        Packed::new(compute, p.rows, Outputs::Prediction(Box::new(p)))
    }

    /// The embeddings of `embed`: only the embeddings section.
    pub(crate) fn embeddings(m: Matrix, compute: Duration) -> Result<Packed> {
        Packed::new(compute, m.rows(), Outputs::Embeddings(m))
    }

    fn new(compute: Duration, rows: usize, outputs: Outputs) -> Result<Packed> {
        let (matrices, labels) = outputs.sections();
        let header = Header::new(rows, matrices.map(|m| m.map(Matrix::cols)), labels.is_some(), compute)?;
        Ok(Packed { header, outputs })
    }

    /// The outputs in JavaScript: written into `out` when it is long enough (the caller's
    /// reusable buffer's bytes; `None` comes back), else into a new `ArrayBuffer` of exactly
    /// their size. Either way one pass over the core's output vectors, no intermediate copy.
    pub(crate) fn into_js<'env>(
        self,
        env: &'env Env,
        out: Option<Uint8ArraySlice<'_>>,
    ) -> napi::Result<Option<ArrayBuffer<'env>>> {
        if let Some(mut out) = out {
            // SAFETY: this runs on the main thread, so no JavaScript code runs while the bytes
            // are written; `OutputBuffer` (index.ts) lends them to this call alone.
            if let Some(bytes) = unsafe { out.as_mut() }.get_mut(..self.bytes()) {
                self.fill(bytes);
                return Ok(None);
            }
        }
        let mut buffer = new_buffer(env, self.bytes())?;
        // SAFETY: the buffer is new: no JavaScript code holds it yet, so nothing else reads or
        // writes its bytes while they are filled here.
        self.fill(unsafe { buffer.as_mut() });
        Ok(Some(buffer))
    }

    /// Bytes of the whole layout, header included.
    fn bytes(&self) -> usize {
        self.header.len * 4
    }

    /// Writes the layout at the front of `bytes`, which holds at least [`Packed::bytes`].
    fn fill(&self, mut bytes: &mut [u8]) {
        let (matrices, labels) = self.outputs.sections();
        put(&mut bytes, &self.header.words, u32::to_le_bytes);
        for m in matrices.iter().flatten() {
            put(&mut bytes, m.as_slice(), f32::to_le_bytes);
        }
        put(&mut bytes, labels.unwrap_or_default(), u32::to_le_bytes);
    }
}

impl Outputs {
    /// The matrices in layout order (scores, probabilities, values, embeddings) and the label
    /// indices.
    fn sections(&self) -> ([Option<&Matrix>; 4], Option<&[u32]>) {
        match self {
            Outputs::Prediction(p) => (
                [Some(&p.scores), p.probabilities.as_ref(), p.values.as_ref(), p.embeddings.as_ref()],
                p.labels.as_ref().map(|l| l.indices()),
            ),
            Outputs::Embeddings(m) => ([None, None, None, Some(m)], None),
        }
    }
}

/// Writes `values` little-endian at the front of `bytes` and moves `bytes` past them.
fn put<T: Copy>(bytes: &mut &mut [u8], values: &[T], le: fn(T) -> [u8; 4]) {
    let (head, rest) = std::mem::take(bytes).split_at_mut(values.len() * 4);
    for (chunk, &v) in head.chunks_exact_mut(4).zip(values) {
        chunk.copy_from_slice(&le(v));
    }
    *bytes = rest;
}

/// Runs `predict` with its outputs written straight into `out`, the caller's reusable buffer
/// (header and sections laid out as [`Packed`] writes them, without the core's vectors and
/// their copy), when `out` holds them and is 4-byte aligned; `None` when not, and then nothing
/// ran. `layout` is the model's, `rows` the input's. The time in the header is `predict`'s,
/// also recorded in `schedule`.
pub(crate) fn predict_into(
    out: &mut [u8],
    layout: OutputLayout,
    rows: usize,
    schedule: &Schedule,
    predict: impl FnOnce(OutputSlices<'_>) -> Result<usize>,
) -> Option<Result<()>> {
    let cols = [Some(layout.scores), layout.probabilities, layout.values, layout.embeddings];
    let bytes = output_bytes(layout, rows)?;
    if cfg!(target_endian = "big") {
        return None;
    }
    let words: &mut [u32] = bytemuck::try_cast_slice_mut(out.get_mut(..bytes)?).ok()?;
    let (head, mut rest) = words.split_at_mut(HEADER);
    let [scores, probabilities, values, embeddings] =
        cols.map(|c| c.map(|c| bytemuck::cast_slice_mut(split(&mut rest, rows * c))));
    let slices = OutputSlices {
        scores: scores.unwrap_or_default(),
        probabilities,
        values,
        embeddings,
        labels: layout.labels.then(|| split(&mut rest, rows)),
    };
    let (result, compute) = timed(schedule, rows, || predict(slices));
    Some(result.and_then(|_| {
        head.copy_from_slice(&Header::new(rows, cols, layout.labels, compute)?.words);
        Ok(())
    }))
}

/// Bytes of the output buffer of `rows` rows of a model of `layout` (`None`: too large for
/// JavaScript).
pub(crate) fn output_bytes(layout: OutputLayout, rows: usize) -> Option<usize> {
    let cols = [Some(layout.scores), layout.probabilities, layout.values, layout.embeddings];
    Header::new(rows, cols, layout.labels, Duration::ZERO).ok().map(|h| h.len * 4)
}

/// A new `ArrayBuffer` of `bytes` bytes (zero-filled by V8).
pub(crate) fn new_buffer(env: &Env, bytes: usize) -> napi::Result<ArrayBuffer<'_>> {
    let (mut data, mut value) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: `env` is the current call's environment; N-API writes the new buffer's handle and
    // data pointer into the two out-parameters.
    check_status!(unsafe { sys::napi_create_arraybuffer(env.raw(), bytes, &mut data, &mut value) })?;
    // SAFETY: `value` is the ArrayBuffer N-API just created in this environment.
    unsafe { ArrayBuffer::from_napi_value(env.raw(), value) }
}

/// The first `n` words of `rest`, which moves past them.
fn split<'a>(rest: &mut &'a mut [u32], n: usize) -> &'a mut [u32] {
    let (head, tail) = std::mem::take(rest).split_at_mut(n);
    *rest = tail;
    head
}

/// The bytes `out` refers to now, not when the call that holds it began: a buffer transferred or
/// detached meanwhile has none left.
pub(crate) fn current<'env>(env: &'env Env, out: &mut Uint8Array) -> napi::Result<Uint8ArraySlice<'env>> {
    // SAFETY: `env` is the current call's environment, in which `out`'s reference was made;
    // this gives back the `Uint8Array` it refers to.
    let value = unsafe { <&mut Uint8Array as ToNapiValue>::to_napi_value(env.raw(), out)? };
    // SAFETY: `value` is that `Uint8Array`, a value of this environment.
    unsafe { Uint8ArraySlice::from_napi_value(env.raw(), value) }
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
