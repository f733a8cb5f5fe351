"""The nightly gate: every GX and SQL check of ``expectations/registry.py``, for a run window.

``evaluate(warehouse, start, end, docs_dir)`` judges the business dates ``[start, end)`` (half-open;
a nightly run is one date, a backfill its whole range) and returns one ``HealthRow`` per date x
check x subject. It reads only what it needs over one short read-only DuckDB connection:

* GX suites (blocking, row-level) validate only the window's rows of each mart, with Great
  Expectations' pandas datasource (its SQL datasource fails on DuckDB); a failing expectation is
  attributed to the dates of its unexpected rows. Data Docs go to ``docs_dir``, with their scripts
  and styles (they open offline: ``expectations/data_docs_offline.py``).
* SQL reconciliations (blocking): each KPI's n against its facts, revenue against the invoices.
* SQL baselines learned from history (warnings): score drift, promise-gap outliers, identity match
  rate, currency left out of value KPIs (``expectations/anomaly.py``, ``quality.toml``).

Nothing here decides what to publish: the caller reads the rows' statuses.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion import settings
from ingestion.faults import crashpoint

from . import anomaly, data_docs_offline
from .health import HealthRow, judged

settings.quiet_libraries()  # GX_ANALYTICS_ENABLED=False unless set

SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
# logical scales; refund_rate_value (refunded / invoiced value) can exceed 1 (a goodwill refund on
# top of a return refund), so it is bounded below only
KPI_SCALES = {"nps": (-100, 100), "rate": (0, 1), "ces": (1, 7), "value_ratio": (0, None)}


@dataclass
class GateResult:
    rows: list[HealthRow]
    rows_read: dict[str, int] = field(default_factory=dict)  # GX suite -> rows it validated
    docs: Path | None = None


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


# --- GX suites over the window's rows ---------------------------------------------------------------

def _suites(start: dt.date, end: dt.date) -> dict[str, tuple[str, str, list]]:
    """suite -> (date column, SQL reading the window's rows, [(check, expectation)])."""
    import great_expectations.expectations as gxe

    w = f"cast('{start}' as date) and {{col}} < cast('{end}' as date)"
    kpi = [("kpi_value_in_scale", gxe.ExpectColumnValuesToBeBetween(
                column="value", min_value=lo, max_value=hi, row_condition=f'family=="{fam}"',
                condition_parser="pandas")) for fam, (lo, hi) in KPI_SCALES.items()]
    kpi += [("kpi_n_not_null", gxe.ExpectColumnValuesToNotBeNull(column="n")),
            ("kpi_grain_unique", gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["kpi_date", "kpi", "dimension", "dimension_value"]))]
    responses = [("response_id_unique", gxe.ExpectColumnValuesToBeUnique(column="response_key")),
                 ("response_score_in_scale", gxe.ExpectColumnValuesToNotBeNull(column="score")),
                 ("survey_type_known", gxe.ExpectColumnValuesToBeInSet(column="survey_type",
                                                                      value_set=sorted(SCALES)))]
    responses += [("response_score_in_scale", gxe.ExpectColumnValuesToBeBetween(
        column="score", min_value=lo, max_value=hi, row_condition=f'survey_type=="{t}"', condition_parser="pandas"))
        for t, (lo, hi) in SCALES.items()]
    orders = [("order_id_unique", gxe.ExpectColumnValuesToBeUnique(column="order_key")),
              ("order_amount_not_negative", gxe.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0)),
              ("delivery_not_before_order", gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                  column_A="delivered_at", column_B="ordered_at", or_equal=True,
                  ignore_row_if="either_value_is_missing")),
              ("on_time_known_when_delivered", gxe.ExpectColumnValuesToNotBeNull(
                  column="is_on_time", row_condition="is_delivered==True", condition_parser="pandas"))]
    return {
        "kpi_experience_daily": ("kpi_date", f"""
            select kpi_date, kpi, dimension, dimension_value, value, n,
                   case when kpi = 'nps' then 'nps' when kpi = 'refund_rate_value' then 'value_ratio'
                        when kpi = 'csat' or kpi like '%rate%' then 'rate'
                        when kpi = 'ces' then 'ces' else 'other' end as family
            from marts.kpi_experience_daily where kpi_date >= {w.format(col='kpi_date')}""", kpi),
        "fct_survey_responses": ("response_date", f"""
            select response_key, survey_type, score, response_date from marts.fct_survey_responses
            where response_date >= {w.format(col='response_date')}""", responses),
        # the window's orders: placed in it, or delivered in it (their delivery changed the KPIs)
        "fct_orders": ("window_date", f"""
            select order_key, total_amount, ordered_at, delivered_at, is_delivered, is_on_time,
                   case when ordered_local_date >= {w.format(col='ordered_local_date')} then ordered_local_date
                        else delivered_local_date end as window_date
            from marts.fct_orders
            where (ordered_local_date >= {w.format(col='ordered_local_date')})
               or (delivered_local_date >= {w.format(col='delivered_local_date')})""", orders),
    }


