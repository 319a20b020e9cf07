"""The distributed training loop: one process per rank, DistributedDataParallel.

:func:`train_members` is what ``pyspark.ml.torch.distributor.TorchDistributor``
runs in each of its processes, every network of an ensemble one after the
other (:func:`train_worker` for one network); torchrun sets RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/PORT. Each rank reads its own petastorm shard
(``cur_shard=rank, shard_count=world``), and every rank runs the same fixed
number of steps per epoch: shards are whole row groups and can differ by a
row group, and a rank that stopped early would hang the others' all-reduce.

Rank 0 alone writes: per-epoch metrics to MLflow (several processes on one
sqlite store race), the checkpoint after every epoch (atomically: a temporary
file renamed over the last one), and the final weights: those of the epoch
with the lowest validation loss (the last epoch when there is no validation
set). A run that is killed
resumes from its last completed epoch when started again with the same
checkpoint path.

Backend: gloo on CPU, nccl when CUDA is used (one GPU per rank).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

# Batch columns the loader yields (see promo_roi.training.pipeline.encode_for_training).
BATCH_COLUMNS = ("x_num", "x_cat", "text_id", "targeted", "outcomes")
# Present when the doubly robust term is trained (training.pseudo_outcome_weight > 0).
OPTIONAL_BATCH_COLUMNS = ("pseudo_outcomes",)


@dataclass
class WorkerParams:
    """Everything a rank needs; pickled by TorchDistributor into each process."""

    model_spec: dict[str, Any]
    texts: list[str]
    n_train_rows: int
    batch_size: int
    epochs: int
    learning_rate: float
    encoder_learning_rate: float
    weight_decay: float
    propensity_weight: float
    seed: int
    use_gpu: bool
    checkpoint_path: str
    final_weights_path: str
    # A callable (rank, world, batch_size, seed) -> context manager over an endless batch iterator.
    batch_source: Callable[[int, int, int, int], Any]
    mlflow_tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    # Encoded validation arrays (x_num, x_cat, text_id, targeted, outcomes): rank 0 logs its loss.
    validation: dict[str, Any] | None = None
    threads_per_process: int = 1
    log_every_steps: int = 20
    # Weight of the effect penalty (model.LossWeights): 0 leaves the effect free.
    effect_penalty: float = 0.0
    # Weight of the doubly robust term (model.LossWeights.pseudo_outcome): the batches must carry
    # "pseudo_outcomes" when it is above 0.
    pseudo_outcome_weight: float = 0.0
    # Before each metric's name in the MLflow run: which member of an ensemble this is (ensemble.member_prefix).
    metric_prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def loss_weights(self):
        from promo_roi.training.model import LossWeights

        return LossWeights(propensity=self.propensity_weight, effect_penalty=self.effect_penalty,
                           pseudo_outcome=self.pseudo_outcome_weight)


@dataclass(frozen=True)
class PetastormBatches:
    """Batch source over a petastorm converter: this rank's shard, shuffled, read endlessly."""

    converter: Any
    workers_count: int = 1

    def __call__(self, rank: int, world: int, batch_size: int, seed: int):
        from promo_roi.training.loader import iterate_passes

        return contextlib.closing(iterate_passes(
            self.converter, cur_shard=rank, shard_count=world, batch_size=batch_size,
            shuffle_seed=seed + rank, workers_count=self.workers_count,
        ))


@dataclass(frozen=True)
class ArrayBatches:
    """Batch source over in-memory arrays (rows rank::world), for runs without Spark (e.g. a GPU box)."""

    arrays: dict[str, Any]

    def __call__(self, rank: int, world: int, batch_size: int, seed: int):
        return contextlib.closing(_array_batches(self.arrays, rank, world, batch_size, seed))


