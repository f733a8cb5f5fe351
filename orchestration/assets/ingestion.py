"""Ingestion assets: one multi-asset per source system, one asset per entity, partitioned by business date.

Thin wiring around ``ingestion.load.load_drop``; the logic lives in ``ingestion/`` and the checks
in ``expectations/drops.py`` (declared, with their severity, in ``expectations/registry.py``).
Every landing writes its rows to the data-health record. A drop not delivered yet (no manifest)
is a warning: the night goes on without it and says so. A broken drop is refused: the step
fails, and the health record, served at once, names the file and the problem.
"""


import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg

from expectations import anomaly, health, registry
from expectations.drops import AuditHistory
from ingestion import contract as C
from ingestion import settings
from ingestion.manifest import DropRefused
from orchestration import night
from orchestration.publish import publish_health

from ..partitions import daily_partitions, window_days
from ..resources import CxData

RECONCILES = "reconciles_with_manifest"
QUARANTINE_RATE = "quarantine_rate"
# the checks reported on each raw asset (drop_accepted is the step's own success or failure)
DROP_CHECKS = [c for c in registry.by_engine(registry.INGESTION) if c.name != "drop_accepted"]
# the most business dates one run lands (a backfill of more is split into runs of this many, by `cxw
# backfill` and by Dagster's own backfills, BackfillPolicy below): a quarter of drops per run pays
# Dagster's per-run cost once, and keeps a run's event log and its retry after a crash bounded
MAX_DAYS_PER_RUN = 92


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


@dataclass
class _Landed:
    """What landing one system's drop of one business date produced: the facts of each asset's
    materialization (in the order a single-day run yields them), the health rows of each entity
    (None: no check result for it), the refusal of a broken drop, and whether a blocking check failed."""

    day: dt.date
    metadata: dict[dg.AssetKey, dict] = field(default_factory=dict)
    rows: dict[dg.AssetKey, list[health.HealthRow]] = field(default_factory=dict)
    refused: DropRefused | None = None
    blocks: bool = False


_day_listeners: list[Callable[[str, dt.date], None]] = []


@contextmanager
def on_day_landed(callback: Callable[[str, dt.date], None]) -> Iterator[None]:
    """Call ``callback(system, day)`` each time a drop has been landed (or refused) by a run executing
    in this process, e.g. ``cxw backfill``'s progress bar during a ranged run."""
    _day_listeners.append(callback)
    try:
        yield
    finally:
        _day_listeners.remove(callback)


def audit_history(cx: CxData, system: str, days: list[dt.date], cfg: dict) -> AuditHistory:
    """The load audit a run landing ``days`` judges with (``orchestration.night.audit_history``)."""
    return night.audit_history(cx.zones(), system, days, cfg)


def _landed(context: dg.AssetExecutionContext, cx: CxData, system: str, day: dt.date,
            landing: night.Landing) -> _Landed:
    """What the step reports of one date's landing (``night.land_range``): a refused drop is returned, not
    raised (the caller publishes and fails)."""
    zones = cx.zones()
    out = _Landed(day)
    rows, result = landing.rows, landing.load
    if landing.refused is not None:
        out.refused = landing.refused
        return out
    if landing.missing is not None:
        # not delivered yet: a warning; the night goes on with what the other systems delivered
        exc = landing.missing
        context.log.warning("%s drop for %s not delivered yet: %s", system, day, exc)
        for e in C.entities_of(system):
            key = raw_key(system, e.name)
            out.metadata[key] = {"drop": "not delivered", "problem": exc.problem, "rows_loaded": 0,
                                 "dagster/row_count": 0}
            out.rows[key] = [r for r in rows if r.subject == f"{system}.{e.name}"]
        if system in C.AUDITED_SYSTEMS:
            out.metadata[raw_key(system, C.LOAD_AUDIT)] = {"business_date": day.isoformat(), "drop": "not delivered"}
        return out
    later = landing.rejudged
    if later:
        context.log.info("%s drop of %s changed the baselines of %d later drops (%s .. %s): judged again",
                         system, day, len(later), min(later), max(later))
    out.blocks = any(r.blocks for r in rows)
    for e in result.entities:
        key = raw_key(system, e.entity)
        out.metadata[key] = {
            "rows_loaded": e.loaded, "rows_quarantined": e.quarantined, "manifest_rows": e.manifest_rows,
            "quarantine_rate": round(e.quarantine_rate, 6), "new_columns": ", ".join(e.new_columns) or "none",
            "source_file": e.file, "sha256": e.sha256, "extracted_at": str(result.extracted_at),
            "path": dg.MetadataValue.path(str(zones.data_file(system, e.entity, day))),
            "dagster/row_count": e.loaded,
        }
        out.rows[key] = [r for r in rows if r.subject == f"{system}.{e.entity}"]
    delivered = {e.entity for e in result.entities}
    for e in C.entities_of(system):
        if e.name not in delivered:  # a drop of an earlier contract version, before the entity existed
            key = raw_key(system, e.name)
            out.metadata[key] = {"drop": f"contract version {result.contract_version}: {e.filename} is not part of it",
                                 "rows_loaded": 0, "dagster/row_count": 0}
            out.rows[key] = []
    if system in C.AUDITED_SYSTEMS:
        out.metadata[raw_key(system, C.LOAD_AUDIT)] = {"business_date": day.isoformat(), "drop": "loaded"}
    if any(e.new_columns for e in result.entities):
        context.log.warning("schema drift in %s %s: %s", system, day, {
            e.entity: e.new_columns for e in result.entities if e.new_columns})
    return out


