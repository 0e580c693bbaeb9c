"""Batch scoring on Spark with ``mapInPandas``: one model load per executor process.

>>> from pyspark import SparkFiles                                   # doctest: +SKIP
>>> spark.sparkContext.addFile("churn.ingot")                        # doctest: +SKIP
>>> model = ingot.load("churn.ingot")                                # doctest: +SKIP
>>> scored = df.mapInPandas(                                         # doctest: +SKIP
...     ingot.spark.scorer("churn.ingot", keep=["customer_id"]),
...     schema=ingot.spark.schema(model, keep={"customer_id": "bigint"}),
... )

The bundle travels with ``SparkContext.addFile`` (or sits at a path every executor can read);
:func:`scorer` returns the function ``mapInPandas`` calls on each partition: it loads the model
once per Python worker process (and keeps it for the process's later tasks) and predicts each
pandas batch exactly as :meth:`ingot.Model.predict` does. Nothing here imports pyspark.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._model import Model, load

_LOCK = threading.Lock()
_MODELS: dict[str, Model] = {}


def cached_load(path: str, *, threads: int | None = None) -> Model:
    """:func:`ingot.load`, once per process and path: later calls return the same model."""
    key = f"{os.path.abspath(path)}#{threads}"
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = load(path, threads=threads)
        return model


def _resolve(model_file: str) -> str:
    """A file shipped with ``SparkContext.addFile`` (by its name), else the path as given."""
    if os.path.sep not in model_file:
        try:
            from pyspark import SparkFiles

            shipped = SparkFiles.get(model_file)
            if os.path.exists(shipped):
                return shipped
        except Exception:  # noqa: BLE001 (not on an executor, or no SparkContext: use the path)
            pass
    return model_file


def scorer(
    model_file: str, *, keep: Iterable[str] = (), threads: int | None = 1
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The function to give ``DataFrame.mapInPandas``: each pandas batch of a partition becomes
    the ``keep`` columns followed by the prediction's columns (:meth:`ingot.Prediction.to_pandas`).

    ``model_file`` is a file name shipped with ``SparkContext.addFile`` or a path every executor
    can read. ``threads`` defaults to 1: Spark already runs one task per core, and a model that
    spread each call over every CPU would oversubscribe them.
    """
    keep = list(keep)

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        model = cached_load(_resolve(model_file), threads=threads)
        for batch in batches:
            out = model.predict(batch).to_pandas(index=batch.index)
            if keep:
                out = batch[keep].join(out)
            yield out

    return score


_SPARK_TYPES = {"string": "string", "i64": "bigint", "i32": "int", "f64": "double", "f32": "float"}


def schema(model: Model, *, keep: dict[str, str] | None = None) -> str:
    """The Spark DDL schema of :func:`scorer`'s output: the ``keep`` columns (name → Spark type)
    then the model's prediction columns (``label`` in the training labels' type,
    ``proba_<class>``, values and scores as ``float``, an embedding as ``array<float>``)."""
    fields = [f"`{name}` {kind}" for name, kind in (keep or {}).items()]
    for name, source, _ in _columns(model):
        if source == "labels":
            dtype = next(o["dtype"] for o in model.signature["outputs"] if o["name"] == "label")
            fields.append(f"`{name}` {_SPARK_TYPES.get(dtype, 'string')}")
        elif source == "embeddings":
            fields.append(f"`{name}` array<float>")
        else:
            fields.append(f"`{name}` float")
    return ", ".join(fields)


def _columns(model: Model) -> list[tuple[str, str, int | None]]:
    """The prediction columns of ``model``, from a prediction of zero rows."""
    return model._model.predict_records([]).columns()
