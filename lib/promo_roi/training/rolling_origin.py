"""A rolling-origin yardstick on the real data: every model judged on many campaigns it never saw.

A training run holds out a few campaigns at the end of the calendar; two
campaigns cannot rank models. Here every fully observed campaign from the
``first_held_out``-th (by start date) on is held out in turn (:func:`folds`):
its models are trained only on campaigns that had ENDED before it started (no
shared period), the last-ended of those choosing the transformer's epoch.

All models are judged against the same yardstick: AIPW pseudo-outcomes from
nuisance models (LightGBM propensity and per-arm outcomes) cross-fitted ONCE
on all fully observed campaigns, with folds by household, independent of
every model compared. Per held-out campaign and pooled (row-weighted mean of
per-campaign values, since scores are not comparable across campaigns), overall
and inside the overlap band:

- tie-averaged Qini and AUUC (:func:`promo_roi.causal.metrics.campaign_uplift_metrics`);
- a placebo Qini: the same model's scores on the campaign moved back by its
  duration (the fake window is the real pre-period, features as of the fake
  start) against that window's pseudo-outcomes; it should be about 0;
- paired differences (two-stage bootstrap, campaigns then households, the same
  draws for every model) against the heuristic, and for the transformer
  against both LightGBM learners (:func:`_references`).

The models of a fold: the transformer, the LightGBM T-learner (two arms,
subtracted), the LightGBM DR-learner (the effect regressed on doubly robust
pseudo-outcomes cross-fitted on the fold's training campaigns alone, never on
the yardstick's) and the heuristic.

An ablation (``ablations``: a label such as ``transformer [text_input=none]``
and the training settings it changes) is a second transformer trained on
each fold's same rows with those settings, compared paired with the
transformer as well as with the heuristic: ``text_input=none`` says what
reading the campaign text adds.

The transformer of a fold is trained with the network, loss, optimiser and
epoch choice of jobs/train.py (:func:`promo_roi.training.distributed.train_worker`),
in this process on in-memory batches: one process instead of DDP ranks, the
same model. Results go to gold.rolling_origin_evaluation (jobs/evaluate.py).
"""

from __future__ import annotations

import dataclasses

import datetime as dt
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from promo_roi.causal import bootstrap, metrics
from promo_roi.config import EvaluationConfig, TrainingConfig
from promo_roi.model_names import DR_LEARNER, HEURISTIC, T_LEARNER, TRANSFORMER
from promo_roi.training import ablation, evaluate
from promo_roi.training.checkpoints import FINAL_WEIGHTS, LAST_CHECKPOINT

log = logging.getLogger(__name__)

SCOPES = ("overall", "overlap")
Predictor = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Fold:
    held_out: int
    start_date: dt.date
    train: tuple[int, ...]  # campaigns that ended before held_out started, but the validation ones
    validation: tuple[int, ...]  # the last-ended of them: they choose the transformer's epoch


def folds(calendar: Sequence[tuple[int, dt.date, dt.date]], first_held_out: int = 6, validation_campaigns: int = 1,
          min_train_campaigns: int = 3) -> list[Fold]:
    """One fold per campaign from the ``first_held_out``-th by (start date, id) on, with at least
    ``min_train_campaigns`` + ``validation_campaigns`` campaigns ended before its start (others are left out)."""
    ordered = sorted(calendar, key=lambda c: (c[1], c[0]))
    out = []
    for position, (campaign_id, start, _end) in enumerate(ordered, start=1):
        if position < first_held_out:
            continue
        ended = [c for c in sorted(ordered, key=lambda c: (c[2], c[0])) if c[2] < start]
        if len(ended) < min_train_campaigns + validation_campaigns:
            log.info("rolling origin: campaign %d left out, only %d campaigns ended before %s", campaign_id,
                     len(ended), start)
            continue
        cut = len(ended) - validation_campaigns
        out.append(Fold(int(campaign_id), start, tuple(int(c[0]) for c in ended[:cut]),
                        tuple(int(c[0]) for c in ended[cut:])))
    return out


