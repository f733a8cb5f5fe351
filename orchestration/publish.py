"""Publish the BI-facing marts, atomically, to ``$CX_DATA_DIR/serving/``.

* ``serving/cx.duckdb``: every table of the warehouse's ``marts`` schema (never ``restricted``),
  plus ``_publication`` (when, as of which date, which tables). It is built in a temporary file,
  checkpointed, fsynced and renamed over the previous file. A reader that opened the old file keeps
  reading it; a new reader sees the new one; nobody sees a half-written file.
* ``serving/parquet``: a symlink to ``serving/parquet_versions/<stamp>/`` holding one Parquet
  file per table. The symlink is replaced atomically; the previous version is kept for readers in
  flight and older ones are pruned.

BI tools read these, never the live ``warehouse.duckdb`` (one writer at a time).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

BI_SCHEMA = "marts"
KEEP_PARQUET_VERSIONS = 2


@dataclass
class Publication:
    database: Path
    parquet: Path
    tables: dict[str, int]  # table -> rows
    published_at: dt.datetime


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(warehouse: Path, serving: Path, as_of: str | None = None,
            now: dt.datetime | None = None) -> Publication:
    """Copy the BI marts of ``warehouse`` to ``serving`` (atomic file swap + Parquet export)."""
    serving.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    target = serving / "cx.duckdb"
    tmp = serving / f".cx.duckdb.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"
    versions = serving / "parquet_versions"
    parquet_dir = versions / stamp
    parquet_dir.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute(f"attach '{warehouse}' as wh (read_only)")
            tables = [r[0] for r in con.execute(
                "select table_name from information_schema.tables "
                f"where table_catalog = 'wh' and table_schema = '{BI_SCHEMA}' order by table_name").fetchall()]
            if not tables:
                raise RuntimeError(f"{warehouse}: no tables in schema {BI_SCHEMA!r} to publish")
            rows = {}
            for t in tables:
                con.execute(f'create table "{t}" as select * from wh.{BI_SCHEMA}."{t}"')
                rows[t] = con.execute(f'select count(*) from "{t}"').fetchone()[0]
                con.execute(f"copy \"{t}\" to '{parquet_dir / (t + '.parquet')}' (format parquet, compression zstd)")
            con.execute("create table _publication (published_at timestamptz, as_of varchar, table_name varchar, "
                        "row_count bigint)")
            con.executemany("insert into _publication values (?, ?, ?, ?)",
                            [(now, as_of, t, n) for t, n in rows.items()])
            con.execute("detach wh")
            con.execute("checkpoint")
        finally:
            con.close()
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(serving)
    except BaseException:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(parquet_dir, ignore_errors=True)
        raise
    for f in parquet_dir.iterdir():
        _fsync(f)
    link = serving / "parquet"
    tmp_link = serving / f".parquet.{os.getpid()}.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(parquet_dir.relative_to(serving))
    os.replace(tmp_link, link)
    _fsync(serving)
    for old in sorted(p for p in versions.iterdir() if p.is_dir())[:-KEEP_PARQUET_VERSIONS]:
        shutil.rmtree(old, ignore_errors=True)
    return Publication(target, link, rows, now)
