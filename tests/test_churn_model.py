"""analytics/churn.py on hand-made marts: the definitions at their boundaries (active, label), features
that never read past the cutoff, reasons that are the largest contributions, determinism, and a short
window that returns what it can with a reason instead of failing.

The marts are tiny DuckDB tables in a temporary file, with only the columns the module reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from analytics import churn
from analytics.common import var

D = dt.date(2026, 6, 1)  # the cutoff of the boundary tests
H = int(var("churn_horizon_days"))
UTC = dt.UTC

# the columns analytics/churn.py reads, per mart (DuckDB types as the dbt contracts declare them)
TABLES: dict[str, dict[str, str]] = {
    "marts.dim_customer": {"customer_key": "varchar", "segment": "varchar", "crm_created_at": "timestamptz",
                           "is_erased": "boolean"},
    "marts.dim_customer_history": {"customer_key": "varchar", "profile_key": "varchar", "segment": "varchar",
                                   "valid_from": "timestamptz"},
    "marts.fct_orders": {"customer_key": "varchar", "ordered_at": "timestamptz", "status": "varchar",
                         "total_amount": "decimal(18,2)", "currency": "varchar", "is_delivered": "boolean",
                         "delivered_at": "timestamptz", "is_on_time": "boolean"},
    "marts.fct_subscriptions": {"customer_key": "varchar", "start_date": "date", "cancel_date": "date"},
    "marts.fct_survey_responses": {"response_key": "varchar", "customer_key": "varchar", "survey_type": "varchar",
                                   "responded_at": "timestamptz", "response_date": "date", "nps_category": "varchar"},
    "marts.mart_feedback_followups": {"response_key": "varchar", "customer_key": "varchar", "response_date": "date",
                                      "is_tracked": "boolean", "first_contact_at": "timestamptz",
                                      "hours_to_contact": "double", "promise_hours": "double"},
    "marts.mart_customer_profiles": {"customer_key": "varchar", "profile": "varchar", "valid_from": "date",
                                     "valid_to": "date"},
    "marts.fct_support_cases": {"customer_key": "varchar", "resolved_at": "timestamptz",
                                "customer_contacts": "bigint", "is_reopened": "boolean"},
    "marts.fct_payments": {"customer_key": "varchar", "attempt_date": "date", "is_failed": "boolean"},
    "marts.fct_refunds": {"customer_key": "varchar", "refund_date": "date", "is_service_failure": "boolean"},
    "marts.fct_promise_outcomes": {"customer_key": "varchar", "promise_date": "date", "is_broken": "boolean"},
    "main.fx_rates": {"currency": "varchar", "reporting_currency": "varchar", "rate": "double"},
}


def ts(d: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def make_db(path: Path, rows: dict[str, list[dict]], skip: tuple[str, ...] = ()) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists marts")
    for table, cols in TABLES.items():
        if table in skip:
            continue
        con.execute(f"create table {table} ({', '.join(f'{c} {t}' for c, t in cols.items())})")
        insert(con, table, rows.get(table, []))
    con.execute("insert into main.fx_rates values ('EUR', 'EUR', 1.0), ('GBP', 'EUR', 1.16), ('CHF', 'EUR', 1.07)")
    return con


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    cols = TABLES[table]
    df = pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], infer_schema_length=None)
    con.register("new_rows", df.to_arrow())
    con.execute(f"insert into {table} select {', '.join(cols)} from new_rows")
    con.unregister("new_rows")


def customer(key: str, segment: str = "consumer", created: dt.date = dt.date(2024, 1, 1), erased: bool = False) -> dict:
    return {"customer_key": key, "segment": segment, "crm_created_at": ts(created), "is_erased": erased}


def order(key: str, on: dt.date, amount: float = 50.0, currency: str = "EUR", status: str = "delivered",
          late: bool = False) -> dict:
    return {"customer_key": key, "ordered_at": ts(on), "status": status, "total_amount": amount,
            "currency": currency, "is_delivered": status == "delivered", "delivered_at": ts(on + dt.timedelta(days=2)),
            "is_on_time": not late}


def rows_of(df: pl.DataFrame, cutoff: dt.date) -> dict[str, dict]:
    return {r["customer_key"]: r for r in df.filter(pl.col("cutoff") == cutoff).to_dicts()}


# ---- definitions at their boundaries --------------------------------------------------------------------
def test_active_customers_at_the_boundaries(tmp_path: Path) -> None:
    custs = ["in364", "out365", "sub_live", "sub_cancelled_on_d", "sub_starts_after", "erased", "nothing",
             "order_on_d", "order_after_d"]
    con = make_db(tmp_path / "w.duckdb", {
        "marts.dim_customer": [customer(k, erased=(k == "erased")) for k in custs],
        "marts.fct_orders": [order("in364", day(-364)), order("out365", day(-365)), order("erased", day(-1)),
                             order("order_on_d", D), order("order_after_d", day(1))],
        "marts.fct_subscriptions": [
            {"customer_key": "sub_live", "start_date": day(-10), "cancel_date": None},
            {"customer_key": "sub_cancelled_on_d", "start_date": day(-100), "cancel_date": D},
            {"customer_key": "sub_starts_after", "start_date": day(1), "cancel_date": None}],
    })
    df, _ = churn.features(con, [D], as_of=day(200))
    got = rows_of(df, D)
    # an order exactly 365 days before d has left the year (window d-364 .. d); a subscription cancelled on d
    # is not live on d; erased customers are never scored
    assert set(got) == {"in364", "sub_live", "order_on_d"}
    assert got["sub_live"]["is_subscriber"] == 1.0 and got["in364"]["is_subscriber"] == 0.0
    assert got["in364"]["recency_days"] == 364 and got["order_on_d"]["recency_days"] == 0
    assert got["sub_live"]["recency_days"] == 365  # no order in the year


def test_labels_at_the_horizon_boundaries(tmp_path: Path) -> None:
    custs = ["sub_cancel_at_h", "sub_cancel_after_h", "sub_two_one_left", "sub_never", "buyer_at_h",
             "buyer_after_h", "buyer_next_day", "buyer_gone"]
    subs = [{"customer_key": "sub_cancel_at_h", "start_date": day(-50), "cancel_date": day(H)},
            {"customer_key": "sub_cancel_after_h", "start_date": day(-50), "cancel_date": day(H + 1)},
            {"customer_key": "sub_two_one_left", "start_date": day(-50), "cancel_date": day(10)},
            {"customer_key": "sub_two_one_left", "start_date": day(-40), "cancel_date": None},
            {"customer_key": "sub_never", "start_date": day(-50), "cancel_date": None}]
    orders = [order(k, day(-5)) for k in custs if k.startswith("buyer")]
    orders += [order("buyer_at_h", day(H)), order("buyer_after_h", day(H + 1)), order("buyer_next_day", day(1))]
    # a subscriber who keeps buying but cancels is churned: for a subscriber the contract is the relationship
    orders += [order("sub_cancel_at_h", day(5))]
    con = make_db(tmp_path / "w.duckdb", {"marts.dim_customer": [customer(k) for k in custs],
                                          "marts.fct_orders": orders, "marts.fct_subscriptions": subs})
    df, _ = churn.features(con, [D, day(1)], as_of=day(H))
    got = {k: r["churned"] for k, r in rows_of(df, D).items()}
    assert got == {"sub_cancel_at_h": True, "sub_cancel_after_h": False, "sub_two_one_left": False,
                   "sub_never": False, "buyer_at_h": False, "buyer_after_h": True, "buyer_next_day": False,
                   "buyer_gone": True}
    # the next day's horizon ends after as_of: not labelled yet
    assert rows_of(df, day(1))["sub_never"]["churned"] is None


# ---- no feature reads past the cutoff ---------------------------------------------------------------------
def _rich(keys: list[str]) -> dict[str, list[dict]]:
    """Every kind of record, dated up to and on d, for the customers ``keys``."""
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    for i, k in enumerate(keys):
        rows["marts.dim_customer"].append(customer(k, "small_business" if i % 2 else "consumer", day(-800)))
        rows["marts.dim_customer_history"].append({"customer_key": k, "profile_key": f"p{k}", "segment": "consumer",
                                                   "valid_from": ts(day(-800))})
        rows["marts.fct_orders"] += [order(k, day(-200), 80.0, "GBP"), order(k, day(-30), late=True), order(k, D)]
        rows["marts.fct_subscriptions"].append({"customer_key": k, "start_date": day(-300), "cancel_date": None})
        rows["marts.fct_survey_responses"] += [
            {"response_key": f"n{k}", "customer_key": k, "survey_type": "nps", "responded_at": ts(day(-20)),
             "response_date": day(-20), "nps_category": "detractor"},
            {"response_key": f"c{k}", "customer_key": k, "survey_type": "csat", "responded_at": ts(day(-3)),
             "response_date": day(-3), "nps_category": None}]
        rows["marts.mart_feedback_followups"] += [
            {"response_key": f"n{k}", "customer_key": k, "response_date": day(-20), "is_tracked": True,
             "first_contact_at": ts(day(-19)), "hours_to_contact": 20.0, "promise_hours": 48.0},
            {"response_key": f"c{k}", "customer_key": k, "response_date": day(-3), "is_tracked": True,
             "first_contact_at": None, "hours_to_contact": None, "promise_hours": 48.0},
            # called back tomorrow: on d it is still waiting
            {"response_key": f"w{k}", "customer_key": k, "response_date": day(-2), "is_tracked": True,
             "first_contact_at": ts(day(1)), "hours_to_contact": 60.0, "promise_hours": 48.0}]
        rows["marts.mart_customer_profiles"] += [
            {"customer_key": k, "profile": "evasive", "valid_from": day(-800), "valid_to": day(-20)},
            {"customer_key": k, "profile": "negative", "valid_from": day(-20), "valid_to": None}]
        rows["marts.fct_support_cases"] += [
            {"customer_key": k, "resolved_at": ts(D, 23), "customer_contacts": 3, "is_reopened": False},
            {"customer_key": k, "resolved_at": ts(day(-89)), "customer_contacts": 1, "is_reopened": True},
            {"customer_key": k, "resolved_at": ts(day(-90)), "customer_contacts": 2, "is_reopened": False},  # left
            {"customer_key": k, "resolved_at": ts(day(-10)), "customer_contacts": 1, "is_reopened": False}]  # good
        rows["marts.fct_payments"].append({"customer_key": k, "attempt_date": D, "is_failed": True})
        rows["marts.fct_refunds"].append({"customer_key": k, "refund_date": day(-5), "is_service_failure": True})
        rows["marts.fct_promise_outcomes"].append({"customer_key": k, "promise_date": day(-2), "is_broken": True})
    return rows


def _after(keys: list[str]) -> dict[str, list[dict]]:
    """Records dated after d (tomorrow, and on the last day of the horizon) that must not move d's features."""
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    for k in keys:
        for n in (1, H):
            rows["marts.dim_customer_history"].append({"customer_key": k, "profile_key": f"p{k}",
                                                       "segment": "enterprise", "valid_from": ts(day(n))})
            rows["marts.fct_orders"].append(order(k, day(n), 999.0, late=True))
            rows["marts.fct_subscriptions"].append({"customer_key": k, "start_date": day(n), "cancel_date": day(n + 1)})
            rows["marts.fct_survey_responses"] += [
                {"response_key": f"a{n}{k}", "customer_key": k, "survey_type": "nps", "responded_at": ts(day(n)),
                 "response_date": day(n), "nps_category": "promoter"},
                {"response_key": f"b{n}{k}", "customer_key": k, "survey_type": "ces", "responded_at": ts(day(n)),
                 "response_date": day(n), "nps_category": None}]
            rows["marts.mart_feedback_followups"].append(
                {"response_key": f"b{n}{k}", "customer_key": k, "response_date": day(n), "is_tracked": True,
                 "first_contact_at": ts(day(n)), "hours_to_contact": 1.0, "promise_hours": 48.0})
            rows["marts.fct_support_cases"].append({"customer_key": k, "resolved_at": ts(day(n), 0),
                                                    "customer_contacts": 4, "is_reopened": True})
            rows["marts.fct_payments"].append({"customer_key": k, "attempt_date": day(n), "is_failed": True})
            rows["marts.fct_refunds"].append({"customer_key": k, "refund_date": day(n), "is_service_failure": True})
            rows["marts.fct_promise_outcomes"].append({"customer_key": k, "promise_date": day(n), "is_broken": True})
        rows["marts.mart_customer_profiles"].append(
            {"customer_key": k, "profile": "advocate", "valid_from": day(1), "valid_to": None})
    return rows


