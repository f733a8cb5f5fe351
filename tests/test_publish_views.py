"""Publish serves the warehouse's views of ``marts`` as views over the served tables, not as copies
(orchestration/publish.py): a view exists not to be stored (mart_customer_profile_daily would hold a
row per customer and day)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from orchestration.publish import publish

T0 = dt.datetime(2026, 10, 13, 3, 0, tzinfo=dt.UTC)


def _warehouse(path: Path) -> None:
    """Spells in a table and, as in the dbt project, a view expanding them per day (with a CTE, a scalar
    subquery and a column named with its schema), and a view over that view."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create schema restricted")
        con.execute("create table marts.spells (customer_key varchar, profile varchar, valid_from date, valid_to date)")
        con.execute("insert into marts.spells values ('k1', 'evasive', '2026-10-01', '2026-10-03'), "
                    "('k1', 'negative', '2026-10-03', null), ('k2', 'advocate', '2026-10-02', null)")
        # dbt-duckdb writes references with the database's name: "warehouse"."marts"."spells"
        con.execute("""
            create view marts.daily as
            with horizon as (select max(valid_from) + 2 as horizon_date from "warehouse"."marts"."spells")
            select marts.spells.customer_key,
                   cast(unnest(generate_series(cast(valid_from as timestamp),
                        cast(coalesce(valid_to - 1, (select horizon_date from horizon)) as timestamp),
                        interval 1 day)) as date) as profile_date,
                   profile
            from "warehouse"."marts"."spells"
        """)
        # named to sort before the view it reads: publish creates it once that one exists
        con.execute("create view marts.a_negative_days as select * from marts.daily where profile = 'negative'")
        con.execute("create table restricted.secret as select 'pii' as v")


def test_a_view_is_served_as_a_view_over_the_served_tables(tmp_path: Path) -> None:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    _warehouse(wh)
    with duckdb.connect(str(wh), read_only=True) as con:
        expected = sorted(con.execute("select * from marts.daily").fetchall())
        expected_negative = sorted(con.execute("select * from marts.a_negative_days").fetchall())
    assert len(expected) == 2 + 3 + 4  # k1: 2 evasive days + 3 negative days to the horizon; k2: 4 days

    result = publish(wh, serving, "2026-10-05", now=T0)
    assert result.tables == {"spells": 3} and set(result.views) == {"daily", "a_negative_days"}
    assert sorted(p.name for p in (serving / "parquet").iterdir()) == ["spells.parquet"]  # no Parquet for views

    # a reader elsewhere: the served file alone (the warehouse gone), under another catalog name too
    os.rename(wh, tmp_path / "gone.duckdb")
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
        assert kinds == {"spells": "BASE TABLE", "daily": "VIEW", "a_negative_days": "VIEW",
                         "_publication": "BASE TABLE"}
        assert sorted(con.execute("select * from daily").fetchall()) == expected
        assert sorted(con.execute("select * from a_negative_days").fetchall()) == expected_negative
        assert dict(con.execute("select table_name, row_count from _publication").fetchall()) == {
            "spells": 3, "daily": None, "a_negative_days": None}
    with duckdb.connect() as con:
        con.execute(f"attach '{serving / 'cx.duckdb'}' as bi (read_only)")
        assert sorted(con.execute("select * from bi.daily").fetchall()) == expected


def test_a_view_over_another_schema_is_refused(tmp_path: Path) -> None:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    _warehouse(wh)
    with duckdb.connect(str(wh)) as con:
        con.execute("create view marts.leak as select v from restricted.secret")
    with pytest.raises(RuntimeError, match=r"marts.leak reads restricted.secret, which is not published"):
        publish(wh, serving, "2026-10-05", now=T0)
    assert not (serving / "cx.duckdb").exists()


def test_a_view_over_files_is_copied_as_a_table(tmp_path: Path) -> None:
    """On Spark, warehouse.duckdb holds views over Spark's Parquet files (orchestration/spark_mirror.py):
    BI gets them as tables, with their Parquet files, as before."""
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    with duckdb.connect() as con:
        con.execute(f"copy (select 'k1' as customer_key, 3 as n) to '{tmp_path / 'part-0.parquet'}' (format parquet)")
    with duckdb.connect(str(wh)) as con:
        con.execute("create schema marts")
        con.execute(f"create view marts.mirrored as select * from read_parquet('{tmp_path / 'part-0.parquet'}')")
    result = publish(wh, serving, "2026-10-05", now=T0)
    assert result.tables == {"mirrored": 1} and result.views == ()
    assert (serving / "parquet" / "mirrored.parquet").exists()
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        assert con.execute("select table_type from information_schema.tables where table_name = 'mirrored'"
                           ).fetchall() == [("BASE TABLE",)]
