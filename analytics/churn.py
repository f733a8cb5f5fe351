"""Churn risk: who is likely to leave in the next ``churn_horizon_days``, why, and how well we know.

Every definition below is stated once, here; the SQL and the code follow it.

**Cutoff.** A date d. Everything known on d is the data dated d or earlier (UTC calendar dates of the
facts' timestamps, as the customer 360 dates them). A feature never reads a record dated after d; a
label reads only the horizon (d, d + H].

**Active customer on d.** A customer of ``dim_customer``, not erased, who on d

* holds a live subscription (``fct_subscriptions``: started on or before d, not cancelled on or before
  d), or
* placed an order (any status: a cancelled order is still a visit) in the 365 days d - 364 .. d (the
  project's window convention, docs/journey.md: a window of N days on d holds d - N + 1 .. d; an order
  exactly 365 days before d has left it).

Erased customers are left out of every cutoff (we neither learn from nor score a person who asked to
be forgotten; erasure is known only as of today, a small selection on the past cutoffs).

**Churned in the horizon.** H = ``churn_horizon_days`` (dbt var, 90). For a customer active on d:

* subscriber (a live subscription on d): no subscription of theirs is live at the end of d + H, i.e.
  every one was cancelled in (d, d + H] (a cancellation dated d + H is in, d + H + 1 is out);
* non-subscriber: no order placed in (d, d + H] (an order dated d + H counts as staying).

Why two rules: a subscriber leaves by cancelling, a contract the warehouse sees end. A non-subscriber
never tells anyone they left; the warehouse can only see them stop buying, so "churn" for them is a
quarter without an order (which also counts a slow buyer who is still there: that is the price of the
definition, the same for the model and the baseline). A label is known only once the horizon has
passed: cutoff d is *labelled* when d + H <= as_of.

**Features on d** (only data dated <= d; windows of N days are d - N + 1 .. d):

* purchase: recency (days since the latest order, 365 when none in the year), orders in 90 and in 365
  days, spend in 365 days in the reporting currency (var ``reporting_currency``, seed ``fx_rates``;
  non-cancelled orders; orders in a currency without a rate are left out and the notes say so; without
  the seed spend is 0 for everyone, so it has no weight, rather than a copy of the order count), tenure
  (days since the first of: CRM profile created, first order, first subscription);
* is_subscriber, and recency / orders in 90 days for non-subscribers only (the label of a subscriber
  does not depend on buying, a non-subscriber's does: one slope each);
* segment on d (``dim_customer_history``, the version valid on d; ``dim_customer`` when it has none),
  one-hot, consumer the reference;
* latest NPS answer on or before d: promoter / passive / detractor (none the reference), days since it;
* latest CSAT and latest CES answer of the last 90 days is unhappy (its scale's bottom band: it has an
  item in ``mart_feedback_followups`` triggered by its score, the one definition of an unhappy answer);
* in the last 90 days: bad support cases (resolved, with more than one customer contact or reopened:
  the journey's negative support moments), failed payment attempts, late deliveries, service-failure
  refunds, brand promises broken (``fct_promise_outcomes``), unhappy answers called back within the
  promise (the recovery of closing the loop);
* answers of the last 90 days needing a call-back (an unhappy score, or a negative comment) not called
  back by d (open or missed follow-ups);
* the customer's profile on d (``mart_customer_profiles``, the spell valid on d): negative / advocate
  (evasive the reference).

A mart the warehouse does not have (a company without the survey system, a warehouse before issue
15) gives zero features and a note, never an error.

Point in time: the marts hold each record's latest version, so a feature reads a record by the date of
the event it counts (a case by its final resolution, a delivery by its delivery, a call-back by its
contact): a later change moves a record out of d's window, never into it. A record that arrived a few
nights late is seen on its event date, slightly earlier than the nightly run of d would have seen it.

**Model.** scikit-learn ``LogisticRegression`` (lbfgs, L2, C = 1, fixed ``random_state``) on standardized
features, trained on the labelled monthly cutoffs (the first of each month), from the first month
start with at least ``MIN_HISTORY_DAYS`` of order history before it (earlier cutoffs would see the 90-day
windows cut by the start of the data), on a seeded sample of at most ``MAX_TRAIN_UNITS`` (customer,
cutoff) units. The **baseline** is the same learner on recency and order counts (90 and 365 days) only.

**Score** (``mart_churn_risk``): every active customer on as_of gets ``churn_probability`` (of churning in
(as_of, as_of + H]), ``risk_decile`` (1 lowest .. 10 highest risk: rank by probability, ties by
customer key) and up to three reasons: the features with the largest positive contribution
coef x (x - training mean) / training sd to the log-odds, summed per group (a one-hot group, or recency
with the 90-day order count, tells one story), at least ``MIN_REASON_LOGODDS``, as readable labels of the
customer's own values ("2 bad support cases in 90 days").

**Backtest** (``mart_churn_backtest``, ``mart_churn_calibration``): for each labelled cutoff d_k that has
at least one labelled cutoff d with d + H <= d_k, train on those cutoffs only (labels fully observed on
d_k), score d_k, and compare with its outcomes: AUC (``roc_auc_score``; null when one class is absent),
Brier score, and per decile of predicted risk the mean predicted probability and the observed rate; for
the model and the baseline.

``compute`` returns the three tables (``SCHEMAS``) and ``notes``, a string. Deterministic for a given
warehouse, ``as_of`` and ``seed`` (rows sorted by cutoff and key, seeded sampling, deterministic solver).
Never fails for lack of history: it returns what it can (no backtest with fewer than two labelled
cutoffs a horizon apart; no scores without a labelled cutoff), and ``notes`` says what was left out and why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence

import duckdb
import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.preprocessing import StandardScaler

from .common import var

MARTS = "marts"
ACTIVE_ORDER_DAYS = 365  # an order in this many days on d makes a customer active (the year of a shopper)
INCIDENT_DAYS = 90  # window of the experience features (cases, payments, deliveries, refunds, promises)
# a cutoff is used only when the data holds at least this many days before it: the 90-day incident windows
# must be whole, else the first cutoffs of a new warehouse teach that nothing bad ever happens
MIN_HISTORY_DAYS = INCIDENT_DAYS
MAX_TRAIN_UNITS = 200_000  # (customer, cutoff) units per fit: ~40 MB of features, seconds of lbfgs
C_REGULARIZATION = 1.0
# a reason must raise the log-odds by at least this much against the average customer (x 1.1 on the odds):
# smaller pushes are noise, and a list of them reads as if everything mattered
MIN_REASON_LOGODDS = 0.1
MODEL_NAME = "churn-logreg-v1"

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "mart_churn_risk": {
        "as_of": pl.Date(), "customer_key": pl.String(), "segment": pl.String(),
        "churn_probability": pl.Float64(), "risk_decile": pl.Int64(),
        "reason_1": pl.String(), "reason_2": pl.String(), "reason_3": pl.String(),
        "model_version": pl.String(),
    },
    "mart_churn_backtest": {
        "as_of": pl.Date(), "cutoff": pl.Date(), "model": pl.String(), "n": pl.Int64(),
        "positives": pl.Int64(), "auc": pl.Float64(), "brier": pl.Float64(),
    },
    "mart_churn_calibration": {
        "as_of": pl.Date(), "cutoff": pl.Date(), "model": pl.String(), "decile": pl.Int64(),
        "n": pl.Int64(), "mean_predicted": pl.Float64(), "observed_rate": pl.Float64(),
    },
}


# ---- features -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Feature:
    name: str  # column of the feature query
    group: str  # reasons name a group once (a one-hot group is one reason)
    transform: str = "none"  # none | log1p


FEATURES: tuple[Feature, ...] = (
    Feature("recency_days", "recent_orders"),
    Feature("orders_90d", "recent_orders"),
    Feature("orders_365d", "orders_365d"),
    Feature("spend_365d", "spend_365d", "log1p"),
    Feature("tenure_days", "tenure", "log1p"),
    Feature("is_subscriber", "subscription"),
    Feature("nonsub_recency_days", "recent_orders"),
    Feature("nonsub_orders_90d", "recent_orders"),
    Feature("seg_small_business", "segment"),
    Feature("seg_enterprise", "segment"),
    Feature("seg_unknown", "segment"),
    Feature("nps_promoter", "nps"),
    Feature("nps_passive", "nps"),
    Feature("nps_detractor", "nps"),
    Feature("nps_days_since", "nps"),
    Feature("csat_low_90d", "csat"),
    Feature("ces_low_90d", "ces"),
    Feature("bad_cases_90d", "bad_cases"),
    Feature("failed_payments_90d", "failed_payments"),
    Feature("late_deliveries_90d", "late_deliveries"),
    Feature("sf_refunds_90d", "sf_refunds"),
    Feature("broken_promises_90d", "broken_promises"),
    Feature("followups_recovered_90d", "followups_recovered"),
    Feature("followups_waiting", "followups_waiting"),
    Feature("profile_negative", "profile"),
    Feature("profile_advocate", "profile"),
)
BASELINE = ("recency_days", "orders_90d", "orders_365d")
# what the reasons' labels read (the customer's own values, not the transformed features)
LABEL_COLUMNS = ("recency_days", "orders_90d", "orders_365d", "spend_365d", "tenure_days", "is_subscriber", "segment",
                 "nps_category", "nps_days_since", "csat_low_90d", "ces_low_90d", "bad_cases_90d",
                 "failed_payments_90d", "late_deliveries_90d", "sf_refunds_90d", "broken_promises_90d",
                 "followups_recovered_90d", "followups_waiting", "profile")


def _n(k: float, one: str, many: str | None = None) -> str:
    k = int(round(k))
    return f"{k} {one if k == 1 else (many or one + 's')}"


# the reasons that count events: group -> (feature column, singular, plural or None, what follows the count)
_COUNTED: dict[str, tuple[str, str, str | None, str]] = {
    "bad_cases": ("bad_cases_90d", "bad support case", None, "in 90 days"),
    "failed_payments": ("failed_payments_90d", "failed payment", None, "in 90 days"),
    "late_deliveries": ("late_deliveries_90d", "late delivery", "late deliveries", "in 90 days"),
    "sf_refunds": ("sf_refunds_90d", "service-failure refund", None, "in 90 days"),
    "broken_promises": ("broken_promises_90d", "broken promise", None, "in 90 days"),
    "followups_recovered": ("followups_recovered_90d", "unhappy answer", None, "called back in time in 90 days"),
    "followups_waiting": ("followups_waiting", "unhappy answer", None, "not called back"),
}


def _reason(group: str, row: dict, currency: str) -> str:
    """The readable label of a reason: what the customer's own values of the group are."""
    r = row
    if group == "recent_orders":
        if not r["orders_365d"]:
            return f"no order in {ACTIVE_ORDER_DAYS} days"
        if not r["orders_90d"]:
            return f"no order for {int(r['recency_days'])} days"
        return f"{_n(r['orders_90d'], 'order')} in 90 days, the last {int(r['recency_days'])} days ago"
    if group == "orders_365d":
        return f"{_n(r['orders_365d'], 'order')} in {ACTIVE_ORDER_DAYS} days"
    if group == "spend_365d":
        return f"{currency} {r['spend_365d']:,.0f} spent in {ACTIVE_ORDER_DAYS} days"
    if group == "tenure":
        return f"customer for {int(r['tenure_days'])} days"
    if group == "subscription":
        return "subscriber" if r["is_subscriber"] else "no subscription"
    if group == "segment":
        return f"segment {r['segment']}" + (" (no CRM profile)" if r["segment"] == "unknown" else "")
    if group == "nps":
        if r["nps_category"] is None:
            return "no NPS answer"
        return f"latest NPS answer {r['nps_category']} ({int(r['nps_days_since'])} days ago)"
    if group == "csat":
        return "unhappy CSAT answer in 90 days" if r["csat_low_90d"] else "no unhappy CSAT answer in 90 days"
    if group == "ces":
        return "unhappy CES answer in 90 days" if r["ces_low_90d"] else "no unhappy CES answer in 90 days"
    if group in _COUNTED:
        column, one, many, suffix = _COUNTED[group]
        return f"{_n(r[column], one, many)} {suffix}"
    if group == "profile":
        return f"profile {r['profile']}"
    raise KeyError(group)


