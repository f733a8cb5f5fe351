"""The verification's pieces without dbt (orchestration/verify.py; end to end: tests/test_nightly.py
``test_the_verification_finds_a_row_no_nights_test_reads_and_holds_the_nights_until_it_is_fixed``): which as_of it
tests for, the served date, how a passing build supersedes its failures, and its schedule."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from expectations import health
from orchestration.night import VERIFY_SOURCE, supersede_verification
from orchestration.publish import served_as_of
from orchestration.verify import verified_as_of
from orchestration.warehouse import built_as_of, record_built_as_of

DAY = dt.date(2026, 11, 21)


def _serve(root: Path, *as_of: str | None) -> None:
    """A served copy whose ``_publication`` rows are as of ``as_of`` (none: an empty table)."""
    (root / "serving").mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(root / "serving" / "cx.duckdb")) as con:
        con.execute("create table _publication (published_at timestamptz, as_of varchar, table_name varchar, "
                    "row_count bigint)")
        for value in as_of:
            con.execute("insert into _publication values (now(), ?, 'fct_orders', 1)", [value])


def test_served_as_of_reads_the_served_copy(tmp_path: Path) -> None:
    assert served_as_of(tmp_path / "serving") is None  # nothing served
    (tmp_path / "serving").mkdir()
    duckdb.connect(str(tmp_path / "serving" / "cx.duckdb")).close()  # a served file without a publication
    assert served_as_of(tmp_path / "serving") is None
    (tmp_path / "serving" / "cx.duckdb").unlink()
    _serve(tmp_path)
    assert served_as_of(tmp_path / "serving") is None  # no row
    (tmp_path / "serving" / "cx.duckdb").unlink()
    _serve(tmp_path, None)
    assert served_as_of(tmp_path / "serving") is None  # published without a date
    (tmp_path / "serving" / "cx.duckdb").unlink()
    _serve(tmp_path, "2026-11-20", "2026-11-21")
    assert served_as_of(tmp_path / "serving") == DAY


@pytest.mark.parametrize(("recorded", "served", "expected"), [
    ("none", None, None),  # nothing built for a date, nothing served: the project's default
    ("none", "2026-11-20", "2026-11-20"),  # a warehouse built before builds recorded it: the served date
    ("2026-11-21", "2026-11-20", "2026-11-21"),  # the build's, though the served copy is older (a blocked publish)
    (None, "2026-11-20", None),  # `cxw build` without --as-of: the project's default, whatever is served
])
def test_the_verification_tests_the_as_of_the_warehouse_was_built_for(
        tmp_path: Path, recorded: str | None, served: str | None, expected: str | None) -> None:
    if recorded != "none":
        record_built_as_of(tmp_path, None, recorded)
        assert built_as_of(tmp_path, None) == (True, recorded)
    else:
        assert built_as_of(tmp_path, None) == (False, None)
    if served:
        _serve(tmp_path, served)
    assert verified_as_of(tmp_path, None) == expected
    assert built_as_of(tmp_path, "spark") == (False, None)  # per engine


def _record(root: Path, day: dt.date, source: str, *statuses: str) -> None:
    rows = [health.HealthRow(day, "unique", f"model_{i}", status) for i, status in enumerate(statuses)]
    health.write(root, [day], source, rows)


def test_a_passing_build_supersedes_the_verifications_failures_of_its_dates(tmp_path: Path) -> None:
    other = DAY + dt.timedelta(days=1)
    _record(tmp_path, DAY, VERIFY_SOURCE, "pass", "fail", "warn")
    _record(tmp_path, DAY, "dbt", "fail")  # a night's own failure is not the verification's to remove
    _record(tmp_path, other, VERIFY_SOURCE, "pass")
    assert supersede_verification(tmp_path, [DAY, other, DAY - dt.timedelta(days=1)]) == [DAY]
    kept = health.read(tmp_path)
    assert sorted(kept.select("business_date", "source", "asset", "status").rows()) == [
        (DAY, "dbt", "model_0", "fail"), (DAY, VERIFY_SOURCE, "model_0", "pass"),
        (other, VERIFY_SOURCE, "model_0", "pass")]
    assert supersede_verification(tmp_path, [DAY, other]) == []  # nothing left to supersede


def test_the_verification_runs_weekly_on_sunday_morning() -> None:
    from orchestration.definitions import defs, verify_schedule

    assert verify_schedule.cron_schedule == "0 4 * * 0" and verify_schedule.execution_timezone == "Europe/Paris"
    assert verify_schedule.job_name == "verify"
    job = defs.resolve_job_def("verify")
    assert [op.name for op in job.all_node_defs] == ["verify_warehouse"]
    # a writer (it drops audits, writes the health record and serves it): the writer lock and the writers' pool
    assert job.executor_def.name == "cx_writer_executor" and job.all_node_defs[0].pool == "duckdb_writer"
    when = dt.datetime(2026, 11, 22, 4, 0, tzinfo=ZoneInfo("Europe/Paris"))
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    (request,) = verify_schedule.evaluate_tick(context).run_requests
    assert request.run_key == "verify-2026-11-22" and request.partition_key is None
