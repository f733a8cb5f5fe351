"""The benchmark harness: one run at one scale measures, on the same generated data,

1. ingestion of every drop, ours vs bare polars (validation overhead);
2. a full ``dbt build`` vs one hand-written DuckDB script computing ``kpi_experience_daily`` straight
   from the raw Parquet (modelling overhead over the engine), plus ``dbt run -s +kpi_experience_daily``
   (the same output as the script, without the other marts and the tests);
3. the nightly run for one new day on top of the history vs the full build (incremental cost), and the floor under
   it: the next night's ``dbt build`` with nothing new (``nightly_nothing``, a window no drop lands in);
4. the Dagster ``nightly`` job vs the same work run bare (``nightly_bare_full``: ingest, ``dbt build``, the gate,
   the analyses and the publish through the same functions, no Dagster), step by step (orchestration overhead);
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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingestion import settings

RESULTS = Path(__file__).with_name("RESULTS.md")
START = dt.date(2025, 11, 1)  # a year from here crosses both DST nights
SEED = 42


# measures in the order they run; "bare" right after "ingest" means the two are interleaved run by run
MEASURES = ("ingest", "bare", "kpi_only", "handwritten", "build", "nightly")
# the nightly measure's stages: ingest + dbt bare (row 3), the next night with nothing new on top of it (row 3c,
# the floor), the job's whole work bare, and the Dagster job (row 4)
NIGHTS = ("nightly_bare", "nightly_nothing", "nightly_bare_full", "nightly_dagster")


@dataclasses.dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    days: int
    repeat: int  # runs per cheap stage (ingestion, hand-written SQL, nightly)
    build_repeat: int  # runs per full build
    measures: tuple[str, ...] = MEASURES
    nights: tuple[str, ...] = NIGHTS  # the nightly measure's stages (each run from the same history)
    # free disk the run needs under its workdir, in GB at the scale's customers x days: the drops, then what each
    # part of the run adds (``DISK_PARTS``: a part counts when one of its measures runs); empty: not checked
    disk_gb: tuple[tuple[str, float], ...] = ()

    def disk_need_gb(self) -> dict[str, float]:
        """The parts of ``disk_gb`` this run's measures need, drops first."""
        held = dict(self.disk_gb)
        return {part: gb for part, gb in held.items()
                if part == "drops" or any(m in self.measures for m in DISK_PARTS[part][1])}


# what each part of ``Scale.disk_gb`` holds, and the measures that need it
DISK_PARTS = {
    "drops": ("drops", ()),
    "raw": ("raw and quarantine zones", MEASURES),  # every measure starts from our ingestion's zones
    "bare": ("bare polars' copy", ("bare",)),  # removed after each run
    "warehouse": ("warehouse file and DuckDB's spill", ("kpi_only", "handwritten", "build", "nightly")),
}


SCALES = {
    "tiny": Scale("tiny", 300, 4, 1, 1),  # CI smoke run: keeps the harness working, times mean nothing
    "S": Scale("S", 10_000, 30, 3, 3),
    "M": Scale("M", 100_000, 365, 2, 1),  # a night costs minutes here: 2 runs, median = mean
    # on demand only: hours (docs/benchmarks.md). Ingestion against bare polars, the full build (within the
    # memory target: run it with CX_DUCKDB_MEMORY_LIMIT=5GB), one bare night on top of that build (the Dagster
    # target is M's; a second night would need a copy of a ~20 GB warehouse), then the hand-written script
    # needs ~100 GB of disk (2026-12-01): drops 30 GB, raw zone 5 GB, warehouse 25 GB, DuckDB's spill up to 35 GB
    "L": Scale("L", 1_000_000, 730, 1, 1, ("ingest", "bare", "build", "nightly", "handwritten"),
               nights=("nightly_bare",),
               disk_gb=(("drops", 32), ("raw", 5), ("bare", 7), ("warehouse", 56))),  # 100 GB in all
}


class DiskError(RuntimeError):
    """Too little free disk for the scale: refused before any stage runs (out of disk, DuckDB's spill ends a
    run hours in with "No space left on device")."""


