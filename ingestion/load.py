"""Load one drop (one system, one business date) into the raw and quarantine zones.

Zones (Parquet, one file per entity and business date, see docs/ingestion.md, "Zones"):

    raw/<system>/<entity>/business_date=YYYY-MM-DD/data.parquet
    quarantine/<system>/<entity>/business_date=YYYY-MM-DD/quarantine.parquet
    raw/_load_audit/<system>/business_date=YYYY-MM-DD/<delivery>.parquet

The whole drop is read and validated before anything is written: a refused drop changes nothing
in the zones (only its audit entry is written). Each file is written to a temporary name, synced
and renamed over the previous version, so a re-run or a corrected re-extract replaces the
partition and a crash leaves the previous version readable.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from . import contract as C
from .comments import with_comment_tags
from .disk import DiskFull, is_disk_full
from .faults import crashpoint
from .manifest import DropRefused, Manifest, drop_folder, read_manifest, read_verified
from .readers import read_file
from .validate import TS_TYPE, validate

AUDIT_DIR = "_load_audit"
AUDIT_SCHEMA = {
    "system": pl.Utf8, "business_date": pl.Date, "extracted_at": TS_TYPE, "manifest_sha256": pl.Utf8,
    "entity": pl.Utf8, "file": pl.Utf8, "manifest_rows": pl.Int64, "loaded": pl.Int64, "quarantined": pl.Int64,
    "sha256": pl.Utf8, "status": pl.Utf8, "error": pl.Utf8, "new_columns": pl.Utf8, "duration_s": pl.Float64,
    "loaded_at": TS_TYPE,
}
QUARANTINE_SCHEMA = {
    "system": pl.Utf8, "entity": pl.Utf8, "business_date": pl.Date, "file": pl.Utf8, "line": pl.Int64,
    "column": pl.Utf8, "reason": pl.Utf8, "record": pl.Utf8, "_loaded_at": TS_TYPE,
}


@dataclass
class EntityLoad:
    entity: str
    file: str
    manifest_rows: int
    loaded: int
    quarantined: int
    sha256: str
    new_columns: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def quarantine_rate(self) -> float:
        return self.quarantined / self.manifest_rows if self.manifest_rows else 0.0

    @property
    def reconciles(self) -> bool:
        return self.loaded + self.quarantined == self.manifest_rows


@dataclass
class DropLoad:
    system: str
    business_date: dt.date
    status: str  # "loaded" or "refused"
    entities: list[EntityLoad]
    extracted_at: dt.datetime | None = None
    manifest_sha256: str | None = None
    error: str | None = None
    contract_version: int = C.CONTRACT_VERSION  # the drop's: its entities are those of this version

    def entity(self, name: str) -> EntityLoad:
        return next(e for e in self.entities if e.entity == name)


@dataclass(frozen=True)
class Zones:
    landing: Path
    raw: Path
    quarantine: Path

    def data_file(self, system: str, entity: str, day: dt.date) -> Path:
        return self.raw / system / entity / f"business_date={day.isoformat()}" / "data.parquet"

    def quarantine_file(self, system: str, entity: str, day: dt.date) -> Path:
        return self.quarantine / system / entity / f"business_date={day.isoformat()}" / "quarantine.parquet"

    def audit_dir(self, system: str, day: dt.date) -> Path:
        return self.raw / AUDIT_DIR / system / f"business_date={day.isoformat()}"


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, rename over ``path``, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        crashpoint("ingest.inside_swap")
        os.replace(tmp, path)
        crashpoint("ingest.after_swap")
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFull(path) from exc
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lineage(df: pl.DataFrame, source: str, manifest: Manifest, loaded_at: dt.datetime) -> pl.DataFrame:
    return df.with_columns(
        _source_file=pl.lit(source),
        _business_date=pl.lit(manifest.business_date, pl.Date),
        _extracted_at=pl.lit(manifest.extracted_at).cast(TS_TYPE),
        _loaded_at=pl.lit(loaded_at).cast(TS_TYPE),
    )


def _audit(zones: Zones, load: DropLoad, manifest_rows: dict[str, int], loaded_at: dt.datetime) -> None:
    rows = [{
        "system": load.system, "business_date": load.business_date, "extracted_at": load.extracted_at,
        "manifest_sha256": load.manifest_sha256, "entity": e.entity, "file": e.file,
        "manifest_rows": manifest_rows.get(e.entity, e.manifest_rows), "loaded": e.loaded,
        "quarantined": e.quarantined, "sha256": e.sha256, "status": load.status, "error": load.error,
        "new_columns": ",".join(e.new_columns) or None, "duration_s": round(e.duration_s, 4), "loaded_at": loaded_at,
    } for e in load.entities]
    name = (load.manifest_sha256 or "no-manifest")[:16]
    write_parquet_atomic(pl.DataFrame(rows, schema=AUDIT_SCHEMA), zones.audit_dir(load.system, load.business_date)
                         / f"{name}.parquet")


def load_drop(zones: Zones, system: str, business_date: dt.date,
              loaded_at: dt.datetime | None = None) -> DropLoad:
    """Verify, parse, validate and land one drop. Raises ``DropRefused`` (after auditing it) if refused."""
    loaded_at = loaded_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    crashpoint("ingest.before_load")
    folder = drop_folder(zones.landing, system, business_date)
    placeholder = [EntityLoad(e.name, f"{system}/{business_date.isoformat()}/{e.filename}", 0, 0, 0, "")
                   for e in C.entities_of(system)]
    manifest: Manifest | None = None
    staged: list[tuple[EntityLoad, pl.DataFrame, pl.DataFrame]] = []
    try:
        manifest = read_manifest(folder, system, business_date)
        for f in manifest.files:
            t0 = time.perf_counter()
            source = f.path.relative_to(zones.landing).as_posix()
            # the bytes parsed are the bytes hashed: read once, checked against the manifest's sha256 again
            data = read_verified(f)
            try:
                raw = read_file(f.entity, f.path, data)
                valid, quarantined = validate(raw)
            except (DropRefused, MemoryError):
                raise
            except Exception as exc:  # a hostile file the readers do not foresee: refuse it, by name, no traceback
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise DropRefused(f.path, f"internal error reading this file ({type(exc).__name__}: {first}); "
                                          "nothing from this drop was loaded: please report it") from exc
            del data
            n = valid.height + quarantined.height
            if n != f.rows:
                raise DropRefused(f.path, f"manifest says {f.rows} records, the file holds {n}")
            if (system, f.entity.name) == ("survey", "responses"):
                valid = with_comment_tags(valid)  # topics and tone of the comment (ingestion/comments.py)
            data = _lineage(valid, source, manifest, loaded_at)
            q = quarantined.select(
                system=pl.lit(system), entity=pl.lit(f.entity.name), business_date=pl.lit(business_date, pl.Date),
                file=pl.lit(source), line="line", column="column", reason="reason", record="record",
                _loaded_at=pl.lit(loaded_at).cast(TS_TYPE),
            ).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
            stats = EntityLoad(f.entity.name, source, f.rows, valid.height, quarantined.height, f.sha256,
                               raw.extra_columns, time.perf_counter() - t0)
            staged.append((stats, data, q))
        absent = [e for e in C.entities_of(system) if e.name not in {f.entity.name for f in manifest.files}]
    except DropRefused as exc:
        refused = DropLoad(system, business_date, "refused", placeholder,
                           manifest.extracted_at if manifest else None, manifest.digest if manifest else None,
                           str(exc))
        _audit(zones, refused, {}, loaded_at)
        raise
    assert manifest is not None
    for stats, data, q in staged:
        write_parquet_atomic(data, zones.data_file(system, stats.entity, business_date))
        write_parquet_atomic(q, zones.quarantine_file(system, stats.entity, business_date))
        crashpoint("ingest.between_entities")
    for e in absent:
        # an entity of a later contract version than the drop's: it lands as an empty partition, so the
        # models read every entity of the contract whatever version each drop was written in; the audit
        # lists only the drop's own entities (what was delivered: docs/landing-contract.md, versions)
        source = f"{system}/{business_date.isoformat()}/{e.filename}"
        header = (e.separator.join(e.column_names) + "\n").encode(e.encoding) if e.format != "jsonl" else b""
        valid, _ = validate(read_file(e, folder / e.filename, header))
        if (system, e.name) == ("survey", "responses"):
            valid = with_comment_tags(valid)
        write_parquet_atomic(_lineage(valid, source, manifest, loaded_at), zones.data_file(system, e.name,
                                                                                             business_date))
    crashpoint("ingest.before_audit")
    result = DropLoad(system, business_date, "loaded", [s for s, _, _ in staged], manifest.extracted_at,
                      manifest.digest, contract_version=manifest.contract_version)
    _audit(zones, result, {}, loaded_at)
    crashpoint("ingest.after_audit")
    return result


def read_partition_counts(zones: Zones, system: str, entity: str, day: dt.date) -> tuple[int, int]:
    """Rows now in the raw and quarantine zones for one entity and business date (read back from disk)."""
    def count(p: Path) -> int:
        return pl.scan_parquet(p).select(pl.len()).collect().item() if p.exists() else 0

    return count(zones.data_file(system, entity, day)), count(zones.quarantine_file(system, entity, day))


def read_audit(zones: Zones) -> pl.DataFrame:
    """Every load attempt recorded so far (empty frame with the audit schema if none)."""
    files = sorted((zones.raw / AUDIT_DIR).glob("*/business_date=*/*.parquet"))
    if not files:
        return pl.DataFrame(schema=AUDIT_SCHEMA)
    return pl.concat([pl.read_parquet(f) for f in files])


def latest_attempts(audit: pl.DataFrame, days: list[dt.date] | None = None) -> pl.DataFrame:
    """The most recent load attempt of each (system, business_date), one row per file."""
    if days is not None:
        audit = audit.filter(pl.col("business_date").is_in(days))
    last = pl.col("loaded_at") == pl.col("loaded_at").max().over("system", "business_date")
    return audit.filter(last)


def summarize_attempts(latest: pl.DataFrame, by: tuple[str, ...]) -> pl.DataFrame:
    """Drops, refusals, files and row counts per group; ``reconciled`` when nothing was refused and
    loaded + quarantined equals the manifest rows."""
    return latest.group_by(*by).agg(
        drops=pl.struct("system", "business_date").n_unique(),
        refused=(pl.col("status") == "refused").sum(),
        files=pl.len(),
        manifest_rows=pl.col("manifest_rows").sum(),
        loaded=pl.col("loaded").sum(),
        quarantined=pl.col("quarantined").sum(),
    ).with_columns(
        reconciled=(pl.col("refused") == 0) & (pl.col("loaded") + pl.col("quarantined") == pl.col("manifest_rows")),
    ).sort(*by)
