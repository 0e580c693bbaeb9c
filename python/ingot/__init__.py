"""Ingot: ship a model with its pre- and post-processing as one file; run it from Python.

>>> import ingot
>>> model = ingot.load("churn.ingot")                     # doctest: +SKIP
>>> p = model.predict(df)                                 # doctest: +SKIP
>>> p.labels, p.probabilities, p.to_pandas()              # doctest: +SKIP

:func:`load` opens a bundle; :meth:`Model.predict` takes a pandas DataFrame, a pyarrow Table or
RecordBatch, a list of dicts, a 2-D numpy array or a list of strings and returns a
:class:`Prediction` of numpy arrays. :mod:`ingot.sklearn` exports fitted scikit-learn pipelines;
:func:`import_hf` imports sentence-transformers models, :func:`import_xgboost` and
:func:`import_lightgbm` XGBoost and LightGBM model files, :func:`import_onnx` ONNX models
(:func:`check_onnx` reports what would not import). Errors are :class:`IngotError`
subclasses carrying the core's message (row and column for bad input). See ``docs/python.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

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
    "check_onnx",
    "import_hf",
    "import_lightgbm",
    "import_onnx",
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


def import_onnx(
    model_path: str | PathLike,
    path: str | PathLike,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    classes: Sequence[str | int | float] | None = None,
    feature_names: Sequence[str] | None = None,
    output: str | None = None,
    embedding: bool = False,
    tokenizer: str | PathLike | None = None,
    max_length: int | None = None,
) -> Model:
    """Import an ONNX model (a torch MLP or CNN, a skl2onnx pipeline, an onnxmltools tree
    ensemble, a BERT-style text encoder; external data files are read next to it) into the
    ``.ingot`` file ``path`` and return it loaded. What each option does is ``ingot import
    onnx``'s (``docs/onnx.md``):

    * ``name`` defaults to the file name without its extension;
    * ``input_shapes`` fixes symbolic dimensions other than the batch: input name → dimensions,
      ``-1`` for the batch (``{"x": [-1, 3, 32, 32]}``);
    * ``classes`` are the class labels of the output columns (a torch classifier's logits or
      probabilities); a converted scikit-learn classifier brings its own;
    * ``feature_names`` names a tabular input's columns (default ``<input>_0, <input>_1, …``);
    * ``output`` is the graph output that feeds post-processing (default: the first that is not
      a label); ``embedding`` makes it an embedding (one vector per row);
    * ``tokenizer`` is a text encoder's ``tokenizer.json`` and ``max_length`` its truncation
      length in tokens (default: its position table's size).

    Every node that cannot be translated is reported at once in the :class:`UnsupportedError`;
    a malformed file is a :class:`ModelError` naming the node."""
    native = _ingot.import_onnx(
        str(model_path),
        str(path),
        name=name,
        version=version,
        input_shapes=_shapes(input_shapes),
        classes=None if classes is None else _labels(classes),
        feature_names=_names(feature_names),
        output=output,
        embedding=embedding,
        tokenizer=None if tokenizer is None else str(tokenizer),
        max_length=max_length,
    )
    return Model(native)


def check_onnx(
    model_path: str | PathLike,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    """Read an ONNX model and report what :func:`import_onnx` would make of it, writing
    nothing (``ingot import onnx --check``). The dict has ``ok`` (the file imports),
    ``producer``, ``opsets`` (domain → opset), ``ops`` (op type → node count), ``unsupported``
    (one dict per node that cannot be imported: ``op_type``, ``domain``, ``node``, ``opset``,
    ``reason``), ``error`` (what stops the import before the nodes are looked at, or ``None``)
    and ``encoder`` (the text encoder recognized, described, or ``None``). Raises only for a
    file that cannot be read or parsed at all."""
    return _ingot.check_onnx(str(model_path), input_shapes=_shapes(input_shapes), output=output)


def _shapes(input_shapes: Mapping[str, Sequence[int]] | None) -> list[tuple[str, list[int]]]:
    if input_shapes is None:
        return []
    return [(str(k), [int(d) for d in dims]) for k, dims in input_shapes.items()]


def _labels(classes: Sequence[str | int | float]) -> list[str | int | float]:
    # A lone string would otherwise be read as a sequence of one-letter labels.
    if isinstance(classes, str):
        raise TypeError("classes must be a sequence of labels, not a str")
    return list(classes)


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
