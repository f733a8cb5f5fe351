"""A dbt-duckdb plugin that hands the key secret (ingestion/keys.py) to each DuckDB session.

The secret goes into the session variable ``cx_key_secret``, which the ``cx_pseudonym`` macro reads
with ``getvariable``: compiled SQL, dbt's logs and ``target/`` only ever hold the variable's name.
Configured in ``dbt_project/profiles.yml`` (``plugins``); imports neither Dagster nor dbt-core.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from ingestion.keys import load_secret

VARIABLE = "cx_key_secret"


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:  # noqa: ARG002 - nothing to configure
        self._secret = load_secret()

    def _set(self, con: Any) -> None:  # noqa: ANN401 - a DuckDB connection or dbt-duckdb's cursor wrapper
        con.execute(f"set variable {VARIABLE} = ?", [self._secret])

    def configure_connection(self, conn: Any) -> None:  # noqa: ANN401
        self._set(conn)

    def configure_cursor(self, cursor: Any) -> None:  # noqa: ANN401 - variables are per session (cursor)
        self._set(cursor)
