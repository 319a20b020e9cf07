"""Uplift curves for a model registered before training stored them, without retraining it.

Training writes gold.uplift_curves with its evaluation. For an older version
:func:`backfill_uplift_curves` repeats exactly that evaluation step: the
held-out frames from silver.training_examples as training read them (Delta
time travel to the version its MLflow run recorded), the version's own
network and feature encoder from the registry, the two baselines refitted on
the same train split, and the cross-fitted nuisance models with the
evaluation settings of that run. It stores the curves only if every Qini
recomputed from them equals the Qini the run published in
gold.model_evaluation: a curve that is not the one the model was judged on is
refused, not stored. Scores with ties are not compared: Qinis published before
the tie-averaged curve (:func:`promo_roi.causal.metrics.uplift_curve`) depended
on row order inside ties.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import logging
import math

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.causal import metrics
from promo_roi.config import AppConfig, EvaluationConfig
from promo_roi.observability import stage
from promo_roi.tables import MODEL_EVALUATION, UPLIFT_CURVES, training_examples_spec
from promo_roi.training import evaluate
from promo_roi.training.held_out import candidate_models
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

SPLITS = ("validation", "test")


def _evaluation_settings(params: dict[str, str], default: EvaluationConfig) -> EvaluationConfig:
    """The EvaluationConfig the training run logged (``evaluation.*`` params), else ``default``'s fields."""
    values = {}
    for f in dataclasses.fields(EvaluationConfig):
        raw = params.get(f"evaluation.{f.name}")
        if raw is None:
            values[f.name] = getattr(default, f.name)
        else:  # MLflow logged str(value): a text setting is itself, the others Python literals
            values[f.name] = raw if f.type in (str, "str") else ast.literal_eval(raw)
    values["overlap_band"] = tuple(values["overlap_band"])
    return EvaluationConfig(**values)


def backfill_uplift_curves(spark: SparkSession, config: AppConfig, model_version: str) -> int:
    """Computes and stores the uplift curves of ``model_version`` (see the module docstring); returns the rows
    written. Raises :class:`InputError` when the evaluation cannot be reproduced exactly."""
    from promo_roi.mlflow_io import MlflowStore
    from promo_roi.scoring.predict import load_champion
    from promo_roi.training.model import predict_frame
    from promo_roi.training.pipeline import _to_pandas, capped_train, publish_rows

    training, evaluation, mlflow_config = config.require_training()
    store = MlflowStore.of(mlflow_config)
    run_id = store.version_run_id(training.registered_model, model_version)
    params = store.run_params(run_id)
    if "as_of_date" not in params:
        raise InputError(f"MLflow run {run_id} of version {model_version} logged no as_of_date")
    as_of = dt.date.fromisoformat(params["as_of_date"])
    cfg = _evaluation_settings(params, evaluation)
    spec = training_examples_spec(config.features)
    reader = spark.read.format("delta")
    if "training_examples_version" in params:
        reader = reader.option("versionAsOf", int(params["training_examples_version"]))
    examples = reader.load(delta_io.table_path(config.warehouse, spec)).filter(F.col("as_of_date") == F.lit(as_of))
    cap = ast.literal_eval(params.get("training.max_train_examples", "None"))
    frames = {split: _to_pandas(examples.filter(F.col("split") == split)) for split in SPLITS}
    train_pd = _to_pandas(capped_train(examples, cap))
    expected = {"train": params.get("train_rows"), **{s: params.get(f"{s}_rows") for s in SPLITS}}
    found = {"train": len(train_pd), **{s: len(f) for s, f in frames.items()}}
    if any(v is not None and int(v) != found[k] for k, v in expected.items()):
        raise InputError(f"{spec.full_name} as of {as_of} has {found} rows, the training run read {expected}")

    evaluation_rows = delta_io.read_table(spark, MODEL_EVALUATION, config.warehouse).filter(
        (F.col("as_of_date") == F.lit(as_of)) & (F.col("mlflow_run_id") == run_id)
        & (F.col("metric") == "qini")).toPandas()
    if evaluation_rows.empty:
        raise InputError(f"{MODEL_EVALUATION.full_name} holds no Qini of run {run_id} as of {as_of}: "
                         "nothing to check recomputed curves against")
    published = {(r.model_name, r.split, r.scope, r.outcome): r.value for r in evaluation_rows.itertuples()}

    with stage(log, f"curves.backfill[version {model_version}, as of {as_of}]") as st:
        source = store.version_artifacts(training.registered_model, model_version)
        model = load_champion(source, mlflow_config.tracking_uri)
        encoder = model.feature_encoder

        def transformer(frame):
            return predict_frame(model.network, encoder, model.tokenizer, frame, model.spec.max_text_tokens)

        models = candidate_models(transformer, train_pd, encoder.encode, cfg)
        rows, checked, mismatches, tied = [], 0, [], 0
        for split, frame in frames.items():
            nuisance = evaluate.fit_nuisance(frame, evaluate.design_matrix(encoder.encode(frame)), cfg.nuisance_folds,
                                             cfg.seed)
            overlap = metrics.overlap_mask(nuisance.e, cfg.overlap_band)
            for name, predict in models.items():
                predictions = predict(frame)
                rows += evaluate.curve_rows(name, predictions, frame, nuisance, split, cfg)
                for outcome, (*_rest, uplift) in evaluate.UPLIFT_OUTCOMES.items():
                    phi, score = nuisance.phi(frame, outcome), predictions[uplift].to_numpy(dtype=float)
                    for scope, mask in (("overall", np.ones(len(frame), bool)), ("overlap", overlap)):
                        want = published.get((name, split, scope, outcome))
                        if want is None or mask.sum() < 2:
                            continue
                        if np.unique(score[mask]).size < mask.sum():
                            # Tied scores: runs before the tie-averaged Qini published an order-dependent
                            # number, so it cannot be the reference; untied scores give the same Qini both ways.
                            tied += 1
                            continue
                        got = metrics.qini_coefficient(score[mask], phi[mask])
                        checked += 1
                        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
                            mismatches.append(f"{name}/{split}/{scope}/{outcome}: {got:.6g} != published {want:.6g}")
        if mismatches or checked == 0:
            raise InputError(f"cannot reproduce the evaluation of version {model_version} (run {run_id}); "
                             f"{checked} Qini compared, mismatches: {'; '.join(mismatches) or 'none to compare'}")
        publish_rows(spark, rows, UPLIFT_CURVES, config, as_of, {"as_of_date": as_of, "mlflow_run_id": run_id})
        st.rows = len(rows)
        st.detail = (f"{checked} Qini recomputed from the curves equal gold.model_evaluation's "
                     f"({tied} with tied scores not compared)")
    return len(rows)
