#!/usr/bin/env python3
"""Generate the XGBoost fixtures under tests/fixtures/trees/xgboost/ (read by
crates/ingot/tests/tree_xgboost.rs).

For each case ``<case>``:

* ``<case>.json``: the trained booster in XGBoost's JSON model format (``save_model``); the
  ``binary_logistic`` case is also saved as UBJSON, ``binary_logistic.ubj``;
* ``<case>.expected.json``: held-out rows and XGBoost's own predictions on them::

      {"xgboost": "3.2.0", "objective": "...", "feature_names": [...],
       "rows": [[x or null, ...], ...],      # NaN (missing) as null; categories as their codes
       "margin": [[...], ...],               # predict(output_margin=True), one column per output
       "predict": [[...], ...]}              # predict(): values, probabilities or labels

Everything is seeded, so rerunning with the same library versions rewrites identical files:

    .venv-ref/bin/python scripts/tree_fixtures/xgboost_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn import datasets

REPO = Path(__file__).resolve().parents[2]
SEED = 0
N_TEST = 60


def split(n: int, n_test: int = N_TEST, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic hold-out split: the first ``n_test`` rows of a seeded permutation."""
    order = np.random.default_rng(seed).permutation(n)
    return order[n_test:], order[:n_test]


def with_nan(x: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A copy of ``x`` with about ``fraction`` of its cells set to NaN."""
    x = x.astype(np.float64, copy=True)
    mask = np.random.default_rng(seed).random(x.shape) < fraction
    x[mask] = np.nan
    return x


def cell(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def matrix(a: np.ndarray) -> list[list[float]]:
    """Rows of f32 predictions as exact Python floats, one list per row."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    return [[float(v) for v in row] for row in a]


def write(
    out: Path,
    case: str,
    booster: xgb.Booster,
    dtest: xgb.DMatrix | None,
    rows: np.ndarray,
    ubj: bool = False,
    predictions: tuple[np.ndarray, np.ndarray] | None = None,
):
    """Saves the model and ``<case>.expected.json``: ``rows`` with the margin and ``predict()``
    on ``dtest`` (or the given ``predictions``, margin then transformed)."""
    booster.save_model(out / f"{case}.json")
    if ubj:
        booster.save_model(out / f"{case}.ubj")
    config = json.loads(booster.save_config())
    expected = {
        "xgboost": xgb.__version__,
        "objective": config["learner"]["objective"]["name"],
        "feature_names": booster.feature_names or [f"f{i}" for i in range(rows.shape[1])],
        "rows": [[cell(v) for v in row] for row in rows],
        "margin": matrix(
            predictions[0] if predictions else booster.predict(dtest, output_margin=True)
        ),
        "predict": matrix(predictions[1] if predictions else booster.predict(dtest)),
    }
    (out / f"{case}.expected.json").write_text(json.dumps(expected, separators=(",", ":")) + "\n")
    print(f"{case}: {booster.num_boosted_rounds()} rounds, {expected['objective']}")


def train(params: dict, dtrain: xgb.DMatrix, rounds: int) -> xgb.Booster:
    return xgb.train({"seed": SEED, "nthread": 1, **params}, dtrain, num_boost_round=rounds)


def binary_logistic(out: Path):
    """breast_cancer, binary:logistic, 60 trees of depth 6; NaN in training and held-out cells."""
    data = datasets.load_breast_cancer()
    tr, te = split(len(data.target))
    x_train = with_nan(data.data[tr], 0.03, SEED + 1)
    x_test = with_nan(data.data[te], 0.10, SEED + 2)
    names = [n.replace(" ", "_") for n in data.feature_names]
    dtrain = xgb.DMatrix(x_train, label=data.target[tr], feature_names=names)
    dtest = xgb.DMatrix(x_test, feature_names=names)
    booster = train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.3}, dtrain, 60)
    write(out, "binary_logistic", booster, dtest, x_test, ubj=True)


def diabetes():
    data = datasets.load_diabetes()
    tr, te = split(len(data.target))
    return data, tr, te


def regression(out: Path):
    """diabetes, reg:squarederror, no feature names (XGBoost's f0, f1, …)."""
    data, tr, te = diabetes()
    x_test = with_nan(data.data[te], 0.05, SEED + 3)
    dtrain = xgb.DMatrix(data.data[tr], label=data.target[tr])
    booster = train({"objective": "reg:squarederror", "max_depth": 4, "eta": 0.1}, dtrain, 40)
    write(out, "regression", booster, xgb.DMatrix(x_test), x_test)


def poisson(out: Path):
    """diabetes (a positive target), count:poisson: the exp link and a log base score."""
    data, tr, te = diabetes()
    x_test = data.data[te]
    dtrain = xgb.DMatrix(data.data[tr], label=data.target[tr])
    booster = train({"objective": "count:poisson", "max_depth": 3, "eta": 0.1}, dtrain, 30)
    write(out, "poisson", booster, xgb.DMatrix(x_test), x_test)


def tweedie(out: Path):
    """diabetes, reg:tweedie."""
    data, tr, te = diabetes()
    x_test = data.data[te]
    dtrain = xgb.DMatrix(data.data[tr], label=data.target[tr])
    params = {"objective": "reg:tweedie", "tweedie_variance_power": 1.3, "max_depth": 3, "eta": 0.1}
    booster = train(params, dtrain, 30)
    write(out, "tweedie", booster, xgb.DMatrix(x_test), x_test)


