"""Reliability scenarios (docs/reliability.md): a night killed at a named point, then the next run.

``make test`` runs a bounded sample (the scenarios not marked ``reliability_full``); ``make
reliability`` runs them all and regenerates RELIABILITY.md from the outcomes recorded here
(``CX_RELIABILITY_REPORT``: the path of the Markdown file to write).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

REPORT_ENV = "CX_RELIABILITY_REPORT"
OUTCOMES: list[dict] = []


def record(**outcome) -> None:  # noqa: ANN003 - one row of RELIABILITY.md
    OUTCOMES.append(outcome)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:  # noqa: ARG001
    path = os.environ.get(REPORT_ENV)
    if not path or not OUTCOMES:
        return
    from tests.reliability.report import write_report

    write_report(Path(path), OUTCOMES, dt.datetime.now(dt.UTC))
    Path(path).with_suffix(".json").write_text(json.dumps(OUTCOMES, indent=1, default=str) + "\n")
