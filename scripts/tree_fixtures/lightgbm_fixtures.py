#!/usr/bin/env python3
"""Generate the LightGBM fixtures under tests/fixtures/trees/lightgbm/.

Each case is two files:

* ``<case>.txt``: the model as ``Booster.save_model`` writes it (the text format
  ``ingot import lightgbm`` reads);
* ``<case>.json``: held-out rows and LightGBM's float64 outputs for them, predicted by the
  booster reloaded from ``<case>.txt`` (exactly what the importer sees)::

      {"model": "<case>.txt",
       "task": "binary" | "multiclass" | "regression",
       "lightgbm": "<version>",
       "rows": [[x, ...], ...],          # missing values are null
       "raw": [[s, ...], ...],           # predict(raw_score=True), one list per row
       "score_scale": s,                 # Ingot's graph scores = raw * score_scale
       "predictions": [[p, ...], ...],   # predict(): probability of class 1, class
                                         # probabilities or values
       "raw_f32": [[s, ...], ...],       # the same two on the rows rounded to float32,
       "predictions_f32": [[p, ...], ...]}  # which is what Ingot's trees compare

Ingot's graph input is float32: a held-out value equal to a training value that LightGBM split
just above (its thresholds are often that value plus an ulp of float64) can round to a float32
past the threshold, and then LightGBM itself takes the other branch on the rounded row. The
``_f32`` outputs let the test tell those rows apart from real mismatches.

``score_scale`` is LightGBM's ``sigmoid`` for a binary model (the importer folds it into the
leaf values so that a plain logistic gives LightGBM's probabilities), and 1 / iterations for a
random forest (LightGBM's ``raw_score`` is the sum over the trees; only the transformed
prediction is averaged). It is 1 otherwise.

Everything is seeded and trained single-threaded with ``deterministic``, so rerunning with the
same library versions rewrites identical files:

    .venv-ref/bin/python scripts/tree_fixtures/lightgbm_fixtures.py [--out DIR] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn import datasets

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "trees" / "lightgbm"

COMMON = {
    "verbose": -1,
    "seed": 7,
    "deterministic": True,
    "num_threads": 1,
    "force_row_wise": True,
}


def split(X: np.ndarray, y: np.ndarray, n_test: int, seed: int):
    """The first ``n_test`` rows of a seeded permutation are held out."""
    order = np.random.default_rng(seed).permutation(len(X))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test]


def with_nan(X: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A copy of ``X`` with about ``fraction`` of its cells replaced by NaN."""
    X = X.astype(np.float64, copy=True)
    X[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    return X


def rows_json(X: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in row] for row in X]


def matrix(a: np.ndarray) -> list[list[float]]:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    return [[float(v) for v in row] for row in a]


def train_and_save(
    out: Path,
    name: str,
    task: str,
    params: dict[str, Any],
    rounds: int,
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    categorical: list[int] | None = None,
    feature_names: list[str] | None = None,
) -> None:
    data = lgb.Dataset(
        X,
        y,
        feature_name=feature_names if feature_names is not None else "auto",
        categorical_feature=categorical if categorical is not None else "auto",
        free_raw_data=False,
    )
    booster = lgb.train({**COMMON, **params}, data, num_boost_round=rounds)
    path = out / f"{name}.txt"
    booster.save_model(str(path))
    reloaded = lgb.Booster(model_file=str(path))
    raw = reloaded.predict(X_test, raw_score=True)
    predictions = reloaded.predict(X_test)
    X_f32 = X_test.astype(np.float32).astype(np.float64)
    iterations = reloaded.num_trees() // reloaded.num_model_per_iteration()
    scale = 1.0
    if params.get("boosting") == "rf":
        scale /= iterations
    if task == "binary":
        scale *= params.get("sigmoid", 1.0)
    expected = {
        "model": path.name,
        "task": task,
        "lightgbm": lgb.__version__,
        "rows": rows_json(X_test),
        "raw": matrix(raw),
        "score_scale": scale,
        "predictions": matrix(predictions),
        "raw_f32": matrix(reloaded.predict(X_f32, raw_score=True)),
        "predictions_f32": matrix(reloaded.predict(X_f32)),
    }
    (out / f"{name}.json").write_text(json.dumps(expected) + "\n")
    print(f"{name}: {reloaded.num_trees()} trees, {path.stat().st_size} bytes")


def breast_cancer():
    d = datasets.load_breast_cancer()
    return (
        d.data.astype(np.float64),
        d.target.astype(np.float64),
        [n.replace(" ", "_") for n in d.feature_names],
    )