# ---- the feature query ------------------------------------------------------------------------------
Tables = dict[tuple[str, str], set[str]]  # (schema, table) -> its columns


def _tables(con: duckdb.DuckDBPyConnection) -> Tables:
    out: Tables = {}
    for s, t, c in con.execute("select table_schema, table_name, column_name from information_schema.columns "
                               "where table_catalog = current_database()").fetchall():
        out.setdefault((s, t), set()).add(c)
    return out


def _fx_table(tables: Tables) -> str | None:
    """Where the seed fx_rates lives (dbt puts seeds in the target's schema, not ``marts``)."""
    found = sorted(f'"{s}".fx_rates' for s, t in tables if t == "fx_rates")
    return found[0] if found else None


def _utc(col: str) -> str:
    return f"cast(timezone('UTC', {col}) as date)"


def _lit(d: dt.date) -> str:
    return f"date '{d.isoformat()}'"


def _sources(tables: Tables, as_of: dt.date, currency: str,
             fx: str | None) -> tuple[dict[str, str], list[str]]:
    """One CTE body per input (columns fixed); a missing mart gives an empty relation and a note."""
    a = _lit(as_of)
    have = {t for s, t in tables if s == MARTS}
    notes: list[str] = []

    def src(table: str, sql: str, empty: str) -> str:
        if table in have:
            return sql
        notes.append(f"marts.{table} missing: its features are 0")
        return f"select {empty} where false"

    # an order's amount in the reporting currency, to the millionth as a decimal: its sums are exact, so the same
    # orders give the same spend to the last bit whatever order DuckDB's threads add them in (a sum of doubles does
    # not: the model's probabilities moved in their 14th digit from one run to the next)
    amount = "cast(null as decimal(38, 6))"
    if fx:
        amount = (f"case when o.status <> 'cancelled' then cast(cast(o.total_amount as double) * "
                  f"case when o.currency = '{currency}' then 1.0 else fx.rate end as decimal(38, 6)) end")
    no_rate = (f"o.status <> 'cancelled' and o.currency <> '{currency}' and fx.rate is null" if fx else "false")
    fx_join = (f"left join {fx} as fx on fx.currency = o.currency and fx.reporting_currency = '{currency}'"
               if fx else "")
    by_score = "and trigger = 'score'" if "trigger" in tables.get((MARTS, "mart_feedback_followups"), ()) else ""
    out = {
        "customers": f"""select customer_key, segment, {_utc('crm_created_at')} as created_date
            from {MARTS}.dim_customer where not coalesce(is_erased, false)""",
        "orders": f"""select o.customer_key, {_utc('o.ordered_at')} as od, {amount} as amount, {no_rate} as no_rate
            from {MARTS}.fct_orders as o {fx_join}
            where o.customer_key is not null and {_utc('o.ordered_at')} <= {a}""",
        "subs": f"""select customer_key, start_date, case when cancel_date <= {a} then cancel_date end as cancel_date
            from {MARTS}.fct_subscriptions where customer_key is not null and start_date <= {a}""",
        "segment_versions": src("dim_customer_history", f"""
            select customer_key, vd, segment from (
                select customer_key, {_utc('valid_from')} as vd, segment,
                       row_number() over (partition by customer_key, {_utc('valid_from')}
                                          order by valid_from desc, profile_key desc) as rn
                from {MARTS}.dim_customer_history
                where customer_key is not null and {_utc('valid_from')} <= {a}) where rn = 1""",
                                "null::varchar as customer_key, null::date as vd, null::varchar as segment"),
        "answers": src("fct_survey_responses", f"""
            select customer_key, survey_type, response_date, response_key, nps_category from (
                select customer_key, survey_type, response_date, response_key, nps_category,
                       row_number() over (partition by customer_key, survey_type, response_date
                                          order by responded_at desc, response_key desc) as rn
                from {MARTS}.fct_survey_responses
                where customer_key is not null and response_date <= {a}
                  and survey_type in ('nps', 'csat', 'ces')) where rn = 1""",
                       "null::varchar as customer_key, null::varchar as survey_type, null::date as response_date, "
                       "null::varchar as response_key, null::varchar as nps_category"),
        # unhappy: the score is in its scale's bottom band (trigger 'score'; since the comment tagger, an
        # answer can also need a call-back for a negative comment alone: trigger 'comment')
        "unhappy": src("mart_feedback_followups", f"""
            select response_key from {MARTS}.mart_feedback_followups where response_date <= {a}
            {by_score}""",
                       "null::varchar as response_key"),
        "followups": src("mart_feedback_followups", f"""
            select customer_key, response_date, coalesce(is_tracked, false) as is_tracked,
                   case when {_utc('first_contact_at')} <= {a} then {_utc('first_contact_at')} end as contact_date,
                   coalesce(hours_to_contact <= promise_hours, false) as in_time
            from {MARTS}.mart_feedback_followups
            where customer_key is not null and response_date <= {a}""",
                         "null::varchar as customer_key, null::date as response_date, null::boolean as is_tracked, "
                         "null::date as contact_date, null::boolean as in_time"),
        "profiles": src("mart_customer_profiles", f"""
            select customer_key, profile, valid_from, valid_to from {MARTS}.mart_customer_profiles
            where valid_from <= {a}""",
                        "null::varchar as customer_key, null::varchar as profile, null::date as valid_from, "
                        "null::date as valid_to"),
    }
    # incidents: one row per (customer, date, kind), counted per 90-day window
    incident_sql = {
        "fct_support_cases": f"""select customer_key, {_utc('resolved_at')} as ev, 'bad_case' as kind
            from {MARTS}.fct_support_cases where customer_key is not null and resolved_at is not null
              and (customer_contacts > 1 or is_reopened)""",
        "fct_payments": f"""select customer_key, attempt_date as ev, 'failed_payment' as kind
            from {MARTS}.fct_payments where customer_key is not null and is_failed""",
        "fct_orders": f"""select customer_key, {_utc('delivered_at')} as ev, 'late_delivery' as kind
            from {MARTS}.fct_orders where customer_key is not null and is_delivered and not is_on_time""",
        "fct_refunds": f"""select customer_key, refund_date as ev, 'sf_refund' as kind
            from {MARTS}.fct_refunds where customer_key is not null and is_service_failure""",
        "fct_promise_outcomes": f"""select customer_key, promise_date as ev, 'broken_promise' as kind
            from {MARTS}.fct_promise_outcomes where customer_key is not null and is_broken""",
    }
    parts = [src(t, sql, "null::varchar as customer_key, null::date as ev, null::varchar as kind")
             for t, sql in incident_sql.items()]
    out["incidents"] = f"select * from ({' union all '.join(parts)}) where ev <= {a}"
    if not fx:
        notes.append("no fx_rates seed: spend is not a feature")
    return out, notes


