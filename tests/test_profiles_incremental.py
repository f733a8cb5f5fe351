"""Incremental customer profiles (macros/profiles.sql, cx_profiles_config): mart_customer_profiles night by
night equals a full refresh of it, row for row.

The messy nights of tests/test_facts_incremental.py (the same generated company and edits: night N from
the first, incomplete extract of a re-extracted drop, N+1, N+2, the corrected re-extract of N and N's
re-run after N+2, then N+2 again; an erasure request of a customer with a case and a commented answer in
N+1). Each night builds the profiles and what they read incrementally; then, on a copy of the warehouse
(the same facts and customers), `--full-refresh` of the mart alone must give the same table. The rule's
windows are shortened (a few days, vars) so that answers and negative moments leave their windows inside
the nights: a customer's profile then changes with no new data of theirs (only the horizon moved). The
test checks that the nights hold such expiries, the re-run of an older window (the horizon moves back:
spells after it go, customers first seen after it go) and a re-keying (the erased customer's old key
leaves, with its spells), so that it cannot pass for want of them, and that a night recomputes a small
share of the customers only.
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

from .nights import COMPANY, land_before, land_reextract, lander, superseded_night
from .nights import sorted_rows as _sorted
from .test_facts_incremental import _erase_a_customer_with_a_case

MART = "mart_customer_profiles"
# the rule's windows, shortened so that answers and moments expire within the nights
WINDOWS = {"profile_answer_days": 4, "profile_moment_days": 3, "profile_nps_days": 6, "profile_negative_moments": 2}
SELECT = ["--select", f"+{MART}", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
DAY = dt.timedelta(days=1)
SPELL = ["customer_key", "profile", "valid_from", "valid_to", "is_current"]


def _read(data: Path, as_of: dt.date) -> dict:
    """The mart, the customers and the profile horizon (macros/profiles.sql profile_horizon) as of `as_of`."""
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        (horizon,) = con.execute("""
            select least(cast(? as date), max(d)) from (
                select max(event_date) as d from marts.fct_journey_events where event_date <= ?
                union all select max(response_date) from marts.fct_survey_responses where response_date <= ?
                union all select max(cast(timezone('UTC', crm_created_at) as date)) from marts.dim_customer
                where cast(timezone('UTC', crm_created_at) as date) <= ?)""", [as_of] * 4).fetchall()[0]
        return {"profiles": con.sql(f"select * from marts.{MART}").pl(),
                "customers": con.sql("select customer_key from marts.dim_customer").pl(), "horizon": horizon}


def _full_refresh_of_the_mart(data: Path, into: Path, dbt_vars: dict) -> pl.DataFrame:
    """The mart rebuilt in full on a copy of the warehouse (the same upstream tables)."""
    into.mkdir()
    shutil.copy(data / "warehouse.duckdb", into / "warehouse.duckdb")
    run_dbt(["run", "--select", MART, "--full-refresh"], data_dir=into, dbt_vars=dbt_vars)
    with duckdb.connect(str(into / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(f"select * from marts.{MART}").pl()


def _recomputed(data: Path, held: pl.DataFrame, into: Path, dbt_vars: dict) -> set[str]:
    """The customers the night recomputed: the night run again on a copy of the warehouse after it, over
    the mart as it was before the night with every row marked (profile 'probe'); the rows the run wrote
    are the unmarked ones."""
    into.mkdir()
    shutil.copy(data / "warehouse.duckdb", into / "warehouse.duckdb")
    with duckdb.connect(str(into / "warehouse.duckdb")) as con:
        marked = held.with_columns(profile=pl.lit("probe"))  # noqa: F841 (read by the SQL below)
        con.execute(f"delete from marts.{MART}")
        con.execute(f"insert into marts.{MART} by name select * from marked")
    run_dbt(["run", "--select", MART], data_dir=into, dbt_vars=dbt_vars)
    with duckdb.connect(str(into / "warehouse.duckdb"), read_only=True) as con:
        return {k for (k,) in con.execute(f"select distinct customer_key from marts.{MART} "
                                          "where profile <> 'probe'").fetchall()}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[dt.date, str, dict]:
    data = tmp_path_factory.mktemp("profiles_incremental")
    fulls = tmp_path_factory.mktemp("profiles_full")
    generate(COMPANY, data / "landing")
    night, reextracted = superseded_night(data / "landing")
    erased = _erase_a_customer_with_a_case(data / "landing", night)
    land = lander(data, reextracted)

    states: dict = {}

    def run(name: str, start: dt.date, *, first: bool = False) -> None:
        dbt_vars = {**window_vars(start, start + DAY), **WINDOWS}
        held = None if first else _read(data, start)["profiles"]
        results = run_dbt(["build", *SELECT], data_dir=data, dbt_vars=dbt_vars)
        (mart,) = [r for r in results if r.node.name == MART]
        if not first:
            assert "changed as (" in mart.node.compiled_code, f"{name}: {MART} did not run incrementally"
            assert "in (select customer_key from changed)" in mart.node.compiled_code, name
        states[name] = {**_read(data, start), "full": _full_refresh_of_the_mart(data, fulls / name, dbt_vars),
                        "recomputed": None if first else _recomputed(data, held, fulls / f"{name}_probe", dbt_vars)}

    land_before(land, night)
    run("before", night - DAY, first=True)  # no table yet: a full build as of N-1
    land(night, superseded_first=True)
    run("N", night)
    for d in (1, 2):
        land(night + d * DAY)
        run(f"N+{d}", night + d * DAY)
    # the corrected re-extract of night N lands after N+2 and its partition runs again: the horizon moves back
    land_reextract(data, reextracted, night)
    run("rerun", night)
    run("final", night + 2 * DAY)  # N+2 again: it catches up on N+1's drops
    return night, erased, states


NIGHTS = ["N", "N+1", "N+2", "rerun", "final"]
SEQUENCE = ["before", *NIGHTS]


@pytest.mark.parametrize("state", SEQUENCE)
def test_each_night_equals_a_full_refresh(nights: tuple[dt.date, str, dict], state: str) -> None:
    """After each night (and the first, full build), the mart is its full refresh over the same tables."""
    _, _, states = nights
    got, want = states[state]["profiles"], states[state]["full"]
    assert got.schema == want.schema
    assert got.height == want.height > 0
    extra = got.join(want, on=got.columns, how="anti", nulls_equal=True).sort(SPELL[:3])
    missing = want.join(got, on=got.columns, how="anti", nulls_equal=True).sort(SPELL[:3])
    assert extra.height == missing.height == 0, (state, extra.rows()[:5], missing.rows()[:5])
    assert _sorted(got).equals(_sorted(want))
    # one current spell per customer of dim_customer, no other customer
    current = got.filter(pl.col("is_current"))
    assert current["customer_key"].is_unique().all()
    assert set(current["customer_key"]) == set(states[state]["customers"]["customer_key"])


def _customer_changes(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Per customer in both: whether their spells differ, and whether their fingerprint does."""
    def per_customer(df: pl.DataFrame) -> pl.DataFrame:
        return df.sort("valid_from").group_by("customer_key").agg(
            spells=pl.concat_str([pl.col(c).cast(pl.String).fill_null("-") for c in SPELL[1:]],
                                 separator="/").str.join(";"),
            fingerprint=pl.concat_str([pl.col("input_count").first().cast(pl.String),
                                       pl.col("input_hash").first().cast(pl.String)], separator="/"))
    joined = per_customer(before).join(per_customer(after), on="customer_key", suffix="_after")
    return joined.with_columns(spells_changed=pl.col("spells") != pl.col("spells_after"),
                               inputs_changed=pl.col("fingerprint") != pl.col("fingerprint_after"))


