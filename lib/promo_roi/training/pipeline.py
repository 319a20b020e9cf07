"""The training job: examples -> petastorm -> TorchDistributor (DDP) -> evaluation -> MLflow.

1. ``silver.training_examples``: household x fully observed campaign, features
   as of the campaign start, time-based split (replaces the as_of_date slice).
2. The feature encoder is fitted on the train split (Spark aggregates); the
   train split is encoded in Spark (``mapInPandas``) and materialised by
   petastorm's ``make_spark_converter``.
3. ``TorchDistributor(num_processes, local_mode, use_gpu)`` runs
   :func:`promo_roi.training.distributed.train_members` on every rank, once
   for every member of the seed ensemble: petastorm
   ``make_torch_dataloader`` sharded by rank, DistributedDataParallel, gloo on
   CPU or nccl on GPU, checkpoints after every epoch.
4. The heuristic, the LightGBM T-learner and the transformer are scored on the
   same validation and test campaigns (:mod:`promo_roi.training.held_out`, from
   the building blocks of :mod:`promo_roi.training.evaluate`);
   metrics, positivity diagnostics, refutation checks and the uplift (DR gain)
   curves go to gold tables and MLflow.
5. The transformer is logged as an MLflow pyfunc, registered, and becomes
   ``champion`` only if its ranking passed the gating refutation (placebo ranking) and the paired
   bootstrap interval of its difference from the current champion on the
   validation metric lies above 0.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import AppConfig, EvaluationConfig, TrainingConfig
from promo_roi.bronze import read_bronze
from promo_roi.mlflow_io import MlflowStore
from promo_roi.observability import stage
from promo_roi.tables import (
    CATEGORICAL_COLUMNS,
    MODEL_EVALUATION,
    OUTCOME_COLUMNS,
    POSITIVITY_DIAGNOSTICS,
    REFUTATION_CHECKS,
    UPLIFT_CURVES,
    model_numeric_columns,
    training_examples_spec,
)
from promo_roi.training import evaluate
from promo_roi.training.champion_ledger import ChampionLedger
from promo_roi.training.checkpoints import (
    FINAL_WEIGHTS,
    LAST_CHECKPOINT,
    code_fingerprint,
    examples_fingerprint,
    member_checkpoint_dir,
    record_outcome,
    recorded_outcome,
    run_key,
)
from promo_roi.training.examples import build_placebo_examples, build_training_examples, exposures_as_of
from promo_roi.training.held_out import (
    TRANSFORMER,
    HeldOutEvaluation,
    HeldOutFrames,
    candidate_models,
    evaluate_held_out,
)
from promo_roi.training.model import FeatureEncoder, ModelSpec, fit_feature_encoder

if TYPE_CHECKING:  # registry imports MLflow: loaded only when a model is registered
    from promo_roi.training.registry import ChampionDecision

log = logging.getLogger(__name__)

# The modules that define what a checkpoint holds: the network, its text encoder, the training loop, the loader,
# the ensemble and this one, which encodes the rows. Their source is part of the checkpoint key (checkpoints.run_key).
TRAINING_CODE = ("promo_roi.training.model", "promo_roi.training.text_encoder", "promo_roi.training.distributed",
                 "promo_roi.training.loader", "promo_roi.training.ensemble", "promo_roi.training.pseudo_outcomes",
                 __name__)
TRAINING_BATCH_SCHEMA = "x_num array<float>, x_cat array<bigint>, text_id int, targeted float, outcomes array<float>"
# With the doubly robust term (training.pseudo_outcome_weight > 0): each row's pseudo-outcomes too.
PSEUDO_OUTCOME_BATCH_SCHEMA = TRAINING_BATCH_SCHEMA + ", pseudo_outcomes array<float>"


@dataclass(frozen=True)
class TrainingResult:
    mlflow_run_id: str
    model_version: str
    promoted: bool
    champion_reason: str
    counts: dict[str, int]
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class Registration:
    """What register_candidate did: the new model version and the champion gate's decision on it."""
    model_version: str
    decision: "ChampionDecision"
    validation_metric: float
    refutations_passed: bool


