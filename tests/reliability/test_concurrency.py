"""Concurrency (docs/reliability.md, "Concurrency"): BI readers during publishes, two nightlies of the
same date started at once, the drop sensor firing while a backfill runs.

* BI readers in their own processes query the served copy in a loop (the DuckDB file, every table;
  the Parquet version the link points to, with DuckDB and polars) while a small warehouse is
  published over and over, each time with other rows: every read must see one whole publication
  (every table of the same generation, the row counts ``_publication`` names) and none may fail.
  ``make test`` runs 30 publishes and three readers, ``make reliability`` 100 publishes and five.
* Two ``cxw nightly`` of the same date started at the same instant: one runs, the other waits for
  the writer lock naming the holder, then runs; the two Dagster runs never overlap, and BI ends
  with exactly what one uninterrupted night serves (``make reliability``).
* The drop sensor evaluated while ``cxw backfill`` runs, with a drop delivered late: the run it
  requests, executed the way the daemon's run worker executes it, waits for the backfill to end
  before its first step, then lands the drop; the end state is the one of the sequential order
  (``make reliability``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from orchestration.publish import publish, publish_health
from tests.reliability import conftest
from tests.reliability.harness import (
    NIGHT_ONE,
    NIGHT_TWO,
    ROOT,
    RUN_TIMEOUT,
    Site,
    contents,
    cxw,
    differing,
    digest,
    leftovers,
    rows_lost,
)

CATEGORY = "concurrency"  # the section of RELIABILITY.md
record = functools.partial(conftest.record, category=CATEGORY)
pytestmark = pytest.mark.reliability

# --- BI readers during publishes -----------------------------------------------------------------------

TABLES = ("visits", "orders", "kpis")


def expected_rows(table: str, gen: int) -> int:
    """Every publication has other row counts: a read mixing two of them is seen."""
    return {"visits": 100 + (gen * 37) % 200, "orders": 20 + gen, "kpis": 10 + gen % 3}[table]


READER = textwrap.dedent('''
    """A BI reader following the reader contract (orchestration/publish.py), in a loop until told to stop."""
    import json, os, sys, time
    from pathlib import Path
    import duckdb, polars as pl

    serving, stop, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    ROWS = {"visits": lambda g: 100 + (g * 37) % 200, "orders": lambda g: 20 + g, "kpis": lambda g: 10 + g % 3}
    stats = {"reads": 0, "errors": [], "partial": [], "generations": set(), "naive_reads": 0, "naive_mixed": 0,
             "naive_errors": []}

    def judge(marts, health, where):
        """marts: table -> (set of generations, rows); health: set of generations."""
        gens = set().union(*(g for g, _ in marts.values()))
        problems = []
        if set(marts) != set(ROWS) or len(gens) != 1:
            problems.append(f"{where}: tables {sorted(marts)} of generations {sorted(gens)}")
        else:
            (g,) = gens
            stats["generations"].add(g)
            problems += [f"{where}: {t} has {n} rows, generation {g} has {ROWS[t](g)}"
                         for t, (_, n) in marts.items() if n != ROWS[t](g)]
            if len(health) != 1 or not g <= min(health) < g + 10:
                problems.append(f"{where}: data_health of generations {sorted(health)} with marts of {g}")
        if problems:
            stats["partial"].append("; ".join(problems))

    def read_database():
        with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
            published = con.execute("select as_of, table_name, row_count from _publication").fetchall()
            marts = {}
            for as_of, table, n in published:
                gens = {r[0] for r in con.execute(f'select distinct gen from "{table}"').fetchall()}
                rows = con.execute(f'select count(*) from "{table}"').fetchone()[0]
                if rows != n or gens != {int(as_of)}:
                    stats["partial"].append(f"database: {table} has {rows} rows of {sorted(gens)}, "
                                            f"_publication says {n} of {as_of}")
                marts[table] = (gens, rows)
            health = {r[0] for r in con.execute("select distinct gen from data_health").fetchall()}
        judge(marts, health, "database")

    def read_parquet():
        version = Path(os.path.realpath(serving / "parquet"))  # the contract: resolve the link once
        marts, health = {}, set()
        for f in sorted(version.iterdir()):  # polars, file by file
            if kind == "slow":  # a big table: reading one file spans publishes
                time.sleep(0.3)
            df = pl.read_parquet(f)
            if f.stem == "data_health":
                health = set(df["gen"].to_list())
            else:
                marts[f.stem] = (set(df["gen"].to_list()), df.height)
        judge(marts, health, f"parquet (polars) {version.name}")
        with duckdb.connect() as con:  # DuckDB, one query over every file of the version
            rows = con.execute(f"select parse_filename(filename, true) as t, list(distinct gen), count(*) "
                               f"from read_parquet('{version}/*.parquet', union_by_name = true, filename = true) "
                               "group by t").fetchall()
        marts = {t: (set(g), n) for t, g, n in rows if t != "data_health"}
        judge(marts, {g for t, gs, _ in rows if t == "data_health" for g in gs}, f"parquet (duckdb) {version.name}")

    def read_through_the_link():
        """Not the contract: a glob through the link resolves it once per file, so a publish landing
        in between gives files of two publications (counted, not judged)."""
        with duckdb.connect() as con:
            gens = con.execute(f"select list(distinct gen) from read_parquet('{serving}/parquet/*.parquet', "
                               "union_by_name = true, filename = true) "
                               "where parse_filename(filename, true) <> 'data_health'").fetchone()[0]
        stats["naive_reads"] += 1
        stats["naive_mixed"] += len(gens) > 1

    while not stop.exists():
        try:
            read_database() if kind == "database" else read_parquet()
            stats["reads"] += 1
        except Exception as exc:  # every error counts
            stats["errors"].append(repr(exc)[:300])
        if kind != "database":
            try:
                read_through_the_link()
            except Exception as exc:
                stats["naive_errors"].append(repr(exc)[:300])
    stats["generations"] = len(stats["generations"])
    print(json.dumps(stats))
''')


def _warehouse(path: Path, gen: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        for t in TABLES:
            con.execute(f"create or replace table marts.{t} as select {gen} as gen, i, "
                        f"'{t}-' || i || '-' || {gen} as label, i * 1.5 + {gen} as value "
                        f"from range({expected_rows(t, gen)}) r(i)")


def _health(gen: int) -> pl.DataFrame:
    return pl.DataFrame({"gen": [gen] * 3, "check_name": ["a", "b", "c"], "status": ["pass", "warn", "pass"]})


def run_publishes(tmp_path: Path, publishes: int, readers: int = 2) -> dict:
    """``publishes`` publishes of a small warehouse (every tenth a health-only publish) while
    ``readers`` pairs of BI readers (DuckDB file, Parquet) and one slow Parquet reader (a pause before
    each file, as a big table takes: one read spans several publishes) read in a loop; their counts."""
    warehouse, serving, stop = tmp_path / "warehouse.duckdb", tmp_path / "serving", tmp_path / "stop"
    _warehouse(warehouse, 0)
    publish(warehouse, serving, as_of="0", health=_health(0))
    procs = [subprocess.Popen([sys.executable, "-c", READER, str(serving), str(stop), kind], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(readers) for kind in ("database", "parquet")] + [
        subprocess.Popen([sys.executable, "-c", READER, str(serving), str(stop), "slow"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    time.sleep(1.5)  # the readers are reading before the first publish
    t0 = time.monotonic()
    served = 0
    for gen in range(1, publishes + 1):
        if gen % 10 == 5:  # a blocked night: only the health record moves, the marts stay
            publish_health(serving, _health(gen))
        else:
            _warehouse(warehouse, gen)
            publish(warehouse, serving, as_of=str(gen), health=_health(gen))
            served = gen
    seconds = time.monotonic() - t0
    time.sleep(0.5)
    stop.touch()
    stats = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        stats.append(json.loads(out.splitlines()[-1]))
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        last = con.execute("select distinct as_of from _publication").fetchall()
    assert last == [(str(served),)]
    versions = list((serving / "parquet_versions").iterdir())
    return {"seconds": seconds, "stats": stats, "versions": len(versions),
            "reads": sum(s["reads"] for s in stats), "errors": [e for s in stats for e in s["errors"]],
            "partial": [e for s in stats for e in s["partial"]],
            "generations": max((s["generations"] for s in stats), default=0),
            "naive_reads": sum(s["naive_reads"] for s in stats), "naive_mixed": sum(s["naive_mixed"] for s in stats),
            "naive_errors": [e for s in stats for e in s["naive_errors"]]}


@pytest.mark.parametrize(("publishes", "readers"), [
    pytest.param(30, 1, id="30_publishes"),  # make test (about 20 s here)
    pytest.param(100, 2, id="100_publishes", marks=pytest.mark.reliability_full),  # make reliability (1-2 min)
])
def test_bi_readers_never_fail_nor_see_a_partial_publication(publishes: int, readers: int, tmp_path: Path) -> None:
    got = run_publishes(tmp_path, publishes, readers)
    ok = not got["errors"] and not got["partial"] and got["reads"] > publishes
    record(scenario=f"BI readers during {publishes} publishes", ok=ok, rows_lost=0,
           detail=f"{publishes} publishes in {got['seconds']:.0f} s ({publishes // 10} health-only); {readers} "
                  f"DuckDB-file, {readers} Parquet and 1 slow Parquet reader(s) in a loop: "
                  f"{got['reads']:,} reads, {len(got['errors'])} errors, {len(got['partial'])} partial, "
                  f"{got['generations']} publications seen by one reader; a glob through the link itself "
                  f"(not the contract): {got['naive_mixed']} of {got['naive_reads']:,} reads mixed two "
                  f"publications, {len(got['naive_errors'])} errors")
    assert not got["errors"], got["errors"][:5]
    assert not got["partial"], got["partial"][:5]
    assert got["reads"] > publishes and got["generations"] > publishes // 10, got
    assert not got["naive_errors"], got["naive_errors"][:5]


# --- two nightlies of one date, the drop sensor during a backfill (cxw in its own processes) -------------

WAIT = "900"  # CX_SLOT_WAIT_SECONDS: a waiting run outlasts a whole night on a loaded machine


def _start(site: Site, *args: str) -> subprocess.Popen:
    """``cxw <args>`` in its own process, allowed to wait for the writer as long as a night takes."""
    return subprocess.Popen([sys.executable, "-m", "orchestration.cli", *args], cwd=ROOT,
                            env={**site.env(), "CX_SLOT_WAIT_SECONDS": WAIT}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _instance(site: Site, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202 - DagsterInstance
    from dagster import DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(site.home))
    return DagsterInstance.get()


def _utc(ts: float) -> str:
    return f"{dt.datetime.fromtimestamp(ts, dt.UTC):%H:%M:%S}"


@pytest.mark.reliability_full
def test_two_nightlies_of_one_date_started_at_once(night_one: Site, reference: dict, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Both run, one after the other: the second waits for the writer lock naming the first, the two
    Dagster runs never overlap, and BI gets exactly what one uninterrupted night two serves."""
    from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

    from orchestration.recovery import PID_TAG

    site = night_one.copy(tmp_path)
    args = ("nightly", "--date", NIGHT_TWO.isoformat())
    procs = [_start(site, *args), _start(site, *args)]  # the same instant
    outs = [p.communicate(timeout=2 * RUN_TIMEOUT) for p in procs]
    codes = [p.returncode for p in procs]
    waited = [i for i, (_, err) in enumerate(outs) if "waiting for the writer lock" in err]
    with _instance(site, monkeypatch) as instance:
        records = [r for r in instance.get_run_records(filters=RunsFilter(job_name="nightly"))
                   if r.dagster_run.tags.get(PID_TAG) in {str(p.pid) for p in procs}]
    runs = sorted((r.start_time, r.end_time, r.dagster_run.status) for r in records)
    overlap = len(runs) != 2 or runs[0][1] is None or runs[1][0] < runs[0][1]
    got = contents(site) if codes == [0, 0] else {}
    lost, left = rows_lost(reference, got), leftovers(site)
    equal = codes == [0, 0] and digest(got) == digest(reference)
    said = outs[waited[0]][1] if waited else ""
    holder = procs[1 - waited[0]] if waited else None
    names_holder = holder is not None and f"held by pid {holder.pid} on" in said and " ".join(args) in said
    line = next((x for x in said.splitlines() if x.startswith("waiting for the writer lock")), "")
    said_holder = line[line.find("held by"):line.find("; checking")]
    record(scenario="two cxw nightly of one date started at once",
           ok=codes == [0, 0] and len(waited) == 1 and names_holder and not overlap and equal and not left,
           rows_lost=lost,
           detail=(f"exit codes {codes}; the second waited, saying: '{said_holder}'; "
                   + (f"Dagster runs {_utc(runs[0][0])}-{_utc(runs[0][1])} and {_utc(runs[1][0])}-"
                      f"{_utc(runs[1][1])} UTC, no overlap" if not overlap else f"runs overlap or missing: {runs}")
                   + f"; served = one uninterrupted night: {'yes' if equal else 'NO'}"))
    assert codes == [0, 0], outs
    assert len(waited) == 1 and names_holder, said
    assert not overlap, runs
    assert all(status == DagsterRunStatus.SUCCESS for *_, status in runs), runs
    assert lost == 0 and not left, left
    assert equal, differing(reference, got)


