"""The weekly verification: every dbt data test over every row (``verify`` job, ``verify_schedule``, ``cxw verify``).

A night's dbt tests of the incremental facts and staging models read only the rows the night wrote
(dbt_project/macros/night_tests.sql; docs/warehouse.md, "Night tests"). That is exact as long as dbt is the only
writer of those tables. A row changed any other way (by hand, a restore, a tool writing to the warehouse) is not
seen by them, nor by the Great Expectations gate, which reads the night's window. This job runs ``dbt test``
without a partition window, so every test reads every row, as of the date the warehouse was last built for (a
KPI's ``is_final`` is judged against it: a plain ``dbt test``, as of the project's default, fails those tests on a
warehouse the nightly built), and:

* records the tests in the data-health record, as source ``dbt_verify``, on that business date (or the served
  copy's), and serves that record at once (``publish_health``: the marts BI reads do not move), so BI sees a
  failure beside the numbers it concerns;
* on a failure, dbt itself (``cx_night_tests_verify``, on-run-end) drops the audit of each model whose test
  failed: every following night then tests every row of that model, fails, and publishes nothing new until the
  row is fixed. The run fails naming the tests (and ``alert_on_run_failure`` says so). The failed rows block a
  publish of their date until a build of that date passes its dbt tests, which then re-ran each failing test over
  every row it could fail on (``night.supersede_verification``).

Like every writer it runs in the ``duckdb_writer`` pool and under the data directory's writer lock.
"""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from expectations import health
from orchestration.night import PASSED, VERIFY_SOURCE, record_dbt_tests
from orchestration.publish import publish_health, served_as_of
from orchestration.recovery import child_tags
from orchestration.warehouse import (
    NIGHTLY_ARGS,
    StreamedResults,
    built_as_of,
    dbt_environment,
    engine_target,
    resource_advice,
    result_line,
    target_path,
    window_env,
)

from .assets.warehouse import DUCKDB_POOL, dbt_project
from .resources import CxData

VERIFY_ARGS = ["test", *NIGHTLY_ARGS]  # data tests only (unit tests check the SQL: CI runs them), no artifacts


def verified_as_of(root: Path, target: str | None) -> str | None:
    """The as_of to test the warehouse for: the one its last build recorded (the nightly, a backfill, `cxw build`);
    without a record (a warehouse built before builds recorded it), the served copy's; None: the project's
    default (a plain `dbt build`'s)."""
    recorded, as_of = built_as_of(root, target)
    if recorded:
        return as_of
    served = served_as_of(root / "serving")
    return served.isoformat() if served else None


@dg.op(name="verify_warehouse", pool=DUCKDB_POOL,
       description="Run every dbt data test over every row of the warehouse (no partition window), record them in "
                   "the data-health record (source dbt_verify) and serve it; fail naming the failing tests.")
def verify_warehouse(context: dg.OpExecutionContext, dbt: DbtCliResource, cx: CxData) -> dict:
    root = cx.root()
    target = engine_target()
    as_of = verified_as_of(root, target)
    context.log.info(f"testing every row of the warehouse as of {as_of or 'the project default'}")
    # no partition window (dbt's tests read every row), the as_of of the build (a KPI's is_final holds for it)
    window, _ = window_env({"as_of": as_of} if as_of else None)
    with dbt_environment(root, target, window):
        invocation = dbt.cli([*VERIFY_ARGS, *(["--target", target] if target else [])], raise_on_error=False,
                             manifest=dbt_project.manifest_path, target_path=target_path(root, target))
    context.instance.add_run_tags(context.run.run_id, child_tags(invocation.process.pid))
    streamed = StreamedResults()
    for raw in invocation.stream_raw_events():
        streamed.add(raw.raw_event)
    run_results = streamed.as_dict()
    manifest = json.loads(dbt_project.manifest_path.read_text(encoding="utf-8"))
    tests = [r for r in run_results["results"] if r["unique_id"].startswith("test.")]
    # a warning is news, not a failure (a test of severity warn: a surprising number, published with its flag)
    warned = [result_line(r) for r in tests if r["status"] == "warn"]
    failed = [result_line(r) for r in tests if r["status"] not in (*PASSED, "warn")]
    day = dt.date.fromisoformat(as_of) if as_of else served_as_of(root / "serving")
    if day is not None:
        record_dbt_tests(root, [day], run_results, manifest, run_id=context.run.run_id, source=VERIFY_SOURCE)
        publish_health(root / "serving", health.read(root))
        context.log.info(f"recorded in the data-health record of {day} (source {VERIFY_SOURCE}) and served")
    else:
        context.log.warning("no business date to record the tests for (nothing built for a date, nothing published)")
    summary = {"tests": len(tests), "passed": len(tests) - len(failed) - len(warned), "warned": warned,
               "failed": len(failed), "as_of": as_of, "recorded_for": day.isoformat() if day else None}
    if not invocation.is_successful():
        if not failed:  # dbt stopped before a test ended (a missing warehouse, the disk, a crash of dbt)
            failed.append(str(invocation.get_error()))
        said = "; ".join(failed[:10])
        advice = resource_advice(said, root)
        raise dg.Failure(description=f"verification failed: {len(failed)} of {len(tests)} dbt tests over every row "
                                     f"did not pass: {said}" + (f". {advice}" if advice else "")
                                     + ". The next nights test every row of these models until they pass",
                         metadata={"failed": "\n".join(failed), "warned": "\n".join(warned), "tests": len(tests)})
    context.log.info(f"no dbt test failed over every row: {len(tests)} tests, {len(warned)} warned"
                     + "".join(f"\n  warned: {w}" for w in warned))
    return summary


@dg.job(name="verify", description="Every dbt data test over every row (no window): what a night's tests, which "
                                   "read the rows the night wrote, cannot see. Weekly (verify_schedule).")
def verify_job() -> None:
    verify_warehouse()