@dataclass
class Yardstick:
    """Pseudo-outcomes per outcome and the propensity for a frame, from nuisance fitted once on all of it."""

    phi: dict[str, np.ndarray]
    e: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, encode: Callable, cfg: EvaluationConfig,
            outcomes: Sequence[str] = tuple(evaluate.UPLIFT_OUTCOMES)) -> "Yardstick":
        nuisance = evaluate.fit_nuisance(frame, evaluate.design_matrix(encode(frame)), cfg.nuisance_folds, cfg.seed)
        return cls({o: nuisance.phi(frame, o) for o in outcomes}, nuisance.e)

    def rows(self, index: np.ndarray) -> "Yardstick":
        return Yardstick({o: p[index] for o, p in self.phi.items()}, self.e[index])


def train_transformer(train: pd.DataFrame, validation: pd.DataFrame, encoder, texts: list[str],
                      training: TrainingConfig, encoder_path: str, workdir: Path,
                      evaluation: EvaluationConfig) -> Predictor:
    """The transformer of one fold (jobs/train.py's network and schedule, one process): a predictor. With the
    doubly robust term, its pseudo-outcomes are cross-fitted on the fold's training campaigns alone."""
    import torch
    from transformers import AutoTokenizer

    from promo_roi.training.distributed import ArrayBatches, WorkerParams
    from promo_roi.training.ensemble import member_seed
    from promo_roi.training.model import build_network, predict_frame
    from promo_roi.training.pipeline import encode_arrays, model_spec_for

    text_ids = {t: i for i, t in enumerate(texts)}
    # ``encoder`` reads the features alone (the fold's baselines share it); the network reads what its
    # text_input says.
    network_encoder = encoder.reading(training.text_input, encoder_path)
    spec = model_spec_for(dataclasses.replace(training, encoder_path=encoder_path), network_encoder,
                          network_encoder.width)
    from promo_roi.training.pseudo_outcomes import trained_pseudo_outcomes

    pseudo = trained_pseudo_outcomes(train, encoder, training, evaluation, log)
    arrays = encode_arrays(train, network_encoder, text_ids, pseudo)
    validation_arrays = encode_arrays(validation, network_encoder, text_ids)
    network = build_network(spec)
    # Each member of the ensemble (training.ensemble_size) from its own seed, as jobs/train.py trains them.
    for member, part in enumerate(network.members if spec.ensemble_size > 1 else [network]):
        member_dir = workdir / f"member_{member + 1}"
        params = WorkerParams(
            model_spec=spec.member().to_dict(), texts=texts, n_train_rows=len(train), batch_size=training.batch_size,
            epochs=training.epochs, learning_rate=training.learning_rate,
            encoder_learning_rate=training.encoder_learning_rate, weight_decay=training.weight_decay,
            propensity_weight=training.propensity_weight, effect_penalty=training.effect_penalty,
            pseudo_outcome_weight=training.pseudo_outcome_weight, seed=member_seed(training.seed, member), use_gpu=False,
            checkpoint_path=str(member_dir / LAST_CHECKPOINT), final_weights_path=str(member_dir / FINAL_WEIGHTS),
            batch_source=ArrayBatches(arrays), validation=validation_arrays,
            threads_per_process=os.cpu_count() or 1)
        _train_one_rank(params)
        part.load_state_dict(torch.load(member_dir / FINAL_WEIGHTS, map_location="cpu", weights_only=True))
    tokenizer = AutoTokenizer.from_pretrained(encoder_path, local_files_only=True)
    return lambda frame: predict_frame(network, network_encoder, tokenizer, frame, spec.max_text_tokens)


def _train_one_rank(params) -> None:
    """:func:`promo_roi.training.distributed.train_worker` in this process, as a world of one rank."""
    from promo_roi.training.distributed import train_worker

    # Port 0: a one-rank group's store binds a port of the system's choosing; a port found free and closed
    # again could be taken by another process before the store binds it.
    world = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "0"}
    saved = {k: os.environ.get(k) for k in world}
    os.environ.update(world)
    try:
        train_worker(params)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ablation_label(settings: Sequence[str]) -> str:
    """The model name of the transformer trained with ``settings`` ("key=value" of the training section) changed."""
    return ablation.ablation_label(TRANSFORMER, settings)


