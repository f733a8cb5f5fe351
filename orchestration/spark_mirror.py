"""What Spark built, readable through ``warehouse.duckdb`` (``CX_ENGINE=spark``; docs/spark.md).

On Spark, dbt's tables are Parquet files under the Thrift server's warehouse directory
(``<schema>.db/<table>/part-*.parquet``, date-partitioned tables one folder per date). After each
build this module makes ``$CX_DATA_DIR/warehouse.duckdb`` a window onto them: one DuckDB view per
model and seed, in the model's schema, over its files. Everything after the build then reads what
Spark built, unchanged: the data-quality gates, the publish of the BI marts (Parquet and
``serving/cx.duckdb``) and ``cxw keys``; none of them reads a DuckDB-built table.

Views, not copies: the window costs nothing to refresh and always shows the files of the last build.
dbt's own views (``materialized='view'``, e.g. ``marts.mart_customer_profile_daily``) are not made
here: Spark keeps no files for them, and their SQL is Spark's. ``warehouse.spark_read_back`` creates
them in the window afterwards with ``dbt run`` on DuckDB (the same views a DuckDB build makes, over the
window's tables), so the publish serves them as views too (orchestration/publish.py).
tests/test_spark.py compares them with DuckDB's, and Spark's own through the Thrift server.
A model with a contract gets its columns in the contract's order (Spark puts partition columns last),
cast to the declared types, so BI sees the same tables as from DuckDB (a timestamp without time zone as its
UTC wall clock, whatever the zone of the session reading the view); other tables as Spark wrote them.
Framework-free: no Dagster import.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

# dbt resource types Spark materializes as tables
TABLE_TYPES = ("model", "seed")


class MirrorError(RuntimeError):
    """A table dbt built on Spark cannot be read back."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def spark_tables(manifest: Mapping[str, Any]) -> list[dict]:
    """The enabled models (not views or ephemerals) and seeds of the manifest, in a stable order."""
    nodes = [n for n in manifest["nodes"].values()
             if n.get("resource_type") in TABLE_TYPES and n.get("config", {}).get("enabled", True)
             and n.get("config", {}).get("materialized", "seed") not in ("ephemeral", "view")]
    return sorted(nodes, key=lambda n: (n["schema"], n.get("alias") or n["name"]))


def _select(node: Mapping[str, Any], files: str, partitioned: bool) -> str:
    source = f"read_parquet({_literal(files)}, hive_partitioning = {'true' if partitioned else 'false'})"
    columns = node.get("columns") or {}
    enforced = node.get("config", {}).get("contract", {}).get("enforced", False)
    if not (enforced and columns):  # the YAML may document only some columns: all of them, as Spark wrote them
        return f"select * from {source}"
    parts = [f"{_cast(_quote(name.lower()), column['data_type'])} as {_quote(name.lower())}"
             for name, column in columns.items()]
    return f"select {', '.join(parts)} from {source}"


# DuckDB's spellings of a timestamp without time zone (a contract's declared type)
WALL_CLOCK_TYPES = {"timestamp", "timestamp without time zone", "datetime"}


def _cast(column: str, data_type: str) -> str:
    """``column`` as the contract's ``data_type``. A timestamp without time zone is taken as the UTC wall
    clock of what Spark wrote: Spark (session zone UTC) writes every timestamp as a UTC-adjusted instant,
    which DuckDB reads as ``timestamp with time zone``, and a plain cast to ``timestamp`` would give the
    wall clock of the session reading the view: the machine's zone by default (2 h off in Paris in
    summer). ``epoch_us`` takes no time zone (macros/time.sql ``utc_wall_clock``), whatever the reader."""
    if " ".join(data_type.lower().split()) in WALL_CLOCK_TYPES:
        return f"make_timestamp(epoch_us({column}))"
    return f"cast({column} as {data_type})"


def _empty(node: Mapping[str, Any]) -> str | None:
    """An empty relation with the model's contract columns (Spark writes no file for an empty partitioned table)."""
    columns = node.get("columns") or {}
    enforced = node.get("config", {}).get("contract", {}).get("enforced", False)
    if not (enforced and columns):
        return None
    casts = ", ".join(f"cast(null as {c['data_type']}) as {_quote(n.lower())}" for n, c in columns.items())
    return f"select {casts} where false"


def refresh(warehouse: Path, spark_warehouse_dir: Path, manifest: Mapping[str, Any]) -> dict[str, int]:
    """Point ``warehouse`` (a DuckDB file) at the tables under ``spark_warehouse_dir``; returns the row
    count of each ``schema.table``. A model without files fails, naming it and the folder looked in."""
    spark_warehouse_dir = Path(spark_warehouse_dir)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(warehouse))
    try:
        existing = {(s, t): kind for s, t, kind in con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database()").fetchall()}
        for node in spark_tables(manifest):
            schema, table = node["schema"], node.get("alias") or node["name"]
            folder = spark_warehouse_dir / f"{schema}.db" / table.lower()
            files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
            if files:
                partitioned = any(p.parent != folder for p in files)
                query = _select(node, str(folder / ("**/*.parquet" if partitioned else "*.parquet")), partitioned)
            elif folder.is_dir() and (query := _empty(node)) is not None:
                pass
            else:
                raise MirrorError(f"{schema}.{table}: no Parquet files under {folder}: was it built on Spark "
                                  f"(`dbt build --target spark`)?")
            con.execute(f"create schema if not exists {_quote(schema)}")
            kind = existing.get((schema, table))
            if kind == "BASE TABLE":  # built on DuckDB before the engine changed: Spark's is the warehouse now
                con.execute(f"drop table {_quote(schema)}.{_quote(table)}")
            con.execute(f"create or replace view {_quote(schema)}.{_quote(table)} as {query}")
            counts[f"{schema}.{table}"] = con.execute(
                f"select count(*) from {_quote(schema)}.{_quote(table)}").fetchone()[0]
        con.execute("checkpoint")
    finally:
        con.close()
    return counts
