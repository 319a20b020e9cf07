"""Inference with the champion: one model load per Python worker, batched; small nights on the driver.

``mapInPandas`` hands each task an iterator of Arrow batches; the pyfunc is
loaded once per worker process (cached by model URI; Spark reuses Python
workers between tasks) and each batch is scored in one pass. Each distinct
campaign text goes through the transformer once per worker (cached on the
model); every pair then costs only the small network after it. A night of
at most ``scoring.driver_max_pairs`` pairs is scored by the same function in
the driver (:func:`score_on_driver`), which holds the champion already.

Uncertainty is Monte Carlo dropout with *shared masks*: draw k fixes one
dropout mask per layer (seeded by k) for every row on every worker, so draw k
is one coherent alternative network and summing its predictions over a
campaign's households gives one draw of the campaign's totals. (Independent
masks per row would average out over thousands of households and report an
interval that is far too narrow.) It measures the model's uncertainty only,
not the residual selection the placebo shows (docs/tables.md). The draws perturb the
layers after the text encoder (the cached text vectors are the point ones).
They are off by default (``scoring.mc_dropout_samples: 0``): the forecast's
interval comes from the calibration's bootstrap, which is the larger
uncertainty (:mod:`promo_roi.causal.calibration`).

Where the champion's calibration values households by pre-period spend (the
network did not rank the validation campaigns better), the spend uplift
columns hold that score instead (:func:`valued_by`).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import numpy as np
import pandas as pd


_MODELS: dict[str, Any] = {}

PREDICTION_COLUMNS = (
    "p_redeem_t1", "p_redeem_t0", "coupon_product_spend_t1", "coupon_product_spend_t0", "spend_t1", "spend_t0",
    "uplift_redeem", "uplift_coupon_product_spend", "uplift_spend", "propensity",
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
        from promo_roi.mlflow_io import MlflowStore

        _MODELS[model_uri] = MlflowStore(tracking_uri).load_model(model_uri).unwrap_python_model()
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


def text_vectors(inner: Any, texts: list[str]):
    """The network's text vectors for ``texts``, each encoded once per worker and cached on the model.

    A night scores every household for a dozen campaigns: the transformer runs
    a dozen times, not once per (household, campaign) pair, and not again for
    each Monte Carlo draw (the draws perturb the layers after the text).
    """
    import torch

    from promo_roi.training.model import inference_threads
    from promo_roi.training.text_encoder import tokenize_texts

    cache = inner.__dict__.setdefault("_text_vectors", {})
    missing = [t for t in texts if t not in cache]
    if missing:
        inner.network.eval()
        with torch.no_grad(), inference_threads():
            # One text per forward pass: texts encoded together are padded to the longest, and the padding
            # changes a text's vector in the last float32 digits, so a vector would depend on which texts this
            # process happened to encode with it (the driver and an executor scored the same pair differently).
            for text in missing:
                tok = tokenize_texts(inner.tokenizer, [text], inner.spec.max_text_tokens)
                cache[text] = inner.network.encode_texts(tok["input_ids"], tok["attention_mask"])[0]
    return torch.stack([cache[t] for t in texts])


# Pairs per pass of the network: a chunk's activations (pairs x hidden_dim floats per layer and member) stay in
# the core's cache; 65,536-pair chunks spilled them to memory (benchmarks/bench_scoring.py times both).
CHUNK_ROWS = 4096


def distinct_rows(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the index of each distinct row's first occurrence, each row's index among the distinct rows) of a
    non-negative integer matrix ``columns`` [rows, k], in the order of the distinct rows' sorted keys."""
    if len(columns) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    radices = [int(c) + 1 for c in columns.max(axis=0)]
    if math.prod(radices) < 2 ** 62:
        key = np.zeros(len(columns), dtype=np.int64)
        for j, radix in enumerate(radices):
            key = key * radix + columns[:, j]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # too many combinations for one integer key
        _, first, inverse = np.unique(columns, axis=0, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)


