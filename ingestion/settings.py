"""Every environment variable the project reads, in one frozen, typed settings object.

:data:`VARIABLES` declares each one: its name, type, default and meaning (``docs/settings.md`` is
generated from it: ``python -m ingestion.settings``; a test keeps the two equal). :class:`Settings`
holds their values, parsed and checked once: a malformed value (``CX_SLOT_WAIT_SECONDS=soon``) fails
where the settings are first read, naming the variable. No other module of ``ingestion``,
``orchestration``, ``expectations``, ``simulator`` or ``benchmarks`` reads (or writes) the
environment: ``tests/test_layout.py`` parses them all to check.

Reading. :func:`current` returns the settings of this process's environment. It looks the declared
variables up (a dictionary lookup each) and returns the same object while they are unchanged, so a
process whose environment does not change builds its settings once, and a test that sets a
variable (``monkeypatch.setenv``) sees it at the next read, without a refresh call.
``Settings.from_env(mapping)`` builds settings from any mapping, bypassing the cache.

Everything the pipeline reads and writes lives under ``data_dir`` (``$CX_DATA_DIR``, default
``./data``): :func:`landing_dir`, :func:`raw_dir`, ... below.

dbt runs as a subprocess (or in-process through ``dbtRunner``) and reads ``CX_DATA_DIR`` and the
``CX_DUCKDB_*`` variables itself (``dbt_project/profiles.yml``, ``models/staging/_sources.yml``).
Whoever launches dbt sets them from these settings (:func:`dbt_env`, :func:`subprocess_env`,
:func:`exported`), so the defaults written in that YAML are never what decides for a run the
project starts; they only serve a bare ``dbt`` in ``dbt_project/``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "CX_DATA_DIR"
DEFAULT_SECRET_FILE = Path("~/.config/cx-warehouse/customer_key.secret")


class SettingsError(ValueError):
    """An environment variable holds a value its setting cannot take."""


# --- parsers: the raw string of a set, non-empty variable -> the typed value -----------------------

def _path(raw: str) -> Path:
    return Path(raw)


def _bounded(name: str, convert: Callable[[str], float], noun: str, minimum: float,
             too_small: str) -> Callable[[str], float]:
    """A number parser: ``convert`` it (else "is not <noun>"), at least ``minimum`` (else ``too_small``)."""
    def parse(raw: str) -> float:
        try:
            value = convert(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not {noun}") from None
        if value < minimum:
            raise SettingsError(f"{name}={raw!r} {too_small}")
        return value
    return parse


_seconds = _bounded("CX_SLOT_WAIT_SECONDS", float, "a number of seconds", 0, "is negative")


def _positive_int(name: str) -> Callable[[str], int]:
    return _bounded(name, int, "a whole number", 1, "must be at least 1")


def _bool(name: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={raw!r} is not true or false")
    return parse


def _date(name: str) -> Callable[[str], dt.date]:
    def parse(raw: str) -> dt.date:
        try:
            return dt.date.fromisoformat(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a date (YYYY-MM-DD)") from None
    return parse


def _choice(name: str, allowed: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise SettingsError(f"{name}={raw!r} is not one of {', '.join(allowed)}")
        return value
    return parse


def _names(raw: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _spark_conf(raw: str) -> tuple[tuple[str, str], ...]:
    """``spark.a=1 spark.b=x``: whitespace-separated Spark properties, in order (a value holds no space)."""
    pairs = []
    for token in raw.split():
        key, sep, value = token.partition("=")
        if not sep or not key.startswith("spark.") or key == "spark." or not value:
            raise SettingsError(f"CX_SPARK_CONF={raw!r}: {token!r} is not a Spark property as key=value "
                                f"(e.g. spark.sql.adaptive.enabled=true)")
        pairs.append((key, value))
    return tuple(pairs)


@dataclass(frozen=True)
class Variable:
    """One environment variable: the declaration the settings object and docs/settings.md follow."""

    name: str
    attr: str | None  # the Settings field that holds it; None: only dbt reads it
    type: str  # as documented
    default: str | None  # as documented; None: unset (the setting is off / absent)
    doc: str
    parse: Callable[[str], Any] = str
    value_default: Any = None  # the typed value when the variable is unset or empty
    read_by: str = "cxw, Dagster"
    dbt_default: str | None = None  # the default dbt's YAML falls back to, when dbt reads it too
    secret: bool = False  # never in a repr


VARIABLES: tuple[Variable, ...] = (
    Variable("CX_DATA_DIR", "data_dir", "path", "`./data`",
             "The data directory: landing drops, raw zone, quarantine, the live DuckDB warehouse, the served "
             "copy BI reads, health records, alerts, the writer lock. Relative paths are resolved against the "
             "working directory.",
             parse=_path, value_default=Path("data"), read_by="cxw, Dagster, dbt", dbt_default="../data"),
    Variable("CX_DBT_THREADS", "dbt_threads", "int", "`2`",
             "dbt's threads on DuckDB: models and tests built at once (the profile's `threads`). Each runs in its "
             "own session of the one warehouse, with its share of memory (`CX_DUCKDB_OPERATOR_MEMORY_LIMIT`). "
             "`1` builds one node at a time: the way out of an out-of-memory failure on a small machine, at a "
             "modest cost in time (the full build at M: 79 s against 71 s, peak RSS 2.4 against 2.7 GiB; "
             "benchmarks/RESULTS.md). More than the cores does not pay: a night at M is bound by the two cores' "
             "work. A change makes dbt parse the whole project again once (~5 s at M). "
             "`dbt --threads N` overrides it for one call.",
             parse=_positive_int("CX_DBT_THREADS"), value_default=2, read_by="cxw, Dagster, dbt",
             dbt_default="2"),
    Variable("CX_DUCKDB_THREADS", "duckdb_threads", "int", "`2`",
             "DuckDB threads, for dbt's sessions and the project's own connections (publish, analyses, GX gate, "
             "benchmarks; the reference machine has 2 cores).",
             parse=_positive_int("CX_DUCKDB_THREADS"), value_default=2, read_by="cxw, Dagster, dbt",
             dbt_default="2"),
    Variable("CX_DUCKDB_MEMORY_LIMIT", "duckdb_memory_limit", "DuckDB size", "`12GB`",
             "DuckDB's memory limit (half of the reference machine's 24 GiB; docs/benchmarks.md).",
             value_default="12GB", read_by="cxw, Dagster, dbt", dbt_default="12GB"),
    Variable("CX_DUCKDB_PRESERVE_INSERTION_ORDER", "duckdb_preserve_insertion_order", "bool", "`false`",
             "DuckDB's `preserve_insertion_order`: off lets large `create table as` and sorts stream; nothing "
             "built depends on insertion order.",
             parse=_bool("CX_DUCKDB_PRESERVE_INSERTION_ORDER"), value_default=False,
             read_by="cxw, Dagster, dbt", dbt_default="false"),
    Variable("CX_DUCKDB_TEMP_DIRECTORY", "duckdb_temp_directory", "path", "`$CX_DATA_DIR/duckdb_tmp`",
             "Where DuckDB spills: on the data disk, not `/tmp`.",
             parse=_path, read_by="cxw, Dagster, dbt", dbt_default="$CX_DATA_DIR/duckdb_tmp"),
    Variable("CX_DUCKDB_OPERATOR_MEMORY_LIMIT", None, "DuckDB size, `auto` or `none`", "`auto`",
             "Each dbt session's share of memory for hash tables and sorts (DuckDB's `operator_memory_limit`), "
             "so that two heavy models built at once spill instead of running out of memory: `auto` gives "
             "each of dbt's threads (`CX_DBT_THREADS`, or `dbt --threads N`'s) an equal share of 80 % of "
             "`CX_DUCKDB_MEMORY_LIMIT`, a size sets the share, "
             "`none` lets a session take the whole limit (`orchestration/dbt_plugin.py`; docs/benchmarks.md).",
             read_by="dbt's plugin", dbt_default="auto"),
    Variable("CX_INGEST_WORKERS", "ingest_workers", "int", "`2`",
             "Processes that land the drops of a range at once (`cxw ingest`/`cxw backfill` over several dates, "
             "Dagster's ranged backfills): each lands whole drops of one system, and each date is still judged "
             "in date order against the dates before it (`ingestion/pool.py`). `1` lands one drop after another "
             "in the run's own process. A single night's drops, and a range's under 64 MB, land in the run's "
             "own process. Each worker holds one drop in memory at a time (a few hundred MiB at M).",
             parse=_positive_int("CX_INGEST_WORKERS"), value_default=2),
    Variable("CX_KEY_SECRET", "key_secret", "secret", None,
             "The secret behind the pseudonymous keys, for secret managers that inject environment variables; "
             "wins over `CX_KEY_SECRET_FILE` (docs/privacy.md).",
             read_by="cxw, Dagster, dbt's plugin", secret=True),
    Variable("CX_KEY_SECRET_FILE", "key_secret_file", "path", "`~/.config/cx-warehouse/customer_key.secret`",
             "The file holding the key secret. The default file is created (mode 0600, a new random secret) on "
             "first use; a file named here that does not exist is an error (docs/privacy.md).",
             parse=_path, read_by="cxw, Dagster, dbt's plugin"),
    Variable("DBT_ENV_SECRET_CX_KEY", None, "secret", "empty",
             "The key secret for dbt's Spark target (`spark.cx.key_secret`). The project sets it from the "
             "secret for each dbt call on Spark; dbt scrubs `DBT_ENV_SECRET_` variables from its logs "
             "(docs/privacy.md).",
             read_by="dbt (Spark target)", dbt_default="", secret=True),
    Variable("CX_PARTITIONS_START", "partitions_start", "date", "`2024-01-01`",
             "The first business date a daily partition exists for; drops before it cannot be ingested. Read "
             "when Dagster's definitions are built (at import of `orchestration.partitions`).",
             parse=_date("CX_PARTITIONS_START"), value_default=dt.date(2024, 1, 1)),
    Variable("CX_NIGHTLY_CRON", "nightly_cron", "cron", "`0 2 * * *`",
             "When the nightly schedule runs (for yesterday's business date). Read when Dagster's definitions "
             "are built.",
             value_default="0 2 * * *", read_by="Dagster"),
    Variable("CX_NIGHTLY_TZ", "nightly_tz", "time zone", "`Europe/Paris`",
             "The time zone of `CX_NIGHTLY_CRON`. Read when Dagster's definitions are built.",
             value_default="Europe/Paris", read_by="Dagster"),
    Variable("CX_VERIFY_CRON", "verify_cron", "cron", "`0 4 * * 0`",
             "When the verification schedule runs every dbt data test over every row (Sundays at 04:00 in "
             "`CX_NIGHTLY_TZ`, after the night; docs/orchestration.md). A night's tests of the incremental models "
             "read only the rows the night wrote. Read when Dagster's definitions are built.",
             value_default="0 4 * * 0", read_by="Dagster"),
    Variable("CX_SLOT_WAIT_SECONDS", "slot_wait_seconds", "seconds", "`1800`",
             "How long a run waits for the data directory's writer lock or a Dagster pool slot held by another "
             "run before giving up, naming the holder (docs/reliability.md).",
             parse=_seconds, value_default=1800.0),
    Variable("CX_DBT_ASSET_CHECKS", "dbt_asset_checks", "bool", "`false`",
             "Every dbt data test as its own Dagster asset check. Off, the tests still run in the same `dbt build` "
             "and fail its step, and the data-health record holds their results (per generic test and model, naming "
             "each failing test); on, Dagster also stores three events per test (planned, output, evaluation), "
             "744 of a night's 1,153 for ours, about 10 % of a night's time on the SQLite instance, more under "
             "load (docs/orchestration.md). Read when Dagster's definitions are built.",
             parse=_bool("CX_DBT_ASSET_CHECKS"), value_default=False, read_by="Dagster"),
    Variable("CX_ALERT_WEBHOOK", "alert_webhook", "URL", None,
             "Where a failed run's alert is also POSTed (it is always appended to `$CX_DATA_DIR/alerts.log`); "
             "off when unset. Its path usually carries a credential: it is never logged.",
             read_by="Dagster", secret=True),
    Variable("CX_QUALITY_CONFIG", "quality_config", "path", None,
             "A TOML file whose values override `expectations/quality.toml` (check thresholds; "
             "docs/data-quality.md).",
             parse=_path),
    Variable("DAGSTER_HOME", "dagster_home", "path", None,
             "Dagster's instance directory (Dagster reads it itself). Set, `cxw` runs on that persistent "
             "instance; unset, on an ephemeral one. The Makefile sets `./.dagster_home`.",
             parse=_path, read_by="cxw, Dagster"),
    Variable("GX_ANALYTICS_ENABLED", "gx_analytics_enabled", "bool", "`false`",
             "Great Expectations' usage analytics (Great Expectations reads it itself); the quality gate sets "
             "it to false unless it is set.",
             parse=lambda raw: raw.strip().lower() not in ("0", "false", "no", "off"), value_default=False,
             read_by="Great Expectations"),
    Variable("CX_ENGINE", "engine", "duckdb | spark", "`duckdb`",
             "Where dbt builds the warehouse: DuckDB (`warehouse.duckdb`, the embedded default) or Spark over "
             "a Spark Thrift server (`CX_SPARK_HOST`, `CX_SPARK_PORT`; docs/spark.md).",
             parse=_choice("CX_ENGINE", ("duckdb", "spark")), value_default="duckdb"),
    Variable("CX_SPARK_HOST", "spark_host", "host", "`127.0.0.1`",
             "The Spark Thrift server dbt's `spark` target connects to (`cxw spark start` starts a local one; "
             "a cluster's is reached the same way, docs/spark.md).",
             value_default="127.0.0.1", read_by="cxw, Dagster, dbt", dbt_default="127.0.0.1"),
    Variable("CX_SPARK_PORT", "spark_port", "int", "`10000`",
             "The Spark Thrift server's port.",
             parse=_positive_int("CX_SPARK_PORT"), value_default=10000, read_by="cxw, Dagster, dbt",
             dbt_default="10000"),
    Variable("CX_SPARK_THREADS", "spark_threads", "int", "`4`",
             "dbt threads on Spark: statements in flight at once on the Thrift server. They wait on the server "
             "more than on this machine's CPU, so more than its cores pays (on 2 cores, 4 threads built the "
             "project in 282 s where 2 took 311 s; docs/spark.md); a cluster takes more.",
             parse=_positive_int("CX_SPARK_THREADS"), value_default=4, read_by="cxw, Dagster, dbt",
             dbt_default="4"),
    Variable("CX_SPARK_HOME", "spark_home", "path", "pyspark of `.venv-spark`",
             "The Spark distribution `cxw spark start` runs (`bin/spark-submit`); by default the one pyspark's "
             "wheel ships in `.venv-spark` (`make install`).",
             parse=_path),
    Variable("CX_SPARK_DRIVER_MEMORY", "spark_driver_memory", "JVM size", "`4g`",
             "The local Spark Thrift server's driver memory (`cxw spark start`, local mode: the driver does "
             "all the work).",
             value_default="4g"),
    Variable("CX_SPARK_WAREHOUSE_DIR", "spark_warehouse_dir", "path", "`$CX_DATA_DIR/spark/warehouse`",
             "Where the Spark tables dbt builds are stored (`spark.sql.warehouse.dir`): the local server writes "
             "them there, and the gates and the publish read them from there through `warehouse.duckdb`. For a "
             "cluster, a path this machine reads the cluster's warehouse at (docs/spark.md).",
             parse=_path),
    Variable("CX_SPARK_CONF", "spark_conf", "key=value ...", None,
             "Spark properties for the local Thrift server (`cxw spark start`), whitespace-separated, each passed "
             "as `--conf` after the project's own: e.g. `spark.sql.adaptive.enabled=true "
             "spark.sql.codegen.wholeStage=true` for windows much larger than a test's, where the defaults, "
             "planned for small windows, cost more than they save (docs/spark.md). The properties the build "
             "relies on (warehouse, time zone, Parquet timestamps and schema merging) cannot be overridden.",
             parse=_spark_conf, value_default=()),
    Variable("JAVA_HOME", "java_home", "path", None,
             "The Java runtime the local Spark Thrift server runs on (Java reads it itself); unset, the `java` on "
             "`PATH`.",
             parse=_path, read_by="cxw, Spark"),
    Variable("CX_CRASH_AT", "crash_at", "names", None,
             "Test-only: crash points (comma-separated) at which the process kills itself with SIGKILL "
             "(`ingestion/faults.py`, docs/reliability.md). Never set outside the reliability tests.",
             parse=_names, value_default=()),
)
BY_NAME = {v.name: v for v in VARIABLES}
_READ = tuple(v for v in VARIABLES if v.attr)  # what Settings holds (the others only dbt reads)
assert _READ[0].name == DATA_DIR_ENV


@dataclass(frozen=True)
class Settings:
    """The values of :data:`VARIABLES` (one field each, same order); see :func:`current`."""

    data_dir: Path
    dbt_threads: int
    duckdb_threads: int
    duckdb_memory_limit: str
    duckdb_preserve_insertion_order: bool
    duckdb_temp_directory: Path | None
    ingest_workers: int
    key_secret: str | None = field(repr=False)
    key_secret_file: Path | None
    partitions_start: dt.date
    nightly_cron: str
    nightly_tz: str
    verify_cron: str
    slot_wait_seconds: float
    dbt_asset_checks: bool
    alert_webhook: str | None = field(repr=False)
    quality_config: Path | None
    dagster_home: Path | None
    gx_analytics_enabled: bool
    engine: str
    spark_host: str
    spark_port: int
    spark_threads: int
    spark_home: Path | None
    spark_driver_memory: str
    spark_warehouse_dir: Path | None
    spark_conf: tuple[tuple[str, str], ...]
    java_home: Path | None
    crash_at: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: this process's environment) holds; unset or empty -> default."""
        environ = os.environ if environ is None else environ
        values = {}
        for var in _READ:
            raw = environ.get(var.name)
            values[var.attr] = var.parse(raw) if raw else var.value_default
        values["data_dir"] = Path(values["data_dir"]).resolve()
        return cls(**values)

    # (the key secret file's default, DEFAULT_SECRET_FILE, is applied by ingestion/keys.py: it depends on
    # the user's home, and the default file is created on first use while a named one is not)

    def duckdb_settings(self, data_dir: Path | None = None) -> dict[str, str]:
        """The DuckDB settings as DuckDB's ``SET`` and dbt's profile take them (temp directory under
        ``data_dir`` when given and not set explicitly)."""
        temp = self.duckdb_temp_directory or (Path(data_dir) if data_dir else self.data_dir) / "duckdb_tmp"
        return {"threads": str(self.duckdb_threads), "memory_limit": self.duckdb_memory_limit,
                "preserve_insertion_order": "true" if self.duckdb_preserve_insertion_order else "false",
                "temp_directory": str(temp)}


