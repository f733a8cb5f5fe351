"""Key drivers of experience (``mart_experience_drivers``): which moments of truth go with a lower NPS, a
lower CSAT and more churn, by how much, and how much of each outcome's variation each one explains once
the others are accounted for.

Every definition is stated once, here (the tables ``OUTCOMES`` and ``MOMENTS`` carry the same words); the
SQL and the code follow it.

**Units and outcomes** (only data dated on or before ``as_of``; rows without a customer are left out,
since no moment can be linked to them):

* ``nps``: every NPS answer (``fct_survey_responses``, survey_type 'nps', relationship and onboarding),
  ``response_date <= as_of``. Outcome: its score 0-10. The unit's instant t is ``responded_at``.
* ``csat``: every CSAT answer (survey_type 'csat', every touchpoint), score 1-5; t = ``responded_at``.
* ``churn``: a subscriber-month: a customer with a live subscription on the first day of a month m, by
  ``fct_subscriptions``' UTC dates as ``kpi_churn_monthly`` counts them (started before m, not cancelled
  before m: new subscribers of the month are not at risk yet). Outcome: 1 when the customer has no live
  subscription left on the first day of the next month (all cancelled during m), else 0. Months m that lie
  entirely on or before ``as_of`` and start on or after the first day of the observed history (the first
  order date in ``fct_orders``): before it the warehouse holds no experience data, and its subscriber-months
  would count as months without any moment for lack of data, not for lack of incidents. t = m at
  00:00 UTC.

**Moments** (one 0/1 indicator per unit): the customer had the moment in the W days up to the unit's
instant, the window (t - W, t], W = dbt var ``driver_window_days`` (90). W is elapsed time (W x 86,400 s,
like the follow-up due time: a DST change neither adds nor removes an hour): an event at instant e counts
when 0 <= t - e < W days, so an event exactly W days before t is out and one W days minus one second
before is in. A moment known only by its date (a broken promise's ``promise_date``) is placed at the end
of that UTC date (the next midnight): it never counts before it can have happened, so a promise broken on
the answer's own date counts for the answers of the following days. For a subscriber-month, t is the
month's first instant: the moments of the W days before the month.

* ``late_delivery``: an order of the customer delivered late (``fct_orders.is_on_time = false``), at its
  ``delivered_at``;
* ``failed_payment``: a failed payment attempt (``fct_payments.is_failed``), at ``attempted_at``;
* ``service_failure_refund``: a refund with reason service_failure (``fct_refunds.is_service_failure``),
  at ``refunded_at``;
* ``bad_case``: a support case with two or more customer contacts or reopened (the journey's negative
  support moments), at its ``resolved_at``;
* ``broken_promise``: any broken brand promise (``fct_promise_outcomes.is_broken``: delivery, first
  response, resolution, refund, follow-up), at the end of its ``promise_date``;
* ``followup_missed``: an unhappy answer of the customer not called back within the promise
  (``mart_feedback_followups.status`` contacted_late or never), at its ``due_at``;
* ``topic_<name>``: for an answer, its own comment speaks negatively of the topic (the per-topic tone of
  ``comment_topic_polarity`` when the warehouse has it, otherwise ``comment_topics`` with the comment's
  ``comment_polarity`` negative); for a subscriber-month, an answer of the customer in the window with such
  a comment. One moment per topic found in the answers; none when ``fct_survey_responses`` has no
  ``comment_topics`` column. A moment whose source mart is missing from the warehouse is left out.

**Per outcome x moment x segment** ('all', and each ``dim_customer.segment``; customers without a segment
count in 'all' only):

* ``n_with``, ``n_without``: units with and without the moment; ``mean_with``, ``mean_without``: the mean
  score, or the churn rate; ``sd_with``, ``sd_without``: the sample standard deviation of the outcome;
* ``effect`` = mean_with - mean_without, with its 95 % interval: Welch's (each group's own variance) for
  scores, Newcombe's hybrid score interval for the difference of churn proportions;
* churn only: ``rate_ratio`` = churn rate with / without, with the log interval of
  ``common.rate_ratio`` (churned subscriber-months over subscriber-months);
* ``is_reportable``: both n_with and n_without >= ``min_reportable_n``. Rows that are not reportable are
  kept, flagged, never dropped.

**Relative importance**: one joint model per outcome and segment: ordinary least squares of the outcome
(0/1 for churn: a linear probability model) on all moment indicators together, with an intercept.
``importance`` is the moment's Shapley share of the model's R² (dominance analysis: its increment to R²
averaged over every order of entry, exactly, over all 2^p subsets of moments, each subset's R² from the
correlation matrix), divided by the model's R², so the shares of one outcome and segment sum to 1.
``importance_rank`` 1 is the largest. ``joint_coef`` is the moment's coefficient in that model (the
difference it makes with the others held fixed), with a 95 % interval from heteroskedasticity-robust
(HC1) standard errors: the errors of a linear probability model, and of bounded scores, are not of one
variance. A moment without variation in a segment (every unit with it, or none) cannot enter the model:
null importance, coefficient and rank. At most ``MAX_MODEL_MOMENTS`` moments enter (exact Shapley costs
2^p subsets); beyond, those with the fewest units on their rarer side are left out (null importance).

Scale: the units and their indicators are built in DuckDB (one ASOF join per moment: the customer's latest
event at or before t, then its age); what reaches numpy is one row per segment and pattern of indicators
(n, sum and sum of squares of the outcome), at most 2^p rows whatever the number of customers.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from .common import (
    DAY_US,
    Z95,
    diff_proportions,
    first_order_date,
    min_reportable_n,
    month_starts,
    next_month,
    rate_ratio,
    var,
    welch_diff,
)

MARTS = "marts"
TOPIC_PREFIX = "topic_"
MAX_MODEL_MOMENTS = 16
ALL = "all"


@dataclass(frozen=True)
class Measure:
    """An outcome or a moment: its name in the mart, what it is, and where it comes from."""

    name: str
    description: str
    source: str


OUTCOMES: tuple[Measure, ...] = (
    Measure("nps", "NPS score 0-10 of every NPS answer (relationship and onboarding); t = responded_at",
            "fct_survey_responses (survey_type nps)"),
    Measure("csat", "CSAT score 1-5 of every CSAT answer; t = responded_at", "fct_survey_responses (survey_type csat)"),
    Measure("churn", "a subscriber-month (a live subscription on the month's first day; months entirely on or "
                     "before as_of, from the first order date on): 1 when no subscription is left live on the "
                     "next month's first day; t = the month's first instant (UTC)", "fct_subscriptions"),
)

MOMENTS: tuple[Measure, ...] = (
    Measure("late_delivery", "an order of the customer delivered late (is_on_time false), at delivered_at",
            "fct_orders"),
    Measure("failed_payment", "a failed payment attempt, at attempted_at", "fct_payments"),
    Measure("service_failure_refund", "a refund with reason service_failure, at refunded_at", "fct_refunds"),
    Measure("bad_case", "a support case with customer_contacts >= 2 or reopened, at resolved_at",
            "fct_support_cases"),
    Measure("broken_promise", "any broken brand promise, at the end of its promise_date (UTC)",
            "fct_promise_outcomes"),
    Measure("followup_missed", "an unhappy answer not called back within the promise (status contacted_late "
                               "or never), at due_at", "mart_feedback_followups"),
    Measure(TOPIC_PREFIX + "<name>", "the answer's own comment speaks negatively of the topic (per-topic tone "
                                     "when available, else topic and negative comment polarity); for a "
                                     "subscriber-month, such an answer of the customer in the window",
            "fct_survey_responses.comment_topics"),
)

# the events of each fixed moment: (customer_key, at_us = the instant in microseconds since the epoch, UTC)
_EVENTS: dict[str, str] = {
    "late_delivery": "select customer_key, epoch_us(delivered_at) as at_us from {m}.fct_orders "
                     "where customer_key is not null and is_on_time = false and delivered_at is not null",
    "failed_payment": "select customer_key, epoch_us(attempted_at) as at_us from {m}.fct_payments "
                      "where customer_key is not null and is_failed and attempted_at is not null",
    "service_failure_refund": "select customer_key, epoch_us(refunded_at) as at_us from {m}.fct_refunds "
                              "where customer_key is not null and is_service_failure and refunded_at is not null",
    "bad_case": "select customer_key, epoch_us(resolved_at) as at_us from {m}.fct_support_cases "
                "where customer_key is not null and resolved_at is not null "
                "and (customer_contacts >= 2 or coalesce(reopened_count, 0) >= 1)",
    "broken_promise": "select customer_key, (date_diff('day', DATE '1970-01-01', promise_date) + 1) * "
                      f"{DAY_US} as at_us from {{m}}.fct_promise_outcomes "
                      "where customer_key is not null and is_broken and promise_date is not null",
    "followup_missed": "select customer_key, epoch_us(due_at) as at_us from {m}.mart_feedback_followups "
                       "where customer_key is not null and status in ('contacted_late', 'never') "
                       "and due_at is not null",
}
_SOURCES = {m.name: m.source for m in MOMENTS}

SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "outcome": pl.Utf8(),
    "segment": pl.Utf8(),
    "moment": pl.Utf8(),
    "window_days": pl.Int32(),
    "n_units": pl.Int64(),
    "n_with": pl.Int64(),
    "n_without": pl.Int64(),
    "mean_with": pl.Float64(),
    "mean_without": pl.Float64(),
    "sd_with": pl.Float64(),
    "sd_without": pl.Float64(),
    "effect": pl.Float64(),
    "effect_ci_low": pl.Float64(),
    "effect_ci_high": pl.Float64(),
    "rate_ratio": pl.Float64(),
    "rate_ratio_ci_low": pl.Float64(),
    "rate_ratio_ci_high": pl.Float64(),
    "joint_coef": pl.Float64(),
    "joint_coef_ci_low": pl.Float64(),
    "joint_coef_ci_high": pl.Float64(),
    "importance": pl.Float64(),
    "importance_rank": pl.Int32(),
    "model_r2": pl.Float64(),
    "is_reportable": pl.Boolean(),
}


def window_days() -> int:
    """W, the days before a unit's instant whose moments count (dbt var ``driver_window_days``)."""
    return int(var("driver_window_days"))


