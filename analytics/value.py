"""The revenue link (``mart_experience_value``): what experience is worth. Do promoters buy more than
passives, do negative customers spend less than evasive ones, and how much revenue is at stake each year
while today's negative customers stay negative?

Every definition is stated once, here; the SQL and the code follow it.

**Groups** (two dimensions, each with a reference group the others are compared with):

* ``nps_category``: the category of the customer's latest NPS answer (``fct_survey_responses.nps_category``,
  the KPI macro's: promoter 9-10, passive 7-8, detractor 0-6). Reference: ``passive``. A customer who never
  answered belongs to no group of this dimension.
* ``profile``: the customer's experience profile (``mart_customer_profiles`` spells: advocate, evasive,
  negative). Reference: ``evasive``.

**Observed history.** Time is counted from the first day of the warehouse's observed history (the first
order's UTC date, ``common.first_order_date``) to the end of ``as_of``: before it there is no data, and a
customer would look like one who never buys.

**Measures** (``segment`` 'all' and each ``dim_customer.segment``; customers without a segment in 'all'
only):

* ``order_rate``: orders per customer-year, from time-varying exposure. A customer is in a group from the
  instant they enter it to the instant they leave it: from an NPS answer to their next answer (or to the end
  of ``as_of``); for profiles, from a spell's ``valid_from`` (00:00 UTC) to its ``valid_to``. Exposure is the
  time spent in the group (in years of 365.25 days), and the group's orders are the ones its customers placed
  meanwhile (``fct_orders.ordered_at``; cancelled orders left out). An answer is the state from its own
  instant, so an order placed after it counts for its category. Per calendar month of the exposure
  (``cohort_month``) and pooled over all months (``cohort_month`` null). ``n`` = customers with exposure in
  the cell. Interval: the Poisson score interval; ratio to the reference group: ``common.rate_ratio``
  (log interval). Why exposure: on a short history most customers have no answer before a given date, so a
  snapshot design would see few customers per group; the exposure design uses every day every answering
  customer spends in a state, which is also exactly the simulated company's planted "promoters buy more".
* Snapshot measures, for every snapshot month m (its first day, 00:00 UTC) on or after the first observed
  day whose next 90 days are complete (m + 89 <= ``as_of``), and pooled over those snapshots (a customer
  counts once per snapshot; the pooled intervals treat the snapshots as independent, a little narrow for
  customers in several). The customers in a group at m (the latest NPS answer at or before m's first
  instant, the profile spell that holds m), over the 90 days m .. m + 89 (UTC dates):

  * ``revenue_next_90d``: mean net revenue per customer, invoiced (``fct_invoices``, not void, by
    ``issue_date``) minus refunded (``fct_refunds``, by ``refund_date``), as ``kpi_customer_value`` defines
    revenue, in the reporting currency (var ``reporting_currency``: each currency's net converted at the
    seed ``fx_rates`` and rounded to the cent, as ``mart_customer_360`` converts); 0 for a customer with
    nothing; a customer with a currency without a rate is left out. Normal interval of the mean; ratio of
    means with the delta-method log interval.
  * ``repeat_purchase_rate_90d``: share placing at least one order (not cancelled) in the 90 days. Wilson
    interval; ratio of proportions with the Katz log interval.
  * ``retention_90d``: share still active in the 90 days: an order (not cancelled), or a subscription live
    on one of those days (started before m + 90, not cancelled before m), the retention KPI's notion of
    active. Wilson interval; Katz ratio.

* ``revenue_at_stake_yearly`` (dimension ``profile``, group ``negative``, pooled): the customers negative on
  ``as_of`` (the spell holding ``as_of``), N of them, would place orders at the evasive rate if they were
  evasive, and place them at the negative rate: the order revenue lost each year is
  N x v x (r_evasive - r_negative) = N x v x r_evasive x (1 - RR), with r the pooled ``order_rate`` of each
  profile, RR = r_negative / r_evasive, and v the mean net value of an order (not cancelled, total minus
  its refunds, in the reporting currency) in the segment. Interval: the same with RR's interval bounds (the
  uncertainty of the comparison; r_evasive and v, over many more customers and orders, are taken as known).
  Orders only: subscription revenue lost through churn is the churn analysis's. ``ratio_to_reference`` is
  RR with its interval. Per segment, with the segment's rates and v; the 'all' row is the sum over the
  strata (each segment, and the customers without one), its interval the strata's half-widths combined in
  quadrature, its ratio the Mantel-Haenszel rate ratio over the strata: pooled rates would mix segments whose
  order rates differ fivefold, and heavy buyers (more orders, more incidents) are over-represented among
  negatives, so a pooled comparison can even change sign. It is an association, not a proven effect: the
  figure assumes a negative customer would buy like an evasive one of the same segment.

**Reportability**: a cell is reportable when its ``n`` >= ``min_reportable_n`` and, when it carries a ratio,
the reference cell's too (revenue at stake: the negatives on ``as_of``, and both profiles' rate cells).
Cells are kept whatever their n, with value null where there is nothing to measure.

Scale: everything is aggregated in DuckDB (exposure intervals split by month, orders matched to their
interval, snapshot memberships with their 90-day outcomes); Python receives one row per cell.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from .common import (
    DAY_US,
    epoch_day_us,
    first_order_date,
    fx_rates,
    mean_interval,
    mh_rate_ratio,
    min_reportable_n,
    month_starts,
    next_month,
    poisson_rate,
    rate_ratio,
    ratio_of_means,
    risk_ratio,
    var,
    wilson,
)

MARTS = "marts"
ALL = "all"
HORIZON_DAYS = 90
YEAR_US = 365.25 * DAY_US
# dimension -> (its groups, the reference group)
DIMENSIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "nps_category": (("promoter", "passive", "detractor"), "passive"),
    "profile": (("advocate", "evasive", "negative"), "evasive"),
}
ORDER_RATE = "order_rate"
REVENUE = "revenue_next_90d"
REPEAT = "repeat_purchase_rate_90d"
RETENTION = "retention_90d"
AT_STAKE = "revenue_at_stake_yearly"

SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "dimension": pl.Utf8(),
    "group": pl.Utf8(),
    "segment": pl.Utf8(),
    "cohort_month": pl.Date(),
    "measure": pl.Utf8(),
    "unit": pl.Utf8(),
    "n": pl.Int64(),
    "value": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "reference_group": pl.Utf8(),
    "ratio_to_reference": pl.Float64(),
    "ratio_ci_low": pl.Float64(),
    "ratio_ci_high": pl.Float64(),
    "is_reportable": pl.Boolean(),
}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_name from information_schema.tables where table_schema = ?", [MARTS]).fetchall()
    return {r[0] for r in rows}


def _days_us(date_expr: str) -> str:
    """SQL: a date at 00:00 UTC in microseconds since the epoch (independent of the session time zone)."""
    return f"(date_diff('day', DATE '1970-01-01', {date_expr}) * {DAY_US})"


def _utc_date(ts_expr: str) -> str:
    return f"cast(make_timestamp(epoch_us({ts_expr})) as date)"


def _spells_sql(as_of: dt.date, end_us: int, has_nps: bool, has_profiles: bool) -> str:
    """SQL: every customer's stays in the groups of each dimension: (dimension, customer_key, grp, from_us,
    to_us), half-open, ending at the end of as_of at the latest."""
    parts = []
    if has_nps:
        parts.append(f"""
            select 'nps_category' as dimension, customer_key, nps_category as grp, epoch_us(responded_at) as from_us,
                   coalesce(lead(epoch_us(responded_at)) over (
                       partition by customer_key order by responded_at, response_key), {end_us}) as to_us
            from {MARTS}.fct_survey_responses
            where survey_type = 'nps' and customer_key is not null and nps_category is not null
              and responded_at is not null and response_date <= DATE '{as_of}'""")
    if has_profiles:
        parts.append(f"""
            select 'profile' as dimension, customer_key, profile as grp, {_days_us('valid_from')} as from_us,
                   least(coalesce({_days_us('valid_to')}, {end_us}), {end_us}) as to_us
            from {MARTS}.mart_customer_profiles
            where customer_key is not null and valid_from <= DATE '{as_of}'""")
    return " union all ".join(parts)


def _order_rate_cells(con: duckdb.DuckDBPyConnection, spells: str, start_us: int, end_us: int,
                      months: list[dt.date]) -> pl.DataFrame:
    """Exposure (microseconds), orders and customers per (dimension, grp, month or pooled, segment or all)."""
    mvalues = ", ".join(f"(DATE '{m}', {epoch_day_us(m)}, {epoch_day_us(next_month(m))})" for m in months)
    sets = ("(x.dimension, x.grp, x.month_start, d.segment), (x.dimension, x.grp, x.month_start), "
            "(x.dimension, x.grp, d.segment), (x.dimension, x.grp)")
    sql = f"""
        with spells as ({spells}),
        clipped as (
            select dimension, customer_key, grp, greatest(from_us, {start_us}) as from_us,
                   least(to_us, {end_us}) as to_us
            from spells
            where least(to_us, {end_us}) > greatest(from_us, {start_us})
        ),
        months as (select * from (values {mvalues}) as m(month_start, start_us, end_us)),
        exposure as (
            select c.dimension, c.grp, c.customer_key, m.month_start,
                   least(c.to_us, m.end_us) - greatest(c.from_us, m.start_us) as us
            from clipped as c inner join months as m on c.from_us < m.end_us and c.to_us > m.start_us
        ),
        orders as (
            select customer_key, epoch_us(ordered_at) as at_us
            from {MARTS}.fct_orders
            where customer_key is not null and ordered_at is not null and coalesce(status, '') <> 'cancelled'
              and epoch_us(ordered_at) >= {start_us} and epoch_us(ordered_at) < {end_us}
        ),
        placed as (
            select c.dimension, c.grp, c.customer_key,
                   date_trunc('month', {_utc_date('make_timestamp(o.at_us)')}) as month_start
            from orders as o
            inner join clipped as c on c.customer_key = o.customer_key and o.at_us >= c.from_us and o.at_us < c.to_us
        ),
        e as (
            select x.dimension, x.grp, x.month_start, d.segment, grouping(x.month_start) = 1 as pooled,
                   grouping(d.segment) = 1 as is_all, count(distinct x.customer_key) as n, sum(x.us) as us
            from exposure as x left join {MARTS}.dim_customer as d on d.customer_key = x.customer_key
            group by grouping sets ({sets})
        ),
        p as (
            select x.dimension, x.grp, cast(x.month_start as date) as month_start, d.segment,
                   grouping(x.month_start) = 1 as pooled, grouping(d.segment) = 1 as is_all, count(*) as orders
            from placed as x left join {MARTS}.dim_customer as d on d.customer_key = x.customer_key
            group by grouping sets ({sets})
        )
        select e.dimension, e.grp, case when e.pooled then null else e.month_start end as month_start,
               e.segment, e.is_all, e.n, cast(e.us as double) as us, coalesce(p.orders, 0) as orders
        from e left join p
          on p.dimension = e.dimension and p.grp = e.grp and p.pooled = e.pooled and p.is_all = e.is_all
         and p.month_start is not distinct from e.month_start and p.segment is not distinct from e.segment
        order by all  -- rows in one order: the sums over them below are the same to the last bit run after run"""
    return con.sql(sql).pl()


def _snapshot_cells(con: duckdb.DuckDBPyConnection, spells: str, snapshots: list[dt.date], as_of: dt.date,
                    rates: dict[str, float], tables: set[str]) -> pl.DataFrame:
    """Per (dimension, grp, snapshot or pooled, segment or all): members, revenue sums (convertible members),
    purchasers and retained customers over the 90 days after each snapshot."""
    svalues = ", ".join(f"(DATE '{m}', {epoch_day_us(m)})" for m in snapshots)
    fx = ", ".join(f"({_lit(c)}, {r!r})" for c, r in sorted(rates.items()))
    money = []
    if "fct_invoices" in tables:
        money.append(f"select customer_key, issue_date as d, currency, amount_due_minor as minor "
                     f"from {MARTS}.fct_invoices where status <> 'void' and customer_key is not null "
                     f"and issue_date <= DATE '{as_of}'")
    if "fct_refunds" in tables:
        money.append(f"select customer_key, refund_date as d, currency, -amount_minor as minor "
                     f"from {MARTS}.fct_refunds where customer_key is not null and refund_date <= DATE '{as_of}'")
    if not money:
        money.append("select cast(null as varchar) as customer_key, cast(null as date) as d, "
                     "cast(null as varchar) as currency, cast(null as bigint) as minor where false")
    subs = (f"select customer_key, start_date, cancel_date from {MARTS}.fct_subscriptions "
            f"where customer_key is not null and start_date <= DATE '{as_of}'") if "fct_subscriptions" in tables \
        else "select cast(null as varchar) as customer_key, cast(null as date) as start_date, " \
             "cast(null as date) as cancel_date where false"
    sets = ("(m.dimension, m.grp, m.snapshot, d.segment), (m.dimension, m.grp, m.snapshot), "
            "(m.dimension, m.grp, d.segment), (m.dimension, m.grp)")
    sql = f"""
        with spells as ({spells}),
        snaps as (select * from (values {svalues}) as s(snapshot, at_us)),
        members as (
            select s.dimension, s.grp, s.customer_key, n.snapshot
            from spells as s inner join snaps as n on s.from_us <= n.at_us and n.at_us < s.to_us
        ),
        units as (select distinct customer_key, snapshot from members),
        fx as (select * from (values {fx}) as f(currency, rate)),
        money as ({' union all '.join(money)}),
        net_currency as (
            select u.customer_key, u.snapshot, x.currency, sum(x.minor) as minor
            from units as u inner join money as x
              on x.customer_key = u.customer_key and x.d >= u.snapshot
             and x.d < u.snapshot + {HORIZON_DAYS}
            group by u.customer_key, u.snapshot, x.currency
        ),
        revenue as (
            select n.customer_key, n.snapshot,
                   case when count(f.rate) = count(*) then cast(sum(round(n.minor * f.rate)) as bigint) end as cents
            from net_currency as n left join fx as f on f.currency = n.currency
            group by n.customer_key, n.snapshot
        ),
        bought as (
            select distinct u.customer_key, u.snapshot
            from units as u inner join {MARTS}.fct_orders as o
              on o.customer_key = u.customer_key and coalesce(o.status, '') <> 'cancelled'
             and o.ordered_at is not null
             and {_utc_date('o.ordered_at')} >= u.snapshot
             and {_utc_date('o.ordered_at')} < u.snapshot + {HORIZON_DAYS}
        ),
        subscribed as (
            select distinct u.customer_key, u.snapshot
            from units as u inner join ({subs}) as s
              on s.customer_key = u.customer_key and s.start_date < u.snapshot + {HORIZON_DAYS}
             and (s.cancel_date is null or s.cancel_date >= u.snapshot)
        ),
        outcomes as (
            select u.customer_key, u.snapshot,
                   case when r.customer_key is null then 0 else r.cents end as cents,
                   b.customer_key is not null as bought,
                   b.customer_key is not null or s.customer_key is not null as retained
            from units as u
            left join revenue as r on r.customer_key = u.customer_key and r.snapshot = u.snapshot
            left join bought as b on b.customer_key = u.customer_key and b.snapshot = u.snapshot
            left join subscribed as s on s.customer_key = u.customer_key and s.snapshot = u.snapshot
        )
        select m.dimension, m.grp, case when grouping(m.snapshot) = 1 then null else m.snapshot end as month_start,
               d.segment, grouping(d.segment) = 1 as is_all, count(*) as n,
               -- whole cents, summed exactly (integers): the same rows give the same sums to the last bit, whatever
               -- order DuckDB's threads add them in (sums of doubles do not)
               count(o.cents) as n_revenue, sum(o.cents) / 100.0 as revenue_sum,
               sum(cast(o.cents as hugeint) * o.cents) / 10000.0 as revenue_sumsq,
               count(*) filter (where o.bought) as bought, count(*) filter (where o.retained) as retained
        from members as m
        inner join outcomes as o on o.customer_key = m.customer_key and o.snapshot = m.snapshot
        left join {MARTS}.dim_customer as d on d.customer_key = m.customer_key
        group by grouping sets ({sets})
        order by all  -- rows in one order: the sums over them below are the same to the last bit run after run"""
    return con.sql(sql).pl()


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _stake_inputs(con: duckdb.DuckDBPyConnection, as_of: dt.date, start_us: int, end_us: int,
                  rates: dict[str, float]) -> tuple[dict[str | None, int], dict[str | None, tuple[int, float]]]:
    """Negatives on as_of per segment ('all'; None: customers without a segment), and per segment the orders
    (not cancelled) in a convertible currency and the sum of their net values in the reporting currency."""
    fx = ", ".join(f"({_lit(c)}, {r!r})" for c, r in sorted(rates.items()))
    neg = con.execute(f"""
        select case when grouping(d.segment) = 1 then '{ALL}' else d.segment end, count(*)
        from {MARTS}.mart_customer_profiles as p left join {MARTS}.dim_customer as d on d.customer_key = p.customer_key
        where p.profile = 'negative' and p.valid_from <= DATE '{as_of}'
          and (p.valid_to is null or p.valid_to > DATE '{as_of}') and p.customer_key is not null
        group by grouping sets ((d.segment), ())
        order by all""").fetchall()
    val = con.execute(f"""
        with fx as (select * from (values {fx}) as f(currency, rate))
        select case when grouping(d.segment) = 1 then '{ALL}' else d.segment end, count(*),
               sum(round((o.total_amount * 100 - coalesce(o.refunded_minor, 0)) * f.rate)) / 100.0
        from {MARTS}.fct_orders as o
        inner join fx as f on f.currency = o.currency
        left join {MARTS}.dim_customer as d on d.customer_key = o.customer_key
        where o.customer_key is not null and coalesce(o.status, '') <> 'cancelled' and o.ordered_at is not null
          and epoch_us(o.ordered_at) >= {start_us} and epoch_us(o.ordered_at) < {end_us}
        group by grouping sets ((d.segment), ())
        order by all""").fetchall()
    return ({s: int(n) for s, n in neg}, {s: (int(n), float(v or 0.0)) for s, n, v in val})


def _row(as_of: dt.date, dimension: str, group: str, segment: str, month: dt.date | None, measure: str, unit: str,
         n: int, value: tuple, reference: str, ratio: tuple, reportable: bool) -> dict:
    return {"as_of": as_of, "dimension": dimension, "group": group, "segment": segment, "cohort_month": month,
            "measure": measure, "unit": unit, "n": n, "value": value[0], "ci_low": value[1], "ci_high": value[2],
            "reference_group": reference, "ratio_to_reference": ratio[0], "ratio_ci_low": ratio[1],
            "ratio_ci_high": ratio[2], "is_reportable": reportable}


NONE3 = (None, None, None)


def _cell_map(df: pl.DataFrame) -> dict[tuple, dict]:
    """Cells keyed (dimension, grp, month or None, segment, 'all', or None for customers without a segment)."""
    out = {}
    for r in df.iter_rows(named=True):
        # segment None: the customers without a segment (a stratum of revenue at stake; no rows of their own)
        out[(r["dimension"], r["grp"], r["month_start"], ALL if r["is_all"] else r["segment"])] = r
    return out


def compute(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pl.DataFrame:
    """``mart_experience_value`` as of ``as_of`` from the marts of ``con`` (read only)."""
    tables = _tables(con)
    first = first_order_date(con, MARTS) if "fct_orders" in tables else None
    has_nps = "fct_survey_responses" in tables
    has_profiles = "mart_customer_profiles" in tables
    if first is None or first > as_of or "dim_customer" not in tables or not (has_nps or has_profiles):
        return pl.DataFrame(schema=SCHEMA)
    min_n = min_reportable_n()
    currency = str(var("reporting_currency"))
    rates = fx_rates(con, currency)
    start_us, end_us = epoch_day_us(first), epoch_day_us(as_of + dt.timedelta(days=1))
    segments = [r[0] for r in con.execute(f"select distinct segment from {MARTS}.dim_customer "
                                          "where segment is not null order by 1").fetchall()]
    dims = {d: v for d, v in DIMENSIONS.items()
            if (d == "nps_category" and has_nps) or (d == "profile" and has_profiles)}
    spells = _spells_sql(as_of, end_us, has_nps, has_profiles)
    # order_rate: calendar months of the exposure (the current one partial) and pooled
    months = []
    m = first.replace(day=1)
    while m <= as_of:
        months.append(m)
        m = next_month(m)
    rate_cells = _cell_map(_order_rate_cells(con, spells, start_us, end_us, months))
    snapshots = [m for m in month_starts(first, as_of) if m + dt.timedelta(days=HORIZON_DAYS - 1) <= as_of]
    snap_cells = _cell_map(_snapshot_cells(con, spells, snapshots, as_of, rates, tables)) if snapshots else {}
    rows: list[dict] = []
    for dimension, (groups, ref) in dims.items():
        for segment in [ALL, *segments]:
            for month in [None, *months]:
                base = rate_cells.get((dimension, ref, month, segment), {})
                for group in groups:
                    c = rate_cells.get((dimension, group, month, segment), {})
                    x, us, n = int(c.get("orders", 0)), float(c.get("us") or 0.0), int(c.get("n", 0))
                    years = us / YEAR_US
                    ratio = NONE3 if group == ref else rate_ratio(x, years, int(base.get("orders", 0)),
                                                                  float(base.get("us") or 0.0) / YEAR_US)
                    rows.append(_row(as_of, dimension, group, segment, month, ORDER_RATE, "orders per customer-year",
                                     n, poisson_rate(x, years), ref, ratio,
                                     n >= min_n and int(base.get("n", 0)) >= min_n))
            for month in [None, *snapshots] if snapshots else []:
                base = snap_cells.get((dimension, ref, month, segment), {})
                for group in groups:
                    rows += _snapshot_rows(as_of, dimension, group, segment, month, ref,
                                           snap_cells.get((dimension, group, month, segment), {}), base,
                                           currency, min_n)
    if "profile" in dims:
        rows += _at_stake_rows(con, as_of, start_us, end_us, rates, currency, rate_cells, segments, min_n)
    return (pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else pl.DataFrame(schema=SCHEMA)).sort(
        ["dimension", "segment", "measure", "group", "cohort_month"], nulls_last=False)


def _snapshot_rows(as_of: dt.date, dimension: str, group: str, segment: str, month: dt.date | None, ref: str,
                   c: dict, base: dict, currency: str, min_n: int) -> list[dict]:
    """The three snapshot measures of one cell, against the reference cell ``base``."""
    n, bn = int(c.get("n", 0)), int(base.get("n", 0))
    ok = n >= min_n and bn >= min_n
    is_ref = group == ref
    nr, s, q = int(c.get("n_revenue", 0)), float(c.get("revenue_sum") or 0.0), float(c.get("revenue_sumsq") or 0.0)
    bnr, bs, bq = (int(base.get("n_revenue", 0)), float(base.get("revenue_sum") or 0.0),
                   float(base.get("revenue_sumsq") or 0.0))
    mean = s / nr if nr else None
    v = max(q - nr * mean * mean, 0.0) / (nr - 1) if nr >= 2 else None
    bmean = bs / bnr if bnr else None
    bv = max(bq - bnr * bmean * bmean, 0.0) / (bnr - 1) if bnr >= 2 else None
    lo, hi = mean_interval(mean, v, nr) if v is not None else (None, None)
    ratio = NONE3 if is_ref or v is None or bv is None else ratio_of_means(mean, v, nr, bmean, bv, bnr)
    rows = [_row(as_of, dimension, group, segment, month, REVENUE, f"{currency} per customer", nr, (mean, lo, hi),
                 ref, ratio, nr >= min_n and bnr >= min_n)]
    for measure, key in ((REPEAT, "bought"), (RETENTION, "retained")):
        x, bx = int(c.get(key, 0)), int(base.get(key, 0))
        value = (x / n, *wilson(x, n)) if n else NONE3
        ratio = NONE3 if is_ref else risk_ratio(x, n, bx, bn)
        rows.append(_row(as_of, dimension, group, segment, month, measure, "share of customers", n, value, ref,
                         ratio, ok))
    return rows


def _at_stake_rows(con: duckdb.DuckDBPyConnection, as_of: dt.date, start_us: int, end_us: int,
                   rates: dict[str, float], currency: str, rate_cells: dict, segments: list[str],
                   min_n: int) -> list[dict]:
    """revenue_at_stake_yearly per segment, and for 'all' the sum over the strata (segments and customers
    without one): the pooled rates would mix segments whose order rates differ fivefold, and negatives are
    over-represented among heavy buyers (more orders, more incidents), so the pooled comparison can even
    change sign. The 'all' interval combines the strata's half-widths in quadrature (independent strata);
    its ratio is the Mantel-Haenszel rate ratio over the strata."""
    negatives, values = _stake_inputs(con, as_of, start_us, end_us, rates)
    rows, parts, strata, complete = [], [], [], True
    for segment in [*segments, None]:
        neg = rate_cells.get(("profile", "negative", None, segment), {})
        ev = rate_cells.get(("profile", "evasive", None, segment), {})
        x1, t1 = int(neg.get("orders", 0)), float(neg.get("us") or 0.0) / YEAR_US
        x0, t0 = int(ev.get("orders", 0)), float(ev.get("us") or 0.0) / YEAR_US
        strata.append((x1, t1, x0, t0))
        rr = rate_ratio(x1, t1, x0, t0)
        n_neg = negatives.get(segment, 0)
        orders, total = values.get(segment, (0, 0.0))
        value = NONE3
        if rr[0] is not None and orders and t0 > 0:
            per_customer_year = (total / orders) * (x0 / t0)  # v x r_evasive
            value = (n_neg * per_customer_year * (1 - rr[0]), n_neg * per_customer_year * (1 - rr[2]),
                     n_neg * per_customer_year * (1 - rr[1]))
            parts.append(value)
        elif n_neg:
            complete = False
        ok = n_neg >= min_n and int(neg.get("n", 0)) >= min_n and int(ev.get("n", 0)) >= min_n
        if segment is not None:
            rows.append(_row(as_of, "profile", "negative", segment, None, AT_STAKE, f"{currency} per year", n_neg,
                             value, "evasive", rr, ok and value[0] is not None))
    total_value = NONE3
    if parts:
        v = sum(p[0] for p in parts)
        total_value = (v, v - sum((p[0] - p[1]) ** 2 for p in parts) ** 0.5,
                       v + sum((p[2] - p[0]) ** 2 for p in parts) ** 0.5)
    neg_all = rate_cells.get(("profile", "negative", None, ALL), {})
    ev_all = rate_cells.get(("profile", "evasive", None, ALL), {})
    n_all = negatives.get(ALL, 0)
    ok = (n_all >= min_n and int(neg_all.get("n", 0)) >= min_n and int(ev_all.get("n", 0)) >= min_n
          and complete and total_value[0] is not None)
    rows.append(_row(as_of, "profile", "negative", ALL, None, AT_STAKE, f"{currency} per year", n_all, total_value,
                     "evasive", mh_rate_ratio(strata), ok))
    return rows


def revenue_at_stake(df: pl.DataFrame) -> tuple[float | None, float | None, float | None, str]:
    """(value, ci_low, ci_high, currency) of the yearly revenue at stake, segment 'all' (for ``make demo``)."""
    currency = str(var("reporting_currency"))
    row = df.filter((pl.col("measure") == AT_STAKE) & (pl.col("segment") == ALL))
    if row.is_empty():
        return None, None, None, currency
    r = row.row(0, named=True)
    return r["value"], r["ci_low"], r["ci_high"], currency