def test_no_feature_reads_a_record_dated_after_the_cutoff(tmp_path: Path) -> None:
    keys = ["a", "b"]
    con = make_db(tmp_path / "w.duckdb", _rich(keys))
    before, _ = churn.features(con, [D], as_of=day(H + 5))
    got = rows_of(before, D)["a"]
    # what d knows: records dated on d count, the 90-day window is d-89 .. d
    assert got["bad_cases_90d"] == 2  # resolved on d (23:00 UTC) and on d-89; d-90 has left
    assert got["failed_payments_90d"] == 1 and got["sf_refunds_90d"] == 1 and got["broken_promises_90d"] == 1
    assert got["late_deliveries_90d"] == 1 and got["orders_90d"] == 2 and got["orders_365d"] == 3
    assert got["spend_365d"] == pytest.approx(50 + 50 + 80 * 1.16)
    assert got["nps_detractor"] == 1.0 and got["nps_days_since"] == 20 and got["csat_low_90d"] == 1.0
    assert got["followups_recovered_90d"] == 1 and got["followups_waiting"] == 2
    assert got["profile_negative"] == 1.0 and got["is_subscriber"] == 1.0 and got["tenure_days"] == 800
    assert rows_of(before, D)["b"]["segment"] == "consumer"  # the version valid on d, not dim_customer's

    # plant records dated after d
    for table, rows in _after(keys).items():
        insert(con, table, rows)
    after, _ = churn.features(con, [D], as_of=day(H + 5))
    feature_cols = [c for c in before.columns if c != "churned"]
    assert after.select(feature_cols).equals(before.select(feature_cols))
    # ... while the label sees the horizon: they all ordered in it (subscribers: their subscription stays)
    assert before["churned"].to_list() == after["churned"].to_list() == [False, False]


