"""The seed ensemble (lib/promo_roi/training/ensemble.py): members trained from their own seeds, averaged on the
heads' scale, saved and loaded as one network, and their disagreement reported.

Pure torch and pandas on tiny inline data; the expected values come from the members run one by one and
averaged here, or are worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from promo_roi.training.ensemble import member_prefix, member_seed
from promo_roi.training.model import FeatureEncoder, ModelSpec

NUMERIC = ["pre_spend", "visits"]
ENCODER = FeatureEncoder(NUMERIC, ["campaign_type"], [3.0, 1.0], [2.0, 1.0], {"campaign_type": ["TypeA", "TypeB"]},
                         {"coupon_product_spend": 10.0, "spend": 100.0})
FRAME = pd.DataFrame({
    "pre_spend": [200.0, 50.0, 0.0, 12.5], "visits": [3.0, 1.0, 0.0, 7.0],
    "campaign_type": ["TypeA", "TypeB", "TypeA", "TypeB"],
    "campaign_text": ["type a campaign.", "type b campaign, 3 categories.", "type a campaign.", "another text."],
})


def _spec(size: int) -> ModelSpec:
    return ModelSpec(n_numeric=len(NUMERIC), cardinalities=ENCODER.cardinalities(), hidden_dim=8, dropout=0.0,
                     finetune="frozen", ensemble_size=size)


def test_every_member_trains_from_its_own_seed_and_the_first_from_the_configured_one():
    seeds = [member_seed(7, k) for k in range(3)]
    assert seeds == [7, 100_010, 200_013]
    # A member's ranks (+ rank) and resumed epochs (+ 1000 * epoch) never reach another member's seed.
    assert all(b - a > 1000 * 100 for a, b in zip(seeds, seeds[1:]))
    with pytest.raises(ValueError, match="member must be >= 0"):
        member_seed(7, -1)
    assert member_prefix(0, 1) == "" and [member_prefix(k, 3) for k in range(3)] == [
        "member_1/", "member_2/", "member_3/"]


def test_a_spec_saved_before_the_ensemble_loads_as_one_network_and_a_size_below_one_is_refused():
    saved = _spec(1).to_dict()
    del saved["ensemble_size"]
    assert ModelSpec(**saved).ensemble_size == 1
    with pytest.raises(ValueError, match="ensemble_size must be an integer >= 1, got 0"):
        _spec(0)
    assert _spec(3).member() == _spec(1)


def _single_predictions(state: dict, tokenizer) -> pd.DataFrame:
    """One member alone: a single network given the member's weights."""
    from promo_roi.training.model import build_network, predict_frame

    net = build_network(_spec(1))
    net.load_state_dict(state)
    return predict_frame(net, ENCODER, tokenizer, FRAME, max_text_tokens=16)


def test_the_ensemble_averages_its_members_on_the_heads_scale(tokenizer):
    """Propensity logits and log expected spends are averaged: the ensemble's propensity is the sigmoid of the
    members' mean logit, its expected spend the geometric mean of theirs, its uplift their difference."""
    import torch

    from promo_roi.training.model import build_network, predict_frame

    torch.manual_seed(3)
    ensemble = build_network(_spec(2))
    for p in ensemble.parameters():  # away from the default initialisation, so the members differ
        torch.nn.init.normal_(p, std=0.3)
    states = [member.state_dict() for member in ensemble.members]
    one, two = (_single_predictions(s, tokenizer) for s in states)
    assert not np.allclose(one["uplift_coupon_product_spend"], two["uplift_coupon_product_spend"])

    both = predict_frame(ensemble, ENCODER, tokenizer, FRAME, max_text_tokens=16)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(both["propensity"], 1 / (1 + np.exp(-(logit(one["propensity"]) + logit(two["propensity"])) / 2)),
                               rtol=1e-5)
    for arm in ("t0", "t1"):
        for outcome in ("coupon_product_spend", "spend"):
            column = f"{outcome}_{arm}"
            np.testing.assert_allclose(both[column], np.sqrt(one[column] * two[column]), rtol=1e-5)
    np.testing.assert_allclose(both["uplift_spend"], both["spend_t1"] - both["spend_t0"], rtol=1e-5, atol=1e-4)


def test_an_ensemble_saved_and_loaded_predicts_what_it_predicted(tokenizer, tmp_path):
    import torch

    from promo_roi.training.model import build_network, load_model_dir, predict_frame, save_model_dir

    torch.manual_seed(5)
    ensemble = build_network(_spec(3))
    for p in ensemble.parameters():
        torch.nn.init.normal_(p, std=0.2)
    before = predict_frame(ensemble, ENCODER, tokenizer, FRAME, max_text_tokens=16)
    model_dir = save_model_dir(tmp_path / "model", ensemble, _spec(3), ENCODER, tokenizer)
    network, encoder, loaded_tokenizer, spec = load_model_dir(model_dir)
    assert spec.ensemble_size == 3 and len(network.members) == 3
    after = predict_frame(network, encoder, loaded_tokenizer, FRAME, max_text_tokens=spec.max_text_tokens)
    pd.testing.assert_frame_equal(after, before)


def test_the_ensemble_rows_report_how_far_the_members_disagree():
    """Two members' coupon-product uplift on four rows; the standard deviations worked out by hand."""
    from promo_roi.causal import metrics
    from promo_roi.training import evaluate

    class Phi:
        def phi(self, frame, outcome):
            assert outcome == "coupon_product_spend"
            return np.array([4.0, -1.0, 2.0, 0.0])

    frame = pd.DataFrame({"campaign_id": [1, 1, 2, 2]})
    members = [pd.DataFrame({"uplift_coupon_product_spend": u}) for u in ([1.0, 0.0, 3.0, 2.0], [3.0, 0.0, 1.0, 2.0])]
    ensemble = pd.DataFrame({"uplift_coupon_product_spend": [2.0, 0.0, 2.0, -2.0]})
    rows = evaluate.ensemble_rows(members, ensemble, frame, Phi(), "validation")
    by = {(r["model_name"], r["metric"]): r for r in rows}
    assert {r["scope"] for r in rows} == {"ensemble"} and {r["split"] for r in rows} == {"validation"}
    assert {(r["n_rows"], r["n_campaigns"]) for r in rows} == {(4, 2)}
    phi = np.array([4.0, -1.0, 2.0, 0.0])
    q1, q2 = (metrics.qini_coefficient(m["uplift_coupon_product_spend"].to_numpy(), phi) for m in members)
    assert by[("transformer_member_1", "qini")]["value"] == pytest.approx(q1)
    assert by[("transformer_member_2", "qini")]["value"] == pytest.approx(q2)
    assert by[("transformer", "member_qini_sd")]["value"] == pytest.approx(abs(q1 - q2) / math.sqrt(2))
    # Per row the two members differ by 2, 0, 2, 0: sample sds sqrt(2), 0, sqrt(2), 0.
    assert by[("transformer", "member_uplift_sd")]["value"] == pytest.approx(math.sqrt(2) / 2)
    assert by[("transformer", "mean_abs_uplift")]["value"] == pytest.approx(1.5)
    assert by[("transformer", "members")]["value"] == 2.0
