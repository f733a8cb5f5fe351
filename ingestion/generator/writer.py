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


def write_drop(folder: Path, system: str, business_date: dt.date, extracted_at: dt.datetime,
               files: list[tuple[str, str, bytes, int]]) -> list[DropFile]:
    """Write one complete drop: data files first, the manifest last (its presence marks completeness)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    entries = []
    for entity, filename, data, rows in files:
        (folder / filename).write_bytes(data)
        entries.append(DropFile(entity, filename, rows, hashlib.sha256(data).hexdigest()))
    manifest = {
        "contract_version": C.CONTRACT_VERSION, "system": system, "business_date": business_date.isoformat(),
        "extracted_at": extracted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": [{"entity": f.entity, "path": f.path, "rows": f.rows, "sha256": f.sha256} for f in entries],
    }
    tmp = folder / (C.MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.rename(folder / C.MANIFEST_NAME)
    return entries


def write_all(texts: dict[tuple[str, str], pl.DataFrame], cfg: GeneratorConfig, out: Path,
              progress: Callable[[int], None] | None = None) -> tuple[list[dict], dict[str, int]]:
    """Write every drop of the window. Returns the re-extracted drops and row counts per entity."""
    rng = np.random.default_rng([cfg.seed, 4])
    dates = [cfg.start + dt.timedelta(days=i) for i in range(cfg.days)]
    drops = [(s, d) for s in C.SYSTEMS for d in dates]
    n_re = round(cfg.mess.reextract_rate * len(drops))
    reextract = {drops[i] for i in rng.choice(len(drops), size=n_re, replace=False)} if n_re else set()
    parts = {k: df.partition_by("_bd", as_dict=True, maintain_order=True) for k, df in texts.items()}
    drift_from = drift_date(cfg)
    seconds = {d: int(rng.integers(0, 60)) for d in dates}
    rows_total: dict[str, int] = {}
    reextracts = []
    for system, d in drops:
        extracted = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(1, EXTRACT_MINUTE[system], seconds[d]))
        files, partial = [], []
        for e in C.entities_of(system):
            df = texts[(system, e.name)]
            part = parts[(system, e.name)].get((d,), df.clear())
            extra = [c for c in df.columns if c not in e.column_names and not c.startswith("_")]
            columns = [*e.column_names, *(extra if d >= drift_from else [])]
            files.append((e.name, e.filename, serialize(e, part, columns), part.height))
            rows_total[f"{system}/{e.name}"] = rows_total.get(f"{system}/{e.name}", 0) + part.height
            if (system, d) in reextract:
                keep = rng.random(part.height) >= cfg.mess.reextract_missing_share
                sub = part.filter(pl.Series(keep, dtype=pl.Boolean))
                partial.append((e.name, e.filename, serialize(e, sub, columns), sub.height))
        folder = out / system / d.isoformat()
        if (system, d) in reextract:
            # the first extract (missing records) was delivered at the usual time; the correction later that day
            old = out / SUPERSEDED_DIR / system / d.isoformat()
            write_drop(old, system, d, extracted, partial)
            extracted = extracted + dt.timedelta(hours=13)
            reextracts.append({
                "system": system, "business_date": d.isoformat(),
                "superseded_drop": f"{SUPERSEDED_DIR}/{system}/{d.isoformat()}",
                "records_missing_from_first_extract": int(sum(f[3] for f in files) - sum(f[3] for f in partial)),
            })
        write_drop(folder, system, d, extracted, files)
        if progress:
            progress(1)
    return reextracts, rows_total