def test_profiles_change_with_no_new_data_of_the_customer(nights: tuple[dt.date, str, dict]) -> None:
    """On forward nights, customers whose inputs did not change (same fingerprint) get a new spell: an
    answer or moment left its window as the horizon moved (the time-passes rule), and their new spell
    starts after the held horizon."""
    _, _, states = nights
    expired = 0
    for a, b in (("before", "N"), ("N", "N+1"), ("N+1", "N+2"), ("rerun", "final")):
        changes = _customer_changes(states[a]["profiles"], states[b]["profiles"])
        only_time = changes.filter(pl.col("spells_changed") & ~pl.col("inputs_changed"))
        held_horizon = states[a]["horizon"]
        assert states[b]["horizon"] > held_horizon, (a, b)
        new_spells = states[b]["profiles"].join(states[a]["profiles"], on=["customer_key", "valid_from"], how="anti")
        expired += new_spells.filter(pl.col("customer_key").is_in(only_time["customer_key"].implode())
                                     & (pl.col("valid_from") > held_horizon)).height
    assert expired > 0, "no profile changed by time alone in the nights"


def test_the_rerun_of_an_older_window_moves_the_horizon_back(nights: tuple[dt.date, str, dict]) -> None:
    """The re-run of N after N+2 drops the spells that started after N's horizon and the customers first
    known after it; N+2 again brings them back."""
    night, _, states = nights
    later = states["N+2"]["profiles"]
    rerun = states["rerun"]["profiles"]
    assert states["rerun"]["horizon"] <= night < states["N+2"]["horizon"]
    assert rerun["valid_from"].max() <= night < later["valid_from"].max()
    dropped = later.join(rerun, on=["customer_key", "valid_from"], how="anti")
    assert dropped.filter(pl.col("valid_from") > night).height > 0
    gone = set(later["customer_key"]) - set(rerun["customer_key"])
    assert gone, "no customer first known after N left on the re-run"
    # customers kept, whose current spell started after the re-run's horizon: that spell went
    kept_later = later.filter(pl.col("is_current") & (pl.col("valid_from") > night)
                              & pl.col("customer_key").is_in(list(set(rerun["customer_key"]))))
    assert kept_later.height > 0
    assert set(states["final"]["profiles"]["customer_key"]) >= gone


