"""Export fitted scikit-learn models to Ingot bundles.

:func:`export` writes the ``.ingot`` file through the native validated writer (checked as a load
would check it, written atomically) and returns it loaded; :func:`export_dir` writes the
unpacked directory form (``DIR/manifest.json`` + ``DIR/tensors/<name>.npy``, ``docs/format.md``
§6) that ``ingot pack`` turns into a file.

Supported (anything else raises :class:`UnsupportedError` naming the estimator or option):

* structure: a bare estimator, a (possibly nested) ``Pipeline`` whose last step is the
  estimator, and a ``ColumnTransformer`` as the first pre-processing step (its transformers may
  be pipelines of transformers, ``'passthrough'`` or ``'drop'``; ``remainder`` drop, passthrough
  or a transformer). Per-column transformers placed *after* the ``ColumnTransformer`` are split
  over its outputs.
* transformers: ``SimpleImputer``, ``StandardScaler``, ``MinMaxScaler``, ``RobustScaler``,
  ``MaxAbsScaler``, ``OneHotEncoder``, ``OrdinalEncoder``, ``'passthrough'``.
* estimators: ``LogisticRegression``, ``LinearRegression``, ``Ridge``, ``Lasso``, ``ElasticNet``,
  ``SGDClassifier``, ``SGDRegressor``, ``LinearSVC``, ``LinearSVR``, ``MLPClassifier``,
  ``MLPRegressor``.
* tree models (``ingot._trees``, docs/trees.md; scikit-learn >= 1.6): ``DecisionTreeClassifier``,
  ``DecisionTreeRegressor``, ``ExtraTreeClassifier``, ``ExtraTreeRegressor``,
  ``RandomForestClassifier``, ``RandomForestRegressor``, ``ExtraTreesClassifier``,
  ``ExtraTreesRegressor``, ``GradientBoostingClassifier``, ``GradientBoostingRegressor`` (init:
  the default, a constant ``DummyClassifier`` / ``DummyRegressor``, or ``'zero'``),
  ``HistGradientBoostingClassifier``, ``HistGradientBoostingRegressor`` (categorical features
  included). Missing values that no imputer fills reach a tree model that routes NaN as NaN
  (``keep_missing``); multi-output classifiers are refused.

Pre-processing parameters are written as exact float64 JSON numbers (the runtime does that
arithmetic in f64); linear and MLP weights are stored as float32 tensors, tree ensembles as
int32 structure and float64 thresholds and leaf values.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UnsupportedError", "export"]

_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_TENSOR_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_SAMPLE_ROWS = 5
_QUANTILES = np.linspace(0.0, 1.0, 11)
# Keys of a pre-processing step that hold one entry per input column (sliced when a step that
# follows a ColumnTransformer is split over the transformer outputs).
_PER_COLUMN_KEYS = ("fill", "mean", "scale", "center", "min", "categories", "drop")


def _zip_equal(*iterables: Any) -> Any:
    """``zip`` that insists on equal lengths (``zip(..., strict=True)`` needs Python 3.10)."""
    lists = [list(it) for it in iterables]
    if len({len(x) for x in lists}) > 1:
        raise ValueError(f"lengths differ: {[len(x) for x in lists]}")
    return zip(*lists)  # noqa: B905 (lengths checked above)


class UnsupportedError(ValueError):
    """The estimator, transformer or option cannot be represented in an Ingot bundle."""


# --------------------------------------------------------------------------------------------
# JSON helpers


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(float(value))
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a scikit-learn dependency in practice
        return False


def _json_scalar(value: Any, what: str) -> Any:
    """Convert a category/class/fill value to a plain JSON scalar (None for missing)."""
    if _is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        raise UnsupportedError(f"{what}: boolean values are not supported (got {value!r})")
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        f = float(value)
        if math.isinf(f):
            raise UnsupportedError(f"{what}: infinite values are not supported")
        return f
    if isinstance(value, (str, np.str_)):
        return str(value)
    raise UnsupportedError(f"{what}: values of type {type(value).__name__} are not supported")


def _float_list(arr: Any, what: str) -> list[float]:
    out = []
    for v in np.asarray(arr, dtype=np.float64).ravel():
        if not math.isfinite(v):
            raise UnsupportedError(f"{what}: non-finite value {v!r}")
        out.append(float(v))
    return out


def _value_kind(values: Any, what: str) -> str | None:
    """Ingot dtype (`string`, `i64`, `f64`) suggested by categories / classes; None if empty."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "b":
        raise UnsupportedError(f"{what}: boolean categories are not supported")
    if kind in "iu":
        return "i64"
    if kind == "f":
        return "f64"
    if kind in "US":
        return "string"
    kinds = set()
    for v in arr.ravel():
        if _is_missing(v):
            continue
        if isinstance(v, (bool, np.bool_)):
            raise UnsupportedError(f"{what}: boolean categories are not supported")
        if isinstance(v, (str, np.str_)):
            kinds.add("string")
        elif isinstance(v, (numbers.Integral, np.integer)):
            kinds.add("i64")
        elif isinstance(v, (numbers.Real, np.floating)):
            kinds.add("f64")
        else:
            raise UnsupportedError(f"{what}: values of type {type(v).__name__} are not supported")
    if not kinds:
        return None
    if "string" in kinds and len(kinds) > 1:
        raise UnsupportedError(f"{what}: mixed string and numeric categories are not supported")
    if kinds == {"i64"}:
        return "i64"
    return "string" if "string" in kinds else "f64"