def feature_sql(tables: Tables, cutoffs_view: str, as_of: dt.date, horizon: int,
                currency: str) -> tuple[str, list[str]]:
    """The one query: a row per (cutoff, active customer) with every feature and the label (null when
    the horizon is not over by as_of), sorted by cutoff and customer key."""
    fx = _fx_table(tables)
    src, notes = _sources(tables, as_of, currency, fx)
    a, h, w, y = _lit(as_of), horizon, INCIDENT_DAYS, ACTIVE_ORDER_DAYS
    ctes = ",\n".join(f"{name} as ({body})" for name, body in src.items())
    sql = f"""
with cutoffs as (select distinct cast(d as date) as d from {cutoffs_view}),
{ctes},
order_feats as (
    -- orders of the year to d (features) and of the horizon (label), in one range join
    select c.d, o.customer_key,
           max(o.od) filter (where o.od <= c.d) as last_od,
           count(*) filter (where o.od <= c.d and o.od > c.d - {w}) as orders_90d,
           count(*) filter (where o.od <= c.d) as orders_365d,
           coalesce(sum(o.amount) filter (where o.od <= c.d), 0) as spend_365d,
           count(*) filter (where o.od <= c.d and o.no_rate) as no_rate_orders,
           count(*) filter (where o.od > c.d) as orders_h
    from cutoffs as c inner join orders as o on o.od > c.d - {y} and o.od <= c.d + {h}
    group by c.d, o.customer_key
),
first_seen as (
    select customer_key, min(od) as first_od from orders group by customer_key
),
sub_feats as (
    select c.d, s.customer_key,
           bool_or(s.start_date <= c.d and (s.cancel_date is null or s.cancel_date > c.d)) as live_d,
           bool_or(s.start_date <= c.d + {h} and (s.cancel_date is null or s.cancel_date > c.d + {h})) as live_h,
           min(s.start_date) filter (where s.start_date <= c.d) as first_sub
    from cutoffs as c inner join subs as s on s.start_date <= c.d + {h}
    group by c.d, s.customer_key
),
active as (
    select d, customer_key from order_feats where orders_365d > 0
    union
    select d, customer_key from sub_feats where live_d
),
pop as (
    select a.d, a.customer_key, k.segment as segment_now, k.created_date
    from active as a inner join customers as k on k.customer_key = a.customer_key
),
seg as (
    select p.d, p.customer_key, coalesce(v.segment, p.segment_now, 'unknown') as segment
    from pop as p asof left join segment_versions as v on v.customer_key = p.customer_key and p.d >= v.vd
),
nps as (
    select p.d, p.customer_key, n.nps_category, p.d - n.response_date as nps_days_since
    from pop as p asof left join (select * from answers where survey_type = 'nps') as n
        on n.customer_key = p.customer_key and p.d >= n.response_date
),
csat as (
    select p.d, p.customer_key,
           n.response_date > p.d - {w} and n.response_key in (select response_key from unhappy) as low
    from pop as p asof left join (select * from answers where survey_type = 'csat') as n
        on n.customer_key = p.customer_key and p.d >= n.response_date
),
ces as (
    select p.d, p.customer_key,
           n.response_date > p.d - {w} and n.response_key in (select response_key from unhappy) as low
    from pop as p asof left join (select * from answers where survey_type = 'ces') as n
        on n.customer_key = p.customer_key and p.d >= n.response_date
),
incident_feats as (
    select c.d, i.customer_key,
           count(*) filter (where i.kind = 'bad_case') as bad_cases_90d,
           count(*) filter (where i.kind = 'failed_payment') as failed_payments_90d,
           count(*) filter (where i.kind = 'late_delivery') as late_deliveries_90d,
           count(*) filter (where i.kind = 'sf_refund') as sf_refunds_90d,
           count(*) filter (where i.kind = 'broken_promise') as broken_promises_90d
    from cutoffs as c inner join incidents as i on i.ev > c.d - {w} and i.ev <= c.d
    group by c.d, i.customer_key
),
followup_feats as (
    select c.d, f.customer_key,
           count(*) filter (where f.in_time and f.contact_date > c.d - {w} and f.contact_date <= c.d)
               as followups_recovered_90d,
           count(*) filter (where f.is_tracked and f.response_date > c.d - {w}
                            and (f.contact_date is null or f.contact_date > c.d)) as followups_waiting
    from cutoffs as c inner join followups as f
        on f.response_date <= c.d and f.response_date > c.d - 2 * {w}
    group by c.d, f.customer_key
),
profile_on_d as (
    select p.d, p.customer_key, max(s.profile) as profile
    from pop as p inner join profiles as s
        on s.customer_key = p.customer_key and s.valid_from <= p.d and (s.valid_to is null or s.valid_to > p.d)
    group by p.d, p.customer_key
)
select
    p.d as cutoff, p.customer_key, seg.segment,
    coalesce(s.live_d, false) as is_subscriber_b,
    cast(coalesce(p.d - o.last_od, {y}) as double) as recency_days,
    cast(coalesce(o.orders_90d, 0) as double) as orders_90d,
    cast(coalesce(o.orders_365d, 0) as double) as orders_365d,
    cast(coalesce(o.spend_365d, 0) as double) as spend_365d,
    cast(coalesce(o.no_rate_orders, 0) as bigint) as no_rate_orders,
    cast(coalesce(p.d - least(case when p.created_date <= p.d then p.created_date end,
                              case when fs.first_od <= p.d then fs.first_od end, s.first_sub), 0) as double)
        as tenure_days,
    cast(coalesce(s.live_d, false) as double) as is_subscriber,
    cast(case when coalesce(s.live_d, false) then 0 else coalesce(p.d - o.last_od, {y}) end as double)
        as nonsub_recency_days,
    cast(case when coalesce(s.live_d, false) then 0 else coalesce(o.orders_90d, 0) end as double)
        as nonsub_orders_90d,
    cast(seg.segment = 'small_business' as double) as seg_small_business,
    cast(seg.segment = 'enterprise' as double) as seg_enterprise,
    cast(seg.segment not in ('consumer', 'small_business', 'enterprise') as double) as seg_unknown,
    nps.nps_category,
    cast(coalesce(nps.nps_category = 'promoter', false) as double) as nps_promoter,
    cast(coalesce(nps.nps_category = 'passive', false) as double) as nps_passive,
    cast(coalesce(nps.nps_category = 'detractor', false) as double) as nps_detractor,
    cast(least(coalesce(nps.nps_days_since, {y}), {y}) as double) as nps_days_since,
    cast(coalesce(csat.low, false) as double) as csat_low_90d,
    cast(coalesce(ces.low, false) as double) as ces_low_90d,
    cast(coalesce(i.bad_cases_90d, 0) as double) as bad_cases_90d,
    cast(coalesce(i.failed_payments_90d, 0) as double) as failed_payments_90d,
    cast(coalesce(i.late_deliveries_90d, 0) as double) as late_deliveries_90d,
    cast(coalesce(i.sf_refunds_90d, 0) as double) as sf_refunds_90d,
    cast(coalesce(i.broken_promises_90d, 0) as double) as broken_promises_90d,
    cast(coalesce(f.followups_recovered_90d, 0) as double) as followups_recovered_90d,
    cast(coalesce(f.followups_waiting, 0) as double) as followups_waiting,
    coalesce(pr.profile, 'evasive') as profile,
    cast(coalesce(pr.profile = 'negative', false) as double) as profile_negative,
    cast(coalesce(pr.profile = 'advocate', false) as double) as profile_advocate,
    case when p.d + {h} <= {a} then
        case when coalesce(s.live_d, false) then not coalesce(s.live_h, false)
             else coalesce(o.orders_h, 0) = 0 end
    end as churned
from pop as p
left join order_feats as o on o.d = p.d and o.customer_key = p.customer_key
left join first_seen as fs on fs.customer_key = p.customer_key
left join sub_feats as s on s.d = p.d and s.customer_key = p.customer_key
left join seg on seg.d = p.d and seg.customer_key = p.customer_key
left join nps on nps.d = p.d and nps.customer_key = p.customer_key
left join csat on csat.d = p.d and csat.customer_key = p.customer_key
left join ces on ces.d = p.d and ces.customer_key = p.customer_key
left join incident_feats as i on i.d = p.d and i.customer_key = p.customer_key
left join followup_feats as f on f.d = p.d and f.customer_key = p.customer_key
left join profile_on_d as pr on pr.d = p.d and pr.customer_key = p.customer_key
order by p.d, p.customer_key
"""
    return sql, notes