def wine(out: Path):
    """wine, multi:softprob with 3 classes."""
    data = datasets.load_wine()
    tr, te = split(len(data.target), n_test=40)
    names = list(data.feature_names)
    dtrain = xgb.DMatrix(data.data[tr], label=data.target[tr], feature_names=names)
    x_test = with_nan(data.data[te], 0.05, SEED + 4)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.3}
    booster = train(params, dtrain, 20)
    write(out, "wine", booster, xgb.DMatrix(x_test, feature_names=names), x_test)


def digits(out: Path):
    """digits, multi:softprob with 10 classes, 30 rounds (300 trees)."""
    data = datasets.load_digits()
    tr, te = split(len(data.target), n_test=40)
    dtrain = xgb.DMatrix(data.data[tr], label=data.target[tr])
    params = {"objective": "multi:softprob", "num_class": 10, "max_depth": 3, "eta": 0.3}
    booster = train(params, dtrain, 30)
    x_test = data.data[te].astype(np.float64)
    write(out, "digits", booster, xgb.DMatrix(x_test), x_test)


def dart(out: Path):
    """breast_cancer, binary:logistic with the dart booster: per-tree weights."""
    data = datasets.load_breast_cancer()
    tr, te = split(len(data.target))
    dtrain = xgb.DMatrix(data.data[tr], label=data.target[tr])
    x_test = with_nan(data.data[te], 0.05, SEED + 5)
    params = {
        "booster": "dart",
        "objective": "binary:logistic",
        "max_depth": 3,
        "eta": 0.3,
        "rate_drop": 0.2,
        "skip_drop": 0.0,
    }
    booster = train(params, dtrain, 20)
    write(out, "dart", booster, xgb.DMatrix(x_test), x_test)


def categorical(out: Path):
    """diabetes plus two pandas category columns (3 categories: one-hot splits; 9 categories:
    partition splits), NaN in both columns when training; held-out rows with NaN and a code
    (8) no training row has."""
    data, tr, te = diabetes()
    rng = np.random.default_rng(SEED + 6)
    n = len(data.target)
    bmi = data.data[:, 2]
    # Codes 0..7 follow the bmi octile (so the column matters); code 8 is declared but unused.
    band = np.clip((np.argsort(np.argsort(bmi)) * 8) // n, 0, 7)
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame(data.data[:, [0, 1, 3, 4, 5]], columns=["age", "sex", "bp", "s1", "s2"])
    frame["band"] = pd.Categorical.from_codes(band, categories=[f"b{i}" for i in range(9)])
    frame["group"] = pd.Categorical.from_codes(group, categories=["x", "y", "z"])
    y = data.target + 40.0 * (group == 1) - 25.0 * (band % 3 == 0)

    train_frame = frame.iloc[tr].copy()
    for col in ["band", "group"]:
        drop = rng.random(len(train_frame)) < 0.08
        train_frame.loc[drop, col] = np.nan
    test_frame = frame.iloc[te].copy()
    test_frame.loc[test_frame.index[:6], "band"] = np.nan
    test_frame.loc[test_frame.index[6:10], "group"] = np.nan
    test_frame.loc[test_frame.index[10:16], "band"] = "b8"
    test_frame.loc[test_frame.index[16:18], "age"] = np.nan

    dtrain = xgb.DMatrix(train_frame, label=y[tr], enable_categorical=True)
    dtest = xgb.DMatrix(test_frame, enable_categorical=True)
    params = {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.2,
        "max_cat_to_onehot": 4,
    }
    booster = train(params, dtrain, 40)
    rows = test_frame.copy()
    for col in ["band", "group"]:
        codes = rows[col].cat.codes.astype(np.float64)
        rows[col] = codes.where(codes >= 0, np.nan)
    rows = rows.to_numpy(dtype=np.float64)
    # Then values no category code has, as numbers (a DMatrix from an array with the model's
    # feature types: XGBoost does not recode these): negative, fractional, past the largest
    # code and past XGBoost's 2^24 limit. XGBoost sends them left at a categorical split.
    odd = [
        -3.0,
        -1.0,
        -0.5,
        -0.0,
        0.0,
        1.5,
        2.9,
        7.99,
        8.0,
        40.0,
        16777215.0,
        16777216.0,
        1e30,
        np.nan,
    ]
    base = rows[20]
    edge = np.array(
        [[*base[:5], v, g] for v in odd for g in [-0.5, 0.0, 1.0, 2.5, 3.0, 1e9, np.nan]]
    )
    dedge = xgb.DMatrix(
        edge,
        feature_names=booster.feature_names,
        feature_types=booster.feature_types,
        enable_categorical=True,
    )
    both = np.concatenate([rows, edge])
    margin = np.concatenate(
        [booster.predict(dtest, output_margin=True), booster.predict(dedge, output_margin=True)]
    )
    predict = np.concatenate([booster.predict(dtest), booster.predict(dedge)])
    write(out, "categorical", booster, None, both, predictions=(margin, predict))


CASES = [binary_logistic, regression, poisson, tweedie, wine, digits, dart, categorical]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/trees/xgboost")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        case(args.out)


if __name__ == "__main__":
    main()
