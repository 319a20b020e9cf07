"""gold.campaign_plans: the gate names every unusable row before any household is scored; the night's
seeding inserts new calendar campaigns and keeps the costs of its own rows in line with the configuration."""

from __future__ import annotations

import datetime as dt

from promo_roi import delta_io
from promo_roi.scoring.inputs import plan_problems, seed_plans
from promo_roi.tables import CAMPAIGN_PLANS

START, END = dt.date(2017, 7, 12), dt.date(2017, 8, 12)
NAN, INF = float("nan"), float("inf")


def _plan(campaign_id, **changes):
    row = {"campaign_id": campaign_id, "campaign_type": "TypeA", "start_date": START, "end_date": END,
           "coupon_product_ids": [1, 2], "contact_cost": 0.5, "redemption_cost": 1.2, "min_budget": None,
           "max_budget": None, "coupon_inventory": None, "source": "planner", "added_at": None}
    row.update(changes)
    return row


def _problems(spark, rows):
    frame = spark.createDataFrame(rows, CAMPAIGN_PLANS.struct)
    found = [(r.campaign_id, r.problem) for r in frame.transform(plan_problems).collect()]
    assert len(found) == len(set(found)), found
    return set(found)


def test_good_plans_have_no_problem(spark):
    rows = [_plan(1), _plan(2, redemption_cost=0.0), _plan(3, contact_cost=0.0),
            _plan(4, min_budget=10.0, max_budget=20.0, coupon_inventory=300.0), _plan(5, end_date=START)]
    assert _problems(spark, rows) == set()


def test_every_problem_is_named_with_its_campaign(spark):
    rows = [
        _plan(1),
        _plan(10, contact_cost=NAN),
        _plan(11, redemption_cost=None),
        _plan(12, contact_cost=-1.0, redemption_cost=INF),
        _plan(13, contact_cost=0.0, redemption_cost=0.0),
        _plan(14, coupon_product_ids=None),
        _plan(15, coupon_product_ids=[]),
        _plan(16, end_date=None),
        _plan(17, end_date=dt.date(2017, 7, 1)),
        _plan(18, min_budget=30.0, max_budget=20.0),
        _plan(19, max_budget=NAN, coupon_inventory=-5.0),
        _plan(20), _plan(20, contact_cost=0.7),
        _plan(None),
    ]
    assert _problems(spark, rows) == {
        (10, "contact_cost missing, NaN, infinite or negative"),
        (11, "redemption_cost missing, NaN, infinite or negative"),
        (12, "contact_cost missing, NaN, infinite or negative"),
        (12, "redemption_cost missing, NaN, infinite or negative"),
        (13, "contact_cost and redemption_cost both 0 (a free campaign has no ROI)"),
        (14, "coupon_product_ids missing or empty"),
        (15, "coupon_product_ids missing or empty"),
        (16, "start_date or end_date missing"),
        (17, "end_date before start_date"),
        (18, "min_budget above max_budget"),
        (19, "coupon_inventory NaN, infinite or negative"),
        (19, "max_budget NaN, infinite or negative"),
        (20, "campaign_id appears 2 times"),
        (None, "campaign_id missing"),
    }


def test_seeding_inserts_new_campaigns_and_refreshes_only_the_costs_of_seeded_rows(spark, config_for):
    config = config_for("seed_plans")
    added = dt.datetime(2017, 6, 1, 3, 0)

    def plans(*rows):
        return spark.createDataFrame(list(rows), CAMPAIGN_PLANS.struct)

    seeded = dict(source="completejourney", added_at=added)
    seed_plans(spark, plans(_plan(11, **seeded), _plan(12, **seeded)), config)
    # A planner's own campaign, and a planner's budget on a seeded one (SQL INSERT and UPDATE).
    planner = plans(_plan(101, contact_cost=0.25, redemption_cost=2.0, source="planner", added_at=added))
    planner.write.format("delta").mode("append").save(delta_io.table_path(config.warehouse, CAMPAIGN_PLANS))
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, delta_io.table_path(config.warehouse, CAMPAIGN_PLANS)).update(
        "campaign_id = 12", {"max_budget": "500.0"})
    # The next night: contact cost changed in the configuration, a new calendar campaign 13, and a row for
    # 101 that must not touch the planner's campaign.
    later = dict(source="completejourney", added_at=dt.datetime(2017, 7, 1, 3, 0), contact_cost=0.8,
                 redemption_cost=1.3)
    seed_plans(spark, plans(_plan(11, **later), _plan(12, **later), _plan(13, **later), _plan(101, **later)),
               config)
    got = {r.campaign_id: (r.contact_cost, r.redemption_cost, r.max_budget, r.source, r.added_at)
           for r in delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse).collect()}
    assert got == {
        11: (0.8, 1.3, None, "completejourney", added),
        12: (0.8, 1.3, 500.0, "completejourney", added),
        13: (0.8, 1.3, None, "completejourney", dt.datetime(2017, 7, 1, 3, 0)),
        101: (0.25, 2.0, None, "planner", added),
    }