def fold_models(examples: pd.DataFrame, fold: Fold, fit_encoder: Callable[[Sequence[int]], Any], texts: list[str],
                training: TrainingConfig, evaluation: EvaluationConfig, encoder_path: str,
                ablations: Mapping[str, TrainingConfig] | None = None) -> dict[str, Predictor]:
    """The models of one fold, each fitted only on the fold's training campaigns; each ablation (label ->
    training settings) a transformer of its own on the same rows."""
    train = examples[examples["campaign_id"].isin(fold.train)].reset_index(drop=True)
    validation = examples[examples["campaign_id"].isin(fold.validation)].reset_index(drop=True)
    encoder = fit_encoder([*fold.train, *fold.validation])
    transformers = {TRANSFORMER: training, **(ablations or {})}
    models: dict[str, Predictor] = {}
    for name, settings in transformers.items():
        with tempfile.TemporaryDirectory(prefix=f"promo_roi_fold_{fold.held_out}_") as workdir:
            models[name] = train_transformer(train, validation, encoder, texts, settings, encoder_path, Path(workdir),
                                             evaluation)
    t_learner = evaluate.TLearnerBaseline(encode=encoder.encode, seed=evaluation.seed).fit(train)
    dr_learner = evaluate.DRLearnerBaseline(encode=encoder.encode, levels=t_learner, folds=evaluation.nuisance_folds,
                                            seed=evaluation.seed).fit(train)
    return {TRANSFORMER: models.pop(TRANSFORMER), T_LEARNER: t_learner, DR_LEARNER: dr_learner,
            HEURISTIC: evaluate.heuristic_predictions, **models}


def _row(model: str, campaign: int | None, outcome: str, scope: str, metric: str, value: float,
         low: float = np.nan, high: float = np.nan, share: float = np.nan, n: int = 0, campaigns: int = 0) -> dict:
    finite = lambda v: None if v is None or not np.isfinite(v) else float(v)  # noqa: E731
    return {"model_name": model, "campaign_id": campaign, "outcome": outcome, "scope": scope, "metric": metric,
            "value": finite(value), "ci_low": finite(low), "ci_high": finite(high), "share_better": finite(share),
            "n_rows": int(n), "n_campaigns": int(campaigns)}


def _references(model: str, models: Mapping) -> list[str]:
    """What ``model`` is compared with on the same resamples: the heuristic for every learned model, both
    learned baselines for the transformer (the production model type, i.e. the champion's), the T-learner for
    the DR-learner (does learning the effect directly beat subtracting two arms?), and the transformer for each
    ablation of it (:func:`ablation_label`)."""
    if model == HEURISTIC:
        return []
    wanted = [HEURISTIC] + ([T_LEARNER, DR_LEARNER] if model == TRANSFORMER else
                            [T_LEARNER] if model == DR_LEARNER else [])
    if ablation.is_ablation_of(model, TRANSFORMER):
        wanted.append(TRANSFORMER)
    return [reference for reference in wanted if reference in models]


