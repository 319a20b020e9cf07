"""The generator's only file I/O: read a source directory, write a benchmark directory atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from promo_roi.config import SourceConfig
from promo_roi.observability import stage
from promo_roi.synthetic.generate import GENERATED_TABLES, Simulation, simulate
from promo_roi.synthetic.scenarios import Scenario
from promo_roi.tables import INGEST_ORDER, SOURCE_TABLES
from promo_roi.validation import InputError, MissingColumnError, MissingTableError

log = logging.getLogger(__name__)

GENERATOR = "promo_roi.synthetic"
GENERATOR_VERSION = "1.0.0"
MANIFEST = "scenario.json"
TRUTH_FILES = ("truth_household_campaign", "truth_campaign")
# Tables the generator never changes: copied byte for byte.
COPIED_TABLES = tuple(t for t in INGEST_ORDER if t not in GENERATED_TABLES)
# The generator needs these in memory; promotions (20.9M rows) is only copied.
LOADED_TABLES = tuple(t for t in INGEST_ORDER if t != "promotions")


class OutputDirError(InputError):
    """--out holds something that is not a previous output of this generator."""


def source_file(source_dir: str | Path, table: str) -> Path:
    return Path(source_dir) / f"{table}.parquet"


def read_source(source_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Checks every source table exists with its contract's columns; loads all but promotions."""
    tables: dict[str, pd.DataFrame] = {}
    for table in INGEST_ORDER:
        path = source_file(source_dir, table)
        if not path.is_file():
            raise MissingTableError(f"source table {table!r} not found: expected {path}")
        names = set(pq.read_schema(path).names)
        missing = [c for c in SOURCE_TABLES[table].columns if c not in names]
        if missing:
            raise MissingColumnError(f"source table {table}: missing column(s) {', '.join(missing)} in {path}")
        if table in LOADED_TABLES:
            tables[table] = pq.read_table(path, columns=SOURCE_TABLES[table].columns).to_pandas()
    return tables


def is_generator_output(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def check_out_dir(out: Path) -> None:
    """--out may be missing, empty, or a previous output of this generator (it is replaced)."""
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not is_generator_output(out):
        raise OutputDirError(f"--out {out} is not empty and holds no {MANIFEST} written by {GENERATOR}; "
                             "refusing to replace it")


def write_parquet(frame: pd.DataFrame, path: Path, schema: pa.Schema | None = None) -> int:
    """Timestamps as INT96 like the published files (Spark cannot read INT64 nanoseconds)."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    pq.write_table(table, path, use_deprecated_int96_timestamps=True, compression="snappy")
    return table.num_rows


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_tables(sim: Simulation, source_dir: Path, tmp: Path) -> dict[str, int]:
    rows: dict[str, int] = {}
    for table in GENERATED_TABLES:
        schema = pq.read_schema(source_file(source_dir, table)).remove_metadata()
        frame = sim.tables[table][schema.names]
        rows[table] = write_parquet(frame, tmp / f"{table}.parquet", schema)
    for table in COPIED_TABLES:
        # A copy, not a hard link: writing to the output in place must never reach the source.
        shutil.copyfile(source_file(source_dir, table), tmp / f"{table}.parquet")
        rows[table] = pq.ParquetFile(tmp / f"{table}.parquet").metadata.num_rows
    rows["truth_household_campaign"] = write_parquet(sim.truth_household_campaign,
                                                     tmp / "truth_household_campaign.parquet")
    rows["truth_campaign"] = write_parquet(sim.truth_campaign, tmp / "truth_campaign.parquet")
    return rows


def manifest(scenario: Scenario, calendar: SourceConfig, source_dir: Path, rows: Mapping[str, int],
             stats: Mapping[str, int]) -> dict:
    """scenario.json: what made the output (no path, no clock: reruns give the same bytes)."""
    return {
        "generator": GENERATOR, "generator_version": GENERATOR_VERSION,
        "scenario": scenario.as_dict(), "seed": scenario.seed,
        "calendar": {"data_start": calendar.data_start.isoformat(), "data_end": calendar.data_end.isoformat(),
                     "first_week": calendar.first_week, "last_week": calendar.last_week,
                     "week_one_end": calendar.week_one_end.isoformat()},
        "source_sha256": {t: sha256(source_file(source_dir, t)) for t in INGEST_ORDER},
        "rows": dict(sorted(rows.items())),
        "stats": {k: int(v) for k, v in sorted(stats.items())},
    }


def write_output(sim: Simulation, scenario: Scenario, calendar: SourceConfig, source_dir: str | Path,
                 out_dir: str | Path) -> dict:
    """Builds the output in a temporary sibling directory, then renames it into place."""
    source, out = Path(source_dir), Path(out_dir).resolve()
    check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        rows = _write_tables(sim, source, tmp)
        info = manifest(scenario, calendar, source, rows, sim.stats)
        (tmp / MANIFEST).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return info


def generate_benchmark(source_dir: str | Path, out_dir: str | Path, scenario: Scenario,
                       calendar: SourceConfig) -> dict:
    """Reads the source, simulates the scenario, writes the benchmark; returns scenario.json's content."""
    check_out_dir(Path(out_dir).resolve())
    with stage(log, f"simulate.read[{source_dir}]") as st:
        tables = read_source(source_dir)
        st.rows = sum(len(t) for t in tables.values())
    sim = simulate(tables, scenario, calendar)
    with stage(log, f"simulate.write[{out_dir}]") as st:
        info = write_output(sim, scenario, calendar, source_dir, out_dir)
        st.rows = sum(info["rows"].values())
    return info
