"""promo_roi.synthetic: the semi-synthetic benchmark generator (pure pandas, no Spark).

Expected values come from the documented model (lib/promo_roi/synthetic/__init__.py),
the source contract and the calendar in conf/base.yaml, computed here by hand,
never from the generator's own helpers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from scipy.stats import mannwhitneyu

from promo_roi.config import SourceConfig
from promo_roi.synthetic import (
    Scenario,
    ScenarioError,
    generate_benchmark,
    load_scenarios,
    select_scenario,
    simulate,
)
from promo_roi.validation import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = REPO_ROOT / "tests" / "fixtures" / "completejourney_small"
SCENARIOS = REPO_ROOT / "conf" / "scenarios.yaml"
SOURCE_NAMES = ("products", "campaign_descriptions", "transactions", "demographics", "campaigns", "coupons",
                "coupon_redemptions", "promotions")
UNTOUCHED = ("products", "demographics", "campaign_descriptions", "coupons", "promotions")
TX_KEYS = ["household_id", "basket_id", "product_id", "transaction_timestamp"]
REDEMPTION_KEYS = ["household_id", "coupon_upc", "campaign_id", "redemption_date"]

_SOURCE = yaml.safe_load((REPO_ROOT / "conf" / "base.yaml").read_text())["source"]
CALENDAR = SourceConfig(
    path=None, data_start=dt.date.fromisoformat(_SOURCE["data_start"]),
    data_end=dt.date.fromisoformat(_SOURCE["data_end"]), first_week=int(_SOURCE["first_week"]),
    last_week=int(_SOURCE["last_week"]), week_one_end=dt.date.fromisoformat(_SOURCE["week_one_end"]),
)


def calendar_week(ts: pd.Series) -> pd.Series:
    """The week of a timestamp: week 1 ends on week_one_end at ~05:00, weeks run Monday to Monday."""
    boundary = pd.Timestamp(CALENDAR.week_one_end) + pd.Timedelta(hours=5)
    return np.where(ts < boundary, 1, 2 + ((ts - boundary) // pd.Timedelta(days=7)).astype("int64"))


def auc(score, label) -> float:
    label = np.asarray(label, dtype=bool)
    score = np.asarray(score, dtype=float)
    u = mannwhitneyu(score[label], score[~label]).statistic
    return float(u / (label.sum() * (~label).sum()))


def scenario(**changes) -> Scenario:
    base = dict(name="inline", description="test", seed=3, selectivity=0.0, effect_scale=2.0, effect_spread=0.0,
                heterogeneity=0.0, noise_sd=0.0, share_null_campaigns=0.0, share_negative_campaigns=0.0,
                incremental_redemption_rate=0.5, baseline_redemption_rate=0.2, face_value=1.0,
                pre_period_weeks=13, min_audience=1)
    base.update(changes)
    return Scenario(**base)


# --- the fixture run ----------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tiny = select_scenario(load_scenarios(SCENARIOS), "tiny")
    root = tmp_path_factory.mktemp("synthetic")
    out = {}
    for label, sc in (("a", tiny), ("b", tiny), ("other_seed", dataclasses.replace(tiny, seed=tiny.seed + 1))):
        out[label] = root / label
        generate_benchmark(FIXTURE_DIR, out[label], sc, CALENDAR)
    return out


def read(directory: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(directory / f"{table}.parquet")


def test_same_seed_same_bytes_other_seed_differs(runs):
    names = sorted(p.name for p in runs["a"].iterdir())
    assert names == sorted([f"{t}.parquet" for t in SOURCE_NAMES]
                           + ["truth_household_campaign.parquet", "truth_campaign.parquet", "scenario.json"])
    for name in names:
        assert (runs["a"] / name).read_bytes() == (runs["b"] / name).read_bytes(), name
    for name in ("transactions.parquet", "campaigns.parquet", "truth_household_campaign.parquet"):
        assert (runs["a"] / name).read_bytes() != (runs["other_seed"] / name).read_bytes(), name


def test_tables_keep_the_source_schema_and_untouched_tables_are_identical(runs):
    for table in SOURCE_NAMES:
        source = pq.read_schema(FIXTURE_DIR / f"{table}.parquet")
        written = pq.read_schema(runs["a"] / f"{table}.parquet")
        assert [(f.name, f.type) for f in written] == [(f.name, f.type) for f in source], table
    for table in UNTOUCHED:
        assert (runs["a"] / f"{table}.parquet").read_bytes() == (FIXTURE_DIR / f"{table}.parquet").read_bytes()


def good_lines(tx: pd.DataFrame, products: pd.DataFrame) -> pd.Series:
    """quality.source_rules for transactions (exact duplicates aside), restated here."""
    day = tx["transaction_timestamp"].dt.normalize()
    return (tx[TX_KEYS + ["quantity", "sales_value"]].notna().all(axis=1)
            & ~((tx["quantity"] <= 0) & (tx["sales_value"] > 0)) & (tx["sales_value"] >= 0)
            & day.between(pd.Timestamp(CALENDAR.data_start), pd.Timestamp(CALENDAR.data_end))
            & tx["week"].between(CALENDAR.first_week, CALENDAR.last_week)
            & tx["product_id"].isin(products["product_id"]))


def test_ingest_would_keep_every_row_the_generator_adds(runs):
    out = runs["a"]
    source_tx, tx = read(FIXTURE_DIR, "transactions"), read(out, "transactions")
    products, descriptions, coupons = read(out, "products"), read(out, "campaign_descriptions"), read(out, "coupons")
    assert not tx.duplicated(TX_KEYS).any()
    new = tx[tx["basket_id"] > source_tx["basket_id"].max()]
    assert len(new) > 0 and good_lines(new, products).all()
    assert (new["week"].to_numpy() == calendar_week(new["transaction_timestamp"])).all()
    assert (new["quantity"] == 1).all() and (new["retail_disc"] == 0).all()
    # only the real lines ingest already refused are refused
    assert (~good_lines(tx, products)).sum() <= (~good_lines(source_tx, products)).sum()
    households = set(tx.loc[good_lines(tx, products), "household_id"])
    campaigns = read(out, "campaigns")
    assert not campaigns.duplicated().any() and len(campaigns) > 0
    assert campaigns["campaign_id"].isin(descriptions["campaign_id"]).all()
    assert campaigns["household_id"].isin(households).all()
    assert read(out, "demographics")["household_id"].isin(households).all()
    red = read(out, "coupon_redemptions")
    assert len(red) > 0 and not red.duplicated(REDEMPTION_KEYS).any()
    assert red["household_id"].isin(households).all()
    assert red["redemption_date"].between(pd.Timestamp(CALENDAR.data_start), pd.Timestamp(CALENDAR.data_end)).all()
    known = coupons[coupons["product_id"].isin(products["product_id"])]
    assert red.merge(known, on=["coupon_upc", "campaign_id"]).drop_duplicates(REDEMPTION_KEYS).shape[0] == len(red)
    # every redemption row is a line of that household on that day of a product the coupon covers, with a discount
    lines = tx[tx["coupon_disc"] > 0].assign(redemption_date=lambda d: d["transaction_timestamp"].dt.normalize())
    backed = red.merge(known, on=["coupon_upc", "campaign_id"]).merge(
        lines[["household_id", "product_id", "redemption_date"]], on=["household_id", "product_id", "redemption_date"])
    assert backed.drop_duplicates(REDEMPTION_KEYS).shape[0] == len(red)
    # redemptions belong to the synthetic target lists only
    truth = read(out, "truth_household_campaign")
    targeted = truth.loc[truth["targeted"], ["household_id", "campaign_id"]]
    assert red.merge(targeted).shape[0] == len(red)


def test_truth_covers_every_household_and_campaign(runs):
    truth = read(runs["a"], "truth_household_campaign")
    tx = read(FIXTURE_DIR, "transactions")
    households = set(tx.loc[good_lines(tx, read(FIXTURE_DIR, "products")), "household_id"])
    assert set(truth["household_id"]) == households
    assert len(truth) == len(households) * 27 and not truth.duplicated(["household_id", "campaign_id"]).any()
    targets = read(runs["a"], "campaigns")
    assert truth.loc[truth["targeted"], ["campaign_id", "household_id"]].sort_values(
        ["campaign_id", "household_id"]).reset_index(drop=True).equals(
        targets.sort_values(["campaign_id", "household_id"]).reset_index(drop=True))
    per_campaign = read(runs["a"], "truth_campaign")
    assert set(per_campaign.columns) >= {"campaign_id", "start_date", "end_date", "campaign_multiplier", "effect_kind",
                                         "audience", "true_incremental_revenue", "true_expected_redemption_cost",
                                         "true_att", "true_ate", "propensity_auc"}
    att = truth[truth["targeted"]].groupby("campaign_id")["true_incremental_revenue"].mean()
    ate = truth.groupby("campaign_id")["true_incremental_revenue"].mean()
    indexed = per_campaign.set_index("campaign_id")
    assert np.allclose(indexed.loc[att.index, "true_att"], att)
    assert np.allclose(indexed["true_ate"], ate)
    assert set(indexed["effect_kind"]) <= {"positive", "null", "negative"}
    assert (indexed.loc[indexed["effect_kind"] == "null", "true_incremental_revenue"] == 0).all()


def test_target_list_sizes_follow_the_real_ones(runs):
    """Audience ~ Poisson-binomial with mean n_c and variance sum e(1-e): within 4 sd (+1 for rounding)."""
    tx, products = read(FIXTURE_DIR, "transactions"), read(FIXTURE_DIR, "products")
    households = set(tx.loc[good_lines(tx, products), "household_id"])
    real = read(FIXTURE_DIR, "campaigns").drop_duplicates()
    real = real[real["household_id"].isin(households)].groupby("campaign_id").size()
    truth = read(runs["a"], "truth_household_campaign")
    min_audience = select_scenario(load_scenarios(SCENARIOS), "tiny").min_audience
    for cid, group in truth.groupby("campaign_id"):
        expected = min(max(int(real.get(cid, 0)), min_audience), len(households) - 0.5)
        e = group["propensity"].to_numpy()
        assert e.sum() == pytest.approx(expected, abs=1e-6), cid
        sd = math.sqrt((e * (1 - e)).sum())
        assert abs(group["targeted"].sum() - expected) <= 4 * sd + 1, cid


# --- hand-built worlds ------------------------------------------------------------

WINDOW = (pd.Timestamp("2017-06-05"), pd.Timestamp("2017-06-18"))
PRICES = {1: 2.0, 2: 3.0, 4: 5.0, 5: 4.0, 6: 1.0}   # product 3 (a coupon product) is never sold


def line(h, day, product, qty=1, sales=None):
    return (h, day, product, qty, PRICES[product] * qty if sales is None else sales)


HAND_LINES = [
    (1, "2017-01-10", 1, 1, 2.0),            # before the 13-week pre-period: not counted
    line(1, "2017-04-03", 1), line(1, "2017-05-02", 1), line(1, "2017-05-10", 4),
    line(1, "2017-06-07", 1), line(1, "2017-06-08", 4), line(1, "2017-07-01", 1),   # window: one coupon line
    line(2, "2017-04-20", 2, 2, 6.0), line(2, "2017-06-10", 2), line(2, "2017-06-11", 5),
    line(3, "2017-04-21", 5), line(3, "2017-06-12", 6),
    line(4, "2017-05-01", 4), line(4, "2017-06-14", 1), line(4, "2017-06-15", 1),
    line(5, "2017-03-20", 6), line(5, "2017-06-16", 6),
    line(6, "2017-05-05", 5), line(6, "2017-06-30", 2),                            # after the window
]
HAND_WINDOW_COUPON_SPEND = {1: 2.0, 2: 3.0, 3: 0.0, 4: 4.0, 5: 0.0, 6: 0.0}
HAND_WINDOW_COUPON_LINES = {1: 1, 2: 1, 3: 0, 4: 2, 5: 0, 6: 0}
# pi(h, j) = (own(h, j) + 1 pop(j)) / (own(h) + 1), pop(j) ~ pre-period lines + 0.1 over the drawable 1, 2
POP_VALUE = (2.1 * 2.0 + 1.1 * 3.0) / 3.2
HAND_LINE_VALUE = {1: (2 * 2.0 + POP_VALUE) / 3, 2: (3.0 + POP_VALUE) / 2, 3: POP_VALUE, 4: POP_VALUE,
                   5: POP_VALUE, 6: POP_VALUE}


def transactions_frame(lines) -> pd.DataFrame:
    frame = pd.DataFrame(lines, columns=["household_id", "day", "product_id", "quantity", "sales_value"])
    ts = pd.to_datetime(frame.pop("day")) + pd.Timedelta(hours=12)
    n = len(frame)
    return pd.DataFrame({
        "household_id": frame["household_id"].astype("int64"), "store_id": (10 + frame["household_id"]).astype("int64"),
        "basket_id": np.arange(1000, 1000 + n, dtype="int64"), "product_id": frame["product_id"].astype("int64"),
        "quantity": frame["quantity"].astype("int64"), "sales_value": frame["sales_value"].astype("float64"),
        "retail_disc": np.zeros(n), "coupon_disc": np.zeros(n), "coupon_match_disc": np.zeros(n),
        "week": calendar_week(ts).astype("int64"), "transaction_timestamp": ts,
    })


def inline_tables(tx: pd.DataFrame, audience: dict[int, list[int]], windows: dict[int, tuple]) -> dict:
    products = pd.DataFrame({"product_id": np.arange(1, 7, dtype="int64"), "manufacturer_id": 1,
                             "department": "GROCERY", "brand": "National",
                             "product_category": ["CAT_A"] * 3 + ["CAT_B"] * 3,
                             "product_type": "x", "package_size": "1"})
    descriptions = pd.DataFrame({"campaign_id": list(windows), "campaign_type": "Type A",
                                 "start_date": [w[0] for w in windows.values()],
                                 "end_date": [w[1] for w in windows.values()]})
    campaigns = pd.DataFrame([(c, h) for c, hs in audience.items() for h in hs], columns=["campaign_id", "household_id"])
    # coupon 9001 covers 1 and 2, 9002 covers 2 and 3: every campaign
    coupons = pd.DataFrame([(u, p, c) for c in windows for u, p in ((9001, 1), (9001, 2), (9002, 2), (9002, 3))],
                           columns=["coupon_upc", "product_id", "campaign_id"])
    redemptions = pd.DataFrame({"household_id": [1], "coupon_upc": [9001], "campaign_id": [1],
                                "redemption_date": [pd.Timestamp("2017-06-07")]})
    return {"transactions": tx, "products": products, "campaign_descriptions": descriptions,
            "campaigns": campaigns, "coupons": coupons, "coupon_redemptions": redemptions,
            "demographics": pd.DataFrame({"household_id": pd.Series(dtype="int64")})}


def hand_run(sc: Scenario):
    tx = transactions_frame(HAND_LINES)
    sim = simulate(inline_tables(tx, {1: [1, 2, 3, 4]}, {1: WINDOW}), sc, CALENDAR)
    truth = sim.truth_household_campaign.set_index("household_id")
    out = sim.tables["transactions"]
    new = out[out["basket_id"] > tx["basket_id"].max()]
    real_out = out[out["basket_id"] <= tx["basket_id"].max()]
    removed = tx.merge(real_out[TX_KEYS], how="left", indicator=True).query("_merge == 'left_only'")
    return sim, truth, new, removed


def check_redemptions(sim, truth):
    red = sim.tables["coupon_redemptions"]
    assert set(red["coupon_upc"]) <= {9001, 9002} and set(red["campaign_id"]) <= {1}
    assert red["household_id"].isin(truth.index[truth["targeted"]]).all()
    assert (red["redemption_date"] == red["redemption_date"].dt.normalize()).all()
    return red


def test_positive_campaign_truth_is_rate_times_expected_line_value():
    sim, truth, new, removed = hand_run(scenario(effect_scale=2.0))
    hh = list(range(1, 7))
    assert truth.loc[hh, "true_incremental_revenue"].to_numpy() == pytest.approx(
        [2.0 * HAND_LINE_VALUE[h] for h in hh])
    assert truth.loc[hh, "true_expected_redemptions"].to_numpy() == pytest.approx(
        [0.5 * 2.0 + 0.2 * HAND_WINDOW_COUPON_LINES[h] for h in hh])
    assert truth.loc[hh, "baseline_coupon_product_spend"].to_numpy() == pytest.approx(
        [HAND_WINDOW_COUPON_SPEND[h] for h in hh])
    assert truth["propensity"].to_numpy() == pytest.approx(np.full(6, 4 / 6))
    # lines: only targeted households, only drawable coupon products at their price, inside the window
    assert len(new) > 0 and len(removed) == 0
    assert new["household_id"].isin(truth.index[truth["targeted"]]).all()
    assert set(new["product_id"]) <= {1, 2}
    assert (new["sales_value"] == new["product_id"].map(PRICES)).all()
    assert (new["store_id"] == 10 + new["household_id"]).all()
    days = new["transaction_timestamp"].dt.normalize()
    assert days.between(*WINDOW).all()
    assert (new["week"].to_numpy() == calendar_week(new["transaction_timestamp"])).all()
    assert set(new["coupon_disc"]) <= {0.0, 1.0}
    red = check_redemptions(sim, truth)
    assert len(red) > 0


def test_null_campaign_injects_nothing_and_has_zero_truth():
    sim, truth, new, removed = hand_run(scenario(share_null_campaigns=1.0))
    assert len(new) == 0 and len(removed) == 0
    assert (truth["true_incremental_revenue"] == 0).all() and (truth["campaign_multiplier"] == 0).all()
    hh = list(range(1, 7))
    assert truth.loc[hh, "true_expected_redemption_cost"].to_numpy() == pytest.approx(
        [1.0 * 0.2 * HAND_WINDOW_COUPON_LINES[h] for h in hh])
    assert sim.truth_campaign.loc[0, "effect_kind"] == "null"
    check_redemptions(sim, truth)


@pytest.mark.parametrize("effect_scale", [0.5, 5.0])
def test_negative_campaign_removes_only_real_coupon_lines_in_its_window(effect_scale):
    sim, truth, new, removed = hand_run(scenario(share_negative_campaigns=1.0, effect_scale=effect_scale))
    p = min(0.9, 1 - math.exp(-effect_scale))
    hh = list(range(1, 7))
    assert truth.loc[hh, "removal_probability"].to_numpy() == pytest.approx([p] * 6)
    assert truth.loc[hh, "true_incremental_revenue"].to_numpy() == pytest.approx(
        [-p * HAND_WINDOW_COUPON_SPEND[h] for h in hh])
    assert truth.loc[hh, "true_expected_redemptions"].to_numpy() == pytest.approx(
        [0.2 * (1 - p) * HAND_WINDOW_COUPON_LINES[h] for h in hh])
    assert len(new) == 0
    assert set(removed["product_id"]) <= {1, 2, 3}
    assert removed["transaction_timestamp"].dt.normalize().between(*WINDOW).all()
    assert removed["household_id"].isin(truth.index[truth["targeted"]]).all()
    if effect_scale == 5.0:
        assert len(removed) > 0
    check_redemptions(sim, truth)


def test_untargeted_households_get_nothing_but_keep_their_potential_effect():
    sim, truth, new, _ = hand_run(scenario(effect_scale=3.0, seed=11))
    untargeted = truth.index[~truth["targeted"]]
    assert len(untargeted) > 0
    assert not new["household_id"].isin(untargeted).any()
    assert (truth.loc[untargeted, "true_incremental_revenue"] > 0).all()
    assert not sim.tables["campaigns"]["household_id"].isin(untargeted).any()


# --- a larger synthetic population ---------------------------------------------------

POP_WINDOWS = {1: ("2017-06-05", "2017-06-18"), 2: ("2017-08-07", "2017-08-20"), 3: ("2017-10-02", "2017-10-22")}
POP_AUDIENCE = {1: 300, 2: 500, 3: 200}


@pytest.fixture(scope="module")
def population():
    """2,000 households whose spend level drives their number of baskets (lognormal)."""
    rng = np.random.default_rng(0)
    n = 2000
    level = rng.lognormal(0.0, 0.8, n)
    baskets = 1 + rng.poisson(6 * level)
    households = np.repeat(np.arange(1, n + 1), baskets)
    days = pd.Timestamp("2017-01-02") + pd.to_timedelta(rng.integers(0, 360, len(households)), unit="D")
    products = rng.choice([1, 2, 4, 5, 6], size=len(households))
    lines = [(int(h), d.strftime("%Y-%m-%d"), int(p), 1, PRICES[int(p)])
             for h, d, p in zip(households, days, products)]
    tx = transactions_frame(lines)
    audience = {c: list(range(1, k + 1)) for c, k in POP_AUDIENCE.items()}
    windows = {c: (pd.Timestamp(a), pd.Timestamp(b)) for c, (a, b) in POP_WINDOWS.items()}
    return tx, inline_tables(tx, audience, windows)


def pre_spend(tx: pd.DataFrame, start: str, households) -> pd.Series:
    start = pd.Timestamp(start)
    ts = tx["transaction_timestamp"]
    pre = tx[(ts >= start - pd.Timedelta(weeks=13)) & (ts < start)]
    return pre.groupby("household_id")["sales_value"].sum().reindex(households, fill_value=0.0)


@pytest.mark.parametrize("selectivity", [0.0, 1.0])
def test_selectivity_moves_the_propensity_auc_of_pre_period_spend(population, selectivity):
    tx, tables = population
    sim = simulate(tables, scenario(selectivity=selectivity, effect_scale=1.0, seed=5), CALENDAR)
    truth = sim.truth_household_campaign
    for cid, (start, _) in POP_WINDOWS.items():
        group = truth[truth["campaign_id"] == cid].set_index("household_id")
        spend_auc = auc(pre_spend(tx, start, group.index), group["targeted"])
        n1 = group["targeted"].sum()
        # sd of an AUC under no association: sqrt((n1 + n0 + 1) / (12 n1 n0)); 4 sd
        sd = math.sqrt((len(group) + 1) / (12 * n1 * (len(group) - n1)))
        if selectivity == 0.0:
            assert abs(spend_auc - 0.5) <= 4 * sd, cid
            assert group["propensity"].nunique() == 1
        else:
            assert spend_auc >= 0.8, cid
            assert sim.truth_campaign.set_index("campaign_id").loc[cid, "propensity_auc"] >= 0.8


def test_drawn_incremental_revenue_matches_the_truth(population):
    """Compound Poisson: realised revenue of targeted households within 4 sd of the expected one."""
    tx, tables = population
    sim = simulate(tables, scenario(selectivity=0.5, effect_scale=1.5, heterogeneity=0.5, noise_sd=0.3,
                                    effect_spread=0.5, seed=9), CALENDAR)
    truth = sim.truth_household_campaign
    out = sim.tables["transactions"]
    new = out[out["basket_id"] > tx["basket_id"].max()]
    expected = truth.loc[truth["targeted"], "true_incremental_revenue"].sum()
    lines = truth.loc[truth["targeted"], "expected_incremental_lines"].sum()
    sd = math.sqrt(lines * max(PRICES[1], PRICES[2]) ** 2)
    assert expected > 0 and abs(new["sales_value"].sum() - expected) <= 4 * sd
    assert abs(len(new) - lines) <= 4 * math.sqrt(lines)


# --- scenario loader and the job ---------------------------------------------------------

GOOD = dict(description="x", seed=1, selectivity=0.5, effect_scale=1.0, effect_spread=0.5, heterogeneity=0.5,
            noise_sd=0.3, share_null_campaigns=0.2, share_negative_campaigns=0.1, incremental_redemption_rate=0.5,
            baseline_redemption_rate=0.01, face_value=1.0, pre_period_weeks=13, min_audience=5)


def test_shipped_scenarios_load():
    scenarios = load_scenarios(SCENARIOS)
    assert {"selective_large", "overlap_small", "random_null_heavy", "tiny"} <= set(scenarios)
    assert scenarios["selective_large"].selectivity == 1.0


@pytest.mark.parametrize("change, key", [
    ({"surprise": 1}, "surprise"),
    ({"selectivity": None}, "selectivity"),          # None: the key is removed below
    ({"selectivity": 1.5}, "selectivity"),
    ({"selectivity": -0.1}, "selectivity"),
    ({"effect_scale": -1.0}, "effect_scale"),
    ({"noise_sd": -0.1}, "noise_sd"),
    ({"heterogeneity": -1.0}, "heterogeneity"),
    ({"face_value": 0.0}, "face_value"),
    ({"share_null_campaigns": 1.2}, "share_null_campaigns"),
    ({"share_null_campaigns": 0.6, "share_negative_campaigns": 0.5}, "share_negative_campaigns"),
    ({"incremental_redemption_rate": 1.5}, "incremental_redemption_rate"),
    ({"baseline_redemption_rate": -0.5}, "baseline_redemption_rate"),
    ({"effect_scale": "big"}, "effect_scale"),
    ({"seed": 1.5}, "seed"),
])
def test_scenario_loader_refuses_bad_values_naming_the_key(tmp_path, change, key):
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    path = tmp_path / "scenarios.yaml"
    path.write_text(yaml.safe_dump({"scenarios": {"broken": body}}))
    with pytest.raises(ScenarioError) as err:
        load_scenarios(path)
    assert "broken" in str(err.value) and key in str(err.value)
    assert isinstance(err.value, InputError) and isinstance(err.value, ValueError)


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="nope.*overlap_small.*selective_large"):
        select_scenario(load_scenarios(SCENARIOS), "nope")


def load_job():
    spec = importlib.util.spec_from_file_location("jobs_simulate", REPO_ROOT / "jobs" / "simulate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_exit_codes(tmp_path, runs):
    job = load_job()
    base = ["--source", str(FIXTURE_DIR), "--conf-dir", str(REPO_ROOT / "conf")]
    assert job.main(["--scenario", "nope", "--out", str(tmp_path / "x"), *base]) == 2
    assert not (tmp_path / "x").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("not ours")
    assert job.main(["--scenario", "tiny", "--out", str(busy), *base]) == 2
    assert (busy / "keep.txt").read_text() == "not ours"
    assert job.main(["--scenario", "tiny", "--out", str(tmp_path / "y"), "--source", str(tmp_path),
                     "--conf-dir", str(REPO_ROOT / "conf")]) == 2
    # a previous output is replaced whole, with the same bytes
    again = tmp_path / "again"
    assert job.main(["--scenario", "tiny", "--out", str(again), *base]) == 0
    (again / "stray.txt").write_text("left from before")
    assert job.main(["--scenario", "tiny", "--out", str(again), *base]) == 0
    assert not (again / "stray.txt").exists()
    for name in ("transactions.parquet", "truth_campaign.parquet", "scenario.json"):
        assert (again / name).read_bytes() == (runs["a"] / name).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
