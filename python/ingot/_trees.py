"""scikit-learn tree models as one ``TreeEnsemble`` graph node (docs/trees.md).

:func:`convert` handles ``DecisionTree*``, ``ExtraTree*``, ``RandomForest*``, ``ExtraTrees*``,
``GradientBoosting*`` and ``HistGradientBoosting*`` (classifiers and regressors); ``ingot.sklearn``
calls it for the final estimator of a pipeline. The node's tensors and attributes are those of
``crates/ingot/src/trees/tensors.rs``: ``trees.nodes`` (int32), ``trees.thresholds`` and
``trees.leaves`` (float64, scikit-learn's own numbers), ``trees.trees`` and, for categorical
splits, ``trees.category_sets`` and ``trees.category_bits``.

How scikit-learn decides, and how the node says the same:

* a split of a ``tree_`` (decision trees, forests, gradient boosting) sends ``x <= threshold``
  left with ``x`` cast to float32: comparison ``le`` with the float64 threshold stored as it is
  (the runtime derives the float32 threshold that takes the same branch for every float32 x);
* HistGradientBoosting compares float64 ``x`` with ``num_threshold``, while the graph's
  features are float32: comparison ``le_f64``, whose float32 cut (``ingot::trees::f32_cut``)
  decides as scikit-learn does for float32 inputs and for decimals on the training grid.
  Inputs that are neither and lie within a float32 step of a threshold can take the other
  branch (docs/trees.md);
* NaN follows ``missing_go_to_left``;
* a HistGradientBoosting categorical split sends a category of its left bitset left, a known
  category right, and an unknown, negative or missing one where missing values go. Its
  categories are the codes of the model's internal ``OrdinalEncoder``. When every category of
  the model is a non-negative integer below ``_MAX_FOLDED_CATEGORY`` the encoding is folded into
  each split's set, over the raw values (:func:`_folded_set`); otherwise the encoder becomes the
  bundle's pre-processing (:func:`encoder_groups`), which needs the model to be the first step.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

import numpy as np

from .sklearn import (
    UnsupportedError,
    _classify,
    _cls,
    _float_list,
    _Group,
    _is_missing,
    _json_scalar,
    _Model,
    _passthrough,
    _regress,
    _Step,
    _value_kind,
)

# Tree export reads `tree_.missing_go_to_left` (1.3), classifier leaves holding fractions
# (1.4) and `sklearn.utils.get_tags` (1.6).
_MIN_SKLEARN = (1, 6)
# Raw category values folded into a split's set stay below this (a set holds a bit per value).
_MAX_FOLDED_CATEGORY = 1 << 16
_PREFIX = "trees"
_INT32_MAX = np.iinfo(np.int32).max


class _Ensemble:
    """Trees gathered, one after another, into the tensors of one ``TreeEnsemble`` node."""

    def __init__(self, leaf_width: int):
        self.leaf_width = leaf_width
        self.nodes: list[np.ndarray] = []
        self.thresholds: list[np.ndarray] = []
        self.leaves: list[np.ndarray] = []
        self.trees: list[tuple[int, int]] = []
        self.sets: list[np.ndarray] = []
        self.n_nodes = 0
        self.n_leaves = 0

    def add(
        self,
        *,
        feature: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        threshold: np.ndarray,
        missing_left: np.ndarray,
        values: np.ndarray,
        target: int = -1,
        category_set: np.ndarray | None = None,
        sets: tuple[np.ndarray, ...] = (),
    ) -> None:
        """Add one tree given per node, as scikit-learn lays it out: the feature (negative
        for a leaf), the children (indices within the tree, after their parent), the threshold,
        where NaN goes and ``leaf_width`` values (read at leaves). ``category_set[i]`` indexes
        ``sets`` (bitsets of uint32 words) for a categorical split and is -1 otherwise.
        ``target`` is the output column of a tree with one value per leaf, -1 for all."""
        feature = np.asarray(feature, dtype=np.int64)
        n = len(feature)
        leaf = feature < 0
        if category_set is None:
            category_set = np.full(n, -1, dtype=np.int64)
        categorical = ~leaf & (category_set >= 0)
        rows = np.empty((n, 5), dtype=np.int64)
        rows[:, 0] = np.where(leaf, -1, feature)
        rows[:, 1] = np.where(leaf, -1, np.asarray(left, dtype=np.int64) + self.n_nodes)
        rows[:, 2] = np.where(leaf, -1, np.asarray(right, dtype=np.int64) + self.n_nodes)
        flags = np.asarray(missing_left, dtype=bool) * 1 + categorical * 2
        rows[:, 3] = np.where(leaf, 0, flags)
        leaf_row = self.n_leaves + np.cumsum(leaf) - 1
        set_row = np.where(categorical, category_set + len(self.sets), -1)
        rows[:, 4] = np.where(leaf, leaf_row, set_row)
        self.nodes.append(rows)
        numeric = ~(leaf | categorical)
        self.thresholds.append(np.where(numeric, np.asarray(threshold, dtype=np.float64), 0.0))
        values = np.asarray(values, dtype=np.float64).reshape(n, self.leaf_width)
        self.leaves.append(values[leaf])
        self.trees.append((self.n_nodes, target))
        self.sets.extend(sets)
        self.n_nodes += n
        self.n_leaves += int(leaf.sum())

    def finish(
        self, model: _Model, *, aggregate: str, base_score: Any, comparison: str = "le"
    ) -> None:
        """Write the node and its tensors into ``model`` (scores: one column per base score)."""
        if self.n_nodes > _INT32_MAX:
            raise UnsupportedError(f"{self.n_nodes} tree nodes do not fit the format's int32")
        base = _float_list(base_score, "tree ensemble base score")
        p = _PREFIX
        tensors = {
            f"{p}.nodes": np.concatenate(self.nodes).astype("<i4"),
            f"{p}.thresholds": np.concatenate(self.thresholds).astype("<f8"),
            f"{p}.leaves": np.concatenate(self.leaves).astype("<f8"),
            f"{p}.trees": np.asarray(self.trees, dtype="<i4").reshape(-1, 2),
        }
        if self.sets:
            lengths = np.array([len(s) for s in self.sets], dtype=np.int64)
            starts = np.cumsum(lengths) - lengths
            tensors[f"{p}.category_sets"] = np.stack([starts, lengths], axis=1).astype("<i4")
            bits = np.concatenate(self.sets).astype(np.uint32)
            tensors[f"{p}.category_bits"] = bits.view("<i4")
        model.tensors.update(tensors)
        model.nodes.append(
            {
                "name": p,
                "op": "TreeEnsemble",
                "inputs": ["features", *tensors],
                "outputs": ["scores"],
                "attrs": {
                    "n_outputs": len(base),
                    "comparison": comparison,
                    "aggregate": aggregate,
                    "base_score": base,
                },
            }
        )
        model.n_out = len(base)


# --------------------------------------------------------------------------------------------
# Trees with a `tree_` (decision trees, forests, gradient boosting)


def _add_tree(ens: _Ensemble, est: Any, values: np.ndarray, target: int = -1) -> None:
    t = est.tree_
    ens.add(
        feature=t.feature,
        left=t.children_left,
        right=t.children_right,
        threshold=t.threshold,
        missing_left=t.missing_go_to_left,
        values=values,
        target=target,
    )


def _single_output(est: Any) -> None:
    if est.n_outputs_ != 1:
        raise UnsupportedError(
            f"{_cls(est)} fitted on {est.n_outputs_} targets (multi-output classification) is "
            "not supported"
        )


def _tree_classifiers(model: _Model, est: Any, trees: list[Any], aggregate: str) -> None:
    """Leaves are the class fractions scikit-learn's ``predict_proba`` returns (``tree_.value``
    holds fractions for classifiers); a forest averages them."""
    _single_output(est)
    k = len(est.classes_)
    ens = _Ensemble(k)
    for tree in trees:
        _add_tree(ens, tree, tree.tree_.value[:, 0, :k])
    ens.finish(model, aggregate=aggregate, base_score=np.zeros(k))
    _classify(model, est, "identity")


def _tree_regressors(model: _Model, est: Any, trees: list[Any], aggregate: str) -> None:
    m = est.n_outputs_
    ens = _Ensemble(m)
    for tree in trees:
        _add_tree(ens, tree, tree.tree_.value[:, :, 0])
    ens.finish(model, aggregate=aggregate, base_score=np.zeros(m))
    _regress(model, est)


def _decision_tree_classifier(model: _Model, est: Any, width: int) -> None:
    _tree_classifiers(model, est, [est], "sum")


def _decision_tree_regressor(model: _Model, est: Any, width: int) -> None:
    _tree_regressors(model, est, [est], "sum")


def _forest_classifier(model: _Model, est: Any, width: int) -> None:
    _tree_classifiers(model, est, list(est.estimators_), "mean")


def _forest_regressor(model: _Model, est: Any, width: int) -> None:
    _tree_regressors(model, est, list(est.estimators_), "mean")


# Strategies whose prediction does not depend on the row (what a boosting init must be here).
_CONSTANT_DUMMY_CLASSIFIER = ("prior", "most_frequent", "uniform", "constant")


def _gradient_boosting_base(est: Any, width: int) -> np.ndarray:
    """The raw prediction of the init estimator, one number per output: 0 for ``'zero'``, else
    a constant ``DummyClassifier`` / ``DummyRegressor`` (the default is one), linked as
    scikit-learn links it."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = est.init_
    if not (isinstance(init, str) and init == "zero"):
        constant = type(init) is DummyRegressor or (
            type(init) is DummyClassifier and init.strategy in _CONSTANT_DUMMY_CLASSIFIER
        )
        if not constant:
            what = _cls(init)
            if type(init) is DummyClassifier:
                what = f"DummyClassifier(strategy={init.strategy!r})"
            raise UnsupportedError(
                f"{_cls(est)}(init={what}) is not supported: the init estimator must be the "
                "default, a constant DummyClassifier / DummyRegressor, or 'zero'"
            )
    # The init estimator ignores the row, so any row of the right width gives the base.
    return est._raw_predict_init(np.zeros((1, width), dtype=np.float32))[0]


