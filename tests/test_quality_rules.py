"""The rules behind the gate, branch by branch: severities, baselines learned from history, the
health record's storage, and the dbt tests' severities against the one table of checks."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest

from expectations import anomaly, health, registry
from orchestration.assets.warehouse import dbt_project
from orchestration.night import dbt_test_health, dbt_tests

CFG = anomaly.load_config()["anomaly"]
MONDAY = dt.date(2026, 11, 2)


def _history(values: list[float], end: dt.date = MONDAY) -> dict[dt.date, float]:
    """values[0] the day before ``end``, values[1] two days before, ..."""
    return {end - dt.timedelta(days=i + 1): v for i, v in enumerate(values)}


# --- robust bands ------------------------------------------------------------------------------------

def test_no_baseline_below_min_history() -> None:
    v = anomaly.robust_band(MONDAY, 1_000.0, _history([10.0] * 6), CFG)
    assert not v.has_baseline and not v.surprising and v.history == 6
    assert "no baseline yet" in v.expected()


def test_outlier_fires_and_ordinary_value_does_not() -> None:
    hist = _history([100, 96, 104, 99, 101, 97, 103, 100, 98, 102])
    assert anomaly.robust_band(MONDAY, 500.0, hist, CFG).surprising
    ordinary = anomaly.robust_band(MONDAY, 105.0, hist, CFG)
    assert ordinary.has_baseline and not ordinary.surprising
    # by hand: median 100, MAD 2 -> spread max(1.4826 * 2, 0.05 * 100) = 5; band 100 +- 4 * 5
    assert ordinary.low == pytest.approx(80.0) and ordinary.high == pytest.approx(120.0)
    low = anomaly.robust_band(MONDAY, 79.0, hist, CFG)
    assert low.surprising and low.robust_z == pytest.approx(21 / 5)


def test_same_weekday_history_when_there_is_enough_of_it() -> None:
    # Mondays are busy (1000), other days quiet (100): a Monday of 1000 is ordinary
    hist = {}
    for i in range(1, 57):
        d = MONDAY - dt.timedelta(days=i)
        hist[d] = 1000.0 if d.weekday() == 0 else 100.0
    v = anomaly.robust_band(MONDAY, 1000.0, hist, CFG)
    assert v.same_weekday and not v.surprising and v.history == 8
    # too few Mondays: all days, and the busy Monday stands out
    few = {d: x for d, x in hist.items() if d.weekday() != 0 or d > MONDAY - dt.timedelta(days=15)}
    v = anomaly.robust_band(MONDAY, 1000.0, few, CFG)
    assert not v.same_weekday and v.surprising


def test_history_outside_the_window_and_nan_are_ignored() -> None:
    old = {MONDAY - dt.timedelta(days=200 + i): 5.0 for i in range(30)}
    assert not anomaly.robust_band(MONDAY, 50.0, old, CFG).has_baseline
    hist = _history([10.0] * 8 + [float("nan")] * 5)
    assert anomaly.robust_band(MONDAY, 10.0, hist, CFG).history == 8


def test_flat_history_uses_the_relative_floor() -> None:
    hist = _history([200.0] * 10)
    assert not anomaly.robust_band(MONDAY, 230.0, hist, CFG).surprising  # 30 < 4 * 0.05 * 200
    assert anomaly.robust_band(MONDAY, 250.0, hist, CFG).surprising


def test_counts_have_a_poisson_floor() -> None:
    hist = _history([0.0] * 10)
    assert anomaly.robust_band(MONDAY, 2.0, hist, CFG).surprising  # a measurement of zero spread
    assert not anomaly.robust_band(MONDAY, 2.0, hist, CFG, counts=True).surprising
    assert anomaly.robust_band(MONDAY, 9.0, hist, CFG, counts=True).surprising


# --- quarantine rates, fences, Wilson ----------------------------------------------------------------

def test_wilson_low() -> None:
    assert anomaly.wilson_low(0, 100) == 0.0 and anomaly.wilson_low(3, 0) == 0.0
    assert anomaly.wilson_low(50, 100) == pytest.approx(0.4038, abs=1e-4)  # textbook value


def test_quarantine_rate_is_judged_with_its_noise() -> None:
    q = anomaly.load_config()["quarantine"]
    assert not anomaly.quarantine_surprising(1, 20, None, q)[0]  # 5 % of a tiny file: noise
    surprising, threshold = anomaly.quarantine_surprising(300, 2_000, None, q)
    assert surprising and threshold == pytest.approx(q["prior_rate"] + q["margin"])
    assert not anomaly.quarantine_surprising(60, 2_000, 0.03, q)[0]  # usual for this entity
    assert anomaly.quarantine_surprising(60, 2_000, 0.005, q)[0]  # six times its usual share


def test_tukey_fences() -> None:
    lo, hi = anomaly.tukey_fences([0, 1, 1, 2, 2, 2, 3, 3, 4], k=3, min_from_median=7)
    assert (lo, hi) == (-5.0, 9.0)  # IQR 2: Q1 - 6 = -5 ; median + 7 = 9 wins over Q3 + 6 = 9
    lo, hi = anomaly.tukey_fences([0, 10, 20, 30, 40], k=3, min_from_median=1)
    assert (lo, hi) == (-50.0, 90.0)


def test_settings_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "mine.toml"
    override.write_text("[anomaly]\nz = 6.5\n")
    monkeypatch.setenv(anomaly.CONFIG_ENV, str(override))
    cfg = anomaly.load_config()
    assert cfg["anomaly"]["z"] == 6.5 and cfg["anomaly"]["min_history"] == CFG["min_history"]
    override.write_text("[anomaly]\nzz = 6.5\n")
    with pytest.raises(ValueError, match=r"mine.toml: \[anomaly\] has no setting zz"):
        anomaly.load_config()
    override.write_text("[volume]\nz = 1\n")
    with pytest.raises(ValueError, match="unknown section"):
        anomaly.load_config()


# --- the table of checks -----------------------------------------------------------------------------

def test_every_check_has_one_severity_and_a_reason() -> None:
    assert len({c.name for c in registry.CHECKS}) == len(registry.CHECKS)
    for c in registry.CHECKS:
        assert c.severity in (registry.BLOCKING, registry.WARNING), c
        assert c.engine in (registry.DBT, registry.GX, registry.SQL, registry.INGESTION, registry.ANALYTICS), c
        assert c.rule and c.why, c
    # the classes the issue names
    for name in ("score_drift", "drop_volume", "promise_gap_outliers", "quarantine_rate", "drop_delivered",
                 "identity_match_rate"):
        assert not registry.is_blocking(name), name
    for name in ("unique", "relationships", "kpi_value_in_scale", "kpi_n_matches_facts", "revenue_reconciles",
                 "reconciles_with_manifest", "delivery_not_before_order", "order_amount_not_negative"):
        assert registry.is_blocking(name), name
    with pytest.raises(KeyError, match="not a declared check"):
        registry.check("nope")


def test_every_dbt_test_is_declared_with_its_severity() -> None:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert len(tests) > 100
    for t in tests:
        kind = (t.get("test_metadata") or {}).get("name")
        declared = registry.for_dbt_test(t["name"], kind)  # a generic test nobody declared fails here
        assert declared.engine == registry.DBT
        dbt_severity = str(t["config"]["severity"]).lower()
        assert (dbt_severity == "error") == (declared.severity == registry.BLOCKING), (t["name"], dbt_severity)


def test_docs_list_every_check() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "data-quality.md").read_text(encoding="utf-8")
    assert registry.markdown_table() in docs, "regenerate with: python -m expectations.registry"


# --- the health record -------------------------------------------------------------------------------

def test_status_follows_the_declared_severity() -> None:
    day = MONDAY
    assert health.judged(day, "unique", "fct_orders", False).status == "fail"
    assert health.judged(day, "unique", "fct_orders", False).blocks
    warn = health.judged(day, "score_drift", "fct_survey_responses", False)
    assert warn.status == "warn" and not warn.blocks
    assert health.judged(day, "score_drift", "fct_survey_responses", True).status == "pass"
    with pytest.raises(ValueError, match="unknown health status"):
        health.to_frame([health.HealthRow(day, "unique", "x", "maybe")], "test")


def test_health_rows_are_replaced_per_source_and_date(tmp_path: Path) -> None:
    d1, d2 = MONDAY, MONDAY + dt.timedelta(days=1)
    health.write(tmp_path, [d1, d2], "gate", [health.judged(d1, "unique", "a", True),
                                              health.judged(d2, "unique", "a", False, message="dup")])
    health.write(tmp_path, [d1], "dbt", [health.judged(d1, "not_null", "a", True)])
    frame = health.read(tmp_path)
    assert frame.schema == pl.Schema(health.SCHEMA) and frame.height == 3
    assert health.blocking_failures(frame)["business_date"].to_list() == [d2]
    # a re-run of the gate for d2 replaces its rows; other sources and dates stay
    health.write(tmp_path, [d2], "gate", [health.judged(d2, "unique", "a", True)])
    frame = health.read(tmp_path)
    assert frame.height == 3 and health.blocking_failures(frame).height == 0
    assert health.read(tmp_path, [d1]).height == 2
    assert health.summary_line(frame) == "0 blocking failures, 0 warnings, 3 passed"
    assert health.read(tmp_path / "nothing").height == 0


def test_dbt_results_become_one_row_per_test_kind_and_model() -> None:
    manifest = {"nodes": {
        "test.p.unique_fct_orders_order_key.1": {"resource_type": "test", "name": "unique_fct_orders_order_key",
                                                 "test_metadata": {"name": "unique"},
                                                 "attached_node": "model.p.fct_orders"},
        "test.p.not_null_fct_orders_order_key.2": {"resource_type": "test", "name": "not_null_fct_orders_order_key",
                                                   "test_metadata": {"name": "not_null"},
                                                   "attached_node": "model.p.fct_orders"},
        "test.p.unique_dim_customer_key.3": {"resource_type": "test", "name": "unique_dim_customer_key",
                                              "test_metadata": {"name": "unique"},
                                              "attached_node": "model.p.dim_customer"},
        "test.p.refund.4": {"resource_type": "test",
                            "name": "relationships_fct_refunds_payment_key__payment_key__ref_fct_payments_",
                            "test_metadata": {"name": "relationships"}, "attached_node": "model.p.fct_refunds"},
        "model.p.fct_orders": {"resource_type": "model"}}}
    results = {"results": [
        {"unique_id": "test.p.unique_fct_orders_order_key.1", "status": "fail", "message": "Got 1 result"},
        {"unique_id": "test.p.not_null_fct_orders_order_key.2", "status": "pass"},
        {"unique_id": "test.p.unique_dim_customer_key.3", "status": "pass"},
        {"unique_id": "test.p.refund.4", "status": "warn", "message": "Got 2 results"},
        {"unique_id": "model.p.fct_orders", "status": "success"}]}
    rows = dbt_test_health(dbt_tests(results, manifest), [MONDAY, MONDAY + dt.timedelta(days=1)])
    assert len(rows) == 8
    warned = [r for r in rows if r.status == "warn"]
    assert {(r.check_name, r.asset) for r in warned} == {("refund_payment_known", "fct_refunds")}
    failed = [r for r in rows if r.status == "fail"]
    assert {(r.check_name, r.asset) for r in failed} == {("unique", "fct_orders")} and len(failed) == 2
    assert "unique_fct_orders_order_key: fail Got 1 result" in failed[0].message
    assert all(re.fullmatch(r"\d+ dbt tests", r.subject) for r in rows)


def test_a_manifest_older_than_the_project_is_stale(tmp_path: Path) -> None:
    import os
    import time

    from orchestration.warehouse import manifest_is_stale

    manifest = tmp_path / "manifest.json"
    assert manifest_is_stale(manifest)  # missing
    manifest.write_text("{}")
    os.utime(manifest, (time.time() + 3600, time.time() + 3600))
    assert not manifest_is_stale(manifest)
    os.utime(manifest, (0, 0))  # older than every model
    assert manifest_is_stale(manifest)


def test_a_floor_the_caller_knows_widens_the_band() -> None:
    # a mean of 4 answers whose sd is 2.4 has a standard error of 1.2: 5.25 against a median of 8 is noise
    hist = _history([8.0, 7.9, 8.1, 8.0, 7.8, 8.2, 8.0])
    assert anomaly.robust_band(MONDAY, 5.25, hist, CFG).surprising
    assert not anomaly.robust_band(MONDAY, 5.25, hist, CFG, min_spread=1.2).surprising
    assert anomaly.robust_band(MONDAY, 1.0, hist, CFG, min_spread=1.2).surprising


def test_processes_that_find_the_manifest_stale_at_once_parse_it_once(tmp_path: Path) -> None:
    """Two processes (pytest's workers after an edit) each find the manifest missing: one parses, the other
    waits on the lock, finds it fresh and returns; the manifest is whole (two parses into one folder at once
    left a manifest.json that was not JSON)."""
    import json
    import subprocess
    import sys

    manifest = tmp_path / "target" / "manifest.json"
    code = ("import sys; from pathlib import Path; from orchestration.warehouse import ensure_manifest; "
            "print(ensure_manifest(Path(sys.argv[1])))")
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(manifest)], cwd=root, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    parsed = sorted(p.communicate(timeout=600)[0].strip().splitlines()[-1] for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert parsed == ["False", "True"]
    assert any(k.startswith("model.cx_warehouse.fct_orders") for k in json.loads(manifest.read_text())["nodes"])
