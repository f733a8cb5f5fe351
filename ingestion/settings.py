"""Where the pipeline reads and writes: everything lives under ``$CX_DATA_DIR`` (default ``./data``)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CX_DATA_DIR"


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data")).resolve()


def landing_dir() -> Path:
    """Nightly drops as the source systems deliver them (see docs/landing-contract.md)."""
    return data_dir() / "landing"


def raw_dir() -> Path:
    """Typed, validated Parquet copies of every loaded file."""
    return data_dir() / "raw"


def quarantine_dir() -> Path:
    """Records that could not be loaded, with file, line, column and reason."""
    return data_dir() / "quarantine"


def warehouse_path() -> Path:
    """The live DuckDB warehouse (one writer at a time; BI never reads it)."""
    return data_dir() / "warehouse.duckdb"


def serving_dir() -> Path:
    """The published copy that BI tools read."""
    return data_dir() / "serving"


def ensure_layout() -> Path:
    """Create the data directory layout and return its root."""
    root = data_dir()
    for d in (landing_dir(), raw_dir(), quarantine_dir(), serving_dir()):
        d.mkdir(parents=True, exist_ok=True)
    return root


# DuckDB engine settings, one source for dbt's profile (same variables and defaults, see
# dbt_project/profiles.yml) and for the DuckDB connections the benchmarks open themselves.
# Defaults are tuned for the reference machine: 2 cores, 24 GiB.
DUCKDB_SETTINGS_ENV = {
    "threads": ("CX_DUCKDB_THREADS", "2"),
    "memory_limit": ("CX_DUCKDB_MEMORY_LIMIT", "12GB"),
    "preserve_insertion_order": ("CX_DUCKDB_PRESERVE_INSERTION_ORDER", "false"),
    "temp_directory": ("CX_DUCKDB_TEMP_DIRECTORY", None),
}


def duckdb_settings() -> dict[str, str]:
    """The DuckDB settings in force: each from its environment variable, else the default."""
    defaults = {"temp_directory": str(data_dir() / "duckdb_tmp")}
    return {key: os.environ.get(env, default if default is not None else defaults[key])
            for key, (env, default) in DUCKDB_SETTINGS_ENV.items()}
