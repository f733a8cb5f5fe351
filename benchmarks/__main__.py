"""``python -m benchmarks``: measure the pipeline at a scale and append the figures to RESULTS.md.

    python -m benchmarks --scale S --record          # 10k customers x 30 days, ~10 min
    python -m benchmarks --scale M --record          # 100k x 365, about an hour
    python -m benchmarks --scale L --record          # 1M x 730, on demand (hours; docs/benchmarks.md)
    python -m benchmarks --scale tiny                # smoke run (CI)
    python -m benchmarks --render bench_work/L/partial.json --record   # record a run that was cut short

DuckDB settings come from CX_DUCKDB_THREADS, CX_DUCKDB_MEMORY_LIMIT, CX_DUCKDB_PRESERVE_INSERTION_ORDER and
CX_DUCKDB_TEMP_DIRECTORY (defaults tuned for 2 cores / 24 GiB).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from benchmarks import harness
from ingestion import settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(harness.SCALES), default="S")
    ap.add_argument("--customers", type=int, help="override the scale's customer count")
    ap.add_argument("--days", type=int, help="override the scale's number of days (>= 2)")
    ap.add_argument("--repeat", type=int, help="runs per cheap stage (default: the scale's)")
    ap.add_argument("--build-repeat", type=int, help="runs per full dbt build (default: the scale's)")
    ap.add_argument("--workdir", type=Path, default=Path("bench_work"),
                    help="where drops, raw zone and warehouse of each scale go (default: ./bench_work)")
    ap.add_argument("--reuse-landing", action="store_true",
                    help="keep drops already generated for this scale in the workdir (generation is not re-timed)")
    ap.add_argument("--measures", help="comma-separated measures to run, in order (default: the scale's; "
                    f"known: {', '.join(harness.MEASURES)}; 'bare' right after 'ingest' interleaves the two)")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="render (and with --record, append) the results saved by an earlier run, e.g. the "
                         "partial.json of a run cut short, instead of running anything")
    ap.add_argument("--night-reference", type=Path, metavar="JSON",
                    help="the results of a smaller scale's run on this machine (benchmarks/results/*-S.json): row 3b "
                         "compares this run's night with its night (the target: M's night <= 1.5x S's)")
    ap.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    ap.add_argument("--results", type=Path, default=harness.RESULTS, help="the Markdown file --record appends to")
    a = ap.parse_args(argv)
    reference = json.loads(a.night_reference.read_text(encoding="utf-8")) if a.night_reference else None

    def with_reference(res: dict) -> dict:
        if reference:
            res["night_reference"] = harness.night_reference(res, reference)
        return res

    if a.render:
        try:
            res = with_reference(json.loads(a.render.read_text(encoding="utf-8")))
        except ValueError as exc:
            ap.error(f"--night-reference: {exc}")
        print(harness.render(res))
        if a.record:
            harness.record(res, a.results)
            print(f"appended to {a.results}", file=sys.stderr)
        return 0
    scale = harness.SCALES[a.scale]
    if a.customers or a.days:
        scale = dataclasses.replace(scale, customers=a.customers or scale.customers, days=a.days or scale.days)
    if a.measures:
        measures = tuple(m.strip() for m in a.measures.split(",") if m.strip())
        unknown = [m for m in measures if m not in harness.MEASURES]
        if unknown or "ingest" not in measures:
            ap.error(f"--measures: unknown {', '.join(unknown)}" if unknown else "--measures must include ingest")
        if "nightly" in measures and ("build" not in measures or measures.index("nightly") < measures.index("build")):
            ap.error("--measures: nightly needs build (each night starts from the full build's warehouse)")
        scale = dataclasses.replace(scale, measures=measures)
    if scale.days < 2:
        ap.error("--days must be at least 2 (history plus one new night)")
    if reference:  # refused before hours of measuring, not after
        try:
            with_reference({"scale": dataclasses.asdict(scale), "machine": harness.machine(),
                            "duckdb_settings": settings.duckdb_settings()})
        except ValueError as exc:
            ap.error(f"--night-reference: {exc}")
    try:
        res = harness.run(scale, a.workdir, a.repeat, a.build_repeat, a.reuse_landing)
    except (harness.StageError, harness.DiskError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    res = with_reference(res)  # checked before the run
    print(harness.render(res))
    if a.record:
        harness.record(res, a.results)
        print(f"appended to {a.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
