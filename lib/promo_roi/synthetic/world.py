"""What the generator keeps from the real data: households, prices, calendar, covariates.

Everything here is computed from the REAL input tables only, so it does not
depend on what the generator injects, and it is the same for every scenario
(apart from the pre-period length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from promo_roi.config import SourceConfig

COVARIATES: tuple[str, ...] = ("affinity", "coupon_history", "price_sensitivity", "visit_frequency", "log_spend")
# Weeks start on Monday ~05:00 (source.week_one_end); injected lines are
# stamped between these hours so that a date has exactly one week.
WEEK_BOUNDARY_HOUR = 5
INJECT_FIRST_HOUR = 10
INJECT_LAST_HOUR = 23  # exclusive
Z_CLIP = 3.0


@dataclass(frozen=True)
class World:
    """Campaign-independent facts of the real data."""

    lines: pd.DataFrame          # ingest-valid real lines, sorted by day; "row" = position in the input table
    households: np.ndarray       # sorted ids of households with an ingest-valid line
    prices: pd.Series            # product_id -> median real unit price, rounded to cents, > 0
    day_week: pd.Series          # injectable day (datetime64 midnight) -> week of that day after 05:00
    home_store: pd.Series        # household_id -> its most used store
    product_category: pd.Series  # product_id -> product_category
    campaigns: pd.DataFrame      # campaign_id, start_date, end_date, window_start, window_end, real_audience
    coupon_products: Mapping[int, np.ndarray]   # campaign -> sorted known coupon products
    coupon_upc: pd.Series        # (campaign_id, product_id) -> the smallest coupon_upc of the campaign covering it
    next_basket_id: int          # first basket id above every real one


@dataclass(frozen=True)
class CampaignFacts:
    """One campaign as the generator sees it (real data only)."""

    campaign_id: int
    window: pd.DatetimeIndex     # injectable days of the campaign window
    z: pd.DataFrame              # households x COVARIATES, standardised within the campaign
    pre: pd.DataFrame            # real lines of the pre-period
    in_window: pd.DataFrame      # real lines of the campaign's coupon products inside its window
    products: np.ndarray         # known coupon products
    prices: pd.Series            # drawable coupon products (those with a real price) -> price


def valid_line_mask(tx: pd.DataFrame, known_products: np.ndarray, calendar: SourceConfig) -> np.ndarray:
    """The transaction lines ingest keeps (quality.source_rules for transactions, duplicates aside)."""
    keys = ["household_id", "basket_id", "product_id", "transaction_timestamp", "quantity", "sales_value"]
    day = tx["transaction_timestamp"].dt.normalize()
    ok = tx[keys].notna().all(axis=1)
    ok &= ~((tx["quantity"] <= 0) & (tx["sales_value"] > 0)) & (tx["sales_value"] >= 0)
    ok &= (day >= pd.Timestamp(calendar.data_start)) & (day <= pd.Timestamp(calendar.data_end))
    ok &= tx["week"].between(calendar.first_week, calendar.last_week)
    ok &= tx["product_id"].isin(known_products)
    return ok.to_numpy()


def unit_prices(lines: pd.DataFrame) -> pd.Series:
    """Median real unit price (sales_value / quantity) per product, in cents; only prices > 0."""
    sold = lines[(lines["quantity"] > 0) & (lines["sales_value"] > 0)]
    median = (sold["sales_value"] / sold["quantity"]).groupby(sold["product_id"]).median()
    price = median.round(2)
    return price[price > 0].sort_index().rename("price")


def week_of_day(day: pd.Timestamp, calendar: SourceConfig) -> int:
    """The calendar's week of a day after 05:00, for days the real data does not cover."""
    one_end = pd.Timestamp(calendar.week_one_end)
    return 1 if day < one_end else 2 + (day - one_end).days // 7


def day_week_map(tx: pd.DataFrame, calendar: SourceConfig) -> pd.Series:
    """Injectable day -> the week the real data gives that day after the Monday boundary.

    Days outside the calendar, or whose week would fall outside
    [first_week, last_week] (2018-01-01 after 05:00 is week 54), are left out.
    """
    late = tx[tx["transaction_timestamp"].dt.hour >= WEEK_BOUNDARY_HOUR]
    counts = late.groupby([late["transaction_timestamp"].dt.normalize().rename("day"), late["week"]]).size()
    counts = counts.rename("n").reset_index().sort_values(["day", "n", "week"], ascending=[True, False, True])
    real = counts.drop_duplicates("day").set_index("day")["week"]
    days = pd.date_range(pd.Timestamp(calendar.data_start), pd.Timestamp(calendar.data_end), freq="D")
    weeks = pd.Series([int(real[d]) if d in real.index else week_of_day(d, calendar) for d in days],
                      index=days, dtype="int64")
    return weeks[weeks.between(calendar.first_week, calendar.last_week)].rename("week")


def _home_store(lines: pd.DataFrame) -> pd.Series:
    n = lines.groupby(["household_id", "store_id"]).size().rename("n").reset_index()
    n = n.sort_values(["household_id", "n", "store_id"], ascending=[True, False, True])
    return n.drop_duplicates("household_id").set_index("household_id")["store_id"]


def _campaign_windows(descriptions: pd.DataFrame, campaigns: pd.DataFrame, households: np.ndarray,
                      calendar: SourceConfig) -> pd.DataFrame:
    out = descriptions[["campaign_id", "start_date", "end_date"]].dropna().copy()
    out = out.drop_duplicates("campaign_id").sort_values("campaign_id").reset_index(drop=True)
    out["window_start"] = out["start_date"].dt.normalize().clip(lower=pd.Timestamp(calendar.data_start))
    out["window_end"] = out["end_date"].dt.normalize().clip(upper=pd.Timestamp(calendar.data_end))
    real = campaigns[campaigns["household_id"].isin(households)].drop_duplicates()
    sizes = real.groupby("campaign_id").size()
    out["real_audience"] = out["campaign_id"].map(sizes).fillna(0).astype("int64")
    return out


