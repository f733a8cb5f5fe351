"""Type and validate one file's records against the contract: valid rows are typed, bad rows are
quarantined with the column and reason. Every check is a vectorized polars expression.

Typing rules (see docs/landing-contract.md):
* ``ts``: ISO-8601 UTC ``YYYY-MM-DDTHH:MM:SS[.f]Z`` -> Datetime(us, UTC);
* ``ts_local`` (ERP): ``dd/mm/yyyy HH:MM:SS`` in Europe/Paris -> UTC. A time in the spring-forward
  gap (02:00-02:59 that does not exist) is moved forward by the gap (02:30 -> 03:30 CEST); an
  ambiguous autumn time takes its first occurrence (summer time);
* ``date``: ``dd/mm/yyyy`` in the ERP, ISO ``YYYY-MM-DD`` in JSON;
* ``dec`` (ERP): decimal comma, at most two decimals -> Decimal(18, 2); a decimal point is refused;
* ``int``: digits only (CSV) or a JSON integer; ``bool``: ``true``/``false``;
* enums, ``min`` bounds and ``pattern`` from the contract; required columns must be non-empty;
* a NUL character in a text value quarantines the record (corruption, not text);
* survey scores: within the scale of their survey type, and the declared scale must be that scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from . import contract as C
from .readers import SURVEY_COLUMNS, RawFile

UTC = "UTC"
TS_TYPE = pl.Datetime("us", UTC)


def _utc(raw: pl.Expr) -> pl.Expr:
    return pl.coalesce(
        raw.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%SZ", strict=False),
        raw.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.fZ", strict=False),
    ).dt.replace_time_zone(UTC)


def _local_outside_gaps(raw: pl.Expr) -> pl.Expr:
    """``_local`` for every value but a wall time in a DST gap (null there): the same value elsewhere,
    at a third of the cost. ``validate`` evaluates this for every row, and ``_local`` for the rows it
    leaves null whose raw value is not (a gap, or no timestamp at all)."""
    naive = raw.str.strptime(pl.Datetime("us"), "%d/%m/%Y %H:%M:%S", strict=False)
    return naive.dt.replace_time_zone(C.LOCAL_TZ, ambiguous="earliest", non_existent="null").dt.convert_time_zone(UTC)


def _local(raw: pl.Expr) -> pl.Expr:
    naive = raw.str.strptime(pl.Datetime("us"), "%d/%m/%Y %H:%M:%S", strict=False)
    local = naive.dt.replace_time_zone(C.LOCAL_TZ, ambiguous="earliest", non_existent="null")
    # nonexistent (DST gap) wall times: the clock jumped an hour ahead, so read them an hour later
    shifted = (naive + pl.duration(hours=1)).dt.replace_time_zone(C.LOCAL_TZ, ambiguous="earliest",
                                                                  non_existent="null")
    return pl.coalesce(local, pl.when(naive.is_not_null()).then(shifted)).dt.convert_time_zone(UTC)


def _typed(col: C.Column, e: C.Entity, raw: pl.Expr) -> tuple[pl.Expr, pl.Expr | str]:
    """(typed value, reason when it fails to parse; "" when it cannot fail) for one column. A value
    fails to parse exactly when it is null where the raw value is not."""
    csv = e.format != "jsonl"
    if col.type == "ts":
        v = _utc(raw)
        return v, "not an ISO-8601 UTC timestamp (YYYY-MM-DDTHH:MM:SSZ)"
    if col.type == "ts_local":
        v = _local(raw)
        return v, "not a local timestamp dd/mm/yyyy HH:MM:SS"
    if col.type == "date":
        fmt = "%d/%m/%Y" if csv else "%Y-%m-%d"
        v = raw.str.strptime(pl.Date, fmt, strict=False)
        return v, f"not a date ({'dd/mm/yyyy' if csv else 'YYYY-MM-DD'})"
    if col.type == "int":
        if not csv:
            return raw, ""
        ok = raw.str.contains(r"^-?\d{1,18}$")
        return pl.when(ok).then(raw.cast(pl.Int64, strict=False)), "not an integer"
    if col.type == "dec":
        ok = raw.str.contains(r"^-?\d{1,16}(,\d{1,2})?$")
        v = pl.when(ok).then(raw.str.replace(",", ".", literal=True).cast(pl.Decimal(18, 2), strict=False))
        point = raw.str.contains(r"^-?\d+\.\d+$")
        reason = pl.when(point).then(pl.lit("decimal point where the contract requires a decimal comma")).otherwise(
            pl.lit("not a decimal number with a decimal comma and at most two decimals"))
        return v, reason
    if col.type == "bool":
        if not csv:
            return raw, ""
        ok = raw.is_in(["true", "false"])
        return pl.when(ok).then(raw == "true"), "not a boolean (true/false)"
    return raw, ""


def _reason(col: str, message: pl.Expr | str, raw: pl.Expr | None = None) -> pl.Expr:
    msg = pl.lit(message) if isinstance(message, str) else message
    text = pl.lit(f"column '{col}': ") + msg
    if raw is not None:
        text = text + pl.lit(": '") + raw.cast(pl.Utf8).str.slice(0, 60) + pl.lit("'")
    return text


@dataclass(frozen=True)
class _Plan:
    """The expressions that type and check one entity's records: built once per entity and reused
    for every file of it (they depend on the contract alone, not on the file)."""

    parsed: list[pl.Expr]  # the typed value of each column, parsed once into __v_<column>
    quick: list[pl.Expr]  # the same, with DST-gap wall times left null (``_local_outside_gaps``)
    regap: pl.Expr | None  # the rows ``quick`` may have got wrong: a local timestamp null, its raw value not
    local: list[str]  # the __v_ columns of the local timestamps
    typed: list[pl.Expr]  # the valid rows' columns
    bad: pl.Expr  # whether the record has a problem (structural or any check)
    first: pl.Expr  # for a record with a problem, the index of its first (-1: structural)
    checks: list[tuple[pl.Expr, str]]  # (reason, column) of each check, by index
    # the column and reason expressions for the checks that failed in a file, by their indexes
    explain: dict[tuple[int, ...], tuple[pl.Expr, pl.Expr]] = field(default_factory=dict)

    def column_and_reason(self, failed: tuple[int, ...]) -> tuple[pl.Expr, pl.Expr]:
        """The column a record's first problem is about, and its reason quoting the raw value, as two
        when/then chains over the checks in ``failed`` alone (a chain over every check costs polars
        milliseconds per file to plan; a file's records fail one check or a few)."""
        held = self.explain.get(failed)
        if held is None:
            is_structural = pl.col("_check") == -1
            column_expr = pl.when(is_structural).then(pl.col("_problem").str.extract(r"column '([^']+)'"))
            reason_expr = pl.when(is_structural).then(pl.col("_problem"))
            for i in failed:
                if i >= 0:
                    reason, colname = self.checks[i]
                    column_expr = column_expr.when(pl.col("_check") == i).then(pl.lit(colname))
                    reason_expr = reason_expr.when(pl.col("_check") == i).then(reason)
            held = self.explain[failed] = (column_expr.otherwise(None), reason_expr.otherwise(None))
        return held


# the plans built so far, by entity object (kept alive here, so its id is never reused)
_PLANS: dict[int, tuple[C.Entity, _Plan]] = {}


def _plan(e: C.Entity) -> _Plan:
    held = _PLANS.get(id(e))
    if held is None:
        held = _PLANS[id(e)] = (e, _build_plan(e))
    return held[1]


def _build_plan(e: C.Entity) -> _Plan:
    typed: list[pl.Expr] = []
    parsed: list[pl.Expr] = []
    quick: list[pl.Expr] = []
    regap: list[pl.Expr] = []
    checks: list[tuple[pl.Expr, pl.Expr, str]] = []  # (is bad, reason, column)
    for col in e.columns:
        if col.type == "answers":
            continue
        r = pl.col(col.name)
        value, reason = _typed(col, e, r)
        # parse once: the typed value becomes a column that the checks and the valid rows both read
        # (eager polars would evaluate a repeated expression twice)
        parsed.append(value.alias(f"__v_{col.name}"))
        value = pl.col(f"__v_{col.name}")
        if col.type == "ts_local":
            quick.append(_local_outside_gaps(r).alias(f"__v_{col.name}"))
            regap.append(r.is_not_null() & value.is_null())
        else:
            quick.append(parsed[-1])
        typed.append(value.alias(col.name))
        if col.type == "str":  # a NUL character is corruption (binary bytes, a zero-filled block), not text
            checks.append((r.str.contains("\x00", literal=True), _reason(col.name, "NUL character in the value"),
                           col.name))
        if not col.nullable:
            checks.append((r.is_null(), _reason(col.name, "missing required value"), col.name))
        if isinstance(reason, pl.Expr) or reason:  # a parse failure leaves a null where the raw is not
            checks.append((r.is_not_null() & value.is_null(), _reason(col.name, reason, r), col.name))
        if col.enum:
            checks.append((r.is_not_null() & ~r.is_in(col.enum),
                           _reason(col.name, f"unknown value (expected one of {', '.join(col.enum)})", r), col.name))
        if col.pattern:
            checks.append((r.is_not_null() & ~r.str.contains(f"^(?:{col.pattern})$"),
                           _reason(col.name, f"does not match {col.pattern}", r), col.name))
        if col.min is not None:
            checks.append((value.is_not_null() & (value < col.min),
                           _reason(col.name, f"below the minimum {col.min}", r), col.name))
    if e.system == "survey":
        typed += [pl.col(c) for c in SURVEY_COLUMNS]
        for c in ("score_question_id", "comment"):
            checks.append((pl.col(c).str.contains("\x00", literal=True), _reason("answers", f"NUL character in {c}"),
                           "answers"))
        lo = pl.col("survey_type").replace_strict({k: v[0] for k, v in C.SCALES.items()}, default=None,
                                                  return_dtype=pl.Int64)
        hi = pl.col("survey_type").replace_strict({k: v[1] for k, v in C.SCALES.items()}, default=None,
                                                  return_dtype=pl.Int64)
        checks.append(((pl.col("scale_min") != lo) | (pl.col("scale_max") != hi),
                       _reason("answers", "declared scale does not match the survey type"), "answers"))
        checks.append((~pl.col("score").is_between(lo, hi),
                       pl.lit("column 'answers': score ") + pl.col("score").cast(pl.Utf8) + pl.lit(" outside the ")
                       + pl.col("survey_type") + pl.lit(" scale ") + lo.cast(pl.Utf8) + pl.lit("-")
                       + hi.cast(pl.Utf8), "answers"))
    # whether a record has a problem: the one expression over every check computed for every row. For
    # the records that have one, the first problem: structural problems first (-1), then column checks
    # in contract order (their index); then its column and reason (``_Plan.column_and_reason``).
    is_bad = [b.fill_null(False) for b, _r, _c in checks]
    any_bad = pl.any_horizontal(pl.col("_problem").is_not_null(), *is_bad)
    first = pl.when(pl.col("_problem").is_not_null()).then(pl.lit(-1, dtype=pl.Int32))
    if is_bad:  # the first check that fails (the record has one): the first True of the list
        first = first.otherwise(pl.concat_list(is_bad).list.arg_max().cast(pl.Int32))
    local = [f"__v_{c.name}" for c in e.columns if c.type == "ts_local"]
    return _Plan(parsed, quick, pl.any_horizontal(regap) if regap else None, local, typed, any_bad, first,
                 [(reason, colname) for _b, reason, colname in checks])


# the quarantined records as ``validate`` returns them (the load adds the file's lineage)
QUARANTINED_SCHEMA = {"line": pl.Int64, "column": pl.Utf8, "reason": pl.Utf8, "record": pl.Utf8}


def validate(raw: RawFile) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a file into (typed valid records, quarantined records with column and reason)."""
    return _validate(raw.frame, _plan(raw.entity))


def _validate(df: pl.DataFrame, plan: _Plan, keep: tuple[str, ...] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``validate`` of ``df``; ``keep``: columns carried into both results, after their own."""
    typed = plan.typed
    marked = df.with_columns(plan.quick)
    if plan.regap is not None:  # local timestamps: the exact parse again for the rows left null
        rows = marked.select(plan.regap).to_series().arg_true()
        if len(rows):
            exact = df[rows].with_columns(plan.parsed)
            marked = marked.with_columns([marked[c].scatter(rows, exact[c]) for c in plan.local])
    marked = marked.with_columns(_bad=plan.bad)
    if not marked["_bad"].any():
        return (marked.select(*typed, "_source_line", "_extra", *keep),
                pl.DataFrame(schema={**QUARANTINED_SCHEMA, **{k: df.schema[k] for k in keep}}))
    bad = marked.filter(pl.col("_bad")).with_columns(_check=plan.first)
    column, reason = plan.column_and_reason(tuple(bad["_check"].unique().sort()))
    bad = bad.with_columns(_reason=reason, _column=column)
    # the valid rows' columns only, filtered (not every raw text column, filtered and then dropped)
    valid = marked.lazy().filter(~pl.col("_bad")).select(*typed, "_source_line", "_extra", *keep).collect()
    text_cols = [c for c in df.columns if not c.startswith("_")]
    quarantined = bad.select(
        line=pl.col("_source_line"), column=pl.col("_column"), reason=pl.col("_reason"),
        record=pl.struct([pl.col(c).cast(pl.Utf8) for c in text_cols]).struct.json_encode() if text_cols
        else pl.lit("{}"),
        **{k: pl.col(k) for k in keep},
    )
    return valid, quarantined


_PART = "__part"  # which file of a group a row came from (``validate_many``)


def validate_many(raws: list[RawFile]) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """``[validate(r) for r in raws]``, with one polars plan per group of files of the same entity and
    the same columns (names, order and types): a file of a few thousand records costs polars more to
    plan and start than to check, so the files of a range of dates are checked together and split
    again. Every check is row by row (a record's problem, its column and reason, its line), so a file's
    results are the same alone or in a group (tests/test_validate_many.py). A file whose columns differ
    (drift, another order) is a group of its own."""
    groups: dict[tuple[int, tuple[tuple[str, pl.DataType], ...]], list[int]] = {}
    for i, raw in enumerate(raws):
        groups.setdefault((id(raw.entity), tuple(raw.frame.schema.items())), []).append(i)
    out: list[tuple[pl.DataFrame, pl.DataFrame] | None] = [None] * len(raws)
    for members in groups.values():
        if len(members) == 1:
            out[members[0]] = validate(raws[members[0]])
            continue
        frame = pl.concat([raws[i].frame.with_columns(pl.lit(j, pl.UInt32).alias(_PART))
                           for j, i in enumerate(members)], rechunk=False)
        valid, quarantined = _validate(frame, _plan(raws[members[0]].entity), keep=(_PART,))
        valid_parts = valid.partition_by(_PART, as_dict=True, include_key=False, maintain_order=True)
        q_parts = quarantined.partition_by(_PART, as_dict=True, include_key=False, maintain_order=True)
        no_valid, no_q = valid.drop(_PART).clear(), pl.DataFrame(schema=QUARANTINED_SCHEMA)
        for j, i in enumerate(members):
            out[i] = (valid_parts.get((j,), no_valid), q_parts.get((j,), no_q))
    return out  # type: ignore[return-value]
