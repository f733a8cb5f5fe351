"""Vectorized time helpers for the simulation (times are float days since the window start, UTC)."""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY_S = 86_400


def epoch_seconds(start: dt.date, days: np.ndarray) -> np.ndarray:
    """Float days since ``start`` 00:00 UTC -> integer epoch seconds (NaN stays NaN as float)."""
    base = int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp())
    return base + np.round(days * DAY_S)


def _last_sunday(year: int, month: int) -> dt.date:
    d = dt.date(year, month + 1, 1) - dt.timedelta(days=1) if month < 12 else dt.date(year, 12, 31)
    return d - dt.timedelta(days=(d.weekday() + 1) % 7)


def dst_transitions(year: int) -> tuple[dt.date, dt.date]:
    """EU rule: summer time from the last Sunday of March to the last Sunday of October, 01:00 UTC."""
    return _last_sunday(year, 3), _last_sunday(year, 10)


def paris_offset_seconds(epoch: np.ndarray) -> np.ndarray:
    """UTC offset of Europe/Paris (3600 or 7200) at each epoch second (EU rules since 1996)."""
    epoch = np.asarray(epoch, dtype=np.float64)
    finite = epoch[np.isfinite(epoch)]
    if finite.size == 0:
        return np.full(epoch.shape, 3600.0)
    y0 = dt.datetime.fromtimestamp(finite.min(), dt.UTC).year - 1
    y1 = dt.datetime.fromtimestamp(finite.max(), dt.UTC).year + 1
    bounds = []
    for y in range(y0, y1 + 1):
        spring, autumn = dst_transitions(y)
        for d in (spring, autumn):
            bounds.append(dt.datetime(d.year, d.month, d.day, 1, tzinfo=dt.UTC).timestamp())
    idx = np.searchsorted(np.asarray(bounds), epoch, side="right")
    return np.where(idx % 2 == 1, 7200.0, 3600.0)


def paris_local_day(epoch: np.ndarray) -> np.ndarray:
    """Europe/Paris calendar day (days since 1970-01-01) of each epoch second."""
    epoch = np.asarray(epoch, dtype=np.float64)
    return np.floor((epoch + paris_offset_seconds(epoch)) / DAY_S)
