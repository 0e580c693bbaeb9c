#!/usr/bin/env python3
"""Generate the scikit-learn and XGBoost ONNX fixtures under tests/fixtures/onnx/ (for
``ingot import onnx``).

Pipelines are converted with skl2onnx, XGBoost models with onnxmltools, all at target opset
``{"": 17, "ai.onnx.ml": 3}``. For each case ``<case>``:

* ``<case>.onnx``: the converted model;
* ``<case>.expected.json``: 20 held-out rows and ONNX Runtime's outputs on them (CPU execution
  provider, one thread, default graph optimizations)::

      {"onnxruntime": "1.32.0", "producer": "skl2onnx 1.20.0", "opset": 17,
       "opsets": {"": 17, "ai.onnx.ml": 3}, "sklearn": "1.9.1",
       "inputs": {"input": {"shape": [20, 13], "dtype": "float32", "data": [...]}},
       "outputs": {"label": {"shape": [20], "dtype": "int64", "data": [...]},
                   "probabilities": {"shape": [20, 3], "dtype": "float32", "data": [...]}}}

  ``data`` is flat, row-major: float32 values as the exact float32 number (the shortest
  ``repr`` of ``float(np.float32(v))``), NaN (a missing value) as ``null``; int64 as integers;
  strings as strings. Inputs and outputs are listed in the graph's order. A ZipMap output (a
  sequence of maps, one per row) is stored as the ``[N, classes]`` float32 matrix of its values
  plus ``"zipmap": {"keys": [...]}``, the class keys in column order. ``reference_max_abs_diff``
  is the largest difference between ONNX Runtime and the original model's float64
  ``predict_proba`` / ``predict`` on the same rows. ``sk_pipeline_*`` also list
  ``"columns"``: ``[{"name": ..., "kind": "float" | "string"}, ...]`` (one graph input per
  column, ``[N, 1]``).

Cases: ``sk_pipeline_mixed`` / ``sk_pipeline_zipmap`` (ColumnTransformer with StandardScaler and
OneHotEncoder(handle_unknown="ignore") + multinomial LogisticRegression with string class labels;
held-out rows with unseen categories; without and with ZipMap), ``sk_scaler_logreg`` (wine,
multinomial), ``sk_imputer_normalizer`` (SimpleImputer + Normalizer + Ridge on diabetes with
missing values), ``sk_binary_logreg`` (breast cancer), ``xgb_breast_cancer`` and
``xgb_regressor`` (XGBoost, 20 trees of depth 4, missing values in the training and held-out
rows; converted with onnxmltools at its highest target opset, 15) and ``sk_random_forest`` (10
trees of depth 5, wine).

Everything is seeded (the script re-executes itself with ``PYTHONHASHSEED=0``: skl2onnx orders
the opset imports by set iteration), so rerunning with the same library versions rewrites
identical files:

    .venv-trees/bin/python scripts/onnx_fixtures/sklearn_fixtures.py [--out DIR] [CASE ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxmltools
import onnxruntime as ort
import pandas as pd
import skl2onnx
import sklearn
import xgboost as xgb
from fixture_io import opsets, session, summary, tensor, update_readme, write_expected
from onnxmltools.convert.common.data_types import FloatTensorType as MlFloatTensorType
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn import datasets
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, OneHotEncoder, StandardScaler

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "onnx"
SEED = 0
N_TEST = 20
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def split(n: int, n_test: int = N_TEST, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic hold-out split: the first ``n_test`` rows of a seeded permutation."""
    order = np.random.default_rng(seed).permutation(n)
    return order[n_test:], order[:n_test]


def with_nan(x: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A copy of ``x`` with about ``fraction`` of its cells set to NaN."""
    x = x.astype(np.float64, copy=True)
    x[np.random.default_rng(seed).random(x.shape) < fraction] = np.nan
    return x


def save(out: Path, case: str, model: onnx.ModelProto) -> Path:
    path = out / f"{case}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def finish(
    out: Path,
    case: str,
    producer: str,
    inputs: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    extra: dict | None = None,
) -> None:
    """Runs ``<case>.onnx`` in ONNX Runtime on ``inputs``, checks each output named in
    ``reference`` against the original model's values and writes ``<case>.expected.json``."""
    path = out / f"{case}.onnx"
    sess = session(path)
    assert [i.name for i in sess.get_inputs()] == list(inputs), sess.get_inputs()
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, inputs), strict=True))
    outputs, diff = {}, 0.0
    for name in names:
        value = got[name]
        if isinstance(value, list):  # ZipMap: one {class: probability} dict per row
            keys = [k if isinstance(k, str) else int(k) for k in value[0]]
            matrix = np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
            outputs[name] = tensor(matrix) | {"zipmap": {"keys": keys}}
            value = matrix
        else:
            outputs[name] = tensor(value)
        if name in reference:
            want = reference[name]
            if value.dtype.kind in "OUi":
                assert (value.reshape(want.shape) == want).all(), f"{case}: {name} differs"
            else:
                scale = max(1.0, float(np.abs(want).max()))
                d = float(np.abs(value.reshape(want.shape) - want).max())
                assert d < 1e-4 * scale, f"{case}: {name} differs by {d}"
                diff = max(diff, d)
    model = onnx.load(path)
    doc = {
        "onnxruntime": ort.__version__,
        "producer": producer,
        "opset": opsets(model).get(""),
        "opsets": opsets(model),
        "sklearn": sklearn.__version__,
        **(extra or {}),
        "inputs": {name: tensor(a) for name, a in inputs.items()},
        "outputs": outputs,
        "reference_max_abs_diff": diff,
    }
    write_expected(out, case, doc)
    print(summary(out, case))
    print(f"    ONNX Runtime vs the original model: max |diff| {diff:.2e}")


