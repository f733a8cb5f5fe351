"""Named crash points: a test-only hook that makes the process kill itself (SIGKILL) at a named point.

``CX_CRASH_AT=<point>`` (one name, or several separated by commas; read through
``ingestion/settings.py``) makes :func:`crashpoint` kill the running process the first time it
reaches that point: no ``finally``, no ``atexit``, no flush, as a power cut or the out-of-memory
killer would. Unset (always, outside the reliability tests), a crash point costs one look-up in the
environment (``settings.crash_at``). Every point is listed in :data:`POINTS` (a test checks that each
one is reached by a nightly run); tests/reliability/ kills a nightly run at each.
"""

from __future__ import annotations

import os
import signal

from . import settings

CRASH_ENV = "CX_CRASH_AT"

POINTS = {
    # ingestion (ingestion/load.py)
    "ingest.before_load": "a system's drop is about to be read",
    "ingest.inside_swap": "a raw/quarantine Parquet file is written to its temporary name, not yet renamed",
    "ingest.after_swap": "a raw file is renamed over the previous version, the folder not yet fsynced",
    "ingest.between_entities": "one entity of a drop is in the raw zone, the next one not yet",
    "ingest.before_audit": "every entity is in the raw zone, the load audit not yet written",
    "ingest.after_audit": "a system's drop is fully loaded and audited",
    # dbt (orchestration/assets/warehouse.py)
    "dbt.before_build": "the dbt step starts, dbt not yet launched",
    "dbt.mid_build": "dbt is building (its subprocess has reported a few results)",
    "dbt.after_build": "dbt finished, its tests not yet in the health record",
    "dbt.health_written": "dbt's tests are in the health record, the step not yet ended",
    # checks (expectations/gate.py, orchestration/checks.py)
    "gate.start": "the quality gate starts",
    "gate.after_suites": "the GX suites ran, the SQL checks not yet",
    "health.inside_swap": "a health record file is written to its temporary name, not yet renamed",
    "gate.after_health": "the gate's health record is written, its result not yet reported",
    # publish (orchestration/publish.py)
    "publish.start": "the publish holds its lock, nothing staged yet",
    "publish.mid_copy": "some marts are copied to the temporary database",
    "publish.before_swap": "the temporary database is complete, not yet renamed over the served one",
    "publish.after_db_swap": "the served database is new, the Parquet link still points to the old version",
    "publish.inside_link_swap": "the new Parquet link exists under its temporary name",
    "publish.before_prune": "both copies are served, old Parquet versions not yet pruned",
    "publish_health.before_swap": "a blocked night's health record is staged, not yet served",
    # the alert (orchestration/alerts.py)
    "alert.before_record": "a failed run's alert is about to be written",
    "alert.before_webhook": "the alert is in alerts.log, the webhook not yet called",
}


def crashpoint(name: str) -> None:
    """Kill this process with SIGKILL when ``CX_CRASH_AT`` names ``name`` (test-only hook)."""
    wanted = settings.crash_at()
    if not wanted:
        return
    if name not in POINTS:
        raise KeyError(f"crashpoint {name!r} is not declared in ingestion/faults.py POINTS")
    if name in wanted:
        os.kill(os.getpid(), signal.SIGKILL)