# --------------------------------------------------------------------------------------------
# Pre-processing steps


class _Step:
    """One pre-processing step (§3) with its widths and per-input-column dtype hints."""

    def __init__(self, spec: dict, w_in: int, w_out: int, hints: list[str | None]):
        self.spec = spec
        self.w_in = w_in
        self.w_out = w_out
        self.hints = hints

    def slice(self, lo: int, hi: int) -> _Step:
        spec = dict(self.spec)
        for key in _PER_COLUMN_KEYS:
            if spec.get(key) is not None:
                spec[key] = spec[key][lo:hi]
        if spec["type"] == "one_hot_encoder":
            w_out = _one_hot_width(spec["categories"], spec["drop"])
        else:
            w_out = hi - lo
        return _Step(spec, hi - lo, w_out, self.hints[lo:hi])


def _one_hot_width(categories: list[list[Any]], drop: list[int | None]) -> int:
    return sum(len(c) - (d is not None) for c, d in _zip_equal(categories, drop))


def _cls(obj: Any) -> str:
    return type(obj).__name__


def _check_n_features(est: Any, width: int) -> None:
    n = getattr(est, "n_features_in_", None)
    if n is not None and int(n) != width:
        raise ValueError(f"{_cls(est)} was fitted on {n} columns but receives {width} here")


def _simple_imputer(est: Any, width: int) -> _Step:
    name = "SimpleImputer"
    if getattr(est, "add_indicator", False):
        raise UnsupportedError(f"{name}(add_indicator=True) is not supported")
    if callable(est.strategy):
        raise UnsupportedError(f"{name}(strategy=<callable>) is not supported")
    if est.strategy not in ("mean", "median", "most_frequent", "constant"):
        raise UnsupportedError(f"{name}(strategy={est.strategy!r}) is not supported")
    mv = est.missing_values
    if not (mv is None or (isinstance(mv, (float, np.floating)) and math.isnan(mv))):
        raise UnsupportedError(
            f"{name}(missing_values={mv!r}) is not supported: missing_values must be NaN or None"
        )
    stats = list(np.asarray(est.statistics_, dtype=object).ravel())
    if est.strategy != "constant" and not getattr(est, "keep_empty_features", False):
        empty = [j for j, v in enumerate(stats) if _is_missing(v)]
        if empty:
            raise UnsupportedError(
                f"{name} dropped all-missing column(s) at position(s) {empty}; "
                "refit with keep_empty_features=True"
            )
    _check_n_features(est, width)
    fill = [_json_scalar(v, f"{name} fill value") for v in stats]
    if any(v is None for v in fill):
        raise UnsupportedError(f"{name}: a missing fill value is not supported")
    hints = ["string" if isinstance(v, str) else None for v in fill]
    return _Step({"type": "simple_imputer", "fill": fill}, width, width, hints)


def _standard_scaler(est: Any, width: int) -> _Step:
    _check_n_features(est, width)
    mean = _float_list(est.mean_, "StandardScaler mean_") if est.with_mean else None
    scale = _float_list(est.scale_, "StandardScaler scale_") if est.with_std else None
    spec = {"type": "standard_scaler", "mean": mean, "scale": scale}
    return _Step(spec, width, width, ["f64"] * width)


def _min_max_scaler(est: Any, width: int) -> _Step:
    _check_n_features(est, width)
    spec = {
        "type": "min_max_scaler",
        "scale": _float_list(est.scale_, "MinMaxScaler scale_"),
        "min": _float_list(est.min_, "MinMaxScaler min_"),
        "clip": bool(est.clip),
        "feature_range": _float_list(est.feature_range, "MinMaxScaler feature_range"),
    }
    return _Step(spec, width, width, ["f64"] * width)


def _robust_scaler(est: Any, width: int) -> _Step:
    _check_n_features(est, width)
    center = _float_list(est.center_, "RobustScaler center_") if est.with_centering else None
    scale = _float_list(est.scale_, "RobustScaler scale_") if est.with_scaling else None
    spec = {"type": "robust_scaler", "center": center, "scale": scale}
    return _Step(spec, width, width, ["f64"] * width)


