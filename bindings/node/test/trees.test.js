'use strict'
// Tree ensembles imported from XGBoost and LightGBM with the CLI (`ingot import`, at test
// time, from tests/fixtures/trees): `predict` on records with missing values (null, NaN) and on
// a Float64Array with NaN, against the frameworks' own predictions on the held-out rows.
// Tolerance as in the core's parity tests: |a - b| <= 1e-5 * max(1, |b|).

const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { test } = require('node:test')
const { Model } = require('..')
const { REPO, FIXTURES, TMP, row } = require('./helpers')

const TREES = path.join(FIXTURES, 'trees')
const INGOT_BIN = process.env.INGOT_BIN || path.join(REPO, 'target', 'debug', 'ingot')

/** `ingot import KIND SOURCE -o TMP/NAME.ingot ...extra`; returns the bundle's path. */
function imported(kind, source, name, ...extra) {
  const out = path.join(TMP, `${name}.ingot`)
  execFileSync(INGOT_BIN, ['import', kind, path.join(TREES, source), '-o', out, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return out
}

function readJson(rel) {
  return JSON.parse(fs.readFileSync(path.join(TREES, rel), 'utf8'))
}

function close(what, have, want) {
  assert.ok(Math.abs(have - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${what}: ingot ${have}, reference ${want}`)
}

/** The held-out rows as records (`missing` for a missing value) and as a dense NaN matrix. */
function inputs(names, rows, missing) {
  const records = rows.map((r) => Object.fromEntries(names.map((n, c) => [n, r[c] === null ? missing : r[c]])))
  const dense = { data: Float64Array.from(rows.flat().map((v) => (v === null ? NaN : v))), shape: [rows.length, names.length] }
  return { records, dense }
}

function argmax(values) {
  return values.reduce((best, v, i) => (v > values[best] ? i : best), 0)
}

test('XGBoost multiclass (wine): records with nulls, NaN and a Float64Array match XGBoost', async () => {
  const e = readJson('xgboost/wine.expected.json')
  const model = await Model.load(imported('xgboost', 'xgboost/wine.json', 'xgb-wine'))
  assert.equal(model.task, 'classifier')
  assert.deepEqual(model.inputNames, e.feature_names)
  assert.ok(e.rows.some((r) => r.includes(null)), 'the held-out rows have missing values')
  const check = (p, how) => {
    assert.equal(p.rows, e.rows.length)
    assert.deepEqual(p.probabilities.shape, [e.rows.length, 3])
    e.predict.forEach((want, r) => {
      const have = row(p.probabilities, r)
      want.forEach((w, c) => close(`${how} row ${r} class ${c}`, have[c], w))
      assert.equal(p.labels[r], model.classes[argmax(want)], `${how} row ${r} label`)
    })
  }
  const withNull = inputs(e.feature_names, e.rows, null)
  check(await model.predict(withNull.records), 'records (null)')
  check(await model.predict(inputs(e.feature_names, e.rows, NaN).records), 'records (NaN)')
  check(await model.predict(withNull.dense), 'Float64Array')
  check(model.predictSync(withNull.dense), 'Float64Array (sync)')
})

test('LightGBM regression (diabetes): records with nulls and a Float64Array match LightGBM', async () => {
  const e = readJson('lightgbm/regression_diabetes.json')
  const text = fs.readFileSync(path.join(TREES, 'lightgbm/regression_diabetes.txt'), 'utf8')
  const names = text.split('\n').find((l) => l.startsWith('feature_names=')).slice('feature_names='.length).trim().split(' ')
  const model = await Model.load(imported('lightgbm', 'lightgbm/regression_diabetes.txt', 'lgb-diabetes'))
  assert.equal(model.task, 'regressor')
  assert.deepEqual(model.inputNames, names)
  assert.ok(e.rows.some((r) => r.includes(null)), 'the held-out rows have missing values')
  // No held-out row of this case changes LightGBM's answer when rounded to float32
  // (F32_SENSITIVE in crates/ingot/tests/tree_lightgbm.rs), so every row is compared.
  const check = (p, how) => {
    assert.equal(p.labels, undefined)
    assert.deepEqual(p.values.shape, [e.rows.length, 1])
    e.predictions.forEach((want, r) => close(`${how} row ${r}`, p.values.data[r], want[0]))
  }
  const { records, dense } = inputs(names, e.rows, null)
  check(await model.predict(records), 'records (null)')
  check(await model.predict(dense), 'Float64Array')
})

test('--feature-names renames the inputs of an imported bundle', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `x${i}`)
  const model = await Model.load(
    imported('lightgbm', 'lightgbm/regression_diabetes.txt', 'lgb-renamed', '--feature-names', names.join(','), '--name', 'renamed'),
  )
  assert.equal(model.name, 'renamed')
  assert.deepEqual(model.inputNames, names)
})
