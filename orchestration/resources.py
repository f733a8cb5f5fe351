"""Dagster resources: where the data lives and the thresholds of the ingestion checks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ingestion import settings
from ingestion.load import Zones


class CxData(dg.ConfigurableResource):
    """The data directory (default ``$CX_DATA_DIR``, else ``./data``) and ingestion thresholds."""

    data_dir: str = ""
    # the quarantine-rate check warns above this share of a file's records
    quarantine_rate_warn: float = 0.02

    def root(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else settings.data_dir()

    def zones(self) -> Zones:
        root = self.root()
        return Zones(landing=root / "landing", raw=root / "raw", quarantine=root / "quarantine")
