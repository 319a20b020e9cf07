"""How closely the two scoring paths agree on a real night: the executors (``mapInPandas``) and the driver
(``score_on_driver``, what ``scoring.driver_max_pairs`` picks for a small night).

    # needs the demo warehouse and a champion (make demo)
    .venv/bin/python scripts/compare_scoring_paths.py [--run-date 2017-07-01]

Data: the scoring examples of the run date, built by the job's own ``scoring_examples`` from the warehouse
of the default configuration. Prints, per prediction column, the largest absolute difference and the share
of pairs whose values are equal to the last bit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-date", default="2017-07-01", type=dt.date.fromisoformat)
    args = parser.parse_args()

    from promo_roi import delta_io
    from promo_roi.bronze import read_bronze
    from promo_roi.config import load_config
    from promo_roi.scoring import inputs
    from promo_roi.scoring.job import champion
    from promo_roi.scoring.predict import PREDICTION_COLUMNS, SCORE_SCHEMA, score_on_driver, scorer
    from promo_roi.session import build_spark_session
    from promo_roi.tables import user_features_spec

    config = load_config(env=os.environ)
    spark = build_spark_session(config, app_name="promo-roi-compare-scoring-paths")
    bronze = read_bronze(spark, config)
    user_features = delta_io.read_table(spark, user_features_spec(config.features), config.warehouse)
    plans = inputs.planned_campaigns(spark, config, args.run_date)
    examples = inputs.scoring_examples(bronze, user_features, plans, args.run_date, config).cache()
    print(f"pairs {examples.count():,}, partitions {examples.rdd.getNumPartitions()}")
    model = champion(spark, config)
    tracking_uri = config.require_training().mlflow.tracking_uri
    keys = ["household_id", "campaign_id"]
    executors = examples.mapInPandas(scorer(model.uri, tracking_uri, 0), SCORE_SCHEMA).toPandas()
    driver = score_on_driver(examples, model.uri, tracking_uri, 0).toPandas()
    executors = executors.sort_values(keys).reset_index(drop=True)
    driver = driver.sort_values(keys).reset_index(drop=True)
    assert (executors[keys].to_numpy() == driver[keys].to_numpy()).all(), "the two paths scored other pairs"
    for column in PREDICTION_COLUMNS:
        a, b = executors[column].to_numpy(), driver[column].to_numpy()
        print(f"{column}: max abs difference {np.abs(a - b).max():.3g}, equal {int((a == b).sum()):,} of {len(a):,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
