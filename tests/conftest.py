"""Shared fixtures: generated drops, made once per test session."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingestion.generator import GeneratorConfig, generate


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
