"""`cxw backfill`'s ingestion against the bare ingestion loop, measured in one run (issue 18).

    python -m benchmarks.backfill_ranges --customers 2000 --days 60 [--repeat 2] [--keep DIR]

Generates a company into a temporary directory, then times, interleaved run by run so both see the
same machine state (each run into a fresh data directory):

1. bare: ``ingestion.load.load_drop`` for every system and business date in a plain Python loop;
2. backfill: what ``cxw backfill --start A --end B`` runs before its warehouse build - the writer lock
   and recovery (``_prepare``), then the Dagster ``ingest`` job once per range of at most
   ``MAX_DAYS_PER_RUN`` dates (``_ingest_chunks``, ``_run_ingest``, ``_ingest_outcomes``), on a fresh
   persistent Dagster instance (``DAGSTER_HOME`` holding the project's ``dagster.yaml``) - with the
   per-date health record, the checks and the materializations.

With ``--ephemeral``, also the backfill on an ephemeral Dagster instance (``cxw`` without
DAGSTER_HOME: the event log in memory), which separates Dagster's SQLite event log from the rest.

Prints each run (wall time, and this process's CPU time over all its threads, which other work on a
shared machine disturbs less), the medians and the ratios backfill / bare (target: at most 1.3).
Imports and the building of Dagster's definitions happen once, before anything is timed, and so does
the creation of a fresh DAGSTER_HOME's storage (printed apart): a process and an instance pay them
once, whatever the length of the backfill.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELS = {"bare": "bare load_drop loop", "backfill": "cxw backfill ingestion (fresh DAGSTER_HOME)",
          "ephemeral": "cxw backfill ingestion (ephemeral instance)"}


@dataclass
class Timed:
    seconds: float  # wall
    cpu: float  # this process's CPU time, every thread (less sensitive to other work on the machine)
    setup: float = 0.0  # backfill: creating the fresh Dagster instance's storage (once per DAGSTER_HOME)
    landed: int = 0
    outcomes: list = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # backfill: what Dagster stored, by event type


def bare(landing: Path, data: Path, days: list[dt.date]) -> Timed:
    from ingestion import contract as C
    from ingestion.load import Zones, load_drop

    zones = Zones(landing, data / "raw", data / "quarantine")
    t0, c0 = time.perf_counter(), time.process_time()
    for day in days:
        for system in C.SYSTEMS:
            load_drop(zones, system, day)
    return Timed(time.perf_counter() - t0, time.process_time() - c0, landed=len(days) * len(C.SYSTEMS))


def backfill(landing: Path, data: Path, days: list[dt.date], persistent: bool = True) -> Timed:
    """The ingestion half of ``cxw backfill`` on ``data`` (landing linked in): on a fresh DAGSTER_HOME
    (``persistent``: SQLite storage, as `make` sets it up; the instance ``cxw`` gets from
    ``DagsterInstance.get()``), else on an ephemeral instance (in memory: what ``cxw`` uses when
    DAGSTER_HOME is unset)."""
    from dagster import AssetKey, DagsterInstance

    from ingestion import settings
    from orchestration import cli, writer

    data.mkdir(parents=True)
    (data / "landing").symlink_to(landing, target_is_directory=True)
    home = data / "dagster_home"
    if persistent:
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    landed = 0
    outcomes: list = []

    def on_day(_system: str, _day: dt.date) -> None:
        nonlocal landed
        landed += 1

    # CX_DATA_DIR: where cxw's lock, recovery and the assets look; DAGSTER_HOME, as `cxw` runs with it set
    # (dagster.yaml's event log reads it)
    with settings.exported(data, {"DAGSTER_HOME": str(home)} if persistent else None):
        try:
            t0 = time.perf_counter()
            instance = DagsterInstance.from_config(str(home)) if persistent else DagsterInstance.ephemeral()
            if persistent:  # the storage of a new DAGSTER_HOME is created on first use: once, not per backfill
                instance.get_runs(limit=1)
                instance.get_latest_materialization_event(AssetKey(["raw", "crm", "customers"]))
            setup = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), time.process_time()
            for chunk in cli._ingest_chunks(days):  # what `cxw backfill` runs before its warehouse build
                cli._prepare(instance)
                outcomes += cli._ingest_outcomes(cli._run_ingest(instance, chunk, on_day), chunk)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            events: dict[str, int] = {}
            for run in instance.get_runs():
                for entry in instance.all_logs(run.run_id):
                    kind = entry.dagster_event.event_type_value if entry.dagster_event else "log message"
                    events[kind] = events.get(kind, 0) + 1
            instance.dispose()
        finally:
            writer.release(data)
    return Timed(seconds, cpu, setup, landed, outcomes, events)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.backfill_ranges", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=2, help="interleaved runs of each path (median)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--ephemeral", action="store_true",
                    help="also time the backfill on an ephemeral (in-memory) Dagster instance, as `cxw` runs "
                         "without DAGSTER_HOME: what the ranged run costs without Dagster's SQLite event log")
    ap.add_argument("--keep", type=Path, help="generate into (or reuse the landing of) this directory and keep it")
    a = ap.parse_args()
    # the business dates end well before today, so every one is a partition (`cxw backfill` refuses others)
    start = dt.date.today() - dt.timedelta(days=a.days + 2)
    days = [start + dt.timedelta(days=i) for i in range(a.days)]
    base = a.keep or Path(tempfile.mkdtemp(prefix="backfill_ranges_"))
    landing = base / "landing"
    try:
        if not (landing / "_generated").exists():
            from simulator import GeneratorConfig, generate

            t0 = time.perf_counter()
            generate(GeneratorConfig(customers=a.customers, days=a.days, start=start, seed=a.seed), landing)
            (landing / "_generated").write_text(f"{a.customers} x {a.days} from {start}, seed {a.seed}\n")
            print(f"generated {a.customers:,} customers x {a.days} days from {start} in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        else:
            days = sorted({dt.date.fromisoformat(p.name) for p in (landing / "crm").iterdir() if p.is_dir()})
        t0 = time.perf_counter()
        import orchestration.cli  # noqa: F401
        from orchestration.definitions import defs

        defs.resolve_job_def("ingest")
        print(f"imports and Dagster definitions: {time.perf_counter() - t0:.1f} s (not timed below)", flush=True)
        paths = ["bare", "backfill"] + (["ephemeral"] if a.ephemeral else [])
        runs: dict[str, list[Timed]] = {p: [] for p in paths}
        for i in range(a.repeat):  # interleaved: each round runs every path once
            run = base / f"run{i}"
            shutil.rmtree(run, ignore_errors=True)
            for path in paths:
                t = (bare(landing, run / path, days) if path == "bare"
                     else backfill(landing, run / path, days, persistent=path == "backfill"))
                runs[path].append(t)
                failed = [o for o in t.outcomes if o[0] in ("failed", "error")]
                extra = f", instance storage created in {t.setup:.2f} s before" if path == "backfill" else ""
                print(f"round {i + 1}: {LABELS[path]} {t.seconds:.2f} s wall, {t.cpu:.2f} s CPU ({t.landed} drops"
                      + (f", {len(failed)} failures, {len(t.outcomes) - len(failed)} warnings" if path != "bare"
                         else "") + f"{extra})", flush=True)
                if failed:
                    print("  first failure:", failed[0])
                if t.events:
                    top = sorted(t.events.items(), key=lambda kv: -kv[1])
                    print(f"  {sum(t.events.values()):,} events stored: "
                          + ", ".join(f"{n:,} {kind}" for kind, n in top[:6]), flush=True)
            shutil.rmtree(run, ignore_errors=True)
        med = {p: (statistics.median(t.seconds for t in ts), statistics.median(t.cpu for t in ts))
               for p, ts in runs.items()}
        print(f"\n{a.customers:,} customers x {len(days)} days, median of {a.repeat} interleaved rounds; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for p in paths:
            wall, cpu = med[p]
            ratio = "" if p == "bare" else (f"  ratio {wall / med['bare'][0]:.2f}x wall, {cpu / med['bare'][1]:.2f}x "
                                            "CPU (target <= 1.3x)")
            print(f"  {LABELS[p]:<44} {wall:7.2f} s wall {cpu:7.2f} s CPU{ratio}")
    finally:
        if a.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
