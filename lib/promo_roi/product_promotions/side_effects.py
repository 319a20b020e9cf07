"""What a placement costs beyond its own week: the dip after it (pull-forward) and the units its category's
other products lose in its week (cannibalisation), measured on the warehouse's history.

Both are read against what an unplaced week sold then, with the chain's week-to-week movement taken out by
controls of the same week:

- **Pull-forward.** Each product-store that was ever placed gets a dense weekly series from its first sale
  (a week without a row sold nothing: silver.item_store_week keeps every sale and every placement after the
  first sale) and, each week, the baseline of silver.item_store_week_features (units per unplaced week over
  the 8 weeks before). An *event* is a placed week followed by an unplaced one; a *control* an unplaced week
  between two unplaced ones. The control ratio of week w is the controls' units in w + 1 over their
  baselines in w, summed over every control of that week; an event's expected units in w + 1 are its
  baseline times that ratio. The dip is expected minus realised units in w + 1: as a rate of the expected
  units (0.1: the week after sold a tenth less than it would have), and as a share of the events' lift
  (units in w minus baseline; 0.3: a third of the extra units were sales taken from the next week).
- **Cannibalisation.** Per category, store and week: the units of the category's products that were not
  placed that week (the others), against their baselines (what each sells in an unplaced week, from the 8
  weeks before; see :func:`cannibalisation_sums`). A category-store-week with a placement is an event, one
  without a control; a week's control ratio is its controls' units over their baselines. The others' loss
  is expected (the baselines times the control ratio) minus realised units, as a rate of the
  expected units and as a share of the placed products' lift (0.2: a fifth of the extra units were taken
  from the same shelf).

Both read only products whose units count items (:data:`NOT_ITEM_COUNTS` are left out).

A negative loss is a halo (the next week, or the shelf, sold more). The share of lift is only defined where
the lift summed over the events is positive, and is unstable where it is small next to the units moved: the
rate is the figure to read first. Intervals (90%) resample whole products
for pull-forward and whole categories for cannibalisation (a category's products share a shelf), the controls'
ratios recomputed in every draw. Retailers place what they expect to sell: a placed product's next week may
differ from a control's for reasons other than the placement, so these are associations with the week's
movement removed, not randomised effects, and they are published as such.

The Spark transforms shape rows and sum them per product (or category) and week; :func:`estimate` is pure
numpy on those sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from promo_roi.product_promotions.baseline_features import WINDOW_WEEKS
from promo_roi.product_promotions.lift_yardstick import PLACEMENT_TYPES
from promo_roi.product_promotions.resampling import cluster_weights, nan_interval
from promo_roi.quality import Transform

KEY = ["product_id", "store_id", "week"]
# Categories whose quantity is not a count of items: fuel is sold by the gallon, and the coupon and
# miscellaneous lines (fuel among them, gift cards) carry amounts. One store-week of gasoline "sells" up to
# 257,900 units (the full data), more than every placed product of a week together: summed with items they
# would decide the cannibalisation of the few placements in their category.
NOT_ITEM_COUNTS = ("COUPON/MISC ITEMS", "FUEL")


def counted_in_items(categories: DataFrame) -> DataFrame:
    """``(product_id, product_category) -> `` the products whose units count items (not ``NOT_ITEM_COUNTS``;
    a product with no category is kept)."""
    return categories.filter(~F.coalesce(F.col("product_category").isin(*NOT_ITEM_COUNTS), F.lit(False)))


def _placement_type() -> F.Column:
    return (F.when(F.col("on_display") & F.col("in_mailer"), "display_and_mailer")
            .when(F.col("on_display"), "display").when(F.col("in_mailer"), "mailer").otherwise("none"))


def placed_pair_series(last_week: int, window_weeks: int = WINDOW_WEEKS) -> Transform:
    """``silver.item_store_week -> `` one row per week from the first sale to ``last_week`` of every product-store
    placed at least once by then: units (0 where no row), placement type, the baseline (units per unplaced week
    over the ``window_weeks`` before, from the first sale on; null with none), the units of those weeks, and
    the next week's units and placement."""

    def _t(weeks: DataFrame) -> DataFrame:
        rows = weeks.filter(F.col("week") <= last_week)
        placed_pairs = (rows.filter(F.col("on_display") | F.col("in_mailer"))
                        .select("product_id", "store_id").distinct())
        grid = (rows.groupBy("product_id", "store_id").agg(F.min("first_sale_week").alias("first_sale_week"))
                .join(placed_pairs, ["product_id", "store_id"])
                .select("product_id", "store_id",
                        F.explode(F.sequence(F.col("first_sale_week"), F.lit(last_week).cast("long"))).alias("week")))
        series = (grid.join(rows.select(*KEY, "units", "on_display", "in_mailer"), KEY, "left")
                  .select(*KEY, F.coalesce("units", F.lit(0)).alias("units"),
                          F.coalesce(_placement_type(), F.lit("none")).alias("placement_type")))
        pair = Window.partitionBy("product_id", "store_id").orderBy("week")
        before = pair.rowsBetween(-window_weeks, -1)
        unplaced = F.col("placement_type") == "none"
        unplaced_weeks = F.sum(unplaced.cast("long")).over(before)
        unplaced_units = F.sum(F.when(unplaced, F.col("units")).otherwise(0)).over(before)
        return series.select(
            *KEY, "units", "placement_type",
            F.when(unplaced_weeks > 0, unplaced_units / unplaced_weeks).alias("baseline_units"),
            F.coalesce(F.sum("units").over(before), F.lit(0)).alias("units_before"),
            F.lead("units").over(pair).alias("next_units"),
            F.lead("placement_type").over(pair).alias("next_placement_type"),
            F.lag("placement_type").over(pair).alias("previous_placement_type"),
        )

    return _t


