"""Where a Spark JVM spends its CPU: a Java Flight Recorder recording summarised by area.

    SPARK_SUBMIT_OPTS="-XX:StartFlightRecording=settings=profile,filename=/tmp/chain.jfr,dumponexit=true" \
        .venv/bin/python -m pytest tests/test_backtest.py -k three_past
    .venv/bin/python scripts/jfr_areas.py /tmp/chain.jfr

Reads the recording's execution samples (``jfr print --json``, the JDK's own
tool) and prints, per area, the share of samples whose stack passes through
it (areas overlap: a sample inside Janino called from an UnsafeProjection
counts in both), then the methods most often on top of the stack. This is
how docs/tests.md found that compiling expression code was 15-18% of the
test session's JVM.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter

# area -> substrings of a frame's "class.method" (slashes as in the recording)
AREAS = {
    "expression codegen: Janino compile": ("CodeGenerator$.doCompile",),
    "expression codegen: GenerateUnsafeProjection": ("GenerateUnsafeProjection",),
    "class loading": ("java/lang/ClassLoader.loadClass",),
    "jar lookups (ZipFile)": ("java/util/zip/ZipFile",),
    "py4j (calls from Python)": ("py4j",),
    "task serialisation (ObjectOutputStream)": ("java/io/ObjectOutputStream",),
    "closure cleaning": ("ClosureCleaner",),
    "analyzer": ("catalyst/analysis/Analyzer",),
    "Delta snapshots": ("delta/Snapshot",),
    "Delta history (DeltaTable.history)": ("DeltaTableOperations.$anonfun$executeHistory",),
    "parquet": ("org/apache/parquet",),
}


def samples(recording: str, depth: int) -> list[list[str]]:
    """Every execution sample's stack as "class.method" frames, innermost first."""
    jfr = shutil.which("jfr")
    if jfr is None:
        print("jfr_areas: the JDK's `jfr` tool is not on PATH", file=sys.stderr)
        raise SystemExit(2)
    done = subprocess.run([jfr, "print", "--json", "--stack-depth", str(depth), "--events", "jdk.ExecutionSample",
                           recording], capture_output=True, text=True)
    if done.returncode != 0:  # e.g. a recording still being written (it is dumped when the JVM exits)
        print(f"jfr_areas: jfr cannot read {recording}: {(done.stderr or done.stdout).strip()[-500:]}",
              file=sys.stderr)
        raise SystemExit(2)
    stacks = []
    for event in json.loads(done.stdout)["recording"]["events"]:
        trace = event["values"].get("stackTrace")
        if trace:
            stacks.append([f["method"]["type"]["name"] + "." + f["method"]["name"] for f in trace["frames"]])
    return stacks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", help="a .jfr file")
    parser.add_argument("--depth", type=int, default=96, help="frames kept per stack (default 96)")
    parser.add_argument("--top", type=int, default=15, help="methods listed by self samples (default 15)")
    args = parser.parse_args(argv)
    stacks = samples(args.recording, args.depth)
    if not stacks:
        print("no execution samples in the recording")
        return 1
    inside, on_top = Counter(), Counter()
    for stack in stacks:
        joined = "\n".join(stack)
        for area, patterns in AREAS.items():
            if any(p in joined for p in patterns):
                inside[area] += 1
        on_top[stack[0]] += 1
    n = len(stacks)
    print(f"{n:,} samples; share of samples inside each area:")
    for area, count in inside.most_common():
        print(f"{100 * count / n:5.1f}%  {area}")
    print("methods on top of the stack:")
    for method, count in on_top.most_common(args.top):
        print(f"{100 * count / n:5.1f}%  {method}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