def _max_abs_scaler(est: Any, width: int) -> _Step:
    _check_n_features(est, width)
    spec = {"type": "max_abs_scaler", "scale": _float_list(est.scale_, "MaxAbsScaler scale_")}
    return _Step(spec, width, width, ["f64"] * width)


def _check_no_infrequent(est: Any) -> None:
    name = _cls(est)
    for option in ("min_frequency", "max_categories"):
        value = getattr(est, option, None)
        if value is not None:
            raise UnsupportedError(f"{name}({option}={value!r}) is not supported")
    if getattr(est, "_infrequent_enabled", False):
        raise UnsupportedError(f"{name} with infrequent categories is not supported")


def _categories(est: Any, width: int) -> tuple[list[list[Any]], list[str | None]]:
    name = _cls(est)
    if len(est.categories_) != width:
        raise ValueError(f"{name} has {len(est.categories_)} columns but receives {width}")
    cats = [[_json_scalar(v, f"{name} category") for v in c] for c in est.categories_]
    hints = [_value_kind(c, f"{name} categories") for c in est.categories_]
    return cats, hints


def _one_hot_encoder(est: Any, width: int) -> _Step:
    _check_no_infrequent(est)
    handle = est.handle_unknown
    if handle in ("ignore", "warn", "infrequent_if_exist"):
        # Without infrequent categories (checked above) all three encode an unknown value as
        # all zeros; "warn" only adds a Python warning.
        handle = "ignore"
    elif handle != "error":
        raise UnsupportedError(f"OneHotEncoder(handle_unknown={handle!r}) is not supported")
    cats, hints = _categories(est, width)
    drop_idx = getattr(est, "drop_idx_", None)
    if drop_idx is None:
        drop: list[int | None] = [None] * width
    else:
        drop = [None if d is None else int(d) for d in drop_idx]
    spec = {"type": "one_hot_encoder", "categories": cats, "handle_unknown": handle, "drop": drop}
    return _Step(spec, width, _one_hot_width(cats, drop), hints)


def _ordinal_encoder(est: Any, width: int) -> _Step:
    _check_no_infrequent(est)
    handle = est.handle_unknown
    if handle not in ("error", "use_encoded_value"):
        raise UnsupportedError(f"OrdinalEncoder(handle_unknown={handle!r}) is not supported")
    cats, hints = _categories(est, width)
    missing_code = _json_scalar(est.encoded_missing_value, "OrdinalEncoder encoded_missing_value")
    if missing_code is None and any(c is None for col in cats for c in col):
        # scikit-learn then outputs NaN for a missing value; Ingot would use its index.
        raise UnsupportedError(
            "OrdinalEncoder learned missing values as a category with encoded_missing_value=NaN; "
            "set encoded_missing_value to a number"
        )
    unknown = None
    if handle == "use_encoded_value":
        unknown = _json_scalar(est.unknown_value, "OrdinalEncoder unknown_value")
    spec = {
        "type": "ordinal_encoder",
        "categories": cats,
        "handle_unknown": handle,
        "unknown_value": unknown,
        "encoded_missing_value": missing_code,
    }
    return _Step(spec, width, width, hints)


def _passthrough(width: int) -> _Step:
    return _Step({"type": "passthrough"}, width, width, [None] * width)


def _function_transformer(est: Any, width: int) -> _Step:
    # A fitted ColumnTransformer stores 'passthrough' as FunctionTransformer(func=None).
    if est.func is not None:
        raise UnsupportedError("FunctionTransformer with a func is not supported")
    return _passthrough(width)


def _transformer_converters() -> dict[type, Any]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (
        FunctionTransformer,
        MaxAbsScaler,
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        RobustScaler,
        StandardScaler,
    )

    return {
        SimpleImputer: _simple_imputer,
        StandardScaler: _standard_scaler,
        MinMaxScaler: _min_max_scaler,
        RobustScaler: _robust_scaler,
        MaxAbsScaler: _max_abs_scaler,
        OneHotEncoder: _one_hot_encoder,
        OrdinalEncoder: _ordinal_encoder,
        FunctionTransformer: _function_transformer,
    }


def _flatten(obj: Any) -> list[Any]:
    """Flatten (nested) pipelines into their steps, skipping None / 'passthrough' steps."""
    from sklearn.pipeline import Pipeline

    if isinstance(obj, Pipeline):
        out: list[Any] = []
        for _, step in obj.steps:
            out.extend(_flatten(step))
        return out
    if obj is None or (isinstance(obj, str) and obj == "passthrough"):
        return []
    return [obj]


