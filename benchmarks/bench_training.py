"""Training throughput: the petastorm loader against the model's step rate.

    # here (CPU, Spark): needs silver.training_examples for the date (make demo, then jobs/train.py)
    .venv/bin/python benchmarks/bench_training.py --as-of 2017-07-01 [--steps 20] [--export bench_export]

    # a GPU machine without Spark/Java: the exported arrays, the same model and DDP worker
    python benchmarks/bench_training.py --from-export bench_export --device cuda

Data: the train split of silver.training_examples (Complete Journey, as of the
date), encoded exactly as jobs/train.py encodes it. Measured in one run, so
the ratios compare like with like on a noisy shared machine:

1. loader: petastorm ``make_torch_dataloader`` over the materialised train
   split (one shard of 1, and shard 0 of 2), examples/s with no model;
2. model step: forward + backward + AdamW on real batches in one process, for
   each fine-tuning mode (frozen, adapters, top_layers, all), examples/s; and
   the same step when every row's text is encoded (what the distinct-text
   batching avoids);
3. with ``--from-export --device cuda``: the same steps on the GPU and the DDP
   worker of jobs/train.py under torchrun with the nccl backend.

Prints a JSON document and a markdown table (paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine  # noqa: E402

MODES = ("frozen", "adapters", "top_layers", "all")


def export_arrays(as_of: str, out: Path, limit: int | None) -> dict:
    """Encodes the train split like jobs/train.py and writes arrays + texts + spec for later runs."""
    from pyspark.sql import functions as F

    from promo_roi import delta_io
    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session
    from promo_roi.tables import CATEGORICAL_COLUMNS, model_numeric_columns, training_examples_spec
    from promo_roi.training.model import fit_feature_encoder
    from promo_roi.training.pipeline import encode_arrays, model_spec_for

    config = load_config(env=os.environ)
    spark = build_spark_session(config, app_name="promo-roi-bench-training")
    spec = training_examples_spec(config.features)
    examples = delta_io.read_table(spark, spec, config.warehouse).filter(F.col("as_of_date") == F.lit(as_of))
    train = examples.filter(F.col("split") == "train")
    if limit:
        train = train.limit(limit)
    numeric, categorical = list(model_numeric_columns(config.features)), list(CATEGORICAL_COLUMNS)
    encoder = fit_feature_encoder(train, numeric, categorical)
    texts = sorted(r[0] for r in examples.select("campaign_text").distinct().collect())
    frame = train.toPandas()
    arrays = encode_arrays(frame, encoder, {t: i for i, t in enumerate(texts)})
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "train_arrays.npz", **arrays)
    # The network jobs/train.py trains: conf's training settings (the effect head among them).
    model_spec = model_spec_for(config.training, encoder, len(numeric)).member()  # one network: what a rank steps
    loss_weights = {"propensity": config.training.propensity_weight,
                    "effect_penalty": config.training.effect_penalty}
    (out / "meta.json").write_text(json.dumps({"texts": texts, "model_spec": model_spec.to_dict(),
                                               "loss_weights": loss_weights, "as_of": as_of, "rows": len(frame)}))
    return {"spark": spark, "train": train, "encoder": encoder, "texts": texts, "arrays": arrays,
            "config": config}


def bench_loader(spark, train_df, encoder, texts, cache_dir: str, batch_size: int) -> dict:
    from promo_roi.training.loader import iterate_shard, make_converter
    from promo_roi.training.pipeline import TRAINING_BATCH_SCHEMA, encode_for_training

    encoded = train_df.mapInPandas(encode_for_training(encoder, {t: i for i, t in enumerate(texts)}),
                                   TRAINING_BATCH_SCHEMA)
    converter = make_converter(spark, encoded, cache_dir, min_row_groups=4)
    results = {}
    try:
        for label, (shard, count) in {"1_shard": (0, 1), "shard_0_of_2": (0, 2)}.items():
            started, rows = time.perf_counter(), 0
            for batch in iterate_shard(converter, shard, count, batch_size=batch_size, num_epochs=1,
                                       shuffle_seed=1):
                rows += len(batch["targeted"])
            seconds = time.perf_counter() - started
            results[label] = {"rows": rows, "seconds": round(seconds, 3), "examples_per_s": round(rows / seconds, 1)}
    finally:
        converter.delete()
    return results


def bench_steps(arrays: dict, texts: list[str], spec_dict: dict, device: str, batch_size: int, steps: int,
                modes=MODES, loss_weights: dict | None = None) -> dict:
    """Forward+backward+step rate per fine-tuning mode, distinct-text vs per-row text encoding."""
    import torch
    from transformers import AutoTokenizer

    from promo_roi.training.model import LossWeights, ModelSpec, build_network, response_loss
    from promo_roi.training.text_encoder import TextBatcher

    torch.manual_seed(0)
    # conf's loss weights (an export written before they were recorded: propensity 1, no effect penalty).
    weights = LossWeights(**(loss_weights or {}))
    spec0 = ModelSpec(**spec_dict)
    tokenizer = AutoTokenizer.from_pretrained(spec0.encoder_path, local_files_only=True)
    batcher = TextBatcher.from_texts(tokenizer, texts, spec0.max_text_tokens)
    n = len(arrays["targeted"])
    rng = np.random.default_rng(0)
    batches = [rng.choice(n, size=min(batch_size, n), replace=False) for _ in range(steps + 2)]
    tensors = {k: torch.as_tensor(v) for k, v in arrays.items()}
    out = {}
    for mode in modes:
        spec = ModelSpec(**{**spec_dict, "finetune": mode})
        net = build_network(spec).to(device).train()
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        for per_row in (False, True):
            if per_row and mode != "top_layers":
                continue  # the naive per-row encoding is measured once, for the default mode
            timings = []
            for i, idx in enumerate(batches):
                b = {k: v[idx].to(device) for k, v in tensors.items()}
                if per_row:
                    ids = batcher.input_ids[b["text_id"].cpu().long()]
                    mask = batcher.attention_mask[b["text_id"].cpu().long()]
                    index = torch.arange(len(idx))
                else:
                    index, ids, mask = batcher.select(b["text_id"].cpu().long())
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                started = time.perf_counter()
                logit, arms = net(b["x_num"].float(), b["x_cat"].long(), index.to(device), ids.to(device),
                                  mask.to(device))
                loss, _ = response_loss(logit, arms, b["targeted"], b["outcomes"].float(), weights)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                if i >= 2:  # the first steps warm up allocators and kernels
                    timings.append(time.perf_counter() - started)
            rows = sum(len(b) for b in batches[2:])
            key = f"{mode}{'_per_row_text' if per_row else ''}"
            out[key] = {"examples_per_s": round(rows / sum(timings), 1),
                        "step_ms": round(1000 * float(np.mean(timings)), 1)}
    return out


def _worker_loss_weights(meta: dict) -> dict:
    """WorkerParams' loss weights from an export (one written before they were recorded: 1 and 0)."""
    weights = meta.get("loss_weights") or {}
    return {"propensity_weight": weights.get("propensity", 1.0), "effect_penalty": weights.get("effect_penalty", 0.0)}


