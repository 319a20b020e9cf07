"""Benchmark: the budget-plan solver's Spark path on synthetic households.

Command (the one behind the table in BENCHMARKS.md, section "Budget solver"):

    .venv/bin/python benchmarks/bench_budget_solver.py --households 10000 100000 1000000

Spark runs in local mode on ``--cores`` cores (default 2) with ``--partitions``
shuffle partitions, built by the library's own session factory. For each size
the pairs are generated, written to parquet in a temporary directory, read
back, and ``plan_budget_spark`` is timed from the parquet DataFrame to the
counted, cached selection (validation, caching, every pass and the emission
included; generation and the parquet write excluded). One small warm-up plan
runs first so that JVM and Python-worker start-up is not billed to the first
size. Up to ``--exact-max`` households, HiGHS also solves the same instance
exactly (MILP; it reports its own relative gap) for the true optimality gap.

The generator (seeded numpy, ``promo_roi.planning.synthetic.generate_pairs``), 10
campaigns by default, every household eligible for every campaign:

* campaign c: contact cost ~ U(0.3, 1.5), coupon face value ~ U(1, 5), base
  redemption rate ~ U(0.05, 0.30), uplift ~ U(1, 4) (fixed seed, the same at
  every size);
* household h: responsiveness r_h ~ lognormal(0, 0.5), shared by its pairs;
* pair (h, c): redemptions = min(0.95, base_c * r_h * lognormal(0, 0.3));
  cost = contact_c + face_c * redemptions (contact plus expected coupon cost);
  value = 0.9 * uplift_c * r_h * lognormal(-0.3, 0.8) * cost (incremental
  gross profit, heavy-tailed: about 77% of pairs are profitable).

The constraints scale with the instance: total budget 15% of the total cost
of all pairs; K = 2 campaigns per household; maximum budgets for campaigns
1, 4 and 7 (1%, 2% and 1.5% of the total cost); coupon inventories for
campaigns 2 and 9 (0.004 and 0.01 redemptions per household). At that budget
the spend caps land at ~75% and the inventories at 92-98%; ``--caps tight``
halves every cap so that all five bind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from promo_roi.config import load_config  # noqa: E402
from promo_roi.planning import (  # noqa: E402
    BudgetConstraints,
    SolverSettings,
    plan_budget_spark,
    solve_exact,
)
from promo_roi.planning.synthetic import generate_pairs  # noqa: E402
from promo_roi.session import build_spark_session  # noqa: E402


def constraints_for(pairs: pd.DataFrame, n_households: int, caps: str = "default") -> BudgetConstraints:
    """The benchmark's constraints; ``caps='tight'`` halves every cap so that all five bind."""
    total = float(pairs["cost"].sum())
    share = 0.5 if caps == "tight" else 1.0
    return BudgetConstraints(
        total_budget=0.15 * total,
        household_cap=2,
        campaign_max_budget={1: 0.01 * share * total, 4: 0.02 * share * total, 7: 0.015 * share * total},
        campaign_inventory={2: 0.004 * share * n_households, 9: 0.01 * share * n_households},
    )


def machine() -> dict[str, str]:
    def run(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    model = next((line.split(":", 1)[1].strip() for line in run(["lscpu"]).splitlines() if "Model name" in line), "?")
    memory = next((line.split()[1] for line in run(["free", "-g"]).splitlines() if line.startswith("Mem:")), "?")
    return {"nproc": run(["nproc"]), "cpu": model, "memory_gib": memory, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument(
        "--exact-max",
        type=int,
        default=10_000,
        help="largest size also solved by HiGHS (10^5 did not finish in 23 min; see BENCHMARKS.md)",
    )
    parser.add_argument("--exact-time-limit", type=float, default=1800.0)
    parser.add_argument("--caps", choices=["default", "tight"], default="default")
    parser.add_argument("--sample-households", type=int, default=SolverSettings().sample_households)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench_budget_"))
    config = load_config(
        profile="local",
        overrides=[
            f"spark.master=local[{args.cores}]",
            f"spark.shuffle_partitions={args.partitions}",
            f"spark.driver_memory={args.driver_memory}",
            f"warehouse.root={workdir / 'warehouse'}",
        ],
        env={},
    )
    spark = build_spark_session(config, app_name="bench-budget-solver")
    results = []
    try:
        warm = generate_pairs(2_000, args.campaigns, seed=99)
        selected, _ = plan_budget_spark(spark.createDataFrame(warm), constraints_for(warm, 2_000))
        selected.unpersist()
        for n_households in args.households:
            pairs = generate_pairs(n_households, args.campaigns, args.seed)
            constraints = constraints_for(pairs, n_households, args.caps)
            path = workdir / f"pairs_{n_households}.parquet"
            pq.write_table(pa.Table.from_pandas(pairs, preserve_index=False), path, row_group_size=1_000_000)
            frame = spark.read.parquet(str(path))
            started = time.perf_counter()
            selected, summary = plan_budget_spark(
                frame, constraints, settings=SolverSettings(sample_households=args.sample_households)
            )
            seconds = time.perf_counter() - started
            selected.unpersist()
            row = {
                "households": n_households,
                "pairs": len(pairs),
                "seconds": round(seconds, 1),
                "objective": summary.objective,
                "budget": constraints.total_budget,
                "budget_used": summary.budget_used,
                "dual_bound": summary.dual_bound,
                "gap": summary.gap,
                "pairs_selected": summary.pairs_selected,
                "passes": summary.passes,
                "caps_setting": args.caps,
                "sample_households": args.sample_households,
                "caps": {
                    str(c.campaign_id): {
                        "spend": c.spend,
                        "max_budget": c.max_budget,
                        "redemptions": c.redemptions,
                        "inventory": c.inventory,
                    }
                    for c in summary.campaigns
                    if c.max_budget is not None or c.inventory is not None
                },
            }
            if n_households <= args.exact_max:
                exact = solve_exact(pairs, constraints, time_limit=args.exact_time_limit, mip_rel_gap=1e-6)
                row.update(
                    exact_status=exact.status,
                    exact_objective=exact.objective,
                    exact_mip_bound=exact.mip_bound,
                    lp_bound=exact.lp_bound,
                    exact_seconds=round(exact.seconds, 1),
                    true_gap=None
                    if exact.objective is None
                    else (exact.objective - summary.objective) / abs(exact.objective),
                )
            results.append(row)
            logging.info("result: %s", json.dumps(row, default=str))
            del pairs
            os.remove(path)
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    info = machine()
    print(f"\nmachine: {info['nproc']} cores ({info['cpu']}), {info['memory_gib']} GiB, Python {info['python']}")
    print(
        "| households | pairs | seconds | objective | budget used | dual bound | gap (bound) "
        "| HiGHS optimum | true gap |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        exact = "-" if r.get("exact_objective") is None else f"{r['exact_objective']:,.0f} ({r['exact_seconds']} s)"
        true_gap = "-" if r.get("true_gap") is None else f"{r['true_gap']:.4%}"
        print(
            f"| {r['households']:,} | {r['pairs']:,} | {r['seconds']} | {r['objective']:,.0f} | "
            f"{r['budget_used']:,.0f} / {r['budget']:,.0f} | {r['dual_bound']:,.0f} | {r['gap']:.4%} | "
            f"{exact} | {true_gap} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
