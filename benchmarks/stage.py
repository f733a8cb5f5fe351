"""One benchmark stage in its own process, so each stage's peak RSS is its own.

    python -m benchmarks.stage <stage> --data DIR [--landing DIR] [--day YYYY-MM-DD] ...

The last line on stdout is a JSON object: ``seconds`` (the stage's work, timed in-process, imports
excluded), ``peak_rss_mib`` (the stage's process tree: see ``TreeRss``), ``self_peak_rss_mib`` (this
process's own high-water mark, ``VmHWM``) and stage-specific figures. The parent (``benchmarks.harness``) also times the
whole process, imports included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STAGES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {}
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss_bytes(root: int) -> int:
    """The resident set of ``root`` and every live descendant (``/proc``, summed): what the stage holds at once,
    its ingestion workers (``ingestion.pool``, ``CX_INGEST_WORKERS`` processes) included."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:  # ended between the listing and the read
                continue
            # the field after the state, past the command name in parentheses (which may hold spaces)
            children.setdefault(int(stat[stat.rindex(b")") + 2:].split()[1]), []).append(int(entry.name))
    tree, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in tree:
                tree.add(child)
                todo.append(child)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


def own_peak_rss_bytes() -> int:
    """This process's peak RSS since it started: ``VmHWM``, the high-water mark of its own address space.
    Not ``getrusage``'s ``ru_maxrss``: Linux carries that across ``fork`` and ``exec``, so a process started by
    a 500 MiB one reported at least 500 MiB whatever it held itself (seen in tests/test_benchmarks.py)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # without /proc: an upper bound


def own_peak_rss_mib() -> float:
    return round(own_peak_rss_bytes() / 2**20, 1)


class TreeRss:
    """The peak of the stage's process tree's summed RSS, sampled every ``interval`` seconds by a thread.
    A sample can miss a short spike, so the peak reported is never below this process's own high-water mark,
    which cannot. Without ``/proc`` only that high-water mark is reported."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, name="tree-rss", daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, _tree_rss_bytes(os.getpid()))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> TreeRss:
        if os.path.isdir("/proc/self"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def figures(self) -> dict[str, float]:
        own = own_peak_rss_bytes()
        return {"peak_rss_mib": round(max(own, self.peak) / 2**20, 1), "self_peak_rss_mib": round(own / 2**20, 1)}


def stage(fn: Callable[[argparse.Namespace], dict[str, Any]]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    STAGES[fn.__name__] = fn
    return fn


@stage
def generate(a: argparse.Namespace) -> dict[str, Any]:
    from simulator import GeneratorConfig
    from simulator import generate as run

    cfg = GeneratorConfig(customers=a.customers, days=a.days, start=a.start, seed=a.seed)
    t0 = time.perf_counter()
    result = run(cfg, a.landing)
    seconds = time.perf_counter() - t0
    files = [p for p in Path(a.landing).rglob("*") if p.is_file()]
    rows = sum(result.truth["volumes"]["records_delivered"].values())
    return {"seconds": seconds, "rows": rows, "bytes": sum(p.stat().st_size for p in files)}


@stage
def ingest_ours(a: argparse.Namespace) -> dict[str, Any]:
    """``ingestion.load.load_drop`` (what the Dagster assets call) for every drop into ``--data``, each system's
    dates through ``ingestion.pool.load_drops`` as a ranged run lands them (``CX_INGEST_WORKERS`` at once)."""
    from benchmarks.ingestion_throughput import ours

    t0 = time.perf_counter()
    rows = ours(a.landing, a.data)
    return {"seconds": time.perf_counter() - t0, "rows": rows}


@stage
def ingest_bare(a: argparse.Namespace) -> dict[str, Any]:
    """Bare polars: read each file (decoding cp1252 where the contract says so) and write Parquet."""
    from benchmarks.ingestion_throughput import bare_polars

    t0 = time.perf_counter()
    rows = bare_polars(a.landing, a.data / "bare")
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def _dbt(args: list[str], data: Path, dbt_vars: dict[str, str]) -> dict[str, Any]:
    from orchestration.warehouse import run_dbt

    t0 = time.perf_counter()
    results = run_dbt(args, data_dir=data, dbt_vars=dbt_vars)
    seconds = time.perf_counter() - t0
    timed = sorted(((r.node.name, float(r.execution_time or 0.0), str(r.node.resource_type)) for r in results),
                   key=lambda t: -t[1])
    models = [t for _n, t, kind in timed if kind.endswith("model")]
    return {"seconds": seconds, "models": len(models), "tests": len(timed) - len(models),
            "kpi_rows": _kpi_rows(data),
            # where the time goes: the slowest nodes, and models vs tests (summed over dbt's threads)
            "slowest": [[name, round(t, 2)] for name, t, _kind in timed[:8]],
            "model_seconds": round(sum(models), 2),
            "test_seconds": round(sum(t for _n, t, _k in timed) - sum(models), 2)}


def _kpi_rows(data: Path) -> int | None:
    """Rows of marts.kpi_experience_daily the hand-written script also computes (benchmarks/handwritten.py)."""
    from benchmarks.handwritten import COMPARED_ROWS

    return _count(data, COMPARED_ROWS)


def _count(data: Path, table: str) -> int | None:
    import duckdb

    try:
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            return con.execute(f"select count(*) from {table}").fetchone()[0]
    except duckdb.Error:
        return None


@stage
def dbt_full_build(a: argparse.Namespace) -> dict[str, Any]:
    """``dbt build --full-refresh`` of the whole project (models and tests) as of ``--day``."""
    return _dbt(["build", "--full-refresh"], a.data, {"as_of": a.day.isoformat()})


@stage
def dbt_kpi_only(a: argparse.Namespace) -> dict[str, Any]:
    """Only what the KPI mart needs (its models and the rate seed), no tests:
    ``dbt build --full-refresh -s +kpi_experience_daily`` without data and unit tests."""
    return _dbt(["build", "--full-refresh", "--select", "+kpi_experience_daily", "--exclude-resource-type", "test",
                 "--exclude-resource-type", "unit_test"], a.data, {"as_of": a.day.isoformat()})


@stage
def handwritten_sql(a: argparse.Namespace) -> dict[str, Any]:
    """The hand-written DuckDB script computing kpi_experience_daily straight from the raw Parquet."""
    from benchmarks.handwritten import run_handwritten
    from ingestion import settings

    db = a.data / "handwritten.duckdb"
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    rows = run_handwritten(a.data / "raw", a.day, database=str(db), settings=settings.duckdb_settings())
    seconds = time.perf_counter() - t0
    db.unlink(missing_ok=True)
    return {"seconds": seconds, "kpi_rows": rows}


@stage
def nightly_bare(a: argparse.Namespace) -> dict[str, Any]:
    """One night without Dagster: ingest the day's four drops, then one ``dbt build`` on the
    partition window [day, day + 1) with as_of = day (the vars the Dagster assets pass)."""
    from ingestion import contract as C
    from ingestion.load import Zones, load_drop

    zones = Zones(a.landing, a.data / "raw", a.data / "quarantine")
    t0 = time.perf_counter()
    for system in C.SYSTEMS:
        load_drop(zones, system, a.day)
    ingest_s = time.perf_counter() - t0
    # the same command and vars as the Dagster assets, and as they do, no earlier run's artifacts left in the target
    from orchestration.warehouse import NIGHTLY_ARGS, clear_artifacts, engine_target, target_path, window_vars

    clear_artifacts(target_path(a.data, engine_target()))
    out = _dbt(["build", *NIGHTLY_ARGS], a.data, window_vars(a.day, a.day + dt.timedelta(days=1)))
    return {"seconds": ingest_s + out["seconds"], "ingest_seconds": ingest_s, "dbt_seconds": out["seconds"],
            "kpi_rows": out["kpi_rows"], "dbt": out}


@stage
def nightly_nothing(a: argparse.Namespace) -> dict[str, Any]:
    """The floor under the night's target: the night of ``--day`` as ``nightly_bare`` runs it (not timed), then the
    next night's ``dbt build`` on [day + 1, day + 2) with as_of = day + 1, a window no drop lands in: nothing is
    new, so what it costs is what every night pays whatever it brings (the change detections over history, the
    tables rebuilt each night, every test). ``seconds``: that second build alone."""
    from ingestion import contract as C
    from ingestion.manifest import drop_folder
    from orchestration.warehouse import NIGHTLY_ARGS, window_vars

    nothing = a.day + dt.timedelta(days=1)
    held = [system for system in C.SYSTEMS if drop_folder(a.landing, system, nothing).exists()]
    if held:  # refused before the night before it runs: nothing is landed or built
        raise RuntimeError(f"the landing holds drops of {nothing} ({', '.join(held)}): the night after --day "
                           "must have none")
    before = nightly_bare(a)
    out = _dbt(["build", *NIGHTLY_ARGS], a.data, window_vars(nothing, nothing + dt.timedelta(days=1)))
    return {"seconds": out["seconds"], "night_before_seconds": before["seconds"], "kpi_rows": out["kpi_rows"],
            "dbt": out}


@stage
def nightly_bare_full(a: argparse.Namespace) -> dict[str, Any]:
    """The ``nightly`` job's whole work for ``--day`` without Dagster, in the job's order, through the same
    framework-free functions its steps call (``orchestration/night.py``): land the four drops with their health
    rows; the same ``dbt build`` (args, window, environment, target folder), its tests in the health record and
    the build mark; the quality gate; the Python analyses; the publish with the health record. Seconds per step
    under the job's step names (``steps``), so each compares with the Dagster step of the same name."""
    import json

    from analytics import run as A
    from expectations import anomaly, health
    from ingestion import contract as C
    from ingestion.load import Zones
    from orchestration import night
    from orchestration.publish import publish, publish_health
    from orchestration.warehouse import (
        DBT_PROJECT,
        NIGHTLY_ARGS,
        clear_artifacts,
        engine_target,
        ensure_manifest,
        landed_since_build,
        mark_built,
        node_results,
        run_dbt,
        target_path,
        window_from,
        window_vars,
    )

    manifest_path = DBT_PROJECT / "target" / "manifest.json"
    ensure_manifest(manifest_path)  # what importing the Dagster definitions does (orchestration/assets/warehouse.py)
    root, day, end = a.data, a.day, a.day + dt.timedelta(days=1)
    zones = Zones(a.landing, root / "raw", root / "quarantine")
    steps: dict[str, float] = {}
    t_all = time.perf_counter()

    def stop(why: str) -> None:  # as the job does when a step fails: the health record is served, nothing else
        publish_health(root / "serving", health.read(root))
        raise RuntimeError(f"the bare night failed for {day}: {why}")

    for system in C.SYSTEMS:  # the four ingestion steps (land_<system>)
        t0 = time.perf_counter()
        cfg = anomaly.load_config()
        landing = night.land(root, zones, system, day, cfg, night.audit_history(zones, system, [day], cfg))
        if landing.refused is not None or any(r.blocks for r in landing.rows):
            stop(f"{system} drop refused or blocked: {landing.refused}")
        steps[f"land_{system}"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # cx_dbt
    target = engine_target()
    started = time.time()
    dbt_window = window_from(window_vars(day, end), landed_since_build(root, target))
    clear_artifacts(target_path(root, target))  # as the Dagster step does: no dbt artifacts at night
    results = run_dbt(["build", *NIGHTLY_ARGS], data_dir=root, dbt_vars=dbt_window)
    dbt_build_s = time.perf_counter() - t0
    run_results = node_results(results)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    night.record_dbt_tests(root, [day], run_results, manifest)
    mark_built(root, target, started)
    steps["cx_dbt"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # quality_gate
    judged = night.judge(root, day, end)
    if any(r.blocks for r in judged.window):
        stop("blocking checks failed")
    steps["quality_gate"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # cx_analytics
    outputs = A.run_all(root / "warehouse.duckdb", day)
    health.write(root, [day], "analytics", night.analytics_health(outputs, [day], day))
    if any(out.problems for out in outputs):
        stop("analyses not written (declared schema)")
    steps["cx_analytics"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # serving__cx_duckdb
    record = health.read(root)
    _window, blocked = night.publish_window(record, day.isoformat(), day.isoformat())
    if blocked.height:
        raise RuntimeError(f"blocking checks failed for {day}: not publishing")
    published = publish(root / "warehouse.duckdb", root / "serving", as_of=day.isoformat(), health=record)
    steps["serving__cx_duckdb"] = time.perf_counter() - t0
    seconds = time.perf_counter() - t_all
    timed = sorted(((r.node.name, float(r.execution_time or 0.0)) for r in results), key=lambda t: -t[1])
    return {"seconds": seconds, "steps": {k: round(v, 2) for k, v in steps.items()},
            "dbt_build_seconds": round(dbt_build_s, 2), "kpi_rows": _kpi_rows(root),
            "analytics_seconds": {out.table: round(out.seconds, 2) for out in outputs},
            "dbt_slowest": [[name, round(t, 2)] for name, t in timed[:8]],
            "publication": published.summary()}


@stage
def nightly_dagster(a: argparse.Namespace) -> dict[str, Any]:
    """The ``nightly`` job for ``--day`` (ingest -> dbt -> GX and dbt checks -> publish), in process."""
    import dagster as dg

    from analytics import run as A
    from ingestion import settings
    from orchestration.cli import QUIET
    from orchestration.definitions import defs
    from orchestration.publish import Publication

    job = defs.resolve_job_def("nightly")
    # the instance `cxw nightly` runs on: a DAGSTER_HOME holding the project's dagster.yaml (its batching
    # event log), fresh for each night measured; its storage created before the clock starts (once per home)
    home = a.data / "dagster_home_bench"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", home / "dagster.yaml")
    with settings.exported(a.data, {"DAGSTER_HOME": str(home)}), dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        t0 = time.perf_counter()
        result = job.execute_in_process(partition_key=a.day.isoformat(), instance=instance, raise_on_error=False,
                                        run_config=QUIET)
        seconds = time.perf_counter() - t0
        steps: dict[str, float] = {}
        started: dict[str, float] = {}
        for entry in instance.all_logs(result.run_id):
            event = entry.dagster_event
            if event is None or not event.step_key:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                started[event.step_key] = entry.timestamp
            elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                steps[event.step_key] = round(entry.timestamp - started.get(event.step_key, entry.timestamp), 2)
        published = instance.get_latest_materialization_event(dg.AssetKey(["serving", "cx_duckdb"]))
        analytics = {}  # each analysis table's own seconds (its materialization's metadata), as the bare night reports
        for table in (t.name for analysis in A.ANALYSES for t in analysis.tables):
            event = instance.get_latest_materialization_event(dg.AssetKey([A.SCHEMA_NAME, table]))
            meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
            if "seconds" in meta:
                analytics[table] = getattr(meta["seconds"], "value", meta["seconds"])
    if not result.success:
        raise RuntimeError(f"the nightly job failed for {a.day}")
    meta = published.asset_materialization.metadata if published and published.asset_materialization else {}
    # what the night's publish wrote: every table (and why) or only the changed ones; where its time went
    publication = {k: getattr(meta[k], "value", meta[k]) for k in Publication.SUMMARY_KEYS if k in meta}
    return {"seconds": seconds, "steps": steps, "kpi_rows": _kpi_rows(a.data), "publication": publication,
            "analytics_seconds": analytics, "step_order": list(steps)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=sorted(STAGES))
    ap.add_argument("--data", type=Path, required=True, help="data directory of the stage (CX_DATA_DIR)")
    ap.add_argument("--landing", type=Path)
    ap.add_argument("--day", type=dt.date.fromisoformat, help="as_of / the night's business date")
    ap.add_argument("--customers", type=int)
    ap.add_argument("--days", type=int)
    ap.add_argument("--start", type=dt.date.fromisoformat)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args(argv)
    from ingestion import settings  # stdlib only: no weight in the stage's figures
    a.data.mkdir(parents=True, exist_ok=True)
    # CX_DATA_DIR (and the DuckDB settings) for the stage and the dbt it runs
    with settings.exported(a.data), TreeRss() as rss:
        out = STAGES[a.stage](a)
    out.update(rss.figures())
    sys.stdout.flush()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