def _range_results(key: dg.AssetKey, days: list[_Landed]) -> Iterator[dg.AssetCheckResult]:
    """One check result per declared drop check for a ranged run (Dagster 1.13 takes one result per
    check and step, not per partition): passed only if it passed on every business date of the range;
    the description and the metadata name each date it did not pass on, with its message."""
    first, last = days[0].day.isoformat(), days[-1].day.isoformat()
    for c in DROP_CHECKS:
        statuses, failed = {}, {}
        for d in days:
            r = {x.check_name: x for x in d.rows.get(key, [])}.get(c.name)
            status = "not evaluated" if r is None else r.status
            statuses[d.day.isoformat()] = status
            if r is not None and r.status not in ("pass", "no_baseline"):
                failed[d.day.isoformat()] = {
                    "status": r.status, "message": r.message or "",
                    "observed": r.observed_value if r.observed_value is not None else "n/a",
                    "expected": r.expected_range or ""}
        n = len(days)
        description = (f"{c.name} did not pass on {len(failed)} of {n} business dates {first} .. {last}: "
                       + "; ".join(f"{day}: {f['message'] or f['status']}" for day, f in failed.items())
                       if failed else None)
        yield dg.AssetCheckResult(
            asset_key=key, check_name=c.name, passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR if c.severity == registry.BLOCKING else dg.AssetCheckSeverity.WARN,
            description=description,
            metadata={"business_dates": f"{first} .. {last}", "dates": n, "dates_not_passed": len(failed),
                      "not_passed": dg.MetadataValue.json(failed), "status_by_date": dg.MetadataValue.json(statuses)})


def _refusal(system: str, refused: list[_Landed]) -> dg.Failure:
    if len(refused) == 1:
        d = refused[0]
        return dg.Failure(description=f"{system} drop for {d.day.isoformat()} refused: {d.refused}",
                          metadata={"file": d.refused.path, "problem": d.refused.problem})
    return dg.Failure(
        description=f"{len(refused)} {system} drops refused: " + "; ".join(
            f"{d.day.isoformat()}: {d.refused}" for d in refused),
        metadata={"refused": dg.MetadataValue.json([
            {"system": system, "business_date": d.day.isoformat(), "file": d.refused.path,
             "problem": d.refused.problem} for d in refused])})


def build_ingest_assets(system: str) -> dg.AssetsDefinition:
    specs, checks = _specs(system)

    @dg.multi_asset(name=f"land_{system}", specs=specs, check_specs=checks, partitions_def=daily_partitions,
                    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
                    description=f"Land the {system} drop of one business date, or of each date of a backfill "
                                "range in date order, into the raw zone.")
    def _land(context: dg.AssetExecutionContext, cx: CxData) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult
                                                                          | dg.AssetMaterialization]:
        cfg = anomaly.load_config()
        days = window_days(context)
        audit = audit_history(cx, system, days, cfg)  # read once for the run, kept current as it lands
        landed = []
        # in date order: each drop is judged against the drops landed before it; a range's drops are landed by
        # worker processes at once (CX_INGEST_WORKERS), a single date's in this process
        for landing, day in zip(night.land_range(cx.root(), cx.zones(), system, days, cfg, audit,
                                                 run_id=context.run.run_id, workers=settings.ingest_workers()),
                                days, strict=True):
            landed.append(_landed(context, cx, system, day, landing))
            for listener in list(_day_listeners):
                listener(system, day)
        refused = [d for d in landed if d.refused is not None]
        if refused or any(d.blocks for d in landed):  # the step fails: serve the record now
            publish_health(cx.root() / "serving", health.read(cx.root()))
        if len(landed) == 1:  # one business date: what the nightly run, the sensor and `cxw ingest --date` see
            if refused:
                raise _refusal(system, refused) from refused[0].refused
            for key, meta in landed[0].metadata.items():
                yield dg.MaterializeResult(asset_key=key, metadata=meta)
                if key in landed[0].rows:
                    yield from _results(key, landed[0].rows[key])
            return
        ok = [d for d in landed if d.refused is None]
        if refused:
            # the step fails, naming every refused drop; the dates landed are recorded as materialized,
            # each with its own facts, and the refused ones are not
            for d in ok:
                for key, meta in d.metadata.items():
                    yield dg.AssetMaterialization(asset_key=key, partition=d.day.isoformat(), metadata=meta)
            for key in [s.key for s in specs]:
                if ok and any(key in d.rows for d in ok):
                    yield from _range_results(key, ok)
            raise _refusal(system, refused)
        # one materialization per asset and date, each with that date's facts, and one check result per
        # check summing up the range
        for key in [s.key for s in specs]:
            for d in ok:
                context.add_asset_metadata(d.metadata[key], asset_key=key, partition_key=d.day.isoformat())
            yield dg.MaterializeResult(asset_key=key)
            if any(key in d.rows for d in ok):
                yield from _range_results(key, ok)

    return _land


ingest_assets = [build_ingest_assets(s) for s in C.SYSTEMS]
raw_asset_keys = {s: [raw_key(s, e.name) for e in C.entities_of(s)] for s in C.SYSTEMS}
