"""Land drops with one checkout's code and compare the zones with another's: the raw, quarantine and
audit files must hold the same rows and types (``duration_s`` aside). The check behind ingestion
speed-ups (issue 18): run ``land`` with each checkout on its ``PYTHONPATH``, then ``compare``.

    PYTHONPATH=/work/main   python -m benchmarks.compare_zones land LANDING /tmp/before
    PYTHONPATH=/work/wt-x   python -m benchmarks.compare_zones land LANDING /tmp/after
    python -m benchmarks.compare_zones compare /tmp/before /tmp/after

``land`` loads every complete drop with a fixed ``loaded_at``, each system's dates as a ranged run lands them in
one process, and prints its wall and CPU time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import polars as pl

LOADED_AT = dt.datetime(2026, 11, 1, 3, tzinfo=dt.UTC)


def land(landing: Path, out: Path, only: set[dt.date] | None = None) -> tuple[float, float]:
    """Each system's complete drops (of the dates in ``only``, if given) as a ranged run lands them in one
    process (``load_drops``, ``workers=1``): (wall s, CPU s)."""
    from ingestion.load import Zones
    from ingestion.manifest import complete_drops
    from ingestion.pool import load_drops

    zones = Zones(landing, out / "raw", out / "quarantine")
    days: dict[str, list[dt.date]] = {}
    for system, day, _folder in complete_drops(landing):
        if only is None or day in only:
            days.setdefault(system, []).append(day)
    t0, c0 = time.perf_counter(), time.process_time()
    for system, dates in days.items():
        for _day, _outcome in load_drops(zones, system, sorted(dates), workers=1, loaded_at=LOADED_AT):
            pass
    return time.perf_counter() - t0, time.process_time() - c0


def differences(a: Path, b: Path) -> list[str]:
    """What differs between two output trees: files present in one only, or files whose schema or rows
    differ (the audit's ``duration_s`` ignored)."""
    fa = {p.relative_to(a) for p in a.rglob("*.parquet")}
    fb = {p.relative_to(b) for p in b.rglob("*.parquet")}
    out = [f"only in {a if p in fa else b}: {p}" for p in sorted(fa ^ fb)]
    for rel in sorted(fa & fb):
        x, y = pl.read_parquet(a / rel), pl.read_parquet(b / rel)
        if "_load_audit" in rel.parts:
            x, y = x.drop("duration_s"), y.drop("duration_s")
        if x.schema != y.schema:
            out.append(f"{rel}: schema {x.schema} != {y.schema}")
        elif not x.equals(y):
            out.append(f"{rel}: rows differ ({x.height} / {y.height})")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("land")
    p.add_argument("landing", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("compare")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "land":
        wall, cpu = land(args.landing, args.out)
        print(f"{wall:.2f} s wall, {cpu:.2f} s CPU")
        return
    diff = differences(args.a, args.b)
    n = sum(1 for _ in args.a.rglob("*.parquet"))
    print("\n".join(diff[:50]) or f"{n} files compared: identical")
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
