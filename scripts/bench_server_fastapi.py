"""The usual Python way to serve the demo model: FastAPI + uvicorn around scikit-learn.

The comparison engine of ``scripts/bench_server.py``. At import, each worker trains the demo
pipeline exactly as ``scripts/make_demo_model.py`` does (StandardScaler + LogisticRegression on
the breast-cancer data, same split and seeds), so it answers with the model that the
``breast-cancer`` bundle was exported from. The route, the request (pydantic,
``{"records": [{column: value, ...}, ...]}``, unknown fields refused) and the answer
(``{"model", "version", "predictions": [{"label", "probabilities": {class: p}}]}``) are those of
``ingot-server``. Rows go through a pandas DataFrame in the training column order, as fitted.

API keys: when ``INGOT_BENCH_API_KEYS`` names a key file (lines ``NAME SCOPES SHA256HEX``, the
format of ``ingot-server --api-keys``), a FastAPI dependency requires
``Authorization: Bearer <key>`` whose SHA-256 is listed with the ``predict`` scope.

    INGOT_BENCH_API_KEYS=keys.txt .venv/bin/uvicorn bench_server_fastapi:app \\
        --app-dir scripts --workers 2 --port 8000
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

NAME = "breast-cancer"
VERSION = "1.0.0"


def train() -> Pipeline:
    """The pipeline of ``scripts/make_demo_model.py``, fitted the same way."""
    data = load_breast_cancer(as_frame=True)
    X_train, _X_test, y_train, _y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
    model.fit(X_train, y_train)
    return model


def read_keys(path: str) -> dict[str, frozenset[str]]:
    """SHA-256 hex digest -> scopes, from a key file (``#`` comments and blank lines skipped)."""
    keys = {}
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        _name, scopes, digest = fields
        keys[digest.lower()] = frozenset(scopes.split(","))
    return keys


MODEL = train()
FEATURES = list(MODEL.feature_names_in_)
CLASSES = [str(c) for c in MODEL.classes_]
KEYS = (
    read_keys(os.environ["INGOT_BENCH_API_KEYS"])
    if os.environ.get("INGOT_BENCH_API_KEYS")
    else None
)

bearer = HTTPBearer(auto_error=False)


def require_predict(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 without a known key, 403 when the key lacks the ``predict`` scope."""
    if KEYS is None:
        return
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing API key")
    scopes = KEYS.get(hashlib.sha256(credentials.credentials.encode()).hexdigest())
    if scopes is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")
    if "predict" not in scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the key lacks the predict scope")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, float]]


class PredictionRow(BaseModel):
    label: int
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    model: str
    version: str
    predictions: list[PredictionRow]


app = FastAPI(title="breast-cancer (scikit-learn)")


@app.post("/v1/models/{name}/predict", dependencies=[Depends(require_predict)])
def predict(name: str, request: PredictRequest) -> PredictResponse:
    if name != NAME:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model named {name!r}")
    frame = pd.DataFrame.from_records(request.records, columns=FEATURES)
    proba = MODEL.predict_proba(frame)
    rows = [
        PredictionRow(
            label=int(MODEL.classes_[p.argmax()]),
            probabilities={c: float(v) for c, v in zip(CLASSES, p, strict=True)},
        )
        for p in proba
    ]
    return PredictResponse(model=NAME, version=VERSION, predictions=rows)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
