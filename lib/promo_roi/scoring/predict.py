"""Distributed inference with the champion: one model load per Python worker, batched.

``mapInPandas`` hands each task an iterator of Arrow batches; the pyfunc is
loaded once per worker process (cached by model URI; Spark reuses Python
workers between tasks) and each batch is scored in one pass, with every
distinct campaign text encoded once.

Uncertainty is Monte Carlo dropout with *shared masks*: draw k fixes one
dropout mask per layer (seeded by k) for every row on every worker, so draw k
is one coherent alternative network and summing its predictions over a
campaign's households gives one draw of the campaign's totals. (Independent
masks per row would average out over thousands of households and report an
interval that is far too narrow.) It measures the model's uncertainty only,
not the residual selection the placebo shows (README).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import pandas as pd

from promo_roi.tables import CATEGORICAL_COLUMNS

_MODELS: dict[str, Any] = {}

PREDICTION_COLUMNS = (
    "p_redeem_t1", "p_redeem_t0", "coupon_product_spend_t1", "coupon_product_spend_t0", "spend_t1", "spend_t0",
    "uplift_redeem", "uplift_coupon_product_spend", "uplift_spend",
)
SCORE_SCHEMA = (
    "household_id long, campaign_id long, "
    + ", ".join(f"{c} double" for c in PREDICTION_COLUMNS)
    + ", mc_uplift_spend array<double>, mc_uplift_coupon_product_spend array<double>, mc_p_redeem array<double>"
)


def load_champion(model_uri: str, tracking_uri: str):
    """The pyfunc's inner model (network, feature encoder, tokenizer), loaded once per process.

    ``model_uri`` is the version's artifact location, resolved on the driver (an
    alias could move while the job runs); a worker process knows no tracking
    server of its own, so it is told which one serves the artifacts.
    """
    if model_uri not in _MODELS:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        _MODELS[model_uri] = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    return _MODELS[model_uri]


@contextlib.contextmanager
def shared_dropout(network: Any, draw: int):
    """Within the block, every Dropout drops the same units for every row (draw ``draw``)."""
    import torch

    handles = []
    for index, module in enumerate(m for m in network.modules() if isinstance(m, torch.nn.Dropout)):
        if module.p <= 0:
            continue
        generator = torch.Generator().manual_seed(1_000_003 * (draw + 1) + index)

        def hook(mod, inputs, output, generator=generator, p=module.p, cache={}):
            width = output.shape[-1]
            if width not in cache:
                cache[width] = (torch.rand(width, generator=generator) >= p).to(output.dtype) / (1.0 - p)
            return output * cache[width].to(output.device)

        handles.append(module.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def score_frame(inner: Any, frame: pd.DataFrame, mc_samples: int) -> pd.DataFrame:
    """Point predictions (dropout off) and ``mc_samples`` shared-mask dropout draws for one batch."""
    from promo_roi.training.model import predict_frame

    frame = frame.reset_index(drop=True)
    for c in CATEGORICAL_COLUMNS:
        frame[c] = frame[c].astype("string")
    args = (inner.network, inner.feature_encoder, inner.tokenizer, frame, inner.spec.max_text_tokens)
    point = predict_frame(*args)
    draws = []
    for k in range(mc_samples):
        with shared_dropout(inner.network, k):
            draws.append(predict_frame(*args))
    out = pd.DataFrame({"household_id": frame["household_id"].astype("int64"),
                        "campaign_id": frame["campaign_id"].astype("int64")})
    for c in PREDICTION_COLUMNS:
        out[c] = point[c].to_numpy(dtype=float)
    for name, column in (("mc_uplift_spend", "uplift_spend"),
                         ("mc_uplift_coupon_product_spend", "uplift_coupon_product_spend"),
                         ("mc_p_redeem", "p_redeem_t1")):
        stacked = np.stack([d[column].to_numpy(dtype=float) for d in draws], axis=1) if draws else \
            np.zeros((len(frame), 0))
        out[name] = list(stacked)
    return out


def scorer(model_uri: str, tracking_uri: str, mc_samples: int):
    """The mapInPandas function: loads the champion once per worker, scores each batch."""

    def _score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        inner = load_champion(model_uri, tracking_uri)
        for frame in batches:
            if len(frame):
                yield score_frame(inner, frame, mc_samples)

    return _score
