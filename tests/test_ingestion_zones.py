"""Ingesting generated drops: exact reconciliation, idempotent re-runs, re-extracts that replace,
and a crash that leaves the previous version intact."""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from ingestion import contract as C
from ingestion import load as load_module
from ingestion.disk import DiskFull
from ingestion.load import Zones, latest_attempts, load_drop, read_audit, summarize_attempts
from ingestion.manifest import DropRefused
from simulator import GeneratorConfig, generate

from .conftest import Drops


def _zones(landing: Path, tmp: Path) -> Zones:
    return Zones(landing=landing, raw=tmp / "raw", quarantine=tmp / "quarantine")


def _days(drops: Drops) -> list[dt.date]:
    return [drops.cfg.start + dt.timedelta(days=i) for i in range(drops.cfg.days)]


@pytest.fixture(scope="module")
def ingested(october_drops: Drops, tmp_path_factory: pytest.TempPathFactory) -> Zones:
    zones = _zones(october_drops.root, tmp_path_factory.mktemp("zones"))
    for day in _days(october_drops):
        for system in C.SYSTEMS:
            load_drop(zones, system, day)
    return zones


def test_every_generated_file_reconciles_and_the_audit_shows_it(ingested: Zones, october_drops: Drops) -> None:
    audit = read_audit(ingested)
    assert audit.height == october_drops.cfg.days * len(C.ENTITIES)
    assert (audit["status"] == "loaded").all()
    assert (audit["loaded"] + audit["quarantined"] == audit["manifest_rows"]).all()
    # every planted bad record, and nothing else, is in quarantine
    truth = october_drops.truth["mess"]
    for (system, name), _e in C.ENTITIES.items():
        planted = sum(truth[k]["by_entity"].get(f"{system}/{name}", {}).get("planted", 0)
                      for k in ("bad_date", "bad_enum", "bad_null_key", "bad_score"))
        quarantined = audit.filter((pl.col("system") == system) & (pl.col("entity") == name))["quarantined"].sum()
        assert quarantined == planted, (system, name)
    # the files on disk agree with the audit
    raw_rows = pl.scan_parquet(str(ingested.raw / "erp" / "orders" / "*" / "data.parquet")).select(pl.len()).collect()
    assert raw_rows.item() == audit.filter(pl.col("entity") == "orders")["loaded"].sum()
    assert raw_rows.item() == october_drops.truth["volumes"]["records_delivered"]["erp/orders"] - \
        audit.filter(pl.col("entity") == "orders")["quarantined"].sum()


def test_quarantine_rows_name_file_line_column_and_reason(ingested: Zones) -> None:
    q = pl.read_parquet(str(ingested.quarantine / "erp" / "orders" / "*" / "quarantine.parquet"))
    assert q.height > 0
    assert q["file"].str.contains(r"^erp/\d{4}-\d{2}-\d{2}/orders\.csv$").all()
    assert (q["line"] >= 2).all()
    assert set(q["column"].unique()) <= {"order_id", "order_ts", "sales_channel"}
    assert q["reason"].str.starts_with("column '").all()


def test_raw_zone_is_typed_with_lineage(ingested: Zones, october_drops: Drops) -> None:
    day = october_drops.cfg.start + dt.timedelta(days=3)
    df = pl.read_parquet(ingested.data_file("erp", "orders", day))
    assert df.schema["order_ts"] == pl.Datetime("us", "UTC")
    assert df.schema["total_amount"] == pl.Decimal(18, 2)
    assert df.schema["promised_delivery_date"] == pl.Date
    assert (df["_business_date"] == day).all()
    assert (df["_source_file"] == f"erp/{day.isoformat()}/orders.csv").all()
    # _source_line points at the record's line in the landing file
    lines = (october_drops.root / "erp" / day.isoformat() / "orders.csv").read_bytes().decode("cp1252").split("\n")
    row = df.row(0, named=True)
    assert lines[row["_source_line"] - 1].startswith(row["order_id"] + ";")


def test_dst_overlap_night_orders_load_in_utc(ingested: Zones) -> None:
    night = dt.date(2026, 10, 25)
    df = pl.read_parquet(str(ingested.raw / "erp" / "orders" / "*" / "data.parquet"))
    df = df.filter(pl.col("order_ts").dt.convert_time_zone("Europe/Paris").dt.date() == night)
    assert df.filter(pl.col("order_ts").dt.convert_time_zone("Europe/Paris").dt.hour() == 2).height > 0


