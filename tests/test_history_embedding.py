"""The household's purchase history as the network reads it (training/history_embedding.py and
FeatureEncoder.reading): the frozen encoder's mean-pooled vector, each distinct text embedded once, appended to
the numeric inputs of a network with ``text_input: campaign_and_history`` and of no other."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from promo_roi.training import history_embedding
from promo_roi.training.history_embedding import HISTORY_DIM, embed_text, history_vectors
from promo_roi.training.model import FeatureEncoder

TEXTS = ["bought in the last 26 weeks: soft drinks 50%, beef 25%.", "no purchases in the last 26 weeks."]


def _encoder() -> FeatureEncoder:
    return FeatureEncoder(["visits"], ["campaign_type"], [0.0], [1.0], {"campaign_type": ["TypeA"]},
                          {"coupon_product_spend": 10.0, "spend": 100.0})


def _frame(histories: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"visits": [1.0] * len(histories), "campaign_type": ["TypeA"] * len(histories),
                         "history_text": histories})


def test_a_texts_vector_is_the_pretrained_encoders_mean_over_its_tokens():
    """Worked out here with transformers directly: the last hidden state of the pretrained MiniLM, averaged over
    the text's word pieces ([CLS] and [SEP] included, no padding)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from promo_roi.training.text_encoder import default_encoder_path

    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path(), local_files_only=True)
    model = AutoModel.from_pretrained(default_encoder_path(), local_files_only=True).eval()
    with torch.no_grad():
        tokens = tokenizer(TEXTS[0], return_tensors="pt")
        expected = model(**tokens).last_hidden_state[0].mean(0).numpy()
    got = embed_text(TEXTS[0])
    assert got.shape == (HISTORY_DIM,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_each_distinct_text_is_embedded_once_and_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(history_embedding, "_VECTORS", {})
    monkeypatch.setattr(history_embedding, "embed_text",
                        lambda text, path=None: calls.append(text) or np.full(HISTORY_DIM, len(calls), np.float32))
    rows = pd.Series([TEXTS[1], TEXTS[0], TEXTS[1], TEXTS[1]])
    vectors = history_vectors(rows)
    assert calls == [TEXTS[1], TEXTS[0]]
    np.testing.assert_array_equal(vectors[:, 0], [1.0, 2.0, 1.0, 1.0])
    again = history_vectors(pd.Series([TEXTS[0]]))
    assert calls == [TEXTS[1], TEXTS[0]] and again[0, 0] == 2.0  # kept: not embedded again
    with pytest.raises(ValueError, match="missing values"):
        history_vectors(pd.Series([TEXTS[0], None]))


def test_a_network_reading_histories_gets_their_vectors_after_the_numeric_features():
    plain = _encoder()
    reading = plain.reading("campaign_and_history")
    assert (plain.width, reading.width) == (1, 1 + HISTORY_DIM)
    assert reading.input_columns == ["visits", "campaign_type", "history_text"]
    assert plain.reading("campaign") == plain and reading.reading("none") == plain
    frame = _frame([TEXTS[0], TEXTS[1], TEXTS[0]])
    x_plain, x_reading = plain.encode(frame)["x_num"], reading.encode(frame)["x_num"]
    np.testing.assert_array_equal(x_reading[:, :1], x_plain)
    np.testing.assert_array_equal(x_reading[:, 1:], np.stack([embed_text(t) for t in frame["history_text"]]))
    with pytest.raises(KeyError, match="history_text"):
        reading.encode(frame.drop(columns="history_text"))
    # Saved and loaded with the model; an encoder saved before histories loads as one that reads none.
    assert FeatureEncoder.from_json(reading.to_json()) == reading
    older = {k: v for k, v in asdict(plain).items() if not k.startswith("history_")}
    assert FeatureEncoder.from_json(json.dumps(older)) == plain


def test_the_network_trains_on_them_and_its_predictions_follow_the_history(tmp_path, monkeypatch, tokenizer):
    """One DDP rank, one epoch, on rows whose numeric inputs carry the history vectors: the trained network's
    predictions for the same household and campaign differ with the history text it reads."""
    import torch

    from conftest import join_as_single_rank
    from promo_roi.training.distributed import ArrayBatches, WorkerParams, train_worker
    from promo_roi.training.model import ModelSpec, build_network, predict_frame

    encoder = _encoder().reading("campaign_and_history")
    rng = np.random.default_rng(3)
    n = 256
    frame = _frame([TEXTS[k % 2] for k in range(n)]).assign(visits=rng.poisson(3.0, n).astype(float),
                                                            campaign_text="type a campaign.")
    encoded = encoder.encode(frame)
    spend = rng.gamma(2.0, 50.0, n) * np.where(np.arange(n) % 2 == 0, 2.0, 1.0)  # the first text's buy more
    arrays = {"x_num": encoded["x_num"], "x_cat": encoded["x_cat"], "text_id": np.zeros(n, np.int32),
              "targeted": (rng.random(n) < 0.3).astype(np.float32),
              "outcomes": np.column_stack([np.zeros(n), spend / 10.0 / spend.mean(), spend / spend.mean()])
              .astype(np.float32)}
    spec = ModelSpec(n_numeric=encoder.width, cardinalities=encoder.cardinalities(), hidden_dim=16, dropout=0.0,
                     finetune="frozen", text_input="campaign_and_history")
    assert spec.reads_text and spec.reads_history
    join_as_single_rank(monkeypatch)
    train_worker(WorkerParams(
        model_spec=spec.to_dict(), texts=["type a campaign."], n_train_rows=n, batch_size=64, epochs=1,
        learning_rate=3e-3, encoder_learning_rate=0.0, weight_decay=0.0, propensity_weight=1.0, effect_penalty=0.1,
        seed=5, use_gpu=False, checkpoint_path=str(tmp_path / "last.pt"), final_weights_path=str(tmp_path / "final.pt"),
        batch_source=ArrayBatches(arrays)))
    network = build_network(spec)
    network.load_state_dict(torch.load(tmp_path / "final.pt", weights_only=True))
    out = predict_frame(network, encoder, tokenizer, frame.head(2), max_text_tokens=16)
    assert np.isfinite(out.to_numpy()).all()
    assert out["spend_t0"][0] != out["spend_t0"][1]  # same household features and campaign, other history
