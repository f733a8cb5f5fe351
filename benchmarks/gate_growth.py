"""Does the nightly gate's cost grow with history? The gate for one night on day 30 vs on day 365.

    python -m benchmarks.gate_growth --customers 100000 --days 365 [--work DIR] [--reuse-landing] [--record]

On one generated company (the seed and start of ``python -m benchmarks``, so scale M is the same data):

1. generate the drops (unless ``--reuse-landing`` finds them), and ingest every night into one raw zone
   (``ingestion.load.load_drop`` per system and date);
2. build two warehouses from that raw zone: one as of the early day (default day 30), one as of the
   late day (default the last, day 365), each with the nightly command and vars
   (``dbt build --exclude-resource-type unit_test``, ``window_vars(day, day + 1)``) into its own data
   dir whose ``raw`` links to the shared raw zone;
3. run ``expectations.gate.evaluate`` for the window ``[day, day + 1)`` on each, in two worker
   processes (one per warehouse, so each has its own peak RSS), after one warm-up run each (GX's
   imports and first-use costs are not counted), then ``--repeat`` runs each, interleaved and in
   alternating order. Each run also times every part of the gate (``_gx`` and each SQL check,
   wrapped from outside: gate.py is not edited) and, apart, the suites' window reads alone; one more,
   untimed, run counts the rows each part scans (DuckDB's profiler), which no load on the machine blurs.

Day N is ``start + N - 1``. ``--record`` appends a section to benchmarks/RESULTS.md and saves the
raw figures as ``benchmarks/results/<date>-<HHMM>-gate-<scale>.json``; ``--render JSON`` re-renders
a saved run. The target (the issue's acceptance point): the late night within 1.2x of the early one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from benchmarks import harness
from benchmarks.stage import own_peak_rss_mib
from ingestion import settings

TARGET = 1.2
SKIP_TESTS = ("build", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test")
MARK = "@@gate "  # prefix of the workers' result lines on stdout (GX or DuckDB may print too)
MARTS = ("fct_orders", "fct_survey_responses", "kpi_experience_daily", "fct_invoices")
REPO = Path(__file__).resolve().parents[1]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def day_of(start: dt.date, n: int) -> dt.date:
    """Day ``n`` of the company (day 1 is ``start``)."""
    return start + dt.timedelta(days=n - 1)


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the gate or the dbt project differ from it in the working tree."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "changed": git("status", "--porcelain", "--", "expectations", "dbt_project").splitlines()}


def scale_label(customers: int, days: int) -> str:
    for name, sc in harness.SCALES.items():
        if (sc.customers, sc.days) == (customers, days):
            return name
    return f"{customers}x{days}"


def rows_scanned(profile: dict[str, Any]) -> dict[str, int]:
    """Table -> rows scanned, from a DuckDB JSON profile (``rows_scanned`` of each table scan)."""
    out: dict[str, int] = {}
    stack = list(profile.get("operator") or profile.get("children") or [])
    while stack:
        node = stack.pop()
        info = node.get("extra_info") or {}
        if "rows_scanned" in node and (info.get("Table") or info.get("Function")):
            if info.get("Table"):
                name = info["Table"].removeprefix("warehouse.")
            else:  # a table function, e.g. read_parquet of a raw-zone file
                files = str(info.get("Filename(s)") or "")
                name = info["Function"].lower() + (f" {files.rpartition('/raw/')[2] or files}" if files else "")
            out[name] = out.get(name, 0) + int(node["rows_scanned"])
        stack += node.get("children") or []
    return out


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


# ---- 1. drops and raw zone -------------------------------------------------------------------------
class Progress:
    """A click progress bar on a terminal; a line every tenth of the way in a log."""

    def __init__(self, label: str, total: int) -> None:
        import click

        self.label, self.total, self.done, self.shown = label, total, 0, 0
        self.bar = click.progressbar(length=total, label=f"  {label:<9}", file=sys.stderr, show_pos=True) \
            if sys.stderr.isatty() else None
        if self.bar:
            self.bar.render_progress()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar:
            self.bar.update(n)
        elif self.done * 10 // max(self.total, 1) > self.shown:
            self.shown = self.done * 10 // max(self.total, 1)
            _log(f"  {self.label}: {self.done:,}/{self.total:,}")

    def finish(self) -> None:
        if self.bar:
            self.bar.render_finish()


def generate(landing: Path, customers: int, days: int, start: dt.date, seed: int) -> dict[str, Any]:
    from simulator import GeneratorConfig
    from simulator import generate as run

    harness._rmtree(landing)
    cfg = GeneratorConfig(customers=customers, days=days, start=start, seed=seed)
    bars: dict[str, Progress] = {}

    def progress(stage: str, advance: int, total: int) -> None:
        if stage not in bars:
            for other in bars.values():
                other.finish()
            bars[stage] = Progress(stage, total)
        bars[stage].update(advance)

    t0 = time.perf_counter()
    result = run(cfg, landing, progress)
    for bar in bars.values():
        bar.finish()
    return {"seconds": time.perf_counter() - t0, "rows": sum(result.rows.values()), "bytes": _bytes(landing)}


def ingest(landing: Path, raw: Path, quarantine: Path) -> dict[str, Any]:
    """Every drop, night by night, into the raw zone, as the nightly ingestion assets do."""
    from ingestion.load import Zones, load_drop
    from ingestion.manifest import DropRefused, complete_drops

    harness._rmtree(raw)
    harness._rmtree(quarantine)
    zones = Zones(landing, raw, quarantine)
    drops = sorted(complete_drops(landing), key=lambda d: (d[1], d[0]))  # night by night
    rows, refused = 0, []
    bar = Progress("ingesting", len(drops))
    t0 = time.perf_counter()
    for system, day, _folder in drops:
        try:
            rows += sum(e.manifest_rows for e in load_drop(zones, system, day).entities)
        except DropRefused as exc:
            refused.append(f"{system}/{day}: {exc}")
        bar.update()
    bar.finish()
    return {"seconds": time.perf_counter() - t0, "rows": rows, "drops": len(drops), "refused": refused}


# ---- 2. one warehouse per day ----------------------------------------------------------------------
def build(data: Path, raw: Path, day: dt.date, dbt_args: list[str]) -> dict[str, Any]:
    """A fresh warehouse in ``data`` as of ``day``: the nightly dbt command for the window [day, day + 1)."""
    from orchestration.warehouse import run_dbt, window_vars

    harness._rmtree(data)
    data.mkdir(parents=True)
    (data / "raw").symlink_to(raw.resolve(), target_is_directory=True)
    t0 = time.perf_counter()
    results = run_dbt(dbt_args, data_dir=data, dbt_vars=window_vars(day, day + dt.timedelta(days=1)))
    seconds = time.perf_counter() - t0
    harness._rmtree(data / "duckdb_tmp")
    return {"seconds": seconds, "nodes": len(results), "warehouse_bytes": (data / "warehouse.duckdb").stat().st_size,
            "mart_rows": mart_rows(data / "warehouse.duckdb")}


def mart_rows(warehouse: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {m: con.execute(f"select count(*) from marts.{m}").fetchone()[0] for m in MARTS}


# ---- 3. the gate, in one worker process per warehouse ----------------------------------------------
def worker(warehouse: Path, day: dt.date, docs: Path, currency: str) -> None:
    """Serve ``run`` lines on stdin: one ``evaluate`` for [day, day + 1) each, its figures on stdout."""
    import duckdb
    import great_expectations  # noqa: F401 - imported before any timing

    from expectations import gate

    parts: dict[str, float] = {}
    current: list[str] = []  # the part running now

    def timed(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            current.append(name)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - t0
                current.pop()
        return wrapper

    # every part of the gate that works on the connection (``_gx`` and each SQL check): evaluate
    # looks them up in the module when it runs, so wrapping them here times them inside evaluate
    for name, fn in list(vars(gate).items()):
        if inspect.isfunction(fn) and fn.__module__ == gate.__name__ and name.startswith("_"):
            params = list(inspect.signature(fn).parameters)
            if params and params[0] == "con":
                setattr(gate, name, timed(name.lstrip("_"), fn))
    end = day + dt.timedelta(days=1)

    def emit(obj: dict[str, Any]) -> None:
        print(MARK + json.dumps(obj, default=str), flush=True)

    emit({"ready": True})
    for line in sys.stdin:
        if line.strip() == "scan":
            emit({"scanned": scan(gate, warehouse, day, end, docs, currency, current)})
            continue
        if line.strip() != "run":
            break
        parts.clear()
        t0, c0 = time.perf_counter(), os.times()
        result = gate.evaluate(warehouse, day, end, docs, reporting_currency=currency)
        seconds, c1 = time.perf_counter() - t0, os.times()
        cpu = {"user": c1.user - c0.user, "system": c1.system - c0.system}
        # the GX suites' window reads alone, on a connection of their own, as _gx runs them
        reads: dict[str, float] = {}
        with duckdb.connect(str(warehouse), read_only=True) as con:
            con.execute("set TimeZone = 'UTC'")
            for suite, (_col, sql, _checks) in gate._suites(day, end).items():
                t1 = time.perf_counter()
                con.execute(sql).df()
                reads[suite] = time.perf_counter() - t1
        statuses: dict[str, int] = {}
        for row in result.rows:
            statuses[row.status] = statuses.get(row.status, 0) + 1
        emit({"seconds": seconds, "cpu_seconds": cpu["user"] + cpu["system"], "cpu_system_seconds": cpu["system"],
              "parts": dict(parts), "reads": reads,
              "rows_read": result.rows_read,
              "statuses": statuses, "flagged": sorted({r.check_name for r in result.rows
                                                       if r.status in ("fail", "warn")}),
              "docs_files": sum(1 for p in docs.rglob("*") if p.is_file()), "peak_rss_mib": own_peak_rss_mib()})


def scan(gate: Any, warehouse: Path, day: dt.date, end: dt.date, docs: Path, currency: str,
         current: list[str]) -> dict[str, dict[str, int]]:
    """One untimed ``evaluate`` whose every query is first run once more under DuckDB's profiler:
    part -> table -> rows scanned. Unlike times, these counts are exact, whatever the machine's load."""
    import types

    import duckdb

    scanned: dict[str, dict[str, int]] = {}
    out = docs.parent / "scan-profile.json"

    class Profiled:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con = con

        def __enter__(self) -> Profiled:
            return self

        def __exit__(self, *exc: object) -> None:
            self.con.close()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

        def execute(self, sql: str, params: Any = None) -> Any:
            if sql.lstrip().lower().startswith(("select", "with")):
                self.con.execute("pragma enable_profiling = 'json'")
                self.con.execute(f"pragma profiling_output = '{out}'")
                self.con.execute(sql, params).fetchall()
                self.con.execute("pragma disable_profiling")
                per_table = scanned.setdefault(current[-1] if current else "other", {})
                for table, n in rows_scanned(json.loads(out.read_text(encoding="utf-8"))).items():
                    per_table[table] = per_table.get(table, 0) + n
            return self.con.execute(sql, params)

    shim = types.SimpleNamespace(connect=lambda *a, **k: Profiled(duckdb.connect(*a, **k)))
    real = gate.duckdb
    gate.duckdb = shim
    try:
        gate.evaluate(warehouse, day, end, docs, reporting_currency=currency)
    finally:
        gate.duckdb = real
        out.unlink(missing_ok=True)
    return scanned


