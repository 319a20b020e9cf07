"""The publication protocol: readers never see half a run, and a run's history is never overwritten.

A scoring run for a run date writes its rows under a new ``run_id``
(:func:`publish`):

1. each published table's ``(run_date, run_id)`` slice is written in one Delta
   transaction (replaceWhere), beside whatever an earlier run of the same date
   left;
2. the run is recorded in ``gold.publication_log`` (merge on run_date) as the
   very last step that matters: what readers see switches from the previous
   run to this one in that one commit (the commit point of the run). The log
   only moves forward: run ids sort by the time the run started
   (:func:`new_run_id`), and the merge replaces the date's entry only with a
   later run's. A run that started earlier than the one the log now holds is
   refused (:class:`SupersededRunError`), so of two runs of one date the one
   that started last is published, whatever order they finish in;
3. rows of the date's runs that started before this one are deleted
   (housekeeping; if it fails, readers are still right and the next run
   deletes them). Rows of a run that started later are never touched: it may
   still be publishing, and the log can no longer move back to an older run.

A run that dies before step 2 leaves readers on the last published run.

The published-run rule, "rows of a published table are visible only when their
``(run_date, run_id)`` is in gold.publication_log", lives here for Python
readers (:func:`published`) and in the analyst views for SQL readers
(:mod:`promo_roi.analyst_views`, which both engines render from one SELECT).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.analyst_views import PUBLISHED_TABLES, create_spark_views
from promo_roi.config import AppConfig
from promo_roi.observability import stage
from promo_roi.tables import PUBLICATION_LOG, TableSpec
from promo_roi.validation import InputError

log = logging.getLogger(__name__)


def published(spark: SparkSession, spec: TableSpec, config: AppConfig) -> DataFrame:
    """What readers see of ``spec``: rows of the runs in the publication log."""
    if not delta_io.table_exists(spark, PUBLICATION_LOG, config.warehouse):
        return delta_io.read_table(spark, spec, config.warehouse).limit(0)
    runs = delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).select("run_date", "run_id")
    return delta_io.read_table(spark, spec, config.warehouse).join(runs, ["run_date", "run_id"])


def published_run(spark: SparkSession, config: AppConfig, run_date: dt.date) -> Any | None:
    """The publication log's row for ``run_date`` (run_id, model_version, ...), or None."""
    if not delta_io.table_exists(spark, PUBLICATION_LOG, config.warehouse):
        return None
    return delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(run_date)).first()


class SupersededRunError(InputError):
    """Refused: a run of the same date that started later was published while this one ran (exit 2, like
    refused input: rerunning publishes again, as the latest run)."""


def new_run_id(now: dt.datetime | None = None) -> str:
    """A scoring run's id: the UTC time it started (to the microsecond), then 12 random hex digits. Ids sort
    by start time; the ``r`` prefix sorts them after the uuid4 hex ids earlier versions wrote."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"r{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}"


def publish(spark: SparkSession, config: AppConfig, run_date: dt.date, run_id: str, model_version: str,
            frames: Mapping[TableSpec, DataFrame]) -> dict[str, int]:
    """Steps 1-3 of the protocol (module docstring); returns the rows written per table."""
    predicate = f"run_date = DATE'{run_date.isoformat()}' AND run_id = '{run_id}'"
    versions, rows = {}, {}
    for spec in PUBLISHED_TABLES:
        with stage(log, f"publish.{spec.name}[{run_date}]") as st:
            versions[spec.full_name] = delta_io.replace_slice(spark, frames[spec], spec, config.warehouse, predicate)
            rows[spec.full_name] = delta_io.slice_rows(spark, spec, config.warehouse, versions[spec.full_name],
                                                       predicate)
            st.rows = rows[spec.full_name]
    with stage(log, f"publish.publication_log[{run_date}]"):
        entry = spark.createDataFrame(
            [(run_date, run_id, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), model_version, versions, rows)],
            PUBLICATION_LOG.struct)
        delta_io.merge_forward(spark, entry, PUBLICATION_LOG, config.warehouse, "run_id")
        logged = published_run(spark, config, run_date)
        if logged.run_id != run_id:
            raise SupersededRunError(
                f"run {run_id} of {run_date} was not published: run {logged.run_id}, which started later, "
                "was published while it ran (its rows stay until that run's or the next run's housekeeping)")
    with stage(log, f"publish.housekeeping[{run_date}]"):
        for spec in PUBLISHED_TABLES:
            delta_io.delete_where(spark, spec, config.warehouse,
                                  (F.col("run_date") == F.lit(run_date)) & (F.col("run_id") < run_id))
        create_spark_views(spark, config)
    return rows
