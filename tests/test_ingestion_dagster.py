"""The ingestion assets in Dagster: definitions load, two partitions materialize in-process with their
checks, the drop sensor requests new and replaced drops once, and ``cxw ingest`` runs the same job."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from expectations import health
from ingestion import contract as C
from orchestration.assets.ingestion import DROP_CHECKS, ingest_assets, raw_key
from orchestration.cli import main
from orchestration.definitions import defs
from orchestration.resources import CxData
from orchestration.sensors import landing_drop_sensor

from .conftest import Drops

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def data_dir(october_drops: Drops, tmp_path: Path) -> Path:
    """A data directory whose landing zone holds the first four nights of the October drops."""
    for system in C.SYSTEMS:
        for i in range(4):
            day = (october_drops.cfg.start + dt.timedelta(days=i)).isoformat()
            shutil.copytree(october_drops.root / system / day, tmp_path / "landing" / system / day)
    return tmp_path


def test_definitions_validate() -> None:
    env = {**os.environ, "DAGSTER_HOME": str(ROOT / ".dagster_home")}
    (ROOT / ".dagster_home").mkdir(exist_ok=True)
    out = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m",
                          "orchestration.definitions"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    dg.Definitions.validate_loadable(defs)


def test_materialize_two_partitions_in_process(data_dir: Path, october_drops: Drops) -> None:
    cx = CxData(data_dir=str(data_dir))
    with dg.instance_for_test() as instance:
        for i in (0, 1):
            day = (october_drops.cfg.start + dt.timedelta(days=i)).isoformat()
            result = dg.materialize(ingest_assets, partition_key=day, resources={"cx": cx}, instance=instance)
            assert result.success
            mats = {m.asset_key: m for m in result.asset_materializations_for_node("land_erp")}
            meta = mats[raw_key("erp", "orders")].metadata
            assert meta["rows_loaded"].value + meta["rows_quarantined"].value == meta["manifest_rows"].value
            checks = result.get_asset_check_evaluations()
            assert len(checks) == len(DROP_CHECKS) * len(C.ENTITIES)
            assert all(c.passed for c in checks if c.check_name == "reconciles_with_manifest")
            assert all(c.passed for c in checks if c.check_name == "drop_delivered")
            survey = {m.asset_key: m for m in result.asset_materializations_for_node("land_survey")}
            on_disk = pl.read_parquet(cx.zones().data_file("survey", "responses", dt.date.fromisoformat(day))).height
            assert on_disk == survey[raw_key("survey", "responses")].metadata["rows_loaded"].value
        # both partitions are recorded as materialized for every entity
        for system, name in C.ENTITIES:
            keys = instance.get_materialized_partitions(raw_key(system, name))
            assert keys == {(october_drops.cfg.start + dt.timedelta(days=i)).isoformat() for i in (0, 1)}


def test_a_refused_drop_fails_the_run_naming_the_file(data_dir: Path, october_drops: Drops) -> None:
    day = october_drops.cfg.start.isoformat()
    (data_dir / "landing" / "erp" / day / "returns.csv").write_bytes(b"return_id;order_id\n")
    with dg.instance_for_test() as instance:
        result = dg.materialize(ingest_assets, partition_key=day, resources={"cx": CxData(data_dir=str(data_dir))},
                                instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "land_erp"
    assert "returns.csv: sha256 mismatch" in failure.event_specific_data.error.message
    # the health record says so, and is served at once
    refused = health.blocking_failures(health.read(data_dir, [dt.date.fromisoformat(day)]))
    assert set(refused["check_name"]) == {"drop_accepted"} and set(refused["subject"]) == {
        f"erp.{e.name}" for e in C.entities_of("erp")}
    assert "returns.csv: sha256 mismatch" in refused["message"][0]
    assert (data_dir / "serving" / "cx.duckdb").exists()
    # the other systems still landed
    assert (data_dir / "raw" / "crm" / "customers" / f"business_date={day}" / "data.parquet").exists()


def _health_of(data_dir: Path, day: dt.date, source: str) -> list[tuple]:
    frame = pl.read_parquet(data_dir / "health" / f"business_date={day}" / f"{source}.parquet")
    return sorted(frame.drop("run_id", "recorded_at").rows())


def test_a_drop_landed_late_judges_the_later_drops_again(data_dir: Path, october_drops: Drops,
                                                          tmp_path: Path) -> None:
    """The ERP drop of night 3 lands after night 4's: night 4's volume and quarantine baselines were
    judged without it and are judged again, so its record equals that of the nights landed in order
    (docs/reliability.md, idempotency); the other systems' records are not touched."""
    land_erp = [a for a in ingest_assets if a.node_def.name == "land_erp"]
    days = [october_drops.cfg.start + dt.timedelta(days=i) for i in range(4)]
    in_order = tmp_path / "in_order"
    shutil.copytree(data_dir / "landing", in_order / "landing")
    with dg.instance_for_test() as instance:
        for root, order in ((in_order, days), (data_dir, [days[0], days[1], days[3], days[2]])):
            for day in order:
                assert dg.materialize(land_erp, partition_key=day.isoformat(),
                                      resources={"cx": CxData(data_dir=str(root))}, instance=instance).success
                if root == data_dir and day == days[3]:  # judged while night 3 is missing: 2 days of history
                    early = _health_of(data_dir, days[3], "ingest_erp")
                    assert any("2 days of history" in (r[7] or "") for r in early if r[1] == "drop_volume")
    late = _health_of(data_dir, days[3], "ingest_erp")
    assert late == _health_of(in_order, days[3], "ingest_erp") != early
    assert any("3 days of history" in (r[7] or "") for r in late if r[1] == "drop_volume")
    assert {r[1] for r in late} >= {"drop_volume", "quarantine_rate", "reconciles_with_manifest"}
    assert _health_of(data_dir, days[2], "ingest_erp") == _health_of(in_order, days[2], "ingest_erp")


