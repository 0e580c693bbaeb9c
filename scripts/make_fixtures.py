#!/usr/bin/env python3
"""Generate the test fixtures under tests/fixtures/<case>/.

Each case directory holds

* ``model/``: an unpacked Ingot bundle (``manifest.json`` + ``tensors/*.npy``) written by
  ``ingot.sklearn.export_dir`` with a fixed ``created`` time;
* ``expected.json``: held-out input rows and scikit-learn's float64 predictions for them::

      {"records": [{column: value or null}, ...],   # at most 40 rows
       "dense": [[...], ...] or null,                # same rows as a matrix; null with strings
       "labels": [...] or null,
       "probabilities": [[...], ...] or null,
       "values": [[...], ...] or null}

Everything is seeded, so rerunning with the same library versions rewrites identical files:

    .venv/bin/python scripts/make_fixtures.py [--out tests/fixtures] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge, SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from ingot.sklearn import export_dir

REPO = Path(__file__).resolve().parents[1]

CREATED = "2026-01-01T00:00:00Z"
N_TEST = 40
SEED = 0


def split(X: pd.DataFrame, y: np.ndarray, n_test: int = N_TEST, seed: int = SEED):
    """Deterministic hold-out split: the first ``n_test`` rows of a seeded permutation."""
    idx = np.random.default_rng(seed).permutation(len(X))
    test, train = idx[:n_test], idx[n_test:]
    return X.iloc[train], y[train], X.iloc[test], y[test]


def bundled(name: str):
    data = getattr(datasets, f"load_{name}")(as_frame=True)
    return split(data.data, data.target.to_numpy())


def mixed_frame(n: int, seed: int, held_out: bool = False) -> pd.DataFrame:
    """Synthetic table: numeric columns with NaN, two string categoricals, an int categorical.

    ``held_out=True`` draws some categories never seen in training ("purple", "Atlantis",
    rooms = 9) and more missing values.
    """
    rng = np.random.default_rng(seed)
    colors = ["red", "green", "blue", "black"] + (["purple"] if held_out else [])
    cities = ["Paris", "Lima", "Oslo", "Pune", "Kyiv"] + (["Atlantis"] if held_out else [])
    rooms = [1, 2, 3, 4, 5] + ([9] if held_out else [])
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "income": rng.lognormal(10, 0.5, n).round(2),
            "color": rng.choice(colors, n),
            "city": rng.choice(cities, n),
            "rooms": rng.choice(rooms, n),
            "score": rng.uniform(-3, 3, n).round(4),
        }
    )
    nan_rate = 0.25 if held_out else 0.1
    for col in ("age", "income", "color"):
        frame.loc[rng.random(n) < nan_rate, col] = np.nan
    return frame


def mixed_signal(frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (
        0.05 * (frame["age"].fillna(40) - 40)
        + 0.00002 * (frame["income"].fillna(22000) - 22000)
        + 0.8 * (frame["color"] == "red")
        - 0.6 * (frame["city"] == "Oslo")
        + 0.3 * frame["rooms"]
        + 0.4 * frame["score"]
        + rng.normal(0, 0.5, len(frame))
    ).to_numpy(dtype=float)


def mixed_data():
    train = mixed_frame(400, seed=1)
    test = mixed_frame(N_TEST, seed=2, held_out=True)
    return train, mixed_signal(train, 11), test


# ----------------------------------------------------------------------------------------------
# Cases: each returns (estimator, X_train, y_train, X_test, task, export kwargs)


def breast_cancer_logreg():
    X, y, Xt, _ = bundled("breast_cancer")
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return est, X, y, Xt, "classify", {"tags": ["tabular", "binary"]}


def digits_mlp():
    X, y, Xt, _ = bundled("digits")
    mlp = MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=100, random_state=0)
    return make_pipeline(StandardScaler(), mlp), X, y, Xt, "classify", {"tags": ["mlp"]}


def diabetes_ridge():
    X, y, Xt, _ = bundled("diabetes")
    est = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    return est, X, y, Xt, "regress", {"tags": ["regression"]}


def wine_multinomial():
    X, y, Xt, _ = bundled("wine")
    est = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000))
    return est, X, y, Xt, "classify", {"tags": ["multiclass"]}


def iris_sgd():
    X, y, Xt, _ = bundled("iris")
    est = make_pipeline(RobustScaler(), SGDClassifier(loss="log_loss", random_state=0))
    return est, X, y, Xt, "classify", {"tags": ["one-vs-rest"]}


def mixed_columns():
    train, signal, test = mixed_data()
    y = (signal > np.median(signal)).astype(np.int64)
    ct = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                ["age", "income"],
            ),
            (
                "color",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["color"],
            ),
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                ["city", "rooms"],
            ),
        ],
        remainder="passthrough",
    )
    est = make_pipeline(ct, LogisticRegression(max_iter=1000))
    return est, train, y, test, "classify", {"tags": ["tabular", "mixed"]}


def mixed_regression():
    train, signal, test = mixed_data()
    y = 100.0 + 10.0 * signal
    ct = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="mean"), MaxAbsScaler()),
                ["age", "income", "score"],
            ),
            (
                "color",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="none"),
                    OneHotEncoder(drop="first", handle_unknown="ignore"),
                ),
                ["color"],
            ),
            ("cat", OneHotEncoder(drop="first", handle_unknown="ignore"), ["city", "rooms"]),
        ],
        remainder="drop",
    )
    est = make_pipeline(ct, ElasticNet(alpha=0.01, max_iter=5000))
    return est, train, y, test, "regress", {"tags": ["tabular", "mixed", "regression"]}


CASES: dict[str, Callable[[], tuple]] = {
    f.__name__: f
    for f in (
        breast_cancer_logreg,
        digits_mlp,
        diabetes_ridge,
        wine_multinomial,
        iris_sgd,
        mixed_columns,
        mixed_regression,
    )
}


# ----------------------------------------------------------------------------------------------
# Output


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    return str(v)


def records(frame: pd.DataFrame) -> list[dict]:
    return [
        {str(c): _json_value(v) for c, v in zip(frame.columns, row, strict=True)}
        for row in frame.astype(object).itertuples(index=False)
    ]


def expected(est: Any, X_test: pd.DataFrame, task: str, manifest: dict) -> dict:
    dtypes = [i["dtype"] for i in manifest["signature"]["inputs"]]
    recs = records(X_test)
    out: dict[str, Any] = {
        "records": recs,
        "dense": None,
        "labels": None,
        "probabilities": None,
        "values": None,
    }
    if "string" not in dtypes:
        names = [i["name"] for i in manifest["signature"]["inputs"]]
        out["dense"] = [[r[n] for n in names] for r in recs]
    if task == "classify":
        out["labels"] = [_json_value(v) for v in est.predict(X_test)]
        if manifest["postprocess"][0]["activation"] != "none":
            proba = np.asarray(est.predict_proba(X_test), dtype=np.float64)
            out["probabilities"] = [[float(p) for p in row] for row in proba]
    else:
        values = np.asarray(est.predict(X_test), dtype=np.float64).reshape(len(X_test), -1)
        out["values"] = [[float(v) for v in row] for row in values]
    return out


def dump_json(obj: dict) -> str:
    """Deterministic JSON: sorted keys, one list element per line, strict (no NaN)."""
    parts = []
    for key in sorted(obj):
        value = obj[key]
        if isinstance(value, list) and value:
            inner = ",\n    ".join(json.dumps(v, sort_keys=True, allow_nan=False) for v in value)
            parts.append(f"  {json.dumps(key)}: [\n    {inner}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def make_case(name: str, out_dir: Path) -> None:
    started = time.perf_counter()
    est, X, y, X_test, task, extra = CASES[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings from the small max_iter values
        est.fit(X, y)
    assert len(X_test) <= N_TEST
    case_dir = out_dir / name
    shutil.rmtree(case_dir / "model", ignore_errors=True)
    model_dir = export_dir(
        est,
        case_dir / "model",
        name=name.replace("_", "-"),
        version="1.0.0",
        sample=X,
        description=f"Test fixture {name} (scripts/make_fixtures.py)",
        license="BSD-3-Clause",
        created=CREATED,
        **extra,
    )
    manifest = json.loads((model_dir / "manifest.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "unknown categories" in the held-out rows
        data = expected(est, X_test, task, manifest)
    (case_dir / "expected.json").write_text(dump_json(data))
    elapsed = time.perf_counter() - started
    print(f"{name}: {len(X)} train rows, {len(X_test)} held out, {elapsed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help=f"default: all of {', '.join(CASES)}")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures")
    args = parser.parse_args()
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    for name in args.cases or CASES:
        make_case(name, args.out)


if __name__ == "__main__":
    main()
