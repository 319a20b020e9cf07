"""Training-example builder: one Spark plan for every campaign start against one plan per start.

    # needs bronze and silver.campaign_exposures as of --as-of (jobs/ingest.py, jobs/build_features.py)
    .venv/bin/python benchmarks/bench_examples.py --as-of 2018-01-01 [--cores 2] [--repeats 2]

Data: the warehouse of the embedded default (the real Complete Journey data):
the households' state at every fully observed campaign's start (19 starts as
of 2018-01-01) and each campaign's own state at its start, which is what
``build_training_examples`` joins onto the exposures.

Measured in one run, alternating, ``--repeats`` times each (the first round
also warms the JVM, and is reported apart):

1. ``one plan``: ``build_user_features_on`` and ``build_campaign_features_on``
   over all starts (what training, the backtest and the rolling origin use);
2. ``per date``: the union of the single-date builders, one per start (how
   the examples were built before).

Each is timed from building the DataFrame to having every row on the driver
(``toPandas``), so Spark's analysis and planning count, not only execution.
The two results are compared row by row (keys equal, every number within
1e-9 relative): the benchmark fails when they differ.

Prints a JSON document and a markdown table (paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import describe_machine  # noqa: E402


def per_date(bronze, starts, config):
    """The households' and campaigns' state at each start, one plan per start, unioned."""
    from pyspark.sql import functions as F

    from promo_roi.features import build_campaign_features, build_user_features

    households = reduce(lambda a, b: a.unionByName(b), [
        build_user_features(bronze.transactions, bronze.products, bronze.campaigns, bronze.campaign_descriptions,
                            bronze.coupon_redemptions, bronze.demographics, day, config.features)
        for day in starts])
    campaigns = reduce(lambda a, b: a.unionByName(b), [
        build_campaign_features(bronze.campaign_descriptions, bronze.campaigns, bronze.coupons, bronze.products,
                                bronze.coupon_redemptions, day, config.source).filter(F.col("start_date") == F.lit(day))
        for day in starts])
    return households, campaigns


def one_plan(bronze, starts, config):
    from promo_roi.training.examples import campaign_state_at_start, household_state_at

    households = household_state_at(bronze, starts, config.features).drop("reference_date")
    return households, campaign_state_at_start(bronze, bronze.campaign_descriptions, starts, config.source)


def collect(build, bronze, starts, config) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    started = time.perf_counter()
    households, campaigns = build(bronze, starts, config)
    frames = households.toPandas(), campaigns.toPandas()
    return time.perf_counter() - started, *frames


def same_rows(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> None:
    """Raises AssertionError unless ``a`` and ``b`` hold the same rows (numbers within 1e-9 relative)."""
    a = a.sort_values(keys).reset_index(drop=True)
    b = b[a.columns].sort_values(keys).reset_index(drop=True)
    assert len(a) == len(b), f"{len(a)} rows against {len(b)}"
    for column in a.columns:
        if pd.api.types.is_numeric_dtype(a[column]) and not pd.api.types.is_bool_dtype(a[column]):
            np.testing.assert_allclose(a[column].to_numpy(float), b[column].to_numpy(float), rtol=1e-9,
                                       equal_nan=True, err_msg=column)
        else:
            assert a[column].astype(str).tolist() == b[column].astype(str).tolist(), column


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", default="2018-01-01")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    as_of = dt.date.fromisoformat(args.as_of)

    from promo_roi.config import load_config
    from promo_roi.bronze import read_bronze
    from promo_roi.session import build_spark_session
    from promo_roi.training.examples import exposures_as_of, fully_observed

    config = load_config(overrides=[f"spark.master=local[{args.cores}]",
                                    f"spark.shuffle_partitions={2 * args.cores}"], env=os.environ)
    spark = build_spark_session(config, app_name="promo-roi-bench-examples")
    bronze = read_bronze(spark, config)
    eligible = exposures_as_of(spark, config, as_of).transform(fully_observed(as_of))
    starts = sorted({r.start_date for r in eligible.select("start_date").distinct().collect()})
    builders = {"one plan": one_plan, "per date": per_date}
    seconds: dict[str, list[float]] = {name: [] for name in builders}
    results = {}
    for _ in range(args.repeats + 1):
        for name, build in builders.items():
            took, households, campaigns = collect(build, bronze, starts, config)
            seconds[name].append(took)
            results[name] = households, campaigns
    same_rows(results["one plan"][0], results["per date"][0], ["as_of_date", "household_id"])
    same_rows(results["one plan"][1], results["per date"][1], ["as_of_date", "campaign_id"])
    households, campaigns = results["one plan"]
    report = {
        "as_of": args.as_of, "starts": len(starts), "household_rows": len(households),
        "campaign_rows": len(campaigns), "cores": args.cores, "machine": describe_machine(),
        "seconds": {name: {"first": s[0], "then": s[1:], "median_then": float(np.median(s[1:]))}
                    for name, s in seconds.items()},
        "same_rows": True,
    }
    report["speedup"] = report["seconds"]["per date"]["median_then"] / report["seconds"]["one plan"]["median_then"]
    print(json.dumps(report, indent=2, default=str))
    print()
    print("| builder | first round (s, cold JVM) | later rounds, median (s) |")
    print("|---|---:|---:|")
    for name in builders:
        s = report["seconds"][name]
        print(f"| {name} | {s['first']:.1f} | {s['median_then']:.1f} |")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