def features(con: duckdb.DuckDBPyConnection, cutoffs: Sequence[dt.date], as_of: dt.date,
             horizon: int | None = None) -> tuple[pl.DataFrame, list[str]]:
    """The feature rows of every active customer on each cutoff (one query), with the label where
    the horizon is over by ``as_of``; and notes on what is missing."""
    horizon = int(var("churn_horizon_days")) if horizon is None else horizon
    currency = str(var("reporting_currency"))
    tables = _tables(con)
    view = f"cx_churn_cutoffs_{id(cutoffs):x}"
    sql, notes = feature_sql(tables, view, as_of, horizon, currency)
    con.register(view, pl.DataFrame({"d": list(cutoffs)}, schema={"d": pl.Date()}).to_arrow())
    try:
        df = con.sql(sql).pl()
    finally:
        con.unregister(view)
    no_rate = int(df["no_rate_orders"].sum()) if df.height else 0
    if no_rate:
        notes.append(f"{no_rate} order-windows hold orders in a currency without an fx rate: left out of spend")
    return df, notes


# ---- cutoffs ----------------------------------------------------------------------------------------
def _month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    d = dt.date(first.year, first.month, 1)
    if d < first:
        d = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    out = []
    while d <= last:
        out.append(d)
        d = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def data_start(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> dt.date | None:
    """The first date of the order history the warehouse holds (to as_of)."""
    row = con.execute(f"select min({_utc('ordered_at')}) from {MARTS}.fct_orders "
                      f"where customer_key is not null and {_utc('ordered_at')} <= {_lit(as_of)}").fetchone()
    return row[0] if row else None


def labelled_cutoffs(start: dt.date | None, as_of: dt.date, horizon: int,
                     min_history_days: int = MIN_HISTORY_DAYS) -> list[dt.date]:
    """Monthly cutoffs (first of each month) with ``min_history_days`` of data before them and their
    horizon over by as_of."""
    if start is None:
        return []
    return _month_starts(start + dt.timedelta(days=min_history_days), as_of - dt.timedelta(days=horizon))


# ---- the model --------------------------------------------------------------------------------------
def _matrix(df: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    by = {f.name: f for f in FEATURES}
    cols = []
    for n in names:
        x = df[n].to_numpy().astype(np.float64)
        if by[n].transform == "log1p":
            x = np.log1p(np.maximum(x, 0))
        cols.append(x)
    return np.column_stack(cols) if cols else np.zeros((df.height, 0))


@dataclasses.dataclass
class Fitted:
    names: tuple[str, ...]
    scaler: StandardScaler
    model: LogisticRegression
    n_train: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self.scaler.transform(x))[:, 1]

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """coef x (x - training mean) / training sd: each feature's push on the log-odds vs the average."""
        return self.scaler.transform(x) * self.model.coef_[0]


def _sample(n: int, cap: int, seed: int) -> np.ndarray:
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def fit(df: pl.DataFrame, names: Sequence[str], seed: int = 0, max_units: int = MAX_TRAIN_UNITS) -> Fitted | None:
    """Fit on the labelled rows of ``df`` (a seeded sample of at most ``max_units``); None with one class."""
    idx = _sample(df.height, max_units, seed)
    sub = df[idx] if len(idx) < df.height else df
    y = sub["churned"].to_numpy().astype(int)
    if sub.height == 0 or y.min() == y.max():
        return None
    x = _matrix(sub, names)
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=C_REGULARIZATION, solver="lbfgs", max_iter=2000, random_state=seed)
    model.fit(scaler.transform(x), y)
    return Fitted(tuple(names), scaler, model, sub.height)


