"""Great Expectations 1.x suites as code, for the KPI mart and the key facts.

Each suite reads its data over a short read-only DuckDB connection into a DataFrame, and GX
validates it with its pandas datasource (GX's SQL datasource fails on DuckDB). Thresholds that
depend on history (row volume against the trailing 7 days, score drift) are computed from the
warehouse at validation time, for the day under test (``as_of``).

``validate(warehouse, suite, as_of, docs_dir)`` returns a ``SuiteResult``; Data Docs are built to
``docs_dir`` (``$CX_DATA_DIR/docs/gx``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

# a day's volume must stay within these multiples of its trailing 7-day mean
VOLUME_MIN_RATIO = 0.3
VOLUME_MAX_RATIO = 3.0
# a day's mean score may move this many standard errors from the trailing 7-day mean
DRIFT_Z = 4.0


@dataclass
class SuiteResult:
    suite: str
    success: bool
    failed: list[str] = field(default_factory=list)  # "expectation: detail"
    evaluated: int = 0
    docs: Path | None = None


def _read(warehouse: Path, sql: str, params: list | None = None):  # noqa: ANN202 - pandas DataFrame
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).df()


def _trailing(warehouse: Path, sql: str, as_of: str) -> list[float]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [r[0] for r in con.execute(sql, [as_of, as_of]).fetchall()]


def _kpi_suite(warehouse: Path, as_of: str):  # noqa: ANN202
    """The day under test: value ranges per KPI family, nulls, and row volume vs the trailing 7 days
    (all days' ranges are dbt tests too)."""
    import great_expectations.expectations as gxe

    df = _read(warehouse, """
        select *, case when kpi = 'nps' then 'nps' when kpi like '%_rate%' then 'rate'
                       when kpi = 'ces' then 'ces' else 'other' end as family
        from marts.kpi_experience_daily where kpi_date = cast(? as date)""", [as_of])
    rows_by_day = _trailing(warehouse, """
        select count(*) from marts.kpi_experience_daily
        where kpi_date < cast(? as date) and kpi_date >= cast(? as date) - interval 7 day
        group by kpi_date""", as_of)
    latest = len(df)
    expectations = [
        gxe.ExpectColumnValuesToBeBetween(column="value", min_value=-100, max_value=100,
                                          row_condition='family=="nps"', condition_parser="pandas"),
        gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0, max_value=1,
                                          row_condition='family=="rate"', condition_parser="pandas"),
        gxe.ExpectColumnValuesToBeBetween(column="value", min_value=1, max_value=7,
                                          row_condition='family=="ces"', condition_parser="pandas"),
        gxe.ExpectColumnValuesToNotBeNull(column="n"),
        gxe.ExpectColumnValuesToNotBeNull(column="kpi_date"),
        # medians and ratios can be null on a day without observations; almost nothing else
        gxe.ExpectColumnValuesToNotBeNull(column="value", mostly=0.99),
    ]
    volume = None
    if rows_by_day:
        mean = sum(rows_by_day) / len(rows_by_day)
        volume = (math.floor(VOLUME_MIN_RATIO * mean), math.ceil(VOLUME_MAX_RATIO * mean))
    return df, expectations, {"latest_day_rows": (latest, volume)}


def _responses_suite(warehouse: Path, as_of: str):  # noqa: ANN202
    import great_expectations.expectations as gxe

    df = _read(warehouse, """
        select response_id, survey_type, score, response_date from marts.fct_survey_responses
        where response_date = cast(? as date)""", [as_of])
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="score"),
        gxe.ExpectColumnValuesToBeInSet(column="survey_type", value_set=["nps", "csat", "ces"]),
        gxe.ExpectColumnValuesToBeUnique(column="response_id"),
    ]
    # score drift: each survey type's mean on the day against its trailing 7 days (z-test)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        history = con.execute("""
            select survey_type, avg(score), stddev_samp(score), count(*) from marts.fct_survey_responses
            where response_date < cast(? as date) and response_date >= cast(? as date) - interval 7 day
            group by survey_type""", [as_of, as_of]).fetchall()
        per_day = con.execute("""
            select count(*) from marts.fct_survey_responses
            where response_date < cast(? as date) and response_date >= cast(? as date) - interval 7 day
            group by response_date""", [as_of, as_of]).fetchall()
    for stype, mean, sd, n_hist in history:
        n_today = int((df["survey_type"] == stype).sum())
        if n_today < 5 or not sd or n_hist < 30:
            continue
        margin = DRIFT_Z * sd / math.sqrt(n_today)
        expectations.append(gxe.ExpectColumnMeanToBeBetween(
            column="score", min_value=mean - margin, max_value=mean + margin,
            row_condition=f'survey_type=="{stype}"', condition_parser="pandas",
            meta={"check": f"{stype} score drift vs trailing 7 days"}))
    extra = {}
    if per_day:
        mean = sum(r[0] for r in per_day) / len(per_day)
        extra["response_volume"] = (len(df), (math.floor(VOLUME_MIN_RATIO * mean), None))
    return df, expectations, extra


def _orders_suite(warehouse: Path, as_of: str):  # noqa: ANN202
    import great_expectations.expectations as gxe

    df = _read(warehouse, "select order_id, is_on_time, is_otif, is_delivered, promise_gap_days, total_amount "
                          "from marts.fct_orders where ordered_local_date <= cast(? as date)", [as_of])
    return df, [
        gxe.ExpectColumnValuesToBeUnique(column="order_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="is_delivered"),
        gxe.ExpectColumnValuesToNotBeNull(column="is_on_time", row_condition="is_delivered==True",
                                          condition_parser="pandas"),
        gxe.ExpectColumnValuesToBeBetween(column="promise_gap_days", min_value=-30, max_value=60),
        gxe.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0),
    ], {}


SUITES: dict[str, Callable] = {
    "kpi_experience_daily": _kpi_suite,
    "fct_survey_responses": _responses_suite,
    "fct_orders": _orders_suite,
}


def validate(warehouse: Path, suite: str, as_of: str, docs_dir: Path) -> SuiteResult:
    """Run one suite for the day ``as_of``; build Data Docs under ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    df, expectations, volume_checks = SUITES[suite](Path(warehouse), as_of)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(site_name="cx", site_config={
        "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}})
    batch = context.data_sources.add_pandas("cx").add_dataframe_asset(suite).add_batch_definition_whole_dataframe("all")
    for name, (count, bounds) in volume_checks.items():
        if bounds is None:  # no trailing history yet (the first nights)
            continue
        low, high = bounds
        expectations.append(gx.expectations.ExpectTableRowCountToBeBetween(
            min_value=low, max_value=high, meta={"check": f"{name} vs trailing 7 days (got {count})"}))
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite, expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite, data=batch, suite=gx_suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=suite, validation_definitions=[definition],
        actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["cx"])]))
    result = checkpoint.run(batch_parameters={"dataframe": df})
    failed, evaluated = [], 0
    for run in result.run_results.values():
        for r in run.results:
            evaluated += 1
            if not r.success:
                cfg = r.expectation_config
                label = (cfg.meta or {}).get("check") or f"{cfg.type}({cfg.kwargs.get('column', '')})"
                failed.append(f"{label}: {r.result.get('observed_value', r.result.get('unexpected_count'))}")
    return SuiteResult(suite, not failed, failed, evaluated, docs_dir / "index.html")
