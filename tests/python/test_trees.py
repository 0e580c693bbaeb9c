"""Tests for exporting scikit-learn tree models with ``ingot.sklearn.export`` (ingot._trees).

Each model is fitted on bundled scikit-learn data (breast cancer, diabetes, wine, digits) or a
synthetic mixed table, exported, loaded, and compared with the model's own ``predict`` and
``predict_proba`` on held-out rows, some of them with missing values (NaN, or None in string
columns) where the model routes them:

* labels must be identical;
* probabilities and regression values: ``|a - b| <= 1e-5 * max(1, |b|)`` (Ingot sums the
  float64 leaf values in float64 and returns float32, so the error is float32 rounding).

HistGradientBoosting compares float64 inputs with its thresholds while the bundle's features
are float32 (docs/trees.md): an input above a threshold by less than half a float32 step goes
the other way. Inputs with a few decimals, as the datasets here hold (diabetes rounded to six),
never come that close.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

import ingot
from ingot.sklearn import UnsupportedError, export, export_dir

CREATED = "2026-01-01T00:00:00Z"
RTOL = 1e-5
NAN_FRACTION = 0.05


def _max_error(got: Any, want: Any) -> float:
    """Largest ``|got - want| / max(1, |want|)``; fails above ``RTOL``."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
    assert err <= RTOL, f"max relative error {err:.3g} > {RTOL}"
    return err


def _bundle(est: Any, tmp_path: Path, name: str = "trees") -> ingot.Model:
    return export(est, tmp_path / f"{name}.ingot", name=name, version="1.0.0", created=CREATED)


def _check_classifier(est: Any, model: ingot.Model, x: Any) -> float:
    pred = model.predict(x)
    np.testing.assert_array_equal(pred.labels, est.predict(x))
    return _max_error(pred.probabilities, est.predict_proba(x))


def _check_regressor(est: Any, model: ingot.Model, x: Any) -> float:
    want = est.predict(x)
    # One column per target; scikit-learn drops the axis of a single target.
    return _max_error(model.predict(x).values.reshape(want.shape), want)


def _with_nan(x: np.ndarray, seed: int) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    x[np.random.default_rng(seed).random(x.shape) < NAN_FRACTION] = np.nan
    return x


