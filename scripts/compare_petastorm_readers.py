"""Does the order in which a training rank reads its shard depend on how fast it reads?

    .venv/bin/python scripts/compare_petastorm_readers.py [--tries 3] [--passes 5]

Data: 960 generated rows materialised as 16 row groups (8 per shard of 2). For
each try, shard 0 is read for ``--passes`` passes twice, taking batches at
once and pausing 50 ms per batch (a training step), with petastorm's own
endless reader (``iterate_shard(num_epochs=None)``) and with the one training
uses (``iterate_passes``: a fresh one-pass reader per pass). Prints, per try,
whether the two speeds read the same order, and for petastorm's reader
whether its first pass did.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))


def read(batches, pause: float, count: int) -> list[int]:
    rows: list[int] = []
    with contextlib.closing(batches) as source:
        for batch in itertools.islice(source, count):
            rows.extend(int(x) for x in batch["row_id"].tolist())
            time.sleep(pause)
    return rows


def main() -> int:
    from pyspark.sql import functions as F

    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session
    from promo_roi.training.loader import iterate_passes, iterate_shard, make_converter

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    config = load_config(profile="local", overrides=[
        "spark.master=local[2]", "spark.shuffle_partitions=1", f"warehouse.root={tempfile.mkdtemp()}"], env={})
    spark = build_spark_session(config, app_name="promo-roi-compare-readers")
    df = spark.range(960).select(F.col("id").cast("int").alias("row_id"), (F.col("id") * 0.5).alias("feature"))
    converter = make_converter(spark, df, tempfile.mkdtemp(), 16)
    batches = args.passes * 8  # iterate_passes: 8 batches a pass over the shard's 480 rows (7 of 64, one of 32)
    try:
        for attempt in range(args.tries):
            old = [read(iterate_shard(converter, 0, 2, 64, num_epochs=None, shuffle_seed=11), pause, batches)
                   for pause in (0.0, 0.05)]
            new = [read(iterate_passes(converter, 0, 2, 64, shuffle_seed=11), pause, batches)
                   for pause in (0.0, 0.05)]
            print(f"try {attempt + 1}: petastorm's endless reader, same order at both speeds: {old[0] == old[1]} "
                  f"(first pass: {old[0][:480] == old[1][:480]}); iterate_passes: {new[0] == new[1]}", flush=True)
    finally:
        converter.delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
