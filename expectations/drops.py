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
# what the latest-attempt rule needs besides: when each attempt was recorded, and in which audit file
_AUDIT_COLUMNS = [*_ATTEMPT_SCHEMA, "loaded_at"]


def _latest(audit: pl.DataFrame) -> pl.DataFrame:
    """The rows of each business date's latest attempt (the rows with its newest ``loaded_at``)."""
    latest = audit.filter(pl.col("loaded_at") == pl.col("loaded_at").max().over("business_date"))
    return latest.select(list(_ATTEMPT_SCHEMA))


def _latest_attempts(zones: Zones, system: str, days: Iterable[dt.date]) -> pl.DataFrame:
    """The latest attempt of each of the system's drops for ``days`` (one row per entity, with its status),
    from the load audit: one read of the audit files, whatever the caller then selects."""
    files = [f for day in days for f in sorted(zones.audit_dir(system, day).glob("*.parquet"))]
    if not files:
        return pl.DataFrame(schema=_ATTEMPT_SCHEMA)
    return _latest(pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed"))


# one entity's row of a drop's latest attempt: entity, file, manifest_rows, quarantined, status
Attempt = tuple[str, str, int, int, str]


def _by_date(attempts: pl.DataFrame) -> dict[dt.date, list[Attempt]]:
    """The rows of latest attempts (``_latest``) by business date, in the frame's order."""
    out: dict[dt.date, list[Attempt]] = {}
    for day, *row in attempts.select("business_date", "entity", "file", "manifest_rows", "quarantined",
                                     "status").iter_rows():
        out.setdefault(day, []).append(tuple(row))
    return out


class AuditHistory:
    """The load audit of one system's drops for the business dates ``first`` .. ``last``, read once and
    kept current in memory: give ``record`` to ``load_drop`` as its ``on_audit``, and each attempt it
    audits replaces, here, the same audit file's rows, exactly as on disk. A run that lands many dates
    of one system (a backfill range) then judges each date's volumes against its trailing drops, and
    the later drops against it, without reading 56 dates of audit per date.

    Held by date and audit file, with each date's latest attempt kept until that date's audit changes:
    judging a date reads its 56 trailing dates' attempts from here, not a filter over everything held.

    Only valid while nothing else writes this system's audit for these dates (the writer lock: one
    writing run at a time; each system's drops are landed by one step)."""

    def __init__(self, zones: Zones, system: str, first: dt.date, last: dt.date) -> None:
        self.system, self.first, self.last = system, first, last
        self._files: dict[dt.date, dict[str, pl.DataFrame]] = {}  # business date -> audit file -> its rows
        self._latest: dict[dt.date, list[Attempt]] = {}  # each date's latest attempt, until its audit changes
        for i in range((last - first).days + 1):
            folder = zones.audit_dir(system, first + dt.timedelta(days=i))
            for f in sorted(folder.glob("*.parquet")):
                self._hold(f.name, pl.read_parquet(f))

    def _hold(self, name: str, audit: pl.DataFrame) -> None:
        rows = audit.select(_AUDIT_COLUMNS)
        for (day,), part in rows.partition_by("business_date", as_dict=True, maintain_order=True).items():
            self._files.setdefault(day, {}).pop(name, None)  # replaced: held after the date's other files
            self._files[day][name] = part
            self._latest.pop(day, None)  # another date's rows in the file (not what load_drop audits)

    def covers(self, first: dt.date, last: dt.date) -> bool:
        return self.first <= first and last <= self.last

    def record(self, system: str, day: dt.date, name: str, audit: pl.DataFrame) -> None:
        """An attempt was audited in ``name`` (rows ``audit``): it replaces that file's rows."""
        if system != self.system or not self.first <= day <= self.last:
            raise ValueError(f"audit of {system} {day} recorded in the history of {self.system} "
                             f"{self.first} .. {self.last}")
        self._files.setdefault(day, {}).pop(name, None)  # what the file held before, gone even if now empty
        self._latest.pop(day, None)
        self._hold(name, audit)

    def attempts(self, days: Iterable[dt.date]) -> dict[dt.date, list[Attempt]]:
        """The latest attempt of each of ``days`` held (dates without one left out), as ``_latest_attempts``
        reads it from disk."""
        out: dict[dt.date, list[Attempt]] = {}
        for day in days:
            latest = self._latest.get(day)
            if latest is None:
                files = self._files.get(day)
                frames = [f for f in files.values() if f.height] if files else []
                latest = self._latest[day] = _by_date(_latest(pl.concat(frames, how="vertical_relaxed"))).get(
                    day, []) if frames else []
            if latest:
                out[day] = latest
        return out


def _attempts(zones: Zones, system: str, days: list[dt.date],
              audit: AuditHistory | None) -> dict[dt.date, list[Attempt]]:
    """The latest attempts of ``days`` by date: from ``audit`` when it holds them all, else read from disk."""
    if audit is not None and audit.system == system and audit.covers(min(days), max(days)):
        return audit.attempts(days)
    return _by_date(_latest_attempts(zones, system, days))


# a drop's record in its entity's baseline: business date, manifest rows, rows quarantined
Past = tuple[dt.date, int, int]


def _trailing(attempts: dict[dt.date, list[Attempt]], day: dt.date, days: int) -> dict[str, list[Past]]:
    """The loaded drops among ``attempts`` of the ``days`` dates before ``day``, per entity."""
    out: dict[str, list[Past]] = {}
    for i in range(days, 0, -1):
        earlier = day - dt.timedelta(days=i)
        for entity, _file, manifest_rows, quarantined, status in attempts.get(earlier, ()):
            if status == "loaded":
                out.setdefault(entity, []).append((earlier, manifest_rows, quarantined))
    return out


def _history(zones: Zones, system: str, day: dt.date, days: int,
             audit: AuditHistory | None = None) -> dict[str, list[Past]]:
    """The latest loaded attempt of each of the system's trailing drops (dates before ``day``), per entity."""
    window = [day - dt.timedelta(days=i) for i in range(days, 0, -1)]
    return _trailing(_attempts(zones, system, window, audit), day, days)


def _loaded(attempts: dict[dt.date, list[Attempt]], day: dt.date) -> list[tuple[str, str, int, int]] | None:
    """``day``'s latest attempt among ``attempts``, if it loaded: (entity, file, manifest_rows, quarantined)
    per entity, by entity."""
    latest = attempts.get(day)
    if not latest or any(status is not None and status != "loaded" for *_, status in latest):
        return None
    return sorted(((entity, file, rows, quarantined) for entity, file, rows, quarantined, _s in latest),
                  key=lambda r: r[0])


# the checks judged against the trailing drops: a drop landed late changes them for the dates after it
BASELINE_CHECKS = ("drop_volume", "quarantine_rate")


def _baseline_rows(day: dt.date, system: str, entity: str, file: str, manifest_rows: int, quarantined: int,
                   past: list[Past], cfg: dict) -> list[HealthRow]:
    """drop_volume and quarantine_rate of one entity's drop, against its trailing drops (``past``)."""
    subject = f"{system}.{entity}"
    asset = raw_asset(system, entity)
    rows: list[HealthRow] = []
    series = {d: float(n) for d, n, _q in past}
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
    hist_rows = sum(n for _d, n, _q in past if n is not None)
    hist_quarantined = sum(q for _d, _n, q in past if q is not None)
    hist_rate = hist_quarantined / hist_rows if hist_rows >= 200 else None
    surprising, threshold = anomaly.quarantine_surprising(quarantined, manifest_rows, hist_rate, cfg["quarantine"])
    basis = f"historical share {hist_rate:.4f}" if hist_rate is not None else "prior share"
    rows.append(judged(
        day, "quarantine_rate", asset, not surprising, subject=subject, observed_value=rate,
        expected_range=f"Wilson lower bound <= {threshold:.4f} ({basis} + margin)",
        message=None if not surprising else
        f"{file}: {quarantined} of {manifest_rows} records quarantined ({rate:.2%}); "
        f"see quarantine/{system}/{entity}/business_date={day}"))
    return rows


def drop_counts(zones: Zones, system: str, day: dt.date, audit: AuditHistory | None = None) -> list[tuple]:
    """What a drop contributes to the baselines of the drops after it (nothing: not loaded)."""
    latest = _loaded(_attempts(zones, system, [day], audit), day)
    return [] if latest is None else [(entity, rows, quarantined) for entity, _f, rows, quarantined in latest]


def rejudge_later(zones: Zones, system: str, day: dt.date, cfg: dict | None = None,
                  audit: AuditHistory | None = None, after: dt.date | None = None) -> dict[dt.date, list[HealthRow]]:
    """The baseline rows (``BASELINE_CHECKS``) of the system's loaded drops after ``day``, within the
    history window, judged again: call it when ``day``'s drop changed what their history holds (a drop
    delivered late, a corrected re-extract), so a date reads the same however its drops arrived.
    ``after``: only the dates after it (those up to it are judged by the caller anyway)."""
    cfg = cfg or anomaly.load_config()
    history_days = int(cfg["anomaly"]["history_days"])
    # every date a later drop's history can hold, read once
    attempts = _attempts(zones, system, [day + dt.timedelta(days=i)
                                         for i in range(1 - history_days, history_days + 1)], audit)
    out: dict[dt.date, list[HealthRow]] = {}
    # the later dates with an attempt, in date order (the others have nothing to judge)
    first = max(day, after) if after is not None else day
    for later in sorted(d for d in attempts if first < d <= day + dt.timedelta(days=history_days)):
        latest = _loaded(attempts, later)
        if latest is None:
            continue
        history = _trailing(attempts, later, history_days)
        out[later] = [row for entity, file, rows, quarantined in latest
                      for row in _baseline_rows(later, system, entity, file, rows, quarantined,
                                                history.get(entity, []), cfg)]
    return out


def drop_health(zones: Zones, system: str, day: dt.date, load: DropLoad | None, error: str | None = None,
                missing: bool = False, cfg: dict | None = None, audit: AuditHistory | None = None) -> list[HealthRow]:
    """Rows for a landed drop (``load``), a refused one (``error``) or one not delivered yet (``missing``);
    ``audit``: the system's load audit held in memory (read from disk without it)."""
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
    history = _history(zones, system, day, int(cfg["anomaly"]["history_days"]), audit)
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
        rows += _baseline_rows(day, system, e.entity, e.file, e.manifest_rows, e.quarantined,
                               history.get(e.entity, []), cfg)
    return rows


def is_missing(error_problem: str) -> bool:
    """Whether a refusal means the drop is not (completely) delivered yet, rather than broken."""
    return error_problem.startswith(("no drop delivered", "incomplete drop"))


