"""Ingestion throughput against bare polars on the same files, measured in one run.

    python -m benchmarks.ingestion_throughput --customers 100000 --days 30 [--repeat 3]
    python -m benchmarks.ingestion_throughput --landing data/landing

1. ours: ``ingestion.load.load_drop`` for every drop (manifest checks, parsing, validation, quarantine,
   lineage, atomic Parquet writes, audit) - the function the Dagster assets call - each system's dates
   through ``ingestion.pool.load_drops``, ``CX_INGEST_WORKERS`` processes at once, as a ranged run lands them;
2. bare: ``pl.read_csv`` (after decoding cp1252) / ``pl.read_ndjson`` + ``write_parquet`` per file.

Prints rows/s for both and the ratio; ``--record`` appends a line to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks.stage import TreeRss
from ingestion import contract as C
from ingestion import settings
from ingestion.load import Zones
from ingestion.manifest import DropRefused, complete_drops
from ingestion.pool import load_drops
from simulator import GeneratorConfig, generate

RESULTS = Path(__file__).with_name("RESULTS.md")


def bare_polars(landing: Path, out: Path) -> int:
    rows = 0
    for system, _day, folder in complete_drops(landing):
        for e in C.entities_of(system):
            path = folder / e.filename
            if e.format == "jsonl":
                data = path.read_bytes()
                df = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None) if data else pl.DataFrame()
            else:
                text = path.read_bytes().decode(e.encoding)
                df = pl.read_csv(io.StringIO(text), separator=e.separator, infer_schema=False)
            target = out / system / e.name
            target.mkdir(parents=True, exist_ok=True)
            df.write_parquet(target / f"{folder.name}.parquet", compression="zstd")
            rows += df.height
    return rows


def ours(landing: Path, out: Path, workers: int | None = None) -> int:
    """What the ranged ``ingest`` run lands (``ingestion.pool.load_drops``: each system's dates, ``workers``
    processes at once, ``CX_INGEST_WORKERS`` by default)."""
    zones = Zones(landing, out / "raw", out / "quarantine")
    workers = settings.ingest_workers() if workers is None else workers
    days: dict[str, list[dt.date]] = {}
    for system, day, _folder in complete_drops(landing):
        days.setdefault(system, []).append(day)
    rows = 0
    for system, dates in days.items():
        for _day, result in load_drops(zones, system, sorted(dates), workers=workers):
            if isinstance(result, DropRefused):
                raise result
            rows += sum(e.manifest_rows for e in result.entities)
    return rows


def measure(fn, landing: Path, repeat: int) -> tuple[float, int]:  # noqa: ANN001
    times, rows = [], 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rows = fn(landing, Path(tmp))
            times.append(time.perf_counter() - t0)
    return statistics.median(times), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--landing", type=Path)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true", help="append the result to benchmarks/RESULTS.md")
    args = ap.parse_args()
    tmp = None
    landing = args.landing
    if landing is None:
        tmp = Path(tempfile.mkdtemp())
        landing = tmp / "landing"
        generate(GeneratorConfig(customers=args.customers, days=args.days), landing)
    try:
        # interleaved in one run so both see the same machine state; the memory of the ingestion workers counts
        with TreeRss() as rss:
            t_bare, rows_bare = measure(bare_polars, landing, args.repeat)
            t_ours, rows_ours = measure(ours, landing, args.repeat)
    finally:
        if tmp:
            shutil.rmtree(tmp)
    assert rows_bare == rows_ours, (rows_bare, rows_ours)
    peak = rss.figures()["peak_rss_mib"]  # with a generated landing, never below the generation's peak
    line = (f"| {dt.date.today()} | ingestion vs bare polars | {platform.machine()} {platform.python_version()} "
            f"polars {pl.__version__} | {args.customers if not args.landing else '-'} x {args.days} | "
            f"{rows_ours:,} rows | ours {t_ours:.2f} s ({rows_ours / t_ours:,.0f} rows/s) | "
            f"bare {t_bare:.2f} s ({rows_bare / t_bare:,.0f} rows/s) | ratio {t_bare / t_ours:.2f}x | "
            f"median of {args.repeat}, peak RSS {peak:,.0f} MiB |")
    print(line)
    if args.record:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nAppended by the scripts in this folder; one line per run.\n\n")
        with RESULTS.open("a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
