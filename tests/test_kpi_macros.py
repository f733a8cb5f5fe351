"""The KPI statistics macros, compiled by dbt and evaluated in DuckDB, against worked examples."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from .dbt_inline import compile_inline


def evaluate(tmp_path: Path, sql: str) -> tuple:
    (row,) = duckdb.sql(compile_inline(tmp_path, sql)).limit(1).fetchall()
    return row


def test_nps_worked_example_adjusted_wald(tmp_path: Path) -> None:
    """docs/kpi-decisions.md (NPS interval): P/passives/D = 50/30/20 (n = 100) gives NPS 30, interval ~ [14.1, 44.2]."""
    value, low, high = evaluate(tmp_path, "select {{ nps_value(50, 20, 100) }}, "
                                          "{{ nps_adjusted_wald(50, 20, 100, 'low') }}, "
                                          "{{ nps_adjusted_wald(50, 20, 100, 'high') }}")
    assert value == pytest.approx(30.0)
    assert round(low, 1) == 14.1 and round(high, 1) == 44.2


def test_nps_interval_is_clipped_to_its_range(tmp_path: Path) -> None:
    low, high = evaluate(tmp_path, "select {{ nps_adjusted_wald(0, 40, 40, 'low') }}, "
                                   "{{ nps_adjusted_wald(40, 0, 40, 'high') }}")
    assert low >= -100 and high <= 100


def test_wilson_interval(tmp_path: Path) -> None:
    # 8 of 10: Wilson 95 % = [0.4902, 0.9433]; 0 of 10: lower bound exactly 0
    low, high, zero_low = evaluate(tmp_path, "select {{ wilson_low(8, 10) }}, {{ wilson_high(8, 10) }}, "
                                             "{{ wilson_low(0, 10) }}")
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert zero_low == pytest.approx(0.0, abs=1e-12)


def test_nps_category_and_reportability_boundaries(tmp_path: Path) -> None:
    row = evaluate(tmp_path, "select " + ", ".join(f"{{{{ nps_category({s}) }}}}" for s in (0, 6, 7, 8, 9, 10, 11))
                   + ", {{ is_reportable(29) }}, {{ is_reportable(30) }}")
    assert row == ("detractor", "detractor", "passive", "passive", "promoter", "promoter", None, False, True)


def test_journey_moments_every_branch(tmp_path: Path) -> None:
    cases = {
        # delivery: late wins over incomplete; both fine -> positive
        "{{ delivery_moment_reason('false', 'false') }}": "late delivery",
        "{{ delivery_moment_reason('false', 'true') }}": "late delivery",
        "{{ delivery_moment_reason('true', 'false') }}": "incomplete delivery",
        "{{ delivery_moment_reason('true', 'true') }}": "delivered as promised",
        "{{ delivery_moment('true', 'false') }}": "negative",
        "{{ delivery_moment('true', 'true') }}": "positive",
        # support: reopened wins over multi-contact; one contact -> first-contact resolution
        "{{ case_moment_reason(1, 3) }}": "reopened case",
        "{{ case_moment_reason(0, 2) }}": "multi-contact case",
        "{{ case_moment_reason(0, 1) }}": "first-contact resolution",
        "{{ case_moment(0, 2) }}": "negative",
        "{{ case_moment(0, 1) }}": "positive",
        # survey answers at each boundary
        "{{ response_moment(\"'nps'\", 9) }}": "positive", "{{ response_moment(\"'nps'\", 8) }}": "neutral",
        "{{ response_moment(\"'nps'\", 7) }}": "neutral", "{{ response_moment(\"'nps'\", 6) }}": "negative",
        "{{ response_moment(\"'csat'\", 4) }}": "positive", "{{ response_moment(\"'csat'\", 3) }}": "neutral",
        "{{ response_moment(\"'csat'\", 2) }}": "negative", "{{ response_moment(\"'ces'\", 6) }}": "positive",
        "{{ response_moment(\"'ces'\", 5) }}": "neutral", "{{ response_moment(\"'ces'\", 4) }}": "neutral",
        "{{ response_moment(\"'ces'\", 3) }}": "negative",
        "{{ response_moment_reason(\"'nps'\", 0) }}": "detractor answer",
        "{{ response_moment_reason(\"'ces'\", 1) }}": "effortful answer",
    }
    row = evaluate(tmp_path, "select " + ", ".join(cases))
    assert dict(zip(cases, row, strict=True)) == cases