def deciles(p: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """1 (lowest) .. 10 (highest): rank by probability, ties by key, in ten equal bins."""
    n = len(p)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((np.asarray(keys, dtype=object).astype(str), p))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return 1 + rank * 10 // n


def reasons(fitted: Fitted, df: pl.DataFrame, currency: str, k: int = 3) -> list[list[str | None]]:
    """Per row, the labels of the ``k`` groups with the largest positive contribution, largest first, of at
    least ``MIN_REASON_LOGODDS`` (None when fewer groups push the risk up that much)."""
    contrib = fitted.contributions(_matrix(df, fitted.names))
    by = {f.name: f for f in FEATURES}
    groups = list(dict.fromkeys(by[n].group for n in fitted.names))
    g = np.column_stack([contrib[:, [i for i, n in enumerate(fitted.names) if by[n].group == grp]].sum(axis=1)
                         for grp in groups]) if groups else np.zeros((df.height, 0))
    # largest first; equal contributions keep the declared order of the groups (stable sort)
    order = np.argsort(-g, axis=1, kind="stable")[:, :k]
    labelled_by = [c for c in LABEL_COLUMNS if c in df.columns]
    out = []
    for i, row in enumerate(df.select(labelled_by).iter_rows(named=True)):
        labels: list[str | None] = [_reason(groups[j], row, currency) for j in order[i]
                                    if g[i, j] >= MIN_REASON_LOGODDS]
        out.append(labels + [None] * (k - len(labels)))
    return out


# ---- compute ----------------------------------------------------------------------------------------
def _empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[name])


