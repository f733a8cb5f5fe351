"""Many drops of one system landed at once by worker processes, handed back in date order.

A backfill range (or a first drop with years of history) lands hundreds of drops of each system. One
drop is a few seconds of CPU in Python and polars: parsing, validating, writing Parquet. One process
cannot use a second core for it (the GIL: two threads gave 0.44x bare polars against 0.33x, RESULTS.md),
so :func:`load_drops` lands the drops of a range in ``workers`` processes, and hands each result back
in date order, together with the load-audit entries the worker wrote, so the caller judges each date
against the dates before it exactly as a loop would. A worker is given a few consecutive dates at a
time (:func:`ranges`) and lands them with :func:`ingestion.load.load_drop_range`: their files validated
together (one polars plan per entity), then each drop whole, as ``load_drop`` lands one (its atomic
writes, its audit), in date order.

What a worker writes is each drop's own files (``raw/<system>/<entity>/business_date=D``, its
quarantine and its audit file): no two drops of a range share a file, so landing them at once gives
the same zones as landing them one by one (``tests/test_ingest_pool.py`` compares every file). A
drop still lands whole or not at all; while a date is handed back, at most ``2 x workers`` later
ranges are being landed or waiting to be handed back. If the run stops (an error, Ctrl-C), the dates
not started are never landed and the ones being landed are waited for, so no worker writes after the
call returns; if the parent is killed, its workers are killed with it (Linux), and the next run's
clean-up removes their temporary files as after any crash. A worker is ``python -m ingestion.pool``, talking pickles
over its stdin and stdout: not ``multiprocessing``, whose workers import the parent's ``__main__``
again (a script without a ``__main__`` guard would fail) and whose forks would copy Dagster's and
polars' threads.

``workers=1`` lands in this process, range after range (no pool): a single date always does.
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
from .load import AuditSink, DropLoad, Zones, load_drop_range
from .manifest import DropRefused, drop_folder

AHEAD_PER_WORKER = 2  # ranges being landed or landed and not yet handed back, per worker, beyond the one awaited
# the drops a worker (or a run's own process) reads and validates together: one polars plan per entity for the
# range instead of one per file (at 100k customers, about a third of the validation's CPU; RESULTS.md, 2026-12-04)
RANGE_DATES = 8
RANGE_BYTES = 32 << 20  # a range's drops as delivered, all held in memory (as typed frames) while it lands
_ROOT = Path(__file__).resolve().parents[1]

AuditEntry = tuple[str, dt.date, str, pl.DataFrame]


class WorkerDied(RuntimeError):
    """A worker process died while it landed a drop (killed, out of memory): that drop is not landed whole."""


def _land_range(zones: Zones, system: str, days: list[dt.date],
                loaded_at: dt.datetime | None) -> list[tuple[bool, Any]]:
    """In a worker: land the drops of ``days`` together (``load_drop_range``); for each date, in order,
    ``(True, (outcome, audit entries written))`` (a refusal is an outcome) or ``(False, error)``. After an
    error the later dates are not landed: each answers that it was not."""
    audits: list[AuditEntry] = []  # the entries written since the last date was answered
    answers: list[tuple[bool, Any]] = []
    try:
        for _day, outcome in load_drop_range(zones, system, days, loaded_at,
                                             on_audit=lambda *entry: audits.append(entry)):
            answers.append((True, (outcome, audits[:])))
            audits.clear()
    except Exception as exc:  # noqa: BLE001 - sent to the parent, raised there at its date's turn
        answers.append((False, exc))
    for day in days[len(answers):]:
        answers.append((False, RuntimeError(f"the {system} drop of {day} was not landed: an earlier date of its "
                                            "range failed")))
    return answers


def drop_size(zones: Zones, system: str, day: dt.date) -> int:
    """The bytes of one drop's files as delivered (0 for a drop not there)."""
    try:
        with os.scandir(drop_folder(zones.landing, system, day)) as entries:
            return sum(e.stat(follow_symlinks=False).st_size for e in entries if e.is_file(follow_symlinks=False))
    except OSError:
        return 0