def _split(name: str, nan: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and held-out rows of a bundled dataset (every fourth row held out), NaN in
    about 5% of the cells of both when ``nan``."""
    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if name == "diabetes":
        # Its standardised features hold near-duplicates (the same value, differing in the 17th
        # digit): HistGradientBoosting puts a float64 threshold between them, which no float32
        # comparison can (docs/trees.md). Six decimals keep every distinct value.
        x = np.round(x, 6)
    test = np.arange(len(y)) % 4 == 0
    x_train, x_test = x[~test], x[test]
    if nan:
        x_train, x_test = _with_nan(x_train, 1), _with_nan(x_test, 2)
    return x_train, y[~test], x_test, y[test]


CLASSIFIERS = {
    "decision_tree": lambda: DecisionTreeClassifier(max_depth=8, random_state=0),
    "extra_tree": lambda: ExtraTreeClassifier(random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=25, random_state=0),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=25, random_state=0),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=30, random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=40, random_state=0),
}

REGRESSORS = {
    "decision_tree": lambda: DecisionTreeRegressor(max_depth=8, random_state=0),
    "extra_tree": lambda: ExtraTreeRegressor(random_state=0),
    "random_forest": lambda: RandomForestRegressor(n_estimators=25, random_state=0),
    "extra_trees": lambda: ExtraTreesRegressor(n_estimators=25, random_state=0),
    "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=40, random_state=0),
    "gradient_boosting_huber": lambda: GradientBoostingRegressor(
        loss="huber", n_estimators=20, random_state=0
    ),
    "gradient_boosting_quantile": lambda: GradientBoostingRegressor(
        loss="quantile", alpha=0.8, n_estimators=20, random_state=0
    ),
    "gradient_boosting_zero_init": lambda: GradientBoostingRegressor(
        init="zero", n_estimators=20, random_state=0
    ),
    "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(max_iter=40, random_state=0),
    "hist_gradient_boosting_poisson": lambda: HistGradientBoostingRegressor(
        loss="poisson", max_iter=40, random_state=0
    ),
    "hist_gradient_boosting_gamma": lambda: HistGradientBoostingRegressor(
        loss="gamma", max_iter=40, random_state=0
    ),
    "hist_gradient_boosting_absolute": lambda: HistGradientBoostingRegressor(
        loss="absolute_error", max_iter=40, random_state=0
    ),
}


def _routes_nan(est: Any) -> bool:
    """GradientBoosting* refuses NaN (scikit-learn raises); every other tree model routes it."""
    return not isinstance(est, (GradientBoostingClassifier, GradientBoostingRegressor))


def _check_nan_refused(model: ingot.Model, x_test: np.ndarray) -> None:
    with pytest.raises(ingot.InputError, match="missing"):
        model.predict(_with_nan(x_test, 3))


@pytest.mark.parametrize("kind", CLASSIFIERS)
@pytest.mark.parametrize("dataset", ["breast_cancer", "wine"])
def test_classifier_matches_sklearn(dataset: str, kind: str, tmp_path: Path) -> None:
    est = CLASSIFIERS[kind]()
    x_train, y_train, x_test, _ = _split(dataset, nan=_routes_nan(est))
    est.fit(x_train, y_train)
    model = _bundle(est, tmp_path)
    assert model.task == "classifier"
    _check_classifier(est, model, x_test)
    if not _routes_nan(est):
        _check_nan_refused(model, x_test)


@pytest.mark.parametrize("kind", REGRESSORS)
def test_regressor_matches_sklearn(kind: str, tmp_path: Path) -> None:
    est = REGRESSORS[kind]()
    x_train, y_train, x_test, _ = _split("diabetes", nan=_routes_nan(est))
    est.fit(x_train, y_train)
    model = _bundle(est, tmp_path)
    assert model.task == "regressor"
    _check_regressor(est, model, x_test)
    if not _routes_nan(est):
        _check_nan_refused(model, x_test)


def test_poisson_uses_exp_link(tmp_path: Path) -> None:
    x_train, y_train, _, _ = _split("diabetes", nan=False)
    est = HistGradientBoostingRegressor(loss="poisson", max_iter=5).fit(x_train, y_train)
    post = _bundle(est, tmp_path).manifest["postprocess"][0]
    assert post == {"type": "regress", "targets": ["target"], "link": "exp"}


def test_exponential_loss_classifier(tmp_path: Path) -> None:
    x_train, y_train, x_test, _ = _split("breast_cancer", nan=False)
    est = GradientBoostingClassifier(loss="exponential", n_estimators=30, random_state=0)
    est.fit(x_train, y_train)
    _check_classifier(est, _bundle(est, tmp_path), x_test)


@pytest.mark.parametrize(
    "est",
    [
        RandomForestClassifier(n_estimators=20, random_state=0),
        ExtraTreesClassifier(n_estimators=20, random_state=0),
        GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0),
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
    ],
    ids=["random_forest", "extra_trees", "gradient_boosting", "hist_gradient_boosting"],
)
def test_digits_matches_sklearn(est: Any, tmp_path: Path) -> None:
    x_train, y_train, x_test, _ = _split("digits", nan=_routes_nan(est))
    est.fit(x_train, y_train)
    _check_classifier(est, _bundle(est, tmp_path), x_test)


def test_multi_output_regressor(tmp_path: Path) -> None:
    x_train, y_train, x_test, _ = _split("diabetes", nan=True)
    y2 = np.c_[y_train, np.log(y_train)]
    for est in (RandomForestRegressor(n_estimators=10, random_state=0), DecisionTreeRegressor()):
        est.fit(x_train, y2)
        model = _bundle(est, tmp_path)
        assert model.predict(x_test).values.shape == (len(x_test), 2)
        _check_regressor(est, model, x_test)


def test_binary_forest_has_a_probability_per_class(tmp_path: Path) -> None:
    x_train, y_train, _, _ = _split("breast_cancer", nan=False)
    est = RandomForestClassifier(n_estimators=3, random_state=0).fit(x_train, y_train)
    manifest = _bundle(est, tmp_path).manifest
    assert manifest["postprocess"][0]["activation"] == "identity"
    assert manifest["graph"]["outputs"][0]["shape"] == [-1, 2]
    assert manifest["preprocess"][0]["keep_missing"] is True


def test_tensors_keep_their_dtypes(tmp_path: Path) -> None:
    x_train, y_train, _, _ = _split("breast_cancer", nan=False)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x_train, y_train)
    tensors = export_dir(forest, tmp_path / "forest", name="f", version="1.0.0") / "tensors"
    dtypes = {p.stem: np.load(p).dtype.str for p in tensors.glob("*.npy")}
    assert dtypes == {
        "trees.nodes": "<i4",
        "trees.thresholds": "<f8",
        "trees.leaves": "<f8",
        "trees.trees": "<i4",
    }
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    tensors = export_dir(linear, tmp_path / "linear", name="l", version="1.0.0") / "tensors"
    assert {np.load(p).dtype.str for p in tensors.glob("*.npy")} == {"<f4"}


def test_large_ensemble(tmp_path: Path) -> None:
    """500 trees of depth 8 (about 110k nodes) on 30 features."""
    x, y = datasets.make_regression(
        n_samples=1500, n_features=30, n_informative=20, noise=5.0, random_state=0
    )
    est = GradientBoostingRegressor(
        n_estimators=500, max_depth=8, max_features=10, learning_rate=0.05, random_state=0
    )
    est.fit(x[:1200], y[:1200])
    assert all(t.tree_.max_depth == 8 for t in est.estimators_[:, 0])
    _check_regressor(est, _bundle(est, tmp_path), x[1200:])


# --------------------------------------------------------------------------------------------
# Pipelines and categorical features on a synthetic mixed table

CITIES = ["paris", "lyon", "nice", "lille", "brest"]
PLANS = [0, 3, 5, 40, 77]  # integer codes, some beyond one 32-bit word


def _mixed(n: int, seed: int, unseen: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Numeric columns with NaN, a string and an integer-coded categorical column; with
    ``unseen``, categories the training rows never hold ("brest", 9, 50, 1000) and missing
    ones."""
    rng = np.random.default_rng(seed)
    known = 4
    city = rng.choice(CITIES[:known], n).astype(object)
    plan = rng.choice(PLANS[:known], n)
    if unseen:
        city[::7] = "brest"
        city[3::11] = None
        plan[1::6] = rng.choice([9, 50, 1000], len(plan[1::6]))
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).astype(np.float32).astype(np.float64),
            "income": rng.lognormal(3, 0.5, n).astype(np.float32).astype(np.float64),
            "city": city,
            "plan": plan,
            "score": rng.normal(size=n).astype(np.float32).astype(np.float64),
        }
    )
    for col in ("age", "income"):
        df.loc[rng.random(n) < 0.1, col] = np.nan
    effect = {"paris": 1.0, "lyon": -0.5, "nice": 0.3, "lille": 0.0, "brest": 0.0}
    logit = (
        df["city"].map(effect).fillna(0).to_numpy()
        + (df["plan"].to_numpy() == 40)
        + 0.05 * np.nan_to_num(df["age"].to_numpy() - 40)
        + df["score"].to_numpy()
    )
    return df, (logit + rng.normal(0, 0.5, n) > 0.3).astype(int)


