"""Crash recovery for runs that ``cxw`` executes in its own process.

``cxw`` runs Dagster jobs in-process (``execute_in_process``): when that process dies without
cleaning up (SIGKILL, the out-of-memory killer, a power cut), Dagster never learns it. The run
stays STARTED forever and keeps the slot it claimed in the ``duckdb_writer`` pool (limit 1), so
every later run of any date waits for it, silently and for ever. The daemon's run monitoring does
not help: it watches runs started by a run launcher, not in-process ones.

So every run ``cxw`` starts carries its process in its tags (host, pid and the pid's start time,
which tells a recycled pid from the original one). Before the next run starts,
:func:`recover` marks every such run whose process is gone as failed, frees its pool slots and
says so in one line per run; slots held by runs that already ended are freed too. A slot held by a
live run is waited for (:func:`wait_for_pools`): the wait names the holder and gives up after a
configurable time (``CX_SLOT_WAIT_SECONDS``, default 1800) with a clear message.

Leftovers of a crash on disk (temporary files of an atomic write, a Parquet version staged but
never linked) are removed by :func:`clean_data_dir`, which also names what it removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from ingestion import settings

HOST_TAG = "cx/host"
PID_TAG = "cx/pid"
PID_START_TAG = "cx/pid_start"  # the process's start time in clock ticks since boot (/proc/<pid>/stat)
COMMAND_TAG = "cx/command"
# the process a run started that outlives it when the run's process is killed (dbt, started by dagster-dbt as a
# subprocess, keeps building and holding warehouse.duckdb): "<pid>:<start time>", as PID_TAG and PID_START_TAG
CHILD_TAG = "cx/child"
CHILD_EXIT_SECONDS = 30.0  # how long recovery waits for a killed child to be gone
SLOT_WAIT_ENV = "CX_SLOT_WAIT_SECONDS"
DEFAULT_SLOT_WAIT_SECONDS = settings.BY_NAME[SLOT_WAIT_ENV].value_default

UNFINISHED = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
              DagsterRunStatus.CANCELING]


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, first), or None when no such
    process. The command name (field 2) is in parentheses and may contain spaces."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rindex(")") + 2:].split()


def _pid_start(pid: int) -> str | None:
    """Start time of ``pid`` (field 22 of /proc/<pid>/stat), or None when no such process."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def _running_since(pid: int) -> str | None:
    """``_pid_start`` of a process that still runs: None for a zombie too (it holds no file, no lock; a killed
    orphan stays one until its new parent reaps it, which in a container may be never)."""
    fields = _proc_stat(pid)
    return None if not fields or fields[0] in ("Z", "X") else fields[19]


def child_tags(pid: int) -> dict[str, str]:
    """Tags that name ``pid`` as a process the run started (``CHILD_TAG``)."""
    return {CHILD_TAG: f"{pid}:{_pid_start(pid) or ''}"}


def stop_child(tags: dict[str, str], wait: float = CHILD_EXIT_SECONDS) -> str | None:
    """Kill (SIGKILL) the child process a dead run left running (``CHILD_TAG``) and wait until it is gone; what
    was done, or None when there was nothing to do (no child recorded, another host, the child ended, its pid
    now another process's). A run killed while dbt builds leaves dbt building: it holds warehouse.duckdb's lock,
    so the next run's dbt could not open the warehouse ("Could not set lock on file"), and it would go on
    writing into the warehouse that run builds."""
    pid, _, start = tags.get(CHILD_TAG, "").partition(":")
    if not pid.isdigit() or not start or tags.get(HOST_TAG) != socket.gethostname():
        return None
    if _running_since(int(pid)) != start:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + wait
    while _running_since(int(pid)) == start:
        if time.monotonic() > deadline:
            raise RuntimeError(f"pid {pid}, started by a dead run, did not exit within {wait:.0f} s of SIGKILL")
        time.sleep(0.05)
    return f"killed pid {pid}, which it had started and which was still running"


def process_tags(command: str) -> dict[str, str]:
    """Tags that name this process as the owner of a run."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: _pid_start(pid) or "",
            COMMAND_TAG: command}


def owner_alive(tags: dict[str, str]) -> bool | None:
    """True/False when the run's owner process can be judged from here, None when it cannot
    (not a ``cxw`` run, or started on another host)."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    start = _pid_start(int(tags[PID_TAG]))
    return start is not None and (not tags.get(PID_START_TAG) or start == tags[PID_START_TAG])


