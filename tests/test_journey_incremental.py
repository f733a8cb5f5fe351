"""Incremental journey (macros/incremental_facts.sql): fct_journey_events (on source_key) and
fct_customer_stage_transitions (on customer_key) night by night equal a full refresh.

The nights of tests/test_facts_incremental.py (the same company and edits: night N from a superseded
first extract, N+1 with an erasure request of a customer whose case and answer came before N, N+2, the
corrected re-extract of N and N's re-run, N+2 again). Each night runs both models and what they read
incrementally, and after every night each equals a `--full-refresh` over the raw zone of that moment, row
for row. The nights must change events of records delivered before them (a delivery, a return, a
resolved case, a cancelled subscription, a re-keyed customer), and remove events and whole customers'
transitions, or the test would pass for want of them. One more edit of the generated drops: N+1
cancels a subscription delivered before N (the generated nights cancel only newer ones), and N's CRM
drop becomes a re-extract whose first extract holds a campaign touch the corrected one retracts.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from orchestration.warehouse import run_dbt, window_vars
from simulator import generate

from . import drop_edit
from .nights import COMPANY, land_before, land_reextract, lander, retracted_touch, superseded_night
from .nights import sorted_rows as _sorted
from .test_facts_incremental import _delay_a_refunded_payment, _erase_a_customer_with_a_case, _repoint_a_shipment

MODELS = {"fct_journey_events": "source_key", "fct_customer_stage_transitions": "customer_key"}
SELECT = ["--select", "+fct_customer_stage_transitions",
          "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
DAY = dt.timedelta(days=1)
STATES = ["N", "N+1", "N+2", "rerun", "final"]


def _tables(data: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {m: con.sql(f"select * from marts.{m}").pl() for m in MODELS}


def _full_refresh(data: Path, as_of: dt.date, into: Path) -> dict[str, pl.DataFrame]:
    for zone in ("raw", "quarantine"):
        shutil.copytree(data / zone, into / zone)
    run_dbt(["build", *SELECT, "--full-refresh"], data_dir=into, dbt_vars={"as_of": as_of.isoformat()})
    return _tables(into)


def _night(data: Path, start: dt.date, full_into: Path) -> tuple[dict, dict]:
    """Runs the window [start, start + 1 day) incrementally (checked: each model reads the changed keys
    only); returns its tables and a full refresh's as of `start` over the same raw zone."""
    results = run_dbt(["build", *SELECT], data_dir=data, dbt_vars=window_vars(start, start + DAY))
    for name, key in MODELS.items():
        (node,) = [r.node for r in results if r.node.name == name]
        assert "changed as (" in node.compiled_code, f"{name} did not run incrementally"
        assert f"in (select {key} from changed)" in node.compiled_code, name
    (events,) = [r.node for r in results if r.node.name == "fct_journey_events"]
    for column in ("o.order_key", "touch_key", "return_key", "case_key", "response_key", "payment_key"):
        assert f"{column} in (select source_key from changed)" in events.compiled_code, column
    # on DuckDB the changed keys come from the pre-hook's temporary table, not from the query itself
    # (macros/incremental_facts.sql cx_stage_changed_keys: one query ran out of memory at scale L)
    assert "select source_key from temp.main.fct_journey_events__changed_keys" in events.compiled_code
    # and the touches' per-customer comparison from the first pre-hook's (computed once a night)
    assert "select customer_key from temp.main.fct_journey_events__changed_touch_customers" in events.compiled_code
    assert "time_sum" not in events.compiled_code
    assert "held_others" not in events.compiled_code
    return _tables(data), _full_refresh(data, start, full_into)


