"""Incremental facts (macros/incremental_facts.sql): fct_orders night by night equals a full refresh.

The messy nights of tests/test_staging_incremental.py (the same generated company): night N from the
first, incomplete extract of a re-extracted drop, nights N+1 and N+2, the corrected re-extract of N and
N's partition re-run after N+2, then N+2 again. Each night runs `+fct_orders` (staging, the key map and
what it reads, the refunds join, fct_orders) incrementally; after the re-run of N, fct_orders must be
the full refresh as of N row for row (orders placed in N+1 and N+2 gone, late shipments and returns of
N+1 and N+2 taken back out), and after N+2 again the full refresh as of N+2. The nights must change
orders placed before them (deliveries, returns, refunds, re-keyed customers) and the re-run must remove
orders, or the test would pass for want of them. One edit of the generated drops: the payment of an
older order's refund arrives late, in night N+1 (the generated sources deliver a payment before its
refunds), so that only the payment's drop says the order changed.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingestion import contract as C
from ingestion.load import Zones, load_drop
from orchestration.warehouse import run_dbt, window_vars
from simulator import generate

from . import drop_edit
from .test_staging_incremental import COMPANY, START, _sorted, _superseded_night

SELECT = ["--select", "+fct_orders", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
DAY = dt.timedelta(days=1)


def _delay_a_refunded_payment(landing: Path, night: dt.date) -> str:
    """Moves the payment of a refund delivered before night N (of an order's invoice, every record of
    the chain delivered before N) out of its drops into night N+1's; returns its payment_id."""
    drops = sorted((p for p in (landing / "billing").iterdir() if p.is_dir()), key=lambda p: p.name)
    early = [d for d in drops if dt.date.fromisoformat(d.name) < night]
    records = {e: [r for d in early for r in drop_edit.read(d, "billing", e)[1]]
               for e in ("invoices", "payments", "refunds")}
    ordered = {r["invoice_id"] for r in records["invoices"] if r.get("order_id")}
    paid = {r["payment_id"]: r for r in records["payments"] if r["invoice_id"] in ordered}
    payment = next(r["payment_id"] for r in records["refunds"] if r["payment_id"] in paid)
    moved = None
    for drop in [*drops, *(landing / "_superseded" / "billing").glob("*")]:
        _, rows = drop_edit.read(drop, "billing", "payments")
        kept = [r for r in rows if r["payment_id"] != payment]
        if len(kept) < len(rows):
            moved = [r for r in rows if r["payment_id"] == payment][-1] if drop in early else moved
            drop_edit.write(drop, "billing", "payments", None, kept)
    late = drop_edit.folder(landing, "billing", night + DAY)
    drop_edit.write(late, "billing", "payments", None, [*drop_edit.read(late, "billing", "payments")[1], moved])
    return payment


def _orders(data: Path) -> pl.DataFrame:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql("select * from marts.fct_orders").pl()


