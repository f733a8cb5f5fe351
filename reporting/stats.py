"""Change against the previous period, with a 95 % significance marker (docs/kpi-decisions.md,
"Change against the previous period (cxw report)").

One two-sample test per KPI family, from the served components of each period:

* proportions (CSAT, FCR, on-time, churn): the two-proportion z-test with the pooled proportion;
* NPS: the difference of two NPS values, each with its adjusted-Wald variance (0.75 added to promoters
  and to detractors, 3 to n; Rocks 2016), z = diff / sqrt(var1 + var2);
* CES (a mean): Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom).

A change is significant when its |statistic| >= the 95 % two-sided critical value (1.96 for z; the t
quantile for Welch). A period with n = 0 (or n < 2 for Welch) has no test and no marker.
Plain Python: no framework; the t quantile from scipy.special (scipy comes with scikit-learn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analytics import common

Z95 = 1.96
UP, DOWN, SAME = "▲", "▼", "="


@dataclass(frozen=True)
class Change:
    test: str  # two-proportion z | adjusted-Wald NPS z | Welch t
    diff: float | None  # current - previous (proportions as fractions, NPS in points, CES in scale points)
    statistic: float | None
    critical: float | None
    significant: bool
    marker: str  # UP / DOWN when significant, SAME when not, "" when no test was possible

    @property
    def tested(self) -> bool:
        return self.statistic is not None


def _none(test: str, diff: float | None = None) -> Change:
    return Change(test, diff, None, None, False, "")


def _judge(test: str, diff: float, statistic: float, critical: float = Z95) -> Change:
    significant = abs(statistic) >= critical
    marker = (UP if diff > 0 else DOWN) if significant else SAME
    return Change(test, diff, statistic, critical, significant, marker)


def two_proportions(x_prev: float, n_prev: float, x_cur: float, n_cur: float) -> Change:
    """Two-proportion z-test (pooled): z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2))."""
    test = "two-proportion z"
    if not n_prev or not n_cur:
        return _none(test)
    p1, p2 = x_prev / n_prev, x_cur / n_cur
    pooled = (x_prev + x_cur) / (n_prev + n_cur)
    var = pooled * (1 - pooled) * (1 / n_prev + 1 / n_cur)
    diff = p2 - p1
    if var <= 0:  # both periods all 0 or all 1: no difference to test
        return Change(test, diff, 0.0, Z95, False, SAME) if diff == 0 else _none(test, diff)
    return _judge(test, diff, diff / math.sqrt(var))


def nps_adjusted_wald(promoters: float, detractors: float, n: float) -> tuple[float, float]:
    """Adjusted-Wald NPS (as a fraction, -1..1) and its variance: add 3/4 to P and D, 3 to n."""
    n_adj = n + 3
    p, d = (promoters + 0.75) / n_adj, (detractors + 0.75) / n_adj
    nps = p - d
    return nps, (p + d - nps * nps) / n_adj


def nps_difference(p_prev: float, d_prev: float, n_prev: float, p_cur: float, d_cur: float, n_cur: float) -> Change:
    """z of the difference of two adjusted-Wald NPS values; diff in NPS points (100 * fraction, unadjusted)."""
    test = "adjusted-Wald NPS z"
    if not n_prev or not n_cur:
        return _none(test)
    a, va = nps_adjusted_wald(p_prev, d_prev, n_prev)
    b, vb = nps_adjusted_wald(p_cur, d_cur, n_cur)
    diff = 100.0 * ((p_cur - d_cur) / n_cur - (p_prev - d_prev) / n_prev)
    return _judge(test, diff, (b - a) / math.sqrt(va + vb))


def t_critical(df: float) -> float:
    """The 97.5 % quantile of Student's t (scipy.special: a fraction of scipy.stats' import time)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.975))


def welch(mean_prev: float, sd_prev: float, n_prev: float, mean_cur: float, sd_cur: float, n_cur: float) -> Change:
    """Welch's t-test of two means from their sample sd and n."""
    test = "Welch t"
    if n_prev < 2 or n_cur < 2:
        return _none(test)
    diff = mean_cur - mean_prev
    a, b = sd_prev ** 2 / n_prev, sd_cur ** 2 / n_cur
    if a + b <= 0:
        return Change(test, diff, 0.0, Z95, False, SAME) if diff == 0 else _none(test, diff)
    df = (a + b) ** 2 / (a ** 2 / (n_prev - 1) + b ** 2 / (n_cur - 1))
    return _judge(test, diff, diff / math.sqrt(a + b), t_critical(df))


def wilson(x: float, n: float, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval, as dbt's macros wilson_low / wilson_high (dbt_project/macros/kpi.sql), with
    their z = 1.96 so a weekly interval is computed like the daily mart's: ``analytics.common.wilson``."""
    return common.wilson(x, n, z)
