"""The installed ``ingot`` package: loading, every input form, numpy results, errors, threads.

Reference numbers come from the committed fixtures (scikit-learn's float64 outputs on held-out
rows, made by ``scripts/make_fixtures.py``) and from the Rust CLI run on the same bundle and rows.
Tolerances: probabilities within ``1e-5·p + 1e-6`` of scikit-learn (f32 graph, f64
pre-processing), labels equal, regression values within ``1e-5·(|y| + mean |y|)``; against the
CLI every number is bit-identical (the same core computes it).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ingot
from helpers import FIXTURES, TABULAR, bundle, expected, frame
from ingot import _ingot


def check_sklearn(p: ingot.Prediction, e: dict, case: str) -> None:
    assert len(p) == len(e["records"])
    if e["labels"] is not None:
        assert p.labels.tolist() == e["labels"], case
    if e["probabilities"] is not None:
        want = np.asarray(e["probabilities"])
        assert np.all(np.abs(p.probabilities - want) <= 1e-5 * np.abs(want) + 1e-6), case
    if e["values"] is not None:
        want = np.asarray(e["values"], dtype=np.float64).reshape(len(e["records"]), -1)
        scale = np.abs(want).mean()
        assert np.all(np.abs(p.values - want) <= 1e-5 * (np.abs(want) + scale)), case


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundles")


@pytest.mark.parametrize("case", TABULAR)
def test_every_input_form_matches_scikit_learn(case: str, tmp_module: Path) -> None:
    model = ingot.load(bundle(case, tmp_module))
    e = expected(case)
    df = frame(model, e["records"])
    p = model.predict(df)
    check_sklearn(p, e, case)
    # The same rows as records, as a pyarrow Table and RecordBatch, with the columns shuffled,
    # and (numeric models) as C and Fortran ordered matrices: the same bits.
    forms = {
        "records": e["records"],
        "arrow table": pa.Table.from_pandas(df, preserve_index=False),
        "arrow batch": pa.RecordBatch.from_pandas(df, preserve_index=False),
        "shuffled": df[df.columns[::-1]],
    }
    if e["dense"] is not None:
        dense = np.asarray(e["dense"], dtype=np.float64)
        forms["dense f64"] = dense
        forms["dense f32 fortran"] = np.asfortranarray(dense.astype(np.float32))
    for form, x in forms.items():
        q = model.predict(x)
        if form == "dense f32 fortran":
            check_sklearn(q, e, f"{case} {form}")
            continue
        assert np.array_equal(q.scores, p.scores), f"{case}: {form}"


def test_pandas_categoricals_and_nullable_dtypes_read_as_the_plain_ones(tmp_module: Path) -> None:
    model = ingot.load(bundle("mixed_columns", tmp_module))
    e = expected("mixed_columns")
    df = frame(model, e["records"])
    plain = model.predict(df)
    typed = df.copy()
    for spec in model.signature["inputs"]:
        name = spec["name"]
        if spec["dtype"] == "string":
            typed[name] = typed[name].astype("category")
        elif spec["dtype"] in ("i64", "i32"):
            typed[name] = typed[name].astype("Int64")
        else:
            typed[name] = typed[name].astype("Float64")
    assert any(isinstance(t, pd.CategoricalDtype) for t in typed.dtypes)
    assert np.array_equal(model.predict(typed).scores, plain.scores)

    # Every way pandas holds strings: dictionary codes (categoricals, in any category order and
    # with categories never seen in training), Python objects, Arrow memory.
    def reordered(s: pd.Series) -> pd.Series:
        categories = sorted(set(s.dropna()), reverse=True) + ["never seen"]
        return s.astype(pd.CategoricalDtype(categories))

    variants = {
        "object": lambda s: s.astype(object),
        "string[python]": lambda s: s.astype("string[python]"),
        "string[pyarrow]": lambda s: s.astype("string[pyarrow]"),
        "ArrowDtype": lambda s: s.astype(pd.ArrowDtype(pa.string())),
        "categories reordered": reordered,
    }
    for variant, cast in variants.items():
        strings = df.copy()
        for spec in model.signature["inputs"]:
            if spec["dtype"] == "string":
                strings[spec["name"]] = cast(strings[spec["name"]])
        assert np.array_equal(model.predict(strings).scores, plain.scores), variant
        # Arrow strings beside numpy numbers are wrapped column by column; beside nullable
        # numbers, the frame goes through pa.Table.from_pandas: the same answer either way.
        nullable = strings.copy()
        for spec in model.signature["inputs"]:
            if spec["dtype"] != "string":
                nullable[spec["name"]] = nullable[spec["name"]].astype("Float64")
        assert np.array_equal(model.predict(nullable).scores, plain.scores), variant


def test_string_objects_become_dictionary_codes() -> None:
    a, b = "".join(["re", "d"]), "red"
    assert a is not b
    codes, strings = _ingot.encode_strings(np.array([a, None, b, "blue", np.nan, a], dtype=object))
    assert codes.dtype == np.int32 and codes.tolist() == [0, -1, 0, 1, -1, 0]
    assert strings == ["red", "blue"]
    assert _ingot.encode_strings(np.array(["red", 3], dtype=object)) is None
    assert _ingot.encode_strings(np.array([], dtype=object))[0].tolist() == []


def cli_rows(run_cli: Any, model_path: Path, records: list[dict], tmp: Path) -> list[dict]:
    rows = tmp / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp / "out.jsonl"
    result = run_cli("predict", model_path, "-i", rows, "-o", out)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("case", ["breast_cancer_logreg", "wine_multinomial", "mixed_columns"])
def test_bit_identical_to_the_cli(case: str, tmp_path: Path, run_cli: Any) -> None:
    path = bundle(case, tmp_path)
    model = ingot.load(path)
    records = expected(case)["records"]
    p = model.predict(frame(model, records))
    for i, row in enumerate(cli_rows(run_cli, path, records, tmp_path)):
        assert row["label"] == p.labels[i]
        classes = [str(c) for c in model.classes]
        cli = np.array([row["probabilities"][c] for c in classes], dtype=np.float32)
        assert np.array_equal(cli, p.probabilities[i]), f"row {i}"


def test_regression_values_are_bit_identical_to_the_cli(tmp_path: Path, run_cli: Any) -> None:
    path = bundle("diabetes_ridge", tmp_path)
    model = ingot.load(path)
    records = expected("diabetes_ridge")["records"]
    values = model.predict(records).values[:, 0]
    cli = np.array([r["value"] for r in cli_rows(run_cli, path, records, tmp_path)], np.float32)
    assert np.array_equal(cli, values)


def test_numpy_arrays_cross_without_a_copy() -> None:
    x = np.random.default_rng(0).random((100, 7))
    assert _ingot._input_addresses(x) == [x.ctypes.data]
    f = np.asfortranarray(x.astype(np.float32))
    assert _ingot._input_addresses(f) == [f.ctypes.data + j * 100 * 4 for j in range(7)]
    strided = x[::2]
    assert _ingot._input_addresses(strided) == [0], "a strided array is copied"
    a, b = np.arange(5, dtype=np.int64), np.ones(5, dtype=np.float32)
    codes = np.array([0, 1, -1, 0, 1], dtype=np.int32)
    got = _ingot._input_addresses(
        None, ["a", "b", "c", "d"], [a, b, ["x"] * 5, (codes, ["x", "y"])], [None] * 4
    )
    assert got == [a.ctypes.data, b.ctypes.data, 0, codes.ctypes.data]


def test_results_are_numpy_with_the_training_label_dtype(tmp_module: Path) -> None:
    model = ingot.load(bundle("mixed_columns", tmp_module))
    assert repr(model) == f"{model.name}@{model.version}"
    assert model.metadata["name"] == model.name and model.task == "classifier"
    p = model.predict(expected("mixed_columns")["records"])
    assert p.labels.dtype == np.int64 and p.probabilities.dtype == np.float32
    df = p.to_pandas()
    assert list(df.columns) == ["label"] + [f"proba_{c}" for c in model.classes]
    assert np.array_equal(df["proba_1"].to_numpy(), p.probabilities[:, 1])
    regression = ingot.load(bundle("diabetes_ridge", tmp_module)).predict(np.zeros((2, 10)))
    assert list(regression.to_pandas().columns) == ["value"] and regression.labels is None


def test_bad_input_raises_errors_naming_row_and_column(tmp_module: Path) -> None:
    model = ingot.load(bundle("mixed_columns", tmp_module))
    records = expected("mixed_columns")["records"]
    df = frame(model, records)
    with pytest.raises(ingot.InputError, match="missing column `age`"):
        model.predict(df.drop(columns=["age"]))
    wrong = df.copy()
    wrong["age"] = wrong["age"].astype(object)
    wrong.loc[3, "age"] = "old"
    with pytest.raises(ingot.InputError, match=r"row 3, column `age`: expected a number"):
        model.predict(wrong)
    with pytest.raises(ingot.UsageError):
        model.predict(["a text for a tabular model"])
    with pytest.raises(ingot.UsageError):
        model.predict(np.zeros((2, 6)))
    assert issubclass(ingot.InputError, ingot.IngotError)


def test_zero_threads_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ingot.UsageError, match="threads must be at least 1"):
        ingot.load(bundle("breast_cancer_logreg", tmp_path), threads=0)


@pytest.mark.parametrize("case", TABULAR)
def test_candle_kernels_give_the_fused_kernels_numbers(case: str, tmp_module: Path) -> None:
    # Candle's ops (what a GPU runs) on the CPU: within 1e-5 · max(1, |x|) of the fused kernels.
    path = bundle(case, tmp_module)
    fused, candle = ingot.load(path), ingot.load(path, kernels="candle")
    assert (fused.runs_on, candle.runs_on) == (("cpu", "ingot"), ("cpu", "candle"))
    records = expected(case)["records"]
    a, b = fused.predict(records), candle.predict(records)
    assert np.all(np.abs(b.scores - a.scores) <= 1e-5 * np.maximum(1, np.abs(a.scores))), case
    if a.labels is not None:
        assert b.labels.tolist() == a.labels.tolist(), case


def test_unknown_devices_and_kernels_are_usage_errors(tmp_path: Path) -> None:
    path = bundle("breast_cancer_logreg", tmp_path)
    with pytest.raises(ingot.UsageError, match=r"device `tpu`"):
        ingot.load(path, device="tpu")
    with pytest.raises(ingot.UsageError, match=r"kernels `fast`"):
        ingot.load(path, kernels="fast")


def test_bad_files_raise_format_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ingot.load(tmp_path / "nope.ingot")
    (tmp_path / "bad.ingot").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ingot.FormatError, match="check"):
        ingot.load(tmp_path / "bad.ingot")


def test_threads_share_one_model(tmp_module: Path) -> None:
    model = ingot.load(bundle("digits_mlp", tmp_module))
    x = np.asarray(expected("digits_mlp")["dense"], dtype=np.float32).repeat(50, axis=0)
    want = model.predict(x).probabilities
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(20):
            results.append(model.predict(x).probabilities)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and all(np.array_equal(r, want) for r in results)


def test_export_writes_a_validated_bundle(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import ingot.sklearn

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    path = tmp_path / "lr.ingot"
    model = ingot.sklearn.export(pipe, path, name="lr", version="1.2.0", sample=x)
    assert path.is_file() and repr(model) == "lr@1.2.0"
    assert ingot.load(path).manifest["reference"]["columns"]["mean radius"]["count"] == len(x)
    p = model.predict(x)
    want = pipe.predict_proba(x)
    assert np.all(np.abs(p.probabilities - want) <= 1e-5 * want + 1e-6)
    assert np.array_equal(p.labels, pipe.predict(x))
    with pytest.raises(ValueError):
        ingot.sklearn.export(pipe, tmp_path / "bad.ingot", name="bad name", version="1.0.0")
    assert not (tmp_path / "bad.ingot").exists()


def minilm_dir() -> Path:
    value = os.environ.get("INGOT_MINILM_DIR")
    if not value:
        pytest.fail("INGOT_MINILM_DIR is not set; run through `make test`")
    return Path(value)


def test_minilm_embeddings_equal_the_clis(tmp_path: Path, run_cli: Any) -> None:
    path = tmp_path / "minilm.ingot"
    model = ingot.import_hf(minilm_dir(), path, name="all-MiniLM-L6-v2")
    assert model.task == "embedding"
    sentences = json.loads((FIXTURES / "minilm" / "expected.json").read_text())["sentences"]
    got = model.embed(sentences)
    assert got.shape == (len(sentences), 384) and got.dtype == np.float32
    rows = cli_rows(run_cli, path, [{"text": s} for s in sentences], tmp_path)
    cli = np.array([r["embedding"] for r in rows], dtype=np.float32)
    assert np.array_equal(cli, got)
    assert np.array_equal(model.predict(pd.DataFrame({"text": sentences})).embeddings, got)
    assert np.array_equal(model.predict(sentences).to_pandas()["embedding"][3], got[3])


_FRAME_VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.text(max_size=3),
    st.integers(min_value=0, max_value=3).map(lambda n: "huge " * 100_000 * n),
    st.booleans(),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(min_value=0, max_value=6),
    data=st.data(),
)
def test_no_input_crashes_the_interpreter(rows: int, data: st.DataObject, tmp_path: Path) -> None:
    path = tmp_path / "m.ingot"
    if not path.exists():
        bundle("mixed_columns", tmp_path).rename(path)
    model = ingot.load(path)
    names = model.input_names + ["extra"]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    columns = {n: data.draw(st.lists(_FRAME_VALUES, min_size=rows, max_size=rows)) for n in chosen}
    shape = data.draw(st.tuples(st.integers(0, 4), st.integers(0, 12)))
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.int64, object]))
    array = np.zeros(shape, dtype=dtype)
    for x in (
        pd.DataFrame(columns),
        columns,
        [dict(zip(columns, r, strict=True)) for r in zip(*columns.values(), strict=True)],
        array,
    ):
        try:
            p = model.predict(x)
        except ingot.IngotError:
            continue
        assert len(p) == (len(x) if not isinstance(x, dict) else rows)
