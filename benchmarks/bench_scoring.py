"""Scoring throughput: (household, campaign) pairs per second per core.

    # needs the demo warehouse and a champion with a calibration (make demo)
    .venv/bin/python benchmarks/bench_scoring.py --run-date 2017-07-01 [--pairs 1000000] [--mc 20]

Data: the real scoring inputs of the run date (every Complete Journey
household x every campaign planned on that date: 2,469 x 13 = 31,109 pairs,
features from silver.user_features, built by the job's own
``scoring_examples``), repeated with fresh household ids up to ``--pairs``
(generated households are what the issue allows; the rows are real ones).
The champion comes from the MLflow registry, as in jobs/score.py.

Measured in one run, so the ratios compare like with like on a noisy
machine (every figure is one process pinned to one torch thread, i.e. per
core):

1. ``score_frame`` (the mapInPandas body of jobs/score.py: feature encoding,
   text vectors from the per-worker cache, the network, output frame) on
   batches of ``--batch`` pairs: point predictions only (the default), and
   with ``--mc`` Monte Carlo dropout draws; and point predictions in chunks
   of 65,536 pairs (the network's chunk before 2026-12-05, against
   ``scoring.predict.CHUNK_ROWS`` now);
2. the path before text caching (``predict_frame``, the transformer re-run
   on the batch's distinct texts at every call), on a smaller sample;
   (1 and 2: the median of ``--repeats`` passes over the pairs;)
3. the Spark stage of jobs/score.py end to end on the real 31,109 pairs
   (``mapInPandas`` over the scoring examples, counted), local[N] with N =
   ``--cores``: pairs/s and pairs/s per core, with Spark's own overhead;
   its first run (each Python worker starts and loads the champion) and a
   second one (workers reused);
4. the driver path of a night of at most ``scoring.driver_max_pairs`` pairs
   (``score_on_driver``: the same examples collected, scored in this process
   with torch's default threads, and back as a DataFrame, counted).

Prints a JSON document and a markdown table (paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import describe_machine  # noqa: E402


def replicate(frame: pd.DataFrame, n_pairs: int) -> pd.DataFrame:
    """The real pairs repeated with new household ids until there are ``n_pairs``."""
    reps = int(np.ceil(n_pairs / len(frame)))
    offset = int(frame["household_id"].max()) + 1
    parts = [frame.assign(household_id=frame["household_id"] + k * offset) for k in range(reps)]
    return pd.concat(parts, ignore_index=True).head(n_pairs)


def timed_rate(fn, frame: pd.DataFrame, batch: int, repeats: int) -> tuple[float, float]:
    """Pairs/s and seconds of one pass over ``frame`` in batches: the median of ``repeats`` passes (the
    first pass on a fresh process also pays for the allocator's and the kernels' warm-up)."""
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, len(frame), batch):
            fn(frame.iloc[start:start + batch])
        passes.append(time.perf_counter() - started)
    seconds = float(np.median(passes))
    return len(frame) / seconds, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-date", default="2017-07-01")
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000, help="pairs per mapInPandas-like batch")
    parser.add_argument("--mc", type=int, default=20, help="MC dropout draws for the second measurement")
    parser.add_argument("--old-path-pairs", type=int, default=20_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="passes per score_frame line (median reported)")
    args = parser.parse_args()

    import torch
    from pyspark.sql import functions as F

    from promo_roi import delta_io
    from promo_roi.config import load_config
    from promo_roi.bronze import read_bronze
    from promo_roi.scoring import inputs
    from promo_roi.scoring.job import champion
    from promo_roi.scoring.predict import SCORE_SCHEMA, load_champion, score_frame, score_on_driver, scorer
    from promo_roi.session import build_spark_session
    from promo_roi.tables import user_features_spec
    from promo_roi.training.model import predict_frame

    run_date = dt.date.fromisoformat(args.run_date)
    config = load_config(overrides=[f"spark.master=local[{args.cores}]",
                                     f"spark.shuffle_partitions={2 * args.cores}"], env=os.environ)
    spark = build_spark_session(config, app_name="promo-roi-bench-scoring")
    bronze = read_bronze(spark, config)
    user_features = delta_io.read_table(spark, user_features_spec(config.features), config.warehouse)
    plans = inputs.planned_campaigns(spark, config, run_date)
    examples = inputs.scoring_examples(bronze, user_features, plans, run_date, config).cache()
    real = examples.toPandas()
    model = champion(spark, config)
    tracking_uri = config.require_training().mlflow.tracking_uri
    inner = load_champion(model.uri, tracking_uri)
    torch.set_num_threads(1)

    frame = replicate(real, args.pairs)
    score_frame(inner, frame.head(1000), 0)  # warm-up: text vectors cached, kernels loaded
    point_rate, point_s = timed_rate(lambda b: score_frame(inner, b, 0), frame, args.batch, args.repeats)
    big_rate, big_s = timed_rate(lambda b: score_frame(inner, b, 0, chunk_rows=65_536), frame, args.batch,
                                 args.repeats)
    mc_frame = frame.head(max(args.batch, args.pairs // 10))
    mc_rate, mc_s = timed_rate(lambda b: score_frame(inner, b, args.mc), mc_frame, args.batch, args.repeats)
    old = frame.head(args.old_path_pairs)
    old_rate, old_s = timed_rate(
        lambda b: predict_frame(inner.network, inner.feature_encoder, inner.tokenizer, b,
                                inner.spec.max_text_tokens), old, 4096, args.repeats)

    # The Spark stage as jobs/score.py runs it on a large night (model loaded once per Python worker): the
    # first run includes each worker's start and model load, the second reuses the workers.
    run = examples.mapInPandas(scorer(model.uri, tracking_uri, 0), SCORE_SCHEMA)
    started = time.perf_counter()
    run.agg(F.count(F.lit(1))).first()
    spark_cold_s = time.perf_counter() - started
    started = time.perf_counter()
    spark_pairs = run.agg(F.count(F.lit(1))).first()[0]
    spark_s = time.perf_counter() - started
    # The driver path of a small night (scoring.driver_max_pairs): the same rows collected, scored in this
    # process (which holds the champion, as the job's driver does) with torch's default threads, and handed
    # back as a DataFrame.
    torch.set_num_threads(args.cores)
    started = time.perf_counter()
    driver_pairs = score_on_driver(examples, model.uri, tracking_uri, 0).agg(F.count(F.lit(1))).first()[0]
    driver_s = time.perf_counter() - started

    report = {
        "machine": describe_machine(), "run_date": args.run_date, "real_pairs": len(real),
        "campaign_texts": int(real["campaign_text"].nunique()), "model_version": model.version,
        "repeats": args.repeats,
        "score_frame_point": {"pairs": len(frame), "seconds": point_s, "pairs_per_s_per_core": point_rate},
        "score_frame_point_65536_chunks": {"pairs": len(frame), "seconds": big_s,
                                           "pairs_per_s_per_core": big_rate},
        "score_frame_mc": {"pairs": len(mc_frame), "draws": args.mc, "seconds": mc_s,
                           "pairs_per_s_per_core": mc_rate},
        "predict_frame_text_per_call": {"pairs": len(old), "seconds": old_s, "pairs_per_s_per_core": old_rate},
        "spark_stage": {"pairs": int(spark_pairs), "cores": args.cores, "seconds": spark_s,
                        "pairs_per_s": spark_pairs / spark_s, "pairs_per_s_per_core": spark_pairs / spark_s / args.cores},
        "spark_stage_first_run": {"pairs": int(spark_pairs), "cores": args.cores, "seconds": spark_cold_s,
                                  "pairs_per_s": spark_pairs / spark_cold_s,
                                  "pairs_per_s_per_core": spark_pairs / spark_cold_s / args.cores},
        "driver": {"pairs": int(driver_pairs), "cores": args.cores, "seconds": driver_s,
                   "pairs_per_s": driver_pairs / driver_s, "pairs_per_s_per_core": driver_pairs / driver_s / args.cores},
    }
    print(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


def markdown(r: dict) -> str:
    rows = [
        ("score_frame, point predictions (default)", r["score_frame_point"]),
        (f"score_frame, {r['score_frame_mc']['draws']} MC dropout draws", r["score_frame_mc"]),
        *([("score_frame, point predictions, 65,536-pair chunks", r["score_frame_point_65536_chunks"])]
          if "score_frame_point_65536_chunks" in r else []),
        ("predict_frame, texts re-encoded per call (before)", r["predict_frame_text_per_call"]),
    ]
    out = ["| path | pairs | seconds | pairs/s per core | vs default |", "|---|---:|---:|---:|---:|"]
    base = r["score_frame_point"]["pairs_per_s_per_core"]
    for name, m in rows:
        out.append(f"| {name} | {m['pairs']:,} | {m['seconds']:.1f} | {m['pairs_per_s_per_core']:,.0f} | "
                   f"{m['pairs_per_s_per_core'] / base:.3f}x |")
    for key, name in (("spark_stage_first_run", "Spark mapInPandas stage, first run (workers load the model)"),
                      ("spark_stage", "Spark mapInPandas stage, workers reused"),
                      ("driver", "driver (`score_on_driver`: collect, score, back to a DataFrame)")):
        if key not in r:  # reports written before the line existed
            continue
        s = r[key]
        out.append(f"| {name}, local[{s['cores']}], real pairs | {s['pairs']:,} | {s['seconds']:.1f} | "
                   f"{s['pairs_per_s_per_core']:,.0f} | {s['pairs_per_s_per_core'] / base:.3f}x |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