def skl_producer() -> str:
    return f"skl2onnx {skl2onnx.__version__}"


def convert(model, case: str, initial_types: list, zipmap: bool = False) -> onnx.ModelProto:
    """skl2onnx; the graph is named after the case (the default name is a random UUID)."""
    options = None if zipmap or not is_classifier(model) else {id(model): {"zipmap": False}}
    return skl2onnx.convert_sklearn(
        model, case, initial_types, target_opset=TARGET_OPSET, options=options
    )


def classifier_reference(model, x) -> dict[str, np.ndarray]:
    return {"label": model.predict(x), "probabilities": model.predict_proba(x)}


# ---------------------------------------------------------------------------------------------
# Mixed columns
# ---------------------------------------------------------------------------------------------

NUMERIC = ["alcohol", "malic_acid", "color_intensity"]
STRINGS = ["flavanoids_band", "proline_band"]


def wine_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Wine with three numeric columns and two string columns made by binning flavanoids into
    low/mid/high and proline into quartiles q1..q4; the labels are the class names (strings)."""
    data = datasets.load_wine()
    x = pd.DataFrame(data.data, columns=data.feature_names)
    frame = x[NUMERIC].copy()
    flav = x["flavanoids"].to_numpy()
    frame["flavanoids_band"] = np.select(
        [flav < np.quantile(flav, 1 / 3), flav < np.quantile(flav, 2 / 3)], ["low", "mid"], "high"
    )
    quartile = np.searchsorted(np.quantile(x["proline"], [0.25, 0.5, 0.75]), x["proline"])
    frame["proline_band"] = [f"q{q + 1}" for q in quartile]
    return frame, data.target_names[data.target]


def mixed_pipeline(out: Path, case: str, zipmap: bool) -> None:
    frame, y = wine_frame()
    tr, te = split(len(y))
    test = frame.iloc[te].reset_index(drop=True)
    # Categories no training row has: the one-hot encoder ignores them (all-zero columns).
    test.loc[0, "flavanoids_band"] = "unknown"
    test.loc[1, "proline_band"] = "q9"
    test.loc[2, ["flavanoids_band", "proline_band"]] = ["", "Q1"]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))])
    model.fit(frame.iloc[tr], y[tr])
    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC]
    types += [(c, StringTensorType([None, 1])) for c in STRINGS]
    save(out, case, convert(model, case, types, zipmap=zipmap))
    inputs = {c: test[[c]].to_numpy(dtype=np.float32) for c in NUMERIC}
    inputs |= {c: test[[c]].to_numpy(dtype=object) for c in STRINGS}
    # The reference on the float32-rounded numbers, which is what the graph sees.
    rounded = test.copy()
    rounded[NUMERIC] = rounded[NUMERIC].astype(np.float32).astype(np.float64)
    proba = model.predict_proba(rounded)
    label = model.predict(rounded)
    ref = (
        {"output_label": label, "output_probability": proba}
        if zipmap
        else {"label": label, "probabilities": proba}
    )
    columns = [{"name": c, "kind": "float"} for c in NUMERIC]
    columns += [{"name": c, "kind": "string"} for c in STRINGS]
    finish(out, case, skl_producer(), inputs, ref, {"columns": columns})


def sk_pipeline_mixed(out: Path) -> None:
    """Mixed columns, ``zipmap=False``: outputs ``label`` (string) and ``probabilities``."""
    mixed_pipeline(out, "sk_pipeline_mixed", zipmap=False)


def sk_pipeline_zipmap(out: Path) -> None:
    """The same pipeline with skl2onnx's default ZipMap: ``output_label`` and
    ``output_probability`` (a sequence of string → float maps)."""
    mixed_pipeline(out, "sk_pipeline_zipmap", zipmap=True)


# ---------------------------------------------------------------------------------------------
# Dense float inputs
# ---------------------------------------------------------------------------------------------


def dense(data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tr, te = split(len(data.target))
    x = data.data.astype(np.float32).astype(np.float64)  # what the float32 graph sees
    return x[tr], data.target[tr], x[te], data.target[te]


def classifier_case(out: Path, case: str, model, data) -> None:
    """Fits ``model`` on ``data`` and converts it with one float input ``input`` [N, features]
    and ``zipmap=False`` (outputs ``label`` and ``probabilities``)."""
    x, y, x_test, _ = dense(data)
    model.fit(x, y)
    save(out, case, convert(model, case, [("input", FloatTensorType([None, x.shape[1]]))]))
    inputs = {"input": x_test.astype(np.float32)}
    finish(out, case, skl_producer(), inputs, classifier_reference(model, x_test))


def sk_scaler_logreg(out: Path) -> None:
    """StandardScaler + multinomial LogisticRegression on wine (3 classes), ``input`` [N,13]."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    classifier_case(out, "sk_scaler_logreg", model, datasets.load_wine())


