"""Engines: run a pass over every block and merge the results on the driver.

``_NumpyEngine`` holds the blocks in memory; ``_SparkEngine`` runs the
passes with ``mapInPandas`` over blocks packed and cached by its first
pass. Both offer ``statistics`` (the first pass) and ``aggregate`` (any
later one); ``_Merger`` combines per-block results. The method is described
in this package's README.md.
"""

from __future__ import annotations

import functools
import logging
import pickle
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from promo_roi.observability import stage
from promo_roi.planning.blocks import _Block, _blocks_from_frames, _pack_block, _unpack_block
from promo_roi.planning.passes import _emit_frame, _pass_stats
from promo_roi.planning.paths import _Design
from promo_roi.planning.problem import _bad_values

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


class _Merger:
    """Merges per-block results: sum_* add, max_* take the max, cat_* concatenate."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.cats: dict[str, list[np.ndarray]] = {}

    def add(self, part: Mapping[str, Any]) -> None:
        for key, value in part.items():
            if key.startswith("cat_"):
                self.cats.setdefault(key, []).append(np.asarray(value))
            elif key not in self.sums:
                self.sums[key] = np.asarray(value)
            elif key.startswith("max_"):
                self.sums[key] = np.maximum(self.sums[key], value)
            else:
                self.sums[key] = self.sums[key] + value

    def payload(self) -> bytes:
        """The partial merge, pickled: what one Spark partition sends back to the driver."""
        parts = {**self.sums, **{key: np.concatenate(v) for key, v in self.cats.items()}}
        return pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)

    def result(self) -> dict[str, Any]:
        out = {key[4:] if key.startswith("sum_") else key: value for key, value in self.sums.items()}
        for key, parts in self.cats.items():
            out[key[4:]] = np.concatenate(parts)
        return out


class _NumpyEngine:
    def __init__(self, frame: pd.DataFrame, campaigns: np.ndarray, chunk_households: int) -> None:
        self.campaigns = campaigns
        rows = chunk_households * max(1, len(campaigns))
        slices = (frame.iloc[i : i + rows] for i in range(0, len(frame), rows))
        self.blocks = list(_blocks_from_frames(slices, campaigns, chunk_households, with_rows=True))
        self.households = sum(b.n for b in self.blocks)
        self.passes = 0

    def statistics(self, rate: float) -> dict[str, Any]:
        return self.aggregate("statistics and sample", functools.partial(_pass_stats, rate=rate))

    def aggregate(self, name: str, fn: Callable[[_Block], Mapping[str, Any]]) -> dict[str, Any]:
        with stage(log, f"budget solver: {name}") as report:
            merger = _Merger()
            for block in self.blocks:
                merger.add(fn(block))
            report.rows = self.households
        self.passes += 1
        return merger.result()


class _SparkEngine:
    """Runs the passes with mapInPandas.

    The first pass reads the pairs (repartitioned by household, sorted
    within partitions), checks them, gathers the statistics and the sample,
    and packs each chunk of households into one binary row (numpy buffers).
    Those rows are cached; every later pass unpickles blocks instead of
    converting ten million rows through Arrow and pandas again.
    """

    def __init__(self, pairs: DataFrame, campaigns: np.ndarray, chunk_households: int, rows: int) -> None:
        self.pairs = pairs
        self.campaigns = campaigns
        self.chunk_households = chunk_households
        self.households = rows
        self.passes = 0
        self.packed: DataFrame | None = None
        self.blocks: DataFrame | None = None

    def statistics(self, rate: float) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        campaigns, chunk = self.campaigns, self.chunk_households

        def pack(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            merger = _Merger()

            def checked(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
                for frame in frames:
                    merger.add(_bad_values(frame))
                    yield frame

            for block in _blocks_from_frames(checked(batches), campaigns, chunk, with_rows=False):
                merger.add(_pass_stats(block, rate))
                yield pd.DataFrame({"kind": ["block"], "payload": [_pack_block(block)]})
            yield pd.DataFrame({"kind": ["stats"], "payload": [merger.payload()]})

        with stage(log, "budget solver: check, pack and sample the pairs (spark pass)") as report:
            self.packed = self.pairs.mapInPandas(pack, "kind string, payload binary").persist(
                StorageLevel.MEMORY_AND_DISK
            )
            result = _merge_payloads(self.packed.filter(F.col("kind") == "stats").collect())
            self.blocks = self.packed.filter(F.col("kind") == "block").select("payload")
            report.rows = self.households
        self.passes += 1
        return result

    def release(self) -> None:
        if self.packed is not None:
            self.packed.unpersist()

    def aggregate(self, name: str, fn: Callable[[_Block], Mapping[str, Any]]) -> dict[str, Any]:
        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            merger = _Merger()
            for batch in batches:
                for payload in batch["payload"]:
                    merger.add(fn(_unpack_block(payload)))
            yield pd.DataFrame({"payload": [merger.payload()]})

        with stage(log, f"budget solver: {name} (spark pass)") as report:
            result = _merge_payloads(self.blocks.mapInPandas(run, "payload binary").collect())
            report.rows = self.households
        self.passes += 1
        return result

    def emit(self, design: _Design) -> DataFrame:
        campaigns = self.campaigns

        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                for payload in batch["payload"]:
                    out = _emit_frame(_unpack_block(payload), design, campaigns)
                    if len(out):
                        yield out

        self.passes += 1
        return self.blocks.mapInPandas(run, _SELECTED_SCHEMA)


def _merge_payloads(rows: Iterable[Any]) -> dict[str, Any]:
    """Merges the pickled per-partition results that a Spark pass collected."""
    merger = _Merger()
    for row in rows:
        merger.add(pickle.loads(row["payload"]))
    return merger.result()


_SELECTED_SCHEMA = (
    "household_id long, campaign_id long, value double, cost double, redemptions double, "
    "step_roi double, step_grid long, forced boolean"
)
