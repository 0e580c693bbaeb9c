'use strict'
// predict runs on the libuv thread pool: the event loop keeps turning during a long call, and
// concurrent calls return correct, independent results.

const assert = require('node:assert/strict')
const { test } = require('node:test')
const { Model } = require('..')
const { bundle, expected } = require('./helpers')

/** 100 000 rows of the digits MLP (64 inputs, layers of 256 and 128). */
function bigBatch() {
  const { dense } = expected('digits_mlp')
  const rows = 100_000
  const data = new Float32Array(rows * 64)
  for (let r = 0; r < rows; r++) data.set(dense[r % dense.length], r * 64)
  return { data, shape: [rows, 64] }
}

/** How many times a 1 ms interval fired while `run` was pending. */
async function ticksDuring(run) {
  let ticks = 0
  const timer = setInterval(() => { ticks++ }, 1)
  try {
    await run()
  } finally {
    clearInterval(timer)
  }
  return ticks
}

test('the event loop keeps turning while a 100 000-row batch runs', async () => {
  const model = await Model.load(bundle('digits_mlp'))
  const x = bigBatch()
  let p
  const ticks = await ticksDuring(async () => { p = await model.predict(x) })
  assert.equal(p.rows, 100_000)
  assert.ok(ticks > 0, `the interval fired ${ticks} times during predict`)
  assert.ok(p.computeMicros > 0, 'the time the core spent is reported')
  // The same batch on the calling thread blocks the loop: the check above can fail.
  const blocked = await ticksDuring(async () => { model.predictSync(x) })
  assert.equal(blocked, 0)
})

test('concurrent predicts return correct, independent results', async () => {
  const digits = await Model.load(bundle('digits_mlp'))
  const mixed = await Model.load(bundle('mixed_columns'))
  const { dense } = expected('digits_mlp')
  const records = expected('mixed_columns').records
  const inputs = Array.from({ length: 24 }, (_, i) => {
    const rows = dense.slice(i % dense.length).concat(dense.slice(0, i % dense.length)).slice(0, 5 + i)
    return { data: Float32Array.from(rows.flat()), shape: [rows.length, 64] }
  })
  const want = inputs.map((x) => digits.predictSync(x).probabilities.data)
  const wantMixed = mixed.predictSync(records).probabilities.data
  const got = await Promise.all(inputs.flatMap((x) => [digits.predict(x), mixed.predict(records)]))
  got.forEach((p, i) => {
    const expect = i % 2 === 0 ? want[i / 2] : wantMixed
    assert.deepEqual(p.probabilities.data, expect, `call ${i}`)
  })
})

/** Whether `promise` settles within a few microtask turns, before the event loop turns. */
async function settlesAtOnce(promise) {
  let settled = false
  promise.then(() => { settled = true })
  for (let i = 0; i < 8; i++) await null
  const early = settled
  await promise
  return early
}

test('calls known to be shorter than the budget run in place; inlineMicros 0 never does', async () => {
  const x = { data: new Float32Array(64), shape: [1, 64] }
  const eager = await Model.load(bundle('digits_mlp'), { inlineMicros: 1_000_000 })
  assert.equal(await settlesAtOnce(eager.predict(x)), false, 'the first call of a size goes to the pool')
  assert.equal(await settlesAtOnce(eager.predict(x)), true, 'then it runs in place')
  const pool = await Model.load(bundle('digits_mlp'), { inlineMicros: 0 })
  for (let i = 0; i < 3; i++) assert.equal(await settlesAtOnce(pool.predict(x)), false)
  assert.deepEqual((await pool.predict(x)).probabilities.data, (await eager.predict(x)).probabilities.data)
})
