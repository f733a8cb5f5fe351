"""warehouse.duckdb as views over the Parquet tables Spark wrote (orchestration/spark_mirror.py), on
hand-made Spark-like folders: contract order and types, date partitions, empty tables, a missing one,
and a DuckDB-built table replaced when the engine changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from orchestration.spark_mirror import MirrorError, refresh


def _model(name: str, schema: str, columns: dict[str, str] | None = None, enforced: bool = False) -> dict:
    return {"resource_type": "model", "name": name, "alias": name, "schema": schema,
            "config": {"enabled": True, "materialized": "table", "contract": {"enforced": enforced}},
            "columns": {c: {"name": c, "data_type": t} for c, t in (columns or {}).items()}}


def _write(path: Path, sql: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"copy ({sql}) to '{path}' (format parquet)")


@pytest.fixture
def spark_dir(tmp_path: Path) -> Path:
    wh = tmp_path / "spark" / "warehouse"
    # a partitioned KPI table: Spark puts the partition column last, as a folder name
    for day, value in (("2026-10-10", 1.5), ("2026-10-11", 2.5)):
        _write(wh / "marts.db" / "kpi" / f"kpi_date={day}" / "part-00000.snappy.parquet",
               f"select 'nps' as kpi, {value}::double as value, 3::bigint as n")
    _write(wh / "marts.db" / "facts" / "part-00000.snappy.parquet",
           "select 'k1' as order_key, timestamptz '2026-10-10 08:00:00+00' as ordered_at, 12.5::double as amount, "
           "'extra' as undocumented")
    (wh / "marts.db" / "empty_partitioned").mkdir(parents=True)
    return wh


def _manifest(*nodes: dict) -> dict:
    return {"nodes": {f"model.cx.{n['name']}": n for n in nodes}}


def test_views_follow_the_contract_order_and_types(tmp_path: Path, spark_dir: Path) -> None:
    manifest = _manifest(
        _model("kpi", "marts", {"kpi_date": "date", "kpi": "string", "value": "double", "n": "bigint"}, enforced=True),
        _model("facts", "marts", {"order_key": "string"}),  # no contract, one column documented: all columns
        _model("empty_partitioned", "marts", {"kpi_date": "date", "value": "double"}, enforced=True))
    target = tmp_path / "warehouse.duckdb"
    counts = refresh(target, spark_dir, manifest)
    assert counts == {"marts.empty_partitioned": 0, "marts.facts": 1, "marts.kpi": 2}
    with duckdb.connect(str(target), read_only=True) as con:
        kpi = con.execute("select * from marts.kpi order by kpi_date").fetchall()
        assert [d[0] for d in con.execute("select * from marts.kpi").description] == ["kpi_date", "kpi", "value", "n"]
        assert kpi == [(dt.date(2026, 10, 10), "nps", 1.5, 3), (dt.date(2026, 10, 11), "nps", 2.5, 3)]
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name = 'facts'").fetchall())
        assert types == {"order_key": "VARCHAR", "ordered_at": "TIMESTAMP WITH TIME ZONE", "amount": "DOUBLE",
                         "undocumented": "VARCHAR"}
        assert con.execute("select table_type from information_schema.tables where table_name = 'kpi'").fetchone() \
            == ("VIEW",)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Los_Angeles"])
def test_a_timestamp_without_time_zone_is_its_utc_wall_clock_in_any_reader_zone(tmp_path: Path, zone: str) -> None:
    """Spark (session zone UTC) writes a month start as the instant 2026-10-01 00:00 UTC; DuckDB reads it as
    ``timestamp with time zone``. The contract's ``timestamp`` is that UTC wall clock in a reader's session of
    any zone (a plain cast gave 02:00 in Paris: kpi_retention_cohorts.cohort_month, CI on a Paris machine);
    a column Spark wrote without a zone (timestamp_ntz) keeps its value."""
    wh = tmp_path / "warehouse"
    _write(wh / "marts.db" / "cohorts" / "part-00000.snappy.parquet",
           "select timestamptz '2026-10-01 00:00:00+00' as cohort_month, "
           "timestamptz '2026-11-01 00:00:00+00' as next_month, timestamp '2026-03-29 02:30:00' as ntz, 7::bigint as n")
    manifest = _manifest(_model("cohorts", "marts", {"cohort_month": "timestamp", "next_month": "TIMESTAMP",
                                                     "ntz": "timestamp without time zone", "n": "bigint"},
                                enforced=True))
    target = tmp_path / "warehouse.duckdb"
    refresh(target, wh, manifest)
    with duckdb.connect(str(target), read_only=True) as con:
        con.execute(f"set TimeZone = '{zone}'")
        assert con.execute("select * from marts.cohorts").fetchall() == [
            (dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1), dt.datetime(2026, 3, 29, 2, 30), 7)]
        types = [r[1] for r in con.execute("describe marts.cohorts").fetchall()]
        assert types == ["TIMESTAMP", "TIMESTAMP", "TIMESTAMP", "BIGINT"]


def test_a_table_built_on_duckdb_before_is_replaced(tmp_path: Path, spark_dir: Path) -> None:
    target = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(target)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.facts as select 'old' as order_key")
    refresh(target, spark_dir, _manifest(_model("facts", "marts")))
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select order_key from marts.facts").fetchall() == [("k1",)]


def test_a_model_spark_did_not_build_is_named(tmp_path: Path, spark_dir: Path) -> None:
    with pytest.raises(MirrorError, match=r"marts\.missing: no Parquet files under .*marts\.db/missing"):
        refresh(tmp_path / "warehouse.duckdb", spark_dir, _manifest(_model("missing", "marts")))
    # an empty folder without a contract cannot be typed either
    with pytest.raises(MirrorError, match="empty_partitioned"):
        refresh(tmp_path / "warehouse.duckdb", spark_dir, _manifest(_model("empty_partitioned", "marts")))
