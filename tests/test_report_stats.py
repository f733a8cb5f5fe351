"""reporting/stats.py against hand-computed numbers: every branch of every family."""

from __future__ import annotations

import math

import pytest

from reporting import stats


def test_two_proportions_significant_up() -> None:
    # 60/100 then 75/100: pooled 135/200 = .675; se = sqrt(.675 * .325 * .02) = .066238; z = .15 / .066238 = 2.2646
    c = stats.two_proportions(60, 100, 75, 100)
    assert c.statistic == pytest.approx(2.2646, abs=1e-4)
    assert c.diff == pytest.approx(0.15)
    assert (c.significant, c.marker) == (True, stats.UP)


def test_two_proportions_significant_down() -> None:
    c = stats.two_proportions(75, 100, 60, 100)
    assert c.statistic == pytest.approx(-2.2646, abs=1e-4)
    assert (c.significant, c.marker) == (True, stats.DOWN)


def test_two_proportions_not_significant() -> None:
    # 50/100 then 55/100: pooled .525; se = sqrt(.525 * .475 * .02) = .070622; z = .05 / .070622 = .7080
    c = stats.two_proportions(50, 100, 55, 100)
    assert c.statistic == pytest.approx(0.7080, abs=1e-4)
    assert (c.significant, c.marker) == (False, stats.SAME)


@pytest.mark.parametrize("args", [(0, 0, 5, 10), (5, 10, 0, 0)])
def test_two_proportions_empty_period_has_no_marker(args: tuple) -> None:
    c = stats.two_proportions(*args)
    assert (c.statistic, c.marker, c.significant, c.tested) == (None, "", False, False)


def test_two_proportions_degenerate_equal() -> None:
    c = stats.two_proportions(10, 10, 20, 20)  # both all 1: no variance, no difference
    assert (c.statistic, c.marker) == (0.0, stats.SAME)


def test_boundary_at_1_96_is_significant() -> None:
    assert stats._judge("z", 1.0, 1.96).marker == stats.UP
    assert stats._judge("z", -1.0, -1.96).marker == stats.DOWN
    assert stats._judge("z", 1.0, 1.9599).marker == stats.SAME


def test_nps_adjusted_wald_by_hand() -> None:
    # P=50, D=20, n=100: n' = 103, p = 50.75/103 = .492718, d = 20.75/103 = .201456, nps = .291262,
    # var = (.492718 + .201456 - .291262^2) / 103 = (.694175 - .084834) / 103 = .0059159
    nps, var = stats.nps_adjusted_wald(50, 20, 100)
    assert nps == pytest.approx(0.291262, abs=1e-6)
    assert var == pytest.approx(0.0059159, abs=1e-7)


def test_nps_difference_up_down_and_not() -> None:
    # previous P=30, D=40, n=100: n' 103, p .298544, d .395631, nps -.097087, var (.694175 - .009426) / 103 = .0066480
    # current P=50, D=20, n=100: nps .291262, var .0059159; z = .388350 / sqrt(.0125639) = 3.4646
    up = stats.nps_difference(30, 40, 100, 50, 20, 100)
    assert up.statistic == pytest.approx(3.4646, abs=1e-3)
    assert up.diff == pytest.approx(40.0)  # -10 -> +30 NPS points
    assert up.marker == stats.UP
    down = stats.nps_difference(50, 20, 100, 30, 40, 100)
    assert down.statistic == pytest.approx(-3.4646, abs=1e-3) and down.marker == stats.DOWN
    # 40/30 then 42/30 of 100: nps .1 -> .12 (adjusted .097087 -> .116505), z well under 1.96
    same = stats.nps_difference(40, 30, 100, 42, 30, 100)
    assert abs(same.statistic) < 1.96 and same.marker == stats.SAME
    assert stats.nps_difference(0, 0, 0, 5, 1, 10).marker == ""


def test_welch_by_hand() -> None:
    # means 4.0 (sd 1.0, n 50) and 4.5 (sd 1.2, n 60): a = .02, b = .024, se = sqrt(.044) = .209762, t = 2.3837;
    # df = .044^2 / (.02^2/49 + .024^2/59) = .001936 / (.0000081633 + .0000097627) = 107.99; t crit ~ 1.9822
    c = stats.welch(4.0, 1.0, 50, 4.5, 1.2, 60)
    assert c.statistic == pytest.approx(2.3837, abs=1e-4)
    assert c.critical == pytest.approx(1.9822, abs=1e-3)
    assert c.marker == stats.UP
    assert stats.welch(4.5, 1.2, 60, 4.0, 1.0, 50).marker == stats.DOWN
    assert stats.welch(4.0, 1.0, 50, 4.1, 1.2, 60).marker == stats.SAME  # t = .4767
    assert stats.welch(4.0, 1.0, 1, 4.5, 1.0, 60).marker == ""  # n < 2: no sd, no test
    assert stats.welch(4.0, 0.0, 5, 4.0, 0.0, 5).marker == stats.SAME


def test_welch_critical_tends_to_1_96() -> None:
    assert stats.t_critical(1e7) == pytest.approx(1.96, abs=1e-3)


def test_wilson_matches_the_dbt_macro() -> None:
    # x=8, n=10: centre .8 + 1.9208/10 = .99208; half = 1.96 sqrt(.016 + 3.8416/400) = 1.96 * .160050 = .313698;
    # denominator 1.38416: low .490076, high .943376
    lo, hi = stats.wilson(8, 10)
    assert lo == pytest.approx(0.490, abs=1e-3) and hi == pytest.approx(0.9434, abs=1e-3)
    assert stats.wilson(0, 10)[0] == 0.0 and stats.wilson(10, 10)[1] == 1.0
    assert stats.wilson(0, 0) == (None, None)
    assert math.isclose(sum(stats.wilson(5, 10)), 1.0)
