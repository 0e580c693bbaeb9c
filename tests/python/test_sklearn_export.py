"""Tests for ``ingot.sklearn.export``.

Every supported estimator and transformer is fitted on real bundled scikit-learn data (breast
cancer, digits, diabetes, wine, iris) or on a synthetic mixed-type DataFrame, exported, and then
checked twice against scikit-learn's own predictions on held-out rows:

* ``test_reference_matches_sklearn`` runs the exported bundle through a small NumPy
  implementation of docs/format.md (below). It needs no CLI, and it also checks that the
  pre-processing reproduces ``pipeline[:-1].transform`` exactly, column order included.
* ``test_cli_matches_sklearn`` packs the directory with ``ingot pack`` and predicts with
  ``ingot predict`` (JSON lines; one case also with CSV in and out).

Tolerances (the bundle computes the model in float32, scikit-learn in float64):

* labels must be identical;
* probabilities: ``|p_ingot - p_sklearn| <= 1e-6 + 1e-5 * |p_sklearn|`` (rtol 1e-5, atol 1e-6);
* regression values: ``|y_ingot - y_sklearn| <= 1e-5 * |y_sklearn| + 1e-5 * scale``, where
  ``scale`` is the standard deviation of the training target. A float32 dot product is accurate
  relative to the size of the terms it sums, which is of the order of the target's spread, not
  of the particular prediction (a prediction near 0 built from large terms cannot be accurate
  relative to itself), so the absolute part is expressed in units of the target scale.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import LinearSVC, LinearSVR

import ingot
from ingot.sklearn import UnsupportedError, export_dir

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CREATED = "2026-01-01T00:00:00Z"
PROBA_RTOL, PROBA_ATOL = 1e-5, 1e-6
VALUE_RTOL, VALUE_ATOL_PER_SCALE = 1e-5, 1e-5
N_TEST = 40


# ------------------------------------------------------------------------------------------------
# A NumPy reference implementation of docs/format.md §3–§5 for the unpacked directory.


class InputError(ValueError):
    """A request row the model refuses (the CLI exits non-zero for these)."""


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _matches(category: Any, v: Any) -> bool:
    if category is None:
        return _missing(v)
    if _missing(v):
        return False
    if isinstance(category, str) or isinstance(v, str):
        return isinstance(category, str) and isinstance(v, str) and category == v
    return float(category) == float(v)


def _numeric(col: list[Any]) -> np.ndarray:
    return np.array([np.nan if _missing(v) else float(v) for v in col], dtype=np.float64)


def _lookup(categories: list[Any], v: Any) -> int | None:
    for k, c in enumerate(categories):
        if _matches(c, v):
            return k
    return None


def _apply_step(step: dict, cols: list[list[Any]], names: list[str]) -> list[Any]:
    kind = step["type"]
    if kind == "passthrough":
        return cols
    if kind == "simple_imputer":
        return [
            [f if _missing(v) else v for v in c] for c, f in zip(cols, step["fill"], strict=True)
        ]
    if kind in ("standard_scaler", "robust_scaler"):
        shift = step["mean"] if kind == "standard_scaler" else step["center"]
        out = []
        for j, c in enumerate(cols):
            x = _numeric(c)
            if shift is not None:
                x = x - shift[j]
            if step["scale"] is not None:
                x = x / step["scale"][j]
            out.append(list(x))
        return out
    if kind == "max_abs_scaler":
        return [list(_numeric(c) / s) for c, s in zip(cols, step["scale"], strict=True)]
    if kind == "min_max_scaler":
        out = []
        for j, c in enumerate(cols):
            x = _numeric(c) * step["scale"][j] + step["min"][j]
            if step["clip"]:
                x = np.clip(x, *step["feature_range"])
            out.append(list(x))
        return out
    if kind == "one_hot_encoder":
        out = []
        for j, c in enumerate(cols):
            cats, drop = step["categories"][j], step["drop"][j]
            idx = []
            for row, v in enumerate(c):
                k = _lookup(cats, v)
                if k is None and step["handle_unknown"] == "error":
                    raise InputError(f"row {row}: column {names[j]!r}: unknown category {v!r}")
                idx.append(k)
            for k in range(len(cats)):
                if k != drop:
                    out.append([1.0 if i == k else 0.0 for i in idx])
        return out
    if kind == "ordinal_encoder":
        out = []
        for j, c in enumerate(cols):
            cats = step["categories"][j]
            col = []
            for row, v in enumerate(c):
                if _missing(v) and step["encoded_missing_value"] is not None:
                    col.append(float(step["encoded_missing_value"]))
                    continue
                k = _lookup(cats, v)
                if k is not None:
                    col.append(float(k))
                elif step["handle_unknown"] == "use_encoded_value":
                    unknown = step["unknown_value"]
                    col.append(np.nan if unknown is None else float(unknown))
                else:
                    raise InputError(f"row {row}: column {names[j]!r}: unknown category {v!r}")
            out.append(col)
        return out
    raise AssertionError(f"unknown step type {kind}")


def reference_features(manifest: dict, records: list[dict]) -> np.ndarray:
    """The float64 feature matrix the tabular pre-processing produces (before f32 rounding)."""
    (tab,) = manifest["preprocess"]
    assert tab["type"] == "tabular"
    blocks = []
    for t in tab["transformers"]:
        names = list(t["columns"])
        cols: list[Any] = [[r.get(c) for r in records] for c in names]
        for step in t["steps"]:
            cols = _apply_step(step, cols, names)
            names = (
                [f"{t['name']}[{i}]" for i in range(len(cols))]
                if len(cols) != len(names)
                else names
            )
        blocks.append(np.array([_numeric(c) for c in cols], dtype=np.float64).T)
    return np.hstack(blocks)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_predict(model_dir: Path, records: list[dict]) -> tuple[list[dict], np.ndarray]:
    """Outputs in the CLI's JSON-lines shape, plus the f64 feature matrix."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    tensors = {p.stem: np.load(p) for p in (model_dir / "tensors").glob("*.npy")}
    features = reference_features(manifest, records)
    bad = np.argwhere(~np.isfinite(features))
    if len(bad):
        raise InputError(f"row {bad[0][0]}: feature {bad[0][1]} is missing or not finite")
    graph = manifest["graph"]
    env: dict[str, np.ndarray] = {graph["inputs"][0]["name"]: features.astype(np.float32)}
    env.update({k: v.astype(np.float32) for k, v in tensors.items()})
    for node in graph["nodes"]:
        args = [env[i] for i in node["inputs"]]
        op = node["op"]
        if op == "Linear":
            y = args[0] @ args[1].T + (args[2] if len(args) > 2 else 0)
        elif op == "Relu":
            y = np.maximum(args[0], 0)
        elif op == "Tanh":
            y = np.tanh(args[0])
        elif op == "Sigmoid":
            y = _sigmoid(args[0])
        elif op == "Identity":
            y = args[0]
        else:
            raise AssertionError(f"op {op} not implemented in the reference")
        (out,) = node["outputs"]
        env[out] = np.asarray(y, dtype=np.float32)
    scores = env[graph["outputs"][0]["name"]].astype(np.float64)
    (post,) = manifest["postprocess"]
    rows: list[dict] = []
    if post["type"] == "regress":
        for s in scores:
            rows.append(
                {"value": float(s[0])} if len(s) == 1 else {"values": [float(v) for v in s]}
            )
        return rows, features
    classes, activation = post["classes"], post["activation"]
    for s in scores:
        row: dict[str, Any] = {}
        if activation == "logistic" and len(s) == 1:
            p = float(_sigmoid(s[0]))
            row = {"label": classes[int(p > 0.5)], "probabilities": [1 - p, p]}
        elif activation == "logistic":
            p = _sigmoid(s)
            p = p / p.sum()
            row = {"label": classes[int(np.argmax(p))], "probabilities": list(p)}
        elif activation == "softmax":
            e = np.exp(s - s.max())
            p = e / e.sum()
            row = {"label": classes[int(np.argmax(p))], "probabilities": list(p)}
        else:
            label = classes[int(s[0] > 0)] if len(s) == 1 else classes[int(np.argmax(s))]
            row = {"label": label}
        rows.append(row)
    return rows, features