# ---- statistics over grouped units -----------------------------------------------------------------------
def r2_all_subsets(corr: np.ndarray, ridge: float = 1e-10) -> np.ndarray:
    """R² of the regression of variable 0 on every subset of the others, from their correlation matrix.

    ``corr`` is (p+1) x (p+1) with the outcome first. Element ``mask`` of the result (bit j = predictor j)
    is r_S' R_SS^-1 r_S, the R² of OLS with an intercept on the predictors S; element 0 is 0. Subsets of one
    size are solved together (one batched solve); a tiny ridge keeps exactly collinear predictors (two
    moments on the same units) solvable, each then taking half the shared R²."""
    p = corr.shape[0] - 1
    r, rxx = corr[0, 1:], corr[1:, 1:]
    out = np.zeros(1 << p)
    for k in range(1, p + 1):
        combos = np.array(list(itertools.combinations(range(p), k)), dtype=np.int64)
        sub = rxx[combos[:, :, None], combos[:, None, :]] + ridge * np.eye(k)
        rs = r[combos]
        beta = np.linalg.solve(sub, rs[..., None])[..., 0]
        out[(1 << combos).sum(axis=1)] = np.einsum("ij,ij->i", rs, beta)
    return out


def shapley_r2(corr: np.ndarray) -> np.ndarray:
    """Each predictor's Shapley value of R² (dominance analysis): its increment R²(S + j) - R²(S) averaged
    over all subsets S of the others, weighted |S|! (p - |S| - 1)! / p!. The values sum to the full model's
    R². Exact; 2^p subsets, fine for p <= 16."""
    p = corr.shape[0] - 1
    if p == 0:
        return np.zeros(0)
    r2 = r2_all_subsets(corr)
    masks = np.arange(1 << p)
    size = np.array([bin(m).count("1") for m in range(1 << p)])
    weight = np.array([math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) if s < p else 0.0
                       for s in range(p + 1)])
    phi = np.zeros(p)
    for j in range(p):
        without = masks[(masks >> j) & 1 == 0]
        phi[j] = (weight[size[without]] * (r2[without | (1 << j)] - r2[without])).sum()
    return phi


