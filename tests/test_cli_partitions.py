"""`cxw` refuses business dates outside the daily partitions with one clear usage error.

The partitions start at CX_PARTITIONS_START (default 2024-01-01) and end with the last day that is
over; a date outside them is a usage error (exit 2) naming the range, never a Dagster traceback.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestration.cli import main
from orchestration.partitions import daily_partitions

FIRST = daily_partitions.get_first_partition_key()
BEFORE = (dt.date.fromisoformat(FIRST) - dt.timedelta(days=1)).isoformat()


def _invoke(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202 - click Result
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # an ephemeral instance, should anything run
    return CliRunner().invoke(main, args)


def _assert_refused(result, day: str) -> None:  # noqa: ANN001 - click Result
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "DagsterUnknownPartitionError" not in result.output
    last = daily_partitions.get_last_partition_key()
    assert (f"{day} is not a business-date partition: partitions run from {FIRST} to {last}"
            in result.output), result.output
    assert "set CX_PARTITIONS_START for earlier history" in result.output


@pytest.mark.parametrize("args", [
    ["ingest", "--date", BEFORE],
    ["nightly", "--date", BEFORE],
    ["backfill", "--start", BEFORE, "--end", BEFORE],
    ["publish", "--date", BEFORE],
], ids=["ingest", "nightly", "backfill", "publish"])
def test_a_date_before_the_first_partition_is_a_usage_error(args: list[str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _assert_refused(_invoke(args, tmp_path, monkeypatch), BEFORE)


def test_a_backfill_reaching_before_the_first_partition_runs_nothing(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    start = (dt.date.fromisoformat(FIRST) - dt.timedelta(days=2)).isoformat()
    end = (dt.date.fromisoformat(FIRST) + dt.timedelta(days=2)).isoformat()
    result = _invoke(["backfill", "--start", start, "--end", end], tmp_path, monkeypatch)
    _assert_refused(result, start)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.parquet"))


def test_the_message_is_the_same_for_every_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def error_line(args: list[str]) -> str:
        return next(line for line in _invoke(args, tmp_path, monkeypatch).output.splitlines()
                    if line.startswith("Error:"))

    ingest = error_line(["ingest", "--date", BEFORE])
    assert error_line(["nightly", "--date", BEFORE]) == ingest
    assert error_line(["backfill", "--start", BEFORE, "--end", BEFORE]) == ingest
    assert error_line(["publish", "--date", BEFORE]) == ingest


def test_a_date_not_over_yet_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    future = (dt.date.fromisoformat(daily_partitions.get_last_partition_key()) + dt.timedelta(days=2)).isoformat()
    _assert_refused(_invoke(["nightly", "--date", future], tmp_path, monkeypatch), future)
