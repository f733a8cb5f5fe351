"""The declared schema of every table an analysis writes, and the check that enforces it.

BI tools read these tables like the dbt marts, so their shape is a contract: the columns, in
order, with their types, and the grain (key columns that identify a row). An analysis whose
output breaks it is refused before anything is written (blocking: a renamed or retyped column
breaks every dashboard that reads it, a duplicated grain double-counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl


def problems(table: str, df: pl.DataFrame, schema: Mapping[str, pl.DataType],
             key: Sequence[str] = (), not_null: Sequence[str] = ()) -> list[str]:
    """What is wrong with ``df`` against ``schema`` (columns, order, types), its grain ``key`` (unique;
    a null counts as a value, e.g. a pooled row's cohort) and its ``not_null`` columns; an empty list
    when nothing is."""
    out = []
    want, got = list(schema), df.columns
    missing = [c for c in want if c not in got]
    extra = [c for c in got if c not in schema]
    if missing:
        out.append(f"{table}: missing columns {', '.join(missing)}")
    if extra:
        out.append(f"{table}: undeclared columns {', '.join(extra)}")
    if not missing and not extra and got != want:
        out.append(f"{table}: columns out of the declared order (declared: {', '.join(want)})")
    for c in want:
        if c in got and df.schema[c] != schema[c]:
            out.append(f"{table}.{c}: type {df.schema[c]}, declared {schema[c]}")
    if key and not missing and df.height:
        nulls = [c for c in not_null if c in got and df[c].null_count()]
        if nulls:
            out.append(f"{table}: nulls in required column(s) {', '.join(nulls)}")
        dup = df.height - df.select(key).unique().height
        if dup:
            out.append(f"{table}: {dup} rows repeat the grain ({', '.join(key)})")
    return out
