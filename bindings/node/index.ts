/**
 * ingot-ml: run `.ingot` models (preprocessing, model and post-processing in one file) from
 * Node.js.
 *
 * ```js
 * const { Model } = require('ingot-ml')
 * const model = await Model.load('model.ingot')
 * const p = await model.predict([{ age: 42, color: 'red' }])
 * p.labels        // [1]  (the training labels' type)
 * p.probabilities // { data: Float32Array [0.2, 0.8], shape: [1, 2] }
 * ```
 *
 * Every computation runs in the Rust core (the native addon, `native.js`) on the libuv thread
 * pool; this file only turns records into typed columns and wraps the results.
 *
 * @packageDocumentation
 */

import * as native from './native'

/** A row-major float32 matrix: `data[r * shape[1] + c]` is row `r`, column `c`. */
export interface Tensor {
  readonly data: Float32Array
  readonly shape: [number, number]
}

/** Options of {@link Model.load} and {@link Model.loadSync}. */
export type LoadOptions = native.LoadOptions

/**
 * One cell of a record: a number (`NaN` is missing), a string, a boolean (0 or 1), a BigInt
 * within 64 bits, or `null` (missing). A field that is `undefined` is absent: the call fails
 * naming the row.
 */
export type Cell = number | string | boolean | bigint | null | undefined

/** One row of tabular input: column name → cell. Fields the model does not use are ignored. */
export type Row = { readonly [column: string]: Cell }

/** A dense matrix whose columns follow the signature, read in place (no copy). */
export interface DenseInput {
  readonly data: Float32Array | Float64Array
  readonly shape: readonly [number, number]
}

/** What {@link Model.predict} takes: records, strings (text models) or a dense matrix. */
export type PredictInput = readonly Row[] | readonly string[] | DenseInput

/** A class label as trained: a number or a string. */
export type Label = number | string | null

/** The `code` of every error Ingot raises; the message names the row and column. */
export type ErrorCode =
  | 'ERR_INGOT_FORMAT'
  | 'ERR_INGOT_VERSION'
  | 'ERR_INGOT_MODEL'
  | 'ERR_INGOT_INPUT'
  | 'ERR_INGOT_USAGE'
  | 'ERR_INGOT_UNSUPPORTED'
  | 'ERR_INGOT_SIGNATURE'
  | 'ERR_INGOT_IO'
  | 'ERR_INGOT_BACKEND'

/** An error from Ingot: `code` says what kind, `row` (input errors) which row of the call. */
export interface IngotError extends Error {
  readonly code: ErrorCode
  readonly row?: number
}

/** Whether `e` is an error Ingot raised. */
export function isIngotError(e: unknown): e is IngotError {
  const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith('ERR_INGOT')
}

/** One input or output of the signature. */
export interface TensorSpec {
  readonly name: string
  readonly dtype: 'f64' | 'f32' | 'f16' | 'i64' | 'i32' | 'u8' | 'string'
  readonly shape: readonly number[]
}

/** What the model takes and gives (the manifest's `signature`). */
export interface Signature {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  readonly request_forms: readonly string[]
}

/** The model card (the manifest's `model`): name, version and what else the producer wrote. */
export interface Metadata {
  readonly name: string
  readonly version: string
  readonly description?: string
  readonly created?: string
  readonly license?: string
  readonly authors?: readonly string[]
  readonly tags?: readonly string[]
  readonly metrics?: { readonly [name: string]: number }
  readonly [field: string]: unknown
}

/** Options of one call ({@link Model.predict}, {@link Model.embed} and their `…Sync` forms). */
export interface CallOptions {
  /**
   * Where the outputs go: a buffer reused from call to call instead of a new one per call. The
   * result's arrays are views into it, valid until the next call given the same buffer.
   */
  readonly out?: OutputBuffer
}