assert [f.name for f in fields(Settings)] == [v.attr for v in _READ], "Settings and VARIABLES differ"


@functools.lru_cache(maxsize=8)
def _built(snapshot: tuple[str | None, ...], cwd: str) -> Settings:  # noqa: ARG001 - cwd: a relative CX_DATA_DIR
    return Settings.from_env({var.name: raw for var, raw in zip(_READ, snapshot, strict=True) if raw is not None})


def current() -> Settings:
    """The settings of this process's environment: built once, rebuilt when a declared variable (or the
    working directory, which a relative ``CX_DATA_DIR`` depends on) changed since."""
    snapshot = tuple(os.environ.get(var.name) for var in _READ)
    data_dir = snapshot[0]  # CX_DATA_DIR: an absolute one does not depend on the working directory
    return _built(snapshot, "" if data_dir and os.path.isabs(data_dir) else os.getcwd())


def ingest_workers() -> int:
    """``CX_INGEST_WORKERS``: the processes that land a range's drops at once (ingestion/pool.py)."""
    return current().ingest_workers


def crash_at() -> tuple[str, ...]:
    """``CX_CRASH_AT``'s crash points (ingestion/faults.py asks at every crash point): one look-up in the
    environment while it is unset or empty, as it always is outside the reliability tests."""
    if not os.environ.get("CX_CRASH_AT"):
        return ()
    return current().crash_at


