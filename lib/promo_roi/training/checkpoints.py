"""Where a training run keeps its checkpoints, and when a later run may take them up.

A run's checkpoint directory is named by :func:`run_key`: the as-of date, the
training settings (all but ``epochs``, so a run asked for more epochs resumes
from the last one), the number of train rows, the **content** of the as-of
slice of ``silver.training_examples`` and the training code. The content, not
the table's Delta version: every run rewrites the slice and so bumps the
version, and a key with the version in it never matched again, so a training
killed after its fine-tuning trained again from scratch. The code is in the
key because the same data and settings under another network or loss must not
take up the old weights.

Each member of a run records its outcome (history, best epoch, backend) next to
its best weights once its fine-tuning is over (:func:`record_outcome`). A run
of the same key finds it (:func:`recorded_outcome`) and does not start the
distributed training again for that member: a training killed while it was
evaluating or writing its tables is rerun at the cost of the evaluation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from promo_roi.config import TrainingConfig

OUTCOME_FILE = "outcome.json"
FINAL_WEIGHTS = "final.pt"  # the best epoch's weights
LAST_CHECKPOINT = "last.pt"  # the last epoch's weights and optimizer, to resume from


def examples_fingerprint(examples: DataFrame) -> str:
    """The rows of ``examples`` whatever their order or files: the row count and the sum of the rows' 64-bit
    hashes over every column (summed as an exact decimal, which cannot overflow)."""
    row_hash = F.xxhash64(*[F.col(c) for c in sorted(examples.columns)]).cast("decimal(38,0)")
    row = examples.select(row_hash.alias("h")).agg(F.count(F.lit(1)).alias("n"), F.sum("h").alias("s")).first()
    return f"{row['n']}:{row['s'] if row['s'] is not None else 0}"


def code_fingerprint(module_names: tuple[str, ...]) -> str:
    """The source of the modules named (read through the import system, so it works from a zip too)."""
    digest = hashlib.sha256()
    for name in module_names:
        digest.update(inspect.getsource(importlib.import_module(name)).encode())
    return digest.hexdigest()[:16]


def run_key(as_of: dt.date, training: TrainingConfig, n_rows: int, examples: str, code: str) -> str:
    """Identifies a training run for checkpoint resumption: the same inputs, settings and code, the same key.
    ``examples`` is :func:`examples_fingerprint` of the as-of slice, ``code`` :func:`code_fingerprint`."""
    settings = {k: v for k, v in training.__dict__.items() if k not in ("epochs",)}
    blob = json.dumps([as_of.isoformat(), settings, n_rows, examples, code], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def member_checkpoint_dir(checkpoint_dir: Path, member: int, size: int) -> Path:
    """Where member ``member`` (0-based) of an ensemble of ``size`` keeps its checkpoint and best weights: the
    run's checkpoint directory for a single network, a directory per member in an ensemble."""
    return checkpoint_dir if size == 1 else checkpoint_dir / f"member_{member + 1}"


def recorded_outcome(member_dir: Path, epochs: int) -> dict[str, Any] | None:
    """The outcome a run of the same key recorded for this member after training ``epochs`` epochs, when its best
    weights are there too; None when the member must be trained (or trained on to more epochs)."""
    path = member_dir / OUTCOME_FILE
    if not (path.exists() and (member_dir / FINAL_WEIGHTS).exists()):
        return None
    recorded = json.loads(path.read_text())
    return recorded["outcome"] if recorded.get("epochs") == epochs else None


def record_outcome(member_dir: Path, epochs: int, outcome: dict[str, Any]) -> None:
    """Records a member's finished fine-tuning (atomically: a reader finds the whole file or none)."""
    path = member_dir / OUTCOME_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"epochs": epochs, "outcome": outcome}, sort_keys=True))
    os.replace(tmp, path)