def describe(run: dg.DagsterRun | None, run_id: str) -> str:
    if run is None:
        return f"run {run_id[:8]} (no longer in the instance)"
    tags = run.tags
    what = tags.get(COMMAND_TAG) or run.job_name
    part = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags else "")
    owner = f"pid {tags[PID_TAG]} on {tags.get(HOST_TAG)}" if PID_TAG in tags else "launched outside cxw"
    return f"run {run_id[:8]} ({what}{' ' + part if part else ''}, {owner})"


@dataclass(frozen=True)
class Recovered:
    run_id: str
    line: str


def recover(instance: dg.DagsterInstance, echo: Callable[[str], None] = print) -> list[Recovered]:
    """Fail every unfinished ``cxw`` run whose process is gone and free the pool slots of ended runs."""
    storage = instance.event_log_storage
    done: list[Recovered] = []
    for run in instance.get_runs(filters=RunsFilter(statuses=UNFINISHED)):
        if owner_alive(run.tags) is not False:
            continue
        reason = (f"its process (pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}) is gone: killed or crashed "
                  "before it could finish")
        stopped = stop_child(run.tags)  # before anything else: it may still be writing
        instance.report_run_failed(run, message=f"marked failed by crash recovery: {reason}")
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        done.append(Recovered(run.run_id, f"recovered {describe(run, run.run_id)}: {reason}; "
                              + (f"{stopped}; " if stopped else "") + "marked failed and its pool slots freed"))
    if storage.supports_global_concurrency_limits:
        for pool in sorted(storage.get_concurrency_keys()):
            info = storage.get_concurrency_info(pool)
            run_ids = {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}
            for run_id in sorted(run_ids - {r.run_id for r in done}):
                run = instance.get_run_by_id(run_id)
                if run is None or run.is_finished:
                    storage.free_concurrency_slots_for_run(run_id)
                    state = "is gone" if run is None else f"ended ({run.status.value})"
                    done.append(Recovered(run_id, f"freed the {pool} slot of {describe(run, run_id)}: "
                                                  f"the run {state} without releasing it"))
    for r in done:
        echo(r.line)
    return done


def slot_wait_seconds() -> float:
    """``CX_SLOT_WAIT_SECONDS`` (ingestion/settings.py); a malformed value raises ``ValueError``."""
    return settings.current().slot_wait_seconds


class SlotWaitTimeout(RuntimeError):
    pass


def holders(instance: dg.DagsterInstance) -> list[tuple[str, str, str]]:
    """(pool, run_id, step_key) of every claimed pool slot."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    return [(pool, s.run_id, s.step_key) for pool in sorted(storage.get_concurrency_keys())
            for s in storage.get_concurrency_info(pool).claimed_slots]


def wait_for_pools(instance: dg.DagsterInstance, echo: Callable[[str], None] = print,
                   timeout: float | None = None, poll: float = 1.0) -> None:
    """Return once no live run holds a pool slot; recover dead holders on the way.

    Raises ``SlotWaitTimeout`` naming the holder after ``timeout`` seconds (``CX_SLOT_WAIT_SECONDS``).
    """
    timeout = slot_wait_seconds() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    said: set[tuple[str, str]] = set()
    recover(instance, echo)
    while True:
        held = holders(instance)
        if not held:
            return
        for pool, run_id, step in held:
            if (pool, run_id) not in said:
                said.add((pool, run_id))
                run = instance.get_run_by_id(run_id)
                since = ""
                if run is not None and (record := instance.get_run_record_by_id(run_id)) and record.start_time:
                    since = f", running since {dt.datetime.fromtimestamp(record.start_time, dt.UTC):%H:%M:%S} UTC"
                echo(f"waiting for {describe(run, run_id)}{since}: it holds the {pool} slot (step {step}); "
                     f"giving up in {timeout:.0f} s ({SLOT_WAIT_ENV})")
        if time.monotonic() >= deadline:
            pool, run_id, step = held[0]
            raise SlotWaitTimeout(
                f"gave up after {timeout:.0f} s: {describe(instance.get_run_by_id(run_id), run_id)} still holds "
                f"the {pool} slot (step {step}). Let it finish, or stop it (its process, or 'Terminate' in the "
                f"Dagster UI), then run again; raise {SLOT_WAIT_ENV} to wait longer. If its process is gone and "
                f"cannot be judged from here (another host, or a run older than crash recovery): "
                f"cxw recover --run {run_id}")
        time.sleep(poll)
        recover(instance, echo)


def finish_run(instance: dg.DagsterInstance, run_id: str, reason: str) -> None:
    """After an interrupted in-process run: mark it failed if it did not end, free its slots."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message=reason)
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