def _array_batches(arrays: dict[str, Any], rank: int, world: int, batch_size: int, seed: int) -> Iterator[dict]:
    import numpy as np
    import torch

    n = len(arrays["targeted"])
    rows = np.arange(rank, n, world)
    rng = np.random.default_rng(seed + rank)
    tensors = {k: torch.as_tensor(v) for k, v in arrays.items()}
    while True:
        order = rng.permutation(rows)
        for start in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[start:start + batch_size])
            yield {k: v[idx] for k, v in tensors.items()}


def steps_per_epoch(n_rows: int, world: int, batch_size: int) -> int:
    """Steps each rank takes per epoch so that the ranks together see about every row once."""
    return max(1, math.ceil(n_rows / (world * batch_size)))


def _to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    import torch

    out = {}
    for key in (*BATCH_COLUMNS, *[c for c in OPTIONAL_BATCH_COLUMNS if c in batch]):
        value = batch[key]
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        out[key] = value.to(device, non_blocking=True)
    return out


def _forward_loss(network: Any, batcher: Any, batch: dict[str, Any], device: Any, weights: Any):
    """(loss, its parts) of one batch; ``weights`` a model.LossWeights."""
    from promo_roi.training.model import response_loss

    index, ids, mask = batcher.select(batch["text_id"].long().cpu())
    logit, arms = network(batch["x_num"].float(), batch["x_cat"].long(), index.to(device), ids.to(device),
                          mask.to(device))
    return response_loss(logit, arms, batch["targeted"], batch["outcomes"].float(), weights,
                         batch.get("pseudo_outcomes"))


def _validation_losses(network: Any, batcher: Any, arrays: dict[str, Any], device: Any,
                       weights: Any) -> dict[str, float]:
    """Mean validation loss, total and its outcome and propensity parts. The doubly robust term is left out:
    the validation campaigns' pseudo-outcomes are fitted after training, by the evaluation, and the epoch is
    chosen on the outcome loss alone (:func:`stopping_loss`)."""
    import dataclasses

    import torch

    weights = dataclasses.replace(weights, pseudo_outcome=0.0)
    network.eval()
    sums, n = {"validation_loss": 0.0, "validation_outcome_loss": 0.0, "validation_propensity_loss": 0.0}, \
        len(arrays["targeted"])
    with torch.no_grad():
        for start in range(0, n, 4096):
            batch = _to_device({k: torch.as_tensor(v[start:start + 4096]) for k, v in arrays.items()}, device)
            loss, parts = _forward_loss(network, batcher, batch, device, weights)
            rows = len(batch["targeted"])
            sums["validation_loss"] += float(loss) * rows
            sums["validation_outcome_loss"] += float(parts["outcome_loss"]) * rows
            sums["validation_propensity_loss"] += float(parts["propensity_loss"]) * rows
    network.train()
    return {key: total / max(n, 1) for key, total in sums.items()}


def stopping_loss(record: dict[str, float]) -> float | None:
    """What picks the best epoch: the validation OUTCOME loss. The propensity term mostly tracks how each
    validation campaign chose its target list, so an epoch that fits it better is not a better model of the
    response; the total loss let it pick the epoch. None without a validation split."""
    return record.get("validation_outcome_loss")


def _save_atomic(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a reader never sees a half-written checkpoint


@dataclass(frozen=True)
class _Rank:
    """This process's place in the process group and the device it trains on."""

    rank: int
    world: int
    backend: str
    device: Any
    use_cuda: bool


def _join_process_group(params: WorkerParams) -> _Rank:
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = params.use_gpu and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(max(1, params.threads_per_process))
    return _Rank(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), backend, device, use_cuda)


