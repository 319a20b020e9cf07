"""The names the models go by, spelled once.

They are data: gold.model_evaluation, gold.uplift_curves, gold.refutation_checks and
gold.rolling_origin_evaluation store them in ``model_name``, the decision benchmark
in ``model``, the reports' legends and the analysts' queries match on them, and
``evaluation.ranking`` in conf/ names two of them. Nothing here imports anything:
every layer can use them.
"""

from __future__ import annotations

TRANSFORMER = "transformer"  # the fine-tuned network, the model that becomes champion
HEURISTIC = "heuristic_pre_spend"  # households ranked by their pre-period coupon-product spend
T_LEARNER = "lgbm_t_learner"  # LightGBM, one model per arm: the strong baseline
DR_LEARNER = "lgbm_dr_learner"  # LightGBM on doubly robust pseudo-outcomes: the effect learned directly
RANDOM = "random"  # the decision benchmark's random targeting
NETWORK_UPLIFT = "transformer_uplift"  # the decision benchmark: the network's own uplift, priced as the champion's