def _gx(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date, docs_dir: Path,
        result: GateResult) -> None:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(site_name="cx", site_config={
        "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}})
    source = context.data_sources.add_pandas("cx")
    days = _days(start, end)
    docs_url = str(docs_dir / "index.html")
    for suite, (date_col, sql, checks) in _suites(start, end).items():
        df = con.execute(sql).df()
        result.rows_read[suite] = len(df)
        batch = source.add_dataframe_asset(suite).add_batch_definition_whole_dataframe("window")
        expectations = []
        for name, exp in checks:
            exp.meta = {"check": name}
            expectations.append(exp)
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite, expectations=expectations))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite, data=batch,
                                                                                suite=gx_suite))
        # no per-checkpoint UpdateDataDocsAction: the site is built once, after every suite ran
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=suite, validation_definitions=[definition], actions=[],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [date_col]}))
        run = checkpoint.run(batch_parameters={"dataframe": df})
        # check -> date -> unexpected rows (a check may span several expectations)
        bad: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
        detail: dict[str, list[str]] = defaultdict(list)
        for validation in run.run_results.values():
            for r in validation.results:
                name = r.expectation_config.meta["check"]
                bad[name]  # noqa: B018 - every evaluated check gets an entry
                if r.success:
                    continue
                index = r.result.get("unexpected_index_list") or []
                kwargs = {k: v for k, v in r.expectation_config.kwargs.items() if k not in ("batch_id",)}
                detail[name].append(f"{r.expectation_config.type}({kwargs})")
                if not index:  # an aggregate failure: every date of the window
                    for d in days:
                        bad[name][d] += 1
                for row in index:
                    d = row.get(date_col)
                    d = d.date() if isinstance(d, dt.datetime) else d
                    bad[name][d if d in days else days[-1]] += 1
        for name, per_day in bad.items():
            for d in days:
                n_bad = per_day.get(d, 0)
                result.rows.append(judged(
                    d, name, suite, n_bad == 0, observed_value=n_bad, expected_range="0 unexpected rows",
                    message=None if n_bad == 0 else f"{n_bad} unexpected rows on {d}: " + "; ".join(detail[name]),
                    docs_url=docs_url))
    context.build_data_docs(site_names=["cx"])
    # GX's pages load their scripts and styles from CDNs: serve them from the docs folder, so the Data Docs
    # open offline (expectations/data_docs_offline.py). An asset without a local copy (a GX upgrade that
    # links a new one) is a docs problem, not a wrong number: said loudly in the log, never a blocked night
    # (tests/test_data_docs_offline.py fails on it in CI first)
    try:
        data_docs_offline.make_offline(docs_dir)
    except data_docs_offline.OfflineDocsError as exc:
        logging.getLogger(__name__).warning("the Data Docs in %s still need the network: %s", docs_dir, exc)
    result.docs = docs_dir / "index.html"


# --- SQL reconciliations ----------------------------------------------------------------------------

