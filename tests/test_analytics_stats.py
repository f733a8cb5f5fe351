"""The statistics and classification helpers of the key-drivers and revenue-link analyses (and the
simulator's measures of the same quantities), each branch against numbers worked out by hand.

Hand computations are in the comments; the warehouses here are tiny in-memory DuckDB databases with only
the mart columns the analyses read."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import polars as pl
import pytest

from analytics import common, drivers, value
from simulator import GeneratorConfig
from simulator.simulate import Simulation
from simulator.truth import _effects, _latest_at_or_before, _mart_counts

Z = common.Z95


# ---- interval statistics ---------------------------------------------------------------------------------
def test_rate_ratio_and_its_log_interval() -> None:
    # 20 events in 10 years over 10 in 10: RR 2, se(log) = sqrt(1/20 + 1/10) = 0.3873 -> [0.9362, 4.2727]
    rr, lo, hi = common.rate_ratio(20, 10, 10, 10)
    assert (rr, round(lo, 4), round(hi, 4)) == (2.0, 0.9362, 4.2727)
    assert common.rate_ratio(0, 10, 10, 10) == (None, None, None)
    assert common.rate_ratio(5, 0, 10, 10) == (None, None, None)


def test_difference_of_proportions_newcombe() -> None:
    # Newcombe (1998), table II: 56/70 - 48/80 = 0.2000, hybrid score interval (method 10) 0.0524 to 0.3339
    d, lo, hi = common.diff_proportions(56, 70, 48, 80)
    assert round(d, 4) == 0.2 and round(lo, 4) == 0.0524 and round(hi, 4) == 0.3339
    # no event in either group: 0, and an interval around it within [-1, 1]
    d, lo, hi = common.diff_proportions(0, 10, 0, 10)
    assert d == 0 and -1 <= lo < 0 < hi <= 1
    assert common.diff_proportions(1, 0, 1, 10) == (None, None, None)


def test_risk_ratio_katz() -> None:
    # 10/100 over 5/100: RR 2, se(log) = sqrt(1/10 - 1/100 + 1/5 - 1/100) = sqrt(0.28) -> [0.7090, 5.6421]
    rr, lo, hi = common.risk_ratio(10, 100, 5, 100)
    assert (rr, round(lo, 4), round(hi, 4)) == (2.0, 0.709, 5.6421)
    assert common.risk_ratio(0, 100, 5, 100) == (None, None, None)


def test_ratio_of_means_delta_method() -> None:
    # means 10 (var 4) and 5 (var 1), n 100 each: se(log) = sqrt(4/(100*100) + 1/(100*25)) = 0.028284
    r, lo, hi = common.ratio_of_means(10, 4, 100, 5, 1, 100)
    assert r == 2.0 and round(lo, 4) == 1.8921 and round(hi, 4) == 2.114
    assert common.ratio_of_means(10, 4, 1, 5, 1, 100) == (None, None, None)  # one observation
    assert common.ratio_of_means(0, 4, 100, 5, 1, 100) == (None, None, None)  # a mean of 0: no log ratio


def test_mean_and_poisson_intervals() -> None:
    lo, hi = common.mean_interval(10, 4, 100)  # 10 +- 1.96 * 2 / 10
    assert lo == pytest.approx(10 - Z * 0.2) and hi == pytest.approx(10 + Z * 0.2)
    assert common.mean_interval(10, 4, 1) == (None, None)
    # 4 events in 2 years: (4 + z²/2 -+ z sqrt(4 + z²/4)) / 2 = [0.7778, 5.1430]
    rate, lo, hi = common.poisson_rate(4, 2)
    assert (rate, round(lo, 4), round(hi, 4)) == (2.0, 0.7778, 5.143)
    # no event: lower bound 0, upper z² / t (= 3.84 per unit of exposure)
    assert common.poisson_rate(0, 1) == (0.0, 0.0, pytest.approx(Z * Z))
    assert common.poisson_rate(3, 0) == (None, None, None)


def test_mantel_haenszel_rate_ratio_holds_strata_apart() -> None:
    # two strata, each with rate ratio 2 (0.1 vs 0.05; 0.2 vs 0.1), but group 1 sits mostly in the high-rate
    # stratum: crude (50/300) / (40/700) = 2.92. MH: R = 10*600/700 + 40*100/300 = 21.905,
    # S = 30*100/700 + 10*200/300 = 10.952, RR = 2; var(log) = (4.898 + 11.111) / (R S) = 0.06673
    rr, lo, hi = common.mh_rate_ratio([(10, 100, 30, 600), (40, 200, 10, 100)])
    assert rr == pytest.approx(2.0) and round(lo, 4) == 1.2054 and round(hi, 4) == 3.3183
    # one stratum: the crude ratio and the same interval as rate_ratio
    assert common.mh_rate_ratio([(20, 10, 10, 10)]) == pytest.approx(common.rate_ratio(20, 10, 10, 10))
    assert common.mh_rate_ratio([(0, 10, 10, 10)]) == (None, None, None)


def test_month_helpers() -> None:
    assert common.next_month(dt.date(2026, 12, 15)) == dt.date(2027, 1, 1)
    # months starting on or after the first day and over by the last: July 2 starts after July's first day
    assert common.month_starts(dt.date(2026, 7, 1), dt.date(2026, 9, 30)) == [
        dt.date(2026, 7, 1), dt.date(2026, 8, 1), dt.date(2026, 9, 1)]
    assert common.month_starts(dt.date(2026, 7, 2), dt.date(2026, 9, 29)) == [dt.date(2026, 8, 1)]
    assert common.month_starts(None, dt.date(2026, 9, 29)) == []


# ---- the joint model and the Shapley decomposition of R² --------------------------------------------------
def _corr(r1: float, r2: float, rho: float) -> np.ndarray:
    return np.array([[1, r1, r2], [r1, 1, rho], [r2, rho, 1]], float)


def test_shapley_r2_of_orthogonal_predictors_is_their_own_r2() -> None:
    # uncorrelated predictors: R²(S) = sum of r_j² over S, so each one's Shapley value is r_j²: 0.36 and 0.09,
    # shares 0.8 and 0.2 of R² 0.45
    phi = drivers.shapley_r2(_corr(0.6, 0.3, 0.0))
    assert phi == pytest.approx([0.36, 0.09])
    assert phi / phi.sum() == pytest.approx([0.8, 0.2])


def test_shapley_r2_of_correlated_predictors() -> None:
    # r1 = 0.5, r2 = 0.4, rho = 0.3: R²(1,2) = (0.25 + 0.16 - 2 * 0.5 * 0.4 * 0.3) / (1 - 0.09) = 0.318681;
    # phi1 = (0.25 + (0.318681 - 0.16)) / 2 = 0.204341, phi2 = (0.16 + (0.318681 - 0.25)) / 2 = 0.114341
    r2 = drivers.r2_all_subsets(_corr(0.5, 0.4, 0.3))
    assert r2 == pytest.approx([0, 0.25, 0.16, 0.318681], abs=1e-6)
    assert drivers.shapley_r2(_corr(0.5, 0.4, 0.3)) == pytest.approx([0.204341, 0.114341], abs=1e-6)
    # the same predictor twice: each gets half of what it explains
    assert drivers.shapley_r2(_corr(0.5, 0.5, 1.0)) == pytest.approx([0.125, 0.125], abs=1e-6)
    # a third predictor unrelated to everything gets nothing, the others keep their values
    c = np.eye(4)
    c[:3, :3] = _corr(0.5, 0.4, 0.3)
    assert drivers.shapley_r2(c) == pytest.approx([0.204341, 0.114341, 0.0], abs=1e-6)
    assert drivers.shapley_r2(np.ones((1, 1))).size == 0


def test_ols_from_grouped_units_with_hc1_errors() -> None:
    # units (x, y): (0, 1), (0, 3), (1, 4), (1, 6): b0 = 2, b1 = 3; residuals -1, 1, -1, 1: RSS 4, TSS 13,
    # R² = 9/13. X'X = [[4, 2], [2, 2]], inverse [[.5, -.5], [-.5, 1]]; every e² = 1 so the meat is X'X and
    # HC1 = 4 / (4 - 2) * (X'X)^-1: var(b1) = 2
    x, n = np.array([[0], [1]]), np.array([2.0, 2.0])
    sy, syy = np.array([4.0, 10.0]), np.array([10.0, 52.0])
    model = drivers.ols_grouped(x, n, sy, syy)
    assert model is not None
    assert model.coef == pytest.approx([3.0]) and model.se == pytest.approx([math.sqrt(2)])
    assert model.r2 == pytest.approx(9 / 13)
    # the correlation route gives the same R² (what the Shapley values add up to)
    corr = drivers.grouped_correlation(x, n, sy, syy)
    assert drivers.r2_all_subsets(corr)[1] == pytest.approx(9 / 13)
    # as many units as parameters, or an outcome without variation: no model
    assert drivers.ols_grouped(x, np.array([1.0, 1.0]), np.array([1.0, 4.0]), np.array([1.0, 16.0])) is None
    assert drivers.ols_grouped(x, n, np.array([2.0, 2.0]), np.array([2.0, 2.0])) is None


# ---- a tiny warehouse ------------------------------------------------------------------------------------
def _ts(text: str) -> str:
    return f"TIMESTAMPTZ '{text}+00'"


def _warehouse(**tables: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'Europe/Paris'")  # the analyses must not depend on the session's zone
    con.execute("create schema marts")
    for name, sql in tables.items():
        con.execute(f"create table marts.{name} as {sql}")
    return con


def _answers(rows: list[tuple], extra: str = "") -> str:
    """fct_survey_responses rows: (response_key, customer_key, survey_type, score, responded_at[, extra...])."""
    vals = ", ".join(
        f"('{r[0]}', '{r[1]}', '{r[2]}', {r[3]}, {_ts(r[4])}, cast({_ts(r[4])} as date)"
        + "".join(", " + ("null" if v is None else f"'{v}'") for v in r[5:]) + ")" for r in rows)
    cats = ("case when survey_type <> 'nps' then null when score >= 9 then 'promoter' when score >= 7 then "
            "'passive' else 'detractor' end")
    return (f"select *, {cats} as nps_category from (values {vals}) as t(response_key, customer_key, survey_type, "
            f"score, responded_at, response_date{extra})")


def _customers(rows: list[tuple[str, str | None]]) -> str:
    vals = ", ".join(f"('{k}', {'null' if s is None else repr(s)})" for k, s in rows)
    return f"select * from (values {vals}) as t(customer_key, segment)"


def _orders(rows: list[tuple]) -> str:
    """fct_orders rows: (customer_key, ordered_at, status, is_on_time, delivered_at, total_amount)."""
    vals = ", ".join(f"('{r[0]}', {_ts(r[1])}, '{r[2]}', {('null' if r[3] is None else str(r[3]).lower())}, "
                     f"{'null' if r[4] is None else _ts(r[4])}, {r[5]}, 'EUR', 0)" for r in rows)
    return (f"select customer_key, ordered_at, status, is_on_time, delivered_at, "
            f"cast(total_amount as decimal(18, 2)) as total_amount, currency, cast(refunded_minor as bigint) as "
            f"refunded_minor from (values {vals}) as t(customer_key, ordered_at, status, is_on_time, delivered_at, "
            f"total_amount, currency, refunded_minor)")


AS_OF = dt.date(2026, 10, 1)
T = "2026-10-01 12:00:00"  # every answer's instant in the window tests


def _window_warehouse(**extra: str) -> duckdb.DuckDBPyConnection:
    return _warehouse(**{
        "fct_survey_responses": _answers([("r1", "c1", "nps", 5, T), ("r2", "c2", "nps", 9, T),
                                          ("r3", "c3", "nps", 7, T)]),
        "dim_customer": _customers([("c1", "consumer"), ("c2", "consumer"), ("c3", "enterprise")]),
        "fct_orders": _orders([
            ("c1", "2026-06-28 10:00:00", "delivered", False, "2026-07-03 12:00:00", 10),  # exactly 90 days: out
            ("c2", "2026-06-28 10:00:00", "delivered", False, "2026-07-03 12:00:01", 10),  # 90 days - 1 s: in
            ("c3", "2026-09-28 10:00:00", "delivered", False, "2026-10-01 12:00:01", 10),  # after the answer: out
            ("c3", "2026-09-20 10:00:00", "delivered", True, "2026-09-25 12:00:00", 10),  # on time: no moment
        ]),
        **extra})


def test_drivers_window_boundaries() -> None:
    promises = ("select * from (values ('c1', true, DATE '2026-10-01'), ('c3', true, DATE '2026-09-30'), "
                "('c2', false, DATE '2026-09-30')) as t(customer_key, is_broken, promise_date)")
    df = drivers.compute(_window_warehouse(fct_promise_outcomes=promises), AS_OF)
    assert df.columns == list(drivers.SCHEMA) and df.schema == pl.Schema(drivers.SCHEMA)
    late = df.filter(outcome="nps", segment="all", moment="late_delivery").row(0, named=True)
    # only c2 (9) had a late delivery in (t - 90 d, t]; c1's came exactly 90 days before, c3's after t
    assert (late["n_with"], late["n_without"], late["mean_with"], late["mean_without"]) == (1, 2, 9.0, 6.0)
    assert late["effect"] is None and not late["is_reportable"]  # one answer with: no variance, no interval
    # a promise broken on the answer's own date counts from the next midnight: c1's is out, c3's (the day
    # before) is in
    broken = df.filter(outcome="nps", segment="all", moment="broken_promise").row(0, named=True)
    assert (broken["n_with"], broken["mean_with"]) == (1, 7.0)
    # moments whose mart is absent are left out; without fct_subscriptions there is no churn outcome;
    # without comment_topics no topic moment. An outcome without units (no CSAT answer) keeps its rows, n 0
    assert set(df["moment"]) == {"late_delivery", "broken_promise"}
    assert set(df["outcome"]) == {"nps", "csat"}
    assert df.filter(outcome="csat")["n_units"].sum() == 0 and not df.filter(outcome="csat")["is_reportable"].any()
    # 'all' and each segment of dim_customer, sorted
    assert df["segment"].unique(maintain_order=True).to_list() == ["all", "consumer", "enterprise"]
    assert df.filter(outcome="nps", segment="consumer", moment="late_delivery")["n_with"].item() == 1


def test_drivers_topic_moments_comment_polarity_or_per_topic() -> None:
    answers = [("r1", "c1", "nps", 5, T, "delivery;price", "negative", "delivery:negative;price:positive"),
               ("r2", "c2", "nps", 9, T, "delivery", "positive", "delivery:positive"),
               ("r3", "c3", "nps", 7, T, None, None, None)]
    whole = _answers([a[:7] for a in answers], ", comment_topics, comment_polarity")
    df = drivers.compute(_window_warehouse(fct_survey_responses=whole), AS_OF).filter(segment="all", outcome="nps")
    # the comment is negative and names both topics: both are moments of r1
    assert df.filter(moment="topic_delivery")["n_with"].item() == 1
    assert df.filter(moment="topic_price")["mean_with"].item() == 5.0
    per_topic = _answers(answers, ", comment_topics, comment_polarity, comment_topic_polarity")
    df = drivers.compute(_window_warehouse(fct_survey_responses=per_topic), AS_OF).filter(segment="all", outcome="nps")
    # with the tone of each topic's clause, price was spoken of positively: not a moment
    assert df.filter(moment="topic_delivery")["n_with"].item() == 1
    assert df.filter(moment="topic_price")["n_with"].item() == 0


def test_drivers_churn_unit_is_the_subscriber_month() -> None:
    subs = ("select * from (values ('c1', DATE '2026-06-01', DATE '2026-08-15'), ('c2', DATE '2026-07-10', null)) "
            "as t(customer_key, start_date, cancel_date)")
    cases = (f"select * from (values ('c1', {_ts('2026-07-20 09:00:00')}, 3, 0)) "
             "as t(customer_key, resolved_at, customer_contacts, reopened_count)")
    con = _warehouse(
        fct_survey_responses=_answers([("r1", "c1", "nps", 5, "2026-07-05 10:00:00")]),
        dim_customer=_customers([("c1", "consumer"), ("c2", None)]),
        fct_orders=_orders([("c2", "2026-07-01 08:00:00", "delivered", True, "2026-07-03 12:00:00", 10)]),
        fct_subscriptions=subs, fct_support_cases=cases)
    df = drivers.compute(con, dt.date(2026, 9, 5)).filter(outcome="churn")
    # months July and August (September is not over); c1 in July (stays), c1 in August (cancels: churned),
    # c2 in August (started in July: new subscribers of July are not at risk in July). The bad case resolved on
    # July 20 is in the 90 days before August 1 only
    bad = df.filter(segment="all", moment="bad_case").row(0, named=True)
    assert (bad["n_with"], bad["mean_with"], bad["n_without"], bad["mean_without"]) == (1, 1.0, 2, 0.0)
    # Newcombe's interval of 1/1 - 0/2 is wide on three units: [-0.03, 1]
    assert bad["effect"] == 1.0 and bad["effect_ci_low"] < 1.0 <= bad["effect_ci_high"] <= 1.0
    assert bad["rate_ratio"] is None  # no churn without the moment: no ratio
    # c2 has no segment: in 'all' only
    assert df.filter(segment="consumer", moment="bad_case")["n_without"].item() == 1


def test_top_drivers_keeps_reportable_moments_by_importance() -> None:
    rows = [{"outcome": "nps", "segment": "all", "moment": m, "importance": imp, "is_reportable": rep,
             "effect": -1.0, "effect_ci_low": -2.0, "effect_ci_high": 0.0, "n_with": 40, "n_without": 400}
            for m, imp, rep in (("a", 0.5, False), ("b", 0.3, True), ("c", 0.15, True), ("d", 0.05, True),
                                ("e", None, True))]
    top = drivers.top_drivers(pl.DataFrame(rows), k=2)
    assert top["moment"].to_list() == ["b", "c"]


# ---- the revenue link ------------------------------------------------------------------------------------
def _value_warehouse() -> duckdb.DuckDBPyConnection:
    # A answers 9 (promoter) on July 1 12:00 and 3 (detractor) on July 11 12:00; B answers 7 (passive) on
    # July 15 00:00; B's first order (July 1 00:30) opens the observed history
    return _warehouse(
        fct_survey_responses=_answers([("a1", "A", "nps", 9, "2026-07-01 12:00:00"),
                                       ("a2", "A", "nps", 3, "2026-07-11 12:00:00"),
                                       ("b1", "B", "nps", 7, "2026-07-15 00:00:00"),
                                       ("b0", "B", "csat", 1, "2026-07-02 00:00:00")]),
        dim_customer=_customers([("A", "consumer"), ("B", "consumer")]),
        fct_orders=_orders([
            ("B", "2026-07-01 00:30:00", "delivered", True, None, 10),  # before B's answer: no group
            ("A", "2026-07-05 09:00:00", "delivered", True, None, 10),  # promoter
            ("A", "2026-07-20 09:00:00", "delivered", True, None, 10),  # detractor
            ("A", "2026-08-02 09:00:00", "delivered", True, None, 10),  # detractor, August
            ("A", "2026-07-25 09:00:00", "cancelled", True, None, 10),  # cancelled: not counted
            ("B", "2026-07-15 00:00:00", "delivered", True, None, 10),  # at B's answer instant: passive
            ("B", "2026-08-05 09:00:00", "delivered", True, None, 10),  # passive, August
        ]))


def test_order_rate_splits_exposure_by_answer_and_month() -> None:
    df = value.compute(_value_warehouse(), dt.date(2026, 8, 9))  # exposure ends August 10, 00:00
    assert df.columns == list(value.SCHEMA) and df.schema == pl.Schema(value.SCHEMA)
    rate = df.filter(measure="order_rate", segment="all", dimension="nps_category")

    def cell(group: str, month: dt.date | None) -> dict:
        return rate.filter(pl.col("group") == group, pl.col("cohort_month").eq_missing(month)).row(0, named=True)

    year = 365.25
    # promoter: A from July 1 12:00 to July 11 12:00 = 10 days, 1 order
    assert cell("promoter", None)["value"] == pytest.approx(1 / (10 / year))
    # detractor: A from July 11 12:00 to August 10 = 29.5 days (20.5 in July, 9 in August), 2 orders
    assert cell("detractor", None)["value"] == pytest.approx(2 / (29.5 / year))
    assert cell("detractor", dt.date(2026, 7, 1))["value"] == pytest.approx(1 / (20.5 / year))
    assert cell("detractor", dt.date(2026, 8, 1))["value"] == pytest.approx(1 / (9 / year))
    # passive: B from July 15 to August 10 = 26 days, 2 orders (one placed at the answer's instant)
    passive = cell("passive", None)
    assert passive["value"] == pytest.approx(2 / (26 / year)) and passive["n"] == 1
    assert passive["ratio_to_reference"] is None and passive["reference_group"] == "passive"
    # ratios to the passives: (1 / 10) / (2 / 26) = 1.3; (2 / 29.5) / (2 / 26) = 0.8814
    assert cell("promoter", None)["ratio_to_reference"] == pytest.approx(1.3)
    assert cell("detractor", None)["ratio_to_reference"] == pytest.approx(26 / 29.5)
    assert not cell("promoter", None)["is_reportable"]
    # no complete 90-day snapshot yet (July 1 + 89 days > August 9): no snapshot measure
    assert set(df["measure"]) == {"order_rate"}


def test_nps_groups_follow_the_category_bounds() -> None:
    # scores 6 | 7, 8 | 9: detractor | passive | promoter, one customer each, one order each after the answer
    answers = [(f"r{s}", f"c{s}", "nps", s, "2026-07-02 00:00:00") for s in (6, 7, 8, 9)]
    orders = [(f"c{s}", "2026-07-03 00:00:00", "delivered", True, None, 10) for s in (6, 7, 8, 9)]
    orders.append(("c6", "2026-07-01 00:00:00", "delivered", True, None, 10))
    con = _warehouse(fct_survey_responses=_answers(answers), fct_orders=_orders(orders),
                     dim_customer=_customers([(f"c{s}", "consumer") for s in (6, 7, 8, 9)]))
    df = value.compute(con, dt.date(2026, 7, 11)).filter(
        pl.col("cohort_month").is_null(), measure="order_rate", segment="all")
    assert dict(zip(df["group"], df["n"], strict=True)) == {"detractor": 1, "passive": 2, "promoter": 1}


def test_revenue_at_stake_sums_segments() -> None:
    rows = [{"measure": value.AT_STAKE, "segment": "all", "value": 100.0, "ci_low": 50.0, "ci_high": 150.0}]
    assert value.revenue_at_stake(pl.DataFrame(rows)) == (100.0, 50.0, 150.0, common.var("reporting_currency"))
    assert value.revenue_at_stake(pl.DataFrame(schema=value.SCHEMA))[0] is None


# ---- the simulator's measures of the same quantities (truth.json realized_in_mart) -------------------------
EMPTY = {
    "orders": {"cust": [], "at": [], "cancel_at": [], "late": [], "delivered_at": []},
    "invoices": {"cust": []}, "payments": {"invoice": [], "ok": [], "at": []},
    "refunds": {"payment": [], "reason": [], "at": []},
    "cases": {"cust": [], "contacts": [], "reopened": [], "resolved1": [], "resolved2": []},
    "responses": {"cust": [], "stype": [], "score": [], "responded": []},
    "followups": {"response": [], "outcome": [], "at": []},
    "subscriptions": {"cust": [], "started": [], "cancelled": []},
}
KINDS = {"late": bool, "ok": bool}


def _sim(days: int, start: dt.date = dt.date(2026, 1, 1), **tables: dict) -> Simulation:
    t = {name: {c: np.asarray(v, KINDS.get(c, np.int64 if c in ("cust", "invoice", "payment", "reason", "contacts",
                                                                 "reopened", "stype", "score", "response",
                                                                 "outcome") else float))
                for c, v in {**cols, **tables.get(name, {})}.items()}
         for name, cols in EMPTY.items()}
    return Simulation(GeneratorConfig(customers=4, days=days, start=start), {}, t)


def test_latest_event_at_or_before() -> None:
    idx, at = _latest_at_or_before(np.array([0, 0, 1]), np.array([5.0, 1.0, 3.0]),
                                   np.array([0, 0, 1, 2]), np.array([4.0, 5.0, 2.0, 9.0]))
    assert idx.tolist() == [1, 0, -1, -1]  # ties count (5.0 at 5.0); customer 1's event is later; 2 has none
    assert at[:2].tolist() == [1.0, 5.0] and np.isnan(at[2:]).all()


def test_simulated_window_and_nps_difference() -> None:
    second = 1 / 86400
    sim = _sim(200, orders={"cust": [0, 1], "at": [55.0, 55.0], "cancel_at": [np.nan, np.nan], "late": [True, True],
                            "delivered_at": [60.0, 60.0 + second]},
               responses={"cust": [0, 1, 2], "stype": [0, 0, 0], "score": [5, 9, 7], "responded": [150.0] * 3})
    c = _mart_counts(sim)
    # customer 0's late delivery came exactly 90 days before the answer (out), customer 1's 90 days - 1 s (in)
    assert (c["mart_nps_late_delivery_with_n"], c["mart_nps_late_delivery_with_sum"]) == (1, 9)
    assert (c["mart_nps_late_delivery_without_n"], c["mart_nps_late_delivery_without_sum"]) == (2, 12)
    assert c["mart_nps_late_delivery_without_sumsq"] == 25 + 49


def test_simulated_order_rate_by_category_bounds() -> None:
    # answers 6, 7, 8, 9 on day 10; each customer orders on day 15; customer 0 also before its answer, and
    # customer 3's second order is cancelled within the window
    sim = _sim(20, orders={"cust": [0, 1, 2, 3, 0, 3], "at": [15.0, 15.0, 15.0, 15.0, 5.0, 16.0],
                           "cancel_at": [np.nan] * 5 + [16.5], "late": [False] * 6, "delivered_at": [np.nan] * 6},
               responses={"cust": [0, 1, 2, 3], "stype": [0] * 4, "score": [6, 7, 8, 9], "responded": [10.0] * 4})
    c = _mart_counts(sim)
    assert (c["mart_order_detractor_orders"], c["mart_order_passive_orders"], c["mart_order_promoter_orders"]) == \
        (1, 2, 1)
    assert c["mart_order_passive_exposure_s"] == 2 * 10 * 86400
    assert c["mart_order_promoter_exposure_s"] == c["mart_order_detractor_exposure_s"] == 10 * 86400


def test_simulated_subscriber_months_and_churn_ratio() -> None:
    # window January 1 to February 28 (59 days): months January and February. Subscription A (customer 0)
    # from before the window, cancelled on February 10: live in both months, churned in February; B
    # (customer 1) started January 6: not at risk in January. A bad case of customer 0 resolved on day 20
    sim = _sim(59, subscriptions={"cust": [0, 1], "started": [-10.0, 5.0], "cancelled": [40.5, np.nan]},
               cases={"cust": [0], "contacts": [3], "reopened": [0], "resolved1": [20.0], "resolved2": [np.nan]})
    c = _mart_counts(sim)
    assert (c["mart_churn_bad_case_with_n"], c["mart_churn_bad_case_with_sum"]) == (1, 1)
    assert (c["mart_churn_bad_case_without_n"], c["mart_churn_bad_case_without_sum"]) == (2, 0)


def test_realized_in_mart_entries() -> None:
    counts = {"mart_nps_late_delivery_with_n": 4, "mart_nps_late_delivery_with_sum": 20,
              "mart_nps_late_delivery_with_sumsq": 4 * 25 + 12,  # mean 5, variance 12 / 3 = 4
              "mart_nps_late_delivery_without_n": 3, "mart_nps_late_delivery_without_sum": 21,
              "mart_nps_late_delivery_without_sumsq": 3 * 49 + 2,  # mean 7, variance 1
              "mart_churn_bad_case_with_n": 50, "mart_churn_bad_case_with_sum": 10,
              "mart_churn_bad_case_without_n": 1000, "mart_churn_bad_case_without_sum": 50,
              "mart_order_promoter_orders": 26, "mart_order_promoter_exposure_s": round(86400 * 365.25),
              "mart_order_passive_orders": 20, "mart_order_passive_exposure_s": round(86400 * 365.25),
              "mart_order_detractor_orders": 16, "mart_order_detractor_exposure_s": round(86400 * 365.25)}
    counts |= {k: 0 for k in ("recovery_in_time_n", "recovery_in_time_sum", "recovery_never_n", "recovery_never_sum")}
    counts |= {f"{name}_{k}": 0 for name in ("delivery", "support") for k in ("hit_n", "hit_sum", "miss_n", "miss_sum")}
    effects = {e["id"]: e["realized_in_mart"] for e in _effects(GeneratorConfig(), counts, {})}
    late = effects["late_delivery_lowers_nps"]
    assert (late["value"], late["sd_with"], late["sd_without"], late["window_days"]) == (-2.0, 2.0, 1.0, 90)
    assert effects["bad_case_raises_churn"]["value"] == 4.0  # 0.2 / 0.05
    assert effects["promoters_buy_more"]["value"] == {"promoter": 1.3, "detractor": 0.8}
    assert effects["failed_payment_lowers_nps"] is None and effects["promoters_churn_less"] is None
