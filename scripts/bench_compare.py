#!/usr/bin/env python3
"""Ingot vs scikit-learn vs ONNX Runtime on the same fitted pipelines, in one run.

Workloads (docs/benchmarks.md): breast-cancer StandardScaler+LogisticRegression and digits
StandardScaler+MLPClassifier(256, 128); batch-1 latency from one dense float32 row and
throughput at batch 10 000. Ingot is measured with ``ingot bench`` (release build), the others
in-process with ``time.perf_counter``. Needs ``make bench-deps`` (onnxruntime, skl2onnx).

    .venv/bin/python scripts/bench_compare.py --ingot target/release/ingot [--seconds 3] \
        [--rounds 3]

Shared virtual machines drift by ±20 % within minutes, so the engines are measured in
``--rounds`` interleaved rounds (Ingot, ONNX Runtime, scikit-learn, then again); the table shows
each figure's median over the rounds, and a second table the Ingot / ONNX Runtime throughput
ratio of every round.
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
from functools import partial

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ingot.sklearn


def workloads():
    x, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x, y)
    yield "breast-cancer scaler+logreg", lr, x.astype(np.float32)
    x, y = load_digits(return_X_y=True)
    mlp = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=60, random_state=0)
    ).fit(x, y)
    yield "digits scaler+mlp(256,128)", mlp, x.astype(np.float32)


def timed(fn, seconds: float) -> list[float]:
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end:
        fn()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def summarize(times: list[float], rows: int) -> dict:
    return {"p50_us": statistics.median(times) * 1e6, "rows_per_s": rows * len(times) / sum(times)}


def bench_python(predict, x: np.ndarray, seconds: float) -> dict:
    big = np.resize(x, (10_000, x.shape[1]))
    return {
        "b1": summarize(timed(lambda: predict(x[:1]), seconds), 1),
        "b10k": summarize(timed(lambda: predict(big), seconds), 10_000),
    }


def bench_ingot(binary: str, pipeline, x: np.ndarray, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ingot.sklearn.export(
            pipeline, f"{tmp}/m.ingot", name="bench", version="1.0.0", sample=x[:64]
        )
        out = subprocess.run(
            [binary, "bench", f"{tmp}/m.ingot", "--batch", "1,10000"]
            + ["--seconds", str(seconds), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    r = json.loads(out)
    by_batch = {e["batch"]: e for e in r["results"]}
    return {
        "b1": {"p50_us": by_batch[1]["p50_us"], "rows_per_s": by_batch[1]["rows_per_s"]},
        "b10k": {"p50_us": by_batch[10000]["p50_us"], "rows_per_s": by_batch[10000]["rows_per_s"]},
        "load_us": r["load_p50_us"],
    }


def onnx_predict(pipeline, n_features: int):
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(
        pipeline,
        initial_types=[("x", FloatTensorType([None, n_features]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
    )
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in sess.get_outputs()]
    return lambda a: sess.run(outputs, {"x": a})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingot", default="target/release/ingot")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import onnxruntime
    import sklearn

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"scikit-learn {sklearn.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    table, ratios = [], []
    for name, pipe, x in workloads():
        onnx = onnx_predict(pipe, x.shape[1])
        engines = {
            "Ingot": partial(bench_ingot, args.ingot, pipe, x, args.seconds),
            "ONNX Runtime": partial(bench_python, onnx, x, args.seconds),
            "scikit-learn": partial(
                bench_python, pipe.predict_proba, x.astype(np.float64), args.seconds
            ),
        }
        rounds = [{engine: run() for engine, run in engines.items()} for _ in range(args.rounds)]
        for engine in engines:
            runs = [r[engine] for r in rounds]
            b1 = statistics.median(r["b1"]["p50_us"] for r in runs)
            b10k = statistics.median(r["b10k"]["rows_per_s"] for r in runs)
            load = (
                f"{statistics.median(r['load_us'] for r in runs):.0f}"
                if "load_us" in runs[0]
                else "–"
            )
            table.append(f"| {name} | {engine} | {b1:.2f} | {b10k:,.0f} | {load} |")
        per_round = [
            r["Ingot"]["b10k"]["rows_per_s"] / r["ONNX Runtime"]["b10k"]["rows_per_s"]
            for r in rounds
        ]
        ratios.append(f"| {name} | " + ", ".join(f"{v:.2f}×" for v in per_round) + " |")
    print()
    print(f"medians over {args.rounds} interleaved rounds of {args.seconds:g} s per measurement")
    print()
    print("| workload | engine | batch 1 p50 (µs) | batch 10 000 (rows/s) | load (µs) |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(table))
    print()
    print("| workload | Ingot / ONNX Runtime throughput at batch 10 000, per round |")
    print("|---|---|")
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