def _gradient_boosting_classifier(model: _Model, est: Any, width: int) -> None:
    if est.loss == "log_loss":
        scale = 1.0
    elif est.loss == "exponential":
        scale = 2.0  # predict_proba is expit(2 * raw); the label is the sign of raw either way
    else:
        raise UnsupportedError(f"GradientBoostingClassifier(loss={est.loss!r}) is not supported")
    _gradient_boosting(model, est, width, scale)
    _classify(model, est, "logistic" if est.n_trees_per_iteration_ == 1 else "softmax")


def _gradient_boosting_regressor(model: _Model, est: Any, width: int) -> None:
    if est.loss not in ("squared_error", "absolute_error", "huber", "quantile"):
        raise UnsupportedError(f"GradientBoostingRegressor(loss={est.loss!r}) is not supported")
    _gradient_boosting(model, est, width, 1.0)
    _regress(model, est)


def _gradient_boosting(model: _Model, est: Any, width: int, scale: float) -> None:
    """Stage trees (one per output column and stage) with leaves times the learning rate, on
    top of the init estimator's raw prediction; ``scale`` multiplies both."""
    base = _gradient_boosting_base(est, width)
    ens = _Ensemble(1)
    factor = est.learning_rate * scale
    for stage in est.estimators_:
        for k, tree in enumerate(stage):
            _add_tree(ens, tree, factor * tree.tree_.value[:, 0, 0], target=k)
    ens.finish(model, aggregate="sum", base_score=scale * np.asarray(base, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# HistGradientBoosting


def _is_hist_gradient_boosting(est: Any) -> bool:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return type(est) in (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def _known_categories(est: Any) -> list[np.ndarray] | None:
    """Categories of each categorical input column of a HistGradientBoosting model, in the
    order of its internal ``OrdinalEncoder`` (a category's position is its code), missing
    values left out; None without categorical features."""
    if est._preprocessor is None:
        return None
    encoder = est._preprocessor.named_transformers_["encoder"]
    out = []
    for cats in encoder.categories_:
        cats = np.asarray(cats, dtype=object)
        out.append(np.array([c for c in cats if not _is_missing(c)]))
    return out


def _foldable(categories: list[np.ndarray]) -> bool:
    """Whether every category is a non-negative integer small enough to index a bitset."""
    for cats in categories:
        for c in cats:
            if isinstance(c, (bool, np.bool_)) or not isinstance(c, (numbers.Real, np.number)):
                return False
            f = float(c)
            if not (f.is_integer() and 0 <= f < _MAX_FOLDED_CATEGORY):
                return False
    return True


def _column_layout(est: Any) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The internal ColumnTransformer's layout: for each model feature the input column it
    reads, and the input columns of ``encoder`` and ``numerical`` in output order."""
    ct = est._preprocessor
    mask = np.asarray(est.is_categorical_, dtype=bool)
    parts = [("encoder", np.flatnonzero(mask)), ("numerical", np.flatnonzero(~mask))]
    parts.sort(key=lambda p: ct.output_indices_[p[0]].start)
    source = np.empty(len(mask), dtype=np.int64)
    for name, columns in parts:
        source[ct.output_indices_[name]] = columns
    return source, [(name, columns) for name, columns in parts if columns.size]


def encoder_groups(est: Any, pre: list[Any]) -> list[_Group] | None:
    """The pre-processing of a HistGradientBoosting model whose categories only its internal
    ``OrdinalEncoder`` can map (strings, negative or fractional numbers): that encoder on the
    categorical columns (unknown and missing categories → NaN, as scikit-learn encodes them) and
    the other columns as they are, in the model's feature order. None for any other model.
    """
    if not _is_hist_gradient_boosting(est):
        return None
    categories = _known_categories(est)
    if categories is None or _foldable(categories):
        return None
    if pre:
        raise UnsupportedError(
            f"{_cls(est)} after pre-processing steps: its categorical features have categories "
            f"other than integers from 0 to {_MAX_FOLDED_CATEGORY - 1}, which only its internal "
            "OrdinalEncoder maps; make the model the first step, or encode those features as "
            "small non-negative integers"
        )
    _, parts = _column_layout(est)
    groups = []
    for name, columns in parts:
        w = len(columns)
        if name == "encoder":
            cats = [[_json_scalar(c, f"{_cls(est)} category") for c in col] for col in categories]
            hints = [_value_kind(col, f"{_cls(est)} categories") for col in categories]
            spec = {
                "type": "ordinal_encoder",
                "categories": cats,
                "handle_unknown": "use_encoded_value",
                "unknown_value": None,
                "encoded_missing_value": None,
            }
            step = _Step(spec, w, w, hints)
        else:
            step = _passthrough(w)
        groups.append(_Group(name, [int(c) for c in columns], [step]))
    return groups


def _pack(bits: np.ndarray) -> np.ndarray:
    """Bits (a multiple of 32) as uint32 words: bit ``c % 32`` of word ``c // 32`` is ``c``."""
    shifts = np.arange(32, dtype=np.uint64)
    return (bits.reshape(-1, 32).astype(np.uint64) << shifts).sum(axis=1).astype(np.uint32)


def _folded_set(left_codes: np.ndarray, raw: np.ndarray, missing_left: bool) -> np.ndarray:
    """A split's set over raw category values, from its set over encoder codes: value
    ``raw[c]`` goes left when code ``c`` does, every other value up to the last word goes
    where a missing value goes (the encoder makes an unknown category missing)."""
    codes = np.arange(len(raw))
    code_left = (left_codes[codes // 32] >> (codes % 32).astype(np.uint32)) & 1 == 1
    words = int(raw.max()) // 32 + 1
    bits = np.full(words * 32, missing_left, dtype=bool)
    bits[raw.astype(np.int64)] = code_left
    return _pack(bits)


def _hist_gradient_boosting(model: _Model, est: Any, width: int) -> None:
    """Every iteration's predictors (one per output column), leaf values as stored (the
    learning rate is already in them), on top of ``_baseline_prediction``."""
    categories = _known_categories(est)
    folded = categories is not None and _foldable(categories)
    if folded:
        source, _ = _column_layout(est)
        raw = [np.asarray(c, dtype=np.float64) for c in categories]
        # Model feature → position among the categorical ones (the encoder's column).
        cat_features = np.flatnonzero(np.asarray(est.is_categorical_)[source])
        encoder_column = {int(f): j for j, f in enumerate(cat_features)}
    else:
        source = np.arange(width)
    ens = _Ensemble(1)
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            categorical = ~leaf & nodes["is_categorical"].astype(bool)
            feature = np.where(leaf, -1, nodes["feature_idx"])
            missing_left = nodes["missing_go_to_left"].astype(bool)
            category_set = np.full(len(nodes), -1, dtype=np.int64)
            sets = []
            for i in np.flatnonzero(categorical):
                words = predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]]
                if folded:
                    j = encoder_column[int(feature[i])]
                    words = _folded_set(words, raw[j], bool(missing_left[i]))
                category_set[i] = len(sets)
                sets.append(np.asarray(words, dtype=np.uint32))
            ens.add(
                feature=np.where(leaf, -1, source[np.where(leaf, 0, feature)]),
                left=nodes["left"],
                right=nodes["right"],
                threshold=nodes["num_threshold"],
                missing_left=missing_left,
                values=nodes["value"],
                target=k,
                category_set=category_set,
                sets=tuple(sets),
            )
    base = np.ravel(est._baseline_prediction)
    ens.finish(model, aggregate="sum", base_score=base, comparison="le_f64")


def _hist_gradient_boosting_classifier(model: _Model, est: Any, width: int) -> None:
    if est.loss != "log_loss":
        raise UnsupportedError(f"HistGradientBoostingClassifier(loss={est.loss!r})")
    _hist_gradient_boosting(model, est, width)
    _classify(model, est, "logistic" if est.n_trees_per_iteration_ == 1 else "softmax")


_HGB_LINKS = {
    "squared_error": "identity",
    "absolute_error": "identity",
    "quantile": "identity",
    "poisson": "exp",
    "gamma": "exp",
}


def _hist_gradient_boosting_regressor(model: _Model, est: Any, width: int) -> None:
    link = _HGB_LINKS.get(est.loss) if isinstance(est.loss, str) else None
    if link is None:
        raise UnsupportedError(f"HistGradientBoostingRegressor(loss={est.loss!r})")
    _hist_gradient_boosting(model, est, width)
    _regress(model, est, link=link)


# --------------------------------------------------------------------------------------------
# Entry points


def _converters() -> dict[type, Any]:
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
    from sklearn.tree import (
        DecisionTreeClassifier,
        DecisionTreeRegressor,
        ExtraTreeClassifier,
        ExtraTreeRegressor,
    )

    return {
        DecisionTreeClassifier: _decision_tree_classifier,
        ExtraTreeClassifier: _decision_tree_classifier,
        DecisionTreeRegressor: _decision_tree_regressor,
        ExtraTreeRegressor: _decision_tree_regressor,
        RandomForestClassifier: _forest_classifier,
        ExtraTreesClassifier: _forest_classifier,
        RandomForestRegressor: _forest_regressor,
        ExtraTreesRegressor: _forest_regressor,
        GradientBoostingClassifier: _gradient_boosting_classifier,
        GradientBoostingRegressor: _gradient_boosting_regressor,
        HistGradientBoostingClassifier: _hist_gradient_boosting_classifier,
        HistGradientBoostingRegressor: _hist_gradient_boosting_regressor,
    }


def is_tree_model(est: Any) -> bool:
    """Whether :func:`convert` handles ``est``."""
    return type(est) in _converters()


def keeps_missing(est: Any) -> bool:
    """Whether missing values no imputer fills should reach the graph as NaN: for a tree
    model that routes them (scikit-learn refuses NaN for the others, and so does the bundle)."""
    from sklearn.utils import get_tags

    return is_tree_model(est) and bool(get_tags(est).input_tags.allow_nan)


def convert(est: Any, width: int) -> _Model:
    """The ``TreeEnsemble`` node, tensors and post-processing of a fitted tree model that reads
    ``width`` features."""
    import sklearn

    major, minor = re.match(r"(\d+)\.(\d+)", sklearn.__version__).groups()
    if (int(major), int(minor)) < _MIN_SKLEARN:
        need = ".".join(map(str, _MIN_SKLEARN))
        raise UnsupportedError(
            f"exporting {_cls(est)} needs scikit-learn >= {need} (installed: {sklearn.__version__})"
        )
    model = _Model()
    _converters()[type(est)](model, est, width)
    return model
