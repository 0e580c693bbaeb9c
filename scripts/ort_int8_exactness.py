"""Whether ONNX Runtime's MatMulInteger (u8 x s8 -> i32) is exact on this CPU.

    .venv/bin/python scripts/ort_int8_exactness.py

Without VNNI, ONNX Runtime multiplies u8 by s8 with `vpmaddubsw`, whose i16 pair sums saturate;
this prints, for extreme and random codes, how many outputs differ from the exact integer
product (docs/benchmarks.md, "Reduced precision").
"""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

K, M = 384, 16


def session() -> ort.InferenceSession:
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    graph = helper.make_graph(
        [node],
        "matmul_integer",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [None, K]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [K, M]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, M])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def main() -> None:
    s = session()
    rng = np.random.default_rng(0)
    cases = [
        ("codes 255 x weights 127", np.full((4, K), 255, np.uint8), np.full((K, M), 127, np.int8)),
        (
            "codes 255 x weights -128",
            np.full((4, K), 255, np.uint8),
            np.full((K, M), -128, np.int8),
        ),
        (
            "random u8 x random s8",
            rng.integers(0, 256, (64, K)).astype(np.uint8),
            rng.integers(-128, 128, (K, M)).astype(np.int8),
        ),
        (
            "random u8 x random s8 in [-64, 63]",
            rng.integers(0, 256, (64, K)).astype(np.uint8),
            rng.integers(-64, 64, (K, M)).astype(np.int8),
        ),
    ]
    print(f"onnxruntime {ort.__version__}, k = {K}")
    for name, a, b in cases:
        got = s.run(None, {"a": a, "b": b})[0].astype(np.int64)
        exact = a.astype(np.int64) @ b.astype(np.int64)
        diff = np.abs(got - exact)
        rel = (diff / np.maximum(1, np.abs(exact))).max()
        print(
            f"{name}: first output {got.flat[0]} (exact {exact.flat[0]}); "
            f"{np.count_nonzero(diff)} of {diff.size} wrong, worst relative error {rel:.3g}"
        )


if __name__ == "__main__":
    main()
