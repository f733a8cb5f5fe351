"""Run-failure alerts: a JSON line in ``$CX_DATA_DIR/alerts.log`` and, when ``CX_ALERT_WEBHOOK`` is
set, a POST of the same JSON (off by default).

A webhook URL usually carries its credential (``https://hooks.example.com/services/T0/B0/<token>``):
it is never written to a log, an error or Dagster metadata; a failed POST names only the URL's
scheme and host (``redact``).
"""

import json
import urllib.parse
import urllib.request

import dagster as dg

from ingestion import settings
from ingestion.faults import crashpoint

from .resources import CxData


def record_alert(cx: CxData, alert: dict) -> None:
    crashpoint("alert.before_record")
    path = cx.root() / "alerts.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(alert, sort_keys=True) + "\n")
    crashpoint("alert.before_webhook")
    url = settings.current().alert_webhook
    if url:
        post_alert(url, alert)


class AlertWebhookError(Exception):
    """The webhook POST failed; the message names the host only, never the full URL."""


def redact(url: str) -> str:
    """``scheme://host/…``: enough to find the webhook, nothing of its path, query or credentials."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        return f"{parts.scheme or '?'}://{host}{':' + str(parts.port) if parts.port else ''}/…"
    except ValueError:
        return "<unparseable URL>"


def post_alert(url: str, alert: dict) -> None:
    try:
        req = urllib.request.Request(url, data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - operator-configured URL
            pass
    except Exception as exc:  # noqa: BLE001 - any failure, reworded without the URL
        reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or type(exc).__name__
        if isinstance(reason, str) and url in reason:
            reason = reason.replace(url, redact(url))
        raise AlertWebhookError(f"alert webhook {redact(url)} failed: {reason} (the alert is in alerts.log)") from None


@dg.run_failure_sensor(name="alert_on_run_failure", description="Record every failed run (and post it to "
                       "CX_ALERT_WEBHOOK when set).", default_status=dg.DefaultSensorStatus.RUNNING)
def alert_on_run_failure(context: dg.RunFailureSensorContext, cx: CxData) -> None:
    run = context.dagster_run
    record_alert(cx, {"run_id": run.run_id, "job": run.job_name, "partition": run.tags.get("dagster/partition"),
                      "message": context.failure_event.message})