def pull_forward_sums(series: DataFrame) -> DataFrame:
    """``placed_pair_series -> `` per product, week and role (``event``: placed, then unplaced; ``control``:
    unplaced between two unplaced weeks) and placement type: rows, units, baseline and next week's units."""
    has_next = F.col("next_units").isNotNull() & F.col("baseline_units").isNotNull()
    unplaced = F.col("placement_type") == "none"
    role = (F.when(has_next & ~unplaced & (F.col("next_placement_type") == "none"), "event")
            .when(has_next & unplaced & (F.col("next_placement_type") == "none")
                  & (F.col("previous_placement_type") == "none"), "control"))
    return (series.withColumn("role", role).filter(F.col("role").isNotNull())
            .groupBy("product_id", "week", "role", "placement_type")
            .agg(F.count(F.lit(1)).alias("rows"), F.sum("units").cast("double").alias("units"),
                 F.sum("baseline_units").alias("baseline_units"),
                 F.sum("next_units").cast("double").alias("next_units")))


def cannibalisation_sums(weeks: DataFrame, series: DataFrame, products: DataFrame, first_week: int,
                         last_week: int, window_weeks: int = WINDOW_WEEKS) -> DataFrame:
    """Per category, week and role, summed over stores from ``first_week`` + ``window_weeks`` to ``last_week``
    (``weeks``: silver.item_store_week, ``series``: :func:`placed_pair_series`, ``products``: product id and
    category): role (``event``: a placement in the category-store that week; ``control``: none), the
    others' units (the products not placed that week), their baseline, and the placed products' lift.

    The others' baseline is what they sell in an unplaced week: for a product-store placed at some time, its
    baseline of that week (units per unplaced week of the window; the window's mean where every week of it
    was placed); for one never placed, its mean over the window (the category's units then, less the placed
    products'). A baseline that counted the others' own earlier placements would read the end of their
    promotions as a loss. A category-store-week with a placement that has no baseline is left out: there is
    no lift to compare the others' loss with."""
    categories = products.select("product_id", "product_category")
    totals = (weeks.filter(F.col("week") <= last_week).join(categories, "product_id", "left")
              .groupBy("product_category", "store_id", "week").agg(F.sum("units").alias("units")))
    # Dense per category-store from its first week, so that the window counts weeks, not rows.
    grid = (totals.groupBy("product_category", "store_id").agg(F.min("week").alias("first"))
            .select("product_category", "store_id",
                    F.explode(F.sequence(F.col("first"), F.lit(last_week).cast("long"))).alias("week")))
    shelf = Window.partitionBy("product_category", "store_id").orderBy("week").rowsBetween(-window_weeks, -1)
    category_weeks = (grid.join(totals, ["product_category", "store_id", "week"], "left")
                      .withColumn("units", F.coalesce("units", F.lit(0)))
                      .withColumn("units_before", F.coalesce(F.sum("units").over(shelf), F.lit(0))))
    placed = F.col("placement_type") != "none"
    pairs = (series.join(categories, "product_id", "left")
             .groupBy("product_category", "store_id", "week")
             .agg(F.count_if(placed).alias("placements"),
                  F.sum(F.when(placed, F.col("units"))).alias("placed_units"),
                  F.sum("units_before").alias("pairs_units_before"),
                  F.sum(F.when(~placed, F.coalesce("baseline_units", F.col("units_before") / window_weeks)))
                  .alias("unplaced_pairs_baseline"),
                  F.sum(F.when(placed, F.col("units") - F.col("baseline_units"))).alias("lift_units"),
                  F.count_if(placed & F.col("baseline_units").isNull()).alias("without_baseline")))
    joined = category_weeks.join(pairs, ["product_category", "store_id", "week"], "left")
    never_placed_baseline = (F.col("units_before") - F.coalesce("pairs_units_before", F.lit(0))) / window_weeks
    return (joined.filter((F.col("week") >= first_week + window_weeks)
                          & (F.coalesce("without_baseline", F.lit(0)) == 0))
            .select(
                F.coalesce("product_category", F.lit("(unknown)")).alias("product_category"), "store_id", "week",
                F.when(F.coalesce("placements", F.lit(0)) > 0, "event").otherwise("control").alias("role"),
                (F.col("units") - F.coalesce("placed_units", F.lit(0))).cast("double").alias("other_units"),
                (never_placed_baseline + F.coalesce("unplaced_pairs_baseline", F.lit(0.0)))
                .alias("other_baseline_units"),
                F.coalesce("lift_units", F.lit(0.0)).alias("lift_units"))
            .groupBy("product_category", "week", "role")
            .agg(F.count(F.lit(1)).alias("rows"), F.sum("other_units").alias("other_units"),
                 F.sum("other_baseline_units").alias("other_baseline_units"),
                 F.sum("lift_units").alias("lift_units")))


