"""Checks that the latest ingest, as bronze.ingest_audit records it, still holds.

Ingest fails on its own when a table's quarantined share passes its threshold
or rows go missing between read and write. This is the independent check that
the nightly pipeline runs before anything reads bronze: it reads the audit
back and compares it with what the warehouse holds *now*, so it also catches
what happened after ingest (a bronze table written by something else, a
replaced quarantine, a table left out of the last ingest, a threshold
tightened since).

For every source table it checks that
- the audit has a row for it, from the latest ingest (same ``ingested_at`` as
  the newest row: a table missing from the last ingest is stale);
- rows read = rows written + rows quarantined, and at least one row was written;
- the quarantined share is within ``quality.max_quarantine_share`` (by table);
- the bronze table's current Delta version is the audited one and it holds
  ``rows_written`` rows;
- bronze.quarantine holds exactly the audited quarantined rows, by reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from pyspark.sql import SparkSession

from promo_roi import delta_io
from promo_roi.bronze import read_audit
from promo_roi.config import AppConfig
from promo_roi.tables import INGEST_AUDIT, INGEST_ORDER, QUARANTINE, SOURCE_TABLES
from promo_roi.validation import InputError

log = logging.getLogger(__name__)


class IngestAuditError(InputError):
    """The latest ingest's audit does not match the warehouse, or shows a failure."""


@dataclass
class TableAudit:
    table: str
    problems: list[str] = field(default_factory=list)
    rows_read: int | None = None
    rows_written: int | None = None
    rows_quarantined: int | None = None
    ingested_at: object = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _quarantine_counts(spark: SparkSession, config: AppConfig) -> dict[str, dict[str, int]] | None:
    if not delta_io.table_exists(spark, QUARANTINE, config.warehouse):
        return None
    counts: dict[str, dict[str, int]] = {}
    grouped = delta_io.read_table(spark, QUARANTINE, config.warehouse).groupBy("source_table", "reason").count()
    for r in grouped.collect():
        counts.setdefault(r["source_table"], {})[r["reason"]] = int(r["count"])
    return counts


def check_table(
    spark: SparkSession,
    config: AppConfig,
    table: str,
    audit: Mapping | None,
    latest: object,
    quarantine: Mapping[str, Mapping[str, int]] | None,
) -> TableAudit:
    result = TableAudit(table)
    if audit is None:
        result.problems.append(f"no row in {INGEST_AUDIT.full_name}: the table was never ingested")
        return result
    read, written, quarantined = audit["rows_read"], audit["rows_written"], audit["rows_quarantined"]
    by_reason = dict(audit["quarantined_by_reason"] or {})
    result.rows_read, result.rows_written, result.rows_quarantined = read, written, quarantined
    result.ingested_at = audit["ingested_at"]
    problems = result.problems
    if audit["ingested_at"] != latest:
        problems.append(f"stale: last ingested at {audit['ingested_at']}, the latest ingest ran at {latest}")
    if None in (read, written, quarantined):
        problems.append(f"incomplete audit: rows read {read}, written {written}, quarantined {quarantined}")
        return result
    if read != written + quarantined:
        problems.append(f"rows read {read:,} != written {written:,} + quarantined {quarantined:,}")
    if sum(by_reason.values()) != quarantined:
        problems.append(f"quarantined {quarantined:,} != the sum of its reasons {by_reason}")
    if written == 0:
        problems.append("no row was written")
    threshold = config.quality.threshold_for(table)
    if read and quarantined / read > threshold:
        problems.append(f"quarantined share {quarantined / read:.2%} is above the {threshold:.2%} threshold {by_reason}")

    spec = SOURCE_TABLES[table]
    if not delta_io.table_exists(spark, spec, config.warehouse):
        problems.append(f"{spec.full_name} does not exist at {delta_io.table_path(config.warehouse, spec)}")
    else:
        version = delta_io.table_version(spark, spec, config.warehouse)
        if version != audit["table_version"]:
            problems.append(
                f"{spec.full_name} is at Delta version {version}, the audited ingest wrote version "
                f"{audit['table_version']}: something wrote to it after ingest")
        stored = delta_io.read_table(spark, spec, config.warehouse).count()
        if stored != written:
            problems.append(f"{spec.full_name} holds {stored:,} rows, the audit says {written:,} were written")
    if quarantine is None:
        problems.append(f"{QUARANTINE.full_name} does not exist")
    else:
        stored_q = dict(quarantine.get(table, {}))
        if stored_q != by_reason:
            problems.append(f"{QUARANTINE.full_name} holds {stored_q or 'no rows'} for it, the audit says {by_reason or 'none'}")
    return result


def check_ingest_audit(
    spark: SparkSession, config: AppConfig, tables: Sequence[str] = INGEST_ORDER
) -> list[TableAudit]:
    """Checks every source table against the latest ingest's audit; raises IngestAuditError naming each failure."""
    audits = read_audit(spark, config)  # a missing audit table: UnpublishedBronzeError (exit 2)
    if not audits:
        raise IngestAuditError(f"{INGEST_AUDIT.full_name} is empty: run jobs/ingest.py first")
    latest = max(a["ingested_at"] for a in audits.values())
    quarantine = _quarantine_counts(spark, config)
    results = [check_table(spark, config, t, audits.get(t), latest, quarantine) for t in tables]
    for r in results:
        if r.ok:
            log.info("ingest audit %s: ok (read %s = written %s + quarantined %s, ingested at %s)",
                     r.table, f"{r.rows_read:,}", f"{r.rows_written:,}", f"{r.rows_quarantined:,}", r.ingested_at)
        else:
            log.error("ingest audit %s: FAILED: %s", r.table, "; ".join(r.problems))
    failed = [r for r in results if not r.ok]
    if failed:
        raise IngestAuditError(
            f"ingest audit failed for {len(failed)} of {len(results)} source table(s): "
            + " | ".join(f"{r.table}: {'; '.join(r.problems)}" for r in failed)
        )
    return results
