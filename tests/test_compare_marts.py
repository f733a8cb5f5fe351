"""scripts/compare_marts.py: the refactoring check of issue 13 (same rows, floats to 12 significant
digits, HUGEINT -> BIGINT allowed), every branch on two tiny warehouses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb
import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "compare_marts.py"
_SPEC = importlib.util.spec_from_file_location("compare_marts", SCRIPT)
compare_marts = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compare_marts)


def _warehouse(path: Path, sql: str) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(sql)
    return path


BASE = "create table marts.k as select * from (values (1, 'a', 0.08703147912225001::double, 3::hugeint)) t(i, s, f, n)"


@pytest.mark.parametrize(("after", "same", "said"), [
    (BASE, True, "same       marts.k (1 rows)"),
    # the values of a refactoring that sums in another order: across a rounding boundary of the 12th digit
    (BASE.replace("0.08703147912225001", "0.08703147912224996"), True, "1 rows equal within one unit"),
    (BASE.replace("3::hugeint", "3::bigint"), True, "types n HUGEINT->BIGINT"),
    (BASE.replace("0.08703147912225001", "0.0870314791230"), False, "rows differ"),
    (BASE.replace("'a'", "'b'"), False, "before only"),
    (BASE.replace("3::hugeint", "3::double"), False, "type of n: HUGEINT -> DOUBLE"),
    (BASE.replace("t(i, s, f, n)", "t(i, s, g, n)"), False, "columns differ"),
    ("create table marts.other as select 1 as i", False, "only in before"),
])
def test_every_verdict(tmp_path: Path, capsys: pytest.CaptureFixture, after: str, same: bool, said: str) -> None:
    compare_marts.BOUNDARY_PAIRS.clear()
    before = _warehouse(tmp_path / "before.duckdb", BASE)
    changed = _warehouse(tmp_path / "after.duckdb", after)
    assert compare_marts.main([str(before), str(changed)]) == (0 if same else 1)
    assert said in capsys.readouterr().out
