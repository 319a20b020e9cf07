"""PySpark's DataFrame call-site capture on and off: what building the jobs' DataFrames costs each way.

    .venv/bin/python benchmarks/bench_dataframe_debugging.py [--passes 5] [--repeats 3] [--cores 2]

Data: none read. Each pass builds (without running them) the DataFrames every Delta write in the jobs
builds last: ``delta_io.conform`` (a cast and an alias per declared column) over an empty frame of each
table the warehouse declares (``tables.all_specs``), then reads its schema. That is the Python side of a
job: a few thousand Column and function calls, each a py4j round trip to the JVM.

PySpark 4.0 wraps every Column and function call (``pyspark.errors.utils._with_origin``): while
``spark.python.sql.dataFrameDebugging.enabled`` is true (its default), each call also looks the active
session up, reads ``spark.sql.stackTracesInDataFrameContext``, walks the Python stack for its call site
and sets and clears it in the JVM (``PySparkCurrentOrigin``), several more round trips, so that an error's
DataFrame context can name the Python line. It changes no result. The test session turns it off
(``SMALL_DATA_SPARK`` in tests/conftest.py).

Measured in one run, alternating ``on`` and ``off``, ``--repeats`` rounds of ``--passes`` passes (round 0
warms the JVM and is reported apart): wall seconds, CPU of this process and its JVM (``/proc``), and the
py4j commands sent (counted in ``py4j.clientserver``). Prints a JSON document and a markdown table (paste
into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_delta_version import _cpu_seconds  # noqa: E402
from machine import describe_machine  # noqa: E402


class CommandCounter:
    """Counts the py4j commands this process sends (every Python -> JVM call is one)."""

    def __init__(self) -> None:
        from py4j import clientserver

        self.sent = 0
        self._original = clientserver.ClientServerConnection.send_command
        counter = self

        def send_command(connection, command):
            counter.sent += 1
            return counter._original(connection, command)

        clientserver.ClientServerConnection.send_command = send_command


def _set_debugging(enabled: bool) -> None:
    """What the setting decides in this process. It is static (fixed when the session starts), and PySpark reads
    it once into ``pyspark.errors.utils._enable_debugging_cache``: setting that cache switches the capture as
    starting the session with the setting would."""
    import pyspark.errors.utils as pyspark_errors

    pyspark_errors._enable_debugging_cache = enabled


def _one_pass(frames: dict) -> int:
    """Builds every declared table's write frame once; returns the columns built (the same every pass)."""
    from promo_roi import delta_io

    return sum(len(delta_io.conform(frame, spec).schema.fields) for spec, frame in frames.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    if min(args.passes, args.repeats, args.cores) < 1:
        parser.error("--passes, --repeats and --cores must be at least 1")

    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session
    from promo_roi.tables import all_specs

    root = tempfile.mkdtemp(prefix="bench_dataframe_debugging_")
    config = load_config(overrides=[f"spark.master=local[{args.cores}]", "spark.shuffle_partitions=1",
                                    f"warehouse.root={root}"], env={})
    spark = build_spark_session(config, app_name="promo-roi-bench-dataframe-debugging")
    frames = {spec: spark.createDataFrame([], spec.struct) for spec in all_specs(config.features)}
    counter = CommandCounter()
    rounds = []
    for repeat in range(args.repeats + 1):  # round 0 warms the JVM
        for name, enabled in (("on", True), ("off", False)):
            _set_debugging(enabled)
            sent, cpu, wall = counter.sent, _cpu_seconds(), time.perf_counter()
            columns = {_one_pass(frames) for _ in range(args.passes)}
            rounds.append({"round": repeat, "debugging": name, "wall_s": time.perf_counter() - wall,
                           "cpu_s": _cpu_seconds() - cpu, "py4j_commands": counter.sent - sent,
                           "columns": columns.pop()})
    spark.stop()

    measured = [r for r in rounds if r["round"] > 0]
    summary = {}
    for name in ("on", "off"):
        mine = [r for r in measured if r["debugging"] == name]
        passes = len(mine) * args.passes
        summary[name] = {"s_per_pass_wall": sum(r["wall_s"] for r in mine) / passes,
                         "s_per_pass_cpu": sum(r["cpu_s"] for r in mine) / passes,
                         "py4j_commands_per_pass": sum(r["py4j_commands"] for r in mine) / passes,
                         "columns_per_pass": mine[0]["columns"]}
    result = {"tables": len(frames), "passes": args.passes, "repeats": args.repeats, "cores": args.cores,
              "machine": describe_machine(), "rounds": rounds, "summary": summary}
    print(json.dumps(result, indent=1))
    print("\n| call-site capture | s per pass (wall) | s per pass (CPU, driver) | py4j commands per pass |\n"
          "|---|---:|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} | {s['s_per_pass_wall']:.2f} | {s['s_per_pass_cpu']:.2f} | "
              f"{s['py4j_commands_per_pass']:,.0f} |")
    on, off = summary["on"], summary["off"]
    print(f"\non / off: wall {on['s_per_pass_wall'] / off['s_per_pass_wall']:.2f}x, "
          f"CPU {on['s_per_pass_cpu'] / off['s_per_pass_cpu']:.2f}x, "
          f"py4j commands {on['py4j_commands_per_pass'] / off['py4j_commands_per_pass']:.2f}x "
          f"({on['columns_per_pass']} columns per pass)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
