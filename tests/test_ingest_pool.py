"""Drops of a range landed by worker processes (ingestion/pool.py): the same zones as one drop after another,
results and audit entries handed back in date order, a refusal is an outcome, any other error is raised at
its date's turn, a dead worker is named, and no worker outlives its parent or the call."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from benchmarks.compare_zones import LOADED_AT, differences
from ingestion.disk import DiskFull
from ingestion.load import DropLoad, Zones
from ingestion.manifest import DropRefused
from ingestion.pool import AHEAD_PER_WORKER, load_drops
from simulator import GeneratorConfig, generate

from . import drop_edit

ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2026, 9, 1)
DAYS = 8
BROKEN = START + dt.timedelta(days=2)  # erp's orders file no longer matches its manifest: refused
MISSING = START + dt.timedelta(days=5)  # erp's drop not delivered (no manifest)


def _days(n: int = DAYS) -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(n)]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pool") / "landing"
    generate(GeneratorConfig(customers=300, days=DAYS, start=START, seed=7), root)
    orders = drop_edit.folder(root, "erp", BROKEN) / "orders.csv"
    orders.write_bytes(orders.read_bytes() + b"\n")  # not re-manifested: its sha256 no longer matches
    (drop_edit.folder(root, "erp", MISSING) / drop_edit.MANIFEST).unlink()
    return root


def _land(landing: Path, out: Path, system: str, workers: int, days: list[dt.date] | None = None) -> list[tuple]:
    """Land ``system``'s dates; what was handed back, in order: (date, kind, audit entries told before it)."""
    zones = Zones(landing, out / "raw", out / "quarantine")
    told: list[tuple[str, dt.date, str]] = []
    got = []
    for day, outcome in load_drops(zones, system, days or _days(), workers=workers, loaded_at=LOADED_AT,
                                   on_audit=lambda s, d, name, _frame: told.append((s, d, name))):
        assert all(d <= day for _s, d, _n in told), "an audit entry of a later date was told before this date"
        got.append((day, type(outcome).__name__, [d for _s, d, _n in told if d == day],
                    outcome.problem if isinstance(outcome, DropRefused) else outcome.status))
    return got


@pytest.mark.parametrize("system", ["erp", "survey"])
def test_workers_land_the_same_zones_as_one_drop_after_another(landing: Path, tmp_path: Path, system: str) -> None:
    one = _land(landing, tmp_path / "one", system, workers=1)
    two = _land(landing, tmp_path / "two", system, workers=2)
    assert [day for day, *_ in two] == _days()  # in date order
    assert two == one
    if system == "erp":
        kinds = {day: (kind, problem) for day, kind, _told, problem in two}
        assert kinds[BROKEN][0] == "DropRefused" and "sha256" in kinds[BROKEN][1]
        assert kinds[MISSING][0] == "DropRefused" and kinds[MISSING][1].startswith("incomplete drop")
        assert kinds[START] == ("DropLoad", "loaded")
    # each date's audit entries are told just before it is handed back: a refused drop's too
    assert all(told == [day] for day, kind, told, _p in two if day != MISSING)
    diff = differences(tmp_path / "one", tmp_path / "two")
    assert not diff, diff
    assert sum(1 for _ in (tmp_path / "two").rglob("*.parquet")) > 2 * DAYS
    assert not list((tmp_path / "two").rglob("*.tmp"))


def test_another_error_is_raised_at_its_dates_turn(landing: Path, tmp_path: Path) -> None:
    """A drop that cannot be written (a file where its partition folder goes) raises its own error when its
    date's turn comes, after the dates before it, with workers as without; nothing half-written is left."""
    blocked = START + dt.timedelta(days=1)
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        zones = Zones(landing, out / "raw", out / "quarantine")
        zones.data_file("crm", "customers", blocked).parent.parent.mkdir(parents=True)
        zones.data_file("crm", "customers", blocked).parent.write_text("not a folder")
        handed = []
        with pytest.raises(FileExistsError):
            for day, outcome in load_drops(zones, "crm", _days(), workers=workers, loaded_at=LOADED_AT):
                handed.append((day, outcome.status))
        assert handed == [(START, "loaded")], workers
        assert not list(out.rglob("*.tmp")), workers
        assert not zones.audit_dir("crm", blocked).exists() or not list(zones.audit_dir("crm", blocked).glob("*"))
        # with workers, the dates after it were landed whole or not at all (those a worker had started)
        for day in _days()[2:]:
            files = list(zones.audit_dir("crm", day).glob("*.parquet"))
            assert workers == 2 or not files
            if files:
                assert zones.data_file("crm", "customers", day).exists()


