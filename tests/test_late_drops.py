"""A drop landed after the last build, for a business date before the night's window (a late delivery):
the nightly's dbt window starts at its date (orchestration/warehouse.py, ``landed_since_build``).
tests/reliability/test_idempotency.py::test_a_late_drop_after_a_backfill runs it end to end."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from orchestration.warehouse import BUILT_MARK, landed_since_build, mark_built, target_path, window_from, window_vars


def _audit_file(data: Path, system: str, day: str, name: str, mtime: float) -> None:
    folder = data / "raw" / "_load_audit" / system / f"business_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.parquet").write_bytes(b"PAR1")
    os.utime(folder / f"{name}.parquet", (mtime, mtime))


def test_the_earliest_business_date_landed_since_the_last_build(tmp_path: Path) -> None:
    _audit_file(tmp_path, "erp", "2026-10-03", "a", 1_000.0)
    _audit_file(tmp_path, "crm", "2026-10-05", "a", 1_000.0)
    assert landed_since_build(tmp_path, None) is None  # no build recorded yet: nothing to widen
    mark_built(tmp_path, None, 2_000.0)
    assert (target_path(tmp_path, None) / BUILT_MARK).exists()
    assert landed_since_build(tmp_path, None) is None  # everything landed before the build
    _audit_file(tmp_path, "crm", "2026-10-09", "b", 3_000.0)  # the night's own drop
    assert landed_since_build(tmp_path, None) == dt.date(2026, 10, 9)
    _audit_file(tmp_path, "erp", "2026-10-03", "b", 3_000.0)  # a late drop, re-delivered
    _audit_file(tmp_path, "survey", "2026-10-06", "a", 3_500.0)
    assert landed_since_build(tmp_path, None) == dt.date(2026, 10, 3)
    assert landed_since_build(tmp_path, "spark") is None  # each engine's warehouse has its own mark
    mark_built(tmp_path, None, 4_000.0)
    assert landed_since_build(tmp_path, None) is None


def test_the_window_starts_at_a_late_drop_only_when_earlier() -> None:
    night = window_vars(dt.date(2026, 10, 9), dt.date(2026, 10, 10))
    assert window_from(night, None) == night
    assert window_from(night, dt.date(2026, 10, 9)) == night
    assert window_from(night, dt.date(2026, 10, 12)) == night
    assert window_from(night, dt.date(2026, 10, 3)) == {"min_date": "2026-10-03", "max_date": "2026-10-10",
                                                       "as_of": "2026-10-09"}
