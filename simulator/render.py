"""Render typed record versions as each source system writes them, and plant bad records.

* crm: UTF-8 CSV, ISO-8601 UTC timestamps;
* erp: cp1252 CSV with ``;``, decimal comma, ``dd/mm/yyyy`` dates and Europe/Paris local times;
* billing: JSON Lines, money in integer minor units;
* survey: JSON Lines with the answers nested in an array.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from ingestion import contract as C
from ingestion.contract import Entity

from .config import GeneratorConfig
from .mess import MessReport

BAD_UTC = ("2026-02-30T10:00:00Z", "21/11/2026 14:03", "not a date", "2026-11-21T25:61:00Z")
BAD_LOCAL = ("31/02/2026 10:00:00", "2026-11-21 14:03:00", "32/13/2026 10:00:00", "n/a")
BAD_ENUM = ("fax", "pending_review", "n/a", "expedited", "archived")
# out-of-scale scores per survey type
BAD_SCORES = {"nps": (11, -1, 12), "csat": (0, 6, 10), "ces": (0, 8, 9)}


def _utc(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col), time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(col: str) -> pl.Expr:
    return (pl.from_epoch(pl.col(col), time_unit="s").dt.replace_time_zone("UTC")
            .dt.convert_time_zone(C.LOCAL_TZ).dt.strftime("%d/%m/%Y %H:%M:%S"))


def _decimal_comma(col: str) -> pl.Expr:
    c = pl.col(col)
    return c.floordiv(100).cast(pl.Utf8) + "," + (c % 100).cast(pl.Utf8).str.zfill(2)


def to_text(e: Entity, df: pl.DataFrame) -> pl.DataFrame:
    """Contract columns as the system writes them (CSV: all text; JSON: text, ints kept as ints)."""
    exprs = []
    for col in e.columns:
        name = col.name
        if col.type == "ts":
            exprs.append(_utc(name).alias(name))
        elif col.type == "ts_local":
            exprs.append(_local(name).alias(name))
        elif col.type == "date":
            exprs.append(pl.col(name).cast(pl.Date).dt.strftime("%d/%m/%Y").alias(name))
        elif col.type == "dec":
            exprs.append(_decimal_comma(name).alias(name))
        elif col.type == "bool":
            exprs.append(pl.when(pl.col(name)).then(pl.lit("true")).otherwise(pl.lit("false")).alias(name))
        elif col.type == "int" and e.format != "jsonl":
            exprs.append(pl.col(name).cast(pl.Utf8).alias(name))
        else:
            exprs.append(pl.col(name))
    out = df.with_columns(exprs)
    if e.system == "survey":
        out = out.with_columns(_qtype=pl.col("survey_type"))  # the scale of the answers, kept if the type is corrupted
    if e.format != "jsonl":
        extra = [c for c in out.columns if c not in e.column_names and not c.startswith("_")]
        out = out.with_columns([pl.col(c).cast(pl.Utf8) for c in extra])
    if (e.system, e.name) == ("erp", "orders") and "_dst" in out.columns:
        # orders planted on the DST night: local time moved into the 02:00-02:59 transition hour
        moved = pl.col("order_ts").str.slice(0, 11) + "02" + pl.col("order_ts").str.slice(13)
        out = out.with_columns(
            updated_ts=pl.when(pl.col("_dst") & (pl.col("updated_ts") == pl.col("order_ts")))
            .then(moved).otherwise(pl.col("updated_ts")),
        ).with_columns(order_ts=pl.when(pl.col("_dst")).then(moved).otherwise(pl.col("order_ts")))
    return out


def corrupt(e: Entity, df: pl.DataFrame, cfg: GeneratorConfig, rng: np.random.Generator,
            report: MessReport) -> pl.DataFrame:
    """Plant bad records: each affected row gets exactly one defect (date, enum, null key or score)."""
    m = cfg.mess
    name = f"{e.system}/{e.name}"
    n = df.height
    u = rng.random(n)
    pick = rng.integers(0, 1_000, n)
    ts_cols = [c.name for c in e.columns if c.type in ("ts", "ts_local", "date") and not c.nullable]
    enum_cols = [c.name for c in e.columns if c.enum]
    kinds: list[tuple[str, float]] = [("bad_date", m.bad_date_rate if ts_cols else 0.0),
                                      ("bad_enum", m.bad_enum_rate if enum_cols else 0.0),
                                      ("bad_null_key", m.bad_null_key_rate),
                                      ("bad_score", m.bad_score_rate if e.system == "survey" else 0.0)]
    lo = 0.0
    masks = {}
    for kind, rate in kinds:
        masks[kind] = (u >= lo) & (u < lo + rate)
        lo += rate
        if rate > 0:
            report.add(kind, name, masks[kind].sum(), n)
    out = df
    if ts_cols:
        bad = BAD_LOCAL if e.format == "csv_fr" else BAD_UTC
        val = pl.Series(np.asarray(bad, object)[pick % len(bad)], dtype=pl.Utf8)
        out = out.with_columns(pl.when(pl.Series(masks["bad_date"])).then(val).otherwise(pl.col(ts_cols[0]))
                               .alias(ts_cols[0]))
    if enum_cols:
        val = pl.Series(np.asarray(BAD_ENUM, object)[pick % len(BAD_ENUM)], dtype=pl.Utf8)
        out = out.with_columns(pl.when(pl.Series(masks["bad_enum"])).then(val).otherwise(pl.col(enum_cols[0]))
                               .alias(enum_cols[0]))
    key = e.key[0]
    out = out.with_columns(pl.when(pl.Series(masks["bad_null_key"])).then(None).otherwise(pl.col(key)).alias(key))
    if e.system == "survey":
        qtype = out["_qtype"].to_numpy()
        bad_score = np.zeros(n, np.int64)
        for t, values in BAD_SCORES.items():
            bad_score = np.where(qtype == t, np.asarray(values)[pick % len(values)], bad_score)
        out = out.with_columns(_score=pl.when(pl.Series(masks["bad_score"])).then(pl.Series(bad_score))
                               .otherwise("_score"))
    return out


def serialize(e: Entity, part: pl.DataFrame, columns: list[str], header: bool = True) -> bytes:
    """The bytes of one entity file of one drop (of its records of one shard: ``header`` for the first)."""
    if e.format in ("csv", "csv_fr"):
        text = part.select(columns).write_csv(separator=e.separator, quote_style="necessary", null_value="",
                                              line_terminator="\n", include_header=header)
        return text.encode(e.encoding)
    if e.system != "survey":
        return part.select(columns).write_ndjson().encode("utf-8") if part.height else b""
    lines = []
    for row in part.iter_rows(named=True):
        qtype = row["_qtype"]
        lo, hi = C.SCALES[qtype]
        answers: list[dict] = [{"question_id": qtype, "value": row["_score"], "scale_min": lo, "scale_max": hi}]
        if row["_comment"] is not None:
            answers.append({"question_id": "comment", "text": row["_comment"]})
        obj = {c: (answers if c == "answers" else row[c]) for c in columns}
        lines.append(json.dumps(obj, ensure_ascii=False))
    return "".join(line + "\n" for line in lines).encode("utf-8")
