"""Ranged ingestion: a backfill lands a range of business dates in one Dagster run per range (of at
most MAX_DAYS_PER_RUN dates) with the per-date semantics of the nightly run: the same raw zone and the
same data-health record as one run per date, a refused drop on one date does not stop the others and
the run fails naming it, and each date's materialization carries that date's own facts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from ingestion import contract as C
from ingestion import pool, settings
from orchestration import night
from orchestration.assets import ingestion as ingestion_assets
from orchestration.assets.ingestion import ingest_assets, raw_key
from orchestration.cli import main
from orchestration.resources import CxData
from simulator import GeneratorConfig, generate

from . import drop_edit

START = dt.date(2026, 9, 1)
DAYS = 10
RANGE = {"dagster/asset_partition_range_start": START.isoformat(),
         "dagster/asset_partition_range_end": (START + dt.timedelta(days=DAYS - 1)).isoformat()}
# columns that say when a row was written, not what it holds
WHEN = {"_loaded_at", "loaded_at", "recorded_at", "run_id", "duration_s"}
# crm.campaign_touches delivers ten times its volume on this date: a volume anomaly a ranged run finds
# against the dates before it in the same range (from the load audit it holds in memory)
SPIKE = START + dt.timedelta(days=8)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ranges") / "landing"
    generate(GeneratorConfig(customers=300, days=DAYS, start=START, seed=18), root)
    spike = drop_edit.folder(root, "crm", SPIKE)
    header, rows = drop_edit.read(spike, "crm", "campaign_touches")
    drop_edit.write(spike, "crm", "campaign_touches", header, rows * 10)  # duplicates are valid records
    return root


def _data_dir(landing: Path, where: Path) -> Path:
    shutil.copytree(landing, where / "landing")
    return where


def _days() -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(DAYS)]


def _zone(root: Path) -> dict[str, list[tuple]]:
    """Every Parquet file of the raw and quarantine zones and of the health record: its sorted rows,
    without the columns that say when (or by which run) it was written."""
    out = {}
    for zone in ("raw", "quarantine", "health"):
        for path in sorted((root / zone).rglob("*.parquet")):
            frame = pl.read_parquet(path)
            frame = frame.drop([c for c in frame.columns if c in WHEN])
            out[str(path.relative_to(root))] = sorted(frame.rows(), key=repr)
    return out


def test_a_ranged_run_lands_what_one_run_per_date_lands(landing: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ranged = _data_dir(landing, tmp_path / "ranged")
    daily = _data_dir(landing, tmp_path / "daily")
    pool._stop_all()
    # these drops are small (a few MB): one process would land them; worker processes are what is tested
    assert night.drop_bytes(CxData(data_dir=str(ranged)).zones(), "erp", _days()) < night.POOL_MIN_BYTES
    monkeypatch.setattr(night, "POOL_MIN_BYTES", 0)
    with dg.instance_for_test() as instance:
        result = dg.materialize(ingest_assets, tags=RANGE, resources={"cx": CxData(data_dir=str(ranged))},
                                instance=instance)
        assert result.success
        # the range's drops were landed by CX_INGEST_WORKERS (2) worker processes, kept for the next range
        assert settings.ingest_workers() == 2 and len(pool._idle) == 2
        assert len(instance.get_runs()) == 1
        # one materialization per asset and date, each with its own date's facts
        for system, name in C.ENTITIES:
            assert instance.get_materialized_partitions(raw_key(system, name)) == {d.isoformat() for d in _days()}
        orders = raw_key("erp", "orders")
        mats = [m for m in result.asset_materializations_for_node("land_erp") if m.asset_key == orders]
        assert sorted(m.partition for m in mats) == [d.isoformat() for d in _days()]
        for m in mats:
            on_disk = pl.read_parquet(CxData(data_dir=str(ranged)).zones().data_file(
                "erp", "orders", dt.date.fromisoformat(m.partition))).height
            assert m.metadata["rows_loaded"].value == on_disk
        # one check result per check and asset, summing up the range
        checks = result.get_asset_check_evaluations()
        assert len(checks) == len(ingestion_assets.DROP_CHECKS) * len(C.ENTITIES)
        delivered = [c for c in checks if c.check_name == "drop_delivered"]
        assert all(c.passed and c.metadata["dates"].value == DAYS for c in delivered)
        volume = next(c for c in checks if c.check_name == "drop_volume"
                      and c.asset_key == raw_key("crm", "campaign_touches"))
        assert not volume.passed and SPIKE.isoformat() in volume.metadata["not_passed"].value
        spiked = volume.metadata["not_passed"].value[SPIKE.isoformat()]
        assert spiked["status"] == "warn"
        assert spiked["observed"] == len(drop_edit.read(drop_edit.folder(landing, "crm", SPIKE), "crm",
                                                        "campaign_touches")[1])
        assert spiked["expected"].endswith("(8 days, all days)")  # judged against the 8 dates before it

        daily_results = []
        for day in _days():
            daily_results.append(dg.materialize(ingest_assets, partition_key=day.isoformat(), instance=instance,
                                                resources={"cx": CxData(data_dir=str(daily))}))
        assert all(r.success for r in daily_results)
    # the daily runs' metadata is the ranged run's, date by date
    by_day = {m.partition: m.metadata for m in mats}
    for day, r in zip(_days(), daily_results, strict=True):
        single = next(m for m in r.asset_materializations_for_node("land_erp") if m.asset_key == orders)
        strip = {"path", "extracted_at"}
        assert ({k: v for k, v in single.metadata.items() if k not in strip}
                == {k: v for k, v in by_day[day.isoformat()].items() if k not in strip})

    got, want = _zone(ranged), _zone(daily)
    assert sorted(got) == sorted(want)
    assert any(p.startswith("health") for p in got) and any(p.startswith("raw/erp/orders") for p in got)
    for path in want:
        assert got[path] == want[path], path


def test_a_backfill_runs_one_ingest_run_per_range(landing: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """10 dates in ranges of at most 4: three ingest runs (4 + 4 + 2 dates) then one warehouse run, on the
    project's instance (dagster.yaml: its event log stores a run's asset events in batches); every asset
    materialized for every date, each date planned once per run and none left planned-but-not-materialized
    (the UI's per-partition status)."""
    data = _data_dir(landing, tmp_path / "data")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", home / "dagster.yaml")  # as `make install`
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "")
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")  # loading the instance sets it: unset again after the test
    monkeypatch.setenv("CX_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setattr(ingestion_assets, "MAX_DAYS_PER_RUN", 4)
    landed: list[tuple[str, dt.date]] = []
    real = ingestion_assets.on_day_landed

    @contextmanager
    def spy(callback):  # noqa: ANN001, ANN202 - the progress bar's callback, a context manager
        def both(system: str, day: dt.date) -> None:
            landed.append((system, day))
            callback(system, day)

        with real(both):
            yield

    monkeypatch.setattr(ingestion_assets, "on_day_landed", spy)
    end = START + dt.timedelta(days=DAYS - 1)
    result = CliRunner().invoke(main, ["backfill", "--start", START.isoformat(), "--end", end.isoformat()])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        by_job: dict[str, list] = {}
        for run in runs:
            by_job.setdefault(run.job_name, []).append(run)
        assert sorted(by_job) == ["ingest", "warehouse"], result.output
        ranges = sorted((r.tags.get("dagster/asset_partition_range_start"),
                         r.tags.get("dagster/asset_partition_range_end")) for r in by_job["ingest"])
        assert ranges == [(START.isoformat(), (START + dt.timedelta(days=3)).isoformat()),
                          ((START + dt.timedelta(days=4)).isoformat(), (START + dt.timedelta(days=7)).isoformat()),
                          ((START + dt.timedelta(days=8)).isoformat(), end.isoformat())]
        assert len(by_job["warehouse"]) == 1
        assert type(instance.event_log_storage).__name__ == "BatchingSqliteEventLogStorage"
        dates = {d.isoformat() for d in _days()}
        raw = [k for a in ingest_assets for k in a.keys]
        assert len(raw) == len(C.ENTITIES) + 1  # and the crm load audit
        for key in raw:
            assert instance.get_materialized_partitions(key) == dates, key
            storage = instance.event_log_storage
            assert not storage.get_latest_asset_partition_materialization_attempts_without_materializations(key)
            planned = instance.fetch_planned_materializations(key, limit=100).records
            assert sorted(r.partition_key for r in planned) == sorted(dates), key
    assert result.exit_code in (0, 1), result.output  # the warehouse's own gate may hold the publish back
    # the progress bar moved once per system and date, each system's dates in date order
    assert sorted(landed) == sorted((s, d) for s in C.SYSTEMS for d in _days())
    assert all([d for s, d in landed if s == system] == _days() for system in C.SYSTEMS)


def _sha_mismatch(data: Path, system: str, day: dt.date) -> str:
    """Flip one byte of the drop's first data file, so its sha256 no longer matches the manifest."""
    folder = data / "landing" / system / day.isoformat()
    manifest = json.loads((folder / C.MANIFEST_NAME).read_text())
    name = manifest["files"][0]["path"]
    path = folder / name
    raw = bytearray(path.read_bytes())
    raw[-2] = ord("x") if raw[-2] != ord("x") else ord("y")
    path.write_bytes(bytes(raw))
    assert hashlib.sha256(raw).hexdigest() not in (folder / C.MANIFEST_NAME).read_text()
    return name


def test_refused_and_missing_drops_do_not_stop_the_other_dates(landing: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data_dir(landing, tmp_path / "data")
    home = tmp_path / "dagster_home"
    home.mkdir()
    days = _days()
    bad = {days[2]: _sha_mismatch(data, "erp", days[2]), days[6]: _sha_mismatch(data, "erp", days[6])}
    (data / "landing" / "crm" / days[4].isoformat() / C.MANIFEST_NAME).unlink()  # not delivered yet
    monkeypatch.setenv("CX_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    result = CliRunner().invoke(main, ["ingest", "--start", days[0].isoformat(), "--end", days[-1].isoformat()])
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAILED")]
    for day, name in bad.items():
        assert any(line.startswith(f"FAILED {day} land_erp: erp drop for {day} refused: ")
                   and f"{name}: sha256 mismatch" in line for line in failed), result.output
    assert f"NOT DELIVERED {days[4]} crm:" in result.output
    assert len(failed) == 2, result.output
    zones = CxData(data_dir=str(data)).zones()
    for system in C.SYSTEMS:
        for day in days:
            landed = zones.data_file(system, C.entities_of(system)[0].name, day).exists()
            assert landed == ((system, day) not in {("erp", days[2]), ("erp", days[6]), ("crm", days[4])}), \
                (system, day)
    # the refused dates are recorded as refused, the missing one as not delivered, in date order with the rest
    record = pl.concat([pl.read_parquet(p) for p in (data / "health").rglob("ingest_*.parquet")])
    refused = record.filter((pl.col("check_name") == "drop_accepted") & (pl.col("status") == "fail"))
    assert sorted(set(refused["business_date"].to_list())) == [days[2], days[6]]
    missing = record.filter((pl.col("check_name") == "drop_delivered") & (pl.col("status") == "warn"))
    assert set(missing["business_date"].to_list()) == {days[4]} and set(missing["asset"].str.contains("crm")) == {True}
    assert (data / "serving" / "cx.duckdb").exists()  # served at once, as a refused nightly drop is
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 1
        assert instance.get_materialized_partitions(raw_key("erp", "orders")) == {
            d.isoformat() for d in days if d not in bad}
        assert instance.get_materialized_partitions(raw_key("crm", "customers")) == {d.isoformat() for d in days}


def test_one_date_is_run_as_its_own_partition(landing: Path, tmp_path: Path) -> None:
    """A range of one date takes the single-date path: the checks' results are those of the nightly run
    (no range summary in their metadata)."""
    data = _data_dir(landing, tmp_path / "data")
    day = START.isoformat()
    with dg.instance_for_test() as instance:
        result = dg.materialize(ingest_assets, partition_key=day, resources={"cx": CxData(data_dir=str(data))},
                                instance=instance)
        assert result.success
        assert all("dates" not in c.metadata for c in result.get_asset_check_evaluations())
        assert all(m.partition == day for m in result.get_asset_materialization_events()
                   for m in [m.event_specific_data.materialization])