def _content(zones: Zones) -> dict[str, pl.DataFrame]:
    out = {}
    for zone in (zones.raw, zones.quarantine):
        for p in sorted(zone.rglob("*.parquet")):
            if "_load_audit" not in p.parts:
                out[str(p.relative_to(zone.parent))] = pl.read_parquet(p).drop("_loaded_at")
    return out


def test_rerunning_a_day_leaves_the_raw_zone_identical(october_drops: Drops, tmp_path: Path) -> None:
    zones = _zones(october_drops.root, tmp_path)
    day = october_drops.cfg.start + dt.timedelta(days=5)
    for system in C.SYSTEMS:
        load_drop(zones, system, day, loaded_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    before = _content(zones)
    for system in C.SYSTEMS:
        load_drop(zones, system, day, loaded_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    after = _content(zones)
    # a data file per entity; a quarantine file for each entity that quarantined a record, none for the others
    quarantined = read_audit(zones).filter(pl.col("quarantined") > 0).height
    assert 0 < quarantined < len(C.ENTITIES)
    assert before.keys() == after.keys() and len(before) == len(C.ENTITIES) + quarantined
    for k in before:
        assert before[k].equals(after[k]), k
    # one audit entry per delivery: the second run updated it, nothing counted twice
    audit = read_audit(zones)
    assert audit.height == len(C.ENTITIES)
    assert (audit["loaded_at"] == dt.datetime(2026, 11, 2, tzinfo=dt.UTC)).all()


def test_corrected_reextract_replaces_the_first_extract(october_drops: Drops, tmp_path: Path) -> None:
    redo = october_drops.truth["reextracts"][0]
    system, day = redo["system"], dt.date.fromisoformat(redo["business_date"])
    landing = tmp_path / "landing"
    target = landing / system / day.isoformat()
    shutil.copytree(october_drops.root / redo["superseded_drop"], target)
    zones = _zones(landing, tmp_path)
    first = load_drop(zones, system, day)
    shutil.rmtree(target)
    shutil.copytree(october_drops.root / system / day.isoformat(), target)
    second = load_drop(zones, system, day)
    first_rows = sum(e.manifest_rows for e in first.entities)
    second_rows = sum(e.manifest_rows for e in second.entities)
    assert second_rows - first_rows == redo["records_missing_from_first_extract"] > 0
    assert second.extracted_at > first.extracted_at
    for e in second.entities:
        on_disk = pl.read_parquet(zones.data_file(system, e.entity, day)).height
        assert on_disk == e.loaded  # replaced, not appended
    audit = read_audit(zones)
    assert sorted(audit["manifest_sha256"].unique()) == sorted({first.manifest_sha256, second.manifest_sha256})


def test_refused_redelivery_keeps_the_previous_version(october_drops: Drops, tmp_path: Path) -> None:
    day = october_drops.cfg.start + dt.timedelta(days=2)
    landing = tmp_path / "landing"
    shutil.copytree(october_drops.root / "crm" / day.isoformat(), landing / "crm" / day.isoformat())
    zones = _zones(landing, tmp_path)
    load_drop(zones, "crm", day)
    before = _content(zones)
    cases = landing / "crm" / day.isoformat() / "support_cases.csv"
    cases.write_bytes(cases.read_bytes() + b"CS99999999,C0000001,phone,other,low,2026-10-17T10:00:00Z,,,open,1,0,"
                                            b"2026-10-17T10:00:00Z\n")
    with pytest.raises(DropRefused, match=r"support_cases\.csv: sha256 mismatch"):
        load_drop(zones, "crm", day)
    assert _content(zones).keys() == before.keys()
    for k, v in _content(zones).items():
        assert v.equals(before[k]), k
    assert sorted(read_audit(zones)["status"].unique()) == ["loaded", "refused"]
    # the entities validated before the refused file were written to temporary names: removed
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_crash_while_swapping_leaves_previous_files_readable(october_drops: Drops, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    day = october_drops.cfg.start + dt.timedelta(days=4)
    zones = _zones(october_drops.root, tmp_path)
    load_drop(zones, "billing", day)
    before = _content(zones)
    calls = {"n": 0}
    real = pl.DataFrame.write_parquet

    def flaky(self: pl.DataFrame, file, *args, **kwargs):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 3:
            real(self, file, *args, **kwargs)
            raise OSError("disk full (simulated)")
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", flaky)
    with pytest.raises(OSError, match="simulated"):
        load_drop(zones, "billing", day)
    monkeypatch.undo()
    after = _content(zones)
    assert after.keys() == before.keys()
    for k in before:
        assert after[k].equals(before[k]), k  # every partition readable, old or identical new version
    assert not list(tmp_path.rglob("*.tmp"))


def _inodes(zones: Zones) -> dict[str, int]:
    return {str(p): p.stat().st_ino for zone in (zones.raw, zones.quarantine) for p in zone.rglob("*.parquet")
            if "_load_audit" not in p.parts}


def test_a_drop_is_swapped_in_only_once_every_file_is_written_and_synced(
        october_drops: Drops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files of a drop are written and fsynced as one batch before any is renamed: a write or an
    fsync failing on any file replaces none (same inode for every partition), leaves no temporary file,
    and a full disk names the file it was writing."""
    day = october_drops.cfg.start + dt.timedelta(days=4)
    zones = _zones(october_drops.root, tmp_path)
    first = load_drop(zones, "erp", day)
    # a data file per entity, a quarantine file for each that quarantined a record
    files = len(first.entities) + sum(e.quarantined > 0 for e in first.entities)
    assert len(first.entities) < files < 2 * len(first.entities)
    before = _inodes(zones)
    assert len(before) == files
    calls = {"n": 0}
    real_stage = load_module._Batch.stage

    def failing_last_write(self, df: pl.DataFrame, path: Path) -> None:  # noqa: ANN001
        calls["n"] += 1
        real_stage(self, df, path)  # the file written to its temporary name, then the error
        if calls["n"] == files:
            raise OSError("disk error (simulated)")

    monkeypatch.setattr(load_module._Batch, "stage", failing_last_write)
    with pytest.raises(OSError, match="simulated"):
        load_drop(zones, "erp", day)
    monkeypatch.undo()
    assert calls["n"] == files and _inodes(zones) == before
    assert not list(tmp_path.rglob("*.tmp"))

    real_fsync = load_module._fsync
    synced: list[Path] = []

    def full_on_one(path: Path) -> None:
        synced.append(path)
        if path.name == f".data.parquet.{os.getpid()}.tmp" and "returns" in path.parts:
            raise OSError(errno.ENOSPC, "No space left on device (simulated)")
        real_fsync(path)

    monkeypatch.setattr(load_module, "_fsync", full_on_one)
    with pytest.raises(DiskFull) as caught:
        load_drop(zones, "erp", day)
    monkeypatch.undo()
    assert caught.value.path == zones.data_file("erp", "returns", day)
    assert str(zones.data_file("erp", "returns", day)) in str(caught.value)
    assert len([p for p in synced if p.name.endswith(".tmp")]) == files  # every file was synced, none renamed
    assert _inodes(zones) == before
    assert not list(tmp_path.rglob("*.tmp"))
    # and then it lands: every partition replaced (new inodes), the audit says loaded
    again = load_drop(zones, "erp", day)
    after = _inodes(zones)
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in before)
    assert [e.loaded for e in again.entities] == [e.loaded for e in first.entities]


def _makefile_demo_config() -> GeneratorConfig:
    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    v = dict(re.findall(r"^DEMO_(\w+)\s*\?=\s*(\S+)", text, flags=re.M))
    return GeneratorConfig(customers=int(v["CUSTOMERS"]), days=int(v["DAYS"]), start=dt.date.fromisoformat(v["START"]),
                           seed=int(v["SEED"]))


def test_every_drop_of_make_demo_reconciles_file_by_file(tmp_path: Path) -> None:
    cfg = _makefile_demo_config()
    generate(cfg, tmp_path / "landing")
    zones = _zones(tmp_path / "landing", tmp_path)
    for day in [cfg.start + dt.timedelta(days=i) for i in range(cfg.days)]:
        for system in C.SYSTEMS:
            load_drop(zones, system, day)
    latest = latest_attempts(read_audit(zones))
    assert latest.height == cfg.days * len(C.ENTITIES)
    assert (latest["status"] == "loaded").all()
    assert (latest["loaded"] + latest["quarantined"] == latest["manifest_rows"]).all()
    assert summarize_attempts(latest, by=("system",))["reconciled"].all()
