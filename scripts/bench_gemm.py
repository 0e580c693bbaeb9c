"""GEMM throughput: Ingot's kernels (criterion, `benches/benches/gemm.rs`) against ONNX Runtime's
MatMulInteger (u8 x s8 -> i32) and NumPy's f32 matmul, on the same shapes in the same run.

    make bench-gemm            # or: .venv/bin/python scripts/bench_gemm.py

Shapes are (rows n, inputs k, outputs m); every figure is GOP/s = 2·n·k·m / time. ONNX Runtime
and NumPy use every core, as Ingot's pool does.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent
SHAPES = [(1, 384, 1536), (32, 384, 1536), (512, 384, 1536), (512, 1536, 384)]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def timed(fn, min_seconds: float) -> float:
    """Median seconds per call over batches filling about `min_seconds`."""
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.1:
        fn()
        calls += 1
    per_batch = max(1, calls // 2)
    samples = []
    deadline = time.perf_counter() + min_seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        t = time.perf_counter()
        for _ in range(per_batch):
            fn()
        samples.append((time.perf_counter() - t) / per_batch)
    return float(np.median(samples))


def matmul_integer_session(k: int, m: int) -> ort.InferenceSession:
    rng = np.random.default_rng(0)
    b = rng.integers(-127, 128, size=(k, m), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "a_zero"], ["y"])],
        "matmul_integer",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, ["n", k]),
            helper.make_tensor_value_info("a_zero", TensorProto.UINT8, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["n", m])],
        [helper.make_tensor("b", TensorProto.INT8, [k, m], b.tobytes(), raw=True)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def reference_rates(seconds: float) -> dict:
    rates = {}
    rng = np.random.default_rng(1)
    for n, k, m in SHAPES:
        ops = 2 * n * k * m
        session = matmul_integer_session(k, m)
        a = rng.integers(0, 256, size=(n, k), dtype=np.uint8)
        feed = {"a": a, "a_zero": np.array(128, dtype=np.uint8)}
        ort_s = timed(partial(session.run, None, feed), seconds)
        x = rng.standard_normal((n, k), dtype=np.float32)
        w = rng.standard_normal((m, k), dtype=np.float32)
        np_s = timed(partial(np.matmul, x, w.T), seconds)
        rates[(n, k, m)] = {
            "onnxruntime MatMulInteger": ops / ort_s / 1e9,
            "numpy f32": ops / np_s / 1e9,
        }
    return rates


def ingot_rates(seconds: float) -> dict:
    env = dict(os.environ)
    # Criterion keeps earlier runs' results beside new ones: start from none.
    for n, k, m in SHAPES:
        shutil.rmtree(ROOT / "target" / "criterion" / f"gemm_{n}x{k}x{m}", ignore_errors=True)
    subprocess.run(
        [
            "cargo",
            "bench",
            "--locked",
            "-p",
            "ingot-benches",
            "--bench",
            "gemm",
            "--",
            "--noplot",
            "--warm-up-time",
            "1",
            "--measurement-time",
            str(seconds),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    rates = {}
    for n, k, m in SHAPES:
        group = ROOT / "target" / "criterion" / f"gemm_{n}x{k}x{m}"
        for estimates in sorted(group.glob("*/new/estimates.json")):
            path = estimates.parent.parent.name
            ns = json.loads(estimates.read_text())["median"]["point_estimate"]
            rates.setdefault((n, k, m), {})[f"ingot {path}"] = 2 * n * k * m / ns
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement time per case")
    args = parser.parse_args()
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; "
        f"onnxruntime {ort.__version__}, numpy {np.__version__}"
    )
    rates = reference_rates(args.seconds)
    for shape, r in ingot_rates(args.seconds).items():
        rates[shape].update(r)
    for (n, k, m), r in rates.items():
        print(f"\n(n, k, m) = ({n}, {k}, {m})  GOP/s")
        ort_rate = r["onnxruntime MatMulInteger"]
        for name, rate in sorted(r.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<34} {rate:9.1f}   {rate / ort_rate:5.2f}x ORT int8")


if __name__ == "__main__":
    main()
