"""How many dates a worker should validate together (``ingestion.pool.RANGE_DATES``): the same drops landed in
one process with each setting, interleaved round by round, CPU and wall time per setting, and the zones of
every setting compared with the first's (they must be identical: the setting changes only how many files
share one polars plan).

    python -m benchmarks.range_size bench_work/M/landing --start 2026-09-01 --days 30 --sizes 1,4,8,16

Prints one Markdown table (median of ``--rounds``) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks import compare_zones
from ingestion import pool


def land(landing: Path, out: Path, days: list[dt.date], size: int) -> tuple[float, float]:
    """Every system's drops of ``days`` in this process, ``size`` dates a range: (wall s, CPU s)."""
    held = pool.RANGE_DATES
    pool.RANGE_DATES = size
    try:
        return compare_zones.land(landing, out, set(days))
    finally:
        pool.RANGE_DATES = held


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("landing", type=Path)
    ap.add_argument("--start", type=dt.date.fromisoformat, required=True)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--sizes", default="1,4,8,16", help="dates a range, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    days = [args.start + dt.timedelta(days=i) for i in range(args.days)]
    sizes = [int(s) for s in args.sizes.split(",")]
    times: dict[int, list[tuple[float, float]]] = {s: [] for s in sizes}
    work = Path(tempfile.mkdtemp(prefix="range_size_"))
    try:
        for r in range(args.rounds):
            for size in sizes:
                out = work / f"{size}"
                shutil.rmtree(out, ignore_errors=True)
                times[size].append(land(args.landing, out, days, size))
                print(f"round {r + 1}, {size} dates a range: {times[size][-1][0]:.2f} s wall, "
                      f"{times[size][-1][1]:.2f} s CPU", flush=True)
        for size in sizes[1:]:
            diff = compare_zones.differences(work / f"{sizes[0]}", work / f"{size}")
            if diff:
                raise SystemExit(f"{size} dates a range landed other zones than {sizes[0]}: {diff[:5]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(c for _w, c in times[sizes[0]])
    print(f"\n{args.days} dates from {args.start} of {args.landing}, one process, median of {args.rounds} "
          f"interleaved rounds; the zones of every setting identical\n")
    print(f"| dates a range | wall | CPU | CPU against {sizes[0]} a range |")
    print("|---|---|---|---|")
    for size in sizes:
        wall = statistics.median(w for w, _c in times[size])
        cpu = statistics.median(c for _w, c in times[size])
        print(f"| {size} | {wall:.2f} s | {cpu:.2f} s | {cpu / base:.2f} |")


if __name__ == "__main__":
    main()