# --- leftovers on disk ---------------------------------------------------------------------------------

def _tmp_owner(name: str) -> int | None:
    """The pid in a temporary name ``.<name>.<pid>.tmp`` (atomic writes), else None."""
    parts = name.removesuffix(".wal").split(".")  # DuckDB's write-ahead log beside a temporary database
    if len(parts) >= 3 and name.startswith(".") and parts[-1] == "tmp" and parts[-2].isdigit():
        return int(parts[-2])
    return None


def _dead(pid: int) -> bool:
    return pid != os.getpid() and _pid_start(pid) is None


def clean_data_dir(root: Path, echo: Callable[[str], None] = print) -> list[Path]:
    """Remove what a killed process left half-written under ``root``; return and name what went.

    * ``.<file>.<pid>.tmp`` files of atomic writes (raw, quarantine, audit, health, serving) whose
      writer is dead: the renamed file they were to replace is still the previous version;
    * Parquet versions under ``serving/parquet_versions/`` staged by a dead publish and never linked
      (newer than the version ``serving/parquet`` points to).
    """
    removed: list[Path] = []
    for zone in ("raw", "quarantine", "health", "serving"):
        base = root / zone
        if not base.exists():
            continue
        for path in _walk_tmp(base):
            pid = _tmp_owner(path.name)
            if pid is not None and _dead(pid):
                path.unlink(missing_ok=True)
                removed.append(path)
    versions = root / "serving" / "parquet_versions"
    link = root / "serving" / "parquet"
    if versions.exists():
        current = link.resolve() if link.exists() else None
        floor = current.stat().st_mtime_ns if current else -1
        for v in versions.iterdir():
            if v.is_dir() and v != current and v.stat().st_mtime_ns > floor and _staged_by_dead(v):
                shutil.rmtree(v, ignore_errors=True)
                removed.append(v)
    for path in removed:
        echo(f"removed {path}: left half-written by a process that is gone (the previous version is intact)")
    return removed


def _walk_tmp(base: Path) -> Iterable[Path]:
    for dirpath, dirs, files in os.walk(base):
        links = [d for d in dirs if (Path(dirpath) / d).is_symlink()]  # a symlink being swapped in
        for f in [*files, *links]:
            if f.endswith((".tmp", ".tmp.wal")):
                yield Path(dirpath) / f


def _staged_by_dead(version: Path) -> bool:
    """A version folder's name ends with ``-p<pid>`` (publish.py); older names cannot be judged."""
    tail = version.name.rsplit("-p", 1)
    return len(tail) == 2 and tail[1].split("-")[0].isdigit() and _dead(int(tail[1].split("-")[0]))


def force_fail(instance: dg.DagsterInstance, run_id: str, echo: Callable[[str], None] = print) -> None:
    """Mark one unfinished run failed and free its pool slots, on an operator's word that its process
    is gone; refused when this host sees its process alive."""
    run = instance.get_run_by_id(run_id) or next(
        (r for r in instance.get_runs(filters=RunsFilter(statuses=UNFINISHED)) if r.run_id.startswith(run_id)), None)
    if run is None:
        raise LookupError(f"no run {run_id!r} in this Dagster instance ({instance.root_directory})")
    if owner_alive(run.tags):
        raise RuntimeError(f"{describe(run, run.run_id)} is alive: stop its process first")
    if not run.is_finished:
        instance.report_run_failed(run, message="marked failed by `cxw recover --run` (its process is gone)")
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    echo(f"recovered {describe(run, run.run_id)}: marked failed on request and its pool slots freed")
