"""Crash at any point: the nightly run killed with SIGKILL, then the next run (docs/reliability.md).

A company has night one published. Night two is run as an operator runs it (`cxw nightly`, its own
process, the project's Dagster instance with the ``duckdb_writer`` pool of one slot) and killed at
a named point (ingestion/faults.py) or after a random delay. The next `cxw nightly` of the same
night must then finish on its own (no hang on the dead run's slot), say what it cleaned up, and
leave exactly what an uninterrupted night two leaves: the same rows in every served table, Parquet
file, warehouse mart, raw and quarantine file, with nothing half-written anywhere.

``make test`` runs the hang of issue 12 on the first night (killed mid-build, then the next run of
that night, compared with the uninterrupted night every scenario starts from: one night fewer than
a night-two scenario); ``make reliability`` runs every point on night two, the random timings and
SIGTERM.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from ingestion.faults import POINTS
from tests.reliability import conftest
from tests.reliability.harness import (
    NIGHT_ONE,
    NIGHT_TWO,
    ROOT,
    Site,
    contents,
    cxw,
    differing,
    digest,
    leftovers,
    new_site,
    rows_lost,
    start_cxw,
)

CATEGORY = "crash"  # the section of RELIABILITY.md
record = functools.partial(conftest.record, category=CATEGORY)
NOT_IN_A_GREEN_NIGHT = {"publish_health.before_swap", "alert.before_record", "alert.before_webhook"}
NIGHTLY_POINTS = sorted(set(POINTS) - NOT_IN_A_GREEN_NIGHT)
_RNG = random.Random(12)
RANDOM_DELAYS = sorted(round(_RNG.uniform(4, 60), 1) for _ in range(3))  # seconds after the start


def _next_night_recovers(site: Site, reference: dict, scenario: str, killed_at: str) -> str:
    t0 = time.monotonic()
    again = cxw(site, "nightly", "--date", NIGHT_TWO.isoformat())
    seconds = time.monotonic() - t0
    got = contents(site) if again.returncode == 0 else {}
    left = leftovers(site)
    lost = rows_lost(reference, got)
    equal = again.returncode == 0 and digest(got) == digest(reference)
    record(scenario=scenario, killed_at=killed_at, next_run_ok=again.returncode == 0, equal=equal,
           rows_lost=lost, leftovers=len(left), next_run_s=round(seconds, 1),
           cleaned=[line for line in again.stderr.splitlines() if line.startswith(("recovered", "freed", "removed"))])
    assert again.returncode == 0, again.stdout + again.stderr
    assert not left, left
    assert lost == 0
    diff = differing(reference, got)
    assert not diff, diff
    return again.stderr


def test_the_hang_of_issue_12_killed_mid_build_then_the_same_night_again(night_one: Site, tmp_path: Path) -> None:
    """`make test`'s sample: a company's first night killed with SIGKILL while dbt builds (the run holds
    the only `duckdb_writer` slot), then the same night again: it names and frees the dead run, does
    not hang, and leaves exactly what the uninterrupted first night (``night_one``) left. Not a row of
    RELIABILITY.md: `make reliability` runs the same point on night two, with the other points."""
    site = new_site(tmp_path)  # the same company as night_one's (same generator settings and seed)
    killed = cxw(site, "nightly", "--date", NIGHT_ONE.isoformat(), crash_at="dbt.mid_build")
    assert killed.returncode == -signal.SIGKILL, f"dbt.mid_build was not reached: {killed.stdout}{killed.stderr}"
    again = cxw(site, "nightly", "--date", NIGHT_ONE.isoformat())
    assert again.returncode == 0, again.stdout + again.stderr
    assert "recovered run" in again.stderr and "marked failed and its pool slots freed" in again.stderr, again.stderr
    assert not leftovers(site), leftovers(site)
    reference, got = contents(night_one), contents(site)
    assert rows_lost(reference, got) == 0
    diff = differing(reference, got)
    assert not diff, diff


@pytest.mark.reliability
@pytest.mark.reliability_full
@pytest.mark.parametrize("point", NIGHTLY_POINTS)
def test_killed_at_a_named_point_then_the_next_night_serves_the_same(
        point: str, night_one: Site, reference: dict, tmp_path: Path) -> None:
    site = night_one.copy(tmp_path)
    killed = cxw(site, "nightly", "--date", NIGHT_TWO.isoformat(), crash_at=point)
    assert killed.returncode == -signal.SIGKILL, f"{point} was not reached: {killed.stdout}{killed.stderr}"
    said = _next_night_recovers(site, reference, f"kill -9 at {point}", point)
    # the dead run is named, marked failed and its pool slot freed, in one line
    assert "recovered run" in said and "marked failed and its pool slots freed" in said, said


@pytest.mark.reliability
@pytest.mark.reliability_full
@pytest.mark.parametrize("delay", RANDOM_DELAYS, ids=[f"{d:.0f}s" for d in RANDOM_DELAYS])
def test_killed_after_a_random_delay(delay: float, night_one: Site, reference: dict, tmp_path: Path) -> None:
    site = night_one.copy(tmp_path)
    proc = start_cxw(site, "nightly", "--date", NIGHT_TWO.isoformat())
    try:
        proc.wait(timeout=delay)
        finished = True
    except subprocess.TimeoutExpired:
        finished = False
    if not finished:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    _next_night_recovers(site, reference, f"kill -9 after {delay:.0f} s" + (" (run had finished)" if finished else ""),
                         f"{delay:.1f} s")


def _dbt_child_running(pid: int) -> bool:
    """A dbt process whose parent is ``pid`` (dagster-dbt runs dbt as a subprocess)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"dbt" in cmd:
            return True
    return False


