"""restricted.source_key_link and the map it filters, int_source_keys, incremental (docs/warehouse.md,
"Incremental facts"): night by night each equals a full refresh.

The messy nights of tests/test_facts_incremental.py, with its two edits of the generated drops (imported):
night N from the first, incomplete extract of a re-extracted drop, N+1 (with the erasure request of a
customer whose case and commented answer were delivered before N), N+2, the corrected re-extract of N and
N's re-run, then N+2 again. Each night runs the link and what it reads incrementally. The nights must add
the keys of their drops, the erasure must take the held keys of the erased customer's records out, the
re-run of N must remove the keys only later drops brought (and N+2 again put them back), or the test
would pass for want of them. N's first CRM extract holds a campaign touch the corrected re-extract retracts
(nights.retracted_touch): the re-run must take its key out of both tables. After the re-run the link is
the full refresh as of N row for row, after N+2 again the full refresh as of N+2. `rotate_keys` (a new key
secret) rebuilds it in full. The map holds the erased customer's keys throughout (the facts read their keys
there), and the link is the map without them.
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

from .nights import COMPANY, land_before, land_reextract, lander, retracted_touch, superseded_night
from .nights import sorted_rows as _sorted
from .test_facts_incremental import DAY, _delay_a_refunded_payment, _erase_a_customer_with_a_case

SELECT = ["--select", "+source_key_link", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
LINK = "restricted.source_key_link"
MAP = "restricted.int_source_keys"


def _link(data: Path, table: str = LINK) -> pl.DataFrame:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(f"select * from {table}").pl()


def _night(data: Path, start: dt.date, end: dt.date, **extra: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Runs the window [start, end); returns the link and the map, after checking that both ran incrementally."""
    results = run_dbt(["build", *SELECT], data_dir=data, dbt_vars={**window_vars(start, end), **extra})
    for name in ("source_key_link", "int_source_keys"):
        (node,) = [r.node for r in results if r.node.name == name]
        # the night reads the ids of its drops' records and the held rows it recomputes only
        assert "redo as (" in node.compiled_code and "drop_date >= cast(" in node.compiled_code, \
            f"{name} did not run incrementally ({start})"
    return _link(data), _link(data, MAP)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.date, dict]:
    data = tmp_path_factory.mktemp("link_incremental")
    generate(COMPANY, data / "landing")
    night, _ = superseded_night(data / "landing")
    _delay_a_refunded_payment(data / "landing", night)
    erased = _erase_a_customer_with_a_case(data / "landing", night)
    touch_id = retracted_touch(data / "landing", night)
    night_again, reextracted = superseded_night(data / "landing")
    assert night_again == night and "crm" in reextracted, (night_again, reextracted)
    land = lander(data, reextracted)

    maps: dict[str, pl.DataFrame] = {}

    def incremental(start: dt.date, state: str) -> None:
        links[state], maps[state] = _night(data, start, start + DAY)

    land_before(land, night)
    run_dbt(["build", *SELECT], data_dir=data, dbt_vars=window_vars(night - DAY, night))  # no table yet: full
    links: dict = {"before": _link(data), "maps": maps, "retracted_touch": touch_id}
    land(night, superseded_first=True)
    incremental(night, "N")
    for d in (1, 2):
        land(night + d * DAY)
        incremental(night + d * DAY, f"N+{d}")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        # the cases of the customer erased in N+1, all delivered before N
        rows = con.execute("select case_id, drop_date from staging.stg_crm__support_cases where customer_id = ?",
                           [erased]).fetchall()
    links["erased_cases"] = pl.DataFrame(rows, schema=["case_id", "drop_date"], orient="row")
    land_reextract(data, reextracted, night)
    incremental(night, "rerun")
    incremental(night + 2 * DAY, "final")
    return data, night, links


def _retracted(links: dict) -> pl.Expr:
    """The row of the campaign touch that N's corrected re-extract retracts (nights.retracted_touch)."""
    return (pl.col("kind") == "touch") & (pl.col("source_id") == links["retracted_touch"])


def test_the_nights_add_their_keys_and_an_erasure_takes_held_keys_out(nights: tuple[Path, dt.date, dict]) -> None:
    _, night, links = nights
    steps = ["before", "N", "N+1", "N+2"]
    for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False)):
        new = links[b].join(links[a], on="source_key", how="anti")
        assert new.height > 0 and (new["last_drop_date"] == night + i * DAY).all(), (b, new.height)
        assert links[b]["source_key"].is_unique().all(), b
    # the erased customer's cases were in the link after N (held from before it) and are gone after N+1
    cases = links["erased_cases"]
    assert cases.height > 0 and (cases["drop_date"] < night).all(), cases
    theirs = (pl.col("kind") == "case") & pl.col("source_id").is_in(cases["case_id"].implode())
    held = {state: links[state].filter(theirs) for state in ("N", "N+1")}
    assert held["N"].height == cases.height and (held["N"]["last_drop_date"] < night).all()
    assert held["N+1"].height == 0, "the erasure request left the customer's held case keys in the link"
    # the map keeps them (the facts key the erased customer's rows from it), with the keys the link had
    kept = links["maps"]["N+1"].filter(theirs)
    assert _sorted(kept.drop("last_drop_date")).equals(_sorted(held["N"].drop("last_drop_date")))
    # and the link is the map without the erased people's rows, key for key
    for state in ("N", "N+1", "N+2", "rerun", "final"):
        link, whole = links[state], links["maps"][state]
        assert link.join(whole, on=list(link.columns), how="anti").height == 0, state



