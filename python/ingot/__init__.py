"""Ingot: ship a model with its pre- and post-processing as one file; run it from Python.

>>> import ingot
>>> model = ingot.load("churn.ingot")                     # doctest: +SKIP
>>> p = model.predict(df)                                 # doctest: +SKIP
>>> p.labels, p.probabilities, p.to_pandas()              # doctest: +SKIP

:func:`load` opens a bundle; :meth:`Model.predict` takes a pandas DataFrame, a pyarrow Table or
RecordBatch, a list of dicts, a 2-D numpy array or a list of strings and returns a
:class:`Prediction` of numpy arrays. :mod:`ingot.sklearn` exports fitted scikit-learn pipelines;
:func:`import_hf` imports sentence-transformers models. Errors are :class:`IngotError`
subclasses carrying the core's message (row and column for bad input). See ``docs/python.md``.
"""

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
    "isa_level",
    "load",
    "pool_threads",
]


def __getattr__(name: str):
    # `ingot.sklearn` needs scikit-learn only when it is used.
    if name == "sklearn":
        import importlib

        return importlib.import_module(".sklearn", __name__)
    raise AttributeError(f"module 'ingot' has no attribute {name!r}")
