"""Publish writes only what changed (orchestration/publish.py, issue 18): a table whose content
fingerprint equals the served one stays in the served DuckDB file, copied as a file, and its Parquet
file is hard-linked into the new version folder; the others are copied again. Whatever was reused,
BI reads exactly the warehouse's marts, with the same reader contract; a full publish (every table
written into a new file) still happens when nothing is served yet, when the served publication has
no fingerprints, when earlier versions are purged (an erasure), and when the served file is mostly
free blocks.

Small warehouses built by hand (a few tables and a view of ``marts``, a ``restricted`` table never
published), real files, and ``publish`` as a night calls it; two scenarios kill a publish in a
subprocess at a named crash point (ingestion/faults.py).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingestion import settings
from orchestration.publish import (
    FINGERPRINT_KEY,
    HEALTH_TABLE,
    IN_PLACE_MAX_DEAD_SHARE,
    KEYS_FILE,
    PURGE_MARKER,
    Publication,
    publish,
    publish_health,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 10, 13, 3, 0, tzinfo=dt.UTC)
TABLES = ("dim_product", "fct_orders", "kpi_daily")


def _sql(path: Path, *statements: str) -> None:
    with duckdb.connect(str(path)) as con:
        for s in statements:
            con.execute(s)


def _warehouse(path: Path) -> None:
    """Three tables and a view of ``marts``, and a ``restricted`` table that is never published."""
    _sql(path,
         "create schema marts", "create schema restricted",
         "create table marts.fct_orders as select i as order_id, 'k' || (i % 17) as customer_key, "
         "(i * 37 % 1000) / 10.0 as amount, date '2026-10-01' + (i % 9)::int as order_date from range(300) r(i)",
         "create table marts.dim_product as select i as product_id, 'product ' || i as label from range(20) r(i)",
         "create table marts.kpi_daily as select date '2026-10-01' + d::int as kpi_date, (d * 1.5)::double as nps, "
         "null::varchar as note from range(30) r(d)",
         "create view marts.big_orders as select * from marts.fct_orders where amount > 50",
         "create table restricted.secret as select 'pii' as v")


def _rows(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple]:
    return sorted(con.execute(f"select * from {relation}").fetchall(), key=repr)


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe select * from {relation}").fetchall()]


def _served_equals_warehouse(wh: Path, serving: Path, health: bool = False) -> None:
    """Every table of the warehouse's marts is served with its columns and rows, in cx.duckdb and in the
    linked Parquet version; every view as a view with the warehouse's rows; nothing else is served."""
    parquet = (serving / "parquet").resolve()
    with duckdb.connect() as con:
        con.execute(f"attach '{wh}' as wh (read_only)")
        con.execute(f"attach '{serving / 'cx.duckdb'}' as bi (read_only)")
        relations = dict(con.execute("select table_name, table_type from information_schema.tables "
                                     "where table_catalog = 'wh' and table_schema = 'marts'").fetchall())
        served = dict(con.execute("select table_name, table_type from information_schema.tables "
                                  "where table_catalog = 'bi'").fetchall())
        extra = {"_publication": "BASE TABLE"} | ({HEALTH_TABLE: "BASE TABLE"} if health else {})
        assert served == relations | extra
        published = dict(con.execute("select table_name, row_count from bi._publication").fetchall())
        tables = {t for t, kind in relations.items() if kind == "BASE TABLE"}
        assert {t for t, n in published.items() if n is not None} == tables
        assert {t for t, n in published.items() if n is None} == set(relations) - tables
        assert {f.name for f in parquet.iterdir()} == {t + ".parquet" for t in tables | ({HEALTH_TABLE} if health
                                                                                       else set())}
        for t in relations:
            expected = _rows(con, f"wh.marts.{t}")
            assert _rows(con, f"bi.{t}") == expected, t
            assert _columns(con, f"bi.{t}") == _columns(con, f"wh.marts.{t}"), t
            if t in tables:
                assert published[t] == len(expected), t
                file = f"read_parquet('{parquet / (t + '.parquet')}')"
                assert _rows(con, file) == expected, t
                assert [c for c, _ in _columns(con, file)] == [c for c, _ in _columns(con, f"wh.marts.{t}")], t


def _inodes(serving: Path) -> dict[str, int]:
    """The inode of each file of the served Parquet version (the link resolved once)."""
    return {f.stem: f.stat().st_ino for f in (serving / "parquet").resolve().iterdir()}


