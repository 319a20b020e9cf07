"""The candidate and its baselines judged on the held-out campaigns: pandas and numpy in, rows out.

:func:`evaluate_held_out` is the evaluation step of ``jobs/train.py`` without
its side effects: every model predicts every held-out frame (validation,
test and the pre-period placebo twins), the doubly robust nuisance models are
cross-fitted once per frame, and the metric, positivity, refutation and curve
rows plus the transformer's calibration (its spend lines on the score households are valued by, chosen
on the validation campaigns) come back for the caller to publish
(:mod:`promo_roi.training.pipeline` writes them to gold and MLflow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from promo_roi.config import EvaluationConfig
from promo_roi.model_names import HEURISTIC, T_LEARNER, TRANSFORMER
from promo_roi.training import evaluate

HELD_OUT_SPLITS = ("validation", "test")

Predictor = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class HeldOutFrames:
    """The pandas frames of one training run: the (capped) train split and what is held out from it."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    placebo: pd.DataFrame

    def held_out(self) -> dict[str, pd.DataFrame]:
        return {"validation": self.validation, "test": self.test, "placebo": self.placebo}

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test),
                "placebo": len(self.placebo)}


@dataclass(frozen=True)
class HeldOutEvaluation:
    predictions: dict[tuple[str, str], pd.DataFrame]   # (model, frame name) -> predictions
    nuisance: dict[str, Any]                            # frame name -> cross-fitted nuisance models
    metric_rows: list[dict]
    positivity: list[dict]
    refutations: list[dict]
    curves: list[dict]
    calibration: Any                                    # the transformer's calibration (evaluate.fit_calibration)


def candidate_models(transformer: Predictor, train: pd.DataFrame, encode: Callable,
                     evaluation: EvaluationConfig) -> dict[str, Predictor]:
    """The transformer beside the two baselines every run is judged against (the T-learner fitted on ``train``,
    the training campaigns' rows): what training evaluates, and what a backfill of its curves recomputes."""
    baseline = evaluate.TLearnerBaseline(encode=encode, seed=evaluation.seed).fit(train)
    return {HEURISTIC: evaluate.heuristic_predictions, T_LEARNER: baseline,
            TRANSFORMER: transformer}


def evaluate_held_out(models: Mapping[str, Predictor], frames: HeldOutFrames, encode: Callable,
                      evaluation: EvaluationConfig, members: Sequence[Predictor] = ()) -> HeldOutEvaluation:
    """Every model on the same held-out rows and the same nuisance models; the transformer calibrated. With
    ``members`` (the transformer's ensemble members, each alone), how far they disagree on the validation and
    test campaigns."""
    held = frames.held_out()
    nuisance = {
        name: evaluate.fit_nuisance(frame, evaluate.design_matrix(encode(frame)), evaluation.nuisance_folds,
                                    evaluation.seed)
        for name, frame in held.items()
    }
    predictions = {(m, s): predict(held[s]) for m, predict in models.items() for s in held}
    metric_rows, positivity, refutations, curves = [], [], [], []
    for split in HELD_OUT_SPLITS:
        frame = held[split]
        metric_rows += evaluate.effect_rows(frame, nuisance[split], split, evaluation)
        for m in models:
            metric_rows += evaluate.score_model(m, predictions[(m, split)], frame, nuisance[split], split, evaluation)
            curves += evaluate.curve_rows(m, predictions[(m, split)], frame, nuisance[split], split, evaluation)
        positivity += evaluate.positivity_rows(frame, nuisance[split].e, "crossfit_lgbm", split, evaluation)
        positivity += evaluate.positivity_rows(frame, predictions[(TRANSFORMER, split)]["propensity"].to_numpy(),
                                               "transformer_head", split, evaluation)
    for m in models:
        refutations += evaluate.refutation_rows(m, frames.test, predictions[(m, "test")], nuisance["test"],
                                                frames.placebo, predictions[(m, "placebo")], nuisance["placebo"],
                                                evaluation)
    # What households are valued by: the network's uplift only where it ranked the validation campaigns
    # better than pre-period spend (evaluation.ranking); the calibration is fitted on that score.
    network_minus_heuristic = evaluate.paired_validation_comparison(
        predictions[(TRANSFORMER, "validation")], predictions[(HEURISTIC, "validation")], held["validation"],
        nuisance["validation"], evaluation)
    value_score = evaluate.chosen_value_score(evaluation.ranking, network_minus_heuristic)
    calibration = evaluate.fit_calibration(
        [predictions[(TRANSFORMER, s)] for s in HELD_OUT_SPLITS], [held[s] for s in HELD_OUT_SPLITS],
        [nuisance[s] for s in HELD_OUT_SPLITS], evaluation,
        value_predictions=[predictions[(value_score, s)] for s in HELD_OUT_SPLITS], value_score=value_score)
    metric_rows += evaluate.calibration_rows(calibration)
    metric_rows += evaluate.ranking_rows(network_minus_heuristic, value_score, held["validation"])
    for split in HELD_OUT_SPLITS if members else ():
        metric_rows += evaluate.ensemble_rows([member(held[split]) for member in members],
                                              predictions[(TRANSFORMER, split)], held[split], nuisance[split], split)
    return HeldOutEvaluation(predictions, nuisance, metric_rows, positivity, refutations, curves, calibration)
