#!/usr/bin/env node
/**
 * ingot-ml (the Node binding) vs onnxruntime-node vs the Rust core, one run.
 *
 * Workloads (files written by scripts/make_node_bench_models.py into --models):
 *
 * - breast cancer: StandardScaler + LogisticRegression on scikit-learn's 569 x 30 set, as
 *   breast_cancer.ingot and breast_cancer.onnx (skl2onnx, no ZipMap). Batch-1 latency: median
 *   and p99 over --calls awaited calls (after a warm-up), one data-set row per call, cycling
 *   through the set. Batch-1000 throughput: rows/s over --seconds of back-to-back awaited calls
 *   on the 569 rows tiled to 1000. The Rust core is `ingot bench <bundle> --batch 1,1000
 *   --form dense --json` run as a subprocess (its own loop, on the bundle's reference rows
 *   tiled); binding overhead = ingot-ml time per 1000-row call / the Rust core's - 1. Because
 *   separate processes on this kind of machine differ by more than the overhead, it is also
 *   measured in the same calls: wall time / the time the core spent (`Prediction.computeMicros`)
 *   - 1.
 * - all-MiniLM-L6-v2 sentence embeddings over tests/fixtures/minilm/bench_sentences.txt (256
 *   sentences): batch-32 throughput (sentences/s, best of 3 passes over the set) and batch-1
 *   latency (median and p99 over the set, one awaited call per sentence). ingot-ml:
 *   `model.embed(texts)` on minilm.ingot (tokenizer, encoder and pooling in the bundle).
 *   onnxruntime-node: minilm.onnx (mean pooling and L2 normalization in the graph), tokenized in
 *   JavaScript by Hugging Face's `tokenizers` binding with tokenizer.json (padding to the
 *   longest sentence of each batch, truncation at sentence_bert_config.json's max_seq_length);
 *   tokenizing and building the int64 tensors are timed. The Rust core: `ingot bench
 *   minilm.ingot --input bench_sentences.txt --batch 1,32 --json`. Before measuring, the
 *   embeddings of ingot-ml and onnxruntime-node are compared sentence by sentence (cosine >=
 *   0.999 required), and the breast-cancer probabilities of both.
 *
 * ingot-ml is measured twice: its promise API (`predict`, `embed`: the work runs on the libuv
 * thread pool and the event loop stays free, except calls that the model's past calls of the
 * same size say finish before a hop to the pool would, which run in place) and its `*Sync`
 * calls on the main thread; on breast cancer both again with `{ out }`, one OutputBuffer reused
 * by every call instead of a new ArrayBuffer per call.
 * onnxruntime-node's `session.run` returns a promise but runs the session on the main thread
 * (from a setImmediate callback), so its rows compare with the `*Sync` ones.
 *
 * The engines run back to back in each of --rounds rounds (the order reversed every other
 * round); tables show medians over the rounds, then the per-round ratios. Every engine gets
 * --threads threads: ONNX Runtime's intraOpNumThreads, ingot-ml's `Model.load(path, { threads
 * })`, `ingot bench --threads` (and INGOT_NUM_THREADS). CPU used by other processes during each
 * measurement is recorded and reported when it is above 0.1 core.
 *
 * Run (after `make bench-node`'s steps: release CLI and addon, the models, `npm install
 * --ignore-scripts` here):
 *
 *   node bindings/node/bench/bench.js [--models DIR] [--rounds 3] [--ingot-bin PATH]
 *       [--threads 2] [--calls 2000] [--seconds 2] [--sentences FILE] [--binding DIR]
 *
 * ingot-ml is loaded from --binding (default bindings/node, the package this folder sits in);
 * when it is not built its rows are skipped with a note.
 */
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const COLUMNS = 30;
const TABULAR_BATCH = 1000;
const TEXT_BATCH = 32;
const MIN_COSINE = 0.999;
const MAX_PROBABILITY_DIFF = 1e-5;
const INGOT = 'ingot-ml';
const INGOT_SYNC = 'ingot-ml, *Sync (main thread)';
const INGOT_OUT = 'ingot-ml, { out } (one OutputBuffer)';
const INGOT_SYNC_OUT = 'ingot-ml, *Sync, { out }';
/** The ingot-ml rows whose binding overhead is reported. */
const INGOT_ROWS = [INGOT, INGOT_SYNC, INGOT_OUT, INGOT_SYNC_OUT];

