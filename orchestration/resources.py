"""Dagster resources: where the data lives."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from ingestion import settings
from ingestion.load import Zones


class CxData(dg.ConfigurableResource):
    """The data directory (default ``$CX_DATA_DIR``, else ``./data``). Check thresholds live in
    ``expectations/quality.toml`` (docs/data-quality.md)."""

    data_dir: str = ""

    def root(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else settings.data_dir()

    def zones(self) -> Zones:
        root = self.root()
        return Zones(landing=root / "landing", raw=root / "raw", quarantine=root / "quarantine")


class CxDbtCliResource(DbtCliResource):
    """dagster-dbt's ``DbtCliResource`` without the dbt adapter handle its ``cli()`` creates in this process
    before starting dbt (dagster-dbt 0.29: ``_initialize_dbt_core_adapter``). The handle serves only
    ``fetch_column_metadata`` and ``fetch_row_counts``, which the project does not use, and creating it
    imports dbt's config and loads the project and profile in the step's process, inside a bare ``except:``
    that logs and carries on: a SIGTERM (or Ctrl-C) arriving then was swallowed, and the night ran on and
    published (found by tests/reliability/test_crash.py, test_sigterm_stops_the_run_promptly). If a later
    dagster-dbt renames the method, tests/test_dbt_resource.py fails."""

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ANN202 - dagster-dbt's private signature
        return None

