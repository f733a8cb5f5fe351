"""The Dagster code location of the CX warehouse (``dagster dev -m orchestration.definitions``).

Lineage: landing drops -> raw zone (ingestion assets) -> dbt staging / intermediate / marts
(dbt tests and Great Expectations suites as checks) -> the published copy BI reads.

The definitions are built from the settings (ingestion/settings.py, docs/settings.md) when this
module is loaded: the partitions' first date, the schedule's cron and time zone are those of the
environment of the process that loads them (``dagster dev``, the daemon, ``cxw``); a change takes
effect at the next load (reload the code location).
"""

import datetime as dt

import dagster as dg

from ingestion import settings

from .alerts import alert_on_run_failure
from .assets.analytics import cx_analytics
from .assets.ingestion import ingest_assets
from .assets.serving import published_marts
from .assets.warehouse import cx_dbt, dbt_project
from .checks import quality_gate
from .partitions import daily_partitions
from .resources import CxData, CxDbtCliResource
from .sensors import landing_drop_sensor
from .verify import verify_job
from .warehouse import DBT_EXECUTABLE
from .writer import writer_executor

warehouse_selection = (dg.AssetSelection.assets(cx_dbt, cx_analytics, published_marts)
                       | dg.AssetSelection.checks(quality_gate))

ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.groups("raw"),
    description="Land every system's drop of one business date into the raw zone.",
)
warehouse_job = dg.define_asset_job(
    "warehouse", selection=warehouse_selection,
    description="Build the dbt warehouse for a partition or a range (one dbt call), run the Python analyses "
                "over it, gate it with dbt tests and Great Expectations, and publish it to BI.",
)
publish_job = dg.define_asset_job(
    "publish", selection=dg.AssetSelection.assets(published_marts) | dg.AssetSelection.checks(quality_gate),
    description="Gate the current warehouse for a business date and publish it to BI (no ingest, no dbt).",
)
nightly_job = dg.define_asset_job(
    "nightly", selection=dg.AssetSelection.groups("raw") | warehouse_selection,
    description="The nightly run for one business date: ingest -> dbt -> checks -> publish.",
)


_settings = settings.current()


@dg.schedule(job=nightly_job, cron_schedule=_settings.nightly_cron, execution_timezone=_settings.nightly_tz,
             description="Run the nightly job for yesterday's business date (02:00 Europe/Paris by default).")
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time.date() - dt.timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"nightly-{day}", partition_key=day)


@dg.schedule(job=verify_job, cron_schedule=_settings.verify_cron, execution_timezone=_settings.nightly_tz,
             description="Run every dbt data test over every row, weekly (Sundays 04:00 Europe/Paris by default): "
                         "what a night's tests, which read the rows the night wrote, cannot see "
                         "(orchestration/verify.py).")
def verify_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"verify-{context.scheduled_execution_time.date().isoformat()}")


defs = dg.Definitions(
    assets=[*ingest_assets, cx_dbt, cx_analytics, published_marts],
    asset_checks=[quality_gate],
    jobs=[ingest_job, warehouse_job, publish_job, nightly_job, verify_job],
    schedules=[nightly_schedule, verify_schedule],
    sensors=[landing_drop_sensor, alert_on_run_failure],
    # runs launched by the daemon or the UI hold the data directory's writer lock while they execute,
    # like every `cxw` run: one run writes at a time (orchestration/writer.py)
    executor=writer_executor(),
    resources={"cx": CxData(),
               # the dbt of this interpreter's environment, whether or not the venv is activated; no adapter
               # handle in the step's process (orchestration/resources.py: a SIGTERM during it was swallowed)
               "dbt": CxDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)},
)
__all__ = ["defs", "daily_partitions"]
