"""Tree ensembles: Ingot against each library's own predict, ONNX Runtime and treelite/tl2cgen.

One run, one machine, the same data for every engine (``make bench-trees``):

* data: ``make_classification`` with 30 features, float32; the models train on ``--train-rows``
  rows and every engine scores the same ``--rows`` other rows;
* models, 500 trees of depth 8 each: XGBoost (``binary:logistic``, ``hist``), LightGBM
  (``num_leaves=255``, ``max_depth=8``), scikit-learn ``HistGradientBoostingClassifier``
  (``max_leaf_nodes=255``, ``max_depth=8``, no early stopping) and ``RandomForestClassifier``
  (``max_depth=8``);
* engines per model: the library's own ``predict_proba``; ONNX Runtime on the onnxmltools
  (XGBoost, LightGBM) or skl2onnx (scikit-learn) conversion; treelite's GTIL interpreter and a
  tl2cgen-compiled library when treelite/tl2cgen are installed; Ingot's Python package on the
  bundle that ``ingot import xgboost|lightgbm`` or ``ingot.sklearn.export`` wrote; and the Rust
  core through ``ingot bench`` on the same bundle (``--ingot``);
* batch 1: p50 and p99 over ``--calls`` single-row calls (the same rows for every engine, after
  a warm-up); throughput: the best of ``--repeats`` calls on all ``--rows`` rows;
* parity: every engine's probabilities against the library's own on all ``--rows`` rows, as
  max |a - b| / max(1, |b|).

Every engine gets ``--threads`` threads (default: every CPU); the table says how each was set.
Prints a Markdown table and the ratios of the acceptance targets; ``--json`` also writes them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = 30
TREES = 500
DEPTH = 8
WARMUP_CALLS = 200
FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
PARITY_LIMIT = 1e-5
MISMATCH = 1e-6
TARGET_B1_ORT = 0.7
TARGET_B1_NATIVE = 1 / 20
TARGET_THROUGHPUT = 1.5

NATIVE = "native predict_proba"
ORT = "ONNX Runtime"
GTIL = "treelite GTIL"
TL2CGEN = "tl2cgen (gcc)"
INGOT = "Ingot (Python)"
INGOT_CORE = "Ingot (Rust core, `ingot bench`)"


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def failure(e: BaseException) -> str:
    """``n/a (error …)`` with the first line of the error (and of its cause, if any)."""

    def first(x: BaseException) -> str:
        text = str(x).strip().splitlines()
        return f"{type(x).__name__}: {text[0][:160] if text else ''}"

    cause = e.__cause__
    return f"n/a (error {first(e)}" + (f"; caused by {first(cause)})" if cause else ")")


# --------------------------------------------------------------------------------------------
# The machine


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(
            (k.strip(), v.strip())
            for k, v in (ln.split(":", 1) for ln in out.splitlines() if ":" in ln)
        )
        info["model_name"] = fields.get("Model name", "?")
        info["family"] = fields.get("CPU family", "?")
        info["model"] = fields.get("Model", "?")
        info["l3"] = fields.get("L3 cache", "?")
        flags = set(fields.get("Flags", "").split())
    except (OSError, subprocess.CalledProcessError):
        info["model_name"] = platform.processor() or "?"
        flags = set()
    info["flags"] = {f: f in flags for f in FLAGS}
    return info


def versions() -> dict[str, str]:
    out = {"numpy": np.__version__}
    for mod in (
        "sklearn",
        "xgboost",
        "lightgbm",
        "onnxruntime",
        "onnxmltools",
        "skl2onnx",
        "treelite",
        "tl2cgen",
        "ingot",
    ):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as e:  # a missing optional engine is reported, not fatal
            out[mod] = f"not available ({type(e).__name__})"
    return out


# --------------------------------------------------------------------------------------------
# Measuring


def batch1(fn: Callable[[np.ndarray], Any], rows: list[np.ndarray]) -> tuple[float, float]:
    """p50 and p99 in µs of ``fn`` over single-row calls, after a warm-up on the same rows."""
    for r in rows[:WARMUP_CALLS]:
        fn(r)
    times = np.empty(len(rows), dtype=np.int64)
    gc.collect()
    gc.disable()
    try:
        clock = time.perf_counter_ns
        for i, r in enumerate(rows):
            t = clock()
            fn(r)
            times[i] = clock() - t
    finally:
        gc.enable()
    return float(np.percentile(times, 50)) / 1e3, float(np.percentile(times, 99)) / 1e3


def throughput(fn: Callable[[np.ndarray], Any], x: np.ndarray, repeats: int) -> float:
    """Rows/s of the best of ``repeats`` calls on all of ``x`` (the caller has warmed up)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return len(x) / best