def test_stopping_early_lands_no_date_beyond_those_started(landing: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller stops after the first date: the dates never submitted are never landed, and those a
    worker had started are finished before the call returns (nothing writes into the zones after it).
    One date a range, so that the eight dates are more than the ranges started at once."""
    from ingestion import pool

    monkeypatch.setattr(pool, "RANGE_DATES", 1)
    days = _days()
    zones = Zones(landing, tmp_path / "raw", tmp_path / "quarantine")
    workers = 2
    gen = load_drops(zones, "crm", days, workers=workers, loaded_at=LOADED_AT)
    first, outcome = next(gen)
    assert first == START and outcome.status == "loaded"
    gen.close()
    submitted = workers * (AHEAD_PER_WORKER + 1) + 1  # the first window, and one more once the first came back
    landed = {day for day in days if list(zones.audit_dir("crm", day).glob("*.parquet"))}
    assert START in landed
    assert landed <= set(days[:submitted])
    assert all(day not in landed for day in days[submitted:])
    time.sleep(0.5)  # nothing more appears once the call has returned
    assert {day for day in days if list(zones.audit_dir("crm", day).glob("*.parquet"))} == landed
    assert not list(tmp_path.rglob("*.tmp"))


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def _marked(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker`` (a test's own processes and their children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_a_dead_worker_is_named_and_a_killed_parent_takes_its_workers(landing: Path, tmp_path: Path) -> None:
    marker = f"CX_POOL_TEST={uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), marker.split("=")[0]: marker.split("=")[1]}
    # 1. a worker killed while it lands (CX_CRASH_AT kills the process at the point): named, with its date
    land = f"""
        import datetime as dt, sys
        from pathlib import Path
        from ingestion.load import Zones
        from ingestion.pool import WorkerDied, load_drops
        zones = Zones(Path({str(landing)!r}), Path({str(tmp_path)!r}) / 'raw', Path({str(tmp_path)!r}) / 'quarantine')
        days = [dt.date(2026, 9, 1) + dt.timedelta(days=i) for i in range({DAYS})]
        try:
            for day, outcome in load_drops(zones, 'survey', days, workers=2):
                print('landed', day, flush=True)
        except WorkerDied as exc:
            print('WorkerDied:', exc, flush=True)
            sys.exit(3)
    """
    done = subprocess.run(_script(land), env={**env, "CX_CRASH_AT": "ingest.before_audit"}, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 3, done.stdout + done.stderr
    # the first range of eight dates and two workers: four dates (``pool.ranges``)
    assert "WorkerDied: the worker process landing the survey drops of 2026-09-01 to 2026-09-04 (4 dates) died" \
        in done.stdout
    assert "re-run to land it whole" in done.stdout
    assert "landed 20" not in done.stdout
    # 2. the parent killed while its workers land: they die with it (no worker left writing into the zones)
    slow = land.replace("print('landed', day, flush=True)", "print('landed', day, flush=True); import time; "
                                                                "time.sleep(60)")
    proc = subprocess.Popen(_script(slow), env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().startswith("landed 2026-09-01")
        assert len(_marked(marker)) == 3, "the parent and its two workers"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _marked(marker), "a worker outlived its killed parent"
    finally:
        proc.kill()


def test_errors_cross_the_process_boundary_whole() -> None:
    refused = pickle.loads(pickle.dumps(DropRefused("/landing/erp/2026-09-01/orders.csv", "sha256 mismatch")))
    assert (refused.path, refused.problem) == ("/landing/erp/2026-09-01/orders.csv", "sha256 mismatch")
    assert str(refused) == "/landing/erp/2026-09-01/orders.csv: sha256 mismatch"
    full = pickle.loads(pickle.dumps(DiskFull(Path("/data/raw/x.parquet"), "the raw zone is intact")))
    assert full.path == Path("/data/raw/x.parquet") and "the raw zone is intact" in str(full)
    assert full.errno is not None
    assert isinstance(pickle.loads(pickle.dumps(DropLoad("crm", START, "loaded", []))), DropLoad)


def test_a_small_range_lands_in_the_runs_own_process(landing: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``night.land_range`` starts workers only for a range worth them (``POOL_MIN_BYTES`` of drops); workers
    already started (an earlier range's, kept by the pool) land a small range too: they cost no start."""
    from ingestion import pool
    from orchestration import night

    pool._stop_all()  # the workers earlier tests of this process left idle
    assert pool.idle_workers() == 0
    days = _days(4)
    zones = Zones(landing, tmp_path / "raw", tmp_path / "quarantine")
    assert 0 < night.drop_bytes(zones, "crm", days) < night.POOL_MIN_BYTES
    assert night.drop_bytes(zones, "crm", [START - dt.timedelta(days=30)]) == 0  # no drop: nothing to land
    started = []
    real = pool._take
    monkeypatch.setattr(pool, "_take", lambda n: started.append(n) or real(n))
    small = [(r.load.status if r.load else None, len(r.rows)) for r in
             night.land_range(tmp_path, zones, "crm", days, workers=2)]
    assert started == [] and len(small) == 4 and all(status == "loaded" for status, _n in small)
    monkeypatch.setattr(night, "POOL_MIN_BYTES", night.drop_bytes(zones, "crm", days))  # just worth it
    zones2 = Zones(landing, tmp_path / "w" / "raw", tmp_path / "w" / "quarantine")
    pooled = [(r.load.status if r.load else None, len(r.rows)) for r in
              night.land_range(tmp_path / "w", zones2, "crm", days, workers=2)]
    assert started == [2] and pooled == small
    files = sorted(p.relative_to(tmp_path / "raw") for p in (tmp_path / "raw").rglob("*.parquet"))
    assert files and files == sorted(p.relative_to(tmp_path / "w" / "raw") for p in (tmp_path / "w" / "raw").rglob(
        "*.parquet"))  # (the rows differ by loaded_at only: the first test compares them with a fixed one)
    # the two workers are idle now: the small range, under the threshold again, is theirs
    assert pool.idle_workers() == 2
    monkeypatch.setattr(night, "POOL_MIN_BYTES", 64 * 2**20)
    zones3 = Zones(landing, tmp_path / "k" / "raw", tmp_path / "k" / "quarantine")
    kept = [(r.load.status if r.load else None, len(r.rows)) for r in
            night.land_range(tmp_path / "k", zones3, "crm", days, workers=2)]
    assert started == [2, 2] and kept == small
