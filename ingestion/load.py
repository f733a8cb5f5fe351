"""Load one drop (one system, one business date) into the raw and quarantine zones.

Zones (Parquet, one file per entity and business date, see docs/ingestion.md, "Zones"):

    raw/<system>/<entity>/business_date=YYYY-MM-DD/data.parquet
    quarantine/<system>/<entity>/business_date=YYYY-MM-DD/quarantine.parquet   (only once a record was quarantined)
    raw/_load_audit/<system>/business_date=YYYY-MM-DD/<delivery>.parquet

The whole drop is read and validated before anything is written: a refused drop changes nothing in the
zones (only its audit entry is written). Each file is written to a temporary name, synced and renamed
over the previous version, so a re-run or a corrected re-extract replaces the partition and a crash
leaves the previous version readable. The files of a drop are written and synced as one batch before
any is renamed, and are durable before its audit entry is written. ``load_drop_range`` lands several
dates of a system: read and validated together, then landed one after another, each as above.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from . import contract as C
from .comments import with_comment_tags
from .disk import DiskFull, is_disk_full
from .disk import fsync as _fsync
from .faults import crashpoint
from .manifest import DropRefused, Manifest, ManifestFile, drop_folder, read_manifest
from .readers import RawFile, read_file
from .validate import TS_TYPE, validate, validate_many

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

# a file with nothing quarantined: written only over an earlier version of the partition (a re-run or a
# corrected re-extract whose earlier delivery quarantined records); a first landing without a bad record
# writes no quarantine file (no file: nothing quarantined, read_partition_counts)
EMPTY_QUARANTINE = pl.DataFrame(schema=QUARANTINE_SCHEMA)


@functools.cache
def _empty_quarantine_file() -> bytes:
    """``EMPTY_QUARANTINE``'s Parquet file, written once per process: most files quarantine nothing, and polars
    costs as much to write an empty frame as a small one (twice the cost of copying these bytes)."""
    buffer = io.BytesIO()
    EMPTY_QUARANTINE.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


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


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, rename over ``path``, fsync the folder."""
    write_parquet_files([[(df, path)]], entities=False)


_SYNC_THREADS = 8
_sync_pool: tuple[int, ThreadPoolExecutor] | None = None


def _syncs() -> ThreadPoolExecutor:
    """Threads that wait for fsyncs (the GIL is released while the disk works), one pool per process."""
    global _sync_pool
    if _sync_pool is None or _sync_pool[0] != os.getpid():
        _sync_pool = (os.getpid(), ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="fsync"))
    return _sync_pool[1]


class _SyncFailed(Exception):
    def __init__(self, path: Path) -> None:
        self.path = path


def _wait(syncs: list[tuple[Future, Path]]) -> None:
    """Wait for every fsync; then raise the first that failed (its error, from the target it was for)."""
    wait([f for f, _path in syncs])
    for f, path in syncs:
        if f.exception() is not None:
            raise f.exception() from _SyncFailed(path)


class _Batch:
    """Files written over their paths atomically, as one batch: each frame to a temporary name in its
    target's folder as soon as it is staged, fsynced in the background (while the caller goes on, e.g.
    reading and validating the drop's next file); ``commit`` waits for every fsync, renames each file
    over its target in the order staged, group by group (``end_group``), then fsyncs every folder
    (together); ``abort`` removes what was staged and not renamed. A crash leaves every target at its
    previous version or its new one, never a partial file; once ``commit`` returns, all of them are
    durable (what is recorded after them, the load audit, never runs ahead of the data). Errors name
    the target being written (``DiskFull``)."""

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []  # (temporary file, target), in the order staged
        self.ends: list[int] = []  # where each group of ``staged`` ends
        self.syncs: list[tuple[Future, Path]] = []
        self.renamed = 0
        self.target = Path()

    def stage(self, df: pl.DataFrame, path: Path) -> None:
        self.target = path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(path)
        self.staged.append((tmp, path))
        if df is EMPTY_QUARANTINE:
            tmp.write_bytes(_empty_quarantine_file())
        else:
            df.write_parquet(tmp, compression="zstd", statistics=True)
        self.syncs.append((_syncs().submit(_fsync, tmp), path))

    def end_group(self) -> None:
        """The files staged since the last group are one group (one entity of a drop)."""
        if len(self.staged) > (self.ends[-1] if self.ends else 0):
            self.ends.append(len(self.staged))

    def commit(self, entities: bool = True) -> None:
        """Rename every staged file once all are synced, group by group (each one entity of a drop when
        ``entities``), then fsync their folders."""
        self.end_group()
        _wait(self.syncs)
        crashpoint("ingest.inside_swap")
        start = 0
        for end in self.ends:
            for tmp, path in self.staged[start:end]:
                self.target = path
                os.replace(tmp, path)
                self.renamed += 1
                crashpoint("ingest.after_swap")
            if entities:
                crashpoint("ingest.between_entities")
            start = end
        folders = dict.fromkeys(p.parent for _tmp, p in self.staged)
        _wait([(_syncs().submit(_fsync, folder), folder) for folder in folders])

    def abort(self, exc: BaseException) -> BaseException:
        """Remove the files staged and not renamed; the error to raise for ``exc`` (a full disk named)."""
        wait([f for f, _path in self.syncs])  # no fsync left running on a file about to be removed
        for tmp, _path in self.staged[self.renamed:]:
            tmp.unlink(missing_ok=True)
        target = exc.__cause__.path if isinstance(exc.__cause__, _SyncFailed) else self.target
        return DiskFull(target) if is_disk_full(exc) else exc


