"""Run-failure alerts: a JSON line in ``$CX_DATA_DIR/alerts.log`` and, when ``CX_ALERT_WEBHOOK`` is
set, a POST of the same JSON (off by default)."""

import json
import os
import urllib.request

import dagster as dg

from ingestion.faults import crashpoint

from .resources import CxData


def record_alert(cx: CxData, alert: dict) -> None:
    crashpoint("alert.before_record")
    path = cx.root() / "alerts.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(alert, sort_keys=True) + "\n")
    crashpoint("alert.before_webhook")
    url = os.environ.get("CX_ALERT_WEBHOOK")
    if url:
        req = urllib.request.Request(url, data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - operator-configured URL
            pass


@dg.run_failure_sensor(name="alert_on_run_failure", description="Record every failed run (and post it to "
                       "CX_ALERT_WEBHOOK when set).", default_status=dg.DefaultSensorStatus.RUNNING)
def alert_on_run_failure(context: dg.RunFailureSensorContext, cx: CxData) -> None:
    run = context.dagster_run
    record_alert(cx, {"run_id": run.run_id, "job": run.job_name, "partition": run.tags.get("dagster/partition"),
                      "message": context.failure_event.message})
