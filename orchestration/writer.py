"""One writer at a time on a data directory: the writer lock ``$CX_DATA_DIR/.cxw-writer.lock``.

Every run that writes the data directory (raw and quarantine zones, the health record, the
warehouse, the served copy) holds this lock from before its run starts until it ends:

* ``cxw ingest``, ``build``, ``nightly``, ``backfill`` and ``publish`` take it before anything
  else (before crash recovery and the Dagster run) and keep it until the command ends, across the
  several runs of a backfill;
* runs launched by the Dagster daemon or the UI (the schedule, the drop sensor, "Materialize")
  take it in their run worker: the code location's executor (:data:`writer_executor`, the default
  executor wrapped) holds it while the run's steps execute.

Dagster's ``duckdb_writer`` pool only keeps two *steps* apart; between the steps of one run another
run's steps could still slip in, and two ``cxw`` processes started at the same instant both found
the pool free and the second then spun silently in Dagster's in-process slot wait. The lock makes
the unit of exclusion the whole run.

The lock is an ``flock`` on an open file: the kernel releases it when its process dies (SIGKILL, the
OOM killer), so crash recovery never has to break a stale lock. The holder writes who it is into
the file (pid, its start time, host, command, run id, since when); a process that has to wait
prints that once, checks again every second, and gives up after ``CX_SLOT_WAIT_SECONDS`` (default
1800) with a message naming the holder. Within one process the lock is reentrant (``cxw
backfill`` runs several jobs; a ``cxw`` run executes its steps in its own process).

Read-only commands (``cxw status``, ``cxw recover`` listing) never take it. ``flock`` is local to
one host: every writer of a data directory must run on the machine that holds it (a network file
system is not supported).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .recovery import SLOT_WAIT_ENV, _pid_start, slot_wait_seconds

LOCK_NAME = ".cxw-writer.lock"


class WriterBusy(RuntimeError):
    """Another process kept the writer lock for longer than we were allowed to wait."""


@dataclass
class _Hold:
    fd: int
    depth: int
    info: dict


_HELD: dict[Path, _Hold] = {}
_MUTEX = threading.RLock()


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_NAME


def holder(data_dir: Path) -> dict | None:
    """Who holds (or last held) the lock, as written in the lock file; None when unreadable."""
    try:
        raw = lock_path(data_dir).read_text(encoding="utf-8")
        info = json.loads(raw) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def describe(info: dict | None) -> str:
    """``pid 81231 on etl-1 (cxw nightly --date 2026-10-13, run 3f2a9c1e), since 02:00:04 UTC``."""
    if not info:
        return "a process that has not written its name yet"
    what = info.get("command") or "unknown command"
    if info.get("run_id"):
        what += f", run {str(info['run_id'])[:8]}"
    since = ""
    if info.get("since"):
        with suppress(ValueError):
            since = f", since {dt.datetime.fromisoformat(info['since']):%Y-%m-%d %H:%M:%S} UTC"
    return f"pid {info.get('pid')} on {info.get('host')} ({what}){since}"


def _write_info(fd: int, info: dict) -> None:
    data = json.dumps(info, sort_keys=True).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _alive(info: dict) -> bool:
    """The holder named in the file is a live process (or one on another host: not judged)."""
    if info.get("host") != socket.gethostname() or not str(info.get("pid", "")).isdigit():
        return True
    start = _pid_start(int(info["pid"]))
    return start is not None and (not info.get("pid_start") or start == info["pid_start"])


def held_here(data_dir: Path) -> bool:
    """Does this process hold the lock of ``data_dir``?"""
    with _MUTEX:
        return lock_path(data_dir).resolve() in _HELD


def acquire(data_dir: Path, command: str, echo: Callable[[str], None] = print, timeout: float | None = None,
            poll: float = 1.0, run_id: str | None = None, stop: Callable[[], str | None] | None = None) -> None:
    """Take the writer lock of ``data_dir`` (reentrant within this process), waiting for its holder.

    Raises ``WriterBusy`` naming the holder after ``timeout`` seconds (default ``CX_SLOT_WAIT_SECONDS``),
    or as soon as ``stop()`` gives a reason (a run terminated while it waits).
    """
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    with _MUTEX:
        if key in _HELD:
            _HELD[key].depth += 1
            return
        timeout = slot_wait_seconds() if timeout is None else timeout
        start = time.monotonic()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        said: str | None = None
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                info = holder(data_dir)
                if info is not None and not _alive(info):
                    info = None  # the previous holder's name: the new one has not written its own yet
                # say who holds it once (again if the holder changes); a holder still writing its
                # name is given one poll before it is named as unknown
                if info is not None or said is not None or time.monotonic() - start >= poll:
                    who = describe(info)
                    if who != said:
                        echo(f"waiting for the writer lock of {data_dir}: held by {who}; checking every "
                             f"{poll:g} s, giving up in {timeout:.0f} s ({SLOT_WAIT_ENV})")
                        said = who
                reason = stop() if stop is not None else None
                if reason:
                    raise WriterBusy(f"stopped waiting for the writer lock of {data_dir} ({reason}); it is held by "
                                     f"{describe(holder(data_dir))}")
                if time.monotonic() - start >= timeout:
                    raise WriterBusy(
                        f"gave up after {timeout:.0f} s waiting for the writer lock of {data_dir}: still held by "
                        f"{describe(holder(data_dir))}. One run writes a data directory at a time: let it "
                        f"finish, or stop it (its process, or 'Terminate' in the Dagster UI), then run again; "
                        f"raise {SLOT_WAIT_ENV} to wait longer")
                time.sleep(poll)
        except BaseException:
            os.close(fd)
            raise
        pid = os.getpid()
        info = {"pid": pid, "pid_start": _pid_start(pid) or "", "host": socket.gethostname(), "command": command,
                "run_id": run_id, "since": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}
        _write_info(fd, info)
        _HELD[key] = _Hold(fd, 1, info)
        if said is not None:
            echo(f"took the writer lock of {data_dir}")


def note_run(data_dir: Path, run_id: str) -> None:
    """Record the Dagster run this process is executing now in the lock file (it holds the lock)."""
    with _MUTEX:
        hold = _HELD.get(lock_path(data_dir).resolve())
        if hold is not None:
            hold.info = {**hold.info, "run_id": run_id}
            _write_info(hold.fd, hold.info)


def release(data_dir: Path) -> None:
    """Give back one level of the lock; the last one unlocks it (the holder's name stays in the file
    until the next holder writes its own: it is read only while the lock is taken)."""
    with _MUTEX:
        key = lock_path(data_dir).resolve()
        hold = _HELD.get(key)
        if hold is None:
            return
        hold.depth -= 1
        if hold.depth == 0:
            del _HELD[key]
            fcntl.flock(hold.fd, fcntl.LOCK_UN)
            os.close(hold.fd)


@contextmanager
def held(data_dir: Path, command: str, echo: Callable[[str], None] = print, timeout: float | None = None,
         poll: float = 1.0, run_id: str | None = None, stop: Callable[[], str | None] | None = None) -> Iterator[None]:
    acquire(data_dir, command, echo, timeout, poll, run_id, stop)
    try:
        yield
    finally:
        release(data_dir)


# --- runs launched by the daemon or the UI ---------------------------------------------------------------

def _wrapped_executor():  # noqa: ANN202 - dagster.ExecutorDefinition
    """The default executor (multiprocess, or in-process by run config), holding the writer lock of
    ``$CX_DATA_DIR`` while the run's steps execute. ``execute_in_process`` (``cxw``, tests) does not
    use a job's executor: ``cxw`` takes the lock itself."""
    import dagster as dg
    from dagster._core.definitions.executor_definition import multi_or_in_process_executor

    from ingestion import settings

    class WriterLockedExecutor(dg.Executor):
        def __init__(self, inner: dg.Executor) -> None:
            self._inner = inner

        @property
        def retries(self):  # noqa: ANN202
            return self._inner.retries

        @property
        def step_dependency_config(self):  # noqa: ANN202
            return self._inner.step_dependency_config

        def execute(self, plan_context, execution_plan):  # noqa: ANN001, ANN202
            tags = plan_context.dagster_run.tags
            origin = next((f"{kind} {tags[tag]}" for kind, tag in (("sensor", "dagster/sensor_name"),
                                                                   ("schedule", "dagster/schedule_name"))
                           if tag in tags), "launched from Dagster")
            part = tags.get("dagster/partition") or (
                f"{tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}"
                if "dagster/asset_partition_range_start" in tags else "")
            command = f"dagster run of {plan_context.job_name}{' ' + part if part else ''}, {origin}"
            data_dir = settings.data_dir()

            def terminated() -> str | None:  # 'Terminate' in the UI while the run waits
                run = plan_context.instance.get_run_by_id(plan_context.run_id)
                return f"the run is {run.status.value}" if run is not None and run.status in (
                    dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED) else None

            with held(data_dir, command, plan_context.log.info, run_id=plan_context.run_id, stop=terminated):
                yield from self._inner.execute(plan_context, execution_plan)

    def create(init_context):  # noqa: ANN001, ANN202
        return WriterLockedExecutor(multi_or_in_process_executor.executor_creation_fn(init_context))

    return dg.ExecutorDefinition(
        name="cx_writer_executor", config_schema=multi_or_in_process_executor.config_schema,
        requirements=multi_or_in_process_executor.get_requirements, executor_creation_fn=create,
        description="Dagster's default executor, holding the data directory's writer lock "
                    "(orchestration/writer.py) while the run's steps execute.")


def writer_executor():  # noqa: ANN201 - dagster.ExecutorDefinition
    return _wrapped_executor()
