"""The time macros (dbt_project/macros/time.sql), compiled by dbt and evaluated in DuckDB sessions of several time
zones: a UTC date and the hours between two instants do not depend on the session's zone (DuckDB's default is the
machine's local one), and equal what Python computes from the instants."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from .dbt_inline import compile_inline

UTC = dt.UTC
# each pair (start, end) of instants; None for a missing one
PAIRS = [
    # across the change to summer time in Europe/Paris (2026-03-29 01:00 UTC) and in New York (03-08 07:00 UTC)
    (dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC), dt.datetime(2026, 3, 29, 2, 30, tzinfo=UTC)),
    (dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC), dt.datetime(2026, 3, 8, 9, 15, tzinfo=UTC)),
    # across the change back (2026-10-25 01:00 UTC in Paris), and a case open across both changes
    (dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC), dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    (dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC), dt.datetime(2026, 11, 2, 12, 0, tzinfo=UTC)),
    # late in the UTC day: another date in every zone east or west of UTC
    (dt.datetime(2026, 1, 1, 23, 30, tzinfo=UTC), dt.datetime(2026, 1, 2, 0, 30, tzinfo=UTC)),
    (dt.datetime(2026, 1, 1, 0, 15, tzinfo=UTC), dt.datetime(2025, 12, 31, 23, 45, tzinfo=UTC)),  # negative
    # fractions of a second: whole seconds crossed, as dbt.datediff counts them
    (dt.datetime(2026, 1, 1, 0, 0, 0, 900_000, tzinfo=UTC), dt.datetime(2026, 1, 1, 0, 0, 1, 100_000, tzinfo=UTC)),
    (dt.datetime(2026, 1, 1, 0, 0, 0, 100_000, tzinfo=UTC), dt.datetime(2026, 1, 1, 0, 0, 0, 900_000, tzinfo=UTC)),
    (dt.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC)),
    # before 1970, and a null
    (dt.datetime(1960, 6, 1, 12, 0, tzinfo=UTC), dt.datetime(2026, 3, 29, 2, 30, tzinfo=UTC)),
    (None, dt.datetime(2026, 1, 1, tzinfo=UTC)),
]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]


def _seconds_crossed(start: dt.datetime, end: dt.datetime) -> int:
    """Whole seconds of the end minus whole seconds of the start (both since 1970, cut toward zero): dbt.datediff's
    'second' on DuckDB (its date_diff of two timestamps)."""
    def whole(ts: dt.datetime) -> int:
        micros = (ts - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
        return micros // 1_000_000 if micros >= 0 else -(-micros // 1_000_000)
    return whole(end) - whole(start)


def _sql(literal: dt.datetime | None) -> str:
    return "cast(null as timestamptz)" if literal is None else f"timestamptz '{literal.isoformat()}'"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> str:
    rows = " union all ".join(f"select {i} as i, {_sql(a)} as a, {_sql(b)} as b" for i, (a, b) in enumerate(PAIRS))
    return compile_inline(tmp_path_factory.mktemp("time_macros"),
                          f"select i, {{{{ utc_date('a') }}}} as a_date, {{{{ utc_date('b') }}}} as b_date, "
                          f"{{{{ hours_between('a', 'b') }}}} as hours from ({rows}) as t order by i")


@pytest.mark.parametrize("zone", ZONES)
def test_utc_dates_and_hours_do_not_depend_on_the_sessions_zone(compiled: str, zone: str) -> None:
    con = duckdb.connect()
    con.execute(f"set TimeZone = '{zone}'")
    got = con.execute(compiled).fetchall()
    expected = [(i, a and a.date(), b and b.date(), None if a is None else _seconds_crossed(a, b) / 3600)
                for i, (a, b) in enumerate(PAIRS)]
    assert got == expected, zone
    # the cases the change was for: two hours across the change to summer time are two in Paris, one across the
    # change back is one
    assert got[0][3] == 2.0 and got[2][3] == 1.0


def test_the_macros_compile_to_no_time_zone_conversion(compiled: str) -> None:
    """DuckDB converts a TIMESTAMP WITH TIME ZONE through ICU (about ten times the cost, and in the session's zone
    for a cast): the compiled SQL takes the instant's microseconds instead."""
    assert "timezone(" not in compiled
    assert compiled.count("make_timestamp(epoch_us(") == 4, compiled
