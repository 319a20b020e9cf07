"""The household-response network: MiniLM reads the campaign, an MLP reads the household.

Architecture (a shared representation with a DragonNet-style propensity head):

    campaign text --MiniLM (mean pooled)--> 384 --linear--> text vector
    household + pair numeric features (signed log1p, standardised) --+
    categorical features (embeddings) -------------------------------+--> shared MLP --> representation
    representation --> propensity head: P(targeted | x)
    representation --> outcome heads: redemption logit, log expected coupon-product
                       spend, log expected total spend, under t=0 and t=1

Two parametrisations of the outcome heads (``ModelSpec.effect_head``):

- ``anchored`` (an option, ``training.effect_head``; conf/base.yaml says why it is not the default): the
  spend a household would have
  without the campaign is anchored on its own pre-period,
  ``log mu0 = log(pre-period rate / scale + k) + g(x)``, so the network learns
  a correction to "this window like the last" (what the pre-period-spend
  heuristic knows) instead of a level from scratch; the targeted spend is
  ``mu1 = mu0 * exp(delta(x))`` with a small effect head whose last layer
  starts at zero and whose square is penalised (``effect_penalty``), so the
  uplift is 0 unless the data move it. The redemption logits stay one per arm:
  untargeted households almost never redeem, a ratio of the two means nothing.
- ``two_arms`` (TARNet, the default and every model trained before the anchored head): one head per
  arm, uplift the difference of two separately fitted levels; a 10% bias in
  either head is a large uplift, and nothing pulls it toward 0.

Spend heads are trained with a Poisson deviance on the spend divided by its
training mean, so ``exp(output) * scale`` estimates the *expected* spend (the
mean, which ROI needs), not the median a squared error on log spend would give.
Only the observed arm's head gets a loss on a row; the representation is
shared, so the heads extrapolate from households of the other arm. The
propensity head is what tells whether that extrapolation has support: the
evaluation reports uplift inside the overlap band separately.

What text the network reads (``ModelSpec.text_input``): ``campaign``, the
campaign's offer text through MiniLM as drawn above; ``campaign_and_history``,
that and the household's purchase history (``history_text``: its largest
product categories by spend before the campaign), each row's history text as
the *frozen* pretrained MiniLM's mean-pooled vector (384 values, cached by
text, training/history_embedding.py) after the numeric features, so the
shared MLP relates what the household buys to the offer's text vector; or
``none``, no text and no encoder, the same network on the household and
campaign features alone.
``none`` is the ablation that measures what the transformer adds: the two are
trained on the same rows and judged side by side (BENCHMARKS.md).

Efficiency: there are only a few dozen distinct campaign texts against tens of
thousands of rows, so each batch encodes its *distinct* texts once
(``text_index`` maps rows to them) instead of once per row.

torch and transformers are imported inside functions that need them: this
module is imported by Spark driver code that never builds a network.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from promo_roi.config import EFFECT_HEADS, TEXT_INPUTS
from promo_roi.training.text_encoder import (
    TextBatcher,
    default_encoder_path,
    inference_threads,
    insert_adapters,
    load_text_encoder,
)

OUTCOMES = ("redeemed", "coupon_product_spend", "spend")
SPEND_OUTCOMES = ("coupon_product_spend", "spend")
# The pre-period column each spend outcome's anchor reads (the equal-length window before the campaign,
# silver.campaign_exposures), and the share of that window the data cover.
ANCHOR_COLUMNS = {"coupon_product_spend": "pre_coupon_product_spend", "spend": "pre_spend"}
PRE_SHARE_COLUMN = "pre_observed_share"
# A pre-period less than a quarter observed is scaled up by 4 at most: beyond that the rate is noise.
MIN_PRE_SHARE = 0.25


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """sign(x) * log1p(|x|), in two passes over one new array (scoring encodes every pair of a night)."""
    out = np.log1p(np.abs(x))
    return np.copysign(out, x, out=out)


@dataclass
class FeatureEncoder:
    """Turns feature columns into model inputs; fitted on the training split, saved with the model."""

    numeric_columns: list[str]
    categorical_columns: list[str]
    means: list[float]
    stds: list[float]
    vocabularies: dict[str, list[str]]
    spend_scale: dict[str, float]
    # A network that reads the household's purchase history (training.text_input: campaign_and_history) gets
    # each row's history_text as the frozen encoder's vector (training/history_embedding.py) after the numeric
    # features: history_dim values, not standardised. 0: none (and every encoder saved before it).
    history_dim: int = 0
    history_encoder_path: str | None = None

    @property
    def input_columns(self) -> list[str]:
        """The frame columns :meth:`encode` reads."""
        history = ["history_text"] if self.history_dim else []
        return [*self.numeric_columns, *self.categorical_columns, *history]

    @property
    def width(self) -> int:
        """Values per row of ``x_num``: the numeric features and the history vector."""
        return len(self.numeric_columns) + self.history_dim

    def reading(self, text_input: str, encoder_path: str | None = None) -> "FeatureEncoder":
        """This encoder as the network of ``text_input`` reads the rows: with each row's purchase-history vector
        for ``campaign_and_history`` (from the encoder at ``encoder_path``, the default MiniLM if None), the
        features alone otherwise. The baselines and nuisance models read the features alone whatever the
        network reads, so that ablations of the text change the network only."""
        from promo_roi.training.history_embedding import HISTORY_DIM

        if text_input == "campaign_and_history":
            return replace(self, history_dim=HISTORY_DIM, history_encoder_path=encoder_path)
        return replace(self, history_dim=0, history_encoder_path=None)

    def encode(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise KeyError(f"model input is missing column(s): {', '.join(missing)}")
        # Every step in place on one float64 array: scoring encodes every (household, campaign) pair of a night
        # (BENCHMARKS.md, "Scoring").
        raw = frame[self.numeric_columns].to_numpy(dtype=np.float64, na_value=np.nan)
        x = signed_log1p(raw)
        x -= np.asarray(self.means)
        x /= np.asarray(self.stds)
        # Missing (e.g. days since last redemption of a household that never redeemed) -> the mean.
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        cats = np.empty((len(frame), len(self.categorical_columns)), dtype=np.int64)
        for j, col in enumerate(self.categorical_columns):
            cats[:, j] = self._category_codes(col, frame[col])
        x_num = x.astype(np.float32)
        if self.history_dim:
            from promo_roi.training.history_embedding import history_vectors

            vectors = history_vectors(frame["history_text"], self.history_encoder_path)
            if vectors.shape[1] != self.history_dim:
                raise ValueError(f"history vectors have {vectors.shape[1]} values, the model reads {self.history_dim}")
            x_num = np.hstack([x_num, vectors])
        return {"x_num": x_num, "x_cat": cats}

    def _category_codes(self, column: str, values: pd.Series) -> np.ndarray:
        """Code i + 1 for the i-th training value, 0 for a value unseen in training; a missing value is the
        string "unknown". Each distinct value is converted and looked up once (a column holds a handful)."""
        row_codes, uniques = pd.factorize(values, use_na_sentinel=True)
        names = pd.concat([pd.Series(uniques).astype("string"), pd.Series([pd.NA], dtype="string")],
                          ignore_index=True).fillna("unknown")
        lookup = pd.Categorical(names, categories=self.vocabularies[column]).codes.astype(np.int64) + 1
        return lookup[row_codes]  # a missing value's code -1 reads the last entry, "unknown"

    def cardinalities(self) -> list[int]:
        return [len(self.vocabularies[c]) + 1 for c in self.categorical_columns]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FeatureEncoder":
        return cls(**json.loads(text))


def fit_feature_encoder(
    train: "Any",
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
) -> FeatureEncoder:
    """Fits the encoder on the training split, a Spark DataFrame: aggregates, never collects rows (the features
    alone: :meth:`FeatureEncoder.reading` adds what a network reads beside them)."""
    from pyspark.sql import functions as F

    def slog(c: str):
        x = F.col(c).cast("double")
        return F.signum(x) * F.log1p(F.abs(x))

    aggs = []
    for c in numeric_columns:
        aggs += [F.avg(slog(c)).alias(f"m__{c}"), F.stddev_pop(slog(c)).alias(f"s__{c}")]
    aggs += [F.avg(F.col(c).cast("double")).alias(f"scale__{c}") for c in SPEND_OUTCOMES]
    row = train.agg(*aggs).first()
    if row is None or row[f"scale__{SPEND_OUTCOMES[0]}"] is None:
        raise ValueError("cannot fit the feature encoder on an empty training split")
    means = [float(row[f"m__{c}"] or 0.0) for c in numeric_columns]
    # A constant column (std 0) stays 0 after centring rather than dividing by zero.
    stds = [float(row[f"s__{c}"]) if row[f"s__{c}"] else 1.0 for c in numeric_columns]
    vocab: dict[str, list[str]] = {}
    for c in categorical_columns:
        values = [r[0] for r in train.select(F.col(c).cast("string")).distinct().collect() if r[0] is not None]
        vocab[c] = sorted(values)
    scale = {c: max(float(row[f"scale__{c}"]), 1e-6) for c in SPEND_OUTCOMES}
    return FeatureEncoder(list(numeric_columns), list(categorical_columns), means, stds, vocab, scale)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network (saved with the weights)."""

    n_numeric: int
    cardinalities: list[int]
    hidden_dim: int = 128
    dropout: float = 0.1
    text_dim: int = 384
    text_proj_dim: int = 64
    finetune: str = "top_layers"
    top_layers: int = 2
    adapter_dim: int = 16
    max_text_tokens: int = 64
    encoder_path: str | None = None
    # Specs saved before the anchored head have neither field: they load as the two-arm network.
    effect_head: str = "two_arms"
    anchor: dict[str, Any] | None = None
    # Networks trained from as many seeds and averaged (training/ensemble.py); specs saved before the
    # ensemble load as one network.
    ensemble_size: int = 1
    # Specs saved before the ablation read the campaign text.
    text_input: str = "campaign"

    def __post_init__(self) -> None:
        if self.text_input not in TEXT_INPUTS:
            raise ValueError(f"text_input must be one of {', '.join(TEXT_INPUTS)}, got {self.text_input!r}")
        if not isinstance(self.ensemble_size, int) or self.ensemble_size < 1:
            raise ValueError(f"ensemble_size must be an integer >= 1, got {self.ensemble_size!r}")
        if self.effect_head not in EFFECT_HEADS:
            raise ValueError(f"effect_head must be one of {', '.join(EFFECT_HEADS)}, got {self.effect_head!r}")
        if self.effect_head == "anchored" and self.anchor is None:
            raise ValueError("the anchored effect head needs its anchor (see anchor_for)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reads_text(self) -> bool:
        return self.text_input != "none"

    @property
    def reads_history(self) -> bool:
        """Whether the network reads the household's purchase history (FeatureEncoder.reading)."""
        return self.text_input == "campaign_and_history"

    @property
    def text_width(self) -> int:
        """Values per text vector: the projection's width, 0 for a network that reads no text."""
        return self.text_proj_dim if self.reads_text else 0

    def member(self) -> "ModelSpec":
        """The spec of one member of the ensemble (the network one training rank fits)."""
        return replace(self, ensemble_size=1)


def anchor_for(encoder: FeatureEncoder, pseudo_count: float) -> dict[str, Any]:
    """Where the anchored head finds each row's pre-period outcome among the encoded numeric inputs, and how
    to undo their encoding (signed log1p, standardised with the training split's mean and std).

    The anchor of spend outcome o is ``log(pre_o / max(share, MIN_PRE_SHARE) / scale_o + pseudo_count)``, in
    the units the spend heads are trained in (spend / its training mean): with ``pseudo_count`` 0.1 a
    household with no pre-period spend starts at a tenth of the average, and the correction g(x) learns the
    rest. Read from ``x_num`` inside the network, the anchor travels with the saved model and needs no input
    beyond what every caller already passes.
    """
    if not pseudo_count > 0:
        raise ValueError(f"the anchor's pseudo-count must be > 0, got {pseudo_count}")

    def column(name: str) -> dict[str, Any]:
        if name not in encoder.numeric_columns:
            raise KeyError(f"the anchored effect head needs numeric input {name!r}, which the model does not read")
        j = encoder.numeric_columns.index(name)
        return {"column": name, "index": j, "mean": encoder.means[j], "std": encoder.stds[j]}

    return {
        "share": column(PRE_SHARE_COLUMN),
        "outcomes": [{**column(ANCHOR_COLUMNS[o]), "outcome": o, "scale": encoder.spend_scale[o]}
                     for o in SPEND_OUTCOMES],
        "pseudo_count": float(pseudo_count),
    }


def _decoded(x_num, column: Mapping[str, Any]):
    """The raw value of one encoded numeric input: the inverse of FeatureEncoder.encode's transform."""
    import torch

    signed_log = x_num[:, column["index"]] * column["std"] + column["mean"]
    return torch.sign(signed_log) * torch.expm1(torch.abs(signed_log))


def anchor_log_means(x_num, anchor: Mapping[str, Any]):
    """[batch, spend outcome]: the log of each row's pre-period rate in training units, plus the pseudo-count."""
    import torch

    share = _decoded(x_num, anchor["share"]).clamp(min=MIN_PRE_SHARE, max=1.0)
    return torch.stack([
        torch.log(_decoded(x_num, o).clamp(min=0.0) / share / o["scale"] + anchor["pseudo_count"])
        for o in anchor["outcomes"]
    ], dim=1)


def build_network(spec: ModelSpec, encoder: Any | Sequence[Any] | None = None):
    """The torch module; ``encoder`` defaults to the pretrained MiniLM. With ``spec.ensemble_size`` k > 1,
    k networks averaged (:func:`promo_roi.training.ensemble.ensemble_network`), ``encoder`` then one text
    encoder per member or None."""
    if spec.ensemble_size > 1:
        from promo_roi.training.ensemble import ensemble_network

        encoders = [None] * spec.ensemble_size if encoder is None else list(encoder)
        if len(encoders) != spec.ensemble_size:
            raise ValueError(f"an ensemble of {spec.ensemble_size} needs as many text encoders, got {len(encoders)}")
        return ensemble_network([_single_network(spec.member(), e) for e in encoders], spec.text_width)
    return _single_network(spec, encoder)


def _single_network(spec: ModelSpec, encoder: Any | None):
    import torch
    import torch.nn as nn

    def _head():
        return nn.Sequential(nn.Linear(spec.hidden_dim, spec.hidden_dim // 2), nn.GELU(),
                             nn.Dropout(spec.dropout), nn.Linear(spec.hidden_dim // 2, len(OUTCOMES)))

    class HouseholdResponseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # A network that reads no text has no encoder: nothing of MiniLM is loaded, trained or saved.
            self.encoder = None
            self.text_proj = None
            if spec.reads_text:
                self.encoder = encoder if encoder is not None else load_text_encoder(spec)
                self.text_proj = nn.Sequential(nn.Linear(spec.text_dim, spec.text_proj_dim), nn.GELU())
            self.embeddings = nn.ModuleList(
                nn.Embedding(n, max(2, min(8, int(math.ceil(math.log2(n + 1)))))) for n in spec.cardinalities
            )
            emb_dim = sum(e.embedding_dim for e in self.embeddings)
            width = spec.n_numeric + emb_dim + spec.text_width
            self.representation = nn.Sequential(
                nn.Linear(width, spec.hidden_dim), nn.GELU(), nn.Dropout(spec.dropout),
                nn.Linear(spec.hidden_dim, spec.hidden_dim), nn.GELU(),
            )
            self.propensity = nn.Linear(spec.hidden_dim, 1)
            if spec.effect_head == "anchored":
                # base: untargeted redemption logit, g per spend outcome; effect: targeted redemption
                # logit, delta per spend outcome, starting at 0 (no effect until the data show one).
                self.base = _head()
                self.effect = _head()
                nn.init.zeros_(self.effect[-1].weight)
                nn.init.zeros_(self.effect[-1].bias)
            else:
                self.arms = nn.ModuleList(_head() for _ in range(2))

        def encode_texts(self, input_ids, attention_mask):
            if self.encoder is None:  # [texts, 0]: every text the same empty vector
                return self.representation[0].weight.new_zeros((input_ids.shape[0], 0))
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.text_proj(pooled)

        def forward(self, x_num, x_cat, text_index, input_ids, attention_mask):
            """``input_ids``/``attention_mask``: the batch's distinct texts; ``text_index``: row -> text."""
            return self.forward_encoded(x_num, x_cat, self.encode_texts(input_ids, attention_mask), text_index)

        def forward_encoded(self, x_num, x_cat, text_vectors, text_index):
            """The same network with the texts already encoded (``text_vectors``: one row per distinct text).

            Scoring encodes each campaign's text once and reuses it for every
            household and every Monte Carlo draw.
            """
            cats = [emb(x_cat[:, j]) for j, emb in enumerate(self.embeddings)]
            h = self.representation(torch.cat([x_num, *cats, text_vectors[text_index]], dim=1))
            return self._outputs(h, x_num)

        def row_constants(self, x_cat, text_vectors, text_index):
            """[rows, hidden_dim]: the first layer's bias plus its product with the row's embeddings and text
            vector, the part of the first layer that does not depend on the numeric features.

            A night's pairs have a few thousand distinct (categories, campaign) rows among hundreds of
            thousands: scoring computes this once per distinct row (:meth:`forward_constants`).
            """
            first = self.representation[0]
            cats = [emb(x_cat[:, j]) for j, emb in enumerate(self.embeddings)]
            rest = torch.cat([*cats, text_vectors[text_index]], dim=1)
            return torch.addmm(first.bias, rest, first.weight[:, spec.n_numeric:].t())

        def forward_constants(self, x_num, constants):
            """:meth:`forward_encoded`, given each row's :meth:`row_constants` (equal up to float rounding)."""
            first = self.representation[0]
            h = torch.addmm(constants, x_num, first.weight[:, :spec.n_numeric].t())
            return self._outputs(self.representation[1:](h), x_num)

        def _outputs(self, h, x_num):
            # [batch, arm, outcome]: both arms for every row (the uplift needs both).
            if spec.effect_head == "anchored":
                base, effect = self.base(h), self.effect(h)
                untargeted_spend = anchor_log_means(x_num, spec.anchor) + base[:, 1:]
                arms = torch.stack([
                    torch.cat([base[:, :1], untargeted_spend], dim=1),
                    torch.cat([effect[:, :1], untargeted_spend + effect[:, 1:]], dim=1),
                ], dim=1)
            else:
                arms = torch.stack([head(h) for head in self.arms], dim=1)
            return self.propensity(h).squeeze(1), arms

    return HouseholdResponseNet()


@dataclass(frozen=True)
class LossWeights:
    """Weights of the training loss's extra terms (the outcome loss has weight 1)."""

    propensity: float = 1.0
    # Times the mean over rows of the squared log spend ratio targeted / untargeted (sum over spend outcomes).
    effect_penalty: float = 0.0
    # Times the mean over rows of the Huber loss of each outcome's uplift against the row's doubly robust
    # pseudo-outcome (sum over outcomes): the DR-learner's loss, on the network's own effect.
    pseudo_outcome: float = 0.0


# The Huber loss's threshold, in the outcomes' training units (a redemption; spend over its training mean):
# a pseudo-outcome carries inverse propensity weights up to 100, and a squared loss would let a few rows decide.
PSEUDO_OUTCOME_HUBER_DELTA = 1.0


def uplift_in_training_units(arms):
    """[batch, 3]: the network's uplift per row on redemption (a probability) and both spends (over their
    training means), from the arms' logit and log means; exponents capped as in :func:`predictions_frame`."""
    import torch

    redeem = torch.sigmoid(arms[:, 1, 0]) - torch.sigmoid(arms[:, 0, 0])
    spends = torch.exp(arms[:, 1, 1:].clamp(max=30.0)) - torch.exp(arms[:, 0, 1:].clamp(max=30.0))
    return torch.cat([redeem.unsqueeze(1), spends], dim=1)


def response_loss(propensity_logit, arms, targeted, outcomes, weights: LossWeights, pseudo_outcomes=None):
    """Propensity BCE + the observed arm's redemption BCE and spend Poisson deviances, per arm, + the
    effect penalty + (with ``weights.pseudo_outcome``) the doubly robust term.

    ``outcomes``: [batch, 3] = redeemed (0/1), coupon-product spend / scale,
    spend / scale. Both arms enter the graph (masked), so every parameter gets
    a gradient on every step, as DistributedDataParallel requires. The penalty
    pulls every row's spend effect ``log mu1 - log mu0`` toward 0: an effect
    the data do not support shrinks to none. ``outcome_loss`` (what chooses
    the epoch) leaves the extra terms out. ``pseudo_outcomes``: [batch, 3] in
    the units of ``outcomes`` (redemption, spends over their scale), needed
    when ``weights.pseudo_outcome`` > 0.
    """
    import torch
    import torch.nn.functional as F

    t = targeted.float()
    arm_mask = torch.stack([1.0 - t, t], dim=1)  # [batch, arm]
    redeem = F.binary_cross_entropy_with_logits(
        arms[:, :, 0], outcomes[:, 0:1].expand(-1, 2), reduction="none")
    spend_losses = [
        F.poisson_nll_loss(arms[:, :, k], outcomes[:, k:k + 1].expand(-1, 2), log_input=True, full=False,
                           reduction="none")
        for k in (1, 2)
    ]
    per_arm = redeem + spend_losses[0] + spend_losses[1]
    # Each arm's head is trained on the mean loss over its own rows: targeted rows
    # are ~10% of a batch and would otherwise barely move the targeted head.
    outcome_loss = ((per_arm * arm_mask).sum(0) / arm_mask.sum(0).clamp(min=1.0)).sum()
    prop = F.binary_cross_entropy_with_logits(propensity_logit, t)
    effect = (arms[:, 1, 1:] - arms[:, 0, 1:]).pow(2).sum(1).mean()
    loss = outcome_loss + weights.propensity * prop + weights.effect_penalty * effect
    parts = {"outcome_loss": outcome_loss.detach(), "propensity_loss": prop.detach(), "effect_penalty": effect.detach()}
    if weights.pseudo_outcome > 0:
        if pseudo_outcomes is None:
            raise ValueError("the doubly robust term (pseudo_outcome weight > 0) needs each row's pseudo-outcomes")
        doubly_robust = F.huber_loss(uplift_in_training_units(arms), pseudo_outcomes.float(), reduction="none",
                                     delta=PSEUDO_OUTCOME_HUBER_DELTA).sum(1).mean()
        loss = loss + weights.pseudo_outcome * doubly_robust
        parts["pseudo_outcome_loss"] = doubly_robust.detach()
    return loss, parts


def predictions_frame(propensity_logit, arms, spend_scale: Mapping[str, float]) -> pd.DataFrame:
    """Network outputs -> expected outcomes under each arm, uplifts, propensity (numpy / pandas)."""
    import torch

    with torch.no_grad():
        e = torch.sigmoid(propensity_logit).cpu().numpy().astype(np.float64)
        a = arms.cpu().numpy().astype(np.float64)
    out = {"propensity": e}
    for arm in (0, 1):
        out[f"p_redeem_t{arm}"] = 1.0 / (1.0 + np.exp(-a[:, arm, 0]))
        for k, name in ((1, "coupon_product_spend"), (2, "spend")):
            out[f"{name}_t{arm}"] = np.exp(np.clip(a[:, arm, k], -30, 30)) * spend_scale[name]
    frame = pd.DataFrame(out)
    frame["uplift_redeem"] = frame["p_redeem_t1"] - frame["p_redeem_t0"]
    frame["uplift_coupon_product_spend"] = frame["coupon_product_spend_t1"] - frame["coupon_product_spend_t0"]
    frame["uplift_spend"] = frame["spend_t1"] - frame["spend_t0"]
    return frame


def predict_frame(
    network: Any,
    encoder_state: FeatureEncoder,
    tokenizer: Any,
    frame: pd.DataFrame,
    max_text_tokens: int,
    batch_size: int = 4096,
    device: str = "cpu",
) -> pd.DataFrame:
    """Predictions for a pandas frame of feature columns + ``campaign_text`` (eval mode, batched)."""
    import torch

    if "campaign_text" not in frame.columns:
        raise KeyError("model input is missing column(s): campaign_text")
    network.eval()
    texts = sorted(frame["campaign_text"].astype(str).unique())
    batcher = TextBatcher.from_texts(tokenizer, texts, max_text_tokens)
    text_ids = frame["campaign_text"].astype(str).map({t: i for i, t in enumerate(texts)}).to_numpy()
    encoded = encoder_state.encode(frame)
    parts = []
    with torch.no_grad(), inference_threads():
        for start in range(0, len(frame), batch_size):
            sl = slice(start, start + batch_size)
            index, ids, mask = batcher.select(torch.as_tensor(text_ids[sl]))
            logit, arms = network(
                torch.as_tensor(encoded["x_num"][sl], device=device),
                torch.as_tensor(encoded["x_cat"][sl], device=device),
                index.to(device), ids.to(device), mask.to(device),
            )
            parts.append(predictions_frame(logit, arms, encoder_state.spend_scale))
    if not parts:
        return predictions_frame(torch.zeros(0), torch.zeros(0, 2, 3), encoder_state.spend_scale)
    return pd.concat(parts, ignore_index=True)


def save_model_dir(path: Path, network: Any, spec: ModelSpec, encoder_state: FeatureEncoder, tokenizer: Any) -> Path:
    """Weights + spec + feature encoder + tokenizer: everything scoring needs, in one directory."""
    import torch

    path.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path / "weights.pt")
    (path / "model_spec.json").write_text(json.dumps(spec.to_dict(), indent=1))
    (path / "feature_encoder.json").write_text(encoder_state.to_json())
    tokenizer.save_pretrained(str(path / "tokenizer"))
    return path


CALIBRATION_FILE = "calibration.json"


def save_calibration(path: Path, calibration: Any) -> Path:
    """The uplift calibration (:class:`promo_roi.causal.calibration.UpliftCalibration`) beside the weights."""
    target = path / CALIBRATION_FILE
    target.write_text(calibration.to_json())
    return target


def load_calibration(path: Path):
    """The model directory's uplift calibration, or None for a model saved without one."""
    from promo_roi.causal.calibration import UpliftCalibration

    target = path / CALIBRATION_FILE
    return UpliftCalibration.from_json(target.read_text()) if target.exists() else None


def load_model_dir(path: Path, device: str = "cpu"):
    """(network in eval mode, FeatureEncoder, tokenizer, ModelSpec) from :func:`save_model_dir`."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    spec = ModelSpec(**json.loads((path / "model_spec.json").read_text()))
    encoder_state = FeatureEncoder.from_json((path / "feature_encoder.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(path / "tokenizer"), local_files_only=True)
    # The architecture from the pretrained config; every weight comes from weights.pt.
    encoder_path = spec.encoder_path or default_encoder_path()
    encoder_config = AutoConfig.from_pretrained(encoder_path, local_files_only=True)

    def text_encoder():
        base = AutoModel.from_config(encoder_config)
        if spec.finetune == "adapters":
            insert_adapters(base, spec)
        return base

    if spec.reads_text:
        encoders = [text_encoder() for _ in range(spec.ensemble_size)]
        network = build_network(spec, encoder=encoders if spec.ensemble_size > 1 else encoders[0])
    else:
        network = build_network(spec)
    network.load_state_dict(torch.load(path / "weights.pt", map_location=device, weights_only=True))
    network.to(device).eval()
    return network, encoder_state, tokenizer, spec
