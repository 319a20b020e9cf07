"""The one module that knows about petastorm: Spark DataFrame -> torch batches.

Everything else in the training step calls :func:`make_converter`,
:func:`iterate_shard` and :func:`iterate_passes` only, so petastorm (barely maintained) can be replaced
here without touching the rest.

Why petastorm 0.12.1 and not 0.13.1: 0.13.1 loses rows. Reading a 100-row
parquet file with 10 row groups through ``make_batch_reader(num_epochs=1,
workers_count=1, shuffle_row_groups=False)`` returned all 100 rows in only 12
of 20 reads (80 rows otherwise); 0.12.1 returned all rows every time. 0.13.1
also fails to import with pyarrow >= 15. Hence petastorm 0.12.1 with pyarrow
14.0.2 (numpy < 2); tests/test_training_loader.py counts the rows a full epoch
yields across all shards so a regression shows up.

The row-group rule: petastorm shards whole row groups (``cur_shard`` /
``shard_count`` pick row groups, never rows). With fewer row groups than
shards some ranks get nothing, and uneven shards make DDP ranks run different
numbers of steps, which hangs the collective ops. :func:`make_converter`
therefore materializes at least ``min_row_groups`` row groups (give it at
least processes x loader workers) and checks the count it got; the training
loop must still run a fixed number of steps per epoch on every rank.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from petastorm.spark.spark_dataset_converter import SparkDatasetConverter
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

PARENT_CACHE_DIR_CONF = "petastorm.spark.converter.parentCacheDirUrl"

# Row groups are capped at this size, so a large partition (file) is split
# into several row groups rather than one huge one; small partitions stay one
# row group per file.
ROW_GROUP_SIZE_BYTES = 32 * 1024 * 1024


class LoaderError(RuntimeError):
    """The DataFrame cannot be materialized into enough row groups."""


def _file_url(path: str) -> str:
    if path.startswith("file:"):
        return path
    return Path(path).resolve().as_uri()


def count_row_groups(file_urls: list[str]) -> int:
    """Number of parquet row groups in the materialized files (local files only)."""
    import pyarrow.parquet as pq

    total = 0
    for url in file_urls:
        path = url.removeprefix("file://").removeprefix("file:")
        total += pq.ParquetFile(path).num_row_groups
    return total


def make_converter(
    spark: "SparkSession",
    df: "DataFrame",
    cache_dir: str,
    min_row_groups: int,
) -> "SparkDatasetConverter":
    """Materializes ``df`` under ``cache_dir`` as parquet with >= ``min_row_groups`` row groups.

    Sets the Spark conf ``petastorm.spark.converter.parentCacheDirUrl`` to a
    ``file://`` URL of ``cache_dir`` (petastorm reads it from there). The
    DataFrame is repartitioned to at least ``min_row_groups`` partitions, so
    the parquet has at least that many files, each with at least one row
    group. Raises :class:`LoaderError` when fewer row groups come out (e.g. a
    DataFrame with fewer rows than ``min_row_groups``). Call ``.delete()`` on
    the returned converter when done.
    """
    from petastorm.spark import make_spark_converter

    if min_row_groups < 1:
        raise ValueError(f"min_row_groups must be >= 1, got {min_row_groups}")
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    spark.conf.set(PARENT_CACHE_DIR_CONF, _file_url(cache_dir))

    partitions = max(min_row_groups, df.rdd.getNumPartitions())
    converter = make_spark_converter(
        df.repartition(partitions), parquet_row_group_size_bytes=ROW_GROUP_SIZE_BYTES
    )
    # petastorm lists the files in directory order, which differs between two materialisations of the same
    # DataFrame, and reads (and shards) row groups in that order: by name (part-00000, ...), the same
    # DataFrame is read the same way every time.
    converter.file_urls = sorted(converter.file_urls)
    row_groups = count_row_groups(converter.file_urls)
    log.info(
        "petastorm converter: %d rows, %d files, %d row groups at %s",
        len(converter),
        len(converter.file_urls),
        row_groups,
        converter.cache_dir_url,
    )
    if row_groups < min_row_groups:
        converter.delete()
        raise LoaderError(
            f"materialized {row_groups} row groups, need at least {min_row_groups} "
            f"({len(converter)} rows): shards would be empty or uneven"
        )
    return converter


def iterate_shard(
    converter: "SparkDatasetConverter",
    cur_shard: int,
    shard_count: int,
    batch_size: int,
    num_epochs: int | None = 1,
    shuffle_seed: int | None = None,
    workers_count: int = 1,
) -> Iterator[dict[str, Any]]:
    """Yields the batches (dicts of column name -> torch tensor) of one shard.

    Without ``shuffle_seed`` the row order is fixed (row groups in order, no
    shuffling). With it, row groups and rows are shuffled, the same way for
    the same seed. ``num_epochs=None`` reads on forever, but from the second
    pass on in an order that depends on timing: training reads
    :func:`iterate_passes` (and takes a fixed number of steps per epoch on
    every rank).
    Rows are shuffled here, not by petastorm's shuffling queue, which draws
    from numpy's global generator (whatever else used it changes the order);
    with ``workers_count`` > 1 the row groups arrive in the order the threads
    finish, so only ``workers_count=1`` reads the same order every time.
    The reader is closed when the generator is exhausted or closed; callers
    that stop early should close it (``contextlib.closing``).
    """
    if not 0 <= cur_shard < shard_count:
        raise ValueError(f"cur_shard must be in [0, {shard_count}), got {cur_shard}")
    shuffle = shuffle_seed is not None
    with converter.make_torch_dataloader(
        cur_shard=cur_shard,
        shard_count=shard_count,
        batch_size=batch_size,
        num_epochs=num_epochs,
        workers_count=workers_count,
        shuffling_queue_capacity=0,
        shuffle_row_groups=shuffle,
        seed=shuffle_seed,
    ) as dataloader:
        if shuffle:
            yield from shuffled_in_windows(dataloader, batch_size, shuffle_seed)
        else:
            yield from dataloader


def pass_seed(shuffle_seed: int, index: int) -> int:
    """The shuffle seed of pass ``index`` (0, 1, ...) of a reader seeded ``shuffle_seed``: its own, in [0, 2**32)."""
    import numpy as np

    return int(np.random.SeedSequence([shuffle_seed, index]).generate_state(1)[0])


def iterate_passes(
    converter: "SparkDatasetConverter",
    cur_shard: int,
    shard_count: int,
    batch_size: int,
    shuffle_seed: int,
    workers_count: int = 1,
) -> Iterator[dict[str, Any]]:
    """Yields the batches of one shard pass after pass, forever (what training reads): each pass is a fresh
    one-pass reader (:func:`iterate_shard`, ``num_epochs=1``) shuffled with :func:`pass_seed`.

    Not petastorm's own endless reader (``num_epochs=None``): at the start of every pass its ventilator
    shuffles the row groups again each time it finds its queue full (petastorm 0.12.1,
    ``ConcurrentVentilator._ventilate`` shuffles inside its wait loop), so from the second pass on the order
    depended on how fast the training loop took batches, and two trainings of the same data diverged
    (tests/test_training_loader.py reads at two speeds). A pass ends with a smaller batch when the shard's rows
    are not a multiple of ``batch_size``.
    """
    import contextlib
    import itertools

    for index in itertools.count():
        with contextlib.closing(iterate_shard(converter, cur_shard, shard_count, batch_size, num_epochs=1,
                                              shuffle_seed=pass_seed(shuffle_seed, index),
                                              workers_count=workers_count)) as batches:
            yield from batches


# Rows mix within windows of this many consecutive batches (after the row groups were shuffled).
SHUFFLE_WINDOW_BATCHES = 4


def shuffled_in_windows(batches: Iterator[dict[str, Any]], batch_size: int, seed: int,
                        window_batches: int = SHUFFLE_WINDOW_BATCHES) -> Iterator[dict[str, Any]]:
    """The rows of ``batches`` shuffled within windows of ``window_batches`` batches by a generator of their
    own, seeded with ``seed``, and cut again into batches of ``batch_size`` (the last ones may be smaller)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)

    def emit(window: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        rows = {key: torch.cat([torch.as_tensor(b[key]) for b in window]) for key in window[0]}
        order = torch.as_tensor(rng.permutation(len(next(iter(rows.values())))))
        for start in range(0, len(order), batch_size):
            pick = order[start:start + batch_size]
            yield {key: values[pick] for key, values in rows.items()}

    window: list[dict[str, Any]] = []
    for batch in batches:
        window.append(batch)
        if len(window) == window_batches:
            yield from emit(window)
            window = []
    if window:
        yield from emit(window)