def _convert_steps(transformers: list[Any], width: int) -> list[_Step]:
    from sklearn.compose import ColumnTransformer

    converters = _transformer_converters()
    steps = []
    for t in transformers:
        if isinstance(t, ColumnTransformer):
            raise UnsupportedError(
                "ColumnTransformer is only supported as the first step of the pipeline"
            )
        if isinstance(t, str):
            raise UnsupportedError(f"transformer {t!r} is not supported")
        convert = converters.get(type(t))
        if convert is None:
            raise UnsupportedError(f"transformer {_cls(t)} is not supported")
        step = convert(t, width)
        steps.append(step)
        width = step.w_out
    return steps


class _Group:
    """One entry of the tabular step's `transformers` list."""

    def __init__(self, name: str, columns: list[int], steps: list[_Step]):
        self.name = name
        self.columns = columns
        self.steps = steps

    @property
    def w_out(self) -> int:
        return self.steps[-1].w_out if self.steps else len(self.columns)


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(name))[:128]
    return safe or "transformer"


def _resolve_columns(ct: Any, name: str, cols: Any, n_inputs: int, input_names: list[str]):
    indices = getattr(ct, "_transformer_to_input_indices", {}).get(name)
    if indices is not None:
        return [int(i) for i in indices]
    # Fallback for scikit-learn versions without the private mapping.
    if isinstance(cols, slice):
        return list(range(n_inputs))[cols]
    if isinstance(cols, (str, int, np.integer)):
        cols = [cols]
    arr = np.asarray(cols)
    if arr.dtype.kind == "b":
        return [int(i) for i in np.flatnonzero(arr)]
    out = []
    for c in arr.tolist():
        if isinstance(c, str):
            out.append(input_names.index(c))
        else:
            out.append(int(c) % n_inputs)
    return out


def _column_transformer_groups(ct: Any, input_names: list[str]) -> list[_Group]:
    n_inputs = len(input_names)
    groups = []
    for name, trans, cols in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        indices = _resolve_columns(ct, name, cols, n_inputs, input_names)
        if not indices:
            continue  # scikit-learn skips transformers with no columns
        steps = _convert_steps(_flatten(trans), len(indices))
        groups.append(_Group(_safe_name(name), indices, steps))
    seen = set()
    for g in groups:
        base, k = g.name, 1
        while g.name in seen:
            g.name = f"{base}_{k}"
            k += 1
        seen.add(g.name)
    return groups


def _build_preprocess(pre: list[Any], input_names: list[str]) -> tuple[list[_Group], int]:
    from sklearn.compose import ColumnTransformer

    n_inputs = len(input_names)
    if pre and isinstance(pre[0], ColumnTransformer):
        _check_n_features(pre[0], n_inputs)
        groups = _column_transformer_groups(pre[0], input_names)
        rest = pre[1:]
    else:
        groups = [_Group("features", list(range(n_inputs)), [])]
        rest = pre
    width = sum(g.w_out for g in groups)
    for step in _convert_steps(rest, width):
        lo = 0
        for g in groups:
            hi = lo + g.w_out
            g.steps.append(step.slice(lo, hi))
            lo = hi
        width = sum(g.w_out for g in groups)
    for g in groups:
        if not g.steps:
            g.steps.append(_passthrough(len(g.columns)))
        _check_imputed_before_encoding(g)
    return groups, width


def _check_imputed_before_encoding(group: _Group) -> None:
    """Refuse an encoder that learned a missing category its preceding imputer did not fill.

    scikit-learn's ``SimpleImputer(missing_values=np.nan)`` leaves ``None`` alone (and
    ``missing_values=None`` leaves NaN), so the encoder after it can learn ``None``/NaN as a
    category. Ingot treats both as missing and imputes them, so that category would never match.
    """
    imputed = [False] * len(group.columns)
    for step in group.steps:
        kind = step.spec["type"]
        if kind == "simple_imputer":
            imputed = [True] * step.w_in
        elif kind in ("one_hot_encoder", "ordinal_encoder"):
            for j, cats in enumerate(step.spec["categories"]):
                if imputed[j] and any(c is None for c in cats):
                    raise UnsupportedError(
                        f"transformer {group.name!r}: the encoder learned a missing-value "
                        "category that the SimpleImputer before it did not fill (None vs NaN). "
                        "Ingot treats None and NaN alike as missing; use one kind of missing "
                        "value in the training data"
                    )
        if step.w_in != step.w_out:
            return


