"""A night's node results from dbt's structured log (orchestration/warehouse.py node_result, node_message): dbt writes
no run_results.json at night (NIGHTLY_ARGS), so the Dagster step reads each node's end and dbt's words about a failure
from the events it streams. The events below have the shapes dbt-core 1.11 gives them (trimmed to the fields read)."""

from __future__ import annotations

from pathlib import Path

from orchestration.warehouse import (
    ARTIFACTS,
    NIGHTLY_ARGS,
    StreamedResults,
    clear_artifacts,
    node_message,
    node_result,
    node_results,
    result_line,
)

TEST = "test.cx_warehouse.unique_fct_orders_order_key.1a2b"
MODEL = "model.cx_warehouse.fct_orders"


def _event(name: str, data: dict, unique_id: str | None = None, node_status: str | None = None) -> dict:
    if unique_id is not None:
        data = {**data, "node_info": {"unique_id": unique_id, "node_status": node_status, "resource_type": "x"}}
    return {"info": {"name": name, "level": "info", "invocation_id": "i-1", "msg": "..."}, "data": data}


def test_a_tests_result_line_gives_its_status_and_failures() -> None:
    event = _event("LogTestResult", {"status": "fail", "num_failures": 3, "name": "unique_fct_orders_order_key"},
                   TEST, "fail")
    assert node_result(event) == {"unique_id": TEST, "status": "fail", "message": None, "failures": 3}


def test_a_models_result_line_gives_the_nodes_status_not_the_printed_one() -> None:
    """A model's result line prints dbt's adapter message as its `status` ("CREATE TABLE (12)", "OK"); the node's
    status is node_info's."""
    event = _event("LogModelResult", {"status": "CREATE TABLE (12)", "execution_time": 0.2}, MODEL, "success")
    assert node_result(event) == {"unique_id": MODEL, "status": "success", "message": None, "failures": None}
    error = _event("LogModelResult", {"status": "error", "execution_time": 0.2}, MODEL, "error")
    assert node_result(error)["status"] == "error"


def test_a_node_skipped_for_an_upstream_failure_is_a_skipped_result() -> None:
    """Its SKIP line (SkippingDetails) counts, as its row of run_results.json did: a test that could not run is
    not a test that passed."""
    event = _event("SkippingDetails", {"resource_type": "test", "node_name": "unique_fct_orders_order_key"}, TEST,
                   "skipped")
    assert node_result(event) == {"unique_id": TEST, "status": "skipped", "message": None, "failures": None}


def test_node_finished_of_the_debug_log_is_not_read() -> None:
    """dbt logs NodeFinished at debug level: a Dagster step never streams it (the result line is the node's end)."""
    event = _event("NodeFinished", {"run_result": {"status": "fail", "message": "Got 3 results, configured to fail "
                                                   "if != 0", "num_failures": 3}}, TEST, "fail")
    assert node_result(event) is None


def test_events_that_are_not_a_nodes_end_give_no_result() -> None:
    assert node_result(_event("LogStartLine", {"description": "x", "index": 1}, TEST, "None")) is None
    assert node_result(_event("StatsLine", {"stats": {}})) is None
    assert node_result(_event("LogTestResult", {"status": "pass"})) is None  # no node
    assert node_result(_event("LogTestResult", {"status": "pass"}, TEST, None)) is None  # no status
    assert node_result(_event("NodeFinished", {"run_result": {}}, TEST, "pass")) is None
    assert node_result({"info": {}, "data": {}}) is None


def test_the_end_of_run_message_of_a_failed_node_is_its_message() -> None:
    failed = _event("RunResultError", {"msg": "Got 3 results, configured to fail if != 0"}, TEST, "fail")
    assert node_message(failed) == (TEST, "Got 3 results, configured to fail if != 0")
    warned = _event("RunResultWarningMessage", {"msg": "Got 1 result, configured to warn if != 0"}, TEST, "warn")
    assert node_message(warned) == (TEST, "Got 1 result, configured to warn if != 0")


def test_a_streamed_run_gives_each_nodes_result_with_dbts_words_for_it() -> None:
    """StreamedResults (the Dagster step's and the verification's reading of the stream): the result lines, in
    order, each failure with the message dbt says at the run's end; other events ignored."""
    streamed = StreamedResults()
    for event in (_event("LogModelResult", {"status": "OK"}, MODEL, "success"),
                  _event("LogStartLine", {"description": "x", "index": 2}, TEST, "None"),
                  _event("LogTestResult", {"status": "fail", "num_failures": 3}, TEST, "fail"),
                  _event("RunResultError", {"msg": "Got 3 results, configured to fail if != 0"}, TEST, "fail")):
        streamed.add(event)
    assert streamed.as_dict() == {"results": [
        {"unique_id": MODEL, "status": "success", "message": None, "failures": None},
        {"unique_id": TEST, "status": "fail", "message": "Got 3 results, configured to fail if != 0", "failures": 3}]}


def test_a_result_line_names_the_node_its_status_and_the_first_line_of_dbts_words() -> None:
    failed = {"unique_id": TEST, "status": "fail", "message": "Got 3 results, configured to fail if != 0\nmore"}
    assert result_line(failed) == "unique_fct_orders_order_key fail (Got 3 results, configured to fail if != 0)"
    assert result_line(failed, with_message=False) == "unique_fct_orders_order_key fail"
    assert result_line({"unique_id": MODEL, "status": "error", "message": " \n"}) == "fct_orders error"
    assert result_line({"unique_id": MODEL, "status": "error", "message": None}) == "fct_orders error"
    long = {"unique_id": MODEL, "status": "error", "message": "x" * 400}
    assert result_line(long) == f"fct_orders error ({'x' * 300})"


def test_other_messages_are_not_a_nodes() -> None:
    assert node_message(_event("RunResultError", {"msg": "a skipped node's message, at debug level"})) is None
    assert node_message(_event("RunResultError", {"msg": ""}, TEST, "fail")) is None
    assert node_message(_event("RunResultFailure", {"node_name": "x"}, TEST, "fail")) is None
    assert node_message(_event("LogTestResult", {"status": "fail", "msg": "x"}, TEST, "fail")) is None


def test_in_process_results_keep_what_the_night_reads() -> None:
    class Node:
        unique_id = TEST

    class Result:
        node, status, message, failures = Node(), "fail", "Got 2 results, configured to fail if != 0", 2

    assert node_results([Result()]) == {"results": [{"unique_id": TEST, "status": "fail", "failures": 2,
                                                     "message": "Got 2 results, configured to fail if != 0"}]}


def test_a_night_writes_no_dbt_artifacts_and_skips_unit_tests() -> None:
    assert "--no-write-json" in NIGHTLY_ARGS
    assert NIGHTLY_ARGS[NIGHTLY_ARGS.index("--exclude-resource-type") + 1] == "unit_test"


def test_a_night_clears_an_earlier_runs_artifacts_and_keeps_the_parse(tmp_path: Path) -> None:
    for name in (*ARTIFACTS, "partial_parse.msgpack", "cx_last_build.json"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    clear_artifacts(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cx_last_build.json", "partial_parse.msgpack"]
    clear_artifacts(tmp_path)  # nothing left to remove: no error
