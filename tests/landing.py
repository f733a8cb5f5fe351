"""Plain readers of landing drops for tests: polars and the standard library only.

These deliberately do not use the project's ingestion code, so the tests check generated files
against the contract independently of the code that will read them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import polars as pl

SYSTEM_FORMAT = {"crm": ("utf-8", ","), "erp": ("cp1252", ";")}


def drop_dirs(root: Path, system: str) -> list[Path]:
    return sorted(p for p in (root / system).iterdir() if p.is_dir())


def read_csv_file(path: Path, system: str) -> pl.DataFrame:
    """All columns as text, exactly as written (no type inference, empty -> null)."""
    encoding, sep = SYSTEM_FORMAT[system]
    text = path.read_bytes().decode(encoding)
    return pl.read_csv(io.StringIO(text), separator=sep, infer_schema=False, quote_char='"')


def read_jsonl_file(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_entity(root: Path, system: str, entity: str) -> pl.DataFrame:
    """Every drop's file of one entity, stacked, with the drop's business date in ``_bd``."""
    frames = []
    for d in drop_dirs(root, system):
        bd = dt.date.fromisoformat(d.name)
        if system in SYSTEM_FORMAT:
            df = read_csv_file(d / f"{entity}.csv", system)
        else:
            rows = read_jsonl_file(d / f"{entity}.jsonl")
            if system == "survey":
                rows = [flatten_response(r) for r in rows]
            df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
        if df.height:
            frames.append(df.with_columns(_bd=pl.lit(bd)))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def flatten_response(r: dict) -> dict:
    """One survey response with its score answer and comment lifted to columns."""
    out = {k: v for k, v in r.items() if k != "answers"}
    for a in r["answers"]:
        if a["question_id"] == "comment":
            out["comment"] = a["text"]
        else:
            out["question_id"] = a["question_id"]
            out["value"] = a["value"]
            out["scale_min"] = a["scale_min"]
            out["scale_max"] = a["scale_max"]
    out.setdefault("comment", None)
    return out


UTC_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
LOCAL_TS = r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$"
LOCAL_DATE = r"^\d{2}/\d{2}/\d{4}$"
DECIMAL_COMMA = r"^-?\d+,\d{2}$"


def parse_utc(col: str) -> pl.Expr:
    return pl.col(col).str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%SZ", strict=False)


def parse_local(col: str) -> pl.Expr:
    return pl.col(col).str.strptime(pl.Datetime("us"), "%d/%m/%Y %H:%M:%S", strict=False)


def parse_local_date(col: str) -> pl.Expr:
    return pl.col(col).str.strptime(pl.Date, "%d/%m/%Y", strict=False)