def _input_dtypes(groups: list[_Group], input_names: list[str]) -> list[str | None]:
    """Ingot dtype per raw input column, from the first step that reveals it (None: unknown)."""
    found: list[set[str]] = [set() for _ in input_names]
    for g in groups:
        for pos, col in enumerate(g.columns):
            for step in g.steps:
                hint = step.hints[pos]
                if hint is not None:
                    found[col].add(hint)
                    break
                if step.w_in != step.w_out:
                    break
    out: list[str | None] = []
    for name, kinds in _zip_equal(input_names, found):
        if "string" in kinds:
            if len(kinds) > 1:
                raise UnsupportedError(f"column {name!r} is used both as a string and a number")
            out.append("string")
        elif "i64" in kinds:
            out.append("i64")
        elif kinds:
            out.append("f64")
        else:
            out.append(None)
    return out


# --------------------------------------------------------------------------------------------
# Estimators


class _Model:
    def __init__(self):
        self.tensors: dict[str, np.ndarray] = {}
        self.nodes: list[dict] = []
        self.n_out = 0
        self.post: dict = {}
        self.outputs: list[dict] = []


def _linear_layer(model: _Model, coef: Any, intercept: Any, width: int) -> None:
    w = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    if w.shape[1] != width:
        raise ValueError(f"coefficients have {w.shape[1]} inputs, pre-processing gives {width}")
    b = np.broadcast_to(np.ravel(np.asarray(intercept, dtype=np.float64)), (w.shape[0],))
    model.tensors["coef"] = w
    model.tensors["intercept"] = b
    model.nodes.append(
        {
            "name": "linear",
            "op": "Linear",
            "inputs": ["features", "coef", "intercept"],
            "outputs": ["scores"],
            "attrs": {},
        }
    )
    model.n_out = w.shape[0]


_MLP_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": None}


def _mlp_layers(model: _Model, est: Any, width: int) -> None:
    act = _MLP_ACTIVATIONS.get(est.activation, "?")
    if act == "?":
        raise UnsupportedError(f"{_cls(est)}(activation={est.activation!r}) is not supported")
    current = "features"
    n = len(est.coefs_)
    for i, (w, b) in enumerate(_zip_equal(est.coefs_, est.intercepts_)):
        w = np.asarray(w, dtype=np.float64).T
        if i == 0 and w.shape[1] != width:
            raise ValueError(f"first layer has {w.shape[1]} inputs, pre-processing gives {width}")
        model.tensors[f"layer{i}.weight"] = w
        model.tensors[f"layer{i}.bias"] = np.asarray(b, dtype=np.float64)
        last = i == n - 1
        out = "scores" if last else f"layer{i}.linear"
        model.nodes.append(
            {
                "name": f"layer{i}",
                "op": "Linear",
                "inputs": [current, f"layer{i}.weight", f"layer{i}.bias"],
                "outputs": [out],
                "attrs": {},
            }
        )
        current = out
        if not last and act is not None:
            act_out = f"layer{i}.{est.activation}"
            model.nodes.append(
                {
                    "name": f"layer{i}.activation",
                    "op": act,
                    "inputs": [current],
                    "outputs": [act_out],
                    "attrs": {},
                }
            )
            current = act_out
        model.n_out = w.shape[0]


def _classify(model: _Model, est: Any, activation: str) -> None:
    classes = np.asarray(est.classes_)
    if classes.ndim != 1:
        raise UnsupportedError(f"{_cls(est)} with multi-label / multi-output targets")
    label_dtype = _value_kind(classes, f"{_cls(est)} classes_") or "f64"
    k = len(classes)
    # A binary model has one score column, unless its scores are the probabilities (identity).
    expected = 1 if k == 2 and activation != "identity" else k
    if model.n_out != expected:
        raise UnsupportedError(f"{_cls(est)}: {model.n_out} score columns for {k} classes")
    model.post = {
        "type": "classify",
        "activation": activation,
        "classes": [_json_scalar(c, f"{_cls(est)} class") for c in classes],
    }
    outputs = []
    if activation != "none":
        outputs.append({"name": "probabilities", "dtype": "f32", "shape": [-1, k]})
    outputs.append({"name": "label", "dtype": label_dtype, "shape": [-1]})
    model.outputs = outputs


def _regress(model: _Model, est: Any, link: str = "identity") -> None:
    """Scores are the values, after the inverse ``link`` (``identity`` or ``exp``)."""
    m = model.n_out
    targets = ["target"] if m == 1 else [f"target{i}" for i in range(m)]
    model.post = {"type": "regress", "targets": targets}
    if link != "identity":
        model.post["link"] = link
    if m == 1:
        model.outputs = [{"name": "value", "dtype": "f32", "shape": [-1]}]
    else:
        model.outputs = [{"name": "values", "dtype": "f32", "shape": [-1, m]}]