def write_parquet_files(groups: list[list[tuple[pl.DataFrame, Path]]], entities: bool = True) -> None:
    """Write each frame over its path atomically, the files as one batch (``_Batch``): every frame to a
    temporary name, each fsynced in the background while the next is written, then, once all are
    synced, each renamed over its target, group by group (``entities``: each group is one entity of a
    drop), then every folder fsynced."""
    batch = _Batch()
    try:
        for group in groups:
            for df, path in group:
                batch.stage(df, path)
            batch.end_group()
        batch.commit(entities)
    except BaseException as exc:
        error = batch.abort(exc)
        if error is exc:
            raise
        raise error from exc


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ts_lit(value: dt.datetime) -> pl.Expr:
    """``pl.lit(value).cast(TS_TYPE)`` (a naive value read as UTC, as that cast reads it), built from its
    microseconds: polars spends about 0.26 ms turning a time-zone-aware datetime into a literal, 0.02 ms
    an integer (three a drop, 1,460 drops a year at any scale)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return pl.lit((aware - _EPOCH) // dt.timedelta(microseconds=1), pl.Int64).cast(TS_TYPE)


def _lineage_columns(manifest: Manifest, loaded_at: dt.datetime) -> list[pl.Expr]:
    """The lineage columns every file of a drop shares (built once per drop: a literal costs more to
    build than to add to a file's rows)."""
    return [pl.lit(manifest.business_date, pl.Date).alias("_business_date"),
            _ts_lit(manifest.extracted_at).alias("_extracted_at"),
            _ts_lit(loaded_at).alias("_loaded_at")]


def _lineage(df: pl.DataFrame, source: str, drop_columns: list[pl.Expr]) -> pl.DataFrame:
    return df.with_columns(pl.lit(source).alias("_source_file"), *drop_columns)


# told of each load-audit entry once it is written: (system, business_date, file name, its rows)
AuditSink = Callable[[str, dt.date, str, pl.DataFrame], None]


def audit_frame(load: DropLoad, loaded_at: dt.datetime, manifest_rows: dict[str, int] | None = None) -> pl.DataFrame:
    """The load-audit rows of one attempt (one per file), as ``_audit`` writes them."""
    manifest_rows = manifest_rows or {}
    rows = [{
        "system": load.system, "business_date": load.business_date, "extracted_at": load.extracted_at,
        "manifest_sha256": load.manifest_sha256, "entity": e.entity, "file": e.file,
        "manifest_rows": manifest_rows.get(e.entity, e.manifest_rows), "loaded": e.loaded,
        "quarantined": e.quarantined, "sha256": e.sha256, "status": load.status, "error": load.error,
        "new_columns": ",".join(e.new_columns) or None, "duration_s": round(e.duration_s, 4), "loaded_at": loaded_at,
    } for e in load.entities]
    return pl.DataFrame(rows, schema=AUDIT_SCHEMA)


def audit_file_name(load: DropLoad) -> str:
    """One audit file per delivery (manifest) of a date: loading the same delivery again replaces it."""
    return f"{(load.manifest_sha256 or 'no-manifest')[:16]}.parquet"


def _audit(zones: Zones, load: DropLoad, manifest_rows: dict[str, int], loaded_at: dt.datetime,
           on_audit: AuditSink | None = None) -> None:
    frame = audit_frame(load, loaded_at, manifest_rows)
    name = audit_file_name(load)
    write_parquet_atomic(frame, zones.audit_dir(load.system, load.business_date) / name)
    if on_audit is not None:
        on_audit(load.system, load.business_date, name, frame)


def load_drop(zones: Zones, system: str, business_date: dt.date,
              loaded_at: dt.datetime | None = None, on_audit: AuditSink | None = None) -> DropLoad:
    """Verify, parse, validate and land one drop. Raises ``DropRefused`` (after auditing it) if refused.
    ``on_audit`` is told of the attempt's audit entry once it is written (refused or loaded), e.g. to
    keep a cache of the load audit current without reading it back."""
    for _day, outcome in load_drop_range(zones, system, [business_date], loaded_at, on_audit):
        if isinstance(outcome, DropRefused):
            raise outcome
        return outcome
    raise AssertionError("unreachable: one date, one outcome")


@dataclass
class _Read:
    """One drop read and parsed, not yet validated or written (``load_drop_range``)."""

    day: dt.date
    loaded_at: dt.datetime
    manifest: Manifest | None = None
    files: list[tuple[ManifestFile, str, RawFile, float]] = field(default_factory=list)  # (file, source, raw, s)
    checked: list[tuple[pl.DataFrame, pl.DataFrame]] = field(default_factory=list)  # validate's, per file
    refused: DropRefused | None = None
    error: Exception | None = None  # any other error reading it: raised at its date's turn


def _refuse_unforeseen(path: Path, exc: Exception) -> DropRefused:
    """A hostile file the readers do not foresee: refused, by name."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return DropRefused(path, f"internal error reading this file ({type(exc).__name__}: {first}); "
                             "nothing from this drop was loaded: please report it")


def _read_drop(zones: Zones, system: str, day: dt.date, loaded_at: dt.datetime | None) -> _Read:
    """Read and parse every file of one drop (nothing written); a refusal or another error is kept, not
    raised."""
    drop = _Read(day, loaded_at or dt.datetime.now(dt.UTC).replace(microsecond=0))
    crashpoint("ingest.before_load")
    try:
        # the bytes parsed are the bytes hashed: each file read once, by the manifest's check
        contents: dict[Path, bytes] = {}
        drop.manifest = read_manifest(drop_folder(zones.landing, system, day), system, day, contents)
        for f in drop.manifest.files:
            t0 = time.perf_counter()
            data = contents.pop(f.path)
            try:
                raw = read_file(f.entity, f.path, data)
            except (DropRefused, MemoryError):
                raise
            except Exception as exc:
                raise _refuse_unforeseen(f.path, exc) from exc
            del data
            drop.files.append((f, f.path.relative_to(zones.landing).as_posix(), raw, time.perf_counter() - t0))
    except DropRefused as exc:
        drop.refused, drop.files = exc, []
    except Exception as exc:  # noqa: BLE001 - raised at its date's turn, after the dates before it are landed
        drop.error, drop.files = exc, []
    return drop


def _validate_drops(drops: list[_Read]) -> None:
    """Validate the files of every drop read (``validate_many``: one plan per entity for the range), then
    check each file's count against its manifest; a drop with a problem is refused whole. Each file's
    ``duration_s`` gets its share of the validation time, by rows."""
    readable = [d for d in drops if d.refused is None and d.error is None]
    raws = [raw for d in readable for _f, _s, raw, _t in d.files]
    t0 = time.perf_counter()
    try:
        checked = validate_many(raws)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - found again file by file below, where it names its file
        checked = []
    seconds = time.perf_counter() - t0
    rows = sum(raw.frame.height for raw in raws) or 1
    at = 0
    for d in readable:
        first, at = at, at + len(d.files)
        try:
            for k, (f, source, raw, t) in enumerate(d.files):
                if checked:
                    valid, quarantined = checked[first + k]
                else:
                    try:
                        valid, quarantined = validate(raw)
                    except MemoryError:
                        raise
                    except Exception as exc:
                        raise _refuse_unforeseen(f.path, exc) from exc
                n = valid.height + quarantined.height
                if n != f.rows:
                    raise DropRefused(f.path, f"manifest says {f.rows} records, the file holds {n}")
                # the raw text columns are no longer needed once validated: only their drift is kept
                d.files[k] = (f, source, replace(raw, frame=raw.frame.clear()), t + seconds * raw.frame.height / rows)
                d.checked.append((valid, quarantined))
        except DropRefused as exc:
            d.refused, d.files, d.checked = exc, [], []


def load_drop_range(zones: Zones, system: str, days: list[dt.date], loaded_at: dt.datetime | None = None,
                    on_audit: AuditSink | None = None) -> Iterator[tuple[dt.date, DropLoad | DropRefused]]:
    """``load_drop`` for each date of ``days``, yielding ``(date, load or refusal)`` in that order; the same
    zones and audit as one ``load_drop`` after another. The drops are read and their files validated
    together (one polars plan per entity for the range: at a few thousand records a file, planning costs
    polars more than checking), then landed one after another in date order, each as ``load_drop`` lands
    one: written, synced, renamed, audited (``on_audit`` told) before the next is written. Any other error
    of a date is raised at its turn; the later dates are then not landed. Holds every drop of the range
    in memory at once: callers give it ranges of bounded size (``ingestion.pool``)."""
    drops = [_read_drop(zones, system, day, loaded_at) for day in days]
    _validate_drops(drops)
    for drop in drops:
        yield drop.day, _land_read(zones, system, drop, on_audit)
        drop.files, drop.checked = [], []  # landed: its frames are no longer needed


def _land_read(zones: Zones, system: str, drop: _Read, on_audit: AuditSink | None) -> DropLoad | DropRefused:
    """Write one drop read and validated: each file to its temporary name, synced, every one renamed over
    the previous version entity by entity, then the audit. A refused drop changes nothing but its audit."""
    business_date, loaded_at, manifest = drop.day, drop.loaded_at, drop.manifest
    if drop.error is not None:
        raise drop.error
    if drop.refused is not None:
        placeholder = [EntityLoad(e.name, f"{system}/{business_date.isoformat()}/{e.filename}", 0, 0, 0, "")
                       for e in C.entities_of(system)]
        refused = DropLoad(system, business_date, "refused", placeholder,
                           manifest.extracted_at if manifest else None, manifest.digest if manifest else None,
                           str(drop.refused))
        _audit(zones, refused, {}, loaded_at, on_audit)
        return drop.refused
    assert manifest is not None
    folder = drop_folder(zones.landing, system, business_date)
    lineage = _lineage_columns(manifest, loaded_at)
    # the quarantine's columns besides the file's: the same for every file of the drop
    q_drop = {"system": pl.lit(system), "business_date": pl.lit(business_date, pl.Date),
              "_loaded_at": _ts_lit(loaded_at)}
    loads: list[EntityLoad] = []
    # each file written (to a temporary name) and fsynced in the background while the next is written;
    # renamed only once every file of the drop is written and synced (``_Batch``)
    batch = _Batch()
    try:
        for (f, source, raw, seconds), (valid, quarantined) in zip(drop.files, drop.checked, strict=True):
            t0 = time.perf_counter()
            if (system, f.entity.name) == ("survey", "responses"):
                valid = with_comment_tags(valid)  # topics and tone of the comment (ingestion/comments.py)
            q_columns = {**q_drop, "entity": pl.lit(f.entity.name), "file": pl.lit(source)}
            q = EMPTY_QUARANTINE if not quarantined.height else quarantined.select(
                [q_columns.get(name, pl.col(name)).cast(dtype).alias(name)
                 for name, dtype in QUARANTINE_SCHEMA.items()])
            batch.stage(_lineage(valid, source, lineage), zones.data_file(system, f.entity.name, business_date))
            q_file = zones.quarantine_file(system, f.entity.name, business_date)
            if q is not EMPTY_QUARANTINE or q_file.exists():  # nothing quarantined, nothing to replace: no file
                batch.stage(q, q_file)
            batch.end_group()
            loads.append(EntityLoad(f.entity.name, source, f.rows, valid.height, quarantined.height, f.sha256,
                                    raw.extra_columns, seconds + time.perf_counter() - t0))
        delivered = {f.entity.name for f in manifest.files}
        for e in C.entities_of(system):
            if e.name in delivered:
                continue
            # an entity of a later contract version than the drop's: it lands as an empty partition, so the
            # models read every entity of the contract whatever version each drop was written in; the audit
            # lists only the drop's own entities (what was delivered: docs/landing-contract.md, versions)
            source = f"{system}/{business_date.isoformat()}/{e.filename}"
            header = (e.separator.join(e.column_names) + "\n").encode(e.encoding) if e.format != "jsonl" else b""
            valid, _ = validate(read_file(e, folder / e.filename, header))
            if (system, e.name) == ("survey", "responses"):
                valid = with_comment_tags(valid)
            batch.stage(_lineage(valid, source, lineage), zones.data_file(system, e.name, business_date))
            batch.end_group()
        # every file of the drop synced, then renamed, entity by entity, then their folders synced
        batch.commit()
    except BaseException as exc:
        error = batch.abort(exc)
        if error is exc:
            raise
        raise error from exc
    crashpoint("ingest.before_audit")
    result = DropLoad(system, business_date, "loaded", loads, manifest.extracted_at,
                      manifest.digest, contract_version=manifest.contract_version)
    _audit(zones, result, {}, loaded_at, on_audit)
    crashpoint("ingest.after_audit")
    return result


def read_partition_counts(zones: Zones, system: str, entity: str, day: dt.date) -> tuple[int, int]:
    """Rows now in the raw and quarantine zones for one entity and business date (read back from disk:
    the row count in each file's Parquet footer)."""
    def count(p: Path) -> int:
        return pq.read_metadata(p).num_rows if p.exists() else 0

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
