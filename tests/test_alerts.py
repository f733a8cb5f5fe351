"""Run-failure alerts: a JSON line in alerts.log, and a POST to the webhook when one is configured."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from orchestration.alerts import alert_on_run_failure, record_alert
from orchestration.resources import CxData


def test_alert_is_logged_and_posted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    monkeypatch.setenv("CX_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/alerts")
    alert = {"run_id": "r1", "job": "nightly", "partition": "2026-10-12", "message": "check gx_fct_orders failed"}
    record_alert(CxData(data_dir=str(tmp_path)), alert)
    thread.join(timeout=10)
    server.server_close()
    assert received == [alert]
    assert [json.loads(line) for line in (tmp_path / "alerts.log").read_text().splitlines()] == [alert]


def test_failed_run_triggers_the_alert_sensor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CX_ALERT_WEBHOOK", raising=False)

    @dg.op
    def broken() -> None:
        raise RuntimeError("boom")

    @dg.job
    def failing() -> None:
        broken()

    with dg.instance_for_test() as instance:
        result = failing.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(sensor_name="alert_on_run_failure", dagster_instance=instance,
                                                     dagster_run=result.dagster_run, dagster_event=failure,
                                                     resources={"cx": CxData(data_dir=str(tmp_path))})
        alert_on_run_failure(context.for_run_failure())
    (line,) = (tmp_path / "alerts.log").read_text().splitlines()
    assert json.loads(line)["job"] == "failing" and json.loads(line)["run_id"] == result.run_id


def test_nightly_schedule_runs_yesterday_at_two_paris_time() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from orchestration.definitions import defs, nightly_schedule

    assert nightly_schedule.cron_schedule == "0 2 * * *"
    assert nightly_schedule.execution_timezone == "Europe/Paris"
    # 02:00 Paris on 2026-11-22 is still 01:00 UTC: the business date is the Paris day before
    when = dt.datetime(2026, 11, 22, 2, 0, tzinfo=ZoneInfo("Europe/Paris"))
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    request = nightly_schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-11-21"
    assert request.run_key == "nightly-2026-11-21"


TOKEN = "T0SECRET/B0SECRET/xoxb-very-secret-token"


@pytest.mark.parametrize("kind", ["http 500", "connection refused", "malformed"])
def test_a_failing_webhook_never_shows_its_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """The alert stays in alerts.log; the error names the webhook's host, never its path (the credential)."""
    import socket
    import traceback

    from orchestration.alerts import AlertWebhookError

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server, thread = None, None
    if kind == "http 500":
        server = HTTPServer(("127.0.0.1", 0), Hook)
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_port}/services/{TOKEN}"
    elif kind == "connection refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}/services/{TOKEN}"
    else:
        url = f"hxxps//hooks.example.com/services/{TOKEN}"
    monkeypatch.setenv("CX_ALERT_WEBHOOK", url)
    alert = {"run_id": "r2", "job": "nightly", "partition": "2026-10-12", "message": "boom"}
    with pytest.raises(AlertWebhookError) as caught:
        record_alert(CxData(data_dir=str(tmp_path)), alert)
    if thread:
        thread.join(timeout=10)
        server.server_close()
    shown = "".join(traceback.format_exception(caught.value)) + str(caught.value)
    assert "SECRET" not in shown and "xoxb" not in shown
    assert "failed" in str(caught.value)
    if kind != "malformed":
        assert "127.0.0.1" in str(caught.value)
    assert [json.loads(line) for line in (tmp_path / "alerts.log").read_text().splitlines()] == [alert]
