"""Scoring a table with Spark (local[2], ``mapInPandas``) gives the numbers of ``model.predict``
on the whole frame, bit for bit. Run by ``make test-spark`` (pyspark in ``.venv-spark``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ingot
import ingot.spark
from ingot import _ingot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("ingot-test")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_scoring_equals_predict_on_the_whole_frame(spark, tmp_path: Path) -> None:
    case = FIXTURES / "mixed_columns"
    text = (case / "model" / "manifest.json").read_text()
    tensors = {
        p.stem: np.load(p).astype(np.float32) for p in (case / "model" / "tensors").glob("*.npy")
    }
    path = tmp_path / "mixed.ingot"
    _ingot.save(str(path), text, tensors)
    model = ingot.load(path)

    records = json.loads((case / "expected.json").read_text())["records"]
    df = pd.DataFrame.from_records(records * 250)  # 10 000 rows, NaN and unseen categories
    for spec in model.signature["inputs"]:
        kind = object if spec["dtype"] == "string" else np.float64
        df[spec["name"]] = df[spec["name"]].astype(kind)
    df["id"] = np.arange(len(df), dtype=np.int64)

    spark.sparkContext.addFile(str(path))
    scored = (
        spark.createDataFrame(df)
        .repartition(4)
        .mapInPandas(
            ingot.spark.scorer(path.name, keep=["id"]),
            schema=ingot.spark.schema(model, keep={"id": "bigint"}),
        )
        .toPandas()
        .sort_values("id")
        .reset_index(drop=True)
    )
    want = model.predict(df).to_pandas()
    assert len(scored) == len(df)
    assert np.array_equal(scored["id"].to_numpy(), df["id"].to_numpy())
    for column in want.columns:
        assert np.array_equal(scored[column].to_numpy(), want[column].to_numpy()), column
