#!/usr/bin/env python3
"""Train the demo breast-cancer classifier and pack it for the example server.

StandardScaler + LogisticRegression on scikit-learn's breast-cancer data, fitted on a DataFrame
so requests use the named columns ("mean radius", ...). The bundle carries reference rows and
column statistics (``sample=``). Seeds and the ``created`` time are fixed, so a rerun with the
same library versions writes a byte-identical file.

    .venv/bin/python scripts/make_demo_model.py [--out PATH]

The CLI comes from ``$INGOT_BIN`` (default ``target/debug/ingot``; build it with
``cargo build -p ingot-cli``).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ingot.sklearn import export

REPO = Path(__file__).resolve().parents[1]

NAME = "breast-cancer"
VERSION = "1.0.0"
CREATED = "2026-01-01T00:00:00Z"
DEFAULT_OUT = REPO / "examples" / "server" / "models" / NAME / VERSION / "model.ingot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    args = parser.parse_args()

    data = load_breast_cancer(as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
    model.fit(X_train, y_train)

    proba = model.predict_proba(X_test)[:, 1]
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, model.predict(X_test))), 6),
        "roc_auc": round(float(roc_auc_score(y_test, proba)), 6),
        "log_loss": round(float(log_loss(y_test, proba)), 6),
    }
    training_csv = X_train.assign(target=y_train).to_csv(index=False, float_format="%.17g")
    digest = "sha256:" + hashlib.sha256(training_csv.encode()).hexdigest()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    export(
        model,
        args.out,
        name=NAME,
        version=VERSION,
        sample=X_train,
        description=(
            "Breast cancer (Wisconsin diagnostic) classifier: StandardScaler + "
            "LogisticRegression. Classes: 0 = malignant, 1 = benign."
        ),
        license="BSD-3-Clause",
        authors=["Ingot examples"],
        tags=["tabular", "binary-classification", "demo"],
        metrics=metrics,
        created=CREATED,
        training_data_digest=digest,
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); held-out metrics {metrics}")


if __name__ == "__main__":
    main()