class Worker:
    def __init__(self, label: str, data: Path, day: dt.date, currency: str, log_dir: Path) -> None:
        self.label = label
        self.stderr: IO[str] = (log_dir / f"worker-{label}.log").open("w", encoding="utf-8")
        env = settings.subprocess_env(data)
        cmd = [sys.executable, "-m", "benchmarks.gate_growth", "--worker", str(data / "warehouse.duckdb"),
               "--day", day.isoformat(), "--docs", str(data / "docs" / "gx"), "--currency", currency]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, env=env, cwd=REPO)

    def ready(self) -> None:
        self._read()  # its imports are done

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        self.proc.wait()
        raise harness.StageError(f"gate worker {self.label} exited {self.proc.returncode}; see {self.stderr.name}")

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def scan(self) -> dict[str, dict[str, int]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("scan\n")
        self.proc.stdin.flush()
        return self._read()["scanned"]

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.stderr.close()


def time_gate(workers: dict[str, Worker], repeat: int) -> dict[str, Any]:
    labels = list(workers)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in labels}
    warmup: dict[str, dict[str, Any]] = {}
    try:
        for w in workers.values():
            w.ready()
        for k in labels:
            warmup[k] = workers[k].run()
            _log(f"  warm-up {k}: {warmup[k]['seconds']:.2f} s")
        for i in range(repeat):
            for k in (labels if i % 2 == 0 else labels[::-1]):
                runs[k].append(workers[k].run())
                _log(f"  run {i + 1}/{repeat} {k}: {runs[k][-1]['seconds']:.2f} s "
                     f"(gx {runs[k][-1]['parts'].get('gx', 0):.2f} s)")
        scanned = {k: workers[k].scan() for k in labels}  # after the timed runs: not timed
    finally:
        for w in workers.values():
            w.close()
    return {k: {**summarise(runs[k], warmup[k]), "rows_scanned": scanned[k]} for k in labels}


