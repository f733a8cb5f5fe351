"""benchmarks.backfill_year's result: one round as it is, several rounds with the median of their ratios."""

from benchmarks.backfill_year import summary


def _side(wall: float, cpu: float) -> dict:
    return {"wall": wall, "cpu": cpu, "split": {}}


def test_one_round_keeps_its_sides_and_ratios() -> None:
    got = summary([{"bare": _side(100, 200), "ours": _side(126, 240)}])
    assert got["bare"]["wall"] == 100 and got["ours"]["cpu"] == 240
    assert (got["ratio_wall"], got["ratio_cpu"]) == (1.26, 1.2)
    assert "rounds" not in got


def test_rounds_give_the_median_of_their_ratios() -> None:
    got = summary([{"bare": _side(100, 200), "ours": _side(132, 250)},
                   {"bare": _side(120, 200), "ours": _side(150, 230)},
                   {"bare": _side(100, 200), "ours": _side(124, 260)}])
    assert got["ratio_wall_rounds"] == [1.32, 1.25, 1.24]
    assert got["ratio_wall"] == 1.25 and got["ratio_cpu"] == 1.25  # medians, each of its own rounds
    assert [r["ratio_wall"] for r in got["rounds"]] == [1.32, 1.25, 1.24]
    assert "bare" not in got  # which round's would it be


def test_one_side_alone_has_no_ratio() -> None:
    assert "ratio_wall" not in summary([{"ours": _side(60, 80)}])
    assert "ratio_wall" not in summary([{"ours": _side(60, 80)}, {"ours": _side(61, 81)}])
