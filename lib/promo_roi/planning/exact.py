"""Exact solution with HiGHS, for checking the planner's optimality gap on small instances.

``solve_exact`` states the same problem as a MILP (binary x per pair) with
every constraint, minimum budgets as hard constraints, and solves it and its
LP relaxation. The method is described in this package's README.md.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from promo_roi.planning.problem import _Problem, _resolve_problem, _validate_pairs_frame
from promo_roi.planning.plan_types import BudgetConstraints, ExactSolution, PlanningMode

if TYPE_CHECKING:
    import highspy
    from scipy import sparse


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

    started = time.monotonic()
    objective, matrix, row_lower, row_upper = _stated(pairs, constraints, mode, target_roi, highspy.kHighsInf)
    options = {"time_limit": float(time_limit), "mip_rel_gap": float(mip_rel_gap)}
    if threads is not None:
        options["threads"] = int(threads)

    relaxed = _run_highs(objective, matrix, row_lower, row_upper, integer=False, options=options)
    lp_ok = relaxed.getModelStatus() == highspy.HighsModelStatus.kOptimal
    lp_bound = relaxed.getInfo().objective_function_value if lp_ok else None
    exact = _run_highs(objective, matrix, row_lower, row_upper, integer=True, options=options)
    status = exact.modelStatusToString(exact.getModelStatus())
    info = exact.getInfo()
    has_solution = info.primal_solution_status == highspy.kSolutionStatusFeasible
    selected = None
    value = None
    if has_solution:
        selected = np.asarray(exact.getSolution().col_value) > 0.5
        value = float(objective[selected].sum())
    return ExactSolution(
        status=status,
        objective=value,
        mip_bound=float(info.mip_dual_bound) if has_solution else None,
        lp_bound=None if lp_bound is None else float(lp_bound),
        selected=selected,
        seconds=time.monotonic() - started,
    )


def relaxation_bound(
    pairs: pd.DataFrame,
    constraints: BudgetConstraints,
    mode: PlanningMode = "fixed_budget",
    target_roi: float | None = None,
) -> float:
    """The LP relaxation optimum of the problem ``solve_exact`` states (0 <= x <= 1 instead of binary).

    An upper bound on every plan's objective, found in well under a second where
    the MILP can take minutes to prove its last digits. With one budget and a
    household cap the relaxation splits at most one household, so a plan that
    stops at the first household that does not fit is within one household's
    best pairs of it.
    """
    import highspy

    objective, matrix, row_lower, row_upper = _stated(pairs, constraints, mode, target_roi, highspy.kHighsInf)
    relaxed = _run_highs(objective, matrix, row_lower, row_upper, integer=False, options={})
    status = relaxed.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"the LP relaxation was not solved to optimality: {relaxed.modelStatusToString(status)}")
    return float(relaxed.getInfo().objective_function_value)


def _stated(
    pairs: pd.DataFrame, constraints: BudgetConstraints, mode: PlanningMode, target_roi: float | None, inf: float
) -> tuple[np.ndarray, sparse.csc_matrix, np.ndarray, np.ndarray]:
    """The problem as HiGHS takes it: objective per pair (``value - cost - target_roi * cost``), constraint
    matrix and row bounds."""
    frame = _validate_pairs_frame(pairs)
    problem = _resolve_problem(constraints, mode, target_roi, np.unique(frame["campaign_id"].to_numpy()))
    cost = frame["cost"].to_numpy()
    objective = frame["value"].to_numpy() - cost - problem.floor * cost
    return (objective, *_constraints(problem, frame, inf))


def _constraints(
    problem: _Problem, frame: pd.DataFrame, inf: float
) -> tuple[sparse.csc_matrix, np.ndarray, np.ndarray]:
    """The constraint matrix (one column per pair) and its row bounds.

    Rows: one household cap per household, the total budget, each campaign's
    budget range and inventory.
    """
    from scipy import sparse

    n = len(frame)
    cost = frame["cost"].to_numpy()
    red = frame["redemptions"].to_numpy()
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
    return matrix, np.concatenate(lower), np.concatenate(upper)


def _run_highs(
    objective: np.ndarray,
    matrix: sparse.csc_matrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    *,
    integer: bool,
    options: dict[str, Any],
) -> highspy.Highs:
    """Maximises ``objective`` over 0 <= x <= 1 (x binary when ``integer``) within the row bounds."""
    import highspy

    n = len(objective)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for name, value in options.items():
        h.setOptionValue(name, value)
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = matrix.shape[0]
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = objective
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h.passModel(lp)
    h.run()
    return h
