"""A seed ensemble trained in one TorchDistributor launch against one launch per member.

    # needs silver.training_examples for the date (make demo); writes the encoded train split to --export
    .venv/bin/python benchmarks/bench_ensemble_launch.py --as-of 2017-07-01 [--members 3] [--epochs 2]

Data: the train split of silver.training_examples as of the date (Complete
Journey), encoded as jobs/train.py encodes it (benchmarks/bench_training.py's
export), and the network of conf's training settings. Both ways run the real
``TorchDistributor(num_processes, local_mode=True)`` of jobs/train.py, gloo on
CPU, on the same in-memory batches (``ArrayBatches``: the loader is measured by
bench_training.py), members from seeds ``seed + 100003 k`` as in training:

1. one launch per member: ``distributor.run(train_worker, member_k)``, what
   jobs/train.py did before 2026-12-05;
2. one launch for all: ``distributor.run(train_members, [member_1, ...])``.

Each member's best weights and losses must come out the same both ways (checked,
else the script fails). Measured in one run, one way after the other, so the
ratio compares like with like on a noisy machine. Prints JSON and a markdown row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import export_arrays  # noqa: E402
from machine import describe_machine  # noqa: E402


def member_params(meta: dict, arrays: dict, training, member: int, epochs: int, root: Path):
    from promo_roi.training.distributed import ArrayBatches, WorkerParams
    from promo_roi.training.ensemble import member_seed

    return WorkerParams(
        model_spec=meta["model_spec"], texts=meta["texts"], n_train_rows=len(arrays["targeted"]),
        batch_size=training.batch_size, epochs=epochs, learning_rate=training.learning_rate,
        encoder_learning_rate=training.encoder_learning_rate, weight_decay=training.weight_decay,
        propensity_weight=training.propensity_weight, effect_penalty=training.effect_penalty,
        seed=member_seed(training.seed, member), use_gpu=False,
        checkpoint_path=str(root / f"member_{member + 1}" / "last.pt"),
        final_weights_path=str(root / f"member_{member + 1}" / "final.pt"),
        batch_source=ArrayBatches(arrays), threads_per_process=max(1, (os.cpu_count() or 1) // training.num_processes),
    )


def same_members(root_a: Path, root_b: Path, members: int) -> bool:
    import torch

    for k in range(1, members + 1):
        a = torch.load(root_a / f"member_{k}" / "final.pt", weights_only=True)
        b = torch.load(root_b / f"member_{k}" / "final.pt", weights_only=True)
        if a.keys() != b.keys() or any(not torch.equal(a[name], b[name]) for name in a):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", default="2017-07-01")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="cap on train rows (quick runs)")
    parser.add_argument("--export", type=Path, default=Path("warehouse/_bench_export"))
    args = parser.parse_args()

    from pyspark.ml.torch.distributor import TorchDistributor

    from promo_roi.training.distributed import train_members, train_worker

    ctx = export_arrays(args.as_of, args.export, args.limit)
    meta = json.loads((args.export / "meta.json").read_text())
    arrays, training = ctx["arrays"], ctx["config"].training
    distributor = TorchDistributor(num_processes=training.num_processes, local_mode=True, use_gpu=False)
    roots = {way: Path(tempfile.mkdtemp(prefix=f"bench_launch_{way}_")) for way in ("per_member", "one_launch")}
    params = {way: [member_params(meta, arrays, training, k, args.epochs, root) for k in range(args.members)]
              for way, root in roots.items()}
    seconds, losses = {}, {}
    started = time.perf_counter()
    losses["per_member"] = [distributor.run(train_worker, p) for p in params["per_member"]]
    seconds["per_member"] = time.perf_counter() - started
    started = time.perf_counter()
    losses["one_launch"] = distributor.run(train_members, params["one_launch"])
    seconds["one_launch"] = time.perf_counter() - started
    ctx["spark"].stop()

    def epoch_losses(results):
        return [[{k: v for k, v in h.items() if "loss" in k} for h in r["history"]] for r in results]

    same = (same_members(roots["per_member"], roots["one_launch"], args.members)
            and epoch_losses(losses["per_member"]) == epoch_losses(losses["one_launch"]))
    report = {
        "machine": describe_machine(), "as_of": args.as_of, "rows": len(arrays["targeted"]),
        "members": args.members, "epochs": args.epochs, "processes": training.num_processes,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "saved_per_extra_launch_s": round((seconds["per_member"] - seconds["one_launch"]) / max(1, args.members - 1), 1),
        "same_weights_and_losses": same,
    }
    print(json.dumps(report, indent=1))
    print(f"| {report['rows']:,} rows, {args.members} members x {args.epochs} epochs, {training.num_processes} "
          f"processes | {seconds['per_member']:.1f} s | {seconds['one_launch']:.1f} s | "
          f"{seconds['per_member'] / seconds['one_launch']:.2f}x | {report['saved_per_extra_launch_s']} s | "
          f"{'yes' if same else 'NO'} |")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