def _cancel_an_older_subscription(landing: Path, night: dt.date) -> str:
    """Adds to night N+1's billing drop the cancellation of a subscription started and delivered before
    night N and never cancelled (the generated nights cancel none that old); returns its id."""
    drops = sorted(d for d in (landing / "billing").iterdir() if d.is_dir())
    versions = [r for d in drops for r in drop_edit.read(d, "billing", "subscriptions")[1]]
    early = {r["subscription_id"]: r for d in drops if dt.date.fromisoformat(d.name) < night
             for r in drop_edit.read(d, "billing", "subscriptions")[1]}
    cancelled = {r["subscription_id"] for r in versions if r.get("cancelled_at")}
    later = {r["subscription_id"] for d in drops if dt.date.fromisoformat(d.name) >= night
             for r in drop_edit.read(d, "billing", "subscriptions")[1]}
    sub = sorted(set(early) - cancelled - later)[0]
    stamp = f"{(night + DAY).isoformat()}T09:00:00Z"
    drop = drop_edit.folder(landing, "billing", night + DAY)
    header, rows = drop_edit.read(drop, "billing", "subscriptions")
    cancellation = {**early[sub], "cancelled_at": stamp, "cancel_reason": "too_expensive", "updated_at": stamp}
    drop_edit.write(drop, "billing", "subscriptions", header, [*rows, cancellation])
    return sub


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[dt.date, dict, dict]:
    data = tmp_path_factory.mktemp("journey_incremental")
    generate(COMPANY, data / "landing")
    night, _ = superseded_night(data / "landing")
    _delay_a_refunded_payment(data / "landing", night)
    _erase_a_customer_with_a_case(data / "landing", night)
    _cancel_an_older_subscription(data / "landing", night)
    retracted_touch(data / "landing", night)
    _repoint_a_shipment(data / "landing", night)
    night_again, reextracted = superseded_night(data / "landing")
    assert night_again == night and "crm" in reextracted, (night_again, reextracted)
    land = lander(data, reextracted)

    land_before(land, night)
    run_dbt(["build", *SELECT], data_dir=data, dbt_vars=window_vars(night - DAY, night))
    got: dict = {"before": _tables(data)}
    want: dict = {}
    land(night, superseded_first=True)
    got["N"], want["N"] = _night(data, night, tmp_path_factory.mktemp("full_N"))
    for d in (1, 2):
        land(night + d * DAY)
        got[f"N+{d}"], want[f"N+{d}"] = _night(data, night + d * DAY, tmp_path_factory.mktemp(f"full_N{d}"))
    land_reextract(data, reextracted, night)
    got["rerun"], want["rerun"] = _night(data, night, tmp_path_factory.mktemp("full_rerun"))
    got["final"], want["final"] = _night(data, night + 2 * DAY, tmp_path_factory.mktemp("full_final"))
    return night, got, want


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("state", STATES)
def test_night_by_night_equals_a_full_refresh(nights: tuple[dt.date, dict, dict], state: str, model: str) -> None:
    _, got, want = nights
    a, b = got[state][model], want[state][model]
    assert a.schema == b.schema
    missing = b.join(a, on=b.columns, how="anti", nulls_equal=True)
    extra = a.join(b, on=a.columns, how="anti", nulls_equal=True)
    assert missing.height == extra.height == 0, (missing, extra)
    assert a.height == b.height > 0
    assert _sorted(a).equals(_sorted(b))


def _steps(got: dict) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    return [(got[a]["fct_journey_events"], got[b]["fct_journey_events"])
            for a, b in zip(["before", "N", "N+1"], ["N", "N+1", "N+2"], strict=True)]


def test_the_nights_change_events_of_older_records(nights: tuple[dt.date, dict, dict]) -> None:
    """Events new in a night for a source record that had events before it (a delivery, a resolved case,
    a cancelled subscription), a return of an order placed before, an event re-keyed to another customer."""
    _, got, _ = nights
    new, rekeyed = [], []
    for before, after in _steps(got):
        fresh = after.join(before, on="event_id", how="anti")
        new.append(fresh.join(before.select("source_key").unique(), on="source_key", how="semi"))
        both = before.join(after, on="event_id", suffix="_after")
        rekeyed.append(both.filter(pl.col("customer_key") != pl.col("customer_key_after")))
    new_types = set(pl.concat(new)["event_type"])
    assert {"order_delivered", "case_resolved", "subscription_cancelled"} <= new_types, new_types
    returns = pl.concat([after.join(before, on="event_id", how="anti") for before, after in _steps(got)])
    placed = pl.concat([before for before, _ in _steps(got)]).filter(pl.col("event_type") == "order_placed")
    assert returns.filter(pl.col("event_type") == "return").height > 0
    assert placed.height > 0
    rekeyed_events = pl.concat(rekeyed)
    assert rekeyed_events.height > 0, "no event re-keyed in the nights"
    # a re-keyed event keeps its older drop: only the customer_key comparison says it changed
    assert rekeyed_events.filter(pl.col("last_drop_date_after") < pl.col("last_drop_date").max()).height > 0


def test_the_nights_delete_events_and_customers(nights: tuple[dt.date, dict, dict]) -> None:
    """The re-run removes events (and N+2 again brings them back); a customer re-keyed away loses every
    transition (the held rows of a key with no row now are deleted)."""
    _, got, _ = nights
    events = "fct_journey_events"
    gone = got["N+2"][events].join(got["rerun"][events], on="event_id", how="anti").height
    back = got["final"][events].join(got["rerun"][events], on="event_id", how="anti").height
    assert gone > 0 and back > 0, (gone, back)
    transitions = "fct_customer_stage_transitions"
    lost = [got[a][transitions].join(got[b][transitions], on="customer_key", how="anti").height
            for a, b in zip(["before", "N", "N+1"], ["N", "N+1", "N+2"], strict=True)]
    assert sum(lost) > 0, "no customer lost their transitions in the nights"
    for state in ["before", *STATES]:
        assert got[state][events]["event_id"].is_unique().all(), state


def test_a_touch_the_reextract_retracts_loses_its_event(nights: tuple[dt.date, dict, dict]) -> None:
    """Night N's first CRM extract holds one touch more than its corrected re-extract (nights.retracted_touch):
    its event is there after N and gone after N's re-run. The per-customer touch comparison reads touches and
    held events from before min_date only, so only the recompute of the held touch events of the window's
    drops removes it."""
    night, got, _ = nights

    def touches_of_night(state: str) -> int:
        events = got[state]["fct_journey_events"]
        return events.filter((pl.col("source_entity") == "campaign_touches")
                             & (pl.col("last_drop_date") == night)).height

    assert touches_of_night("N") == touches_of_night("rerun") + 1
