"""Budget planning: which households each campaign should target, under budgets and caps.

``promo_roi.planning.solver`` turns scored (household, campaign) pairs (expected
incremental value, expected cost, expected redemptions) into a targeting plan
that maximises incremental profit under a total budget, per-campaign budgets
and coupon inventories, and a per-household cap on overlapping campaigns. It
runs in numpy (``plan_budget``) or on Spark (``plan_budget_spark``) with one
implementation of the per-household choice, and checks small instances exactly
with HiGHS (``solve_exact``).
"""
