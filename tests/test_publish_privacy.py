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