# n of each KPI (all customers) recounted from its facts, independently of the mart's SQL; each
# part reads only the window's dates ($1, $2), so the cost does not grow with history
KPI_FACTS = """
    select response_date as d, 'nps' as kpi, count(*) as n from marts.fct_survey_responses
        where survey_type = 'nps' and nps_category is not null and response_date >= $1 and response_date < $2
        group by 1
    union all select response_date, 'csat', count(*) from marts.fct_survey_responses
        where survey_type = 'csat' and csat_satisfied is not null and response_date >= $1 and response_date < $2
        group by 1
    union all select response_date, 'ces', count(*) from marts.fct_survey_responses
        where survey_type = 'ces' and ces_score is not null and response_date >= $1 and response_date < $2
        group by 1
    union all select resolved_date, 'fcr_rate', count(*) from marts.fct_support_cases
        where is_resolved and resolved_date >= $1 and resolved_date < $2 group by 1
    union all select cast(timezone('UTC', delivered_at) as date), 'on_time_delivery_rate', count(*)
        from marts.fct_orders where is_delivered and delivered_at >= $1 - interval 1 day
        and cast(timezone('UTC', delivered_at) as date) >= $1 and cast(timezone('UTC', delivered_at) as date) < $2
        group by 1
    union all select cast(timezone('UTC', delivered_at) as date), 'otif_rate', count(*)
        from marts.fct_orders where is_delivered and delivered_at >= $1 - interval 1 day
        and cast(timezone('UTC', delivered_at) as date) >= $1 and cast(timezone('UTC', delivered_at) as date) < $2
        group by 1
    union all select i.issue_date, 'refund_rate_orders', count(*) from marts.fct_orders as o
        inner join marts.fct_invoices as i on i.invoice_key = o.invoice_key
        where i.status <> 'void' and i.issue_date >= $1 and i.issue_date < $2 group by 1
    union all select attempt_date, 'payment_failure_rate', count(*) from marts.fct_payments
        where attempt_date >= $1 and attempt_date < $2 group by 1
"""


