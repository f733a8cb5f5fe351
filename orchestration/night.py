"""The nightly job's work without Dagster: each step's framework-free part, in one place.

The assets (``orchestration/assets/``, ``orchestration/checks.py``) wrap these in Dagster's events; the bare
benchmark night (``benchmarks/stage.py``, ``nightly_bare_full``) calls the same functions in the job's order,
so Dagster's own cost is the difference between the two. No Dagster import here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from expectations import anomaly, gate, health, registry
from expectations.drops import BASELINE_CHECKS, AuditHistory, drop_counts, drop_health, is_missing, rejudge_later
from ingestion.load import DropLoad, Zones
from ingestion.manifest import DropRefused
from ingestion.pool import drop_size, idle_workers, load_drops
from orchestration.warehouse import dbt_var


# ---- ingestion: one system's drop of one business date ------------------------------------------------------
def audit_history(zones: Zones, system: str, days: list[dt.date], cfg: dict) -> AuditHistory:
    """The load audit a run landing ``days`` (in date order) judges with, read once: the dates whose
    drops are the trailing history of its first date, through those a drop of its last date is in
    the history of."""
    history_days = int(cfg["anomaly"]["history_days"])
    return AuditHistory(zones, system, days[0] - dt.timedelta(days=history_days),
                        days[-1] + dt.timedelta(days=history_days))


@dataclass
class Landing:
    """What landing one drop did: the load (None: refused or not delivered), its health rows, the refusal of a
    broken drop or the reason one is not delivered yet, and the later dates judged again because of it."""

    load: DropLoad | None
    rows: list[health.HealthRow]
    refused: DropRefused | None = None
    missing: DropRefused | None = None
    rejudged: dict[dt.date, list[health.HealthRow]] = field(default_factory=dict)


def land(root: Path, zones: Zones, system: str, day: dt.date, cfg: dict | None = None,
         audit: AuditHistory | None = None, run_id: str | None = None) -> Landing:
    """Land ``system``'s drop of ``day`` (``load_drop``, in this process) and write its health rows; a refused
    drop is recorded and returned, not raised. A drop that changed what the later drops' baselines hold
    (delivered late, corrected) has the later dates judged again. ``audit``: the system's load audit held in
    memory by the run (:func:`audit_history`), kept current by ``load_drop``; without it each judgment reads it
    from disk. :func:`land_range` for one date."""
    return next(land_range(root, zones, system, [day], cfg, audit, run_id=run_id))


# the drops of a range worth starting worker processes for: below this many bytes in all, one process lands them
# (a worker's start, importing polars, is 1-2.5 s of CPU; a drop lands at roughly 20-40 MB/s of CPU). Workers
# already started (an earlier system's or range's, kept by ``ingestion.pool``) land any range: they cost no start
POOL_MIN_BYTES = 64 * 2**20


def drop_bytes(zones: Zones, system: str, days: list[dt.date]) -> int:
    """The bytes of ``system``'s drops of ``days`` in the landing zone (what a range has to land)."""
    return sum(drop_size(zones, system, day) for day in days)


def land_range(root: Path, zones: Zones, system: str, days: list[dt.date], cfg: dict | None = None,
               audit: AuditHistory | None = None, run_id: str | None = None,
               workers: int = 1) -> Iterator[Landing]:
    """Land each date of ``days`` (consecutive, in date order) and write its health rows, as a ranged run lands
    them: the drops landed by ``workers`` processes at once (``ingestion.pool.load_drops``; one process for a
    single date, or when the range's drops hold less than ``POOL_MIN_BYTES`` and no worker is started yet),
    each judged here in date order against the dates before it. The later dates a drop's change re-judges
    are only those after the range (the range's own are judged as they come). Yields each date's landing
    once it is judged."""
    cfg = cfg or anomaly.load_config()
    lands_until = days[-1] if len(days) > 1 else None
    # what each date contributed to the baselines before this run: read before any drop of the range lands
    before = {day: drop_counts(zones, system, day, audit) for day in days}
    if workers > 1 and idle_workers() < workers and drop_bytes(zones, system, days) < POOL_MIN_BYTES:
        workers = 1  # starting the workers (importing polars) would cost more than they save
    for day, outcome in load_drops(zones, system, days, on_audit=audit.record if audit is not None else None,
                                   workers=workers):
        yield _judge(root, zones, system, day, cfg, audit, lands_until, run_id, before[day], outcome)


