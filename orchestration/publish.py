"""Publish the BI-facing marts, atomically, to ``$CX_DATA_DIR/serving/``.

* ``serving/cx.duckdb``: every table of the warehouse's ``marts`` schema (never ``restricted``),
  plus ``_publication`` (when, as of which date, which tables and views). It is built in a temporary
  file, checkpointed, fsynced and renamed over the previous file. A reader that opened the old file
  keeps reading it; a new reader sees the new one; nobody sees a half-written file.
* Views of ``marts`` (dbt ``materialized='view'``, e.g. ``mart_customer_profile_daily``) are served as
  views over the served tables, never copied: a view exists not to be stored (that one would hold a row
  per customer and day). Their definition is the warehouse's own (``duckdb_views()``), parsed by DuckDB
  (``json_serialize_sql``) and its references to the warehouse's ``marts`` relations pointed at the
  served ones in the syntax tree, then rendered back (``json_deserialize_sql``): no text search and
  replace in SQL, and the SQL that ran in the warehouse is the SQL served, whatever dbt and the macros
  compiled it to. A view of ``marts`` that reads another schema is refused (the served file holds the
  marts only: a view over ``restricted`` would serve what publishing leaves out). A view that reads no
  warehouse relation at all is a window onto files (on Spark, ``warehouse.duckdb`` holds one per table
  over Spark's Parquet files, orchestration/spark_mirror.py): it is a table to BI and copied as one.
  Views have no Parquet file (BI reads them in ``cx.duckdb``) and a null ``row_count`` in
  ``_publication``: counting would compute the whole view at each publish.
* ``serving/parquet``: a symlink to ``serving/parquet_versions/<stamp>/`` holding one Parquet
  file per table. The symlink is replaced atomically; the previous version is kept for readers in
  flight and older ones are pruned (below).

* ``data_health`` (both places): the data-health record (``expectations/health.py``), one row
  per business date x check. ``publish`` serves it with the marts; ``publish_health`` serves a new
  record on a blocked night while every mart stays byte-identical (the previous Parquet files are
  hard-linked, the DuckDB tables copied unchanged).

Only what changed is written (issue 18). Each table's fingerprint is computed in the warehouse
(``_fingerprint``: its column names and types, its row count and two order-independent sums of a
row hash) and stored with the table: as its comment in ``cx.duckdb`` (``cx_fingerprint=v1-…``) and
in the footer of its Parquet file (key ``cx_fingerprint``), never in a row BI reads (a table's floats
may differ in their last bit from one run of a night to the next: the fingerprint sees it, a
comparison of the numbers need not). A table whose fingerprint equals the served one, in
``cx.duckdb`` and in the served Parquet file's footer alike, is reused: the temporary DuckDB file
starts as a copy of the served one (where that table stays as it is) and its Parquet file is
hard-linked into the new version folder. A changed table whose served copy has the same columns is
updated in place in the copy (``_update_in_place``: the rows whose whole-row hash count differs are
deleted and the warehouse's inserted; the unchanged rows are neither read back from the warehouse
nor written again), unless too many of its rows changed or its row groups would hold too many
deleted rows (``IN_PLACE_MAX_READ_SHARE``, ``IN_PLACE_MAX_DEAD_SHARE``): then, like a new table or one
whose columns changed, it is dropped and copied again. Its Parquet file is written anew all the same
(one file per table, the contract below). Gone tables are dropped, views, ``_publication`` and
``data_health`` written anew, with one checkpoint at the end: what is dropped or rewritten keeps its blocks
until then, so the copy can still be read through the served file's headers (``_keep_served_blocks``: DuckDB
opens a path three times, and a reader opening ``cx.duckdb`` during the swap may get the old headers and the
new blocks). The file holds at most two versions of a changed table, and reuses the freed blocks the next
night: it does not grow from publish to publish. ``Publication.seconds`` says where the publish spent its time.
A reader sees the same as after a full publish: a new file renamed over the old one, a new version folder
linked. Every table is written anew, into a new file (a full publish), when nothing was published yet or the
served publication has no fingerprints (an older format, or another ``FINGERPRINT_VERSION``: none is reused
then). The publish serves a new file, but still reuses the unchanged tables, when earlier versions are purged
(below: the freed blocks of a copied file still hold what was dropped, and the rows deleted by an update in
place stay in their row groups) and when free blocks take more than half of the served file's disk
(``FULL_REWRITE_FREE_SHARE``): nothing is updated in place, an unchanged table is written anew from its served
copy (``create table as``, which leaves deleted rows behind) and its Parquet file hard-linked, every changed one
written from the warehouse. That copy of the served file is served first, as a bridge for ``BRIDGE_SECONDS``,
then the new file proper (``_scrubbed``): the bridge's headers and live blocks where they are, every other block
a hole, so no byte of what was dropped, and readable through the bridge's headers. That is safe on an erasure
night: an unchanged table holds, by its fingerprint, exactly the rows the warehouse now holds, so no row of the
old key (every table holding the erased person changes with their key; docs/privacy.md). ``Publication.full``
says why a new file, ``copied`` and ``reused`` which tables were written and which kept, ``in_place`` which of
the written were updated in place. A table whose columns change is changed (its fingerprint names them): only
that one is copied again. At M an erasure night's publish is still mostly the changed tables written twice, into
the new file (``create``) and as Parquet (``PARQUET_OPTIONS``): the tables that hold customers change on such a
night, and those are the large ones.

Earlier Parquet versions are purged at once, whatever the rules below, when the publication changes
keys that older versions hold (docs/privacy.md): a customer erased since the last publication (the
old versions still carry the key their rows had before), or a new key secret (``cxw keys rotate``).
The intent is written first (``serving/.purge_pending``), so a publish killed before the purge
leaves it to the next one.

BI tools read these, never the live ``warehouse.duckdb`` (one writer at a time). Publishes take an
exclusive lock (``serving/.publish.lock``) so a health publish never interleaves with a full one.

The reader contract (what a BI reader may rely on; tests/reliability/test_concurrency.py reads in a
loop during 100 publishes: no error, no partial read):

* ``serving/cx.duckdb``, opened read-only: one connection sees one whole publication (every table,
  ``_publication`` and ``data_health`` of the same publish), however long it stays open; a
  connection opened after a publish sees the new one (one opened during the swap, the old or the new,
  whole). Reconnect to see a newer publication. The one case left: a reader's open stalled between
  DuckDB's second and third open of the path across two swaps (two publishes back to back, or a
  purge's bridge and new file ``BRIDGE_SECONDS`` apart) may fail to open; it never reads a mix.
* ``serving/parquet``: resolve the link once (``os.path.realpath``), then read the files of that
  version folder: they are one whole publication. The folder stays until two publishes after it
  was linked, and in any case ``PARQUET_GRACE_SECONDS`` after it stopped being the served one, so
  a reader that resolved the link just before back-to-back publishes still finds every file (a
  file already open stays readable even after that). A glob through the link itself
  (``serving/parquet/*.parquet``) resolves it once per file: each file is whole, but two files may
  come from two publications when a publish lands in between.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

import duckdb
import polars as pl

from ingestion import settings
from ingestion.disk import DiskFull, is_disk_full
from ingestion.disk import fsync as _fsync
from ingestion.faults import crashpoint

BI_SCHEMA = "marts"
KEEP_PARQUET_VERSIONS = 2
# a replaced Parquet version stays at least this long for readers that resolved the link before the
# publish (module docstring: the reader contract)
PARQUET_GRACE_SECONDS = 10.0
HEALTH_TABLE = "data_health"
PURGE_MARKER = ".purge_pending"
KEYS_FILE = ".key_fingerprint"  # the key secret's fingerprint of the last publication (reveals nothing)
# a table's content fingerprint (``_fingerprint``): its comment in cx.duckdb is "<key>=<fingerprint>", and its
# Parquet file's footer holds it under the key. Another version (a new way to compute it): the next publish is full
FINGERPRINT_VERSION = "v1"
FINGERPRINT_KEY = "cx_fingerprint"
# how a served Parquet file is written. zstd level 1, not DuckDB's default 3: at M (fct_journey_events, fct_orders,
# fct_payments) 27 % less CPU for 3 % larger files; an erasure night writes most of the served bytes again
PARQUET_OPTIONS = "format parquet, compression zstd, compression_level 1"
# a served file whose free blocks take more than this share of the disk it takes is not reused: the publish writes a
# new one
FULL_REWRITE_FREE_SHARE = 0.5
# a new file (``_scrubbed``) is served this long after the bridge that readers opening the served file meanwhile
# read (``_keep_served_blocks``): longer than the instant between DuckDB's opens of one connection's path
BRIDGE_SECONDS = 2.0
_BLOCK_START = 3 * 4096  # where a DuckDB file's first block starts (its main header and two database headers)
_REWRITE = "_cx_rewrite"  # a reused table written anew in a new file takes this name, then its own
# a changed table whose served copy has the same columns is updated in place (``_update_in_place``), unless the
# rows of its changed hash buckets are more than this share of its rows (copying it again is cheaper) or its served
# copy would then hold more deleted rows than this share of its live rows (deleted rows stay in their row groups
# until the table is written anew: the served file would grow night after night)
IN_PLACE_MAX_READ_SHARE = 0.5
IN_PLACE_MAX_DEAD_SHARE = 0.2
# rows are compared bucket by bucket first (the top 20 bits of their hash): only the rows of buckets whose sums
# differ are compared row by row (2**20 buckets: a night that changes 1 % of a table's rows reads back ~5 %)
_BUCKET_SHIFT = 44


@dataclass
class Publication:
    database: Path
    parquet: Path
    tables: dict[str, int]  # table -> rows
    published_at: dt.datetime
    views: tuple[str, ...] = ()  # served as views over the tables (no Parquet, row_count null)
    copied: tuple[str, ...] = ()  # tables written anew (all of them on a full publish)
    reused: tuple[str, ...] = ()  # tables unchanged since the served publication: kept, their Parquet hard-linked
    full: str | None = None  # why every table was written into a new file; None when only what changed was
    in_place: tuple[str, ...] = ()  # of ``copied``: updated in place in the copied served file (changed rows only)
    seconds: dict[str, float] = field(default_factory=dict)  # where the publish spent its time (``_Clock``)
    # the keys of ``summary()``, in order: the Dagster asset's metadata holds them beside others, and the benchmarks
    # read them back from it
    SUMMARY_KEYS: ClassVar[tuple[str, ...]] = ("full_publish", "tables_written", "tables_updated_in_place",
                                               "tables_reused", "seconds_by_part", "slowest_tables")

    def seconds_by_part(self) -> dict[str, float]:
        """``seconds`` summed per kind of work (``create``, ``parquet``, ``update``, ``reuse``, ``fingerprint``,
        ``copy_served_file``, ``scrub``, ``bridge_wait``, ...), largest first, to the hundredth: where the time went."""
        return self._summed(lambda part: part.partition(":")[0])

    def slowest_tables(self, n: int = 5) -> dict[str, float]:
        """The ``n`` tables the publish spent most on (their fingerprint, copy or update, Parquet file and count),
        largest first, to the hundredth."""
        return dict(list(self._summed(lambda part: part.partition(":")[2]).items())[:n])

    def _summed(self, key: Callable[[str], str]) -> dict[str, float]:
        """``seconds`` summed by ``key`` of each part (parts whose key is empty left out), largest first."""
        sums: dict[str, float] = {}
        for part, seconds in self.seconds.items():
            if k := key(part):
                sums[k] = sums.get(k, 0.0) + seconds
        return {k: round(v, 2) for k, v in sorted(sums.items(), key=lambda kv: -kv[1])}

    def summary(self) -> dict[str, object]:
        """What the publish wrote and where its time went: the Dagster asset's metadata, the benchmarks' record."""
        return dict(zip(self.SUMMARY_KEYS, (
            self.full or "no: only what changed", len(self.copied), len(self.in_place), len(self.reused),
            self.seconds_by_part(), self.slowest_tables()), strict=True))


@dataclass
class _Served:
    """What the next publish may reuse of the served publication (``_plan``)."""
    full: str | None  # why the publish writes a new file; None: it starts from a copy of the served file
    # table -> its fingerprint, in cx.duckdb and its Parquet file's footer alike: the tables that may be reused (in a
    # new file too: copied from the served file). Empty when nothing may be (nothing served, no or other fingerprints)
    fingerprints: dict[str, str]
    parquet: Path | None  # the served Parquet version folder (the link resolved once)
    key_fingerprint: str | None  # the key secret's fingerprint (``_keys_changed``)


class _Clock:
    """Seconds spent per part of a publish (``Publication.seconds``): what a night's publish costs, and where."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - t0