def yardstick_rows(held: pd.DataFrame, scores: Mapping[str, Mapping[str, np.ndarray]], yardstick: Yardstick,
                   placebo_held: pd.DataFrame, placebo_scores: Mapping[str, Mapping[str, np.ndarray]],
                   placebo_yardstick: Yardstick, cfg: EvaluationConfig) -> list[dict]:
    """Per model, outcome and scope: per-campaign and pooled Qini/AUUC, the placebo Qini, and the paired
    difference of pooled Qini against the heuristic (two-stage bootstrap: campaigns, then households).

    ``scores[model][outcome]`` is aligned with ``held``'s rows; ``placebo_*`` with the placebo twins.
    """
    rows: list[dict] = []
    overlap = metrics.overlap_mask(yardstick.e, cfg.overlap_band)
    for outcome in evaluate.UPLIFT_OUTCOMES:
        for scope, mask in (("overall", np.ones(len(held), bool)), ("overlap", overlap)):
            if mask.sum() < 2:
                continue
            camp, phi = held["campaign_id"].to_numpy()[mask], yardstick.phi[outcome][mask]
            models = {m: s[outcome][mask] for m, s in scores.items()}
            for model, score in models.items():
                result = metrics.campaign_uplift_metrics(score, phi, camp)
                for c, per in result.per_campaign.items():
                    rows.append(_row(model, int(c), outcome, scope, "qini", per["qini"], n=per["n"], campaigns=1))
                    rows.append(_row(model, int(c), outcome, scope, "auuc", per["auuc"], n=per["n"], campaigns=1))
            replicates = bootstrap.bootstrap_replicates(
                metrics.pooled_qini, models, phi, campaign=camp, cluster=held["household_id"].to_numpy()[mask],
                n_boot=cfg.bootstrap_samples, seed=cfg.seed, per_campaign=True)
            for model in models:
                point, low, high = replicates.interval(model)
                rows.append(_row(model, None, outcome, scope, "qini", point, low, high, n=int(mask.sum()),
                                 campaigns=replicates.n_campaigns))
                for reference in _references(model, models):
                    d = replicates.difference(model, reference)
                    rows.append(_row(model, None, outcome, scope, f"qini_minus_{reference}", d["difference"],
                                     d["ci_low"], d["ci_high"], d["share_a_better"], int(mask.sum()),
                                     replicates.n_campaigns))
        if outcome in placebo_yardstick.phi and len(placebo_held):
            camp, phi = placebo_held["campaign_id"].to_numpy(), placebo_yardstick.phi[outcome]
            models = {m: s[outcome] for m, s in placebo_scores.items()}
            replicates = bootstrap.bootstrap_replicates(
                metrics.pooled_qini, models, phi, campaign=camp, cluster=placebo_held["household_id"].to_numpy(),
                n_boot=cfg.bootstrap_samples, seed=cfg.seed, per_campaign=True)
            for model in models:
                point, low, high = replicates.interval(model)
                rows.append(_row(model, None, outcome, "overall", "placebo_qini", point, low, high,
                                 n=len(placebo_held), campaigns=replicates.n_campaigns))
    return rows


def uplift_scores(predictions: pd.DataFrame) -> dict[str, np.ndarray]:
    """outcome -> the model's uplift score for it."""
    return {o: predictions[cols[3]].to_numpy(float) for o, cols in evaluate.UPLIFT_OUTCOMES.items()}


# --- the run on a warehouse (Spark at the edge) ------------------------------------------------------


@dataclass(frozen=True)
class RollingOriginResult:
    rows: list[dict]
    folds: list[Fold]
    held_out_rows: int
    placebo_rows: int


