"""The true effect of each campaign on each household, in expectation.

Everything here is exact (computed from rates and prices, never from draws):
the truth tables are made of these numbers, and the draws in ``draws.py``
realise them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from promo_roi.synthetic.assignment import weighted_score
from promo_roi.synthetic.scenarios import Scenario
from promo_roi.synthetic.world import Z_CLIP

# Households that already buy in the coupon's categories, use coupons and
# chase discounts respond more; heavy spenders somewhat less (they would have
# bought anyway). Together with TARGET_WEIGHTS this makes ATT differ from ATE.
EFFECT_WEIGHTS: Mapping[str, float] = {
    "affinity": 0.5, "coupon_history": 0.3, "price_sensitivity": 0.3, "log_spend": -0.2, "visit_frequency": 0.0,
}
# Weight of the product popularity distribution against a household's own
# pre-period purchases of the coupon products (a pseudo-count of lines).
POPULARITY_PSEUDOCOUNT = 1.0
# Lines added to every drawable product's popularity count, so that coupon
# products nobody bought in the pre-period can still be drawn.
POPULARITY_SMOOTHING = 0.1
MAX_REMOVAL_PROBABILITY = 0.9

STREAM_MULTIPLIERS = 1
STREAM_HOUSEHOLDS = 2
STREAM_CAMPAIGN = 3


def campaign_multipliers(campaign_ids: Sequence[int], scenario: Scenario) -> pd.DataFrame:
    """m_c and its kind per campaign: a random share null, a share negative, the rest positive.

    |m_c| is lognormal with mean 1 (sigma = effect_spread); the kinds are dealt
    to a random permutation of the campaigns so that counts are exact
    (round half up of share x campaigns).
    """
    ids = np.sort(np.asarray(campaign_ids, dtype="int64"))
    n = len(ids)
    rng = np.random.default_rng([scenario.seed, STREAM_MULTIPLIERS])
    order = rng.permutation(n)
    sigma = scenario.effect_spread
    magnitude = rng.lognormal(-sigma * sigma / 2.0, sigma, n)
    n_null = int(np.floor(scenario.share_null_campaigns * n + 0.5))
    n_negative = min(int(np.floor(scenario.share_negative_campaigns * n + 0.5)), n - n_null)
    kind = np.full(n, "positive", dtype=object)
    kind[order[:n_null]] = "null"
    kind[order[n_null:n_null + n_negative]] = "negative"
    multiplier = np.where(kind == "null", 0.0, np.where(kind == "negative", -magnitude, magnitude))
    return pd.DataFrame({"campaign_id": ids, "campaign_multiplier": multiplier, "effect_kind": kind.astype(str)})


def household_noise(households: np.ndarray, scenario: Scenario) -> np.ndarray:
    """u_h ~ N(0, noise_sd): unobserved, fixed per household across campaigns."""
    rng = np.random.default_rng([scenario.seed, STREAM_HOUSEHOLDS])
    return rng.normal(0.0, scenario.noise_sd, len(households)) if scenario.noise_sd > 0 else np.zeros(len(households))


def effect_rates(z: pd.DataFrame, noise: np.ndarray, scenario: Scenario, multiplier: float) -> np.ndarray:
    """rate(h, c) = effect_scale |m_c| exp(heterogeneity g + u_h), normalised to mean effect_scale |m_c|."""
    # The score is clipped like z, for the same reason (a few extreme households).
    score = np.clip(weighted_score(z, EFFECT_WEIGHTS), -Z_CLIP, Z_CLIP)
    log_rate = scenario.heterogeneity * score + noise
    relative = np.exp(log_rate - log_rate.max()) if len(log_rate) else log_rate
    relative = relative / relative.mean() if len(relative) else relative
    return scenario.effect_scale * abs(multiplier) * relative


def removal_probability(rate: np.ndarray) -> np.ndarray:
    """p(h, c) for a negative campaign: 1 - exp(-rate), capped at MAX_REMOVAL_PROBABILITY."""
    return np.minimum(MAX_REMOVAL_PROBABILITY, -np.expm1(-rate))


def baseline_redemption_probability(z: pd.DataFrame, scenario: Scenario) -> np.ndarray:
    """q(h, c) = baseline_redemption_rate x coupon proneness, in [0, 1].

    Proneness = 2 expit(z_coupon_history): 1 for the average household,
    between 0 and 2 otherwise.
    """
    proneness = 2.0 * expit(z["coupon_history"].to_numpy(dtype="float64"))
    return np.clip(scenario.baseline_redemption_rate * proneness, 0.0, 1.0)


@dataclass(frozen=True)
class ProductMix:
    """Which coupon product an incremental line of household h is.

    pi(h, j) = (own(h, j) + K pop(j)) / (own(h) + K): h's own pre-period lines
    of the drawable coupon products plus K = POPULARITY_PSEUDOCOUNT lines drawn
    from the products' popularity.
    """

    products: np.ndarray        # drawable coupon products (with a real price), sorted
    prices: np.ndarray          # their prices
    popularity: np.ndarray      # pop(j), sums to 1
    own: pd.DataFrame           # h's pre-period lines of drawable products: household_id, product_id (sorted)
    own_count: np.ndarray       # per household (in household order)
    expected_value: np.ndarray  # E[price of one incremental line] per household

    @property
    def drawable(self) -> bool:
        return len(self.products) > 0


def product_mix(pre: pd.DataFrame, households: np.ndarray, prices: pd.Series) -> ProductMix:
    """The product distribution of incremental lines and its exact expected line value per household."""
    products = prices.index.to_numpy(dtype="int64")
    price = prices.to_numpy(dtype="float64")
    own = pre.loc[pre["product_id"].isin(products), ["household_id", "product_id"]]
    own = own.sort_values(["household_id", "product_id"], kind="mergesort").reset_index(drop=True)
    counts = own.groupby("product_id").size().reindex(products, fill_value=0).to_numpy(dtype="float64")
    weights = counts + POPULARITY_SMOOTHING
    popularity = weights / weights.sum() if len(weights) else weights
    own_price = own["product_id"].map(prices).to_numpy(dtype="float64")
    own_count = own.groupby("household_id").size().reindex(households, fill_value=0).to_numpy(dtype="float64")
    own_value = pd.Series(own_price).groupby(own["household_id"].to_numpy()).sum()
    own_value = own_value.reindex(households, fill_value=0.0).to_numpy(dtype="float64")
    pop_value = float(popularity @ price) if len(price) else 0.0
    expected = (own_value + POPULARITY_PSEUDOCOUNT * pop_value) / (own_count + POPULARITY_PSEUDOCOUNT)
    return ProductMix(products, price, popularity, own, own_count, expected if len(products) else expected * 0.0)


def baseline_in_window(in_window: pd.DataFrame, households: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(spend, lines) of every household on the campaign's coupon products inside its window (real)."""
    by = in_window.groupby("household_id")
    spend = by["sales_value"].sum().reindex(households, fill_value=0.0).to_numpy(dtype="float64")
    lines = by.size().reindex(households, fill_value=0).to_numpy(dtype="float64")
    return spend, lines


