"""The nightly gate: every GX and SQL check of ``expectations/registry.py`` as one Dagster step.

``quality_gate`` evaluates ``expectations.gate.evaluate`` for the run's business dates (a
partition, or a backfill range), writes its rows to the data-health record, and reports each
check on the mart it guards, with the severity the registry declares:

* a failing *blocking* check (ERROR) stops the publish: the step serves the updated health record
  at once (the marts BI reads stay as they were) and Dagster skips everything downstream;
* a *warning* (WARN) never blocks: the publish runs and serves the numbers with the warning.

Every spec is declared ``blocking`` in Dagster so the publish waits for the gate; Dagster skips
the publish only on ERROR results, which only blocking checks produce.
"""


import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

import dagster as dg

from expectations import health, registry
from ingestion.faults import crashpoint
from orchestration import night
from orchestration.publish import publish_health

from .assets.warehouse import DUCKDB_POOL, model_key
from .resources import CxData

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

GATE_CHECKS = [c for c in registry.CHECKS if c.engine in (registry.GX, registry.SQL)]


def run_window(tags: dict[str, str]) -> tuple[dt.date, dt.date]:
    """[start, end) of the run's business dates, from its partition or partition-range tags."""
    day = tags.get(PARTITION_TAG)
    if day:
        start = end = dt.date.fromisoformat(day)
    elif tags.get(RANGE_START_TAG) and tags.get(RANGE_END_TAG):
        start, end = dt.date.fromisoformat(tags[RANGE_START_TAG]), dt.date.fromisoformat(tags[RANGE_END_TAG])
    else:
        raise dg.Failure("the nightly gate judges business dates: run it with a partition or a partition range")
    return start, end + dt.timedelta(days=1)


def _severity(check: registry.Check) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if check.severity == registry.BLOCKING else dg.AssetCheckSeverity.WARN


SPECS = [dg.AssetCheckSpec(c.name, asset=model_key(c.asset), blocking=True,
                           description=f"[{c.severity}] {c.rule}. Why {c.severity}: {c.why}.")
         for c in GATE_CHECKS]


@dg.multi_asset_check(specs=SPECS, name="quality_gate", pool=DUCKDB_POOL,
                      description="The nightly gate (expectations/gate.py): GX suites over the run window's rows, "
                                  "reconciliations, and warnings against baselines learned from history. Blocking "
                                  "failures stop the publish; warnings are published with the data.")
def quality_gate(context: dg.AssetCheckExecutionContext, cx: CxData) -> Iterator[dg.AssetCheckResult]:
    start, end = run_window(context.run.tags)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    crashpoint("gate.start")
    judged = night.judge(cx.root(), start, end, run_id=context.run.run_id)
    result, window, rejudge = judged.result, judged.window, judged.rejudge
    if rejudge:
        context.log.info("baseline warnings of %d earlier dates (%s .. %s) judged again with what the warehouse "
                         "holds now", len(rejudge), rejudge[0], rejudge[-1])
    crashpoint("gate.after_health")
    by_check: dict[str, list[health.HealthRow]] = defaultdict(list)
    for row in window:
        by_check[row.check_name].append(row)
    if any(r.blocks for r in window):
        publish_health(cx.root() / "serving", health.read(cx.root()))
        context.log.error("blocking checks failed: the marts are not published; data_health is served")
    for check in GATE_CHECKS:
        rows = by_check.get(check.name, [])
        flagged = [r for r in rows if r.status in ("fail", "warn")]
        messages = [r.message for r in flagged if r.message]
        yield dg.AssetCheckResult(
            asset_key=model_key(check.asset), check_name=check.name, passed=not flagged,
            severity=_severity(check),
            description=None if not flagged else f"{check.name} [{check.severity}]: " + " | ".join(messages[:3]),
            metadata={"business_dates": f"{start} .. {days[-1]}", "severity": check.severity,
                      "flagged": len(flagged), "evaluated": len(rows),
                      "no_baseline": sum(r.status == "no_baseline" for r in rows),
                      "messages": "\n".join(messages[:20]) or "none",
                      **({"rows_read": result.rows_read[check.asset]} if check.asset in result.rows_read else {}),
                      "data_docs": dg.MetadataValue.path(str(result.docs))})