def _kpi_n(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> list[HealthRow]:
    mismatches = con.execute(f"""
        with facts as ({KPI_FACTS}),
        mart as (select kpi_date as d, kpi, n from marts.kpi_experience_daily
                 where dimension = 'all' and kpi_date >= $1 and kpi_date < $2
                   and kpi in ('nps', 'csat', 'ces', 'fcr_rate', 'on_time_delivery_rate', 'otif_rate',
                               'refund_rate_orders', 'payment_failure_rate'))
        select coalesce(f.d, m.d) as d, coalesce(f.kpi, m.kpi) as kpi, coalesce(f.n, 0), coalesce(m.n, 0)
        from facts as f full outer join mart as m on m.d = f.d and m.kpi = f.kpi
        where coalesce(f.n, 0) <> coalesce(m.n, 0) or m.n is null or f.n is null
        order by 1, 2""", [start, end]).fetchall()
    by_day: dict[dt.date, list[str]] = defaultdict(list)
    for d, kpi, facts, mart in mismatches:
        by_day[d].append(f"{kpi}: n = {mart} in the mart, {facts} facts")
    return [judged(d, "kpi_n_matches_facts", "kpi_experience_daily", not by_day.get(d),
                   observed_value=len(by_day.get(d, [])), expected_range="0 KPIs whose n differs from its facts",
                   message="; ".join(by_day[d][:10]) if by_day.get(d) else None)
            for d in _days(start, end)]


def _revenue(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date, as_of: dt.date,
             tolerance: float) -> list[HealthRow]:
    rows = con.execute("""
        with mart as (select currency, sum(invoiced_minor) as v from marts.kpi_customer_value group by 1),
        facts as (select currency, sum(amount_due_minor) as v from marts.fct_invoices
                  where status <> 'void' and customer_key is not null and issue_date <= ? group by 1)
        select coalesce(m.currency, f.currency), coalesce(m.v, 0), coalesce(f.v, 0)
        from mart as m full outer join facts as f on f.currency = m.currency order by 1""", [as_of]).fetchall()
    off = [(c, m, f) for c, m, f in rows if abs(m - f) > tolerance * max(abs(f), 1)]
    worst = max((abs(m - f) / max(abs(f), 1) for _, m, f in rows), default=0.0)
    message = "; ".join(f"{c}: {m} minor units in kpi_customer_value, {f} in fct_invoices" for c, m, f in off)
    return [judged(d, "revenue_reconciles", "kpi_customer_value", not off, observed_value=worst,
                   expected_range=f"relative difference <= {tolerance:g} per currency",
                   message=(message or None) and f"as of {as_of}: {message}") for d in _days(start, end)]


# --- SQL baselines learned from history (warnings) --------------------------------------------------

def _banded(check: str, asset: str, subject: str, label: str, series: dict[dt.date, float],
            days: list[dt.date], cfg: dict, floors: dict[dt.date, float] | None = None) -> list[HealthRow]:
    rows = []
    for d in days:
        if d not in series:
            continue
        verdict = anomaly.robust_band(d, series[d], series, cfg, min_spread=(floors or {}).get(d, 0.0))
        if not verdict.has_baseline:
            rows.append(HealthRow(d, check, asset, "no_baseline", subject=subject, observed_value=series[d],
                                  expected_range=verdict.expected()))
            continue
        msg = None
        if verdict.surprising:
            msg = (f"{label} {series[d]:.4g} on {d} is outside {verdict.expected()}: robust z "
                   f"{verdict.robust_z:.1f} against a median of {verdict.median:.4g}")
        rows.append(judged(d, check, asset, not verdict.surprising, subject=subject, observed_value=series[d],
                           expected_range=verdict.expected(), message=msg))
    return rows


def _score_drift(con: duckdb.DuckDBPyConnection, days: list[dt.date], cfg: dict) -> list[HealthRow]:
    """Each survey type's daily mean against its trailing daily means. The band is at least the
    standard error of the day's mean (the answers' sd over the history / sqrt(the day's answers)):
    a day of a handful of answers is not flagged for the noise of so few answers."""
    history_days = int(cfg["anomaly"]["history_days"])
    since = days[0] - dt.timedelta(days=history_days)
    daily = con.execute("""
        select survey_type, response_date, count(*), sum(score), sum(score * score) from marts.fct_survey_responses
        where response_date >= ? and response_date < ? and score is not null group by 1, 2""",
                        [since, days[-1] + dt.timedelta(days=1)]).fetchall()
    stats: dict[str, dict[dt.date, tuple[int, float, float]]] = defaultdict(dict)
    for stype, d, n, total, sq in daily:
        stats[stype][d] = (int(n), float(total), float(sq))
    rows = []
    for stype in sorted(stats):
        series = {d: total / n for d, (n, total, _) in stats[stype].items()}
        floors = {}
        for d in days:
            past = [v for p, v in stats[stype].items() if d - dt.timedelta(days=history_days) <= p < d]
            n, total, sq = sum(v[0] for v in past), sum(v[1] for v in past), sum(v[2] for v in past)
            if n > 1 and d in stats[stype]:
                sd = max((sq - total * total / n) / (n - 1), 0.0) ** 0.5
                floors[d] = sd / stats[stype][d][0] ** 0.5
        rows += _banded("score_drift", "fct_survey_responses", stype, f"mean {stype} score", series, days,
                        cfg["anomaly"], floors)
    return rows


def _match_rate(con: duckdb.DuckDBPyConnection, days: list[dt.date], cfg: dict) -> list[HealthRow]:
    since = days[0] - dt.timedelta(days=int(cfg["anomaly"]["history_days"]))
    rates = con.execute("""
        select o.ordered_local_date, avg(case when c.identity_type = 'crm' then 1.0 else 0.0 end)
        from marts.fct_orders as o left join marts.dim_customer as c on c.customer_key = o.customer_key
        where o.ordered_local_date >= ? and o.ordered_local_date < ? group by 1""",
                        [since, days[-1] + dt.timedelta(days=1)]).fetchall()
    return _banded("identity_match_rate", "fct_orders", "orders resolved to a CRM customer",
                   "share of orders matched to a CRM customer", {d: float(r) for d, r in rates}, days,
                   cfg["anomaly"])


def _promise_gap(con: duckdb.DuckDBPyConnection, days: list[dt.date], cfg: dict) -> list[HealthRow]:
    """Each day's delivered orders against the fences of the orders delivered in its own trailing
    history (a backfill judges each of its days against the days before it)."""
    pg = cfg["promise_gap"]
    history_days = int(cfg["anomaly"]["history_days"])
    since = days[0] - dt.timedelta(days=history_days)
    delivered = con.execute("""
        select delivered_local_date, promise_gap_days from marts.fct_orders
        where is_delivered and delivered_local_date >= ? and delivered_local_date < ?""",
                            [since, days[-1] + dt.timedelta(days=1)]).fetchall()
    per_day: dict[dt.date, list[int]] = defaultdict(list)
    for d, gap in delivered:
        per_day[d].append(gap)
    rows = []
    for d in days:
        history = [float(g) for p, gaps in per_day.items() if d - dt.timedelta(days=history_days) <= p < d
                   for g in gaps]
        if len(history) < int(pg["min_history_orders"]):
            rows.append(HealthRow(d, "promise_gap_outliers", "fct_orders", "no_baseline", subject="delivered orders",
                                  expected_range=f"no baseline yet ({len(history)} delivered orders of history, "
                                                 f"{pg['min_history_orders']} needed)"))
            continue
        lo, hi = anomaly.tukey_fences(history, float(pg["iqr_multiplier"]), float(pg["min_days_from_median"]))
        gaps = per_day.get(d, [])
        out = [g for g in gaps if g < lo or g > hi]
        msg = None
        if out:
            msg = (f"{len(out)} of {len(gaps)} orders delivered on {d} are promise-gap outliers "
                   f"(from {min(out)} to {max(out)} days; fences [{lo:.1f}, {hi:.1f}] from {len(history)} "
                   "delivered orders of history)")
        rows.append(judged(d, "promise_gap_outliers", "fct_orders", not out, subject="delivered orders",
                           observed_value=len(out), expected_range=f"promise gap within [{lo:.1f}, {hi:.1f}] days",
                           message=msg))
    return rows


FX_RATES = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "fx_rates.csv"


def convertible_currencies(reporting_currency: str, rates: Path = FX_RATES) -> set[str]:
    """Currencies a value KPI can convert: the reporting currency and those with a rate in the dbt
    seed ``fx_rates`` (the one table of rates, read by dbt and here)."""
    import csv

    with Path(rates).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {reporting_currency} | {r["currency"] for r in rows if r["reporting_currency"] == reporting_currency}


def _currency(con: duckdb.DuckDBPyConnection, days: list[dt.date], reporting_currency: str,
              raw: Path) -> list[HealthRow]:
    """Invoices delivered in each night's billing drop (whatever their issue date: a first drop carries
    years) in a currency refund_rate_value cannot convert."""
    known = sorted(convertible_currencies(reporting_currency))
    rows = []
    for d in days:
        path = raw / "billing" / "invoices" / f"business_date={d.isoformat()}" / "data.parquet"
        other = []
        if path.exists():
            other = con.execute(f"""
                select currency, count(*), min(cast(timezone('UTC', issued_at) as date)),
                       max(cast(timezone('UTC', issued_at) as date))
                from read_parquet(?) where status <> 'void' and currency not in ({", ".join("?" for _ in known)})
                group by 1 order by 1""", [str(path), *known]).fetchall()
        n = sum(k for _, k, _, _ in other)
        msg = None
        if other:
            msg = (f"refund_rate_value leaves out {n:,} invoice{'s' * (n != 1)} of the {d} billing drop in "
                   + ", ".join(f"{c} ({k:,}, issued {lo} .. {hi})" for c, k, lo, hi in other)
                   + f": no rate to {reporting_currency} in dbt_project/seeds/fx_rates.csv. Counts and "
                     "refund_rate_orders include them")
        rows.append(judged(d, "currency_excluded", "kpi_experience_daily", not other, subject="refund_rate_value",
                           observed_value=n, expected_range=f"0 invoices in a currency without a rate to "
                           f"{reporting_currency} ({', '.join(known)} convert)", message=msg))
    return rows


# the warnings judged against a trailing baseline of the marts: late records change a date's value and
# the baseline of the dates after it, so the gate judges them again for earlier dates (``rejudge``)
BASELINE_CHECKS = ("score_drift", "promise_gap_outliers", "identity_match_rate")


def evaluate(warehouse: Path, start: dt.date, end: dt.date, docs_dir: Path, reporting_currency: str = "EUR",
             cfg: dict | None = None, rejudge: Iterable[dt.date] = ()) -> GateResult:
    """Judge the business dates [start, end) of the warehouse; GX Data Docs under ``docs_dir``.

    ``rejudge``: earlier dates whose ``BASELINE_CHECKS`` are judged again with what the warehouse holds
    now (the caller passes those judged before within the window late records can still reach), so a
    date's warnings read the same however and in whatever order its drops arrived."""
    if end <= start:
        raise ValueError(f"empty window [{start}, {end})")
    cfg = cfg or anomaly.load_config()
    result = GateResult(rows=[])
    days = _days(start, end)
    as_of = days[-1]
    baseline_days = sorted(set(days) | {d for d in rejudge if d < start})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        settings.apply_duckdb_settings(con, Path(warehouse).parent)
        con.execute("set TimeZone = 'UTC'")
        _gx(con, start, end, Path(docs_dir), result)
        crashpoint("gate.after_suites")
        result.rows += _kpi_n(con, start, end)
        result.rows += _revenue(con, start, end, as_of, float(cfg["revenue"]["relative_tolerance"]))
        result.rows += _score_drift(con, baseline_days, cfg)
        result.rows += _promise_gap(con, baseline_days, cfg)
        result.rows += _match_rate(con, baseline_days, cfg)
        result.rows += _currency(con, days, reporting_currency, Path(warehouse).parent / "raw")
    return result