def test_an_answer_called_back_for_its_comment_alone_is_not_an_unhappy_score(tmp_path: Path) -> None:
    """Since the comment tagger, mart_feedback_followups also holds answers whose score is fine but whose
    comment is negative (trigger 'comment'): they are call-backs, not unhappy CSAT / CES answers."""
    con = make_db(tmp_path / "w.duckdb", _rich(["a"]))
    con.execute("alter table marts.mart_feedback_followups add column trigger varchar default 'score'")
    before = rows_of(churn.features(con, [D], as_of=day(H + 5))[0], D)["a"]
    con.execute("update marts.mart_feedback_followups set trigger = 'comment' where response_key = 'ca'")
    after = rows_of(churn.features(con, [D], as_of=day(H + 5))[0], D)["a"]
    assert (before["csat_low_90d"], after["csat_low_90d"]) == (1.0, 0.0)
    assert before["followups_waiting"] == after["followups_waiting"] == 2


def test_a_missing_mart_gives_zero_features_and_a_note(tmp_path: Path) -> None:
    con = make_db(tmp_path / "w.duckdb", _rich(["a"]), skip=("marts.fct_support_cases", "marts.dim_customer_history"))
    df, notes = churn.features(con, [D], as_of=day(H + 5))
    assert rows_of(df, D)["a"]["bad_cases_90d"] == 0
    assert any("fct_support_cases" in n for n in notes) and any("dim_customer_history" in n for n in notes)


