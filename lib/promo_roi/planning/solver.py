"""Budget-plan solver: which (household, campaign) pairs to target.

Input: one row per (household, planned campaign) pair with ``value`` (expected
incremental gross profit if targeted), ``cost`` (expected cost if targeted,
> 0) and ``redemptions`` (expected coupon redemptions, >= 0). Output: the
pairs to target (x = 1) maximising ``sum(value - cost)`` subject to

* the total budget ``sum(cost * x) <= B``;
* per-campaign budgets ``min_c <= sum_c(cost * x) <= max_c`` (each optional);
* per-campaign coupon inventories ``sum_c(redemptions * x) <= inventory_c``;
* a household cap: each household is targeted by at most K campaigns.

Two modes. ``fixed_budget`` maximises profit for the budget B. ``target_roi``
maximises ``sum(value - cost - target_roi * cost)``: every unit of spend must
return at least ``target_roi`` on top of itself, so spending stops where the
marginal ROI falls below the target, and every selected pair has ROI >=
target; the budget follows from the caps (B optional).

How it works, and why
---------------------
The problem is a multiple-choice knapsack with side constraints. Pricing the
coupling constraints (Lagrange multipliers: lambda on the budget, mu_c on
campaign spend, nu_c on campaign redemptions) splits it into one tiny
problem per household: take the (at most K) pairs whose *reduced profit*
``value - cost - (target + lambda + mu_c) * cost - nu_c * redemptions`` is
positive, best first (:func:`select_top_k`). That choice is the only
per-household computation; numpy and every Spark pass call the same function.

1. Sample and prices. A deterministic household sample (all households when
   there are fewer than ``sample_households``) is gathered on the driver.
   For each point of a fixed grid of budget prices lambda (geometric, from
   "nothing is worth it" down to 0), coordinate descent on the Lagrangian
   dual finds the campaign prices (mu, nu) that keep every cap at that
   lambda: exact line minimisation per campaign (a sort of each pair's
   threshold price), then a polish that only raises violated prices. These
   prices depend on lambda alone, never on B.
2. Household paths. Each household walks down the grid, taking its
   Lagrangian choice at every point; every change of choice is a *move*
   (add, swap, drop) with an incremental cost and objective. All moves form
   one global order, B-independent: by grid point, then moves that only free
   capped capacity, then gaining moves (best marginal ROI first), then losing
   ones. A prefix of that order is the Lagrangian plan at the matching lambda.
3. Caps hold for every prefix. One pass histograms, per grid point, each
   capped campaign's usage changes; the highest usage any prefix can reach
   must stay under the cap. If the full data shows a campaign passing, its
   target is lowered by the excess and the prices are redone (the sample is
   calibrated the same way first, so this is rare). As a last resort, moves
   into that campaign are cut at the offending grid points; a final fallback
   counting entries only cannot fail.
4. Budget: keep the best plan. The running cost along the order is
   histogrammed by grid point (a bisection of lambda on all grid points at
   once). The plan for B is the best objective among fixed checkpoints (the
   start of each grid point and its "junction" after the freeing and gaining
   moves) before the first move that does not fit, and the prefix that stops
   there; the moves of the grid points around that stop are scanned exactly
   on the driver.

Guarantees. The plan never exceeds the total budget, a campaign's maximum
budget or inventory, or K campaigns per household (checked again on the
result). Its objective is non-decreasing in B (without minimum budgets): the
candidate plans for B are prefixes of one B-independent order, and raising B
only adds candidates (the one candidate that can leave, the stopping prefix,
is dominated by a checkpoint or by its own continuation; see
``_choose_cut``). In ``target_roi`` mode every selected pair has ROI >=
target (every choice on the path prices cost at >= target).

Minimum budgets are best effort: when the plan leaves a campaign under its
minimum, the plan is redone with the missing amount held back from the total
budget and the campaign's least-unprofitable pairs (highest ROI first, in
households with a free slot) are added until the minimum is reached or a
budget, cap or slot runs out. The summary reports the forced pairs and any
shortfall; the monotonicity and target-ROI guarantees exclude forced pairs.

Quality. The dual bound is the Lagrangian ``lambda B + sum mu_c max_c + sum
nu_c inventory_c + sum_h top-K positive reduced profit``, evaluated on all the
data at prices from the search (minimum budgets relaxed), so ``gap = (bound -
objective) / |bound|`` is a certified optimality gap. :func:`solve_exact`
solves small instances exactly with HiGHS.

Spark. ``plan_budget_spark`` counts pairs and campaigns, repartitions by
household and sorts within partitions (a household's pairs sit together),
then runs a few ``mapInPandas`` passes that each return small per-partition
aggregates. The first checks the values, gathers the sample and packs every
chunk of households into one binary row that stays cached, so later passes
do not convert rows again: moves by grid point (once, or again after a cap
correction), the moves around the budget stop plus the dual bound, and the
emission of the selected pairs. No pass before the last two depends on B.
"""

from __future__ import annotations

import functools
import logging
import math
import pickle
import time
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, Mapping

import numpy as np
import pandas as pd

from promo_roi.observability import stage
from promo_roi.validation import MissingColumnError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("household_id", "campaign_id", "value", "cost", "redemptions")
PlanningMode = Literal["fixed_budget", "target_roi"]
MODES: tuple[str, ...] = ("fixed_budget", "target_roi")

# Budgets and caps are compared with this relative slack so that sums taken
# in another order (per partition, per bin) can never land a hair over.
_SAFETY = 1e-9


# --------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The resolved problem
# --------------------------------------------------------------------------


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
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
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


def _validate_pairs_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """Checks a pandas pairs table; returns the five columns with canonical dtypes."""
    if not isinstance(pairs, pd.DataFrame):
        raise ValueError(f"pairs must be a pandas DataFrame, got {type(pairs).__name__}")
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise MissingColumnError(
            f"pairs: missing column(s) {', '.join(missing)}; found {', '.join(map(str, pairs.columns))}"
        )
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


# --------------------------------------------------------------------------
# The per-household choice (the one implementation)
# --------------------------------------------------------------------------


def _top_values(reduced: np.ndarray, k: int) -> np.ndarray:
    """[k, n]: each household's k largest reduced profits, descending, -inf padded.

    ``reduced`` is [campaigns, households]; a sweep over the few campaign rows
    keeps k running maxima per household, all households at once (much faster
    than sorting short rows).
    """
    n = reduced.shape[1]
    tops = [np.full(n, -np.inf) for _ in range(k)]
    spare = np.empty(n)
    for row in reduced:
        x = row.copy()
        for j in range(k):
            np.maximum(tops[j], x, out=spare)
            np.minimum(tops[j], x, out=x)
            tops[j], spare = spare, tops[j]
    return np.stack(tops) if tops else np.empty((0, n))


def select_top_k(reduced: np.ndarray, k: int) -> np.ndarray:
    """Each household's choice: its k best pairs with positive reduced profit.

    ``reduced`` is [campaigns, households] (-inf where a household has no pair
    for a campaign). Returns a bool mask of the same shape. Ties at the k-th
    value go to the lower campaign index, so the choice is deterministic.
    This is the Lagrangian subproblem; every pass in numpy and on Spark calls it.
    """
    n_campaigns = reduced.shape[0]
    if k >= n_campaigns:
        return reduced > 0
    kth = _top_values(reduced, k)[k - 1]
    threshold = np.maximum(kth, 0.0)
    chosen = reduced > threshold
    tied = (reduced == threshold) & (threshold > 0)
    if tied.any():
        chosen |= tied
        over = chosen.sum(0) > k
        if over.any():
            cols = np.flatnonzero(over)
            sub_gt = reduced[:, cols] > threshold[cols]
            sub_eq = reduced[:, cols] == threshold[cols]
            need = k - sub_gt.sum(0)
            chosen[:, cols] = sub_gt | (sub_eq & (np.cumsum(sub_eq, axis=0) <= need))
    return chosen


