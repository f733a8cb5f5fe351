"""Incremental staging (macros/current_version.sql): night by night equals a full refresh.

A small company with its mess turned up is landed night by night (tests/nights.py). Night N first receives the first,
incomplete extract of a re-extracted drop (the generator keeps it under `_superseded/`); nights N+1 and
N+2 follow; then the corrected re-extract of night N arrives and its partition runs again, after N+2:
staging must then be the full refresh as of N (a partition's re-run reproduces it). Night N+2 runs
again and must catch up on N+1 as well: the full refresh as of N+2. The nights' drops hold resends,
late arrivals and a GDPR erasure request (checked, so the test cannot pass for want of them).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingestion import contract as C
from orchestration.warehouse import run_dbt, window_vars
from simulator import generate

from .landing import read_csv_file
from .nights import COMPANY, land_before, land_reextract, lander, sorted_rows, superseded_night


def _staging_tables(data: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        names = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                           "where table_schema = 'staging' order by 1").fetchall()]
        return {t: con.sql(f"select * from staging.{t}").pl() for t in names}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.date, list[str], dict]:
    data = tmp_path_factory.mktemp("staging_incremental")
    generate(COMPANY, data / "landing")
    night, reextracted = superseded_night(data / "landing")
    land = lander(data, reextracted)

    # what the two nights deliver: erasure requests, resends (a record delivered before, again) and late
    # arrivals (a survey answer or order from days before the night)
    crm = pl.concat([read_csv_file(data / "landing" / "crm" / (night + dt.timedelta(days=d)).isoformat()
                                   / "customers.csv", "crm") for d in range(3)], how="diagonal_relaxed")
    delivered = {"erasures": crm.filter(pl.col("is_deleted") == "true").height}

    land_before(land, night)
    run_dbt(["run", "--select", "staging"], data_dir=data,
            dbt_vars=window_vars(night - dt.timedelta(days=1), night))  # first run: no table yet, a full build
    land(night, superseded_first=True)
    run_dbt(["run", "--select", "staging"], data_dir=data, dbt_vars=window_vars(night, night + dt.timedelta(days=1)))
    after_night = _staging_tables(data)
    for nxt in (night + dt.timedelta(days=1), night + dt.timedelta(days=2)):
        land(nxt)
        run_dbt(["run", "--select", "staging"], data_dir=data,
                dbt_vars=window_vars(nxt, nxt + dt.timedelta(days=1)))
    # the corrected re-extract of night N lands after N+2 and its partition runs again
    land_reextract(data, reextracted, night)
    run_dbt(["run", "--select", "staging"], data_dir=data, dbt_vars=window_vars(night, night + dt.timedelta(days=1)))
    rerun = _staging_tables(data)
    # and night N+2 runs again: it must catch up on N+1's drops too, which the re-run took back out
    run_dbt(["run", "--select", "staging"], data_dir=data, dbt_vars=window_vars(nxt, nxt + dt.timedelta(days=1)))
    return data, night, reextracted, {"delivered": delivered, "after_night": after_night, "rerun": rerun,
                                      "final": _staging_tables(data)}


def test_the_nights_hold_the_mess(nights: tuple[Path, dt.date, list[str], dict]) -> None:
    data, night, reextracted, facts = nights
    assert facts["delivered"]["erasures"] > 0, "no erasure request in the three nights"
    tables = _staging_tables(data)
    window = [night + dt.timedelta(days=d) for d in range(3)]
    with duckdb.connect() as con:
        raw = data / "raw"
        # resends: a key delivered again in the window that an earlier drop already delivered
        resent = con.execute(f"""
            select count(*) from read_parquet('{raw}/survey/responses/*/data.parquet') as w
            where w._business_date in (?, ?, ?) and exists (
                select 1 from read_parquet('{raw}/survey/responses/*/data.parquet') as e
                where e.response_id = w.response_id and e._business_date < w._business_date)""", window).fetchone()[0]
        late = con.execute(f"""
            select count(*) from read_parquet('{raw}/erp/orders/*/data.parquet')
            where _business_date in (?, ?, ?) and cast(order_ts as date) < _business_date - 1""", window).fetchone()[0]
    assert resent > 0 and late > 0, (resent, late)
    # the first extract of night N lacked records the re-extract delivers (for at least one system)
    short = []
    for system in reextracted:
        first, final = (json.loads((data / "landing" / sub / system / night.isoformat() / C.MANIFEST_NAME)
                                   .read_text(encoding="utf-8")) for sub in ("_superseded", "."))
        short += [system] if sum(f["rows"] for f in first["files"]) < sum(f["rows"] for f in final["files"]) else []
    assert short, reextracted
    assert set(tables) >= set(facts["after_night"])


def test_a_new_window_keeps_dbts_partial_parse(nights: tuple[Path, dt.date, list[str], dict]) -> None:
    """The window reaches dbt in its environment, read only while executing (macros/as_of.sql): every run
    after the first, each with another window, reuses the first run's parse instead of parsing the whole
    project again (as new --vars would make it)."""
    data, night, _, _ = nights
    log = (data / "dbt_logs" / "dbt.log").read_text(encoding="utf-8")
    runs = log.split("Running with dbt=")[1:]
    assert len(runs) == 6, len(runs)
    assert "Unable to do partial parsing because saved manifest not found" in runs[0]
    for i, run in enumerate(runs[1:], start=1):
        assert "Unable to do partial parsing" not in run and "Starting full parse" not in run, (i, run[:2000])
        assert "Partial parsing enabled, no changes found, skipping parsing" in run, (i, run[:2000])
    # and the runs did use their windows: the last one (night N+2 again) compiled its dates
    compiled = (data / "dbt_target" / "compiled" / "cx_warehouse" / "models" / "staging" / "stg_erp__orders.sql")
    nxt = night + dt.timedelta(days=2)
    assert f"cast('{nxt.isoformat()}' as date)" in compiled.read_text(encoding="utf-8")


def _full_refresh(data: Path, as_of: dt.date, into: Path) -> dict[str, pl.DataFrame]:
    into.mkdir()
    for zone in ("raw", "quarantine"):
        shutil.copytree(data / zone, into / zone)
    run_dbt(["run", "--select", "staging", "--full-refresh"], data_dir=into, dbt_vars={"as_of": as_of.isoformat()})
    return _staging_tables(into)


def _assert_same_staging(incremental: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    assert set(incremental) == set(expected)
    # stg_ingestion__followup_feed is a table of the feed's drops, rebuilt whole as of each run's as_of:
    # not incremental, compared like the rest
    assert len(expected) == 14
    for table, want in sorted(expected.items()):
        got = incremental[table]
        assert got.schema == want.schema, table
        assert got.height == want.height > 0, table
        assert sorted_rows(got).equals(sorted_rows(want)), table


@pytest.mark.parametrize("state", ["rerun", "final"])
def test_night_by_night_equals_a_full_refresh(nights: tuple[Path, dt.date, list[str], dict], state: str,
                                              tmp_path: Path) -> None:
    """After the re-run of night N (the re-extract), staging is the full refresh as of N: a re-run of a
    partition reproduces it, though N+1 and N+2 had run; after N+2 runs again, the full refresh as of N+2."""
    data, night, _, facts = nights
    as_of = night if state == "rerun" else night + dt.timedelta(days=2)
    _assert_same_staging(facts[state], _full_refresh(data, as_of, tmp_path / "full"))
