"""One frozen, typed settings object (ingestion/settings.py), documented in docs/settings.md."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from pathlib import Path

import pytest

from ingestion import settings
from orchestration.warehouse import RUN_WINDOW_ENV

ROOT = Path(__file__).resolve().parents[1]


def test_docs_list_every_setting() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in docs, "regenerate with: python -m ingestion.settings"


def test_defaults_and_types(tmp_path: Path) -> None:
    s = settings.Settings.from_env({})
    assert s.data_dir == Path("data").resolve()
    assert (s.duckdb_threads, s.duckdb_memory_limit, s.duckdb_preserve_insertion_order) == (2, "12GB", False)
    assert s.partitions_start == dt.date(2024, 1, 1) and s.slot_wait_seconds == 1800.0
    assert (s.nightly_cron, s.nightly_tz, s.verify_cron) == ("0 2 * * *", "Europe/Paris", "0 4 * * 0")
    assert s.key_secret is None and s.key_secret_file is None and s.alert_webhook is None
    assert s.crash_at == () and s.quality_config is None and s.dagster_home is None
    # each declared default is the value an unset variable gets
    for var in settings.VARIABLES:
        if var.attr and var.value_default is not None:
            assert getattr(s, var.attr) == (Path(var.value_default).resolve() if var.attr == "data_dir"
                                            else var.value_default), var.name
    s = settings.Settings.from_env({"CX_DATA_DIR": str(tmp_path), "CX_DUCKDB_THREADS": "8",
                                    "CX_CRASH_AT": "a.b, c.d", "CX_PARTITIONS_START": "2025-03-01",
                                    "CX_SLOT_WAIT_SECONDS": "0.5", "CX_KEY_SECRET": "s" * 40})
    assert s.data_dir == tmp_path and s.duckdb_threads == 8 and s.crash_at == ("a.b", "c.d")
    assert s.partitions_start == dt.date(2025, 3, 1) and s.slot_wait_seconds == 0.5
    assert "s" * 40 not in repr(s), "secrets stay out of a repr"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.data_dir = tmp_path  # type: ignore[misc]


@pytest.mark.parametrize(("name", "value", "says"), [
    ("CX_SLOT_WAIT_SECONDS", "soon", "not a number"), ("CX_SLOT_WAIT_SECONDS", "-1", "negative"),
    ("CX_DUCKDB_THREADS", "many", "not a whole number"), ("CX_DBT_THREADS", "two", "not a whole number"),
    ("CX_PARTITIONS_START", "2024-13-01", "not a date"),
    ("CX_DUCKDB_PRESERVE_INSERTION_ORDER", "maybe", "not true or false"),
])
def test_a_malformed_value_names_its_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(settings.SettingsError, match=says) as err:
        settings.Settings.from_env({name: value})
    assert name in str(err.value)


def test_current_is_built_once_and_follows_a_changed_environment(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "a"))
    first = settings.current()
    assert settings.current() is first and first.data_dir == tmp_path / "a"
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "b"))
    assert settings.current().data_dir == tmp_path / "b" == settings.data_dir()


def test_exported_sets_what_dbt_reads_then_restores_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "mine"))
    monkeypatch.delenv("CX_DUCKDB_TEMP_DIRECTORY", raising=False)
    monkeypatch.setenv("CX_DUCKDB_THREADS", "3")
    before = dict(os.environ)
    with settings.exported(tmp_path / "other"):
        assert os.environ["CX_DATA_DIR"] == str(tmp_path / "other")
        assert os.environ["CX_DUCKDB_TEMP_DIRECTORY"] == str(tmp_path / "other" / "duckdb_tmp")
        assert os.environ["CX_DUCKDB_THREADS"] == "3" and os.environ["CX_DUCKDB_MEMORY_LIMIT"]
        assert settings.data_dir() == tmp_path / "other"
    assert dict(os.environ) == before
    env = settings.subprocess_env(tmp_path / "child", drop=("CX_DUCKDB_THREADS",))
    assert env["CX_DATA_DIR"] == str(tmp_path / "child") and env["CX_DUCKDB_THREADS"] == "3"  # from the settings
    assert set(settings.dbt_env()) <= set(env) and dict(os.environ) == before


def test_dbt_reads_only_declared_variables_with_the_declared_defaults() -> None:
    """dbt's YAML cannot import Python: every env_var() it reads is declared, with the same default."""
    declared = {v.name: v for v in settings.VARIABLES}
    seen: set[str] = set()
    files = [ROOT / "dbt_project" / "profiles.yml", ROOT / "dbt_project" / "dbt_project.yml",
             *(ROOT / "dbt_project").glob("models/**/*.yml"), *(ROOT / "dbt_project").glob("models/**/*.sql"),
             *(ROOT / "dbt_project").glob("macros/**/*.sql")]
    window = set(RUN_WINDOW_ENV.values())  # the run's window: set per dbt call (run_dbt, the nightly), no setting
    seen_window: set[str] = set()
    for path in files:
        for name, default in re.findall(r"env_var\(\s*'(\w+)'\s*(?:,\s*'([^']*)')?", path.read_text(encoding="utf-8")):
            if name in window:
                assert path.name == "as_of.sql" and default == "", (path.name, name, default)
                seen_window.add(name)
                continue
            assert name in declared, f"{path.name} reads {name}: declare it in ingestion/settings.py VARIABLES"
            assert declared[name].dbt_default is not None, f"{name}: declare the default dbt's YAML gives it"
            if default or declared[name].dbt_default == "":
                assert default == declared[name].dbt_default, (path.name, name, default)
            seen.add(name)
    assert seen == {v.name for v in settings.VARIABLES if v.dbt_default is not None}
    assert seen_window == window
    # whoever launches dbt sets what it reads from the settings, so its YAML defaults never decide
    assert set(settings.dbt_env()) == {v.name for v in settings.VARIABLES if "dbt" in v.read_by.split(", ")}


