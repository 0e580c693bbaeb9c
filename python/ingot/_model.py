"""The Python face of a loaded model: input normalization and numpy results.

The native module (``ingot._ingot``) does the work with the GIL released; this file only turns
Python objects into the forms it takes — numpy arrays are passed through without copies where
their dtype and layout allow — and wraps the results.
"""

from __future__ import annotations

import json
from os import PathLike
from typing import Any

import numpy as np

from . import _ingot

_NUMERIC = (np.float64, np.float32, np.int64, np.int32, np.bool_)


def load(
    path: str | PathLike,
    *,
    verify_checksum: bool = True,
    threads: int | None = None,
    device: str = "cpu",
    kernels: str = "auto",
) -> Model:
    """Load and validate an ``.ingot`` file (memory-mapped; the checksum is verified unless
    ``verify_checksum=False``). ``threads`` bounds the threads one predict call uses (default:
    ``INGOT_NUM_THREADS``, else every CPU). ``device`` is ``"cpu"`` or ``"cuda:N"`` (a build
    with the ``cuda`` feature; pre- and post-processing stay on the CPU); ``kernels`` is
    ``"auto"`` (Ingot's fused kernels on the CPU, candle's ops on a GPU) or ``"candle"``
    (candle's ops on the CPU too). A model with an op the device cannot run is refused here,
    naming the op."""
    return Model(
        _ingot.load(
            str(path),
            verify_checksum=verify_checksum,
            threads=threads,
            device=device,
            kernels=kernels,
        )
    )


def import_hf(
    directory: str | PathLike,
    path: str | PathLike,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    max_length: int | None = None,
) -> Model:
    """Import a Hugging Face / sentence-transformers directory (``config.json``,
    ``model.safetensors``, ``tokenizer.json``, pooling config) into the ``.ingot`` file ``path``
    and return it loaded."""
    native = _ingot.import_hf(
        str(directory), str(path), name=name, version=version, max_length=max_length
    )
    return Model(native)


