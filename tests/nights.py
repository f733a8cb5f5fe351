"""The messy nights shared by the incremental tests (tests/test_*_incremental.py).

A small company with its mess turned up (resends, late arrivals, re-extracts, GDPR erasure requests),
landed night by night. Night N is the latest night (with N+2 still in the window) whose drop of some
system was re-extracted: it first receives the first, incomplete extract (the generator keeps it under
`_superseded/`), and the corrected re-extract arrives after N+2.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl

from ingestion import contract as C
from ingestion.load import Zones, load_drop
from simulator import GeneratorConfig
from simulator.config import Mess

START = dt.date(2026, 9, 1)
DAYS = 16
DAY = dt.timedelta(days=1)
MESS = Mess(resend_rate=0.08, late_arrival_rate=0.08, reextract_rate=0.35, gdpr_erasure_rate=0.06)
COMPANY = GeneratorConfig(customers=400, days=DAYS, start=START, seed=23, mess=MESS)


def superseded_night(landing: Path) -> tuple[dt.date, list[str]]:
    """The latest night N (with N+2 still in the window) that has a superseded first extract, and the
    systems re-extracted that night."""
    found: dict[dt.date, list[str]] = {}
    for folder in (landing / "_superseded").glob("*/*"):
        found.setdefault(dt.date.fromisoformat(folder.name), []).append(folder.parent.name)
    nights = sorted(d for d in found if START + 3 * DAY <= d <= START + (DAYS - 3) * DAY)
    assert nights, f"no re-extracted drop between the 4th and the second-to-last night: {sorted(found)}"
    return nights[-1], sorted(found[nights[-1]])


def lander(data: Path, reextracted: list[str]) -> Callable[..., None]:
    """`land(day, superseded_first=False)`: loads every system's drop of `day` from `data/landing` into
    `data/raw`; with `superseded_first`, the re-extracted systems' first extract (`_superseded/`)."""
    zones = Zones(data / "landing", data / "raw", data / "quarantine")
    first_extract = Zones(data / "landing" / "_superseded", data / "raw", data / "quarantine")

    def land(day: dt.date, *, superseded_first: bool = False) -> None:
        for system in C.SYSTEMS:
            use = first_extract if superseded_first and system in reextracted else zones
            assert load_drop(use, system, day).status == "loaded", (system, day)

    return land


def land_before(land: Callable[..., None], night: dt.date) -> None:
    """Every drop from the company's first day up to the night before `night` (a first build's history)."""
    day = START
    while day < night:
        land(day)
        day += DAY


def land_reextract(data: Path, reextracted: list[str], night: dt.date) -> None:
    """The corrected re-extract of night N's re-extracted systems."""
    zones = Zones(data / "landing", data / "raw", data / "quarantine")
    for system in reextracted:
        assert load_drop(zones, system, night).status == "loaded", system


def sorted_rows(df: pl.DataFrame) -> pl.DataFrame:
    """The frame's rows in one order (every column, nulls last): frames compared row for row."""
    return df.sort(df.columns, nulls_last=True)
