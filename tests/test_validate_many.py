"""The drops of a range read and validated together (issue 18): ``validate_many`` gives each file exactly what
``validate`` gives it alone, ``load_drop_range`` lands the same zones as one ``load_drop`` after another, with
every outcome and error at its date's turn, and ``pool.ranges`` cuts a range as documented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from benchmarks.compare_zones import LOADED_AT, differences
from ingestion import contract as C
from ingestion import load as L
from ingestion import pool
from ingestion.load import Zones, load_drop, load_drop_range
from ingestion.manifest import DropRefused, drop_folder
from ingestion.readers import read_file
from ingestion.validate import validate, validate_many
from simulator import GeneratorConfig, generate

from . import drop_edit

# the week of the spring change of time in Paris (2026-03-29: ERP wall times 02:00-02:59 do not exist)
START = dt.date(2026, 3, 26)
DAYS = 6


def _days(n: int = DAYS) -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(n)]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many") / "landing"
    generate(GeneratorConfig(customers=400, days=DAYS, start=START, seed=11), root)
    return root


def _raw(landing: Path, system: str, entity: str, day: dt.date):  # noqa: ANN202
    e = next(x for x in C.entities_of(system) if x.name == entity)
    path = drop_folder(landing, system, day) / e.filename
    return read_file(e, path, path.read_bytes())


def _same(got: tuple[pl.DataFrame, pl.DataFrame], want: tuple[pl.DataFrame, pl.DataFrame], what: str) -> None:
    for g, w, part in zip(got, want, ("valid", "quarantined"), strict=True):
        assert g.schema == w.schema, (what, part, g.schema, w.schema)
        assert g.equals(w), (what, part, g.height, w.height)


def test_every_entity_of_a_week_checked_together_as_alone(landing: Path) -> None:
    """Every entity's files of six dates, one call: each file's valid and quarantined rows, their types, lines,
    columns and reasons as ``validate`` gives them alone. The generated mess quarantines records in most
    entities, and the week holds the ERP's change of time."""
    quarantined = 0
    for system in C.SYSTEMS:
        for e in C.entities_of(system):
            raws = [_raw(landing, system, e.name, day) for day in _days()]
            for raw, got in zip(raws, validate_many(raws), strict=True):
                want = validate(raw)
                _same(got, want, f"{system}.{e.name} {raw.path}")
                quarantined += want[1].height
    assert quarantined >= 10  # the comparison covers the quarantine's columns, not only empty frames


def _csv_edit(landing: Path, day: dt.date, edit) -> None:  # noqa: ANN001
    drop = drop_edit.folder(landing, "erp", day)
    header, rows = drop_edit.read(drop, "erp", "orders")
    header, rows = edit(header, rows)
    drop_edit.write(drop, "erp", "orders", header, rows)


def test_files_of_other_columns_are_checked_apart(tmp_path: Path, landing: Path) -> None:
    """A file with a drifted column, one with its columns in another order and a header-only file, among
    ordinary files with bad records of different checks: each gives what it gives alone. (A quarantined
    record's JSON follows its file's column order, so a file of another order must not be merged.)"""
    import shutil

    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    days = _days()

    def drift(header, rows):  # noqa: ANN001, ANN202
        return [*header, "loyalty_tier"], [{**r, "loyalty_tier": "gold"} for r in rows]

    def reorder(header, rows):  # noqa: ANN001, ANN202
        return list(reversed(header)), rows

    def bad_amount(header, rows):  # noqa: ANN001, ANN202
        rows[0]["total_amount"] = "12.50"  # a decimal point: quarantined with its own reason
        return header, rows

    def bad_date(header, rows):  # noqa: ANN001, ANN202
        rows[1]["order_ts"] = "31/02/2026 10:00:00"
        return header, rows

    def empty(header, rows):  # noqa: ANN001, ANN202
        return header, []

    for day, edit in zip(days, (drift, reorder, bad_amount, bad_date, empty), strict=False):
        _csv_edit(copy, day, edit)
    raws = [_raw(copy, "erp", "orders", day) for day in days]
    assert raws[0].extra_columns == ["loyalty_tier"] and raws[1].frame.columns != raws[2].frame.columns
    got = validate_many(raws)
    for raw, one in zip(raws, got, strict=True):
        _same(one, validate(raw), str(raw.path))
    reasons = {r for _v, q in got for r in q["reason"].to_list()}
    assert any("decimal point" in r for r in reasons) and any("order_ts" in r for r in reasons)
    assert got[4][0].height == 0 and got[4][1].height == 0


