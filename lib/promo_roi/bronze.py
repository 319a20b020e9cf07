"""What downstream jobs read of bronze: one published snapshot, never a half-written ingest.

Ingest overwrites the eight source tables one commit at a time and writes
``bronze.ingest_audit`` last, in one commit that records the Delta version it
wrote of each table: the audit is bronze's publication marker, as the
publication log is gold's. Readers (features, training, scoring, backtests)
read every source table *at its audited version* (Delta time travel), so an
ingest killed between two tables, or a write behind ingest's back, changes
nothing they see; the DAG's ``check_quality`` is what reports such a write.
A warehouse with no complete audit is refused (exit 2): run ``jobs/ingest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pyspark.sql import DataFrame, SparkSession

from promo_roi import delta_io
from promo_roi.config import AppConfig
from promo_roi.tables import INGEST_AUDIT, INGEST_ORDER, SOURCE_TABLES
from promo_roi.validation import InputError


class UnpublishedBronzeError(InputError):
    """Bronze has no complete published snapshot (no audit, a table missing from it, or mixed ingests)."""


@dataclass(frozen=True)
class Bronze:
    products: DataFrame
    campaign_descriptions: DataFrame
    transactions: DataFrame
    demographics: DataFrame
    campaigns: DataFrame
    coupons: DataFrame
    coupon_redemptions: DataFrame
    promotions: DataFrame
    # The Delta version each table was read at (source table -> version): the night's lineage.
    versions: Mapping[str, int]


def read_audit(spark: SparkSession, config: AppConfig) -> dict[str, dict[str, Any]]:
    """``bronze.ingest_audit`` as it stands, one row (a dict) per source table; refused when it does not exist."""
    if not delta_io.table_exists(spark, INGEST_AUDIT, config.warehouse):
        raise UnpublishedBronzeError(
            f"{INGEST_AUDIT.full_name} does not exist at {delta_io.table_path(config.warehouse, INGEST_AUDIT)}: "
            "no ingest has published bronze; run jobs/ingest.py first")
    return {r["source_table"]: r.asDict() for r in delta_io.read_table(spark, INGEST_AUDIT, config.warehouse).collect()}


def published_versions(audit: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The Delta version of each source table that the latest complete ingest published (``audit``: read_audit)."""
    missing = [t for t in INGEST_ORDER if t not in audit or audit[t]["table_version"] is None]
    if missing:
        raise UnpublishedBronzeError(
            f"{INGEST_AUDIT.full_name} records no published version of {', '.join(missing)}: "
            "bronze is incomplete; run jobs/ingest.py")
    stamps = sorted({audit[t]["ingested_at"] for t in INGEST_ORDER})
    if len(stamps) > 1:
        raise UnpublishedBronzeError(
            f"{INGEST_AUDIT.full_name} mixes ingests ({', '.join(str(s) for s in stamps)}): bronze is not one "
            "snapshot; run jobs/ingest.py")
    return {t: int(audit[t]["table_version"]) for t in INGEST_ORDER}


def read_bronze(spark: SparkSession, config: AppConfig) -> Bronze:
    """Every source table at the version the latest complete ingest published."""
    versions = published_versions(read_audit(spark, config))
    frames = {}
    for name, spec in SOURCE_TABLES.items():
        if not delta_io.table_exists(spark, spec, config.warehouse):
            raise UnpublishedBronzeError(f"{spec.full_name} does not exist: run jobs/ingest.py first")
        frames[name] = delta_io.read_table_at(spark, spec, config.warehouse, versions[name])
    return Bronze(**frames, versions=versions)
