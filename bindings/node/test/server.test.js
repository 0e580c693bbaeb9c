'use strict'
// The example service: health, predictions equal to the library's, bad input answered 400.

const assert = require('node:assert/strict')
const { test } = require('node:test')
const { Model } = require('..')
const { serve } = require('../examples/server')
const { bundle, expected } = require('./helpers')

test('the example server answers health, predictions and bad input', async (t) => {
  const path = bundle('mixed_columns')
  const server = await serve(path, 0)
  t.after(() => server.close())
  const base = `http://127.0.0.1:${server.address().port}`
  const health = await (await fetch(`${base}/health`)).json()
  assert.equal(health.status, 'ok')
  const { records } = expected('mixed_columns')
  const res = await fetch(`${base}/predict`, { method: 'POST', body: JSON.stringify({ records }) })
  assert.equal(res.status, 200)
  const got = await res.json()
  const want = await (await Model.load(path)).predict(records)
  assert.deepEqual(got.labels, want.labels)
  assert.deepEqual(got.probabilities.flat(), Array.from(want.probabilities.data))
  const bad = await fetch(`${base}/predict`, { method: 'POST', body: JSON.stringify({ records: [{ age: 'old' }] }) })
  assert.equal(bad.status, 400)
  const error = await bad.json()
  assert.equal(error.code, 'ERR_INGOT_INPUT')
  assert.equal(error.row, 0)
  assert.equal((await fetch(`${base}/predict`, { method: 'POST', body: '{' })).status, 400)
  assert.equal((await fetch(`${base}/nope`)).status, 404)
})
