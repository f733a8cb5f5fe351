"""Compare the marts of two warehouses: does a refactoring keep every value?

    python scripts/compare_marts.py BEFORE.duckdb AFTER.duckdb [--schema marts] [--schema restricted]

For every table of the schema (``marts`` by default) in either file: the same column names in the
same order, the same types (except ``HUGEINT`` before and ``BIGINT`` after: the explicit casts that
make the contracts portable to Spark), and the same rows as a multiset, floating-point values
compared to 12 significant digits. Two values on either side of a rounding boundary (0.08703147912225001
and 0.08703147912224996 round to ...223 and ...222) are equal within one unit of the 12th digit; such
rows are paired and counted, not reported as differences. Prints one verdict per table and exits 1
when any table differs.
Both files are opened read-only.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Hashable
from pathlib import Path

import duckdb

# (before, after) type pairs that count as equal
ALLOWED_TYPE_CHANGES = {("HUGEINT", "BIGINT")}
FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}
SHOWN = 5  # differing rows shown per side
BOUNDARY_PAIRS: dict[str, int] = {}  # table -> rows equal within one unit of the 12th significant digit


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = ?", [schema]).fetchall()}


def _norm(value: object) -> Hashable:
    """A hashable value; floats to 12 significant digits (as text, so NaN equals NaN)."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.12g}"
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _norm(v)) for k, v in value.items()))
    return value


def _float(text: object) -> float | None:
    try:
        return float(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _within_last_digit(b: tuple, a: tuple) -> bool:
    """Rows equal but for floats one unit apart in the 12th significant digit."""
    if len(b) != len(a):
        return False
    for x, y in zip(b, a, strict=True):
        if x == y:
            continue
        fx, fy = _float(x), _float(y)
        if fx is None or fy is None or not math.isclose(fx, fy, rel_tol=2e-12, abs_tol=0.0):
            return False
    return True


def _pair_boundary_rows(only_b: Counter, only_a: Counter) -> int:
    """Remove from both sides the rows that differ only across a rounding boundary; how many."""
    paired = 0
    for row_b in list(only_b.elements()):
        match = next((row_a for row_a in only_a if only_a[row_a] > 0 and _within_last_digit(row_b, row_a)), None)
        if match is not None:
            only_b[row_b] -= 1
            only_a[match] -= 1
            paired += 1
    only_b += Counter()  # drop zero counts
    only_a += Counter()
    return paired


def _rows(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> Counter:
    rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()
    return Counter(tuple(_norm(v) for v in row) for row in rows)


def compare_table(before: duckdb.DuckDBPyConnection, after: duckdb.DuckDBPyConnection,
                  schema: str, table: str) -> list[str]:
    """The differences of one table (empty: the same)."""
    cols_b, cols_a = _columns(before, schema, table), _columns(after, schema, table)
    names_b, names_a = [c for c, _ in cols_b], [c for c, _ in cols_a]
    if names_b != names_a:
        missing, added = sorted(set(names_b) - set(names_a)), sorted(set(names_a) - set(names_b))
        return [f"columns differ: missing {missing}, added {added}" if missing or added
                else f"column order differs: {names_b} -> {names_a}"]
    problems = [f"type of {name}: {tb} -> {ta}" for (name, tb), (_, ta) in zip(cols_b, cols_a, strict=True)
                if tb != ta and (tb, ta) not in ALLOWED_TYPE_CHANGES]
    rows_b, rows_a = _rows(before, schema, table), _rows(after, schema, table)
    only_b, only_a = rows_b - rows_a, rows_a - rows_b
    if paired := _pair_boundary_rows(only_b, only_a):
        BOUNDARY_PAIRS[f"{schema}.{table}"] = paired
    if only_b or only_a:
        problems.append(f"rows differ: {rows_b.total()} -> {rows_a.total()} rows, "
                        f"{only_b.total()} only before, {only_a.total()} only after")
        problems += [f"  before only: {row}" for row in list(only_b.elements())[:SHOWN]]
        problems += [f"  after only:  {row}" for row in list(only_a.elements())[:SHOWN]]
    return problems


def compare(before_path: Path, after_path: Path, schemas: list[str]) -> bool:
    """Print a verdict per table; True when every table holds the same values."""
    same = True
    with duckdb.connect(str(before_path), read_only=True) as before, \
            duckdb.connect(str(after_path), read_only=True) as after:
        for schema in schemas:
            tables_b, tables_a = _tables(before, schema), _tables(after, schema)
            if not tables_b and not tables_a:
                print(f"{schema}: no tables in either warehouse")
                same = False
            for table in sorted(tables_b | tables_a):
                label = f"{schema}.{table}"
                if table not in tables_a or table not in tables_b:
                    print(f"DIFFERENT  {label}: only in {'before' if table in tables_b else 'after'}")
                    same = False
                    continue
                problems = compare_table(before, after, schema, table)
                if problems:
                    same = False
                    print(f"DIFFERENT  {label}")
                    for p in problems:
                        print(f"    {p}")
                else:
                    changed = [f"{n} {tb}->{ta}" for (n, tb), (_, ta)
                               in zip(_columns(before, schema, table), _columns(after, schema, table), strict=True)
                               if tb != ta]
                    rows = before.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
                    near = BOUNDARY_PAIRS.get(label)
                    print(f"same       {label} ({rows} rows"
                          + (f"; types {', '.join(changed)}" if changed else "")
                          + (f"; {near} rows equal within one unit of the 12th significant digit" if near else "")
                          + ")")
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--schema", action="append", dest="schemas",
                        help="schema to compare (repeatable; default: marts)")
    args = parser.parse_args(argv)
    for path in (args.before, args.after):
        if not path.is_file():
            parser.error(f"no such file: {path}")
    return 0 if compare(args.before, args.after, args.schemas or ["marts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