def encode_for_training(encoder: FeatureEncoder, text_ids: dict[str, int], pseudo: pd.DataFrame | None = None):
    """mapInPandas function: feature columns -> the arrays the training loop reads; with ``pseudo`` (a table of
    :func:`promo_roi.training.pseudo_outcomes.training_pseudo_outcomes`), each row's pseudo-outcomes as well
    (schema :data:`PSEUDO_OUTCOME_BATCH_SCHEMA`)."""
    from promo_roi.training.pseudo_outcomes import pseudo_outcomes_of

    def _encode(frames):
        for frame in frames:
            encoded = encoder.encode(frame)
            outcomes = np.stack([
                frame["redeemed"].astype(float).to_numpy(),
                frame["coupon_product_spend"].astype(float).to_numpy() / encoder.spend_scale["coupon_product_spend"],
                frame["spend"].astype(float).to_numpy() / encoder.spend_scale["spend"],
            ], axis=1).astype(np.float32)
            batch = pd.DataFrame({
                "x_num": list(encoded["x_num"]),
                "x_cat": list(encoded["x_cat"]),
                "text_id": frame["campaign_text"].map(text_ids).astype("int32").to_numpy(),
                "targeted": frame["targeted"].astype("float32").to_numpy(),
                "outcomes": list(outcomes),
            })
            if pseudo is not None:
                batch["pseudo_outcomes"] = list(pseudo_outcomes_of(frame, pseudo))
            yield batch

    return _encode


