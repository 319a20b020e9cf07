"""The planner's public types: constraints, settings, plans and their summaries.

``BudgetConstraints`` and ``SolverSettings`` validate themselves on
construction. The method is described in this package's README.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd

PAIR_COLUMNS = ("household_id", "campaign_id", "value", "cost", "redemptions")
PlanningMode = Literal["fixed_budget", "target_roi"]  # promo_roi.config.PLANNING_MODES, for type checkers


def _finite_nonnegative(name: str, value: Any, allow_inf: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number) or number < 0 or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{name} must be a {'' if allow_inf else 'finite '}number >= 0, got {value!r}")
    return number


def _campaign_limits(name: str, limits: Mapping[Any, Any] | None, allow_inf: bool) -> Mapping[int, float]:
    """Validated {campaign_id: limit}; a None limit means no limit and is dropped."""
    if limits is None:
        return MappingProxyType({})
    if not isinstance(limits, Mapping):
        raise ValueError(f"{name} must be a mapping of campaign_id to a number, got {type(limits).__name__}")
    out: dict[int, float] = {}
    for key, value in limits.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise ValueError(f"{name}: campaign ids must be integers, got {key!r}")
        if value is None:
            continue
        limit = _finite_nonnegative(f"{name}[{key}]", value, allow_inf)
        if math.isinf(limit):
            continue
        out[int(key)] = limit
    return MappingProxyType(out)


@dataclass(frozen=True)
class BudgetConstraints:
    """What the plan must respect. Campaign limits map campaign_id -> amount; None = no limit.

    ``total_budget=None`` means no total budget (allowed in ``target_roi`` mode
    only). ``household_cap`` is K, the most campaigns one household may get.
    """

    total_budget: float | None = None
    household_cap: int = 1
    campaign_min_budget: Mapping[int, float] = field(default_factory=dict)
    campaign_max_budget: Mapping[int, float] = field(default_factory=dict)
    campaign_inventory: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.total_budget is not None:
            budget = _finite_nonnegative("total_budget", self.total_budget, allow_inf=True)
            object.__setattr__(self, "total_budget", None if math.isinf(budget) else budget)
        cap = self.household_cap
        if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1:
            raise ValueError(f"household_cap must be an integer >= 1, got {cap!r}")
        object.__setattr__(self, "household_cap", int(cap))
        mins = _campaign_limits("campaign_min_budget", self.campaign_min_budget, allow_inf=False)
        maxs = _campaign_limits("campaign_max_budget", self.campaign_max_budget, allow_inf=True)
        inventory = _campaign_limits("campaign_inventory", self.campaign_inventory, allow_inf=True)
        object.__setattr__(self, "campaign_min_budget", mins)
        object.__setattr__(self, "campaign_max_budget", maxs)
        object.__setattr__(self, "campaign_inventory", inventory)
        for campaign, low in mins.items():
            high = maxs.get(campaign, math.inf)
            if low > high:
                raise ValueError(
                    f"campaign_min_budget[{campaign}] = {low} exceeds campaign_max_budget[{campaign}] = {high}"
                )
        if self.total_budget is not None and sum(mins.values()) > self.total_budget:
            raise ValueError(
                f"campaign_min_budget: the minimum budgets add up to {sum(mins.values())}, "
                f"more than total_budget = {self.total_budget}"
            )

    @property
    def campaigns(self) -> set[int]:
        return set(self.campaign_min_budget) | set(self.campaign_max_budget) | set(self.campaign_inventory)


@dataclass(frozen=True)
class SolverSettings:
    """Tuning knobs; the defaults are what the tests and the benchmark use.

    ``price_grid``: budget prices on each household's path (finer = closer to
    the budget, linear cost); ``price_span``: lowest non-zero price relative to
    the highest. ``sample_households``: households the price search runs on.
    ``search_rounds``: coordinate-descent rounds. ``cap_rounds``: passes that
    cut moves to keep caps before the safe fallback. ``chunk_households``:
    households per numpy block (memory). ``num_partitions``: Spark partitions
    (None: spark.sql.shuffle.partitions).
    """

    price_grid: int = 128
    price_span: float = 1e-3
    sample_households: int = 100_000
    search_rounds: int = 12
    cap_rounds: int = 3
    chunk_households: int = 8_192
    num_partitions: int | None = None

    def __post_init__(self) -> None:
        for name in ("price_grid", "sample_households", "search_rounds", "chunk_households"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
        if not 0 < self.price_span < 1:
            raise ValueError(f"price_span must be in (0, 1), got {self.price_span!r}")
        if not isinstance(self.cap_rounds, int) or self.cap_rounds < 0:
            raise ValueError(f"cap_rounds must be an integer >= 0, got {self.cap_rounds!r}")
        if self.num_partitions is not None and self.num_partitions < 1:
            raise ValueError(f"num_partitions must be >= 1, got {self.num_partitions!r}")


@dataclass(frozen=True)
class CampaignSummary:
    campaign_id: int
    spend: float
    audience: int
    profit: float
    roi: float | None
    redemptions: float
    marginal_roi: float | None  # marginal ROI of the last step that admitted one of its pairs
    min_budget: float | None
    max_budget: float | None
    inventory: float | None
    forced_pairs: int
    forced_spend: float
    min_budget_shortfall: float


@dataclass(frozen=True)
class PlanSummary:
    mode: str
    target_roi: float | None
    total_budget: float | None
    household_cap: int
    objective: float  # sum(value - cost - target_roi * cost); = profit in fixed_budget mode
    profit: float
    budget_used: float
    dual_bound: float | None  # Lagrangian upper bound on the objective (minimum budgets relaxed)
    gap: float | None  # (dual_bound - objective) / |dual_bound|
    pairs: int
    pairs_selected: int
    households: int
    households_targeted: int
    forced_pairs: int
    roi_threshold: float | None  # marginal ROI at which the budget binds (None: it does not)
    campaigns: tuple[CampaignSummary, ...]
    prices: Mapping[str, Any]
    seconds: float
    passes: int

    def campaign(self, campaign_id: int) -> CampaignSummary:
        for summary in self.campaigns:
            if summary.campaign_id == campaign_id:
                return summary
        raise KeyError(campaign_id)

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("campaigns", "prices")}
        out["campaigns"] = [dict(c.__dict__) for c in self.campaigns]
        out["prices"] = dict(self.prices)
        return out


@dataclass(frozen=True)
class BudgetPlan:
    """A numpy plan: masks aligned with the input rows, in input order."""

    selected: np.ndarray  # bool
    step_roi: np.ndarray  # marginal ROI of the step that admitted the pair (NaN: not selected or forced)
    forced: np.ndarray  # bool: added to meet a minimum budget
    summary: PlanSummary

    def selected_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        out = pairs.loc[self.selected].copy()
        out["step_roi"] = self.step_roi[self.selected]
        out["forced"] = self.forced[self.selected]
        return out


@dataclass(frozen=True)
class ExactSolution:
    status: str
    objective: float | None  # best integer objective found
    mip_bound: float | None  # HiGHS's bound on the integer optimum
    lp_bound: float | None  # LP relaxation optimum
    selected: np.ndarray | None  # bool per input row
    seconds: float