function parseArgs(argv) {
  const args = {
    models: path.join(ROOT, 'target', 'bench-node'),
    rounds: 3,
    ingotBin: path.join(ROOT, 'target', 'release', 'ingot'),
    threads: 2,
    calls: 2000,
    seconds: 2,
    sentences: path.join(ROOT, 'tests', 'fixtures', 'minilm', 'bench_sentences.txt'),
    binding: path.resolve(__dirname, '..'),
  };
  const names = {
    '--models': ['models', String],
    '--rounds': ['rounds', Number],
    '--ingot-bin': ['ingotBin', String],
    '--threads': ['threads', Number],
    '--calls': ['calls', Number],
    '--seconds': ['seconds', Number],
    '--sentences': ['sentences', String],
    '--binding': ['binding', String],
  };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s);
    if (flag === '--help' || flag === '-h') {
      console.log(
        'usage: node bench.js [--models DIR] [--rounds N] [--ingot-bin PATH] [--threads N] ' +
          '[--calls N] [--seconds S] [--sentences FILE] [--binding DIR]',
      );
      process.exit(0);
    }
    const spec = names[flag];
    if (!spec) throw new Error(`unknown argument ${argv[i]} (--help lists them)`);
    if (value === undefined) value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const parsed = spec[1](value);
    if (spec[1] === Number && !(parsed > 0)) throw new Error(`${flag} must be a positive number`);
    args[spec[0]] = parsed;
  }
  for (const k of ['models', 'ingotBin', 'sentences', 'binding']) args[k] = path.resolve(args[k]);
  return args;
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers

const now = () => process.hrtime.bigint();
const seconds = (t0, t1) => Number(t1 - t0) / 1e9;

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** CPU time of this process and its waited-for children (/proc/self/stat), in seconds. */
let clockTicks = 100;
function ownCpu() {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // After the command name: utime, stime, cutime, cstime are fields 14-17 (1-based).
  return fields.slice(11, 15).reduce((a, b) => a + Number(b), 0) / clockTicks;
}

function busyCpu() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1);
  const [user, nice, system, , , irq, softirq, steal] = f.map(Number);
  return (user + nice + system + irq + softirq + steal) / clockTicks;
}

/** Runs `fn` (sync or async) and returns its result with the cores other processes used. */
async function withOtherLoad(fn) {
  const b0 = busyCpu();
  const o0 = ownCpu();
  const t0 = now();
  const result = await fn();
  const wall = seconds(t0, now());
  const others = Math.max(0, (busyCpu() - b0 - (ownCpu() - o0)) / Math.max(wall, 1e-9));
  return { ...result, others };
}

/**
 * Latency of calls `call(i)`: median and p99 in microseconds. A call that returns a promise is
 * awaited; a `*Sync` call is not, as a program calling it does not await it (an await costs a
 * turn of the microtask queue).
 */
async function latency(call, calls, warmup) {
  for (let i = 0; i < warmup; i++) await call(i);
  const times = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t = now();
    const r = call(i);
    if (r instanceof Promise) await r;
    times[i] = Number(now() - t) / 1e3;
  }
  times.sort();
  return { p50_us: percentile(times, 0.5), p99_us: percentile(times, 0.99) };
}

/** Back-to-back calls (as in {@link latency}) for `secs` seconds (at least 10): items per second. */
async function throughput(call, items, secs) {
  for (let i = 0; i < 10; i++) await call();
  let calls = 0;
  const t0 = now();
  let t = t0;
  while (calls < 10 || seconds(t0, t) < secs) {
    const r = call();
    if (r instanceof Promise) await r;
    calls++;
    t = now();
  }
  return (calls * items) / seconds(t0, t);
}

/**
 * {@link throughput} of ingot-ml calls that resolve to a Prediction, and the binding's overhead
 * measured in the same calls: wall time over the time the core spent (`computeMicros`) - 1.
 */
