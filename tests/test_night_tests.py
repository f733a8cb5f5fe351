"""Night tests over the rows a night wrote (dbt_project/macros/night_tests.sql, docs/warehouse.md "Night tests").

A warehouse built in full over the october company's nights but the last, then the last night's models run on
its partition window (as the nightly does, before its tests): each incremental fact's and staging model's audit
table (`cx_audit.<model>`) then holds the keys the night wrote. Rows are planted on copies of that state, inside
and outside those keys, and the models' tests run on the window (scoped) or without one (every row): a bad row the
night wrote fails its test, a bad row it did not write is left to the full tests, the keys stay until their
tests pass, a full refresh tests every row again, and only a passing run empties the audit.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingestion import contract as C
from ingestion.load import Zones, load_drop
from orchestration.warehouse import DbtError, run_dbt, window_vars

from .conftest import Drops

# each model whose night tests are scoped (cx_fact_config, cx_staging_config): its schema and key columns
MODELS = {
    "fct_orders": ("marts", ["order_key"]), "fct_invoices": ("marts", ["invoice_key"]),
    "fct_payments": ("marts", ["payment_key"]), "fct_refunds": ("marts", ["refund_key"]),
    "fct_subscriptions": ("marts", ["subscription_key"]), "fct_support_cases": ("marts", ["case_key"]),
    "fct_survey_responses": ("marts", ["response_key"]), "fct_journey_events": ("marts", ["source_key"]),
    "fct_customer_stage_transitions": ("marts", ["customer_key"]),
    "int_source_keys": ("restricted", ["source_key"]), "source_key_link": ("restricted", ["source_key"]),
    **{f"stg_{e}": ("staging", [k]) for e, k in (
        ("billing__invoices", "invoice_id"), ("billing__payments", "payment_id"), ("billing__refunds", "refund_id"),
        ("billing__subscriptions", "subscription_id"), ("crm__campaign_touches", "touch_id"),
        ("crm__customers", "customer_id"), ("crm__feedback_followups", "followup_id"),
        ("crm__support_cases", "case_id"), ("erp__orders", "order_id"), ("erp__returns", "return_id"),
        ("erp__shipments", "shipment_id"), ("survey__responses", "response_id"))},
    "stg_erp__order_lines": ("staging", ["order_id", "line_no"]),
}
Plant = Callable[[duckdb.DuckDBPyConnection], None]


def _table(model: str) -> str:
    return f"{MODELS[model][0]}.{model}"


def _key(model: str) -> str:
    return ", ".join(MODELS[model][1])


def _audit(data: Path, model: str) -> set | None:
    """The keys in the model's audit table (tuples of its key columns); None when it has none."""
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("select count(*) from information_schema.tables where table_schema = 'cx_audit' "
                            "and table_name = ?", [model]).fetchone()[0]
        return set(con.execute(f"select {_key(model)} from cx_audit.{model}").fetchall()) if found else None


def _rows(data: Path, model: str) -> pl.DataFrame:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(f"select * from {_table(model)}").pl()


@pytest.fixture(scope="module")
def night(october_drops: Drops, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.date, dict]:
    """(data folder after the last night's models ran on its window, the night, each model's rows before it)."""
    data = tmp_path_factory.mktemp("night_tests")
    shutil.copytree(october_drops.root, data / "landing")
    zones = Zones(data / "landing", data / "raw", data / "quarantine")
    cfg = october_drops.cfg
    last = cfg.start + dt.timedelta(days=cfg.days - 1)
    for i in range(cfg.days - 1):
        for system in C.SYSTEMS:
            load_drop(zones, system, cfg.start + dt.timedelta(days=i))
    run_dbt(["build", "--exclude-resource-type", "unit_test"], data_dir=data)
    before = {model: _rows(data, model) for model in MODELS}
    for system in C.SYSTEMS:
        load_drop(zones, system, last)
    run_dbt(["run"], data_dir=data, dbt_vars=window_vars(last, last + dt.timedelta(days=1)))
    return data, last, before


def _copy(night: tuple[Path, dt.date, dict], tmp_path: Path, plant: Plant | None = None) -> Path:
    data = tmp_path / "data"
    shutil.copytree(night[0], data, ignore=shutil.ignore_patterns("dbt_logs"))
    if plant:
        with duckdb.connect(str(data / "warehouse.duckdb")) as con:
            plant(con)
    return data


