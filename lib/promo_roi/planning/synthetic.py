"""Synthetic (household, campaign) pairs for the solver's benchmark and its tests.

Generated households are what the issue allows for the 10^4-10^6 household
benchmark; the tests draw small instances from the same generator so that
the gap they check against HiGHS is the gap of the benchmark's kind of data.

* campaign c: contact cost ~ U(0.3, 1.5), coupon face value ~ U(1, 5), base
  redemption rate ~ U(0.05, 0.30), uplift ~ U(1, 4) (fixed seed, the same at
  every size);
* household h: responsiveness r_h ~ lognormal(0, 0.5), shared by its pairs;
* pair (h, c): redemptions = min(0.95, base_c * r_h * lognormal(0, 0.3));
  cost = contact_c + face_c * redemptions (contact plus expected coupon cost);
  value = 0.9 * uplift_c * r_h * lognormal(-0.3, 0.8) * cost (incremental
  gross profit, heavy-tailed: about 77% of pairs are profitable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def generate_pairs(n_households: int, n_campaigns: int = 10, seed: int = 0) -> pd.DataFrame:
    """Every household paired with every campaign; columns as :func:`plan_budget` expects."""
    rng = np.random.default_rng(seed)
    campaign_rng = np.random.default_rng(12345)
    contact = campaign_rng.uniform(0.3, 1.5, n_campaigns)
    face = campaign_rng.uniform(1.0, 5.0, n_campaigns)
    base_rate = campaign_rng.uniform(0.05, 0.30, n_campaigns)
    uplift = campaign_rng.uniform(1.0, 4.0, n_campaigns)
    n = n_households * n_campaigns
    household = np.repeat(np.arange(n_households, dtype=np.int64), n_campaigns)
    c = np.tile(np.arange(n_campaigns), n_households)
    responsiveness = rng.lognormal(0.0, 0.5, n_households)[household]
    redemptions = np.clip(base_rate[c] * responsiveness * rng.lognormal(0.0, 0.3, n), 0.0, 0.95)
    cost = contact[c] + face[c] * redemptions
    value = 0.9 * uplift[c] * responsiveness * rng.lognormal(-0.3, 0.8, n) * cost
    return pd.DataFrame(
        {
            "household_id": household,
            "campaign_id": (c + 1).astype(np.int64),
            "value": value,
            "cost": cost,
            "redemptions": redemptions,
        }
    )