# --- the data directory layout ---------------------------------------------------------------------

def data_dir() -> Path:
    return current().data_dir


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


# --- DuckDB ----------------------------------------------------------------------------------------

# DuckDB engine settings, one source for dbt's profile (same variables and defaults, see
# dbt_project/profiles.yml) and for the DuckDB connections the benchmarks open themselves.
# Defaults are tuned for the reference machine: 2 cores, 24 GiB.
DUCKDB_SETTINGS_ENV = {
    "threads": ("CX_DUCKDB_THREADS", BY_NAME["CX_DUCKDB_THREADS"].dbt_default),
    "memory_limit": ("CX_DUCKDB_MEMORY_LIMIT", BY_NAME["CX_DUCKDB_MEMORY_LIMIT"].dbt_default),
    "preserve_insertion_order": ("CX_DUCKDB_PRESERVE_INSERTION_ORDER",
                                 BY_NAME["CX_DUCKDB_PRESERVE_INSERTION_ORDER"].dbt_default),
    "temp_directory": ("CX_DUCKDB_TEMP_DIRECTORY", None),
}


def duckdb_settings() -> dict[str, str]:
    """The DuckDB settings in force: each from its environment variable, else the default."""
    return current().duckdb_settings()


def apply_duckdb_settings(con: Any, data_dir: Path | None = None) -> None:
    """``SET`` the DuckDB settings in force on ``con`` (a ``duckdb`` connection), as dbt's profile sets them on its
    sessions: the project's own connections (the publish, the Python analyses, the GX gate) then keep the same memory
    limit and spill directory (under ``data_dir`` unless ``CX_DUCKDB_TEMP_DIRECTORY`` says otherwise), threads, and
    rows in any order where no ``order by`` asks for one. DuckDB's defaults would take 80 % of the machine's memory
    and spill under ``/tmp``, whatever ``CX_DUCKDB_MEMORY_LIMIT`` says."""
    for name, value in current().duckdb_settings(data_dir).items():
        quoted = value.replace("'", "''")  # a folder may hold a quote (/home/o'brien/data)
        con.execute(f"set {name} = '{quoted}'")