def sk_binary_logreg(out: Path) -> None:
    """StandardScaler + LogisticRegression on breast cancer (binary), ``input`` [N,30]."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    classifier_case(out, "sk_binary_logreg", model, datasets.load_breast_cancer())


def sk_random_forest(out: Path) -> None:
    """RandomForestClassifier(n_estimators=10, max_depth=5) on wine: TreeEnsembleClassifier,
    ``input`` [N,13]."""
    model = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=SEED, n_jobs=1)
    classifier_case(out, "sk_random_forest", model, datasets.load_wine())


def sk_imputer_normalizer(out: Path) -> None:
    """SimpleImputer(mean) + Normalizer(l2) + Ridge on diabetes, about 10% of the training and
    held-out cells missing (NaN, ``null`` in the JSON; one held-out row entirely); ``input``
    [N,10], output ``variable`` [N,1]."""
    case = "sk_imputer_normalizer"
    x, y, x_test, _ = dense(datasets.load_diabetes())
    x, x_test = with_nan(x, 0.10, SEED + 1), with_nan(x_test, 0.10, SEED + 2)
    x_test[3] = np.nan  # a row with nothing but missing values
    model = make_pipeline(SimpleImputer(), Normalizer(), Ridge(alpha=0.01)).fit(x, y)
    save(out, case, convert(model, case, [("input", FloatTensorType([None, 10]))]))
    inputs = {"input": x_test.astype(np.float32)}
    ref = {"variable": model.predict(x_test).reshape(-1, 1)}
    finish(out, case, skl_producer(), inputs, ref)


# ---------------------------------------------------------------------------------------------
# XGBoost (onnxmltools)
# ---------------------------------------------------------------------------------------------


# onnxmltools 1.16 refuses target_opset 17 ("target_opset 17 is higher than the number of the
# installed onnx package or the converter support (15)"); 15 is its highest. Its XGBoost graphs
# are a single ai.onnx.ml node, so the model imports only ai.onnx.ml (version 1).
XGB_TARGET_OPSET = 15


def convert_xgb(model, case: str, n_features: int) -> onnx.ModelProto:
    return onnxmltools.convert_xgboost(
        model,
        name=case,
        initial_types=[("input", MlFloatTensorType([None, n_features]))],
        target_opset=XGB_TARGET_OPSET,
    )


def xgb_producer() -> str:
    return f"onnxmltools {onnxmltools.__version__}"


def xgb_case(out: Path, case: str, model, data, seed: int) -> None:
    """Trains ``model`` with about 5% of the training cells and 10% of the held-out cells
    missing (NaN: XGBoost learns a default direction per split, which becomes
    ``nodes_missing_value_tracks_true``)."""
    x, y, x_test, _ = dense(data)
    x, x_test = with_nan(x, 0.05, seed), with_nan(x_test, 0.10, seed + 1)
    model.fit(x.astype(np.float32), y)
    save(out, case, convert_xgb(model, case, x.shape[1]))
    inputs = {"input": x_test.astype(np.float32)}
    if is_classifier(model):
        ref = classifier_reference(model, inputs["input"])
    else:
        ref = {"variable": model.predict(inputs["input"]).reshape(-1, 1)}
    finish(out, case, xgb_producer(), inputs, ref, {"xgboost": xgb.__version__})


def xgb_breast_cancer(out: Path) -> None:
    """XGBClassifier(n_estimators=20, max_depth=4) on breast cancer with missing values,
    ``input`` [N,30]: TreeEnsembleClassifier with base_values and a LOGISTIC post-transform."""
    model = xgb.XGBClassifier(n_estimators=20, max_depth=4, random_state=SEED, n_jobs=1)
    xgb_case(out, "xgb_breast_cancer", model, datasets.load_breast_cancer(), SEED + 3)


def xgb_regressor(out: Path) -> None:
    """XGBRegressor(n_estimators=20, max_depth=4) on diabetes with missing values, ``input``
    [N,10]: TreeEnsembleRegressor."""
    model = xgb.XGBRegressor(n_estimators=20, max_depth=4, random_state=SEED, n_jobs=1)
    xgb_case(out, "xgb_regressor", model, datasets.load_diabetes(), SEED + 5)


CASES = {
    f.__name__: f
    for f in [
        sk_pipeline_mixed,
        sk_pipeline_zipmap,
        sk_scaler_logreg,
        sk_imputer_normalizer,
        sk_binary_logreg,
        xgb_breast_cancer,
        xgb_regressor,
        sk_random_forest,
    ]
}


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # skl2onnx writes the opset imports in set order, which follows the string hash seed.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("cases", nargs="*", help=f"default: all of {', '.join(CASES)}")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cases or CASES:
        CASES[name](args.out)
    update_readme(args.out)


if __name__ == "__main__":
    main()