def _held_out_scores(frame: pd.DataFrame, fold_list: Sequence[Fold], predictors: Mapping[int, Mapping[str, Predictor]]
                     ) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Row positions (in ``frame``) of every fold's held-out campaign and each model's scores on them."""
    index, scores = [], {}
    for fold in fold_list:
        rows = np.flatnonzero(frame["campaign_id"].to_numpy() == fold.held_out)
        if not len(rows):
            continue
        index.append(rows)
        part = frame.iloc[rows].reset_index(drop=True)
        for model, predict in predictors[fold.held_out].items():
            for outcome, values in uplift_scores(predict(part)).items():
                scores.setdefault(model, {}).setdefault(outcome, []).append(values)
    flat = {m: {o: np.concatenate(v) for o, v in by.items()} for m, by in scores.items()}
    return (np.concatenate(index) if index else np.zeros(0, int)), flat


def _examples(spark, config, bronze, as_of: dt.date, training: TrainingConfig):
    """Every fully observed campaign's examples as of ``as_of``: jobs/train.py's slice of
    silver.training_examples when it wrote one (the same builder), else built here; and the campaigns."""
    from pyspark.sql import functions as F

    from promo_roi import delta_io
    from promo_roi.tables import training_examples_spec
    from promo_roi.training.examples import CampaignSplit, build_training_examples, exposures_as_of

    spec = training_examples_spec(config.features)
    if delta_io.table_exists(spark, spec, config.warehouse):
        stored = delta_io.read_table(spark, spec, config.warehouse).filter(F.col("as_of_date") == F.lit(as_of))
        found = stored.select("campaign_id", "start_date", "split").distinct().collect()
        if found:
            return stored, [CampaignSplit(int(r.campaign_id), r.start_date, r.split) for r in found]
    exposures = exposures_as_of(spark, config, as_of)
    return build_training_examples(bronze, exposures, as_of, config, training)


def run_rolling_origin(spark, config, as_of: dt.date, first_held_out: int = 6,
                       ablations: Mapping[str, TrainingConfig] | None = None) -> RollingOriginResult:
    """Folds, models and yardstick on the warehouse's fully observed campaigns as of ``as_of``; ``ablations``
    (label -> training settings, :func:`ablation_label`) are trained and judged beside the transformer."""
    from pyspark.sql import functions as F

    from promo_roi.bronze import read_bronze
    from promo_roi.observability import stage
    from promo_roi.tables import CATEGORICAL_COLUMNS, model_numeric_columns
    from promo_roi.training.examples import build_placebo_examples
    from promo_roi.training.model import fit_feature_encoder
    from promo_roi.training.text_encoder import default_encoder_path
    from promo_roi.training.pipeline import _to_pandas

    training, evaluation, _ = config.require_training()
    bronze = read_bronze(spark, config)
    with stage(log, f"rolling_origin.examples[{as_of}]") as st:
        examples_sdf, splits = _examples(spark, config, bronze, as_of, training)
        examples_sdf = examples_sdf.cache()
        examples = _to_pandas(examples_sdf)
        placebo = _to_pandas(build_placebo_examples(bronze, splits, as_of, config,
                                                    keep=("train", "validation", "test")))
        st.rows = len(examples) + len(placebo)
    calendar = [(int(r.campaign_id), r.start_date, r.end_date) for r in
                examples[["campaign_id", "start_date", "end_date"]].drop_duplicates().itertuples()]
    fold_list = folds(calendar, first_held_out, 1, training.min_train_campaigns)
    numeric, categorical = list(model_numeric_columns(config.features)), list(CATEGORICAL_COLUMNS)
    everyone = fit_feature_encoder(examples_sdf, numeric, categorical)
    with stage(log, "rolling_origin.yardstick") as st:
        yardstick = Yardstick.fit(examples, everyone.encode, evaluation)
        placebo_yardstick = Yardstick.fit(placebo, everyone.encode, evaluation, ("coupon_product_spend", "spend"))
        st.rows = len(examples) + len(placebo)
    texts = sorted(set(examples["campaign_text"]) | set(placebo["campaign_text"]))

    def fit_encoder(ids: Sequence[int]):
        return fit_feature_encoder(examples_sdf.filter(F.col("campaign_id").isin(list(ids))), numeric, categorical)

    predictors = {}
    for k, fold in enumerate(fold_list, start=1):
        with stage(log, f"rolling_origin.fold[{k}/{len(fold_list)}: campaign {fold.held_out}]") as st:
            predictors[fold.held_out] = fold_models(examples, fold, fit_encoder, texts, training, evaluation,
                                                    training.encoder_path or default_encoder_path(), ablations)
            st.detail = f"train {list(fold.train)}, validation {list(fold.validation)}"
    held_index, scores = _held_out_scores(examples, fold_list, predictors)
    placebo_index, placebo_scores = _held_out_scores(placebo, fold_list, predictors)
    examples_sdf.unpersist()
    rows = yardstick_rows(examples.iloc[held_index].reset_index(drop=True), scores, yardstick.rows(held_index),
                          placebo.iloc[placebo_index].reset_index(drop=True), placebo_scores,
                          placebo_yardstick.rows(placebo_index), evaluation)
    return RollingOriginResult(rows, fold_list, len(held_index), len(placebo_index))
