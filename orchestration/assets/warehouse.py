"""The dbt warehouse as Dagster assets (dagster-dbt).

One ``@dbt_assets`` (``cx_dbt``) holds every model, on the business-date partitions: a run passes
its partition window to dbt (``min_date``/``max_date``, half-open, ``as_of`` = the window's
last business date), so the incremental KPI mart recomputes the window and every other model is
rebuilt as of the same ``as_of`` (a backfill of an old window gives that window's numbers). One dbt
call per run (a single-run backfill policy for ranges), in the ``duckdb_writer`` pool so only one
process writes the DuckDB file at a time.

Every run records the dbt tests in the data-health record (``expectations/health.py``, grouped per
generic test and model, severity from ``expectations/registry.py``); they are Dagster asset checks
too only with ``CX_DBT_ASSET_CHECKS`` (three instance events per test: docs/orchestration.md).
When dbt fails (a model errors or a blocking test fails), the
health record is served at once (``publish_health``: the marts BI reads do not move) and the step
fails naming what failed. Sources map to the ingestion assets, so it is one lineage graph.
"""

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)

from expectations import health
from ingestion import contract as C
from ingestion import settings
from ingestion.disk import DiskFull
from ingestion.faults import crashpoint
from ingestion.keys import KeySecretError
from orchestration import spark_mirror
from orchestration.night import PASSED, record_dbt_tests, supersede_verification
from orchestration.publish import publish_health
from orchestration.recovery import child_tags
from orchestration.spark_server import SparkError
from orchestration.warehouse import (
    DBT_PROJECT,
    NIGHTLY_ARGS,
    StreamedResults,
    clear_artifacts,
    dbt_environment,
    engine_target,
    ensure_manifest,
    landed_since_build,
    mark_built,
    record_built_as_of,
    resource_advice,
    result_line,
    spark_read_back,
    target_path,
    window_env,
    window_from,
    window_vars,
    with_venv_dbt,
)

from ..partitions import daily_partitions, window_days
from ..resources import CxData
from .ingestion import raw_key

DUCKDB_POOL = "duckdb_writer"
OWNERS = {"staging": ["team:analytics-engineering"], "intermediate": ["team:analytics-engineering"],
          "marts": ["team:cx-analytics"]}

# its preparer runs the venv's dbt (orchestration.warehouse.DBT_EXECUTABLE), not a `dbt` looked up on PATH
dbt_project = with_venv_dbt(DbtProject(project_dir=DBT_PROJECT, profiles_dir=DBT_PROJECT))
dbt_project.prepare_if_dev()  # under `dagster dev`: re-parse so model edits show up
ensure_manifest(dbt_project.manifest_path)  # elsewhere: `make install` / CI prepared it (parsed here if not)


