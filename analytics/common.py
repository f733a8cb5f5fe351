"""What every analysis shares: the project's declared thresholds and the interval statistics.

Thresholds are dbt vars (``dbt_project/dbt_project.yml``), the one place each is declared: the
analyses read them from there rather than holding copies.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import math
from pathlib import Path

import yaml

DBT_PROJECT_YML = Path(__file__).resolve().parents[1] / "dbt_project" / "dbt_project.yml"
Z95 = 1.959963984540054


@functools.cache
def _vars() -> dict:
    return yaml.safe_load(DBT_PROJECT_YML.read_text(encoding="utf-8"))["vars"]


def var(name: str):  # noqa: ANN201 - whatever the var holds
    """A dbt var's default from dbt_project.yml (KeyError naming it when it is not declared)."""
    try:
        return _vars()[name]
    except KeyError:
        raise KeyError(f"dbt_project.yml declares no var {name!r}") from None


def min_reportable_n() -> int:
    """A figure is reportable when each group it compares holds at least this many observations."""
    return int(var("min_reportable_n"))


def wilson(x: float, n: float, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of the proportion x/n (None, None when n = 0); the KPI mart's formula (dbt
    macros wilson_low / wilson_high), exact at x = 0 and x = n."""
    if n <= 0:
        return None, None
    p = x / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (0.0 if x == 0 else max(0.0, centre - half)), (1.0 if x == n else min(1.0, centre + half))


def welch_diff(mean1: float, var1: float, n1: int, mean0: float, var0: float, n0: int,
               z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Difference of two means (1 minus 0) with its normal-approximation 95 % interval (Welch's standard
    error: each group's own variance). None where a group has fewer than 2 observations."""
    if n1 < 2 or n0 < 2:
        return None, None, None
    d = mean1 - mean0
    se = math.sqrt(var1 / n1 + var0 / n0)
    return d, d - z * se, d + z * se


