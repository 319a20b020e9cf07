"""The promotion lift yardstick: how well each model forecasts a placed week's units, rolling origin over
held-out weeks, against the baselines a merchandiser would use.

For each held-out week W, every model is fitted on the weeks before W only
and forecasts the units of W's placed product-store-weeks (on display, in
the mailer, or both) that have a baseline (silver.item_store_week_features:
units per unplaced week over the 8 weeks before). The baselines:

- ``no_lift``: the baseline itself, a placement sells what an ordinary week does;
- ``category_lift``: the baseline times the lift of the product's category
  under the same placement type in the training weeks (units over baseline
  summed over its placed rows; the placement type's lift across categories
  where the category has fewer than ``MIN_CATEGORY_ROWS`` placed rows);
- ``own_last_lift``: the baseline times the lift of the product's own last
  placement in that store (``last_placement_lift``), ``category_lift`` where
  it has none;
- ``lgbm``: LightGBM (Poisson) on the features, the placement type and the category.

Scored pooled over the held-out weeks, per placement type and for all
(:func:`score`): WAPE of units summed per product and week over stores, and
of lift (the same error over sum |units - baseline|, how much of the
realized departure from the baseline a model gets wrong), the mean Poisson
deviance per product-store-week, each with a 90% interval from resampling
whole products, each model minus the best baseline on the same draws
(negative: better), and the bias of the totals (sum of forecasts over sum
of units, minus 1). Pure pandas and numpy; the job
(jobs/evaluate_promotions.py) reads the silver tables and writes
gold.promotion_lift_evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from promo_roi.product_promotions.resampling import cluster_weights, nan_interval

PLACEMENT_TYPES = ("display", "mailer", "display_and_mailer")
BASELINES = ("no_lift", "category_lift", "own_last_lift")
MODELS = (*BASELINES, "lgbm")
MIN_CATEGORY_ROWS = 20
FEATURES = ("baseline_units", "unplaced_weeks", "placed_weeks", "shelf_price", "discount_depth_before",
            "weeks_since_last_placement", "last_placement_lift", "category_units_before", "week_of_year",
            "weeks_since_first_sale")
LGBM_PARAMS = {"objective": "poisson", "num_leaves": 31, "n_estimators": 200, "learning_rate": 0.05,
               "min_child_samples": 50, "verbose": -1, "deterministic": True, "force_row_wise": True,
               "n_jobs": 2, "random_state": 0}


def placement_type(frame: pd.DataFrame) -> np.ndarray:
    """'display', 'mailer', 'display_and_mailer' or 'none' per row (``on_display``, ``in_mailer``)."""
    display, mailer = frame["on_display"].to_numpy(bool), frame["in_mailer"].to_numpy(bool)
    return np.select([display & mailer, display, mailer], ["display_and_mailer", "display", "mailer"], "none")


def evaluable(frame: pd.DataFrame) -> pd.DataFrame:
    """The placed rows with a baseline: what the yardstick forecasts (with their ``placement_type``)."""
    out = frame.assign(placement_type=placement_type(frame))
    return out[(out["placement_type"] != "none") & out["baseline_units"].notna()].reset_index(drop=True)


def category_lifts(train: pd.DataFrame) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """Lift (units over baseline, summed) per (category, placement type) with at least ``MIN_CATEGORY_ROWS``
    rows, and per placement type across categories, from evaluable training rows."""
    sums = train.groupby(["product_category", "placement_type"], dropna=False).agg(
        units=("units", "sum"), baseline=("baseline_units", "sum"), rows=("units", "size"))
    by_type = train.groupby("placement_type").agg(units=("units", "sum"), baseline=("baseline_units", "sum"))
    overall = {t: float(r.units / r.baseline) if r.baseline > 0 else 1.0 for t, r in by_type.iterrows()}
    per_category = {key: float(r.units / r.baseline) for key, r in sums.iterrows()
                    if r.rows >= MIN_CATEGORY_ROWS and r.baseline > 0}
    return per_category, overall


def baseline_forecasts(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, np.ndarray]:
    """The three merchandiser baselines' units for ``test`` (evaluable rows), fitted on ``train``."""
    per_category, overall = category_lifts(train)
    lift = np.array([per_category.get((c, t), overall.get(t, 1.0))
                     for c, t in zip(test["product_category"], test["placement_type"])], dtype=float)
    base = test["baseline_units"].to_numpy(float)
    own = test["last_placement_lift"].to_numpy(float)
    return {
        "no_lift": base,
        "category_lift": base * lift,
        "own_last_lift": base * np.where(np.isfinite(own), own, lift),
    }