def _test(data: Path, day: dt.date | None, *select: str) -> dict[str, int]:
    """dbt test of ``select`` (its own tests, not those of the models reading it) on the night's window (None: no
    window, every row); the failing tests and their failure counts (dbt's message)."""
    try:
        run_dbt(["test", "--exclude-resource-type", "unit_test", "--indirect-selection", "cautious", "--select",
                 *select], data_dir=data,
                dbt_vars=window_vars(day, day + dt.timedelta(days=1)) if day else None)
    except DbtError as e:
        return {name: int(n) for name, n in re.findall(r"(\w+): fail Got (\d+) result", str(e))}
    return {}


def _written_and_not(con: duckdb.DuckDBPyConnection, model: str, n: int = 1) -> tuple[list, list]:
    """``n`` keys of the model the night wrote and ``n`` it did not (in key order; a key of several columns as a
    tuple)."""
    key, table = _key(model), _table(model)
    one = len(MODELS[model][1]) == 1
    picked = [[r[0] if one else r for r in con.execute(
        f"select {key} from {table} where ({key}) {op} (select {key} from cx_audit.{model}) "
        f"order by {key} limit {n}").fetchall()] for op in ("in", "not in")]
    assert len(picked[0]) == n and len(picked[1]) == n, (model, picked)
    return picked[0], picked[1]


def test_the_night_records_every_key_whose_rows_it_changed(night: tuple[Path, dt.date, dict]) -> None:
    """After the night's models, each scoped model's audit holds every key of a row the night added, changed or
    removed (the rows before and after compared in full), and not every key the model holds: the night's tests
    read a part of it. The full build before had verified each model (its audit created empty)."""
    data, _day, before = night
    for model, (_schema, columns) in MODELS.items():
        old, new = before[model], _rows(data, model)
        diff = pl.concat([old.join(new, on=old.columns, how="anti", nulls_equal=True),
                          new.join(old, on=old.columns, how="anti", nulls_equal=True)])
        changed = set(diff.select(columns).iter_rows())
        audit = _audit(data, model)
        assert audit is not None, model
        assert changed, f"{model}: the night changed nothing, the test would pass for want of rows"
        assert changed <= audit, (model, sorted(changed - audit)[:5])
        assert len(audit) < new.select(columns).n_unique(), (model, len(audit))


