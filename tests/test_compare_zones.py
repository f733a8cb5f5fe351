"""benchmarks/compare_zones.py, the before/after check of ingestion speed-ups, finds what differs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from benchmarks.compare_zones import differences


def _tree(root: Path, data: pl.DataFrame, audit: pl.DataFrame) -> Path:
    (root / "raw/crm/customers/business_date=2026-10-01").mkdir(parents=True)
    (root / "raw/_load_audit/crm/business_date=2026-10-01").mkdir(parents=True)
    data.write_parquet(root / "raw/crm/customers/business_date=2026-10-01/data.parquet")
    audit.write_parquet(root / "raw/_load_audit/crm/business_date=2026-10-01/abc.parquet")
    return root


def test_differences_ignore_the_audit_duration_and_nothing_else(tmp_path: Path) -> None:
    data = pl.DataFrame({"customer_id": ["C1", "C2"], "n": [1, 2]})
    audit = pl.DataFrame({"file": ["crm/customers.csv"], "loaded": [2], "duration_s": [0.5],
                          "loaded_at": [dt.datetime(2026, 11, 1, tzinfo=dt.UTC)]})
    a = _tree(tmp_path / "a", data, audit)
    assert differences(a, _tree(tmp_path / "b", data, audit.with_columns(duration_s=pl.lit(0.9)))) == []
    assert differences(a, _tree(tmp_path / "c", data.with_columns(pl.col("n").cast(pl.Int32)), audit))  # a type
    assert differences(a, _tree(tmp_path / "d", data.reverse(), audit))  # row order
    assert differences(a, _tree(tmp_path / "e", data, audit.with_columns(loaded=pl.lit(3, pl.Int64))))
    f = _tree(tmp_path / "f", data, audit)
    (f / "raw/crm/customers/business_date=2026-10-01/data.parquet").rename(f / "raw/crm/other.parquet")
    assert len(differences(a, f)) == 2  # one file only in each tree
