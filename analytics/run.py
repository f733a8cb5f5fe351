"""Run every analysis over a warehouse as of a date, check each output, write it back.

One entry point for every caller: the Dagster asset (``orchestration/assets/analytics.py``), ``cxw
build`` and the tests. The inputs are the marts of the warehouse DuckDB file (on the Spark engine, views
over the tables Spark built: ``spark_read_back``), so the analyses run the same on both engines. Each
output is checked against its declared schema (``analytics.schema``) and grain before anything is
written; a table that fails is not written (the previous night's stays) and the failure is returned,
so the caller blocks the publish. The tables land in the ``marts`` schema, where the publish serves them
with the dbt marts.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from ingestion import settings

from . import schema as S

SCHEMA_NAME = "marts"


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    not_null: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Analysis:
    """An analysis: a module of ``analytics`` with ``compute(con, as_of, **kw)`` returning one frame (its
    ``SCHEMA``) or a dict of frames (its ``SCHEMAS``), and the tables it writes."""

    name: str
    module: str
    tables: tuple[Table, ...]
    # the marts it reads (Dagster lineage: the asset depends on them)
    reads: tuple[str, ...]
    # its compute takes the run's ``seed`` (a model with a sampled training set)
    seeded: bool = False


ANALYSES: tuple[Analysis, ...] = (
    Analysis("key drivers", "drivers", (
        Table("mart_experience_drivers", ("outcome", "segment", "moment"),
              ("as_of", "outcome", "segment", "moment", "n_with", "n_without", "is_reportable"),
              "Key drivers of NPS, CSAT and churn: per moment of truth and segment, the difference it makes "
              "(with its 95 % interval and n) and its relative importance in one joint model "
              "(Shapley share of R²); docs/analytics.md."),),
        ("fct_survey_responses", "fct_orders", "fct_payments", "fct_refunds", "fct_support_cases",
         "fct_subscriptions", "fct_promise_outcomes", "mart_feedback_followups", "dim_customer")),
    Analysis("revenue link", "value", (
        Table("mart_experience_value", ("dimension", "group", "segment", "cohort_month", "measure"),
              ("as_of", "dimension", "group", "segment", "measure", "is_reportable"),
              "What experience is worth: order rate, next-90-day revenue, repeat purchase and retention of "
              "promoters / passives / detractors and advocates / evasives / negatives, with ratios to the "
              "reference group, and the yearly revenue at stake from the current negatives; docs/analytics.md."),),
        ("fct_survey_responses", "fct_orders", "fct_subscriptions", "mart_customer_profiles", "dim_customer")),
    Analysis("churn risk", "churn", (
        Table("mart_churn_risk", ("customer_key",), ("as_of", "customer_key", "churn_probability", "risk_decile"),
              "Churn risk of every active customer as of the business date, from a model trained only on "
              "history before it, with the top three reasons per customer; docs/analytics.md."),
        Table("mart_churn_backtest", ("cutoff", "model"), ("as_of", "cutoff", "model"),
              "The churn model's backtest over rolling held-out months: AUC and Brier score of the model and "
              "of the naive baseline (recency and frequency only)."),
        Table("mart_churn_calibration", ("cutoff", "model", "decile"), ("as_of", "cutoff", "model", "decile"),
              "Calibration of the churn model and the baseline by risk decile in each held-out month: mean "
              "predicted probability against the observed churn rate.")),
        ("fct_orders", "fct_subscriptions", "fct_survey_responses", "fct_support_cases", "fct_payments",
         "fct_refunds", "fct_promise_outcomes", "mart_feedback_followups", "mart_customer_profiles",
         "dim_customer", "dim_customer_history"), seeded=True),
)


@dataclass
class Output:
    table: str
    frame: pl.DataFrame
    problems: list[str]
    written: bool
    seconds: float
    notes: dict[str, object] = field(default_factory=dict)


def schemas(analysis: Analysis) -> dict[str, dict[str, pl.DataType]]:
    mod = importlib.import_module(f"analytics.{analysis.module}")
    if hasattr(mod, "SCHEMAS"):
        return dict(mod.SCHEMAS)
    return {analysis.tables[0].name: mod.SCHEMA}


def run_analysis(con: duckdb.DuckDBPyConnection, analysis: Analysis, as_of: dt.date,
                 seed: int = 0) -> list[Output]:
    """Compute ``analysis`` as of ``as_of`` from the marts of ``con``, check its tables, write the good ones."""
    mod = importlib.import_module(f"analytics.{analysis.module}")
    t0 = time.perf_counter()
    kwargs = {"seed": seed} if analysis.seeded else {}
    result = mod.compute(con, as_of, **kwargs)
    frames = dict(result) if isinstance(result, dict) else {analysis.tables[0].name: result}
    said = frames.pop("notes", None)  # what the analysis left out and why, in words
    seconds = time.perf_counter() - t0
    notes: dict[str, object] = {"notes": said} if said else {}
    if hasattr(mod, "metadata"):
        notes |= mod.metadata(frames)
    declared = schemas(analysis)
    outputs = []
    for table in analysis.tables:
        df = frames.get(table.name)
        if df is None:
            outputs.append(Output(table.name, pl.DataFrame(), [f"{table.name}: not produced by {analysis.name}"],
                                  False, seconds))
            continue
        found = S.problems(table.name, df, declared[table.name], table.key, table.not_null)
        if not found:
            write(con, table.name, df)
        outputs.append(Output(table.name, df, found, not found, seconds, notes))
    return outputs


def write(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame) -> None:
    """Replace ``marts.<table>`` with ``df`` in one statement (readers of the live file see old or new)."""
    con.execute(f"create schema if not exists {SCHEMA_NAME}")
    arrow = df.to_arrow()  # noqa: F841 - read by name in the statement below
    con.execute(f"create or replace table {SCHEMA_NAME}.{table} as select * from arrow")


def data_as_of(warehouse: Path) -> dt.date | None:
    """The last date the warehouse has data for (the KPI mart's last date): the as_of of a plain build,
    whose dbt vars say 9999-12-31."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        day = con.execute(f"select max(kpi_date) from {SCHEMA_NAME}.kpi_experience_daily").fetchone()[0]
    return day


def run_all(warehouse: Path, as_of: dt.date, seed: int = 0,
            on_output: Callable[[Analysis, Output], None] | None = None) -> list[Output]:
    """Every analysis of ``ANALYSES`` over ``warehouse`` as of ``as_of`` (one writer connection)."""
    outputs = []
    with duckdb.connect(str(warehouse)) as con:
        settings.apply_duckdb_settings(con, warehouse.parent)
        for analysis in ANALYSES:
            for out in run_analysis(con, analysis, as_of, seed):
                outputs.append(out)
                if on_output:
                    on_output(analysis, out)
    return outputs
