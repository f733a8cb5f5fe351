"""Plant the documented mess into the record versions, and count what was planted.

Order of operations (each step sees the previous one's output):
1. late arrival: a record moves to a drop 1..N nights after the one it belongs to;
2. re-send: an unchanged copy of a record travels again 1-3 nights later;
3. schema drift: from a date on, one entity per system gains an extra column;
4. DST: some ERP orders on a DST-transition date get a local time in the transition hour;
5. bad records (after rendering to text, see ``render.corrupt``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .config import GeneratorConfig
from .timeutil import dst_transitions

# the entity of each system that gains a column, the column, and how its values are made
DRIFT_COLUMNS: dict[tuple[str, str], str] = {
    ("crm", "customers"): "loyalty_tier",
    ("erp", "orders"): "delivery_slot",
    ("billing", "invoices"): "tax_minor",
    ("survey", "responses"): "device",
}


@dataclass
class MessReport:
    """What was planted: counts by kind and entity, for truth.json and the tests."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    eligible: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, entity: str, planted: int, eligible: int) -> None:
        self.counts.setdefault(kind, {})[entity] = self.counts.get(kind, {}).get(entity, 0) + int(planted)
        self.eligible.setdefault(kind, {})[entity] = self.eligible.get(kind, {}).get(entity, 0) + int(eligible)


def drift_date(cfg: GeneratorConfig) -> dt.date:
    return cfg.start + dt.timedelta(days=int(cfg.days * cfg.mess.schema_drift_from))


def dst_dates(cfg: GeneratorConfig) -> list[dt.date]:
    out = []
    for y in range(cfg.start.year, cfg.end.year + 1):
        out += [d for d in dst_transitions(y) if cfg.start <= d < cfg.end]
    return out


def _shift(df: pl.DataFrame, mask: np.ndarray, days: np.ndarray, last: dt.date) -> pl.DataFrame:
    return df.with_columns(
        _bd=pl.when(pl.Series(mask)).then(
            pl.min_horizontal(pl.col("_bd") + pl.duration(days=pl.Series(days)), pl.lit(last)))
        .otherwise(pl.col("_bd")))


def plant(records: dict[tuple[str, str], pl.DataFrame], cfg: GeneratorConfig,
          report: MessReport) -> dict[tuple[str, str], pl.DataFrame]:
    m = cfg.mess
    rng = np.random.default_rng([cfg.seed, 2])
    last = cfg.end - dt.timedelta(days=1)
    out = {}
    for key, df in records.items():
        name = "/".join(key)
        n = df.height
        # 1. late arrival: only records inside the window that have a later night to move to
        eligible = (df["_at"] >= _epoch(cfg.start)).to_numpy() & (df["_bd"] < last).to_numpy()
        late = eligible & (rng.random(n) < m.late_arrival_rate)
        df = _shift(df, late, rng.integers(1, m.late_arrival_max_days + 1, n), last)
        report.add("late_arrival", name, late.sum(), eligible.sum())
        # 2. re-send an unchanged copy 1-3 nights later
        eligible = (df["_bd"] < last).to_numpy()
        resend = eligible & (rng.random(n) < m.resend_rate)
        copies = _shift(df.filter(pl.Series(resend)), np.ones(int(resend.sum()), bool),
                        rng.integers(1, 4, int(resend.sum())), last)
        df = pl.concat([df, copies])
        report.add("resend", name, resend.sum(), eligible.sum())
        # 3. schema drift
        if key in DRIFT_COLUMNS:
            col = DRIFT_COLUMNS[key]
            on = pl.col("_bd") >= pl.lit(drift_date(cfg))
            values = {"loyalty_tier": pl.lit("silver"), "delivery_slot": pl.lit("08-12"),
                      "tax_minor": pl.lit(0, pl.Int64), "device": pl.lit("mobile")}[col]
            df = df.with_columns(pl.when(on).then(values).alias(col))
        out[key] = df
    # 4. DST: orders placed on a transition date; a share gets a local time of 02:MM:SS
    orders = out[("erp", "orders")]
    transition = dst_dates(cfg)
    placed = orders.filter(pl.col("status") == "placed").select("order_id", "order_ts")
    local = pl.from_epoch(pl.col("order_ts"), time_unit="s").dt.replace_time_zone("UTC").dt.convert_time_zone(
        "Europe/Paris").dt.date()
    on_night = placed.filter(local.is_in(transition)).unique("order_id", maintain_order=True)
    pick = rng.random(on_night.height) < m.dst_transition_hour_rate
    chosen = on_night.filter(pl.Series(pick))["order_id"]
    out[("erp", "orders")] = orders.with_columns(_dst=pl.col("order_id").is_in(chosen.implode()))
    report.add("dst_transition_hour", "erp/orders", pick.sum(), on_night.height)
    return out


def _epoch(d: dt.date) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp())
