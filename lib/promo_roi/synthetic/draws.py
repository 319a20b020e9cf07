"""The random realisation of one campaign: incremental lines, removed lines, redemptions.

Each function takes its own numpy Generator (one child stream per purpose and
campaign) and draws a fixed number of variates in a fixed, sorted order, so
that the output depends only on the seed and the real data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from promo_roi.synthetic.effects import POPULARITY_PSEUDOCOUNT, ProductMix
from promo_roi.synthetic.world import INJECT_FIRST_HOUR, INJECT_LAST_HOUR

INCREMENTAL_COLUMNS = ["household_id", "campaign_id", "product_id", "store_id", "sales_value",
                       "week", "transaction_timestamp", "redeemed"]


def _pick_own(mix: ProductMix, line_household: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A product drawn uniformly from each line's household's own pre-period lines (-1 if none)."""
    own_h = mix.own["household_id"].to_numpy()
    own_products = mix.own["product_id"].to_numpy()
    first = np.searchsorted(own_h, line_household, "left")
    count = np.searchsorted(own_h, line_household, "right") - first
    has = count > 0
    product = np.full(len(line_household), -1, dtype="int64")
    # u < 1, so floor(u * count) <= count - 1: inside the household's own lines.
    product[has] = own_products[first[has] + np.floor(u[has] * count[has]).astype("int64")]
    return product


def draw_incremental_lines(campaign_id: int, households: np.ndarray, targeted: np.ndarray,
                           n_lines: np.ndarray, mix: ProductMix, window: pd.DatetimeIndex,
                           day_week: pd.Series, home_store: pd.Series, redemption_rate: float,
                           rng: np.random.Generator) -> pd.DataFrame:
    """N ~ Poisson(E[N]) new lines per targeted household, quantity 1, inside the window.

    Product: with probability own/(own + K) one of the household's own
    pre-period lines of the coupon products (uniformly), else a product drawn
    by popularity; price: the product's median real unit price; day: uniform
    over the window's injectable days; time: uniform in [10:00, 23:00).
    """
    idx = np.flatnonzero(targeted & (n_lines > 0))
    counts = rng.poisson(n_lines[idx]) if len(idx) else np.zeros(0, dtype="int64")
    total = int(counts.sum())
    if total == 0 or not mix.drawable or len(window) == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            INCREMENTAL_COLUMNS, ["int64", "int64", "int64", "int64", "float64", "int64", "datetime64[ns]", "bool"])})
    position = np.repeat(idx, counts)
    line_household = households[position]
    u_source, u_own = rng.random(total), rng.random(total)
    by_popularity = rng.choice(len(mix.products), size=total, p=mix.popularity)
    day_pick = rng.integers(0, len(window), total)
    seconds = rng.integers(INJECT_FIRST_HOUR * 3600, INJECT_LAST_HOUR * 3600, total)
    redeemed = rng.random(total) < redemption_rate
    own_share = mix.own_count[position] / (mix.own_count[position] + POPULARITY_PSEUDOCOUNT)
    own_pick = _pick_own(mix, line_household, u_own)
    product = np.where((u_source < own_share) & (own_pick >= 0), own_pick, mix.products[by_popularity])
    day = window[day_pick]
    prices = pd.Series(mix.prices, index=mix.products)
    return pd.DataFrame({
        "household_id": line_household.astype("int64"),
        "campaign_id": np.full(total, campaign_id, dtype="int64"),
        "product_id": product.astype("int64"),
        "store_id": home_store.reindex(line_household).to_numpy(dtype="int64"),
        "sales_value": prices.reindex(product).to_numpy(dtype="float64"),
        "week": day_week.reindex(day).to_numpy(dtype="int64"),
        "transaction_timestamp": day + pd.to_timedelta(seconds, unit="s"),
        "redeemed": redeemed,
    })


def draw_removals(in_window: pd.DataFrame, households: np.ndarray, targeted: np.ndarray,
                  removal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Real coupon-product lines of targeted households in the window, each removed with p(h, c).

    Returns the removed lines' positions in the input transactions ("row").
    """
    p = pd.Series(np.where(targeted, removal, 0.0), index=households)
    line_p = p.reindex(in_window["household_id"].to_numpy()).to_numpy(dtype="float64")
    u = rng.random(len(in_window))
    return np.sort(in_window["row"].to_numpy()[u < line_p])


def draw_baseline_redemptions(in_window: pd.DataFrame, households: np.ndarray, targeted: np.ndarray,
                              q: np.ndarray, removed: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Lines the targeted household bought anyway (and kept), redeemed with probability q(h, c)."""
    p = pd.Series(np.where(targeted, q, 0.0), index=households)
    line_q = p.reindex(in_window["household_id"].to_numpy()).to_numpy(dtype="float64")
    u = rng.random(len(in_window))
    kept = ~np.isin(in_window["row"].to_numpy(), removed)
    chosen = in_window[(u < line_q) & kept]
    return chosen[["row", "household_id", "product_id", "day"]].reset_index(drop=True)
