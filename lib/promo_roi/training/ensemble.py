"""An ensemble of the household-response network trained from several seeds, used as one network.

One training is one draw: the same data trained from another seed ranks
households differently (issue 11 measured uplifts of +52.6 and -54.1 for one
household from two trainings). Training fits ``training.ensemble_size``
members, each from its own seed (:func:`member_seed`) on the same rows, and
publishes their average; the evaluation reports how far the members disagree
(``gold.model_evaluation``, scope ``ensemble``).

Members are averaged on the scale the heads speak: propensity and redemption
logits, log expected spends. For the anchored head that keeps the model's
form: the average of the members' ``log mu0 + delta`` is the average
``log mu0`` plus the average effect. Every caller of a single network
(training's evaluation, scoring on the driver and on the executors, Monte
Carlo dropout) uses the ensemble through the same two calls, ``encode_texts``
and ``forward_encoded``: a text's vector is the members' vectors side by side,
split again per member.

torch is imported inside the builder: this module is imported by driver code
that never builds a network.
"""

from __future__ import annotations

from typing import Any, Sequence

# Far from the offsets training adds to the seed inside one member (a rank's shard order: + rank; a
# resumed epoch's batches: + 1000 * epoch), so no two members read their rows in the same order.
MEMBER_SEED_STRIDE = 100_003


def member_seed(seed: int, member: int) -> int:
    """The seed member ``member`` (0-based) trains from; member 0 trains from ``seed`` itself, so an
    ensemble of one is the network a single training has always made."""
    if member < 0:
        raise ValueError(f"member must be >= 0, got {member}")
    return seed + MEMBER_SEED_STRIDE * member


def member_prefix(member: int, size: int) -> str:
    """Prefix of a member's training metrics in the MLflow run: none for a single network (its metrics keep
    their names), ``member_<k>/`` (1-based) in an ensemble."""
    return "" if size == 1 else f"member_{member + 1}/"


def ensemble_network(members: Sequence[Any], text_width: int):
    """The torch module averaging ``members`` (networks of :func:`promo_roi.training.model.build_network`,
    each projecting a text to ``text_width`` values, 0 for networks that read no text)."""
    import torch
    import torch.nn as nn

    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")

    class SeedEnsemble(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(members)

        def encode_texts(self, input_ids, attention_mask):
            """[texts, members x text_proj_dim]: each member's text vector, side by side."""
            return torch.cat([m.encode_texts(input_ids, attention_mask) for m in self.members], dim=1)

        def forward(self, x_num, x_cat, text_index, input_ids, attention_mask):
            return self.forward_encoded(x_num, x_cat, self.encode_texts(input_ids, attention_mask), text_index)

        def forward_encoded(self, x_num, x_cat, text_vectors, text_index):
            return self._average([m.forward_encoded(x_num, x_cat, vectors, text_index)
                                  for m, vectors in zip(self.members, self._per_member(text_vectors))])

        def row_constants(self, x_cat, text_vectors, text_index):
            """Each member's first-layer constants, side by side (see the single network's)."""
            return torch.cat([m.row_constants(x_cat, vectors, text_index)
                              for m, vectors in zip(self.members, self._per_member(text_vectors))], dim=1)

        def _per_member(self, text_vectors):
            """Each member's columns of the side-by-side text vectors (``Tensor.split`` refuses a width of 0)."""
            return [text_vectors[:, k * text_width:(k + 1) * text_width] for k in range(len(self.members))]

        def forward_constants(self, x_num, constants):
            widths = [m.representation[0].out_features for m in self.members]
            return self._average([m.forward_constants(x_num, c)
                                  for m, c in zip(self.members, constants.split(widths, dim=1))])

        @staticmethod
        def _average(outputs):
            logit = torch.stack([o[0] for o in outputs]).mean(0)
            arms = torch.stack([o[1] for o in outputs]).mean(0)
            return logit, arms

    return SeedEnsemble()
