#!/usr/bin/env python3
"""Ingot vs scikit-learn vs ONNX Runtime on the same fitted pipelines, in one run.

Workloads (docs/benchmarks.md): breast-cancer StandardScaler+LogisticRegression and digits
StandardScaler+MLPClassifier(256, 128); batch-1 latency from one dense float32 row and
throughput at batch 10 000. Ingot is measured with ``ingot bench`` (release build), the others
in-process with ``time.perf_counter``. Needs ``make bench-deps`` (onnxruntime, skl2onnx).

    .venv/bin/python scripts/bench_compare.py --ingot target/release/ingot [--seconds 3]
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
        ingot.sklearn.export(pipeline, f"{tmp}/dir", name="bench", version="1.0.0", sample=x[:64])
        subprocess.run([binary, "pack", f"{tmp}/dir", "-o", f"{tmp}/m.ingot"], check=True)
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
    args = ap.parse_args()
    import onnxruntime
    import sklearn

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"scikit-learn {sklearn.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    print()
    print("| workload | engine | batch 1 p50 (µs) | batch 10 000 (rows/s) | load (µs) |")
    print("|---|---|---:|---:|---:|")
    for name, pipe, x in workloads():
        rows = {
            "Ingot": bench_ingot(args.ingot, pipe, x, args.seconds),
            "ONNX Runtime": bench_python(onnx_predict(pipe, x.shape[1]), x, args.seconds),
            "scikit-learn": bench_python(pipe.predict_proba, x.astype(np.float64), args.seconds),
        }
        for engine, r in rows.items():
            load = f"{r['load_us']:.0f}" if "load_us" in r else "–"
            print(
                f"| {name} | {engine} | {r['b1']['p50_us']:.2f} | "
                f"{r['b10k']['rows_per_s']:,.0f} | {load} |"
            )


if __name__ == "__main__":
    main()