NUMERIC = ["age", "income", "score"]


def _one_hot() -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False)


def _pipeline(kind: str) -> Pipeline:
    """A pre-processing ColumnTransformer in front of a tree model."""
    # Unknown categories become NaN, which the trees route as missing.
    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    if kind == "one_hot_forest":
        ct = ColumnTransformer([("cat", _one_hot(), ["city", "plan"])], remainder="passthrough")
        model = RandomForestClassifier(n_estimators=20, random_state=0)
    elif kind == "ordinal_hgb_categorical":
        ct = ColumnTransformer(
            [("cat", ordinal, ["city", "plan"]), ("num", "passthrough", NUMERIC)]
        )
        model = HistGradientBoostingClassifier(
            categorical_features=[0, 1], max_iter=30, random_state=0
        )
    elif kind == "ordinal_scaled_gradient_boosting":
        # GradientBoosting refuses NaN: unknown categories get a code, an imputer fills numbers.
        coded = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        ct = ColumnTransformer([("cat", coded, ["city", "plan"]), ("num", numbers, NUMERIC)])
        model = GradientBoostingClassifier(n_estimators=20, random_state=0)
    else:
        ct = ColumnTransformer([("cat", _one_hot(), ["city"]), ("num", StandardScaler(), NUMERIC)])
        model = DecisionTreeClassifier(max_depth=6, random_state=0)
    return Pipeline([("ct", ct), ("model", model)])


PIPELINES = [
    "one_hot_forest",
    "ordinal_hgb_categorical",
    "ordinal_scaled_gradient_boosting",
    "one_hot_decision_tree",
]


