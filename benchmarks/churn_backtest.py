"""The churn-risk model's backtest on a generated company: does it find the planted signal, and how fast?

    python -m benchmarks.churn_backtest --customers 100000 --days 365 --dir /tmp/bench_churn
    python -m benchmarks.churn_backtest --customers 5000 --days 240 --start 2026-01-01 --dir /tmp/bc --no-record

Generates the drops (``benchmarks.stage generate``), ingests every night (``benchmarks.stage ingest_ours``:
``load_drop``, what the Dagster assets call), builds the warehouse as of the last day (``dbt build
--full-refresh`` without the unit tests, as at night), each in its own process like ``python -m
benchmarks``; then runs ``analytics.churn.compute`` as of the last day in a process of its own (its peak
RSS is the analysis's alone). Prints AUC and Brier score per held-out month for the model and the
baseline (recency and frequency only) and appends a section to benchmarks/RESULTS.md (``--no-record``:
print only). ``--reuse`` keeps drops and warehouse already in ``--dir`` (same size and seed).

The generator plants the churn signal (simulator/simulate.py, docs/synthetic-company.md): a daily hazard
by segment, x2 while a bad support case is in memory (90 days), x0.6 / x1.5 after a promoter / detractor
answer, x0.6 while a call-back recovery lasts. The model has those features, the baseline does not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.stage import own_peak_rss_mib

HERE = Path(__file__).resolve().parents[1]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- the steps that run in their own process ------------------------------------------------------------
def _build(data: Path, as_of: dt.date, tests: bool) -> dict[str, Any]:
    from orchestration.warehouse import NIGHTLY_ARGS, run_dbt

    args = ["build", "--full-refresh", *NIGHTLY_ARGS] if tests else ["run", "--full-refresh"]
    t0 = time.perf_counter()
    results = run_dbt(args, data_dir=data, dbt_vars={"as_of": as_of.isoformat()})
    return {"seconds": time.perf_counter() - t0, "nodes": len(results)}


def _score(data: Path, as_of: dt.date, seed: int) -> dict[str, Any]:
    import duckdb
    import polars as pl

    from analytics import churn

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        out = churn.compute(con, as_of, seed=seed, timings=timings)
    seconds = time.perf_counter() - t0
    risk, bt, cal = out["mart_churn_risk"], out["mart_churn_backtest"], out["mart_churn_calibration"]
    deciles = (cal.filter(pl.col("model") == "model").group_by("decile")
               .agg(pl.col("mean_predicted").mean(), pl.col("observed_rate").mean()).sort("decile"))
    return {"seconds": seconds, "timings": timings, "notes": out["notes"], "scored": risk.height,
            "model_version": risk["model_version"][0] if risk.height else None,
            "backtest": bt.with_columns(pl.col("cutoff", "as_of").cast(pl.String)).to_dicts(),
            "deciles": deciles.to_dicts()}


STEPS = {"build": _build, "score": _score}


def _child(step: str, data: Path, **kwargs: Any) -> dict[str, Any]:
    """Run ``step`` in a fresh process (its JSON on the last line of stdout, with its peak RSS)."""
    from ingestion import settings

    cmd = [sys.executable, "-m", "benchmarks.churn_backtest", "--step", step, "--dir", str(data)]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=settings.subprocess_env(data), cwd=HERE)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise harness.StageError(f"churn benchmark step {step!r} failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = time.perf_counter() - t0
    return out


# ---- the run ----------------------------------------------------------------------------------------------
def run(customers: int, days: int, start: dt.date, seed: int, work: Path, reuse: bool = False,
        tests: bool = True) -> dict[str, Any]:
    landing, data = work / "landing", work / "data"
    last = start + dt.timedelta(days=days - 1)
    res: dict[str, Any] = {"customers": customers, "days": days, "start": start.isoformat(), "as_of": last.isoformat(),
                           "seed": seed, "date": dt.date.today().isoformat(), "machine": harness.machine()}
    truth = landing / "truth.json"
    meta = work / "run.json"
    same = meta.exists() and json.loads(meta.read_text()).get("config") == [customers, days, start.isoformat(), seed]
    t_all = time.perf_counter()
    if reuse and same and (data / "warehouse.duckdb").exists() and truth.exists():
        _log(f"reusing the drops and the warehouse in {work}")
        res.update({k: v for k, v in json.loads(meta.read_text()).items() if k in ("generate", "ingest", "build")})
    else:
        work.mkdir(parents=True, exist_ok=True)
        for path in (landing, data):
            harness._rmtree(path)
        _log(f"generating {customers:,} customers x {days} days from {start} ...")
        res["generate"] = harness.run_stage("generate", work / "scratch", _log, landing=landing, customers=customers,
                                            days=days, start=start, seed=seed)
        _log("ingesting every night ...")
        res["ingest"] = harness.run_stage("ingest_ours", data, _log, landing=landing)
        _log(f"dbt {'build' if tests else 'run'} as of {last} ...")
        res["build"] = _child("build", data, as_of=last, tests=int(tests))
        _log(f"  build: {res['build']['seconds']:.1f} s, peak RSS {res['build']['peak_rss_mib']:,.0f} MiB")
        meta.write_text(json.dumps({"config": [customers, days, start.isoformat(), seed],
                                    **{k: res[k] for k in ("generate", "ingest", "build")}}, default=str) + "\n")
    _log(f"churn compute as of {last} ...")
    res["score"] = _child("score", data, as_of=last, seed=0)
    res["total_seconds"] = time.perf_counter() - t_all
    return res


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render(res: dict[str, Any]) -> str:
    s, m = res["score"], res["machine"]
    t = s["timings"]
    by: dict[str, dict[str, dict]] = {}
    for row in s["backtest"]:
        by.setdefault(row["cutoff"], {})[row["model"]] = row
    lines = [
        f"## {res['date']} · churn-risk backtest: {res['customers']:,} customers × {res['days']} days",
        "",
        "`python -m benchmarks.churn_backtest`: `analytics.churn.compute` as of the last generated day "
        f"({res['as_of']}; drops from {res['start']}, seed {res['seed']}), in a process of its own on the warehouse "
        "built as of that day. Each held-out month is scored by models trained only on the monthly cutoffs whose "
        "90-day horizon ended by it; the baseline is the same logistic regression on recency and order counts.",
        "",
        f"Machine: {m['machine']}, {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB; Python {m['python']}; "
        f"duckdb {m['versions'].get('duckdb', '-')}.  ",
    ]
    if "generate" in res:
        lines.append(f"Setup: generate {res['generate']['seconds']:.1f} s, ingest {res['ingest']['seconds']:.1f} s, "
                     f"`dbt build` {res['build']['seconds']:.1f} s.  ")
    lines += [
        f"Churn compute: **{s['seconds']:.1f} s**, peak RSS {s['peak_rss_mib']:,.0f} MiB: feature query "
        f"{_f(t.get('features'), 1)} s ({int(t.get('rows', 0)):,} customer-cutoff rows, one query), fit and score "
        f"{_f(t.get('fit_score'), 1)} s ({s['scored']:,} customers scored), backtest {_f(t.get('backtest'), 1)} s.  ",
        f"Model: {s['model_version'] or '-'}.",
    ]
    if s["notes"]:
        lines.append(f"Notes: {s['notes']}.")
    lines += ["", "| held-out month | customers | churned | AUC model | AUC baseline | Brier model | Brier baseline |",
              "|---|---|---|---|---|---|---|"]
    for cutoff in sorted(by):
        mo, ba = by[cutoff].get("model", {}), by[cutoff].get("baseline", {})
        one = mo or ba
        lines.append(f"| {cutoff} | {one['n']:,} | {one['positives']:,} | {_f(mo.get('auc'))} | {_f(ba.get('auc'))} "
                     f"| {_f(mo.get('brier'), 4)} | {_f(ba.get('brier'), 4)} |")

    def mean(model: str, key: str) -> float | None:
        vals = [r[key] for r in s["backtest"] if r["model"] == model and r[key] is not None]
        return sum(vals) / len(vals) if vals else None

    if by:
        lines.append(f"| **mean** | | | **{_f(mean('model', 'auc'))}** | {_f(mean('baseline', 'auc'))} "
                     f"| **{_f(mean('model', 'brier'), 4)}** | {_f(mean('baseline', 'brier'), 4)} |")
    else:
        lines.append("| (no held-out month: too little history) | | | | | | |")
    if s["deciles"]:
        lines += ["", "Calibration of the model, averaged over the held-out months (decile 10 = highest risk): "
                  + ", ".join(f"{d['decile']}: {d['mean_predicted']:.3f} vs {d['observed_rate']:.3f}"
                              for d in s["deciles"]) + " (mean predicted vs observed)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.churn_backtest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--start", type=dt.date.fromisoformat, default=harness.START)
    ap.add_argument("--seed", type=int, default=harness.SEED)
    ap.add_argument("--dir", type=Path, default=Path("bench_work") / "churn",
                    help="work directory: landing/ and data/ (with warehouse.duckdb) go under it")
    ap.add_argument("--reuse", action="store_true", help="keep the drops and warehouse of the same size and seed")
    ap.add_argument("--no-dbt-tests", action="store_true", help="dbt run instead of dbt build (no data tests)")
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to benchmarks/RESULTS.md")
    ap.add_argument("--results", type=Path, default=harness.RESULTS, help=argparse.SUPPRESS)
    ap.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)  # internal: one step in its process
    ap.add_argument("--as-of", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    ap.add_argument("--tests", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.step:
        from ingestion import settings

        with settings.exported(a.dir):
            out = _build(a.dir, a.as_of, bool(a.tests)) if a.step == "build" else _score(a.dir, a.as_of, a.seed)
        out["peak_rss_mib"] = own_peak_rss_mib()  # not ru_maxrss: see there
        sys.stdout.flush()
        print(json.dumps(out, default=str))
        return 0
    res = run(a.customers, a.days, a.start, a.seed, a.dir.resolve(), a.reuse, not a.no_dbt_tests)
    text = render(res)
    print(text)
    raw = a.dir.resolve() / "churn_backtest.json"
    raw.write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
    if not a.no_record:
        with open(a.results, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)
        _log(f"appended to {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
