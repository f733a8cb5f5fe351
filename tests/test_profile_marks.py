"""cx_answer_mark (macros/profiles.sql): the greatest mark of a set of answers is the latest answer's, by time then
key, and it gives back that answer's date and value; compiled by dbt, evaluated in DuckDB, against Python's own
ordering of the same answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .dbt_inline import compile_inline

KEYS = st.text(alphabet="0123456789abcdefr", min_size=1, max_size=40)
TIMES = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 12, 31))
ANSWERS = st.lists(st.tuples(TIMES, KEYS, st.sampled_from(["positive", "negative", "neutral", "10", "7"])),
                   min_size=1, max_size=12, unique_by=lambda a: (a[0], a[1]))

MARKS = "select {{ cx_answer_mark('ts', 'k', utc_date('ts'), 'v') }} as m from answers"
LOOKUP = "select {{ cx_answer_mark_date('max(m)') }} as d, {{ cx_answer_mark_value('max(m)') }} as v from marks"


def test_the_greatest_mark_is_the_latest_answer(tmp_path: Path) -> None:
    marks, lookup = compile_inline(tmp_path, MARKS), compile_inline(tmp_path, LOOKUP)
    con = duckdb.connect()

    def latest_by_marks(answers: list[tuple[dt.datetime, str, str]]) -> tuple:
        """(date, value) of the greatest mark among ``answers`` (time, key, value)."""
        con.execute("create or replace table answers (ts timestamptz, k varchar, v varchar)")
        con.executemany("insert into answers values (?, ?, ?)",
                        [(t.replace(tzinfo=dt.UTC), k, v) for t, k, v in answers])
        con.execute(f"create or replace table marks as {marks}")
        return con.sql(lookup).fetchall()[0]

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ANSWERS)
    def check(answers: list[tuple[dt.datetime, str, str]]) -> None:
        latest = max(answers, key=lambda a: (a[0], a[1]))
        assert latest_by_marks(answers) == (latest[0].date(), latest[2])

    check()
    # keys that begin one another, at the same time: the greater key is the later answer
    same = dt.datetime(2026, 3, 1, 10)
    for keys, want in ((("r1", "r10"), "r10"), (("r2", "r10"), "r2"), (("r3", "r30"), "r30")):
        assert latest_by_marks([(same, k, k) for k in keys]) == (same.date(), want)
