"""The dbt warehouse as Dagster assets (dagster-dbt).

Two ``@dbt_assets`` share the business-date partitions and pass the partition to dbt as vars:

* ``cx_dbt_incremental``: the incremental KPI mart, built for the partition window
  (``min_date``/``max_date``, half-open) with ``as_of`` = the window's last business date;
* ``cx_dbt_models``: every other model, rebuilt as of the same ``as_of`` so a backfill of an old
  window gives that window's numbers.

Both use a single-run backfill policy (one dbt call over a whole backfill range) and the
``duckdb_writer`` pool, so only one process writes the DuckDB file at a time. dbt tests surface
as Dagster asset checks; sources map to the ingestion assets, so it is one lineage graph.
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from orchestration.warehouse import DBT_PROJECT, NIGHTLY_EXCLUDE, ensure_manifest, window_vars, with_venv_dbt

from ..partitions import daily_partitions
from ..resources import CxData

DUCKDB_POOL = "duckdb_writer"
INCREMENTAL_SELECT = "config.materialized:incremental,path:models/marts"
OWNERS = {"staging": ["team:analytics-engineering"], "intermediate": ["team:analytics-engineering"],
          "marts": ["team:cx-analytics"]}

# its preparer runs the venv's dbt (orchestration.warehouse.DBT_EXECUTABLE), not a `dbt` looked up on PATH
dbt_project = with_venv_dbt(DbtProject(project_dir=DBT_PROJECT, profiles_dir=DBT_PROJECT))
dbt_project.prepare_if_dev()  # under `dagster dev`: re-parse so model edits show up
ensure_manifest(dbt_project.manifest_path)  # elsewhere: `make install` / CI prepared it (parsed here if not)


class CxDbtTranslator(DagsterDbtTranslator):
    """Groups by layer (staging / intermediate / marts / restricted), owners per layer."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        if props.get("resource_type") != "model":
            return spec
        fqn = props.get("fqn", [])
        layer = fqn[1] if len(fqn) > 2 else "marts"
        group = "restricted" if "restricted" in fqn else layer
        return spec.replace_attributes(group_name=group, owners=OWNERS.get(layer, ["team:cx-analytics"]))


translator = CxDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def partition_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    """dbt vars of the run's partition window: half-open [min_date, max_date), as_of = last day."""
    window = context.partition_time_window
    return window_vars(window.start.date(), window.end.date())


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, cx: CxData) -> Iterator:
    # dbt's profile reads CX_DATA_DIR: point it at the same data directory as the other assets
    os.environ["CX_DATA_DIR"] = str(cx.root())
    # unit tests check the SQL, not the data: CI runs them (`make test`); nightly runs skip them
    args = ["build", "--vars", json.dumps(partition_vars(context)), *NIGHTLY_EXCLUDE]
    yield from dbt.cli(args, context=context).stream()


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, select=INCREMENTAL_SELECT,
            dagster_dbt_translator=translator, partitions_def=daily_partitions,
            backfill_policy=dg.BackfillPolicy.single_run(), pool=DUCKDB_POOL, name="cx_dbt_incremental")
def cx_dbt_incremental(context: dg.AssetExecutionContext, dbt: DbtCliResource, cx: CxData) -> Iterator:
    yield from _build(context, dbt, cx)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, exclude=INCREMENTAL_SELECT,
            dagster_dbt_translator=translator, partitions_def=daily_partitions,
            backfill_policy=dg.BackfillPolicy.single_run(), pool=DUCKDB_POOL, name="cx_dbt_models")
def cx_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, cx: CxData) -> Iterator:
    yield from _build(context, dbt, cx)

