"""Fixture bundles, their expected outputs and frames, shared by the Python tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import ingot
from ingot import _ingot

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
TABULAR = [
    "breast_cancer_logreg",
    "digits_mlp",
    "diabetes_ridge",
    "wine_multinomial",
    "iris_sgd",
    "mixed_columns",
    "mixed_regression",
]


def bundle(case: str, tmp: Path) -> Path:
    """The fixture's unpacked model saved as an ``.ingot`` file through the native writer."""
    model_dir = FIXTURES / case / "model"
    text = (model_dir / "manifest.json").read_text()
    tensors = {p.stem: np.load(p).astype(np.float32) for p in (model_dir / "tensors").glob("*.npy")}
    path = tmp / f"{case}.ingot"
    _ingot.save(str(path), text, tensors)
    return path


def expected(case: str) -> dict:
    return json.loads((FIXTURES / case / "expected.json").read_text())


def frame(model: ingot.Model, records: list[dict]) -> pd.DataFrame:
    """Records as a DataFrame typed by the signature (missing values as NaN / None)."""
    df = pd.DataFrame.from_records(records)
    for spec in model.signature["inputs"]:
        if spec["dtype"] == "string":
            df[spec["name"]] = df[spec["name"]].astype(object)
        else:
            df[spec["name"]] = df[spec["name"]].astype(np.float64)
    return df
