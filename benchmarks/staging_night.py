"""Incremental staging: one night against a full refresh, on a built raw zone.

    python -m benchmarks.staging_night --data /tmp/bench100k/data --night 2026-10-31

Runs `dbt run -s staging --full-refresh` as of the day before ``--night``, then the night incrementally
(window [night, night + 1)), then `--full-refresh` as of the night, and prints the three wall times and
whether every staging table after the night equals the full refresh (row count and an order-independent
sum of row hashes). The data directory must hold a raw zone with drops up to the night (e.g. the churn
benchmark's, `python -m benchmarks.churn_backtest --dir ...`). It rewrites that directory's staging tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import duckdb

from orchestration.warehouse import run_dbt, window_vars


def _fingerprints(data: Path) -> dict[str, tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        names = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                           "where table_schema = 'staging' order by 1").fetchall()]
        return {t: tuple(con.execute(f"select count(*), sum(hash(t)) from (select * from staging.{t}) as t")
                         .fetchall()[0]) for t in names}


def _timed(args: list[str], data: Path, dbt_vars: dict) -> float:
    started = time.perf_counter()
    run_dbt(args, data_dir=data, dbt_vars=dbt_vars)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.staging_night", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="data directory (raw zone, warehouse.duckdb)")
    ap.add_argument("--night", type=dt.date.fromisoformat, required=True, help="the night timed (YYYY-MM-DD)")
    a = ap.parse_args()
    before = a.night - dt.timedelta(days=1)
    out = {"full_refresh_before": _timed(["run", "--select", "staging", "--full-refresh"], a.data,
                                         {"as_of": before.isoformat()})}
    out["night"] = _timed(["run", "--select", "staging"], a.data, window_vars(a.night, a.night + dt.timedelta(days=1)))
    night = _fingerprints(a.data)
    out["full_refresh"] = _timed(["run", "--select", "staging", "--full-refresh"], a.data,
                                 {"as_of": a.night.isoformat()})
    full = _fingerprints(a.data)
    out["ratio"] = out["night"] / out["full_refresh"]
    out["tables_differing"] = sorted(t for t in full if night.get(t) != full[t])
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
