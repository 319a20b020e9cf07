"""The decisions a model makes for a run date, in one shape, for the scorecard.

- :func:`published_decisions`: what the nightly scoring job published (the
  champion): household scores, campaign forecasts and the budget plan, read
  through the publication rule.
- :func:`baseline_decisions`: what simple and strong baselines would decide on
  the same night, from the same inputs, through the same machinery: each
  baseline's uplift score is calibrated on the champion's held-out campaigns
  (best linear predictor of the AIPW pseudo-outcome of the outcome households
  are valued on, ``scoring.value_outcome``, two-stage bootstrap:
  :func:`value_calibration`), forecast for the same
  audiences, and planned by the same planner with the same budget and cap
  among the pairs the night published. Each pair's expected cost is priced
  independently of the champion (:func:`independent_pricing`: the LightGBM
  T-learner's redemption probability, calibrated on the held-out targeted
  households the way the champion calibrates its own), so a baseline's plan
  does not move when the champion changes; ``transformer_uplift`` keeps the
  champion's published costs, being the champion's own network.

What-ifs on the same night, for the champion and every baseline: the plan
under ``planning.risk: quantile`` (:func:`risk_aware_published_decisions`) and
the plan on costs priced by the other redemption model
(:func:`repriced_published_decisions`, :func:`repriced_costs`). The network,
values and forecasts are the same, so each what-if is paired with its plan.

Baselines: ``heuristic_pre_spend`` (rank by pre-period coupon-product spend),
``lgbm_t_learner`` (LightGBM two-model learner on the training campaigns),
``lgbm_dr_learner`` (LightGBM DR-learner on the same campaigns: the effect regressed on cross-fitted doubly
robust pseudo-outcomes, :mod:`promo_roi.causal.dr_learner`),
``random`` (a seeded uniform score: its calibrated forecast is the held-out
average effect times the audience) and ``transformer_uplift`` (the champion's
own network uplift: what the champion would have decided had it not chosen,
on its validation campaigns, what households are valued by; where it chose the
network, the champion's plan up to the calibration's nuisance fits).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from promo_roi import model_names
from promo_roi.causal.calibration import LinearCalibration

KEYS = ["household_id", "campaign_id"]
T_LEARNER, DR_LEARNER = model_names.T_LEARNER, model_names.DR_LEARNER
BASELINES = (model_names.HEURISTIC, T_LEARNER, DR_LEARNER, model_names.RANDOM, model_names.NETWORK_UPLIFT)
# The baseline priced as the champion prices (the network's own uplift); the others get an independent price.
NETWORK_BASELINE = model_names.NETWORK_UPLIFT


@dataclass(frozen=True)
class Decisions:
    predicted: pd.DataFrame  # household_id, campaign_id, predicted (the value the plan ranks by)
    forecast: pd.DataFrame  # campaign_id, forecast, low, high (incremental revenue of the audience)
    audience: pd.DataFrame  # household_id, campaign_id: whom each forecast describes
    chosen: pd.DataFrame  # household_id, campaign_id: the plan
    planned_cost: float  # what the plan expected to spend


# --- pure pieces -----------------------------------------------------------------------------------


def forecast_audience(scored: pd.DataFrame, target_lists: pd.DataFrame) -> pd.DataFrame:
    """Whom a campaign's forecast describes: its target list among the scored households, or every
    scored household where the campaign has no list (the scoring job's rule)."""
    listed = target_lists[KEYS].drop_duplicates()
    with_list = scored[scored["campaign_id"].isin(listed["campaign_id"])].merge(listed, on=KEYS)
    without = scored[~scored["campaign_id"].isin(listed["campaign_id"])]
    return pd.concat([with_list[KEYS], without[KEYS]], ignore_index=True).sort_values(KEYS).reset_index(drop=True)


def calibrated_forecast(uplift: pd.DataFrame, audience: pd.DataFrame, calibration: LinearCalibration,
                        interval: float) -> pd.DataFrame:
    """Per campaign: ``a N + b sum(uplift)`` over its audience, and the same for every bootstrap draw
    ``(a_k, b_k)`` with the new campaign's deviation ``u_k``; the interval is the draws' central
    ``interval`` quantiles."""
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    described = audience[KEYS].merge(uplift[[*KEYS, "uplift"]], on=KEYS, how="left", validate="one_to_one")
    totals = described.groupby("campaign_id")["uplift"].agg(["size", "sum"])
    rows = []
    for campaign_id, t in totals.iterrows():
        n, total = float(t["size"]), float(t["sum"])
        draws = calibration.total_draws(n, total)
        rows.append({"campaign_id": int(campaign_id), "forecast": calibration.total(n, total),
                     "low": float(np.quantile(draws, lo)), "high": float(np.quantile(draws, hi))})
    return pd.DataFrame(rows, columns=["campaign_id", "forecast", "low", "high"])


def plan_by_value(pairs: pd.DataFrame, constraints) -> tuple[pd.DataFrame, float]:
    """The project's planner on ``pairs`` (household_id, campaign_id, value, cost, redemptions):
    (the chosen pairs, their expected cost)."""
    from promo_roi.planning import plan_budget

    plan = plan_budget(pairs[[*KEYS, "value", "cost", "redemptions"]], constraints)
    chosen = pairs.loc[plan.selected, [*KEYS, "cost"]]
    return chosen[KEYS].reset_index(drop=True), float(chosen["cost"].sum())


def risk_aware_plan(pairs: pd.DataFrame, uplift: pd.DataFrame, calibration: LinearCalibration, margin: float,
                    constraints, quantile: float, bar: float = 0.0) -> tuple[pd.DataFrame, float]:
    """:func:`plan_by_value`, then ``planning.risk: quantile``'s rule (:func:`promo_roi.scoring.plan.plan_night`)
    for a baseline: a campaign whose chosen pairs' ROI at ``quantile`` of the calibration draws (gross profit
    ``margin * (a_k + u_k) n + b_k sum(uplift)`` against their expected cost) is below ``bar`` is left out and
    the rest planned again."""
    from promo_roi.scoring.plan import campaigns_at_risk, committed_campaigns

    excluded: set[int] = set()
    while True:
        chosen, planned_cost = plan_by_value(pairs[~pairs["campaign_id"].isin(excluded)], constraints)
        per = (chosen.merge(uplift[[*KEYS, "uplift"]], on=KEYS).merge(pairs[[*KEYS, "cost"]], on=KEYS)
               .groupby("campaign_id").agg(n=("uplift", "size"), uplift=("uplift", "sum"), cost=("cost", "sum")))
        quantiles = {int(c): float(np.quantile((margin * calibration.total_draws(r.n, r.uplift) - r.cost) / r.cost,
                                               quantile))
                     for c, r in per.iterrows() if r.cost > 0}
        at_risk = campaigns_at_risk(quantiles, bar, committed_campaigns(constraints))
        if not at_risk:
            return chosen, planned_cost
        excluded |= set(at_risk)


def random_predictions(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A uniform score in every uplift column (the evaluation's prediction shape)."""
    rng = np.random.default_rng(seed)
    score = rng.random(len(frame))
    return pd.DataFrame({"propensity": np.nan, "uplift_redeem": score, "uplift_coupon_product_spend": score,
                         "uplift_spend": score}, index=range(len(frame)))


def value_calibration(predictions, frames, nuisances, evaluation, outcome: str) -> LinearCalibration:
    """The champion's calibration method (best linear predictor of the held-out AIPW pseudo-outcome of
    ``outcome``, two-stage bootstrap over campaigns then households, the campaign effect) applied to another
    model's uplift on that outcome."""
    from promo_roi.causal.calibration import fit_linear

    tau = np.concatenate([p[f"uplift_{outcome}"].to_numpy(float) for p in predictions])
    phi = np.concatenate([n.phi(f, outcome) for n, f in zip(nuisances, frames)])
    campaign = np.concatenate([f["campaign_id"].to_numpy() for f in frames])
    return fit_linear(tau, phi, campaign, evaluation.bootstrap_samples, evaluation.seed)


def independent_pricing(predictions, frames, evaluation, redemption_model: str):
    """A targeted pair's expected redemption count from a model that is not the champion: ``predictions``'
    redemption probability (``p_redeem_t1``) calibrated on the held-out targeted households by
    ``redemption_model``, the champion's two methods (``ratio``: observed over predicted; ``shrunk``: the
    shrunk expected count), with the same bootstrap settings."""
    from promo_roi.causal.calibration import fit_ratio, fit_shrunk_count

    fits = {"ratio": fit_ratio, "shrunk": fit_shrunk_count}
    if redemption_model not in fits:
        raise ValueError(f"unknown redemption model {redemption_model!r}; known: {', '.join(fits)}")
    p = np.concatenate([pred["p_redeem_t1"].to_numpy(float) for pred in predictions])
    y = np.concatenate([f["redemptions"].to_numpy(float) for f in frames])
    targeted = np.concatenate([f["targeted"].to_numpy(float) > 0.5 for f in frames])
    campaign = np.concatenate([f["campaign_id"].to_numpy() for f in frames])
    return fits[redemption_model](y[targeted], p[targeted], campaign[targeted], evaluation.bootstrap_samples,
                                  evaluation.seed)


def priced_costs(pairs: pd.DataFrame, p_redeem, unit_costs: pd.DataFrame, pricing) -> pd.DataFrame:
    """household_id, campaign_id, cost, redemptions (0: no coupon inventory is planned) of ``pairs``: the
    campaign's contact cost plus ``pricing``'s expected count of ``p_redeem`` times its cost per redemption
    (``unit_costs``: campaign_id, contact_cost, redemption_cost; the scoring job's expected cost)."""
    priced = pairs[KEYS].assign(count=pricing.expected_count(np.asarray(p_redeem, dtype=float))).merge(
        unit_costs[["campaign_id", "contact_cost", "redemption_cost"]], on="campaign_id", how="inner",
        validate="many_to_one")
    priced["cost"] = priced["contact_cost"] + priced["count"] * priced["redemption_cost"]
    return priced[[*KEYS, "cost"]].assign(redemptions=0.0)


def baseline_decision(name: str, uplift: np.ndarray, scoring: pd.DataFrame, calibration: LinearCalibration,
                      audience: pd.DataFrame, published_costs: pd.DataFrame, margin: float, interval: float,
                      constraints, risk_quantile: float | None = None) -> Decisions:
    """One baseline's decisions from its raw uplift on the scoring frame's pairs; with ``risk_quantile``, its
    plan is :func:`risk_aware_plan`'s."""
    raw = scoring[KEYS].assign(uplift=np.asarray(uplift, dtype=float))
    predicted = raw.assign(predicted=calibration.apply(raw["uplift"]))[[*KEYS, "predicted"]]
    pairs = predicted.merge(published_costs, on=KEYS, how="inner", validate="one_to_one")
    pairs["value"] = margin * pairs["predicted"]
    if risk_quantile is None:
        chosen, planned_cost = plan_by_value(pairs, constraints)
    else:
        chosen, planned_cost = risk_aware_plan(pairs, raw, calibration, margin, constraints, risk_quantile)
    return Decisions(predicted, calibrated_forecast(raw, audience, calibration, interval), audience, chosen,
                     planned_cost)


# --- reads and models (side effects at the edge) --------------------------------------------------


def _published_frame(spark, spec, config, run_date: dt.date, columns: list[str]) -> pd.DataFrame:
    from pyspark.sql import functions as F

    from promo_roi.publication import published

    return published(spark, spec, config).filter(F.col("run_date") == F.lit(run_date)).select(*columns).toPandas()


def published_decisions(spark, config, run_date: dt.date) -> Decisions:
    """The champion's decisions as published for ``run_date``."""
    from promo_roi.bronze import read_bronze
    from promo_roi.tables import CAMPAIGN_ROI_FORECAST, HOUSEHOLD_SCORES, HOUSEHOLD_TARGETING

    margin = config.scoring.gross_margin
    # The value each household was planned on, as revenue: its calibrated uplift on scoring.value_outcome.
    scores = _published_frame(spark, HOUSEHOLD_SCORES, config, run_date, [*KEYS, "incremental_gross_profit"])
    scores["predicted"] = scores.pop("incremental_gross_profit") / margin
    forecast = _published_frame(spark, CAMPAIGN_ROI_FORECAST, config, run_date, [
        "campaign_id", "incremental_revenue", "incremental_gross_profit_low", "incremental_gross_profit_high"])
    targeting = _published_frame(spark, HOUSEHOLD_TARGETING, config, run_date, [*KEYS, "expected_cost"])
    lists = read_bronze(spark, config).campaigns.select(*KEYS).toPandas()
    return Decisions(
        predicted=scores,
        forecast=pd.DataFrame({"campaign_id": forecast["campaign_id"], "forecast": forecast["incremental_revenue"],
                               "low": forecast["incremental_gross_profit_low"] / margin,
                               "high": forecast["incremental_gross_profit_high"] / margin}),
        audience=forecast_audience(scores[KEYS], lists),
        chosen=targeting[KEYS], planned_cost=float(targeting["expected_cost"].sum()),
    )


def risk_aware_published_decisions(spark, config, run_date: dt.date, published: Decisions, quantile: float,
                                   model) -> Decisions:
    """The champion's decisions with the plan the night would have published under ``planning.risk: quantile``:
    the planning step (:func:`promo_roi.scoring.plan.plan_night`) on the published scores. ``model``: the
    champion that scored them (:func:`promo_roi.scoring.job.champion`, already loaded by the caller)."""
    import dataclasses

    planning = dataclasses.replace(config.planning, risk="quantile", risk_quantile=quantile)
    return _replanned(spark, config, run_date, published, planning, model.calibration, model.version,
                      reprice=False)


def repriced_published_decisions(spark, config, run_date: dt.date, published: Decisions, model,
                                 repriced_by) -> Decisions:
    """The champion's decisions with the plan the night would have published had ``repriced_by`` (the champion's
    calibration naming another ``scoring.redemption_model``) priced every pair's redemptions: the published
    scores with their expected cost priced again (:func:`promo_roi.scoring.forecast.repriced`), then the
    planning step on them. The same network, values and forecasts: only what each pair is expected to cost
    differs."""
    return _replanned(spark, config, run_date, published, config.planning, repriced_by, model.version,
                      reprice=True)


def _replanned(spark, config, run_date: dt.date, published: Decisions, planning, calibration, model_version,
               reprice: bool) -> Decisions:
    """The planning step on the published scores of ``run_date`` with ``calibration`` (which, with ``reprice``,
    also prices every pair's redemptions again)."""
    import dataclasses

    from promo_roi.scoring.forecast import repriced
    from promo_roi.scoring.inputs import planned_campaigns
    from promo_roi.scoring.plan import plan_night

    plans = planned_campaigns(spark, config, run_date)
    scores = _published_scores(spark, config, run_date)
    if reprice:
        scores = scores.transform(repriced(plans, calibration))
    night = plan_night(scores, plans.toPandas(), planning, calibration, config.scoring.gross_margin,
                       config.scoring.interval, run_date, "what-if", str(model_version),
                       value_outcome=config.scoring.value_outcome)
    targeting = night.targeting.select(*KEYS, "expected_cost").toPandas()
    night.selected.unpersist()
    return dataclasses.replace(published, chosen=targeting[KEYS], planned_cost=float(targeting["expected_cost"].sum()))


def repriced_costs(spark, config, run_date: dt.date, calibration) -> pd.DataFrame:
    """household_id, campaign_id, cost: the published pairs' expected cost priced by ``calibration``'s
    redemption model (what the baselines plan with in a pricing what-if)."""
    from pyspark.sql import functions as F

    from promo_roi.scoring.forecast import repriced
    from promo_roi.scoring.inputs import planned_campaigns

    return (_published_scores(spark, config, run_date)
            .transform(repriced(planned_campaigns(spark, config, run_date), calibration))
            .select(*KEYS, F.col("expected_cost").alias("cost")).toPandas())


def _published_scores(spark, config, run_date: dt.date):
    """gold.household_scores of the run published for ``run_date`` (a Spark DataFrame)."""
    from pyspark.sql import functions as F

    from promo_roi.publication import published as published_rows
    from promo_roi.tables import HOUSEHOLD_SCORES

    return published_rows(spark, HOUSEHOLD_SCORES, config).filter(F.col("run_date") == F.lit(run_date))


def _held_out(spark, config, run_date: dt.date) -> dict[str, pd.DataFrame]:
    """The training examples of ``run_date`` by split, as pandas frames."""
    from pyspark.sql import functions as F

    from promo_roi import delta_io
    from promo_roi.tables import OUTCOME_COLUMNS, training_examples_spec

    examples = delta_io.read_table(spark, training_examples_spec(config.features), config.warehouse).filter(
        F.col("as_of_date") == F.lit(run_date)).toPandas()
    for c in (*OUTCOME_COLUMNS, "targeted"):
        examples[c] = examples[c].astype(float)
    # In key order: the bootstrap resamples and the random baseline's scores go by row position, and the rows of a
    # Spark read come in whatever order its partitions finish.
    examples = examples.sort_values(["split", *KEYS], kind="stable")
    return {split: part.reset_index(drop=True) for split, part in examples.groupby("split")}


def baseline_decisions(spark, config, run_date: dt.date, champion_uri: str, seed: int = 0,
                       risk_quantile: float | None = None, repriced_by=None,
                       ablations: Mapping[str, str] | None = None) -> dict[str, Decisions]:
    """Every baseline's decisions for ``run_date`` (the published run must exist); with ``risk_quantile``, each
    baseline a second time with the risk-aware plan; with ``repriced_by`` (the champion's calibration naming
    another redemption model), once more planned on costs priced by that model. ``transformer_uplift`` plans
    on the champion's published costs (:func:`repriced_costs` for the other model); the other baselines on
    the T-learner's calibrated redemption probability (:func:`independent_pricing`, :func:`priced_costs`),
    which does not depend on the champion. ``ablations`` (name -> artifact location of another network,
    trained on the same night with some settings changed) are decided as ``transformer_uplift`` is: their own
    outputs, on the champion's costs, so that a plan differs from the champion's network's by the network."""
    from promo_roi.bronze import read_bronze
    from promo_roi.scoring.inputs import planned_campaigns, scoring_examples
    from promo_roi.scoring.plan import budget_constraints
    from promo_roi.scoring.predict import load_champion
    from promo_roi.tables import HOUSEHOLD_SCORES, user_features_spec
    from promo_roi.training import evaluate

    _, evaluation, mlflow_config = config.require_training()
    network = load_champion(champion_uri, mlflow_config.tracking_uri)
    ablated = {name: load_champion(uri, mlflow_config.tracking_uri) for name, uri in (ablations or {}).items()}
    encode = network.feature_encoder.encode
    splits = _held_out(spark, config, run_date)
    held = [splits[s] for s in ("validation", "test")]
    nuisance = [evaluate.fit_nuisance(f, evaluate.design_matrix(encode(f)), evaluation.nuisance_folds, evaluation.seed)
                for f in held]
    t_learner = evaluate.TLearnerBaseline(encode=encode, seed=evaluation.seed).fit(splits["train"])
    dr_learner = evaluate.DRLearnerBaseline(encode=encode, levels=t_learner, folds=evaluation.nuisance_folds,
                                            seed=evaluation.seed).fit(splits["train"])
    models: Mapping[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
        model_names.HEURISTIC: evaluate.heuristic_predictions, T_LEARNER: t_learner, DR_LEARNER: dr_learner,
        model_names.RANDOM: lambda frame: random_predictions(frame, seed),
        # The network's own outputs (the pyfunc's predict), whatever the champion values households by.
        NETWORK_BASELINE: lambda frame: network.predict(None, frame),
        **{name: (lambda frame, other=other: other.predict(None, frame)) for name, other in ablated.items()},
    }
    from promo_roi import delta_io

    bronze = read_bronze(spark, config)
    plans = planned_campaigns(spark, config, run_date)
    user_features = delta_io.read_table(spark, user_features_spec(config.features), config.warehouse)
    scoring = scoring_examples(bronze, user_features, plans, run_date, config).toPandas().sort_values(
        KEYS, kind="stable").reset_index(drop=True)  # key order: the random baseline's scores go by position
    # The network's own uplift is priced as the champion prices its pairs (the published expected costs);
    # every other baseline by a champion-independent price, the T-learner's redemption probability calibrated
    # the champion's way, so that its plan does not change when the champion does.
    published_costs = _published_frame(spark, HOUSEHOLD_SCORES, config, run_date, [*KEYS, "expected_cost"]).rename(
        columns={"expected_cost": "cost"}).assign(redemptions=0.0)
    unit_costs = plans.select("campaign_id", "contact_cost", "redemption_cost").toPandas()
    # Every model predicts each held-out frame and the scoring pairs once; the T-learner's predictions also
    # price the other baselines' pairs.
    predictions = {name: ([model(f) for f in held], model(scoring)) for name, model in models.items()}
    held_redemptions, t_learner_scoring = predictions[T_LEARNER]
    scoring_redemptions = t_learner_scoring["p_redeem_t1"].to_numpy(float)

    def independent(redemption_model: str) -> pd.DataFrame:
        pricing = independent_pricing(held_redemptions, held, evaluation, redemption_model)
        # The pairs the night published, as every model's plan chooses among them.
        return priced_costs(scoring, scoring_redemptions, unit_costs, pricing).merge(published_costs[KEYS], on=KEYS)

    own = independent(config.scoring.redemption_model)
    variants: dict[str, list[tuple[str, float | None, pd.DataFrame]]] = {
        "champion": [("", None, published_costs)], "independent": [("", None, own)]}
    if risk_quantile is not None:
        variants["champion"].append((f" + risk q={risk_quantile:g}", risk_quantile, published_costs))
        variants["independent"].append((f" + risk q={risk_quantile:g}", risk_quantile, own))
    if repriced_by is not None:
        suffix = f" + {repriced_by.redemption_model} redemptions"
        variants["champion"].append((suffix, None, repriced_costs(spark, config, run_date, repriced_by).assign(
            redemptions=0.0)))
        variants["independent"].append((suffix, None, independent(repriced_by.redemption_model)))
    audience = forecast_audience(scoring[KEYS], bronze.campaigns.select(*KEYS).toPandas())
    constraints = budget_constraints(plans.toPandas(), config.planning)
    out = {}
    outcome = config.scoring.value_outcome
    for name, (held_predictions, scoring_predictions) in predictions.items():
        calibration = value_calibration(held_predictions, held, nuisance, evaluation, outcome)
        uplift = scoring_predictions[f"uplift_{outcome}"].to_numpy(float)
        on_champion_costs = name == NETWORK_BASELINE or name in ablated
        for suffix, quantile, priced in variants["champion" if on_champion_costs else "independent"]:
            out[name + suffix] = baseline_decision(name + suffix, uplift, scoring, calibration, audience, priced,
                                                   config.scoring.gross_margin, config.scoring.interval,
                                                   constraints, quantile)
    return out
