"""A full disk (docs/reliability.md): the data directory on a small tmpfs that fills up.

Each scenario gets a clear error naming the path that could not be written, keeps the previous
version (raw file, served copy) intact, and succeeds once space is freed. Mounting needs root and a
kernel that lets this process mount; where it cannot, the tests skip and say why.

``make test`` runs the two file-level scenarios (a raw write, a publish); ``make reliability`` also
fills the disk during a whole night's ingestion, dbt build and publish.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingestion.disk import DiskFull
from ingestion.load import write_parquet_atomic
from orchestration.publish import publish
from tests.reliability import conftest
from tests.reliability.harness import NIGHT_TWO, Site, contents, cxw, digest, leftovers

MiB = 1024 * 1024


@contextmanager
def small_disk(path: Path, size: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({(done.stderr or done.stdout).strip() or 'mount failed'})"
        record(scenario="disk full", killed_at="-", next_run_ok=None, equal=None, rows_lost=0, leftovers=0,
               next_run_s=None, cleaned=[f"skipped: {reason}"])
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def fill(fs: Path, leave: int = 0) -> Path:
    """A ballast file that leaves ``leave`` bytes free (as near as the filesystem's blocks allow)."""
    ballast = fs / "ballast"
    free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
    with ballast.open("ab") as fh:
        remaining = max(0, free - leave)
        chunk = b"\0" * MiB
        try:
            while remaining > 0:
                n = fh.write(chunk[:min(MiB, remaining)])
                remaining -= n
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def noise(rows: int, seed: int = 1) -> pl.DataFrame:
    """Rows that do not compress (a Parquet file of about 40 bytes per row)."""
    return pl.DataFrame({"id": range(rows)}).with_columns(
        pl.col("id").hash(seed).cast(pl.Utf8).alias("a"), pl.col("id").hash(seed + 1).cast(pl.Utf8).alias("b"))


@pytest.mark.reliability
def test_a_full_disk_during_a_raw_write_names_the_file_and_keeps_the_previous_version(tmp_path: Path) -> None:
    with small_disk(tmp_path / "fs", 16 * MiB) as fs:
        target = fs / "raw" / "erp" / "orders" / "business_date=2026-10-13" / "data.parquet"
        write_parquet_atomic(noise(100), target)
        before = target.read_bytes()
        fill(fs, leave=64 * 1024)
        with pytest.raises(DiskFull) as err:
            write_parquet_atomic(noise(100_000, seed=2), target)
        message = str(err.value)
        assert str(target) in message and "no space left on device" in message and "previous version" in message
        assert err.value.errno == errno.ENOSPC
        assert target.read_bytes() == before
        assert [p.name for p in target.parent.iterdir()] == ["data.parquet"]  # no temporary file left
        (fs / "ballast").unlink()
        write_parquet_atomic(noise(100_000, seed=2), target)  # space freed: the next write succeeds
        assert pl.read_parquet(target).height == 100_000


def _served(serving: Path) -> tuple[str, dict[str, str]]:
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        rows = con.execute("select * from t order by id").fetchall()
    parquet = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((serving / "parquet").iterdir())}
    return hashlib.sha256(repr(rows).encode()).hexdigest(), parquet