@dataclass(frozen=True)
class Effect:
    """Per household (household order): what targeting by the campaign would do, in expectation."""

    incremental_lines: np.ndarray   # E[N] (positive campaigns)
    removal: np.ndarray             # p (negative campaigns)
    redemption: np.ndarray          # q (lines bought anyway, redeemed)
    revenue: np.ndarray             # true expected incremental revenue
    redemptions: np.ndarray         # expected redeemed lines
    baseline_spend: np.ndarray
    baseline_lines: np.ndarray


def expected_effect(kind: str, rate: np.ndarray, mix: ProductMix, window_days: int,
                    baseline: tuple[np.ndarray, np.ndarray], q: np.ndarray, scenario: Scenario) -> Effect:
    """The exact expected effects of one campaign on every household, had it been targeted.

    A positive campaign that has no drawable product or no injectable day in
    its window cannot add lines: its expected incremental lines are 0.
    """
    spend, lines = baseline
    zero = np.zeros(len(rate))
    can_add = kind == "positive" and mix.drawable and window_days > 0
    n_lines = rate if can_add else zero
    removal = removal_probability(rate) if kind == "negative" else zero
    revenue = n_lines * mix.expected_value - removal * spend
    redemptions = scenario.incremental_redemption_rate * n_lines + q * (1.0 - removal) * lines
    return Effect(n_lines, removal, q, revenue, redemptions, spend, lines)