def ranges(zones: Zones, system: str, days: list[dt.date], workers: int) -> list[list[dt.date]]:
    """``days`` cut, in order, into the ranges landed together (``load_drop_range``): at most ``RANGE_DATES``
    dates and ``RANGE_BYTES`` of drops each (a date alone if it is larger: a first drop with years of
    history), and towards the end of ``days`` no more than a worker's share of the dates left, so that no
    worker waits long for another's last range."""
    sizes = [drop_size(zones, system, day) for day in days]
    out: list[list[dt.date]] = []
    i = 0
    while i < len(days):
        share = min(RANGE_DATES, -(-(len(days) - i) // max(workers, 1)))
        size, j = sizes[i], i + 1
        while j < i + share and size + sizes[j] <= RANGE_BYTES:
            size += sizes[j]
            j += 1
        out.append(days[i:j])
        i = j
    return out


class _Worker:
    """One ``python -m ingestion.pool`` process: one task at a time, sent and answered as pickles."""

    def __init__(self) -> None:
        env = settings.subprocess_env()  # this process's environment: the worker reads the same settings
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "ingestion.pool", str(os.getpid())], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.getcwd())
        self.days: list[dt.date] = []  # the range being landed

    def send(self, task: tuple) -> None:
        assert self.proc.stdin is not None
        pickle.dump(task, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.flush()
        self.days = list(task[2])

    def receive(self) -> list[tuple[bool, Any]]:
        """(ok, value) of each date of the range sent; raises ``EOFError`` if the process died instead."""
        assert self.proc.stdout is not None
        try:
            answer = pickle.load(self.proc.stdout)
        except (EOFError, pickle.UnpicklingError, OSError) as exc:
            raise EOFError from exc
        self.days = []
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


def idle_workers() -> int:
    """Worker processes of this process started earlier and waiting for work (a range costs them no start)."""
    with _lock:
        if _owner != os.getpid():
            return 0
        return sum(1 for w in _idle if w.proc.poll() is None)


def _give_back(workers: list[_Worker]) -> None:
    with _lock:
        _idle.extend(w for w in workers if w.proc.poll() is None and not w.days)


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
        for days_together in ranges(zones, system, days, 1):
            yield from load_drop_range(zones, system, days_together, loaded_at, on_audit)
        return
    team = _take(min(workers, len(days)))
    done: dict[dt.date, tuple[bool, Any]] = {}
    todo = iter(ranges(zones, system, days, len(team)))
    limit = len(team) * (AHEAD_PER_WORKER + 1)  # ranges started and not yet handed back

    def busy() -> list[_Worker]:
        return [w for w in team if w.days]

    def fill() -> None:
        """Give each idle worker the next range, while fewer than ``limit`` are started and not handed back."""
        for w in team:
            if not w.days and len({r for r, _ok in done.values()}) + len(busy()) < limit:
                days_together = next(todo, None)
                if days_together is None:
                    return
                w.send((zones, system, days_together, loaded_at))

    def collect() -> None:
        """Wait for at least one worker's answer; keep each date's answer (a worker's death is the answer for
        every date of the range it was landing: raised at the first one's turn, after the dates before it)."""
        ready, _, _ = select.select([w.proc.stdout for w in busy()], [], [])
        for w in busy():
            if w.proc.stdout in ready:
                landing = w.days
                try:
                    answers = w.receive()
                except EOFError:
                    code = w.proc.wait()
                    w.stop()
                    team.remove(w)
                    which = (f"drop of {landing[0]}" if len(landing) == 1 else
                             f"drops of {landing[0]} to {landing[-1]} ({len(landing)} dates)")
                    answers = [(False, WorkerDied(
                        f"the worker process landing the {system} {which} died (exit {code}: killed, or out of "
                        f"memory): as after a crash, each of those drops' files under {zones.raw} holds its "
                        "previous version or its new one, and its load audit may be missing; re-run to land it "
                        "whole"))] * len(landing)
                for day, answer in zip(landing, answers, strict=True):
                    done[day] = (landing[0], answer)

    try:
        for day in days:
            fill()
            while day not in done:
                if not busy():  # every worker died: the death of the earliest date is the error
                    deaths = sorted((d, v) for d, (_r, (ok, v)) in done.items() if isinstance(v, WorkerDied))
                    raise deaths[0][1] if deaths else WorkerDied(
                        f"no worker process left to land the {system} drop of {day}; re-run")
                collect()
                fill()
            _range, (ok, value) = done.pop(day)
            if not ok:
                raise value
            outcome, audits = value
            if on_audit is not None:
                for entry in audits:
                    on_audit(*entry)
            yield day, outcome
    finally:
        # stopped early (an error, the caller gone): the ranges not started are never landed, the ones a
        # worker is landing are waited for, so nothing writes into the zones once this returns
        for w in team:
            if w.days:
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
            answer = _land_range(*task)
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there at its dates' turn
            answer = [(False, exc)] * len(task[2])
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an error that cannot be pickled: its text
            data = pickle.dumps([(ok, v if ok else RuntimeError(f"{type(v).__name__}: {v}")) for ok, v in answer])
        answers.write(data)
        answers.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
