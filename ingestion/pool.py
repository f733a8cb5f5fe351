"""Many drops of one system landed at once by worker processes, handed back in date order.

A backfill range (or a first drop with years of history) lands hundreds of drops of each system. One
drop is a few seconds of CPU in Python and polars: parsing, validating, writing Parquet. One process
cannot use a second core for it (the GIL: two threads gave 0.44x bare polars against 0.33x, RESULTS.md),
so :func:`load_drops` lands the drops of a range in ``workers`` processes, each drop whole in one
worker (:func:`ingestion.load.load_drop`, unchanged: its atomic writes, its audit), and hands each
result back in date order, together with the load-audit entries the worker wrote, so the caller
judges each date against the dates before it exactly as a loop would.

What a worker writes is each drop's own files (``raw/<system>/<entity>/business_date=D``, its
quarantine and its audit file): no two drops of a range share a file, so landing them at once gives
the same zones as landing them one by one (``tests/test_ingest_pool.py`` compares every file). A
drop still lands whole or not at all; while a date is handed back, at most ``2 x workers`` later
dates are being landed or queued. If the run stops (an error, Ctrl-C), the dates not started are
never landed and the ones being landed are waited for, so no worker writes after the call returns;
if the parent is killed, its workers are killed with it (Linux), and the next run's clean-up removes
their temporary files as after any crash. A worker is ``python -m ingestion.pool``, talking pickles
over its stdin and stdout: not ``multiprocessing``, whose workers import the parent's ``__main__``
again (a script without a ``__main__`` guard would fail) and whose forks would copy Dagster's and
polars' threads.

``workers=1`` lands in this process, one drop after another (no pool): a single date always does.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl

from . import settings
from .load import AuditSink, DropLoad, Zones, load_drop
from .manifest import DropRefused

AHEAD_PER_WORKER = 2  # dates being landed or landed and not yet handed back, per worker, beyond the one awaited
_ROOT = Path(__file__).resolve().parents[1]

AuditEntry = tuple[str, dt.date, str, pl.DataFrame]


class WorkerDied(RuntimeError):
    """A worker process died while it landed a drop (killed, out of memory): that drop is not landed whole."""


def _land_one(zones: Zones, system: str, day: dt.date,
              loaded_at: dt.datetime | None) -> tuple[DropLoad | DropRefused, list[AuditEntry]]:
    """In a worker: land one drop; its outcome (a refusal is an outcome) and the audit entries written."""
    audits: list[AuditEntry] = []
    try:
        load = load_drop(zones, system, day, loaded_at, on_audit=lambda *entry: audits.append(entry))
    except DropRefused as exc:
        return exc, audits
    return load, audits


class _Worker:
    """One ``python -m ingestion.pool`` process: one task at a time, sent and answered as pickles."""

    def __init__(self) -> None:
        env = settings.subprocess_env()  # this process's environment: the worker reads the same settings
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "ingestion.pool", str(os.getpid())], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.getcwd())
        self.day: dt.date | None = None  # the date being landed

    def send(self, task: tuple) -> None:
        assert self.proc.stdin is not None
        pickle.dump(task, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.flush()
        self.day = task[2]

    def receive(self) -> tuple[bool, Any]:
        """(ok, value): the answer to the task sent; raises ``EOFError`` if the process died instead."""
        assert self.proc.stdout is not None
        try:
            answer = pickle.load(self.proc.stdout)
        except (EOFError, pickle.UnpicklingError, OSError) as exc:
            raise EOFError from exc
        self.day = None
        return answer

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# the workers of this process, started on first use and kept (a backfill lands four systems, range after range:
# a worker's start-up, importing polars, is paid once); stopped when this process exits
_lock = threading.Lock()
_idle: list[_Worker] = []
_owner = os.getpid()


def _take(n: int) -> list[_Worker]:
    global _owner
    with _lock:
        if _owner != os.getpid():  # a forked child does not own its parent's workers
            _idle.clear()
            _owner = os.getpid()
        live = [w for w in _idle if w.proc.poll() is None]
        _idle.clear()
    for w in live[n:]:
        w.stop()
    return live[:n] + [_Worker() for _ in range(n - len(live[:n]))]


def _give_back(workers: list[_Worker]) -> None:
    with _lock:
        _idle.extend(w for w in workers if w.proc.poll() is None and w.day is None)


@atexit.register
def _stop_all() -> None:
    with _lock:
        workers = list(_idle) if _owner == os.getpid() else []
        _idle.clear()
    for w in workers:
        w.stop()


def load_drops(zones: Zones, system: str, days: list[dt.date], on_audit: AuditSink | None = None,
               workers: int = 1, loaded_at: dt.datetime | None = None
               ) -> Iterator[tuple[dt.date, DropLoad | DropRefused]]:
    """Land ``system``'s drop of each date of ``days`` and yield ``(date, load or refusal)`` in the order of
    ``days``; ``on_audit`` is told of each date's audit entries just before that date is yielded (so a
    cache of the audit, :class:`expectations.drops.AuditHistory`, holds exactly the dates yielded so far).
    Any other error of a drop is raised when its date's turn comes (the later dates are then not
    landed, or finished first if a worker had started them)."""
    if workers <= 1 or len(days) < 2:
        for day in days:
            try:
                yield day, load_drop(zones, system, day, loaded_at, on_audit)
            except DropRefused as exc:
                yield day, exc
        return
    team = _take(min(workers, len(days)))
    done: dict[dt.date, tuple[bool, Any]] = {}
    todo = iter(days)
    limit = len(team) * (AHEAD_PER_WORKER + 1)  # dates started and not yet handed back

    def busy() -> list[_Worker]:
        return [w for w in team if w.day is not None]

    def fill() -> None:
        """Give each idle worker the next date, while fewer than ``limit`` are started and not handed back."""
        for w in team:
            if w.day is None and len(done) + len(busy()) < limit:
                day = next(todo, None)
                if day is None:
                    return
                w.send((zones, system, day, loaded_at))

    def collect() -> None:
        """Wait for at least one worker's answer; keep each answer by its date (a worker's death is the answer
        for the date it was landing: raised at that date's turn, after the dates before it)."""
        ready, _, _ = select.select([w.proc.stdout for w in busy()], [], [])
        for w in busy():
            if w.proc.stdout in ready:
                day = w.day
                try:
                    done[day] = w.receive()
                except EOFError:
                    code = w.proc.wait()
                    w.stop()
                    team.remove(w)
                    done[day] = (False, WorkerDied(
                        f"the worker process landing the {system} drop of {day} died (exit {code}: killed, or out "
                        f"of memory): as after a crash, each of that drop's files under {zones.raw} holds its "
                        "previous version or its new one, and its load audit may be missing; re-run to land it "
                        "whole"))

    try:
        for day in days:
            fill()
            while day not in done:
                if not busy():  # every worker died: the death of the earliest date is the error
                    deaths = sorted((d, v) for d, (ok, v) in done.items() if isinstance(v, WorkerDied))
                    raise deaths[0][1] if deaths else WorkerDied(
                        f"no worker process left to land the {system} drop of {day}; re-run")
                collect()
                fill()
            ok, value = done.pop(day)
            if not ok:
                raise value
            outcome, audits = value
            if on_audit is not None:
                for entry in audits:
                    on_audit(*entry)
            yield day, outcome
    finally:
        # stopped early (an error, the caller gone): the dates not started are never landed, the ones a
        # worker is landing are waited for, so nothing writes into the zones once this returns
        for w in team:
            if w.day is not None:
                try:
                    w.receive()
                except EOFError:
                    w.stop(kill=True)
        _give_back(team)


def _serve(parent: int) -> None:
    """A worker's loop: land each task read from stdin, answer on stdout, until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it waits for the drop being landed
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    except (OSError, AttributeError):  # not Linux: the worker ends when the parent's pipe closes
        pass
    if os.getppid() != parent:  # the parent died before the line above
        return
    answers: IO[bytes] = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the code prints goes to stderr, never into the answers
    tasks = sys.stdin.buffer
    while True:
        try:
            task = pickle.load(tasks)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, _land_one(*task))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there at its date's turn
            answer = (False, exc)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an error that cannot be pickled: its text
            data = pickle.dumps((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))
        answers.write(data)
        answers.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