@pytest.mark.reliability
def test_a_full_disk_during_publish_keeps_the_served_copy(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.register("small", noise(1_000).to_arrow())
        con.execute("create table marts.t as select * from small")
    with small_disk(tmp_path / "fs", 8 * MiB) as fs:
        serving = fs / "serving"
        publish(warehouse, serving, as_of="2026-10-12")
        before = _served(serving)
        with duckdb.connect(str(warehouse)) as con:
            con.register("big", noise(400_000, seed=3).to_arrow())
            con.execute("create or replace table marts.t as select * from big")
        with pytest.raises(DiskFull) as err:
            publish(warehouse, serving, as_of="2026-10-13")
        assert str(serving) in str(err.value) and "previous served copy, unchanged" in str(err.value)
        assert _served(serving) == before
        assert not [p for p in serving.rglob("*") if p.name.endswith((".tmp", ".tmp.wal"))]
        assert len(list((serving / "parquet_versions").iterdir())) == 1
        grow(fs, 128 * MiB)
        publish(warehouse, serving, as_of="2026-10-13")
        with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
            assert con.execute("select count(*) from t").fetchone()[0] == 400_000
    record(scenario="disk full during a raw write and a publish", killed_at="-", next_run_ok=True, equal=True,
           rows_lost=0, leftovers=0, next_run_s=None, cleaned=[])


# --- a whole night on a filling disk (make reliability) -----------------------------------------------

def _used(fs: Path) -> int:
    st = os.statvfs(fs)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.fixture(scope="module")
def night_growth(night_one: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Bytes night two adds on disk by the end of ingestion, of dbt and the gate, and of the publish
    (measured by stopping a copy at the crash points before dbt and before the publish)."""
    growth = {}
    for phase, point in (("ingest", "dbt.before_build"), ("build", "publish.start"), ("publish", None)):
        root = tmp_path_factory.mktemp(f"measure_{phase}")
        with small_disk(root / "fs", 1024 * MiB) as fs:
            site = night_one.copy(fs, home=root / "dagster_home")
            base = _used(fs)
            cxw(site, "nightly", "--date", NIGHT_TWO.isoformat(), crash_at=point)
            growth[phase] = _used(fs) - base
    return growth


CATEGORY = "disk full"  # the section of RELIABILITY.md
record = functools.partial(conftest.record, category=CATEGORY)
PHASES = {  # free space left before night two, as a share of what each phase adds, and the step that must fail
    "ingest": (lambda g: g["ingest"] // 3, "land_"),
    "build": (lambda g: g["ingest"] + (g["build"] - g["ingest"]) // 4, "cx_dbt"),
    "publish": (lambda g: g["build"] + (g["publish"] - g["build"]) // 4, "serving"),
}


@pytest.mark.reliability
@pytest.mark.reliability_full
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_a_disk_filling_up_during_a_night(phase: str, night_one: Site, reference: dict, night_growth: dict,
                                         tmp_path: Path) -> None:
    leave, failing_step = PHASES[phase]
    with small_disk(tmp_path / "fs", 1024 * MiB) as fs:
        site = night_one.copy(fs, home=tmp_path / "dagster_home")  # the data directory fills, not the instance
        served_before = {k: v for k, v in digest(contents(site)).items()
                         if k.startswith(("served:", "parquet:")) and "data_health" not in k}
        fill(fs, leave=leave(night_growth))
        t0 = dt.datetime.now()
        full = cxw(site, "nightly", "--date", NIGHT_TWO.isoformat())
        said = full.stdout + full.stderr
        assert full.returncode != 0, said
        assert f"step {failing_step}" in said or f"{failing_step}" in said, said
        assert "no space left on device" in said.lower() and str(site.data) in said, said
        if phase == "build":  # DuckDB's error, then what to do: where it spills and how much is free there
            assert "CX_DUCKDB_TEMP_DIRECTORY" in said and "GB free there" in said, said
        served_after = {k: v for k, v in digest(contents(site)).items() if k in served_before}
        assert served_after == served_before  # BI still reads night one
        (fs / "ballast").unlink()
        again = cxw(site, "nightly", "--date", NIGHT_TWO.isoformat())
        assert again.returncode == 0, again.stdout + again.stderr
        got = contents(site)
        left = leftovers(site)
        record(scenario=f"disk full during {phase}", killed_at=f"ENOSPC in {failing_step}",
               next_run_ok=True, equal=digest(got) == digest(reference), rows_lost=0, leftovers=len(left),
               next_run_s=round((dt.datetime.now() - t0).total_seconds(), 1), cleaned=[])
        assert digest(got) == digest(reference)
        assert not left, left
