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

from tests.reliability.harness import NIGHT_ONE, NIGHT_TWO, Site, contents, cxw, leftovers, new_site

REPORT_ENV = "CX_RELIABILITY_REPORT"
OUTCOMES: list[dict] = []


def _outcomes_file() -> Path | None:
    path = os.environ.get(REPORT_ENV)
    return Path(path).with_suffix(".outcomes.jsonl") if path else None


def record(**outcome) -> None:  # noqa: ANN003 - one row of RELIABILITY.md
    """Keep a scenario's outcome; with ``CX_RELIABILITY_REPORT`` set, also append it to a JSON-lines
    file beside the report, so outcomes of every pytest-xdist worker reach the report."""
    OUTCOMES.append(outcome)
    if (path := _outcomes_file()) is not None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(outcome, default=str) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """A reliability scenario that fails is a row of the report too (scenarios record their own
    outcome only when they get that far)."""
    report = yield
    if report.failed and item.get_closest_marker("reliability") is not None:
        reason = str(call.excinfo.value).strip().splitlines()[0][:120] if call.excinfo else "failed"
        record(category=getattr(item.module, "CATEGORY", "crash"), scenario=f"{item.name} FAILED ({report.when}): "
               f"{reason}", killed_at="-", next_run_ok=False, equal=False,
               ok=False, rows_lost=None, leftovers=None, next_run_s=None, cleaned=[], detail=reason)
    return report


def pytest_sessionstart(session: pytest.Session) -> None:
    if (path := _outcomes_file()) is not None and not hasattr(session.config, "workerinput"):
        path.unlink(missing_ok=True)  # the controller starts a fresh record


@pytest.fixture(scope="session")
def night_one(tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = new_site(tmp_path_factory.mktemp("reliability"))
    done = cxw(site, "nightly", "--date", NIGHT_ONE.isoformat())
    assert done.returncode == 0, done.stderr
    return site


@pytest.fixture(scope="session")
def reference(night_one: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """What an uninterrupted night two leaves."""
    site = night_one.copy(tmp_path_factory.mktemp("uninterrupted"))
    done = cxw(site, "nightly", "--date", NIGHT_TWO.isoformat())
    assert done.returncode == 0, done.stderr
    assert not leftovers(site)
    return contents(site)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:  # noqa: ARG001
    path, outcomes = os.environ.get(REPORT_ENV), _outcomes_file()
    if not path or outcomes is None or hasattr(session.config, "workerinput") or not outcomes.exists():
        return  # a worker: the controller writes the report from every worker's outcomes
    from tests.reliability.report import write_report

    rows = [json.loads(line) for line in outcomes.read_text(encoding="utf-8").splitlines() if line]
    write_report(Path(path), sorted(rows, key=lambda o: o["scenario"]), dt.datetime.now(dt.UTC))
    outcomes.unlink()
