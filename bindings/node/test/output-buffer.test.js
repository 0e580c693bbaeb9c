'use strict'
// `{ out: OutputBuffer }`: the same numbers as a call without it, written into one reused
// buffer (by the core itself, or copied there); the same view objects while the layout does not
// change; one call at a time per buffer; a failed call leaves the buffer as it was.

const assert = require('node:assert/strict')
const { test } = require('node:test')
const { Model, OutputBuffer } = require('..')
const { bundle, minilm, expected } = require('./helpers')

/** The breast-cancer model and its 40 held-out rows as a float64 matrix. */
async function breastCancer() {
  const model = await Model.load(bundle('breast_cancer_logreg'))
  const { dense } = expected('breast_cancer_logreg')
  return { model, input: { data: Float64Array.from(dense.flat()), shape: [dense.length, 30] } }
}

/** Asserts two predictions hold the same rows, labels and numbers, bit for bit. */
function assertSamePrediction(got, want) {
  assert.equal(got.rows, want.rows)
  assert.deepEqual(got.labels, want.labels)
  assert.deepEqual(got.labelIndices, want.labelIndices)
  assert.deepEqual(got.scores, want.scores)
  assert.deepEqual(got.probabilities, want.probabilities)
}

test('predictions written into an OutputBuffer equal those in a new buffer, and reuse it', async () => {
  const { model, input } = await breastCancer()
  const out = new OutputBuffer()
  assert.equal(out.byteLength, 0)
  const want = model.predictSync(input)
  const first = model.predictSync(input, { out })
  assertSamePrediction(first, want)
  // The first call sized the buffer; the next calls of that size or smaller write into it.
  const size = out.byteLength
  assert.equal(size, want.probabilities.data.buffer.byteLength)
  const again = model.predictSync(input, { out })
  assert.equal(again.probabilities.data.buffer, first.probabilities.data.buffer)
  assertSamePrediction(again, want)
  const small = { data: input.data.subarray(0, 3 * 30), shape: [3, 30] }
  const fewer = await model.predict(small, { out })
  assert.equal(out.byteLength, size)
  assert.equal(fewer.probabilities.data.buffer, first.probabilities.data.buffer)
  assertSamePrediction(fewer, model.predictSync(small))
  // The views of an earlier result now show the later call's outputs: the documented contract.
  assert.deepEqual(first.probabilities.data.subarray(0, 6), fewer.probabilities.data)
  assert.equal(out.busy, false)
})

test('calls with the same layout get the same views, holding each call\'s own outputs', async () => {
  const { model, input } = await breastCancer()
  const other = { data: input.data.map((v, i) => (i % 7 === 0 ? v * 1.5 : v)), shape: input.shape }
  const out = new OutputBuffer()
  const first = model.predictSync(input, { out })
  assertSamePrediction(first, model.predictSync(input))
  const second = model.predictSync(other, { out })
  assert.equal(second.probabilities, first.probabilities)
  assert.equal(second.labelIndices, first.labelIndices)
  assertSamePrediction(second, model.predictSync(other))
  const third = await model.predict(input, { out })
  assert.equal(third.scores, first.scores)
  assertSamePrediction(third, model.predictSync(input))
  // Another row count is another layout: new views over the same bytes.
  const fewer = model.predictSync({ data: input.data.subarray(0, 30), shape: [1, 30] }, { out })
  assert.notEqual(fewer.probabilities, first.probabilities)
  assert.equal(fewer.probabilities.data.buffer, first.probabilities.data.buffer)
})

test('regression values and text predictions written into an OutputBuffer are bit-identical', async () => {
  const diabetes = await Model.load(bundle('diabetes_ridge'))
  const { records } = expected('diabetes_ridge')
  const out = new OutputBuffer()
  const want = diabetes.predictSync(records)
  const got = diabetes.predictSync(records, { out })
  assert.deepEqual(got.values, want.values)
  assert.deepEqual(got.scores, want.scores)
  const text = await Model.load(minilm())
  const texts = ['A man is playing a guitar.', '', '机器学习 🙂']
  const embedded = text.predictSync(texts, { out })
  assert.deepEqual(embedded.embeddings, text.predictSync(texts).embeddings)
  assert.deepEqual(embedded.scores, text.predictSync(texts).scores)
})

