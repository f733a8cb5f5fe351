"""Small edits of generated drops for tests, written back in the landing contract's formats.

Plain standard library (csv, json, hashlib): the edits do not go through the project's readers, so
a test that edits a drop and then loads it checks ingestion independently.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import shutil
from pathlib import Path

CSV_FORMAT = {"crm": ("utf-8", ","), "erp": ("cp1252", ";")}
EXT = {"crm": "csv", "erp": "csv", "billing": "jsonl", "survey": "jsonl"}
MANIFEST = "_manifest.json"


def folder(landing: Path, system: str, day: dt.date) -> Path:
    return landing / system / day.isoformat()


def read(drop: Path, system: str, entity: str) -> tuple[list[str] | None, list[dict]]:
    """(CSV header or None, records as dicts of text / JSON values)."""
    path = drop / f"{entity}.{EXT[system]}"
    if system in CSV_FORMAT:
        encoding, sep = CSV_FORMAT[system]
        reader = csv.DictReader(io.StringIO(path.read_bytes().decode(encoding), newline=""), delimiter=sep)
        rows = list(reader)
        return list(reader.fieldnames or []), rows
    return None, [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write(drop: Path, system: str, entity: str, header: list[str] | None, rows: list[dict]) -> None:
    path = drop / f"{entity}.{EXT[system]}"
    if system in CSV_FORMAT:
        encoding, sep = CSV_FORMAT[system]
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=header, delimiter=sep, quotechar='"', lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_bytes(buf.getvalue().encode(encoding))
    else:
        path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    remanifest(drop)


def remanifest(drop: Path, business_date: dt.date | None = None) -> None:
    """Recount rows and rehash every file of the manifest (and move it to ``business_date``)."""
    path = drop / MANIFEST
    m = json.loads(path.read_text(encoding="utf-8"))
    system = m["system"]
    for f in m["files"]:
        data = (drop / f["path"]).read_bytes()
        f["sha256"] = hashlib.sha256(data).hexdigest()
        f["rows"] = len(read(drop, system, f["entity"])[1])
    if business_date:
        m["business_date"] = business_date.isoformat()
    path.write_text(json.dumps(m), encoding="utf-8")


def merge_history(landing: Path, system: str, day: dt.date) -> None:
    """Every drop of ``system`` concatenated, in delivery order, into one drop dated ``day`` (a
    company's initial load: years of history in its first drop); the other drops are removed."""
    drops = sorted(p for p in (landing / system).iterdir() if p.is_dir())
    target = folder(landing, system, day)
    entities = [f["entity"] for f in json.loads((drops[-1] / MANIFEST).read_text())["files"]]
    merged: dict[str, tuple[list[str] | None, list[dict]]] = {}
    for entity in entities:
        header, rows = None, []
        for d in drops:
            h, r = read(d, system, entity)
            if h is not None:
                header = header or h
                header += [c for c in h if c not in header]  # schema drift: keep every column
            rows += r
        merged[entity] = (header, rows)
    last = drops[-1]
    for d in drops:
        if d != last:
            shutil.rmtree(d)
    if last != target:
        last.rename(target)
    for entity, (header, rows) in merged.items():
        if header is not None:
            rows = [{c: r.get(c, "") for c in header} for r in rows]
        write(target, system, entity, header, rows)
    remanifest(target, business_date=day)