async function throughputInProcess(call, items, secs) {
  for (let i = 0; i < 10; i++) await call();
  let calls = 0;
  let core = 0;
  const t0 = now();
  let t = t0;
  while (calls < 10 || seconds(t0, t) < secs) {
    const r = call();
    core += (r instanceof Promise ? await r : r).computeMicros;
    calls++;
    t = now();
  }
  const wall = seconds(t0, t);
  return { rows_per_s: (calls * items) / wall, overhead: (wall * 1e6) / core - 1 };
}

// ---------------------------------------------------------------------------------------------
// Environment

function cpuModel() {
  try {
    const line = execFileSync('lscpu', { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.startsWith('Model name:'));
    if (line) return line.split(':')[1].trim();
  } catch {
    // fall through to /proc/cpuinfo
  }
  const line = fs
    .readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('model name'));
  return line ? line.split(':')[1].trim() : os.cpus()[0]?.model || process.arch;
}

function cpuFlags() {
  const line = fs
    .readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags'));
  const flags = new Set(line ? line.split(':')[1].trim().split(/\s+/) : []);
  const wanted = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx_vnni'];
  const shown = wanted.filter((f) => flags.has(f));
  const amx = [...flags].filter((f) => f.startsWith('amx')).sort();
  shown.push(...(amx.length ? amx : ['no AMX']));
  return shown.join(' ');
}

function packageVersion(name, from) {
  try {
    const dir = path.dirname(require.resolve(name, { paths: [from] }));
    for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) {
      const p = path.join(d, 'package.json');
      if (fs.existsSync(p)) {
        const pkg = JSON.parse(fs.readFileSync(p, 'utf8'));
        if (pkg.name === name) return pkg.version;
      }
    }
  } catch {
    // not installed
  }
  return 'unknown';
}

function loadIngot(dir) {
  try {
    return { ingot: require(dir) };
  } catch (err) {
    return { error: String(err.message || err).split('\n')[0] };
  }
}

// ---------------------------------------------------------------------------------------------
// Engines

function ortOptions(threads) {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
}

/** `ingot bench ... --json` as a subprocess; returns its results keyed by batch size. */
function rustBench(bin, bundle, extra, secs, threads) {
  const cmd = ['bench', bundle, ...extra, '--seconds', String(secs), '--json'];
  cmd.push('--threads', String(threads));
  const r = spawnSync(bin, cmd, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    throw new Error(`${bin} ${cmd.join(' ')} failed: ${r.stderr || r.error || r.status}`);
  }
  const doc = JSON.parse(r.stdout);
  return { doc, byBatch: Object.fromEntries(doc.results.map((e) => [e.batch, e])) };
}

function tile(rows, n, batch) {
  const out = new Float32Array(batch * COLUMNS);
  for (let i = 0; i < batch; i++) {
    out.set(rows.subarray((i % n) * COLUMNS, ((i % n) + 1) * COLUMNS), i * COLUMNS);
  }
  return out;
}

