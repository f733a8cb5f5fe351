"""What the reliability scenarios share: a company with one night published, `cxw` run as an operator
runs it (a separate process, the project's Dagster instance), and a comparison of everything BI
and the warehouse hold ("equal": the same rows per table, floats to 12 significant digits,
publication timestamps and run ids left out)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from ingestion.faults import CRASH_ENV
from orchestration.publish import KEEP_PARQUET_VERSIONS
from simulator import GeneratorConfig, generate

ROOT = Path(__file__).resolve().parents[2]
NIGHT_ONE = dt.date(2026, 10, 12)
NIGHT_TWO = NIGHT_ONE + dt.timedelta(days=1)
# columns that say when or by which run something happened, not what the numbers are
VOLATILE = {"published_at", "recorded_at", "run_id", "_loaded_at", "loaded_at", "duration_s"}
RUN_TIMEOUT = 900  # seconds: a run that hangs (the bug this suite guards against) fails the test


@dataclass
class Site:
    """A data directory and the Dagster instance (DAGSTER_HOME) that runs it."""

    data: Path
    home: Path

    def env(self, crash_at: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
        env.update(CX_DATA_DIR=str(self.data), DAGSTER_HOME=str(self.home), CX_SLOT_WAIT_SECONDS="120", **extra)
        if crash_at:
            env[CRASH_ENV] = crash_at
        return env

    def copy(self, dest: Path, home: Path | None = None) -> Site:
        """A copy under ``dest`` (its Dagster instance under ``home`` when given, e.g. off a small disk)."""
        dest.mkdir(parents=True, exist_ok=True)
        home = home or dest / "dagster_home"
        shutil.copytree(self.data, dest / "data", symlinks=True)
        shutil.copytree(self.home, home, symlinks=True)
        return Site(dest / "data", home)


def new_site(root: Path, customers: int = 300, days: int = 2, seed: int = 31) -> Site:
    site = Site(root / "data", root / "dagster_home")
    site.home.mkdir(parents=True)
    shutil.copyfile(ROOT / "dagster.yaml", site.home / "dagster.yaml")  # the project's pools and settings
    generate(GeneratorConfig(customers=customers, days=days, start=NIGHT_ONE, seed=seed), site.data / "landing")
    return site


def cxw(site: Site, *args: str, crash_at: str | None = None, timeout: float = RUN_TIMEOUT,
        **extra: str) -> subprocess.CompletedProcess:
    """``cxw <args>`` in its own process, as an operator or the scheduler runs it."""
    return subprocess.run([sys.executable, "-m", "orchestration.cli", *args], cwd=ROOT, env=site.env(crash_at, **extra),
                          capture_output=True, text=True, timeout=timeout)


def start_cxw(site: Site, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestration.cli", *args], cwd=ROOT, env=site.env(None, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _canonical(df: pl.DataFrame, root: Path) -> list[str]:
    df = df.drop([c for c in df.columns if c in VOLATILE])
    df = df.with_columns([pl.col(c).round_sig_figs(12) for c, t in df.schema.items() if t.is_float()])
    df = df.with_columns([pl.col(c).cast(pl.Utf8) for c, t in df.schema.items() if t.is_nested()])
    # the data directory's own path (e.g. in the Data Docs link) differs from site to site
    return df.sort(df.columns, nulls_last=True).write_csv().replace(str(root), "$CX_DATA_DIR").splitlines()


def _tables(db: Path, root: Path, schema: str | None = None) -> dict[str, list[str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        where = f"where table_schema = '{schema}'" if schema else "where table_schema = 'main'"
        names = [r[0] for r in con.execute(f"select table_name from information_schema.tables {where}").fetchall()]
        prefix = f"{schema}." if schema else ""
        return {n: _canonical(con.sql(f'select * from {prefix}"{n}"').pl(), root) for n in sorted(names)}


def contents(site: Site) -> dict[str, list[str]]:
    """Every table BI and the warehouse hold, canonical: the served DuckDB file, the served Parquet
    files, the warehouse's marts, and the raw and quarantine zones."""
    out: dict[str, list[str]] = {}
    serving = site.data / "serving"
    out.update({f"served:{k}": v for k, v in _tables(serving / "cx.duckdb", site.data).items()})
    for f in sorted((serving / "parquet").iterdir()):
        out[f"parquet:{f.stem}"] = _canonical(pl.read_parquet(f), site.data)
    out.update({f"warehouse:{k}": v for k, v in _tables(site.data / "warehouse.duckdb", site.data, "marts").items()})
    for zone in ("raw", "quarantine"):
        for f in sorted((site.data / zone).rglob("*.parquet")):
            rel = f.relative_to(site.data).as_posix()
            if "/_load_audit/" not in f"/{rel}":
                out[rel] = _canonical(pl.read_parquet(f), site.data)
    return out


def digest(tables: dict[str, list[str]]) -> dict[str, str]:
    return {k: hashlib.sha256("\n".join(v).encode()).hexdigest() for k, v in tables.items()}


def differing(reference: dict[str, list[str]], got: dict[str, list[str]]) -> list[str]:
    """The tables whose rows differ between ``reference`` and ``got`` (one missing on either side included)."""
    a, b = digest(reference), digest(got)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def rows_lost(reference: dict[str, list[str]], got: dict[str, list[str]]) -> int:
    """Rows of the reference missing from ``got`` (a missing table loses all its rows)."""
    lost = 0
    for table, rows in reference.items():
        lost += sum((Counter(rows) - Counter(got.get(table, []))).values())
    return lost


def leftovers(site: Site) -> list[str]:
    """Half-written things: temporary files of atomic writes, Parquet versions beyond those kept."""
    found = [p.relative_to(site.data).as_posix() for p in site.data.rglob("*")
             if p.name.endswith((".tmp", ".tmp.wal")) and "duckdb_tmp" not in p.parts]
    versions = site.data / "serving" / "parquet_versions"
    if versions.exists():
        kept = sorted(p.name for p in versions.iterdir())
        if len(kept) > KEEP_PARQUET_VERSIONS:
            found += [f"serving/parquet_versions/{n}" for n in kept]
        linked = (site.data / "serving" / "parquet").resolve().name
        if linked not in kept:
            found.append(f"serving/parquet -> {linked} (missing)")
    return found
