"""The entry points: ``plan_budget`` (numpy) and ``plan_budget_spark``.

Both validate the pairs, resolve the problem, run the same driver on their
engine, apply minimum budgets, check the result and summarise it; they
differ only in where the pairs live and how the selection comes back. The
method is described in this package's README.md.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from promo_roi.observability import stage
from promo_roi.planning.driver import _solve
from promo_roi.planning.engines import _SELECTED_SCHEMA, _NumpyEngine, _SparkEngine
from promo_roi.planning.minimums import _forced_plan, _replan_for_minimums
from promo_roi.planning.passes import _pass_emit_rows
from promo_roi.planning.paths import _Design
from promo_roi.planning.problem import _Problem, _require_pair_columns, _resolve_problem, _validate_pairs_frame
from promo_roi.planning.summary import _check_feasible, _describe, _numpy_usage, _spark_usage, _summary, _Usage
from promo_roi.planning.plan_types import (
    PAIR_COLUMNS,
    BudgetConstraints,
    BudgetPlan,
    PlanningMode,
    PlanSummary,
    SolverSettings,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# numpy
# --------------------------------------------------------------------------


def plan_budget(
    pairs: pd.DataFrame,
    constraints: BudgetConstraints,
    mode: PlanningMode = "fixed_budget",
    target_roi: float | None = None,
    settings: SolverSettings = SolverSettings(),
) -> BudgetPlan:
    """Plans in numpy. ``pairs`` has household_id, campaign_id, value, cost, redemptions.

    Returns masks aligned with the input rows and the summary; see this
    package's README.md for the method and its guarantees.
    """
    started = time.monotonic()
    frame = _validate_pairs_frame(pairs)
    problem = _resolve_problem(constraints, mode, target_roi, np.unique(frame["campaign_id"].to_numpy()))
    frame["_row"] = np.arange(len(frame))
    frame = frame.sort_values(["household_id", "campaign_id"], kind="stable").reset_index(drop=True)
    with stage(log, "budget solver (numpy)") as report:
        engine = _NumpyEngine(frame, problem.campaigns, settings.chunk_households)
        solved = _solve(engine, problem, settings, len(frame))
        selected, step_roi, step_grid, forced = _numpy_selection(engine, solved.design, len(frame))
        pairs_arrays = _input_arrays(frame)
        usage = _numpy_usage(problem, pairs_arrays, selected, step_roi, step_grid, forced)
        replanned = _replan_for_minimums(engine, problem, solved, usage)
        if replanned is not None:
            solved = replanned
            selected, step_roi, step_grid, forced = _numpy_selection(engine, solved.design, len(frame))
            usage = _numpy_usage(problem, pairs_arrays, selected, step_roi, step_grid, forced)
        extra = _forced_plan(engine, problem, solved.design, usage)
        if extra is not None and len(extra["row"]):
            rows = extra["row"].astype(np.int64)
            selected[rows] = True
            forced[rows] = True
            usage = _numpy_usage(problem, pairs_arrays, selected, step_roi, step_grid, forced)
        summary = _summary(problem, solved, usage, started, engine.passes)
        report.rows = len(frame)
        report.detail = _describe(summary)
    _check_feasible(problem, usage)
    return BudgetPlan(selected, step_roi, forced, summary)


def _input_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The input columns in input row order (frame is sorted; _row maps back)."""
    order = np.argsort(frame["_row"].to_numpy())
    return {c: frame[c].to_numpy()[order] for c in PAIR_COLUMNS}