test('a buffer too small for a call grows, async and sync, records and columns', async () => {
  const { model, input } = await breastCancer()
  const records = expected('breast_cancer_logreg').records
  const out = new OutputBuffer(16)
  const viaPool = await model.predict(input, { out })
  assert.ok(out.byteLength > 16)
  assertSamePrediction(viaPool, model.predictSync(input))
  assertSamePrediction(model.predictSync(records, { out }), model.predictSync(records))
  assertSamePrediction(await model.predict(records, { out }), model.predictSync(records))
})

test('one call at a time per buffer; each concurrent call with its own buffer is independent', async () => {
  const { model, input } = await breastCancer()
  const out = new OutputBuffer()
  const pending = model.predict(input, { out })
  assert.equal(out.busy, true)
  assert.throws(() => model.predictSync(input, { out }), { code: 'ERR_INGOT_USAGE' })
  await assert.rejects(model.predict(input, { out }), { code: 'ERR_INGOT_USAGE' })
  assertSamePrediction(await pending, model.predictSync(input))
  assert.equal(out.busy, false)

  const halves = [0, 20].map((r) => ({ data: input.data.subarray(r * 30, (r + 20) * 30), shape: [20, 30] }))
  const outs = halves.map(() => new OutputBuffer())
  const got = await Promise.all(halves.map((h, i) => model.predict(h, { out: outs[i] })))
  got.forEach((p, i) => assertSamePrediction(p, model.predictSync(halves[i])))
})

test('a failed call leaves the buffer as it was and free; out must be an OutputBuffer', async () => {
  const { model, input } = await breastCancer()
  const out = new OutputBuffer()
  const p = model.predictSync(input, { out })
  const before = Uint8Array.from(new Uint8Array(p.probabilities.data.buffer))
  const nan = Float64Array.from(input.data)
  nan[5] = NaN
  assert.throws(() => model.predictSync({ data: nan, shape: input.shape }, { out }), { code: 'ERR_INGOT_INPUT' })
  await assert.rejects(model.predict({ data: nan, shape: input.shape }, { out }), { code: 'ERR_INGOT_INPUT' })
  await assert.rejects(model.predict({ data: input.data, shape: [3, 30] }, { out }), { code: 'ERR_INGOT_INPUT' })
  assert.deepEqual(new Uint8Array(p.probabilities.data.buffer), before)
  assert.equal(out.busy, false)
  for (const bad of [new Uint8Array(64), new ArrayBuffer(64), {}]) {
    assert.throws(() => model.predictSync(input, { out: bad }), { code: 'ERR_INGOT_USAGE' })
  }
})

test('a buffer detached while a pool call runs gets the outputs in a new buffer', async () => {
  const model = await Model.load(bundle('breast_cancer_logreg'), { inlineMicros: 0 })
  const { dense } = expected('breast_cancer_logreg')
  const input = { data: Float64Array.from(dense.flat()), shape: [dense.length, 30] }
  const out = new OutputBuffer()
  const first = model.predictSync(input, { out })
  const pending = model.predict(input, { out })
  const moved = structuredClone(first.probabilities.data.buffer, { transfer: [first.probabilities.data.buffer] })
  assert.equal(first.probabilities.data.length, 0)
  const p = await pending
  assert.notEqual(p.probabilities.data.buffer, moved)
  assertSamePrediction(p, model.predictSync(input))
  assert.equal(out.byteLength, moved.byteLength)
})

test('MiniLM embeddings written into an OutputBuffer are bit-identical', async () => {
  const model = await Model.load(minilm())
  const texts = ['A man is playing a guitar.', '', '机器学习 🙂']
  const out = new OutputBuffer()
  const want = model.embedSync(texts)
  assert.deepEqual(await model.embed(texts, { out }), want)
  const again = model.embedSync(texts, { out })
  assert.deepEqual(again, want)
  assert.equal(again.data.buffer.byteLength, out.byteLength)
})