def _household_hash(ids: np.ndarray) -> np.ndarray:
    """Deterministic uniform [0, 1) per household id (splitmix64), the same everywhere."""
    x = ids.astype(np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


# --------------------------------------------------------------------------
# Household blocks: pairs laid out [campaign, household]
# --------------------------------------------------------------------------


@dataclass
class _Block:
    household: np.ndarray  # [n] int64
    value: np.ndarray  # [C, n], 0 where no pair
    cost: np.ndarray  # [C, n], 0 where no pair
    red: np.ndarray  # [C, n]
    valid: np.ndarray  # [C, n] bool
    row: np.ndarray | None  # [C, n] input row (numpy path), -1 where no pair
    duplicates: int = 0
    profit: np.ndarray = field(init=False)  # value - cost, 0 where no pair
    choice_profit: np.ndarray = field(init=False)  # value - cost, -inf where no pair

    def __post_init__(self) -> None:
        self.profit = np.where(self.valid, self.value - self.cost, 0.0)
        self.choice_profit = np.where(self.valid, self.profit, -np.inf)

    @property
    def n(self) -> int:
        return len(self.household)


def _build_block(frame: pd.DataFrame, campaigns: np.ndarray, with_rows: bool) -> _Block:
    """Dense block from pairs sorted by (household_id, campaign_id)."""
    household = frame["household_id"].to_numpy(np.int64)
    campaign = frame["campaign_id"].to_numpy(np.int64)
    value = frame["value"].to_numpy(np.float64)
    cost = frame["cost"].to_numpy(np.float64)
    red = frame["redemptions"].to_numpy(np.float64)
    rows = frame["_row"].to_numpy(np.int64) if with_rows else None
    new = np.ones(len(household), bool)
    new[1:] = household[1:] != household[:-1]
    duplicate = np.zeros(len(household), bool)
    duplicate[1:] = ~new[1:] & (campaign[1:] == campaign[:-1])
    n_duplicates = int(duplicate.sum())
    if n_duplicates:
        keep = ~duplicate
        household, campaign, value, cost, red, new = (a[keep] for a in (household, campaign, value, cost, red, new))
        rows = rows[keep] if rows is not None else None
    index = np.cumsum(new) - 1
    n = int(index[-1]) + 1 if len(index) else 0
    col = np.searchsorted(campaigns, campaign)
    shape = (len(campaigns), n)
    dense = {name: np.zeros(shape) for name in ("value", "cost", "red")}
    dense["value"][col, index] = value
    dense["cost"][col, index] = cost
    dense["red"][col, index] = red
    valid = np.zeros(shape, bool)
    valid[col, index] = True
    row = None
    if rows is not None:
        row = np.full(shape, -1, np.int64)
        row[col, index] = rows
    return _Block(household[new], dense["value"], dense["cost"], dense["red"], valid, row, n_duplicates)


def _blocks_from_frames(
    frames: Iterable[pd.DataFrame], campaigns: np.ndarray, chunk_households: int, with_rows: bool
) -> Iterator[_Block]:
    """Blocks of complete households from a stream of sorted frames (Arrow batches).

    A household may straddle two batches, so a chunk is cut only after a
    household that is followed by another one; the rest waits for more rows.
    """
    chunk_rows = chunk_households * max(1, len(campaigns))
    pending: list[pd.DataFrame] = []
    pending_rows = 0
    for frame in frames:
        if len(frame) == 0:
            continue
        pending.append(frame)
        pending_rows += len(frame)
        if pending_rows < chunk_rows:
            continue
        data = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0].reset_index(drop=True)
        household = data["household_id"].to_numpy()
        start = 0
        while len(data) - start >= chunk_rows:
            end = int(np.searchsorted(household, household[start + chunk_rows - 1], side="right"))
            if end >= len(data):
                break
            yield _build_block(data.iloc[start:end], campaigns, with_rows)
            start = end
        rest = data.iloc[start:].reset_index(drop=True)
        pending, pending_rows = [rest], len(rest)
    if pending_rows:
        data = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        yield _build_block(data, campaigns, with_rows)


def _block_from_pairs(arrays: Mapping[str, np.ndarray], campaigns: np.ndarray) -> _Block:
    """One block from flat pair arrays (the sample gathered on the driver)."""
    frame = pd.DataFrame(
        {
            "household_id": arrays["household_id"],
            "campaign_id": campaigns[arrays["campaign"]] if len(campaigns) else arrays["campaign"],
            "value": arrays["value"],
            "cost": arrays["cost"],
            "redemptions": arrays["redemptions"],
        }
    ).sort_values(["household_id", "campaign_id"], kind="stable")
    return _build_block(frame, campaigns, with_rows=False)


def _pack_block(block: _Block) -> bytes:
    """A block as bytes: the only thing Spark moves and caches after the first pass."""
    arrays = (block.household, block.value, block.cost, block.red, block.valid)
    return pickle.dumps((arrays, block.duplicates), protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_block(payload: bytes) -> _Block:
    (household, value, cost, red, valid), duplicates = pickle.loads(payload)
    return _Block(household, value, cost, red, valid, None, duplicates)


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


# --------------------------------------------------------------------------
# Prices: coordinate descent on the Lagrangian dual
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prices:
    budget: float  # lambda, per unit of cost, on top of the floor
    spend: np.ndarray  # mu_c, per unit of cost
    redemptions: np.ndarray  # nu_c, per redemption

    def as_dict(self, campaigns: np.ndarray) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "spend": {int(c): float(v) for c, v in zip(campaigns, self.spend) if v > 0},
            "redemptions": {int(c): float(v) for c, v in zip(campaigns, self.redemptions) if v > 0},
        }


def _reduced(block: _Block, floor: float, prices: _Prices) -> np.ndarray:
    per_cost = floor + prices.budget + prices.spend
    return block.choice_profit - per_cost[:, None] * block.cost - prices.redemptions[:, None] * block.red


def _lagrangian_sum(block: _Block, floor: float, prices: _Prices, k: int) -> float:
    """Sum over households of their best positive reduced profit (the dual's data term)."""
    if block.n == 0:
        return 0.0
    tops = _top_values(_reduced(block, floor, prices), min(k, block.cost.shape[0]))
    return float(np.maximum(tops, 0.0).sum())


def _dual_value(data_term: float, prices: _Prices, budget: float, caps: np.ndarray, inventory: np.ndarray) -> float:
    value = data_term
    if math.isfinite(budget):
        value += prices.budget * budget
    value += float(np.dot(prices.spend[np.isfinite(caps)], caps[np.isfinite(caps)]))
    value += float(np.dot(prices.redemptions[np.isfinite(inventory)], inventory[np.isfinite(inventory)]))
    return value


def _campaign_line_minimum(
    reduced: np.ndarray,
    tops: np.ndarray,
    block: _Block,
    weight: np.ndarray,
    campaign: int,
    limit: float,
    current: float,
    k: int,
    lower: float = 0.0,
) -> float:
    """Exact minimiser (>= ``lower``) of the dual along one campaign price, others fixed.

    Pair (h, c) stays chosen while its reduced profit beats the household's
    k-th best other pair (or 0); that gives each pair a threshold price d.
    The campaign's usage at price x is the weight of pairs with d > x, so the
    minimiser is the smallest x whose usage fits the limit. ``tops`` are the
    households' k + 1 best reduced profits (shared by all campaigns).
    """
    n = block.n
    kth = tops[k - 1] if k - 1 < len(tops) else np.full(n, -np.inf)
    next_ = tops[k] if k < len(tops) else np.full(n, -np.inf)
    row = reduced[campaign]
    ok = block.valid[campaign] & (weight[campaign] > 0)
    beat = np.maximum(np.where(row >= kth, next_, kth), 0.0)
    thresholds = current + (row[ok] - beat[ok]) / weight[campaign][ok]
    above = thresholds > lower
    thresholds, weights = thresholds[above], weight[campaign][ok][above]
    if weights.sum() <= limit:
        return max(lower, 0.0)
    order = np.argsort(-thresholds, kind="stable")
    over = np.flatnonzero(np.cumsum(weights[order]) > limit)
    return max(lower, 0.0, float(thresholds[order][over[0]]))


def _household_tops(reduced: np.ndarray, k: int) -> np.ndarray:
    return _top_values(reduced, min(k + 1, reduced.shape[0]))


def _budget_line_minimum(block: _Block, floor: float, prices: _Prices, budget: float, k: int) -> float:
    """Smallest lambda >= 0 whose choices fit the budget: bisection (cost is monotone in lambda)."""

    def spend(lam: float) -> float:
        chosen = select_top_k(_reduced(block, floor, replace(prices, budget=lam)), k)
        return float((block.cost * chosen).sum())

    if spend(0.0) <= budget:
        return 0.0
    base = _reduced(block, floor, replace(prices, budget=0.0))
    ratio = np.where(block.valid, base / np.where(block.valid, block.cost, 1.0), -np.inf)
    lo, hi = 0.0, max(float(ratio.max()), 0.0) * (1 + 1e-12) + 1e-12
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        if spend(mid) <= budget:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return hi


def _search_prices(
    block: _Block,
    problem: _Problem,
    budget: float,
    scale: float,
    rounds: int,
    *,
    start: _Prices | None = None,
    budget_price: float | None = None,
    cap_scale: float | np.ndarray = 1.0,
    red_scale: float | np.ndarray | None = None,
) -> tuple[_Prices, float]:
    """Dual prices on ``block`` (a sample: limits scaled by ``scale``). Returns (prices, dual value).

    Gauss-Seidel coordinate descent with exact line minimisation: the budget
    price by bisection (or held at ``budget_price``), each campaign price by
    its threshold sort. Keeps the best (lowest) dual value seen; any prices
    give a valid bound. ``cap_scale`` < 1 aims a little under the caps (the
    sample's usage is noisy).
    """
    n_campaigns = problem.n_campaigns
    prices = start or _Prices(0.0, np.zeros(n_campaigns), np.zeros(n_campaigns))
    if budget_price is not None:
        prices = replace(prices, budget=budget_price)
    if block.n == 0 or n_campaigns == 0:
        return prices, 0.0
    budget_s = budget * scale
    caps = problem.max_budget * scale * cap_scale
    inventory = problem.inventory * scale * (cap_scale if red_scale is None else red_scale)
    k = problem.k
    best_value = _dual_value(_lagrangian_sum(block, problem.floor, prices, k), prices, budget_s, caps, inventory)
    best = prices
    for _ in range(rounds):
        before = prices
        if budget_price is None and math.isfinite(budget_s):
            prices = replace(prices, budget=_budget_line_minimum(block, problem.floor, prices, budget_s, k))
        for campaign in np.flatnonzero(np.isfinite(caps)):
            reduced = _reduced(block, problem.floor, prices)
            spend = prices.spend.copy()
            spend[campaign] = _campaign_line_minimum(
                reduced, _household_tops(reduced, k), block, block.cost, campaign, caps[campaign], spend[campaign], k
            )
            prices = replace(prices, spend=spend)
        for campaign in np.flatnonzero(np.isfinite(inventory)):
            reduced = _reduced(block, problem.floor, prices)
            per_red = prices.redemptions.copy()
            per_red[campaign] = _campaign_line_minimum(
                reduced,
                _household_tops(reduced, k),
                block,
                block.red,
                campaign,
                inventory[campaign],
                per_red[campaign],
                k,
            )
            prices = replace(prices, redemptions=per_red)
        value = _dual_value(_lagrangian_sum(block, problem.floor, prices, k), prices, budget_s, caps, inventory)
        if value < best_value:
            best_value, best = value, prices
        change = abs(prices.budget - before.budget) + float(np.abs(prices.spend - before.spend).sum())
        change += float(np.abs(prices.redemptions - before.redemptions).sum())
        if change <= 1e-12:
            break
    return best, best_value


