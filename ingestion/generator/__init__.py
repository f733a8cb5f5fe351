"""The synthetic source systems: a simulated company whose CRM, ERP, billing and survey tool
deliver nightly drops that follow the landing contract, with documented mess and planted effects.

``generate(config, out)`` writes ``<out>/<system>/<business_date>/...`` and ``<out>/truth.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingestion import contract as C

from .config import Effects, GeneratorConfig, Mess
from .mess import MessReport, plant
from .records import build_records
from .render import corrupt, to_text
from .simulate import simulate
from .truth import build_truth
from .writer import SUPERSEDED_DIR, write_all

TRUTH_FILE = "truth.json"

__all__ = ["Effects", "GeneratorConfig", "Mess", "generate", "GenerationResult", "TRUTH_FILE", "SUPERSEDED_DIR"]


@dataclass
class GenerationResult:
    out: Path
    truth: dict

    @property
    def rows(self) -> dict[str, int]:
        return self.truth["volumes"]["records_delivered"]


Progress = Callable[[str, int, int], None]  # (stage, advance, total)


def generate(cfg: GeneratorConfig, out: Path, progress: Progress | None = None) -> GenerationResult:
    """Simulate ``cfg.days`` nights of the company and write every drop under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def tick(stage: str, total: int) -> Callable[[int], None] | None:
        return (lambda k: progress(stage, k, total)) if progress else None

    sim = simulate(cfg, tick("simulate", cfg.days))
    records = build_records(sim)
    report = MessReport()
    records = plant(records, cfg, report)
    rng = np.random.default_rng([cfg.seed, 3])
    texts = {}
    for key, df in records.items():
        e = C.ENTITIES[key]
        texts[key] = corrupt(e, to_text(e, df), cfg, rng, report)
    reextracts, rows = write_all(texts, cfg, out, tick("write", cfg.days * len(C.SYSTEMS)))
    truth = build_truth(cfg, sim, records, report, reextracts, rows)
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return GenerationResult(out, truth)