# ---- the model on a small simulated company -----------------------------------------------------------
START = dt.date(2025, 1, 1)


def simulated(path: Path, customers: int = 600, days: int = 420, seed: int = 3) -> duckdb.DuckDBPyConnection:
    """Customers who order at a steady rate until they churn; a bad support case or a detractor answer
    makes churning more likely, a promoter answer less (the shape of the generator's planted effects)."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    for i in range(customers):
        k = f"c{i:04d}"
        seg = ["consumer", "small_business", "enterprise"][rng.choice(3, p=[0.8, 0.15, 0.05])]
        rows["marts.dim_customer"].append(customer(k, seg, START - dt.timedelta(days=int(rng.integers(1, 700)))))
        sub = rng.random() < 0.3
        hazard = 1 / 300
        t = 0.0
        bad_at = rng.uniform(0, days) if rng.random() < 0.3 else None
        nps_at = rng.uniform(0, days) if rng.random() < 0.5 else None
        nps = rng.choice(["promoter", "passive", "detractor"]) if nps_at is not None else None
        churn_at = None
        while t < days:
            h = hazard * (3 if bad_at is not None and bad_at <= t < bad_at + 90 else 1)
            h *= {"promoter": 0.5, "detractor": 2.0}.get(nps, 1.0) if nps_at is not None and t >= nps_at else 1.0
            if rng.random() < h:
                churn_at = t
                break
            if rng.random() < 1 / 25:
                rows["marts.fct_orders"].append(order(k, START + dt.timedelta(days=int(t)),
                                                      float(rng.integers(10, 200))))
            t += 1
        if sub:
            rows["marts.fct_subscriptions"].append({
                "customer_key": k, "start_date": START - dt.timedelta(days=30),
                "cancel_date": START + dt.timedelta(days=int(churn_at)) if churn_at is not None else None})
        if bad_at is not None and (churn_at is None or bad_at < churn_at):
            rows["marts.fct_support_cases"].append({"customer_key": k, "resolved_at": ts(START + dt.timedelta(
                days=int(bad_at))), "customer_contacts": 3, "is_reopened": False})
        if nps_at is not None and (churn_at is None or nps_at < churn_at):
            rd = START + dt.timedelta(days=int(nps_at))
            rows["marts.fct_survey_responses"].append({"response_key": f"r{k}", "customer_key": k,
                                                       "survey_type": "nps", "responded_at": ts(rd),
                                                       "response_date": rd, "nps_category": nps})
    con = make_db(path, rows)
    con.close()
    return duckdb.connect(str(path), read_only=True)


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("churn") / "w.duckdb"
    simulated(path).close()
    return path


def test_compute_scores_backtests_and_is_deterministic(company: Path) -> None:
    as_of = START + dt.timedelta(days=419)
    with duckdb.connect(str(company), read_only=True) as con:
        one = churn.compute(con, as_of, seed=7)
        two = churn.compute(con, as_of, seed=7)
    for name, schema in churn.SCHEMAS.items():
        assert dict(one[name].schema) == schema, name
        assert one[name].equals(two[name]), name
    risk, bt, cal = one["mart_churn_risk"], one["mart_churn_backtest"], one["mart_churn_calibration"]
    assert risk.height > 100 and risk["customer_key"].is_unique().all()
    assert risk["churn_probability"].is_between(0, 1).all()
    assert sorted(risk["risk_decile"].unique().to_list()) == list(range(1, 11))
    # decile 10 holds the highest probabilities
    by = risk.group_by("risk_decile").agg(pl.col("churn_probability").min().alias("lo"),
                                          pl.col("churn_probability").max().alias("hi")).sort("risk_decile")
    assert (by["lo"][1:].to_numpy() >= by["hi"][:-1].to_numpy()).all()
    # the backtest: held-out months trained only on cutoffs whose horizon had ended, model and baseline
    assert set(bt["model"]) == {"model", "baseline"} and bt.height >= 4
    for row in bt.iter_rows(named=True):
        assert row["n"] > 0 and 0 < row["positives"] < row["n"] and 0.5 < row["auc"] <= 1 and 0 < row["brier"] < 1
    cutoffs = sorted(set(bt["cutoff"]))
    start = churn.data_start(duckdb.connect(str(company), read_only=True), as_of)
    labelled = churn.labelled_cutoffs(start, as_of, H)
    assert cutoffs == [d for d in labelled if any(c + dt.timedelta(days=H) <= d for c in labelled)]
    assert cal.group_by(["cutoff", "model"]).agg(pl.col("n").sum()).join(
        bt.select("cutoff", "model", "n"), on=["cutoff", "model"]).filter(pl.col("n") != pl.col("n_right")).is_empty()
    # the model names its training window and size
    assert one["mart_churn_risk"]["model_version"][0].startswith(f"{churn.MODEL_NAME} h{H} train 2025-04-01..")


def test_the_training_sample_is_seeded(company: Path) -> None:
    as_of = START + dt.timedelta(days=419)
    with duckdb.connect(str(company), read_only=True) as con:
        a, b, c = (churn.compute(con, as_of, seed=s, max_train_units=400) for s in (1, 1, 2))
    for name in churn.SCHEMAS:
        assert a[name].equals(b[name]), name
    assert " n400 seed 1" in a["mart_churn_risk"]["model_version"][0]
    # another seed draws another sample of the (larger) training set
    assert not np.allclose(a["mart_churn_risk"]["churn_probability"].to_numpy(),
                           c["mart_churn_risk"]["churn_probability"].to_numpy())


def test_reasons_are_the_largest_positive_contributions(company: Path) -> None:
    as_of = START + dt.timedelta(days=419)
    with duckdb.connect(str(company), read_only=True) as con:
        start = churn.data_start(con, as_of)
        cutoffs = churn.labelled_cutoffs(start, as_of, H)
        df, _ = churn.features(con, [*cutoffs, as_of], as_of)
    names = [f.name for f in churn.FEATURES]
    fitted = churn.fit(df.filter(pl.col("cutoff") != as_of), names)
    now = df.filter(pl.col("cutoff") == as_of)
    got = churn.reasons(fitted, now, "EUR")
    # recompute: coef * (x - mean) / sd per feature, summed per group, largest positive first
    x = churn._matrix(now, names)
    contrib = fitted.model.coef_[0] * (x - fitted.scaler.mean_) / fitted.scaler.scale_
    groups = list(dict.fromkeys(f.group for f in churn.FEATURES))
    g = np.column_stack([contrib[:, [i for i, f in enumerate(churn.FEATURES) if f.group == grp]].sum(axis=1)
                         for grp in groups])
    rows = now.to_dicts()
    checked = 0
    for i, row in enumerate(rows):
        top = [j for j in np.argsort(-g[i], kind="stable")[:3] if g[i, j] >= churn.MIN_REASON_LOGODDS]
        want = [churn._reason(groups[j], row, "EUR") for j in top]
        assert got[i] == want + [None] * (3 - len(want))
        checked += bool(want)
    assert checked > len(rows) / 2
    # and the labels read like the customer's own values
    bad = next(i for i, r in enumerate(rows) if r["bad_cases_90d"] == 1 and "bad support case" in " ".join(
        filter(None, got[i])))
    assert "1 bad support case in 90 days" in got[bad]


def test_a_short_window_never_fails(tmp_path: Path) -> None:
    con = simulated(tmp_path / "w.duckdb", customers=150, days=200)
    # 60 days of data: no cutoff has 90 days of history before it -> no model, a reason, empty tables
    out = churn.compute(con, START + dt.timedelta(days=59))
    assert out["mart_churn_risk"].is_empty() and out["mart_churn_backtest"].is_empty()
    assert "too little history" in out["notes"]
    for name, schema in churn.SCHEMAS.items():
        assert dict(out[name].schema) == schema
    # 200 days: one labelled cutoff (2025-04-01 + 90 <= 2025-07-19): scores, but no backtest, and says so
    out = churn.compute(con, START + dt.timedelta(days=199))
    assert out["mart_churn_risk"].height > 0 and out["mart_churn_backtest"].is_empty()
    assert "no backtest" in out["notes"]
    # an empty warehouse
    empty = make_db(tmp_path / "empty.duckdb", {})
    out = churn.compute(empty, START)
    assert out["mart_churn_risk"].is_empty() and "no orders" in out["notes"]
