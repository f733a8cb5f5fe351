"""Publish the BI marts (``orchestration/publish.py``) once everything upstream passed its checks."""

import json

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.publish import publish

from ..partitions import daily_partitions
from ..resources import CxData
from .warehouse import DUCKDB_POOL, cx_dbt_incremental, cx_dbt_models, dbt_project

# every model in the `marts` schema is published (restricted models are not)
BI_MODELS = sorted(
    n["name"] for n in json.loads(dbt_project.manifest_path.read_text())["nodes"].values()
    if n["resource_type"] == "model" and n["config"].get("schema") == "marts"
)


BI_ASSET_KEYS = [get_asset_key_for_model([cx_dbt_incremental if m == "kpi_experience_daily" else cx_dbt_models], m)
                 for m in BI_MODELS]


@dg.asset(key=["serving", "cx_duckdb"], group_name="serving", deps=BI_ASSET_KEYS,
          partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(), pool=DUCKDB_POOL,
          kinds={"duckdb", "parquet"}, owners=["team:data-platform"],
          description="BI-facing marts copied atomically to serving/cx.duckdb and serving/parquet/.")
def published_marts(context: dg.AssetExecutionContext, cx: CxData) -> dg.MaterializeResult:
    as_of = context.partition_key_range.end
    result = publish(cx.root() / "warehouse.duckdb", cx.root() / "serving", as_of=as_of)
    return dg.MaterializeResult(metadata={
        "as_of": as_of, "tables": len(result.tables), "rows": sum(result.tables.values()),
        "database": dg.MetadataValue.path(str(result.database)),
        "parquet": dg.MetadataValue.path(str(result.parquet.resolve())),
    })