def prepare_world(tables: Mapping[str, pd.DataFrame], calendar: SourceConfig) -> World:
    """Campaign-independent facts from the real tables (transactions, products, campaigns, coupons, ...)."""
    tx = tables["transactions"]
    known = np.sort(tables["products"]["product_id"].dropna().unique())
    valid = valid_line_mask(tx, known, calendar)
    lines = tx.loc[valid, ["household_id", "store_id", "basket_id", "product_id", "quantity", "sales_value",
                           "retail_disc", "coupon_disc"]].copy()
    lines.insert(0, "row", np.flatnonzero(valid))
    lines["day"] = tx.loc[valid, "transaction_timestamp"].dt.normalize()
    category = tables["products"].drop_duplicates("product_id").set_index("product_id")["product_category"]
    lines["category"] = lines["product_id"].map(category)
    lines = lines.sort_values(["day", "row"], kind="mergesort").reset_index(drop=True)
    households = np.sort(lines["household_id"].unique()).astype("int64")
    coupons = tables["coupons"]
    coupons = coupons[coupons["product_id"].isin(known)].dropna()
    smallest = coupons.groupby(["campaign_id", "product_id"])["coupon_upc"].min()
    return World(
        lines=lines,
        households=households,
        prices=unit_prices(lines),
        day_week=day_week_map(tx[valid], calendar),
        home_store=_home_store(lines),
        product_category=category,
        campaigns=_campaign_windows(tables["campaign_descriptions"], tables["campaigns"], households, calendar),
        coupon_products={int(c): np.sort(s.index.get_level_values("product_id").to_numpy())
                         for c, s in smallest.groupby(level="campaign_id")},
        coupon_upc=smallest.astype("int64"),
        next_basket_id=int(tx["basket_id"].max()) + 1 if len(tx) else 1,
    )


def _slice_days(lines: pd.DataFrame, first: pd.Timestamp, last_exclusive: pd.Timestamp) -> pd.DataFrame:
    """Lines (sorted by day) of the days in [first, last_exclusive)."""
    days = lines["day"].to_numpy()
    lo = np.searchsorted(days, first.to_datetime64(), "left")
    hi = np.searchsorted(days, last_exclusive.to_datetime64(), "left")
    return lines.iloc[lo:hi]


def standardise(frame: pd.DataFrame) -> pd.DataFrame:
    """(x - mean) / sd per column over all households, clipped to +-Z_CLIP; a constant column becomes 0.

    Clipped because shares over few products are heavy-tailed (most households
    0, a handful near 1): unclipped, one household's z of 15 would make its
    effect rate exp(heterogeneity x 15) times the average.
    """
    sd = frame.std(ddof=0).replace(0.0, np.nan)
    return ((frame - frame.mean()) / sd).fillna(0.0).clip(-Z_CLIP, Z_CLIP)


def pre_period_covariates(pre: pd.DataFrame, households: np.ndarray, categories: set, weeks: float) -> pd.DataFrame:
    """Raw covariates of every household from its real pre-period lines (0 where it bought nothing)."""
    by = pre.groupby("household_id")
    spend = by["sales_value"].sum()
    in_category = pre["category"].isin(categories)
    category_spend = pre["sales_value"].where(in_category, 0.0).groupby(pre["household_id"]).sum()
    discounted = pre["sales_value"].where(pre["retail_disc"] > 0, 0.0).groupby(pre["household_id"]).sum()
    coupon_lines = (pre["coupon_disc"] > 0).groupby(pre["household_id"]).sum()
    baskets = by["basket_id"].nunique()
    raw = pd.DataFrame({
        "affinity": category_spend / spend.where(spend > 0),
        "coupon_history": np.log1p(coupon_lines.astype("float64")),
        "price_sensitivity": discounted / spend.where(spend > 0),
        "visit_frequency": baskets / max(weeks, 1.0 / 7.0),
        "log_spend": np.log1p(spend.clip(lower=0.0)),
    })
    return raw.reindex(households).fillna(0.0)[list(COVARIATES)]


def campaign_facts(world: World, campaign: pd.Series, pre_period_weeks: int) -> CampaignFacts:
    """The real data one campaign's draws and truth rest on."""
    cid = int(campaign["campaign_id"])
    products = world.coupon_products.get(cid, np.array([], dtype="int64"))
    start = pd.Timestamp(campaign["start_date"]).normalize()
    pre_first = start - pd.Timedelta(weeks=pre_period_weeks)
    pre = _slice_days(world.lines, pre_first, start)
    observed_days = len(world.day_week.index[(world.day_week.index >= pre_first) & (world.day_week.index < start)])
    categories = set(world.product_category.reindex(products).dropna())
    raw = pre_period_covariates(pre, world.households, categories, observed_days / 7.0)
    w_first, w_last = pd.Timestamp(campaign["window_start"]), pd.Timestamp(campaign["window_end"])
    window = world.day_week.index[(world.day_week.index >= w_first) & (world.day_week.index <= w_last)]
    in_window = _slice_days(world.lines, w_first, w_last + pd.Timedelta(days=1))
    in_window = in_window[in_window["product_id"].isin(products)]
    return CampaignFacts(
        campaign_id=cid, window=pd.DatetimeIndex(window), z=standardise(raw), pre=pre,
        in_window=in_window, products=products, prices=world.prices.reindex(products).dropna(),
    )
