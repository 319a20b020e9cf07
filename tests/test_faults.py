"""Fault injection: a job that dies between two of its Delta commits, and two runs of one date at once.

Every Delta commit goes through ``promo_roi.delta_io``, which calls its
``BEFORE_COMMIT`` hooks first. A hook that raises at the n-th commit of a run
leaves exactly what a kill between commits n-1 and n leaves (a commit itself
is atomic). Each test plays every n, then checks what readers see: one
published run per date with all of its rows, nothing of another date
touched, and a clean rerun that ends with only its own rows. The counts each
test checks are tallied into ``reliability.json`` under pytest's temp root
(docs/reliability.md is made from it).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter

import pytest

from conftest import InjectedFault, before_commit, fail_at, publication_frames, runs_stored, runs_visible
from promo_roi.analyst_views import PUBLISHED_TABLES
from promo_roi.publication import SupersededRunError, new_run_id, publish, published_run
from promo_roi.tables import INGEST_AUDIT, SOURCE_TABLES

# Whole publications and ingests, many times over: left out of `make test-fast`, in `make test`.
pytestmark = pytest.mark.e2e

RUN_DATE = dt.date(2017, 7, 1)
OTHER_DATE = dt.date(2017, 6, 1)
TALLY: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def tally(tmp_path_factory):
    """Writes what this module checked to reliability.json (docs/reliability.md)."""
    yield
    out = tmp_path_factory.getbasetemp() / "reliability.json"
    out.write_text(json.dumps(dict(TALLY), indent=2, sort_keys=True))
    print(f"\nreliability tally ({out}): {dict(TALLY)}")


def _one_whole_run(visible: dict[str, Counter], rows: int) -> str:
    """The one run readers see, with all of its rows in every table (else the assertion says what is wrong)."""
    runs = {run for counts in visible.values() for run in counts}
    assert len(runs) == 1, f"readers see {len(runs)} runs: {visible}"
    run = runs.pop()
    assert all(counts == Counter({run: rows}) for counts in visible.values()), visible
    return run


def test_a_publication_killed_before_each_of_its_commits_loses_nothing(spark, config_for):
    """Run A is published; then run k dies before its k-th commit, for every k. Readers always see one whole
    run (A's until the log names run k, run k's after), the other date never changes, and a clean rerun
    leaves only its own rows."""
    config = config_for("faults_publication")
    other_run = new_run_id()
    publish(spark, config, OTHER_DATE, other_run, "1", publication_frames(spark, OTHER_DATE, other_run, rows=3))
    other = runs_visible(spark, config, OTHER_DATE)
    first = new_run_id()
    with fail_at(0) as commits:  # never fails: counts a whole publication's commits
        publish(spark, config, RUN_DATE, first, "1", publication_frames(spark, RUN_DATE, first))
    assert len(commits) == 2 * len(PUBLISHED_TABLES) + 1  # rows, the log, housekeeping
    log_commit = 1 + [table for _, table in commits].index("gold.publication_log")
    expected = first
    for k in range(1, len(commits) + 1):
        run = new_run_id()
        with pytest.raises(InjectedFault), fail_at(k):
            publish(spark, config, RUN_DATE, run, "1", publication_frames(spark, RUN_DATE, run))
        if k > log_commit:
            expected = run  # the log named it before the fault: its housekeeping is what was cut short
        assert _one_whole_run(runs_visible(spark, config, RUN_DATE), rows=2) == expected, f"fault at commit {k}"
        TALLY["faults injected"] += 1
    final = new_run_id()
    publish(spark, config, RUN_DATE, final, "1", publication_frames(spark, RUN_DATE, final))
    assert _one_whole_run(runs_visible(spark, config, RUN_DATE), rows=2) == final
    assert all(runs == {final} for runs in runs_stored(spark, config, RUN_DATE).values())
    assert runs_visible(spark, config, OTHER_DATE) == other
    TALLY["published runs lost"] += 0
    TALLY["rows lost"] += 0


def test_two_publications_of_one_date_at_once_leave_one_whole_run(spark, config_for):
    """Two runs of one date publish at the same time, twice over: whoever wins, readers see one run with all
    of its rows; the other is refused or superseded, never mixed in."""
    config = config_for("faults_concurrent")
    for _round in range(2):
        runs = sorted(new_run_id() for _ in range(2))
        outcomes: dict[str, str] = {}
        barrier = threading.Barrier(2)

        def run_one(run_id: str) -> None:
            frames = publication_frames(spark, RUN_DATE, run_id)
            barrier.wait()
            try:
                publish(spark, config, RUN_DATE, run_id, "1", frames)
                outcomes[run_id] = "published"
            except SupersededRunError:
                outcomes[run_id] = "superseded"
            except Exception as exc:  # a Delta write conflict: the run failed, nothing of it is visible
                outcomes[run_id] = f"failed: {type(exc).__name__}"

        threads = [threading.Thread(target=run_one, args=(r,)) for r in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        visible = _one_whole_run(runs_visible(spark, config, RUN_DATE), rows=2)
        assert outcomes[visible] == "published", outcomes
        assert published_run(spark, config, RUN_DATE).run_id == visible
        TALLY["concurrent runs"] += 2


def test_an_ingest_killed_before_its_audit_leaves_downstream_on_the_last_snapshot(
        spark, ingested, copy_warehouse, fixture_copy):
    """An ingest of a changed source dies after rewriting all eight bronze tables, before its audit (the
    marker): features, training and scoring still read the last complete ingest; check_quality names the
    changed tables; the rerun publishes the new snapshot."""
    from promo_roi.bronze import read_bronze
    from promo_roi.ingest import run_ingest
    from promo_roi.ingest_checks import IngestAuditError, check_ingest_audit

    config, results = ingested
    config = copy_warehouse(config, "faults_ingest")
    source = fixture_copy("faults_ingest")
    tx = source.read("transactions")
    source.write("transactions", tx.slice(0, tx.num_rows - 100))  # 100 lines fewer than the last export

    def transactions_seen() -> int:
        return read_bronze(spark, config).transactions.count()

    before = transactions_seen()
    assert before == results["transactions"].rows_written
    audit_commit = len(SOURCE_TABLES) + 2  # eight tables, the quarantine, then the audit
    with pytest.raises(InjectedFault, match=f"commit {audit_commit}: merge {INGEST_AUDIT.full_name}"), \
            fail_at(audit_commit) as commits:
        run_ingest(spark, config, str(source))
    assert len(commits) == audit_commit
    assert transactions_seen() == before
    with pytest.raises(IngestAuditError, match="transactions is at Delta version"):
        check_ingest_audit(spark, config)
    TALLY["faults injected"] += 1
    rerun = run_ingest(spark, config, str(source))
    assert transactions_seen() == rerun["transactions"].rows_written < before
    check_ingest_audit(spark, config)
    TALLY["rows lost"] += 0


def test_an_ingest_overtaken_by_another_is_refused_and_readers_stay_on_one_whole_snapshot(
        spark, ingested, copy_warehouse, fixture_copy):
    """Ingest A (the fixture again) stops before its fourth commit, after rewriting products, campaign
    descriptions and transactions; ingest B (100 transaction lines fewer) runs whole meanwhile and publishes.
    Readers see B's snapshot. A then goes on, overwrites the other tables, and is refused before its audit,
    naming the audit's versions: readers still see B's snapshot whole, and check_quality names the tables A
    changed since."""
    from promo_roi.bronze import read_bronze
    from promo_roi.ingest import ConcurrentIngestError, run_ingest
    from promo_roi.ingest_checks import IngestAuditError, check_ingest_audit

    config, results = ingested
    config = copy_warehouse(config, "faults_ingest_race")
    source_a = fixture_copy("faults_ingest_race_a")
    source_b = fixture_copy("faults_ingest_race_b")
    tx = source_b.read("transactions")
    source_b.write("transactions", tx.slice(0, tx.num_rows - 100))
    paused, resume = threading.Event(), threading.Event()
    commits_a: list[str] = []
    outcome: dict[str, BaseException | str] = {}

    def pause_a_before_commit_4(operation: str, table: str) -> None:
        if threading.current_thread().name == "ingest-a":
            commits_a.append(table)
            if len(commits_a) == 4:
                paused.set()
                assert resume.wait(600), "ingest B did not finish"

    def ingest_a() -> None:
        try:
            run_ingest(spark, config, str(source_a))
            outcome["a"] = "published"
        except BaseException as exc:  # noqa: BLE001 - the test reads what stopped it
            outcome["a"] = exc

    with before_commit(pause_a_before_commit_4):
        thread = threading.Thread(target=ingest_a, name="ingest-a")
        thread.start()
        try:
            assert paused.wait(600), f"ingest A stopped early: {outcome}"
            assert commits_a == ["bronze.products", "bronze.campaign_descriptions", "bronze.transactions",
                                 "bronze.demographics"]
            b = run_ingest(spark, config, str(source_b))
            b_rows = b["transactions"].rows_written
            assert b_rows == results["transactions"].rows_written - 100
            assert read_bronze(spark, config).transactions.count() == b_rows
            check_ingest_audit(spark, config)  # B rewrote every table A had written: bronze is B's
        finally:
            resume.set()
            thread.join(600)
    assert isinstance(outcome["a"], ConcurrentIngestError), outcome
    assert "another ingest published bronze while this one ran" in str(outcome["a"])
    assert len(commits_a) == len(SOURCE_TABLES) + 1  # its eight tables and the quarantine; no audit
    assert read_bronze(spark, config).transactions.count() == b_rows
    with pytest.raises(IngestAuditError) as drift:
        check_ingest_audit(spark, config)
    changed_since = [t for t in SOURCE_TABLES if f"{t}: " in str(drift.value)]
    assert changed_since == ["demographics", "campaigns", "coupons", "coupon_redemptions", "promotions"], drift.value
    TALLY["concurrent runs"] += 2
    TALLY["rows lost"] += 0