# ------------------------------------------------------------------------------------------------
# Data


def to_records(X: Any, names: list[str] | None = None) -> list[dict]:
    """Rows as JSON-ready dicts: NaN/None → None, NumPy scalars → Python scalars."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=names)
    out = []
    for row in frame.astype(object).itertuples(index=False):
        rec = {}
        for name, v in zip(frame.columns, row, strict=True):
            if _missing(v) or v is pd.NA:
                rec[str(name)] = None
            elif isinstance(v, (np.integer, int)):
                rec[str(name)] = int(v)
            elif isinstance(v, (np.floating, float)):
                rec[str(name)] = float(v)
            else:
                rec[str(name)] = str(v)
        out.append(rec)
    return out


def split(X: Any, y: Any, n_test: int = N_TEST, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    test, train = idx[:n_test], idx[n_test:]
    take = (lambda a, i: a.iloc[i]) if isinstance(X, pd.DataFrame) else (lambda a, i: a[i])
    return take(X, train), np.asarray(y)[train], take(X, test), np.asarray(y)[test]


def _frame(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    data = getattr(datasets, f"load_{name}")(as_frame=True)
    return data.data, data.target.to_numpy()


def mixed_frame(n: int, seed: int, held_out: bool = False) -> pd.DataFrame:
    """Synthetic table: numeric with NaN, string categoricals (with missing), an int category.

    ``held_out=True`` adds categories never seen in training (``"purple"``, ``"Atlantis"``) and
    more missing values.
    """
    rng = np.random.default_rng(seed)
    colors = ["red", "green", "blue", "black"] + (["purple"] if held_out else [])
    cities = ["Paris", "Lima", "Oslo", "Pune", "Kyiv"] + (["Atlantis"] if held_out else [])
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "income": rng.lognormal(10, 0.5, n).round(2),
            "color": rng.choice(colors, n),
            "city": rng.choice(cities, n),
            "rooms": rng.integers(1, 6, n),
            "score": rng.uniform(-3, 3, n),
        }
    )
    nan_rate = 0.25 if held_out else 0.1
    for col in ("age", "income"):
        frame.loc[rng.random(n) < nan_rate, col] = np.nan
    frame.loc[rng.random(n) < nan_rate, "color"] = np.nan
    return frame


def mixed_target(frame: pd.DataFrame, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    z = (
        0.05 * (frame["age"].fillna(40) - 40)
        + 0.8 * (frame["color"] == "red")
        - 0.6 * (frame["city"] == "Oslo")
        + 0.3 * frame["rooms"]
        + 0.4 * frame["score"]
        + rng.normal(0, 0.5, len(frame))
    ).to_numpy(dtype=float)
    if kind == "regress":
        return 100 + 10 * z
    if kind == "binary":
        return (z > np.median(z)).astype(int)
    return np.array(["low", "mid", "high"])[np.digitize(z, np.quantile(z, [1 / 3, 2 / 3]))]


# ------------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    estimator: Any
    X_train: Any
    y_train: Any
    X_test: Any
    task: str  # "classify" or "regress"
    names: list[str] | None = None  # column names for numpy input
    extra: dict = field(default_factory=dict)

    def records(self) -> list[dict]:
        return to_records(self.X_test, self.names)


def _dataset(name: str, as_frame: bool = True, n_test: int = N_TEST):
    X, y = _frame(name)
    if not as_frame:
        X = X.to_numpy()
    return split(X, y, n_test)


def _real(name: str, estimator: Any, task: str, as_frame: bool = True) -> Case:
    X_train, y_train, X_test, _ = _dataset(name, as_frame)
    names = None if as_frame else [f"x{i}" for i in range(X_train.shape[1])]
    return Case(estimator, X_train, y_train, X_test, task, names)


def _with_nans(name: str, estimator: Any, task: str, empty_column: bool = False) -> Case:
    """Real data with ~10 % of values knocked out (and optionally one all-missing column)."""
    X_train, y_train, X_test, _ = _dataset(name)
    rng = np.random.default_rng(7)
    X_train, X_test = X_train.copy(), X_test.copy()
    for frame in (X_train, X_test):
        mask = rng.random(frame.shape) < 0.1
        frame[mask] = np.nan
    if empty_column:
        X_train.iloc[:, 3] = np.nan
    return Case(estimator, X_train, y_train, X_test, task)


def _mixed(estimator: Any, task: str, target: str, n: int = 400) -> Case:
    train = mixed_frame(n, seed=1)
    test = mixed_frame(N_TEST, seed=2, held_out=True)
    return Case(estimator, train, mixed_target(train, target, 1), test, task)


def _ct_numeric_pipeline(scaler: Any) -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="median"), scaler)


def _mixed_ct(**overrides: Any) -> ColumnTransformer:
    parts = {
        "num": _ct_numeric_pipeline(StandardScaler()),
        "color": make_pipeline(
            SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
        ),
        "city": OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    }
    columns = {"num": ["age", "income"], "color": ["color"], "city": ["city"]}
    remainder = overrides.pop("remainder", "passthrough")
    parts.update(overrides)
    return ColumnTransformer([(k, v, columns[k]) for k, v in parts.items()], remainder=remainder)


def _mlp(**kw: Any) -> dict:
    return {"hidden_layer_sizes": (16,), "max_iter": 300, "random_state": 0, **kw}


CASES: dict[str, Callable[[], Case]] = {
    # --- estimators on bundled data
    "logreg_binary": lambda: _real(
        "breast_cancer", make_pipeline(StandardScaler(), LogisticRegression()), "classify"
    ),
    "logreg_multinomial": lambda: _real(
        "wine", make_pipeline(StandardScaler(), LogisticRegression()), "classify"
    ),
    "linear_regression": lambda: _real("diabetes", LinearRegression(), "regress"),
    "ridge": lambda: _real("diabetes", make_pipeline(StandardScaler(), Ridge()), "regress"),
    "lasso": lambda: _real("diabetes", Lasso(alpha=0.05), "regress"),
    "elastic_net": lambda: _real("diabetes", ElasticNet(alpha=0.01), "regress"),
    "sgd_classifier_log_binary": lambda: _real(
        "breast_cancer",
        make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)),
        "classify",
    ),
    "sgd_classifier_log_multiclass": lambda: _real(
        "iris",
        make_pipeline(RobustScaler(), SGDClassifier(loss="log_loss", random_state=0)),
        "classify",
    ),
    "sgd_classifier_hinge": lambda: _real(
        "iris", make_pipeline(StandardScaler(), SGDClassifier(random_state=0)), "classify"
    ),
    "sgd_classifier_modified_huber_binary": lambda: _real(
        "breast_cancer",
        make_pipeline(StandardScaler(), SGDClassifier(loss="modified_huber", random_state=0)),
        "classify",
    ),
    "sgd_regressor": lambda: _real(
        "diabetes", make_pipeline(StandardScaler(), SGDRegressor(random_state=0)), "regress"
    ),
    "linear_svc_binary": lambda: _real(
        "breast_cancer", make_pipeline(StandardScaler(), LinearSVC()), "classify"
    ),
    "linear_svc_multiclass": lambda: _real(
        "wine", make_pipeline(StandardScaler(), LinearSVC()), "classify"
    ),
    "linear_svr": lambda: _real(
        "diabetes", make_pipeline(StandardScaler(), LinearSVR(C=10, max_iter=5000)), "regress"
    ),
    "mlp_classifier_digits": lambda: _real(
        "digits",
        make_pipeline(StandardScaler(), MLPClassifier(**_mlp(hidden_layer_sizes=(32, 16)))),
        "classify",
    ),
    "mlp_classifier_binary": lambda: _real(
        "breast_cancer", make_pipeline(StandardScaler(), MLPClassifier(**_mlp())), "classify"
    ),
    **{
        f"mlp_classifier_{act}": (
            lambda act=act: _real(
                "iris",
                make_pipeline(StandardScaler(), MLPClassifier(**_mlp(activation=act))),
                "classify",
            )
        )
        for act in ("relu", "tanh", "logistic", "identity")
    },
    "mlp_regressor": lambda: _real(
        "diabetes",
        make_pipeline(StandardScaler(), MLPRegressor(**_mlp(hidden_layer_sizes=(32, 8)))),
        "regress",
    ),
    "multi_output_linear_regression": lambda: _multi_output(LinearRegression()),
    "multi_output_ridge": lambda: _multi_output(make_pipeline(MinMaxScaler(), Ridge())),
    "multi_output_mlp_regressor": lambda: _multi_output(
        make_pipeline(StandardScaler(), MLPRegressor(**_mlp()))
    ),
    # --- numpy input (columns named x0, x1, ...)
    "numpy_input_bare_estimator": lambda: _real(
        "iris", LogisticRegression(max_iter=1000), "classify", as_frame=False
    ),
    "numpy_input_column_transformer": lambda: _numpy_column_transformer(),
    # --- transformers
    **{
        f"simple_imputer_{s}": (
            lambda s=s: _with_nans(
                "breast_cancer",
                make_pipeline(SimpleImputer(strategy=s), StandardScaler(), LogisticRegression()),
                "classify",
            )
        )
        for s in ("mean", "median", "most_frequent")
    },
    "simple_imputer_constant": lambda: _with_nans(
        "diabetes",
        make_pipeline(SimpleImputer(strategy="constant", fill_value=-1.5), Ridge()),
        "regress",
    ),
    "simple_imputer_keep_empty_features": lambda: _with_nans(
        "breast_cancer",
        make_pipeline(
            SimpleImputer(keep_empty_features=True), StandardScaler(), LogisticRegression()
        ),
        "classify",
        empty_column=True,
    ),
    "simple_imputer_missing_none": lambda: _mixed_none_strings(),
    "standard_scaler_no_mean": lambda: _real(
        "wine", make_pipeline(StandardScaler(with_mean=False), LogisticRegression()), "classify"
    ),
    "standard_scaler_no_std": lambda: _real(
        "diabetes", make_pipeline(StandardScaler(with_std=False), Ridge()), "regress"
    ),
    "min_max_scaler_clip": lambda: _real(
        "wine",
        make_pipeline(
            MinMaxScaler(feature_range=(-1, 2), clip=True), LogisticRegression(max_iter=500)
        ),
        "classify",
    ),
    "robust_scaler": lambda: _real(
        "breast_cancer", make_pipeline(RobustScaler(), LogisticRegression()), "classify"
    ),
    "robust_scaler_no_centering": lambda: _real(
        "diabetes", make_pipeline(RobustScaler(with_centering=False), Ridge()), "regress"
    ),
    "robust_scaler_no_scaling": lambda: _real(
        "diabetes", make_pipeline(RobustScaler(with_scaling=False), Ridge()), "regress"
    ),
    "max_abs_scaler": lambda: _real(
        "breast_cancer", make_pipeline(MaxAbsScaler(), LogisticRegression()), "classify"
    ),
    "mixed_column_transformer": lambda: _mixed(
        make_pipeline(_mixed_ct(), LogisticRegression()), "classify", "binary"
    ),
    "mixed_string_classes": lambda: _mixed(
        make_pipeline(_mixed_ct(), LogisticRegression(max_iter=1000)), "classify", "multi"
    ),
    "mixed_remainder_drop_and_drop_transformer": lambda: _mixed(
        make_pipeline(
            _mixed_ct(remainder="drop", city="drop"), MLPClassifier(**_mlp(activation="tanh"))
        ),
        "classify",
        "multi",
    ),
    "mixed_passthrough_transformer": lambda: _mixed(
        make_pipeline(
            ColumnTransformer(
                [
                    ("keep", "passthrough", ["rooms", "score"]),
                    ("num", _ct_numeric_pipeline(RobustScaler()), ["age", "income"]),
                    (
                        "color",
                        make_pipeline(
                            SimpleImputer(strategy="constant", fill_value="none"),
                            OneHotEncoder(handle_unknown="ignore"),
                        ),
                        ["color"],
                    ),
                ],
                remainder="drop",
                sparse_threshold=1.0,
            ),
            LinearSVC(),
        ),
        "classify",
        "binary",
    ),
    "mixed_one_hot_drop_first": lambda: _mixed(
        make_pipeline(
            _mixed_ct(
                num=_ct_numeric_pipeline(MaxAbsScaler()),
                color=make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(drop="first", handle_unknown="ignore"),
                ),
                city=OneHotEncoder(handle_unknown="ignore", drop="if_binary"),
            ),
            ElasticNet(alpha=0.01),
        ),
        "regress",
        "regress",
    ),
    "mixed_one_hot_missing_category": lambda: _mixed(
        make_pipeline(
            _mixed_ct(color=OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            SGDRegressor(random_state=0),
        ),
        "regress",
        "regress",
    ),
    "mixed_one_hot_int_category": lambda: _mixed(
        make_pipeline(
            _mixed_ct(remainder=OneHotEncoder(handle_unknown="ignore")),
            LinearSVR(max_iter=5000),
        ),
        "regress",
        "regress",
    ),
    "mixed_ordinal_encoded_missing_value": lambda: _mixed(
        make_pipeline(
            _mixed_ct(
                color=OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
                )
            ),
            Lasso(alpha=0.01),
        ),
        "regress",
        "regress",
    ),
    "mixed_scaler_after_column_transformer": lambda: _mixed(
        Pipeline(
            [
                ("pre", make_pipeline(_mixed_ct(remainder=StandardScaler()), StandardScaler())),
                ("model", make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000))),
            ]
        ),
        "classify",
        "multi",
    ),
}


def _mixed_none_strings() -> Case:
    """Object column whose missing values are None, imputed with missing_values=None."""
    case = _mixed(
        make_pipeline(
            ColumnTransformer(
                [
                    (
                        "color",
                        make_pipeline(
                            SimpleImputer(missing_values=None, strategy="most_frequent"),
                            OneHotEncoder(handle_unknown="ignore"),
                        ),
                        ["color"],
                    )
                ],
                remainder="drop",
            ),
            LogisticRegression(),
        ),
        "classify",
        "binary",
    )
    for frame in (case.X_train, case.X_test):
        frame["color"] = frame["color"].astype(object).where(frame["color"].notna(), None)
    return case


def _multi_output(estimator: Any) -> Case:
    X_train, y_train, X_test, _ = _dataset("diabetes")
    second = 0.5 * y_train + 100 * X_train.iloc[:, 2].to_numpy()
    return Case(estimator, X_train, np.column_stack([y_train, second]), X_test, "regress")


def _numpy_column_transformer() -> Case:
    X_train, y_train, X_test, _ = _dataset("wine", as_frame=False)
    ct = ColumnTransformer(
        [
            ("minmax", MinMaxScaler(), [0, 1, 2]),
            ("dropped", "drop", [3]),
            ("robust", make_pipeline(RobustScaler()), [5, 4]),
        ],
        remainder=StandardScaler(),
    )
    names = [f"x{i}" for i in range(X_train.shape[1])]
    return Case(
        make_pipeline(ct, LogisticRegression(max_iter=1000)),
        X_train,
        y_train,
        X_test,
        "classify",
        names,
    )


@functools.cache
def fitted(case_id: str) -> Case:
    case = CASES[case_id]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.estimator.fit(case.X_train, case.y_train)
    return case


def sklearn_expected(case: Case) -> dict:
    est = case.estimator
    X = case.X_test
    if case.task == "classify":
        out = {"labels": list(est.predict(X))}
        if _has_proba(est):
            out["probabilities"] = np.asarray(est.predict_proba(X), dtype=np.float64)
        return out
    values = np.asarray(est.predict(X), dtype=np.float64)
    scale = float(np.std(case.y_train, axis=0).max())
    return {"values": values.reshape(len(values), -1), "scale": scale}


def _has_proba(est: Any) -> bool:
    """Whether ingot reports probabilities: sklearn has predict_proba (modified_huber aside)."""
    final = est[-1] if isinstance(est, Pipeline) else est
    return hasattr(est, "predict_proba") and getattr(final, "loss", None) != "modified_huber"


def _probabilities(row: dict) -> list[float]:
    """The CLI writes ``{"<class>": p}`` in class order; the reference rows are plain lists."""
    probs = row["probabilities"]
    return list(probs.values()) if isinstance(probs, dict) else probs


def assert_outputs_match(case: Case, rows: list[dict], where: str) -> None:
    expected = sklearn_expected(case)
    assert len(rows) == len(case.records()), where
    if case.task == "classify":
        labels = [r["label"] for r in rows]
        want = [_py(v) for v in expected["labels"]]
        assert labels == want, f"{where}: labels differ"
        if "probabilities" in expected:
            got = np.array([_probabilities(r) for r in rows], dtype=np.float64)
            np.testing.assert_allclose(
                got, expected["probabilities"], rtol=PROBA_RTOL, atol=PROBA_ATOL, err_msg=where
            )
        else:
            assert all("probabilities" not in r for r in rows), where
        return
    values = expected["values"]
    if values.shape[1] == 1:
        got = np.array([[r["value"]] for r in rows], dtype=np.float64)
    else:
        got = np.array([r["values"] for r in rows], dtype=np.float64)
    np.testing.assert_allclose(
        got, values, rtol=VALUE_RTOL, atol=VALUE_ATOL_PER_SCALE * expected["scale"], err_msg=where
    )


def _flat_steps(est: Any) -> list[Any]:
    if isinstance(est, Pipeline):
        return [s for _, step in est.steps for s in _flat_steps(step)]
    return [] if est is None or isinstance(est, str) else [est]


def sklearn_features(est: Any, X: Any) -> np.ndarray:
    """What scikit-learn feeds the final estimator (all nested pipeline steps but the last)."""
    for step in _flat_steps(est)[:-1]:
        X = step.transform(X)
    X = X.toarray() if hasattr(X, "toarray") else X
    return np.asarray(X, dtype=np.float64)


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def export_case(case_id: str, directory: Path, **kw: Any) -> Path:
    case = fitted(case_id)
    name = re.sub(r"[^A-Za-z0-9._-]", "-", case_id)
    return export_dir(case.estimator, directory, name=name, version="1.0.0", created=CREATED, **kw)


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _strict_json(text: str) -> Any:
    def reject(constant: str) -> Any:
        raise AssertionError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


# ------------------------------------------------------------------------------------------------
# Tests without the CLI


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_reference_matches_sklearn(case_id: str, tmp_path: Path) -> None:
    case = fitted(case_id)
    model_dir = export_case(case_id, tmp_path / "model")
    manifest = _strict_json((model_dir / "manifest.json").read_text())
    assert "checksum" not in manifest

    # Pre-processing reproduces scikit-learn's transform exactly (same columns, same order).
    features = reference_features(manifest, case.records())
    want = sklearn_features(case.estimator, case.X_test)
    np.testing.assert_allclose(features, want, rtol=1e-12, atol=1e-12)
    assert features.shape[1] == manifest["graph"]["inputs"][0]["shape"][1]

    rows, _ = reference_predict(model_dir, case.records())
    assert_outputs_match(case, rows, f"{case_id} (reference implementation)")


def test_column_order_matches_feature_names_out(tmp_path: Path) -> None:
    case = fitted("mixed_passthrough_transformer")
    ct = case.estimator[0]
    model_dir = export_case("mixed_passthrough_transformer", tmp_path / "m")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    names_out = list(ct.get_feature_names_out())
    produced = []
    for t in manifest["preprocess"][0]["transformers"]:
        width = len(t["columns"])
        for step in t["steps"]:
            if step["type"] == "one_hot_encoder":
                width = sum(
                    len(c) - (d is not None)
                    for c, d in zip(step["categories"], step["drop"], strict=True)
                )
        produced += [t["name"]] * width
    assert [n.split("__")[0] for n in names_out] == produced
    assert names_out[:2] == ["keep__rooms", "keep__score"]


def test_signature_and_manifest_fields(tmp_path: Path) -> None:
    case = fitted("mixed_column_transformer")
    sample = case.X_train
    model_dir = export_case(
        "mixed_column_transformer",
        tmp_path / "m",
        sample=sample,
        description="demo",
        license="MIT",
        authors=["A. Author"],
        tags=["tabular"],
        metrics={"accuracy": np.float64(0.9), "rows": 400},
        training_data_digest="sha256:" + "0" * 64,
    )
    manifest = _strict_json((model_dir / "manifest.json").read_text())
    sig = manifest["signature"]
    assert [(i["name"], i["dtype"]) for i in sig["inputs"]] == [
        ("age", "f64"),
        ("income", "f64"),
        ("color", "string"),
        ("city", "string"),
        ("rooms", "f64"),
        ("score", "f64"),
    ]
    assert sig["request_forms"] == ["records", "columns"]
    assert sig["outputs"] == [
        {"name": "probabilities", "dtype": "f32", "shape": [-1, 2]},
        {"name": "label", "dtype": "i64", "shape": [-1]},
    ]
    assert manifest["model"] == {
        "name": "mixed_column_transformer",
        "version": "1.0.0",
        "created": CREATED,
        "description": "demo",
        "license": "MIT",
        "authors": ["A. Author"],
        "tags": ["tabular"],
        "metrics": {"accuracy": 0.9, "rows": 400},
        "training_data_digest": "sha256:" + "0" * 64,
    }
    assert manifest["producer"]["name"] == "ingot.sklearn"
    assert manifest["producer"]["version"] == ingot.__version__
    assert manifest["producer"]["framework"].startswith("scikit-learn ")
    assert manifest["postprocess"] == [
        {"type": "classify", "activation": "logistic", "classes": [0, 1]}
    ]
    ref = manifest["reference"]
    assert ref["sample"] == to_records(sample.head(5))
    stats = ref["columns"]["age"]
    ages = sample["age"].dropna().to_numpy()
    assert stats["count"] == len(ages)
    assert stats["mean"] == pytest.approx(ages.mean())
    assert stats["std"] == pytest.approx(ages.std(ddof=1))
    assert stats["quantiles"][0] == ages.min() and stats["quantiles"][-1] == ages.max()
    assert len(stats["quantiles"]) == 11
    assert set(ref["columns"]) == {"age", "income", "rooms", "score"}
    for p in (model_dir / "tensors").glob("*.npy"):
        arr = np.load(p)
        assert arr.dtype == np.dtype("<f4") and arr.flags["C_CONTIGUOUS"]
    assert sorted(p.name for p in (model_dir / "tensors").iterdir()) == [
        "coef.npy",
        "intercept.npy",
    ]


def test_int_category_dtype_and_dense_form(tmp_path: Path) -> None:
    case = fitted("mixed_one_hot_int_category")
    manifest = json.loads(
        (export_case("mixed_one_hot_int_category", tmp_path / "m") / "manifest.json").read_text()
    )
    dtypes = {i["name"]: i["dtype"] for i in manifest["signature"]["inputs"]}
    assert dtypes["rooms"] == "i64"
    assert case is not None
    numeric = json.loads(
        (export_case("logreg_binary", tmp_path / "n") / "manifest.json").read_text()
    )
    assert numeric["signature"]["request_forms"] == ["records", "columns", "dense"]
    assert numeric["graph"]["inputs"] == [{"name": "features", "dtype": "f32", "shape": [-1, 30]}]


def test_string_class_labels(tmp_path: Path) -> None:
    manifest = json.loads(
        (export_case("mixed_string_classes", tmp_path / "m") / "manifest.json").read_text()
    )
    (post,) = manifest["postprocess"]
    assert post == {"type": "classify", "activation": "softmax", "classes": ["high", "low", "mid"]}
    assert manifest["signature"]["outputs"][1]["dtype"] == "string"


def test_mlp_graph_layout(tmp_path: Path) -> None:
    model_dir = export_case("mlp_classifier_digits", tmp_path / "m")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    ops = [n["op"] for n in manifest["graph"]["nodes"]]
    assert ops == ["Linear", "Relu", "Linear", "Relu", "Linear"]
    mlp = fitted("mlp_classifier_digits").estimator[-1]
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
        np.testing.assert_array_equal(
            np.load(model_dir / "tensors" / f"layer{i}.weight.npy"), w.T.astype(np.float32)
        )
        np.testing.assert_array_equal(
            np.load(model_dir / "tensors" / f"layer{i}.bias.npy"), b.astype(np.float32)
        )
    assert manifest["postprocess"][0]["activation"] == "softmax"
    assert manifest["graph"]["outputs"][0]["shape"] == [-1, 10]


def test_export_is_deterministic(tmp_path: Path) -> None:
    case = fitted("mixed_column_transformer")
    a = export_case("mixed_column_transformer", tmp_path / "a", sample=case.X_train)
    b = export_case("mixed_column_transformer", tmp_path / "b", sample=case.X_train)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_reexport_removes_stale_tensors(tmp_path: Path) -> None:
    export_case("mlp_classifier_binary", tmp_path / "m")
    export_case("logreg_binary", tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m" / "tensors").iterdir())
    assert names == ["coef.npy", "intercept.npy"]


def test_created_defaults_to_utc_now(tmp_path: Path) -> None:
    case = fitted("linear_regression")
    export_dir(case.estimator, tmp_path / "m", name="lr", version="0.1.0-rc.1+build.5")
    created = json.loads((tmp_path / "m" / "manifest.json").read_text())["model"]["created"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (KNeighborsClassifier(n_neighbors=3), "KNeighborsClassifier"),
        (
            make_pipeline(SimpleImputer(add_indicator=True), LogisticRegression()),
            "add_indicator",
        ),
        (
            make_pipeline(OneHotEncoder(min_frequency=5), LogisticRegression()),
            "min_frequency",
        ),
        (
            make_pipeline(OrdinalEncoder(max_categories=3), LogisticRegression()),
            "max_categories",
        ),
        (
            make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()),
            "FunctionTransformer",
        ),
        (
            make_pipeline(SimpleImputer(missing_values=-1.0), LogisticRegression()),
            "missing_values",
        ),
        (make_pipeline(StandardScaler()), "StandardScaler"),
    ],
    ids=[
        "k_neighbors",
        "add_indicator",
        "min_frequency",
        "max_categories",
        "function",
        "missing_values",
        "no_estimator",
    ],
)
def test_unsupported_raises(estimator: Any, message: str, tmp_path: Path) -> None:
    X, y = _frame("breast_cancer")
    X = X.iloc[:120, :4].abs().round(0)
    estimator.fit(X, y[:120])
    with pytest.raises(UnsupportedError, match=message):
        export_dir(estimator, tmp_path / "m", name="bad", version="1.0.0")
    assert issubclass(UnsupportedError, ValueError)


def test_unsupported_all_missing_column_dropped(tmp_path: Path) -> None:
    X, y = _frame("iris")
    X = X.copy()
    X.iloc[:, 1] = np.nan
    est = make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, y)
    with pytest.raises(UnsupportedError, match="keep_empty_features"):
        export_dir(est, tmp_path / "m", name="bad", version="1.0.0")


def test_unsupported_missing_category_not_imputed(tmp_path: Path) -> None:
    train = mixed_frame(100, seed=4)
    train["color"] = train["color"].astype(object).where(train["color"].notna(), None)
    y = mixed_target(train, "binary", 4)
    est = make_pipeline(
        ColumnTransformer(
            [
                (
                    "color",
                    make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
                    ["color"],
                )
            ]
        ),
        LogisticRegression(),
    ).fit(train, y)
    with pytest.raises(UnsupportedError, match="None vs NaN"):
        export_dir(est, tmp_path / "m", name="bad", version="1.0.0")


def test_unsupported_ordinal_missing_as_nan(tmp_path: Path) -> None:
    train = mixed_frame(100, seed=5)
    y = mixed_target(train, "binary", 5)
    est = make_pipeline(
        ColumnTransformer([("color", OrdinalEncoder(), ["color"])]),
        SimpleImputer(),
        LogisticRegression(),
    ).fit(train, y)
    with pytest.raises(UnsupportedError, match="encoded_missing_value"):
        export_dir(est, tmp_path / "m", name="bad", version="1.0.0")


def test_logistic_regression_ovr_attribute(tmp_path: Path) -> None:
    """Older scikit-learn fitted one-vs-rest when multi_class='ovr': that is `logistic`."""
    case = fitted("logreg_multinomial")
    est = Pipeline(list(case.estimator.steps))  # the cached case stays untouched
    final = LogisticRegression()
    final.__dict__.update(est[-1].__dict__)
    final.multi_class = "ovr"
    est.steps[-1] = ("logisticregression", final)
    export_dir(est, tmp_path / "ovr", name="ovr", version="1.0.0")
    manifest = json.loads((tmp_path / "ovr" / "manifest.json").read_text())
    assert manifest["postprocess"][0]["activation"] == "logistic"
    default = json.loads(
        (export_case("logreg_multinomial", tmp_path / "d") / "manifest.json").read_text()
    )
    assert default["postprocess"][0]["activation"] == "softmax"


def test_unsupported_multilabel_mlp(tmp_path: Path) -> None:
    X, y = _frame("iris")
    Y = np.column_stack([y == 0, y == 1]).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(X, Y)
    with pytest.raises(UnsupportedError, match="multi-label"):
        export_dir(est, tmp_path / "m", name="bad", version="1.0.0")


def test_invalid_model_card(tmp_path: Path) -> None:
    est = fitted("linear_regression").estimator
    with pytest.raises(ValueError, match="name"):
        export_dir(est, tmp_path / "m", name="bad name!", version="1.0.0")
    with pytest.raises(ValueError, match="semver"):
        export_dir(est, tmp_path / "m", name="ok", version="1.0")
    with pytest.raises(ValueError, match="metric"):
        export_dir(est, tmp_path / "m", name="ok", version="1.0.0", metrics={"r2": float("nan")})


FIXTURE_NAMES = (
    sorted(p.name for p in FIXTURES.iterdir() if (p / "model" / "manifest.json").is_file())
    if FIXTURES.is_dir()
    else []
)


def assert_fixture_rows(expected: dict, rows: list[dict]) -> None:
    """Compare prediction rows with a fixture's expected.json (tolerances as above; the
    regression scale is the standard deviation of the expected values)."""
    assert len(rows) == len(expected["records"])
    if expected["labels"] is not None:
        assert [r["label"] for r in rows] == expected["labels"]
    if expected["probabilities"] is not None:
        got = [_probabilities(r) for r in rows]
        np.testing.assert_allclose(got, expected["probabilities"], rtol=PROBA_RTOL, atol=PROBA_ATOL)
    else:
        assert all("probabilities" not in r for r in rows)
    if expected["values"] is not None:
        got = np.array([r["values"] if "values" in r else [r["value"]] for r in rows])
        want = np.array(expected["values"])
        scale = float(np.std(want, axis=0).max())
        np.testing.assert_allclose(got, want, rtol=VALUE_RTOL, atol=VALUE_ATOL_PER_SCALE * scale)


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_fixture_consistent_with_reference(fixture: str) -> None:
    """tests/fixtures/<case>/expected.json agrees with its model/ under the reference."""
    expected = _strict_json((FIXTURES / fixture / "expected.json").read_text())
    manifest = _strict_json((FIXTURES / fixture / "model" / "manifest.json").read_text())
    assert "checksum" not in manifest
    assert len(expected["records"]) <= N_TEST
    rows, _ = reference_predict(FIXTURES / fixture / "model", expected["records"])
    assert_fixture_rows(expected, rows)
    names = [i["name"] for i in manifest["signature"]["inputs"]]
    assert all(list(r) == sorted(names) or set(r) == set(names) for r in expected["records"])
    if expected["dense"] is None:
        assert any(i["dtype"] == "string" for i in manifest["signature"]["inputs"])
    else:
        dense = [[r[n] for n in names] for r in expected["records"]]
        assert dense == expected["dense"]


# ------------------------------------------------------------------------------------------------
# Tests with the CLI


def _pack(run_cli: Any, model_dir: Path, out: Path) -> Path:
    result = run_cli("pack", model_dir, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    return out


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_cli_matches_sklearn(case_id: str, tmp_path: Path, run_cli: Any) -> None:
    case = fitted(case_id)
    model = _pack(run_cli, export_case(case_id, tmp_path / "model"), tmp_path / "model.ingot")
    write_jsonl(tmp_path / "X.jsonl", case.records())
    result = run_cli(
        "predict", model, "--input", tmp_path / "X.jsonl", "--output", tmp_path / "Y.jsonl"
    )
    assert result.returncode == 0, result.stderr
    assert_outputs_match(case, read_jsonl(tmp_path / "Y.jsonl"), f"{case_id} (ingot predict)")


@pytest.mark.parametrize("case_id", ["mixed_string_classes", "mixed_one_hot_drop_first"])
def test_cli_csv_matches_sklearn(case_id: str, tmp_path: Path, run_cli: Any) -> None:
    case = fitted(case_id)
    model = _pack(run_cli, export_case(case_id, tmp_path / "model"), tmp_path / "model.ingot")
    records = case.records()
    columns = list(records[0])
    with (tmp_path / "X.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in records:
            writer.writerow(
                [
                    "" if r[c] is None else repr(r[c]) if isinstance(r[c], float) else r[c]
                    for c in columns
                ]
            )
    result = run_cli(
        "predict", model, "--input", tmp_path / "X.csv", "--output", tmp_path / "Y.csv"
    )
    assert result.returncode == 0, result.stderr
    with (tmp_path / "Y.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    expected = sklearn_expected(case)
    if case.task == "classify":
        classes = [_py(c) for c in case.estimator.classes_]
        assert list(table[0]) == ["label"] + [f"proba_{c}" for c in classes]
        rows = [
            {"label": r["label"], "probabilities": [float(r[f"proba_{c}"]) for c in classes]}
            for r in table
        ]
        assert [r["label"] for r in rows] == [str(v) for v in expected["labels"]]
        np.testing.assert_allclose(
            [_probabilities(r) for r in rows],
            expected["probabilities"],
            rtol=PROBA_RTOL,
            atol=PROBA_ATOL,
        )
    else:
        assert list(table[0]) == ["value"]
        got = np.array([[float(r["value"])] for r in table])
        np.testing.assert_allclose(
            got, expected["values"], rtol=VALUE_RTOL, atol=VALUE_ATOL_PER_SCALE * expected["scale"]
        )


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_cli_fixture_predictions(fixture: str, tmp_path: Path, run_cli: Any) -> None:
    """`ingot predict` reproduces tests/fixtures/<case>/expected.json."""
    expected = _strict_json((FIXTURES / fixture / "expected.json").read_text())
    model = _pack(run_cli, FIXTURES / fixture / "model", tmp_path / "model.ingot")
    write_jsonl(tmp_path / "X.jsonl", expected["records"])
    result = run_cli(
        "predict", model, "--input", tmp_path / "X.jsonl", "--output", tmp_path / "Y.jsonl"
    )
    assert result.returncode == 0, result.stderr
    assert_fixture_rows(expected, read_jsonl(tmp_path / "Y.jsonl"))


def test_cli_packed_file_is_safetensors(tmp_path: Path, run_cli: Any) -> None:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    model_dir = export_case("mlp_classifier_binary", tmp_path / "model")
    model = _pack(run_cli, model_dir, tmp_path / "model.ingot")
    with safe_open(str(model), "np") as f:
        meta = f.metadata()
        keys = sorted(f.keys())
    assert meta["ingot.format"] == "1.0"
    assert meta["name"] == "mlp_classifier_binary" and meta["version"] == "1.0.0"
    manifest = _strict_json(meta["ingot.manifest"])
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["checksum"])
    assert keys == ["layer0.bias", "layer0.weight", "layer1.bias", "layer1.weight"]
    tensors = load_file(str(model))
    for name in keys:
        assert tensors[name].dtype == np.float32
        np.testing.assert_array_equal(tensors[name], np.load(model_dir / "tensors" / f"{name}.npy"))
    # Packing is byte-deterministic.
    again = _pack(run_cli, model_dir, tmp_path / "again.ingot")
    assert again.read_bytes() == model.read_bytes()


def test_cli_unknown_category_error_names_row_and_column(tmp_path: Path, run_cli: Any) -> None:
    train = mixed_frame(200, seed=3)
    y = mixed_target(train, "binary", 3)
    est = make_pipeline(
        ColumnTransformer(
            [
                ("num", _ct_numeric_pipeline(StandardScaler()), ["age"]),
                ("city", OneHotEncoder(handle_unknown="error"), ["city"]),
            ]
        ),
        LogisticRegression(),
    ).fit(train, y)
    model_dir = export_dir(est, tmp_path / "model", name="strict", version="1.0.0", created=CREATED)
    model = _pack(run_cli, model_dir, tmp_path / "model.ingot")
    records = to_records(train.head(5))
    records[2]["city"] = "Atlantis"
    write_jsonl(tmp_path / "X.jsonl", records)
    result = run_cli(
        "predict", model, "--input", tmp_path / "X.jsonl", "--output", tmp_path / "Y.jsonl"
    )
    assert result.returncode != 0
    message = result.stderr
    assert "city" in message, message
    # The third line: row 2 counting from 0, or line 3 counting from 1.
    assert re.search(r"(row|line|record)\D{0,3}[23]\b", message, re.IGNORECASE), message