def test_the_rerun_removes_the_keys_of_later_drops(nights: tuple[Path, dt.date, dict]) -> None:
    _, night, links = nights
    gone = links["N+2"].join(links["rerun"], on="source_key", how="anti")
    back = links["final"].join(links["rerun"], on="source_key", how="anti")
    assert gone.height > 0 and back.height > 0, (gone.height, back.height)
    # every key the re-run took out came from a later drop, but the touch N's corrected re-extract retracts
    assert (gone.filter(~_retracted(links))["last_drop_date"] > night).all()
    assert links["rerun"]["last_drop_date"].max() == night
    # a key of N+1 whose records the re-run brought back to an older version keeps its row, with that drop
    redated = links["N+2"].join(links["rerun"], on="source_key", suffix="_rerun").filter(
        (pl.col("last_drop_date") > night) & (pl.col("last_drop_date_rerun") <= night))
    assert redated.height > 0, "no held key of a later drop was recomputed to an older drop"


def test_a_key_only_a_retracted_record_mentioned_leaves_at_the_rerun(nights: tuple[Path, dt.date, dict]) -> None:
    """Night N's first CRM extract holds one campaign touch more than its corrected re-extract
    (nights.retracted_touch), under an id nothing else mentions. Its key is in the map and the link from N to
    N+2, with N's drop; the re-run of N no longer finds the id in staging, and its held row, from a drop on or
    before the window (so not one the run's end deletes as later), must leave both: the re-run's `redo`
    (cx_key_map_rows) writes it as if from after as_of. N+2 again does not bring it back."""
    _, night, links = nights
    touch = _retracted(links)
    for state in ("N", "N+1", "N+2"):
        for table in (links[state], links["maps"][state]):
            held = table.filter(touch)
            assert held.height == 1 and held["last_drop_date"].to_list() == [night], (state, held)
    for state in ("rerun", "final"):
        assert links[state].filter(touch).height == 0, f"the retracted touch's key is still in the link ({state})"
        assert links["maps"][state].filter(touch).height == 0, f"the retracted touch's key is in the map ({state})"


_FULL: dict[tuple[dt.date, str], pl.DataFrame] = {}


def _full_refresh(data: Path, as_of: dt.date, into: Path, table: str) -> pl.DataFrame:
    if (as_of, table) not in _FULL:
        for zone in ("raw", "quarantine"):
            shutil.copytree(data / zone, into / zone)
        run_dbt(["build", *SELECT, "--full-refresh"], data_dir=into, dbt_vars={"as_of": as_of.isoformat()})
        _FULL[as_of, LINK], _FULL[as_of, MAP] = _link(into), _link(into, MAP)
    return _FULL[as_of, table]


@pytest.mark.parametrize("table", [LINK, MAP])
@pytest.mark.parametrize("state", ["rerun", "final"])
def test_night_by_night_equals_a_full_refresh(nights: tuple[Path, dt.date, dict], state: str, table: str,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    data, night, links = nights
    as_of = night if state == "rerun" else night + 2 * DAY
    got = links[state] if table == LINK else links["maps"][state]
    want = _full_refresh(data, as_of, tmp_path_factory.mktemp(f"full_{state}"), table)
    assert got.schema == want.schema
    assert got.height == want.height > 0
    assert _sorted(got).equals(_sorted(want))


def test_rotate_keys_rebuilds_the_link_in_full(nights: tuple[Path, dt.date, dict]) -> None:
    """`cxw keys rotate` passes rotate_keys: the link and the map are rebuilt, not recomputed on the old keys
    (a new secret changes every key; delete+insert on the new keys would keep the old ones)."""
    data, night, links = nights
    results = run_dbt(["run", "--select", "int_source_keys", "source_key_link"], data_dir=data,
                      dbt_vars={**window_vars(night + 2 * DAY, night + 3 * DAY), "rotate_keys": True})
    models = [r.node for r in results if r.node.name in ("int_source_keys", "source_key_link")]
    assert len(models) == 2
    for node in models:
        assert "redo as (" not in node.compiled_code, node.name
    assert _sorted(_link(data)).equals(_sorted(links["final"]))
    assert _sorted(_link(data, MAP)).equals(_sorted(links["maps"]["final"]))
