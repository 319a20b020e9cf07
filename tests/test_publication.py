"""The publication protocol under two runs of one date (promo_roi.publication), on tiny inline frames.

Each published table gets one row per run, keyed by (run_date, run_id); the
interleavings of two runs are played step by step: one run's rows written
while the other publishes, the log asked to move back to an older run.
"""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import publication_frames, runs_stored, runs_visible
from promo_roi import delta_io
from promo_roi.publication import SupersededRunError, new_run_id, publish, published_run
from promo_roi.validation import InputError

# Each test publishes several whole runs (about 40 s): in `make test`, left out of `make test-fast`.
pytestmark = pytest.mark.e2e

RUN_DATE = dt.date(2017, 7, 1)
EARLIER = new_run_id(dt.datetime(2026, 12, 2, 3, 0, 0, 1, tzinfo=dt.timezone.utc))
LATER = new_run_id(dt.datetime(2026, 12, 2, 3, 0, 0, 2, tzinfo=dt.timezone.utc))


def _write_rows_only(spark, config, run_id: str) -> None:
    """Step 1 of a run that is still publishing: its rows are in, the log does not name it yet."""
    predicate = f"run_date = DATE'{RUN_DATE.isoformat()}' AND run_id = '{run_id}'"
    for spec, frame in publication_frames(spark, RUN_DATE, run_id).items():
        delta_io.replace_slice(spark, frame, spec, config.warehouse, predicate)


def test_run_ids_sort_by_start_time_and_after_older_ids():
    assert EARLIER < LATER
    assert EARLIER.startswith("r20261202T030000000001-") and len(EARLIER) == 1 + 21 + 1 + 12
    assert new_run_id() > "f" * 32  # any uuid4().hex written before run ids sorted by time


def test_housekeeping_keeps_the_rows_of_a_later_run_still_publishing(spark, config_for):
    """Two scorings of one date: the later-started one has written its rows when the earlier one publishes.
    The earlier one's housekeeping must not delete them (they were lost: the log then named a run with no
    rows); the later one then publishes and clears the earlier one."""
    config = config_for("publication_race")
    _write_rows_only(spark, config, LATER)
    publish(spark, config, RUN_DATE, EARLIER, "1", publication_frames(spark, RUN_DATE, EARLIER))
    assert published_run(spark, config, RUN_DATE).run_id == EARLIER
    assert all(runs == {EARLIER, LATER} for runs in runs_stored(spark, config, RUN_DATE).values())
    publish(spark, config, RUN_DATE, LATER, "1", publication_frames(spark, RUN_DATE, LATER))
    assert published_run(spark, config, RUN_DATE).run_id == LATER
    assert all(runs == {LATER} for runs in runs_stored(spark, config, RUN_DATE).values())
    assert all(set(runs) == {LATER} for runs in runs_visible(spark, config, RUN_DATE).values())


def test_an_earlier_run_finishing_last_is_refused_and_changes_nothing_readers_see(spark, config_for):
    config = config_for("publication_superseded")
    publish(spark, config, RUN_DATE, LATER, "2", publication_frames(spark, RUN_DATE, LATER))
    with pytest.raises(SupersededRunError) as refused:
        publish(spark, config, RUN_DATE, EARLIER, "1", publication_frames(spark, RUN_DATE, EARLIER))
    assert isinstance(refused.value, InputError)  # the job exits 2 with this message
    assert f"run {EARLIER} of {RUN_DATE} was not published: run {LATER}, which started later" in str(refused.value)
    logged = published_run(spark, config, RUN_DATE)
    assert (logged.run_id, logged.model_version) == (LATER, "2")
    assert all(set(runs) == {LATER} for runs in runs_visible(spark, config, RUN_DATE).values())
    # The refused run's rows wait for the next housekeeping; a new run clears both.
    assert all(runs == {EARLIER, LATER} for runs in runs_stored(spark, config, RUN_DATE).values())
    rerun = new_run_id()
    publish(spark, config, RUN_DATE, rerun, "2", publication_frames(spark, RUN_DATE, rerun))
    assert all(runs == {rerun} for runs in runs_stored(spark, config, RUN_DATE).values())


def test_the_analysts_views_follow_the_warehouse_published_last(spark, config_for):
    """The catalog's views are created once per session and statement, and again when the statement changes:
    after each of three publications (to warehouse A, B, then A again) they show that publication's run."""
    first, second = config_for("views_a"), config_for("views_b")
    for config in (first, second, first):
        run_id = new_run_id()
        publish(spark, config, RUN_DATE, run_id, "1", publication_frames(spark, RUN_DATE, run_id))
        shown = {r.run_id for r in spark.table("gold.campaign_roi_forecast_published").select("run_id").collect()}
        assert shown == {run_id}