@pytest.mark.reliability
@pytest.mark.reliability_full
@pytest.mark.parametrize("then", ["stop", "next_night"])
def test_sigterm_stops_the_run_promptly(then: str, night_one: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        request: pytest.FixtureRequest) -> None:
    """SIGTERM while dbt builds: `cxw` exits within seconds, its run is failed (not left STARTED), its
    pool slot free, nothing half-written; with ``next_night`` (make reliability), the next night
    serves what an uninterrupted one serves."""
    from dagster import DagsterInstance
    from dagster._core.storage.dagster_run import DagsterRunStatus

    site = night_one.copy(tmp_path)
    proc = start_cxw(site, "nightly", "--date", NIGHT_TWO.isoformat())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not _dbt_child_running(proc.pid):
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before dbt started"
    time.sleep(2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    stopped_in = time.monotonic() - t0
    assert proc.returncode != 0
    assert stopped_in < 60, f"cxw took {stopped_in:.0f} s to stop on SIGTERM"
    monkeypatch.setenv("DAGSTER_HOME", str(site.home))
    with DagsterInstance.get() as instance:
        statuses = [r.status for r in instance.get_runs()]
        storage = instance.event_log_storage
        held = [s for k in storage.get_concurrency_keys() for s in storage.get_concurrency_info(k).claimed_slots]
    left = leftovers(site)
    if then == "stop":
        record(scenario="SIGTERM while dbt builds", killed_at=f"stopped in {stopped_in:.1f} s", next_run_ok=None,
               equal=None, rows_lost=0, leftovers=len(left), next_run_s=None, cleaned=[])
    assert DagsterRunStatus.STARTED not in statuses, statuses
    assert not held, held
    assert not left, left
    if then == "next_night":
        reference = request.getfixturevalue("reference")  # an uninterrupted night two: make reliability only
        _next_night_recovers(site, reference, "SIGTERM while dbt builds, then the next night", "SIGTERM")


@pytest.mark.reliability
@pytest.mark.reliability_full
def test_killed_while_serving_a_blocked_nights_health(night_one: Site, tmp_path: Path) -> None:
    """`cxw publish` on a warehouse holding a wrong number (a duplicated order) blocks and serves only
    the health record; killed inside that swap, the next publish blocks the same way and serves what
    an uninterrupted blocked publish serves (BI's marts unchanged)."""
    def tampered(dest: Path) -> Site:
        site = night_one.copy(dest)
        with duckdb.connect(str(site.data / "warehouse.duckdb")) as con:
            added = con.execute("insert into marts.fct_orders select * from marts.fct_orders "
                                "where ordered_local_date = cast(? as date) limit 1", [NIGHT_ONE]).fetchone()[0]
        assert added == 1
        return site

    args = ("publish", "--date", NIGHT_ONE.isoformat())
    uninterrupted = tampered(tmp_path / "uninterrupted")
    blocked = cxw(uninterrupted, *args)
    assert blocked.returncode == 1 and "order_id_unique" in blocked.stderr, blocked.stdout + blocked.stderr
    site = tampered(tmp_path / "killed")
    killed = cxw(site, *args, crash_at="publish_health.before_swap")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    again = cxw(site, *args)
    got, reference = contents(site), contents(uninterrupted)
    left = leftovers(site)
    record(scenario="kill -9 at publish_health.before_swap (a blocked night)", killed_at="publish_health.before_swap",
           next_run_ok=again.returncode == 1, equal=digest(got) == digest(reference),
           rows_lost=rows_lost(reference, got), leftovers=len(left), next_run_s=None,
           cleaned=[line for line in again.stderr.splitlines() if line.startswith(("recovered", "freed", "removed"))])
    assert again.returncode == 1 and "order_id_unique" in again.stderr  # blocked again, for the same reason
    assert "recovered run" in again.stderr
    assert digest(got) == digest(reference) and not left, left


ALERT = textwrap.dedent("""
    import sys
    from orchestration.alerts import record_alert
    from orchestration.resources import CxData
    record_alert(CxData(data_dir=sys.argv[1]), {"run_id": sys.argv[2], "job": "nightly", "message": "failed"})
""")


@pytest.mark.reliability
@pytest.mark.reliability_full
@pytest.mark.parametrize("point", ["alert.before_record", "alert.before_webhook"])
def test_killed_while_alerting(point: str, tmp_path: Path) -> None:
    """The alert of a failed run killed before or after its line: alerts.log holds only whole lines."""
    env = {k: v for k, v in os.environ.items() if k != "CX_CRASH_AT"}
    first = subprocess.run([sys.executable, "-c", ALERT, str(tmp_path), "first"], env={**env, "CX_CRASH_AT": point},
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = subprocess.run([sys.executable, "-c", ALERT, str(tmp_path), "second"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    raw = (tmp_path / "alerts.log").read_text(encoding="utf-8")
    runs = [json.loads(line)["run_id"] for line in raw.splitlines()]
    expected = ["first", "second"] if point == "alert.before_webhook" else ["second"]
    record(scenario=f"kill -9 at {point}", killed_at=point, next_run_ok=True, equal=runs == expected,
           rows_lost=0, leftovers=0 if raw.endswith("\n") else 1, next_run_s=None, cleaned=[])
    assert runs == expected and raw.endswith("\n")