def grouped_correlation(x: np.ndarray, n: np.ndarray, sy: np.ndarray, syy: np.ndarray) -> np.ndarray:
    """Correlation matrix of (y, x_1..x_p) over units given as groups of identical x: ``x`` (g x p) the
    groups' indicators, ``n`` their unit counts, ``sy`` and ``syy`` the sums of y and y² in each group."""
    total = n.sum()
    z = np.column_stack([np.zeros(len(n)), x.astype(float)])
    # second moments: E[x_i x_j], E[y x_j], E[y²]
    m2 = (z * n[:, None]).T @ z / total
    m2[0, 1:] = m2[1:, 0] = (x.astype(float) * sy[:, None]).sum(axis=0) / total
    m2[0, 0] = syy.sum() / total
    mean = np.concatenate([[sy.sum() / total], (x.astype(float) * n[:, None]).sum(axis=0) / total])
    cov = m2 - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    return np.nan_to_num(corr)


@dataclass
class JointModel:
    coef: np.ndarray  # one per predictor (the intercept left out)
    se: np.ndarray  # HC1 standard errors
    r2: float


def ols_grouped(x: np.ndarray, n: np.ndarray, sy: np.ndarray, syy: np.ndarray) -> JointModel | None:
    """OLS of y on an intercept and the columns of ``x``, from groups of units with identical x (as
    ``grouped_correlation``), with HC1 (White) standard errors: each group's squared residuals sum to
    syy - 2 yhat sy + n yhat². None when there are no more units than parameters or no variation in y."""
    total = float(n.sum())
    k = x.shape[1] + 1
    if total <= k:
        return None
    xm = np.column_stack([np.ones(len(n)), x.astype(float)])
    xtx = (xm * n[:, None]).T @ xm
    bread = np.linalg.pinv(xtx)
    b = bread @ (xm.T @ sy)
    yhat = xm @ b
    rss_g = np.clip(syy - 2 * yhat * sy + n * yhat * yhat, 0, None)
    tss = syy.sum() - sy.sum() ** 2 / total
    if tss <= 0:
        return None
    meat = (xm * rss_g[:, None]).T @ xm
    cov = total / (total - k) * bread @ meat @ bread
    return JointModel(coef=b[1:], se=np.sqrt(np.clip(np.diag(cov)[1:], 0, None)), r2=float(1 - rss_g.sum() / tss))