def test_drop_sensor_requests_new_and_replaced_drops_once(data_dir: Path, october_drops: Drops) -> None:
    cx = CxData(data_dir=str(data_dir))
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"cx": cx})
        first = landing_drop_sensor(ctx)
        assert len(first.run_requests) == 4 * len(C.SYSTEMS)
        assert {r.partition_key for r in first.run_requests} == {
            (october_drops.cfg.start + dt.timedelta(days=i)).isoformat() for i in range(4)}
        erp = next(r for r in first.run_requests if r.tags["cx/system"] == "erp")
        assert set(erp.asset_selection) == {raw_key("erp", e.name) for e in C.entities_of("erp")}
        again = landing_drop_sensor(dg.build_sensor_context(instance=instance, resources={"cx": cx},
                                                            cursor=first.cursor))
        assert again.run_requests == []
        # a corrected re-extract (new manifest) is requested again; an incomplete drop is not
        manifest = data_dir / "landing" / "crm" / october_drops.cfg.start.isoformat() / C.MANIFEST_NAME
        m = json.loads(manifest.read_text())
        m["extracted_at"] = "2030-01-01T00:00:00Z"
        manifest.write_text(json.dumps(m))
        (data_dir / "landing" / "crm" / "2026-11-30").mkdir()
        third = landing_drop_sensor(dg.build_sensor_context(instance=instance, resources={"cx": cx},
                                                            cursor=again.cursor))
        assert [(r.tags["cx/system"], r.partition_key) for r in third.run_requests] == [
            ("crm", october_drops.cfg.start.isoformat())]


def test_cli_ingest_runs_the_ingest_job(data_dir: Path, october_drops: Drops, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    start = october_drops.cfg.start
    result = CliRunner().invoke(main, ["ingest", "--start", start.isoformat(),
                                       "--end", (start + dt.timedelta(days=1)).isoformat()])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()
            if line.split()[:1] and line.split()[0] in C.SYSTEMS}
    assert sorted(rows) == sorted(C.SYSTEMS) and all(r[1] == "2" and r[-1] == "yes" for r in rows.values())
    assert (data_dir / "raw" / "erp" / "orders" / f"business_date={start.isoformat()}" / "data.parquet").exists()
    missing = CliRunner().invoke(main, ["ingest", "--date", "2026-09-01"])
    assert missing.exit_code == 1
    assert "no drop delivered for this system and date" in missing.output
    future = CliRunner().invoke(main, ["ingest", "--date", "2099-01-01"])
    assert future.exit_code == 2 and "2099-01-01 is not a business-date partition" in future.output
    everything = CliRunner().invoke(main, ["ingest", "--all"])
    assert everything.exit_code == 0, everything.output
    summary = [line.split() for line in everything.output.splitlines() if line.split()[:1] and
               line.split()[0] in C.SYSTEMS]
    assert [(row[0], row[1], row[2], row[-1]) for row in summary] == [(s, "4", "0", "yes") for s in sorted(C.SYSTEMS)]
    bad = CliRunner().invoke(main, ["ingest", "--start", "2026-10-05", "--end", "2026-10-01"])
    assert bad.exit_code == 2 and "is before --start" in bad.output