def ddp_worker(export: Path, device: str, epochs: int, batch_size: int) -> None:
    """Entry point under torchrun: the train_worker of jobs/train.py on the exported arrays."""
    import tempfile

    from promo_roi.training.distributed import ArrayBatches, WorkerParams, train_worker

    meta = json.loads((export / "meta.json").read_text())
    arrays = dict(np.load(export / "train_arrays.npz"))
    tmp = Path(tempfile.mkdtemp())
    result = train_worker(WorkerParams(
        model_spec=meta["model_spec"], texts=meta["texts"], n_train_rows=len(arrays["targeted"]),
        batch_size=batch_size, epochs=epochs, learning_rate=2e-3, encoder_learning_rate=3e-5, weight_decay=1e-4,
        **_worker_loss_weights(meta), seed=7, use_gpu=device.startswith("cuda"),
        checkpoint_path=str(tmp / "last.pt"), final_weights_path=str(tmp / "final.pt"),
        batch_source=ArrayBatches(arrays), threads_per_process=max(1, (os.cpu_count() or 1) // 2),
    ))
    if int(os.environ.get("RANK", "0")) == 0:
        (export / "ddp_result.json").write_text(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", default="2017-07-01")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None, help="cap on train rows (quick runs)")
    parser.add_argument("--export", type=Path, default=Path("warehouse/_bench_export"))
    parser.add_argument("--from-export", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--ddp-processes", type=int, default=1)
    parser.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    modes = tuple(m for m in args.modes.split(",") if m)

    if args.ddp_worker:
        ddp_worker(args.from_export, args.device, args.epochs, args.batch_size)
        return 0
    report: dict = {"machine": describe_machine(), "batch_size": args.batch_size, "steps": args.steps}
    if args.from_export is None:
        ctx = export_arrays(args.as_of, args.export, args.limit)
        report["rows"] = len(ctx["arrays"]["targeted"])
        report["loader"] = bench_loader(ctx["spark"], ctx["train"], ctx["encoder"], ctx["texts"],
                                        str(Path(ctx["config"].training.petastorm_cache_dir) / "bench"),
                                        args.batch_size)
        meta = json.loads((args.export / "meta.json").read_text())
        report["model_step"] = bench_steps(ctx["arrays"], ctx["texts"], meta["model_spec"], "cpu",
                                           args.batch_size, args.steps, modes, meta.get("loss_weights"))
        ctx["spark"].stop()
    else:
        meta = json.loads((args.from_export / "meta.json").read_text())
        arrays = dict(np.load(args.from_export / "train_arrays.npz"))
        report["rows"] = len(arrays["targeted"])
        report["model_step"] = bench_steps(arrays, meta["texts"], meta["model_spec"], args.device,
                                           args.batch_size, args.steps, modes, meta.get("loss_weights"))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={args.ddp_processes}", __file__, "--ddp-worker",
                   "--from-export", str(args.from_export), "--device", args.device,
                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        subprocess.run(command, check=True)
        report["ddp"] = json.loads((args.from_export / "ddp_result.json").read_text())
    print(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = ["| measurement | examples/s | note |", "|---|---:|---|"]
    for label, r in report.get("loader", {}).items():
        lines.append(f"| petastorm loader, {label} | {r['examples_per_s']:,.0f} | {r['rows']:,} rows, no model |")
    for label, r in report.get("model_step", {}).items():
        lines.append(f"| model step, {label} | {r['examples_per_s']:,.0f} | {r['step_ms']} ms/step |")
    ddp = report.get("ddp")
    if ddp:
        eps = [h["examples_per_second"] for h in ddp["history"]]
        lines.append(f"| DDP train_worker ({ddp['backend']}, world {ddp['world_size']}, {ddp['device']}) | "
                     f"{max(eps):,.0f} | best epoch of {len(eps)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