/**
 * A reusable place for the outputs of calls. Without one, every call's outputs come in a new
 * `ArrayBuffer`, which V8 allocates, zero-fills and tracks: about 2 µs for a few KiB, a tenth of
 * a 1 000-row tabular call. Given as `{ out }`, the buffer is written in place and grows (once)
 * to the largest call's outputs.
 *
 * The arrays of the returned {@link Prediction} or {@link Tensor} are views into the buffer: the
 * next call given the same buffer overwrites them, so read or copy them first. One call at a
 * time may write into a buffer: a second call given it before the first settles throws
 * `ERR_INGOT_USAGE` (give concurrent calls a buffer each).
 *
 * ```js
 * const out = new OutputBuffer()
 * for (const batch of batches) {
 *   const p = model.predictSync(batch, { out })
 *   total += p.probabilities.data[1] // read before the next call with `out`
 * }
 * ```
 */
export class OutputBuffer {
  #bytes: Uint8Array
  #busy = false
  /** The views of the last call's outputs, reused while their layout does not change. */
  #sections?: Sections

  /** A buffer of `byteLength` bytes to start with (default 0: the first call sizes it). */
  constructor(byteLength = 0) {
    this.#bytes = new Uint8Array(byteLength)
  }

  /** Bytes it holds now. */
  get byteLength(): number {
    return this.#bytes.byteLength
  }

  /** Whether a call that writes into it has not settled yet. */
  get busy(): boolean {
    return this.#busy
  }

  /** @internal The bytes a call writes into, marked in use until {@link _release}. */
  _lend(): Uint8Array {
    if (this.#busy) {
      throw usageError('OutputBuffer: a call writing into this buffer has not settled yet; give each concurrent call its own buffer')
    }
    this.#busy = true
    return this.#bytes
  }

  /** @internal Marks the buffer free again (the call settled). */
  _release(): void {
    this.#busy = false
  }

