"""A corrected re-extract that retracts a record: incremental staging drops it as a full refresh does.

Night N's CRM drop arrives first as an extract holding one campaign touch more than its corrected
re-extract (tests/nights.py `retracted_touch`): the source retracts a record it delivered. A full refresh
after the re-extract has no such touch. In the incremental re-run of N's window, `current_version`'s slow
path ranks the held keys of the window's drops again over the raw zone and finds no version of the
retracted touch, so it writes no row for it, and delete+insert replaces only the keys it writes: the
held row must go by `cx_staging_retracted` (the post-hook on DuckDB, the rewrite on Spark;
macros/current_version.sql). The generator never retracts (its first extracts are only incomplete), so
the other incremental tests could not see this; before the fix the touch stayed in staging, and in
fct_journey_events, until a `--full-refresh`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from orchestration.warehouse import run_dbt, window_vars
from simulator import generate

from .nights import COMPANY, DAY, land_before, land_reextract, lander, retracted_touch, superseded_night

SELECT = ["--select", "stg_crm__campaign_touches"]


def _touches(data: Path, touch_id: str) -> int:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select count(*) from staging.stg_crm__campaign_touches where touch_id = ?",
                           [touch_id]).fetchone()[0]


@pytest.fixture(scope="module")
def retraction(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, int]]:
    data = tmp_path_factory.mktemp("retraction")
    generate(COMPANY, data / "landing")
    night, _ = superseded_night(data / "landing")
    touch = retracted_touch(data / "landing", night)
    night_again, reextracted = superseded_night(data / "landing")
    assert night_again == night and "crm" in reextracted, (night_again, reextracted)
    land = lander(data, reextracted)
    land_before(land, night)
    run_dbt(["run", *SELECT], data_dir=data, dbt_vars=window_vars(night - DAY, night))  # no table yet: full
    land(night, superseded_first=True)
    run_dbt(["run", *SELECT], data_dir=data, dbt_vars=window_vars(night, night + DAY))
    seen = {"first extract": _touches(data, touch)}
    land_reextract(data, reextracted, night)
    run_dbt(["run", *SELECT], data_dir=data, dbt_vars=window_vars(night, night + DAY))
    seen["re-run"] = _touches(data, touch)
    full = tmp_path_factory.mktemp("retraction_full")
    for zone in ("raw", "quarantine"):
        shutil.copytree(data / zone, full / zone)
    run_dbt(["run", *SELECT, "--full-refresh"], data_dir=full, dbt_vars={"as_of": night.isoformat()})
    seen["full refresh"] = _touches(full, touch)
    return data, touch, seen


def test_the_first_extract_delivers_the_touch_and_a_full_refresh_has_none(retraction) -> None:
    _, _, seen = retraction
    assert seen["first extract"] == 1 and seen["full refresh"] == 0, seen


def test_the_re_run_after_the_corrected_re_extract_drops_the_touch(retraction) -> None:
    _, _, seen = retraction
    assert seen["re-run"] == seen["full refresh"] == 0, seen
