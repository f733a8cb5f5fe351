"""Baselines learned from a company's own history, for the warning checks.

A value is surprising when its robust z-score against the trailing history exceeds ``z``:

    robust z = |value - median(history)| / max(1.4826 x MAD(history), min_relative_spread x |median|)

Median and MAD ignore the odd crisis or sale already in the history (a mean and standard deviation
would be dragged by them). The history is day-of-week aware: when it holds at least
``same_weekday_min`` values for the weekday under test, only those are used (Mondays against
Mondays). Below ``min_history`` days of history there is no baseline and nothing fires.

Settings come from ``expectations/quality.toml``, overridable key by key by a TOML file named in
``$CX_QUALITY_CONFIG`` (docs/data-quality.md).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ingestion import settings

DEFAULT_CONFIG = Path(__file__).with_name("quality.toml")
CONFIG_ENV = "CX_QUALITY_CONFIG"
MAD_TO_SD = 1.4826


def load_config(path: Path | None = None) -> dict:
    """The defaults of quality.toml, with the override file's values (``path`` or $CX_QUALITY_CONFIG)."""
    with DEFAULT_CONFIG.open("rb") as fh:
        cfg = tomllib.load(fh)
    override = path or settings.current().quality_config
    if override:
        try:
            with Path(override).open("rb") as fh:
                extra = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{override}: cannot read the quality settings: {exc}") from None
        for section, values in extra.items():
            if section not in cfg or not isinstance(values, dict):
                raise ValueError(f"{override}: unknown section [{section}]; known: {', '.join(sorted(cfg))}")
            unknown = set(values) - set(cfg[section])
            if unknown:
                raise ValueError(f"{override}: [{section}] has no setting {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(sorted(cfg[section]))}")
            cfg[section].update(values)
    return cfg


@dataclass(frozen=True)
class Verdict:
    surprising: bool
    value: float
    low: float | None  # the band's bounds; None when there is no baseline yet
    high: float | None
    median: float | None
    robust_z: float | None
    history: int  # values the baseline was learned from
    same_weekday: bool

    @property
    def has_baseline(self) -> bool:
        return self.low is not None

    def expected(self) -> str:
        if not self.has_baseline:
            return f"no baseline yet ({self.history} days of history)"
        basis = "same weekday" if self.same_weekday else "all days"
        return f"[{self.low:.6g}, {self.high:.6g}] ({self.history} days, {basis})"


def robust_band(day: dt.date, value: float, history: dict[dt.date, float], anomaly: dict,
                counts: bool = False, min_spread: float = 0.0) -> Verdict:
    """Judge ``value`` on ``day`` against ``history`` (date -> value, dates before ``day``).

    ``counts``: the values are counts of events (records per drop), whose day-to-day noise is at
    least Poisson: the spread is floored at sqrt(max(median, 1)), so an entity that usually
    delivers 0-2 records a night is not flagged for delivering 3. ``min_spread``: a floor the caller
    knows, e.g. the standard error of a mean of few answers (a day of 4 NPS answers is noisy)."""
    start = day - dt.timedelta(days=int(anomaly["history_days"]))
    past = {d: v for d, v in history.items() if start <= d < day and v is not None and not math.isnan(v)}
    same = [v for d, v in past.items() if d.weekday() == day.weekday()]
    use_same = len(same) >= int(anomaly["same_weekday_min"])
    values = same if use_same else list(past.values())
    if len(past) < int(anomaly["min_history"]):
        return Verdict(False, value, None, None, None, None, len(past), use_same)
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    spread = max(MAD_TO_SD * mad, float(anomaly["min_relative_spread"]) * abs(median),
                 math.sqrt(max(median, 1.0)) if counts else 1e-12, min_spread)
    z = float(anomaly["z"])
    robust_z = abs(value - median) / spread
    return Verdict(robust_z > z, value, median - z * spread, median + z * spread, median, robust_z, len(values),
                   use_same)


def wilson_low(x: int, n: int, z: float = 1.96) -> float:
    """Lower bound of the Wilson score interval of x successes out of n (0 when n = 0)."""
    if n <= 0 or x <= 0:
        return 0.0
    p = x / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def quarantine_surprising(quarantined: int, rows: int, historical_rate: float | None, quarantine: dict) -> tuple[
        bool, float]:
    """A file's quarantined share is surprising when its Wilson lower bound exceeds the entity's
    historical share (else the prior) plus the margin. Returns (surprising, threshold)."""
    base = historical_rate if historical_rate is not None else float(quarantine["prior_rate"])
    threshold = base + float(quarantine["margin"])
    return wilson_low(quarantined, rows) > threshold, threshold


def tukey_fences(values: list[float], k: float, min_from_median: float) -> tuple[float, float]:
    """Far-out fences Q1 - k IQR and Q3 + k IQR, at least ``min_from_median`` from the median."""
    ordered = sorted(values)
    q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    iqr = q3 - q1
    return min(q1 - k * iqr, median - min_from_median), max(q3 + k * iqr, median + min_from_median)
