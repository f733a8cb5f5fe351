"""The data-health record: one row per business date x check, written every night, blocked or not.

Each step that evaluates checks (landing a drop, the dbt build, the nightly gate) writes its rows
for the business dates it covered to ``$CX_DATA_DIR/health/business_date=D/<source>.parquet``,
replacing its previous rows for that date (a re-run replaces, never duplicates). The publish step
serves the union of all rows as ``data_health`` beside the marts (``serving/cx.duckdb`` and
``serving/parquet/``); on a blocked night only ``data_health`` changes in the served copy.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingestion.disk import DiskFull, is_disk_full
from ingestion.faults import crashpoint

from . import registry

# the declared schema of data_health (a test enforces it on the served table)
SCHEMA: dict[str, pl.DataType] = {
    "business_date": pl.Date,
    "check_name": pl.Utf8,
    "asset": pl.Utf8,
    "subject": pl.Utf8,  # what in the asset the row is about: a survey type, a system.entity, a dbt test
    "severity": pl.Utf8,  # blocking | warning (expectations/registry.py)
    "status": pl.Utf8,  # pass | fail (a blocking check failed) | warn (a warning fired) | no_baseline
    "observed_value": pl.Float64,
    "expected_range": pl.Utf8,
    "message": pl.Utf8,
    "docs_url": pl.Utf8,  # Great Expectations Data Docs, where GX produced the row
    "source": pl.Utf8,  # the step that wrote it: ingest_<system>, dbt, gate, dbt_verify (the weekly verification)
    "run_id": pl.Utf8,
    "recorded_at": pl.Datetime("us", "UTC"),
}
STATUSES = ("pass", "fail", "warn", "no_baseline")
HEALTH_DIR = "health"


@dataclass
class HealthRow:
    business_date: dt.date
    check_name: str
    asset: str
    status: str
    subject: str | None = None
    observed_value: float | None = None
    expected_range: str | None = None
    message: str | None = None
    docs_url: str | None = None

    @property
    def severity(self) -> str:
        return registry.check(self.check_name).severity

    @property
    def blocks(self) -> bool:
        return self.status == "fail" and self.severity == registry.BLOCKING


def judged(business_date: dt.date, check_name: str, asset: str, ok: bool, **kw) -> HealthRow:  # noqa: ANN003
    """A row whose status follows from the check's declared severity: pass, else fail or warn."""
    status = "pass" if ok else ("fail" if registry.is_blocking(check_name) else "warn")
    return HealthRow(business_date, check_name, asset, status, **kw)


def to_frame(rows: Iterable[HealthRow], source: str, run_id: str | None = None,
             now: dt.datetime | None = None) -> pl.DataFrame:
    now = now or dt.datetime.now(dt.UTC)
    records = []
    for r in rows:
        if r.status not in STATUSES:
            raise ValueError(f"{r.check_name}: unknown health status {r.status!r}")
        records.append({"business_date": r.business_date, "check_name": r.check_name, "asset": r.asset,
                        "subject": r.subject, "severity": r.severity, "status": r.status,
                        "observed_value": None if r.observed_value is None else float(r.observed_value),
                        "expected_range": r.expected_range, "message": r.message, "docs_url": r.docs_url,
                        "source": source, "run_id": run_id, "recorded_at": now})
    return pl.DataFrame(records, schema=SCHEMA)


def write(root: Path, dates: Iterable[dt.date], source: str, rows: Iterable[HealthRow],
          run_id: str | None = None) -> pl.DataFrame:
    """Replace ``source``'s rows for each of ``dates`` (a date without rows gets its old rows removed)."""
    frame = to_frame(rows, source, run_id)
    for day in sorted(set(dates) | set(frame["business_date"].to_list())):
        _write_frame(root, day, source, frame.filter(pl.col("business_date") == day))
    return frame


def _write_frame(root: Path, day: dt.date, source: str, part: pl.DataFrame) -> None:
    """Swap in ``source``'s rows of ``day`` atomically."""
    folder = Path(root) / HEALTH_DIR / f"business_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source}.parquet"
    tmp = folder / f".{source}.{os.getpid()}.tmp"
    try:
        part.write_parquet(tmp)
        crashpoint("health.inside_swap")
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFull(target, "the health record keeps its previous version") from exc
        raise


def replace_checks(root: Path, day: dt.date, source: str, checks: Iterable[str], rows: Iterable[HealthRow],
                   run_id: str | None = None) -> pl.DataFrame:
    """Replace only ``checks``' rows of ``source`` for ``day``, keeping its other rows (a judgment made
    again when a later delivery changed its baseline)."""
    checks = set(checks)
    new = to_frame(rows, source, run_id)
    if set(new["check_name"]) - checks or set(new["business_date"]) - {day}:
        raise ValueError(f"replace_checks({day}, {sorted(checks)}) got rows of other checks or dates")
    target = Path(root) / HEALTH_DIR / f"business_date={day.isoformat()}" / f"{source}.parquet"
    kept = pl.read_parquet(target).cast(SCHEMA) if target.exists() else pl.DataFrame(schema=SCHEMA)
    kept = kept.filter(~pl.col("check_name").is_in(sorted(checks)))
    frame = pl.concat([kept, new], how="vertical")
    _write_frame(root, day, source, frame)
    return frame


def drop_unpassed(root: Path, day: dt.date, source: str) -> bool:
    """Remove ``source``'s rows of ``day`` that did not pass (its passed rows stay); whether there were any."""
    path = Path(root) / HEALTH_DIR / f"business_date={day.isoformat()}" / f"{source}.parquet"
    if not path.exists():
        return False
    rows = pl.read_parquet(path)
    kept = rows.filter(pl.col("status") == "pass")
    if kept.height == rows.height:
        return False
    _write_frame(root, day, source, kept)
    return True


def judged_dates(root: Path, source: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The business dates in [start, end) that hold a record of ``source``."""
    base = Path(root) / HEALTH_DIR
    out = []
    for folder in sorted(base.glob("business_date=*")) if base.exists() else []:
        day = dt.date.fromisoformat(folder.name.split("=", 1)[1])
        if start <= day < end and (folder / f"{source}.parquet").exists():
            out.append(day)
    return out


def read(root: Path, dates: Iterable[dt.date] | None = None) -> pl.DataFrame:
    """Every recorded row (or those of ``dates``), sorted by date, severity (blocking first) and check."""
    base = Path(root) / HEALTH_DIR
    wanted = None if dates is None else {d.isoformat() for d in dates}
    files = []
    if base.exists():
        for folder in sorted(base.glob("business_date=*")):
            if wanted is None or folder.name.split("=", 1)[1] in wanted:
                files += sorted(folder.glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    frame = pl.concat([pl.read_parquet(f) for f in files], how="vertical").cast(SCHEMA)
    return frame.sort(["business_date", "severity", "check_name", "asset", "subject"], nulls_last=True)


def blocking_failures(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter((pl.col("severity") == registry.BLOCKING) & (pl.col("status") == "fail"))


def summary_line(frame: pl.DataFrame) -> str:
    """'3 blocking failures, 2 warnings, 41 passed' for a set of rows."""
    fails = blocking_failures(frame).height
    warns = frame.filter(pl.col("status") == "warn").height
    passed = frame.filter(pl.col("status") == "pass").height
    return f"{fails} blocking failure{'s' * (fails != 1)}, {warns} warning{'s' * (warns != 1)}, {passed} passed"