def _fingerprints(serving: Path) -> dict[str, str]:
    """Each served table's fingerprint: its comment in cx.duckdb, ``cx_fingerprint=<fingerprint>``."""
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        comments = dict(con.execute("select table_name, comment from duckdb_tables() "
                                    "where table_name not in ('_publication', 'data_health')").fetchall())
    assert all(c.startswith(FINGERPRINT_KEY + "=") for c in comments.values()), comments
    return {t: c.removeprefix(FINGERPRINT_KEY + "=") for t, c in comments.items()}


def _published(wh: Path, serving: Path, step: int, **kw: object) -> Publication:
    return publish(wh, serving, f"2026-10-{10 + step}", now=T0 + dt.timedelta(seconds=step), **kw)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    _warehouse(wh)
    return wh, serving


def test_nothing_changed_reuses_every_table(site: tuple[Path, Path]) -> None:
    wh, serving = site
    first = _published(wh, serving, 0)
    assert first.full == "nothing published yet"
    assert set(first.copied) == set(TABLES) and first.reused == () and first.views == ("big_orders",)
    _served_equals_warehouse(wh, serving)
    before, version = _inodes(serving), (serving / "parquet").resolve()

    second = _published(wh, serving, 1)
    assert second.full is None and second.copied == () and set(second.reused) == set(TABLES)
    assert second.tables == first.tables
    assert (serving / "parquet").resolve() != version  # a new version folder all the same...
    assert _inodes(serving) == before  # ...of the same files, hard-linked
    _served_equals_warehouse(wh, serving)
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        assert con.execute("select distinct as_of from _publication").fetchall() == [("2026-10-11",)]
        # what BI reads of the publication is as it was: no fingerprint in a row
        assert [c for c, _ in _columns(con, "_publication")] == ["published_at", "as_of", "table_name", "row_count"]
    # each Parquet file's footer carries the fingerprint cx.duckdb gives its table (a comment)
    _footers_match(serving)


def test_one_changed_cell_copies_that_table_only(site: tuple[Path, Path]) -> None:
    wh, serving = site
    _published(wh, serving, 0)
    _sql(wh, "update marts.dim_product set label = 'renamed' where product_id = 7")
    before = _inodes(serving)
    result = _published(wh, serving, 1)
    assert result.copied == ("dim_product",) and set(result.reused) == {"fct_orders", "kpi_daily"}
    after = _inodes(serving)
    assert after["dim_product"] != before["dim_product"]
    assert {t: after[t] for t in ("fct_orders", "kpi_daily")} == {t: before[t] for t in ("fct_orders", "kpi_daily")}
    _served_equals_warehouse(wh, serving)

    # the same rows and values, two values swapped between rows (a xor of row hashes would not see it)
    _sql(wh, "update marts.fct_orders set amount = case order_id when 1 then (select amount from marts.fct_orders "
             "where order_id = 2) else (select amount from marts.fct_orders where order_id = 1) end "
             "where order_id in (1, 2)")
    result = _published(wh, serving, 2)
    assert result.copied == ("fct_orders",)
    _served_equals_warehouse(wh, serving)
    # a pair of equal rows replaced by another pair of equal rows (the same count; a xor cancels pairs)
    _sql(wh, "insert into marts.dim_product values (100, 'twin'), (100, 'twin')")
    _published(wh, serving, 3)
    _sql(wh, "update marts.dim_product set label = 'other twin' where product_id = 100")
    assert _published(wh, serving, 4).copied == ("dim_product",)
    _served_equals_warehouse(wh, serving)
    # a float that moves by its last bit: served exactly as the warehouse holds it
    _sql(wh, "update marts.kpi_daily set nps = nextafter(nps, 1e9) where kpi_date = date '2026-10-05'")
    assert _published(wh, serving, 5).copied == ("kpi_daily",)
    _served_equals_warehouse(wh, serving)


def test_added_dropped_retyped_and_renamed(site: tuple[Path, Path]) -> None:
    wh, serving = site
    _published(wh, serving, 0)
    _sql(wh, "create table marts.mart_new as select 1 as one",
         "drop table marts.kpi_daily",
         "alter table marts.dim_product alter column product_id type double",  # equal values, another type
         "alter table marts.fct_orders rename column amount to amount_eur",  # equal values, another name
         "create or replace view marts.big_orders as select * from marts.fct_orders where amount_eur > 90")
    result = _published(wh, serving, 1)
    assert result.full is None
    assert set(result.copied) == {"mart_new", "dim_product", "fct_orders"} and result.reused == ()
    _served_equals_warehouse(wh, serving)  # kpi_daily is nowhere: cx.duckdb, _publication, Parquet
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        assert dict(_columns(con, "dim_product"))["product_id"] == "DOUBLE"
        assert "kpi_daily" not in {r[0] for r in con.execute("select table_name from _publication").fetchall()}

    # a table becomes a view, a view a table
    _sql(wh, "drop view marts.big_orders", "create table marts.big_orders as select 1 as n",
         "drop table marts.mart_new", "create view marts.mart_new as select * from marts.dim_product")
    result = _published(wh, serving, 2)
    assert result.copied == ("big_orders",) and set(result.reused) == {"dim_product", "fct_orders"}
    assert result.views == ("mart_new",)
    _served_equals_warehouse(wh, serving)


