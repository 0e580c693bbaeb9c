"""Ingot: ship a model with its pre- and post-processing as one file; run it from Python.

>>> import ingot
>>> model = ingot.load("churn.ingot")                     # doctest: +SKIP
>>> p = model.predict(df)                                 # doctest: +SKIP
>>> p.labels, p.probabilities, p.to_pandas()              # doctest: +SKIP

:func:`load` opens a bundle; :meth:`Model.predict` takes a pandas DataFrame, a pyarrow Table or
RecordBatch, a list of dicts, a 2-D numpy array or a list of strings and returns a
:class:`Prediction` of numpy arrays. :mod:`ingot.sklearn` exports fitted scikit-learn pipelines;
:func:`import_hf` imports sentence-transformers models, :func:`import_xgboost` and
:func:`import_lightgbm` XGBoost and LightGBM model files. Errors are :class:`IngotError`
subclasses carrying the core's message (row and column for bad input). See ``docs/python.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from . import _ingot
from ._ingot import (
    BackendError,
    FormatError,
    IngotError,
    InputError,
    IoError,
    ModelError,
    UnsupportedError,
    UsageError,
    VersionError,
    __version__,
    isa_level,
    pool_threads,
)
from ._model import Model, Prediction, import_hf, load

__all__ = [
    "BackendError",
    "FormatError",
    "IngotError",
    "InputError",
    "IoError",
    "Model",
    "ModelError",
    "Prediction",
    "UnsupportedError",
    "UsageError",
    "VersionError",
    "__version__",
    "import_hf",
    "import_lightgbm",
    "import_xgboost",
    "isa_level",
    "load",
    "pool_threads",
]


def import_xgboost(
    model_path: str | PathLike,
    path: str | PathLike,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    feature_names: Sequence[str] | None = None,
) -> Model:
    """Import an XGBoost model file (``Booster.save_model`` as JSON or UBJSON, told apart by its
    bytes) into the ``.ingot`` file ``path`` and return it loaded. ``name`` defaults to the file
    name without its extension; ``feature_names`` (one per feature) replaces the model's own."""
    native = _ingot.import_xgboost(
        str(model_path),
        str(path),
        name=name,
        version=version,
        feature_names=_names(feature_names),
    )
    return Model(native)


def import_lightgbm(
    model_path: str | PathLike,
    path: str | PathLike,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    feature_names: Sequence[str] | None = None,
) -> Model:
    """Import a LightGBM text model (``Booster.save_model``) into the ``.ingot`` file ``path``
    and return it loaded. ``name`` defaults to the file name without its extension;
    ``feature_names`` (one per feature) replaces the model's own."""
    native = _ingot.import_lightgbm(
        str(model_path),
        str(path),
        name=name,
        version=version,
        feature_names=_names(feature_names),
    )
    return Model(native)


def _names(feature_names: Sequence[str] | None) -> list[str] | None:
    # A lone string would otherwise be read as a sequence of one-letter names.
    if isinstance(feature_names, str):
        raise TypeError("feature_names must be a sequence of strings, not a str")
    return None if feature_names is None else [str(n) for n in feature_names]


def __getattr__(name: str):
    # `ingot.sklearn` needs scikit-learn only when it is used.
    if name == "sklearn":
        import importlib

        return importlib.import_module(".sklearn", __name__)
    raise AttributeError(f"module 'ingot' has no attribute {name!r}")
