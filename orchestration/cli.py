"""``cxw``: the project's command line. Each command is thin wiring around framework-free code."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path

import click

from ingestion import settings


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


def _apply_overrides(cfg, overrides: tuple[str, ...]):  # noqa: ANN001, ANN202 - dataclass of any config type
    """Apply ``--set section.field=value`` overrides (e.g. ``mess.resend_rate=0.05``) to the config."""
    for item in overrides:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected section.field=value", param_hint="--set")
        path, raw = item.split("=", 1)
        parts = path.split(".")
        if len(parts) != 2 or parts[0] not in ("mess", "effects"):
            raise click.BadParameter(f"{path!r}: expected mess.<field> or effects.<field>", param_hint="--set")
        section = getattr(cfg, parts[0])
        fields = {f.name: f for f in dataclasses.fields(section)}
        if parts[1] not in fields:
            raise click.BadParameter(f"{parts[0]} has no field {parts[1]!r}; known: {', '.join(sorted(fields))}",
                                     param_hint="--set")
        current = getattr(section, parts[1])
        try:
            value = json.loads(raw) if not isinstance(current, str) else raw
            if isinstance(current, tuple):
                value = tuple(value)
            elif isinstance(current, float):
                value = float(value)
            elif isinstance(current, int):
                value = int(value)
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(f"{item!r}: {exc}", param_hint="--set") from None
        cfg = dataclasses.replace(cfg, **{parts[0]: dataclasses.replace(section, **{parts[1]: value})})
    return cfg


@click.group()
def main() -> None:
    """Customer-experience warehouse: land, validate, model and publish CX data."""


@main.command()
@click.option("--customers", type=click.IntRange(min=1), default=2_000, show_default=True, help="Customers simulated.")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="Nightly drops per system.")
@click.option("--start", callback=_parse_date, default="2026-10-10", show_default=True,
              help="First business date (YYYY-MM-DD).")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed: same seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Landing root. Default: $CX_DATA_DIR/landing.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Override a mess rate or effect size, e.g. --set mess.resend_rate=0.05 (repeatable).")
def generate(
    customers: int, days: int, start: dt.date, seed: int, out: Path | None, overrides: tuple[str, ...]
) -> None:
    """Simulate the company and write one nightly drop per system and business date."""
    from ingestion.generator import TRUTH_FILE, GeneratorConfig
    from ingestion.generator import generate as run

    cfg = _apply_overrides(GeneratorConfig(customers=customers, days=days, start=start, seed=seed), overrides)
    out = out or settings.landing_dir()
    t0 = time.perf_counter()
    bars: dict[str, click.progressbar] = {}
    labels = {"simulate": "simulating days ", "write": "writing drops   "}

    def progress(stage: str, advance: int, total: int) -> None:
        if stage not in bars:
            for other in bars.values():
                other.render_finish()
            bars[stage] = click.progressbar(length=total, label=labels.get(stage, stage), file=sys.stderr,
                                            show_pos=True)
            bars[stage].render_progress()
        bars[stage].update(advance)

    result = run(cfg, out, progress)
    for bar in bars.values():
        bar.render_finish()
    elapsed = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(f"wrote {cfg.days} nights x 4 systems to {out} (truth: {out / TRUTH_FILE})")
    width = max(len(k) for k in result.rows)
    for entity, n in result.rows.items():
        click.echo(f"  {entity:<{width}}  {n:>10,} records")
    click.echo(f"wall time {elapsed:.1f} s, peak memory {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