@dataclass(frozen=True)
class SideEffect:
    effect: str              # pull_forward | cannibalisation
    placement_type: str      # all, display, mailer, display_and_mailer
    events: int              # placed product-store-weeks (pull-forward) or category-store-weeks (cannibalisation)
    #                          compared: those of a week with controls
    controls: int
    lift_units: float        # the events' units over their baseline, summed
    expected_units: float    # what the next week (or the others) would have sold: reference x controls' ratio
    lost_units: float        # expected minus realised units of the next week (or of the others)
    loss_rate: float         # lost over expected
    loss_rate_low: float
    loss_rate_high: float
    share: float             # lost over lift (none where the lift is not positive)
    share_low: float
    share_high: float


def _matrix(frame: pd.DataFrame, cluster_index: np.ndarray, week_index: np.ndarray, column: str, n_clusters: int,
            n_weeks: int) -> np.ndarray:
    out = np.zeros((n_clusters, n_weeks))
    np.add.at(out, (cluster_index, week_index), frame[column].to_numpy(float))
    return out


def _effect(sums: pd.DataFrame, cluster: str, realised: str, reference: str, lift: str, effect: str,
            kinds: list[tuple[str, pd.Series]], n_boot: int, seed: int, level: float) -> list[SideEffect]:
    """Shares of one effect from per-(cluster, week, role) sums: controls' ``realised`` over ``reference`` per
    week gives each week's ratio; each event group's loss is reference x ratio - realised, over its ``lift``."""
    clusters, cluster_index = np.unique(sums[cluster].to_numpy(), return_inverse=True)
    weeks, week_index = np.unique(sums["week"].to_numpy(), return_inverse=True)
    shape = (len(clusters), len(weeks))
    control = (sums["role"] == "control").to_numpy()

    def matrix(mask: np.ndarray, column: str) -> np.ndarray:
        return _matrix(sums[mask], cluster_index[mask], week_index[mask], column, *shape)

    control_realised, control_reference = matrix(control, realised), matrix(control, reference)
    # Row 0 is the data itself (every cluster once), the other rows the draws.
    weights = np.vstack([np.ones(len(clusters)), cluster_weights(len(clusters), n_boot, seed)])
    with np.errstate(invalid="ignore", divide="ignore"):
        # [draw, week]: a week with no control reference has no ratio and its events drop out of that draw.
        ratio = (weights @ control_realised) / (weights @ control_reference)
    covered = np.isfinite(ratio)

    def interval(values: np.ndarray) -> tuple[float, float]:
        return nan_interval(values[1:], level)

    out = []
    for kind, mask in kinds:
        event = (sums["role"] == "event").to_numpy() & mask.to_numpy()
        if not event.any():
            continue
        event_reference, event_realised = matrix(event, reference), matrix(event, realised)
        event_lift = matrix(event, lift)
        expected = np.where(covered, (weights @ event_reference) * np.nan_to_num(ratio), 0.0).sum(axis=1)
        lost = expected - np.where(covered, weights @ event_realised, 0.0).sum(axis=1)
        lifted = np.where(covered, weights @ event_lift, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(expected > 0, lost / expected, np.nan)
            share = np.where(lifted > 0, lost / lifted, np.nan)
        # The events compared: those of weeks with a control (on the data itself, draw 0).
        events = float(np.where(covered[0], matrix(event, "rows"), 0.0).sum())
        out.append(SideEffect(effect, kind, int(events), int(sums.loc[control, "rows"].sum()), float(lifted[0]),
                              float(expected[0]), float(lost[0]), float(rate[0]), *interval(rate),
                              float(share[0]), *interval(share)))
    return out


def estimate(pull_forward: pd.DataFrame, cannibalisation: pd.DataFrame, n_boot: int = 200, seed: int = 0,
             level: float = 0.9) -> list[SideEffect]:
    """Pull-forward per placement type (and all) and cannibalisation (all) from the sums of
    :func:`pull_forward_sums` and :func:`cannibalisation_sums`, with intervals."""
    pf = pull_forward.assign(lift=pull_forward["units"] - pull_forward["baseline_units"])
    types = [("all", pd.Series(True, index=pf.index))] + [
        (t, pf["placement_type"] == t) for t in PLACEMENT_TYPES]
    return [
        *_effect(pf, "product_id", "next_units", "baseline_units", "lift", "pull_forward", types, n_boot, seed, level),
        *_effect(cannibalisation, "product_category", "other_units", "other_baseline_units", "lift_units",
                 "cannibalisation", [("all", pd.Series(True, index=cannibalisation.index))], n_boot, seed, level),
    ]