def _design(frame: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    out = frame[list(FEATURES)].astype(float)
    for t in PLACEMENT_TYPES:
        out[f"type_{t}"] = (frame["placement_type"] == t).astype(float)
    out["category"] = pd.Categorical(frame["product_category"], categories=categories)
    return out


def lgbm_forecast(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    from lightgbm import LGBMRegressor

    categories = sorted(train["product_category"].dropna().unique())
    model = LGBMRegressor(**LGBM_PARAMS)
    model.fit(_design(train, categories), train["units"].to_numpy(float))
    return model.predict(_design(test, categories))


def rolling_origin_forecasts(frame: pd.DataFrame, held_out_weeks: Sequence[int],
                             with_lgbm: bool = True) -> pd.DataFrame:
    """Evaluable rows of the held-out weeks with every model's forecast (columns ``forecast_<model>``), each
    fitted on the weeks before its row's week. ``frame``: item_store_week joined to its features."""
    rows = evaluable(frame)
    parts = []
    for week in held_out_weeks:
        train, test = rows[rows["week"] < week], rows[rows["week"] == week].copy()
        if test.empty or train.empty:
            continue
        for model, forecast in baseline_forecasts(train, test).items():
            test[f"forecast_{model}"] = forecast
        if with_lgbm:
            test["forecast_lgbm"] = lgbm_forecast(train, test)
        parts.append(test)
    if not parts:
        raise ValueError(f"no held-out week among {list(held_out_weeks)} has placed rows with earlier weeks to fit on")
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class Score:
    model: str
    placement_type: str
    rows: int
    product_weeks: int
    units: float
    wape: float
    wape_low: float
    wape_high: float
    lift_wape: float
    bias: float              # sum of forecasts over sum of units, minus 1 (negative: too few units forecast)
    bias_low: float
    bias_high: float
    poisson_deviance: float
    deviance_low: float
    deviance_high: float
    reference_model: str
    wape_minus_reference: float
    difference_low: float
    difference_high: float
    deviance_minus_reference: float
    deviance_difference_low: float
    deviance_difference_high: float


# A forecast mean below a hundredth of a unit is scored as a hundredth: the deviance of a count that happened
# against a forecast of exactly 0 is infinite, and a baseline of 0 (a product that never sold unplaced) is common.
DEVIANCE_FLOOR = 0.01


def poisson_deviance(units: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Per row: 2 (y log(y / mu) - (y - mu)), the proper score of a forecast mean of a count (mu floored at
    ``DEVIANCE_FLOOR``)."""
    mu = np.maximum(forecast, DEVIANCE_FLOOR)
    ratio = np.where(units > 0, units * np.log(np.where(units > 0, units, 1.0) / mu), 0.0)
    return 2.0 * (ratio - (units - mu))


def score(forecasts: pd.DataFrame, models: Sequence[str], n_boot: int = 200, seed: int = 0,
          level: float = 0.9) -> list[Score]:
    """Per model and placement type (and 'all' pooled): WAPE of units summed per product and week over its
    stores (a row alone mostly sells 0 or 1 unit, where the absolute error rewards forecasting 0 rather than
    the mean a plan needs), the lift WAPE on the same sums, and the mean Poisson deviance per row; 90%
    intervals from drawing whole products with replacement, and each model minus the baseline with the
    lowest WAPE of the placement type, on the same draws."""
    out: list[Score] = []
    for kind in ("all", *PLACEMENT_TYPES):
        part = forecasts if kind == "all" else forecasts[forecasts["placement_type"] == kind]
        if part.empty:
            continue
        columns = ["units", "baseline_units", *(f"forecast_{m}" for m in models)]
        sums = part.groupby(["product_id", "week"])[columns].sum().reset_index()
        products, product_index = np.unique(sums["product_id"].to_numpy(), return_inverse=True)
        _, row_product = np.unique(part["product_id"].to_numpy(), return_inverse=True)
        weights = cluster_weights(len(products), n_boot, seed)  # [draw, product]

        def per_product(values: np.ndarray, index: np.ndarray = product_index) -> np.ndarray:
            return np.bincount(index, values, len(products))

        units = sums["units"].to_numpy(float)
        drawn_units = weights @ per_product(units)
        drawn_rows = weights @ per_product(np.ones(len(part)), row_product)
        lift_error = np.abs(units - sums["baseline_units"].to_numpy(float)).sum()
        row_units = part["units"].to_numpy(float)
        wape, deviance, drawn_wape, drawn_deviance, lift_wape, bias, drawn_bias = {}, {}, {}, {}, {}, {}, {}
        for m in models:
            forecast = sums[f"forecast_{m}"].to_numpy(float)
            error = np.abs(units - forecast)
            row_deviance = poisson_deviance(row_units, part[f"forecast_{m}"].to_numpy(float))
            wape[m] = error.sum() / units.sum() if units.sum() > 0 else float("nan")
            deviance[m] = row_deviance.mean()
            lift_wape[m] = error.sum() / lift_error if lift_error > 0 else float("nan")
            bias[m] = forecast.sum() / units.sum() - 1 if units.sum() > 0 else float("nan")
            # A draw of products that sold nothing has no WAPE (nan, left out of the interval).
            with np.errstate(invalid="ignore", divide="ignore"):
                drawn_wape[m] = np.where(drawn_units > 0, (weights @ per_product(error)) / drawn_units, np.nan)
                drawn_bias[m] = np.where(drawn_units > 0, (weights @ per_product(forecast)) / drawn_units - 1, np.nan)
            drawn_deviance[m] = (weights @ per_product(row_deviance, row_product)) / drawn_rows
        baselines = [m for m in models if m in BASELINES]
        reference = min(baselines, key=lambda m: (np.nan_to_num(wape[m], nan=np.inf), baselines.index(m)))
        for m in models:
            out.append(Score(
                m, kind, len(part), len(sums), float(units.sum()),
                float(wape[m]), *nan_interval(drawn_wape[m], level), float(lift_wape[m]),
                float(bias[m]), *nan_interval(drawn_bias[m], level),
                float(deviance[m]), *nan_interval(drawn_deviance[m], level), reference,
                float(wape[m] - wape[reference]), *nan_interval(drawn_wape[m] - drawn_wape[reference], level),
                float(deviance[m] - deviance[reference]),
                *nan_interval(drawn_deviance[m] - drawn_deviance[reference], level),
            ))
    return out