@pytest.mark.parametrize("kind", PIPELINES)
def test_pipeline_matches_sklearn(kind: str, tmp_path: Path) -> None:
    est = _pipeline(kind)
    x_train, y_train = _mixed(600, 0)
    x_test, _ = _mixed(200, 1, unseen=True)
    routes_nan = _routes_nan(est[-1])
    if not routes_nan:
        x_test["city"] = x_test["city"].fillna("brest")
    est.fit(x_train, y_train)
    model = _bundle(est, tmp_path)
    assert model.manifest["preprocess"][0].get("keep_missing", False) is routes_nan
    _check_classifier(est, model, x_test)


def _integer_coded(df: pd.DataFrame) -> np.ndarray:
    """The mixed table as numbers: city as its index in CITIES (missing: NaN), plan as is."""
    city = df["city"].map({c: float(i) for i, c in enumerate(CITIES)}).astype(np.float64)
    columns = [city.to_numpy(), df["plan"].to_numpy(dtype=np.float64)]
    return np.column_stack([*columns, df[NUMERIC].to_numpy()])


@pytest.mark.parametrize(
    "categorical", [[0, 1], np.array([True, True, False, False, False])], ids=["indices", "mask"]
)
def test_hist_gradient_boosting_integer_categories(categorical: Any, tmp_path: Path) -> None:
    x_train, y_train = _mixed(800, 0)
    x_test, _ = _mixed(300, 1, unseen=True)
    x_train, x_test = _integer_coded(x_train), _integer_coded(x_test)
    x_test[5::13, 1] = -1.0  # negative: missing for both
    for est in (
        HistGradientBoostingClassifier(
            categorical_features=categorical, max_iter=30, random_state=0
        ),
        HistGradientBoostingRegressor(
            categorical_features=categorical, max_iter=30, random_state=0
        ),
    ):
        y = y_train if is_classifier(est) else y_train + x_train[:, 4]
        est.fit(x_train, y)
        model = _bundle(est, tmp_path)
        assert "trees.category_sets" in model.manifest["graph"]["nodes"][0]["inputs"]
        if is_classifier(est):
            _check_classifier(est, model, x_test)
        else:
            _check_regressor(est, model, x_test)


def test_hist_gradient_boosting_pandas_categories(tmp_path: Path) -> None:
    """categorical_features="from_dtype": the model's own encoder becomes the bundle's."""
    x_train, y_train = _mixed(800, 0)
    x_test, _ = _mixed(300, 1, unseen=True)
    x_train.loc[::17, "city"] = None
    for df in (x_train, x_test):
        df["city"] = pd.Categorical(df["city"], categories=CITIES)
        df["plan"] = pd.Categorical(df["plan"], categories=[*PLANS, 9, 50, 1000])
    est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x_train, y_train)
    assert est.is_categorical_.tolist() == [False, False, True, True, False]
    model = _bundle(est, tmp_path)
    steps = {t["name"]: t["steps"] for t in model.manifest["preprocess"][0]["transformers"]}
    assert steps["encoder"][0]["type"] == "ordinal_encoder"
    assert {i["name"]: i["dtype"] for i in model.manifest["signature"]["inputs"]}["city"] == (
        "string"
    )
    _check_classifier(est, model, x_test)


# --------------------------------------------------------------------------------------------
# Refused


def _unsupported_cases() -> list[Any]:
    return [
        pytest.param(
            GradientBoostingRegressor(init=LinearRegression(), n_estimators=3),
            "init=LinearRegression",
            id="gb_custom_init",
        ),
        pytest.param(
            GradientBoostingClassifier(init=DummyClassifier(strategy="stratified"), n_estimators=3),
            "strategy='stratified'",
            id="gb_random_init",
        ),
        pytest.param(
            RandomForestClassifier(n_estimators=3, random_state=0),
            "multi-output classification",
            id="multi_output_classifier",
        ),
        pytest.param(
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                HistGradientBoostingClassifier(categorical_features=[0], max_iter=3),
            ),
            "internal OrdinalEncoder",
            id="hgb_string_categories_after_steps",
        ),
    ]


@pytest.mark.parametrize(("est", "message"), _unsupported_cases())
def test_unsupported_raises(est: Any, message: str, tmp_path: Path) -> None:
    x, y = _mixed(200, 0)
    if message == "multi-output classification":
        est.fit(x[NUMERIC].fillna(0), np.c_[y, 1 - y])
    elif message == "internal OrdinalEncoder":
        est.fit(x[["city", "age"]].astype(object), y)
    else:
        est.fit(x[NUMERIC].fillna(0), y)
    with pytest.raises(UnsupportedError, match=message):
        export_dir(est, tmp_path / "m", name="bad", version="1.0.0")
