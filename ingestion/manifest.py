"""Find complete drops and verify them against their manifest (landing contract, version 1).

A drop that does not match its manifest is refused as a whole with a ``DropRefused`` error that
names the file and the problem; nothing from it is loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import contract as C


class DropRefused(Exception):
    """A bad file or a manifest mismatch: the whole drop of one system and date is refused."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class ManifestFile:
    entity: C.Entity
    path: Path
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    system: str
    business_date: dt.date
    extracted_at: dt.datetime
    folder: Path
    files: tuple[ManifestFile, ...]
    digest: str  # sha256 of the manifest itself: identifies one delivery of the drop

    def file_of(self, entity: str) -> ManifestFile:
        return next(f for f in self.files if f.entity.name == entity)


def drop_folder(landing: Path, system: str, business_date: dt.date) -> Path:
    return landing / system / business_date.isoformat()


def complete_drops(landing: Path) -> list[tuple[str, dt.date, Path]]:
    """Every (system, business_date) folder that holds a manifest; other folders are ignored."""
    found = []
    for system in C.SYSTEMS:
        base = landing / system
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            try:
                day = dt.date.fromisoformat(folder.name)
            except ValueError:
                continue
            if (folder / C.MANIFEST_NAME).is_file():
                found.append((system, day, folder))
    return found


def _require(cond: bool, path: Path | str, problem: str) -> None:
    if not cond:
        raise DropRefused(path, problem)


def read_manifest(folder: Path, system: str, business_date: dt.date) -> Manifest:
    """Parse and check a drop's manifest and every file it lists (presence, sha256, nothing extra).

    Row counts are reconciled after parsing (``loaded + quarantined = rows``).
    """
    path = folder / C.MANIFEST_NAME
    _require(folder.is_dir(), folder, "no drop delivered for this system and date (folder missing)")
    _require(path.is_file(), folder, f"incomplete drop: no {C.MANIFEST_NAME} (the manifest is written last)")
    raw = path.read_bytes()
    try:
        m = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DropRefused(path, f"manifest is not valid UTF-8 JSON: {exc}") from None
    _require(isinstance(m, dict), path, "manifest must be a JSON object")
    _require(m.get("contract_version") == C.CONTRACT_VERSION, path,
             f"contract_version {m.get('contract_version')!r} is not supported (expected {C.CONTRACT_VERSION})")
    _require(m.get("system") == system, path, f"manifest system {m.get('system')!r} does not match folder {system!r}")
    _require(m.get("business_date") == business_date.isoformat(), path,
             f"manifest business_date {m.get('business_date')!r} does not match folder {business_date.isoformat()!r}")
    try:
        extracted = dt.datetime.strptime(str(m.get("extracted_at")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise DropRefused(path, f"extracted_at {m.get('extracted_at')!r} is not an ISO-8601 UTC timestamp") from None
    entries = m.get("files")
    _require(isinstance(entries, list), path, "manifest 'files' must be a list")
    expected = {e.name: e for e in C.entities_of(system)}
    files: list[ManifestFile] = []
    seen: set[str] = set()
    for i, f in enumerate(entries):
        where = f"{path} files[{i}]"
        _require(isinstance(f, dict) and {"entity", "path", "rows", "sha256"} <= set(f), where,
                 "each entry needs entity, path, rows and sha256")
        name, rel = f["entity"], f["path"]
        _require(name in expected, where, f"unknown entity {name!r} for {system} (expected {', '.join(expected)})")
        _require(name not in seen, where, f"entity {name!r} listed twice")
        seen.add(name)
        pure = PurePosixPath(str(rel))
        _require(len(pure.parts) == 1 and pure.name not in ("", ".", "..") and "\\" not in str(rel), where,
                 f"path {rel!r} must name a file directly inside the drop folder")
        _require(pure.name == expected[name].filename, where,
                 f"path {rel!r} for entity {name!r} must be {expected[name].filename!r}")
        _require(isinstance(f["rows"], int) and not isinstance(f["rows"], bool) and f["rows"] >= 0, where,
                 f"rows {f['rows']!r} must be a non-negative integer")
        file_path = folder / pure.name
        _require(file_path.is_file(), file_path, "listed in the manifest but missing from the drop")
        digest = hashlib.sha256(file_path.read_bytes()).hexdigest()
        _require(digest == str(f["sha256"]).lower(), file_path,
                 f"sha256 mismatch: manifest says {f['sha256']}, file has {digest}")
        files.append(ManifestFile(expected[name], file_path, f["rows"], digest))
    missing = [n for n in expected if n not in seen]
    _require(not missing, path, f"manifest lists no file for entities {', '.join(missing)} (every entity is required)")
    for p in sorted(folder.iterdir()):
        _require(p.name == C.MANIFEST_NAME or p.name in {f.path.name for f in files}, p,
                 "file is not listed in the manifest")
    order = {e.name: i for i, e in enumerate(C.entities_of(system))}
    files.sort(key=lambda f: order[f.entity.name])
    return Manifest(system, business_date, extracted, folder, tuple(files), hashlib.sha256(raw).hexdigest())