def _polish_caps(
    block: _Block, problem: _Problem, prices: _Prices, caps: np.ndarray, inventory: np.ndarray, rounds: int = 20
) -> _Prices:
    """Raises the prices of campaigns whose choice still passes a cap (only raises).

    Coordinate descent ends near the dual optimum, where the choice can sit
    a little over a cap; each violated campaign's price goes to its exact
    line minimum until the choice respects every cap on the sample.
    """
    for _ in range(rounds):
        chosen = select_top_k(_reduced(block, problem.floor, prices), problem.k)
        over_spend = (block.cost * chosen).sum(1) > caps
        over_red = (block.red * chosen).sum(1) > inventory
        if not (over_spend.any() or over_red.any()):
            break
        spend, per_red = prices.spend.copy(), prices.redemptions.copy()
        reduced = _reduced(block, problem.floor, prices)
        tops = _household_tops(reduced, problem.k)
        # aim a little under the limit: raising one price pushes demand into
        # other capped campaigns, and exact aims make this ping-pong longer
        for c in np.flatnonzero(over_spend):
            spend[c] = _campaign_line_minimum(
                reduced, tops, block, block.cost, c, caps[c] * 0.998, spend[c], problem.k, lower=spend[c]
            )
        for c in np.flatnonzero(over_red):
            per_red[c] = _campaign_line_minimum(
                reduced, tops, block, block.red, c, inventory[c] * 0.998, per_red[c], problem.k, lower=per_red[c]
            )
        prices = replace(prices, spend=spend, redemptions=per_red)
    return prices