def check_disk(scale: Scale, work: Path, reuse_landing: bool) -> None:
    """Refuse a scale whose disk need exceeds the free disk under ``work``: ``Scale.disk_gb``, the parts its
    measures need (``--measures ingest,bare`` at L needs the drops and two copies of them, not the warehouse's
    spill), in proportion to customers x days when they are overridden; drops reused from an earlier run count
    as available."""
    base = SCALES.get(scale.name, scale)
    parts = scale.disk_need_gb()
    if not parts or not base.customers or not base.days:
        return
    ratio = (scale.customers * scale.days) / (base.customers * base.days)
    need = sum(parts.values()) * 1e9 * ratio
    landing = work / "landing"
    have = shutil.disk_usage(work).free
    if reuse_landing and landing.exists():
        have += sum(f.stat().st_size for f in landing.rglob("*") if f.is_file())
    if have < need:
        spelled = ", ".join(f"{DISK_PARTS[part][0]} {gb * ratio:,.0f}" for part, gb in parts.items())
        raise DiskError(f"scale {scale.name} needs ~{need / 1e9:,.0f} GB of free disk under {work} ({spelled}; "
                        f"docs/benchmarks.md), and {have / 1e9:,.0f} GB is free"
                        + (" counting the reused drops" if reuse_landing and landing.exists() else "")
                        + ": free space, pass --workdir on a larger disk, or run fewer --measures")

# issue 18's acceptance (one place; docs/benchmarks.md explains each)
TARGETS = {
    "ingestion": "≥ 0.7× bare polars throughput (M and L)",
    "build": "full build with its tests ≤ 3× hand-written SQL",
    "kpi_only": "≤ 2× hand-written SQL",
    "incremental": "nightly < 10 % of full build at M; < 5 % and < 60 s at L",
    "night_growth": "nightly at M ≤ 1.5× the nightly at S",
    "dagster": "Dagster nightly ≤ 1.2× the same work bare",
    "memory": "L full build within CX_DUCKDB_MEMORY_LIMIT=5GB, peak RSS < 6 GiB",
}


# a stage that fails within a memory limit below the default is recorded under its name + LIMITED, then re-run
MEMORY_ENV = "CX_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = settings.BY_NAME[MEMORY_ENV].value_default
LIMITED = "_failed_within_limit"
FAILED = "_failed"  # a night that failed: recorded under its stage's name + FAILED
OUT_OF_MEMORY = "Out of Memory Error"  # DuckDB's error when a query cannot fit within memory_limit


class StageError(RuntimeError):
    """A stage that failed: its exit, the tail of its output, and what it cost until then."""

    def __init__(self, message: str, seconds: float = 0.0, peak_rss_mib: float = 0.0) -> None:
        super().__init__(message)
        self.seconds, self.peak_rss_mib = seconds, peak_rss_mib


Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_stage(name: str, data: Path, log: Log = _stderr, env: dict[str, str] | None = None,
              **kwargs: Any) -> dict[str, Any]:
    """Run ``python -m benchmarks.stage name`` in a fresh process (``env``: variables set for it on top of the
    project's); its JSON plus ``wall_seconds``. A failed stage raises :class:`StageError` with its output's tail,
    its seconds and its peak RSS (the child's own, from ``wait4``: what a build that ran out of memory reached)."""
    cmd = [sys.executable, "-m", "benchmarks.stage", name, "--data", str(data)]
    for key, value in kwargs.items():
        cmd += [f"--{key}", str(value)]
    child_env = {**settings.subprocess_env(data), **(env or {})}
    log(f"  {name} ..." + (" (" + ", ".join(f"{k}={v}" for k, v in env.items()) + ")" if env else ""))
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True, env=child_env,
                                cwd=Path(__file__).resolve().parents[1])
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out_f.seek(0)
        err_f.seek(0)
        stdout, stderr = out_f.read(), err_f.read()
    if proc.returncode != 0:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-40:])
        raise StageError(f"benchmark stage {name!r} failed (exit {proc.returncode}):\n{tail}",
                         seconds=wall, peak_rss_mib=round(usage.ru_maxrss / 1024, 1))
    out = json.loads(stdout.strip().splitlines()[-1])
    out["wall_seconds"] = wall
    log(f"  {name}: {out['seconds']:.2f} s work, {wall:.2f} s process, peak RSS {out['peak_rss_mib']:,.0f} MiB")
    return out


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {"seconds": _median(runs, "seconds"), "wall_seconds": _median(runs, "wall_seconds"),
           "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": len(runs),
           "all_seconds": [round(r["seconds"], 3) for r in runs], "last": runs[-1]}
    if all("steps" in r for r in runs):  # a night's seconds per step: the median of each step over the runs
        out["steps"] = {k: statistics.median(r["steps"].get(k, 0.0) for r in runs) for k in runs[-1]["steps"]}
    # every other figure's median; the steps are out["steps"] alone (there a step a run lacks counts 0 s)
    out["parts"] = {k: v for k, v in _median_parts(runs).items() if k != "steps"}
    return out