def _logistic_regression_is_ovr(est: Any) -> bool:
    multi_class = getattr(est, "multi_class", "deprecated")
    if multi_class == "ovr":
        return True
    # Before scikit-learn 1.7 the default "auto" meant one-vs-rest for liblinear.
    return multi_class == "auto" and getattr(est, "solver", None) == "liblinear"


def _convert_estimator(est: Any, width: int) -> _Model:
    from sklearn.linear_model import (
        ElasticNet,
        Lasso,
        LinearRegression,
        LogisticRegression,
        Ridge,
        SGDClassifier,
        SGDRegressor,
    )
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.svm import LinearSVC, LinearSVR

    from . import _trees

    _check_n_features(est, width)
    if _trees.is_tree_model(est):
        return _trees.convert(est, width)
    model = _Model()
    kind = type(est)
    if kind is LogisticRegression:
        _linear_layer(model, est.coef_, est.intercept_, width)
        if len(est.classes_) == 2 or _logistic_regression_is_ovr(est):
            activation = "logistic"
        else:
            activation = "softmax"
        _classify(model, est, activation)
    elif kind is SGDClassifier:
        _linear_layer(model, est.coef_, est.intercept_, width)
        # Multi-class SGD is one-vs-rest; predict_proba for log_loss normalises the per-class
        # sigmoids, which is the "logistic" activation with several columns.
        activation = "logistic" if est.loss in ("log_loss", "log") else "none"
        _classify(model, est, activation)
    elif kind is LinearSVC:
        _linear_layer(model, est.coef_, est.intercept_, width)
        _classify(model, est, "none")
    elif kind in (LinearRegression, Ridge, Lasso, ElasticNet, SGDRegressor, LinearSVR):
        _linear_layer(model, est.coef_, est.intercept_, width)
        _regress(model, est)
    elif kind is MLPClassifier:
        lb = getattr(est, "_label_binarizer", None)
        if getattr(lb, "y_type_", None) == "multilabel-indicator":
            raise UnsupportedError("MLPClassifier with multi-label targets is not supported")
        _mlp_layers(model, est, width)
        if est.out_activation_ not in ("logistic", "softmax"):
            raise UnsupportedError(f"MLPClassifier output activation {est.out_activation_!r}")
        _classify(model, est, est.out_activation_)
    elif kind is MLPRegressor:
        _mlp_layers(model, est, width)
        _regress(model, est)
    else:
        raise UnsupportedError(f"estimator {_cls(est)} is not supported")
    return model


# --------------------------------------------------------------------------------------------
# Reference data (sample rows and column statistics)


def _sample_frame(sample: Any, input_names: list[str], has_names: bool):
    import pandas as pd

    if isinstance(sample, pd.DataFrame):
        if has_names:
            missing = [c for c in input_names if c not in sample.columns]
            if missing:
                raise ValueError(f"sample lacks input column(s) {missing}")
            return sample[input_names]
        if sample.shape[1] != len(input_names):
            raise ValueError(f"sample has {sample.shape[1]} columns, expected {len(input_names)}")
        frame = sample.copy()
        frame.columns = input_names
        return frame
    arr = np.asarray(sample)
    if arr.ndim != 2 or arr.shape[1] != len(input_names):
        raise ValueError(f"sample must be 2-D with {len(input_names)} columns")
    return pd.DataFrame(arr, columns=input_names)


def _record_value(value: Any, dtype: str, column: str) -> Any:
    if _is_missing(value):
        return None
    if dtype == "string":
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        raise UnsupportedError(f"sample column {column!r}: boolean values are not supported")
    f = float(value)
    if not math.isfinite(f):
        return None
    if dtype == "i64" and f.is_integer():
        return int(f)
    return f


def _column_stats(values: Any) -> dict | None:
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    return {
        "count": int(x.size),
        "mean": float(np.mean(x)),
        "std": float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
        "min": float(np.min(x)),
        "max": float(np.max(x)),
        "quantiles": [float(q) for q in np.quantile(x, _QUANTILES)],
    }


def _reference(sample: Any, inputs: list[dict], has_names: bool) -> dict:
    import pandas as pd

    names = [i["name"] for i in inputs]
    frame = _sample_frame(sample, names, has_names)
    rows = []
    for _, row in frame.head(_SAMPLE_ROWS).iterrows():
        rows.append(
            {i["name"]: _record_value(row[i["name"]], i["dtype"], i["name"]) for i in inputs}
        )
    columns = {}
    for i in inputs:
        if i["dtype"] != "f64":
            continue
        stats = _column_stats(pd.to_numeric(frame[i["name"]], errors="coerce"))
        if stats is not None:
            columns[i["name"]] = stats
    return {"sample": rows, "columns": columns}


# --------------------------------------------------------------------------------------------
# Export


