"""Ingestion assets: one multi-asset per source system, one asset per entity, partitioned by business date.

Thin wiring around ``ingestion.load.load_drop``; the logic lives in ``ingestion/`` and the checks
in ``expectations/drops.py`` (declared, with their severity, in ``expectations/registry.py``).
Every landing writes its rows to the data-health record. A drop not delivered yet (no manifest)
is a warning: the night goes on without it and says so. A broken drop is refused: the step
fails, and the health record, served at once, names the file and the problem.
"""


import datetime as dt
from collections.abc import Iterator

import dagster as dg

from expectations import health, registry
from expectations.drops import BASELINE_CHECKS, drop_counts, drop_health, is_missing, rejudge_later
from ingestion import contract as C
from ingestion.load import load_drop
from ingestion.manifest import DropRefused
from orchestration.publish import publish_health

from ..partitions import daily_partitions
from ..resources import CxData

RECONCILES = "reconciles_with_manifest"
QUARANTINE_RATE = "quarantine_rate"
# the checks reported on each raw asset (drop_accepted is the step's own success or failure)
DROP_CHECKS = [c for c in registry.by_engine(registry.INGESTION) if c.name != "drop_accepted"]


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
        for c in DROP_CHECKS:
            checks.append(dg.AssetCheckSpec(c.name, asset=key, blocking=c.severity == registry.BLOCKING,
                                            description=f"[{c.severity}] {c.rule}. Why {c.severity}: {c.why}."))
    if system in C.AUDITED_SYSTEMS:
        specs.append(dg.AssetSpec(
            raw_key(system, C.LOAD_AUDIT), group_name="raw", kinds={"polars", "parquet"},
            owners=["team:data-platform"], tags={"system": system},
            description=f"The load audit of the {system} drops: one row per file of each load attempt (status, rows, "
                        "sha256, when). The warehouse reads which drops delivered which entity from it (dbt source "
                        f"ingestion.{system}_load_audit)."))
    return specs, checks


def _audit_result(system: str, day: dt.date, status: str) -> Iterator[dg.MaterializeResult]:
    if system in C.AUDITED_SYSTEMS:
        yield dg.MaterializeResult(asset_key=raw_key(system, C.LOAD_AUDIT), metadata={
            "business_date": day.isoformat(), "drop": status})


def _results(key: dg.AssetKey, rows: list[health.HealthRow]) -> Iterator[dg.AssetCheckResult]:
    """One check result per declared drop check, from the entity's health rows."""
    by_name = {r.check_name: r for r in rows}
    for c in DROP_CHECKS:
        r = by_name.get(c.name)
        passed = r is None or r.status in ("pass", "no_baseline")
        yield dg.AssetCheckResult(
            asset_key=key, check_name=c.name, passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if c.severity == registry.BLOCKING else dg.AssetCheckSeverity.WARN,
            description=None if r is None else r.message,
            metadata={"status": "not evaluated" if r is None else r.status,
                      "observed": r.observed_value if r is not None and r.observed_value is not None else "n/a",
                      "expected": (r.expected_range or "") if r is not None else ""})


def build_ingest_assets(system: str) -> dg.AssetsDefinition:
    specs, checks = _specs(system)

    @dg.multi_asset(name=f"land_{system}", specs=specs, check_specs=checks, partitions_def=daily_partitions,
                    description=f"Land the {system} drop of one business date into the raw zone.")
    def _land(context: dg.AssetExecutionContext, cx: CxData) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        day = dt.date.fromisoformat(context.partition_key)
        zones = cx.zones()
        before = drop_counts(zones, system, day)
        try:
            result = load_drop(zones, system, day)
        except DropRefused as exc:
            if not is_missing(exc.problem):
                rows = drop_health(zones, system, day, None, error=str(exc))
                health.write(cx.root(), [day], f"ingest_{system}", rows, run_id=context.run.run_id)
                publish_health(cx.root() / "serving", health.read(cx.root()))
                raise dg.Failure(description=f"{system} drop for {day.isoformat()} refused: {exc}",
                                 metadata={"file": exc.path, "problem": exc.problem}) from exc
            # not delivered yet: a warning; the night goes on with what the other systems delivered
            context.log.warning("%s drop for %s not delivered yet: %s", system, day, exc)
            rows = drop_health(zones, system, day, None, error=str(exc), missing=True)
            health.write(cx.root(), [day], f"ingest_{system}", rows, run_id=context.run.run_id)
            for e in C.entities_of(system):
                key = raw_key(system, e.name)
                yield dg.MaterializeResult(asset_key=key, metadata={
                    "drop": "not delivered", "problem": exc.problem, "rows_loaded": 0, "dagster/row_count": 0})
                yield from _results(key, [r for r in rows if r.subject == f"{system}.{e.name}"])
            yield from _audit_result(system, day, "not delivered")
            return
        rows = drop_health(zones, system, day, result)
        health.write(cx.root(), [day], f"ingest_{system}", rows, run_id=context.run.run_id)
        if drop_counts(zones, system, day) != before:
            # a drop delivered late (or corrected): the drops after it were judged without it
            later = rejudge_later(zones, system, day)
            for other, other_rows in later.items():
                health.replace_checks(cx.root(), other, f"ingest_{system}", BASELINE_CHECKS, other_rows,
                                      run_id=context.run.run_id)
            if later:
                context.log.info("%s drop of %s changed the baselines of %d later drops (%s .. %s): judged again",
                                 system, day, len(later), min(later), max(later))
        if any(r.blocks for r in rows):  # the step fails on its blocking check: serve the record now
            publish_health(cx.root() / "serving", health.read(cx.root()))
        for e in result.entities:
            key = raw_key(system, e.entity)
            yield dg.MaterializeResult(asset_key=key, metadata={
                "rows_loaded": e.loaded, "rows_quarantined": e.quarantined, "manifest_rows": e.manifest_rows,
                "quarantine_rate": round(e.quarantine_rate, 6), "new_columns": ", ".join(e.new_columns) or "none",
                "source_file": e.file, "sha256": e.sha256, "extracted_at": str(result.extracted_at),
                "path": dg.MetadataValue.path(str(zones.data_file(system, e.entity, day))),
                "dagster/row_count": e.loaded,
            })
            yield from _results(key, [r for r in rows if r.subject == f"{system}.{e.entity}"])
        delivered = {e.entity for e in result.entities}
        for e in C.entities_of(system):
            if e.name not in delivered:  # a drop of an earlier contract version, before the entity existed
                yield dg.MaterializeResult(asset_key=raw_key(system, e.name), metadata={
                    "drop": f"contract version {result.contract_version}: {e.filename} is not part of it",
                    "rows_loaded": 0, "dagster/row_count": 0})
                yield from _results(raw_key(system, e.name), [])
        yield from _audit_result(system, day, "loaded")
        if any(e.new_columns for e in result.entities):
            context.log.warning("schema drift in %s %s: %s", system, day, {
                e.entity: e.new_columns for e in result.entities if e.new_columns})

    return _land


ingest_assets = [build_ingest_assets(s) for s in C.SYSTEMS]
raw_asset_keys = {s: [raw_key(s, e.name) for e in C.entities_of(s)] for s in C.SYSTEMS}
