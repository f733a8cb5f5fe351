"""Health of one system's drop for one business date, judged while it is landed.

``drop_health(zones, system, day, load, error)`` returns the rows of the ingestion checks of
``expectations/registry.py``: the drop was delivered, accepted and not empty; every file reconciles
with its manifest (blocking); volumes and quarantined shares within what the entity's trailing
drops make normal (warnings, baselines learned from the load audit of this company).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from ingestion import contract as C
from ingestion.load import DropLoad, Zones, read_partition_counts

from . import anomaly
from .health import HealthRow, judged


def raw_asset(system: str, entity: str) -> str:
    return f"raw/{system}/{entity}"


_ATTEMPT_SCHEMA = {"business_date": pl.Date, "entity": pl.Utf8, "file": pl.Utf8, "manifest_rows": pl.Int64,
                   "quarantined": pl.Int64, "status": pl.Utf8}


def _latest_attempts(zones: Zones, system: str, days: Iterable[dt.date]) -> pl.DataFrame:
    """The latest attempt of each of the system's drops for ``days`` (one row per entity, with its status),
    from the load audit: one read of the audit files, whatever the caller then selects."""
    files = [f for day in days for f in sorted(zones.audit_dir(system, day).glob("*.parquet"))]
    if not files:
        return pl.DataFrame(schema=_ATTEMPT_SCHEMA)
    audit = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    latest = audit.filter(pl.col("loaded_at") == pl.col("loaded_at").max().over("business_date"))
    return latest.select(list(_ATTEMPT_SCHEMA))


def _trailing(attempts: pl.DataFrame, day: dt.date, days: int) -> pl.DataFrame:
    """The loaded drops among ``attempts`` of the ``days`` dates before ``day``, per entity."""
    return attempts.filter(pl.col("business_date").is_between(day - dt.timedelta(days=days),
                                                               day - dt.timedelta(days=1))
                           & (pl.col("status") == "loaded")
                           ).select("business_date", "entity", "manifest_rows", "quarantined")


def _history(zones: Zones, system: str, day: dt.date, days: int) -> pl.DataFrame:
    """The latest loaded attempt of each of the system's trailing drops (dates before ``day``), per entity."""
    window = [day - dt.timedelta(days=i) for i in range(1, days + 1)]
    return _trailing(_latest_attempts(zones, system, window), day, days)


def _loaded(attempts: pl.DataFrame, day: dt.date) -> pl.DataFrame | None:
    """``day``'s latest attempt among ``attempts``, if it loaded: entity, file, manifest_rows, quarantined."""
    latest = attempts.filter(pl.col("business_date") == day)
    if latest.is_empty() or latest.filter(pl.col("status") != "loaded").height:
        return None
    return latest.select("entity", "file", "manifest_rows", "quarantined").sort("entity")


# the checks judged against the trailing drops: a drop landed late changes them for the dates after it
BASELINE_CHECKS = ("drop_volume", "quarantine_rate")


def _baseline_rows(day: dt.date, system: str, entity: str, file: str, manifest_rows: int, quarantined: int,
                   history: pl.DataFrame, cfg: dict) -> list[HealthRow]:
    """drop_volume and quarantine_rate of one entity's drop, against the system's trailing drops."""
    subject = f"{system}.{entity}"
    asset = raw_asset(system, entity)
    rows: list[HealthRow] = []
    past = history.filter(pl.col("entity") == entity)
    series = {d: float(n) for d, n in zip(past["business_date"], past["manifest_rows"], strict=True)}
    verdict = anomaly.robust_band(day, float(manifest_rows), series, cfg["anomaly"], counts=True)
    if not verdict.has_baseline:
        rows.append(HealthRow(day, "drop_volume", asset, "no_baseline", subject=subject,
                              observed_value=manifest_rows, expected_range=verdict.expected()))
    else:
        rows.append(judged(
            day, "drop_volume", asset, not verdict.surprising, subject=subject, observed_value=manifest_rows,
            expected_range=verdict.expected(),
            message=None if not verdict.surprising else
            f"{file}: {manifest_rows} records, usual {verdict.median:.0f} (robust z {verdict.robust_z:.1f})"))
    rate = quarantined / manifest_rows if manifest_rows else 0.0
    hist_rows = int(past["manifest_rows"].sum()) if past.height else 0
    hist_rate = int(past["quarantined"].sum()) / hist_rows if hist_rows >= 200 else None
    surprising, threshold = anomaly.quarantine_surprising(quarantined, manifest_rows, hist_rate, cfg["quarantine"])
    basis = f"historical share {hist_rate:.4f}" if hist_rate is not None else "prior share"
    rows.append(judged(
        day, "quarantine_rate", asset, not surprising, subject=subject, observed_value=rate,
        expected_range=f"Wilson lower bound <= {threshold:.4f} ({basis} + margin)",
        message=None if not surprising else
        f"{file}: {quarantined} of {manifest_rows} records quarantined ({rate:.2%}); "
        f"see quarantine/{system}/{entity}/business_date={day}"))
    return rows


