"""The load audit held in memory by a run (``expectations.drops.AuditHistory``) judges every drop as
the audit read from disk does: the same health rows, the same re-judged later dates, for loaded,
refused and not-delivered drops and for a corrected re-extract; and a volume anomaly on a date of
the range is found against the dates landed before it in the same range."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import statistics
from pathlib import Path

import pytest

from expectations import anomaly
from expectations.drops import AuditHistory, _loaded, _trailing, drop_counts, drop_health, is_missing, rejudge_later
from expectations.health import HealthRow
from ingestion import contract as C
from ingestion.load import Zones, load_drop
from ingestion.manifest import DropRefused
from simulator import GeneratorConfig, generate

from . import drop_edit

START = dt.date(2026, 9, 1)
DAYS = 12
DAY = [START + dt.timedelta(days=i) for i in range(DAYS)]
SPIKE = DAY[9]  # crm.campaign_touches delivers 10x its volume of that day: judged against DAY[0..8]
REFUSED = DAY[4]  # erp: a byte flipped, the sha256 no longer matches
MISSING = DAY[6]  # survey: no manifest yet
REDELIVERED = DAY[3]  # crm: corrected re-extract after the range, half its campaign touches
LOADED_AT = dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit_cache") / "landing"
    generate(GeneratorConfig(customers=300, days=DAYS, start=START, seed=18), root)
    spike = drop_edit.folder(root, "crm", SPIKE)
    header, rows = drop_edit.read(spike, "crm", "campaign_touches")
    drop_edit.write(spike, "crm", "campaign_touches", header, rows * 10)  # duplicates are valid records
    bad = drop_edit.folder(root, "erp", REFUSED) / "orders.csv"
    data = bytearray(bad.read_bytes())
    data[-2] = ord("x") if data[-2] != ord("x") else ord("y")
    bad.write_bytes(bytes(data))
    (drop_edit.folder(root, "survey", MISSING) / C.MANIFEST_NAME).unlink()
    return root


def _land(zones: Zones, system: str, day: dt.date, at: dt.datetime, cfg: dict,
          audit: AuditHistory | None) -> tuple[list, list, dict]:
    """What ``_land_day`` computes for one drop: the counts before and after, its health rows and the
    later dates judged again."""
    before = drop_counts(zones, system, day, audit)
    try:
        result = load_drop(zones, system, day, loaded_at=at, on_audit=audit.record if audit else None)
    except DropRefused as exc:
        missing = is_missing(exc.problem)
        rows = drop_health(zones, system, day, None, error=str(exc), missing=missing, cfg=cfg, audit=audit)
        return before, rows, {}
    rows = drop_health(zones, system, day, result, cfg=cfg, audit=audit)
    later = rejudge_later(zones, system, day, cfg=cfg, audit=audit)
    return [before, drop_counts(zones, system, day, audit)], rows, later


def _run(landing: Path, where: Path, cached: bool, reopen: int | None = None) -> dict:
    """Every system's drops in date order, then a corrected re-extract of one date, with the audit held
    in memory (one AuditHistory per system for the whole run) or read from disk at each judgment.
    ``reopen``: a new AuditHistory per system from that date on, reading what the dates before it left
    on disk (as the next run of a backfill does)."""
    cfg = anomaly.load_config()
    h = int(cfg["anomaly"]["history_days"])
    shutil.copytree(landing, where / "landing")
    zones = Zones(where / "landing", where / "raw", where / "quarantine")

    def held() -> dict[str, AuditHistory]:
        return {s: AuditHistory(zones, s, START - dt.timedelta(days=h), DAY[-1] + dt.timedelta(days=h))
                for s in C.SYSTEMS} if cached else {}

    audits = held()
    out = {}
    for i, day in enumerate(DAY):
        if i == reopen:
            audits = held()
        for system in C.SYSTEMS:
            out[(system, day)] = _land(zones, system, day, LOADED_AT + dt.timedelta(minutes=i), cfg,
                                       audits.get(system))
    drop = drop_edit.folder(zones.landing, "crm", REDELIVERED)
    header, rows = drop_edit.read(drop, "crm", "campaign_touches")
    drop_edit.write(drop, "crm", "campaign_touches", header, rows[: len(rows) // 2])
    out[("crm", REDELIVERED, "again")] = _land(zones, "crm", REDELIVERED, LOADED_AT + dt.timedelta(hours=1), cfg,
                                               audits.get("crm"))

    def here(row: HealthRow) -> HealthRow:  # the messages of refusals name the file by its full path
        return dataclasses.replace(row, message=row.message and row.message.replace(str(where), "<data>"))

    return {key: (counts, [here(r) for r in rows], {d: [here(r) for r in rs] for d, rs in later.items()})
            for key, (counts, rows, later) in out.items()}


@pytest.fixture(scope="module")
def runs(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    base = tmp_path_factory.mktemp("runs")
    return _run(landing, base / "disk", cached=False), _run(landing, base / "memory", cached=True)


def test_a_history_read_from_disk_judges_as_the_audit_on_disk(runs: tuple[dict, dict], landing: Path,
                                                               tmp_path: Path) -> None:
    """A history opened on dates already landed (the refused and the re-extracted dates among them) holds
    what their audit files hold: the later dates and the re-extract are judged as from disk."""
    uncached, _ = runs
    reopened = _run(landing, tmp_path, cached=True, reopen=DAY.index(MISSING) + 1)
    assert reopened.keys() == uncached.keys()
    for key in uncached:
        assert reopened[key] == uncached[key], key


def _manifest_rows(landing: Path, system: str, entity: str, day: dt.date) -> int:
    manifest = json.loads((drop_edit.folder(landing, system, day) / C.MANIFEST_NAME).read_text())
    return next(f["rows"] for f in manifest["files"] if f["entity"] == entity)


def test_the_audit_in_memory_judges_as_the_audit_on_disk(runs: tuple[dict, dict]) -> None:
    uncached, cached = runs
    assert uncached.keys() == cached.keys()
    for key in uncached:
        assert cached[key] == uncached[key], key
    # what the comparison covered: loaded, refused and missing drops, and later dates judged again
    statuses = {(r.check_name, r.status) for _, rows, _ in uncached.values() for r in rows}
    assert {("drop_accepted", "fail"), ("drop_delivered", "warn"), ("drop_volume", "pass"),
            ("drop_volume", "warn"), ("drop_volume", "no_baseline")} <= statuses
    assert any(later for _, _, later in uncached.values())


def _volume(rows: list, subject: str):  # noqa: ANN202 - a HealthRow
    return next(r for r in rows if r.check_name == "drop_volume" and r.subject == subject)


def test_a_volume_spike_is_found_against_the_earlier_dates_of_the_same_range(
        runs: tuple[dict, dict], landing: Path) -> None:
    _, cached = runs
    row = _volume(cached[("crm", SPIKE)][1], "crm.campaign_touches")
    observed = _manifest_rows(landing, "crm", "campaign_touches", SPIKE)
    usual = statistics.median(_manifest_rows(landing, "crm", "campaign_touches", d) for d in DAY[:9])
    assert observed > 4 * usual
    assert row.status == "warn", row
    assert row.observed_value == observed
    assert f"{observed} records, usual {usual:.0f}" in row.message
    assert row.expected_range.endswith("(9 days, all days)")  # every date before it, all in the range
    # the next date's history holds the spike: 10 dates
    row = _volume(cached[("crm", DAY[10])][1], "crm.campaign_touches")
    assert row.expected_range.endswith("(10 days, all days)")


def test_a_refused_or_missing_drop_is_left_out_of_the_later_baselines(runs: tuple[dict, dict]) -> None:
    _, cached = runs
    assert {r.status for r in cached[("erp", REFUSED)][1] if r.check_name == "drop_accepted"} == {"fail"}
    assert {r.status for r in cached[("survey", MISSING)][1] if r.check_name == "drop_delivered"} == {"warn"}
    assert _volume(cached[("erp", DAY[-1])][1], "erp.orders").expected_range.endswith(f"({DAYS - 2} days, all days)")
    assert _volume(cached[("crm", DAY[-1])][1], "crm.customers").expected_range.endswith(
        f"({DAYS - 1} days, all days)")
    survey = cached[("survey", DAY[-1])][1]
    assert _volume(survey, "survey.responses").expected_range.endswith(f"({DAYS - 2} days, all days)")


def test_the_re_extract_replaces_the_dates_attempt_and_rejudges_the_later_ones(
        runs: tuple[dict, dict], landing: Path) -> None:
    _, cached = runs
    (before, after), _, later = cached[("crm", REDELIVERED, "again")]
    first = _manifest_rows(landing, "crm", "campaign_touches", REDELIVERED)
    assert dict((e, n) for e, n, _q in before)["campaign_touches"] == first
    assert dict((e, n) for e, n, _q in after)["campaign_touches"] == first // 2
    assert sorted(later) == DAY[DAY.index(REDELIVERED) + 1:]


def test_a_stale_history_would_be_caught(landing: Path, tmp_path: Path) -> None:
    """The comparison above has teeth: a history that is not told of the attempts (no ``on_audit``)
    judges the spike without the dates of the range before it."""
    cfg = anomaly.load_config()
    shutil.copytree(landing, tmp_path / "landing")
    zones = Zones(tmp_path / "landing", tmp_path / "raw", tmp_path / "quarantine")
    stale = AuditHistory(zones, "crm", START - dt.timedelta(days=56), DAY[-1] + dt.timedelta(days=56))
    for i, day in enumerate(DAY[: DAY.index(SPIKE) + 1]):
        result = load_drop(zones, "crm", day, loaded_at=LOADED_AT + dt.timedelta(minutes=i))
    rows = drop_health(zones, "crm", SPIKE, result, cfg=cfg, audit=stale)
    fresh = drop_health(zones, "crm", SPIKE, result, cfg=cfg)
    assert _volume(rows, "crm.campaign_touches").status == "no_baseline"
    assert _volume(fresh, "crm.campaign_touches").status == "warn"


def test_a_dates_attempt_counts_only_when_every_entity_loaded() -> None:
    """``_loaded`` and ``_trailing`` on hand-made attempts: a date counts in the baselines only if its
    latest attempt loaded (every entity: one refused entity refuses the date), a trailing window holds
    the loaded rows of the dates before the day (not the day itself, not before the window), per entity."""
    d = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(5)]
    attempts = {
        d[0]: [("orders", "orders.csv", 100, 1, "loaded"), ("lines", "lines.csv", 300, 0, "loaded")],
        d[1]: [("orders", "orders.csv", 90, 0, "loaded"), ("lines", "lines.csv", 0, 0, "refused")],
        d[2]: [("orders", "a.csv", 110, 3, "loaded"), ("lines", "b.csv", 310, 2, "loaded")],
        d[4]: [("orders", "orders.csv", 120, 0, "loaded")],
    }
    assert _loaded(attempts, d[0]) == [("lines", "lines.csv", 300, 0), ("orders", "orders.csv", 100, 1)]
    assert _loaded(attempts, d[1]) is None  # one entity refused: the drop did not load
    assert _loaded(attempts, d[2]) == [("lines", "b.csv", 310, 2), ("orders", "a.csv", 110, 3)]  # by entity
    assert _loaded(attempts, d[3]) is None  # no attempt
    assert _trailing(attempts, d[4], 3) == {"orders": [(d[1], 90, 0), (d[2], 110, 3)], "lines": [(d[2], 310, 2)]}
    assert _trailing(attempts, d[4], 4) == {"orders": [(d[0], 100, 1), (d[1], 90, 0), (d[2], 110, 3)],
                                            "lines": [(d[0], 300, 0), (d[2], 310, 2)]}
    assert _trailing(attempts, d[0], 4) == {}
