"""Write drops: ``<root>/<system>/<business_date>/<entity>.<ext>`` and, last, ``_manifest.json``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ingestion import contract as C

from .config import GeneratorConfig
from .mess import drift_date
from .render import serialize

SUPERSEDED_DIR = "_superseded"
# minute past 01:00 UTC, the night after the business date, at which each system's extract runs
EXTRACT_MINUTE = {"crm": 5, "erp": 12, "billing": 20, "survey": 31}


@dataclass
class DropFile:
    entity: str
    path: str
    rows: int
    sha256: str


def write_manifest(folder: Path, system: str, business_date: dt.date, extracted_at: dt.datetime,
                   entries: list[DropFile], contract_version: int = C.CONTRACT_VERSION) -> None:
    """Write a drop's manifest; it goes last, since its presence marks the drop complete."""
    manifest = {
        "contract_version": contract_version, "system": system, "business_date": business_date.isoformat(),
        "extracted_at": extracted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": [{"entity": f.entity, "path": f.path, "rows": f.rows, "sha256": f.sha256} for f in entries],
    }
    tmp = folder / (C.MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.rename(folder / C.MANIFEST_NAME)


class _OpenFile:
    """An entity file written in several appends (one per shard of customers): running sha256 and row count."""

    def __init__(self, path: Path, entity: str) -> None:
        self.path, self.entity, self.rows, self.hash = path, entity, 0, hashlib.sha256()
        path.write_bytes(b"")

    def append(self, data: bytes, rows: int) -> None:
        if data:
            with self.path.open("ab") as fh:
                fh.write(data)
            self.hash.update(data)
        self.rows += rows

    def entry(self) -> DropFile:
        return DropFile(self.entity, self.path.name, self.rows, self.hash.hexdigest())


class DropWriter:
    """Writes every drop of the window, possibly in several passes (one per shard of customers).

    Which drops are re-extracted, and when each extract ran, is decided once for the window. Each
    pass appends its records to every entity file (a CSV header only in the first pass); the
    manifests are written by ``finish``, after the last pass, so no drop looks complete before it
    holds every shard's records.
    """

    def __init__(self, cfg: GeneratorConfig, out: Path) -> None:
        self.cfg, self.out = cfg, out
        self.rng = np.random.default_rng([cfg.seed, 4])
        self.dates = [cfg.start + dt.timedelta(days=i) for i in range(cfg.days)]
        self.drops = [(s, d) for s in C.SYSTEMS for d in self.dates]
        n_re = round(cfg.mess.reextract_rate * len(self.drops))
        self.reextract = ({self.drops[i] for i in self.rng.choice(len(self.drops), size=n_re, replace=False)}
                          if n_re else set())
        self.seconds = {d: int(self.rng.integers(0, 60)) for d in self.dates}
        self.drift_from = drift_date(cfg)
        self.rows: dict[str, int] = {}
        self.files: dict[tuple[str, dt.date, bool], list[_OpenFile]] = {}  # (system, date, superseded)
        self.passes = 0

    def _folder(self, system: str, d: dt.date, superseded: bool) -> Path:
        return (self.out / SUPERSEDED_DIR if superseded else self.out) / system / d.isoformat()

    def _files(self, system: str, d: dt.date, superseded: bool) -> list[_OpenFile]:
        key = (system, d, superseded)
        if key not in self.files:
            folder = self._folder(system, d, superseded)
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            self.files[key] = [_OpenFile(folder / e.filename, e.name)
                               for e in C.entities_of(system, self.cfg.contract_version)]
        return self.files[key]

    def append(self, texts: dict[tuple[str, str], pl.DataFrame], progress: Callable[[int], None] | None = None) -> None:
        """Append one shard's rendered records to the drops they belong to."""
        header = self.passes == 0
        parts = {k: df.partition_by("_bd", as_dict=True, maintain_order=True) for k, df in texts.items()}
        for system, d in self.drops:
            redo = (system, d) in self.reextract
            files = self._files(system, d, False)
            partial = self._files(system, d, True) if redo else []
            for i, e in enumerate(C.entities_of(system, self.cfg.contract_version)):
                df = texts[(system, e.name)]
                part = parts[(system, e.name)].get((d,), df.clear())
                extra = [c for c in df.columns if c not in e.column_names and not c.startswith("_")]
                columns = [*e.column_names, *(extra if d >= self.drift_from else [])]
                files[i].append(serialize(e, part, columns, header), part.height)
                self.rows[f"{system}/{e.name}"] = self.rows.get(f"{system}/{e.name}", 0) + part.height
                if redo:
                    keep = self.rng.random(part.height) >= self.cfg.mess.reextract_missing_share
                    sub = part.filter(pl.Series(keep, dtype=pl.Boolean))
                    partial[i].append(serialize(e, sub, columns, header), sub.height)
            if progress:
                progress(1)
        self.passes += 1

    def finish(self) -> list[dict]:
        """Write every manifest; returns the re-extracted drops."""
        reextracts = []
        for system, d in self.drops:
            extracted = dt.datetime.combine(d + dt.timedelta(days=1),
                                            dt.time(1, EXTRACT_MINUTE[system], self.seconds[d]))
            files = [f.entry() for f in self._files(system, d, False)]
            if (system, d) in self.reextract:
                # the first extract (missing records) was delivered at the usual time; the correction later that day
                partial = [f.entry() for f in self._files(system, d, True)]
                write_manifest(self._folder(system, d, True), system, d, extracted, partial,
                               self.cfg.contract_version)
                extracted = extracted + dt.timedelta(hours=13)
                reextracts.append({
                    "system": system, "business_date": d.isoformat(),
                    "superseded_drop": f"{SUPERSEDED_DIR}/{system}/{d.isoformat()}",
                    "records_missing_from_first_extract": sum(f.rows for f in files) - sum(f.rows for f in partial),
                })
            write_manifest(self._folder(system, d, False), system, d, extracted, files, self.cfg.contract_version)
        return reextracts
