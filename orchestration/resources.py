"""Dagster resources: where the data lives."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

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
