"""The project skeleton holds together: the dbt project parses without a database, and the data
directory layout follows $CX_DATA_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ingestion import settings

ROOT = Path(__file__).resolve().parents[1]


def test_dbt_project_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbt.cli.main import dbtRunner

    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    project = ROOT / "dbt_project"
    result = dbtRunner().invoke(["parse", "--project-dir", str(project), "--profiles-dir", str(project),
                                 "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
                                 "--quiet"])
    assert result.success, result.exception


def test_no_packages_file() -> None:
    # dagster-dbt runs `dbt deps` whenever packages.yml exists, and dbt hub is unreachable here
    assert not (ROOT / "dbt_project" / "packages.yml").exists()


def test_duckdb_profile_releases_the_lock_between_steps() -> None:
    profile = yaml.safe_load((ROOT / "dbt_project" / "profiles.yml").read_text())["cx_warehouse"]["outputs"]
    assert profile["duckdb"]["keep_open"] is False
    assert profile["spark"]["method"] == "session"


def test_data_layout_follows_cx_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "d"))
    root = settings.ensure_layout()
    assert root == tmp_path / "d"
    assert sorted(p.name for p in root.iterdir()) == ["landing", "quarantine", "raw", "serving"]
    assert settings.warehouse_path() == root / "warehouse.duckdb"
