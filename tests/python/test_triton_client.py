"""The server's Open Inference Protocol (V2) against Triton's own clients.

Starts the real ``ingot-server`` binary (``$INGOT_SERVER_BIN`` or
``<repo>/target/debug/ingot-server``) on free loopback ports with the demo repository, then drives
it with the stock ``tritonclient.http`` and ``tritonclient.grpc`` clients: health, metadata, the
repository index, and inference in JSON and in binary tensors (dense ``[rows, 30]`` and one
tensor per column), each compared with the Ingot REST API's answer for the same rows.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

REPO = Path(__file__).resolve().parents[2]
MODEL = "breast-cancer"
TOLERANCE = 1e-6


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class Server:
    def __init__(self, http: str, grpc: str) -> None:
        self.http = http
        self.grpc = grpc
        self.url = f"http://{http}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = Path(os.environ.get("INGOT_SERVER_BIN", REPO / "target" / "debug" / "ingot-server"))
    if not binary.is_file():
        message = (
            f"ingot-server not found at {binary} (build it with `cargo build -p ingot-server`)"
        )
        if os.environ.get("INGOT_REQUIRE_CLI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    http, grpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("server") / "server.log"
    args = [str(binary), "--addr", http, "--grpc-addr", grpc]
    args += ["--models", str(REPO / "examples" / "server" / "models"), "--poll-interval", "0"]
    with open(log, "w") as out:
        process = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get_json(f"http://{http}/v2/health/ready")["status"] == "ready":
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ingot-server did not become ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield Server(http, grpc)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def reference(server: Server) -> dict:
    """The bundle's sample rows, dense in signature order, and the REST API's answer for them."""
    info = get_json(f"{server.url}/v1/models/{MODEL}")
    columns = [spec["name"] for spec in info["signature"]["inputs"]]
    sample = info["sample"]
    assert len(columns) == 30 and sample
    dense = np.array([[row[c] for c in columns] for row in sample], dtype=np.float64)
    answer = post_json(f"{server.url}/v1/models/{MODEL}/predict", {"records": sample})
    classes = [str(c) for c in info["classes"]]
    predictions = answer["predictions"]
    probabilities = np.array([[p["probabilities"][c] for c in classes] for p in predictions])
    labels = np.array([p["label"] for p in predictions], dtype=np.int64)
    return {"columns": columns, "dense": dense, "probabilities": probabilities, "labels": labels}


def check(result, reference: dict) -> None:
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32
    assert probabilities.shape == reference["probabilities"].shape
    np.testing.assert_allclose(probabilities, reference["probabilities"], rtol=0, atol=TOLERANCE)
    labels = result.as_numpy("label")
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, reference["labels"])


def test_health_and_metadata(server: Server, reference: dict) -> None:
    http = httpclient.InferenceServerClient(url=server.http)
    grpc = grpcclient.InferenceServerClient(url=server.grpc)
    for client in (http, grpc):
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(MODEL)
        assert client.is_model_ready(MODEL, "1.0.0")
        assert not client.is_model_ready("no-such-model")

    metadata = http.get_server_metadata()
    assert metadata["name"] == "ingot" and "binary_tensor_data" in metadata["extensions"]
    assert grpc.get_server_metadata().name == "ingot"

    model = http.get_model_metadata(MODEL)
    assert model["platform"] == "ingot" and model["versions"] == ["1.0.0"]
    assert [i["name"] for i in model["inputs"]] == reference["columns"]
    assert {i["datatype"] for i in model["inputs"]} == {"FP64"}
    outputs = {o["name"]: (o["datatype"], o["shape"]) for o in model["outputs"]}
    assert outputs == {"label": ("INT64", [-1]), "probabilities": ("FP32", [-1, 2])}
    model = grpc.get_model_metadata(MODEL, as_json=True)
    assert [i["name"] for i in model["inputs"]] == reference["columns"]

    index = http.get_model_repository_index()
    assert {"name": MODEL, "version": "1.0.0", "state": "READY", "reason": ""} in index


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_http_dense_matches_rest(server: Server, reference: dict, binary: bool) -> None:
    client = httpclient.InferenceServerClient(url=server.http)
    dense = reference["dense"]
    tensor = httpclient.InferInput("input", list(dense.shape), "FP64")
    tensor.set_data_from_numpy(dense, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput("probabilities", binary_data=binary),
        httpclient.InferRequestedOutput("label", binary_data=binary),
    ]
    result = client.infer(MODEL, [tensor], outputs=outputs, request_id="r1")
    check(result, reference)
    response = result.get_response()
    assert response["model_name"] == MODEL and response["model_version"] == "1.0.0"
    assert response["id"] == "r1"


def test_http_per_column_binary_matches_rest(server: Server, reference: dict) -> None:
    client = httpclient.InferenceServerClient(url=server.http)
    dense = reference["dense"]
    inputs = []
    for i, name in enumerate(reference["columns"]):
        tensor = httpclient.InferInput(name, [dense.shape[0]], "FP64")
        tensor.set_data_from_numpy(np.ascontiguousarray(dense[:, i]), binary_data=True)
        inputs.append(tensor)
    result = client.infer(MODEL, inputs)  # no outputs named: every output, in binary
    check(result, reference)


def test_grpc_matches_rest(server: Server, reference: dict) -> None:
    client = grpcclient.InferenceServerClient(url=server.grpc)
    dense = reference["dense"]
    tensor = grpcclient.InferInput("input", list(dense.shape), "FP64")
    tensor.set_data_from_numpy(dense)  # sent as raw_input_contents
    result = client.infer(MODEL, [tensor], model_version="1.0.0", request_id="g1")
    check(result, reference)
    response = result.get_response()
    assert (response.model_version, response.id) == ("1.0.0", "g1")

    outputs = [grpcclient.InferRequestedOutput("probabilities")]
    only = client.infer(MODEL, [tensor], outputs=outputs).get_response()
    assert [o.name for o in only.outputs] == ["probabilities"]


def test_errors_reach_the_clients(server: Server, reference: dict) -> None:
    http = httpclient.InferenceServerClient(url=server.http)
    grpc = grpcclient.InferenceServerClient(url=server.grpc)
    dense = reference["dense"]

    tensor = httpclient.InferInput("input", list(dense.shape), "FP64")
    tensor.set_data_from_numpy(dense)
    with pytest.raises(InferenceServerException, match="no model named `nope`") as err:
        http.infer("nope", [tensor])
    assert err.value.status() == "404"
    narrow = httpclient.InferInput("input", [dense.shape[0], 29], "FP64")
    narrow.set_data_from_numpy(dense[:, :29])
    with pytest.raises(
        InferenceServerException, match=r"this model takes shape \[rows, 30\]"
    ) as err:
        http.infer(MODEL, [narrow])
    assert err.value.status() == "400"

    tensor = grpcclient.InferInput("input", list(dense.shape), "FP64")
    tensor.set_data_from_numpy(dense)
    with pytest.raises(InferenceServerException, match="no model named `nope`") as err:
        grpc.infer("nope", [tensor])
    assert "NOT_FOUND" in str(err.value.status())
    outputs = [grpcclient.InferRequestedOutput("scores")]
    with pytest.raises(InferenceServerException, match="unknown output `scores`") as err:
        grpc.infer(MODEL, [tensor], outputs=outputs)
    assert "INVALID_ARGUMENT" in str(err.value.status())