async function tabularEngines(args, ort, ingot, notes) {
  const file = path.join(args.models, 'breast_cancer_rows.f32');
  const buf = fs.readFileSync(file);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  if (all.length % COLUMNS) throw new Error(`${file}: not a whole number of ${COLUMNS}-float rows`);
  const n = all.length / COLUMNS;
  // One buffer per row, as an application would pass a single request's features.
  const rows = Array.from({ length: n }, (_, i) => all.slice(i * COLUMNS, (i + 1) * COLUMNS));
  const batch = tile(all, n, TABULAR_BATCH);
  const engines = {};
  const info = { n };

  const session = await ort.InferenceSession.create(
    path.join(args.models, 'breast_cancer.onnx'),
    ortOptions(args.threads),
  );
  const ortPredict = (data, r) =>
    session.run({ input: new ort.Tensor('float32', data, [r, COLUMNS]) }, ['probabilities']);
  const ortAll = (await ortPredict(all, n)).probabilities.data;

  if (ingot) {
    const model = await ingot.Model.load(path.join(args.models, 'breast_cancer.ingot'), {
      threads: args.threads,
    });
    if (model.threads !== undefined && model.threads !== args.threads) {
      notes.push(`ingot-ml: the breast-cancer model runs on ${model.threads} threads.`);
    }
    const ingotPredict = (data, r) => model.predict({ data, shape: [r, COLUMNS] });
    const got = await ingotPredict(all, n);
    const p = got.probabilities;
    if (p.shape[0] !== n || p.data.length !== ortAll.length) {
      throw new Error(`ingot-ml probabilities of shape [${p.shape}], expected [${n}, 2]`);
    }
    let diff = 0;
    for (let i = 0; i < p.data.length; i++) diff = Math.max(diff, Math.abs(p.data[i] - ortAll[i]));
    for (let i = 0; i < 16; i++) {
      const one = (await ingotPredict(rows[i], 1)).probabilities.data;
      for (let j = 0; j < one.length; j++) {
        diff = Math.max(diff, Math.abs(one[j] - ortAll[i * one.length + j]));
      }
    }
    info.agree = diff <= MAX_PROBABILITY_DIFF;
    notes.push(
      `breast cancer: ingot-ml vs onnxruntime-node probabilities over the ${n} rows (one ` +
        `batch, and the first 16 one by one): max |diff| ${diff.toExponential(2)}: ` +
        (info.agree ? 'agree' : `DISAGREE (above ${MAX_PROBABILITY_DIFF})`) +
        '.',
    );
    const measure = (predict) => async () => ({
      ...(await latency((i) => predict(rows[i % n], 1), args.calls, 200)),
      ...(await throughputInProcess(
        () => predict(batch, TABULAR_BATCH),
        TABULAR_BATCH,
        args.seconds,
      )),
    });
    engines[INGOT] = measure(ingotPredict);
    if (typeof model.predictSync === 'function') {
      engines[INGOT_SYNC] = measure((data, r) => model.predictSync({ data, shape: [r, COLUMNS] }));
    }
    if (typeof ingot.OutputBuffer === 'function') {
      const out = new ingot.OutputBuffer();
      engines[INGOT_OUT] = measure((data, r) => model.predict({ data, shape: [r, COLUMNS] }, { out }));
      engines[INGOT_SYNC_OUT] = measure((data, r) =>
        model.predictSync({ data, shape: [r, COLUMNS] }, { out }),
      );
    }
  }
  engines[`onnxruntime-node (${args.threads} threads)`] = async () => ({
    ...(await latency((i) => ortPredict(rows[i % n], 1), args.calls, 200)),
    rows_per_s: await throughput(
      () => ortPredict(batch, TABULAR_BATCH),
      TABULAR_BATCH,
      args.seconds,
    ),
  });
  if (fs.existsSync(args.ingotBin)) {
    const bundle = path.join(args.models, 'breast_cancer.ingot');
    engines['Rust core (`ingot bench --form dense`)'] = () => {
      const { doc, byBatch } = rustBench(
        args.ingotBin,
        bundle,
        ['--batch', `1,${TABULAR_BATCH}`, '--form', 'dense'],
        args.seconds,
        args.threads,
      );
      info.isa = doc.isa;
      return {
        p50_us: byBatch[1].p50_us,
        p99_us: byBatch[1].p99_us,
        rows_per_s: byBatch[TABULAR_BATCH].rows_per_s,
      };
    };
  } else {
    notes.push(
      `Rust core: skipped, no binary at ${args.ingotBin} (cargo build --release -p ingot-cli).`,
    );
  }
  return { engines, info };
}

