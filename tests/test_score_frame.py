"""Scoring's pass over a batch (lib/promo_roi/scoring/predict.py): the first layer's constant part computed once per
distinct (categories, campaign) row, then the network per chunk of pairs.

Pure torch and pandas on tiny inline data. The expected values come from the network's own training-time path
(``forward_encoded``: embeddings and text vector concatenated with the numeric features on every row) and from
the pyfunc's ``predict``, or are worked out by hand.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from promo_roi.scoring.predict import distinct_rows, score_frame, shared_dropout
from promo_roi.training.model import FeatureEncoder, ModelSpec, anchor_for

NUMERIC = ["pre_spend", "pre_coupon_product_spend", "pre_observed_share", "visits"]
ENCODER = FeatureEncoder(NUMERIC, ["campaign_type", "income"], [3.0, 1.0, 0.5, 0.0], [2.0, 1.5, 0.2, 1.0],
                         {"campaign_type": ["TypeA", "TypeB"], "income": ["high", "low"]},
                         {"coupon_product_spend": 10.0, "spend": 100.0})
TEXTS = {1: "type a campaign.", 2: "type b campaign, 3 categories.", 3: "another campaign text."}
CAMPAIGN_TYPES = {1: "TypeA", 2: "TypeB", 3: "TypeA"}


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` (household, campaign) pairs: 3 campaigns, 3 income levels (one unseen in training)."""
    rng = np.random.default_rng(seed)
    campaign = rng.integers(1, 4, n)
    return pd.DataFrame({
        "household_id": np.arange(n, dtype=np.int64), "campaign_id": campaign.astype(np.int64),
        "pre_spend": rng.gamma(2.0, 100.0, n), "pre_coupon_product_spend": rng.gamma(1.0, 5.0, n),
        "pre_observed_share": rng.uniform(0.1, 1.0, n), "visits": rng.poisson(3.0, n).astype(float),
        "campaign_type": [CAMPAIGN_TYPES[c] for c in campaign],
        "income": rng.choice(["high", "low", "middle"], n),
        "campaign_text": [TEXTS[c] for c in campaign],
        "history_text": rng.choice(["bought in the last 26 weeks: beef 60%, cheese 40%.",
                                    "no purchases in the last 26 weeks."], n),
    })


def _spec(head: str, size: int = 1, text_input: str = "campaign") -> ModelSpec:
    anchor = anchor_for(ENCODER, 0.1) if head == "anchored" else None
    return ModelSpec(n_numeric=ENCODER.reading(text_input).width, cardinalities=ENCODER.cardinalities(), hidden_dim=8,
                     dropout=0.3,
                     finetune="frozen", effect_head=head, anchor=anchor, ensemble_size=size, text_input=text_input)


def _network(spec: ModelSpec, seed: int):
    import torch

    from promo_roi.training.model import build_network

    torch.manual_seed(seed)
    network = build_network(spec)
    for p in network.parameters():  # away from the initialisation (the effect head starts at 0)
        torch.nn.init.normal_(p, std=0.3)
    return network.eval()


def test_distinct_rows_by_hand():
    columns = np.array([[1, 0], [0, 2], [1, 0], [0, 2], [3, 1], [0, 0]])
    first, row_of = distinct_rows(columns)
    # Sorted keys: (0, 0), (0, 2), (1, 0), (3, 1); first seen at rows 5, 1, 0, 4.
    assert first.tolist() == [5, 1, 0, 4]
    assert row_of.tolist() == [2, 1, 2, 1, 3, 0]
    assert (columns[first][row_of] == columns).all()
    # Too many combinations for one integer key: the same answer by rows.
    wide = np.array([[2 ** 40, 0], [0, 2 ** 40], [2 ** 40, 0]])
    first, row_of = distinct_rows(wide)
    assert first.tolist() == [1, 0] and row_of.tolist() == [1, 0, 1]
    first, row_of = distinct_rows(np.zeros((0, 3), dtype=np.int64))
    assert len(first) == 0 and len(row_of) == 0


@pytest.mark.parametrize("head,size,text_input", [("two_arms", 1, "campaign"), ("anchored", 1, "campaign"),
                                                   ("two_arms", 2, "campaign"), ("anchored", 2, "none")])
def test_the_first_layers_constants_give_what_the_whole_layer_gives(tokenizer, head, size, text_input):
    """``forward_constants`` on each row's ``row_constants`` is ``forward_encoded``, with dropout off and under
    the same shared dropout masks; only float rounding may differ."""
    import torch

    from promo_roi.training.text_encoder import tokenize_texts

    network = _network(_spec(head, size, text_input), seed=11)
    frame = _frame(40)
    encoded = ENCODER.encode(frame)
    x_num, x_cat = torch.from_numpy(encoded["x_num"]), torch.from_numpy(encoded["x_cat"])
    text_index = torch.from_numpy(frame["campaign_id"].to_numpy() - 1)
    tok = tokenize_texts(tokenizer, [TEXTS[c] for c in (1, 2, 3)], 16)
    with torch.no_grad():
        vectors = network.encode_texts(tok["input_ids"], tok["attention_mask"])
        constants = network.row_constants(x_cat, vectors, text_index)
        assert constants.shape == (40, 8 * size)
        for draw in (None, 0, 1):
            with shared_dropout(network, draw) if draw is not None else torch.no_grad():
                whole = network.forward_encoded(x_num, x_cat, vectors, text_index)
            with shared_dropout(network, draw) if draw is not None else torch.no_grad():
                split = network.forward_constants(x_num, constants)
            for a, b in zip(whole, split):
                np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text_input", ["campaign", "none", "campaign_and_history"])
def test_score_frame_predicts_what_the_pyfunc_predicts_in_chunks_of_any_size(tokenizer, tmp_path, text_input):
    """The registered model's ``predict`` (every row through the whole network, its texts re-encoded) and
    ``score_frame`` (distinct rows' constants, chunks of 7 or of the default size) agree, for a network that
    reads the campaign text, one that reads none and one that also reads the households' purchase histories
    (their vectors among the numeric inputs, outside the constants)."""
    from promo_roi.training.model import save_model_dir
    from promo_roi.training.registry import HouseholdResponseModel

    spec = _spec("two_arms", 2, text_input)
    model_dir = save_model_dir(tmp_path / "model", _network(spec, seed=5), spec, ENCODER.reading(text_input),
                               tokenizer)
    inner = HouseholdResponseModel()
    inner.load_context(types.SimpleNamespace(artifacts={"model_dir": str(model_dir)}))
    frame = _frame(50, seed=2)
    expected = inner.predict(None, frame)
    default, small = score_frame(inner, frame, 0), score_frame(inner, frame, 3, chunk_rows=7)
    assert default["household_id"].tolist() == frame["household_id"].tolist()
    for column in ("propensity", "p_redeem_t0", "p_redeem_t1", "spend_t0", "spend_t1", "uplift_spend",
                   "uplift_coupon_product_spend"):
        np.testing.assert_allclose(default[column], expected[column], rtol=1e-4, atol=1e-4, err_msg=column)
        np.testing.assert_allclose(small[column], default[column], rtol=1e-5, atol=1e-5, err_msg=column)
    # Three shared-mask draws per row, a draw being one network for every row: not the point predictions.
    draws = np.stack(small["mc_uplift_spend"].to_numpy())
    assert draws.shape == (50, 3) and not np.allclose(draws[:, 0], small["uplift_spend"])
    assert len(default["mc_uplift_spend"].iloc[0]) == 0