def score_frame(inner: Any, frame: pd.DataFrame, mc_samples: int, chunk_rows: int = CHUNK_ROWS) -> pd.DataFrame:
    """Point predictions (dropout off) and ``mc_samples`` shared-mask dropout draws for one batch.

    The first layer's part that the numeric features do not enter (categories and campaign text) is computed
    once per distinct (categories, campaign) row, not once per pair (``row_constants``).
    """
    import torch

    from promo_roi.training.model import OUTCOMES, inference_threads, predictions_frame

    # A campaign has one text: factorising its id is much cheaper than hashing every row's text.
    codes, _ = pd.factorize(frame["campaign_id"].to_numpy(), sort=True)
    first_row = np.unique(codes, return_index=True)[1]
    texts = [str(t) for t in frame["campaign_text"].to_numpy()[first_row]]
    vectors = text_vectors(inner, texts)
    encoded = inner.feature_encoder.encode(frame)
    x_num = torch.from_numpy(encoded["x_num"])
    distinct, row_of = distinct_rows(np.column_stack([encoded["x_cat"], codes.astype(np.int64)]))
    row_of = torch.from_numpy(row_of)
    network, scale = inner.network, inner.feature_encoder.spend_scale
    network.eval()
    with torch.no_grad(), inference_threads():
        constants = network.row_constants(torch.from_numpy(encoded["x_cat"][distinct]), vectors,
                                          torch.from_numpy(codes[distinct].astype(np.int64)))

    def run() -> pd.DataFrame:
        logits, arms = [], []
        with torch.no_grad(), inference_threads():
            for start in range(0, len(frame), chunk_rows):
                sl = slice(start, start + chunk_rows)
                # index_select, not constants[...]: the same rows, a third faster.
                logit, arm = network.forward_constants(x_num[sl], torch.index_select(constants, 0, row_of[sl]))
                logits.append(logit)
                arms.append(arm)
        if not logits:
            return predictions_frame(torch.zeros(0), torch.zeros((0, 2, len(OUTCOMES))), scale)
        return predictions_frame(torch.cat(logits), torch.cat(arms), scale)

    point = run()
    draws = []
    for k in range(mc_samples):
        with shared_dropout(network, k):
            draws.append(run())
    point, draws = valued_by(_value_score(inner), frame, point, draws)
    columns = {"household_id": frame["household_id"].to_numpy(dtype=np.int64),
               "campaign_id": frame["campaign_id"].to_numpy(dtype=np.int64)}
    for c in PREDICTION_COLUMNS:
        columns[c] = point[c].to_numpy(dtype=float)
    empty = np.zeros(0)
    for name, column in (("mc_uplift_spend", "uplift_spend"),
                         ("mc_uplift_coupon_product_spend", "uplift_coupon_product_spend"),
                         ("mc_p_redeem", "p_redeem_t1")):
        columns[name] = (list(np.stack([d[column].to_numpy(dtype=float) for d in draws], axis=1)) if draws
                         else [empty] * len(frame))
    return pd.DataFrame(columns)


def _value_score(inner: Any) -> str:
    """The score the champion's calibration values households by (the network's for a model without one)."""
    from promo_roi.causal.calibration import NETWORK_SCORE

    return getattr(getattr(inner, "calibration", None), "value_score", NETWORK_SCORE)


def valued_by(value_score: str, frame: pd.DataFrame, point: pd.DataFrame,
              draws: list[pd.DataFrame]) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The network's predictions with the spend uplifts replaced by the score households are valued by.

    Where the network did not rank better than pre-period spend on the validation campaigns, its calibration's
    spend lines were fitted on that score (:mod:`promo_roi.causal.calibration`), so the uplift columns the
    forecast and the plan calibrate hold it: the heuristic has no dropout, every draw gets the same score.
    Redemption probabilities and the arms stay the network's.
    """
    from promo_roi.causal.calibration import NETWORK_SCORE, PRE_SPEND_SCORE
    from promo_roi.heuristic import pre_spend_score

    if value_score == NETWORK_SCORE:
        return point, draws
    if value_score != PRE_SPEND_SCORE:
        raise ValueError(f"unknown value score {value_score!r}")
    score = pre_spend_score(frame)

    def replaced(predictions: pd.DataFrame) -> pd.DataFrame:
        return predictions.assign(uplift_spend=score, uplift_coupon_product_spend=score)

    return replaced(point), [replaced(d) for d in draws]


def score_on_driver(examples: Any, model_uri: str, tracking_uri: str, mc_samples: int) -> Any:
    """What :func:`scorer` gives for ``examples`` (a DataFrame), computed in the driver process.

    For a night small enough to collect (``scoring.driver_max_pairs``): the
    driver loaded the champion already to read its calibration, while each
    executor Python worker would import torch and transformers and load it
    again (~6 s per worker) for a network that scores ~290k pairs/s per core
    on an idle machine (BENCHMARKS.md, "Scoring"). The same ``score_frame`` on the same rows
    gives the same numbers either way (tests/test_scoring.py).
    """
    import pyarrow as pa

    spark = examples.sparkSession
    frame = examples.toArrow().to_pandas()
    if frame.empty:
        return spark.createDataFrame([], SCORE_SCHEMA)
    scores = score_frame(load_champion(model_uri, tracking_uri), frame, mc_samples)
    return spark.createDataFrame(pa.Table.from_pandas(scores, preserve_index=False), SCORE_SCHEMA)


def scorer(model_uri: str, tracking_uri: str, mc_samples: int, threads: int = 1):
    """The mapInPandas function: loads the champion once per worker, scores each batch."""

    def _score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import torch

        # One thread per Python worker: Spark already runs one task per core.
        torch.set_num_threads(threads)
        inner = load_champion(model_uri, tracking_uri)
        for frame in batches:
            if len(frame):
                yield score_frame(inner, frame, mc_samples)

    return _score