def encode_arrays(frame: pd.DataFrame, encoder: FeatureEncoder, text_ids: dict[str, int],
                  pseudo: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """The same encoding as :func:`encode_for_training`, as stacked arrays (validation, benchmarks)."""
    parts = list(encode_for_training(encoder, text_ids, pseudo)([frame]))[0]
    pseudo_outcomes = {} if pseudo is None else {"pseudo_outcomes": np.stack(parts["pseudo_outcomes"].to_list())
                                                 if len(parts) else np.zeros((0, 3), np.float32)}
    return {**pseudo_outcomes,
        "x_num": np.stack(parts["x_num"].to_list()) if len(parts) else np.zeros((0, len(encoder.numeric_columns)), np.float32),
        "x_cat": np.stack(parts["x_cat"].to_list()) if len(parts) else np.zeros((0, len(encoder.categorical_columns)), np.int64),
        "text_id": parts["text_id"].to_numpy(),
        "targeted": parts["targeted"].to_numpy(),
        "outcomes": np.stack(parts["outcomes"].to_list()) if len(parts) else np.zeros((0, 3), np.float32),
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def resolve_use_gpu(setting: str) -> bool:
    if setting == "auto":
        import torch

        return torch.cuda.is_available()
    return setting == "true"


def _to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collected and ordered by (campaign, household): the evaluation's folds and bootstrap resamples are drawn
    by row position, so the order must not depend on how the examples table's files happen to be laid out."""
    frame = df.toPandas()
    for c in OUTCOME_COLUMNS + ("targeted",):
        if c in frame.columns:
            frame[c] = frame[c].astype(float)
    keys = [c for c in ("campaign_id", "household_id") if c in frame.columns]
    if keys:
        frame = frame.sort_values(keys, kind="stable")
    return frame.reset_index(drop=True)


def capped_train(examples: DataFrame, cap: int | None) -> DataFrame:
    """The train split, deterministically cut to ``cap`` rows (tiny configurations), hash-partitioned by key.

    By key, every partition holds the same rows however the examples table's files happen to be laid out,
    so the petastorm materialisation (loader.make_converter) and with it the training order are the same on
    every run of the same data.
    """
    train = examples.filter(F.col("split") == "train")
    if cap is not None:
        train = train.orderBy(F.xxhash64("household_id", "campaign_id"), "household_id", "campaign_id").limit(cap)
    return train.repartition("household_id", "campaign_id")


def _train_distributed(members: list[Any], training: TrainingConfig, use_gpu: bool) -> list[dict[str, Any]]:
    """One TorchDistributor launch for every member to train (``distributed.train_members``)."""
    from pyspark.ml.torch.distributor import TorchDistributor

    from promo_roi.training.distributed import train_members

    distributor = TorchDistributor(num_processes=training.num_processes, local_mode=training.local_mode,
                                   use_gpu=use_gpu)
    return distributor.run(train_members, members)


def publish_rows(spark: SparkSession, rows: list[dict[str, Any]], spec, config: AppConfig, as_of: dt.date,
                 extra: dict[str, Any]) -> int:
    """Replaces one training run's rows (``extra["mlflow_run_id"]``) of the as_of_date slice of a gold table, in one
    Delta commit. Other runs of the same date keep theirs: a retrained candidate that is not promoted must not
    remove the champion's evaluation, refutations and curves."""
    run_id = str(extra["mlflow_run_id"])
    if not run_id.isalnum():  # MLflow run ids are hex; anything else has no place in a predicate
        raise ValueError(f"unexpected MLflow run id {run_id!r}")
    df = delta_io.frame_of_records(spark, rows, spec, extra)
    predicate = f"as_of_date = DATE'{as_of.isoformat()}' AND mlflow_run_id = '{run_id}'"
    return delta_io.replace_slice(spark, df, spec, config.warehouse, predicate)


def store_examples(spark: SparkSession, config: AppConfig, bronze, as_of: dt.date, training: TrainingConfig):
    """Builds the as-of slice of silver.training_examples, replaces it, and reads it back (cached)."""
    spec = training_examples_spec(config.features)
    with stage(log, f"train.examples[{as_of}]") as st:
        examples, splits = build_training_examples(bronze, exposures_as_of(spark, config, as_of), as_of, config,
                                                   training)
        version = delta_io.replace_date_slice(spark, examples, spec, config.warehouse, "as_of_date", as_of)
        examples = delta_io.read_table(spark, spec, config.warehouse).filter(
            F.col("as_of_date") == F.lit(as_of)).cache()
        counts = {r["split"]: int(r["count"]) for r in examples.groupBy("split").count().collect()}
        st.rows = sum(counts.values())
        st.detail = f"{spec.full_name} version {version}, " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
    return examples, splits, version, counts


def held_out_frames(train_df: DataFrame, examples: DataFrame, bronze, splits, as_of: dt.date,
                    config: AppConfig) -> HeldOutFrames:
    with stage(log, "train.frames") as st:
        frames = HeldOutFrames(
            train=_to_pandas(train_df),
            validation=_to_pandas(examples.filter(F.col("split") == "validation")),
            test=_to_pandas(examples.filter(F.col("split") == "test")),
            placebo=_to_pandas(build_placebo_examples(bronze, splits, as_of, config)),
        )
        st.rows = sum(frames.sizes().values())
        st.detail = f"placebo rows {len(frames.placebo):,}"
    return frames


def model_spec_for(training: TrainingConfig, encoder: FeatureEncoder, n_numeric: int) -> ModelSpec:
    from promo_roi.training.model import anchor_for
    from promo_roi.training.text_encoder import default_encoder_path

    anchored = training.effect_head == "anchored"
    return ModelSpec(
        n_numeric=n_numeric, cardinalities=encoder.cardinalities(), hidden_dim=training.hidden_dim,
        dropout=training.dropout, finetune=training.finetune, top_layers=training.top_layers,
        adapter_dim=training.adapter_dim, max_text_tokens=training.max_text_tokens,
        encoder_path=training.encoder_path or default_encoder_path(), effect_head=training.effect_head,
        anchor=anchor_for(encoder, training.anchor_pseudo_count) if anchored else None,
        ensemble_size=training.ensemble_size, text_input=training.text_input,
    )


def fine_tune(spark: SparkSession, train_df: DataFrame, frames: HeldOutFrames, encoder: FeatureEncoder,
              texts: list[str], model_spec: ModelSpec, training: TrainingConfig, use_gpu: bool, checkpoint_dir: Path,
              tracking_uri: str, mlflow_run_id: str, evaluation: EvaluationConfig) -> list[dict[str, Any]]:
    """petastorm converter of the encoded train split -> one TorchDistributor (DDP) launch that trains every member
    of the ensemble (``model_spec.ensemble_size``) left to train, one after the other, each from its own seed on
    the same converter; one outcome per member. A member whose fine-tuning a run of the same key finished
    (``checkpoints.recorded_outcome``) is not trained again: its outcome is taken up and its epochs' metrics
    logged to this run. The converter, made only when a member is left to train, is always deleted. With the
    doubly robust term (``training.pseudo_outcome_weight``), the train split's pseudo-outcomes are cross-fitted
    first (with ``evaluation``'s nuisance folds and seed) and travel with its rows."""
    size = model_spec.ensemble_size
    member_dirs = [member_checkpoint_dir(checkpoint_dir, member, size) for member in range(size)]
    outcomes: list[dict[str, Any] | None] = [recorded_outcome(d, training.epochs) for d in member_dirs]
    for member, outcome in enumerate(outcomes):
        if outcome is not None:
            _log_recorded_member(outcome, member, size, tracking_uri, mlflow_run_id, member_dirs[member])
    if all(o is not None for o in outcomes):
        return outcomes
    from promo_roi.training.loader import make_converter

    text_ids = {t: i for i, t in enumerate(texts)}
    from promo_roi.training.pseudo_outcomes import trained_pseudo_outcomes

    # Cross-fitted on the features alone, whatever the network reads (FeatureEncoder.reading).
    pseudo = trained_pseudo_outcomes(frames.train, encoder.reading("campaign"), training, evaluation, log)
    with stage(log, "train.petastorm") as st:
        encoded_train = train_df.mapInPandas(encode_for_training(encoder, text_ids, pseudo),
                                             TRAINING_BATCH_SCHEMA if pseudo is None else PSEUDO_OUTCOME_BATCH_SCHEMA)
        min_row_groups = 2 * training.num_processes * training.loader_workers
        converter = make_converter(spark, encoded_train, training.petastorm_cache_dir, min_row_groups)
        st.rows = len(converter)
    try:
        validation = encode_arrays(frames.validation, encoder, text_ids)
        todo = [m for m in range(size) if outcomes[m] is None]
        params = [_worker_params(model_spec, texts, len(converter), training, m, use_gpu, member_dirs[m], converter,
                                 tracking_uri, mlflow_run_id, validation) for m in todo]
        which = "one network" if size == 1 else f"members {', '.join(str(m + 1) for m in todo)} of {size}"
        with stage(log, f"train.distributed[{which}, {training.num_processes} processes, "
                        f"{'nccl/GPU' if use_gpu else 'gloo/CPU'}]") as st:
            trained = _train_distributed(params, training, use_gpu)
            st.rows = len(frames.train) * training.epochs * len(todo)
            st.detail = f"backend {trained[0]['backend']}, {trained[0]['steps_per_epoch']} steps/epoch; " + "; ".join(
                f"seed {p.seed}: best epoch {o['best_epoch']}" for p, o in zip(params, trained))
        for member, outcome in zip(todo, trained):
            record_outcome(member_dirs[member], training.epochs, outcome)
            outcomes[member] = outcome
    finally:
        converter.delete()
    return outcomes


def _worker_params(model_spec: ModelSpec, texts: list[str], n_train_rows: int, training: TrainingConfig, member: int,
                   use_gpu: bool, member_dir: Path, converter, tracking_uri: str, mlflow_run_id: str, validation):
    from promo_roi.training.distributed import PetastormBatches, WorkerParams
    from promo_roi.training.ensemble import member_prefix, member_seed

    return WorkerParams(
        model_spec=model_spec.member().to_dict(), texts=texts, n_train_rows=n_train_rows,
        batch_size=training.batch_size, epochs=training.epochs, learning_rate=training.learning_rate,
        encoder_learning_rate=training.encoder_learning_rate, weight_decay=training.weight_decay,
        propensity_weight=training.propensity_weight, effect_penalty=training.effect_penalty,
        pseudo_outcome_weight=training.pseudo_outcome_weight, seed=member_seed(training.seed, member), use_gpu=use_gpu,
        checkpoint_path=str(member_dir / LAST_CHECKPOINT), final_weights_path=str(member_dir / FINAL_WEIGHTS),
        batch_source=PetastormBatches(converter, training.loader_workers),
        mlflow_tracking_uri=tracking_uri, mlflow_run_id=mlflow_run_id, validation=validation,
        threads_per_process=max(1, (os.cpu_count() or 1) // training.num_processes),
        metric_prefix=member_prefix(member, size=model_spec.ensemble_size),
    )


def _log_recorded_member(outcome: dict[str, Any], member: int, size: int, tracking_uri: str, mlflow_run_id: str,
                         member_dir: Path) -> None:
    """A member an earlier run of the same key trained: its epochs' metrics go to this run as rank 0 logged them."""
    from promo_roi.training.ensemble import member_prefix

    client = MlflowStore(tracking_uri).client
    prefix = member_prefix(member, size)
    for record in outcome["history"]:
        for key, value in record.items():
            if key != "epoch":
                client.log_metric(mlflow_run_id, prefix + key, value, step=int(record["epoch"]))
    log.info("train.distributed[member %d of %d]: fine-tuned by an earlier run of the same key (%s), best epoch %s: "
             "not trained again", member + 1, size, member_dir, outcome["best_epoch"])


def saved_transformer(model_root: Path, checkpoint_dir: Path, model_spec: ModelSpec, encoder: FeatureEncoder):
    """The trained weights (every member's best epoch) saved as the model directory scoring loads, a
    predictor from what was saved, and one predictor per member of an ensemble (none for a single network)."""
    import torch
    from transformers import AutoTokenizer

    from promo_roi.training.model import build_network, load_model_dir, predict_frame, save_model_dir

    size = model_spec.ensemble_size
    network = build_network(model_spec)
    parts = network.members if size > 1 else [network]
    for member, part in enumerate(parts):
        weights = member_checkpoint_dir(checkpoint_dir, member, size) / FINAL_WEIGHTS
        part.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    tokenizer = AutoTokenizer.from_pretrained(model_spec.encoder_path, local_files_only=True)
    model_dir = save_model_dir(model_root / "model", network, model_spec, encoder, tokenizer)
    network, encoder, tokenizer, model_spec = load_model_dir(model_dir)  # what scoring will load

    def predictor(net):
        return lambda frame: predict_frame(net, encoder, tokenizer, frame, model_spec.max_text_tokens)

    members = [predictor(m) for m in network.members] if size > 1 else []
    return model_dir, predictor(network), members


def record_evaluation(spark: SparkSession, config: AppConfig, as_of: dt.date, mlflow_run_id: str,
                      result: HeldOutEvaluation) -> None:
    """The evaluation's rows to the four gold training tables (the as-of slice) and to the MLflow run."""
    import mlflow

    mlflow.log_dict(result.calibration.to_dict(), "evaluation/calibration.json")
    for r in (r for r in result.metric_rows if r["scope"] == "calibration"):
        log.info("calibration %s %s: %s [%s, %s]", r["outcome"], r["metric"], _fmt(r["value"]),
                 _fmt(r["ci_low"]), _fmt(r["ci_high"]))
        if r["value"] is not None:
            mlflow.log_metric(f"heldout.{r['model_name']}.calibration.{r['outcome']}.{r['metric']}", r["value"])
    mlflow.set_tag("value_score", result.calibration.value_score)
    for r in (r for r in result.metric_rows if r["metric"] == "qini_minus_heuristic"):
        log.info("households valued by %s: the network's validation Qini minus the heuristic's %s [%s, %s]",
                 result.calibration.value_score, _fmt(r["value"]), _fmt(r["ci_low"]), _fmt(r["ci_high"]))
    spread = {(r["split"], r["metric"]): r["value"] for r in result.metric_rows
              if r["scope"] == "ensemble" and r["model_name"] == evaluate.NETWORK_SCORE}
    for split in ("validation", "test"):
        if (split, "members") in spread:
            log.info("ensemble of %d on %s: Qini %s, members' Qini sd %s; members' uplift sd %s per row against "
                     "a mean |uplift| of %s", spread[(split, "members")], split, _fmt(spread[(split, "qini")]),
                     _fmt(spread[(split, "member_qini_sd")]), _fmt(spread[(split, "member_uplift_sd")]),
                     _fmt(spread[(split, "mean_abs_uplift")]))
            for metric in ("member_qini_sd", "member_uplift_sd"):
                if spread[(split, metric)] is not None:
                    mlflow.log_metric(f"{split}.transformer.ensemble.{metric}", spread[(split, metric)])
    extra = {"as_of_date": as_of, "mlflow_run_id": mlflow_run_id}
    evaluated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    publish_rows(spark, [{**r, "evaluated_at": evaluated_at} for r in result.metric_rows], MODEL_EVALUATION,
                 config, as_of, extra)
    publish_rows(spark, result.positivity, POSITIVITY_DIAGNOSTICS, config, as_of, extra)
    publish_rows(spark, result.refutations, REFUTATION_CHECKS, config, as_of, extra)
    publish_rows(spark, result.curves, UPLIFT_CURVES, config, as_of, extra)
    for r in result.metric_rows:
        if r["value"] is not None and r["metric"] in ("qini", "auuc", "auc", "wape", "average_effect"):
            mlflow.log_metric(f"{r['split']}.{r['model_name']}.{r['scope']}.{r['outcome']}.{r['metric']}", r["value"])
    mlflow.log_table(pd.DataFrame(result.metric_rows), "evaluation/model_evaluation.json")
    mlflow.log_table(pd.DataFrame(result.positivity), "evaluation/positivity_diagnostics.json")
    mlflow.log_table(pd.DataFrame(result.refutations), "evaluation/refutation_checks.json")
    mlflow.log_table(pd.DataFrame(result.curves), "evaluation/uplift_curves.json")
    for r in result.refutations:
        log.info("refutation %s/%s on %s: %s, effect %s [%s, %s] -- %s", r["model_name"], r["check"],
                 r["outcome"], "passed" if r["passed"] else "FAILED", _fmt(r["effect"]),
                 _fmt(r["ci_low"]), _fmt(r["ci_high"]), r["detail"])


def register_candidate(store: MlflowStore, model_dir: Path, transformer, frames: HeldOutFrames,
                       result: HeldOutEvaluation, columns: list[str], training: TrainingConfig,
                       evaluation, ledger: ChampionLedger) -> Registration:
    """Logs and registers the model; the champion alias moves only on a paired win with passed refutations.
    Inside ``store.fluent()`` and the training run."""
    import mlflow

    from promo_roi.training import registry

    validation = frames.validation
    candidate_metric = evaluate.validation_metric(result.predictions[(TRANSFORMER, "validation")], validation,
                                                  result.nuisance["validation"])
    mlflow.log_metric(evaluate.CHAMPION_METRIC, candidate_metric)
    passed = evaluate.refutations_passed(result.refutations, TRANSFORMER)
    input_example = validation[columns].head(20)
    version_id = registry.log_and_register(model_dir, input_example, transformer(input_example),
                                           training.registered_model)
    decision = registry.promote_if_better(
        store, training.registered_model, training.champion_alias, version_id, candidate_metric, evaluate.CHAMPION_METRIC,
        lambda champion: registry.PairedComparison(**evaluate.paired_validation_comparison(
            result.predictions[(TRANSFORMER, "validation")], champion.predict(validation), validation,
            result.nuisance["validation"], evaluation)),
        passed, ledger,
    )
    return Registration(version_id, decision, candidate_metric, passed)


def train(spark: SparkSession, config: AppConfig, as_of: dt.date) -> TrainingResult:
    """examples -> frames -> fine-tune (DDP) -> evaluate on held-out campaigns -> record -> register."""
    import mlflow

    from promo_roi.training.model import save_calibration

    training, evaluation, mlflow_config = config.require_training()
    bronze = read_bronze(spark, config)
    examples, splits, version, counts = store_examples(spark, config, bronze, as_of, training)
    numeric, categorical = list(model_numeric_columns(config.features)), list(CATEGORICAL_COLUMNS)
    train_df = capped_train(examples, training.max_train_examples).cache()
    n_train = train_df.count()
    encoder = fit_feature_encoder(train_df, numeric, categorical)
    # What the network reads (the baselines and nuisance models read ``encoder``'s features alone).
    network_encoder = encoder.reading(training.text_input, training.encoder_path)
    texts = sorted(r[0] for r in examples.select("campaign_text").distinct().collect())
    frames = held_out_frames(train_df, examples, bronze, splits, as_of, config)
    use_gpu = resolve_use_gpu(training.use_gpu)
    model_spec = model_spec_for(training, network_encoder, network_encoder.width)
    key = run_key(as_of, training, n_train, examples_fingerprint(examples), code_fingerprint(TRAINING_CODE))
    checkpoint_dir = Path(training.checkpoint_dir) / key
    store = MlflowStore.of(mlflow_config)
    experiment_id = store.experiment_id(training.experiment)

    with store.fluent(), mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{as_of}") as run:
        mlflow.log_params({
            **{f"training.{k}": v for k, v in training.__dict__.items()},
            **{f"evaluation.{k}": v for k, v in evaluation.__dict__.items()},
            "as_of_date": as_of.isoformat(), "train_rows": n_train,
            "validation_rows": len(frames.validation), "test_rows": len(frames.test),
            "campaign_splits": json.dumps({s.campaign_id: s.split for s in splits}),
            "training_examples_version": version, "use_gpu": use_gpu, "run_key": key,
        })
        outcomes = fine_tune(spark, train_df, frames, network_encoder, texts, model_spec, training, use_gpu,
                             checkpoint_dir, mlflow_config.tracking_uri, run.info.run_id, evaluation)
        mlflow.log_param("best_epoch", ",".join(str(o["best_epoch"]) for o in outcomes))
        with stage(log, "train.evaluate") as st:
            model_root = Path(tempfile.mkdtemp(prefix="promo_roi_model_"))
            try:
                model_dir, transformer, members = saved_transformer(model_root, checkpoint_dir, model_spec,
                                                                    network_encoder)
                models = candidate_models(transformer, frames.train, encoder.encode, evaluation)
                result = evaluate_held_out(models, frames, encoder.encode, evaluation, members)
                save_calibration(model_dir, result.calibration)
                record_evaluation(spark, config, as_of, run.info.run_id, result)
                registration = register_candidate(
                    store, model_dir, transformer, frames, result, [*network_encoder.input_columns, "campaign_text"],
                    training,
                    evaluation, ChampionLedger(spark, config.warehouse, training.registered_model,
                                               training.champion_alias, run.info.run_id))
                st.rows = len(result.metric_rows)
                st.detail = (f"{evaluate.CHAMPION_METRIC}={registration.validation_metric:.4g}, "
                             f"refutations passed: {registration.refutations_passed}")
            finally:
                shutil.rmtree(model_root, ignore_errors=True)
    examples.unpersist()
    train_df.unpersist()
    return TrainingResult(run.info.run_id, registration.model_version, registration.decision.promoted,
                          registration.decision.reason,
                          {**counts, "placebo": len(frames.placebo)}, outcomes[0]["history"])