def _optimizer(network: Any, params: WorkerParams) -> Any:
    """AdamW with the head's learning rate and, for the unfrozen encoder layers, the encoder's."""
    import torch

    encoder = network.encoder  # None in a network that reads no text
    encoder_params = [p for p in encoder.parameters() if p.requires_grad] if encoder is not None else []
    encoder_ids = {id(p) for p in encoder_params}
    head_params = [p for p in network.parameters() if p.requires_grad and id(p) not in encoder_ids]
    groups = [{"params": head_params, "lr": params.learning_rate}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": params.encoder_learning_rate})
    return torch.optim.AdamW(groups, weight_decay=params.weight_decay)


def _train_epoch(ddp: Any, batcher: Any, batches: Iterator[dict], optimizer: Any, steps: int, epoch: int,
                 where: _Rank, params: WorkerParams) -> dict[str, float]:
    """One epoch of ``steps`` steps on every rank; the mean losses over all ranks' steps."""
    import torch
    import torch.distributed as dist

    started = time.monotonic()
    sums = torch.zeros(4, dtype=torch.float64)  # outcome, propensity and doubly robust losses; steps
    for step in range(steps):
        batch = _to_device(next(batches), where.device)
        loss, parts = _forward_loss(ddp, batcher, batch, where.device, params.loss_weights())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums += torch.tensor([float(parts["outcome_loss"]), float(parts["propensity_loss"]),
                              float(parts.get("pseudo_outcome_loss", 0.0)), 1.0], dtype=torch.float64)
        if where.rank == 0 and (step + 1) % params.log_every_steps == 0:
            log.info("train epoch %d step %d/%d loss %.4f", epoch + 1, step + 1, steps, float(loss))
    # Mean over all ranks' steps (gloo/nccl all-reduce of a tiny tensor).
    reduced = sums.to(where.device) if where.use_cuda else sums
    dist.all_reduce(reduced)
    reduced = reduced.cpu()
    seconds = time.monotonic() - started
    record = {
        "epoch": epoch + 1,
        "train_outcome_loss": float(reduced[0] / reduced[3]),
        "train_propensity_loss": float(reduced[1] / reduced[3]),
        "examples_per_second": float(reduced[3]) * params.batch_size / max(seconds, 1e-9),
        "seconds": seconds,
    }
    if params.pseudo_outcome_weight > 0:
        record["train_pseudo_outcome_loss"] = float(reduced[2] / reduced[3])
    return record


@dataclass
class _Progress:
    """What rank 0 carries from epoch to epoch, and checkpoints after each."""

    start_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"loss": math.inf, "epoch": None})

    def record_epoch(self, record: dict[str, float]) -> bool:
        """Adds ``record`` (its ``epoch`` 1-based) to the history; True when it is the best epoch so far
        (lowest :func:`stopping_loss`; without a validation split, the latest)."""
        self.history.append(record)
        stopping = stopping_loss(record)
        current = -record["epoch"] if stopping is None else stopping
        if current < self.best["loss"]:
            self.best = {"loss": current, "epoch": int(record["epoch"])}
            return True
        return False