# --- the environment of what the project launches (dbt, cxw, benchmark stages) ---------------------

def dbt_env(data_dir: Path | None = None) -> dict[str, str]:
    """The variables dbt's YAML reads, set from these settings (``data_dir`` instead of ``CX_DATA_DIR``)."""
    s = current()
    root = Path(data_dir).resolve() if data_dir else s.data_dir
    duck = s.duckdb_settings(root)
    return {DATA_DIR_ENV: str(root), **{env: duck[key] for key, (env, _default) in DUCKDB_SETTINGS_ENV.items()},
            "CX_DBT_THREADS": str(s.dbt_threads), "CX_SPARK_HOST": s.spark_host,
            "CX_SPARK_PORT": str(s.spark_port), "CX_SPARK_THREADS": str(s.spark_threads)}


def subprocess_env(data_dir: Path | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """A copy of this process's environment for a child process, with :func:`dbt_env` set (and the
    variables named in ``drop`` left out)."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **dbt_env(data_dir)}


@contextmanager
def exported(data_dir: Path | None = None, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """:func:`dbt_env` (and ``extra``) in this process's environment for the block, then the environment
    as it was.

    For dbt run in this process (``dbtRunner``) and for dagster-dbt's ``DbtCliResource.cli``, which
    starts dbt with a copy of ``os.environ`` and takes no environment of its own (dagster-dbt 0.29).
    ``extra``: what only this dbt call reads (the Spark target's key secret, ``DBT_ENV_SECRET_CX_KEY``).
    """
    wanted = {**dbt_env(data_dir), **(extra or {})}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


DAGSTER_EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"  # read by Dagster in the process emitting the events


def batch_dagster_events(size: int) -> None:
    """Dagster hands its event log batches of events (a run's planned events, a ranged output's
    materializations) when ``DAGSTER_EVENT_BATCH_SIZE`` is above 0 in the process creating or executing a
    run: set to ``size`` unless already set (orchestration/event_log.py, which stores a batch at once)."""
    os.environ.setdefault(DAGSTER_EVENT_BATCH_ENV, str(size))


def quiet_libraries() -> None:
    """Great Expectations' usage analytics off unless ``GX_ANALYTICS_ENABLED`` is set (before GX is imported)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


# --- the docs table --------------------------------------------------------------------------------

def markdown_table() -> str:
    """The variable table as Markdown (docs/settings.md embeds it; a test keeps them equal)."""
    lines = ["| variable | type | default | read by | dbt's YAML default | meaning |",
             "|---|---|---|---|---|---|"]
    for v in VARIABLES:
        default = v.default if v.default is not None else "unset"
        dbt = "-" if v.dbt_default is None else (f"`{v.dbt_default}`" if v.dbt_default else "empty")
        lines.append(f"| `{v.name}` | {v.type} | {default} | {v.read_by} | {dbt} | {v.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