async function textEngines(args, ort, ingot, notes) {
  const dir = args.models;
  const need = ['minilm.onnx', 'tokenizer.json', 'sentence_bert_config.json'];
  const missing = need.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length) {
    notes.push(
      `MiniLM: skipped, ${missing.join(', ')} missing in ${dir} ` +
        '(.venv-ref/bin/python scripts/make_node_bench_models.py minilm).',
    );
    return { engines: {}, info: {} };
  }
  const { Tokenizer } = require('tokenizers');
  const sents = fs
    .readFileSync(args.sentences, 'utf8')
    .split('\n')
    .filter((s) => s.length);
  const batches = [];
  for (let i = 0; i < sents.length; i += TEXT_BATCH) batches.push(sents.slice(i, i + TEXT_BATCH));
  const { max_seq_length: maxLength } = JSON.parse(
    fs.readFileSync(path.join(dir, 'sentence_bert_config.json'), 'utf8'),
  );
  const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  tok.setPadding({}); // to the longest sentence of the batch (tokenizer.json pads to 128)
  tok.setTruncation(maxLength);
  const session = await ort.InferenceSession.create(
    path.join(dir, 'minilm.onnx'),
    ortOptions(args.threads),
  );
  const ortEmbed = async (texts) => {
    const enc = await tok.encodeBatch(texts);
    const n = enc.length;
    const seq = enc[0].getLength();
    const ids = new BigInt64Array(n * seq);
    const mask = new BigInt64Array(n * seq);
    const types = new BigInt64Array(n * seq);
    for (let i = 0; i < n; i++) {
      const a = enc[i].getIds();
      const m = enc[i].getAttentionMask();
      const t = enc[i].getTypeIds();
      for (let j = 0, k = i * seq; j < seq; j++, k++) {
        ids[k] = BigInt(a[j]);
        mask[k] = BigInt(m[j]);
        types[k] = BigInt(t[j]);
      }
    }
    const out = await session.run({
      input_ids: new ort.Tensor('int64', ids, [n, seq]),
      attention_mask: new ort.Tensor('int64', mask, [n, seq]),
      token_type_ids: new ort.Tensor('int64', types, [n, seq]),
    });
    const e = out.sentence_embedding;
    return { data: e.data, shape: e.dims };
  };
  const measure = async (embed) => {
    for (const b of batches.slice(0, 2)) await embed(b);
    let best = 0;
    for (let pass = 0; pass < 3; pass++) {
      const t0 = now();
      for (const b of batches) await embed(b);
      best = Math.max(best, sents.length / seconds(t0, now()));
    }
    const lat = await latency((i) => embed([sents[i]]), sents.length, 8);
    return { per_s: best, p50_ms: lat.p50_us / 1e3, p99_ms: lat.p99_us / 1e3 };
  };

  const engines = {};
  const info = { sentences: sents.length, tokens: 0 };
  for (const b of batches) {
    for (const e of await tok.encodeBatch(b))
      info.tokens += e.getAttentionMask().reduce((a, x) => a + x, 0);
  }
  if (ingot && fs.existsSync(path.join(dir, 'minilm.ingot'))) {
    const model = await ingot.Model.load(path.join(dir, 'minilm.ingot'), {
      threads: args.threads,
    });
    const ingotEmbed = (texts) => model.embed(texts);
    const cos = [];
    for (const b of batches) {
      const [x, y] = [await ingotEmbed(b), await ortEmbed(b)];
      const dim = x.shape[1];
      if (x.shape[0] !== b.length || dim !== y.shape[1]) {
        throw new Error(
          `ingot-ml embeddings of shape [${x.shape}], expected [${b.length}, ${y.shape[1]}]`,
        );
      }
      for (let i = 0; i < b.length; i++) {
        let xy = 0;
        let xx = 0;
        let yy = 0;
        for (let j = i * dim; j < (i + 1) * dim; j++) {
          xy += x.data[j] * y.data[j];
          xx += x.data[j] * x.data[j];
          yy += y.data[j] * y.data[j];
        }
        cos.push(xy / Math.sqrt(xx * yy));
      }
    }
    const min = Math.min(...cos);
    const mean = cos.reduce((a, c) => a + c, 0) / cos.length;
    const ok = min >= MIN_COSINE;
    notes.push(
      `MiniLM: ingot-ml vs onnxruntime-node per-sentence cosine over ${cos.length} sentences ` +
        `(batches of ${TEXT_BATCH}): min ${min.toFixed(6)}, mean ${mean.toFixed(6)}: ` +
        (ok ? `agree (every one >= ${MIN_COSINE})` : `DISAGREE (below ${MIN_COSINE})`),
    );
    info.agree = ok;
    engines[INGOT] = () => measure(ingotEmbed);
    if (typeof model.embedSync === 'function') {
      engines[INGOT_SYNC] = () => measure((texts) => model.embedSync(texts));
    }
  }
  engines[`onnxruntime-node (${args.threads} threads) + tokenizers`] = () => measure(ortEmbed);
  if (fs.existsSync(args.ingotBin) && fs.existsSync(path.join(dir, 'minilm.ingot'))) {
    engines['Rust core (`ingot bench --input`)'] = () => {
      const { byBatch } = rustBench(
        args.ingotBin,
        path.join(dir, 'minilm.ingot'),
        ['--input', args.sentences, '--batch', `1,${TEXT_BATCH}`],
        args.seconds,
        args.threads,
      );
      return {
        per_s: byBatch[TEXT_BATCH].rows_per_s,
        p50_ms: byBatch[1].p50_us / 1e3,
        p99_ms: byBatch[1].p99_us / 1e3,
      };
    };
  }
  return { engines, info };
}