def diabetes():
    d = datasets.load_diabetes()
    return d.data.astype(np.float64), d.target.astype(np.float64), list(d.feature_names)


def binary_breast_cancer(out: Path) -> None:
    """60 trees of 31 leaves; NaN in 3% of training cells (missing type NaN), 10% of held-out."""
    X, y, names = breast_cancer()
    X_train, y_train, X_test = split(X, y, 100, 1)
    X_train = with_nan(X_train, 0.03, 2)
    X_test = with_nan(X_test, 0.10, 3)
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1}
    train_and_save(
        out, "binary_breast_cancer", "binary", params, 60, X_train, y_train, X_test, None, names
    )


def regression_diabetes(out: Path) -> None:
    """L2 regression; no NaN in training (missing type None), 10% NaN held out."""
    X, y, names = diabetes()
    X_train, y_train, X_test = split(X, y, 80, 4)
    params = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.1}
    train_and_save(
        out,
        "regression_diabetes",
        "regression",
        params,
        50,
        X_train,
        y_train,
        with_nan(X_test, 0.1, 5),
        None,
        names,
    )


def positive_diabetes(out: Path) -> None:
    """Poisson, Tweedie and gamma (log link) on the positive diabetes target."""
    X, y, names = diabetes()
    X_train, y_train, X_test = split(X, y, 60, 6)
    X_test = with_nan(X_test, 0.1, 7)
    for objective, extra in [
        ("poisson", {}),
        ("tweedie", {"tweedie_variance_power": 1.3}),
        ("gamma", {}),
    ]:
        params = {"objective": objective, "num_leaves": 7, "learning_rate": 0.1, **extra}
        train_and_save(
            out,
            f"{objective}_diabetes",
            "regression",
            params,
            25,
            X_train,
            y_train,
            X_test,
            None,
            names,
        )


def xentropy_breast_cancer(out: Path) -> None:
    """cross_entropy (a logistic-link regressor) on a [0, 1] target."""
    X, y, names = breast_cancer()
    X_train, y_train, X_test = split(X, y, 50, 8)
    target = np.clip(0.8 * y_train + 0.1 * (X_train[:, 0] > 14), 0, 1)
    params = {"objective": "cross_entropy", "num_leaves": 7, "learning_rate": 0.1}
    train_and_save(
        out,
        "xentropy_breast_cancer",
        "regression",
        params,
        20,
        X_train,
        target,
        with_nan(X_test, 0.1, 9),
        None,
        names,
    )


def multiclass_wine(out: Path) -> None:
    """3 classes; at learning rate 0.3 some class trees of later iterations are single leaves."""
    d = datasets.load_wine()
    X_train, y_train, X_test = split(d.data.astype(np.float64), d.target.astype(np.float64), 48, 10)
    params = {
        "objective": "multiclass",
        "num_class": 3,
        "num_leaves": 7,
        "learning_rate": 0.3,
        "min_data_in_leaf": 5,
    }
    # No feature names: LightGBM writes Column_0 ... Column_12.
    train_and_save(
        out,
        "multiclass_wine",
        "multiclass",
        params,
        40,
        X_train,
        y_train,
        with_nan(X_test, 0.1, 11),
    )


def multiclass_digits(out: Path) -> None:
    d = datasets.load_digits()
    X_train, y_train, X_test = split(d.data.astype(np.float64), d.target.astype(np.float64), 60, 12)
    params = {"objective": "multiclass", "num_class": 10, "num_leaves": 15, "learning_rate": 0.2}
    train_and_save(out, "multiclass_digits", "multiclass", params, 30, X_train, y_train, X_test)


def zero_as_missing_breast_cancer(out: Path) -> None:
    """zero_as_missing=True (missing type Zero): held-out zeros, tiny values and NaN."""
    X, y, names = breast_cancer()
    X_train, y_train, X_test = split(X, y, 60, 13)
    X_train = X_train.copy()
    X_train[np.random.default_rng(14).random(X_train.shape) < 0.05] = 0.0
    X_test = with_nan(X_test, 0.05, 15)
    cells = np.random.default_rng(16).random(X_test.shape)
    X_test[cells < 0.08] = 0.0
    X_test[(cells >= 0.08) & (cells < 0.10)] = -0.0
    X_test[(cells >= 0.10) & (cells < 0.11)] = 1e-40
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "zero_as_missing": True,
    }
    train_and_save(
        out,
        "zero_as_missing_breast_cancer",
        "binary",
        params,
        40,
        X_train,
        y_train,
        X_test,
        None,
        names,
    )