def _median_parts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over the runs of each figure every run reports (a night's ingest and dbt seconds, its dbt
    node times summed, one level of nesting deep): what the tables print beside a median, so that its parts
    are medians too, not the last run's (a night of 20.9 s printed beside the 27.4 s of dbt its slower last
    run took)."""
    def number(v: object) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def medians(dicts: list[dict[str, Any]], nested: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in dicts[-1]:
            values = [d.get(key) for d in dicts]
            if all(number(v) for v in values):
                out[key] = statistics.median(values)
            elif nested and all(isinstance(v, dict) for v in values):
                out[key] = medians(values, nested=False)
        return out

    return medians(runs, nested=True)


def parts(stage: dict[str, Any]) -> dict[str, Any]:
    """A stage's figures, each the median over its runs (results recorded before 2026-12-04 18:00 kept only
    the last run's: then those)."""
    return stage.get("parts") or stage["last"]


def _parts_from(stage: dict[str, Any]) -> str:
    """What the tables print before a stage's parts: nothing for medians, "its last run: " for older results."""
    return "" if "parts" in stage else "its last run: "


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
    """Run the scale's measures under ``workdir/<scale>``; return the results.

    After every stage the results so far are saved to ``workdir/<scale>/partial.json``, so a run cut short
    (scale L takes hours) can still be rendered and recorded (``python -m benchmarks --render``).
    """
    repeat = repeat or scale.repeat
    build_repeat = build_repeat or scale.build_repeat
    want = scale.measures
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
    check_disk(scale, work, reuse_landing)
    partial = work / "partial.json"

    def save() -> None:
        res["total_seconds"] = time.perf_counter() - t_all
        partial.write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")

    log(f"[{scale.name}] generate {scale.customers:,} customers x {scale.days} days")
    truth = landing / "truth.json"
    generated = work / "generate.json"  # the generation stage's figures, kept with the drops they describe
    if reuse_landing and truth.exists() and json.loads(truth.read_text())["volumes"]["customers"] == scale.customers:
        log(f"  reusing {landing}")
        res["generate"] = json.loads(generated.read_text()) if generated.exists() else None
    else:
        _rmtree(landing)
        res["generate"] = run_stage("generate", scratch, log, landing=landing, customers=scale.customers,
                                    days=scale.days, start=first, seed=SEED)
        generated.write_text(json.dumps(res["generate"]) + "\n", encoding="utf-8")
    res["landing_bytes"] = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    save()

    def bare_run() -> dict[str, Any]:
        _rmtree(scratch)
        run = run_stage("ingest_bare", scratch, log, landing=landing)
        _rmtree(scratch)  # at L the bare copy is ~7 GB: never kept beside the warehouse
        return run

    def bare_ingestion() -> None:
        runs = [bare_run() for _ in range(repeat)]
        res["ingest_bare"] = _summary(runs)
        if runs[-1]["rows"] != res["rows"]:
            raise StageError(f"row counts differ: ours {res['rows']} vs bare {runs[-1]['rows']}")
        save()

    interleave = "bare" in want and want.index("bare") == want.index("ingest") + 1
    log(f"[{scale.name}] 1. ingestion of every drop, ours" + (" vs bare polars" if interleave else "")
        + f" ({repeat} runs each)")
    ours, bare = [], []
    for _ in range(repeat):
        if interleave:
            bare.append(bare_run())
        _rmtree(data)
        ours.append(run_stage("ingest_ours", data, log, landing=landing))
        if bare and ours[-1]["rows"] != bare[-1]["rows"]:
            raise StageError(f"row counts differ: ours {ours[-1]['rows']} vs bare {bare[-1]['rows']}")
    res["ingest_ours"] = _summary(ours)
    res["rows"] = ours[-1]["rows"]
    if bare:
        res["ingest_bare"] = _summary(bare)
    (data / "landing").symlink_to(landing, target_is_directory=True)
    save()

    log(f"[{scale.name}] 2. full build as of {history_end} vs hand-written SQL")
    steps = {"kpi_only": ("dbt_kpi_only", build_repeat), "handwritten": ("handwritten_sql", repeat),
             "build": ("dbt_full_build", build_repeat)}

    def nights_on_build() -> None:
        nights = scale.nights
        log(f"[{scale.name}] 3-4. the night of {last} on top of {scale.days - 1} days: {', '.join(nights)}")
        # the memory target is the full build's: a night runs within the default limit (its peak RSS is reported)
        night_env = ({MEMORY_ENV: DEFAULT_MEMORY_LIMIT}
                     if settings.duckdb_settings()["memory_limit"] != DEFAULT_MEMORY_LIMIT else None)
        res["nights_memory_limit"] = DEFAULT_MEMORY_LIMIT if night_env else settings.duckdb_settings()["memory_limit"]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in nights}

        def night(name: str) -> bool:
            """Run one night; a night that fails (at L: out of memory) is recorded under its name + FAILED with
            its error, seconds and peak RSS, and the nights stop there (what follows the nights still runs)."""
            try:
                runs[name].append(run_stage(name, data, log, env=night_env, landing=landing, day=last))
                return True
            except StageError as exc:
                log(f"  {name} failed after {exc.seconds:.0f} s (peak RSS {exc.peak_rss_mib:,.0f} MiB)")
                res[name + FAILED] = {"memory_limit": res["nights_memory_limit"], "seconds": exc.seconds,
                                      "peak_rss_mib": exc.peak_rss_mib, "error": str(exc)}
                return False

        if repeat * len(nights) == 1:
            # one night in all (L: a copy of its warehouse would cost ~20 GB and minutes): on the build itself
            night(nights[0])
        else:
            history = work / "history.duckdb"
            shutil.copyfile(data / "warehouse.duckdb", history)
            # the Dagster night publishes on top of the history's publication, as every night after the first
            # does (with nothing served, a publish writes every table: a first publish's cost, not a night's)
            from orchestration.publish import publish

            served = work / "history-serving"
            for folder in (data / "serving", served):
                shutil.rmtree(folder, ignore_errors=True)
            publish(history, data / "serving", as_of=history_end.isoformat())
            shutil.copytree(data / "serving", served, symlinks=True)

            def restore() -> None:  # each night starts from the same history and the same served copy
                shutil.copyfile(history, data / "warehouse.duckdb")
                shutil.rmtree(data / "serving")
                shutil.copytree(served, data / "serving", symlinks=True)

            # the bare night first, then the job's whole work bare and the Dagster job in turn first (a load that
            # drifts during a round then favours neither): at M under a shared machine's falling load, the second
            # of the two ran up to 2x faster
            paired = [name for name in ("nightly_bare_full", "nightly_dagster") if name in nights]
            ok = True
            for i in range(repeat):
                for name in [n for n in nights if n not in paired] + (paired if i % 2 == 0 else paired[::-1]):
                    if ok:  # after a failed night, none runs (nor restores the history for it)
                        restore()
                        ok = night(name)
            history.unlink()
            shutil.rmtree(served)
        for name, done in runs.items():
            if done:
                res[name] = _summary(done)
        save()

    for measure in want:
        if measure == "bare" and not interleave:
            log(f"[{scale.name}] 1b. bare polars ingestion ({repeat} runs)")
            bare_ingestion()
        elif measure == "nightly":
            nights_on_build()
        elif measure in steps:
            name, n = steps[measure]
            try:
                res[name] = _summary([run_stage(name, data, log, day=history_end) for _ in range(n)])
            except StageError as exc:
                # a build under a memory limit below the default that runs out: record where and what it reached
                # (the memory target's figure), then measure it within the default limit, so that the measures
                # after it (the night on top of the build) still run
                limit = settings.duckdb_settings()["memory_limit"]
                if limit == DEFAULT_MEMORY_LIMIT or OUT_OF_MEMORY not in str(exc):
                    raise  # not the memory target's failure: a broken build is an error at any limit
                log(f"  {name} failed within memory_limit={limit} after {exc.seconds:.0f} s "
                    f"(peak RSS {exc.peak_rss_mib:,.0f} MiB); again within {DEFAULT_MEMORY_LIMIT}")
                res[name + LIMITED] = {"memory_limit": limit, "seconds": exc.seconds,
                                       "peak_rss_mib": exc.peak_rss_mib, "error": str(exc)}
                save()
                res[name] = _summary([run_stage(name, data, log, env={MEMORY_ENV: DEFAULT_MEMORY_LIMIT},
                                                day=history_end) for _ in range(n)])
            if measure == "build":
                res["warehouse_bytes"] = (data / "warehouse.duckdb").stat().st_size
            save()

    save()
    log(f"[{scale.name}] done in {res['total_seconds'] / 60:.1f} min")
    return res


