"""The training rows' doubly robust pseudo-outcomes: the targets of the network's DR term.

``training.pseudo_outcome_weight`` > 0 adds the DR-learner's loss to the
network's (:func:`promo_roi.training.model.response_loss`): each row's uplift on
every outcome is pulled toward its AIPW pseudo-outcome, whose conditional mean
is the effect itself. The pseudo-outcomes are cross-fitted on the training
rows alone (folds by household: no household's nuisance models saw it), with
the nuisance models and folds the evaluation uses
(:func:`promo_roi.training.evaluate.fit_nuisance`); the validation and test
campaigns never enter them. They are in the training units of ``outcomes``:
redemption as is, each spend over its training mean (``spend_scale``).

A table of them (:func:`training_pseudo_outcomes`) is keyed by household and
campaign, and :func:`pseudo_outcomes_of` looks up a frame's rows in it without
reordering anything: the training order (petastorm's materialisation, the
seeded shuffles) stays what it was.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import pandas as pd

from promo_roi.config import EvaluationConfig
from promo_roi.training import evaluate

KEYS = ["household_id", "campaign_id"]
# The order of the outcomes in the training arrays' ``outcomes`` (pipeline.encode_for_training).
TRAINING_OUTCOMES = ("redeemed", "coupon_product_spend", "spend")


def training_pseudo_outcomes(train: pd.DataFrame, encode: Callable[[pd.DataFrame], Mapping[str, np.ndarray]],
                             spend_scale: Mapping[str, float], evaluation: EvaluationConfig) -> pd.DataFrame:
    """household_id, campaign_id and one column per outcome of :data:`TRAINING_OUTCOMES`: each training row's
    cross-fitted pseudo-outcome in training units."""
    frame = train.reset_index(drop=True)
    nuisance = evaluate.fit_nuisance(frame, evaluate.design_matrix(encode(frame)), evaluation.nuisance_folds,
                                     evaluation.seed)
    scale = {"redeemed": 1.0, **spend_scale}
    table = frame[KEYS].copy()
    for outcome in TRAINING_OUTCOMES:
        table[outcome] = nuisance.phi(frame, outcome) / float(scale[outcome])
    if table.duplicated(KEYS).any():
        raise ValueError("training rows are not unique by household and campaign: pseudo-outcomes cannot be keyed")
    return table


def trained_pseudo_outcomes(train: pd.DataFrame, encoder, training, evaluation: EvaluationConfig,
                            log) -> pd.DataFrame | None:
    """:func:`training_pseudo_outcomes` of ``train`` when the doubly robust term is trained
    (``training.pseudo_outcome_weight`` > 0), else None; ``encoder`` a fitted ``model.FeatureEncoder``."""
    from promo_roi.observability import stage

    if training.pseudo_outcome_weight <= 0:
        return None
    with stage(log, "train.pseudo_outcomes") as st:
        table = training_pseudo_outcomes(train, encoder.encode, encoder.spend_scale, evaluation)
        st.rows = len(table)
    return table


def pseudo_outcomes_of(frame: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """[rows of ``frame``, 3] float32 in ``frame``'s order; every row must be in ``table``."""
    found = frame[KEYS].merge(table, on=KEYS, how="left", validate="many_to_one")
    missing = found[list(TRAINING_OUTCOMES)].isna().any(axis=1)
    if missing.any():
        first = found.loc[missing, KEYS].iloc[0]
        raise KeyError(f"{int(missing.sum())} training row(s) have no pseudo-outcome, e.g. household "
                       f"{int(first['household_id'])} in campaign {int(first['campaign_id'])}")
    return found[list(TRAINING_OUTCOMES)].to_numpy(np.float32)
