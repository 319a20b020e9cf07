"""A Delta table's latest version: the DeltaLog brought up to date against DESCRIBE HISTORY.

    .venv/bin/python benchmarks/bench_delta_version.py [--commits 20] [--calls 40] [--repeats 3] [--cores 2]

Data: a table the script writes itself in a temporary warehouse (``--commits``
appends of a few rows, so its log holds that many versions and no
checkpoint before the tenth), the same shape as the small tables every job
writes and then asks for the version it made (``delta_io.table_version``
after every merge and delete, the ingest audit's and the publication log's
Delta versions).

Measured in one run, alternating, ``--repeats`` rounds of ``--calls`` calls
each (the first round also warms the JVM and is reported apart):

1. ``deltalog``: ``delta_io.latest_version``, ``DeltaLog.forTable(path).update()
   .version`` (what ``table_version`` uses);
2. ``history``: ``delta_io.history_version``, ``DeltaTable.forPath(path).history(1)``
   and its ``version`` (what it used before).

Both must return the same version every time (the benchmark fails otherwise).
Driver CPU is the JVM's and Python's, read from ``/proc`` for this process
and its children. Prints a JSON document and a markdown table (paste into
BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import describe_machine  # noqa: E402


def _cpu_seconds() -> float:
    """CPU of this process and of the JVM it started (Spark's driver), user + system."""
    total = 0.0
    pids = [os.getpid()]
    for child in Path(f"/proc/{os.getpid()}/task").iterdir():
        children = child / "children"
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
    tick = os.sysconf("SC_CLK_TCK")
    for pid in set(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _timed(fn, calls: int) -> tuple[float, float, set[int]]:
    """(wall seconds, CPU seconds, versions seen) of ``calls`` calls of ``fn``."""
    cpu, wall = _cpu_seconds(), time.perf_counter()
    seen = {fn() for _ in range(calls)}
    return time.perf_counter() - wall, _cpu_seconds() - cpu, seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    if min(args.commits, args.calls, args.repeats, args.cores) < 1:
        parser.error("--commits, --calls, --repeats and --cores must be at least 1")

    from promo_roi import delta_io
    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session

    root = tempfile.mkdtemp(prefix="bench_delta_version_")
    config = load_config(overrides=[f"spark.master=local[{args.cores}]", "spark.shuffle_partitions=1",
                                    f"warehouse.root={root}"], env={})
    spark = build_spark_session(config, app_name="promo-roi-bench-delta-version")
    path = str(Path(root) / "bench" / "versions")
    for i in range(args.commits):
        spark.range(i * 10, i * 10 + 10).write.format("delta").mode("append").save(path)
    ways = {"deltalog": lambda: delta_io.latest_version(spark, path),
            "history": lambda: delta_io.history_version(spark, path)}
    rounds = []
    for repeat in range(args.repeats + 1):  # round 0 warms the JVM
        for name, fn in ways.items():
            wall, cpu, seen = _timed(fn, args.calls)
            if seen != {args.commits - 1}:
                print(f"bench_delta_version: {name} saw versions {sorted(seen)}, expected {args.commits - 1}",
                      file=sys.stderr)
                return 1
            rounds.append({"round": repeat, "way": name, "wall_s": wall, "cpu_s": cpu})
    spark.stop()

    measured = [r for r in rounds if r["round"] > 0]
    summary = {}
    for name in ways:
        mine = [r for r in measured if r["way"] == name]
        summary[name] = {"ms_per_call_wall": 1000 * sum(r["wall_s"] for r in mine) / (len(mine) * args.calls),
                         "ms_per_call_cpu": 1000 * sum(r["cpu_s"] for r in mine) / (len(mine) * args.calls)}
    result = {"commits": args.commits, "calls": args.calls, "repeats": args.repeats, "cores": args.cores,
              "machine": describe_machine(), "rounds": rounds, "summary": summary}
    print(json.dumps(result, indent=1))
    ratio = summary["history"]["ms_per_call_wall"] / summary["deltalog"]["ms_per_call_wall"]
    print("\n| way | ms per call (wall) | ms per call (CPU, driver) |\n|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['ms_per_call_wall']:.1f} | {s['ms_per_call_cpu']:.1f} |")
    print(f"\nhistory / deltalog, wall: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
