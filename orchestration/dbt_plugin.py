"""A dbt-duckdb plugin that prepares each DuckDB session dbt opens.

- The key secret (ingestion/keys.py) goes into the session variable ``cx_key_secret``, which the
  ``cx_pseudonym`` macro reads with ``getvariable``: compiled SQL, dbt's logs and ``target/`` only ever
  hold the variable's name.
- Each session's share of memory for query intermediates (hash tables, sorts): DuckDB's
  ``operator_memory_limit``, a per-session setting. ``memory_limit`` is one budget for the whole database,
  and dbt runs a model per thread, each in its own session: without a share, the first of two heavy models
  takes the whole budget for its hash tables and the second runs out of memory instead of spilling
  (scale L within 5 GB: ``fct_orders`` beside ``fct_invoices`` or ``fct_payments``; docs/benchmarks.md).
  ``CX_DUCKDB_OPERATOR_MEMORY_LIMIT`` (docs/settings.md): ``auto`` gives each of dbt's threads an equal
  share of :data:`AUTO_FRACTION` of the memory limit, a DuckDB size sets it, ``none`` leaves DuckDB's
  default (no share: a session may take the whole limit). The threads are the profile's, or those of
  ``dbt --threads N`` when the invocation overrides them (dbt-core's flags, read when dbt opens the database).
- The session's time zone, UTC (:data:`TIME_ZONE`), as Spark's sessions run (docs/spark.md). DuckDB's default is
  the machine's local zone, and what DuckDB computes from a TIMESTAMP WITH TIME ZONE without naming a zone
  follows it: dbt-duckdb's ``dateadd`` of days (a call-back's recovery window) and ``datediff`` (its casts to
  TIMESTAMP), a cast to a date, a comparison with a date. On a machine in Europe/Paris, hours across the change
  to summer time came out one hour off. The models name UTC where they mean it (macros/time.sql); this makes
  whatever does not the same on every machine.

Configured in ``dbt_project/profiles.yml`` (``plugins``); imports no Dagster, and of dbt-core only its flags.
"""

from __future__ import annotations

import re
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from ingestion.keys import load_secret

VARIABLE = "cx_key_secret"
TIME_ZONE = "UTC"
AUTO = "auto"
NONE = "none"
# of the memory limit, what the sessions' intermediates may hold together; the rest is for what DuckDB
# does not count as an operator's (table data being written, materialized results, the allocator's caches)
AUTO_FRACTION = 0.8
_UNITS = {"bytes": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


def size_bytes(text: str) -> int | None:
    """A DuckDB size as DuckDB writes or reads one ('4.6 GiB', '5GB', '512 bytes') in bytes; None if not one."""
    match = _SIZE.match(text or "")
    if not match or match.group(2).lower() not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def operator_share(setting: str, memory_limit: str, sessions: int) -> str | None:
    """The ``operator_memory_limit`` a session gets (a DuckDB size), or None to leave DuckDB's default.

    ``setting`` is ``CX_DUCKDB_OPERATOR_MEMORY_LIMIT``'s value, ``memory_limit`` DuckDB's limit as the
    session reports it, ``sessions`` dbt's threads. Raises ValueError naming the variable for a value that
    is none of ``auto``, ``none`` or a DuckDB size."""
    value = (setting or AUTO).strip()
    if value.lower() == NONE:
        return None
    if value.lower() != AUTO:
        if size_bytes(value) is None:
            raise ValueError(f"CX_DUCKDB_OPERATOR_MEMORY_LIMIT={setting!r}: not 'auto', 'none' or a DuckDB size "
                             "such as 2GB or 1500MiB (docs/settings.md)")
        return value
    limit = size_bytes(memory_limit)
    if limit is None:  # no limit DuckDB reports as a size: nothing to share
        return None
    return f"{int(limit * AUTO_FRACTION / max(1, sessions)) // 2**10}KiB"


def threads_override() -> int | None:
    """``dbt --threads N`` of the running invocation (dbt-core's flags), None when it does not override the
    profile's threads (or no dbt invocation runs: flags not set)."""
    try:
        from dbt.flags import get_flags
        return int(getattr(get_flags(), "THREADS", None) or 0) or None
    except Exception:  # noqa: BLE001 - outside an invocation dbt's flags may be unset or of another shape
        return None


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._secret = load_secret()
        self._setting = str(plugin_config.get("operator_memory_limit") or AUTO)
        # the profile's threads (CX_DBT_THREADS, handed as `sessions`), unless this invocation runs another number
        self._sessions = threads_override() or int(plugin_config.get("sessions") or 1)
        operator_share(self._setting, "1GB", self._sessions)  # a malformed value fails before any model runs

    def _set(self, con: Any) -> None:  # noqa: ANN401 - a DuckDB connection or dbt-duckdb's cursor wrapper
        con.execute(f"set variable {VARIABLE} = ?", [self._secret])
        con.execute(f"set TimeZone = '{TIME_ZONE}'")
        limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
        share = operator_share(self._setting, str(limit), self._sessions)
        if share is not None:
            con.execute(f"set operator_memory_limit = '{share}'")

    def configure_connection(self, conn: Any) -> None:  # noqa: ANN401
        self._set(conn)

    def configure_cursor(self, cursor: Any) -> None:  # noqa: ANN401 - settings and variables are per session
        self._set(cursor)
