#!/usr/bin/env python3
"""Tiny DistilBERT, RoBERTa and XLM-RoBERTa sentence encoders and their reference outputs.

Ingot's importer reads the BERT, DistilBERT and RoBERTa (incl. XLM-RoBERTa) layouts. Real
checkpoints of the last three are not available offline, so this script builds small ones with
random weights (fixed seed) and the tokenizer family each architecture ships with, trained here on
a few hundred sentences:

* ``distilbert``: WordPiece, lower-cased (BERT's normalizer and pre-tokenizer), CLS pooling;
* ``roberta``: byte-level BPE with ``RobertaProcessing``, max pooling, positions offset by
  ``pad_token_id + 1`` as RoBERTa does;
* ``xlm-roberta``: Unigram with the Metaspace pre-tokenizer (SentencePiece style), mean pooling
  and Normalize.

Each goes to ``tests/fixtures/arch/<name>/model/`` as a sentence-transformers directory
(config.json, model.safetensors, tokenizer.json, modules.json, 1_Pooling/config.json) next to an
``expected.json`` with the token ids and the float32 embeddings of ``SentenceTransformer.encode``
on the parity sentences of ``make_text_fixtures.py``. Needs the reference venv (``make ref-deps``):

    .venv-ref/bin/python scripts/make_arch_fixtures.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "arch"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_text_fixtures import bench_sentences, round7, sentences, st_token_ids  # noqa: E402

HIDDEN, HEADS, LAYERS, FFN, MAX_LEN = 32, 4, 2, 64, 48


def corpus() -> list[str]:
    return bench_sentences(400, seed=11) + sentences()


def wordpiece():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        corpus(), trainers.WordPieceTrainer(vocab_size=400, special_tokens=special)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def byte_bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus(), trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tok


def unigram():
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    special = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    # The pipeline transformers' XLMRobertaTokenizer builds around a SentencePiece vocabulary (it
    # ignores a different one stored in tokenizer.json), so that both sides tokenize alike.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()]
    )
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=special, unk_token="<unk>")
    tok.train_from_iterator(corpus(), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return tok


def build(name: str) -> None:
    import numpy as np
    import torch
    import transformers as tf
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(20261123)
    if name == "distilbert":
        tok = wordpiece()
        config = tf.DistilBertConfig(
            vocab_size=tok.get_vocab_size(),
            dim=HIDDEN,
            n_heads=HEADS,
            n_layers=LAYERS,
            hidden_dim=FFN,
            max_position_embeddings=MAX_LEN,
            pad_token_id=0,
        )
        model, fast = tf.DistilBertModel(config), tf.DistilBertTokenizerFast
        special, pooling = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]"}, "cls"
        special |= {"sep_token": "[SEP]", "mask_token": "[MASK]"}
    else:
        tok = byte_bpe() if name == "roberta" else unigram()
        cls = tf.RobertaConfig if name == "roberta" else tf.XLMRobertaConfig
        config = cls(
            vocab_size=tok.get_vocab_size(),
            hidden_size=HIDDEN,
            num_attention_heads=HEADS,
            num_hidden_layers=LAYERS,
            intermediate_size=FFN,
            max_position_embeddings=MAX_LEN + 2,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            layer_norm_eps=1e-5,
        )
        model = (tf.RobertaModel if name == "roberta" else tf.XLMRobertaModel)(
            config, add_pooling_layer=False
        )
        fast = tf.RobertaTokenizerFast if name == "roberta" else tf.XLMRobertaTokenizerFast
        special = {
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
        }
        special |= {"cls_token": "<s>", "sep_token": "</s>"}
        pooling = "max" if name == "roberta" else "mean"
    # Random init is close to zero everywhere; widen it so that attention and LayerNorm see
    # realistic spreads and a wrong op would change the result.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.eval()

    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    mdir = out / "model"
    model.save_pretrained(mdir, safe_serialization=True)
    fast(tokenizer_object=tok, model_max_length=MAX_LEN, **special).save_pretrained(mdir)
    (mdir / "1_Pooling").mkdir()
    pool_cfg = {f"pooling_mode_{m}": False for m in ("cls_token", "mean_tokens", "max_tokens")}
    pool_cfg[
        {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}.get(
            pooling, "pooling_mode_max_tokens"
        )
    ] = True
    pool_cfg |= {"pooling_mode_mean_sqrt_len_tokens": False, "word_embedding_dimension": HIDDEN}
    (mdir / "1_Pooling" / "config.json").write_text(json.dumps(pool_cfg, indent=2) + "\n")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    normalize = name == "xlm-roberta"
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
        (mdir / "2_Normalize").mkdir()
    (mdir / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (mdir / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": MAX_LEN - 16}) + "\n"
    )

    st = SentenceTransformer(str(mdir), device="cpu")
    sents = sentences()
    ids = st_token_ids(st, sents)
    emb = st.encode(sents, batch_size=8, convert_to_numpy=True)
    assert emb.dtype == np.float32 and emb.shape == (len(sents), HIDDEN)
    doc = {
        "model": name,
        "max_length": st.max_seq_length,
        "pooling": pooling,
        "normalized": normalize,
        "sentences": sents,
        "token_ids": ids,
        "embeddings": [[round7(float(v)) for v in row] for row in emb],
    }
    (out / "expected.json").write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{name}: vocab {tok.get_vocab_size()}, {sum(len(r) for r in ids)} tokens -> {out}")


def main() -> None:
    for name in ("distilbert", "roberta", "xlm-roberta"):
        build(name)


if __name__ == "__main__":
    main()