class CxDbtTranslator(DagsterDbtTranslator):
    """Groups by layer (staging / intermediate / marts / restricted), owners per layer. A dbt source
    table is the raw asset its ingestion lands (``raw_key``), derived from the landing contract: the
    source YAML names no Dagster key, and a table the contract does not know fails loudly."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") != "source":
            return super().get_asset_key(dbt_resource_props)
        system, entity = dbt_resource_props["source_name"], dbt_resource_props["name"]
        named = (dbt_resource_props.get("meta") or {}).get("dagster_asset_key")
        if named:  # a record of ingestion itself (the load audit), written by every ingestion of a system
            return dg.AssetKey(named.split("/"))
        if (system, entity) not in C.ENTITIES:
            raise ValueError(f"dbt source {system}.{entity} is not an entity of ingestion/contract.py")
        return raw_key(system, entity)

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        if props.get("resource_type") != "model":
            return spec
        fqn = props.get("fqn", [])
        layer = fqn[1] if len(fqn) > 2 else "marts"
        group = "restricted" if "restricted" in fqn else layer
        return spec.replace_attributes(group_name=group, owners=OWNERS.get(layer, ["team:cx-analytics"]))


# dbt tests as one Dagster asset check each only when asked (CX_DBT_ASSET_CHECKS): three events per test
# on the instance, 744 of a night's 1,153, about 10 % of the night on SQLite (docs/orchestration.md);
# off, they still run in the same build, fail its step, and each is in the data-health record
translator = CxDbtTranslator(settings=DagsterDbtTranslatorSettings(
    enable_asset_checks=settings.current().dbt_asset_checks))


def partition_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    """dbt vars of the run's partition window: half-open [min_date, max_date), as_of = last day."""
    window = context.partition_time_window
    return window_vars(window.start.date(), window.end.date())


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, cx: CxData) -> Iterator:
    # dbt's YAML reads CX_DATA_DIR and the DuckDB settings: dagster-dbt starts dbt with a copy of this
    # process's environment (its cli() takes no env), so they are set from the settings for the call
    # and restored after it
    # unit tests check the SQL, not the data: CI runs them (`make test`); nightly runs skip them
    days = window_days(context)
    target = engine_target()  # CX_ENGINE, read at run time: DuckDB (the profile's default) or Spark
    started = time.time()
    # drops landed since the last build whose business date is before the window (a late delivery):
    # dbt's window starts at the earliest of them, or the incremental models would not see them
    night = partition_vars(context)
    dbt_window = window_from(night, late := landed_since_build(cx.root(), target))
    if dbt_window["min_date"] != night["min_date"]:
        context.log.info(f"drops of business dates from {late} landed since the last build: dbt's window "
                         f"starts there ({dbt_window['min_date']} .. {dbt_window['max_date']}, as of "
                         f"{dbt_window['as_of']})")
    # the window reaches dbt in its environment (window_env), not as --vars: the partial parse is kept
    window, _ = window_env(dbt_window)
    args = ["build", *NIGHTLY_ARGS]
    if target:
        args += ["--target", target]
    crashpoint("dbt.before_build")
    try:
        # dbt's target folder of this data directory and engine (the one `cxw build` uses), not dagster-dbt's
        # new folder per invocation: dbt keeps its partial parse there from night to night (a new folder
        # starts from the project's parse, made with another profile: dbt parses everything again), and
        # the folders do not pile up (about 17 MB a night). The night writes no dbt artifacts (NIGHTLY_ARGS):
        # an earlier run's are removed, so that none is read as this night's.
        targets = target_path(cx.root(), target)
        clear_artifacts(targets)
        with dbt_environment(cx.root(), target, window):  # the dbt subprocess starts here, with this environment
            invocation = dbt.cli(args, context=context, raise_on_error=False, target_path=targets)
        # named on the run: if this process is killed, dbt builds on; crash recovery kills it (recovery.stop_child)
        context.instance.add_run_tags(context.run.run_id, child_tags(invocation.process.pid))
    except (SparkError, KeySecretError) as exc:
        raise dg.Failure(description=str(exc)) from None
    checks = translator.settings.enable_asset_checks
    # dbt's events as dagster-dbt's stream() turns them into Dagster events, each node's result kept on the way
    # (dbt writes no run_results.json at night: NIGHTLY_ARGS); a dbt that stops early leaves the results it gave
    streamed = StreamedResults()
    i = 0
    for raw in invocation.stream_raw_events():
        streamed.add(raw.raw_event)
        for event in raw.to_default_asset_events(manifest=invocation.manifest,
                                                 dagster_dbt_translator=invocation.dagster_dbt_translator,
                                                 context=context, target_path=invocation.target_path,
                                                 project=invocation.project):
            i += 1
            if i == 6:
                crashpoint("dbt.mid_build")
            if not checks and isinstance(event, dg.AssetObservation):
                continue  # a dbt test's result: recorded below (dbt_test_health), not one Dagster event per test
            yield event
    crashpoint("dbt.after_build")
    run_results = streamed.as_dict()
    manifest = json.loads(dbt_project.manifest_path.read_text())
    unrecorded: DiskFull | None = None
    try:
        groups = record_dbt_tests(cx.root(), days, run_results, manifest, run_id=context.run.run_id)
    except DiskFull as exc:
        if invocation.is_successful():
            raise
        # the disk that stopped dbt stops the record too: dbt's failure is the news, said below beside this
        groups, unrecorded = {}, exc
    if unrecorded is None:
        tests = [status for group in groups.values() for _, status, _ in group]
        passed = sum(status in PASSED for status in tests)
        context.log.info(f"dbt tests: {passed} of {len(tests)} passed; each is in the data-health record "
                         f"({len(groups)} rows per date, per generic test and model)")
    crashpoint("dbt.health_written")
    if not invocation.is_successful():
        # a model's error says why (DuckDB names the file when the disk is full); a test's failure is its count
        failed = [result_line(r, with_message=r.get("status") == "error")
                  for r in run_results.get("results", []) if r.get("status") in ("error", "fail")]
        if not failed:  # no node's result says why (dbt stopped before a node ended: the disk, a crash of dbt)
            failed.append(str(invocation.get_error()))
        if unrecorded is not None:
            failed.append(str(unrecorded))
        try:
            publish_health(cx.root() / "serving", health.read(cx.root()))
        except DiskFull as exc:  # the health record cannot be served either: say so beside dbt's failure
            failed.append(str(exc))
        said = "; ".join(failed[:10])
        advice = resource_advice(said, cx.root())
        raise dg.Failure(description="dbt build failed, nothing published (data_health updated): " + said
                                     + (f". {advice}" if advice else ""),
                         metadata={"failed": "\n".join(failed)})
    mark_built(cx.root(), target, started)
    record_built_as_of(cx.root(), target, night["as_of"])
    if superseded := supersede_verification(cx.root(), days):
        context.log.info(f"the verification's failures recorded for {', '.join(map(str, superseded))} are superseded: "
                         "this build ran their tests over every row, and they passed")
    if target == "spark":
        # what Spark built, readable through warehouse.duckdb for the gates and the publish (docs/spark.md)
        try:
            counts = spark_read_back(cx.root(), night)
        except spark_mirror.MirrorError as exc:
            raise dg.Failure(description=f"dbt built on Spark, but its tables cannot be read back: {exc}") from None
        context.log.info(f"warehouse.duckdb now reads the {len(counts)} tables Spark built")


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=translator,
            partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(), pool=DUCKDB_POOL,
            name="cx_dbt")
def cx_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, cx: CxData) -> Iterator:
    yield from _build(context, dbt, cx)


def model_key(model: str) -> dg.AssetKey:
    return get_asset_key_for_model([cx_dbt], model)