class Model:
    """A loaded, validated model. Immutable and safe to share between threads: every call
    releases the GIL while the model runs."""

    def __init__(self, native: Any):
        self._model = native
        self._manifest: dict | None = None
        classes = native.classes
        self._classes = None if classes is None else _classes_array(classes, self._label_dtype())

    def _label_dtype(self) -> str | None:
        outputs = self.manifest["signature"]["outputs"]
        return next((o["dtype"] for o in outputs if o["name"] == "label"), None)

    def __repr__(self) -> str:
        return f"{self._model.name}@{self._model.version}"

    @property
    def name(self) -> str:
        return self._model.name

    @property
    def version(self) -> str:
        return self._model.version

    @property
    def manifest(self) -> dict:
        """The whole manifest (model card, signature, pipeline, reference)."""
        if self._manifest is None:
            self._manifest = json.loads(self._model.manifest_json())
        return self._manifest

    @property
    def metadata(self) -> dict:
        """The model card: name, version, description, metrics, lineage."""
        return self.manifest["model"]

    @property
    def signature(self) -> dict:
        """Named, typed inputs and outputs."""
        return self.manifest["signature"]

    @property
    def task(self) -> str:
        """``classifier``, ``regressor``, ``embedding`` or ``scores``."""
        return self._model.task

    @property
    def classes(self) -> np.ndarray | None:
        """A classifier's class labels, with the training labels' dtype."""
        return None if self._classes is None else self._classes.copy()

    @property
    def input_names(self) -> list[str]:
        return list(self._model.input_names)

    @property
    def runs_on(self) -> tuple[str, str]:
        """Where the graph runs and with which kernels: (``"cpu"`` or ``"cuda:N"``,
        ``"ingot"`` for the fused CPU kernels or ``"candle"`` for candle's ops)."""
        return self._model.runs_on

    @property
    def threads(self) -> int:
        """Most threads one call uses, the calling thread included."""
        return self._model.threads

    def predict(self, x: Any) -> Prediction:
        """Predict a batch: a pandas DataFrame (columns by name, any order, NaN/None missing,
        categoricals and nullable dtypes), a pyarrow Table or RecordBatch, a list of dicts, a
        dict of columns, a 2-D numpy array (float32/float64, C or Fortran order; columns in
        signature order) or a list of strings (text models)."""
        return Prediction(self._dispatch(x), self._classes)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``, ``float32 [len(texts), dim]``, in order."""
        return self._model.embed(list(texts))

    def _dispatch(self, x: Any) -> Any:
        m = self._model
        module = type(x).__module__.split(".")[0]
        if module == "pandas" and hasattr(x, "columns") and hasattr(x, "dtypes"):
            return self._predict_frame(x)
        if module == "pyarrow":
            if type(x).__name__ == "RecordBatch":
                import pyarrow as pa

                x = pa.Table.from_batches([x])
            if hasattr(x, "__arrow_c_stream__"):
                return m.predict_arrow(x)
        if hasattr(x, "__arrow_c_stream__") and not isinstance(x, np.ndarray):
            return m.predict_arrow(x)
        if isinstance(x, np.ndarray):
            if x.ndim == 2:
                if x.dtype not in (np.float32, np.float64):
                    x = x.astype(np.float64)
                return m.predict_dense(x)
            if x.ndim == 1 and x.dtype.kind in "OUS":
                return m.predict_texts([str(v) for v in x])
            raise _ingot.UsageError(
                f"a numpy array of shape {x.shape} is not a batch; pass rows × columns"
            )
        if isinstance(x, dict):
            return self._predict_columns(x)
        if isinstance(x, (list, tuple)):
            if not x:
                return m.predict_records([])
            first = x[0]
            if isinstance(first, dict):
                return m.predict_records(list(x))
            if isinstance(first, str):
                return m.predict_texts(list(x))
            return m.predict_dense(np.asarray(x, dtype=np.float64))
        if isinstance(x, str):
            raise _ingot.UsageError("a single string is not a batch; pass a list of strings")
        raise _ingot.UsageError(f"cannot predict a {type(x).__name__}")

    def _predict_columns(self, columns: dict) -> Any:
        names, values, missing = [], [], []
        for name, col in columns.items():
            v, mask = _column(col)
            names.append(str(name))
            values.append(v)
            missing.append(mask)
        return self._model.predict_columns(names, values, missing)

    def _predict_frame(self, df: Any) -> Any:
        wanted = set(self._model.input_names)
        used = [name for name in df.columns if str(name) in wanted]
        if any(_arrow_backed(df[name]) for name in used):
            # Arrow-backed columns (pandas' default strings since 3.0) cross as Arrow, read in
            # place; numpy columns go along without a copy.
            table = _arrow_table(df, used)
            if table is not None:
                return self._model.predict_arrow(table)
        names, values, missing = [], [], []
        for name in used:
            v, mask = _series(df[name])
            names.append(str(name))
            values.append(v)
            missing.append(mask)
        return self._model.predict_columns(names, values, missing)


def _classes_array(classes: list, dtype: str | None) -> np.ndarray:
    if dtype == "string" or any(isinstance(c, str) for c in classes):
        arr = np.empty(len(classes), dtype=object)
        arr[:] = classes
        return arr
    if dtype in ("i64", "i32") or all(isinstance(c, int) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    return np.asarray(classes, dtype=np.float64)


def _column(col: Any) -> tuple[Any, Any]:
    """One column of a dict input: a numpy array of a numeric dtype (borrowed) or a list."""
    if isinstance(col, np.ndarray):
        if col.dtype.type in _NUMERIC:
            return np.ascontiguousarray(col), None
        if col.dtype.kind in "iuf":
            return np.ascontiguousarray(col, dtype=np.float64), None
        if col.dtype == object and col.ndim == 1:
            encoded = _ingot.encode_strings(col)
            if encoded is not None:
                return encoded, None
        return col.tolist(), None
    return list(col), None


def _series(s: Any) -> tuple[Any, Any]:
    """A pandas Series as (values, missing mask): numpy-backed numbers pass through without a
    copy; nullable dtypes give their values and mask; categoricals of strings pass their codes
    and categories; strings become dictionary codes (each distinct string object read once);
    other objects become lists with None for missing."""
    import pandas as pd

    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        if categories.dtype.kind in "iuf":
            return s.astype(np.float64).to_numpy(), None
        names = categories.tolist()
        if all(isinstance(c, str) for c in names):
            return (s.cat.codes.to_numpy().astype(np.int32), names), None
        return _objects(s), None
    if isinstance(dtype, np.dtype):
        if dtype.type in _NUMERIC:
            return np.ascontiguousarray(s.to_numpy(copy=False)), None
        if dtype.kind in "iu":
            return s.to_numpy(dtype=np.int64), None
        if dtype.kind == "f":
            return s.to_numpy(dtype=np.float64), None
        if dtype.kind in "OUS":
            return _strings(s, s.to_numpy(dtype=object)), None
        raise _ingot.UsageError(f"column `{s.name}` has dtype {dtype}, which Ingot does not read")
    # pandas extension dtypes: nullable integers, floats, booleans; strings.
    kind = getattr(dtype, "kind", "O")
    if kind in "iufb":
        mask = np.ascontiguousarray(s.isna().to_numpy(dtype=bool))
        target = {"i": np.int64, "u": np.int64, "f": np.float64, "b": np.bool_}[kind]
        fill = False if kind == "b" else 0
        values = s.to_numpy(dtype=target, na_value=fill)
        return np.ascontiguousarray(values), (mask if mask.any() else None)
    if kind in "OUS":
        return _strings(s, s.to_numpy(dtype=object, na_value=None)), None
    return _objects(s), None


def _arrow_backed(s: Any) -> bool:
    """Whether a Series keeps its values in Arrow memory (``str``/``string[pyarrow]``,
    ``pd.ArrowDtype``)."""
    import pandas as pd

    dtype = s.dtype
    if getattr(pd, "ArrowDtype", None) is not None and isinstance(dtype, pd.ArrowDtype):
        return True
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def _arrow_table(df: Any, used: list) -> Any:
    """Columns ``used`` of ``df`` as a pyarrow Table, or None if Arrow cannot hold one (mixed
    objects: the column path reports it). Arrow-backed and numpy numeric columns are wrapped
    where they lie (a float NaN stays NaN, which the core reads as missing, so no validity
    bitmap is computed); other columns go through ``pa.Table.from_pandas``."""
    import pyarrow as pa

    columns = {n: df[n] for n in used}
    try:
        if all(_arrow_backed(s) or s.dtype.type in _NUMERIC for s in columns.values()):
            return pa.table(
                {
                    str(n): pa.array(s)
                    if _arrow_backed(s)
                    else pa.array(s.to_numpy(copy=False), from_pandas=False)
                    for n, s in columns.items()
                }
            )
        return pa.Table.from_pandas(df[used], preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None


def _strings(s: Any, values: np.ndarray) -> Any:
    """Series ``s`` (as the object array ``values``) as ``(int32 codes, distinct strings)``
    when it holds only strings and missing values, else as a list of values."""
    encoded = _ingot.encode_strings(values)
    return _objects(s) if encoded is None else encoded


def _objects(s: Any) -> list:
    """A Series as a list of Python values, missing entries (NaN, None, pd.NA) as None."""
    values = s.astype(object)
    return values.where(s.notna(), None).tolist()


class Prediction:
    """The result of one predict call: numpy arrays, one row per input row, in input order."""

    def __init__(self, native: Any, classes: np.ndarray | None):
        self._p = native
        self._classes = classes

    def __len__(self) -> int:
        return self._p.rows

    def __repr__(self) -> str:
        names = [c[0] for c in self._p.columns()]
        return f"Prediction({self._p.rows} rows: {', '.join(names)})"

    @property
    def labels(self) -> np.ndarray | None:
        """Each row's class label, with the training labels' dtype (object for strings)."""
        idx = self._p.label_indices
        if idx is None or self._classes is None:
            return None
        return self._classes[idx]

    @property
    def probabilities(self) -> np.ndarray | None:
        """``float32 [rows, classes]``, columns in :attr:`classes` order."""
        return self._p.probabilities

    @property
    def classes(self) -> np.ndarray | None:
        return None if self._classes is None else self._classes.copy()

    @property
    def values(self) -> np.ndarray | None:
        """Regression values, ``float32 [rows, targets]``."""
        return self._p.values

    @property
    def targets(self) -> list[str] | None:
        return self._p.targets

    @property
    def embeddings(self) -> np.ndarray | None:
        """``float32 [rows, dim]``."""
        return self._p.embeddings

    @property
    def scores(self) -> np.ndarray:
        """The graph's raw output, ``float32 [rows, outputs]``."""
        return self._p.scores

    def to_pandas(self, index: Any = None) -> Any:
        """The prediction as a DataFrame in the flat layout of every Ingot output: ``label``
        and ``proba_<class>`` for classifiers, ``value`` or the target names for regressors,
        ``embedding`` (one array per row) for text encoders, ``score_<i>`` otherwise."""
        import pandas as pd

        arrays = {
            "probabilities": self._p.probabilities,
            "values": self._p.values,
            "scores": self._p.scores,
            "embeddings": self._p.embeddings,
        }
        data: dict[str, Any] = {}
        for name, source, col in self._p.columns():
            if source == "labels":
                data[name] = self.labels
            elif col is None:
                data[name] = list(arrays[source])
            else:
                data[name] = arrays[source][:, col]
        return pd.DataFrame(data, index=index)
