"""`ingot quantize` on the digits MLP(256, 128), measured on all 1797 of scikit-learn's bundled
digits, and the reduced bundles loaded by the Python package.

Targets (the quantization issue): int8 label agreement with the f32 bundle >= 99.5 %; the
maximum probability error is stored in the bundle and must equal what we measure here. f16 and
bf16 must agree on at least as many labels.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

import ingot
from helpers import bundle

# (precision, least label agreement, largest probability error) on the 1797 digits.
TARGETS = [("int8", 0.995, 0.05), ("f16", 0.999, 1e-3), ("bf16", 0.995, 0.02)]


@pytest.mark.parametrize(("precision", "min_agreement", "max_prob_error"), TARGETS)
def test_digits_mlp_reduced_agrees_with_f32(
    precision: str, min_agreement: float, max_prob_error: float, tmp_path: Path, ingot_bin: Path
) -> None:
    source = bundle("digits_mlp", tmp_path)
    f32 = ingot.load(source)
    x = load_digits().data
    data = tmp_path / "digits.csv"
    pd.DataFrame(x, columns=f32.input_names).to_csv(data, index=False)
    out = tmp_path / f"digits-{precision}.ingot"
    run = subprocess.run(
        [ingot_bin, "quantize", source, "-o", out, "--to", precision, "--data", data],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "on 1797 rows" in run.stdout, run.stdout
    reduced = ingot.load(out)
    assert reduced.version == f"{f32.version}+{precision}"
    assert reduced.metadata["parent"] == f"{f32.name}@{f32.version}"
    want, got = f32.predict(x), reduced.predict(x)
    agreement = float(np.mean(want.labels == got.labels))
    prob_error = float(np.abs(want.probabilities - got.probabilities).max())
    print(f"{precision}: labels {100 * agreement:.2f} %, max probability error {prob_error:.2e}")
    assert agreement >= min_agreement
    assert prob_error <= max_prob_error
    card = reduced.manifest["quantization"]
    assert card["scheme"] == precision
    assert card["accuracy"]["rows"] == 1797
    assert card["accuracy"]["label_agreement"] == pytest.approx(agreement, abs=1e-12)
    assert card["accuracy"]["max_probability_error"] == pytest.approx(prob_error, rel=1e-6)
    assert {layer["node"] for layer in card["layers"]} == set(card_nodes(f32))
    # `ingot inspect` shows the report; `ingot verify` checks it against the tensors.
    shown = subprocess.run([ingot_bin, "inspect", out], check=True, capture_output=True, text=True)
    assert f"quantization {precision} from {f32.name}@{f32.version}" in shown.stdout
    checked = subprocess.run([ingot_bin, "verify", out], check=True, capture_output=True, text=True)
    assert f"ok  quantization {precision}" in checked.stdout


def card_nodes(model: ingot.Model) -> list[str]:
    """Names of the Linear nodes of a bundle's graph."""
    return [n["name"] for n in model.manifest["graph"]["nodes"] if n["op"] == "Linear"]


def test_auto_keeps_layers_in_f32_until_the_cosine_holds(tmp_path: Path, ingot_bin: Path) -> None:
    source = bundle("digits_mlp", tmp_path)
    out = tmp_path / "auto.ingot"
    subprocess.run(
        [ingot_bin, "quantize", source, "-o", out, "--to", "int8", "--auto", "0.99999999"],
        check=True,
        capture_output=True,
    )
    card = ingot.load(out).manifest["quantization"]
    kept = [layer for layer in card["layers"] if not layer["reduced"]]
    assert kept, card
    assert card["accuracy"]["min_cosine"] >= 0.99999999
    # The layers kept are the most sensitive ones.
    worst = min(card["layers"], key=lambda layer: layer["min_cosine"])
    assert not worst["reduced"]


def test_bad_requests_fail_and_write_nothing(tmp_path: Path, ingot_bin: Path) -> None:
    source = bundle("digits_mlp", tmp_path)
    out = tmp_path / "never.ingot"
    for extra, message in [
        (["--to", "int4"], "int4"),
        (["--to", "int8", "--keep-f32", "nope"], "nope"),
        (["--to", "int8", "--data", str(tmp_path / "missing.csv")], "missing.csv"),
    ]:
        run = subprocess.run(
            [ingot_bin, "quantize", source, "-o", out, *extra], capture_output=True, text=True
        )
        assert run.returncode != 0
        assert message in run.stderr, run.stderr
        assert not out.exists()
