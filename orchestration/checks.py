"""Great Expectations gates: blocking asset checks on the KPI mart and the key facts.

Each check runs a suite from ``expectations/`` for the business date of the run (a partition,
or the last date of a backfill range), over a short read-only DuckDB connection, and links the
Data Docs built under ``$CX_DATA_DIR/docs/gx``. A failing suite blocks everything downstream,
including the publish to BI.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from expectations.suites import validate

from .assets.warehouse import DUCKDB_POOL, cx_dbt_incremental, cx_dbt_models
from .resources import CxData

PARTITION_TAG = "dagster/partition"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_business_date(context: dg.AssetCheckExecutionContext) -> str:
    tags = context.run.tags
    day = tags.get(PARTITION_TAG) or tags.get(RANGE_END_TAG)
    if not day:
        raise dg.Failure("the GX checks validate one business date: run them with a partition or a range")
    return day


def gx_check(model: str, assets: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    key = get_asset_key_for_model([assets], model)

    @dg.asset_check(asset=key, name=f"gx_{model}", blocking=True, pool=DUCKDB_POOL,
                    description=f"Great Expectations suite '{model}' (expectations/suites.py) for the run's "
                                "business date; blocks the publish to BI when it fails.")
    def _check(context: dg.AssetCheckExecutionContext, cx: CxData) -> dg.AssetCheckResult:
        day = run_business_date(context)
        docs = cx.root() / "docs" / "gx"
        result = validate(cx.root() / "warehouse.duckdb", model, day, docs)
        return dg.AssetCheckResult(
            passed=result.success,
            description=None if result.success else f"{model} failed: " + "; ".join(result.failed[:5]),
            metadata={"business_date": day, "expectations": result.evaluated, "failed": len(result.failed),
                      "failures": "\n".join(result.failed) or "none",
                      "data_docs": dg.MetadataValue.path(str(result.docs))})

    return _check


gx_checks = [gx_check("kpi_experience_daily", cx_dbt_incremental), gx_check("fct_survey_responses", cx_dbt_models),
             gx_check("fct_orders", cx_dbt_models)]
