"""Incremental facts: one night against a full refresh, model by model, on a built raw zone.

    python -m benchmarks.facts_night --data /tmp/bench/data --night 2026-10-31 [--facts fct_invoices ...]

Runs `dbt run -s +<facts> --full-refresh` as of the day before ``--night``, then the night incrementally
(window [night, night + 1)), then `--full-refresh` as of the night, and prints each fact's model time
(dbt's execution time) on the night and on the full refresh, and whether each fact after the night equals
the full refresh (row count and an order-independent sum of row hashes). The data directory must hold a
raw zone with drops up to the night. It rewrites that directory's warehouse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import duckdb

from orchestration.warehouse import run_dbt, window_vars

BILLING = ["fct_invoices", "fct_payments", "fct_refunds", "fct_subscriptions"]


def _fingerprints(data: Path, facts: list[str]) -> dict[str, tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {f: tuple(con.execute(f"select count(*), sum(hash(t)) from (select * from marts.{f}) as t")
                         .fetchall()[0]) for f in facts}


def _model_seconds(args: list[str], data: Path, dbt_vars: dict, facts: list[str]) -> dict[str, float]:
    results = run_dbt(args, data_dir=data, dbt_vars=dbt_vars)
    return {r.node.name: round(r.execution_time, 2) for r in results if r.node.name in facts}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.facts_night", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="data directory (raw zone, warehouse.duckdb)")
    ap.add_argument("--night", type=dt.date.fromisoformat, required=True, help="the night timed (YYYY-MM-DD)")
    ap.add_argument("--facts", nargs="+", default=BILLING, help="the incremental facts timed")
    a = ap.parse_args()
    select = ["--select", *(f"+{f}" for f in a.facts)]
    before = a.night - dt.timedelta(days=1)
    _model_seconds(["run", *select, "--full-refresh"], a.data, {"as_of": before.isoformat()}, a.facts)
    night = _model_seconds(["run", *select], a.data, window_vars(a.night, a.night + dt.timedelta(days=1)), a.facts)
    after_night = _fingerprints(a.data, a.facts)
    full = _model_seconds(["run", *select, "--full-refresh"], a.data, {"as_of": a.night.isoformat()}, a.facts)
    expected = _fingerprints(a.data, a.facts)
    print(json.dumps({f: {"night_s": night[f], "full_refresh_s": full[f], "equal": after_night[f] == expected[f],
                          "rows": expected[f][0]} for f in a.facts}, indent=2))


if __name__ == "__main__":
    main()
