"""A history backfill through ``cxw backfill`` against bare ingestion + one build (issue 18's acceptance:
"a year's backfill at M through `cxw backfill` within 1.3x of bare ingestion + one build").

    python -m benchmarks.backfill_year --landing /tmp/bench100k/landing --work /tmp/backfill_year \
        [--days 90] [--sides bare,ours]

Each side runs in its own process, into a fresh data directory under ``--work`` (the landing linked in,
never written), and is timed from outside: wall time, and the process's CPU time with its children's
(``os.wait4``: dbt's subprocess under Dagster included). Each data directory is removed once its side is
measured (at M each holds about 4 GB), so only one exists at a time.

- **bare**: what the backfill does, framework-free, with the same calls in the same order:
  ``ingestion.load.load_drop`` for every business date and system (each system's dates through
  ``ingestion.pool.load_drops``, ``CX_INGEST_WORKERS`` at once, as the ranged ``ingest`` runs land
  them); ONE ``dbt build`` with the args and window the ``warehouse`` job's dbt step passes
  (``build --exclude-resource-type unit_test``, window [first, last + 1), as_of = last:
  ``orchestration.warehouse.window_vars``); the quality gate (``expectations.gate.evaluate`` over the
  window); the Python analyses (``analytics.run.run_all`` as of the last day); the publish
  (``orchestration.publish.publish`` with the health record). ``cxw build --as-of`` runs the same dbt
  build with the unit tests too (CI's concern, not the night's).
- **ours**: ``python -m orchestration.cli backfill --start FIRST --end LAST`` exactly as a user runs it,
  with ``CX_DATA_DIR`` the fresh data directory and ``DAGSTER_HOME`` a fresh folder holding the project's
  ``dagster.yaml`` (the SQLite instance with the batching event log). It runs the ``ingest`` job once per
  range of at most 92 dates, then the ``warehouse`` job once over the whole range (dbt build, analyses,
  quality gate, publish). Its split is read from the instance afterwards: each run's wall time, each
  step's, the events stored by type.

Prints each side's figures as it ends and, last, one JSON line with everything (also written to
``--work``/backfill_year.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ingestion import settings

REPO = Path(__file__).resolve().parents[1]


def landing_days(landing: Path, limit: int | None = None) -> list[dt.date]:
    days = sorted(dt.date.fromisoformat(p.name) for p in (landing / "crm").iterdir()
                  if p.is_dir() and p.name[:1].isdigit())
    return days[:limit] if limit else days


def _timed(fn, split: dict[str, float], name: str):  # noqa: ANN001, ANN202
    t0 = time.perf_counter()
    out = fn()
    split[name] = round(time.perf_counter() - t0, 2)
    return out


def bare_inner(data: Path, landing: Path, first: dt.date, last: dt.date) -> dict:
    """The bare side, in this process (``CX_DATA_DIR`` = ``data``): returns its split in seconds."""
    from analytics import run as A
    from expectations import gate, health
    from ingestion import contract as C
    from ingestion import settings
    from ingestion.load import Zones
    from ingestion.manifest import DropRefused
    from ingestion.pool import load_drops
    from orchestration.publish import publish
    from orchestration.warehouse import NIGHTLY_ARGS, dbt_var, run_dbt, window_vars

    split: dict[str, float] = {}
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    zones = Zones(landing, data / "raw", data / "quarantine")
    warehouse = data / "warehouse.duckdb"

    def ingest() -> None:  # as the ranged `ingest` runs land them: each system's dates, CX_INGEST_WORKERS at once
        for system in C.SYSTEMS:
            for _day, outcome in load_drops(zones, system, days, workers=settings.ingest_workers()):
                if isinstance(outcome, DropRefused):
                    raise outcome

    _timed(ingest, split, "ingestion")
    end = last + dt.timedelta(days=1)
    results = _timed(lambda: run_dbt(["build", *NIGHTLY_ARGS], data_dir=data, dbt_vars=window_vars(first, end)),
                     split, "dbt")
    gated = _timed(lambda: gate.evaluate(warehouse, first, end, data / "docs" / "gx",
                                         reporting_currency=dbt_var("reporting_currency")), split, "gate")
    outputs = _timed(lambda: A.run_all(warehouse, last), split, "analytics")
    _timed(lambda: publish(warehouse, data / "serving", as_of=last.isoformat(), health=health.read(data)),
           split, "publish")
    return {"split": split, "dbt_nodes": len(results), "gate_rows": len(gated.rows),
            "gate_blocking": sum(r.blocks for r in gated.rows), "analyses": len(outputs)}


def _run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int, str]:
    """Run ``cmd``; wall seconds, CPU seconds (user + system, its waited-for children included), exit code."""
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, proc.returncode, out


def _env(data: Path, home: Path | None) -> dict[str, str]:
    env = settings.subprocess_env(data, drop=("DAGSTER_HOME", "CX_DATA_DIR"))
    env["CX_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if home:
        env["DAGSTER_HOME"] = str(home)
    return env


def _fresh(work: Path, name: str, landing: Path) -> Path:
    data = work / name
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    (data / "landing").symlink_to(landing.resolve(), target_is_directory=True)
    return data


def side_bare(work: Path, landing: Path, first: dt.date, last: dt.date) -> dict:
    data = _fresh(work, "bare", landing)
    try:
        wall, cpu, rc, out = _run([sys.executable, "-m", "benchmarks.backfill_year", "--inner-bare",
                                   "--data", str(data), "--landing", str(landing),
                                   "--first", first.isoformat(), "--last", last.isoformat()],
                                  _env(data, None), work / "bare.log")
        if rc:
            raise RuntimeError(f"bare side failed ({rc}): see {work / 'bare.log'}")
        inner = json.loads(out.strip().splitlines()[-1])
        inner["split"]["rest"] = round(wall - sum(inner["split"].values()), 2)  # imports, start-up, exit
        inner["disk_mb"] = _disk_mb(data)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {"wall": round(wall, 2), "cpu": round(cpu, 2), **inner}


def _disk_mb(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) // 2**20


def _instance_split(home: Path) -> dict:
    """Each run's wall time and each step's, and the events stored by type, from the instance in ``home``."""
    from dagster import DagsterEventType, DagsterInstance

    with settings.exported(None, {"DAGSTER_HOME": str(home)}):  # dagster.yaml's event log reads it
        instance = DagsterInstance.from_config(str(home))
    runs, events, steps = [], {}, {}
    for record in reversed(instance.get_run_records()):
        run = record.dagster_run
        started: dict[str, float] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            kind = event.event_type_value if event else "log message"
            events[kind] = events.get(kind, 0) + 1
            if event and event.step_key:
                if event.event_type == DagsterEventType.STEP_START:
                    started[event.step_key] = entry.timestamp
                elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    key = f"{run.job_name}.{event.step_key}"
                    steps[key] = round(steps.get(key, 0.0) + entry.timestamp - started.get(event.step_key,
                                                                                            entry.timestamp), 2)
        runs.append({"job": run.job_name, "status": run.status.value,
                     "seconds": round((record.end_time or 0) - (record.start_time or 0), 2),
                     "partition": run.tags.get("dagster/partition") or
                     f"{run.tags.get('dagster/asset_partition_range_start')}..."
                     f"{run.tags.get('dagster/asset_partition_range_end')}"})
    instance.dispose()
    return {"runs": runs, "steps": steps, "events": dict(sorted(events.items(), key=lambda kv: -kv[1]))}


def side_ours(work: Path, landing: Path, first: dt.date, last: dt.date) -> dict:
    data = _fresh(work, "ours", landing)
    home = data / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    try:
        wall, cpu, rc, out = _run([sys.executable, "-m", "orchestration.cli", "backfill", "--start", first.isoformat(),
                                   "--end", last.isoformat()], _env(data, home), work / "ours.log")
        if rc:
            raise RuntimeError(f"cxw backfill failed ({rc}): see {work / 'ours.log'}")
        got = _instance_split(home)
        ingest = sum(r["seconds"] for r in got["runs"] if r["job"] == "ingest")
        wh = {k.split(".", 1)[1]: v for k, v in got["steps"].items() if k.startswith("warehouse.")}
        split = {"ingestion": round(ingest, 2), "dbt": wh.get("cx_dbt", 0.0), "gate": wh.get("quality_gate", 0.0),
                 "analytics": wh.get("cx_analytics", 0.0), "publish": wh.get("serving__cx_duckdb", 0.0)}
        warehouse_run = sum(r["seconds"] for r in got["runs"] if r["job"] == "warehouse")
        split["warehouse_run_other"] = round(warehouse_run - sum(v for k, v in split.items() if k != "ingestion"), 2)
        split["rest"] = round(wall - ingest - warehouse_run, 2)  # imports, definitions, instance, between runs
        got["disk_mb"] = _disk_mb(data)
        got["stdout_tail"] = out.strip().splitlines()[-4:]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {"wall": round(wall, 2), "cpu": round(cpu, 2), "split": split, **got}


def summary(rounds: list[dict]) -> dict:
    """What the result records of ``rounds`` (each ``{side: figures}``): one round's sides as they are, with
    its ratios; several rounds as a list, each with its ratios, and the median ratios of the rounds."""
    def ratios(one: dict) -> dict:
        if "bare" not in one or "ours" not in one:
            return {}
        return {"ratio_wall": round(one["ours"]["wall"] / one["bare"]["wall"], 2),
                "ratio_cpu": round(one["ours"]["cpu"] / one["bare"]["cpu"], 2)}

    if len(rounds) == 1:
        return {**rounds[0], **ratios(rounds[0])}
    each = [ratios(one) for one in rounds]
    out: dict = {"rounds": [{**one, **r} for one, r in zip(rounds, each, strict=True)]}
    if all(each):
        out["ratio_wall_rounds"] = [r["ratio_wall"] for r in each]
        out["ratio_wall"] = round(statistics.median(out["ratio_wall_rounds"]), 2)
        out["ratio_cpu"] = round(statistics.median(r["ratio_cpu"] for r in each), 2)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.backfill_year", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--landing", type=Path, help="the drops (read only; e.g. /tmp/bench100k/landing)")
    ap.add_argument("--work", type=Path, help="where each side's fresh data directory is made, then removed")
    ap.add_argument("--days", type=int, default=None, help="the first N business dates of the landing (default all)")
    ap.add_argument("--sides", default="bare,ours", help="comma-separated, run in this order")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of the sides, interleaved (bare, ours, bare, ours, ...); the ratio is the median of "
                         "the rounds' ratios (each round's two sides see about the same machine)")
    ap.add_argument("--inner-bare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--first", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    ap.add_argument("--last", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.inner_bare:
        print(json.dumps(bare_inner(a.data, a.landing, a.first, a.last)))
        return
    if not a.landing or not a.work:
        ap.error("--landing and --work are required")
    # absolute: each side runs in a subprocess whose data directory is under --work, and Great Expectations'
    # Data Docs refuse a relative base directory (a relative --work failed the bare side's gate)
    a.landing, a.work = a.landing.resolve(), a.work.resolve()
    days = landing_days(a.landing, a.days)
    first, last = days[0], days[-1]
    a.work.mkdir(parents=True, exist_ok=True)
    result: dict = {"first": first.isoformat(), "last": last.isoformat(), "days": len(days)}
    rounds = []
    for r in range(a.rounds):
        one: dict = {}
        for side in a.sides.split(","):
            load = os.getloadavg()[0]
            got = (side_bare if side == "bare" else side_ours)(a.work, a.landing, first, last)
            got["load_before"] = round(load, 1)
            one[side] = got
            print(f"{f'round {r + 1}, ' if a.rounds > 1 else ''}{side}: {got['wall']:.1f} s wall, "
                  f"{got['cpu']:.1f} s CPU; split {got['split']}", flush=True)
        rounds.append(one)
    result.update(summary(rounds))
    if "ratio_wall" in result:
        print(f"cxw backfill / bare: {result['ratio_wall']}x wall, {result['ratio_cpu']}x CPU (target <= 1.3x)"
              + (f"; the median of {a.rounds} rounds: {result['ratio_wall_rounds']}" if a.rounds > 1 else ""))
    (a.work / "backfill_year.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
