"""Publish the BI marts and the data-health record (``orchestration/publish.py``) once the gate passed.

The gate's blocking checks stop this step (Dagster skips it); warnings do not: the night is
published with them, in ``data_health``.
"""

import json

import dagster as dg

from expectations import health
from orchestration import night
from orchestration.publish import publish

from ..partitions import daily_partitions
from ..resources import CxData
from .analytics import ANALYTICS_KEYS
from .warehouse import DUCKDB_POOL, dbt_project, model_key

# every model in the `marts` schema is published (restricted models are not)
BI_MODELS = sorted(
    n["name"] for n in json.loads(dbt_project.manifest_path.read_text())["nodes"].values()
    if n["resource_type"] == "model" and n["config"].get("schema") == "marts"
)


BI_ASSET_KEYS = [model_key(m) for m in BI_MODELS]


@dg.asset(key=["serving", "cx_duckdb"], group_name="serving", deps=BI_ASSET_KEYS + ANALYTICS_KEYS,
          partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(), pool=DUCKDB_POOL,
          kinds={"duckdb", "parquet"}, owners=["team:data-platform"],
          description="BI-facing marts and the data_health record, copied atomically to serving/cx.duckdb and "
                      "serving/parquet/.")
def published_marts(context: dg.AssetExecutionContext, cx: CxData) -> dg.MaterializeResult:
    keys = context.partition_key_range
    record = health.read(cx.root())
    window, blocked = night.publish_window(record, keys.start, keys.end)
    if blocked.height:  # defence in depth: never serve marts a blocking check failed on
        raise dg.Failure(description="blocking checks failed for this window; not publishing: "
                                     + ", ".join(sorted(set(blocked["check_name"].to_list()))))
    result = publish(cx.root() / "warehouse.duckdb", cx.root() / "serving", as_of=keys.end, health=record)
    warnings = window.filter(window["status"] == "warn")
    if warnings.height:
        context.log.warning("published with %d warnings: %s", warnings.height,
                            ", ".join(sorted(set(warnings["check_name"].to_list()))))
    return dg.MaterializeResult(metadata={
        "as_of": keys.end, "health": health.summary_line(window), "warnings": warnings.height,
        "tables": len(result.tables), "rows": sum(result.tables.values()),
        "database": dg.MetadataValue.path(str(result.database)),
        "parquet": dg.MetadataValue.path(str(result.parquet.resolve())),
        # what the publish wrote (orchestration/publish.py): every table into a new file, and why, or only
        # the changed tables (updated in place where few of their rows changed); and where its time went
        **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in result.summary().items()},
    })