# ---- reporting ------------------------------------------------------------------------------------
def ratios(res: dict[str, Any]) -> dict[str, float]:
    """The ratios of the measures that ran (a scale may leave some out, a run may be cut short)."""
    def have(*keys: str) -> bool:
        return all(res.get(k) for k in keys)

    out: dict[str, float] = {}
    if have("ingest_ours", "ingest_bare"):  # throughput ratio: same rows, so bare time / our time
        out["ingestion"] = res["ingest_bare"]["seconds"] / res["ingest_ours"]["seconds"]
    if have("dbt_full_build", "handwritten_sql"):
        out["build"] = res["dbt_full_build"]["seconds"] / res["handwritten_sql"]["seconds"]
    if have("dbt_kpi_only", "handwritten_sql"):
        out["kpi_only"] = res["dbt_kpi_only"]["seconds"] / res["handwritten_sql"]["seconds"]
    if have("nightly_bare", "dbt_full_build"):
        out["incremental"] = res["nightly_bare"]["seconds"] / res["dbt_full_build"]["seconds"]
    if have("nightly_nothing", "dbt_full_build"):  # the floor: a night with nothing new, against the full build
        out["night_floor"] = res["nightly_nothing"]["seconds"] / res["dbt_full_build"]["seconds"]
    if have("nightly_bare", "night_reference"):  # the night against a smaller scale's (M against S)
        out["night_growth"] = res["nightly_bare"]["seconds"] / res["night_reference"]["nightly_bare"]["seconds"]
    if have("nightly_bare", "nightly_dagster"):
        nb, nd = res["nightly_bare"], res["nightly_dagster"]
        out["dagster"] = nd["wall_seconds"] / nb["wall_seconds"]
        out["dagster_work"] = nd["seconds"] / nb["seconds"]
        # the same work as the bare night: the job without its GX gates and the publish step
        out["dagster_same_work"] = (nd["seconds"] - extra_steps(nd)) / nb["seconds"]
        # the scope's own figure: the job's dbt step against the same `dbt build` run bare
        # both medians; results recorded before the parts were kept: both the last run's
        dbt_step = (_steps(nd) if "parts" in nb else nd["last"].get("steps", {})).get(DBT_STEP)
        if dbt_step and parts(nb).get("dbt_seconds"):
            out["dagster_dbt_step"] = dbt_step / parts(nb)["dbt_seconds"]
    if have("nightly_bare_full", "nightly_dagster"):
        # the target's figure: the job against the same work run bare (nightly_bare_full), in the job and per step
        nf, nd = res["nightly_bare_full"], res["nightly_dagster"]
        out["dagster_equal_work"] = nd["seconds"] / nf["seconds"]
        out["dagster_equal_work_process"] = nd["wall_seconds"] / nf["wall_seconds"]
        bare_steps = _steps(nf)
        for key, t in _steps(nd).items():
            if bare_steps.get(key):
                out[STEP_RATIO + key] = t / bare_steps[key]
    return out