def _calibration(as_of: dt.date, cutoff: dt.date, model: str, p: np.ndarray, y: np.ndarray,
                 keys: Sequence[str]) -> list[dict]:
    dec = deciles(p, keys)
    return [{"as_of": as_of, "cutoff": cutoff, "model": model, "decile": int(q), "n": int((dec == q).sum()),
             "mean_predicted": float(p[dec == q].mean()), "observed_rate": float(y[dec == q].mean())}
            for q in range(1, 11) if (dec == q).any()]


def backtest(df: pl.DataFrame, cutoffs: Sequence[dt.date], as_of: dt.date, horizon: int, seed: int = 0,
             max_units: int = MAX_TRAIN_UNITS, names: Sequence[str] | None = None,
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rolling held-out months: each labelled cutoff d_k scored by models trained on the cutoffs whose
    horizon ended by d_k."""
    names = [f.name for f in FEATURES] if names is None else list(names)
    bt, cal = [], []
    for dk in cutoffs:
        train = df.filter(pl.col("cutoff") <= dk - dt.timedelta(days=horizon))
        test = df.filter(pl.col("cutoff") == dk)
        if train.height == 0 or test.height == 0:
            continue
        y = test["churned"].to_numpy().astype(int)
        keys = test["customer_key"].to_list()
        for label, cols in (("model", names), ("baseline", BASELINE)):
            fitted = fit(train, cols, seed, max_units)
            if fitted is None:
                continue
            p = fitted.predict(_matrix(test, cols))
            auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
            bt.append({"as_of": as_of, "cutoff": dk, "model": label, "n": len(y), "positives": int(y.sum()),
                       "auc": auc, "brier": float(brier_score_loss(y, p, pos_label=1))})
            cal += _calibration(as_of, dk, label, p, y, keys)
    return (pl.DataFrame(bt, schema=SCHEMAS["mart_churn_backtest"]) if bt else _empty("mart_churn_backtest"),
            pl.DataFrame(cal, schema=SCHEMAS["mart_churn_calibration"]) if cal else _empty("mart_churn_calibration"))


def compute(con: duckdb.DuckDBPyConnection, as_of: dt.date, seed: int = 0, *,
            max_train_units: int = MAX_TRAIN_UNITS, min_history_days: int = MIN_HISTORY_DAYS,
            timings: dict[str, float] | None = None) -> dict[str, pl.DataFrame | str]:
    """Churn risk of every customer active on ``as_of``, the backtest and its calibration; ``notes``
    (a string) says what could not be done and why. ``timings``, when given, receives the seconds of
    each step (features, fit_score, backtest) and the feature rows."""
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    horizon = int(var("churn_horizon_days"))
    currency = str(var("reporting_currency"))
    notes: list[str] = []
    out: dict[str, pl.DataFrame | str] = {name: _empty(name) for name in SCHEMAS}

    def done() -> dict[str, pl.DataFrame | str]:
        out["notes"] = "; ".join(notes)
        return out

    start = data_start(con, as_of)
    if start is None:
        notes.append(f"no orders dated on or before {as_of}: nothing to learn from, no scores")
        return done()
    cutoffs = labelled_cutoffs(start, as_of, horizon, min_history_days)
    df, more = features(con, [*cutoffs, as_of], as_of, horizon)
    notes += more
    timings["features"], timings["rows"] = time.perf_counter() - t0, df.height
    t0 = time.perf_counter()
    labelled = df.filter(pl.col("cutoff") != as_of)
    if not cutoffs:
        first = _month_starts(start + dt.timedelta(days=min_history_days),
                              start + dt.timedelta(days=min_history_days + 31))[0]
        notes.append(f"too little history: the first cutoff with {min_history_days} days of data before it is "
                     f"{first}, whose {horizon}-day horizon ends on {first + dt.timedelta(days=horizon)}, after "
                     f"as_of {as_of}: no model, no scores, no backtest")
        return done()
    names = [f.name for f in FEATURES]
    fitted = fit(labelled, names, seed, max_train_units)
    if fitted is None:
        notes.append(f"the {labelled.height} labelled units of {cutoffs[0]}..{cutoffs[-1]} hold one outcome only: "
                     "no model, no scores")
    else:
        now = df.filter(pl.col("cutoff") == as_of)
        p = fitted.predict(_matrix(now, names))
        why = reasons(fitted, now, currency)
        version = f"{MODEL_NAME} h{horizon} train {cutoffs[0]}..{cutoffs[-1]} n{fitted.n_train} seed {seed}"
        out["mart_churn_risk"] = pl.DataFrame({
            "as_of": [as_of] * now.height, "customer_key": now["customer_key"], "segment": now["segment"],
            "churn_probability": p, "risk_decile": deciles(p, now["customer_key"].to_list()),
            "reason_1": [r[0] for r in why], "reason_2": [r[1] for r in why], "reason_3": [r[2] for r in why],
            "model_version": [version] * now.height,
        }, schema=SCHEMAS["mart_churn_risk"])
    timings["fit_score"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    held_out = [dk for dk in cutoffs if any(d + dt.timedelta(days=horizon) <= dk for d in cutoffs)]
    if not held_out:
        notes.append(f"no backtest: no labelled cutoff has another whose {horizon}-day horizon ended before it "
                     f"(labelled cutoffs: {', '.join(map(str, cutoffs))})")
    else:
        out["mart_churn_backtest"], out["mart_churn_calibration"] = backtest(
            labelled, held_out, as_of, horizon, seed, max_train_units, names)
    timings["backtest"] = time.perf_counter() - t0
    return done()


def metadata(frames: dict[str, pl.DataFrame]) -> dict[str, object]:
    """The backtest in a few numbers and two small tables, for the run's record (Dagster asset metadata):
    mean AUC and Brier score of the model and of the baseline over the held-out months, per month, and the
    calibration by decile of the latest held-out month."""
    bt = frames.get("mart_churn_backtest")
    if bt is None or bt.is_empty():
        return {"backtest": "none (too little history: see notes)"}
    means = {m: g.select(pl.col("auc").mean(), pl.col("brier").mean()).row(0)
             for (m,), g in bt.group_by(["model"])}
    out: dict[str, object] = {"held_out_months": bt["cutoff"].n_unique()}
    for model, (auc, brier) in sorted(means.items()):
        out[f"auc_{model}"] = round(float(auc), 4) if auc is not None else None
        out[f"brier_{model}"] = round(float(brier), 4) if brier is not None else None
    lines = ["| month | model | n | churned | AUC | Brier |", "|---|---|---|---|---|---|"]
    for r in bt.sort("cutoff", "model").iter_rows(named=True):
        auc = f"{r['auc']:.3f}" if r["auc"] is not None else "-"
        brier = f"{r['brier']:.4f}" if r["brier"] is not None else "-"
        lines.append(f"| {r['cutoff']} | {r['model']} | {r['n']:,} | {r['positives']:,} | {auc} | {brier} |")
    out["backtest"] = "\n".join(lines)
    cal = frames.get("mart_churn_calibration")
    if cal is not None and not cal.is_empty():
        last = cal.filter(pl.col("cutoff") == cal["cutoff"].max()).sort("model", "decile")
        rows = ["| model | decile | n | mean predicted | observed |", "|---|---|---|---|---|"]
        rows += [f"| {r['model']} | {r['decile']} | {r['n']:,} | {r['mean_predicted']:.3f} | {r['observed_rate']:.3f} |"
                 for r in last.iter_rows(named=True)]
        out["calibration_latest_month"] = "\n".join(rows)
    return out
