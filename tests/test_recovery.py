"""Crash recovery, branch by branch (orchestration/recovery.py): who owns a run, which runs and slots
are recovered, how a live holder is waited for, which leftovers on disk are removed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus

from orchestration import recovery

POOL = "duckdb_writer"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(("tags", "expected"), [
    ({}, None),  # not a cxw run (the UI, the daemon): not judged here
    ({recovery.PID_TAG: "1", recovery.HOST_TAG: "another-host"}, None),  # another machine: cannot tell
    ("dead", False),
    ("recycled", False),  # the pid lives, but it is another process (started at another time)
    ("self", True),
    ("self_without_start", True),  # tags written before the start time was recorded: the pid decides
])
def test_owner_alive(tags: dict | str, expected: bool | None) -> None:
    me = recovery.process_tags("test")
    if tags == "dead":
        tags = {**me, recovery.PID_TAG: str(dead_pid()), recovery.PID_START_TAG: "1"}
    elif tags == "recycled":
        tags = {**me, recovery.PID_START_TAG: "1"}
    elif tags == "self":
        tags = me
    elif tags == "self_without_start":
        tags = {**me, recovery.PID_START_TAG: ""}
    assert recovery.owner_alive(tags) is expected


@pytest.fixture()
def instance(tmp_path: Path) -> dg.DagsterInstance:
    with dg.instance_for_test(temp_dir=str(tmp_path),
                              overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        yield inst


def _run(instance: dg.DagsterInstance, tags: dict) -> str:
    """A run left STARTED, as a process that dies mid-run leaves it."""
    job = dg.GraphDefinition(name="g", node_defs=[]).to_job()
    return instance.create_run_for_job(job, tags=tags, status=DagsterRunStatus.STARTED).run_id


def _claim(instance: dg.DagsterInstance, run_id: str) -> None:
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    assert storage.claim_concurrency_slot(POOL, run_id, "cx_dbt").is_claimed


def _held(instance: dg.DagsterInstance) -> list[str]:
    return [s.run_id for s in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


def test_a_dead_run_is_failed_and_its_slot_freed_a_live_one_is_left_alone(instance: dg.DagsterInstance) -> None:
    dead = _run(instance, {**recovery.process_tags("cxw nightly"), recovery.PID_TAG: str(dead_pid()),
                           "dagster/partition": "2026-10-13"})
    _claim(instance, dead)
    live = _run(instance, recovery.process_tags("cxw nightly"))
    foreign = _run(instance, {})  # launched outside cxw: Dagster's run monitoring judges it, not us
    lines: list[str] = []
    done = recovery.recover(instance, lines.append)
    assert [r.run_id for r in done] == [dead]
    assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
    assert instance.get_run_by_id(foreign).status == DagsterRunStatus.STARTED
    assert _held(instance) == []
    assert len(lines) == 1 and dead[:8] in lines[0] and "2026-10-13" in lines[0] and "is gone" in lines[0]
    assert "pool slots freed" in lines[0]
    assert recovery.recover(instance, lines.append) == []  # nothing twice


def test_a_slot_of_an_ended_run_is_freed(instance: dg.DagsterInstance) -> None:
    ended = _run(instance, recovery.process_tags("cxw nightly"))
    _claim(instance, ended)
    instance.report_run_failed(instance.get_run_by_id(ended))
    lines: list[str] = []
    recovery.recover(instance, lines.append)
    assert _held(instance) == []
    assert len(lines) == 1 and "ended (FAILURE)" in lines[0] and POOL in lines[0]


def test_a_live_holder_is_named_and_the_wait_gives_up(instance: dg.DagsterInstance,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    live = _run(instance, {**recovery.process_tags("cxw nightly"), "dagster/partition": "2026-10-14"})
    _claim(instance, live)
    lines: list[str] = []
    with pytest.raises(recovery.SlotWaitTimeout) as err:
        recovery.wait_for_pools(instance, lines.append, timeout=0.3, poll=0.1)
    assert live[:8] in str(err.value) and POOL in str(err.value) and recovery.SLOT_WAIT_ENV in str(err.value)
    assert len(lines) == 1 and lines[0].startswith(f"waiting for run {live[:8]}") and "2026-10-14" in lines[0]
    assert _held(instance) == [live]  # a live run keeps its slot
    instance.event_log_storage.free_concurrency_slots_for_run(live)
    recovery.wait_for_pools(instance, lines.append, timeout=0)  # free: returns at once
    monkeypatch.setenv(recovery.SLOT_WAIT_ENV, "soon")
    with pytest.raises(ValueError, match="not a number"):
        recovery.slot_wait_seconds()
    monkeypatch.setenv(recovery.SLOT_WAIT_ENV, "-1")
    with pytest.raises(ValueError, match="negative"):
        recovery.slot_wait_seconds()
    monkeypatch.delenv(recovery.SLOT_WAIT_ENV)
    assert recovery.slot_wait_seconds() == recovery.DEFAULT_SLOT_WAIT_SECONDS


@pytest.mark.parametrize(("name", "pid"), [
    (".data.parquet.123.tmp", 123), (".cx.duckdb.77.tmp", 77), (".cx.duckdb.77.tmp.wal", 77),
    (".gate.5.tmp", 5), ("data.parquet", None), (".data.parquet.abc.tmp", None), ("x.12.tmp", None)])
def test_temporary_names(name: str, pid: int | None) -> None:
    assert recovery._tmp_owner(name) == pid


def test_leftovers_of_dead_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    gone, me = dead_pid(), os.getpid()
    raw = tmp_path / "raw" / "erp" / "orders" / "business_date=2026-10-13"
    raw.mkdir(parents=True)
    (raw / "data.parquet").write_bytes(b"previous version")
    (raw / f".data.parquet.{gone}.tmp").write_bytes(b"half")
    (raw / f".data.parquet.{me}.tmp").write_bytes(b"being written by a live process")
    serving = tmp_path / "serving"
    versions = serving / "parquet_versions"
    current = versions / f"20261013T020000Z-1-p{gone}"
    staged = versions / f"20261014T020000Z-2-p{gone}"
    mine = versions / f"20261014T020001Z-3-p{me}"
    for v in (current, staged, mine):
        v.mkdir(parents=True)
        (v / "fct_orders.parquet").write_bytes(b"x")
    os.utime(current, ns=(1, 1))
    (serving / "parquet").symlink_to(current.relative_to(serving))
    (serving / f".parquet.{gone}.tmp").symlink_to(staged.relative_to(serving))
    (serving / f".cx.duckdb.{gone}.tmp").write_bytes(b"half a database")
    (serving / f".cx.duckdb.{gone}.tmp.wal").write_bytes(b"its log")
    lines: list[str] = []
    removed = recovery.clean_data_dir(tmp_path, lines.append)
    assert sorted(p.name for p in removed) == sorted([
        f".data.parquet.{gone}.tmp", f".parquet.{gone}.tmp", f".cx.duckdb.{gone}.tmp", f".cx.duckdb.{gone}.tmp.wal",
        staged.name])
    assert (raw / "data.parquet").read_bytes() == b"previous version" and (raw / f".data.parquet.{me}.tmp").exists()
    assert current.exists() and mine.exists() and (serving / "parquet").resolve() == current
    assert len(lines) == len(removed) and all("half-written" in line for line in lines)
    assert recovery.clean_data_dir(tmp_path, lines.append) == []


def test_process_tags_name_this_process() -> None:
    tags = recovery.process_tags("cxw nightly")
    assert tags[recovery.PID_TAG] == str(os.getpid()) and tags[recovery.HOST_TAG] == socket.gethostname()
    assert tags[recovery.PID_START_TAG] and tags[recovery.COMMAND_TAG] == "cxw nightly"


def test_recover_a_run_on_request(instance: dg.DagsterInstance) -> None:
    """`cxw recover --run ID`: for a run this host cannot judge (untagged: launched before crash recovery,
    or elsewhere); refused for a live one and an unknown id; a prefix of the id is enough."""
    untagged = _run(instance, {"dagster/partition": "2026-10-13"})
    _claim(instance, untagged)
    live = _run(instance, recovery.process_tags("cxw nightly"))
    lines: list[str] = []
    assert recovery.recover(instance, lines.append) == []  # not judged automatically
    with pytest.raises(recovery.SlotWaitTimeout, match=f"cxw recover --run {untagged}"):
        recovery.wait_for_pools(instance, lines.append, timeout=0)
    with pytest.raises(RuntimeError, match="is alive"):
        recovery.force_fail(instance, live, lines.append)
    with pytest.raises(LookupError, match="no run 'nope'"):
        recovery.force_fail(instance, "nope", lines.append)
    recovery.force_fail(instance, untagged[:8], lines.append)
    assert instance.get_run_by_id(untagged).status == DagsterRunStatus.FAILURE and _held(instance) == []
    assert lines[-1].startswith(f"recovered run {untagged[:8]}") and "on request" in lines[-1]


def _child(instance: dg.DagsterInstance, child: subprocess.Popen) -> str:
    """A run whose process is gone, with a child it started (dbt) still running."""
    return _run(instance, {**recovery.process_tags("cxw nightly"), recovery.PID_TAG: str(dead_pid()),
                           **recovery.child_tags(child.pid)})


def test_a_dead_runs_child_still_running_is_killed_before_the_run_is_failed(instance: dg.DagsterInstance) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        dead = _child(instance, child)
        lines: list[str] = []
        assert [r.run_id for r in recovery.recover(instance, lines.append)] == [dead]
        assert child.wait(timeout=5) == -9  # SIGKILL, and gone once recover returns
        assert f"killed pid {child.pid}" in lines[0] and "marked failed" in lines[0]
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("case", ["ended", "recycled", "zombie", "another_host", "no_start"])
def test_a_child_that_is_not_the_runs_anymore_is_left_alone(case: str, instance: dg.DagsterInstance,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        tags = recovery.child_tags(child.pid)
        if case == "ended":  # the child finished: its pid names no process
            tags = recovery.child_tags(dead_pid())
        elif case == "recycled":  # the pid runs, but another process (started at another time)
            tags = {recovery.CHILD_TAG: f"{child.pid}:1"}
        elif case == "another_host":
            tags = {**tags, recovery.HOST_TAG: "another-host"}
        elif case == "no_start":  # the start time could not be read when the run named it
            tags = {recovery.CHILD_TAG: f"{child.pid}:"}
        elif case == "zombie":  # killed, not yet reaped: holds no lock any more
            killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            tags = recovery.child_tags(killed.pid)
            killed.kill()
            deadline = time.monotonic() + 10
            while recovery._running_since(killed.pid) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert recovery._pid_start(killed.pid) is not None  # still in /proc, as a zombie
        host = tags.pop(recovery.HOST_TAG, socket.gethostname())
        assert recovery.stop_child({recovery.HOST_TAG: host, **tags}) is None
        assert child.poll() is None  # left running
        if case == "zombie":
            killed.wait()
    finally:
        child.kill()
        child.wait()


def test_a_child_that_will_not_die_fails_recovery_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        monkeypatch.setattr(recovery.os, "kill", lambda pid, sig: None)  # the signal never lands
        with pytest.raises(RuntimeError, match=f"pid {child.pid}.*did not exit"):
            recovery.stop_child({recovery.HOST_TAG: socket.gethostname(), **recovery.child_tags(child.pid)},
                                wait=0.3)
    finally:
        monkeypatch.undo()  # os.kill again, to end the child
        child.kill()
        child.wait()
