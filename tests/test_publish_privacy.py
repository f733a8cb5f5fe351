"""Publish purges earlier Parquet versions when they hold keys the new publication changed
(docs/privacy.md): a newly erased customer, or a new key secret; otherwise versions are kept for
readers in flight (tests/test_writer_lock.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from orchestration.publish import KEYS_FILE, PURGE_MARKER, publish

T0 = dt.datetime(2026, 10, 13, 3, 0, tzinfo=dt.UTC)


def _warehouse(path: Path, erased: set[str], fingerprint: str = "f1") -> None:
    """A warehouse of three customers (keys k1-k3, or their erased keys e1-e3) and its key map."""
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create schema restricted")
        rows = [(f"e{i}" if f"k{i}" in erased else f"k{i}", f"k{i}" in erased) for i in (1, 2, 3)]
        con.execute("create table marts.dim_customer (customer_key varchar, is_erased boolean)")
        con.executemany("insert into marts.dim_customer values (?, ?)", rows)
        con.execute("create table marts.fct_orders as select customer_key, 10.0 as amount from marts.dim_customer")
        con.execute("create table restricted.int_customer_key_map as "
                    f"select customer_key, '{fingerprint}' as key_fingerprint from marts.dim_customer")


def _versions(serving: Path) -> list[str]:
    return sorted(p.name for p in (serving / "parquet_versions").iterdir())


def _keys_in_any_version(serving: Path) -> set[str]:
    with duckdb.connect() as con:
        return {r[0] for r in con.execute(
            f"select customer_key from read_parquet('{serving}/parquet_versions/*/dim_customer.parquet')").fetchall()}


def test_versions_are_kept_until_a_customer_is_erased_then_purged(tmp_path: Path) -> None:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    _warehouse(wh, set())
    publish(wh, serving, "2026-10-12", now=T0)
    publish(wh, serving, "2026-10-12", now=T0 + dt.timedelta(seconds=1))
    assert len(_versions(serving)) == 2  # kept for readers in flight
    assert (serving / KEYS_FILE).read_text() == "f1"

    _warehouse(wh, {"k2"})  # k2 asks for erasure: their rows move to e2
    publish(wh, serving, "2026-10-13", now=T0 + dt.timedelta(seconds=2))
    assert len(_versions(serving)) == 1
    assert _keys_in_any_version(serving) == {"k1", "e2", "k3"}  # the old key k2 is nowhere
    assert not (serving / PURGE_MARKER).exists()

    # the next night erases nobody new: versions are kept again
    publish(wh, serving, "2026-10-14", now=T0 + dt.timedelta(seconds=3))
    assert len(_versions(serving)) == 2


def test_a_new_key_secret_purges_every_earlier_version(tmp_path: Path) -> None:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    _warehouse(wh, set(), fingerprint="f1")
    publish(wh, serving, "2026-10-12", now=T0)
    _warehouse(wh, set(), fingerprint="f2")
    publish(wh, serving, "2026-10-12", now=T0 + dt.timedelta(seconds=1))
    assert len(_versions(serving)) == 1
    assert (serving / KEYS_FILE).read_text() == "f2"


def test_a_purge_interrupted_after_the_swap_is_finished_by_the_next_publish(tmp_path: Path) -> None:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    _warehouse(wh, set())
    publish(wh, serving, "2026-10-12", now=T0)
    publish(wh, serving, "2026-10-12", now=T0 + dt.timedelta(seconds=1))
    (serving / PURGE_MARKER).write_text("1 customer(s) erased since the last publication")  # as a crash leaves it
    publish(wh, serving, "2026-10-13", now=T0 + dt.timedelta(seconds=2))
    assert len(_versions(serving)) == 1 and not (serving / PURGE_MARKER).exists()


def test_an_erasure_night_reuses_the_tables_that_hold_no_customer_and_serves_no_old_key(tmp_path: Path) -> None:
    """On an erasure night the served DuckDB file is written anew (a copy's freed blocks would keep the old key),
    but a table whose content did not change holds no row the warehouse does not: it is copied from the served file
    into the new one and its Parquet file hard-linked. Every table that holds the customer changes with their key,
    so it is written anew; afterwards no byte of any file in serving/ holds the old key."""
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    old_key = "customer-key-0000000002-before-erasure"

    def warehouse(erased: bool) -> None:
        key2 = "erased-key-0000000002-after-erasure" if erased else old_key
        wh.unlink(missing_ok=True)
        with duckdb.connect(str(wh)) as con:
            con.execute("create schema marts")
            con.execute("create schema restricted")
            con.execute("create table marts.dim_customer (customer_key varchar, is_erased boolean)")
            con.execute(f"insert into marts.dim_customer values ('customer-key-0000000001-kept', false), "
                        f"('{key2}', {erased}), ('customer-key-0000000003-kept', false)")
            con.execute("create table marts.fct_orders as select customer_key, i as order_no "
                        "from marts.dim_customer, range(50) r(i)")
            # a KPI over all customers: holds no key, its rows do not change with the erasure
            con.execute("create table marts.kpi_daily as select date '2026-01-01' + d::int as kpi_date, "
                        "d * 3 as orders from range(400) r(d)")
            con.execute("create table restricted.int_customer_key_map as "
                        "select customer_key, 'f1' as key_fingerprint from marts.dim_customer")

    def parquet_inodes() -> dict[str, int]:
        return {f.stem: f.stat().st_ino for f in (serving / "parquet").resolve().iterdir()}

    def holding(text: str) -> list[str]:
        return sorted(str(f.relative_to(serving)) for f in serving.rglob("*")
                      if f.is_file() and text.encode() in f.read_bytes())

    warehouse(erased=False)
    publish(wh, serving, "2026-10-12", now=T0)
    publish(wh, serving, "2026-10-12", now=T0 + dt.timedelta(seconds=1))
    assert "cx.duckdb" in holding(old_key) and len(_versions(serving)) == 2  # the checks below can fail
    before = parquet_inodes()

    warehouse(erased=True)
    result = publish(wh, serving, "2026-10-13", now=T0 + dt.timedelta(seconds=2))
    assert result.full is not None and "erased" in result.full  # a new file
    assert result.reused == ("kpi_daily",) and set(result.copied) == {"dim_customer", "fct_orders"}
    after = parquet_inodes()
    assert after["kpi_daily"] == before["kpi_daily"]  # hard-linked, not written again
    assert after["dim_customer"] != before["dim_customer"] and after["fct_orders"] != before["fct_orders"]
    assert holding(old_key) == []  # not in cx.duckdb's blocks, not in any Parquet file or version
    assert len(_versions(serving)) == 1
    with duckdb.connect() as con:
        con.execute(f"attach '{wh}' as wh (read_only)")
        con.execute(f"attach '{serving / 'cx.duckdb'}' as bi (read_only)")
        for t in ("dim_customer", "fct_orders", "kpi_daily"):
            expected = sorted(con.execute(f"select * from wh.marts.{t}").fetchall())
            assert sorted(con.execute(f"select * from bi.{t}").fetchall()) == expected, t
            assert sorted(con.execute(f"select * from '{serving / 'parquet' / t}.parquet'").fetchall()) == expected
        comments = dict(con.execute("select table_name, comment from duckdb_tables() "
                                    "where database_name = 'bi' and table_name <> '_publication'").fetchall())
    assert all((c or "").startswith("cx_fingerprint=") for c in comments.values()), comments

    # the night after: nothing changed, every table kept in a copy of the served file (its fingerprints were kept)
    result = publish(wh, serving, "2026-10-14", now=T0 + dt.timedelta(seconds=3))
    assert result.full is None and result.copied == () and len(result.reused) == 3
