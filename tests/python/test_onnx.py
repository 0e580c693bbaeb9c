"""Tests for ``ingot.import_onnx`` and ``ingot.check_onnx``: the Rust ONNX importer called from
Python on the committed fixtures (``tests/fixtures/onnx``, made by scripts/onnx_fixtures/*.py).

Each imported bundle predicts the fixture's held-out inputs and is compared with ONNX Runtime's
outputs on them, stored in ``<case>.expected.json``: ``|a - b| <= 1e-5 * max(1, |b|)``; labels
must be equal. The models with unsupported ops are built with the ``onnx`` package, which
requirements-test.txt does not list: those tests are skipped where it is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ingot

ONNX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx"
RTOL = 1e-5


def _assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    assert err.max() <= RTOL, f"{what}: {got[worst]} vs {want[worst]} at {worst}"


def _expected(case: str) -> dict:
    return json.loads((ONNX / f"{case}.expected.json").read_text())


def _tensor(t: dict) -> np.ndarray:
    """A tensor of the expected file: flat row-major data, ``null`` for NaN."""
    if t["dtype"] == "string":
        return np.array(t["data"], dtype=object).reshape(t["shape"])
    data = [np.nan if v is None else v for v in t["data"]]
    return np.array(data, dtype=t["dtype"]).reshape(t["shape"])


def test_torch_mlp_matches_onnxruntime(tmp_path: Path) -> None:
    e = _expected("mlp_digits")
    x = _tensor(e["inputs"]["x"])
    logits = _tensor(e["outputs"]["logits"])
    path = tmp_path / "mlp.ingot"
    model = ingot.import_onnx(ONNX / "mlp_digits.onnx", path)
    assert isinstance(model, ingot.Model)
    assert path.is_file()
    assert (model.name, model.version) == ("mlp_digits", "1.0.0")
    assert model.task == "regressor"
    _assert_close(model.predict(x).values, logits, "logits")
    _assert_close(ingot.load(path).predict(x).values, logits, "logits after load")


def test_class_labels_make_logits_a_classifier(tmp_path: Path) -> None:
    e = _expected("mlp_digits")
    x = _tensor(e["inputs"]["x"])
    logits = _tensor(e["outputs"]["logits"]).astype(np.float64)
    names = [f"digit_{d}" for d in range(10)]
    model = ingot.import_onnx(
        str(ONNX / "mlp_digits.onnx"), str(tmp_path / "digits.ingot"), classes=names
    )
    assert model.task == "classifier"
    assert list(model.classes) == names
    p = model.predict(x)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    _assert_close(p.probabilities, z / z.sum(axis=1, keepdims=True), "softmax of the logits")
    np.testing.assert_array_equal(p.labels, np.array(names, dtype=object)[logits.argmax(axis=1)])
    # Integer labels stay integers.
    model = ingot.import_onnx(
        ONNX / "mlp_digits.onnx", tmp_path / "ints.ingot", classes=list(range(10))
    )
    np.testing.assert_array_equal(model.predict(x).labels, logits.argmax(axis=1))


@pytest.mark.parametrize("case", ["cnn_ops", "cnn_bn", "conv1d"])
def test_torch_cnn_matches_onnxruntime(tmp_path: Path, case: str) -> None:
    e = _expected(case)
    x = _tensor(e["inputs"]["x"])
    (want,) = [_tensor(t) for t in e["outputs"].values()]
    report = ingot.check_onnx(ONNX / f"{case}.onnx")
    assert report["ok"], report
    if case == "cnn_bn":  # standalone BatchNormalization nodes, folded into the convolutions
        assert report["ops"]["BatchNormalization"] == 2
    model = ingot.import_onnx(ONNX / f"{case}.onnx", tmp_path / f"{case}.ingot")
    # An image batch is a dense input of C·H·W values per row.
    _assert_close(model.predict(x.reshape(len(x), -1)).values, want, case)


def test_sklearn_pipeline_with_string_columns_matches_onnxruntime(tmp_path: Path) -> None:
    e = _expected("sk_pipeline_mixed")
    columns = [c["name"] for c in e["columns"]]
    model = ingot.import_onnx(ONNX / "sk_pipeline_mixed.onnx", tmp_path / "wine.ingot")
    assert model.task == "classifier"
    assert model.input_names == columns
    df = pd.DataFrame({c: _tensor(e["inputs"][c])[:, 0] for c in columns})
    want = _tensor(e["outputs"]["probabilities"])
    labels = _tensor(e["outputs"]["label"])
    assert set(model.classes) == set(labels)
    records = df.to_dict(orient="records")
    for how, inputs in [("pandas", df), ("records", records)]:
        p = model.predict(inputs)
        _assert_close(p.probabilities, want, f"{how} probabilities")
        np.testing.assert_array_equal(p.labels, labels)


def test_text_encoder_with_its_tokenizer_matches_onnxruntime(tmp_path: Path) -> None:
    e = _expected("tiny_bert")
    # The third text is a sentence pair, which a text input does not take.
    texts = [t for t in e["texts"] if isinstance(t, str)]
    want = _tensor(e["outputs"]["sentence_embedding"])[: len(texts)]
    tokenizer = ONNX / "tiny_bert_hf" / "tokenizer.json"
    with pytest.raises(ingot.UsageError, match="tokenizer"):
        ingot.import_onnx(ONNX / "tiny_bert.onnx", tmp_path / "no-tokenizer.ingot")
    model = ingot.import_onnx(
        ONNX / "tiny_bert.onnx", tmp_path / "bert.ingot", tokenizer=tokenizer, max_length=40
    )
    _assert_close(model.embed(texts), want, "sentence embeddings")
    hf = ingot.import_hf(ONNX / "tiny_bert_hf", tmp_path / "hf.ingot", max_length=40)
    _assert_close(model.embed(texts), hf.embed(texts), "ONNX import vs import_hf")
    with pytest.raises(ingot.UsageError, match="max-length 1000"):
        ingot.import_onnx(
            ONNX / "tiny_bert.onnx", tmp_path / "long.ingot", tokenizer=tokenizer, max_length=1000
        )


def test_options_reach_the_importer(tmp_path: Path) -> None:
    source = ONNX / "mlp_digits.onnx"
    model = ingot.import_onnx(
        source,
        tmp_path / "named.ingot",
        name="digits",
        version="2.1.0",
        input_shapes={"x": [-1, 64]},
        feature_names=[f"px{i}" for i in range(64)],
        output="logits",
    )
    assert (model.name, model.version) == ("digits", "2.1.0")
    assert model.input_names == [f"px{i}" for i in range(64)]
    wrong = tmp_path / "wrong.ingot"
    with pytest.raises(ingot.UsageError, match="has 3 dimensions"):
        ingot.import_onnx(source, wrong, input_shapes={"x": (-1, 8, 8)})
    with pytest.raises(ingot.UsageError, match="3 class labels for 10 classes"):
        ingot.import_onnx(source, wrong, classes=["a", "b", "c"])
    with pytest.raises(ingot.UsageError, match="strings or numbers"):
        ingot.import_onnx(source, wrong, classes=[None] * 10)
    with pytest.raises(TypeError, match="classes"):
        ingot.import_onnx(source, wrong, classes="abcdefghij")
    with pytest.raises(TypeError, match="feature_names"):
        ingot.import_onnx(source, wrong, feature_names="abc")
    assert not wrong.exists()


def test_check_reports_an_importable_model() -> None:
    report = ingot.check_onnx(ONNX / "mlp_digits.onnx")
    assert report == {
        "ok": True,
        "producer": "pytorch 2.15.0",
        "opsets": {"ai.onnx": 17},
        "ops": {"Gemm": 3, "Relu": 1, "Tanh": 1},
        "unsupported": [],
        "error": None,
        "encoder": None,
    }
    report = ingot.check_onnx(str(ONNX / "sk_pipeline_mixed.onnx"))
    assert report["ok"]
    assert report["ops"]["ai.onnx.ml.OneHotEncoder"] == 2


def test_check_describes_a_text_encoder() -> None:
    report = ingot.check_onnx(ONNX / "tiny_bert.onnx")
    assert report["ok"]
    assert report["encoder"].startswith("BERT encoder: 2 layers, hidden 32, 4 heads")


def test_a_malformed_file_raises_an_ingot_error(tmp_path: Path) -> None:
    source = tmp_path / "broken.onnx"
    source.write_bytes(b"\x08\x07not a protobuf\xff\xff")
    out = tmp_path / "out.ingot"
    with pytest.raises(ingot.ModelError, match="ONNX"):
        ingot.import_onnx(source, out)
    with pytest.raises(ingot.ModelError, match="ONNX"):
        ingot.check_onnx(source)
    assert not out.exists()


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ingot.import_onnx(tmp_path / "nope.onnx", tmp_path / "out.ingot")
    with pytest.raises(FileNotFoundError):
        ingot.check_onnx(tmp_path / "nope.onnx")


def _model(path: Path, ops: list[str], dims: list[int | str]) -> Path:
    """``x [N, *dims]`` through a chain of unary ``ops`` (one node each, named ``/op_i``)."""
    import onnx
    from onnx import TensorProto, helper

    names = ["x"] + [f"t{i}" for i in range(len(ops))]
    nodes = [
        helper.make_node(op, [names[i]], [names[i + 1]], name=f"/{op.lower()}_{i}")
        for i, op in enumerate(ops)
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *dims])],
        [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, ["N", *dims])],
    )
    model = helper.make_model(
        graph, producer_name="test", opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.save(model, str(path))
    return path


def test_check_lists_every_unsupported_node(tmp_path: Path) -> None:
    source = _model(tmp_path / "gaps.onnx", ["Relu", "Round", "Hardmax", "Tanh"], [4])
    report = ingot.check_onnx(source)
    assert not report["ok"]
    assert report["producer"] == "test"
    assert report["ops"] == {"Hardmax": 1, "Relu": 1, "Round": 1, "Tanh": 1}
    assert report["error"] is None
    assert [(u["op_type"], u["domain"], u["node"], u["opset"]) for u in report["unsupported"]] == [
        ("Round", "ai.onnx", "/round_1", 17),
        ("Hardmax", "ai.onnx", "/hardmax_2", 17),
    ]
    assert all(u["reason"] for u in report["unsupported"])
    out = tmp_path / "gaps.ingot"
    with pytest.raises(ingot.UnsupportedError, match=r"(?s)Round.*/round_1.*Hardmax.*/hardmax_2"):
        ingot.import_onnx(source, out)
    assert not out.exists()


def test_input_shapes_fix_symbolic_dimensions(tmp_path: Path) -> None:
    source = _model(tmp_path / "symbolic.onnx", ["Relu"], ["F"])
    report = ingot.check_onnx(source)
    assert not report["ok"]
    assert "input-shape" in report["error"]
    assert ingot.check_onnx(source, input_shapes={"x": [-1, 3]})["ok"]
    with pytest.raises(ingot.UnsupportedError, match="symbolic beyond the batch"):
        ingot.import_onnx(source, tmp_path / "no.ingot")
    model = ingot.import_onnx(source, tmp_path / "relu.ingot", input_shapes={"x": [-1, 3]})
    x = np.array([[-1.0, 0.5, 2.0], [3.0, -4.0, 0.0]], dtype=np.float32)
    _assert_close(model.predict(x).values, np.maximum(x, 0), "relu")