SENSOR = textwrap.dedent('''
    """The drop sensor evaluated once, and each run it requests executed as the daemon's run worker
    executes it: the code location's implicit asset job, its own executor, the sensor's tags."""
    import json, sys
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from orchestration.definitions import defs
    from orchestration.resources import CxData
    from orchestration.sensors import landing_drop_sensor

    instance = dg.DagsterInstance.get()
    context = dg.build_sensor_context(instance=instance, cursor=sys.argv[1] or None, resources={"cx": CxData()})
    result = landing_drop_sensor(context)
    job = ReconstructableRepository.for_module("orchestration.definitions", "defs", working_directory=sys.argv[2]
                                               ).get_reconstructable_job(defs.resolve_implicit_global_asset_job_def().name)
    runs = []
    for request in result.run_requests:
        tags = {**request.tags, "dagster/partition": request.partition_key, "dagster/sensor_name": "landing_drops",
                "dagster/run_key": request.run_key}
        with dg.execute_job(job, instance=instance, asset_selection=request.asset_selection, tags=tags) as run:
            runs.append({"run_id": run.run_id, "success": run.success, "partition": request.partition_key,
                         "assets": [k.to_user_string() for k in request.asset_selection]})
    print(json.dumps({"cursor": result.cursor, "runs": runs}))
''')


