"""Ingestion assets: one multi-asset per source system, one asset per entity, partitioned by business date.

Thin wiring around ``ingestion.load.load_drop``; the logic lives in ``ingestion/``.
"""


import datetime as dt
from collections.abc import Iterator

import dagster as dg

from ingestion import contract as C
from ingestion.load import load_drop, read_partition_counts
from ingestion.manifest import DropRefused

from ..partitions import daily_partitions
from ..resources import CxData

RECONCILES = "reconciles_with_manifest"
QUARANTINE_RATE = "quarantine_rate"


def raw_key(system: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", system, entity])


def _specs(system: str) -> tuple[list[dg.AssetSpec], list[dg.AssetCheckSpec]]:
    specs, checks = [], []
    for e in C.entities_of(system):
        key = raw_key(system, e.name)
        specs.append(dg.AssetSpec(
            key, group_name="raw", kinds={"polars", "parquet"}, owners=["team:data-platform"],
            tags={"system": system},
            description=f"Validated {system}.{e.name} records from the nightly drop ({e.filename}), typed, with "
                        "lineage columns; bad records go to the quarantine zone.",
            metadata={"landing_file": e.filename, "key": ", ".join(e.key),
                      "dagster/column_schema": dg.TableSchema(columns=[
                          dg.TableColumn(c.name, c.type, description=("nullable" if c.nullable else "required"))
                          for c in e.columns])},
        ))
        checks.append(dg.AssetCheckSpec(RECONCILES, asset=key, blocking=True,
                                        description="Rows in the raw and quarantine zones add up to the manifest's "
                                                    "row count for the file (read back from disk)."))
        checks.append(dg.AssetCheckSpec(QUARANTINE_RATE, asset=key,
                                        description="Share of the file's records quarantined stays below the "
                                                    "configured threshold (warning)."))
    return specs, checks


def build_ingest_assets(system: str) -> dg.AssetsDefinition:
    specs, checks = _specs(system)

    @dg.multi_asset(name=f"land_{system}", specs=specs, check_specs=checks, partitions_def=daily_partitions,
                    description=f"Land the {system} drop of one business date into the raw zone.")
    def _land(context: dg.AssetExecutionContext, cx: CxData) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        day = dt.date.fromisoformat(context.partition_key)
        zones = cx.zones()
        try:
            result = load_drop(zones, system, day)
        except DropRefused as exc:
            raise dg.Failure(description=f"{system} drop for {day.isoformat()} refused: {exc}",
                             metadata={"file": exc.path, "problem": exc.problem}) from exc
        for e in result.entities:
            key = raw_key(system, e.entity)
            yield dg.MaterializeResult(asset_key=key, metadata={
                "rows_loaded": e.loaded, "rows_quarantined": e.quarantined, "manifest_rows": e.manifest_rows,
                "quarantine_rate": round(e.quarantine_rate, 6), "new_columns": ", ".join(e.new_columns) or "none",
                "source_file": e.file, "sha256": e.sha256, "extracted_at": str(result.extracted_at),
                "path": dg.MetadataValue.path(str(zones.data_file(system, e.entity, day))),
                "dagster/row_count": e.loaded,
            })
            on_disk, quarantined = read_partition_counts(zones, system, e.entity, day)
            yield dg.AssetCheckResult(asset_key=key, check_name=RECONCILES,
                                      passed=on_disk + quarantined == e.manifest_rows,
                                      metadata={"loaded": on_disk, "quarantined": quarantined,
                                                "manifest_rows": e.manifest_rows})
            yield dg.AssetCheckResult(asset_key=key, check_name=QUARANTINE_RATE, severity=dg.AssetCheckSeverity.WARN,
                                      passed=e.quarantine_rate <= cx.quarantine_rate_warn,
                                      metadata={"quarantine_rate": round(e.quarantine_rate, 6),
                                                "threshold": cx.quarantine_rate_warn})
        if any(e.new_columns for e in result.entities):
            context.log.warning("schema drift in %s %s: %s", system, day, {
                e.entity: e.new_columns for e in result.entities if e.new_columns})

    return _land


ingest_assets = [build_ingest_assets(s) for s in C.SYSTEMS]
raw_asset_keys = {s: [raw_key(s, e.name) for e in C.entities_of(s)] for s in C.SYSTEMS}
