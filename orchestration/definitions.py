"""The Dagster code location of the CX warehouse (``dagster dev -m orchestration.definitions``)."""

from __future__ import annotations

import dagster as dg

from .assets.ingestion import ingest_assets
from .resources import CxData
from .sensors import landing_drop_sensor

ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.groups("raw"),
    description="Land every system's drop of one business date into the raw zone.",
)

defs = dg.Definitions(
    assets=ingest_assets,
    jobs=[ingest_job],
    sensors=[landing_drop_sensor],
    resources={"cx": CxData()},
)
