"""What text the household-response network reads (``ModelSpec.text_input``, ``training.text_input``): the
campaign's offer text through MiniLM, or none at all, the ablation that measures what the transformer adds.

Pure torch and pandas on tiny inline data. The expected values are the network's own outputs on frames that
differ in one column only, or facts about its parameters.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from promo_roi.training.model import FeatureEncoder, ModelSpec

NUMERIC = ["pre_spend", "visits"]
ENCODER = FeatureEncoder(NUMERIC, ["campaign_type"], [3.0, 1.0], [2.0, 1.0], {"campaign_type": ["TypeA", "TypeB"]},
                         {"coupon_product_spend": 10.0, "spend": 100.0})
FRAME = pd.DataFrame({
    "pre_spend": [200.0, 50.0, 0.0, 12.5], "visits": [3.0, 1.0, 0.0, 7.0],
    "campaign_type": ["TypeA", "TypeB", "TypeA", "TypeB"],
    "campaign_text": ["type a campaign.", "type b campaign, 3 categories.", "type a campaign.", "another text."],
})
# The same rows offered other campaign texts.
OTHER_TEXTS = FRAME.assign(campaign_text=["frozen dinners and ice cream.", "soft drinks.", "cheese.", "beef."])


def _spec(text_input: str, size: int = 1) -> ModelSpec:
    return ModelSpec(n_numeric=len(NUMERIC), cardinalities=ENCODER.cardinalities(), hidden_dim=8, dropout=0.0,
                     finetune="frozen", ensemble_size=size, text_input=text_input)


def _network(spec: ModelSpec, seed: int):
    import torch

    from promo_roi.training.model import build_network

    torch.manual_seed(seed)
    network = build_network(spec)
    for p in network.parameters():  # away from the initialisation, so that every input carries weight
        torch.nn.init.normal_(p, std=0.3)
    return network.eval()


def test_a_spec_saved_before_the_ablation_reads_the_campaign_text_and_an_unknown_input_is_refused():
    saved = _spec("campaign").to_dict()
    del saved["text_input"]
    spec = ModelSpec(**saved)
    assert (spec.text_input, spec.reads_text, spec.text_width) == ("campaign", True, 64)
    assert (_spec("none").reads_text, _spec("none").text_width) == (False, 0)
    with pytest.raises(ValueError, match="text_input must be one of campaign, campaign_and_history, none, got 'household'"):
        _spec("household")


def test_a_network_that_reads_no_text_has_no_encoder_and_is_blind_to_the_campaign_text(tokenizer):
    """The same rows offered other texts: the campaign-text network's predictions move, the other's do not.
    Without text the first layer is narrower by the projection's 64 values and MiniLM is not there at all."""
    from promo_roi.training.model import predict_frame

    reading, blind = _network(_spec("campaign"), seed=1), _network(_spec("none"), seed=1)
    moved = predict_frame(reading, ENCODER, tokenizer, OTHER_TEXTS, max_text_tokens=16)
    assert not np.allclose(moved["uplift_spend"], predict_frame(reading, ENCODER, tokenizer, FRAME, 16)["uplift_spend"])
    pd.testing.assert_frame_equal(predict_frame(blind, ENCODER, tokenizer, OTHER_TEXTS, max_text_tokens=16),
                                  predict_frame(blind, ENCODER, tokenizer, FRAME, max_text_tokens=16))

    assert blind.encoder is None and blind.text_proj is None
    assert not any(name.startswith(("encoder.", "text_proj.")) for name, _ in blind.named_parameters())
    # Inputs of the first layer: 2 numeric + an embedding of 2 for the 3 campaign-type codes, + 64 with text.
    assert (blind.representation[0].in_features, reading.representation[0].in_features) == (4, 68)


def test_an_ensemble_that_reads_no_text_is_saved_and_loaded_without_minilm(tokenizer, tmp_path):
    import torch

    from promo_roi.training.model import load_model_dir, predict_frame, save_model_dir

    ensemble = _network(_spec("none", size=2), seed=4)
    before = predict_frame(ensemble, ENCODER, tokenizer, FRAME, max_text_tokens=16)
    model_dir = save_model_dir(tmp_path / "model", ensemble, _spec("none", size=2), ENCODER, tokenizer)
    weights = torch.load(model_dir / "weights.pt", weights_only=True)
    assert weights and not [k for k in weights if ".encoder." in k or ".text_proj." in k]
    network, encoder, loaded_tokenizer, spec = load_model_dir(model_dir)
    assert spec == _spec("none", size=2) and len(network.members) == 2
    assert all(member.encoder is None for member in network.members)
    after = predict_frame(network, encoder, loaded_tokenizer, FRAME, max_text_tokens=spec.max_text_tokens)
    pd.testing.assert_frame_equal(after, before)
    # Each member alone, averaged on the heads' scale, is the ensemble (its split of the empty text vectors).
    singles = []
    for member in network.members:
        single = _network(dataclasses.replace(spec, ensemble_size=1), seed=0)
        single.load_state_dict(member.state_dict())
        singles.append(predict_frame(single, encoder, loaded_tokenizer, FRAME, max_text_tokens=16))
    np.testing.assert_allclose(after["spend_t1"], np.sqrt(singles[0]["spend_t1"] * singles[1]["spend_t1"]), rtol=1e-5)
