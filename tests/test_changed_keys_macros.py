"""The night's comparison of the held rows with the current ones (cx_held_changed,
macros/incremental_facts.sql): on DuckDB it joins and compares 64-bit hashes; it must flag exactly the
keys the comparison of the columns themselves flags (cx_held_changed_exact, Spark's), on planted rows that
cover each way a key can change or not: a compared column changed, set to null, null on both sides, the
held row from the window's drops, a key only now or only held, and integers of different widths on the two
sides (a key's source_drop_days an integer now, a bigint held). With `gone` (fct_journey_events,
fct_customer_stage_transitions), a key only held or only now is changed as well, and a key may have several
held rows (the journey holds each event of a source)."""

from __future__ import annotations

import duckdb
import pytest

from .dbt_inline import compile_inline

WINDOW = {"as_of": "2026-10-31", "min_date": "2026-10-31", "max_date": "2026-11-01"}

ROWS = """
with keyed_now as (
    select * from (values
        ('o1', 'k1', 'c1', 100),      -- unchanged
        ('o2', 'k2', 'c2b', 200),     -- customer re-keyed (an identity merge)
        ('o3', 'k3', null, 300),      -- customer erased to no key
        ('o4', 'k4', null, 400),      -- no customer on either side: unchanged
        ('o5', 'k5', 'c5', 501),      -- a record gained (the sum of drops rose)
        ('o6', 'k6', 'c6', null),     -- every record lost
        ('o7', 'k7', 'c7', 700),      -- held row from the window's drops (a re-run rewrites it)
        ('o8', 'k8', 'c8', 800),      -- new: no held row (the new records find it, not this comparison)
        ('o10', 'k10', 'c10', 0)      -- unchanged, a zero sum
    ) as t (order_id, order_key, customer_key, source_drop_days)
),
held as (
    select order_key, customer_key, cast(source_drop_days as bigint) as source_drop_days,
           cast(last_drop_date as date) as last_drop_date
    from (values
        ('k1', 'c1', 100, '2026-10-01'),
        ('k2', 'c2', 200, '2026-10-01'),
        ('k3', 'c3', 300, '2026-10-01'),
        ('k4', null, 400, '2026-10-01'),
        ('k5', 'c5', 500, '2026-10-01'),
        ('k6', 'c6', 600, '2026-10-01'),
        ('k7', 'c7', 700, '2026-10-31'),
        ('k9', 'c9', 900, '2026-10-01'),  -- held only: gone from staging (not this comparison's)
        ('k10', 'c10', 0, '2026-10-01')
    ) as t (order_key, customer_key, source_drop_days, last_drop_date)
)
"""

ARGS = "'keyed_now', 'order_id', 'order_key', ['customer_key', 'source_drop_days'], 'last_drop_date'"


def test_the_hashed_comparison_flags_what_the_exact_one_flags(compiled: dict[str, str]) -> None:
    hashed, exact = compiled["hashed"], compiled["exact"]
    assert "hash(" in hashed and "is distinct from" not in hashed  # DuckDB takes the hashed path
    assert "is distinct from" in exact
    con = duckdb.connect()
    got = sorted(r[0] for r in con.sql(hashed).fetchall())
    assert got == sorted(r[0] for r in con.sql(exact).fetchall())
    assert got == ["o2", "o3", "o5", "o6", "o7"]


