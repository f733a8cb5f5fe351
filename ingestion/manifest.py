"""Find complete drops and verify them against their manifest (landing contract, version 1).

A drop that does not match its manifest is refused as a whole with a ``DropRefused`` error that
names the file and the problem; nothing from it is loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from . import contract as C


class DropRefused(Exception):
    """A bad file or a manifest mismatch: the whole drop of one system and date is refused."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = _printable(str(path))
        self.problem = _printable(problem)
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):  # noqa: ANN204 - as built (a refusal crosses from a worker process, ingestion/pool.py)
        return type(self), (self.path, self.problem)


def _printable(text: str) -> str:
    """A file name that is not valid UTF-8 reaches Python with lone surrogates: escape them, so the
    message can be printed and stored in the audit (which holds UTF-8 text only)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
    contract_version: int = C.CONTRACT_VERSION

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


SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CHUNK = 1 << 20


def _open_regular(path: Path, what: str) -> int:
    """A file descriptor of ``path``, refused unless it is a regular file inside the drop folder.

    Symbolic links are never followed (``O_NOFOLLOW``, so a link swapped in after the check is
    refused too): a drop is the files the source system delivered into landing, not whatever a link
    points at (possibly outside landing). ``O_NONBLOCK`` keeps a FIFO from blocking the open."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise DropRefused(path, f"{what} but missing from the drop") from None
    if stat.S_ISLNK(info.st_mode):
        raise DropRefused(path, f"{what} but is a symbolic link (to {os.readlink(path)!r}); drop files must be "
                                "regular files inside the drop folder: symbolic links are never followed")
    if stat.S_ISDIR(info.st_mode):
        raise DropRefused(path, f"{what} but is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise DropRefused(path, f"{what} but is not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise DropRefused(path, f"cannot be opened: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the check and the open
        os.close(fd)
        raise DropRefused(path, f"{what} but is not a regular file")
    return fd


def _read_regular(path: Path, what: str) -> bytes:
    fd = _open_regular(path, what)
    try:
        with os.fdopen(fd, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise DropRefused(path, f"cannot be read: {exc.strerror}") from None


def _sha256_of(path: Path, what: str) -> str:
    h = hashlib.sha256()
    fd = _open_regular(path, what)
    try:
        with os.fdopen(fd, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise DropRefused(path, f"cannot be read: {exc.strerror}") from None
    return h.hexdigest()


def read_manifest(folder: Path, system: str, business_date: dt.date,
                  contents: dict[Path, bytes] | None = None) -> Manifest:
    """Parse and check a drop's manifest and every file it lists (presence, sha256, nothing extra).

    With ``contents``, each listed file is read whole, once, and the bytes hashed are kept there by path:
    the readers parse exactly the bytes that were checked (a file changed after its check, still being
    written or replaced, is never read again). Without it, each file is hashed in chunks.
    Row counts are reconciled after parsing (``loaded + quarantined = rows``). Symbolic links are
    never followed: a drop folder, system folder, manifest or file that is a link refuses the drop.
    """
    path = folder / C.MANIFEST_NAME
    for d, what in ((folder.parent, "system folder"), (folder, "drop folder")):
        if d.is_symlink():
            raise DropRefused(d, f"{what} is a symbolic link (to {os.readlink(d)!r}); drops must be delivered into "
                                 "landing itself: symbolic links are never followed")
    _require(folder.is_dir(), folder, "no drop delivered for this system and date (folder missing)")
    _require(path.exists() or path.is_symlink(), folder,
             f"incomplete drop: no {C.MANIFEST_NAME} (the manifest is written last)")
    raw = _read_regular(path, "the manifest is present")
    try:
        m = json.loads(raw.decode("utf-8-sig"))  # a UTF-8 BOM is tolerated, as in the CSV files
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, or an integer of > 4300 digits
        raise DropRefused(path, f"manifest is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise DropRefused(path, "manifest is not valid JSON for this contract: nested too deeply") from None
    _require(isinstance(m, dict), path, f"manifest must be a JSON object, got {type(m).__name__}")
    version = m.get("contract_version")
    _require(type(version) is int and version in C.SUPPORTED_VERSIONS, path,
             f"contract_version {version!r} is not supported (expected one of "
             f"{', '.join(map(str, C.SUPPORTED_VERSIONS))})")
    _require(m.get("system") == system, path, f"manifest system {m.get('system')!r} does not match folder {system!r}")
    _require(m.get("business_date") == business_date.isoformat(), path,
             f"manifest business_date {m.get('business_date')!r} does not match folder {business_date.isoformat()!r}")
    try:
        extracted = dt.datetime.strptime(str(m.get("extracted_at")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise DropRefused(path, f"extracted_at {m.get('extracted_at')!r} is not an ISO-8601 UTC timestamp") from None
    entries = m.get("files")
    _require(isinstance(entries, list), path, "manifest 'files' must be a list")
    expected = {e.name: e for e in C.entities_of(system, version)}
    files: list[ManifestFile] = []
    seen: set[str] = set()
    for i, f in enumerate(entries):
        where = f"{path} files[{i}]"
        _require(isinstance(f, dict) and {"entity", "path", "rows", "sha256"} <= set(f), where,
                 "each entry needs entity, path, rows and sha256")
        name, rel, rows, sha = f["entity"], f["path"], f["rows"], f["sha256"]
        _require(isinstance(name, str) and name in expected, where,
                 f"unknown entity {name!r} for {system} in contract version {version} (expected "
                 f"{', '.join(expected)})")
        _require(name not in seen, where, f"entity {name!r} listed twice")
        seen.add(name)
        _require(isinstance(rel, str) and rel not in ("", ".", "..") and not any(c in rel for c in "/\\\0"), where,
                 f"path {rel!r} must name a file directly inside the drop folder (a plain file name: no "
                 "directory, no absolute path, no backslash)")
        _require(rel == expected[name].filename, where,
                 f"path {rel!r} for entity {name!r} must be {expected[name].filename!r}")
        _require(type(rows) is int and rows >= 0, where, f"rows {rows!r} must be a non-negative integer")
        _require(isinstance(sha, str) and SHA256_HEX.fullmatch(sha) is not None, where,
                 f"sha256 {sha!r} must be 64 hexadecimal digits")
        file_path = folder / rel
        if contents is None:
            digest = _sha256_of(file_path, "listed in the manifest")
        else:
            data = contents[file_path] = _read_regular(file_path, "listed in the manifest")
            digest = hashlib.sha256(data).hexdigest()
        _require(digest == sha.lower(), file_path, f"sha256 mismatch: manifest says {sha}, file has {digest}")
        files.append(ManifestFile(expected[name], file_path, rows, digest))
    missing = [n for n in expected if n not in seen]
    _require(not missing, path, f"manifest lists no file for entities {', '.join(missing)} (every entity is required)")
    listed = {f.path.name for f in files}
    for p in sorted(folder.iterdir()):
        kind = "directory" if p.is_dir() and not p.is_symlink() else "file"
        _require(p.name == C.MANIFEST_NAME or p.name in listed, p,
                 f"{kind} is not listed in the manifest (a drop holds its manifest and the files it lists, nothing "
                 "else)")
    order = {e.name: i for i, e in enumerate(C.entities_of(system, version))}
    files.sort(key=lambda f: order[f.entity.name])
    return Manifest(system, business_date, extracted, folder, tuple(files), hashlib.sha256(raw).hexdigest(),
                    version)