STEP_RATIO = "dagster_step:"  # ratios() key prefix of a step's Dagster seconds over its bare seconds


def _steps(stage: dict[str, Any]) -> dict[str, float]:
    """A night's seconds per step: the medians over its runs (older results: its last run's)."""
    return stage.get("steps") or stage["last"].get("steps", {})


def outside_steps(stage: dict[str, Any]) -> float:
    """A night's seconds not spent in any step (Dagster: run start, planning, the end of the run)."""
    return max(0.0, stage["seconds"] - sum(_steps(stage).values()))  # steps are rounded: never "-0.0 s"


DBT_STEP = "cx_dbt"  # the nightly job's dbt step (orchestration/assets/warehouse.py)


def extra_steps(stage: dict[str, Any]) -> float:
    """Seconds of the Dagster steps the bare night does not run: GX checks and the publish."""
    return sum(t for key, t in _steps(stage).items() if key == "quality_gate" or key.startswith("serving__"))


def _s(x: float) -> str:
    return f"{x:,.2f} s" if x < 100 else f"{x:,.0f} s ({x / 60:.1f} min)"


def _mib(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} MiB"  # None: not measured (a stage resumed by hand)


def render(res: dict[str, Any]) -> str:
    """A Markdown section for RESULTS.md; measures that did not run are named as such."""
    sc, m, r = res["scale"], res["machine"], ratios(res)
    v = m["versions"]
    rows = res.get("rows")
    gen = res.get("generate")
    night_ran = res.get("nightly_bare") or res.get("nightly_bare" + FAILED)
    missing = [label for key, label in (("ingest_ours", "ingestion"), ("ingest_bare", "bare polars ingestion"),
                                        ("dbt_full_build", "full build"), ("handwritten_sql", "hand-written SQL"),
                                        ("dbt_kpi_only", "`dbt run -s +kpi_experience_daily`")) if not res.get(key)]
    if not night_ran:
        missing.append("nights (bare and Dagster)")
    elif not res.get("nightly_dagster"):
        missing.append("the Dagster night")
    data = (f"Data: {rows:,} delivered records" if rows else "Data:") + (
        f" in {res['landing_bytes'] / 1e6:,.0f} MB of drops ({res['first_day']} .. {res['last_day']})")
    if res.get("warehouse_bytes"):
        data += f"; warehouse {res['warehouse_bytes'] / 1e6:,.0f} MB"
    lines = [
        f"## {res['date']} · scale {sc['name']}: {sc['customers']:,} customers × {sc['days']} days",
        "",
        f"Machine: {m['machine']}, {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB; Python {m['python']}; "
        + ", ".join(f"{k} {val}" for k, val in v.items()) + ".  ",
        "DuckDB: " + ", ".join(f"{k}={val}" for k, val in res["duckdb_settings"].items()
                               if k != "temp_directory") + ", temp_directory under the data dir.  ",
        data + ".  ",
        f"Medians of {res['repeat']} runs ({res['build_repeat']} for dbt builds); "
        f"whole harness run {res['total_seconds'] / 60:.1f} min."
        + (f" Not measured in this run: {', '.join(missing)}." if missing else ""),
        "",
        "| # | measure | ours | reference | ratio | target | peak RSS (ours / ref) |",
        "|---|---|---|---|---|---|---|",
    ]
    if gen:
        lines.append(f"| 0 | generate the drops | {_s(gen['seconds'])} ({gen['wall_seconds']:.1f} s with start-up) | - "
                     f"| - | - | {_mib(gen['peak_rss_mib'])} |")
    io, ib = res.get("ingest_ours"), res.get("ingest_bare")
    if io:
        ref = (f"bare polars {_s(ib['seconds'])}, {rows / ib['seconds']:,.0f} rows/s" if ib else "-")
        ratio = f"{r['ingestion']:.2f}×" if "ingestion" in r else "-"
        lines.append(f"| 1 | ingestion of every drop | {_s(io['seconds'])}, {rows / io['seconds']:,.0f} rows/s | "
                     f"{ref} | {ratio} | {TARGETS['ingestion']} | {_mib(io['peak_rss_mib'])}"
                     + (f" / {_mib(ib['peak_rss_mib'])}" if ib else "") + " |")
    fb, hs, ko = res.get("dbt_full_build"), res.get("handwritten_sql"), res.get("dbt_kpi_only")
    hand = f"hand-written SQL {_s(hs['seconds'])}" if hs else "-"
    hand_rss = f" / {_mib(hs['peak_rss_mib'])}" if hs else ""
    if fb:
        last_fb = fb["last"]
        lines.append(f"| 2 | full `dbt build` ({last_fb['models']} models, {last_fb['tests']} tests) | "
                     f"{_s(fb['seconds'])} | {hand} | " + (f"{r['build']:.2f}×" if "build" in r else "-")
                     + f" | {TARGETS['build']}" + (f"; {TARGETS['memory']}" if sc["name"] == "L" else "")
                     + f" | {_mib(fb['peak_rss_mib'])}{hand_rss} |")
    elif hs:
        lines.append(f"| 2 | full `dbt build` | not run | {hand} | - | {TARGETS['build']} | -{hand_rss} |")
    for key, label in (("dbt_full_build", "full `dbt build`"), ("handwritten_sql", "hand-written SQL"),
                       ("dbt_kpi_only", "`dbt run -s +kpi_experience_daily`")):
        failed = res.get(key + LIMITED)
        if failed:  # the run above is the one within the default limit
            lines.append(f"| 2m | {label} within memory_limit={failed['memory_limit']} | **failed** after "
                         f"{_s(failed['seconds'])}: {_failure(failed['error'])} | - | - | {TARGETS['memory']} | "
                         f"{_mib(failed['peak_rss_mib'])} |")
    if ko:
        lines.append(f"| 2b | `dbt run -s +kpi_experience_daily` (same output as the script) | {_s(ko['seconds'])} | "
                     f"{hand} | " + (f"{r['kpi_only']:.2f}×" if "kpi_only" in r else "-")
                     + f" | {TARGETS['kpi_only']} | {_mib(ko['peak_rss_mib'])}{hand_rss} |")
    nb, nd = res.get("nightly_bare"), res.get("nightly_dagster")
    if nb and fb:
        lines.append(f"| 3 | nightly run, one new day on {sc['days'] - 1} days of history (bare) | {_s(nb['seconds'])} "
                     f"({_parts_from(nb)}ingest {parts(nb)['ingest_seconds']:.1f} s, "
                     f"dbt {parts(nb)['dbt_seconds']:.1f} s) | "
                     f"full build {_s(fb['seconds'])} | {100 * r['incremental']:.1f} % | {TARGETS['incremental']} | "
                     f"{_mib(nb['peak_rss_mib'])} / {_mib(fb['peak_rss_mib'])} |")
    nn = res.get("nightly_nothing")
    if nn and fb:
        d = parts(nn).get("dbt", {})
        lines.append(f"| 3c | the next night with nothing new (window [day + 1, day + 2), no drop): the floor under "
                     f"row 3 | {_s(nn['seconds'])} ({_parts_from(nn)}models "
                     f"{d.get('model_seconds', 0):.1f} s + tests "
                     f"{d.get('test_seconds', 0):.1f} s summed) | full build {_s(fb['seconds'])} | "
                     f"{100 * r['night_floor']:.1f} % | {TARGETS['incremental']}: a night costs at least this | "
                     f"{_mib(nn['peak_rss_mib'])} (with the night before it) / {_mib(fb['peak_rss_mib'])} |")
    ref = res.get("night_reference")
    if nb and ref:
        rs = ref["scale"]
        lines.append(f"| 3b | the same night against the night of scale {rs['name']} ({rs['customers']:,} customers × "
                     f"{rs['days']} days; harness run of {ref['date']}, same machine) | {_s(nb['seconds'])} | "
                     f"{rs['name']}'s night {_s(ref['nightly_bare']['seconds'])} | {r['night_growth']:.2f}× | "
                     f"{TARGETS['night_growth']} | {_mib(nb['peak_rss_mib'])} / "
                     f"{_mib(ref['nightly_bare']['peak_rss_mib'])} |")
    for name, label in (("nightly_bare", "nightly run, one new day on {days} days of history (bare)"),
                        ("nightly_bare_full", "the `nightly` job's work bare"),
                        ("nightly_dagster", "Dagster `nightly` job")):
        failed = res.get(name + FAILED)
        if failed:
            lines.append(f"| {'3' if name == 'nightly_bare' else '4'} | {label.format(days=sc['days'] - 1)} "
                         f"within memory_limit={failed['memory_limit']} | **failed** after {_s(failed['seconds'])}: "
                         f"{_failure(failed['error'])} | " + (f"full build {_s(fb['seconds'])}" if fb else "-")
                         + f" | - | {TARGETS['incremental']} | {_mib(failed['peak_rss_mib'])} |")
    if nb and nd:
        lines.append(f"| 4 | Dagster `nightly` job (+ GX checks, publish) | {_s(nd['wall_seconds'])} process, "
                     f"{_s(nd['seconds'])} in the job | bare {_s(nb['wall_seconds'])} process, {_s(nb['seconds'])} "
                     f"work | {r['dagster']:.2f}× ({r['dagster_work']:.2f}× work; {r['dagster_same_work']:.2f}× "
                     f"without GX and publish, {extra_steps(nd):.1f} s"
                     + (f"; its dbt step {r['dagster_dbt_step']:.2f}× the bare `dbt build`" if "dagster_dbt_step" in r
                        else "") + f") | {TARGETS['dagster']} | "
                     f"{_mib(nd['peak_rss_mib'])} / {_mib(nb['peak_rss_mib'])} |")
        if "dagster_equal_work" in r:
            lines[-1] = _equal_work_row(res, r)

    def slow(stage: dict[str, Any]) -> str:
        last = stage["last"]
        top = ", ".join(f"{name} {t:.1f} s" for name, t in last.get("slowest", [])[:6])
        return (f"models {last.get('model_seconds', 0):.1f} s + tests {last.get('test_seconds', 0):.1f} s; "
                f"slowest: {top}")

    notes = []
    if fb:
        notes.append(f"Where dbt's time goes (node times summed over threads). Full build: {slow(fb)}."
                     + (f" Nightly: {slow({'last': nb['last'].get('dbt', {})})}." if nb else "") + "  ")
    if nd:
        top_steps = ", ".join(f"{k} {t:.1f} s" for k, t in
                              sorted(nd["last"].get("steps", {}).items(), key=lambda kv: -kv[1])[:4])
        notes.append(f"Slowest Dagster steps: {top_steps}.")
        spent = nd["last"].get("publication", {}).get("seconds_by_part")
        if spent:  # where the Dagster night's publish spent its time (orchestration/publish.py Publication)
            top = sorted(spent.items(), key=lambda kv: -kv[1])[:6]  # (Dagster's metadata keeps no key order)
            notes.append("Its publish: " + ", ".join(f"{k} {t:.1f} s" for k, t in top) + ".")
    lines += ["", *notes, ""] if notes else [""]
    return "\n".join(lines) + "\n"