def test_a_range_lands_the_zones_of_one_drop_after_another(landing: Path, tmp_path: Path) -> None:
    """``load_drop_range`` over the week against ``load_drop`` date by date, every system, with one drop refused
    in the middle (a file changed after its manifest): the same files, rows and types, the same outcomes in
    date order, each date's audit entry told before the date is yielded."""
    import shutil

    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    broken = START + dt.timedelta(days=2)
    orders = drop_edit.folder(copy, "erp", broken) / "orders.csv"
    orders.write_bytes(orders.read_bytes() + b"\n")  # its sha256 no longer matches the manifest
    one, many = Zones(copy, tmp_path / "one" / "raw", tmp_path / "one" / "quarantine"), \
        Zones(copy, tmp_path / "many" / "raw", tmp_path / "many" / "quarantine")
    outcomes = {}
    for system in C.SYSTEMS:
        alone = []
        for day in _days():
            try:
                alone.append((day, load_drop(one, system, day, loaded_at=LOADED_AT).status))
            except DropRefused as exc:
                alone.append((day, exc.problem))
        told: list[dt.date] = []
        together = []
        for day, outcome in load_drop_range(many, system, _days(), loaded_at=LOADED_AT,
                                            on_audit=lambda _s, d, _n, _f, told=told: told.append(d)):
            assert told[-1] == day
            together.append((day, outcome.problem if isinstance(outcome, DropRefused) else outcome.status))
        assert together == alone, system
        outcomes[system] = dict(together)
    assert "sha256" in outcomes["erp"][broken] and outcomes["crm"][broken] == "loaded"
    diff = differences(tmp_path / "one", tmp_path / "many")
    assert not diff, diff
    refused = pl.read_parquet(next(many.audit_dir("erp", broken).glob("*.parquet")))
    assert refused["status"].unique().to_list() == ["refused"] and "sha256" in refused["error"][0]
    assert not list(many.raw.glob(f"erp/*/business_date={broken}/*"))


def test_a_range_of_two_contract_versions_lands_as_date_by_date(landing: Path, tmp_path: Path) -> None:
    """A company moving to contract version 2 mid-range (crm's follow-up feed starts): the version-1 drops
    carry no follow-ups, so the entity's files of the range are the version-2 dates' only, and each version-1
    date lands its empty partition, as date by date."""
    import shutil

    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    old = tmp_path / "v1"
    generate(GeneratorConfig(customers=400, days=DAYS, start=START, seed=11, contract_version=1), old)
    v1_days = _days()[:3]
    for day in v1_days:
        shutil.rmtree(drop_folder(copy, "crm", day))
        shutil.copytree(drop_folder(old, "crm", day), drop_folder(copy, "crm", day))
    one, many = (Zones(copy, tmp_path / k / "raw", tmp_path / k / "quarantine") for k in ("one", "many"))
    alone = [(day, load_drop(one, "crm", day, loaded_at=LOADED_AT).contract_version) for day in _days()]
    together = [(day, outcome.contract_version)
                for day, outcome in load_drop_range(many, "crm", _days(), loaded_at=LOADED_AT)]
    assert together == alone == [(d, 1 if d in v1_days else C.CONTRACT_VERSION) for d in _days()]
    diff = differences(tmp_path / "one", tmp_path / "many")
    assert not diff, diff
    assert pl.read_parquet(many.data_file("crm", "feedback_followups", v1_days[0])).height == 0


