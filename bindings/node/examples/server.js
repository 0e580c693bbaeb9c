'use strict'
// A prediction service on plain `node:http`:
//
//   node examples/server.js path/to/model.ingot [port]
//
//   GET  /health   → {"status":"ok","model":"name@version"}
//   POST /predict  ← {"records":[{...}, ...]}  or  {"texts":["...", ...]}
//                  → {"labels":[...],"probabilities":[[...], ...]}  (classifiers)
//                    {"values":[[...], ...]}  (regressors)  {"embeddings":[[...], ...]}
//
// Bad input answers 400 with the error's code and message (which name the row and column);
// anything else 500. Predictions run on the libuv thread pool, so the server keeps accepting
// requests while a large batch is scored.

const http = require('node:http')
const { Model, isIngotError } = require('..')

/** Largest request body accepted, in bytes. */
const MAX_BODY = 16 * 1024 * 1024

/** A `[rows, cols]` matrix as an array of row arrays (for JSON). */
function rows(t) {
  const [n, cols] = t.shape
  return Array.from({ length: n }, (_, r) => Array.from(t.data.subarray(r * cols, (r + 1) * cols)))
}

/** The JSON answer for a prediction. */
function answer(p) {
  if (p.labels) return { labels: p.labels, ...(p.probabilities && { probabilities: rows(p.probabilities) }) }
  if (p.values) return { targets: p.targets, values: rows(p.values) }
  if (p.embeddings) return { embeddings: rows(p.embeddings) }
  return { scores: rows(p.scores) }
}

/** Reads the request body, refusing more than `MAX_BODY` bytes. */
function body(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (chunk) => {
      size += chunk.length
      if (size > MAX_BODY) {
        reject(Object.assign(new Error(`request body over ${MAX_BODY} bytes`), { status: 413 }))
        req.destroy()
      } else {
        chunks.push(chunk)
      }
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/** Answers `status` with `value` as JSON. */
function send(res, status, value) {
  const text = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** The request handler for `model`. */
function handler(model) {
  return async (req, res) => {
    try {
      if (req.method === 'GET' && req.url === '/health') {
        return send(res, 200, { status: 'ok', model: String(model) })
      }
      if (req.method !== 'POST' || req.url !== '/predict') {
        return send(res, 404, { error: 'not found: GET /health or POST /predict' })
      }
      let request
      try {
        request = JSON.parse(await body(req))
      } catch (e) {
        return send(res, e.status ?? 400, { code: 'ERR_BAD_JSON', error: e.message })
      }
      const input = request?.records ?? request?.texts
      if (!Array.isArray(input)) {
        return send(res, 400, { code: 'ERR_BAD_REQUEST', error: 'send {"records": [...]} or {"texts": [...]}' })
      }
      return send(res, 200, answer(await model.predict(input)))
    } catch (e) {
      const caller = isIngotError(e) && (e.code === 'ERR_INGOT_INPUT' || e.code === 'ERR_INGOT_USAGE')
      return send(res, caller ? 400 : 500, { code: e.code ?? 'ERR_INTERNAL', error: e.message, row: e.row })
    }
  }
}

/** Loads `path` and serves it on `port` (0: any free port); resolves to the listening server. */
async function serve(path, port = 8080) {
  const model = await Model.load(path)
  const server = http.createServer(handler(model))
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  return server
}

if (require.main === module) {
  const [path, port] = process.argv.slice(2)
  if (!path) {
    console.error('usage: node examples/server.js MODEL.ingot [PORT]')
    process.exit(2)
  }
  serve(path, Number(port ?? 8080)).then((server) => {
    const { port: bound } = server.address()
    console.log(`serving ${path} on http://127.0.0.1:${bound}`)
    console.log(`curl -s http://127.0.0.1:${bound}/health`)
  }, (e) => {
    console.error(`${e.code ?? 'error'}: ${e.message}`)
    process.exit(1)
  })
}

module.exports = { serve }