def _split_estimator(estimator: Any) -> tuple[list[Any], Any]:
    steps = _flatten(estimator)
    if not steps:
        raise UnsupportedError("the pipeline has no final estimator")
    return steps[:-1], steps[-1]


def _input_names(estimator: Any, first: Any) -> tuple[list[str], bool]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = getattr(first, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names], True
    n = getattr(estimator, "n_features_in_", None)
    if n is None:
        n = getattr(first, "n_features_in_", None)
    if n is None:
        raise ValueError(f"cannot tell how many input columns {_cls(estimator)} takes")
    return [f"x{i}" for i in range(int(n))], False


def _created(created: Any) -> str:
    if created is None:
        created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    if isinstance(created, _dt.datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=_dt.UTC)
        created = created.astimezone(_dt.UTC)
        return created.isoformat().replace("+00:00", "Z")
    return str(created)


def _model_card(
    name: str,
    version: str,
    *,
    description: str | None,
    license: str | None,
    authors: list[str] | None,
    tags: list[str] | None,
    metrics: dict | None,
    created: Any,
    training_data_digest: str | None,
    parent: str | None,
) -> dict:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"model name {name!r} must match [A-Za-z0-9._-]{{1,128}}")
    if not isinstance(version, str) or not _SEMVER_RE.match(version):
        raise ValueError(f"model version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    card: dict[str, Any] = {"name": name, "version": version, "created": _created(created)}
    if description is not None:
        card["description"] = str(description)
    if license is not None:
        card["license"] = str(license)
    if authors is not None:
        card["authors"] = [str(a) for a in authors]
    if tags is not None:
        card["tags"] = [str(t) for t in tags]
    if metrics is not None:
        out = {}
        for key, value in metrics.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (numbers.Real, np.floating, np.integer)
            ):
                raise ValueError(f"metric {key!r} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"metric {key!r} must be finite, got {value!r}")
            out[str(key)] = int(value) if isinstance(value, numbers.Integral) else float(value)
        card["metrics"] = out
    if training_data_digest is not None:
        card["training_data_digest"] = str(training_data_digest)
    if parent is not None:
        card["parent"] = str(parent)
    return card


def build_manifest(
    estimator: Any, *, sample: Any = None, card: dict
) -> tuple[dict, dict[str, np.ndarray]]:
    """Return the manifest (without checksum) and the tensors for ``estimator``: float64
    weights, and a tree ensemble's int32 / float64 tensors in their stored dtype."""
    import sklearn
    from sklearn.utils.validation import check_is_fitted

    from . import __version__, _trees

    pre, final = _split_estimator(estimator)
    if isinstance(final, str):
        raise UnsupportedError(f"final step {final!r} is not an estimator")
    if not hasattr(final, "fit"):
        raise UnsupportedError(f"final step {_cls(final)} is not an estimator")
    check_is_fitted(final)
    first = pre[0] if pre else final
    input_names, has_names = _input_names(estimator, first)
    # A HistGradientBoosting model with string categories brings its own encoder.
    groups = _trees.encoder_groups(final, pre)
    if groups is None:
        groups, width = _build_preprocess(pre, input_names)
    else:
        width = len(input_names)
    model = _convert_estimator(final, width)

    dtypes = _input_dtypes(groups, input_names)
    if sample is not None:
        # Columns no step reveals (e.g. dropped ones) take their kind from the sample.
        frame = _sample_frame(sample, input_names, has_names)
        for j, col in enumerate(input_names):
            if dtypes[j] is None:
                series = frame[col]
                if series.dtype.kind not in "iufc":
                    dtypes[j] = "string"
    dtypes = [d or "f64" for d in dtypes]
    # String columns must be encoded before they reach the graph.
    for g in groups:
        for col in g.columns:
            if dtypes[col] != "string":
                continue
            if not any(s.spec["type"] in ("one_hot_encoder", "ordinal_encoder") for s in g.steps):
                raise UnsupportedError(
                    f"string column {input_names[col]!r} reaches the model without an encoder "
                    f"(transformer {g.name!r})"
                )

    pairs = _zip_equal(input_names, dtypes)
    inputs = [{"name": n, "dtype": d, "shape": [-1]} for n, d in pairs]
    forms = ["records", "columns"] if "string" in dtypes else ["records", "columns", "dense"]
    for tname in model.tensors:
        if not _TENSOR_NAME_RE.match(tname):
            raise ValueError(f"tensor name {tname!r} is invalid")

    tabular: dict[str, Any] = {
        "type": "tabular",
        "transformers": [
            {
                "name": g.name,
                "columns": [input_names[c] for c in g.columns],
                "steps": [s.spec for s in g.steps],
            }
            for g in groups
        ],
    }
    if _trees.keeps_missing(final):
        tabular["keep_missing"] = True
    manifest: dict[str, Any] = {
        "model": card,
        "producer": {
            "name": "ingot.sklearn",
            "version": __version__,
            "framework": f"scikit-learn {sklearn.__version__}",
        },
        "signature": {"inputs": inputs, "outputs": model.outputs, "request_forms": forms},
        "preprocess": [tabular],
        "graph": {
            "opset": 1,
            "inputs": [{"name": "features", "dtype": "f32", "shape": [-1, width]}],
            "outputs": [{"name": "scores", "dtype": "f32", "shape": [-1, model.n_out]}],
            "nodes": model.nodes,
        },
        "postprocess": [model.post],
    }
    if not _trees.is_tree_model(final):
        manifest["quantization"] = {"scheme": "f32"}
    if sample is not None:
        manifest["reference"] = _reference(sample, inputs, has_names)
    return manifest, model.tensors


def _manifest_and_tensors(estimator: Any, sample: Any, card_args: dict) -> tuple[dict, dict]:
    card = _model_card(**card_args)
    manifest, tensors = build_manifest(estimator, sample=sample, card=card)
    # Tree ensembles keep their int32 structure and float64 numbers; weights become float32.
    exact = {
        name
        for node in manifest["graph"]["nodes"]
        if node["op"] == "TreeEnsemble"
        for name in node["inputs"][1:]
    }
    arrays = {
        t: np.ascontiguousarray(v) if t in exact else np.ascontiguousarray(v, dtype="<f4")
        for t, v in sorted(tensors.items())
    }
    return manifest, arrays


def export(
    estimator: Any,
    path: str | Path,
    *,
    name: str,
    version: str,
    sample: Any = None,
    description: str | None = None,
    license: str | None = None,
    authors: list[str] | None = None,
    tags: list[str] | None = None,
    metrics: dict[str, float] | None = None,
    created: str | _dt.datetime | None = None,
    training_data_digest: str | None = None,
    parent: str | None = None,
) -> Any:
    """Write ``estimator`` as the ``.ingot`` file ``path`` and return it loaded (an
    :class:`ingot.Model`).

    The bundle is checked exactly as a load would check it before anything is written, and
    written atomically. ``sample`` (a DataFrame or 2-D array of raw input rows) adds reference
    rows and per-column statistics (for drift checks). ``created`` defaults to the current UTC
    time; pass a fixed string for byte-reproducible output.

    Raises :class:`UnsupportedError` for an estimator, transformer or option Ingot cannot
    represent, ``ValueError`` for invalid metadata, and :class:`ingot.IngotError` if the core
    refuses the result.
    """
    from . import _ingot
    from ._model import Model

    card_args = dict(
        name=name,
        version=version,
        description=description,
        license=license,
        authors=authors,
        tags=tags,
        metrics=metrics,
        created=created,
        training_data_digest=training_data_digest,
        parent=parent,
    )
    manifest, arrays = _manifest_and_tensors(estimator, sample, card_args)
    text = json.dumps(manifest, sort_keys=True, allow_nan=False, ensure_ascii=False)
    return Model(_ingot.save(str(path), text, arrays))


def export_dir(
    estimator: Any,
    path: str | Path,
    *,
    name: str,
    version: str,
    sample: Any = None,
    description: str | None = None,
    license: str | None = None,
    authors: list[str] | None = None,
    tags: list[str] | None = None,
    metrics: dict[str, float] | None = None,
    created: str | _dt.datetime | None = None,
    training_data_digest: str | None = None,
    parent: str | None = None,
) -> Path:
    """Write ``estimator`` as an unpacked bundle directory at ``path`` (the form the test
    fixtures keep): ``path/manifest.json`` (without ``checksum``) and ``path/tensors/<name>.npy``.
    ``ingot pack DIR -o model.ingot`` turns it into a file. Arguments as :func:`export`;
    returns ``path``.
    """
    card_args = dict(
        name=name,
        version=version,
        description=description,
        license=license,
        authors=authors,
        tags=tags,
        metrics=metrics,
        created=created,
        training_data_digest=training_data_digest,
        parent=parent,
    )
    manifest, arrays = _manifest_and_tensors(estimator, sample, card_args)
    text = json.dumps(manifest, sort_keys=True, allow_nan=False, indent=2, ensure_ascii=False)

    out = Path(path)
    tensor_dir = out / "tensors"
    tensor_dir.mkdir(parents=True, exist_ok=True)
    for stale in tensor_dir.glob("*.npy"):
        if stale.stem not in arrays:
            stale.unlink()
    for tname, arr in arrays.items():
        np.save(tensor_dir / f"{tname}.npy", arr, allow_pickle=False)
    (out / "manifest.json").write_text(text + "\n", encoding="utf-8")
    return out