def proba2(p: Any) -> np.ndarray:
    """Probabilities as float64 ``[rows, 2]`` (a single column is the positive class)."""
    if isinstance(p, list):  # ONNX ZipMap output: a list of {class: probability}
        p = np.array([[d[k] for k in sorted(d)] for d in p])
    a = np.asarray(p, dtype=np.float64)
    a = a.reshape(a.shape[0], -1)
    if a.shape[1] == 1:
        a = np.column_stack([1.0 - a[:, 0], a[:, 0]])
    return a


def parity(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(1, |b|) over every probability (``b`` is the reference)."""
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def mismatched(a: np.ndarray, b: np.ndarray) -> int:
    """Rows with a probability more than ``MISMATCH`` away from the reference: more than float32
    rounding explains, so a tree took another branch. A saturated sigmoid can keep such a row
    under the parity limit."""
    return int(np.count_nonzero(np.any(np.abs(a - b) > MISMATCH, axis=1)))


class Engine:
    """One engine on one model: a single-row call and a whole-batch call returning
    probabilities."""

    def __init__(
        self,
        name: str,
        threads: str,
        call: Callable[[np.ndarray], Any],
        proba: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.name = name
        self.threads = threads
        self.call = call
        self.proba = proba or (lambda x: proba2(call(x)))


def row(model: str, engine: str, threads: str = "", **fields: Any) -> dict[str, Any]:
    base = {
        "model": model,
        "engine": engine,
        "threads": threads,
        "p50_us": None,
        "p99_us": None,
        "rows_per_s": None,
        "parity": None,
        "mismatched": None,
        "error": None,
    }
    base.update(fields)
    return base


def measure(
    model: str,
    engine: Engine,
    rows: list[np.ndarray],
    x: np.ndarray,
    reference: np.ndarray | None,
    repeats: int,
) -> dict[str, Any]:
    try:
        got = engine.proba(x)  # the warm-up of the throughput calls, and the parity answer
        p = None if reference is None else parity(got, reference)
        off = None if reference is None else mismatched(got, reference)
        rps = throughput(engine.call, x, repeats)
        p50, p99 = batch1(engine.call, rows)
    except Exception as e:  # one engine failing is a result, not the end
        note(f"  {model} / {engine.name}: {failure(e)}")
        return row(model, engine.name, engine.threads, error=failure(e))
    note(f"  {model} / {engine.name}: p50 {p50:.1f} µs, {rps:,.0f} rows/s, parity {p} ({off})")
    return row(
        model,
        engine.name,
        engine.threads,
        p50_us=p50,
        p99_us=p99,
        rows_per_s=rps,
        parity=p,
        mismatched=off,
    )


# --------------------------------------------------------------------------------------------
# Models


def train(
    kind: str, x: np.ndarray, y: np.ndarray, threads: int, seed: int, trees: int
) -> tuple[Any, str]:
    """A fitted classifier of ``kind`` and how its predict threads are set."""
    if kind == "XGBoost":
        from xgboost import XGBClassifier

        est = XGBClassifier(
            n_estimators=trees,
            max_depth=DEPTH,
            learning_rate=0.1,
            tree_method="hist",
            objective="binary:logistic",
            n_jobs=threads,
            random_state=seed,
        )
        return est.fit(x, y), f"n_jobs={threads}"
    if kind == "LightGBM":
        from lightgbm import LGBMClassifier

        est = LGBMClassifier(
            n_estimators=trees,
            num_leaves=255,
            max_depth=DEPTH,
            min_child_samples=5,
            learning_rate=0.1,
            n_jobs=threads,
            random_state=seed,
            verbose=-1,
        )
        return est.fit(x, y), f"n_jobs={threads}"
    if kind == "sklearn HGB":
        from sklearn.ensemble import HistGradientBoostingClassifier

        est = HistGradientBoostingClassifier(
            max_iter=trees,
            max_depth=DEPTH,
            max_leaf_nodes=255,
            min_samples_leaf=5,
            early_stopping=False,
            random_state=seed,
        )
        # OpenMP: every CPU unless OMP_NUM_THREADS says otherwise (threadpoolctl limits it).
        return est.fit(x, y), f"OpenMP {_omp_threads()}"
    if kind == "sklearn RF":
        from sklearn.ensemble import RandomForestClassifier

        est = RandomForestClassifier(
            n_estimators=trees, max_depth=DEPTH, n_jobs=threads, random_state=seed
        )
        return est.fit(x, y), f"n_jobs={threads}"
    raise ValueError(kind)


def _omp_threads() -> int:
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return int(_openmp_effective_n_threads())


def leaves(kind: str, est: Any, files: dict[str, Path]) -> tuple[int, int]:
    """Trees and leaves of a fitted model."""
    if kind == "XGBoost":
        trees = json.loads(files["xgboost"].read_text())["learner"]["gradient_booster"]["model"][
            "trees"
        ]
        return len(trees), sum(sum(1 for c in t["left_children"] if c == -1) for t in trees)
    if kind == "LightGBM":
        info = est.booster_.dump_model()["tree_info"]
        return len(info), sum(t["num_leaves"] for t in info)
    if kind == "sklearn HGB":
        preds = [p for stage in est._predictors for p in stage]
        return len(preds), sum(int(p.nodes["is_leaf"].sum()) for p in preds)
    return len(est.estimators_), sum(int(t.tree_.n_leaves) for t in est.estimators_)


def save_native(kind: str, est: Any, work: Path) -> dict[str, Path]:
    """The file the CLI importer (and treelite) reads, for XGBoost and LightGBM."""
    if kind == "XGBoost":
        path = work / "xgboost.json"
        est.get_booster().save_model(str(path))
        return {"xgboost": path}
    if kind == "LightGBM":
        path = work / "lightgbm.txt"
        est.booster_.save_model(str(path))
        return {"lightgbm": path}
    return {}


def ingot_bundle(
    kind: str, est: Any, files: dict[str, Path], work: Path, sample: np.ndarray, ingot_bin: str
) -> Path:
    slug = kind.lower().replace(" ", "-")
    path = work / f"{slug}.ingot"
    if kind in ("XGBoost", "LightGBM"):
        sub = "xgboost" if kind == "XGBoost" else "lightgbm"
        cmd = [ingot_bin, "import", sub, str(files[sub]), "-o", str(path)]
        cmd += ["--name", f"bench-{slug}", "--version", "1.0.0"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}`: {done.stderr.strip() or done.stdout.strip()}")
    else:
        import ingot.sklearn

        ingot.sklearn.export(est, path, name=f"bench-{slug}", version="1.0.0", sample=sample)
    return path


def onnx_model(kind: str, est: Any) -> bytes:
    if kind in ("XGBoost", "LightGBM"):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, FEATURES]))]
        if kind == "XGBoost":
            onx = onnxmltools.convert_xgboost(est, initial_types=types)
        else:
            onx = onnxmltools.convert_lightgbm(est, initial_types=types, zipmap=False)
    else:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        onx = convert_sklearn(
            est,
            initial_types=[("input", FloatTensorType([None, FEATURES]))],
            options={id(est): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
    return onx.SerializeToString()


def ort_engine(kind: str, est: Any, threads: int) -> Engine:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_model(kind, est), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outputs = [o.name for o in sess.get_outputs()]
    prob = next((o for o in outputs if "prob" in o.lower()), outputs[-1])
    return Engine(
        ORT,
        f"intra_op_num_threads={threads}",
        lambda x: sess.run([prob], {name: x})[0],
    )


def treelite_model(kind: str, est: Any, files: dict[str, Path]) -> Any:
    import treelite

    if kind == "XGBoost":
        return treelite.frontend.load_xgboost_model(str(files["xgboost"]))
    if kind == "LightGBM":
        return treelite.frontend.load_lightgbm_model(str(files["lightgbm"]))
    return treelite.sklearn.import_model(est)


def treelite_engines(
    kind: str, est: Any, files: dict[str, Path], work: Path, threads: int, compile_c: bool
) -> tuple[list[Engine], list[dict[str, Any]]]:
    """GTIL and tl2cgen engines, or rows saying why there are none."""
    try:
        import treelite
    except Exception as e:
        return [], [row(kind, GTIL, error=f"n/a (treelite not installed: {type(e).__name__})")]
    engines, missing = [], []
    try:
        tl = treelite_model(kind, est, files)
    except Exception as e:
        msg = failure(e)
        return [], [row(kind, GTIL, error=msg), row(kind, TL2CGEN, error=msg)]
    engines.append(
        Engine(GTIL, f"nthread={threads}", lambda x: treelite.gtil.predict(tl, x, nthread=threads))
    )
    if not compile_c:
        return engines, [row(kind, TL2CGEN, error="n/a (skipped: --no-tl2cgen)")]
    try:
        import tl2cgen
    except Exception as e:
        return engines, [row(kind, TL2CGEN, error=f"n/a (tl2cgen not installed: {e})")]
    try:
        lib = work / f"{kind.lower().replace(' ', '-')}.so"
        t = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # its compiler's log lines
            tl2cgen.export_lib(
                tl, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 8}, nthread=threads
            )
        note(f"  {kind}: tl2cgen compiled {lib.name} in {time.perf_counter() - t:.0f} s")
        pred = tl2cgen.Predictor(str(lib), nthread=threads)
        engines.append(
            Engine(
                TL2CGEN,
                f"nthread={threads}",
                lambda x: pred.predict(tl2cgen.DMatrix(x, dtype="float32")),
            )
        )
    except Exception as e:
        missing.append(row(kind, TL2CGEN, error=failure(e)))
    return engines, missing


def write_jsonl(path: Path, names: list[str], x: np.ndarray) -> None:
    with path.open("w") as f:
        for r in x.astype(np.float64).tolist():
            f.write(json.dumps(dict(zip(names, r, strict=True))))
            f.write("\n")


def core_bench(
    kind: str,
    ingot_bin: str,
    bundle: Path,
    names: list[str],
    rows: np.ndarray,
    x: np.ndarray,
    work: Path,
    threads: int,
    seconds: float,
) -> dict[str, Any]:
    """``ingot bench`` on the bundle: batch 1 over ``rows``, batch ``len(x)`` over ``x``."""
    slug = bundle.stem
    small, large = work / f"{slug}-rows.jsonl", work / f"{slug}-batch.jsonl"
    try:
        write_jsonl(small, names, rows)
        if not large.exists():
            write_jsonl(large, names, x)
        got = {}
        for path, batch in ((small, 1), (large, len(x))):
            cmd = [ingot_bin, "bench", str(bundle), "--batch", str(batch), "--form", "dense"]
            cmd += ["-i", str(path), "--seconds", str(seconds), "--threads", str(threads)]
            done = subprocess.run(cmd + ["--json"], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip() or done.stdout.strip())
            got[batch] = json.loads(done.stdout)["results"][0]
    except Exception as e:
        note(f"  {kind} / {INGOT_CORE}: {failure(e)}")
        return row(kind, INGOT_CORE, f"--threads {threads}", error=failure(e))
    return row(
        kind,
        INGOT_CORE,
        f"--threads {threads}",
        p50_us=got[1]["p50_us"],
        p99_us=got[1]["p99_us"],
        rows_per_s=got[len(x)]["rows_per_s"],
    )


def bench_model(
    kind: str,
    data: dict[str, np.ndarray],
    args: argparse.Namespace,
    work: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import ingot

    x, rows_x = data["score"], data["rows"]
    rows = [np.ascontiguousarray(rows_x[i : i + 1]) for i in range(len(rows_x))]
    note(f"{kind}: training {args.trees} trees of depth {DEPTH} on {len(data['train'])} rows")
    t = time.perf_counter()
    est, native_threads = train(
        kind, data["train"], data["labels"], args.threads, args.seed, args.trees
    )
    files = save_native(kind, est, work)
    n_trees, n_leaves = leaves(kind, est, files)
    info = {
        "trees": n_trees,
        "leaves": n_leaves,
        "train_s": time.perf_counter() - t,
        "native_threads": native_threads,
    }
    note(f"  {n_trees} trees, {n_leaves / n_trees:.1f} leaves per tree, {info['train_s']:.0f} s")

    results = []
    native = Engine(NATIVE, native_threads, est.predict_proba)
    reference = proba2(est.predict_proba(x))
    results.append(measure(kind, native, rows, x, None, args.repeats))

    try:
        ort_e = ort_engine(kind, est, args.threads)
    except Exception as e:  # a failed conversion is a result
        note(f"  {kind} / {ORT}: {failure(e)}")
        results.append(row(kind, ORT, f"intra_op_num_threads={args.threads}", error=failure(e)))
    else:
        results.append(measure(kind, ort_e, rows, x, reference, args.repeats))

    engines, missing = treelite_engines(kind, est, files, work, args.threads, args.tl2cgen)
    for engine in engines:
        results.append(measure(kind, engine, rows, x, reference, args.repeats))
    results.extend(missing)

    try:
        bundle = ingot_bundle(kind, est, files, work, data["train"][:100], args.ingot)
        model = ingot.load(bundle, threads=args.threads)
        engine = Engine(
            INGOT,
            f"threads={model.threads}",
            lambda r: model.predict(r).probabilities,
        )
        results.append(measure(kind, engine, rows, x, reference, args.repeats))
        if args.ingot:
            results.append(
                core_bench(
                    kind,
                    args.ingot,
                    bundle,
                    model.input_names,
                    rows_x,
                    x,
                    work,
                    args.threads,
                    args.seconds,
                )
            )
    except Exception as e:
        note(f"  {kind} / {INGOT}: {failure(e)}")
        results.append(row(kind, INGOT, error=failure(e)))
    return results, info


# --------------------------------------------------------------------------------------------
# Report


def ratios(results: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    by = {r["engine"]: r for r in results if r["model"] == kind and r["error"] is None}
    ing, ort_r, nat = by.get(INGOT), by.get(ORT), by.get(NATIVE)

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    best = max((r["rows_per_s"] for r in (nat, ort_r) if r is not None), default=None)
    return {
        "model": kind,
        "b1_vs_ort": div(ing and ing["p50_us"], ort_r and ort_r["p50_us"]),
        "b1_vs_native": div(ing and ing["p50_us"], nat and nat["p50_us"]),
        "throughput_vs_best": div(ing and ing["rows_per_s"], best),
        "parity": ing and ing["parity"],
        "mismatched": ing and ing["mismatched"],
    }


def fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def fmt_us(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"


def verdict(v: float | None, target: float, at_most: bool) -> str:
    if v is None:
        return "n/a"
    ok = v <= target if at_most else v >= target
    return "met" if ok else "**not met**"


def _off(rows: int | None) -> str:
    return f"; **{rows} rows off by > {MISMATCH:.0e}**" if rows else ""


def report(
    results: list[dict[str, Any]],
    infos: dict[str, dict[str, Any]],
    mach: dict[str, Any],
    vers: dict[str, str],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    flags = ", ".join(f"{f} {'yes' if on else 'no'}" for f, on in mach["flags"].items())
    print(
        f"CPU: {mach.get('model_name')} (family {mach.get('family')} model {mach.get('model')}), "
        f"{mach['cpus']} CPUs, L3 {mach.get('l3')}"
    )
    print(f"Flags: {flags}")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    print(
        f"Data: make_classification, {FEATURES} float32 features; trained on {args.train_rows} "
        f"rows, scored on {args.rows}; batch 1 over {args.calls} rows (warm-up "
        f"{WARMUP_CALLS}), throughput best of {args.repeats}; threads {args.threads}"
    )
    for kind, info in infos.items():
        print(
            f"  {kind}: {info['trees']} trees, {info['leaves'] / info['trees']:.1f} leaves per "
            f"tree, trained in {info['train_s']:.0f} s"
        )
    print()
    print(
        "| model | engine | threads | batch-1 p50 µs | batch-1 p99 µs | "
        f"{args.rows // 1000}k rows/s | parity vs native | rows off by > {MISMATCH:.0e} |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        if r["error"] is not None:
            print(f"| {r['model']} | {r['engine']} | {r['threads']} | {r['error']} | | | | |")
            continue
        par = "–" if r["parity"] is None else f"{r['parity']:.1e}"
        off = "–" if r["mismatched"] is None else str(r["mismatched"])
        print(
            f"| {r['model']} | {r['engine']} | {r['threads']} | {fmt_us(r['p50_us'])} | "
            f"{fmt_us(r['p99_us'])} | {fmt(r['rows_per_s'], ',.0f')} | {par} | {off} |"
        )
    print()
    print(
        f"| model | Ingot b1 / ORT b1 (≤ {TARGET_B1_ORT}) | Ingot b1 / native b1 (≤ 1/20) | "
        f"Ingot {args.rows // 1000}k / best(native, ORT) (≥ {TARGET_THROUGHPUT}) | "
        f"Ingot parity (≤ {PARITY_LIMIT:.0e}) |"
    )
    print("|---|---|---|---|---|")
    out = []
    for kind in infos:
        q = ratios(results, kind)
        out.append(q)
        print(
            f"| {kind} | {fmt(q['b1_vs_ort'], '.3f')} "
            f"{verdict(q['b1_vs_ort'], TARGET_B1_ORT, True)} | "
            f"{fmt(q['b1_vs_native'], '.4f')} "
            f"(1/{fmt(q['b1_vs_native'] and 1 / q['b1_vs_native'], '.0f')}) "
            f"{verdict(q['b1_vs_native'], TARGET_B1_NATIVE, True)} | "
            f"{fmt(q['throughput_vs_best'], '.2f')} "
            f"{verdict(q['throughput_vs_best'], TARGET_THROUGHPUT, False)} | "
            f"{fmt(q['parity'], '.1e')} {verdict(q['parity'], PARITY_LIMIT, True)}"
            f"{_off(q['mismatched'])} |"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ingot", default="", help="the `ingot` CLI (import, and the core's bench)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--models", default="XGBoost,LightGBM,sklearn HGB,sklearn RF")
    ap.add_argument("--train-rows", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=100_000, help="rows scored for throughput")
    ap.add_argument("--calls", type=int, default=2000, help="single-row calls per engine")
    ap.add_argument("--repeats", type=int, default=3, help="throughput: best of this many")
    ap.add_argument("--seconds", type=float, default=2.0, help="`ingot bench --seconds`")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trees", type=int, default=TREES, help="trees per model (smoke runs)")
    ap.add_argument("--work", type=Path, default=Path("target/bench-trees"))
    ap.add_argument(
        "--no-tl2cgen", dest="tl2cgen", action="store_false", help="skip compiling with tl2cgen"
    )
    args = ap.parse_args()
    if args.calls <= WARMUP_CALLS:
        ap.error(f"--calls must be more than the {WARMUP_CALLS} warm-up calls")

    from sklearn.datasets import make_classification

    mach, vers = machine(), versions()
    args.work.mkdir(parents=True, exist_ok=True)
    x, y = make_classification(
        n_samples=args.train_rows + args.rows,
        n_features=FEATURES,
        n_informative=20,
        n_redundant=5,
        flip_y=0.01,
        random_state=args.seed,
    )
    x = x.astype(np.float32)
    score = np.ascontiguousarray(x[args.train_rows :])
    data = {
        "train": np.ascontiguousarray(x[: args.train_rows]),
        "labels": y[: args.train_rows],
        "score": score,
        "rows": np.ascontiguousarray(score[: args.calls]),
    }
    results: list[dict[str, Any]] = []
    infos: dict[str, dict[str, Any]] = {}
    for kind in [m.strip() for m in args.models.split(",") if m.strip()]:
        try:
            got, info = bench_model(kind, data, args, args.work)
        except Exception as e:  # e.g. a library that did not install
            note(f"{kind}: {failure(e)}")
            results.append(row(kind, NATIVE, error=failure(e)))
            continue
        results.extend(got)
        infos[kind] = info
    summary = report(results, infos, mach, vers, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": mach,
            "versions": vers,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "models": infos,
            "results": results,
            "ratios": summary,
        }
        args.json.write_text(json.dumps(payload, indent=2))
        note(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
