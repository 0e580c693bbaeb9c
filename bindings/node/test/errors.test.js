'use strict'
// Bad inputs and bad files reject with an `ERR_INGOT_*` code and the core's message (row and
// column), and never crash the process.

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { test } = require('node:test')
const { Model, isIngotError } = require('..')
const { bundle, expected, TMP } = require('./helpers')

/** Asserts that `promise` rejects with `code` and a message matching `message`. */
async function rejects(promise, code, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Error, 'an Error')
    assert.ok(isIngotError(e), `an Ingot error: ${e}`)
    assert.equal(e.code, code, e.message)
    if (message) assert.match(e.message, message)
    return true
  })
}

test('wrong shapes, types, NaN without an imputer, missing columns, non-arrays', async () => {
  const model = await Model.load(bundle('mixed_columns'))
  const records = expected('mixed_columns').records
  const bc = await Model.load(bundle('breast_cancer_logreg'))
  const x = new Float32Array(60)
  await rejects(bc.predict({ data: x, shape: [3, 30] }), 'ERR_INGOT_INPUT', /expected 90 values/)
  await rejects(bc.predict({ data: x, shape: [2, 29] }), 'ERR_INGOT_INPUT')
  await rejects(bc.predict({ data: x, shape: [60, 1] }), 'ERR_INGOT_INPUT', /30/)
  await rejects(bc.predict({ data: x, shape: [2] }), 'ERR_INGOT_USAGE', /shape/)
  await rejects(bc.predict({ data: x, shape: [-2, -30] }), 'ERR_INGOT_USAGE', /shape/)
  for (const shape of [[2], 'x', [2.5, 24], [2, '30'], [2, 30, 1], null]) {
    assert.throws(() => bc.predictSync({ data: x, shape }), { code: 'ERR_INGOT_USAGE', message: /shape/ })
  }
  await rejects(bc.predict({ data: new Int32Array(60), shape: [2, 30] }), 'ERR_INGOT_USAGE', /Float32Array/)
  await rejects(bc.predict({ data: Array.from(x), shape: [2, 30] }), 'ERR_INGOT_USAGE', /Float32Array/)
  const nan = Float64Array.from(x)
  nan[33] = NaN
  const e = await bc.predict({ data: nan, shape: [2, 30] }).catch((err) => err)
  assert.equal(e.code, 'ERR_INGOT_INPUT')
  assert.equal(e.row, 1)
  assert.match(e.message, /row 1, column `mean radius`|row 1.*column/)

  const wrong = records.map((r, i) => (i === 3 ? { ...r, age: 'old' } : r))
  await rejects(model.predict(wrong), 'ERR_INGOT_INPUT', /row 3, column `age`: expected a number/)
  const object = records.map((r, i) => (i === 2 ? { ...r, income: { v: 1 } } : r))
  await rejects(model.predict(object), 'ERR_INGOT_INPUT', /row 2, column `income`/)
  const missing = records.map((r, i) => {
    if (i !== 5) return r
    const { age, ...rest } = r
    return rest
  })
  await rejects(model.predict(missing), 'ERR_INGOT_INPUT', /row 5: missing column `age`/)
  await rejects(model.predict([records[0], 7]), 'ERR_INGOT_USAGE', /row 1 is a number/)
  for (const bad of [5, 'text', null, undefined, true, () => 1, Symbol('s'), 10n]) {
    await rejects(model.predict(bad), 'ERR_INGOT_USAGE', /predict takes/)
  }
  await rejects(model.predict({ rows: records }), 'ERR_INGOT_USAGE', /dense input/)
  await rejects(model.predict(['a text for a tabular model']), 'ERR_INGOT_USAGE')
  await rejects(model.embed(['a text']), 'ERR_INGOT_USAGE')
  await rejects(model.embed('a text'), 'ERR_INGOT_USAGE', /array of strings/)
  assert.throws(() => model.predictSync(5), (err) => err.code === 'ERR_INGOT_USAGE')
})

test('missing, malformed and truncated files', async () => {
  await rejects(Model.load(path.join(TMP, 'nope.ingot')), 'ERR_INGOT_IO', /No such file/)
  const bad = path.join(TMP, 'bad.ingot')
  fs.writeFileSync(bad, Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]))
  await rejects(Model.load(bad), 'ERR_INGOT_FORMAT')
  const good = fs.readFileSync(bundle('breast_cancer_logreg'))
  const truncated = path.join(TMP, 'truncated.ingot')
  fs.writeFileSync(truncated, good.subarray(0, good.length - 7))
  await rejects(Model.load(truncated), 'ERR_INGOT_FORMAT')
  assert.throws(() => Model.loadSync(bad), (e) => e.code === 'ERR_INGOT_FORMAT')
  await rejects(Model.load(bundle('breast_cancer_logreg'), { threads: 0 }), 'ERR_INGOT_USAGE', /threads/)
})

/** A small deterministic generator (xorshift32). */
function rng(seed) {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 4294967296
  }
}

test('no input crashes the process', async () => {
  const model = await Model.load(bundle('mixed_columns'))
  const names = [...model.inputNames, 'extra']
  const random = rng(7)
  const pick = (xs) => xs[Math.floor(random() * xs.length)]
  const throwing = new Proxy({}, { get() { throw new Error('a getter that throws') } })
  const cells = [null, undefined, NaN, Infinity, -0, 1e308, 3, 'red', '', 'x'.repeat(100000), true,
    2n ** 70n, 5n, {}, [], [1, 2], () => 1, Symbol('s'), new Float32Array(3), throwing, new Date(0)]
  for (let i = 0; i < 400; i++) {
    const rows = Math.floor(random() * 5)
    const records = Array.from({ length: rows }, () => {
      if (random() < 0.05) return pick(cells)
      const r = {}
      for (const n of names) if (random() < 0.9) r[n] = pick(cells)
      return r
    })
    const input = random() < 0.1 ? pick([records, { data: pick(cells), shape: pick(cells) }, pick(cells)]) : records
    for (const call of [() => model.predict(input), async () => model.predictSync(input)]) {
      try {
        const p = await call()
        assert.equal(p.rows, Array.isArray(input) ? input.length : p.rows)
      } catch (e) {
        assert.ok(e instanceof Error, `rejects with an Error, not ${typeof e}`)
        assert.ok(isIngotError(e) || e.message === 'a getter that throws', e.message)
      }
    }
  }
})
