"""cx_combine_per_key (macros/memory.sql), compiled by dbt and evaluated in DuckDB against the left joins it
stands for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from orchestration.warehouse import DbtError

from .dbt_inline import compile_inline

PARTS = """
with orders as (
    select * from (values (1, 'web', 10.5), (2, 'store', null), (3, null, 7.0)) as t (order_id, channel, amount)
),
lines as (
    -- order 4 has lines but no order: dropped, as joins from orders drop it
    select * from (values (1, 2, true), (2, 1, false), (4, 9, true)) as t (order_id, lines, in_full)
),
refunds as (
    select * from (values (3, 500, cast('2026-01-02' as date))) as t (order_id, refunded, refunded_on)
)
"""

JOINED = PARTS + """
select o.order_id, o.channel, o.amount, l.lines, l.in_full, r.refunded, r.refunded_on
from orders as o
left join lines as l on l.order_id = o.order_id
left join refunds as r on r.order_id = o.order_id
order by o.order_id
"""


def test_one_aggregation_equals_the_left_joins(tmp_path: Path) -> None:
    combined = compile_inline(tmp_path, PARTS + """
        select * from (
            {{ cx_combine_per_key('order_id', [
                ['orders', ['channel', 'amount']],
                ['lines', ['lines', 'in_full']],
                ['refunds', ['refunded', 'refunded_on']],
            ], required='orders') }}
        ) as c
        order by order_id""")
    con = duckdb.connect()
    got, want = con.sql(combined), con.sql(JOINED)
    rows = got.fetchall()
    assert rows == want.fetchall()
    assert rows == [(1, "web", 10.5, 2, True, None, None), (2, "store", None, 1, False, None, None),
                    (3, None, 7.0, None, None, 500, dt.date(2026, 1, 2))]
    assert [str(t) for t in got.types] == [str(t) for t in want.types]  # the nulls take each column's type
    assert " join " not in combined.lower()


@pytest.mark.parametrize("parts, required, problem", [
    ("[['orders', ['channel']], ['lines', ['channel']]]", "orders", "column channel is the key or in two parts"),
    ("[['orders', ['order_id']]]", "orders", "column order_id is the key or in two parts"),
    ("[['orders', ['channel']]]", "lines", "required part lines is not among the parts"),
])
def test_refuses_ambiguous_parts(tmp_path: Path, capfd: pytest.CaptureFixture[str], parts: str, required: str,
                                 problem: str) -> None:
    with pytest.raises(DbtError):
        compile_inline(tmp_path, PARTS + f"select * from ({{{{ cx_combine_per_key('order_id', {parts}, "
                                         f"required='{required}') }}}}) as c")
    assert f"cx_combine_per_key: {problem}" in capfd.readouterr().out
