"""Household blocks: a chunk of complete households with their pairs laid out [campaign, household].

Every pass works on blocks. They are built from pairs sorted by
(household_id, campaign_id), in numpy from the input frame and on Spark
from Arrow batches, where each block is packed into one binary row that
stays cached. The method is described in this package's README.md.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd


@dataclass
class _Block:
    household: np.ndarray  # [n] int64
    value: np.ndarray  # [C, n], 0 where no pair
    cost: np.ndarray  # [C, n], 0 where no pair
    red: np.ndarray  # [C, n]
    valid: np.ndarray  # [C, n] bool
    row: np.ndarray | None  # [C, n] input row (numpy path), -1 where no pair
    duplicates: int = 0
    profit: np.ndarray = field(init=False)  # value - cost, 0 where no pair
    choice_profit: np.ndarray = field(init=False)  # value - cost, -inf where no pair

    def __post_init__(self) -> None:
        self.profit = np.where(self.valid, self.value - self.cost, 0.0)
        self.choice_profit = np.where(self.valid, self.profit, -np.inf)

    @property
    def n(self) -> int:
        return len(self.household)


def _build_block(frame: pd.DataFrame, campaigns: np.ndarray, with_rows: bool) -> _Block:
    """Dense block from pairs sorted by (household_id, campaign_id)."""
    household = frame["household_id"].to_numpy(np.int64)
    campaign = frame["campaign_id"].to_numpy(np.int64)
    value = frame["value"].to_numpy(np.float64)
    cost = frame["cost"].to_numpy(np.float64)
    red = frame["redemptions"].to_numpy(np.float64)
    rows = frame["_row"].to_numpy(np.int64) if with_rows else None
    new = np.ones(len(household), bool)
    new[1:] = household[1:] != household[:-1]
    duplicate = np.zeros(len(household), bool)
    duplicate[1:] = ~new[1:] & (campaign[1:] == campaign[:-1])
    n_duplicates = int(duplicate.sum())
    if n_duplicates:
        keep = ~duplicate
        household, campaign, value, cost, red, new = (a[keep] for a in (household, campaign, value, cost, red, new))
        rows = rows[keep] if rows is not None else None
    index = np.cumsum(new) - 1
    n = int(index[-1]) + 1 if len(index) else 0
    col = np.searchsorted(campaigns, campaign)
    shape = (len(campaigns), n)
    dense = {name: np.zeros(shape) for name in ("value", "cost", "red")}
    dense["value"][col, index] = value
    dense["cost"][col, index] = cost
    dense["red"][col, index] = red
    valid = np.zeros(shape, bool)
    valid[col, index] = True
    row = None
    if rows is not None:
        row = np.full(shape, -1, np.int64)
        row[col, index] = rows
    return _Block(household[new], dense["value"], dense["cost"], dense["red"], valid, row, n_duplicates)


def _blocks_from_frames(
    frames: Iterable[pd.DataFrame], campaigns: np.ndarray, chunk_households: int, with_rows: bool
) -> Iterator[_Block]:
    """Blocks of complete households from a stream of sorted frames (Arrow batches).

    A household may straddle two batches, so a chunk is cut only after a
    household that is followed by another one; the rest waits for more rows.
    """
    chunk_rows = chunk_households * max(1, len(campaigns))
    pending: list[pd.DataFrame] = []
    pending_rows = 0
    for frame in frames:
        if len(frame) == 0:
            continue
        pending.append(frame)
        pending_rows += len(frame)
        if pending_rows < chunk_rows:
            continue
        data = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0].reset_index(drop=True)
        household = data["household_id"].to_numpy()
        start = 0
        while len(data) - start >= chunk_rows:
            end = int(np.searchsorted(household, household[start + chunk_rows - 1], side="right"))
            if end >= len(data):
                break
            yield _build_block(data.iloc[start:end], campaigns, with_rows)
            start = end
        rest = data.iloc[start:].reset_index(drop=True)
        pending, pending_rows = [rest], len(rest)
    if pending_rows:
        data = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        yield _build_block(data, campaigns, with_rows)


def _block_from_pairs(arrays: Mapping[str, np.ndarray], campaigns: np.ndarray) -> _Block:
    """One block from flat pair arrays (the sample gathered on the driver)."""
    frame = pd.DataFrame(
        {
            "household_id": arrays["household_id"],
            "campaign_id": campaigns[arrays["campaign"]] if len(campaigns) else arrays["campaign"],
            "value": arrays["value"],
            "cost": arrays["cost"],
            "redemptions": arrays["redemptions"],
        }
    ).sort_values(["household_id", "campaign_id"], kind="stable")
    return _build_block(frame, campaigns, with_rows=False)


def _pack_block(block: _Block) -> bytes:
    """A block as bytes: the only thing Spark moves and caches after the first pass."""
    arrays = (block.household, block.value, block.cost, block.red, block.valid)
    return pickle.dumps((arrays, block.duplicates), protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_block(payload: bytes) -> _Block:
    (household, value, cost, red, valid), duplicates = pickle.loads(payload)
    return _Block(household, value, cost, red, valid, None, duplicates)