@pytest.mark.parametrize(("value", "expect_checks"), [("", False), ("true", True)])
def test_dbt_tests_are_dagster_asset_checks_only_when_asked(value: str, expect_checks: bool) -> None:
    """Off by default: three instance events per dbt test (docs/orchestration.md); on, each dbt data
    test is an asset check of the model it tests."""
    import subprocess
    import sys

    code = ("from orchestration.assets.warehouse import cx_dbt\n"
            "print(len(list(cx_dbt.check_specs)), len(cx_dbt.keys))")
    env = {**os.environ, "CX_DBT_ASSET_CHECKS": value}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    checks, models = map(int, out.stdout.split()[-2:])
    assert models > 30
    assert (checks > 100) if expect_checks else (checks == 0), checks
    assert settings.Settings.from_env({"CX_DBT_ASSET_CHECKS": value}).dbt_asset_checks is expect_checks


def test_the_projects_own_duckdb_connections_take_the_settings_dbt_takes(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``apply_duckdb_settings``: what dbt's profile sets on its sessions, set on a connection the project opens itself
    (the publish, the analyses, the GX gate); the spill directory under the given data folder unless set."""
    import duckdb

    for name in ("CX_DUCKDB_MEMORY_LIMIT", "CX_DUCKDB_THREADS", "CX_DUCKDB_TEMP_DIRECTORY",
                 "CX_DUCKDB_PRESERVE_INSERTION_ORDER"):
        monkeypatch.delenv(name, raising=False)

    def in_force() -> tuple:
        with duckdb.connect() as con:
            settings.apply_duckdb_settings(con, tmp_path)
            return con.execute("select current_setting('memory_limit'), current_setting('threads'), "
                               "current_setting('preserve_insertion_order'), "
                               "current_setting('temp_directory')").fetchone()

    limit, threads, order, temp = in_force()
    assert (threads, order, temp) == (2, False, str(tmp_path / "duckdb_tmp"))
    assert limit.replace(" ", "") in ("11.1GiB", "12.0GB"), limit  # 12GB, as DuckDB prints it
    monkeypatch.setenv("CX_DUCKDB_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("CX_DUCKDB_THREADS", "1")
    monkeypatch.setenv("CX_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    monkeypatch.setenv("CX_DUCKDB_PRESERVE_INSERTION_ORDER", "true")
    limit, threads, order, temp = in_force()
    assert (threads, order, temp) == (1, True, str(tmp_path / "spill"))
    assert limit.replace(" ", "") in ("286.1MiB", "300.0MB"), limit
    # a folder's name may hold a quote: taken as it is, not as SQL
    monkeypatch.setenv("CX_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "o'brien" / "spill"))
    assert in_force()[3] == str(tmp_path / "o'brien" / "spill")
