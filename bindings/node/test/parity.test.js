'use strict'
// The same numbers as the Rust CLI (bit for bit) and as scikit-learn / sentence-transformers
// (within float32 rounding) for the same bundles and rows.

const assert = require('node:assert/strict')
const { test } = require('node:test')
const { Model } = require('..')
const { bundle, minilm, expected, cliRows, row } = require('./helpers')

/** Asserts that the prediction's labels and probabilities are the CLI's, bit for bit. */
function assertSameAsCli(p, rows, classes) {
  assert.equal(p.rows, rows.length)
  rows.forEach((cli, r) => {
    assert.deepEqual(p.labels[r], cli.label, `row ${r} label`)
    const want = classes.map((c) => Math.fround(cli.probabilities[String(c)]))
    assert.deepEqual(row(p.probabilities, r), want, `row ${r} probabilities`)
  })
}

test('breast cancer: records and dense matrices give the CLI\'s answers', async () => {
  const path = bundle('breast_cancer_logreg')
  const model = await Model.load(path)
  const { records, dense, probabilities } = expected('breast_cancer_logreg')
  const cli = cliRows(path, records)
  assertSameAsCli(await model.predict(records), cli, model.classes)
  const f64 = { data: Float64Array.from(dense.flat()), shape: [dense.length, dense[0].length] }
  assertSameAsCli(await model.predict(f64), cli, model.classes)
  assertSameAsCli(model.predictSync(f64), cli, model.classes)
  // scikit-learn's float64 probabilities, within float32 rounding of the pipeline.
  const p = await model.predict(records)
  probabilities.forEach((want, r) => want.forEach((w, c) => {
    assert.ok(Math.abs(row(p.probabilities, r)[c] - w) <= 1e-5 * w + 1e-6, `row ${r} class ${c}`)
  }))
  assert.deepEqual(p.labels, expected('breast_cancer_logreg').labels)
})

test('a float32 matrix is read as float32, like the CLI\'s dense requests', async () => {
  const model = await Model.load(bundle('breast_cancer_logreg'))
  const { dense } = expected('breast_cancer_logreg')
  const f32 = { data: Float32Array.from(dense.flat()), shape: [dense.length, 30] }
  const rounded = dense.map((r) => Object.fromEntries(r.map((v, c) => [model.inputNames[c], Math.fround(v)])))
  const a = await model.predict(f32)
  const b = await model.predict(rounded)
  assert.deepEqual(a.probabilities.data, b.probabilities.data)
})

test('mixed table with NaN, nulls and unseen categories: the CLI\'s answers', async () => {
  const path = bundle('mixed_columns')
  const model = await Model.load(path)
  const { records, labels } = expected('mixed_columns')
  assert.ok(records.some((r) => Object.values(r).includes(null)), 'the rows have missing values')
  assert.ok(records.some((r) => r.color === 'purple'), 'the rows have unseen categories')
  const cli = cliRows(path, records)
  const p = await model.predict(records)
  assertSameAsCli(p, cli, model.classes)
  assert.deepEqual(p.labels, labels)
  // NaN is missing, like null; a record the typed-column path cannot take (a BigInt cell) goes
  // through the core's record reader: the same answer.
  const nan = records.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null && k !== 'color' && k !== 'city' ? NaN : v])))
  assert.deepEqual((await model.predict(nan)).probabilities.data, p.probabilities.data)
  const bigint = records.map((r, i) => (i === 0 ? { ...r, rooms: BigInt(r.rooms ?? 0) } : r))
  const mixed = records.map((r, i) => (i === 0 ? { ...r, rooms: r.rooms ?? 0 } : r))
  assert.deepEqual((await model.predict(bigint)).probabilities.data, (await model.predict(mixed)).probabilities.data)
})

test('regression values are the CLI\'s', async () => {
  const path = bundle('diabetes_ridge')
  const model = await Model.load(path)
  const { records } = expected('diabetes_ridge')
  const p = await model.predict(records)
  assert.equal(model.task, 'regressor')
  assert.equal(p.values.shape[1], 1)
  assert.equal(p.labels, undefined)
  assert.deepEqual(Array.from(p.values.data), cliRows(path, records).map((r) => Math.fround(r.value)))
})

test('MiniLM embeddings: bit-identical to the CLI, sentence-transformers within 1e-5', async () => {
  const path = minilm()
  const model = await Model.load(path)
  assert.equal(model.task, 'embedding')
  const { sentences, embeddings } = expected('minilm')
  const got = await model.embed(sentences)
  assert.deepEqual(got.shape, [sentences.length, 384])
  const cli = cliRows(path, sentences.map((text) => ({ text })))
  cli.forEach((r, i) => assert.deepEqual(row(got, i), r.embedding.map(Math.fround), `sentence ${i}`))
  embeddings.forEach((want, i) => want.forEach((w, c) => {
    assert.ok(Math.abs(row(got, i)[c] - w) <= 1e-5, `sentence ${i} dim ${c}`)
  }))
  const p = await model.predict(sentences)
  assert.deepEqual(p.embeddings.data, got.data)
  assert.deepEqual(model.embedSync(sentences).data, got.data)
  assert.deepEqual((await model.predict(sentences.map((text) => ({ text })))).embeddings.data, got.data)
})

test('metadata, signature and the empty input', async () => {
  const model = await Model.load(bundle('mixed_columns'))
  assert.equal(model.metadata.name, model.name)
  assert.equal(String(model), `${model.name}@${model.version}`)
  assert.deepEqual(model.signature.inputs.map((i) => i.name), model.inputNames)
  assert.deepEqual(model.classes, [0, 1])
  const empty = await model.predict([])
  assert.equal(empty.rows, 0)
  assert.deepEqual(empty.probabilities.shape, [0, 2])
  assert.deepEqual(empty.labels, [])
  const sync = Model.loadSync(bundle('mixed_columns'), { threads: 1, verifyChecksum: false })
  assert.equal(sync.threads, 1)
})

test('candle\'s ops (what a GPU runs) give the fused kernels\' numbers; devices are checked at load', async () => {
  for (const name of ['breast_cancer_logreg', 'mixed_columns']) {
    const path = bundle(name)
    const { records } = expected(name)
    const fused = await Model.load(path)
    const candle = await Model.load(path, { kernels: 'candle' })
    assert.deepEqual([fused.device, fused.kernels, candle.device, candle.kernels], ['cpu', 'ingot', 'cpu', 'candle'])
    const [a, b] = [await fused.predict(records), await candle.predict(records)]
    assert.deepEqual(b.labels, a.labels, name)
    // Within 1e-5 · max(1, |x|): the two differ in summation order only.
    a.scores.data.forEach((x, i) => {
      const y = b.scores.data[i]
      assert.ok(Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(x)), `${name} score ${i}: ${x} vs ${y}`)
    })
  }
  const path = bundle('breast_cancer_logreg')
  await assert.rejects(Model.load(path, { device: 'tpu' }), { code: 'ERR_INGOT_USAGE', message: /device `tpu`/ })
  assert.throws(() => Model.loadSync(path, { kernels: 'fast' }), { code: 'ERR_INGOT_USAGE', message: /kernels `fast`/ })
})
