"""Ranking by pre-period spend: the heuristic every model is judged against.

A household's spend on a campaign's coupon products before the campaign is
what targeting by past spend ranks by, and on this data it is a strong
ranking of who responds. Training compares the network's uplift with it on
the validation campaigns; where the network does not beat it, households are
valued and ranked by this score (calibrated like the network's uplift,
:mod:`promo_roi.causal.calibration`), so scoring computes it too. One
definition for both sides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRE_PERIOD_COLUMN = "pre_coupon_product_spend"


def pre_spend_score(frame: pd.DataFrame) -> np.ndarray:
    """The heuristic's uplift score of every row: its pre-period coupon-product spend."""
    return frame[PRE_PERIOD_COLUMN].astype(float).to_numpy()