def _numpy_selection(
    engine: _NumpyEngine, design: _Design, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    out = engine.aggregate("selection", functools.partial(_pass_emit_rows, design=design))
    selected = np.zeros(n_rows, bool)
    step_roi = np.full(n_rows, np.nan)
    step_grid = np.zeros(n_rows, np.int64)
    if "row" in out:
        selected[out["row"]] = True
        step_roi[out["row"]] = out["step_roi"]
        step_grid[out["row"]] = out["step_grid"]
    return selected, step_roi, step_grid, np.zeros(n_rows, bool)


# --------------------------------------------------------------------------
# Spark
# --------------------------------------------------------------------------


def plan_budget_spark(
    pairs: DataFrame,
    constraints: BudgetConstraints,
    mode: PlanningMode = "fixed_budget",
    target_roi: float | None = None,
    settings: SolverSettings = SolverSettings(),
) -> tuple[DataFrame, PlanSummary]:
    """Plans on Spark. Returns (selected pairs, summary).

    ``pairs`` needs household_id, campaign_id, value, cost, redemptions
    (numeric). The selected pairs (those columns plus ``step_roi``: marginal
    ROI of the move that admitted the pair, ``step_grid``: its grid point,
    ``forced``: added for a minimum budget) come back cached and counted;
    ``unpersist()`` them once written. The packed households are cached while
    planning and released before returning. Same plan as :func:`plan_budget`
    on the same pairs.
    """
    started = time.monotonic()
    _check_spark_columns(pairs)
    spark = pairs.sparkSession
    partitions = settings.num_partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    rows, data_campaigns = _count_pairs(pairs)
    problem = _resolve_problem(constraints, mode, target_roi, data_campaigns)
    engine = _SparkEngine(_prepared(pairs, partitions), problem.campaigns, settings.chunk_households, rows)
    try:
        with stage(log, "budget solver (spark)") as report:
            solved = _solve(engine, problem, settings, rows)
            selected, usage = _spark_selection(engine, problem, solved.design)
            replanned = _replan_for_minimums(engine, problem, solved, usage)
            if replanned is not None:
                selected.unpersist()
                solved = replanned
                selected, usage = _spark_selection(engine, problem, solved.design)
            extra = _forced_plan(engine, problem, solved.design, usage)
            if extra is not None and len(extra["household"]):
                selected = _with_forced(spark, problem, selected, extra)
                usage = _spark_usage(selected, problem)
            summary = _summary(problem, solved, usage, started, engine.passes)
            report.rows = rows
            report.detail = _describe(summary)
        _check_feasible(problem, usage)
        return selected, summary
    finally:
        engine.release()


def _spark_selection(engine: _SparkEngine, problem: _Problem, design: _Design) -> tuple[DataFrame, _Usage]:
    with stage(log, "budget solver: emit the selection (spark pass)") as report:
        selected = engine.emit(design).persist()
        report.rows = selected.count()
    return selected, _spark_usage(selected, problem)


def _check_spark_columns(pairs: DataFrame) -> None:
    from pyspark.sql.types import NumericType

    _require_pair_columns(pairs.columns)
    types = {f.name: f.dataType for f in pairs.schema.fields}
    for column in PAIR_COLUMNS:
        if not isinstance(types[column], NumericType):
            raise ValueError(f"pairs.{column} must be numeric, got {types[column].simpleString()}")


def _count_pairs(pairs: DataFrame) -> tuple[int, list[int]]:
    """(number of pairs, the campaign ids in the data); raises on null ids."""
    from pyspark.sql import functions as F

    with stage(log, "budget solver: count pairs and campaigns") as report:
        head = pairs.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.when(F.col("household_id").isNull(), 1).otherwise(0)).alias("null_household_id"),
            F.sum(F.when(F.col("campaign_id").isNull(), 1).otherwise(0)).alias("null_campaign_id"),
            F.array_sort(F.collect_set(F.col("campaign_id").cast("long"))).alias("campaigns"),
        ).collect()[0]
        rows = int(head["rows"] or 0)
        report.rows = rows
    for column in ("household_id", "campaign_id"):
        if head[f"null_{column}"]:
            raise ValueError(f"pairs.{column}: {head[f'null_{column}']} null value(s)")
    return rows, [int(c) for c in (head["campaigns"] or [])]


def _prepared(pairs: DataFrame, partitions: int) -> DataFrame:
    """The five columns with canonical types, each household's pairs together and sorted."""
    from pyspark.sql import functions as F

    return (
        pairs.select(
            F.col("household_id").cast("long").alias("household_id"),
            F.col("campaign_id").cast("long").alias("campaign_id"),
            F.col("value").cast("double").alias("value"),
            F.col("cost").cast("double").alias("cost"),
            F.col("redemptions").cast("double").alias("redemptions"),
        )
        .repartition(partitions, "household_id")
        .sortWithinPartitions("household_id", "campaign_id")
    )


def _with_forced(
    spark: SparkSession, problem: _Problem, selected: DataFrame, extra: dict[str, np.ndarray]
) -> DataFrame:
    """The selection with the forced pairs added, cached and counted (the old one is released)."""
    n = len(extra["household"])
    forced_frame = spark.createDataFrame(
        pd.DataFrame(
            {
                "household_id": extra["household"].astype(np.int64),
                "campaign_id": problem.campaigns[extra["campaign"].astype(np.int64)],
                "value": extra["value"].astype(np.float64),
                "cost": extra["cost"].astype(np.float64),
                "redemptions": extra["red"].astype(np.float64),
                "step_roi": np.full(n, np.nan),
                "step_grid": np.zeros(n, np.int64),
                "forced": np.ones(n, bool),
            }
        ),
        schema=_SELECTED_SCHEMA,
    )
    combined = selected.unionByName(forced_frame).persist()
    combined.count()
    selected.unpersist()
    return combined
