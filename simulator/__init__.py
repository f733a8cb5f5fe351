"""The synthetic source systems: a simulated company whose CRM, ERP, billing and survey tool
deliver nightly drops that follow the landing contract, with documented mess and planted effects.

``generate(config, out)`` writes ``<out>/<system>/<business_date>/...``, ``<out>/truth.json`` and
``<out>/truth_comments.csv`` (the topics planted in each survey comment).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ingestion import contract as C

from .config import Effects, GeneratorConfig, Mess
from .mess import MessReport, plant
from .records import Shard, build_records
from .render import corrupt, to_text
from .simulate import simulate
from .truth import COMMENTS_FILE, build_truth, comment_truth, shard_counts
from .writer import SUPERSEDED_DIR, DropWriter

TRUTH_FILE = "truth.json"

__all__ = ["Effects", "GeneratorConfig", "Mess", "generate", "GenerationResult", "TRUTH_FILE", "SUPERSEDED_DIR",
           "COMMENTS_FILE", "shard_sizes"]


@dataclass
class GenerationResult:
    out: Path
    truth: dict

    @property
    def rows(self) -> dict[str, int]:
        return self.truth["volumes"]["records_delivered"]


Progress = Callable[[str, int, int], None]  # (stage, advance, total)


def shard_sizes(cfg: GeneratorConfig) -> list[int]:
    """Customers per shard: as few equal shards as keep each under ``cfg.shard_customer_days``."""
    per = max(1, cfg.shard_customer_days // cfg.days)
    k = -(-cfg.customers // per)
    base, extra = divmod(cfg.customers, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def shard_seed(seed: int, shard: int) -> int:
    """The seed of one shard: the company's own for the first, an independent stream for the others."""
    return seed if shard == 0 else int(np.random.SeedSequence([seed, shard]).generate_state(1)[0])


def generate(cfg: GeneratorConfig, out: Path, progress: Progress | None = None) -> GenerationResult:
    """Simulate ``cfg.days`` nights of the company and write every drop under ``out``.

    Customers are independent in the simulation, so a large company is simulated in shards of
    customers (``shard_sizes``), one after the other, each appended to every night's files: memory
    is bounded by one shard. Ids are global (each shard continues where the previous one ended) and
    the output depends only on the config: same config, same bytes. A company that fits one shard
    is simulated in one piece.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = shard_sizes(cfg)
    sharded = len(sizes) > 1

    def tick(stage: str, total: int) -> Callable[[int], None] | None:
        return (lambda k: progress(stage, k, total)) if progress and not sharded else None

    writer = DropWriter(cfg, out)
    report = MessReport()
    counts: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    offsets: Counter[str] = Counter()
    for i, n in enumerate(sizes):
        shard_cfg = replace(cfg, customers=n, seed=shard_seed(cfg.seed, i)) if sharded else cfg
        sim = simulate(shard_cfg, tick("simulate", cfg.days))
        records = plant(build_records(sim, Shard(cfg.customers, dict(offsets))), shard_cfg, report)
        counts.update(shard_counts(sim, records, cfg.customers))
        with (out / COMMENTS_FILE).open("w" if i == 0 else "a", encoding="utf-8", newline="") as fh:
            fh.write(comment_truth(records).write_csv(include_header=i == 0, line_terminator="\n"))
        stats.update(sim.stats)
        offsets["customers"] += n
        offsets.update({k: len(next(iter(v.values()))) for k, v in sim.tables.items()})
        del sim
        rng = np.random.default_rng([shard_cfg.seed, 3])
        texts = {}
        for key in list(records):
            e = C.ENTITIES[key]
            texts[key] = corrupt(e, to_text(e, records.pop(key)), shard_cfg, rng, report)
        writer.append(texts, tick("write", cfg.days * len(C.SYSTEMS)))
        del texts  # one shard in memory at a time
        if progress and sharded:
            progress("shards", 1, len(sizes))
    reextracts = writer.finish()
    truth = build_truth(cfg, dict(counts), dict(stats), report, reextracts, writer.rows, len(sizes))
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return GenerationResult(out, truth)