def test_a_reader_of_the_old_file_keeps_its_publication(site: tuple[Path, Path]) -> None:
    wh, serving = site
    _published(wh, serving, 0)
    old_parquet = (serving / "parquet").resolve()
    reader = duckdb.connect(str(serving / "cx.duckdb"), read_only=True)
    try:
        old = _rows(reader, "dim_product")
        _sql(wh, "update marts.dim_product set label = 'new label'")
        assert _published(wh, serving, 1).copied == ("dim_product",)
        # the open connection still reads the publication it opened, whole
        assert _rows(reader, "dim_product") == old
        assert reader.execute("select distinct as_of from _publication").fetchall() == [("2026-10-10",)]
        assert {r[0] for r in reader.execute("select label from dim_product").fetchall()} != {"new label"}
    finally:
        reader.close()
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:  # a new reader sees the new one
        assert {r[0] for r in con.execute("select label from dim_product").fetchall()} == {"new label"}
    with duckdb.connect() as con:  # the version folder a reader resolved before is still the old publication
        assert _rows(con, f"read_parquet('{old_parquet / 'dim_product.parquet'}')") == old
    _served_equals_warehouse(wh, serving)


def test_a_publication_without_fingerprints_is_published_in_full(site: tuple[Path, Path]) -> None:
    wh, serving = site
    _published(wh, serving, 0)
    # the format before fingerprints: served tables without a comment
    _sql(serving / "cx.duckdb", *(f"comment on table {t} is null" for t in TABLES))
    result = _published(wh, serving, 1)
    assert result.full == "the served publication has no fingerprints (an older format)"
    assert set(result.copied) == set(TABLES) and result.reused == ()
    _served_equals_warehouse(wh, serving)

    # fingerprints of another version: full too
    _sql(serving / "cx.duckdb", *(f"comment on table {t} is '{FINGERPRINT_KEY}=v0-{f}'"
                                  for t, f in _fingerprints(serving).items()))
    result = _published(wh, serving, 2)
    assert result.full is not None and "another version" in result.full and result.reused == ()

    # a served Parquet file whose footer does not carry the table's fingerprint: that table is copied
    fct = (serving / "parquet").resolve() / "fct_orders.parquet"
    frame = pl.read_parquet(fct)
    fct.unlink()
    frame.write_parquet(fct)
    result = _published(wh, serving, 3)
    assert result.full is None and result.copied == ("fct_orders",)
    _served_equals_warehouse(wh, serving)

    # a served Parquet file that cannot be read (cut short): every table is copied again, none fails
    kpi = (serving / "parquet").resolve() / "kpi_daily.parquet"
    data = kpi.read_bytes()
    kpi.unlink()
    kpi.write_bytes(data[: len(data) // 2])
    result = _published(wh, serving, 4)
    assert result.full is None and set(result.copied) == set(TABLES) and result.reused == ()
    _served_equals_warehouse(wh, serving)


def test_data_health_is_served_as_a_full_publish_serves_it(site: tuple[Path, Path]) -> None:
    wh, serving = site
    record = pl.DataFrame({"check_name": ["a", "b"], "status": ["pass", "warn"]})
    publish_health(serving, record)  # a first night blocked: the served file holds the record only
    assert _published(wh, serving, 0, health=record).full == "nothing published yet"
    _served_equals_warehouse(wh, serving, health=True)
    # a blocked night serves a new record only; the next publish still reuses what it hard-linked
    publish_health(serving, record.with_columns(pl.lit("fail").alias("status")))
    result = _published(wh, serving, 1, health=record)
    assert result.copied == () and set(result.reused) == set(TABLES)
    _served_equals_warehouse(wh, serving, health=True)
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        assert sorted(con.execute(f"select status from {HEALTH_TABLE}").fetchall()) == [("pass",), ("warn",)]
    # a publish without a record serves none, as a full publish does
    assert _published(wh, serving, 2).copied == ()
    _served_equals_warehouse(wh, serving, health=False)


# ---- a reader opening cx.duckdb while a publish swaps it ---------------------------------------------------

def _contents(path: Path) -> dict[str, list[tuple]]:
    """Every table and view of a served file, its rows sorted."""
    with duckdb.connect(str(path), read_only=True) as con:
        names = [r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()]
        return {n: _rows(con, f'"{n}"') for n in sorted(names)}


def test_a_reader_between_duckdbs_opens_reads_one_publication(site: tuple[Path, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB opens a database file by its path three times (the magic bytes, the headers, then the blocks), so a
    reader opening cx.duckdb while a publish renames the new file over it can get the served file's headers and the
    new file's blocks (tests/reliability/test_concurrency.py saw "Table with name _publication does not exist"
    under load). Every file swapped in, read through the headers of the one it replaced, must read as that one,
    whole: after an update in place, a copy anew, a reuse, a health-only publish, a dropped table, a purge (the
    bridge, then the new file) and a copy of that new file."""
    import orchestration.publish as P

    wh, serving = site
    monkeypatch.setattr(P, "BRIDGE_SECONDS", 0.0)
    swapped: list[bytes] = []
    swap = P._swap_in

    def recording(tmp: Path, target: Path, where: Path) -> None:
        swapped.append(tmp.read_bytes())
        swap(tmp, target, where)

    monkeypatch.setattr(P, "_swap_in", recording)
    record = pl.DataFrame({"check_name": ["a"], "status": ["pass"]})
    _published(wh, serving, 0, health=record)
    _sql(wh, "update marts.fct_orders set amount = amount + 1 where order_id < 5")  # updated in place
    assert _published(wh, serving, 1, health=record).in_place == ("fct_orders",)
    _sql(wh, "create or replace table marts.kpi_daily as select date '2026-10-01' + d::int as kpi_date, "
             "(d * 2.5)::double as nps, 'n' as note from range(400) r(d)")  # every row changed: written anew
    result = _published(wh, serving, 2, health=record)
    assert result.copied == ("kpi_daily",) and set(result.reused) == {"dim_product", "fct_orders"}
    publish_health(serving, record.with_columns(pl.lit("fail").alias("status")))  # a blocked night
    _sql(wh, "drop table marts.dim_product")
    _published(wh, serving, 3, health=record)
    (serving / PURGE_MARKER).write_text("a test's purge", encoding="utf-8")  # an erasure night: a new file
    _sql(wh, "update marts.fct_orders set amount = amount + 1 where order_id between 5 and 9")
    result = _published(wh, serving, 4, health=record)
    assert result.full is not None and "purged" in result.full
    _sql(wh, "update marts.kpi_daily set nps = -nps where kpi_date < date '2026-10-05'")
    assert _published(wh, serving, 5, health=record).full is None  # a copy of the new file
    assert len(swapped) == 8  # one file per publish, two on the purge's
    spliced = tmp_path / "spliced.duckdb"
    for old, new in zip(swapped, swapped[1:], strict=False):
        spliced.write_bytes(old[:P._BLOCK_START] + new[P._BLOCK_START:])
        (tmp_path / "old.duckdb").write_bytes(old)
        assert _contents(spliced) == _contents(tmp_path / "old.duckdb")
    _served_equals_warehouse(wh, serving, health=True)


# ---- a changed table updated in place --------------------------------------------------------------------

def _stored_and_live(serving: Path, table: str) -> tuple[int, int]:
    """Rows stored in the served table's row groups (deleted ones included), and its live rows."""
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        (stored,) = con.execute("select sum(count) from pragma_storage_info(?) where column_id = 0 "
                                "and column_path = '[0]'", [table]).fetchone()
        (live,) = con.execute(f"select count(*) from {table}").fetchone()
    return stored, live


def _footers_match(serving: Path) -> None:
    with duckdb.connect() as con:
        footers = {Path(f).stem: v.decode() for f, v in con.execute(
            f"select file_name, value from parquet_kv_metadata('{serving / 'parquet'}/*.parquet') where key = ?",
            [FINGERPRINT_KEY.encode()]).fetchall()}
    assert footers == _fingerprints(serving)


def test_a_changed_table_is_updated_in_place(site: tuple[Path, Path]) -> None:
    """Rows updated, inserted and deleted (duplicates included): the served table is the warehouse's, updated in
    the copied served file (its unchanged rows stay where they are), its Parquet file written anew."""
    wh, serving = site
    _sql(wh, "insert into marts.fct_orders select 1000 + i, 'k' || (i % 50), i / 7.0, "
             "date '2026-09-01' + (i % 40)::int from range(20000) r(i)",
         "insert into marts.fct_orders select * from marts.fct_orders where order_id in (3, 4)")  # two duplicates
    _published(wh, serving, 0)
    stored, live = _stored_and_live(serving, "fct_orders")
    assert stored == live == 20302
    with duckdb.connect(str(wh), read_only=True) as con:
        before = Counter(con.execute("select * from marts.fct_orders").fetchall())
    _sql(wh, "update marts.fct_orders set amount = amount + 1 where order_id % 97 = 0",  # updated
         "delete from marts.fct_orders where order_id % 89 = 1",  # deleted
         "insert into marts.fct_orders select 90000 + i, 'new', 1.5, date '2026-10-20' from range(40) r(i)",  # new
         "insert into marts.fct_orders values (90000, 'new', 1.5, date '2026-10-20')",  # a third equal row
         # one of a pair of equal rows deleted (a multiset: the other stays)
         "delete from marts.fct_orders where rowid = (select max(rowid) from marts.fct_orders where order_id = 4)",
         # two values swapped between rows: the same multiset of values, other rows
         "update marts.fct_orders set customer_key = case order_id when 1500 then 'k1' else 'k2' end "
         "where order_id in (1500, 1501)")
    result = _published(wh, serving, 1)
    assert result.full is None and result.copied == ("fct_orders",) and result.in_place == ("fct_orders",)
    _served_equals_warehouse(wh, serving)
    _footers_match(serving)
    with duckdb.connect(str(wh), read_only=True) as con:
        after = Counter(con.execute("select * from marts.fct_orders").fetchall())
    stored, live = _stored_and_live(serving, "fct_orders")
    # the rows whose count changed were deleted (kept in their row groups: in place) and the warehouse's inserted
    # (all copies of a row whose count changed: 2 -> 1 deletes 2, inserts 1); the others stayed where they were
    inserted = sum(after[r] for r in before.keys() | after.keys() if before[r] != after[r])
    assert live == after.total() and stored == before.total() + inserted
    assert (before - after).total() > 200 and (after - before).total() > 200
    # a dimension's one changed cell: in place too, the others reused
    _sql(wh, "update marts.dim_product set label = 'renamed' where product_id = 7")
    result = _published(wh, serving, 2)
    assert result.copied == result.in_place == ("dim_product",) and set(result.reused) == {"fct_orders", "kpi_daily"}
    _served_equals_warehouse(wh, serving)
    _footers_match(serving)


def test_a_changed_column_copies_the_table_again(site: tuple[Path, Path]) -> None:
    wh, serving = site
    _published(wh, serving, 0)
    _sql(wh, "alter table marts.fct_orders add column channel varchar default 'web'",
         "alter table marts.kpi_daily alter column nps type decimal(9, 2)",
         "update marts.dim_product set label = 'renamed' where product_id = 3")
    result = _published(wh, serving, 1)
    assert set(result.copied) == set(TABLES) and result.in_place == ("dim_product",)
    _served_equals_warehouse(wh, serving)
    _footers_match(serving)


def test_deleted_rows_do_not_pile_up_in_the_served_file(site: tuple[Path, Path]) -> None:
    """Each night updates 6 % of a table in place; once the deleted rows kept in its row groups would pass
    ``IN_PLACE_MAX_DEAD_SHARE`` of its rows, the table is written anew (no deleted rows), then updated in place
    again."""
    wh, serving = site
    _sql(wh, "create table marts.fct_big as select i as id, i * 2 as v from range(30000) r(i)")
    _published(wh, serving, 0)
    kinds = []
    for night in range(1, 7):
        _sql(wh, f"update marts.fct_big set v = v + 1 where (id + {night * 7}) % 17 = 0")
        result = _published(wh, serving, night)
        assert result.copied == ("fct_big",)
        kinds.append("in place" if result.in_place else "anew")
        stored, live = _stored_and_live(serving, "fct_big")
        assert stored - live <= IN_PLACE_MAX_DEAD_SHARE * live, (night, stored, live)
        assert (stored == live) == (kinds[-1] == "anew")
        _served_equals_warehouse(wh, serving)
    assert kinds == ["in place", "in place", "in place", "anew", "in place", "in place"]


# ---- erasure: a full publish, and the purge --------------------------------------------------------------

def _customers(path: Path, erased: bool, fingerprint: str = "f1") -> None:
    """Three customers with long keys (found in the bytes of a file), the second one erased or not, and
    a table the erasure does not change."""
    path.unlink(missing_ok=True)
    key2 = "erased-customer-key-0000000002" if erased else "customer-key-0000000002-before-erasure"
    _sql(path, "create schema marts", "create schema restricted",
         "create table marts.dim_customer (customer_key varchar, is_erased boolean)",
         f"insert into marts.dim_customer values ('customer-key-0000000001-kept', false), ('{key2}', {erased}), "
         "('customer-key-0000000003-kept', false)",
         "create table marts.fct_orders as select customer_key, 10.0 as amount from marts.dim_customer",
         "create table marts.kpi_daily as select range as d from range(5)",
         "create table restricted.int_customer_key_map as "
         f"select customer_key, '{fingerprint}' as key_fingerprint from marts.dim_customer")


def _files_holding(serving: Path, text: str) -> list[str]:
    return sorted(str(f.relative_to(serving)) for f in serving.rglob("*")
                  if f.is_file() and text.encode() in f.read_bytes())


def test_an_erasure_publishes_in_full_and_purges_the_old_key_everywhere(tmp_path: Path) -> None:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    old_key = "customer-key-0000000002-before-erasure"
    _customers(wh, erased=False)
    _published(wh, serving, 0)
    assert _published(wh, serving, 1).reused  # an ordinary night: kept for readers in flight, reused
    assert len(list((serving / "parquet_versions").iterdir())) == 2
    assert "cx.duckdb" in _files_holding(serving, old_key)  # the check below can fail

    _customers(wh, erased=True)
    inodes = _inodes(serving)
    result = _published(wh, serving, 2)
    assert result.full is not None and "1 customer(s) erased since the last publication" in result.full
    # the tables that hold the customer change (their key does); kpi_daily does not: reused in the new file (copied
    # from the served one, its Parquet file hard-linked), it holds no row the warehouse does not
    assert set(result.copied) == {"dim_customer", "fct_orders"} and result.reused == ("kpi_daily",)
    assert result.in_place == ()  # a new file: nothing updated in a copy of the old one
    assert _inodes(serving)["kpi_daily"] == inodes["kpi_daily"]
    assert {t: i for t, i in _inodes(serving).items() if i == inodes.get(t)} == {"kpi_daily": inodes["kpi_daily"]}
    assert len(list((serving / "parquet_versions").iterdir())) == 1 and not (serving / PURGE_MARKER).exists()
    assert _files_holding(serving, old_key) == []  # a new file: no freed block of a copy holds the old key
    _served_equals_warehouse(wh, serving)
    assert set(_fingerprints(serving)) == {"dim_customer", "fct_orders", "kpi_daily"}

    # the night after erases nobody new: only what changed again, versions kept again
    result = _published(wh, serving, 3)
    assert result.full is None and result.copied == ()
    assert len(list((serving / "parquet_versions").iterdir())) == 2

    # a new key secret: a full publish too
    _customers(wh, erased=True, fingerprint="f2")
    result = _published(wh, serving, 4)
    assert result.full is not None and "the key secret changed" in result.full
    # (here the marts' rows did not change with the secret: every table is reused, in a new file)
    assert set(result.reused) == {"dim_customer", "fct_orders", "kpi_daily"}
    _served_equals_warehouse(wh, serving)
    assert (serving / KEYS_FILE).read_text() == "f2"

    # a purge left pending by a crash (PURGE_MARKER): full, then purged
    (serving / PURGE_MARKER).write_text("1 customer(s) erased since the last publication")
    result = _published(wh, serving, 5)
    assert result.full is not None and result.full.startswith("earlier Parquet versions are purged")
    assert len(list((serving / "parquet_versions").iterdir())) == 1 and not (serving / PURGE_MARKER).exists()


# ---- the served file's size ----------------------------------------------------------------------------

def test_the_served_file_does_not_grow_publish_after_publish(tmp_path: Path) -> None:
    wh, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    _warehouse(wh)

    def big(gen: int) -> str:
        return (f"create or replace table marts.big as select i, md5(i || '-{gen}') as label, "
                f"i * {gen + 1} as v from range(100000) r(i)")

    _sql(wh, big(0))
    _published(wh, serving, 0)
    written = (serving / "cx.duckdb").stat().st_size  # a new file
    sizes = []
    for gen in range(1, 11):
        _sql(wh, big(gen))
        result = _published(wh, serving, gen)
        assert result.copied == ("big",) and result.full is None
        assert result.in_place == ()  # every row changed: written anew, not updated in place
        sizes.append((serving / "cx.duckdb").stat().st_size)
    # the changed table's blocks stay in use until the publish's one checkpoint (a reader opening the file during
    # the swap may read them through the served header: test_a_reader_between_duckdbs_opens_reads_one_publication),
    # so the file holds two copies of it at most, reused publish after publish: it does not grow
    assert max(sizes) <= 2 * written, (written, sizes)
    assert max(sizes[5:]) <= max(sizes[:5]), sizes
    _served_equals_warehouse(wh, serving)

    # most of the served file freed (the big table gone): the next publish writes a new, small file
    _sql(wh, "drop table marts.big")
    assert _published(wh, serving, 11).full is None
    result = _published(wh, serving, 12)
    assert result.full is not None and "blocks in use" in result.full and result.copied == ()
    assert set(result.reused) == set(TABLES)  # unchanged: copied from the served file into the new one
    # its free blocks are holes: the disk it takes, not its length, is what shrinks (orchestration/publish.py _scrubbed)
    assert (serving / "cx.duckdb").stat().st_blocks * 512 < sizes[-1] / 2
    _served_equals_warehouse(wh, serving)
    assert _published(wh, serving, 13).full is None  # and the next copy of it stays as small
    assert (serving / "cx.duckdb").stat().st_blocks * 512 < sizes[-1] / 2


# ---- crash points ----------------------------------------------------------------------------------------

KILLED = textwrap.dedent("""
    import sys
    from pathlib import Path
    from orchestration.publish import publish
    publish(Path(sys.argv[1]), Path(sys.argv[2]), as_of="killed")
""")


@pytest.mark.parametrize("point", ["publish.mid_copy", "publish.after_db_swap"])
def test_a_publish_killed_then_the_next_one_serves_the_warehouse(point: str, site: tuple[Path, Path]) -> None:
    """Killed after the DuckDB swap, the served file is new and the linked Parquet version old: the next
    publish copies again the tables whose served Parquet footer is not the served fingerprint."""
    wh, serving = site
    _published(wh, serving, 0)
    _sql(wh, "update marts.kpi_daily set nps = nps + 1 where kpi_date = date '2026-10-03'")
    killed = subprocess.run([sys.executable, "-c", KILLED, str(wh), str(serving)], cwd=ROOT, capture_output=True,
                            text=True, env=os.environ | {"CX_CRASH_AT": point}, timeout=120)
    assert killed.returncode == -9, killed.stderr
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        as_of = con.execute("select distinct as_of from _publication").fetchall()
    assert as_of == ([("killed",)] if point == "publish.after_db_swap" else [("2026-10-10",)])

    result = _published(wh, serving, 1)
    assert result.copied == ("kpi_daily",) and set(result.reused) == {"dim_product", "fct_orders"}
    _served_equals_warehouse(wh, serving)


def test_a_publish_killed_after_updating_in_place_leaves_the_old_publication(site: tuple[Path, Path]) -> None:
    """Killed once every changed table was updated in the temporary copy (checkpointed, not yet renamed): BI
    still reads the old publication, whole; the next publish serves the warehouse."""
    wh, serving = site
    _published(wh, serving, 0)
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        old = {t: _rows(con, t) for t in TABLES}
    version = (serving / "parquet").resolve()
    _sql(wh, "update marts.dim_product set label = 'renamed' where product_id = 7",
         "delete from marts.fct_orders where order_id < 10", "insert into marts.fct_orders values (999, 'k1', 1, null)")
    killed = subprocess.run([sys.executable, "-c", KILLED, str(wh), str(serving)], cwd=ROOT, capture_output=True,
                            text=True, env=os.environ | {"CX_CRASH_AT": "publish.before_swap"}, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert (serving / "parquet").resolve() == version
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        assert con.execute("select distinct as_of from _publication").fetchall() == [("2026-10-10",)]
        assert {t: _rows(con, t) for t in TABLES} == old
    result = _published(wh, serving, 1)
    assert result.in_place == ("dim_product", "fct_orders") and result.reused == ("kpi_daily",)
    _served_equals_warehouse(wh, serving)


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_a_sparse_copy_keeps_bytes_and_holes(kernel_copy: bool, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``_copy_data``: the data of a sparse file where it was, its holes holes, with or without the kernel's
    copy_file_range (a file system without it falls back to reads and writes)."""
    import errno

    import orchestration.publish as P

    if not kernel_copy:
        def unsupported(*_: object) -> int:
            raise OSError(errno.EXDEV, "not here")
        monkeypatch.setattr(P.os, "copy_file_range", unsupported)
    src, dst = tmp_path / "src", tmp_path / "dst"
    block = 1 << 20
    with src.open("wb") as fh:
        fh.write(b"a" * 100)
        fh.seek(4 * block)
        fh.write(b"b" * (block + 7))
        fh.truncate(9 * block)
    P._copy_sparse(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert dst.stat().st_blocks * 512 < 4 * block  # the holes stayed holes
    with dst.open("r+b") as out, src.open("rb") as fh:  # a range into an existing file, past its end
        out.truncate(block)
        P._copy_data(fh, out, 4 * block, 9 * block)
    assert dst.stat().st_size == 9 * block and dst.read_bytes()[4 * block:] == src.read_bytes()[4 * block:]


@pytest.mark.parametrize("lost", ["metadata", "table"])
def test_a_new_file_missing_a_block_in_use_is_never_served(lost: str, site: tuple[Path, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``_scrubbed`` keeps the blocks DuckDB names in use. Were its account to miss one (a metadata block, or a
    table's), the new file would lose it: the publish fails, and BI keeps reading the previous publication."""
    import orchestration.publish as P

    wh, serving = site
    _published(wh, serving, 0)
    before = _contents(serving / "cx.duckdb")
    real = P._live_blocks
    calls = []

    def missing_one(con: duckdb.DuckDBPyConnection) -> tuple:
        size, total, live, rows = real(con)
        if not calls:  # the bridge's account: one block in use left out
            meta = {b for (b,) in con.execute("select block_id from pragma_metadata_info()").fetchall()}
            live = live - {min(meta) if lost == "metadata" else max(live - meta)}
        calls.append(1)
        return size, total, live, rows

    monkeypatch.setattr(P, "_live_blocks", missing_one)
    monkeypatch.setattr(P, "BRIDGE_SECONDS", 0.0)
    (serving / PURGE_MARKER).write_text("a test's purge", encoding="utf-8")
    _sql(wh, "update marts.fct_orders set amount = amount + 1 where order_id < 5")
    with pytest.raises(RuntimeError, match="zeroed"):
        _published(wh, serving, 1)
    assert _contents(serving / "cx.duckdb") == before
    assert [p.name for p in serving.iterdir() if p.name.endswith(".tmp")] == []


def test_the_publish_runs_with_the_projects_duckdb_settings(site: tuple[Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The publish's connection takes the ``CX_DUCKDB_*`` settings dbt's sessions take (ingestion/settings.py
    ``apply_duckdb_settings``, tests/test_settings.py): rows written in any order, on every thread. BI reads the
    warehouse's rows all the same, written anew or updated in place."""
    wh, serving = site
    configured = []  # the publish's connection, with the warehouse's folder as the default spill's
    apply = settings.apply_duckdb_settings
    monkeypatch.setattr(settings, "apply_duckdb_settings", lambda con, data_dir: (configured.append(data_dir),
                                                                                  apply(con, data_dir)))
    monkeypatch.setenv("CX_DUCKDB_THREADS", "1")
    assert _published(wh, serving, 0).full == "nothing published yet"
    assert configured == [wh.parent]
    _served_equals_warehouse(wh, serving)
    _sql(wh, "update marts.fct_orders set amount = amount + 1 where order_id < 5")
    second = _published(wh, serving, 1)
    assert second.in_place == ("fct_orders",)
    _served_equals_warehouse(wh, serving)


def test_a_publication_says_where_its_time_went(site: tuple[Path, Path]) -> None:
    """``Publication.summary()`` (the serving asset's metadata, the benchmarks' record): what was written, the
    seconds per kind of work and the tables that took longest, each summed from the publish's own clock."""
    wh, serving = site
    first = _published(wh, serving, 0)
    summary = first.summary()
    assert {k: summary[k] for k in ("full_publish", "tables_written", "tables_updated_in_place", "tables_reused")} \
        == {"full_publish": "nothing published yet", "tables_written": 3, "tables_updated_in_place": 0,
            "tables_reused": 0}
    parts = summary["seconds_by_part"]
    assert {"fingerprint", "create", "parquet", "count", "final_checkpoint"} <= set(parts)
    assert "update" not in parts and "reuse" not in parts
    assert list(parts.values()) == sorted(parts.values(), reverse=True)  # largest first
    assert sum(parts.values()) == pytest.approx(sum(first.seconds.values()), abs=0.01 * len(parts))
    assert set(summary["slowest_tables"]) == set(TABLES)  # three tables, each with its own parts
    table_seconds = {t: sum(s for p, s in first.seconds.items() if p.endswith(":" + t)) for t in TABLES}
    assert summary["slowest_tables"] == pytest.approx(table_seconds, abs=0.006)
    _sql(wh, "update marts.fct_orders set amount = amount + 1 where order_id < 5")
    second = _published(wh, serving, 1).summary()
    assert (second["full_publish"], second["tables_updated_in_place"], second["tables_reused"]) == \
        ("no: only what changed", 1, 2)
    assert "update" in second["seconds_by_part"] and "create" not in second["seconds_by_part"]
    assert set(second["slowest_tables"]) == set(TABLES)  # the reused ones too: their fingerprint and count