def _judge(root: Path, zones: Zones, system: str, day: dt.date, cfg: dict, audit: AuditHistory | None,
           lands_until: dt.date | None, run_id: str | None, before: list[tuple],
           outcome: DropLoad | DropRefused) -> Landing:
    """The health rows of one landed (or refused) drop, written to the record; the later dates judged again
    when it changed what their baselines hold (``before``: its contribution before it landed)."""
    source = f"ingest_{system}"
    if isinstance(outcome, DropRefused):
        missing = is_missing(outcome.problem)
        rows = drop_health(zones, system, day, None, error=str(outcome), missing=missing, cfg=cfg)
        health.write(root, [day], source, rows, run_id=run_id)
        return Landing(None, rows, missing=outcome) if missing else Landing(None, rows, refused=outcome)
    rows = drop_health(zones, system, day, outcome, cfg=cfg, audit=audit)
    health.write(root, [day], source, rows, run_id=run_id)
    out = Landing(outcome, rows)
    history_days = int(cfg["anomaly"]["history_days"])
    if (lands_until is None or day + dt.timedelta(days=history_days) > lands_until) \
            and drop_counts(zones, system, day, audit) != before:
        out.rejudged = rejudge_later(zones, system, day, cfg=cfg, audit=audit, after=lands_until)
        for other, other_rows in out.rejudged.items():
            health.replace_checks(root, other, source, BASELINE_CHECKS, other_rows, run_id=run_id)
    return out


# ---- dbt: the tests of a build in the data-health record ----------------------------------------------
PASSED = ("pass", "success")
# a model's tests of one kind over several columns (macros/tests/generic_tests.sql): what a failure of each found
COLUMNS_TESTS = {"not_null_columns": "null values", "accepted_values_columns": "values not accepted",
                 "in_range_columns": "values out of range"}


def dbt_tests(run_results: dict, manifest: dict) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """The data tests of a dbt invocation by (generic test, model): (name, status, message) of each."""
    groups: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for r in run_results.get("results", []):
        node = manifest["nodes"].get(r["unique_id"]) or {}
        if node.get("resource_type") != "test":
            continue
        name = node.get("name", r["unique_id"])
        meta = node.get("test_metadata") or {}
        kind = registry.for_dbt_test(name, meta.get("name")).name
        model = (node.get("attached_node") or (node.get("depends_on", {}).get("nodes") or ["?"])[0]).split(".")[-1]
        message = r.get("message") or ""
        kwargs = meta.get("kwargs") or {}
        if str(r.get("status")) not in PASSED:
            # one test over several columns or invariants of a model: say which it read; its rows say which failed
            if meta.get("name") in COLUMNS_TESTS and kwargs.get("columns"):
                message += (f" ({COLUMNS_TESTS[meta['name']]} among {', '.join(kwargs['columns'])}; "
                            f"which: dbt show --select {name})")
            elif meta.get("name") == "expressions_are_true" and kwargs.get("expressions"):
                message += (f" (rows breaking one of {len(kwargs['expressions'])} invariants: "
                            f"{'; '.join(kwargs['expressions'])}; which: dbt show --select {name})")
        groups[(kind, model)].append((name, str(r.get("status")), message))
    return groups


def dbt_test_health(groups: dict[tuple[str, str], list[tuple[str, str, str]]],
                    days: list[dt.date]) -> list[health.HealthRow]:
    """One row per date x generic test x model of ``groups`` (:func:`dbt_tests`): failed when any instance
    failed (names them)."""
    rows = []
    for (kind, model), tests in sorted(groups.items()):
        bad = [(name, status, msg) for name, status, msg in tests if status not in PASSED]
        message = "; ".join(f"{name}: {status} {msg}".strip() for name, status, msg in bad[:10]) or None
        for day in days:
            rows.append(health.judged(day, kind, model, not bad, subject=f"{len(tests)} dbt tests",
                                      observed_value=len(bad), expected_range="0 failing tests", message=message))
    return rows