def rate_ratio(x1: float, t1: float, x0: float, t0: float,
               z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Ratio of two rates (events x over exposure t, group 1 over group 0) with the log-normal 95 %
    interval (se of log ratio = sqrt(1/x1 + 1/x0)). None when a group has no event or no exposure."""
    if x1 <= 0 or x0 <= 0 or t1 <= 0 or t0 <= 0:
        return None, None, None
    rr = (x1 / t1) / (x0 / t0)
    se = math.sqrt(1 / x1 + 1 / x0)
    return rr, rr * math.exp(-z * se), rr * math.exp(z * se)


def mean_interval(mean: float, var: float, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Normal 95 % interval of a mean from the sample variance (the KPI mart's rule for means); None, None
    with fewer than 2 observations."""
    if n < 2:
        return None, None
    half = z * math.sqrt(var / n)
    return mean - half, mean + half


def poisson_rate(x: float, t: float, z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Rate x/t of a count x over exposure t with the Poisson score interval ((x + z²/2 ± z·sqrt(x + z²/4)) / t),
    the counterpart of Wilson's for counts: closed form, and it stays sensible at x = 0 (lower bound 0, upper
    z²/t) where the log interval breaks down. None when there is no exposure."""
    if t <= 0:
        return None, None, None
    centre, half = x + z * z / 2, z * math.sqrt(x + z * z / 4)
    return x / t, max(0.0, (centre - half) / t), (centre + half) / t


def diff_proportions(x1: float, n1: float, x0: float, n0: float,
                     z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Difference of two proportions x1/n1 - x0/n0 with Newcombe's hybrid score interval (his method 10: each
    proportion's Wilson interval, combined). Unlike the Wald interval it keeps its coverage for rare events
    (monthly churn of a few per cent) and never leaves [-1, 1]. None when a group is empty."""
    if n1 <= 0 or n0 <= 0:
        return None, None, None
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    return d, d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def risk_ratio(x1: float, n1: float, x0: float, n0: float,
               z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Ratio of two proportions (x1/n1 over x0/n0) with the Katz log interval (se of the log ratio =
    sqrt(1/x1 - 1/n1 + 1/x0 - 1/n0)). None when a group is empty or has no event."""
    if x1 <= 0 or x0 <= 0 or n1 <= 0 or n0 <= 0:
        return None, None, None
    rr = (x1 / n1) / (x0 / n0)
    se = math.sqrt(max(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0, 0.0))
    return rr, rr * math.exp(-z * se), rr * math.exp(z * se)


def ratio_of_means(mean1: float, var1: float, n1: int, mean0: float, var0: float, n0: int,
                   z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Ratio of two independent means (1 over 0) with the delta-method interval on the log scale (se of the
    log ratio = sqrt(var1 / (n1 mean1²) + var0 / (n0 mean0²))), so the interval stays positive. None unless
    both means are positive and each group has at least 2 observations."""
    if n1 < 2 or n0 < 2 or mean1 <= 0 or mean0 <= 0:
        return None, None, None
    r = mean1 / mean0
    se = math.sqrt(var1 / (n1 * mean1 * mean1) + var0 / (n0 * mean0 * mean0))
    return r, r * math.exp(-z * se), r * math.exp(z * se)


DAY_US = 86_400_000_000  # microseconds in a day of elapsed time


def epoch_day_us(day: dt.date) -> int:
    """``day`` at 00:00 UTC in microseconds since the epoch (the unit of DuckDB's epoch_us), whatever the
    session's time zone."""
    return (day - dt.date(1970, 1, 1)).days * DAY_US


def first_order_date(con, marts: str = "marts") -> dt.date | None:  # noqa: ANN001 - a DuckDB connection
    """The first day of the warehouse's observed history: the UTC date of its first order (None: no order).

    Analyses that count time (exposure, subscriber-months, snapshots) start there: before it the warehouse
    holds no experience data, so a period there would look like a period without incidents or purchases."""
    rows = con.execute(f"select min(cast(make_timestamp(epoch_us(ordered_at)) as date)) from {marts}.fct_orders "
                       "where ordered_at is not null").fetchall()
    return rows[0][0] if rows else None


def next_month(day: dt.date) -> dt.date:
    """The first day of the month after ``day``'s."""
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def month_starts(first: dt.date | None, last: dt.date) -> list[dt.date]:
    """First days of the months that start on or after ``first`` and end on or before ``last``."""
    if first is None:
        return []
    m = first if first.day == 1 else next_month(first)
    out = []
    while next_month(m) <= last + dt.timedelta(days=1):
        out.append(m)
        m = next_month(m)
    return out


def fx_rates(con, reporting: str | None = None) -> dict[str, float]:  # noqa: ANN001 - a DuckDB connection
    """Units of the reporting currency (var ``reporting_currency``) per unit of each currency: the seed
    ``fx_rates`` as the warehouse holds it (the KPI mart and the customer 360 convert with it), or the seed's
    CSV when the warehouse has no copy; the latest rate_date per currency; the reporting currency itself 1."""
    reporting = reporting or str(var("reporting_currency"))
    found = con.execute("select table_schema from information_schema.tables where table_name = 'fx_rates' "
                        "order by table_schema").fetchall()
    if found:
        rows = con.execute(f"select currency, rate, cast(rate_date as varchar) from {found[0][0]}.fx_rates "
                           "where reporting_currency = ?", [reporting]).fetchall()
    else:
        with (DBT_PROJECT_YML.parent / "seeds" / "fx_rates.csv").open(encoding="utf-8") as f:
            rows = [(r["currency"], float(r["rate"]), r["rate_date"]) for r in csv.DictReader(f)
                    if r["reporting_currency"] == reporting]
    rates: dict[str, float] = {}
    for currency, rate, _ in sorted(rows, key=lambda r: (r[0], str(r[2]))):
        rates[currency] = float(rate)
    rates[reporting] = 1.0
    return rates


def mh_rate_ratio(strata: list[tuple[float, float, float, float]],
                  z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Mantel-Haenszel rate ratio over strata (x1, t1, x0, t0: events and exposure of group 1 and group 0 in
    each stratum), with the Greenland-Robins log interval: the ratio of the two groups' rates with the strata
    (e.g. segments, whose order rates differ fivefold) held apart, so that a group over-represented in a
    high-rate stratum does not look like a high-rate group. Var(ln RR) = sum(t1 t0 (x1 + x0) / T²) / (R S),
    R = sum(x1 t0 / T), S = sum(x0 t1 / T), T = t1 + t0. None when R or S is 0."""
    r = s = v = 0.0
    for x1, t1, x0, t0 in strata:
        tot = t1 + t0
        if t1 <= 0 or t0 <= 0:
            continue
        r += x1 * t0 / tot
        s += x0 * t1 / tot
        v += t1 * t0 * (x1 + x0) / (tot * tot)
    if r <= 0 or s <= 0:
        return None, None, None
    rr = r / s
    se = math.sqrt(v / (r * s))
    return rr, rr * math.exp(-z * se), rr * math.exp(z * se)