def _sensor(site: Site, cursor: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SENSOR, cursor, str(ROOT)], cwd=ROOT,
                            env={**site.env(), "CX_SLOT_WAIT_SECONDS": WAIT}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _late_drop_site(night_one: Site, dest: Path) -> tuple[Site, Path, Path, str]:
    """A copy of night one whose survey drop of night two is not delivered yet; the sensor's cursor
    knows every drop delivered so far."""
    from orchestration.resources import CxData
    from orchestration.sensors import drop_requests

    site = night_one.copy(dest)
    drop = site.data / "landing" / "survey" / NIGHT_TWO.isoformat()
    held = dest / "late_survey_drop"
    shutil.move(drop, held)
    _, cursor = drop_requests(CxData(data_dir=str(site.data)), None)
    return site, drop, held, cursor


@pytest.mark.reliability_full
def test_the_drop_sensor_firing_while_a_backfill_runs(night_one: Site, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The survey drop of night two arrives while ``cxw backfill`` of nights one and two builds the
    warehouse; the sensor requests its ingestion; that run starts, waits for the writer lock naming
    the backfill, lands the drop once the backfill has ended, and the end state is the sequential
    one (the backfill without the drop, then the drop landed)."""
    from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

    from orchestration.recovery import PID_TAG

    backfill = ("backfill", "--start", NIGHT_ONE.isoformat(), "--end", NIGHT_TWO.isoformat())
    # the sequential order: the backfill, then the drop arrives and the sensor's run lands it
    seq, seq_drop, seq_held, seq_cursor = _late_drop_site(night_one, tmp_path / "sequential")
    done = cxw(seq, *backfill, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    shutil.move(seq_held, seq_drop)
    out, err = _sensor(seq, seq_cursor).communicate(timeout=RUN_TIMEOUT)
    assert json.loads(out.splitlines()[-1])["runs"][0]["success"], err
    expected = contents(seq)

    site, drop, held, cursor = _late_drop_site(night_one, tmp_path / "concurrent")
    proc = _start(site, *backfill)
    instance = _instance(site, monkeypatch)
    deadline = time.monotonic() + RUN_TIMEOUT
    building = []
    while not building and proc.poll() is None and time.monotonic() < deadline:
        building = [r for r in instance.get_runs(filters=RunsFilter(job_name="warehouse"))
                    if r.tags.get(PID_TAG) == str(proc.pid)]
        time.sleep(0.5)
    assert building and proc.poll() is None, "the backfill ended before its warehouse run started"
    shutil.move(held, drop)  # the drop is delivered (a folder renamed into place, manifest included)
    sensor = _sensor(site, cursor)
    b_out, b_err = proc.communicate(timeout=RUN_TIMEOUT)
    s_out, s_err = sensor.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, b_err
    assert sensor.returncode == 0, s_err
    result = json.loads(s_out.splitlines()[-1])
    assert [(r["partition"], r["assets"][0].split("/")[1]) for r in result["runs"]] == \
        [(NIGHT_TWO.isoformat(), "survey")], result  # one request: the late drop, nothing else
    run_id = result["runs"][0]["run_id"]
    backfill_end = max(r.end_time for r in instance.get_run_records()
                       if r.dagster_run.tags.get(PID_TAG) == str(proc.pid))
    logs = instance.all_logs(run_id)
    steps = [e.timestamp for e in logs if e.is_dagster_event and e.dagster_event_type is not None
             and e.dagster_event_type.value == "STEP_START"]
    waiting = next((e.message for e in logs if (e.message or "").startswith("waiting for the writer lock")), "")
    status = instance.get_run_by_id(run_id).status
    instance.dispose()
    got = contents(site)
    lost, left = rows_lost(expected, got), leftovers(site)
    equal = digest(got) == digest(expected)
    names_backfill = f"held by pid {proc.pid} on" in waiting and " ".join(backfill) in waiting
    after = bool(steps) and min(steps) >= backfill_end
    record(scenario="the drop sensor firing while a backfill runs",
           ok=status == DagsterRunStatus.SUCCESS and names_backfill and after and equal and not left,
           rows_lost=lost,
           detail=(f"1 run requested (survey {NIGHT_TWO}), executed like the daemon's run worker: it waited "
                   f"for the writer lock naming the backfill; its first step started {min(steps) - backfill_end:.1f} s "
                   f"after the backfill's last run ended; end state = the backfill, then the drop: "
                   f"{'yes' if equal else 'NO'}" if steps else f"no step ran: {status}"))
    assert status == DagsterRunStatus.SUCCESS, s_err[-3000:]
    assert names_backfill, waiting
    assert after, (steps, backfill_end)
    assert lost == 0 and not left, left
    assert equal, differing(expected, got)