GONE_ROWS = """
with keyed_now as (
    select * from (values
        ('s1', 'c1', 100),      -- unchanged, three held events
        ('s2', 'c2b', 200),     -- re-keyed: every held event of it compares as changed
        ('s3', 'c3', 301),      -- a record gained, one held event
        ('s4', 'c4', null),     -- no sum of drops on either side (not an order): unchanged
        ('s5', 'c5', 500),      -- held events from the window's drops
        ('s6', 'c6', 600),      -- new: no held event
        ('s8', 'c8', 800)       -- unchanged, one held event
    ) as t (source_key, customer_key, source_drop_days)
),
held as (
    select source_key, customer_key, cast(source_drop_days as bigint) as source_drop_days,
           cast(last_drop_date as date) as last_drop_date
    from (values
        ('s1', 'c1', 100, '2026-10-01'), ('s1', 'c1', 100, '2026-10-01'), ('s1', 'c1', 100, '2026-10-01'),
        ('s2', 'c2', 200, '2026-10-01'), ('s2', 'c2', 200, '2026-10-01'),
        ('s3', 'c3', 300, '2026-10-01'),
        ('s4', 'c4', null, '2026-10-01'),
        ('s5', 'c5', 500, '2026-10-31'), ('s5', 'c5', 500, '2026-10-31'),
        ('s7', 'c7', 700, '2026-10-01'), ('s7', 'c7', 700, '2026-10-01'),  -- gone: its source holds no record now
        ('s8', 'c8', 800, '2026-10-01')
    ) as t (source_key, customer_key, source_drop_days, last_drop_date)
)
"""

GONE_ARGS = "'keyed_now', 'source_key', 'source_key', ['customer_key', 'source_drop_days'], 'last_drop_date'"


def test_the_hashed_comparison_with_gone_keys_flags_what_the_exact_one_flags(compiled: dict[str, str]) -> None:
    hashed, exact = compiled["gone_hashed"], compiled["gone_exact"]
    assert "full outer join" in hashed and "hash(" in hashed and "is distinct from" not in hashed
    assert "full outer join" in exact and "is distinct from" in exact
    con = duckdb.connect()
    got = sorted(r[0] for r in con.sql(hashed).fetchall())
    # the exact comparison yields a key once per held row (its callers take the union); the hashed one once
    assert got == sorted({r[0] for r in con.sql(exact).fetchall()})
    assert got == ["s2", "s3", "s5", "s6", "s7"]


def test_a_gone_key_whose_hash_collides_with_a_present_one_is_still_found(compiled: dict[str, str]) -> None:
    """Two keys whose 64-bit hashes collide: planted by replacing DuckDB's hash of the key alone (the join's key)
    with a constant in the compiled SQL, so every key collides with every other. A gone key joins a present
    key's row with the same compared columns (two orders of one customer with the same drops); the second hash
    of the key in the compared hash still tells them apart, so the gone key is found (and the present one
    recomputed needlessly)."""
    collided = compiled["collision"]
    for key in ("source_key", "now_keys.source_key", "held_keys.source_key"):
        collided = collided.replace(f"hash({key})", "hash(0)")
    assert collided.count("hash(0)") == 4
    con = duckdb.connect()
    assert sorted(r[0] for r in con.sql(collided).fetchall()) == ["s1", "s7"]


COLLISION_ROWS = """
with keyed_now as (
    select * from (values ('s1', 'c1', 100)) as t (source_key, customer_key, source_drop_days)
),
held as (
    select source_key, customer_key, cast(source_drop_days as bigint) as source_drop_days,
           cast(last_drop_date as date) as last_drop_date
    from (values ('s1', 'c1', 100, '2026-10-01'), ('s7', 'c1', 100, '2026-10-01')) as t
        (source_key, customer_key, source_drop_days, last_drop_date)
)
"""

SPLIT = "\n/* cx-split */\n"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every query of this file, compiled by dbt in one call (each dbt call parses the project again)."""
    def select(rows: str, call: str) -> str:
        return rows + f"select * from ({{{{ {call} }}}}) as c"

    queries = {
        "hashed": select(ROWS, f"cx_held_changed({ARGS}, held='held')"),
        "exact": select(ROWS, f"cx_held_changed_exact({ARGS}, false, 'held')"),
        "gone_hashed": select(GONE_ROWS, f"cx_held_changed({GONE_ARGS}, gone=true, held='held')"),
        "gone_exact": select(GONE_ROWS, f"cx_held_changed_exact({GONE_ARGS}, true, 'held')"),
        "collision": select(COLLISION_ROWS, f"cx_held_changed({GONE_ARGS}, gone=true, held='held')"),
    }
    parts = compile_inline(tmp_path_factory.mktemp("compile"), SPLIT.join(queries.values()), WINDOW).split(SPLIT)
    assert len(parts) == len(queries)
    return dict(zip(queries, parts, strict=True))