  /**
   * @internal The views of a call's outputs: in the buffer itself, or in `fresh` (kept from now
   * on) when they did not fit. A call whose outputs have the last call's layout gets the same
   * view objects.
   */
  _sections(fresh: ArrayBuffer | null): Sections {
    if (fresh) {
      this.#bytes = new Uint8Array(fresh)
      this.#sections = undefined
    }
    const last = this.#sections
    if (last && sameLayout(last)) return last
    return (this.#sections = sections(this.#bytes.buffer as ArrayBuffer))
  }
}

/** A native result: a new buffer of outputs, or `null` when they went into the lent bytes. */
type NativeResult = ArrayBuffer | null

/**
 * The outputs of `call`, a native call given `out`'s bytes (or `null`): `out` is lent to the
 * call alone and free again once it returns or throws.
 */
function written(out: OutputBuffer | undefined, call: (bytes: Uint8Array | null) => NativeResult): Sections {
  const bytes = lend(out)
  try {
    return outputs(out, call(bytes))
  } finally {
    out?._release()
  }
}

/**
 * `wrap` of the outputs of `call`, which may return a promise (a call on the pool) or its
 * outputs (a call that ran in place): {@link written}, `out` free once it settles. A call in
 * place is not awaited (each await costs a turn of the microtask queue).
 */
async function writtenAsync<T>(
  out: OutputBuffer | undefined,
  call: (bytes: Uint8Array | null) => Promise<NativeResult> | NativeResult,
  wrap: (s: Sections) => T,
): Promise<T> {
  const bytes = lend(out)
  try {
    const result = call(bytes)
    return wrap(outputs(out, result instanceof Promise ? await result : result))
  } finally {
    out?._release()
  }
}

/** The bytes of `out` for a native call (`null`: none), checking it is an {@link OutputBuffer}. */
function lend(out: OutputBuffer | undefined): Uint8Array | null {
  if (out === undefined) return null
  if (!(out instanceof OutputBuffer)) throw usageError('options.out must be an OutputBuffer')
  return out._lend()
}

/** The views of a native call's outputs: in `result`, or in `out`'s buffer when they went there. */
function outputs(out: OutputBuffer | undefined, result: NativeResult): Sections {
  if (out) return out._sections(result)
  if (result === null) throw new Error('ingot-ml: the native addon returned no outputs')
  return sections(result)
}

/** An {@link IngotError} with code `ERR_INGOT_USAGE`, raised by this file. */
function usageError(message: string): IngotError {
  return Object.assign(new Error(message), { code: 'ERR_INGOT_USAGE' as const })
}

/** Words in the header of the native addon's output buffer (layout: src/output.rs). */
const HEADER = 8
/** Header words that say the layout: rows, parts and the four sections' columns. */
const LAYOUT_WORDS = 6
/** The header's `parts` bit of the label indices. */
const LABELS = 16

/** Views of the sections of one output buffer (layout: src/output.rs). */
interface Sections {
  /** The buffer's header words. */
  readonly header: Uint32Array
  /** The header's layout words when the views were made. */
  readonly layout: readonly number[]
  readonly rows: number
  /** Scores, probabilities, values and embeddings, each when present. */
  readonly tensors: readonly (Tensor | undefined)[]
  readonly labelIndices?: Uint32Array
}

/** Views of every section of `buffer`. */
function sections(buffer: ArrayBuffer): Sections {
  const header = new Uint32Array(buffer, 0, HEADER)
  const [rows, parts] = header
  let offset = HEADER * 4
  const tensors = [0, 1, 2, 3].map((part) => {
    if ((parts & (1 << part)) === 0) return undefined
    const cols = header[2 + part]
    const data = new Float32Array(buffer, offset, rows * cols)
    offset += data.byteLength
    return { data, shape: [rows, cols] as [number, number] }
  })
  const labelIndices = parts & LABELS ? new Uint32Array(buffer, offset, rows) : undefined
  return { header, layout: Array.from(header.subarray(0, LAYOUT_WORDS)), rows, tensors, labelIndices }
}

/** Whether the header of `s`'s buffer still says the layout its views were made for. */
function sameLayout(s: Sections): boolean {
  const { header, layout } = s
  if (header.length !== HEADER) return false
  for (let i = 0; i < LAYOUT_WORDS; i++) {
    if (header[i] !== layout[i]) return false
  }
  return true
}

/** Microseconds the core spent, from a header. */
function computeMicros(header: Uint32Array): number {
  return (header[6] + header[7] * 2 ** 32) / 1000
}

/** The outputs of one call. Matrices are row-major `Float32Array`s with their shape. */
export class Prediction {
  /** Number of rows. */
  readonly rows: number
  /** The graph's raw output, `[rows, outputs]`. */
  readonly scores: Tensor
  /** Class probabilities, `[rows, classes]` in {@link classes} order (classifiers). */
  readonly probabilities?: Tensor
  /** Index into {@link classes} of each row's label (classifiers). */
  readonly labelIndices?: Uint32Array
  /** The class labels as trained (classifiers). */
  readonly classes?: readonly Label[]
  /** Regression values, `[rows, targets]` (regressors). */
  readonly values?: Tensor
  /** Regression target names, one per column of {@link values}. */
  readonly targets?: readonly string[]
  /** Embeddings, `[rows, dim]` (text encoders). */
  readonly embeddings?: Tensor
  /** Microseconds the core spent computing this prediction (not reading the input, not the hop). */
  readonly computeMicros: number
  #labels?: Label[]

  /** @internal */
  constructor(s: Sections, model: Model) {
    const [scores, probabilities, values, embeddings] = s.tensors
    this.rows = s.rows
    this.computeMicros = computeMicros(s.header)
    this.scores = scores ?? { data: new Float32Array(0), shape: [s.rows, 0] }
    if (probabilities) this.probabilities = probabilities
    if (values) {
      this.values = values
      this.targets = model.targets ?? undefined
    }
    if (embeddings) this.embeddings = embeddings
    if (s.labelIndices) {
      this.labelIndices = s.labelIndices
      this.classes = model.classes ?? undefined
    }
  }