def night_reference(res: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """What row 3b needs of ``other``, the results of a smaller scale's harness run (M's night against S's): its
    scale, date, machine and bare night. Refused, naming why, unless it ran a bare night on a smaller scale on the
    same kind of machine (CPU, cores, DuckDB settings but the spill folder): otherwise the ratio compares machines."""
    if not other.get("nightly_bare"):
        raise ValueError(f"the reference run (scale {other['scale']['name']}, {other['date']}) has no bare night")
    if other["scale"]["customers"] * other["scale"]["days"] >= res["scale"]["customers"] * res["scale"]["days"]:
        raise ValueError(f"the reference run's scale {other['scale']['name']} is not smaller than "
                         f"{res['scale']['name']}")
    for key in ("machine", "cpu", "cores"):
        if other["machine"].get(key) != res["machine"].get(key):
            raise ValueError(f"the reference run ran on another machine ({key}: {other['machine'].get(key)!r} against "
                             f"{res['machine'].get(key)!r}): run both scales on one machine")
    def engine(run: dict[str, Any]) -> dict[str, str]:  # the spill folder is per run: not a setting compared
        return {k: v for k, v in run["duckdb_settings"].items() if k != "temp_directory"}

    if engine(other) != engine(res):
        raise ValueError("the reference run used other DuckDB settings: " + json.dumps(other["duckdb_settings"]))
    return {"scale": other["scale"], "date": other["date"], "machine": other["machine"],
            "nightly_bare": other["nightly_bare"]}


def _failure(error: str) -> str:
    """A failed stage's error in a table cell: the models and tests that failed, then the first error line
    (DuckDB's "Out of Memory Error: failed to pin ...")."""
    nodes = list(dict.fromkeys(re.findall(r"Error in (?:model|test) (\w+)", error)))
    first = next((line.strip() for line in error.splitlines() if re.search(r"\w Error: ", line)),
                 error.strip().splitlines()[0] if error.strip() else "")
    return ((", ".join(nodes) + ": " if nodes else "") + first).replace("|", "/")[:300]


def _equal_work_row(res: dict[str, Any], r: dict[str, float]) -> str:
    """Row 4 when the job's whole work was also run bare: the target's ratio is the job against that, with
    each step's ratio; the ratios against the bare night of row 3 (ingest + dbt only) stay beside it."""
    nf, nd = res["nightly_bare_full"], res["nightly_dagster"]
    bare_steps, dagster_steps = _steps(nf), _steps(nd)
    per_step = []
    for key, t in sorted(dagster_steps.items(), key=lambda kv: -kv[1]):
        ratio = r.get(STEP_RATIO + key)
        per_step.append(f"{key} {t:.1f} / {bare_steps.get(key, 0.0):.1f} s"
                        + (f" {ratio:.2f}×" if ratio is not None else ""))
    return (f"| 4 | Dagster `nightly` job against the same work bare (`nightly_bare_full`: ingest, dbt, GX gate, "
            f"analyses, publish; the ratio is job seconds over bare seconds) | {_s(nd['seconds'])} in the job, "
            f"{_s(nd['wall_seconds'])} process | same work bare {_s(nf['seconds'])}, {_s(nf['wall_seconds'])} process "
            f"| **{r['dagster_equal_work']:.2f}×** ({r['dagster_equal_work_process']:.2f}× process). Per step, "
            f"Dagster / bare: {'; '.join(per_step)}; outside the steps {outside_steps(nd):.1f} / "
            f"{outside_steps(nf):.1f} s. Against the bare night of row 3 (ingest + dbt only): {r['dagster']:.2f}× "
            f"process, {r['dagster_work']:.2f}× work, {r['dagster_same_work']:.2f}× without GX and publish; "
            + (f"its dbt step {r['dagster_dbt_step']:.2f}× the bare `dbt build`" if "dagster_dbt_step" in r else "")
            + f" | {TARGETS['dagster']} | {_mib(nd['peak_rss_mib'])} / {_mib(nf['peak_rss_mib'])} |")


def record(res: dict[str, Any], path: Path = RESULTS) -> None:
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `python -m benchmarks`; see docs/benchmarks.md.\n\n")
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n" + render(res))
    stamp = dt.datetime.now().strftime("%H%M")
    raw = path.with_name("results") / f"{res['date']}-{stamp}-{res['scale']['name']}.json"
    n = 1
    while raw.exists():  # two runs recorded in one minute (``--render`` of several): the second beside the first
        n += 1
        raw = raw.with_name(f"{res['date']}-{stamp}-{res['scale']['name']}-{n}.json")
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