def no_missing_breast_cancer(out: Path) -> None:
    """use_missing=False (missing type None, NaN read as 0) and sigmoid 0.5."""
    X, y, names = breast_cancer()
    X_train, y_train, X_test = split(X, y, 60, 17)
    params = {
        "objective": "binary",
        "sigmoid": 0.5,
        "num_leaves": 15,
        "learning_rate": 0.1,
        "use_missing": False,
    }
    train_and_save(
        out,
        "no_missing_breast_cancer",
        "binary",
        params,
        40,
        with_nan(X_train, 0.03, 18),
        y_train,
        with_nan(X_test, 0.1, 19),
        None,
        names,
    )


def random_forest(out: Path) -> None:
    """boosting='rf' with bagging: multiclass (averaged over iterations) and regression."""
    d = datasets.load_wine()
    X_train, y_train, X_test = split(d.data.astype(np.float64), d.target.astype(np.float64), 48, 20)
    rf = {"boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1, "feature_fraction": 0.8}
    params = {
        **rf,
        "objective": "multiclass",
        "num_class": 3,
        "num_leaves": 7,
        "min_data_in_leaf": 5,
    }
    train_and_save(
        out, "rf_wine", "multiclass", params, 30, X_train, y_train, with_nan(X_test, 0.1, 21)
    )
    X, y, names = diabetes()
    X_train, y_train, X_test = split(X, y, 50, 22)
    params = {**rf, "objective": "regression", "num_leaves": 15}
    train_and_save(
        out,
        "rf_diabetes",
        "regression",
        params,
        30,
        X_train,
        y_train,
        with_nan(X_test, 0.1, 23),
        None,
        names,
    )


def categorical_diabetes(out: Path) -> None:
    """Native categorical splits on integer codes: `sex` (2 codes, one-hot style), a 12-code
    and a 40-code column (bitsets of two words); held-out codes never seen, negative,
    fractional, huge and NaN."""
    X, y, names = diabetes()
    rng = np.random.default_rng(24)

    def codes(column: np.ndarray, k: int) -> np.ndarray:
        ranks = np.argsort(np.argsort(column, kind="stable"), kind="stable")
        return rng.permutation(k)[ranks * k // len(column)].astype(np.float64)

    sex = (X[:, 1] > 0).astype(np.float64)
    X = np.column_stack([X[:, [0, 3, 4, 5, 6, 7, 9]], sex, codes(X[:, 2], 12), codes(X[:, 8], 40)])
    names = [names[i] for i in [0, 3, 4, 5, 6, 7, 9]] + ["sex_code", "bmi_code", "s5_code"]
    X_train, y_train, X_test = split(X, y, 60, 25)
    X_test = X_test.copy()
    odd = [45.0, 77.0, 1000.0, -1.0, -3.5, -0.5, 3.7, 11.999, 3e9, np.nan, 0.0, 39.0]
    for i, v in enumerate(odd):
        X_test[i, 7 + i % 3] = v
        X_test[i + len(odd), 9] = v
        X_test[i + 2 * len(odd), 8] = v
    params = {
        "objective": "regression",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "min_data_in_leaf": 5,
        "min_data_per_group": 5,
        "cat_smooth": 1.0,
        "cat_l2": 1.0,
        "max_cat_threshold": 32,
    }
    train_and_save(
        out,
        "categorical_diabetes",
        "regression",
        params,
        60,
        X_train,
        y_train,
        X_test,
        [7, 8, 9],
        names,
    )


CASES: dict[str, Callable[[Path], None]] = {
    "binary_breast_cancer": binary_breast_cancer,
    "regression_diabetes": regression_diabetes,
    "positive_diabetes": positive_diabetes,
    "xentropy_breast_cancer": xentropy_breast_cancer,
    "multiclass_wine": multiclass_wine,
    "multiclass_digits": multiclass_digits,
    "zero_as_missing_breast_cancer": zero_as_missing_breast_cancer,
    "no_missing_breast_cancer": no_missing_breast_cancer,
    "random_forest": random_forest,
    "categorical_diabetes": categorical_diabetes,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("cases", nargs="*", help=f"default: all of {', '.join(CASES)}")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {list(CASES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cases or CASES:
        CASES[name](args.out)


if __name__ == "__main__":
    main()