def summarise(runs: list[dict[str, Any]], warmup: dict[str, Any]) -> dict[str, Any]:
    med = statistics.median
    last = runs[-1]
    if any(r["rows_read"] != last["rows_read"] for r in runs):
        raise harness.StageError("rows_read differs between runs of the same night")
    return {"seconds": med(r["seconds"] for r in runs), "all_seconds": [round(r["seconds"], 3) for r in runs],
            # CPU time of the worker (all its threads): less sensitive than wall time to a shared machine
            "cpu_seconds": med(r["cpu_seconds"] for r in runs),
            "cpu_system_seconds": med(r["cpu_system_seconds"] for r in runs),
            # every run's parts, for paired comparisons between the nights (same round, same index)
            "all_parts": [{p: round(t, 4) for p, t in r["parts"].items()} for r in runs],
            "all_reads": [round(sum(r["reads"].values()), 4) for r in runs],
            "parts": {p: med(r["parts"].get(p, 0.0) for r in runs) for p in last["parts"]},
            "reads": {s: med(r["reads"][s] for r in runs) for s in last["reads"]},
            "rows_read": last["rows_read"], "statuses": last["statuses"], "flagged": last["flagged"],
            "warmup_seconds": warmup["seconds"], "docs_files": last["docs_files"],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": len(runs)}


# ---- the whole measure -----------------------------------------------------------------------------
def run(customers: int, days: int, work: Path, early: int = 30, late: int | None = None, repeat: int = 5,
        reuse_landing: bool = False, reuse_warehouses: bool = False,
        dbt_args: list[str] | None = None) -> dict[str, Any]:
    from orchestration.warehouse import NIGHTLY_ARGS, dbt_var

    late = late or days
    if not 1 <= early < late <= days:
        raise ValueError(f"need 1 <= early ({early}) < late ({late}) <= days ({days})")
    dbt_args = dbt_args or ["build", *NIGHTLY_ARGS]
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    landing, raw, quarantine = work / "landing", work / "raw", work / "quarantine"
    start = harness.START
    t_all = time.perf_counter()
    res: dict[str, Any] = {
        "measure": "gate_growth", "scale": scale_label(customers, days), "customers": customers, "days": days,
        "date": dt.date.today().isoformat(), "machine": harness.machine(), "code": code_version(), "seed": harness.SEED,
        "start": start.isoformat(), "dbt_args": dbt_args, "repeat": repeat, "reused": [],
        "nights": {"early": {"n": early, "day": day_of(start, early).isoformat()},
                   "late": {"n": late, "day": day_of(start, late).isoformat()}}}

    # 1. drops, raw zone
    truth = landing / "truth.json"
    want = {"customers": customers, "days": days, "start": start.isoformat(), "seed": harness.SEED}
    stamp_gen, stamp_raw = work / "generate.json", work / "ingest.json"
    have = json.loads(stamp_gen.read_text()) if stamp_gen.exists() and truth.exists() else {}
    if reuse_landing and have.get("config") == want:
        _log(f"reusing the drops in {landing}")
        res["reused"].append("drops")
        res["generate"] = have["figures"]
    else:
        _log(f"generating {customers:,} customers x {days} days from {start} into {landing}")
        res["generate"] = generate(landing, customers, days, start, harness.SEED)
        stamp_raw.unlink(missing_ok=True)
        stamp_gen.write_text(json.dumps({"config": want, "figures": res["generate"]}) + "\n")
    _log(f"  {res['generate']['rows']:,} records, {res['generate']['bytes'] / 1e6:,.0f} MB")
    ingested = json.loads(stamp_raw.read_text()) if stamp_raw.exists() else {}
    if reuse_landing and ingested.get("config") == want:
        _log(f"reusing the raw zone {raw}")
        res["reused"].append("raw zone")
        res["ingest"] = ingested["figures"]
    else:
        _log("ingesting every night into the raw zone")
        res["ingest"] = ingest(landing, raw, quarantine)
        stamp_raw.write_text(json.dumps({"config": want, "figures": res["ingest"]}) + "\n")
    _log(f"  {res['ingest']['rows']:,} rows in {res['ingest']['seconds']:.0f} s"
         + (f"; {len(res['ingest']['refused'])} drops refused" if res["ingest"]["refused"] else ""))

    # 2. one warehouse per night
    datas = {k: work / f"day{v['n']:03d}" for k, v in res["nights"].items()}
    days_of = {k: dt.date.fromisoformat(v["day"]) for k, v in res["nights"].items()}
    # the gate's workers import GX (over 10 s of CPU each) while the warehouses build; they touch
    # their warehouse only when told to run, after the builds
    currency = dbt_var("reporting_currency")
    workers = {k: Worker(k, datas[k], days_of[k], currency, work) for k in datas}
    try:
        build_all(res, datas, days_of, raw, want, dbt_args, reuse_warehouses)
    except BaseException:
        for w in workers.values():
            w.close()
        raise

    # 3. the gate
    _log(f"timing the gate: 1 warm-up + {repeat} runs per night, interleaved")
    load_before = os.getloadavg()
    timed = time_gate(workers, repeat)
    # the machine may be shared: its load average (1, 5, 15 min) around the timed runs
    res["load_average"] = {"before": [round(x, 2) for x in load_before],
                           "after": [round(x, 2) for x in os.getloadavg()]}
    for k in timed:
        res["nights"][k]["gate"] = timed[k]
    res["ratios"] = ratios(res)
    res["total_seconds"] = time.perf_counter() - t_all
    return res


def build_all(res: dict[str, Any], datas: dict[str, Path], days_of: dict[str, dt.date], raw: Path,
              want: dict[str, Any], dbt_args: list[str], reuse: bool) -> None:
    for k, data in datas.items():
        stamp = data / "build.json"
        key = {**want, "day": days_of[k].isoformat(), "dbt_args": dbt_args}
        old = json.loads(stamp.read_text()) if stamp.exists() else {}
        if reuse and old.get("config") == key and (data / "warehouse.duckdb").exists():
            _log(f"reusing the warehouse as of day {res['nights'][k]['n']} ({data})")
            res["nights"][k]["build"] = old["figures"]
            res["reused"].append(f"warehouse as of day {res['nights'][k]['n']}")
            continue
        _log(f"building the warehouse as of day {res['nights'][k]['n']} ({days_of[k]}) in {data}")
        res["nights"][k]["build"] = build(data, raw, days_of[k], dbt_args)
        stamp.write_text(json.dumps({"config": key, "figures": res["nights"][k]["build"]}) + "\n")
        _log(f"  {res['nights'][k]['build']['seconds']:.0f} s, "
             f"{res['nights'][k]['build']['warehouse_bytes'] / 1e6:,.0f} MB")


def ratios(res: dict[str, Any]) -> dict[str, float]:
    e, late = res["nights"]["early"]["gate"], res["nights"]["late"]["gate"]
    out = {"gate": late["seconds"] / e["seconds"],
           # each round ran both nights back to back: the median of the rounds' ratios is less
           # sensitive to the machine's load drifting between rounds than the ratio of the medians
           "gate_paired": statistics.median(b / a for a, b in zip(e["all_seconds"], late["all_seconds"], strict=True))}
    if e.get("cpu_seconds"):
        out["gate_cpu"] = late["cpu_seconds"] / e["cpu_seconds"]
    for p in late["parts"]:
        if e["parts"].get(p) and p not in out:
            out[p] = late["parts"][p] / e["parts"][p]
    return out


# ---- reporting -------------------------------------------------------------------------------------
def _t(x: float) -> str:
    return f"{x:.2f} s" if x < 100 else f"{x:,.0f} s"


def render(res: dict[str, Any], note: str | None = None) -> str:
    m, r = res["machine"], ratios(res)
    ne, nl = res["nights"]["early"], res["nights"]["late"]
    e, late = ne["gate"], nl["gate"]
    v = m["versions"]
    head = f"Day {ne['n']} ({ne['day']})", f"Day {nl['n']} ({nl['day']})"

    def row(label: str, a: float, b: float, fmt: Any = _t, ratio: bool = True) -> str:
        q = f"{b / a:.2f}×" if ratio and a else "-"
        return f"| {label} | {fmt(a)} | {fmt(b)} | {q} |"

    lines = [
        f"## {res['date']} · gate growth, scale {res['scale']}: {res['customers']:,} customers × {res['days']} days",
        "",
        *([note, ""] if note else []),
        f"`python -m benchmarks.gate_growth`: `expectations.gate.evaluate` for one night, on a warehouse built as of "
        f"day {ne['n']} and on one built as of day {nl['n']} from the same drops (seed {res['seed']}, from "
        f"{res['start']}). Medians of {res['repeat']} runs each after one warm-up, interleaved in alternating order, "
        "each warehouse in its own worker process.  ",
        *([f"Code: commit {res['code']['commit']}" + (" with uncommitted changes to " + ", ".join(
            line[3:] for line in res["code"]["changed"]) if res["code"]["changed"] else "") + ".  "]
          if res.get("code") else []),
        f"Machine: {m['machine']}, {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB; Python {m['python']}; "
        f"duckdb {v.get('duckdb')}, great-expectations {v.get('great-expectations')}.  ",
        f"Data: {res['ingest']['rows']:,} delivered records (generated in {_t(res['generate']['seconds'])}, ingested "
        f"in {_t(res['ingest']['seconds'])}); warehouses built with `dbt {' '.join(res['dbt_args'])}` "
        f"in {_t(ne['build']['seconds'])} and {_t(nl['build']['seconds'])}; this run "
        f"{res['total_seconds'] / 60:.1f} min"
        + (f" (reusing the {', '.join(res['reused'])} of an earlier run)." if res.get("reused") else ".")
        + (f" Load average (1 min) {res['load_average']['before'][0]:.1f} before the timed runs, "
           f"{res['load_average']['after'][0]:.1f} after (2 cores)." if res.get("load_average") else ""),
        "",
        f"| measure | {head[0]} | {head[1]} | ratio |",
        "|---|---|---|---|",
        row(f"**`evaluate`, the whole gate** (target ≤ {TARGET}×)", e["seconds"], late["seconds"]),
        *([row("&nbsp;&nbsp;its CPU time (all threads of the worker)", e["cpu_seconds"], late["cpu_seconds"])]
          if e.get("cpu_seconds") else []),
        row("&nbsp;&nbsp;GX suites (`_gx`)", e["parts"].get("gx", 0), late["parts"].get("gx", 0)),
        row("&nbsp;&nbsp;&nbsp;&nbsp;of which the suites' window reads (timed apart)", sum(e["reads"].values()),
            sum(late["reads"].values())),
    ]
    for p in sorted(late["parts"], key=lambda p: -late["parts"][p]):
        if p != "gx":
            lines.append(row(f"&nbsp;&nbsp;SQL check `_{p}`", e["parts"].get(p, 0), late["parts"][p]))
    rest_e = e["seconds"] - sum(e["parts"].values())
    rest_l = late["seconds"] - sum(late["parts"].values())
    lines.append(row("&nbsp;&nbsp;the rest (connection, config)", rest_e, rest_l))
    se, sl = e.get("rows_scanned") or {}, late.get("rows_scanned") or {}
    for p in sorted(sl, key=lambda p: -sum(sl[p].values())):
        lines.append(row(f"rows scanned by `_{p}` (DuckDB profile)", sum(se.get(p, {}).values()),
                         sum(sl[p].values()), fmt=lambda x: f"{x:,}"))
    for suite in late["rows_read"]:
        lines.append(row(f"rows read by the `{suite}` suite", e["rows_read"].get(suite, 0), late["rows_read"][suite],
                         fmt=lambda x: f"{x:,}"))
    for mart in MARTS:
        lines.append(row(f"rows in `marts.{mart}` (history)", ne["build"]["mart_rows"][mart],
                         nl["build"]["mart_rows"][mart], fmt=lambda x: f"{x:,}"))
    lines += [
        row("warehouse size", ne["build"]["warehouse_bytes"], nl["build"]["warehouse_bytes"],
            fmt=lambda x: f"{x / 1e6:,.0f} MB"),
        row("peak RSS of the worker", e["peak_rss_mib"], late["peak_rss_mib"], fmt=lambda x: f"{x:,.0f} MiB"),
        row("first run (GX's first use, not counted)", e["warmup_seconds"], late["warmup_seconds"], ratio=False),
        "",
    ]
    verdict = "within" if r["gate"] <= TARGET else "above"
    growing = sorted(((p, q) for p, q in r.items() if not p.startswith("gate")), key=lambda pq: -pq[1])
    top = ", ".join(f"`_{p}` {q:.2f}×" for p, q in growing[:3])
    sql_e = sum(t for p, t in e["parts"].items() if p != "gx")
    sql_l = sum(t for p, t in late["parts"].items() if p != "gx")
    lines.append(f"The night of day {nl['n']} takes {r['gate']:.2f}× the night of day {ne['n']}: {verdict} the "
                 f"{TARGET}× target (median of the {res['repeat']} rounds' own ratios: {r['gate_paired']:.2f}×"
                 + (f"; in CPU time {r['gate_cpu']:.2f}×" if "gate_cpu" in r else "") + "). "
                 f"The GX suites take {r.get('gx', 0):.2f}× (they read the night's rows only); the SQL checks "
                 f"together {_t(sql_e)} and {_t(sql_l)} ({sql_l / sql_e if sql_e else 0:.2f}×). "
                 f"Parts that grow most: {top}.")
    return "\n".join(lines) + "\n"


def record(res: dict[str, Any], path: Path = harness.RESULTS, note: str | None = None) -> Path:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n" + render(res, note))
    raw = path.with_name("results") / f"{res['date']}-{dt.datetime.now():%H%M}-gate-{res['scale']}.json"
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
    return raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gate_growth", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--early", type=int, default=30, help="the early night, as a day number (default 30)")
    ap.add_argument("--late", type=int, help="the late night, as a day number (default: the last day)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per night after the warm-up (default 5)")
    ap.add_argument("--work", type=Path, default=Path("bench_work/gate"),
                    help="drops, raw zone and the two data dirs (default ./bench_work/gate)")
    ap.add_argument("--reuse-landing", action="store_true",
                    help="keep drops (and the raw zone ingested from them) already in --work for this config")
    ap.add_argument("--reuse-warehouses", action="store_true",
                    help="also keep the two warehouses already built in --work for these nights")
    ap.add_argument("--skip-dbt-tests", action="store_true",
                    help="build the warehouses without dbt's data tests (models and seeds only): faster; the gate "
                         "reads the same tables")
    ap.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    ap.add_argument("--results", type=Path, default=harness.RESULTS, help="the Markdown file --record appends to")
    ap.add_argument("--note", help="a line under the section's header (what this run is about)")
    ap.add_argument("--render", type=Path, metavar="JSON", help="render (and --record) a saved run instead")
    # internal: one worker process per warehouse (see Worker)
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--day", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    ap.add_argument("--docs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--currency", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker, a.day, a.docs, a.currency)
        return 0
    if a.render:
        res = json.loads(a.render.read_text(encoding="utf-8"))
    else:
        try:
            res = run(a.customers, a.days, a.work, a.early, a.late, a.repeat, a.reuse_landing, a.reuse_warehouses,
                      dbt_args=[*SKIP_TESTS] if a.skip_dbt_tests else None)
        except (ValueError, harness.StageError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        (Path(a.work) / "result.json").write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
    print(render(res, a.note))
    if a.record:
        raw = record(res, a.results, a.note)
        _log(f"appended to {a.results}; raw figures in {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
