"""The problem as the solver sees it, and the checks of its input pairs.

``_Problem`` is the constraints resolved against the campaigns in the data
(one array per limit, in sorted campaign order); the pair checks run on the
pandas input, or inside Spark's first pass as counts of bad values. The
method is described in this package's README.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from promo_roi.config import PLANNING_MODES
from promo_roi.planning.plan_types import PAIR_COLUMNS, BudgetConstraints, _finite_nonnegative
from promo_roi.validation import MissingColumnError


# Budgets and caps are compared with this relative slack so that sums taken
# in another order (per partition, per bin) can never land a hair over.
_SAFETY = 1e-9


@dataclass(frozen=True)
class _Problem:
    mode: str
    target_roi: float | None
    floor: float  # price every pair pays per unit of cost: target_roi, or 0
    k: int
    budget: float  # inf: none
    campaigns: np.ndarray  # sorted campaign ids (int64)
    min_budget: np.ndarray  # [C], 0: none
    max_budget: np.ndarray  # [C], inf: none
    inventory: np.ndarray  # [C], inf: none
    constraints: BudgetConstraints

    @property
    def n_campaigns(self) -> int:
        return len(self.campaigns)

    @property
    def capped(self) -> np.ndarray:
        return np.isfinite(self.max_budget) | np.isfinite(self.inventory)

    @property
    def budget_safe(self) -> float:
        return _safe(self.budget)


def _safe(limit: float) -> float:
    return limit - _SAFETY * max(1.0, abs(limit)) if math.isfinite(limit) else limit


def _resolve_problem(
    constraints: BudgetConstraints, mode: str, target_roi: float | None, data_campaigns: Iterable[int]
) -> _Problem:
    if not isinstance(constraints, BudgetConstraints):
        raise ValueError(f"constraints must be a BudgetConstraints, got {type(constraints).__name__}")
    if mode not in PLANNING_MODES:
        raise ValueError(f"mode must be one of {', '.join(PLANNING_MODES)}, got {mode!r}")
    if mode == "fixed_budget":
        if constraints.total_budget is None:
            raise ValueError("total_budget is required in fixed_budget mode")
        if target_roi is not None:
            raise ValueError("target_roi is only used in target_roi mode")
        floor = 0.0
    else:
        if target_roi is None:
            raise ValueError("target_roi is required in target_roi mode")
        floor = _finite_nonnegative("target_roi", target_roi, allow_inf=False)
    campaigns = np.array(sorted(set(int(c) for c in data_campaigns) | constraints.campaigns), dtype=np.int64)

    def per_campaign(limits: Mapping[int, float], default: float) -> np.ndarray:
        out = np.full(len(campaigns), default)
        for campaign, limit in limits.items():
            out[np.searchsorted(campaigns, campaign)] = limit
        return out

    budget = math.inf if constraints.total_budget is None else float(constraints.total_budget)
    return _Problem(
        mode=mode,
        target_roi=None if mode == "fixed_budget" else floor,
        floor=floor,
        k=constraints.household_cap,
        budget=budget,
        campaigns=campaigns,
        min_budget=per_campaign(constraints.campaign_min_budget, 0.0),
        max_budget=per_campaign(constraints.campaign_max_budget, math.inf),
        inventory=per_campaign(constraints.campaign_inventory, math.inf),
        constraints=constraints,
    )


def _require_pair_columns(columns: Iterable[Any]) -> None:
    """Raises MissingColumnError unless every one of PAIR_COLUMNS is among ``columns`` (pandas or Spark)."""
    columns = list(columns)
    missing = [c for c in PAIR_COLUMNS if c not in columns]
    if missing:
        raise MissingColumnError(
            f"pairs: missing column(s) {', '.join(missing)}; found {', '.join(map(str, columns))}"
        )


def _validate_pairs_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """Checks a pandas pairs table; returns the five columns with canonical dtypes."""
    if not isinstance(pairs, pd.DataFrame):
        raise ValueError(f"pairs must be a pandas DataFrame, got {type(pairs).__name__}")
    _require_pair_columns(pairs.columns)
    out = {}
    for column in PAIR_COLUMNS:
        series = pairs[column]
        if series.isna().any():
            raise ValueError(f"pairs.{column}: {int(series.isna().sum())} null or NaN value(s)")
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise ValueError(f"pairs.{column} must be numeric, got {series.dtype}")
        if column in ("household_id", "campaign_id"):
            values = series.to_numpy()
            if not np.all(np.equal(np.mod(values, 1), 0)):
                raise ValueError(f"pairs.{column} must hold integers")
            out[column] = values.astype(np.int64)
        else:
            values = series.to_numpy(np.float64)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"pairs.{column}: {int((~np.isfinite(values)).sum())} infinite value(s)")
            out[column] = values
    if np.any(out["cost"] <= 0):
        bad = int(np.argmax(out["cost"] <= 0))
        raise ValueError(
            f"pairs.cost must be > 0: {int((out['cost'] <= 0).sum())} pair(s) have cost <= 0 "
            f"(first: household {out['household_id'][bad]}, campaign {out['campaign_id'][bad]})"
        )
    if np.any(out["redemptions"] < 0):
        raise ValueError(f"pairs.redemptions must be >= 0: {int((out['redemptions'] < 0).sum())} pair(s) are negative")
    frame = pd.DataFrame(out)
    duplicated = frame.duplicated(["household_id", "campaign_id"])
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise ValueError(
            f"pairs: {int(duplicated.sum())} duplicate (household_id, campaign_id) pair(s) "
            f"(first: household {first.household_id}, campaign {first.campaign_id})"
        )
    return frame


def _bad_values(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Counts of values the solver refuses, per column (checked on Spark inside the first pass)."""
    out = {}
    for column in ("value", "cost", "redemptions"):
        values = frame[column].to_numpy(np.float64)
        out[f"sum_bad_{column}"] = np.array(int((~np.isfinite(values)).sum()))
    out["sum_bad_cost_sign"] = np.array(int((frame["cost"].to_numpy(np.float64) <= 0).sum()))
    out["sum_bad_redemptions_sign"] = np.array(int((frame["redemptions"].to_numpy(np.float64) < 0).sum()))
    return out


def _raise_on_bad_values(stats: Mapping[str, Any]) -> None:
    for column in ("value", "cost", "redemptions"):
        if int(stats.get(f"bad_{column}", 0)):
            raise ValueError(f"pairs.{column}: {int(stats[f'bad_{column}'])} null, NaN or infinite value(s)")
    if int(stats.get("bad_cost_sign", 0)):
        raise ValueError(f"pairs.cost must be > 0: {int(stats['bad_cost_sign'])} pair(s) have cost <= 0")
    if int(stats.get("bad_redemptions_sign", 0)):
        raise ValueError(
            f"pairs.redemptions must be >= 0: {int(stats['bad_redemptions_sign'])} pair(s) are negative"
        )
