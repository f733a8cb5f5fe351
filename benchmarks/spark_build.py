"""The price of Spark on one machine: the same full ``dbt build`` on DuckDB and on a local Spark Thrift server.

    python -m benchmarks.spark_build [--customers 10000 --days 30] [--work DIR] [--record]

At scale S by default (10,000 customers x 30 days, the seed and start of ``python -m benchmarks``):
generate the drops, ingest every night once into one raw zone, then time ``dbt build`` (every model,
seed and data test; unit tests left out, as at night) on DuckDB and on Spark, each into its own data
directory whose ``raw`` links to the shared raw zone. The Spark server (``cxw spark start``'s, local[2])
is started before and stopped after; its start-up is timed apart. A single machine favours DuckDB:
the point is that the project runs on Spark, and what that costs here. ``--record`` appends a section
to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from benchmarks import harness

BUILD = ["build", "--exclude-resource-type", "unit_test"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _node_times(results: list) -> tuple[float, float, int, int]:
    models = sum(r.execution_time for r in results if str(r.node.resource_type) in ("model", "NodeType.Model"))
    tests = sum(r.execution_time for r in results if str(r.node.resource_type) in ("test", "NodeType.Test"))
    n_models = sum(1 for r in results if str(r.node.resource_type) in ("model", "NodeType.Model"))
    n_tests = sum(1 for r in results if str(r.node.resource_type) in ("test", "NodeType.Test"))
    return models, tests, n_models, n_tests


def run(customers: int, days: int, work: Path) -> dict:
    from ingestion import contract as C
    from ingestion.load import Zones, load_drop
    from orchestration.spark_server import LocalServer
    from orchestration.warehouse import run_dbt
    from simulator import GeneratorConfig, generate

    start = harness.START
    work.mkdir(parents=True, exist_ok=True)
    landing, raw = work / "landing", work / "raw"
    if not (landing / "truth.json").exists():
        _log(f"generating {customers:,} customers x {days} days ...")
        generate(GeneratorConfig(customers=customers, days=days, start=start, seed=harness.SEED), landing)
    if not raw.exists():
        _log("ingesting ...")
        zones = Zones(landing, raw, work / "quarantine")
        for i in range(days):
            for system in C.SYSTEMS:
                load_drop(zones, system, start + dt.timedelta(days=i))
    as_of = {"as_of": (start + dt.timedelta(days=days - 1)).isoformat()}
    out: dict = {"customers": customers, "days": days, "machine": harness.machine(),
                 "date": dt.date.today().isoformat()}
    for engine in ("duckdb", "spark"):
        data = work / engine
        data.mkdir(exist_ok=True)
        if not (data / "raw").exists():
            (data / "raw").symlink_to(raw)
        server = None
        if engine == "spark":
            server = LocalServer.from_settings(data)  # on CX_SPARK_PORT (default 10000)
            t0 = time.perf_counter()
            server.start(echo=_log)
            out["spark_start_s"] = round(time.perf_counter() - t0, 1)
        try:
            _log(f"dbt build on {engine} ...")
            t0 = time.perf_counter()
            results = run_dbt(BUILD, data_dir=data, dbt_vars=as_of, engine=engine)
            wall = time.perf_counter() - t0
        finally:
            if server:
                server.stop(echo=_log)
        models, tests, n_models, n_tests = _node_times(results)
        out[engine] = {"wall_s": round(wall, 2), "models_s": round(models, 1), "tests_s": round(tests, 1),
                       "models": n_models, "tests": n_tests}
        _log(f"{engine}: {wall:.1f} s")
    return out


def render(res: dict) -> str:
    d, s = res["duckdb"], res["spark"]
    m = res["machine"]
    return "\n".join([
        f"## {res['date']} · Spark vs DuckDB, full `dbt build`: {res['customers']:,} customers × {res['days']} days",
        "",
        "`python -m benchmarks.spark_build`: the same raw zone built by `dbt build --exclude-resource-type "
        "unit_test` on DuckDB and on a local Spark Thrift server (`cxw spark start`: local[2], one JVM), "
        "over dbt-spark `method: thrift`. A single machine favours DuckDB; the figure is the price of the "
        "portability here, not Spark's speed on a cluster.",
        "",
        f"Machine: {m['machine']}, {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB; Python {m['python']}.  ",
        f"Spark Thrift server start-up (not in the build time): {res['spark_start_s']} s.",
        "",
        "| engine | full build | models (summed over threads) | tests (summed) | ratio to DuckDB |",
        "|---|---|---|---|---|",
        f"| DuckDB | {d['wall_s']:.1f} s | {d['models_s']} s ({d['models']}) | {d['tests_s']} s ({d['tests']}) "
        "| 1.00× |",
        f"| Spark (thrift, local) | {s['wall_s']:.1f} s | {s['models_s']} s ({s['models']}) | {s['tests_s']} s "
        f"({s['tests']}) | {s['wall_s'] / d['wall_s']:.1f}× |",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.spark_build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=harness.SCALES["S"].customers)
    ap.add_argument("--days", type=int, default=harness.SCALES["S"].days)
    ap.add_argument("--work", type=Path, default=Path("bench_work") / "spark")
    ap.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    a = ap.parse_args(argv)
    res = run(a.customers, a.days, a.work.resolve())
    text = render(res)
    print(text)
    if a.record:
        with open(harness.RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n" + text + "\n")
        _log(f"appended to {harness.RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