@contextmanager
def _locked(serving: Path) -> Iterator[None]:
    serving.mkdir(parents=True, exist_ok=True)
    with (serving / ".publish.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_health(con: duckdb.DuckDBPyConnection, health: pl.DataFrame, parquet_dir: Path) -> int:
    con.register("_health_frame", health.to_arrow())
    con.execute(f'create or replace table "{HEALTH_TABLE}" as select * from _health_frame')
    con.unregister("_health_frame")
    con.execute(f"copy \"{HEALTH_TABLE}\" to '{parquet_dir / (HEALTH_TABLE + '.parquet')}' ({PARQUET_OPTIONS})")
    return health.height


def _swap_in(tmp: Path, target: Path, serving: Path) -> None:
    """Make the finished temporary DuckDB file the served one (durable, atomic rename)."""
    _fsync(tmp)
    os.replace(tmp, target)
    _fsync(serving)


def _scrubbed_path(tmp: Path) -> Path:
    """Where ``_scrubbed`` writes the new file made from the bridge ``tmp``: ``.cx.duckdb.new.<pid>.tmp``, a name
    crash recovery knows (orchestration/recovery.py: the pid before ``.tmp``)."""
    return tmp.with_name(tmp.name.replace(".cx.duckdb.", ".cx.duckdb.new.", 1))


def _discard(tmp: Path, parquet_dir: Path) -> None:
    """Remove what a failed publish staged; the served copy is untouched."""
    tmp.unlink(missing_ok=True)
    _scrubbed_path(tmp).unlink(missing_ok=True)
    shutil.rmtree(parquet_dir, ignore_errors=True)


@contextmanager
def _staged(serving: Path, now: dt.datetime, suffix: str = "") -> Iterator[tuple[Path, Path]]:
    """A temporary DuckDB file and a new Parquet version folder to fill; on any error both are
    discarded (the served copy is untouched) and a full disk is said as ``DiskFull``."""
    tmp = serving / f".cx.duckdb.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    # unique, even twice in a second; the pid tells crash recovery whose staging a folder is
    stamp = now.strftime("%Y%m%dT%H%M%SZ") + f"-{time.time_ns()}-p{os.getpid()}{suffix}"
    parquet_dir = serving / "parquet_versions" / stamp
    parquet_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp, parquet_dir
    except BaseException as exc:
        _discard(tmp, parquet_dir)
        if is_disk_full(exc):
            raise DiskFull(serving, "BI still reads the previous served copy, unchanged") from exc
        raise


def _swap_parquet(serving: Path, parquet_dir: Path) -> None:
    versions = serving / "parquet_versions"
    for f in parquet_dir.iterdir():
        _fsync(f)
    link = serving / "parquet"
    tmp_link = serving / f".parquet.{os.getpid()}.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(parquet_dir.relative_to(serving))
    crashpoint("publish.inside_link_swap")
    os.replace(tmp_link, link)
    _fsync(serving)
    crashpoint("publish.before_prune")
    _prune(versions, parquet_dir)


def _prune(versions: Path, current: Path, now: float | None = None) -> None:
    """Remove old Parquet versions: keep the ``KEEP_PARQUET_VERSIONS`` newest, and any version that
    stopped being the served one less than ``PARQUET_GRACE_SECONDS`` ago (a reader that resolved
    the link just before a publish still finds every file of its version, even when publishes come
    back to back)."""
    now = time.time() if now is None else now
    # oldest first by creation (a folder's mtime: its last file written, just before it was linked);
    # never the version just linked (names of one second may sort either way)
    ordered = sorted((p for p in versions.iterdir() if p.is_dir() and p != current),
                     key=lambda p: p.stat().st_mtime_ns) + [current]
    surplus = len(ordered) - KEEP_PARQUET_VERSIONS
    for old, successor in zip(ordered[:max(0, surplus)], ordered[1:], strict=False):
        # a version was replaced when its successor was linked, just after the successor's last write
        if now - successor.stat().st_mtime >= PARQUET_GRACE_SECONDS:
            shutil.rmtree(old, ignore_errors=True)


def publish(warehouse: Path, serving: Path, as_of: str | None = None,
            now: dt.datetime | None = None, health: pl.DataFrame | None = None) -> Publication:
    """Copy the BI marts of ``warehouse`` (and the ``health`` record) to ``serving`` (atomic swaps)."""
    with _locked(serving):
        crashpoint("publish.start")
        return _publish(warehouse, serving, as_of, now, health)


def _publish(warehouse: Path, serving: Path, as_of: str | None, now: dt.datetime | None,
             health: pl.DataFrame | None) -> Publication:
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    clock = _Clock()
    target = serving / "cx.duckdb"
    with clock("plan"):
        served = _plan(warehouse, serving, target)
    bridge = served.full is not None and target.exists()  # a new file, a served one to step over (below)
    with _staged(serving, now) as (tmp, parquet_dir):
        if target.exists():  # start from the served file: unchanged tables stay as they are, in their blocks
            with clock("copy_served_file"):
                _copy_sparse(target, tmp)
        con = duckdb.connect(str(tmp))
        try:
            # the project's DuckDB settings (rows in any order: every table written at M in 15.4-16.6 s instead of
            # 18.2-20.3 s with DuckDB's defaults, RESULTS.md "The publish with the project's DuckDB settings")
            settings.apply_duckdb_settings(con, warehouse.parent)
            con.execute(f"attach '{warehouse}' as wh (read_only)")
            relations = dict(con.execute(
                "select table_name, table_type from information_schema.tables "
                f"where table_catalog = 'wh' and table_schema = '{BI_SCHEMA}' order by table_name").fetchall())
            if not relations:
                raise RuntimeError(f"{warehouse}: no tables in schema {BI_SCHEMA!r} to publish")
            with clock("views_sql"):
                views = {v: sql for v, kind in relations.items() if kind == "VIEW"
                         if (sql := _served_view_sql(con, v, set(relations))) is not None}
            tables = [t for t in relations if t not in views]
            prints = {}
            for t in tables:
                with clock(f"fingerprint:{t}"):
                    prints[t] = _fingerprint(con, t)
            reused = {t for t in tables if served.fingerprints.get(t) == prints[t]}
            # a changed table whose served copy has the warehouse's columns is updated in place (changed rows only);
            # never into a new file: the rows an update deletes stay in their row groups
            updatable = {t for t in tables if served.full is None and t not in reused and _same_columns(con, t)}
            if target.exists():
                with clock("drop"):
                    _drop_all_but(con, reused | updatable)
            in_place = set()
            rows = {}
            for i, t in enumerate(tables):
                if i == len(tables) // 2:
                    crashpoint("publish.mid_copy")
                if t in reused:
                    os.link(served.parquet / (t + ".parquet"), parquet_dir / (t + ".parquet"))
                    if served.full is not None:  # a new file: the served rows (equal to the warehouse's) written anew,
                        with clock(f"reuse:{t}"):  # without the rows an earlier update in place deleted
                            con.execute(f'create table "{_REWRITE}" as select * from "{t}"')
                            con.execute(f'drop table "{t}"')
                            con.execute(f'alter table "{_REWRITE}" rename to "{t}"')
                else:
                    if t in updatable:
                        with clock(f"update:{t}"):
                            if _update_in_place(con, t):
                                in_place.add(t)
                            else:  # written anew
                                con.execute(f'drop table "{t}"')
                    if t not in in_place:
                        with clock(f"create:{t}"):
                            con.execute(f'create table "{t}" as select * from wh.{BI_SCHEMA}."{t}"')
                    with clock(f"parquet:{t}"):
                        con.execute(f"copy \"{t}\" to '{parquet_dir / (t + '.parquet')}' ({PARQUET_OPTIONS}, "
                                    f"kv_metadata {{{FINGERPRINT_KEY}: '{prints[t]}'}})")
                if t not in reused or served.full is not None:  # written: with its fingerprint
                    con.execute(f"comment on table \"{t}\" is '{FINGERPRINT_KEY}={prints[t]}'")
                with clock("count"):
                    rows[t] = con.execute(f'select count(*) from "{t}"').fetchone()[0]
            _create_views(con, views)
            con.execute("create table _publication (published_at timestamptz, as_of varchar, table_name varchar, "
                        "row_count bigint)")
            con.executemany("insert into _publication values (?, ?, ?, ?)",
                            [(now, as_of, t, n) for t, n in rows.items()] + [(now, as_of, v, None) for v in views])
            if health is not None:
                with clock("health"):
                    _write_health(con, health, parquet_dir)
            con.execute("detach wh")
            with clock("final_checkpoint"):  # the only checkpoint (``_keep_served_blocks``)
                con.execute("checkpoint")
        finally:
            con.close()
        _keep_served_blocks(tmp, target)
        if bridge:  # the new file proper: the bridge's live blocks, nothing else (``_scrubbed``)
            with clock("scrub"):
                scrubbed = _scrubbed(tmp)
        crashpoint("publish.before_swap")
        with clock("swap_db"):
            _swap_in(tmp, target, serving)
    bridged = time.monotonic()
    crashpoint("publish.after_db_swap")
    with clock("swap_parquet"):
        _swap_parquet(serving, parquet_dir)
    if bridge:  # the new file proper, once the bridge has been served for BRIDGE_SECONDS
        try:
            with clock("bridge_wait"):
                time.sleep(max(0.0, BRIDGE_SECONDS - (time.monotonic() - bridged)))
            with clock("swap_db"):
                _swap_in(scrubbed, target, serving)
        except BaseException:
            scrubbed.unlink(missing_ok=True)
            raise
    if (serving / PURGE_MARKER).exists():
        _purge_earlier(serving, parquet_dir)
    if served.key_fingerprint is not None:
        _write_small(serving / KEYS_FILE, served.key_fingerprint)
    return Publication(target, serving / "parquet", rows, now, tuple(views), full=served.full,
                       copied=tuple(t for t in tables if t not in reused),
                       reused=tuple(t for t in tables if t in reused),
                       in_place=tuple(t for t in tables if t in in_place), seconds=clock.seconds)


def _fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The content fingerprint of ``wh.marts.<table>``: its column names and types in order, its row count,
    and two sums (order-independent, unlike a hash of the rows in some order; and unlike a xor, blind neither
    to a pair of equal rows nor to values swapped between rows) of DuckDB's hash of each row, one of them
    hashed again. Equal fingerprints: the same rows (up to a 128-bit collision), the same columns."""
    (columns,) = con.execute(
        "select to_json(list([column_name, data_type] order by column_index)) from duckdb_columns() "
        "where database_name = 'wh' and schema_name = ? and table_name = ?", [BI_SCHEMA, table]).fetchone()
    counted = con.execute(f"select count(*), coalesce(sum(hash(*columns(*))), 0), "
                          f"coalesce(sum(hash(hash(*columns(*)))), 0) from wh.{BI_SCHEMA}.\"{table}\"").fetchone()
    digest = hashlib.sha256(json.dumps([columns, *(str(v) for v in counted)]).encode()).hexdigest()[:32]
    return f"{FINGERPRINT_VERSION}-{digest}"


# per hash bucket of a relation's rows: their count and the fingerprint's two sums
_BUCKET_SUMS = (f"select hash(*columns(*)) >> {_BUCKET_SHIFT} as b, count(*) as n, sum(hash(*columns(*))) as s, "
                "sum(hash(hash(*columns(*)))) as s2")


def _same_columns(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the copied served file (the current database) has a table ``table`` with the columns (names, types,
    order) of ``wh.marts.<table>``."""
    def columns(database: str, schema: str) -> list[tuple[str, str]]:
        return con.execute("select column_name, data_type from duckdb_columns() where database_name = ? "
                           "and schema_name = ? and table_name = ? order by column_index",
                           [database, schema, table]).fetchall()

    (here,) = con.execute("select current_database()").fetchone()
    served = columns(here, "main")
    return bool(served) and served == columns("wh", BI_SCHEMA)


def _update_in_place(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Make the copied served table ``table`` hold the rows of ``wh.marts.<table>`` (same columns) by deleting the
    rows that are not in the warehouse and inserting those missing, as multisets. Rows are told apart by DuckDB's
    hash of the whole row, the hash the fingerprint sums (so no weaker than the fingerprint that says a table is
    unchanged): a hash whose count of rows differs between the two sides has all its served rows deleted and the
    warehouse's inserted. The sums of buckets of hashes are compared first, so only the rows of changed buckets
    are compared and read again. Returns False, having changed nothing, when the table is better written anew
    (``IN_PLACE_MAX_READ_SHARE``, ``IN_PLACE_MAX_DEAD_SHARE``). Deleted rows stay in the file's blocks as a
    dropped table's do: an erasure publishes a new file (module docstring), never a copy updated in place."""
    here, there, theirs = f'main."{table}"', f'wh.{BI_SCHEMA}."{table}"', "_cx_theirs"
    temps = ("_cx_theirs", "_cx_changed", "_cx_old", "_cx_new", "_cx_diff")
    try:
        con.execute(f"create or replace temp table _cx_theirs as {_BUCKET_SUMS} from {there} group by 1")
        con.execute(f"create or replace temp table _cx_changed as select b, x.n as old_rows, y.n as new_rows from "
                    f"({_BUCKET_SUMS} from {here} group by 1) x full join {theirs} y using (b) "
                    "where x.n is distinct from y.n or x.s is distinct from y.s or x.s2 is distinct from y.s2")
        (read, total) = con.execute(f"select (select coalesce(sum(new_rows), 0) from _cx_changed), "
                                    f"(select coalesce(sum(n), 0) from {theirs})").fetchone()
        if read > IN_PLACE_MAX_READ_SHARE * total:
            return False
        # the served rows of changed buckets (by rowid), the warehouse's rows of changed buckets (whole)
        con.execute("create or replace temp table _cx_old as select rowid as r, h from "
                    f"(select rowid, hash(*columns(*)) as h from {here}) "
                    f"where h >> {_BUCKET_SHIFT} in (select b from _cx_changed)")
        con.execute("create or replace temp table _cx_new as select * from "
                    f"(select *, hash(*columns(*)) as _cx_h from {there}) "
                    f"where _cx_h >> {_BUCKET_SHIFT} in (select b from _cx_changed)")
        con.execute("create or replace temp table _cx_diff as select h from "
                    "(select h, count(*) as n from _cx_old group by h) x full join "
                    "(select _cx_h as h, count(*) as n from _cx_new group by h) y using (h) "
                    "where x.n is distinct from y.n")
        (deleted,) = con.execute("select count(*) from _cx_old where h in (select h from _cx_diff)").fetchone()
        (live,) = con.execute(f"select count(*) from {here}").fetchone()
        # rows stored in the table's row groups, deleted ones included (column 0's data segments)
        (stored,) = con.execute("select coalesce(sum(count), 0) from pragma_storage_info(?) "
                                "where column_id = 0 and column_path = '[0]'", [table]).fetchone()
        if stored - live + deleted > IN_PLACE_MAX_DEAD_SHARE * max(total, 1):
            return False
        con.execute(f"delete from {here} where rowid in "
                    "(select r from _cx_old where h in (select h from _cx_diff))")
        con.execute(f"insert into {here} select * exclude (_cx_h) from _cx_new "
                    "where _cx_h in (select h from _cx_diff)")
        return True
    finally:
        for temp in temps:
            con.execute(f"drop table if exists temp.{temp}")


def _keep_served_blocks(tmp: Path, served: Path) -> None:
    """Make the finished copy ``tmp`` readable through the served file's header, as the served publication.

    DuckDB opens a database file by its path three times (strace of ``duckdb.connect(path, read_only=True)``:
    the magic bytes, then the headers, then the blocks), so a reader opening ``cx.duckdb`` while a publish
    renames the new file over it can read the served file's header and the new file's blocks. That reader gets
    the served publication, whole, when the new file still holds the served file's live blocks, unchanged,
    where they were. A copy of the served file changed with a single checkpoint does: until that checkpoint
    ends, the blocks of what it drops or rewrites are still in use, so DuckDB writes into the served file's
    free blocks and new ones only (an earlier checkpoint would free them for the copies that follow: a reader
    then saw the catalog of a half-done copy, "Table with name _publication does not exist"). What the
    checkpoint can do is truncate the file's free tail: the served file's tail is put back here. The file
    never shrinks on such nights; a new file (``_scrubbed``) trims it."""
    if not served.exists():
        return
    size, served_size = tmp.stat().st_size, served.stat().st_size
    if size < served_size:
        with served.open("rb") as src, tmp.open("r+b") as dst:
            _copy_data(src, dst, size, served_size)


def _copy_data(src: BinaryIO, dst: BinaryIO, start: int, end: int) -> None:
    """Copy bytes ``start``..``end`` of ``src`` to the same place in ``dst``, skipping ``src``'s holes (a new file's
    free blocks are holes, ``_scrubbed``): a sparse file stays sparse."""
    fd = src.fileno()
    offset = start
    while offset < end:
        try:
            data = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole after offset
            break
        if data >= end:
            break
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        while data < hole:
            try:  # in the kernel, no copy through this process
                copied = os.copy_file_range(fd, dst.fileno(), hole - data, data, data)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                src.seek(data)
                dst.seek(data)
                copied = dst.write(src.read(min(1 << 20, hole - data)))
            if copied == 0:
                raise OSError(f"{src.name}: copying bytes {data}..{hole} wrote nothing")
            data += copied
        offset = hole
    dst.truncate(max(end, dst.seek(0, os.SEEK_END)))


def _copy_sparse(src: Path, dst: Path) -> None:
    """``shutil.copyfile`` that keeps holes as holes (``_copy_data``)."""
    with src.open("rb") as fsrc, dst.open("wb") as fdst:
        _copy_data(fsrc, fdst, 0, os.fstat(fsrc.fileno()).st_size)


def _live_blocks(con: duckdb.DuckDBPyConnection) -> tuple[int, int, set[int], dict[str, int]]:
    """Of the database ``con`` opened: its block size, its block count, the blocks in use (metadata and every
    table's segments, by DuckDB's own account) and each table's row count. Raises when that account is not
    the file's count of blocks in use (``pragma_database_size``): a block it missed would be scrubbed."""
    block_size, total, used = con.execute("select block_size, total_blocks, used_blocks from pragma_database_size() "
                                          "where database_name = current_database()").fetchone()
    live = {b for (b,) in con.execute("select block_id from pragma_metadata_info()").fetchall()}
    rows = {}
    for (t,) in con.execute("select table_name from duckdb_tables() where database_name = current_database() "
                            "and not temporary").fetchall():
        for block, more in con.execute("select block_id, additional_block_ids from pragma_storage_info(?) "
                                       "where block_id >= 0", [t]).fetchall():
            live.add(block)
            live.update(more or ())
        rows[t] = con.execute(f'select count(*) from "{t}"').fetchone()[0]
    if len(live) != used or not all(0 <= b < total for b in live):
        raise RuntimeError(f"DuckDB names {len(live)} blocks in use (metadata and tables' segments) of the "
                           f"{used} it counts in use: the file cannot be scrubbed without losing one")
    return block_size, total, live, rows


def _scrubbed(bridge: Path) -> Path:
    """The new file a purge (or a compaction) serves after ``bridge``: the bridge's headers and the blocks it uses,
    where they are; every other block a hole (zeros, no disk), the tail ``_keep_served_blocks`` put back cut off.

    A new file cannot be a copy of the served one (its free blocks still hold what was dropped: an erased
    customer's rows), and a file built afresh cannot be read through the served file's header. So the copy
    (the bridge, readable through the served header) is served first, for ``BRIDGE_SECONDS``, then this one,
    readable through the bridge's header: same live blocks, same header. The blocks in use are DuckDB's own
    account (``pragma_metadata_info``, ``pragma_storage_info``), checked against its count of blocks in use
    (``_live_blocks``), then the result is opened and its account and row counts compared with the bridge's,
    so a block in use lost by mistake fails the publish rather than serve a broken file (the publish's
    tests read every table of it)."""
    out = _scrubbed_path(bridge)
    out.unlink(missing_ok=True)
    with duckdb.connect(str(bridge), read_only=True) as con:
        block_size, total, live, rows = _live_blocks(con)
    with bridge.open("rb") as src, out.open("wb") as dst:  # the headers and the live blocks; the rest, holes
        dst.write(src.read(_BLOCK_START))
        for block in sorted(live):
            src.seek(_BLOCK_START + block * block_size)
            dst.seek(_BLOCK_START + block * block_size)
            dst.write(src.read(block_size))
        dst.truncate(_BLOCK_START + total * block_size)
    try:
        with duckdb.connect(str(out), read_only=True) as con:
            again = _live_blocks(con)
    except duckdb.Error as exc:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"{out}: the served file with its free blocks zeroed does not open ({exc}); "
                           "BI still reads the previous publication") from exc
    if again != (block_size, total, live, rows):
        out.unlink(missing_ok=True)
        raise RuntimeError(f"{out}: the served file with its free blocks zeroed reads otherwise than before "
                           "(a block in use was taken for free); BI still reads the previous publication")
    return out


def _plan(warehouse: Path, serving: Path, target: Path) -> _Served:
    """What of the served publication the next publish reuses: the tables whose fingerprint in
    ``cx.duckdb`` (their comment) is the one in the footer of their served Parquet file, unless a full
    publish is due (module docstring). Also marks earlier versions for purging (``_keys_changed``)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        if target.exists():
            con.execute(f"attach '{target}' as served (read_only)")
        key_fingerprint = _keys_changed(con, serving, target.exists())
        if not target.exists() or not _has_table(con, "served", "_publication"):
            return _Served("nothing published yet", {}, None, key_fingerprint)
        comments = dict(con.execute(
            "select p.table_name, t.comment from served._publication p join duckdb_tables() t "
            "on t.database_name = 'served' and t.table_name = p.table_name where p.row_count is not null").fetchall())
        fingerprints = {t: c.removeprefix(FINGERPRINT_KEY + "=") for t, c in comments.items()
                        if (c or "").startswith(FINGERPRINT_KEY + "=")}
        if not fingerprints:
            return _Served("the served publication has no fingerprints (an older format)", {}, None, key_fingerprint)
        if any(not f.startswith(FINGERPRINT_VERSION + "-") for f in fingerprints.values()):
            return _Served(f"the served publication has fingerprints of another version than {FINGERPRINT_VERSION}",
                           {}, None, key_fingerprint)
        # a new file, but the unchanged tables are still reused (copied from the served file into the new one, their
        # Parquet files hard-linked): equal fingerprints, equal rows, so they hold no row the warehouse does not
        new_file = None
        if (serving / PURGE_MARKER).exists():
            why = (serving / PURGE_MARKER).read_text(encoding="utf-8")
            new_file = f"earlier Parquet versions are purged: {why}"
        else:
            # free blocks a new file left as holes take no disk (``_scrubbed``): what is weighed is the disk taken
            size, used = con.execute("select block_size, used_blocks from pragma_database_size() "
                                     "where database_name = 'served'").fetchone()
            taken, live = target.stat().st_blocks * 512, _BLOCK_START + used * size
            if taken - live > FULL_REWRITE_FREE_SHARE * taken:
                new_file = (f"the served file takes {taken / 2**20:.1f} MiB of disk for "
                            f"{live / 2**20:.1f} MiB of blocks in use")
        parquet = (serving / "parquet").resolve()
        files = [str(parquet / (t + ".parquet")) for t in fingerprints if (parquet / (t + ".parquet")).is_file()]
        try:
            footers = {Path(f).stem: v.decode() for f, v in con.execute(
                "select file_name, value from parquet_kv_metadata(?) where key = ?",
                [files, FINGERPRINT_KEY.encode()]).fetchall()} if files else {}
        except duckdb.Error:  # a served Parquet file unreadable: nothing reused, every table copied again
            footers = {}
        return _Served(new_file, {t: f for t, f in fingerprints.items() if footers.get(t) == f}, parquet,
                       key_fingerprint)
    finally:
        con.close()


def _drop_all_but(con: duckdb.DuckDBPyConnection, keep: set[str]) -> None:
    """In a copy of the served file: drop every view and every table but ``keep`` (``_publication`` and
    ``data_health`` too: written anew). Not checkpointed: their blocks stay as they are until the publish's one
    checkpoint (``_keep_served_blocks``)."""
    present = con.execute("select table_name, table_type from information_schema.tables "
                          "where table_catalog = current_database()").fetchall()
    for name, kind in present:
        if kind == "VIEW":
            con.execute(f'drop view "{name}"')
    for name, kind in present:
        if kind != "VIEW" and name not in keep:
            con.execute(f'drop table "{name}"')


# a stored view definition: CREATE VIEW <name> AS <query> (DuckDB renders every stored view this way)
_CREATE_VIEW = re.compile(r"^\s*create\s+(?:or\s+replace\s+)?view\s+.*?\s+as\s+", re.IGNORECASE | re.DOTALL)


def _served_view_sql(con: duckdb.DuckDBPyConnection, view: str, marts: set[str]) -> str | None:
    """The query of the warehouse's view ``marts.<view>`` rewritten to read the served relations, or
    None for a view that reads no warehouse relation (a window onto files: copied as a table). Raises
    for a view reading another schema or catalog, and for one DuckDB cannot render back."""
    (text,) = con.execute("select sql from duckdb_views() where database_name = 'wh' and schema_name = ? "
                          "and view_name = ?", [BI_SCHEMA, view]).fetchone()
    query = _CREATE_VIEW.sub("", text, count=1).rstrip().rstrip(";")
    tree = json.loads(con.execute("select json_serialize_sql(?)", [query]).fetchone()[0])
    if tree.get("error"):
        raise RuntimeError(f"{BI_SCHEMA}.{view}: DuckDB cannot parse its definition to serve it as a view: "
                           f"{tree.get('error_message')}")
    ctes: set[str] = set()
    refs: list[dict] = []
    columns: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                refs.append(node)
            elif node.get("class") == "COLUMN_REF":
                columns.append(node)
            for entry in (node.get("cte_map") or {}).get("map") or []:
                ctes.add(str(entry.get("key", "")).lower())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    relations = {m.lower() for m in marts}
    read = [r for r in refs if r.get("schema_name") or r.get("catalog_name") or r["table_name"].lower() not in ctes]
    if not read:
        return None
    for ref in read:
        catalog, schema, name = ref.get("catalog_name") or "", ref.get("schema_name") or "", ref["table_name"]
        if catalog.lower() not in ("", "wh") or schema.lower() not in ("", BI_SCHEMA) \
                or name.lower() not in relations:
            where = ".".join(p for p in (catalog, schema, name) if p)
            raise RuntimeError(f"{BI_SCHEMA}.{view} reads {where}, which is not published: a served view may "
                               f"read the {BI_SCHEMA} schema only")
        ref["catalog_name"], ref["schema_name"] = "", ""
        if "qualified_name" in ref:
            ref["qualified_name"] = {"path": [name]}
    # a column named with its schema (marts.t.c, wh.marts.t.c) keeps the table and column only
    for col in columns:
        names = col.get("column_names") or []
        while len(names) > 2 and names[0].lower() in ("wh", BI_SCHEMA):
            names.pop(0)
    return con.execute("select json_deserialize_sql(?)", [json.dumps(tree)]).fetchone()[0]


def _create_views(con: duckdb.DuckDBPyConnection, views: dict[str, str]) -> None:
    """Create the served views; a view over another view waits for it (a few passes, in name order)."""
    pending = dict(views)
    while pending:
        failed: dict[str, Exception] = {}
        for name, sql in sorted(pending.items()):
            try:
                con.execute(f'create view "{name}" as {sql}')
            except duckdb.CatalogException as exc:  # reads a view not created yet
                failed[name] = exc
        if len(failed) == len(pending):
            name, exc = next(iter(failed.items()))
            raise RuntimeError(f"{BI_SCHEMA}.{name} cannot be served as a view: {exc}") from exc
        pending = {n: pending[n] for n in failed}


def _write_small(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)


def _has_table(con: duckdb.DuckDBPyConnection, catalog: str, table: str, schema: str | None = None) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_catalog = ? "
                            "and table_name = ? and (? is null or table_schema = ?)",
                            [catalog, table, schema, schema]).fetchone()[0])


def _keys_changed(con: duckdb.DuckDBPyConnection, serving: Path, served: bool) -> str | None:
    """Mark earlier Parquet versions for purging (``PURGE_MARKER``) when this publication erases a
    customer the served copy did not show as erased, or comes from another key secret. Returns the
    key secret's fingerprint (None where the warehouse has no key map). ``con`` has the warehouse
    attached as ``wh`` and, when ``served``, the served file as ``served``."""
    fingerprints = [r[0] for r in con.execute(
        "select distinct key_fingerprint from wh.restricted.int_customer_key_map").fetchall()] \
        if _has_table(con, "wh", "int_customer_key_map", "restricted") else []
    fingerprint = fingerprints[0] if len(fingerprints) == 1 else None
    reasons = []
    stored = serving / KEYS_FILE
    if fingerprint and stored.exists() and stored.read_text(encoding="utf-8").strip() != fingerprint:
        reasons.append("the key secret changed")
    if served and _has_table(con, "wh", "dim_customer", BI_SCHEMA) and _has_table(con, "served", "dim_customer"):
        erased = con.execute(
            f"select count(*) from wh.{BI_SCHEMA}.dim_customer where is_erased and customer_key not in "
            "(select customer_key from served.dim_customer where is_erased)").fetchone()[0]
        if erased:
            reasons.append(f"{erased} customer(s) erased since the last publication")
    if reasons:
        _write_small(serving / PURGE_MARKER, "; ".join(reasons))
    return fingerprint


def _purge_earlier(serving: Path, current: Path) -> None:
    """Remove every Parquet version but ``current`` (see the module docstring), then the marker."""
    for old in (serving / "parquet_versions").iterdir():
        if old.is_dir() and old != current:
            shutil.rmtree(old, ignore_errors=True)
    _fsync(serving / "parquet_versions")
    (serving / PURGE_MARKER).unlink(missing_ok=True)


def served_as_of(serving: Path) -> dt.date | None:
    """The business date the served copy (``serving/cx.duckdb``) is as of; None when nothing, or nothing dated, is
    served. Read-only: a reader of the served file, as BI is."""
    target = serving / "cx.duckdb"
    if not target.exists():
        return None
    with duckdb.connect(str(target), read_only=True) as con:
        if not _has_table(con, "cx", "_publication"):
            return None
        found = con.execute("select max(as_of) from _publication").fetchone()[0]
    return dt.date.fromisoformat(found) if found else None


def publish_health(serving: Path, health: pl.DataFrame, now: dt.datetime | None = None) -> Path:
    """Serve a new ``data_health`` record and nothing else: the marts stay exactly as published.

    The served DuckDB file is copied, its ``data_health`` table replaced, and the copy renamed over
    the original; the Parquet version is a new folder of hard links to the current files plus the
    new ``data_health.parquet``. With nothing published yet, the served copy holds only the record.
    """
    with _locked(serving):
        now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
        target = serving / "cx.duckdb"
        current = serving / "parquet"
        with _staged(serving, now, "-health") as (tmp, parquet_dir):
            if current.exists():
                for f in current.resolve().iterdir():
                    if f.name != HEALTH_TABLE + ".parquet":
                        os.link(f, parquet_dir / f.name)
            if target.exists():
                _copy_sparse(target, tmp)
            con = duckdb.connect(str(tmp))
            try:
                _write_health(con, health, parquet_dir)
                con.execute("checkpoint")
            finally:
                con.close()
            _keep_served_blocks(tmp, target)
            crashpoint("publish_health.before_swap")
            _swap_in(tmp, target, serving)
        _swap_parquet(serving, parquet_dir)
        return target
