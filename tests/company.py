"""A generated company landed and built for the tests that need a warehouse of their own size: generate
the drops, land every night of every system with the project's ingestion, build the models (and seeds)
without their tests (the dbt tests run on the shared warehouses of test_warehouse.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from ingestion import contract as C
from ingestion.load import DropLoad, Zones, load_drop
from orchestration.warehouse import run_dbt
from simulator import GeneratorConfig, generate

WITHOUT_TESTS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]


def last_day(cfg: GeneratorConfig) -> dt.date:
    return cfg.end - dt.timedelta(days=1)


def land(data: Path, cfg: GeneratorConfig,
         on_load: Callable[[Zones, str, dt.date, DropLoad], None] | None = None) -> Zones:
    """Generate ``cfg``'s drops under ``data/landing`` and land every night of every system; ``on_load``
    sees each load."""
    generate(cfg, data / "landing")
    zones = Zones(data / "landing", data / "raw", data / "quarantine")
    for i in range(cfg.days):
        day = cfg.start + dt.timedelta(days=i)
        for system in C.SYSTEMS:
            result = load_drop(zones, system, day)
            if on_load:
                on_load(zones, system, day, result)
    return zones


def build_models(data: Path, as_of: dt.date, select: Sequence[str] = ()) -> None:
    """``dbt build`` of the models and seeds (all, or ``select``) as of ``as_of``, without tests."""
    run_dbt(["build", *(["--select", *select] if select else []), *WITHOUT_TESTS], data_dir=data,
            dbt_vars={"as_of": as_of.isoformat()})