def record_dbt_tests(root: Path, days: list[dt.date], run_results: dict, manifest: dict, run_id: str | None = None,
                     source: str = "dbt") -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """Write a run's tests to the data-health record (``source``: ``dbt`` for a build's, ``dbt_verify`` for the
    verification's, orchestration/verify.py); the groups written."""
    groups = dbt_tests(run_results, manifest)
    health.write(root, days, source, dbt_test_health(groups, days), run_id=run_id)
    return groups


# the data-health record's source of the verification's rows (orchestration/verify.py: every dbt test over every row)
VERIFY_SOURCE = "dbt_verify"


def supersede_verification(root: Path, days: list[dt.date]) -> list[dt.date]:
    """After a build whose dbt tests all passed for ``days``: the verification's failed rows of those dates are
    removed (its passed rows stay); the dates that had some. That build ran every test the verification found
    failing over every row it could fail on: the failing models' audits were dropped (their tests read every row
    until they pass: dbt_project/macros/night_tests.sql), and the other tests always read every row. Without this,
    a date's stale verification failure would block its publish after the row was fixed and the night rebuilt."""
    return [day for day in days if health.drop_unpassed(root, day, VERIFY_SOURCE)]


# ---- the gate --------------------------------------------------------------------------------------------
@dataclass
class GateRun:
    result: gate.GateResult
    window: list[health.HealthRow]  # the rows of the judged dates [start, end)
    rejudge: list[dt.date] = field(default_factory=list)  # earlier dates whose baseline warnings were judged again


def judge(root: Path, start: dt.date, end: dt.date, run_id: str | None = None) -> GateRun:
    """The gate over the business dates [start, end): GX suites and SQL checks (``gate.evaluate``), its rows in
    the data-health record, and the baseline warnings of the dates late records can still change (the KPI
    mart's lookback) judged again."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    rejudge = health.judged_dates(root, "gate", start - dt.timedelta(days=int(dbt_var("kpi_lookback_days"))), start)
    result = gate.evaluate(root / "warehouse.duckdb", start, end, root / "docs" / "gx",
                           reporting_currency=dbt_var("reporting_currency"), rejudge=rejudge)
    window = [r for r in result.rows if r.business_date >= start]
    health.write(root, days, "gate", window, run_id=run_id)
    earlier: dict[dt.date, list[health.HealthRow]] = defaultdict(list)
    for row in result.rows:
        if row.business_date < start:
            earlier[row.business_date].append(row)
    for day in rejudge:
        health.replace_checks(root, day, "gate", gate.BASELINE_CHECKS, earlier[day], run_id=run_id)
    return GateRun(result, window, rejudge)


# ---- the analyses ----------------------------------------------------------------------------------------
def analytics_health(outputs: list, days: list[dt.date], as_of: dt.date) -> list[health.HealthRow]:
    """The declared-schema rows of the analyses' outputs (``analytics.run.Output``): a range (a backfill) is
    judged once, as of its last day, and each day's row says as of which day."""
    check = registry.check("declared_schema")
    return [health.judged(day, check.name, out.table, not out.problems,
                          subject=f"{out.frame.height} rows as of {as_of}",
                          observed_value=len(out.problems), expected_range="0 problems",
                          message="; ".join(out.problems) or None) for out in outputs for day in days]


# ---- the publish -----------------------------------------------------------------------------------------
def publish_window(record, start: str, end: str):  # noqa: ANN001, ANN201 - polars frames
    """The health rows of the business dates [start, end] (inclusive: Dagster's partition key range) and its
    blocking failures: a publish never serves marts a blocking check failed on."""
    window = record.filter(record["business_date"].cast(str).is_between(start, end))
    return window, health.blocking_failures(window)
