"""The ``cxw`` command line: generation with overrides, and readable errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from orchestration.cli import main


def test_generate_writes_drops_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    result = CliRunner().invoke(main, ["generate", "--customers", "60", "--days", "3", "--start", "2026-10-01",
                                       "--seed", "4", "--out", str(out), "--set", "mess.resend_rate=0.2",
                                       "--set", "effects.nps_per_late_delivery=-2.5"])
    assert result.exit_code == 0, result.output
    assert "erp/orders" in result.output and "peak memory" in result.output
    truth = json.loads((out / "truth.json").read_text())
    assert truth["config"]["mess"]["resend_rate"] == 0.2
    assert next(e for e in truth["effects"] if e["id"] == "late_delivery_lowers_nps")["size"] == -2.5
    assert sorted(p.name for p in (out / "crm").iterdir()) == ["2026-10-01", "2026-10-02", "2026-10-03"]


def test_generate_defaults_to_the_data_dir(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["generate", "--customers", "20", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "landing" / "truth.json").exists()


def test_bad_arguments_get_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = {
        ("--start", "2026-13-01"): "'2026-13-01' is not a date in YYYY-MM-DD form",
        ("--set", "mess.no_such_rate=1"): "mess has no field 'no_such_rate'",
        ("--set", "mess.resend_rate"): "expected section.field=value",
        ("--set", "other.x=1"): "expected mess.<field> or effects.<field>",
        ("--set", "mess.resend_rate=abc"): "mess.resend_rate=abc",
        ("--customers", "0"): "0 is not in the range x>=1",
    }
    for args, message in cases.items():
        result = runner.invoke(main, ["generate", "--out", str(tmp_path), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_a_malformed_setting_is_one_line_naming_the_variable(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "data"))
    for name, value, says, command in (
            ("CX_SLOT_WAIT_SECONDS", "soon", "CX_SLOT_WAIT_SECONDS='soon' is not a number of seconds", ["status"]),
            ("CX_SPARK_CONF", "adaptive=true", "'adaptive=true' is not a Spark property as key=value",
             ["spark", "start"])):
        monkeypatch.setenv(name, value)
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and result.exception is not None, result.output
        assert says in result.output and "docs/settings.md" in result.output, result.output
        assert "Traceback" not in result.output
        monkeypatch.delenv(name)

