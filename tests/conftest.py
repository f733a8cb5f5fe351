"""Shared fixtures: generated drops, made once per test session."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingestion.keys import SECRET_ENV, SECRET_FILE_ENV, new_secret
from simulator import GeneratorConfig, generate

# One key secret for the whole test session (ingestion/keys.py), in a file of its own: every dbt run,
# cxw subprocess and Python check of the session derives the same keys, and the user's own secret
# (~/.config/cx-warehouse) is never touched. pytest-xdist workers inherit the controller's.
if not os.environ.get(SECRET_FILE_ENV) or not Path(os.environ[SECRET_FILE_ENV]).exists():
    _fd, _secret_path = tempfile.mkstemp(prefix="cx-test-key-", suffix=".secret")
    with os.fdopen(_fd, "w") as _fh:
        _fh.write(new_secret())
    os.environ[SECRET_FILE_ENV] = _secret_path
os.environ.pop(SECRET_ENV, None)

# The suite runs as a machine in Europe/Paris, whatever this one's zone: DuckDB's default session zone is the
# machine's (read when a database is opened), and so are Python's local times, in this process and the cxw and
# Dagster subprocesses it starts. Every number the warehouse computes must be the same in any zone (dbt's sessions
# run in UTC: orchestration/dbt_plugin.py; the models name the zone of every date: macros/time.sql), and a zone with
# summer time, ahead of UTC, is where a forgotten one shows: before, two hours across the change to summer time
# came out as three in the facts' hours. tests/test_time_macros.py runs the time macros in five zones.
TEST_TIME_ZONE = "Europe/Paris"
os.environ["TZ"] = TEST_TIME_ZONE
time.tzset()


# the longest files first, longest first: `make test` runs files on two workers (--dist loadfile) in
# collection order, and a long file collected last runs alone at the end while the other worker idles
# (the slowest steps: make test's --durations list). --no-loadscope-reorder keeps this order: without
# it pytest-xdist sends the files with the most tests first (a 95-case file before the Spark step)
FIRST = ("test_spark.py", "test_benchmarks.py", "test_nightly.py", "test_gates.py", "test_crash.py",
         "test_warehouse.py", "test_churn_backtest.py", "test_experience_analytics.py", "test_served_bi.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:  # noqa: ARG001
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: the rest keep their order


@dataclass
class Drops:
    root: Path
    cfg: GeneratorConfig
    truth: dict


def _make(tmp_path_factory: pytest.TempPathFactory, name: str, cfg: GeneratorConfig) -> Drops:
    root = tmp_path_factory.mktemp(name)
    generate(cfg, root)
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    return Drops(root, cfg, truth)


@pytest.fixture(scope="session")
def march_drops(tmp_path_factory: pytest.TempPathFactory) -> Drops:
    """35 nights around the spring-forward night (2026-03-29: local 02:00-02:59 does not exist)."""
    cfg = GeneratorConfig(customers=4_000, days=35, start=dt.date(2026, 3, 10), seed=11)
    return _make(tmp_path_factory, "march", cfg)


@pytest.fixture(scope="session")
def october_drops(tmp_path_factory: pytest.TempPathFactory) -> Drops:
    """20 nights around the fall-back night (2026-10-25: local 02:00-02:59 happens twice)."""
    cfg = GeneratorConfig(customers=1_500, days=20, start=dt.date(2026, 10, 15), seed=5)
    return _make(tmp_path_factory, "october", cfg)


@pytest.fixture(scope="session", params=["march", "october"])
def drops(request: pytest.FixtureRequest) -> Drops:
    return request.getfixturevalue(f"{request.param}_drops")