def drop_counts(zones: Zones, system: str, day: dt.date) -> list[tuple]:
    """What a drop contributes to the baselines of the drops after it (nothing: not loaded)."""
    latest = _loaded(_latest_attempts(zones, system, [day]), day)
    return [] if latest is None else latest.select("entity", "manifest_rows", "quarantined").rows()


def rejudge_later(zones: Zones, system: str, day: dt.date, cfg: dict | None = None) -> dict[dt.date, list[HealthRow]]:
    """The baseline rows (``BASELINE_CHECKS``) of the system's loaded drops after ``day``, within the
    history window, judged again: call it when ``day``'s drop changed what their history holds (a drop
    delivered late, a corrected re-extract), so a date reads the same however its drops arrived."""
    cfg = cfg or anomaly.load_config()
    history_days = int(cfg["anomaly"]["history_days"])
    # every date a later drop's history can hold, read once
    attempts = _latest_attempts(zones, system, [day + dt.timedelta(days=i)
                                                for i in range(1 - history_days, history_days + 1)])
    out: dict[dt.date, list[HealthRow]] = {}
    for i in range(1, history_days + 1):
        later = day + dt.timedelta(days=i)
        latest = _loaded(attempts, later)
        if latest is None:
            continue
        history = _trailing(attempts, later, history_days)
        out[later] = [row for e in latest.iter_rows(named=True)
                      for row in _baseline_rows(later, system, e["entity"], e["file"], e["manifest_rows"],
                                                e["quarantined"], history, cfg)]
    return out


def drop_health(zones: Zones, system: str, day: dt.date, load: DropLoad | None, error: str | None = None,
                missing: bool = False, cfg: dict | None = None) -> list[HealthRow]:
    """Rows for a landed drop (``load``), a refused one (``error``) or one not delivered yet (``missing``)."""
    cfg = cfg or anomaly.load_config()
    entities = [e.name for e in C.entities_of(system)]
    if missing:
        return [HealthRow(day, "drop_delivered", raw_asset(system, e), "warn", subject=f"{system}.{e}",
                          observed_value=0, expected_range="a complete drop (with _manifest.json)",
                          message=f"no complete {system} drop for {day} when the night ran: {error}")
                for e in entities]
    if load is None:
        return [HealthRow(day, "drop_accepted", raw_asset(system, e), "fail", subject=f"{system}.{e}",
                          message=f"{system} drop for {day} refused: {error}") for e in entities]
    rows: list[HealthRow] = []
    total = sum(e.manifest_rows for e in load.entities)
    history = _history(zones, system, day, int(cfg["anomaly"]["history_days"]))
    for e in load.entities:
        subject = f"{system}.{e.entity}"
        asset = raw_asset(system, e.entity)
        rows.append(judged(day, "drop_delivered", asset, True, subject=subject, observed_value=1))
        rows.append(judged(day, "drop_accepted", asset, True, subject=subject))
        rows.append(judged(day, "drop_not_empty", asset, total > 0, subject=subject, observed_value=total,
                           expected_range="at least one record across the drop's files",
                           message=None if total else f"the {system} drop for {day} holds no record at all"))
        on_disk, quarantined = read_partition_counts(zones, system, e.entity, day)
        ok = on_disk + quarantined == e.manifest_rows
        rows.append(judged(day, "reconciles_with_manifest", asset, ok, subject=subject,
                           observed_value=on_disk + quarantined, expected_range=f"= {e.manifest_rows} (manifest)",
                           message=None if ok else f"{e.file}: {on_disk} loaded + {quarantined} quarantined "
                                                   f"<> {e.manifest_rows} in the manifest"))
        rows += _baseline_rows(day, system, e.entity, e.file, e.manifest_rows, e.quarantined, history, cfg)
    return rows


def is_missing(error_problem: str) -> bool:
    """Whether a refusal means the drop is not (completely) delivered yet, rather than broken."""
    return error_problem.startswith(("no drop delivered", "incomplete drop"))


