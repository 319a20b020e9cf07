"""The rows of a slice a job has just replaced: read from the commit's metrics against a count query.

    .venv/bin/python benchmarks/bench_slice_rows.py [--rows 100000] [--slices 10] [--calls 20] [--repeats 3] [--cores 2]

Data: a table the script writes itself in a temporary warehouse, ``--rows`` rows in ``--slices`` slices (a
``run_id`` column, not partitioned, like the gold tables a publication replaces by run), each slice written by
``delta_io.replace_slice`` as the jobs write theirs, so the last commit is the last slice's write.

Measured in one run, alternating, ``--repeats`` rounds of ``--calls`` calls each (the first round also warms
the JVM and is reported apart):

1. ``commit``: ``delta_io.written_slice_rows``, the last commit's ``operationMetrics`` read from its commit
   file (what ``delta_io.slice_rows`` does after the jobs' writes);
2. ``count``: the slice counted at that version by a query (what the publication, the feature build and the
   product tables did after each write, and what ``slice_rows`` still does for any other commit).

Both must give the same number every time (the benchmark fails otherwise). Driver CPU is the JVM's and
Python's, read from ``/proc`` for this process and its children. Prints a JSON document and a markdown table
(paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_delta_version import _timed  # noqa: E402
from machine import describe_machine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    if min(args.rows, args.slices, args.calls, args.repeats, args.cores) < 1:
        parser.error("--rows, --slices, --calls, --repeats and --cores must be at least 1")

    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    from promo_roi import delta_io
    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session
    from promo_roi.tables import TableSpec

    root = tempfile.mkdtemp(prefix="bench_slice_rows_")
    config = load_config(overrides=[f"spark.master=local[{args.cores}]", "spark.shuffle_partitions=1",
                                    f"warehouse.root={root}"], env={})
    spark = build_spark_session(config, app_name="promo-roi-bench-slice-rows")
    spec = TableSpec("gold", "bench_slices",
                     StructType([StructField("run_id", StringType()), StructField("value", LongType())]))
    per_slice = args.rows // args.slices
    for k in range(args.slices):
        frame = spark.range(per_slice).select(F.lit(f"run{k:04d}").alias("run_id"), F.col("id").alias("value"))
        version = delta_io.replace_slice(spark, frame, spec, config.warehouse, f"run_id = 'run{k:04d}'")
    predicate = f"run_id = 'run{args.slices - 1:04d}'"
    path = delta_io.table_path(config.warehouse, spec)
    ways = {"commit": lambda: delta_io.written_slice_rows(spark, path, version, predicate),
            "count": lambda: delta_io.read_table_at(spark, spec, config.warehouse, version).filter(predicate).count()}
    rounds = []
    for repeat in range(args.repeats + 1):  # round 0 warms the JVM
        for name, fn in ways.items():
            wall, cpu, seen = _timed(fn, args.calls)
            if seen != {per_slice}:
                print(f"bench_slice_rows: {name} gave {sorted(seen, key=str)}, expected {per_slice}", file=sys.stderr)
                return 1
            rounds.append({"round": repeat, "way": name, "wall_s": wall, "cpu_s": cpu})
    spark.stop()

    measured = [r for r in rounds if r["round"] > 0]
    summary = {}
    for name in ways:
        mine = [r for r in measured if r["way"] == name]
        summary[name] = {"ms_per_call_wall": 1000 * sum(r["wall_s"] for r in mine) / (len(mine) * args.calls),
                         "ms_per_call_cpu": 1000 * sum(r["cpu_s"] for r in mine) / (len(mine) * args.calls)}
    result = {"rows": per_slice * args.slices, "slices": args.slices, "calls": args.calls, "repeats": args.repeats,
              "cores": args.cores, "machine": describe_machine(), "rounds": rounds, "summary": summary}
    print(json.dumps(result, indent=1))
    ratio = summary["count"]["ms_per_call_wall"] / summary["commit"]["ms_per_call_wall"]
    print(f"\n{per_slice * args.slices:,} rows in {args.slices} slices\n"
          "| way | ms per call (wall) | ms per call (CPU, driver) |\n|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['ms_per_call_wall']:.1f} | {s['ms_per_call_cpu']:.1f} |")
    print(f"\ncount / commit, wall: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
