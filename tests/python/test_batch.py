"""``ingot.batch.score_file``: a file scored batch by batch equals ``model.predict`` on the whole
frame, bit for bit; a bad row is reported by its row in the file and leaves no output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import ingot
import ingot.batch
from helpers import bundle, expected, frame


@pytest.fixture
def rows(tmp_path: Path) -> tuple[ingot.Model, pd.DataFrame]:
    model = ingot.load(bundle("mixed_columns", tmp_path))
    df = frame(model, expected("mixed_columns")["records"] * 25)  # 1 000 rows, NaN, unseen
    df.insert(0, "id", np.arange(len(df), dtype=np.int64))
    return model, df


@pytest.mark.parametrize(("source", "destination"), [("parquet", "parquet"), ("csv", "csv")])
def test_a_file_scored_in_batches_equals_the_whole_frame(
    rows: tuple[ingot.Model, pd.DataFrame], tmp_path: Path, source: str, destination: str
) -> None:
    model, df = rows
    src, dst = tmp_path / f"rows.{source}", tmp_path / f"scores.{destination}"
    table = pa.Table.from_pandas(df, preserve_index=False)
    if source == "parquet":
        pq.write_table(table, src, row_group_size=300)
    else:
        pcsv.write_csv(table, src)
    n = ingot.batch.score_file(model, src, dst, keep=["id"], batch_rows=97, progress=False)
    assert n == len(df)
    got = pq.read_table(dst).to_pandas() if destination == "parquet" else pd.read_csv(dst)
    want = model.predict(df).to_pandas()
    assert got["id"].tolist() == df["id"].tolist()
    assert list(got.columns) == ["id", *want.columns]
    assert got["label"].tolist() == want["label"].tolist()
    for c in want.columns[1:]:
        # Parquet keeps the float32 bits; CSV writes each in its shortest exact form.
        assert np.array_equal(got[c].to_numpy(np.float32), want[c].to_numpy()), c


def test_a_bad_row_names_its_row_in_the_file_and_leaves_nothing(
    rows: tuple[ingot.Model, pd.DataFrame], tmp_path: Path
) -> None:
    model, df = rows
    df.loc[612, "age"] = np.inf
    src, dst = tmp_path / "rows.parquet", tmp_path / "scores.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), src)
    with pytest.raises(ingot.InputError, match="row 612"):
        ingot.batch.score_file(model, src, dst, batch_rows=100, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed_columns.ingot", "rows.parquet"]


def test_unknown_suffixes_are_refused(
    rows: tuple[ingot.Model, pd.DataFrame], tmp_path: Path
) -> None:
    model, _ = rows
    with pytest.raises(ValueError, match="expected a .csv or .parquet file"):
        ingot.batch.score_file(model, tmp_path / "rows.json", tmp_path / "out.parquet")