  /** Each row's class label, of the training labels' type (classifiers); made on first use. */
  get labels(): Label[] | undefined {
    const { labelIndices, classes } = this
    if (!labelIndices || !classes) return undefined
    if (!this.#labels) {
      const labels = new Array<Label>(labelIndices.length)
      for (let i = 0; i < labelIndices.length; i++) labels[i] = classes[labelIndices[i]]
      this.#labels = labels
    }
    return this.#labels
  }
}

/** A loaded `.ingot` model; any number of calls may run on it at once. */
export class Model {
  readonly #native: native.NativeModel
  readonly #manifest: { readonly model: Metadata; readonly signature: Signature }
  /** The signature's inputs that records are read into, with whether each holds strings. */
  readonly #columns: ReadonlyArray<{ readonly name: string; readonly strings: boolean }>
  /** Model name. */
  readonly name: string
  /** Model version (semver). */
  readonly version: string
  /** What the model predicts. */
  readonly task: 'classifier' | 'regressor' | 'embedding' | 'scores'
  /** The class labels as trained, or `null`. */
  readonly classes: readonly Label[] | null
  /** Regression target names, or `null`. */
  readonly targets: readonly string[] | null

  private constructor(m: native.NativeModel) {
    this.#native = m
    this.#manifest = JSON.parse(m.manifestJson)
    this.#columns = this.#manifest.signature.inputs.map((i) => ({ name: i.name, strings: i.dtype === 'string' }))
    this.name = m.name
    this.version = m.version
    this.task = m.task
    this.classes = m.classes
    this.targets = m.targets
  }

  /**
   * Loads an `.ingot` file on the thread pool: memory-mapped, every structural check and the
   * checksum (unless `verifyChecksum: false`).
   */
  static async load(path: string, options?: LoadOptions): Promise<Model> {
    return new Model(await native.NativeModel.load(path, options))
  }

  /** {@link load} on the calling thread. */
  static loadSync(path: string, options?: LoadOptions): Model {
    return new Model(native.NativeModel.loadSync(path, options))
  }

  /**
   * Predicts on the libuv thread pool; the event loop keeps turning. A call that this model's
   * past calls of the same size say takes less time than the hop to the pool and back (at least
   * 50 µs, at most 100 µs; or `inlineMicros`) runs in place instead. Typed arrays are read in
   * place: do not write to or transfer them until the promise settles. With `options.out`, the
   * outputs are written into that {@link OutputBuffer}.
   */
  predict(input: PredictInput, options?: CallOptions): Promise<Prediction> {
    const m = this.#native
    return writtenAsync(
      options?.out,
      (bytes) => {
        if (isDense(input)) return m.predictDense(input.data, ...dims(input.shape), bytes)
        const columns = this.#typedColumns(input)
        return columns ? m.predictColumns(columns[0], columns[1], bytes) : m.predict(input, bytes)
      },
      (outputs) => new Prediction(outputs, this),
    )
  }

  /** {@link predict} on the calling thread (for small inputs where a thread hop costs more). */
  predictSync(input: PredictInput, options?: CallOptions): Prediction {
    const m = this.#native
    const outputs = written(options?.out, (bytes) => {
      if (isDense(input)) return m.predictDenseSync(input.data, ...dims(input.shape), bytes)
      const columns = this.#typedColumns(input)
      return columns ? m.predictColumnsSync(columns[0], columns[1], bytes) : m.predictSync(input, bytes)
    })
    return new Prediction(outputs, this)
  }

