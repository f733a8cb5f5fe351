"""The Python analyses (``analytics/``) as Dagster assets: key drivers, the revenue link, churn risk.

One multi-asset, ``cx_analytics``, after the dbt build and before the publish, on the same business-date
partitions: a run computes every analysis as of the window's last business date (``as_of``: never the
wall clock), from the marts of ``warehouse.duckdb`` (on the Spark engine, views over the tables Spark
built, so the same code serves both engines), and writes each table to the warehouse's ``marts``
schema, where the publish serves it with the dbt marts. Each table has a blocking ``declared_schema``
check (``analytics.schema``): a table whose columns, types or grain break the declaration is not
written and the publish does not run. In the ``duckdb_writer`` pool: it writes the DuckDB file.
"""


from collections.abc import Iterator

import dagster as dg

from analytics import run as A
from expectations import health, registry
from orchestration import night
from orchestration.publish import publish_health

from ..partitions import daily_partitions, window_days
from ..resources import CxData
from .warehouse import DUCKDB_POOL, model_key

SCHEMA_CHECK = registry.check("declared_schema")


def analytics_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([A.SCHEMA_NAME, table])


def _specs() -> tuple[list[dg.AssetSpec], list[dg.AssetCheckSpec]]:
    specs, checks = [], []
    for analysis in A.ANALYSES:
        for table in analysis.tables:
            key = analytics_key(table.name)
            specs.append(dg.AssetSpec(
                key, group_name="analytics", kinds={"python", "duckdb"}, owners=["team:cx-analytics"], skippable=True,
                deps=[model_key(m) for m in analysis.reads], description=table.description,
                metadata={"analysis": f"analytics/{analysis.module}.py", "grain": ", ".join(table.key)}))
            checks.append(dg.AssetCheckSpec(
                SCHEMA_CHECK.name, asset=key, blocking=True,
                description=f"[{SCHEMA_CHECK.severity}] {SCHEMA_CHECK.rule}. Why {SCHEMA_CHECK.severity}: "
                            f"{SCHEMA_CHECK.why}."))
    return specs, checks


_SPECS, _CHECKS = _specs()


def _metadata(out: A.Output) -> dict:
    meta: dict = {"dagster/row_count": out.frame.height, "seconds": round(out.seconds, 2),
                  "written": out.written}
    for name, v in out.notes.items():  # the analysis' own figures (e.g. the churn backtest), tables as Markdown
        meta[name] = dg.MetadataValue.md(v) if isinstance(v, str) and v.startswith("|") else v
    return meta


@dg.multi_asset(specs=_SPECS, check_specs=_CHECKS, name="cx_analytics", partitions_def=daily_partitions,
                backfill_policy=dg.BackfillPolicy.single_run(), pool=DUCKDB_POOL,
                description="The Python analyses over the marts (analytics/): key drivers, the revenue link, churn "
                            "risk with its backtest; as of the window's last business date.")
def cx_analytics(context: dg.AssetExecutionContext, cx: CxData) -> Iterator:
    days = window_days(context)
    as_of = days[-1]  # the window's last business date
    failed = []

    def report(analysis: A.Analysis, out: A.Output) -> None:
        context.log.info("%s: %d rows as of %s in %.1f s%s", out.table, out.frame.height, as_of, out.seconds,
                         "" if out.written else f"; NOT written: {'; '.join(out.problems)}")
        if out.problems:
            failed.append(out.table)

    outputs = A.run_all(cx.root() / "warehouse.duckdb", as_of, on_output=report)
    health.write(cx.root(), days, "analytics", night.analytics_health(outputs, days, as_of), run_id=context.run.run_id)
    for out in outputs:
        key = analytics_key(out.table)
        if out.written:
            yield dg.MaterializeResult(asset_key=key, metadata=_metadata(out))
        yield dg.AssetCheckResult(
            asset_key=key, check_name=SCHEMA_CHECK.name, passed=not out.problems, severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(out.problems) or None, metadata={"problems": len(out.problems)})
    if failed:  # the publish will not run: serve the health record now, saying why
        publish_health(cx.root() / "serving", health.read(cx.root()))
        context.log.error("analyses not written (declared schema): %s; the publish will not run", ", ".join(failed))


ANALYTICS_KEYS = [analytics_key(t.name) for a in A.ANALYSES for t in a.tables]
