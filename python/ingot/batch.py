"""Scoring files that do not fit in memory: a CSV or Parquet file in, batch by batch, a CSV or
Parquet file out.

>>> import ingot, ingot.batch
>>> model = ingot.load("churn.ingot")                                        # doctest: +SKIP
>>> ingot.batch.score_file(model, "customers.parquet", "scores.parquet",     # doctest: +SKIP
...                        keep=["customer_id"])
1000000

Memory stays that of one batch (``batch_rows`` rows) whatever the file's size: the input is read
as a stream of Arrow record batches (``pyarrow.parquet.ParquetFile.iter_batches``,
``pyarrow.csv.open_csv``, with the CSV rules of every Ingot shell: an empty field is missing, and
so are ``NaN``, ``nan``, ``NA`` and ``null`` in a numeric column), each batch is predicted as
:meth:`ingot.Model.predict` predicts a pyarrow table (strings and numbers read in place) and
appended to the output, which appears under its name only once every row is scored. A progress
bar shows when ``tqdm`` is installed. Needs pyarrow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._ingot import UsageError
from ._model import Model, Prediction

__all__ = ["score_file"]


# The CSV rules of every Ingot shell (``ingot::io::csv``): an empty field is missing, and so
# are these in a numeric column.
_MISSING_NUMBERS = ["", "NaN", "nan", "NA", "null"]


def _batches(model: Model, source: Path, batch_rows: int) -> tuple[Iterator[Any], int | None]:
    """The record batches of a Parquet or CSV file, and its row count when the file says."""
    if source.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        f = pq.ParquetFile(source)
        return f.iter_batches(batch_size=batch_rows), f.metadata.num_rows
    if source.suffix.lower() == ".csv":
        import pyarrow as pa
        import pyarrow.csv as pcsv

        inputs = model.signature["inputs"]
        types = {i["name"]: pa.string() if i["dtype"] == "string" else pa.float64() for i in inputs}
        convert = pcsv.ConvertOptions(column_types=types, null_values=_MISSING_NUMBERS)
        options = pcsv.ReadOptions(block_size=1 << 22)
        reader = pcsv.open_csv(source, read_options=options, convert_options=convert)
        text = [i["name"] for i in inputs if i["dtype"] == "string"]
        return (_empty_is_missing(batch, text) for batch in reader), None
    raise ValueError(f"{source}: expected a .csv or .parquet file")


def _empty_is_missing(batch: Any, columns: list[str]) -> Any:
    """``batch`` with the empty (or blank) fields of the text ``columns`` as nulls."""
    import pyarrow.compute as pc

    for name in columns:
        i = batch.schema.get_field_index(name)
        if i < 0:
            continue
        col = batch.column(i)
        blank = pc.equal(pc.utf8_trim_whitespace(col), "")
        batch = batch.set_column(i, name, pc.if_else(blank, None, col))
    return batch


def _rebatch(batches: Iterable[Any], rows: int) -> Iterator[Any]:
    """Batches of at most ``rows`` rows (a CSV reader's blocks can be larger)."""
    for batch in batches:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def _progress(total: int | None, enabled: bool | None) -> Any:
    if enabled is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled:
            raise
        return None
    return tqdm(total=total, unit="rows", unit_scale=True)


def score_file(
    model: Model,
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    keep: Iterable[str] = (),
    batch_rows: int = 65_536,
    progress: bool | None = None,
) -> int:
    """Score every row of ``source`` into ``destination`` (``.csv`` or ``.parquet``, by suffix)
    and return the number of rows.

    Each output row is the ``keep`` columns of its input row, then the prediction's columns in
    :meth:`ingot.Prediction.to_pandas` layout. ``progress``: ``None`` shows a bar when tqdm is
    installed, ``True`` requires it, ``False`` shows none. A bad row raises
    :class:`ingot.InputError` naming its row in the whole file; nothing is left at
    ``destination`` then (the output is written to a temporary file beside it and renamed when
    complete).
    """
    import pyarrow as pa

    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    source, destination = Path(source), Path(destination)
    kind = destination.suffix.lower()
    if kind not in (".csv", ".parquet"):
        raise ValueError(f"{destination}: expected a .csv or .parquet file")
    keep = list(keep)
    batches, total = _batches(model, source, batch_rows)
    bar = _progress(total, progress)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    writer = None
    rows = 0
    try:
        for batch in _rebatch(batches, batch_rows):
            missing = [name for name in keep if name not in batch.schema.names]
            if missing:
                raise UsageError(f"{source}: no column {', '.join(map(repr, missing))} to keep")
            native = model._model.predict_arrow(pa.Table.from_batches([batch]), row_offset=rows)
            scored = Prediction(native, model._classes).to_pandas()
            table = pa.Table.from_pandas(scored, preserve_index=False)
            for i, name in enumerate(keep):
                table = table.add_column(i, name, batch.column(name))
            if writer is None:
                writer = _writer(kind, partial, table.schema)
            writer.write_table(table)
            rows += batch.num_rows
            if bar is not None:
                bar.update(batch.num_rows)
        if writer is None:  # no rows: an empty file with the prediction's columns
            empty = pa.Table.from_pandas(model.predict([]).to_pandas(), preserve_index=False)
            writer = _writer(kind, partial, empty.schema)
        writer.close()
        writer = None
        os.replace(partial, destination)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return rows


def _writer(kind: str, path: Path, schema: Any) -> Any:
    if kind == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(path, schema)
    import pyarrow.csv as pcsv

    return pcsv.CSVWriter(path, schema)
