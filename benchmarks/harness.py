"""The benchmark harness: one run at one scale measures, on the same generated data,

1. ingestion of every drop, ours vs bare polars (validation overhead);
2. a full ``dbt build`` vs one hand-written DuckDB script computing ``kpi_experience_daily`` straight
   from the raw Parquet (modelling overhead over the engine), plus ``dbt run -s +kpi_experience_daily``
   (the same output as the script, without the other marts and the tests);
3. the nightly run for one new day on top of the history vs the full build (incremental cost);
4. the Dagster ``nightly`` job vs the same night run bare (ingest + ``dbt build``) (orchestration overhead);
5. the peak RSS of every stage (each stage runs in its own process).

Stages run as subprocesses (``benchmarks.stage``); figures are medians over ``repeat`` runs, stage
by stage interleaved where two are compared, so both see the same machine state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingestion import settings

RESULTS = Path(__file__).with_name("RESULTS.md")
START = dt.date(2025, 11, 1)  # a year from here crosses both DST nights
SEED = 42


@dataclasses.dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    days: int
    repeat: int  # runs per cheap stage (ingestion, hand-written SQL, nightly)
    build_repeat: int  # runs per full build


SCALES = {
    "tiny": Scale("tiny", 300, 4, 1, 1),  # CI smoke run: keeps the harness working, times mean nothing
    "S": Scale("S", 10_000, 30, 3, 3),
    "M": Scale("M", 100_000, 365, 2, 1),  # a night costs minutes here: 2 runs, median = mean
    "L": Scale("L", 1_000_000, 730, 1, 1),  # on demand only: hours, see docs/benchmarks.md
}

TARGETS = {
    "ingestion": "≥ 0.7× bare polars throughput",
    "build": "dbt ≤ 2× hand-written SQL",
    "incremental": "nightly < 5 % of full build (and < 60 s at L)",
    "dagster": "Dagster ≤ 1.2× bare",
}


class StageError(RuntimeError):
    pass


Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_stage(name: str, data: Path, log: Log = _stderr, **kwargs: Any) -> dict[str, Any]:
    """Run ``python -m benchmarks.stage name`` in a fresh process; its JSON plus ``wall_seconds``."""
    cmd = [sys.executable, "-m", "benchmarks.stage", name, "--data", str(data)]
    for key, value in kwargs.items():
        cmd += [f"--{key}", str(value)]
    env = {**os.environ, settings.DATA_DIR_ENV: str(data)}
    log(f"  {name} ...")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise StageError(f"benchmark stage {name!r} failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = wall
    log(f"  {name}: {out['seconds']:.2f} s work, {wall:.2f} s process, peak RSS {out['peak_rss_mib']:,.0f} MiB")
    return out


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"seconds": _median(runs, "seconds"), "wall_seconds": _median(runs, "wall_seconds"),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": len(runs),
            "all_seconds": [round(r["seconds"], 3) for r in runs], "last": runs[-1]}


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def machine() -> dict[str, Any]:
    cpu = "?"
    mem_gib = None
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        mem_gib = round(kib / 1024 ** 2, 1)
    except (OSError, StopIteration):
        pass
    versions = {}
    for pkg in ("polars", "pyarrow", "duckdb", "dbt-core", "dbt-duckdb", "dagster", "dagster-dbt",
                "great-expectations"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "-"
    return {"machine": platform.machine(), "cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_gib,
            "python": platform.python_version(), "versions": versions}


def run(scale: Scale, workdir: Path, repeat: int | None = None, build_repeat: int | None = None,
        reuse_landing: bool = False, log: Log = _stderr) -> dict[str, Any]:
    """Run every measure at ``scale`` under ``workdir/<scale>``; return the results."""
    repeat = repeat or scale.repeat
    build_repeat = build_repeat or scale.build_repeat
    work = Path(workdir).resolve() / scale.name
    landing = work / "landing"
    data = work / "data"
    scratch = work / "scratch"
    first = START
    last = START + dt.timedelta(days=scale.days - 1)
    history_end = last - dt.timedelta(days=1)
    res: dict[str, Any] = {"scale": dataclasses.asdict(scale), "date": dt.date.today().isoformat(),
                           "machine": machine(), "duckdb_settings": settings.duckdb_settings(),
                           "first_day": first.isoformat(), "last_day": last.isoformat(),
                           "repeat": repeat, "build_repeat": build_repeat}
    t_all = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)

    log(f"[{scale.name}] generate {scale.customers:,} customers x {scale.days} days")
    truth = landing / "truth.json"
    if reuse_landing and truth.exists() and json.loads(truth.read_text())["volumes"]["customers"] == scale.customers:
        log(f"  reusing {landing}")
        res["generate"] = None
    else:
        _rmtree(landing)
        res["generate"] = run_stage("generate", scratch, log, landing=landing, customers=scale.customers,
                                    days=scale.days, start=first, seed=SEED)
    res["landing_bytes"] = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())

    log(f"[{scale.name}] 1. ingestion of every drop, ours vs bare polars ({repeat} runs each)")
    ours, bare = [], []
    for _ in range(repeat):
        _rmtree(scratch)
        bare.append(run_stage("ingest_bare", scratch, log, landing=landing))
        _rmtree(scratch)
        _rmtree(data)
        ours.append(run_stage("ingest_ours", data, log, landing=landing))
        if ours[-1]["rows"] != bare[-1]["rows"]:
            raise StageError(f"row counts differ: ours {ours[-1]['rows']} vs bare {bare[-1]['rows']}")
    _rmtree(scratch)
    res["ingest_ours"], res["ingest_bare"] = _summary(ours), _summary(bare)
    res["rows"] = ours[-1]["rows"]
    (data / "landing").symlink_to(landing, target_is_directory=True)

    log(f"[{scale.name}] 2. full build as of {history_end} vs hand-written SQL")
    kpi_only, hand, full = [], [], []
    for _ in range(build_repeat):
        kpi_only.append(run_stage("dbt_kpi_only", data, log, day=history_end))
    for _ in range(repeat):
        hand.append(run_stage("handwritten_sql", data, log, day=history_end))
    for _ in range(build_repeat):
        full.append(run_stage("dbt_full_build", data, log, day=history_end))
    res["dbt_kpi_only"], res["handwritten_sql"], res["dbt_full_build"] = (
        _summary(kpi_only), _summary(hand), _summary(full))
    res["warehouse_bytes"] = (data / "warehouse.duckdb").stat().st_size

    log(f"[{scale.name}] 3-4. the night of {last} on top of {scale.days - 1} days: bare vs Dagster")
    history = work / "history.duckdb"
    shutil.copyfile(data / "warehouse.duckdb", history)
    nb, nd = [], []
    for _ in range(repeat):
        shutil.copyfile(history, data / "warehouse.duckdb")
        nb.append(run_stage("nightly_bare", data, log, landing=landing, day=last))
        shutil.copyfile(history, data / "warehouse.duckdb")
        nd.append(run_stage("nightly_dagster", data, log, landing=landing, day=last))
    res["nightly_bare"], res["nightly_dagster"] = _summary(nb), _summary(nd)
    history.unlink()
    res["total_seconds"] = time.perf_counter() - t_all
    log(f"[{scale.name}] done in {res['total_seconds'] / 60:.1f} min")
    return res


# ---- reporting ------------------------------------------------------------------------------------
def ratios(res: dict[str, Any]) -> dict[str, float]:
    rows = res["rows"]
    ours_tp = rows / res["ingest_ours"]["seconds"]
    bare_tp = rows / res["ingest_bare"]["seconds"]
    return {
        "ingestion": ours_tp / bare_tp,
        "build": res["dbt_full_build"]["seconds"] / res["handwritten_sql"]["seconds"],
        "kpi_only": res["dbt_kpi_only"]["seconds"] / res["handwritten_sql"]["seconds"],
        "incremental": res["nightly_bare"]["seconds"] / res["dbt_full_build"]["seconds"],
        "dagster": res["nightly_dagster"]["wall_seconds"] / res["nightly_bare"]["wall_seconds"],
        "dagster_work": res["nightly_dagster"]["seconds"] / res["nightly_bare"]["seconds"],
        # the same work as the bare night: the job without its GX gates and the publish step
        "dagster_same_work": (res["nightly_dagster"]["seconds"] - extra_steps(res["nightly_dagster"]))
        / res["nightly_bare"]["seconds"],
    }


def extra_steps(stage: dict[str, Any]) -> float:
    """Seconds of the Dagster steps the bare night does not run: GX checks and the publish."""
    steps = stage["last"].get("steps", {})
    return sum(t for key, t in steps.items() if "_gx_" in key or key.startswith("serving__"))


def _s(x: float) -> str:
    return f"{x:,.2f} s" if x < 100 else f"{x:,.0f} s ({x / 60:.1f} min)"


def _mib(x: float) -> str:
    return f"{x:,.0f} MiB"


def render(res: dict[str, Any]) -> str:
    """A Markdown section for RESULTS.md."""
    sc, m, r = res["scale"], res["machine"], ratios(res)
    v = m["versions"]
    rows = res["rows"]
    gen = res["generate"]
    nd_steps = res["nightly_dagster"]["last"].get("steps", {})
    top_steps = ", ".join(f"{k} {s:.1f} s" for k, s in sorted(nd_steps.items(), key=lambda kv: -kv[1])[:4])
    lines = [
        f"## {res['date']} · scale {sc['name']}: {sc['customers']:,} customers × {sc['days']} days",
        "",
        f"Machine: {m['machine']}, {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB; Python {m['python']}; "
        + ", ".join(f"{k} {val}" for k, val in v.items()) + ".  ",
        "DuckDB: " + ", ".join(f"{k}={val}" for k, val in res["duckdb_settings"].items()
                               if k != "temp_directory") + ", temp_directory under the data dir.  ",
        f"Data: {rows:,} delivered records in {res['landing_bytes'] / 1e6:,.0f} MB of drops "
        f"({res['first_day']} .. {res['last_day']}); warehouse {res['warehouse_bytes'] / 1e6:,.0f} MB.  ",
        f"Medians of {res['repeat']} runs ({res['build_repeat']} for dbt builds); "
        f"whole harness run {res['total_seconds'] / 60:.1f} min.",
        "",
        "| # | measure | ours | reference | ratio | target | peak RSS (ours / ref) |",
        "|---|---|---|---|---|---|---|",
    ]
    if gen:
        lines.append(f"| 0 | generate the drops | {_s(gen['seconds'])} ({gen['wall_seconds']:.1f} s with start-up) | - "
                     f"| - | - | {_mib(gen['peak_rss_mib'])} |")
    io, ib = res["ingest_ours"], res["ingest_bare"]
    lines.append(f"| 1 | ingestion of every drop | {_s(io['seconds'])}, {rows / io['seconds']:,.0f} rows/s | "
                 f"bare polars {_s(ib['seconds'])}, {rows / ib['seconds']:,.0f} rows/s | {r['ingestion']:.2f}× | "
                 f"{TARGETS['ingestion']} | {_mib(io['peak_rss_mib'])} / {_mib(ib['peak_rss_mib'])} |")
    fb, hs, ko = res["dbt_full_build"], res["handwritten_sql"], res["dbt_kpi_only"]
    last_fb = fb["last"]
    lines.append(f"| 2 | full `dbt build` ({last_fb['models']} models, {last_fb['tests']} tests) | "
                 f"{_s(fb['seconds'])} | "
                 f"hand-written SQL {_s(hs['seconds'])} | {r['build']:.2f}× | {TARGETS['build']} | "
                 f"{_mib(fb['peak_rss_mib'])} / {_mib(hs['peak_rss_mib'])} |")
    lines.append(f"| 2b | `dbt run -s +kpi_experience_daily` (same output as the script) | {_s(ko['seconds'])} | "
                 f"hand-written SQL {_s(hs['seconds'])} | {r['kpi_only']:.2f}× | - | "
                 f"{_mib(ko['peak_rss_mib'])} / {_mib(hs['peak_rss_mib'])} |")
    nb, nd = res["nightly_bare"], res["nightly_dagster"]
    lines.append(f"| 3 | nightly run, one new day on {sc['days'] - 1} days of history (bare) | {_s(nb['seconds'])} "
                 f"(ingest {nb['last']['ingest_seconds']:.1f} s, dbt {nb['last']['dbt_seconds']:.1f} s) | "
                 f"full build {_s(fb['seconds'])} | {100 * r['incremental']:.1f} % | {TARGETS['incremental']} | "
                 f"{_mib(nb['peak_rss_mib'])} / {_mib(fb['peak_rss_mib'])} |")
    lines.append(f"| 4 | Dagster `nightly` job (+ GX checks, publish) | {_s(nd['wall_seconds'])} process, "
                 f"{_s(nd['seconds'])} in the job | bare {_s(nb['wall_seconds'])} process, {_s(nb['seconds'])} work | "
                 f"{r['dagster']:.2f}× ({r['dagster_work']:.2f}× work; {r['dagster_same_work']:.2f}× without "
                 f"GX and publish, {extra_steps(nd):.1f} s) | {TARGETS['dagster']} | "
                 f"{_mib(nd['peak_rss_mib'])} / {_mib(nb['peak_rss_mib'])} |")
    def slow(stage: dict[str, Any]) -> str:
        last = stage["last"]
        top = ", ".join(f"{name} {t:.1f} s" for name, t in last.get("slowest", [])[:6])
        return (f"models {last.get('model_seconds', 0):.1f} s + tests {last.get('test_seconds', 0):.1f} s; "
                f"slowest: {top}")

    lines += ["", f"Where dbt's time goes (node times summed over threads). Full build: {slow(fb)}. "
              f"Nightly: {slow({'last': nb['last'].get('dbt', {})})}.  ",
              f"Slowest Dagster steps: {top_steps}.", ""]
    return "\n".join(lines) + "\n"


def record(res: dict[str, Any], path: Path = RESULTS) -> None:
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `python -m benchmarks`; see docs/benchmarks.md.\n\n")
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n" + render(res))
    stamp = dt.datetime.now().strftime("%H%M")
    raw = path.with_name("results") / f"{res['date']}-{stamp}-{res['scale']['name']}.json"
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