def test_an_erasure_rekeys_the_customer(nights: tuple[dt.date, str, dict]) -> None:
    """The erasure request of N+1 gives the customer a new key: their old key's spells leave the mart (it
    is no longer a customer of dim_customer), and the new key has spells."""
    _, _, states = nights
    before, after = states["N"], states["N+1"]
    left = set(before["profiles"]["customer_key"]) - set(after["profiles"]["customer_key"])
    came = set(after["profiles"]["customer_key"]) - set(before["profiles"]["customer_key"])
    assert left, "no customer key left the mart in N+1 (the erasure request re-keys a customer)"
    assert not left & set(after["customers"]["customer_key"])
    assert came


def test_a_night_recomputes_a_small_share_of_the_customers(nights: tuple[dt.date, str, dict]) -> None:
    """A forward night recomputes a small share of the customers, among them every customer whose spells
    or fingerprint changed, and every customer new to the mart; the re-run of an older window more."""
    _, _, states = nights
    shares = {}
    for a, b in zip(SEQUENCE[:-1], NIGHTS, strict=True):
        recomputed = states[b]["recomputed"]
        changes = _customer_changes(states[a]["profiles"], states[b]["profiles"])
        must = set(changes.filter(pl.col("spells_changed") | pl.col("inputs_changed"))["customer_key"])
        must |= set(states[b]["profiles"]["customer_key"]) - set(states[a]["profiles"]["customer_key"])
        assert must and must <= recomputed, (b, len(must - recomputed))
        shares[b] = len(recomputed) / states[b]["customers"].height
    print("recomputed share per night:", {k: round(v, 3) for k, v in shares.items()})
    assert all(shares[n] < 0.35 for n in ("N", "N+1", "N+2", "final")), shares