/** Every engine once per round, the order reversed every other round. */
async function runRounds(engines, rounds, label) {
  const names = Object.keys(engines);
  const results = [];
  for (let r = 0; r < rounds; r++) {
    const round = {};
    for (const name of r % 2 ? [...names].reverse() : names) {
      round[name] = await withOtherLoad(engines[name]);
      process.stderr.write(`${label} round ${r + 1}/${rounds}: ${name} done\n`);
    }
    results.push(round);
  }
  return results;
}

function medians(results) {
  const out = {};
  for (const name of Object.keys(results[0])) {
    out[name] = {};
    for (const k of Object.keys(results[0][name]))
      out[name][k] = median(results.map((r) => r[name][k]));
  }
  return out;
}

const fmt = (x, digits) =>
  x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const perRound = (results, f) => results.map((r) => f(r)).join(', ');

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  try {
    clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  } catch {
    // keep 100
  }
  process.env.INGOT_NUM_THREADS = String(args.threads);
  const ort = require('onnxruntime-node');
  const { ingot, error } = loadIngot(args.binding);
  const notes = [];
  if (!ingot) notes.push(`ingot-ml: skipped, could not load ${args.binding}: ${error}`);

  let ingotVersion = 'not built';
  if (ingot) {
    try {
      ingotVersion = JSON.parse(fs.readFileSync(path.join(args.binding, 'package.json'))).version;
    } catch {
      ingotVersion = 'unknown';
    }
  }
  console.log(
    `machine: ${cpuModel()} (${cpuFlags()}), ${os.cpus().length} CPUs ` +
      `(${os.availableParallelism()} usable), ${os.platform()} ${os.arch()}, ` +
      `${fmt(os.totalmem() / 2 ** 30, 0)} GiB`,
  );
  console.log(
    `Node ${process.version}, ingot-ml ${ingotVersion}, onnxruntime-node ` +
      `${packageVersion('onnxruntime-node', __dirname)}, tokenizers ` +
      `${packageVersion('tokenizers', __dirname)}; ${args.threads} threads per engine, ` +
      `${args.rounds} rounds`,
  );

  const tab = await tabularEngines(args, ort, ingot, notes);
  const text = await textEngines(args, ort, ingot, notes);
  const tabRounds = await runRounds(tab.engines, args.rounds, 'breast cancer');
  const textRounds = Object.keys(text.engines).length
    ? await runRounds(text.engines, args.rounds, 'MiniLM')
    : [];

  const busy = [];
  console.log();
  console.log(
    `### Breast cancer (scaler + logistic regression, ${COLUMNS} columns), medians over ` +
      `${args.rounds} rounds`,
  );
  console.log();
  console.log(`| engine | batch-1 p50 µs | batch-1 p99 µs | batch-${TABULAR_BATCH} rows/s |`);
  console.log('|---|---:|---:|---:|');
  for (const [name, r] of Object.entries(medians(tabRounds))) {
    console.log(
      `| ${name} | ${fmt(r.p50_us, 2)} | ${fmt(r.p99_us, 2)} | ${fmt(r.rows_per_s, 0)} |`,
    );
    if (r.others > 0.1) busy.push(`breast cancer, ${name}: ${r.others.toFixed(2)}`);
  }
  const ortTab = Object.keys(tab.engines).find((n) => n.startsWith('onnxruntime-node'));
  const rustTab = Object.keys(tab.engines).find((n) => n.startsWith('Rust core'));
  if (tab.info.isa) console.log(`\nRust core kernels: ${tab.info.isa}.`);
  for (const ing of INGOT_ROWS.filter((n) => tab.engines[n])) {
    if (rustTab) {
      console.log(
        `\nPer round, ${ing}: binding overhead at batch ${TABULAR_BATCH} (time / Rust core ` +
          'time - 1) ' +
          perRound(
            tabRounds,
            (r) => `${fmt(100 * (r[rustTab].rows_per_s / r[ing].rows_per_s - 1), 1)} %`,
          ) +
          '; batch-1 p50 - Rust core p50 ' +
          perRound(tabRounds, (r) => `${fmt(r[ing].p50_us - r[rustTab].p50_us, 2)} µs`) +
          '.',
      );
    }
    console.log(
      `\nPer round, ${ing}: binding overhead at batch ${TABULAR_BATCH} in the same calls (wall ` +
        'time / time inside the core - 1) ' +
        perRound(tabRounds, (r) => `${fmt(100 * r[ing].overhead, 1)} %`) +
        '.',
    );
    console.log(
      `\nPer round, ${ing} / onnxruntime-node: batch-${TABULAR_BATCH} throughput ` +
        perRound(tabRounds, (r) => `${fmt(r[ing].rows_per_s / r[ortTab].rows_per_s, 2)}×`) +
        '; batch-1 p50 ' +
        perRound(tabRounds, (r) => `${fmt(r[ing].p50_us / r[ortTab].p50_us, 2)}×`) +
        '.',
    );
  }

  if (textRounds.length) {
    console.log();
    console.log(
      `### all-MiniLM-L6-v2 embeddings (${text.info.sentences} sentences, ${text.info.tokens} ` +
        `tokens with [CLS]/[SEP]), medians over ${args.rounds} rounds`,
    );
    console.log();
    console.log(`| engine | batch-${TEXT_BATCH} sentences/s | batch-1 p50 ms | batch-1 p99 ms |`);
    console.log('|---|---:|---:|---:|');
    for (const [name, r] of Object.entries(medians(textRounds))) {
      console.log(`| ${name} | ${fmt(r.per_s, 0)} | ${fmt(r.p50_ms, 2)} | ${fmt(r.p99_ms, 2)} |`);
      if (r.others > 0.1) busy.push(`MiniLM, ${name}: ${r.others.toFixed(2)}`);
    }
    const ortText = Object.keys(text.engines).find((n) => n.startsWith('onnxruntime-node'));
    const rustText = Object.keys(text.engines).find((n) => n.startsWith('Rust core'));
    for (const ing of [INGOT, INGOT_SYNC].filter((n) => text.engines[n])) {
      for (const other of [ortText, rustText].filter(Boolean)) {
        console.log(
          `\nPer round, ${ing} / ${other.split(' (')[0]}: batch-${TEXT_BATCH} throughput ` +
            perRound(textRounds, (r) => `${fmt(r[ing].per_s / r[other].per_s, 2)}×`) +
            '; batch-1 p50 ' +
            perRound(textRounds, (r) => `${fmt(r[ing].p50_ms / r[other].p50_ms, 2)}×`) +
            '.',
        );
      }
    }
    if (rustText) {
      console.log(
        "\nThe Rust core's batch-32 figure is the mean over a timed window of calls, the others " +
          'the best of 3 passes over the set.',
      );
    }
  }
  if (busy.length) {
    console.log(
      '\nWARNING: other processes were busy during the measurement (cores used, mean): ' +
        busy.join('; ') +
        '. The numbers are not comparable; rerun on a quiet machine.',
    );
  }
  notes.push(
    "onnxruntime-node's session.run runs on the main thread (inside setImmediate); ingot-ml's " +
      'promise calls on the libuv thread pool (in place when shorter than the hop), its *Sync ' +
      'calls on the main thread.',
  );
  for (const note of notes) console.log(`\n${note}`);
  if (tab.info.agree === false || text.info.agree === false) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