def _end_of_epoch(record: dict[str, float], progress: _Progress, network: Any, batcher: Any, optimizer: Any,
                  where: _Rank, params: WorkerParams, client: Any) -> None:
    """Rank 0: validation loss, the best epoch's weights, MLflow metrics, the checkpoint, a log line."""
    epoch = int(record["epoch"]) - 1
    if params.validation is not None:
        record.update(_validation_losses(network, batcher, params.validation, where.device,
                                         params.loss_weights()))
    # Keep the weights of the epoch with the lowest validation outcome loss (early
    # stopping without stopping: the schedule stays fixed for every rank).
    if progress.record_epoch(record):
        _save_atomic(network.state_dict(), Path(params.final_weights_path))
    if client is not None:
        for key, value in record.items():
            if key != "epoch":
                client.log_metric(params.mlflow_run_id, params.metric_prefix + key, value, step=epoch + 1)
    _save_atomic({"model": network.state_dict(), "optimizer": optimizer.state_dict(),
                  "epoch": epoch, "history": progress.history, "best": progress.best}, Path(params.checkpoint_path))
    log.info("train %sepoch %d/%d: %s", params.metric_prefix, epoch + 1, params.epochs,
             ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"))


def train_worker(params: WorkerParams) -> dict[str, Any]:
    """One rank of the DDP training of one network. Every rank returns rank 0's history and run facts."""
    return train_members([params])[0]


def train_members(members: list[WorkerParams]) -> list[dict[str, Any]]:
    """One rank of the DDP training of each network in ``members`` (an ensemble's), one after the other in one
    process group: what TorchDistributor runs once for the whole ensemble, so that the processes, their imports
    and the group are started once, not once per member. Each member is seeded, built and trained as it would
    be alone (``train_worker``), to the same weights. Every rank returns rank 0's results, one per member."""
    import torch.distributed as dist

    from promo_roi.observability import configure_logging

    if not logging.getLogger().handlers:  # a fresh torchrun process: its own entry point
        configure_logging("INFO")
    where = _join_process_group(members[0])
    results = [_train_member(params, where) for params in members]
    dist.destroy_process_group()
    return results


def _train_member(params: WorkerParams, where: _Rank) -> dict[str, Any]:
    """This rank's part of one network's training, in the process group already joined."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from transformers import AutoTokenizer

    from promo_roi.training.model import ModelSpec, build_network
    from promo_roi.training.text_encoder import default_encoder_path, TextBatcher

    torch.manual_seed(params.seed)
    spec = ModelSpec(**params.model_spec)
    tokenizer = AutoTokenizer.from_pretrained(spec.encoder_path or default_encoder_path(), local_files_only=True)
    batcher = TextBatcher.from_texts(tokenizer, params.texts, spec.max_text_tokens)
    network = build_network(spec).to(where.device)
    # Every rank loads the same checkpoint before DDP wraps the network (DDP then
    # broadcasts rank 0's weights, which are the same). weights_only: a checkpoint is tensors, numbers,
    # lists and dicts, and unpickling anything else from a shared directory would run its code.
    checkpoint = Path(params.checkpoint_path)
    state = torch.load(checkpoint, map_location=where.device, weights_only=True) if checkpoint.exists() else None
    if state is not None:
        network.load_state_dict(state["model"])
    ddp = DistributedDataParallel(network, device_ids=[where.device.index] if where.use_cuda else None)
    optimizer = _optimizer(network, params)
    progress = _Progress()
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        progress = _Progress(state["epoch"] + 1, state["history"], state.get("best", progress.best))
        if where.rank == 0:
            log.info("resuming from %s after epoch %d", checkpoint, state["epoch"])
    client = None
    if where.rank == 0 and params.mlflow_run_id and params.mlflow_tracking_uri:
        from promo_roi.mlflow_io import MlflowStore

        client = MlflowStore(params.mlflow_tracking_uri).client

    steps = steps_per_epoch(params.n_train_rows, where.world, params.batch_size)
    ddp.train()
    seed = params.seed + 1000 * progress.start_epoch
    with params.batch_source(where.rank, where.world, params.batch_size, seed) as batches:
        for epoch in range(progress.start_epoch, params.epochs):
            record = _train_epoch(ddp, batcher, batches, optimizer, steps, epoch, where, params)
            if where.rank == 0:
                _end_of_epoch(record, progress, network, batcher, optimizer, where, params, client)
            dist.barrier()
    result = [None]
    if where.rank == 0:
        result = [{"history": progress.history, "world_size": where.world, "backend": where.backend,
                   "device": str(where.device), "steps_per_epoch": steps, "best_epoch": progress.best["epoch"]}]
    # In local mode TorchDistributor has every rank pickle its return value to the
    # same file, so every rank returns rank 0's result (whoever writes last wins).
    dist.broadcast_object_list(result, src=0)
    # DDP's reducer holds the process group: free it while the group is alive. Left to the function's
    # return, after destroy_process_group, the reducer's release ran ~ProcessGroupGloo and that deadlocked
    # on a gloo mutex (the rolling origin hung so, after its fifth fold, with no CPU used).
    del ddp
    gc.collect()
    return result[0]