# ---- the mart --------------------------------------------------------------------------------------------
def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_name from information_schema.tables where table_schema = ?", [MARTS]).fetchall()
    return {r[0] for r in rows}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute("select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                       [MARTS, table]).fetchall()
    return {r[0] for r in rows}


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _topic_flag(topic: str, per_topic: bool) -> str:
    """SQL: the answer's own comment speaks negatively of ``topic``."""
    if per_topic:
        return f"coalesce(list_contains(string_split(comment_topic_polarity, ';'), {_lit(topic + ':negative')}), false)"
    return (f"coalesce(list_contains(string_split(comment_topics, ';'), {_lit(topic)}) "
            "and comment_polarity = 'negative', false)")


def _moment_name(topic: str) -> str:
    return TOPIC_PREFIX + (re.sub(r"[^a-z0-9]+", "_", topic.lower()).strip("_") or "unnamed")


def _units_sql(outcome: str, as_of: dt.date, topic_flags: list[str], months: list[dt.date]) -> str | None:
    """SQL of the units of ``outcome``: customer_key, t_us, y and, for answers, one column per topic flag."""
    if outcome in ("nps", "csat"):
        flags = "".join(f", {f} as tp{i}" for i, f in enumerate(topic_flags))
        return (f"select customer_key, epoch_us(responded_at) as t_us, cast(score as double) as y{flags} "
                f"from {MARTS}.fct_survey_responses where survey_type = {_lit(outcome)} and customer_key is not null "
                f"and score is not null and responded_at is not null and response_date <= DATE '{as_of}'")
    if not months:
        return None
    values = ", ".join(f"(DATE '{m}', DATE '{next_month(m)}')" for m in months)
    return f"""
        select customer_key, date_diff('day', DATE '1970-01-01', month_start) * {DAY_US} as t_us,
               case when live_at_end then 0.0 else 1.0 end as y  -- 1: churned during the month
        from (
            select m.month_start, s.customer_key,
                   bool_or(s.start_date < m.month_start) as live_at_start,
                   bool_or(s.start_date < m.next_start and (s.cancel_date is null or s.cancel_date >= m.next_start))
                       as live_at_end
            from (values {values}) as m(month_start, next_start)
            inner join {MARTS}.fct_subscriptions as s
                on s.start_date < m.next_start and (s.cancel_date is null or s.cancel_date >= m.month_start)
            where s.customer_key is not null and s.start_date <= DATE '{as_of}'
            group by m.month_start, s.customer_key
        ) as sm
        where live_at_start"""


def _grouped(con: duckdb.DuckDBPyConnection, units: str, events: list[str], unit_flags: int,
             w_days: int) -> pl.DataFrame:
    """One row per segment (and 'all': ``is_all``) and pattern of moment indicators: n, sum y, sum y²."""
    ctes = [f"units as ({units})"] + [f"ev{i} as ({sql})" for i, sql in enumerate(events)]
    flags = [f"(e{i}.at_us is not null and u.t_us - e{i}.at_us < {w_days * DAY_US}) as m{i}"
             for i in range(len(events))]
    flags += [f"u.tp{i} as m{len(events) + i}" for i in range(unit_flags)]
    names = [f"m{i}" for i in range(len(flags))]
    joins = "".join(f" asof left join ev{i} as e{i} on u.customer_key = e{i}.customer_key and u.t_us >= e{i}.at_us"
                    for i in range(len(events)))
    cols = ", ".join(names)
    sets = f"(segment{', ' if cols else ''}{cols}), ({cols})"
    sql = f"""
        with {', '.join(ctes)},
        flagged as (
            select d.segment, u.y{''.join(', ' + f for f in flags)}
            from units as u left join {MARTS}.dim_customer as d on d.customer_key = u.customer_key{joins}
        )
        select grouping(segment) = 1 as is_all, segment{', ' if cols else ''}{cols},
               count(*) as n, sum(y) as sy, sum(y * y) as syy
        from flagged
        group by grouping sets ({sets})
        order by all  -- rows in one order: the numpy sums over them are the same to the last bit run after run"""
    return con.sql(sql).pl()


def _rows_for(outcome: str, segment: str, moments: list[str], g: pl.DataFrame, min_n: int,
              w_days: int) -> list[dict]:
    """The mart's rows of one outcome and segment from its grouped units."""
    p = len(moments)
    x = g.select([f"m{i}" for i in range(p)]).to_numpy().astype(bool) if p else np.zeros((g.height, 0), bool)
    n = g["n"].to_numpy().astype(float)
    sy = g["sy"].to_numpy().astype(float)
    syy = g["syy"].to_numpy().astype(float)
    total = int(n.sum())
    n_with = (x * n[:, None]).sum(axis=0).astype(np.int64)
    # the joint model: moments with variation, at most MAX_MODEL_MOMENTS (those best balanced first)
    varying = [j for j in range(p) if 0 < n_with[j] < total]
    varying = sorted(varying, key=lambda j: (-min(n_with[j], total - n_with[j]), moments[j]))[:MAX_MODEL_MOMENTS]
    varying.sort()
    importance = np.full(p, np.nan)
    coef = np.full(p, np.nan)
    se = np.full(p, np.nan)
    r2 = None
    if varying:
        model = ols_grouped(x[:, varying], n, sy, syy)
        if model is not None:
            r2 = model.r2
            coef[varying], se[varying] = model.coef, model.se
            phi = shapley_r2(grouped_correlation(x[:, varying], n, sy, syy))
            if phi.sum() > 0:
                importance[varying] = phi / phi.sum()
    order = sorted((j for j in range(p) if not np.isnan(importance[j])), key=lambda j: (-importance[j], moments[j]))
    rank = {j: i + 1 for i, j in enumerate(order)}
    rows = []
    for j, moment in enumerate(moments):
        w = x[:, j]
        n1, n0 = int(n[w].sum()), int(n[~w].sum())
        s1, s0, q1, q0 = sy[w].sum(), sy[~w].sum(), syy[w].sum(), syy[~w].sum()
        m1 = s1 / n1 if n1 else None
        m0 = s0 / n0 if n0 else None
        v1 = max(q1 - n1 * m1 * m1, 0.0) / (n1 - 1) if n1 >= 2 else None
        v0 = max(q0 - n0 * m0 * m0, 0.0) / (n0 - 1) if n0 >= 2 else None
        rr = (None, None, None)
        if outcome == "churn":
            eff = diff_proportions(s1, n1, s0, n0)
            rr = rate_ratio(s1, n1, s0, n0)
        elif v1 is not None and v0 is not None:
            eff = welch_diff(m1, v1, n1, m0, v0, n0)
        else:
            eff = (None, None, None)
        c, e = coef[j], se[j]
        rows.append({
            "outcome": outcome, "segment": segment, "moment": moment, "window_days": w_days, "n_units": total,
            "n_with": n1, "n_without": n0, "mean_with": m1, "mean_without": m0,
            "sd_with": math.sqrt(v1) if v1 is not None else None,
            "sd_without": math.sqrt(v0) if v0 is not None else None,
            "effect": eff[0], "effect_ci_low": eff[1], "effect_ci_high": eff[2],
            "rate_ratio": rr[0], "rate_ratio_ci_low": rr[1], "rate_ratio_ci_high": rr[2],
            "joint_coef": None if np.isnan(c) else float(c),
            "joint_coef_ci_low": None if np.isnan(c) else float(c - Z95 * e),
            "joint_coef_ci_high": None if np.isnan(c) else float(c + Z95 * e),
            "importance": None if np.isnan(importance[j]) else float(importance[j]),
            "importance_rank": rank.get(j), "model_r2": r2,
            "is_reportable": n1 >= min_n and n0 >= min_n,
        })
    return rows


def compute(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pl.DataFrame:
    """``mart_experience_drivers`` as of ``as_of`` from the marts of ``con`` (read only)."""
    tables = _tables(con)
    w_days = window_days()
    min_n = min_reportable_n()
    if "fct_survey_responses" not in tables or "dim_customer" not in tables:
        return pl.DataFrame(schema=SCHEMA)
    segments = [r[0] for r in con.execute(f"select distinct segment from {MARTS}.dim_customer "
                                          "where segment is not null order by 1").fetchall()]
    fixed = [m for m in _EVENTS if _SOURCES[m] in tables]
    cols = _columns(con, "fct_survey_responses")
    topics: list[str] = []
    per_topic = "comment_topic_polarity" in cols
    if "comment_topics" in cols:
        topics = [r[0] for r in con.execute(
            f"select distinct unnest(string_split(comment_topics, ';')) as t from {MARTS}.fct_survey_responses "
            f"where comment_topics is not null and response_date <= DATE '{as_of}' order by 1").fetchall()
            if r[0] and r[0].strip()]
        if per_topic is False and "comment_polarity" not in cols:
            topics = []
    topic_flags = [_topic_flag(t, per_topic) for t in topics]
    # topic moments of a subscriber-month: the customer's answers with that topic, as events
    topic_events = [f"select customer_key, epoch_us(responded_at) as at_us from {MARTS}.fct_survey_responses "
                    f"where customer_key is not null and responded_at is not null and {f}" for f in topic_flags]
    moment_names = fixed + [_moment_name(t) for t in topics]
    first = first_order_date(con, MARTS) if "fct_orders" in tables else None
    months = month_starts(first, as_of)
    rows: list[dict] = []
    for outcome in (o.name for o in OUTCOMES):
        if outcome == "churn" and "fct_subscriptions" not in tables:
            continue
        units = _units_sql(outcome, as_of, topic_flags, months)
        events = [_EVENTS[m].format(m=MARTS) for m in fixed]
        if outcome == "churn":
            events, unit_flags = events + topic_events, 0
        else:
            unit_flags = len(topic_flags)
        if units is None:
            grouped = pl.DataFrame(schema={"is_all": pl.Boolean, "segment": pl.Utf8,
                                           **{f"m{i}": pl.Boolean for i in range(len(moment_names))},
                                           "n": pl.Int64, "sy": pl.Float64, "syy": pl.Float64})
        else:
            grouped = _grouped(con, units, events, unit_flags, w_days)
        for segment in [ALL, *segments]:
            g = grouped.filter(pl.col("is_all")) if segment == ALL else grouped.filter(
                ~pl.col("is_all") & (pl.col("segment") == segment))
            rows += _rows_for(outcome, segment, moment_names, g, min_n, w_days)
    df = pl.DataFrame(rows, schema={k: v for k, v in SCHEMA.items() if k != "as_of"}, orient="row") if rows else \
        pl.DataFrame(schema={k: v for k, v in SCHEMA.items() if k != "as_of"})
    return (df.with_columns(pl.lit(as_of, pl.Date).alias("as_of"))
            .select(list(SCHEMA)).cast(SCHEMA).sort(["outcome", "segment", "moment"]))


def top_drivers(df: pl.DataFrame, outcome: str = "nps", k: int = 3, reportable_only: bool = True,
                include_topics: bool = False) -> pl.DataFrame:
    """The ``k`` moments of ``outcome`` with the largest importance, segment 'all' (``make demo``: what to fix
    first): moment, importance, effect and its interval, n_with, n_without, is_reportable.

    Reportable ones only unless ``reportable_only`` is False. The comment topics are left out unless
    ``include_topics``: for an NPS or CSAT answer the topic is what the customer says in that same answer,
    an explanation of the score rather than an experience that came before it (the mart ranks them with
    the rest; for churn, a topic is an earlier answer's)."""
    keep = (pl.col("outcome") == outcome) & (pl.col("segment") == ALL) & pl.col("importance").is_not_null()
    if reportable_only:
        keep &= pl.col("is_reportable")
    if not include_topics:
        keep &= ~pl.col("moment").str.starts_with("topic_")
    return (df.filter(keep)
            .sort(["importance", "moment"], descending=[True, False]).head(k)
            .select("moment", "importance", "effect", "effect_ci_low", "effect_ci_high", "n_with", "n_without",
                    "is_reportable"))
