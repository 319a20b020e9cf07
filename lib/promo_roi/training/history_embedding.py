"""A household's purchase-history text as a vector: the pretrained encoder, frozen, mean pooled, cached by text.

What the network reads of the household's purchases (``training.text_input: campaign_and_history``) is each
row's ``history_text`` (promo_roi/purchase_history.py) through all-MiniLM-L6-v2 as it was pretrained: nothing
of it is fine-tuned, so a text's vector is a pure function of the text, computed once per process and kept
(the issue asks for frozen embeddings cached by text). A night's pairs hold one text per household and a
training's rows one per household and campaign start, against thousands of rows each.

One text per forward pass, as the campaign texts at scoring (scoring/predict.py): texts encoded together are
padded to the longest, and padding moves a vector in its last float32 digits, so a household's vector would
depend on which texts the process happened to encode beside it. Texts are cut at HISTORY_MAX_TOKENS word
pieces, the length the encoder was trained on: ten categories take 98 at most on the full data
(scripts/history_text_tokens.py).

torch and transformers are imported inside functions: driver code imports this module without a network.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from promo_roi.training.text_encoder import default_encoder_path, inference_threads, tokenize_texts

HISTORY_DIM = 384  # all-MiniLM-L6-v2's hidden size
HISTORY_MAX_TOKENS = 256
# Vectors kept per process (1.5 KB each): the full data's training rows hold some tens of thousands of texts.
CACHE_LIMIT = 200_000

_ENCODERS: dict[str, tuple[Any, Any]] = {}
_VECTORS: dict[tuple[str, str], np.ndarray] = {}


def _encoder(path: str) -> tuple[Any, Any]:
    """(tokenizer, model) of the pretrained encoder at ``path``, loaded once per process, in eval mode."""
    if path not in _ENCODERS:
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(path, local_files_only=True)
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad = False
        _ENCODERS[path] = (AutoTokenizer.from_pretrained(path, local_files_only=True), model)
    return _ENCODERS[path]


def embed_text(text: str, encoder_path: str | None = None) -> np.ndarray:
    """The mean-pooled last hidden state of ``text`` (float32, HISTORY_DIM values), uncached."""
    import torch

    tokenizer, model = _encoder(encoder_path or default_encoder_path())
    tokens = tokenize_texts(tokenizer, [text], HISTORY_MAX_TOKENS)
    with torch.no_grad(), inference_threads():
        hidden = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return pooled[0].numpy().astype(np.float32)


def history_vectors(texts: pd.Series, encoder_path: str | None = None) -> np.ndarray:
    """[rows, HISTORY_DIM] float32: each row's text as :func:`embed_text` gives it, each distinct text embedded
    once and cached by the hash of its text."""
    path = encoder_path or default_encoder_path()
    if texts.isna().any():
        raise ValueError("history_text holds missing values: every row needs its household's text")
    codes, uniques = pd.factorize(texts.astype(str), sort=False)
    keys = [(path, hashlib.sha1(text.encode("utf-8")).hexdigest()) for text in uniques]
    if len(_VECTORS) + len(keys) > CACHE_LIMIT:
        _VECTORS.clear()
    for key, text in zip(keys, uniques):
        if key not in _VECTORS:
            _VECTORS[key] = embed_text(text, path)
    if not keys:
        return np.zeros((0, HISTORY_DIM), dtype=np.float32)
    return np.stack([_VECTORS[key] for key in keys])[codes]