  /**
   * The embedding of each string, `[texts.length, dim]`, on the thread pool (text models); with
   * `options.out`, written into that {@link OutputBuffer}.
   */
  embed(texts: readonly string[], options?: CallOptions): Promise<Tensor> {
    return writtenAsync(options?.out, (bytes) => this.#native.embed(texts as string[], bytes), embeddings)
  }

  /** {@link embed} on the calling thread. */
  embedSync(texts: readonly string[], options?: CallOptions): Tensor {
    return embeddings(written(options?.out, (bytes) => this.#native.embedSync(texts as string[], bytes)))
  }

  /** The model card: name, version, description, metrics, … */
  get metadata(): Metadata {
    return this.#manifest.model
  }

  /** The inputs and outputs. */
  get signature(): Signature {
    return this.#manifest.signature
  }

  /** Input column names, in signature order (a dense input's column order). */
  get inputNames(): string[] {
    return this.#columns.map((c) => c.name)
  }

  /** Columns a dense input must have (0 for text models). */
  get inputWidth(): number {
    return this.#native.inputWidth
  }

  /** The device the graph runs on: `cpu` or `cuda:N` ({@link LoadOptions}' `device`). */
  get device(): string {
    return this.#native.device
  }

  /** The kernels: `ingot` (Ingot's fused CPU kernels) or `candle` (candle's ops, on a GPU or with `kernels: 'candle'`). */
  get kernels(): 'ingot' | 'candle' {
    return this.#native.kernels
  }

  /** Most threads one call uses, the caller included. */
  get threads(): number {
    return this.#native.threads
  }

  /** Size of the file in bytes. */
  get fileSize(): number {
    return this.#native.fileSize
  }

  /** `name@version`. */
  toString(): string {
    return `${this.name}@${this.version}`
  }

  /**
   * Records as typed columns, when every row is an object and every field has its column's
   * type (numbers, booleans and nulls; strings and nulls): a `Float64Array` per numeric column
   * (NaN for missing), dictionary codes per string column. Anything else (`undefined` if the
   * input is not such records) goes to the core as it is, which names the offending row.
   */
  #typedColumns(input: PredictInput): [string[], Array<Float64Array | { codes: Int32Array; values: string[] }>] | undefined {
    if (!Array.isArray(input) || input.length === 0 || typeof input[0] !== 'object' || this.task === 'embedding') {
      return undefined
    }
    const rows = input as readonly Row[]
    const n = rows.length
    for (let r = 0; r < n; r++) {
      const row = rows[r]
      if (row === null || typeof row !== 'object' || Array.isArray(row)) return undefined
    }
    const names: string[] = []
    const columns: Array<Float64Array | { codes: Int32Array; values: string[] }> = []
    for (const { name, strings } of this.#columns) {
      if (strings) {
        const codes = new Int32Array(n)
        const values: string[] = []
        const seen = new Map<string, number>()
        for (let r = 0; r < n; r++) {
          const v = rows[r][name]
          if (typeof v === 'string') {
            let code = seen.get(v)
            if (code === undefined) {
              code = values.length
              seen.set(v, code)
              values.push(v)
            }
            codes[r] = code
          } else if (v === null) {
            codes[r] = -1
          } else {
            return undefined
          }
        }
        columns.push({ codes, values })
      } else {
        const data = new Float64Array(n)
        for (let r = 0; r < n; r++) {
          const v = rows[r][name]
          if (typeof v === 'number') data[r] = v
          else if (v === null) data[r] = NaN
          else if (typeof v === 'boolean') data[r] = v ? 1 : 0
          else return undefined
        }
        columns.push(data)
      }
      names.push(name)
    }
    return [names, columns]
  }
}

/** Whether `input` is an object with a `data` field (a dense input, or a malformed one). */
function isDense(input: PredictInput): input is DenseInput {
  return typeof input === 'object' && input !== null && !Array.isArray(input) && 'data' in input
}

/** Something the native addon refuses as a shape (it says what a shape must be). */
const NOT_A_SHAPE: readonly [number, number] = [-1, -1]

/** A dense input's rows and columns for the native addon, which checks them. */
function dims(shape: unknown): readonly [unknown, unknown] {
  return Array.isArray(shape) && shape.length === 2 ? (shape as [unknown, unknown]) : NOT_A_SHAPE
}

/** The embeddings section of a call's outputs. */
function embeddings(s: Sections): Tensor {
  return s.tensors[3] ?? { data: new Float32Array(0), shape: [s.rows, 0] }
}

/** The kernels' instruction set in this process: `scalar`, `avx2`, `avx512`, `avx512-vnni`, … */
export function isaLevel(): string {
  return native.isaLevel()
}

/** Threads of Ingot's pool, the calling thread included. */
export function poolThreads(): number {
  return native.poolThreads()
}