def _path_prices(
    block: _Block,
    problem: _Problem,
    grid: np.ndarray,
    scale: float,
    rounds: int,
    spend_target: np.ndarray,
    red_target: np.ndarray,
    every: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Cap prices along the budget-price grid: [grid point, campaign] arrays (mu, nu).

    For a budget price lambda, the best campaign prices are those of the
    problem with the budget priced at lambda and only the caps kept: what the
    Lagrangian optimum looks like at the budget where lambda is the going
    price. They depend on lambda only, never on B. Solved on the sample at
    every ``every``-th grid point (warm-started down the grid), interpolated
    in between, and polished at every point so that the sample's choice
    respects each cap times its target factor (< 1: a margin).
    """
    n_points, n_campaigns = len(grid), problem.n_campaigns
    spend = np.zeros((n_points, n_campaigns))
    red = np.zeros((n_points, n_campaigns))
    if not problem.capped.any() or block.n == 0:
        return spend, red
    caps = problem.max_budget * scale * spend_target
    inventory = problem.inventory * scale * red_target
    anchors = sorted(set(range(0, n_points, every)) | {n_points - 1})
    prices = None
    for point in anchors:
        prices, _ = _search_prices(
            block,
            problem,
            math.inf,
            scale,
            rounds,
            start=prices,
            budget_price=float(grid[point]),
            cap_scale=spend_target,
            red_scale=red_target,
        )
        prices = _polish_caps(block, problem, prices, caps, inventory)
        spend[point] = prices.spend
        red[point] = prices.redemptions
    for left, right in zip(anchors[:-1], anchors[1:]):
        for point in range(left + 1, right):
            share = (point - left) / (right - left)
            mixed = _Prices(
                float(grid[point]),
                (1 - share) * spend[left] + share * spend[right],
                (1 - share) * red[left] + share * red[right],
            )
            mixed = _polish_caps(block, problem, mixed, caps, inventory)
            spend[point] = mixed.spend
            red[point] = mixed.redemptions
    return spend, red


# --------------------------------------------------------------------------
# Household paths: each household's choice along the budget-price grid
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _PathParams:
    k: int
    floor: float
    grid: np.ndarray  # extra budget prices over the floor, descending, ending with 0 (grid points 1..L)
    cap_price: np.ndarray  # [L, C] mu_c at each grid point
    red_price: np.ndarray  # [L, C] nu_c at each grid point
    capped: np.ndarray  # [C] bool
    closed: np.ndarray  # [C, L + 1] bool: moves into campaign c at grid point l are cut

    @property
    def points(self) -> int:
        return len(self.grid)


# Moves inside one grid point go in three groups: those that only free
# capped capacity first (so a cap is never passed in the middle of a grid
# point because an exit came after an entry), then the ones that gain, then
# the ones that lose objective.
_FREES, _GAINS, _LOSES = 0, 1, 2


@dataclass
class _Moves:
    """Every household move along the path: household ``house`` changes its choice at grid point ``grid``."""

    house: np.ndarray  # [m] household index in the block
    grid: np.ndarray  # [m] grid point (1..L)
    dcost: np.ndarray  # [m]
    dprofit: np.ndarray  # [m]
    dobj: np.ndarray  # [m] dprofit - floor * dcost
    before: np.ndarray  # [m, C] bool
    after: np.ndarray  # [m, C] bool
    dspend: np.ndarray  # [m, C]
    dred: np.ndarray  # [m, C]
    group: np.ndarray  # [m] _FREES, _GAINS or _LOSES
    rank: np.ndarray  # [m] sort key inside its group (ascending)

    def take(self, keep: np.ndarray) -> _Moves:
        return _Moves(**{name: getattr(self, name)[keep] for name in self.__dataclass_fields__})

    @property
    def roi(self) -> np.ndarray:
        """Marginal ROI of the move (incremental profit / incremental cost); NaN if it saves cost."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.dcost > 0, self.dprofit / self.dcost, np.nan)


def _household_moves(block: _Block, params: _PathParams) -> _Moves:
    """Walks every household down the price grid and records each change of its choice.

    At grid point l the household takes ``select_top_k`` of its reduced
    profits at budget price ``floor + grid[l]`` and the cap prices of that
    point. Moves are then cut at the first entry into a campaign closed at
    that grid point (the cap cuts): the household keeps its earlier choice.
    """
    n_campaigns, n = block.cost.shape
    cost, red = block.cost, block.red
    previous = np.zeros((n_campaigns, n), bool)
    spent = np.zeros(n)
    earned = np.zeros(n)
    parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for point in range(1, params.points + 1):
        per_cost = params.floor + params.grid[point - 1] + params.cap_price[point - 1]
        reduced = block.choice_profit - per_cost[:, None] * cost - params.red_price[point - 1][:, None] * red
        current = select_top_k(reduced, params.k)
        moved = np.flatnonzero((current != previous).any(0))
        if len(moved) == 0:
            continue
        now = current[:, moved]
        new_spent = (cost[:, moved] * now).sum(0)
        new_earned = (block.profit[:, moved] * now).sum(0)
        parts.append(
            (moved, point, new_spent - spent[moved], new_earned - earned[moved], previous[:, moved].T, now.T)
        )
        spent[moved] = new_spent
        earned[moved] = new_earned
        previous = current
    if parts:
        house = np.concatenate([p[0] for p in parts])
        grid = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
        dcost = np.concatenate([p[2] for p in parts])
        dprofit = np.concatenate([p[3] for p in parts])
        before = np.concatenate([p[4] for p in parts])
        after = np.concatenate([p[5] for p in parts])
    else:
        house = grid = np.empty(0, np.int64)
        dcost = dprofit = np.empty(0)
        before = after = np.zeros((0, n_campaigns), bool)
    change = after.astype(np.int8) - before.astype(np.int8)
    dspend = change * cost.T[house]
    dred = change * red.T[house]
    dobj = dprofit - params.floor * dcost
    capped = params.capped
    frees = (dspend[:, capped] < 0).any(1) | (dred[:, capped] < 0).any(1)
    takes = (dspend[:, capped] > 0).any(1) | (dred[:, capped] > 0).any(1)
    group = np.where(frees & ~takes, _FREES, np.where(dobj >= 0, _GAINS, _LOSES))
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(dcost > 0, dobj / dcost, np.inf)
    rank = np.where(group == _FREES, dobj, np.where(group == _GAINS, -efficiency, -dobj))
    moves = _Moves(house, grid, dcost, dprofit, dobj, before, after, dspend, dred, group, rank)
    if params.closed.any() and len(house):
        entered = after & ~before
        hit = (entered & params.closed[:, grid].T).any(1)
        if hit.any():
            first = np.full(n, params.points + 1)
            np.minimum.at(first, house[hit], grid[hit])
            moves = moves.take(grid < first[house])
    return moves


def _move_order(household_id: np.ndarray, grid: np.ndarray, group: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """The global order of moves: grid point, group, rank, household id (all B-independent)."""
    return np.lexsort((household_id, rank, group, grid))


# --------------------------------------------------------------------------
# The passes: one function per pass, applied to each block, merged on the driver
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cut:
    """Where the plan stops in the global order of moves.

    Every move at grid points before ``point`` is in; at ``point`` itself:
    none (``mode='start'``), the freeing and gaining groups (``'junction'``),
    or the moves of the listed households (``'list'``).
    """

    point: int
    mode: str = "start"
    households: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # sorted


@dataclass(frozen=True)
class _Design:
    path: _PathParams
    cut: _Cut


def _pass_stats(block: _Block, rate: float) -> dict[str, Any]:
    """Households, duplicates, the largest pair ROI, and the deterministic sample."""
    ratio = np.where(block.valid, block.profit / np.where(block.valid, block.cost, 1.0), -np.inf)
    out: dict[str, Any] = {
        "sum_households": np.array(block.n),
        "sum_duplicates": np.array(block.duplicates),
        "max_roi": np.array(ratio.max() if ratio.size else -np.inf),
    }
    sampled = _household_hash(block.household) < rate if rate < 1 else np.ones(block.n, bool)
    campaign, house = np.nonzero(block.valid & sampled[None, :])
    out["cat_household_id"] = block.household[house]
    out["cat_campaign"] = campaign.astype(np.int64)
    out["cat_value"] = block.value[campaign, house]
    out["cat_cost"] = block.cost[campaign, house]
    out["cat_redemptions"] = block.red[campaign, house]
    return out


def _pass_grid(block: _Block, path: _PathParams) -> dict[str, Any]:
    """Per grid point and group: cost, positive cost, objective; per capped campaign: usage changes."""
    moves = _household_moves(block, path)
    points = path.points + 1
    out: dict[str, Any] = {}
    for group in (_FREES, _GAINS, _LOSES):
        at = moves.group == group
        out[f"sum_cost_{group}"] = np.bincount(moves.grid[at], moves.dcost[at], points)
        out[f"sum_posc_{group}"] = np.bincount(moves.grid[at], np.maximum(moves.dcost[at], 0.0), points)
        out[f"sum_obj_{group}"] = np.bincount(moves.grid[at], moves.dobj[at], points)
        out[f"sum_count_{group}"] = np.bincount(moves.grid[at], minlength=points).astype(np.float64)
    n_campaigns = block.cost.shape[0]
    frees = moves.group == _FREES
    for name, delta in (("spend", moves.dspend), ("red", moves.dred)):
        net = np.zeros((n_campaigns, points))
        freed = np.zeros((n_campaigns, points))
        added = np.zeros((n_campaigns, points))
        for c in np.flatnonzero(path.capped):
            net[c] = np.bincount(moves.grid, delta[:, c], points)
            freed[c] = np.bincount(moves.grid[frees], -delta[frees, c], points)
            added[c] = np.bincount(moves.grid[~frees], np.maximum(delta[~frees, c], 0.0), points)
        out[f"sum_net_{name}"] = net
        out[f"sum_freed_{name}"] = freed
        out[f"sum_added_{name}"] = added
    return out


def _pass_band(
    block: _Block, path: _PathParams, first: int, last: int, candidates: list[_Prices]
) -> dict[str, Any]:
    """The moves at grid points first..last (for the driver's exact scan) and the dual bound's data terms."""
    out: dict[str, Any] = {
        "sum_bound": np.array([_lagrangian_sum(block, path.floor, prices, path.k) for prices in candidates])
    }
    if first <= last and block.n:
        moves = _household_moves(block, path)
        at = (moves.grid >= first) & (moves.grid <= last)
        out.update(
            cat_household=block.household[moves.house[at]],
            cat_grid=moves.grid[at].astype(np.int64),
            cat_group=moves.group[at].astype(np.int64),
            cat_rank=moves.rank[at],
            cat_cost=moves.dcost[at],
            cat_obj=moves.dobj[at],
        )
    return out


def _included(block: _Block, moves: _Moves, cut: _Cut) -> np.ndarray:
    """Which moves the plan makes (a prefix of the global order)."""
    keep = moves.grid < cut.point
    at = moves.grid == cut.point
    if cut.mode == "junction":
        keep |= at & (moves.group != _LOSES)
    elif cut.mode == "list" and len(cut.households):
        ids = block.household[moves.house]
        pos = np.minimum(np.searchsorted(cut.households, ids), len(cut.households) - 1)
        keep |= at & (cut.households[pos] == ids)
    return keep


def _final_choice(block: _Block, design: _Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plan for one block: mask [C, n], and per chosen pair the ROI and grid point of its admitting move."""
    moves = _household_moves(block, design.path)
    moves = moves.take(_included(block, moves, design.cut))
    n_campaigns = block.cost.shape[0]
    chosen = np.zeros((n_campaigns, block.n), bool)
    step_roi = np.full((n_campaigns, block.n), np.nan)
    step_grid = np.zeros((n_campaigns, block.n), np.int64)
    if len(moves.house):
        order = np.lexsort((moves.grid, moves.house))
        last = order[np.append(moves.house[order][1:] != moves.house[order][:-1], True)]
        chosen[:, moves.house[last]] = moves.after[last].T
        move_idx, campaign_idx = np.nonzero(moves.after & ~moves.before)
        house = moves.house[move_idx]
        order = np.lexsort((moves.grid[move_idx], house, campaign_idx))
        key = campaign_idx[order] * block.n + house[order]
        last = order[np.append(key[1:] != key[:-1], True)]
        step_roi[campaign_idx[last], house[last]] = moves.roi[move_idx[last]]
        step_grid[campaign_idx[last], house[last]] = moves.grid[move_idx[last]]
    return chosen, np.where(chosen, step_roi, np.nan), np.where(chosen, step_grid, 0)


def _pass_emit_rows(block: _Block, design: _Design) -> dict[str, Any]:
    chosen, step_roi, step_grid = _final_choice(block, design)
    return {"cat_row": block.row[chosen], "cat_step_roi": step_roi[chosen], "cat_step_grid": step_grid[chosen]}


def _emit_frame(block: _Block, design: _Design, campaigns: np.ndarray) -> pd.DataFrame:
    chosen, step_roi, step_grid = _final_choice(block, design)
    campaign, house = np.nonzero(chosen)
    return pd.DataFrame(
        {
            "household_id": block.household[house],
            "campaign_id": campaigns[campaign],
            "value": block.value[campaign, house],
            "cost": block.cost[campaign, house],
            "redemptions": block.red[campaign, house],
            "step_roi": step_roi[campaign, house],
            "step_grid": step_grid[campaign, house],
            "forced": np.zeros(len(house), bool),
        }
    )


def _forced_candidates(
    block: _Block, design: _Design, short: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of short campaigns that the plan left out, in households with a free slot."""
    chosen, _, _ = _final_choice(block, design)
    free = design.path.k - chosen.sum(0)
    candidate = block.valid & ~chosen & short[:, None] & (free > 0)[None, :]
    roi = np.where(candidate, block.profit / np.where(block.valid, block.cost, 1.0), -np.inf)
    return candidate, roi, free


def _roi_code(roi: np.ndarray) -> np.ndarray:
    """Monotone squash of ROI onto (-1, 1) for a fixed histogram of forced candidates."""
    return np.tanh(np.arcsinh(roi) / 8.0)


_FORCED_BINS = 2048


def _forced_bin(roi: np.ndarray) -> np.ndarray:
    return np.clip(((1 - _roi_code(roi)) / 2 * _FORCED_BINS).astype(np.int64), 0, _FORCED_BINS - 1)


def _pass_forced_hist(block: _Block, design: _Design, short: np.ndarray) -> dict[str, Any]:
    candidate, roi, _ = _forced_candidates(block, design, short)
    campaign, house = np.nonzero(candidate)
    hist = np.zeros((len(short), _FORCED_BINS))
    np.add.at(hist, (campaign, _forced_bin(roi[campaign, house])), block.cost[campaign, house])
    return {"sum_hist": hist}


def _pass_forced_collect(block: _Block, design: _Design, short: np.ndarray, last_bin: np.ndarray) -> dict[str, Any]:
    candidate, roi, free = _forced_candidates(block, design, short)
    campaign, house = np.nonzero(candidate)
    keep = _forced_bin(roi[campaign, house]) <= last_bin[campaign]
    campaign, house = campaign[keep], house[keep]
    out = {
        "cat_household": block.household[house],
        "cat_campaign": campaign.astype(np.int64),
        "cat_value": block.value[campaign, house],
        "cat_cost": block.cost[campaign, house],
        "cat_red": block.red[campaign, house],
        "cat_roi": roi[campaign, house],
        "cat_free": free[house].astype(np.int64),
    }
    if block.row is not None:
        out["cat_row"] = block.row[campaign, house]
    return out


# --------------------------------------------------------------------------
# Engines: run a pass over every block, merge on the driver
# --------------------------------------------------------------------------


class _Merger:
    """Merges per-block results: sum_* add, max_* take the max, cat_* concatenate."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.cats: dict[str, list[np.ndarray]] = {}

    def add(self, part: Mapping[str, Any]) -> None:
        for key, value in part.items():
            if key.startswith("cat_"):
                self.cats.setdefault(key, []).append(np.asarray(value))
            elif key not in self.sums:
                self.sums[key] = np.asarray(value)
            elif key.startswith("max_"):
                self.sums[key] = np.maximum(self.sums[key], value)
            else:
                self.sums[key] = self.sums[key] + value

    def parts(self) -> dict[str, Any]:
        return {**self.sums, **{key: np.concatenate(v) for key, v in self.cats.items()}}

    def result(self) -> dict[str, Any]:
        out = {key[4:] if key.startswith("sum_") else key: value for key, value in self.sums.items()}
        for key, parts in self.cats.items():
            out[key[4:]] = np.concatenate(parts)
        return out


class _NumpyEngine:
    def __init__(self, frame: pd.DataFrame, campaigns: np.ndarray, chunk_households: int) -> None:
        self.campaigns = campaigns
        rows = chunk_households * max(1, len(campaigns))
        slices = (frame.iloc[i : i + rows] for i in range(0, len(frame), rows))
        self.blocks = list(_blocks_from_frames(slices, campaigns, chunk_households, with_rows=True))
        self.households = sum(b.n for b in self.blocks)
        self.passes = 0

    def statistics(self, rate: float) -> dict[str, Any]:
        return self.aggregate("statistics and sample", functools.partial(_pass_stats, rate=rate))

    def aggregate(self, name: str, fn: Callable[[_Block], Mapping[str, Any]]) -> dict[str, Any]:
        with stage(log, f"budget solver: {name}") as report:
            merger = _Merger()
            for block in self.blocks:
                merger.add(fn(block))
            report.rows = self.households
        self.passes += 1
        return merger.result()


class _SparkEngine:
    """Runs the passes with mapInPandas.

    The first pass reads the pairs (repartitioned by household, sorted
    within partitions), checks them, gathers the statistics and the sample,
    and packs each chunk of households into one binary row (numpy buffers).
    Those rows are cached; every later pass unpickles blocks instead of
    converting ten million rows through Arrow and pandas again.
    """

    def __init__(self, pairs: DataFrame, campaigns: np.ndarray, chunk_households: int, rows: int) -> None:
        self.pairs = pairs
        self.campaigns = campaigns
        self.chunk_households = chunk_households
        self.households = rows
        self.passes = 0
        self.packed: DataFrame | None = None
        self.blocks: DataFrame | None = None

    def statistics(self, rate: float) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        campaigns, chunk = self.campaigns, self.chunk_households

        def pack(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            merger = _Merger()

            def checked(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
                for frame in frames:
                    merger.add(_bad_values(frame))
                    yield frame

            for block in _blocks_from_frames(checked(batches), campaigns, chunk, with_rows=False):
                merger.add(_pass_stats(block, rate))
                yield pd.DataFrame({"kind": ["block"], "payload": [_pack_block(block)]})
            yield pd.DataFrame({"kind": ["stats"], "payload": [pickle.dumps(merger.parts(), protocol=5)]})

        with stage(log, "budget solver: check, pack and sample the pairs (spark pass)") as report:
            self.packed = self.pairs.mapInPandas(pack, "kind string, payload binary").persist(
                StorageLevel.MEMORY_AND_DISK
            )
            rows = self.packed.filter(F.col("kind") == "stats").collect()
            merger = _Merger()
            for row in rows:
                merger.add(pickle.loads(row["payload"]))
            self.blocks = self.packed.filter(F.col("kind") == "block").select("payload")
            report.rows = self.households
        self.passes += 1
        return merger.result()

    def release(self) -> None:
        if self.packed is not None:
            self.packed.unpersist()

    def aggregate(self, name: str, fn: Callable[[_Block], Mapping[str, Any]]) -> dict[str, Any]:
        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            merger = _Merger()
            for batch in batches:
                for payload in batch["payload"]:
                    merger.add(fn(_unpack_block(payload)))
            yield pd.DataFrame({"payload": [pickle.dumps(merger.parts(), protocol=pickle.HIGHEST_PROTOCOL)]})

        with stage(log, f"budget solver: {name} (spark pass)") as report:
            rows = self.blocks.mapInPandas(run, "payload binary").collect()
            merger = _Merger()
            for row in rows:
                merger.add(pickle.loads(row["payload"]))
            report.rows = self.households
        self.passes += 1
        return merger.result()

    def emit(self, design: _Design) -> DataFrame:
        campaigns = self.campaigns

        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                for payload in batch["payload"]:
                    out = _emit_frame(_unpack_block(payload), design, campaigns)
                    if len(out):
                        yield out

        self.passes += 1
        return self.blocks.mapInPandas(run, _SELECTED_SCHEMA)


_SELECTED_SCHEMA = (
    "household_id long, campaign_id long, value double, cost double, redemptions double, "
    "step_roi double, step_grid long, forced boolean"
)


# --------------------------------------------------------------------------
# The driver: the same for numpy and Spark
# --------------------------------------------------------------------------


@dataclass
class _Solved:
    design: _Design
    households: int
    pairs: int
    dual_bound: float | None
    roi_threshold: float | None
    prices: dict[str, Any]
    grid_stats: dict[str, np.ndarray] | None = None


def _empty_design(problem: _Problem) -> _Design:
    n_campaigns = problem.n_campaigns
    path = _PathParams(
        k=problem.k,
        floor=problem.floor,
        grid=np.array([0.0]),
        cap_price=np.zeros((1, n_campaigns)),
        red_price=np.zeros((1, n_campaigns)),
        capped=problem.capped,
        closed=np.zeros((n_campaigns, 2), bool),
    )
    return _Design(path, _Cut(point=0))


def _solve(engine: Any, problem: _Problem, settings: SolverSettings, pairs: int) -> _Solved:
    """Sample and prices, path moves, cap cuts, the budget cut and the dual bound."""
    n_campaigns = problem.n_campaigns
    households_estimate = max(1.0, pairs / max(1, n_campaigns))
    rate = min(1.0, settings.sample_households / households_estimate)
    stats = engine.statistics(rate)
    _raise_on_bad_values(stats)
    duplicates = int(stats.get("duplicates", 0))
    if duplicates:
        raise ValueError(f"pairs: {duplicates} duplicate (household_id, campaign_id) pair(s)")
    households = int(stats.get("households", 0))
    max_roi = float(stats.get("max_roi", -np.inf))
    engine.households = households
    if households == 0 or n_campaigns == 0 or not max_roi > problem.floor:
        return _Solved(_empty_design(problem), households, pairs, 0.0, None, {})

    sample = _block_from_pairs(
        {key: stats[key] for key in ("household_id", "campaign", "value", "cost", "redemptions")},
        problem.campaigns,
    )
    scale = sample.n / households
    top = max_roi - problem.floor
    grid = np.concatenate([top * np.geomspace(1.0, settings.price_span, settings.price_grid - 1), [0.0]])
    spend_target = np.full(n_campaigns, _CAP_MARGIN)
    red_target = np.full(n_campaigns, _CAP_MARGIN)
    for attempt in range(settings.cap_rounds + 1):
        path, spend_target, red_target = _sample_path(
            sample, problem, grid, scale, settings, spend_target, red_target, attempt
        )
        grid_stats = engine.aggregate("moves by grid point", functools.partial(_pass_grid, path=path))
        if not problem.capped.any():
            break
        spend_peak, red_peak = _cap_peaks(grid_stats, problem)
        if not ((spend_peak > 1).any() or (red_peak > 1).any()):
            break
        if attempt == settings.cap_rounds:
            # Safety net: cut the moves into campaigns that would still pass a cap.
            path = replace(path, closed=_cap_overflows(grid_stats, problem))
            grid_stats = engine.aggregate("moves by grid point, cap cuts", functools.partial(_pass_grid, path=path))
            if _cap_overflows(grid_stats, problem).any():
                path = replace(path, closed=path.closed | _cap_closures_by_entries(grid_stats, problem))
                grid_stats = engine.aggregate(
                    "moves by grid point, safe cap cuts", functools.partial(_pass_grid, path=path)
                )
            break
        spend_target = spend_target / np.maximum(spend_peak / _CAP_MARGIN, 1.0)
        red_target = red_target / np.maximum(red_peak / _CAP_MARGIN, 1.0)

    with stage(log, "budget solver: budget prices on the sample (dual bound)") as report:
        if math.isfinite(problem.budget):
            bound_prices, sample_bound = _search_prices(sample, problem, problem.budget, scale, settings.search_rounds)
        else:
            bound_prices, sample_bound = _search_prices(sample, problem, math.inf, scale, settings.search_rounds)
        report.rows = sample.n
    window = _budget_window(grid_stats, problem.budget_safe)
    threshold_hint = None if window is None else problem.floor + float(grid[window[0] - 1])
    candidates = _bound_candidates(bound_prices, problem, threshold_hint)
    first, last = window if window is not None else (1, 0)
    band = engine.aggregate(
        "budget window moves and dual bound",
        functools.partial(_pass_band, path=path, first=first, last=last, candidates=candidates),
    )
    bounds = [
        _dual_value(float(term), prices, problem.budget, problem.max_budget, problem.inventory)
        for term, prices in zip(band["bound"], candidates)
    ]
    best = int(np.argmin(bounds))
    dual_bound = bounds[best]
    if scale == 1.0:
        dual_bound = min(dual_bound, sample_bound)
    cut = _choose_cut(grid_stats, band, window, problem.budget_safe, path.points)
    prices = {
        "grid_points": path.points,
        "cap_cuts": int(path.closed.sum()),
        "cap_targets": {
            int(c): round(float(min(spend_target[i], red_target[i])), 4)
            for i, c in enumerate(problem.campaigns)
            if problem.capped[i]
        },
        "bound_prices": candidates[best].as_dict(problem.campaigns),
    }
    return _Solved(
        _Design(path, cut),
        households,
        pairs,
        dual_bound,
        _threshold(cut, path),
        prices,
        grid_stats=grid_stats,
    )


def _sample_path(
    sample: _Block,
    problem: _Problem,
    grid: np.ndarray,
    scale: float,
    settings: SolverSettings,
    spend_target: np.ndarray,
    red_target: np.ndarray,
    attempt: int,
) -> tuple[_PathParams, np.ndarray, np.ndarray]:
    """Path prices from the sample, calibrated on the sample until its own moves keep every cap.

    A full pass costs a scan of all households; a sample round costs a price
    search on the sample, so the caps' margins are first tuned here (the
    within-grid-point peaks are the same statistics, scaled), and the full
    data only corrects what the sample could not see.
    """
    n_campaigns = problem.n_campaigns
    for sample_round in range(settings.cap_rounds + 1):
        name = f"budget solver: cap prices along the price grid (sample, round {attempt + 1}.{sample_round + 1})"
        with stage(log, name) as report:
            cap_price, red_price = _path_prices(
                sample, problem, grid, scale, settings.search_rounds, spend_target, red_target
            )
            report.rows = sample.n
        path = _PathParams(
            k=problem.k,
            floor=problem.floor,
            grid=grid,
            cap_price=cap_price,
            red_price=red_price,
            capped=problem.capped,
            closed=np.zeros((n_campaigns, len(grid) + 1), bool),
        )
        if not problem.capped.any():
            break
        merger = _Merger()
        merger.add(_pass_grid(sample, path))
        spend_peak, red_peak = _cap_peaks(merger.result(), problem, scale)
        if not ((spend_peak > 1).any() or (red_peak > 1).any()):
            break
        spend_target = spend_target / np.maximum(spend_peak / _CAP_MARGIN, 1.0)
        red_target = red_target / np.maximum(red_peak / _CAP_MARGIN, 1.0)
    return path, spend_target, red_target


def _threshold(cut: _Cut, path: _PathParams) -> float | None:
    """Budget price (as an ROI) at which the plan stops; None when it takes every move."""
    if cut.point > path.points or cut.point < 1:
        return None
    return path.floor + float(path.grid[cut.point - 1])


_CAP_MARGIN = 0.995  # the price search aims this close to each cap (sampling noise, grid steps)


def _cap_peaks(
    stats: Mapping[str, np.ndarray], problem: _Problem, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per campaign: the highest possible usage along the order of moves, as a share of its cap (times ``scale``)."""
    peaks = []
    for name, limits in (("spend", problem.max_budget), ("red", problem.inventory)):
        share = np.zeros(problem.n_campaigns)
        for c in np.flatnonzero(np.isfinite(limits)):
            net = stats[f"net_{name}"][c]
            peak = np.max(np.cumsum(net) - net - stats[f"freed_{name}"][c] + stats[f"added_{name}"][c])
            limit = _safe(limits[c] * scale)
            share[c] = peak / limit if limit > 0 else (np.inf if peak > 0 else 0.0)
        peaks.append(share)
    return peaks[0], peaks[1]


def _cap_overflows(stats: Mapping[str, np.ndarray], problem: _Problem) -> np.ndarray:
    """[C, L + 1] bool: grid points where some prefix of the moves could pass a cap.

    Inside a grid point the freeing moves come first, then the others in any
    order, so the usage never exceeds (usage before the point) - (freed) +
    (every addition at the point).
    """
    flagged = np.zeros(stats["net_spend"].shape, bool)
    for name, limits in (("spend", problem.max_budget), ("red", problem.inventory)):
        for c in np.flatnonzero(np.isfinite(limits)):
            net = stats[f"net_{name}"][c]
            before = np.cumsum(net) - net
            peak = before - stats[f"freed_{name}"][c] + stats[f"added_{name}"][c]
            flagged[c] |= peak > _safe(limits[c])
    return flagged


def _cap_closures_by_entries(stats: Mapping[str, np.ndarray], problem: _Problem) -> np.ndarray:
    """[C, L + 1] bool: the safe fallback. Close a campaign from the grid point where
    its entries alone (exits not credited) would pass the cap; cutting moves only
    removes entries, so this can never be undone by another campaign's cut."""
    closed = np.zeros(stats["net_spend"].shape, bool)
    for name, limits in (("spend", problem.max_budget), ("red", problem.inventory)):
        for c in np.flatnonzero(np.isfinite(limits)):
            over = np.flatnonzero(np.cumsum(stats[f"added_{name}"][c]) > _safe(limits[c]))
            if len(over):
                closed[c, over[0] :] = True
    return closed


def _group_sums(stats: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    return sum(stats[f"{prefix}_{group}"] for group in (_FREES, _GAINS, _LOSES))


def _budget_window(stats: Mapping[str, np.ndarray], budget: float) -> tuple[int, int] | None:
    """Grid points first..last between which the running cost first passes the budget (None: never).

    ``first``: the first point where it could (start + every positive cost at
    the point); ``last``: the first point from there whose end is over.
    """
    cost = _group_sums(stats, "cost")
    ends = np.cumsum(cost)
    starts = ends - cost
    could = np.flatnonzero(starts + _group_sums(stats, "posc") > budget)
    could = could[could >= 1]
    if len(could) == 0:
        return None
    first = int(could[0])
    over = np.flatnonzero((ends > budget) & (np.arange(len(ends)) >= first))
    last = int(over[0]) if len(over) else len(ends) - 1
    return first, last


def _choose_cut(
    stats: Mapping[str, np.ndarray],
    band: Mapping[str, np.ndarray],
    window: tuple[int, int] | None,
    budget: float,
    points: int,
) -> _Cut:
    """The best plan among the checkpoints the budget reaches (keep the best plan).

    Checkpoints are B-independent positions in the global order of moves:
    the start of each grid point and its junction (after the freeing and
    gaining moves). The plan for budget B is the best of the checkpoints
    before the first move that does not fit, and of the prefix that stops
    there. Inside a grid point the objective falls then rises up to the
    junction (freeing moves sorted by objective change, then gaining moves)
    and falls after it, so that stopping prefix is never better than a
    checkpoint the next budget still reaches, or than its own continuation:
    the plan's objective cannot decrease when B grows.
    """
    objective = _group_sums(stats, "obj")
    obj_end = np.cumsum(objective)
    obj_start = obj_end - objective
    rising = stats[f"obj_{_FREES}"] + stats[f"obj_{_GAINS}"]
    rising_count = stats[f"count_{_FREES}"] + stats[f"count_{_GAINS}"]
    best: tuple[float, int, int] = (0.0, 0, 0)  # (objective, point, moves at the point); nothing at all
    best_cut = _Cut(point=0)

    def consider(value: float, point: int, offset: int, cut: _Cut) -> None:
        nonlocal best, best_cut
        key = (value, point, offset)
        if key > best:
            best, best_cut = key, cut

    full_until = window[0] if window is not None else points + 1
    for point in range(1, full_until):
        consider(float(obj_start[point]), point, 0, _Cut(point))
        consider(float(obj_start[point] + rising[point]), point, int(rising_count[point]), _Cut(point, "junction"))
    if window is None:
        consider(float(obj_end[points]), points + 1, 0, _Cut(points + 1))
        return best_cut

    first, last = window
    order = _move_order(band["household"], band["grid"], band["group"], band["rank"])
    household, grid = band["household"][order], band["grid"][order]
    group, cost, obj = band["group"][order], band["cost"][order], band["obj"][order]
    running = (np.cumsum(_group_sums(stats, "cost")) - _group_sums(stats, "cost"))[first] + np.cumsum(cost)
    over = np.flatnonzero(running > budget)
    stop = int(over[0]) if len(over) else len(cost)
    values = obj_start[first] + np.concatenate([[0.0], np.cumsum(obj)])
    for point in range(first, last + 1):
        start = int(np.searchsorted(grid, point, side="left"))
        if start <= stop:
            consider(float(values[start]), point, 0, _Cut(point))
        junction = start + int(((grid == point) & (group != _LOSES)).sum())
        if junction <= stop:
            consider(float(values[junction]), point, junction - start, _Cut(point, "junction"))
    if stop < len(cost):
        point = int(grid[stop])
        start = int(np.searchsorted(grid, point, side="left"))
        chosen = np.sort(household[start:stop])
        consider(float(values[stop]), point, stop - start, _Cut(point, "list", chosen))
    else:
        consider(float(values[stop]), last + 1, 0, _Cut(last + 1))
    return best_cut


def _bound_candidates(prices: _Prices, problem: _Problem, threshold: float | None) -> list[_Prices]:
    """Prices to evaluate the dual at on all the data: the sample's, nudged (sampling error)."""
    lambdas = {prices.budget}
    if math.isfinite(problem.budget):
        bases = [prices.budget]
        if threshold is not None:
            bases.append(max(threshold - problem.floor, 0.0))
        for base in bases:
            for step in (-0.02, -0.01, -0.005, -0.002, 0.0, 0.002, 0.005, 0.01, 0.02):
                lambdas.add(max(0.0, base * (1.0 + step)))
    scales = (0.98, 1.0, 1.02) if problem.capped.any() else (1.0,)
    return [_Prices(lam, prices.spend * s, prices.redemptions * s) for lam in sorted(lambdas) for s in scales]


# --------------------------------------------------------------------------
# Minimum budgets (best effort) and summaries
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Usage:
    """Per-campaign totals of a selection."""

    spend: np.ndarray
    audience: np.ndarray
    profit: np.ndarray
    red: np.ndarray
    marginal: np.ndarray  # ROI of the move that admitted the campaign's latest pair (nan: none)
    forced: np.ndarray
    forced_spend: np.ndarray
    households: int
    most_per_household: int = 0

    @classmethod
    def from_arrays(
        cls,
        n_campaigns: int,
        campaign: np.ndarray,
        household: np.ndarray,
        value: np.ndarray,
        cost: np.ndarray,
        red: np.ndarray,
        step_roi: np.ndarray,
        step_grid: np.ndarray,
        forced: np.ndarray,
    ) -> _Usage:
        def total(weights: np.ndarray) -> np.ndarray:
            return np.bincount(campaign, weights, n_campaigns)

        return cls(
            spend=total(cost),
            audience=np.bincount(campaign, minlength=n_campaigns),
            profit=total(value - cost),
            red=total(red),
            marginal=_latest_roi(n_campaigns, campaign, step_roi, step_grid, forced),
            forced=np.bincount(campaign[forced], minlength=n_campaigns),
            forced_spend=np.bincount(campaign[forced], cost[forced], n_campaigns),
            households=len(np.unique(household)),
            most_per_household=int(np.unique(household, return_counts=True)[1].max()) if len(household) else 0,
        )


def _latest_roi(
    n_campaigns: int, campaign: np.ndarray, step_roi: np.ndarray, step_grid: np.ndarray, forced: np.ndarray
) -> np.ndarray:
    """Per campaign: the marginal ROI of the move that admitted its latest pair (the lowest one at that grid point)."""
    out = np.full(n_campaigns, np.nan)
    use = ~forced & np.isfinite(step_roi)
    latest = np.full(n_campaigns, -1)
    np.maximum.at(latest, campaign[use], step_grid[use])
    last = use & (step_grid == latest[campaign])
    low = np.full(n_campaigns, np.inf)
    np.minimum.at(low, campaign[last], step_roi[last])
    return np.where(np.isfinite(low), low, out)


def _shortfalls(problem: _Problem, usage: _Usage) -> np.ndarray:
    return np.maximum(problem.min_budget - usage.spend, 0.0)


def _forced_plan(
    engine: Any, problem: _Problem, design: _Design, usage: _Usage
) -> dict[str, np.ndarray] | None:
    """Adds the least-unprofitable pairs of campaigns below their minimum budget.

    Candidates: a short campaign's pairs that the plan left out, in households
    with a free slot, best ROI first; taken while the total budget, the
    campaign's maximum and inventory, and the household's slots allow, until
    the minimum is met. Two passes: a histogram of candidates' ROI (to gather
    only about three times the shortfall), then the candidates themselves.
    """
    short = _shortfalls(problem, usage) > 0
    if not short.any():
        return None
    hist = engine.aggregate(
        "minimum budgets: candidates histogram", functools.partial(_pass_forced_hist, design=design, short=short)
    )["hist"]
    need = 3.0 * _shortfalls(problem, usage)
    last_bin = np.full(problem.n_campaigns, -1, np.int64)
    for campaign in np.flatnonzero(short):
        cumulative = np.cumsum(hist[campaign])
        enough = np.flatnonzero(cumulative >= need[campaign])
        last_bin[campaign] = enough[0] if len(enough) else _FORCED_BINS - 1
    cands = engine.aggregate("minimum budgets: candidates", functools.partial(
        _pass_forced_collect, design=design, short=short, last_bin=last_bin
    ))
    if "household" not in cands:
        return {key: np.empty(0) for key in ("household", "campaign", "value", "cost", "red", "row")}
    order = np.lexsort((cands["household"], -cands["roi"], cands["campaign"]))
    spend = usage.spend.copy()
    red = usage.red.copy()
    total = float(usage.spend.sum())
    budget = problem.budget_safe
    used_slots: dict[int, int] = {}
    taken = []
    for i in order:
        c = int(cands["campaign"][i])
        if spend[c] >= problem.min_budget[c]:
            continue
        h = int(cands["household"][i])
        w, r = float(cands["cost"][i]), float(cands["red"][i])
        if used_slots.get(h, 0) >= cands["free"][i]:
            continue
        if total + w > budget or spend[c] + w > _safe(problem.max_budget[c]):
            continue
        if red[c] + r > _safe(problem.inventory[c]):
            continue
        taken.append(i)
        used_slots[h] = used_slots.get(h, 0) + 1
        spend[c] += w
        red[c] += r
        total += w
    idx = np.array(taken, dtype=np.int64)
    return {key: cands[key][idx] for key in cands if key in ("household", "campaign", "value", "cost", "red", "row")}


def _replan_for_minimums(engine: Any, problem: _Problem, solved: _Solved, usage: _Usage) -> _Solved | None:
    """With a total budget, redo the budget cut holding back the minimum budgets' shortfall."""
    shortfall = float(_shortfalls(problem, usage).sum())
    if shortfall <= 0 or not math.isfinite(problem.budget) or solved.grid_stats is None:
        return None
    if float(usage.spend.sum()) + shortfall <= problem.budget_safe:
        return None
    budget = _safe(max(0.0, problem.budget - shortfall))
    path = solved.design.path
    window = _budget_window(solved.grid_stats, budget)
    first, last = window if window is not None else (1, 0)
    band = engine.aggregate(
        "minimum budgets: budget window at the reduced budget",
        functools.partial(_pass_band, path=path, first=first, last=last, candidates=[]),
    )
    cut = _choose_cut(solved.grid_stats, band, window, budget, path.points)
    return replace(solved, design=_Design(path, cut), roi_threshold=_threshold(cut, path))


def _summary(
    problem: _Problem,
    solved: _Solved,
    usage: _Usage,
    started: float,
    passes: int,
) -> PlanSummary:
    campaigns = []
    shortfall = _shortfalls(problem, usage)
    for i, campaign in enumerate(problem.campaigns):
        spend = float(usage.spend[i])
        campaigns.append(
            CampaignSummary(
                campaign_id=int(campaign),
                spend=spend,
                audience=int(usage.audience[i]),
                profit=float(usage.profit[i]),
                roi=float(usage.profit[i]) / spend if spend > 0 else None,
                redemptions=float(usage.red[i]),
                marginal_roi=None if math.isnan(usage.marginal[i]) else float(usage.marginal[i]),
                min_budget=float(problem.min_budget[i]) if problem.min_budget[i] > 0 else None,
                max_budget=float(problem.max_budget[i]) if math.isfinite(problem.max_budget[i]) else None,
                inventory=float(problem.inventory[i]) if math.isfinite(problem.inventory[i]) else None,
                forced_pairs=int(usage.forced[i]),
                forced_spend=float(usage.forced_spend[i]),
                min_budget_shortfall=float(shortfall[i]),
            )
        )
    spend = float(usage.spend.sum())
    profit = float(usage.profit.sum())
    objective = profit - problem.floor * spend
    bound = solved.dual_bound
    gap = None
    if bound is not None:
        gap = 0.0 if abs(bound) < 1e-12 and abs(objective) < 1e-12 else (bound - objective) / max(abs(bound), 1e-12)
    return PlanSummary(
        mode=problem.mode,
        target_roi=problem.target_roi,
        total_budget=None if math.isinf(problem.budget) else problem.budget,
        household_cap=problem.k,
        objective=objective,
        profit=profit,
        budget_used=spend,
        dual_bound=bound,
        gap=gap,
        pairs=solved.pairs,
        pairs_selected=int(usage.audience.sum()),
        households=solved.households,
        households_targeted=usage.households,
        forced_pairs=int(usage.forced.sum()),
        roi_threshold=solved.roi_threshold,
        campaigns=tuple(campaigns),
        prices=MappingProxyType(solved.prices),
        seconds=time.monotonic() - started,
        passes=passes,
    )


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


def plan_budget(
    pairs: pd.DataFrame,
    constraints: BudgetConstraints,
    mode: PlanningMode = "fixed_budget",
    target_roi: float | None = None,
    settings: SolverSettings = SolverSettings(),
) -> BudgetPlan:
    """Plans in numpy. ``pairs`` has household_id, campaign_id, value, cost, redemptions.

    Returns masks aligned with the input rows and the summary; see the module
    docstring for the method and its guarantees.
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
    _check_feasible(problem, usage, selected, pairs_arrays)
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


def _numpy_usage(
    problem: _Problem,
    arrays: Mapping[str, np.ndarray],
    selected: np.ndarray,
    step_roi: np.ndarray,
    step_grid: np.ndarray,
    forced: np.ndarray,
) -> _Usage:
    campaign = np.searchsorted(problem.campaigns, arrays["campaign_id"][selected])
    return _Usage.from_arrays(
        problem.n_campaigns,
        campaign,
        arrays["household_id"][selected],
        arrays["value"][selected],
        arrays["cost"][selected],
        arrays["redemptions"][selected],
        step_roi[selected],
        step_grid[selected],
        forced[selected],
    )


def _check_feasible(
    problem: _Problem, usage: _Usage, selected: np.ndarray, arrays: Mapping[str, np.ndarray]
) -> None:
    """The hard constraints, checked on the final selection (a bug here must not ship a plan)."""
    tol = 1e-7
    if usage.spend.sum() > problem.budget + tol * max(1.0, problem.budget):
        raise RuntimeError(f"budget solver bug: spend {usage.spend.sum()} exceeds the budget {problem.budget}")
    over = usage.spend > problem.max_budget + tol * np.maximum(1.0, problem.max_budget)
    over |= usage.red > problem.inventory + tol * np.maximum(1.0, problem.inventory)
    if over.any():
        raise RuntimeError(f"budget solver bug: campaign(s) {problem.campaigns[over].tolist()} over a cap")
    if selected.any():
        counts = np.unique(arrays["household_id"][selected], return_counts=True)[1]
        if counts.max() > problem.k:
            raise RuntimeError("budget solver bug: a household exceeds the household cap")


def _describe(summary: PlanSummary) -> str:
    gap = "n/a" if summary.gap is None else f"{summary.gap:.4%}"
    return (
        f"objective {summary.objective:,.2f}, spend {summary.budget_used:,.2f}, "
        f"{summary.pairs_selected:,} pairs, bound {summary.dual_bound}, gap {gap}"
    )


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
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    started = time.monotonic()
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise MissingColumnError(
            f"pairs: missing column(s) {', '.join(missing)}; found {', '.join(pairs.columns)}"
        )
    types = {f.name: f.dataType for f in pairs.schema.fields}
    for column in PAIR_COLUMNS:
        if not isinstance(types[column], NumericType):
            raise ValueError(f"pairs.{column} must be numeric, got {types[column].simpleString()}")
    spark = pairs.sparkSession
    partitions = settings.num_partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
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
    problem = _resolve_problem(constraints, mode, target_roi, [int(c) for c in (head["campaigns"] or [])])
    prepared = (
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
    engine = _SparkEngine(prepared, problem.campaigns, settings.chunk_households, rows)
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
                forced_frame = spark.createDataFrame(
                    pd.DataFrame(
                        {
                            "household_id": extra["household"].astype(np.int64),
                            "campaign_id": problem.campaigns[extra["campaign"].astype(np.int64)],
                            "value": extra["value"].astype(np.float64),
                            "cost": extra["cost"].astype(np.float64),
                            "redemptions": extra["red"].astype(np.float64),
                            "step_roi": np.full(len(extra["household"]), np.nan),
                            "step_grid": np.zeros(len(extra["household"]), np.int64),
                            "forced": np.ones(len(extra["household"]), bool),
                        }
                    ),
                    schema=_SELECTED_SCHEMA,
                )
                combined = selected.unionByName(forced_frame).persist()
                combined.count()
                selected.unpersist()
                selected = combined
                usage = _spark_usage(selected, problem)
            summary = _summary(problem, solved, usage, started, engine.passes)
            report.rows = rows
            report.detail = _describe(summary)
        _check_feasible_usage(problem, usage)
        return selected, summary
    finally:
        engine.release()


def _spark_selection(engine: _SparkEngine, problem: _Problem, design: _Design) -> tuple[DataFrame, _Usage]:
    with stage(log, "budget solver: emit the selection (spark pass)") as report:
        selected = engine.emit(design).persist()
        report.rows = selected.count()
    return selected, _spark_usage(selected, problem)


def _spark_usage(selected: DataFrame, problem: _Problem) -> _Usage:
    """Per-campaign totals of the cached selection (small: one row per campaign)."""
    from pyspark.sql import functions as F

    rows = (
        selected.groupBy("campaign_id")
        .agg(
            F.sum("cost").alias("spend"),
            F.count(F.lit(1)).alias("audience"),
            F.sum(F.col("value") - F.col("cost")).alias("profit"),
            F.sum("redemptions").alias("red"),
            F.max(
                F.when(
                    ~F.col("forced") & ~F.isnan("step_roi"),
                    F.struct(F.col("step_grid").alias("g"), (-F.col("step_roi")).alias("r")),
                )
            ).alias("marginal"),
            F.sum(F.when(F.col("forced"), 1).otherwise(0)).alias("forced"),
            F.sum(F.when(F.col("forced"), F.col("cost")).otherwise(0.0)).alias("forced_spend"),
        )
        .collect()
    )
    per_household = selected.groupBy("household_id").count().agg(
        F.count(F.lit(1)).alias("households"), F.max("count").alias("most")
    ).collect()[0]
    households = int(per_household["households"] or 0)
    n_campaigns = problem.n_campaigns
    arrays = {name: np.zeros(n_campaigns) for name in ("spend", "audience", "profit", "red", "forced", "forced_spend")}
    marginal = np.full(n_campaigns, np.nan)
    for row in rows:
        i = int(np.searchsorted(problem.campaigns, row["campaign_id"]))
        for name in arrays:
            arrays[name][i] = row[name] or 0
        marginal[i] = np.nan if row["marginal"] is None else -row["marginal"]["r"]
    return _Usage(
        spend=arrays["spend"],
        audience=arrays["audience"].astype(np.int64),
        profit=arrays["profit"],
        red=arrays["red"],
        marginal=marginal,
        forced=arrays["forced"].astype(np.int64),
        forced_spend=arrays["forced_spend"],
        households=households,
        most_per_household=int(per_household["most"] or 0),
    )


def _check_feasible_usage(problem: _Problem, usage: _Usage) -> None:
    """The hard constraints, checked on the Spark selection's totals."""
    if usage.most_per_household > problem.k:
        raise RuntimeError("budget solver bug: a household exceeds the household cap")
    tol = 1e-7
    if usage.spend.sum() > problem.budget + tol * max(1.0, problem.budget):
        raise RuntimeError(f"budget solver bug: spend {usage.spend.sum()} exceeds the budget {problem.budget}")
    over = usage.spend > problem.max_budget + tol * np.maximum(1.0, problem.max_budget)
    over |= usage.red > problem.inventory + tol * np.maximum(1.0, problem.inventory)
    if over.any():
        raise RuntimeError(f"budget solver bug: campaign(s) {problem.campaigns[over].tolist()} over a cap")


# --------------------------------------------------------------------------
# Exact solution with HiGHS (small instances)
# --------------------------------------------------------------------------


def solve_exact(
    pairs: pd.DataFrame,
    constraints: BudgetConstraints,
    mode: PlanningMode = "fixed_budget",
    target_roi: float | None = None,
    *,
    time_limit: float = 300.0,
    mip_rel_gap: float = 1e-9,
    threads: int | None = None,
) -> ExactSolution:
    """Solves the same problem exactly as a MILP (binary x) with HiGHS, and its LP relaxation.

    Same objective as the heuristic (``value - cost - target_roi * cost``) and
    every constraint, minimum budgets as hard constraints. For checking the
    heuristic's optimality gap on small instances.
    """
    import highspy
    from scipy import sparse

    started = time.monotonic()
    frame = _validate_pairs_frame(pairs)
    problem = _resolve_problem(constraints, mode, target_roi, np.unique(frame["campaign_id"].to_numpy()))
    n = len(frame)
    cost = frame["cost"].to_numpy()
    red = frame["redemptions"].to_numpy()
    objective = frame["value"].to_numpy() - cost - problem.floor * cost
    _, household_row = np.unique(frame["household_id"].to_numpy(), return_inverse=True)
    campaign = np.searchsorted(problem.campaigns, frame["campaign_id"].to_numpy())

    rows, cols, vals, lower, upper = [], [], [], [], []
    n_rows = 0

    def add_rows(
        row_index: np.ndarray, col_index: np.ndarray, values: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> None:
        nonlocal n_rows
        rows.append(row_index + n_rows)
        cols.append(col_index)
        vals.append(values)
        lower.append(lo)
        upper.append(hi)
        n_rows += len(lo)

    inf = highspy.kHighsInf
    n_households = int(household_row.max()) + 1 if n else 0
    add_rows(household_row, np.arange(n), np.ones(n), np.full(n_households, -inf), np.full(n_households, problem.k))
    if math.isfinite(problem.budget):
        add_rows(np.zeros(n, np.int64), np.arange(n), cost, np.array([-inf]), np.array([problem.budget]))
    for c in range(problem.n_campaigns):
        members = np.flatnonzero(campaign == c)
        lo = problem.min_budget[c] if problem.min_budget[c] > 0 else -inf
        hi = problem.max_budget[c] if math.isfinite(problem.max_budget[c]) else inf
        if lo > -inf or hi < inf:
            add_rows(np.zeros(len(members), np.int64), members, cost[members], np.array([lo]), np.array([hi]))
        if math.isfinite(problem.inventory[c]):
            add_rows(
                np.zeros(len(members), np.int64),
                members,
                red[members],
                np.array([-inf]),
                np.array([problem.inventory[c]]),
            )
    matrix = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n)
    )

    def run(integer: bool) -> highspy.Highs:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        if threads is not None:
            h.setOptionValue("threads", int(threads))
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = n_rows
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.col_cost_ = objective
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.ones(n)
        lp.row_lower_ = np.concatenate(lower)
        lp.row_upper_ = np.concatenate(upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        if integer:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        h.passModel(lp)
        h.run()
        return h

    relaxed = run(integer=False)
    lp_ok = relaxed.getModelStatus() == highspy.HighsModelStatus.kOptimal
    lp_bound = relaxed.getInfo().objective_function_value if lp_ok else None
    exact = run(integer=True)
    status = exact.modelStatusToString(exact.getModelStatus())
    info = exact.getInfo()
    has_solution = info.primal_solution_status == highspy.kSolutionStatusFeasible
    selected = None
    value = None
    if has_solution:
        x = np.asarray(exact.getSolution().col_value)
        selected_sorted = x > 0.5
        selected = selected_sorted
        value = float(objective[selected].sum())
    return ExactSolution(
        status=status,
        objective=value,
        mip_bound=float(info.mip_dual_bound) if has_solution else None,
        lp_bound=None if lp_bound is None else float(lp_bound),
        selected=selected,
        seconds=time.monotonic() - started,
    )