def _night(data: Path, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Runs the window [start, end) and checks fct_orders ran incrementally; returns the fact."""
    results = run_dbt(["build", *SELECT], data_dir=data, dbt_vars=window_vars(start, end))
    (fact,) = [r for r in results if r.node.name == "fct_orders"]
    assert "changed as (" in fact.node.compiled_code, "fct_orders did not run incrementally"
    return _orders(data)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.date, dict[str, pl.DataFrame]]:
    data = tmp_path_factory.mktemp("facts_incremental")
    generate(COMPANY, data / "landing")
    night, reextracted = _superseded_night(data / "landing")
    payment = _delay_a_refunded_payment(data / "landing", night)
    zones = Zones(data / "landing", data / "raw", data / "quarantine")
    first_extract = Zones(data / "landing" / "_superseded", data / "raw", data / "quarantine")

    def land(day: dt.date, *, superseded_first: bool = False) -> None:
        for system in C.SYSTEMS:
            use = first_extract if superseded_first and system in reextracted else zones
            assert load_drop(use, system, day).status == "loaded", (system, day)

    day = START
    while day < night:
        land(day)
        day += DAY
    # first run: no table yet, a full build as of N-1
    run_dbt(["build", *SELECT], data_dir=data, dbt_vars=window_vars(night - DAY, night))
    facts = {"before": _orders(data)}
    land(night, superseded_first=True)
    facts["N"] = _night(data, night, night + DAY)
    for d in (1, 2):
        land(night + d * DAY)
        facts[f"N+{d}"] = _night(data, night + d * DAY, night + (d + 1) * DAY)
    # the corrected re-extract of night N lands after N+2 and its partition runs again
    for system in reextracted:
        assert load_drop(zones, system, night).status == "loaded", system
    facts["rerun"] = _night(data, night, night + DAY)
    # night N+2 again: it catches up on N+1's drops, which the re-run took back out
    facts["final"] = _night(data, night + 2 * DAY, night + 3 * DAY)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        (facts["late_payment_drop"],) = con.execute("select drop_date from staging.stg_billing__payments "
                                                    "where payment_id = ?", [payment]).fetchone()
    return data, night, facts


def _changed(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Orders of `before` whose row is different in `after` (both columns suffixed)."""
    joined = before.join(after, on="order_key", suffix="_after")
    differs = pl.any_horizontal([~pl.col(c).eq_missing(pl.col(f"{c}_after"))
                                 for c in before.columns if c != "order_key"])
    return joined.filter(differs)


def test_the_nights_change_older_orders_and_the_rerun_removes_orders(
        nights: tuple[Path, dt.date, dict[str, pl.DataFrame]]) -> None:
    _, night, facts = nights
    steps = ["before", "N", "N+1", "N+2"]
    changed = pl.concat([_changed(facts[a], facts[b]) for a, b in zip(steps, steps[1:], strict=False)])
    # orders placed before the night they changed in: late shipments delivered, returns, refunds
    assert changed.filter(pl.col("ordered_local_date") < night - DAY).height > 0
    delivered = changed.filter(~pl.col("is_delivered") & pl.col("is_delivered_after")).height
    returned = changed.filter(pl.col("returns_after") > pl.col("returns")).height
    refunded = changed.filter(pl.col("refunded_minor_after") > pl.col("refunded_minor")).height
    rekeyed = changed.filter(~pl.col("customer_key").eq_missing(pl.col("customer_key_after"))).height
    assert delivered > 0 and returned > 0 and refunded > 0, (delivered, returned, refunded)
    assert rekeyed > 0, "no order re-keyed by an erasure request or an identity merge in the nights"
    assert facts["late_payment_drop"] == night + DAY
    # the re-run of N took N+1's and N+2's new orders back out, and N+2 again put them back
    gone = facts["N+2"].join(facts["rerun"], on="order_key", how="anti").height
    back = facts["final"].join(facts["rerun"], on="order_key", how="anti").height
    assert gone > 0 and back > 0, (gone, back)
    for state in ("N", "N+1", "N+2", "rerun", "final"):
        assert facts[state]["order_key"].is_unique().all(), state


def _full_refresh(data: Path, as_of: dt.date, into: Path) -> pl.DataFrame:
    into.mkdir()
    for zone in ("raw", "quarantine"):
        shutil.copytree(data / zone, into / zone)
    run_dbt(["build", *SELECT, "--full-refresh"], data_dir=into, dbt_vars={"as_of": as_of.isoformat()})
    return _orders(into)


@pytest.mark.parametrize("state", ["rerun", "final"])
def test_night_by_night_equals_a_full_refresh(nights: tuple[Path, dt.date, dict[str, pl.DataFrame]], state: str,
                                              tmp_path: Path) -> None:
    """After the re-run of night N (the re-extract), fct_orders is the full refresh as of N, though N+1 and
    N+2 had run; after N+2 runs again, the full refresh as of N+2."""
    data, night, facts = nights
    as_of = night if state == "rerun" else night + 2 * DAY
    got, want = facts[state], _full_refresh(data, as_of, tmp_path / "full")
    assert got.schema == want.schema
    assert got.height == want.height > 0
    assert _sorted(got).equals(_sorted(want))
