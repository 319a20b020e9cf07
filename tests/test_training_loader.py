"""The petastorm loader: every training row exactly once per epoch across shards."""

from __future__ import annotations

from collections import Counter

import pytest
from pyspark.sql import functions as F

from promo_roi.training.loader import (
    LoaderError,
    count_row_groups,
    iterate_shard,
    make_converter,
)

N_ROWS = 600
MIN_ROW_GROUPS = 4
BATCH_SIZE = 64


@pytest.fixture(scope="module")
def converter(spark, tmp_path_factory):
    df = spark.range(N_ROWS).select(
        F.col("id").cast("int").alias("row_id"),
        (F.col("id") * 0.5).cast("double").alias("feature"),
    )
    conv = make_converter(spark, df, str(tmp_path_factory.mktemp("petastorm_cache")), MIN_ROW_GROUPS)
    yield conv
    conv.delete()


def _read_epoch(conv, cur_shard: int, shard_count: int) -> tuple[list[int], int]:
    row_ids: list[int] = []
    batches = 0
    for batch in iterate_shard(conv, cur_shard, shard_count, batch_size=BATCH_SIZE, num_epochs=1):
        assert set(batch) >= {"row_id", "feature"}
        assert len(batch["row_id"]) == len(batch["feature"])
        row_ids.extend(int(x) for x in batch["row_id"].tolist())
        batches += 1
    return row_ids, batches


def test_converter_has_enough_row_groups(converter):
    assert len(converter) == N_ROWS
    assert count_row_groups(converter.file_urls) >= MIN_ROW_GROUPS


def test_two_shards_cover_every_row_exactly_once(converter):
    shard0, batches0 = _read_epoch(converter, 0, 2)
    shard1, batches1 = _read_epoch(converter, 1, 2)
    assert batches0 >= 1 and batches1 >= 1
    counts = Counter(shard0 + shard1)
    duplicates = {k: v for k, v in counts.items() if v > 1}
    assert not duplicates
    assert set(counts) == set(range(N_ROWS))
    assert len(shard0) + len(shard1) == N_ROWS


def test_single_shard_epoch_yields_every_row(converter):
    row_ids, batches = _read_epoch(converter, 0, 1)
    assert batches >= 1
    assert len(row_ids) == N_ROWS
    assert sorted(row_ids) == list(range(N_ROWS))


def test_too_few_rows_for_row_groups_is_refused(spark, tmp_path):
    df = spark.range(2).select(F.col("id").cast("int").alias("row_id"))
    with pytest.raises(LoaderError, match="row groups"):
        make_converter(spark, df, str(tmp_path / "cache"), min_row_groups=4)