def test_an_error_reading_a_drop_is_raised_at_its_turn(landing: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An error that is not a refusal (here the disk, reading the fourth date's file) is read with the whole
    range but raised only when that date's turn comes: the three dates before it are landed and audited, the
    later ones not at all."""
    zones = Zones(landing, tmp_path / "raw", tmp_path / "quarantine")
    failing = START + dt.timedelta(days=3)
    real = L.read_manifest

    def read_manifest(folder, system, day, contents=None):  # noqa: ANN001, ANN202
        if day == failing:
            raise OSError(5, "Input/output error", str(folder))
        return real(folder, system, day, contents)

    monkeypatch.setattr(L, "read_manifest", read_manifest)
    landed = []
    with pytest.raises(OSError, match="Input/output error"):
        for day, outcome in load_drop_range(zones, "crm", _days(), loaded_at=LOADED_AT):
            landed.append((day, outcome.status))
    assert landed == [(d, "loaded") for d in _days(3)]
    audited = {d for d in _days() if list(zones.audit_dir("crm", d).glob("*.parquet"))}
    assert audited == set(_days(3))
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_unforeseen_error_in_the_checks_refuses_its_drop_by_name(landing: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """If checking the range together fails, each file is checked alone: the file that fails refuses its own
    drop (named, as an internal error to report), the other dates land."""
    zones = Zones(landing, tmp_path / "raw", tmp_path / "quarantine")
    failing = START + dt.timedelta(days=1)
    real = L.validate

    def boom(raws):  # noqa: ANN001, ANN202
        raise pl.exceptions.ComputeError("planted")

    def validate_alone(raw):  # noqa: ANN001, ANN202
        if raw.path.parent.name == failing.isoformat() and raw.entity.name == "support_cases":
            raise pl.exceptions.ComputeError("planted for one file")
        return real(raw)

    monkeypatch.setattr(L, "validate_many", boom)
    monkeypatch.setattr(L, "validate", validate_alone)
    outcomes = dict(load_drop_range(zones, "crm", _days(3), loaded_at=LOADED_AT))
    refused = outcomes.pop(failing)
    assert isinstance(refused, DropRefused) and refused.path.endswith("support_cases.csv")
    assert "internal error reading this file (ComputeError: planted for one file)" in refused.problem
    assert all(o.status == "loaded" for o in outcomes.values())
    assert not zones.data_file("crm", "customers", failing).exists()
    assert zones.data_file("crm", "customers", START).exists()


# ---- pool.ranges: how a range of dates is cut -------------------------------------------------------------

@pytest.fixture()
def sizes(monkeypatch: pytest.MonkeyPatch) -> dict[dt.date, int]:
    held: dict[dt.date, int] = {}
    monkeypatch.setattr(pool, "drop_size", lambda _zones, _system, day: held.get(day, 0))
    return held


def _cut(n: int, workers: int) -> list[int]:
    zones = Zones(Path("/nowhere"), Path("/nowhere/raw"), Path("/nowhere/q"))
    days = [START + dt.timedelta(days=i) for i in range(n)]
    got = pool.ranges(zones, "crm", days, workers)
    assert [d for r in got for d in r] == days  # every date once, in order
    return [len(r) for r in got]


def test_ranges_hold_at_most_range_dates(sizes: dict[dt.date, int]) -> None:
    assert _cut(20, 1) == [8, 8, 4]


def test_ranges_near_the_end_are_a_workers_share(sizes: dict[dt.date, int]) -> None:
    # 20 dates, two workers: 8 while more than 16 are left, then half of what is left, rounded up
    assert _cut(20, 2) == [8, 6, 3, 2, 1]
    assert _cut(1, 2) == [1]


def test_ranges_hold_at_most_range_bytes_and_a_larger_drop_alone(sizes: dict[dt.date, int],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "RANGE_BYTES", 100)
    for i in range(10):
        sizes[START + dt.timedelta(days=i)] = 30
    sizes[START + dt.timedelta(days=4)] = 500  # a first drop with years of history, say
    assert _cut(10, 1) == [3, 1, 1, 3, 2]


def test_drop_bytes_counts_a_drops_files(landing: Path) -> None:
    zones = Zones(landing, Path("/nowhere/raw"), Path("/nowhere/q"))
    folder = drop_folder(landing, "erp", START)
    assert pool.drop_size(zones, "erp", START) == sum(p.stat().st_size for p in folder.iterdir())
    assert pool.drop_size(zones, "erp", START - dt.timedelta(days=400)) == 0


@pytest.mark.parametrize("value", [
    dt.datetime(2026, 11, 1, 3, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 25, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # another offset
    dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),  # before the epoch
    dt.datetime(2026, 11, 1, 3, 4, 5, 6),  # naive: read as UTC, as the cast reads it
])
def test_a_timestamp_literal_from_its_microseconds_is_the_cast_one(value: dt.datetime) -> None:
    frame = pl.DataFrame({"k": [1]})
    assert frame.select(a=L._ts_lit(value)).equals(frame.select(a=pl.lit(value).cast(L.TS_TYPE)))


def test_the_range_size_benchmark_lands_the_same_zones_with_each_size(landing: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``benchmarks.range_size`` (how RANGE_DATES was chosen) on the week: its table, and the zones of each
    size identical (it exits with the differences otherwise); RANGE_DATES is left as it was."""
    from benchmarks import range_size

    held = pool.RANGE_DATES
    range_size.main([str(landing), "--start", START.isoformat(), "--days", str(DAYS), "--sizes", "1,3",
                     "--rounds", "1"])
    out = capsys.readouterr().out
    assert "the zones of every setting identical" in out
    assert "| 1 |" in out and "| 3 |" in out
    assert held == pool.RANGE_DATES