def test_a_bad_row_the_night_wrote_fails_until_fixed_and_only_then_is_verified(
        night: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """A status the contract does not know, planted in one written and one held order: the night's test (on its
    window) finds the written one only, and keeps its keys; run again, it fails again; a plain `dbt test` finds
    both, and drops the audit. Once both are fixed the night's test (now over every row) passes and the audit is
    back, empty."""
    rows: dict[str, list] = {}

    def plant(con: duckdb.DuckDBPyConnection) -> None:
        written, held = _written_and_not(con, "fct_orders")
        rows.update(written=written, held=held)
        con.execute("update marts.fct_orders set status = 'lost in transit' where order_key in (?, ?)",
                    [*written, *held])

    data, day = _copy(night, tmp_path, plant), night[1]
    keys = _audit(data, "fct_orders")
    assert _test(data, day, "fct_orders") == {"accepted_values_fct_orders": 1}
    assert _audit(data, "fct_orders") == keys
    assert _test(data, day, "fct_orders") == {"accepted_values_fct_orders": 1}
    assert _test(data, None, "fct_orders") == {"accepted_values_fct_orders": 2}
    assert _audit(data, "fct_orders") is None
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("update marts.fct_orders set status = 'delivered' where order_key in (?, ?)",
                    [*rows["written"], *rows["held"]])
    assert _test(data, day, "fct_orders") == {}
    assert _audit(data, "fct_orders") == set()


def test_a_key_the_night_wrote_twice_fails_unique(night: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """A written order's row inserted a second time fails `unique` on the key within the night's scope."""
    def plant(con: duckdb.DuckDBPyConnection) -> None:
        (written,), _ = _written_and_not(con, "fct_orders")
        con.execute("insert into marts.fct_orders select * from marts.fct_orders where order_key = ?", [written])

    data = _copy(night, tmp_path, plant)
    assert _test(data, night[1], "fct_orders") == {"unique_fct_orders_order_key": 1}


def test_an_event_id_the_night_wrote_that_an_old_event_holds_fails_unique(
        night: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """`unique` on another column than the key (the journey's event_id): an event the night did not write
    given the event_id of one it wrote fails it, though only one of the two rows is the night's."""
    def plant(con: duckdb.DuckDBPyConnection) -> None:
        (written,), (held,) = _written_and_not(con, "fct_journey_events")
        con.execute("update marts.fct_journey_events set event_id = (select min(event_id) from "
                    "marts.fct_journey_events where source_key = ?) where source_key = ?", [written, held])

    data = _copy(night, tmp_path, plant)
    assert _test(data, night[1], "fct_journey_events") == {"unique_fct_journey_events_event_id": 1}


def test_a_bad_row_the_night_did_not_write_is_left_to_the_full_tests(
        night: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """What the scope buys, and its condition: a row changed outside dbt, which the night did not write, is not
    read by the night's tests (the warehouse has no other writer), but is by a plain `dbt test` (as by the weekly
    verification, orchestration/verify.py), which then drops the model's audit, and only that model's: every
    following night's test reads every row, and fails, until the row is fixed; then the audit is back, empty."""
    held: list = []

    def plant(con: duckdb.DuckDBPyConnection) -> None:
        held[:] = _written_and_not(con, "fct_orders")[1]
        con.execute("update marts.fct_orders set status = 'lost in transit' where order_key = ?", held)

    data = _copy(night, tmp_path, plant)
    keys, others = _audit(data, "fct_orders"), _audit(data, "fct_invoices")
    assert _test(data, night[1], "fct_orders") == {}  # not read: the night's test reads the night's orders
    assert _audit(data, "fct_orders") == set()
    data = _copy(night, tmp_path / "again", plant)
    assert _test(data, None, "fct_orders", "fct_invoices") == {"accepted_values_fct_orders": 1}
    assert _audit(data, "fct_orders") is None and _audit(data, "fct_invoices") == set() and others
    for _ in range(2):
        assert _test(data, night[1], "fct_orders") == {"accepted_values_fct_orders": 1}
        assert _audit(data, "fct_orders") is None
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("update marts.fct_orders set status = 'delivered' where order_key = ?", held)
    assert _test(data, night[1], "fct_orders") == {}
    assert _audit(data, "fct_orders") == set() and keys


def test_a_staging_model_keyed_by_two_columns_tests_the_lines_the_night_wrote(
        night: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """stg_erp__order_lines (key: order_id, line_no): a null sku planted in one written line and one held line;
    the night's test finds the written one, a plain `dbt test` both."""
    def plant(con: duckdb.DuckDBPyConnection) -> None:
        written, held = _written_and_not(con, "stg_erp__order_lines")
        for order_id, line_no in (*written, *held):
            con.execute("update staging.stg_erp__order_lines set sku = null where order_id = ? and line_no = ?",
                        [order_id, line_no])

    data = _copy(night, tmp_path, plant)
    assert _test(data, night[1], "stg_erp__order_lines") == {"not_null_stg_erp__order_lines": 1}
    assert _test(data, None, "stg_erp__order_lines") == {"not_null_stg_erp__order_lines": 2}


def test_a_full_refresh_tests_every_row_again(night: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """A build that is not incremental drops the fact's audit: the next tests, even on a window, read every row
    (here a bad row the night did not write), and recreate it empty once they pass."""
    data, day = _copy(night, tmp_path), night[1]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        _, held = _written_and_not(con, "fct_orders")
    run_dbt(["run", "--full-refresh", "--select", "fct_orders"], data_dir=data,
            dbt_vars=window_vars(day, day + dt.timedelta(days=1)))
    assert _audit(data, "fct_orders") is None
    assert _audit(data, "fct_invoices")  # the others keep theirs
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("update marts.fct_orders set status = 'lost in transit' where order_key = ?", held)
    assert _test(data, day, "fct_orders") == {"accepted_values_fct_orders": 1}
    assert _audit(data, "fct_orders") is None
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("update marts.fct_orders set status = 'delivered' where status = 'lost in transit'")
    assert _test(data, day, "fct_orders") == {}
    assert _audit(data, "fct_orders") == set()


def test_a_run_of_some_of_the_facts_tests_verifies_nothing(night: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """Only a run of every scoped test of a fact verifies it: `not_null_fct_orders` alone passes and leaves the
    keys; a night's full set of tests (`dbt build` on the window) verifies every fact."""
    data, day = _copy(night, tmp_path), night[1]
    keys = _audit(data, "fct_orders")
    assert keys
    assert _test(data, day, "not_null_fct_orders") == {}
    assert _audit(data, "fct_orders") == keys
    run_dbt(["build", "--exclude-resource-type", "unit_test"], data_dir=data,
            dbt_vars=window_vars(day, day + dt.timedelta(days=1)))
    assert {model: _audit(data, model) for model in MODELS} == {model: set() for model in MODELS}
