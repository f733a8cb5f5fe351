import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from simulator.timeutil import dst_transitions, paris_local_day, paris_offset_seconds

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("year", "spring", "autumn"), [(2026, (3, 29), (10, 25)), (2025, (3, 30), (10, 26)),
                                                        (2024, (3, 31), (10, 27))])
def test_dst_transition_dates(year: int, spring: tuple[int, int], autumn: tuple[int, int]) -> None:
    assert dst_transitions(year) == (dt.date(year, *spring), dt.date(year, *autumn))


def test_offset_matches_zoneinfo_around_both_transitions() -> None:
    starts = [dt.datetime(2026, 3, 28, 20, tzinfo=dt.UTC), dt.datetime(2026, 10, 24, 20, tzinfo=dt.UTC),
              dt.datetime(2024, 12, 31, 22, tzinfo=dt.UTC)]
    epochs = np.array([(s + dt.timedelta(minutes=15 * k)).timestamp() for s in starts for k in range(48)])
    expected = [dt.datetime.fromtimestamp(e, PARIS).utcoffset().total_seconds() for e in epochs]
    assert paris_offset_seconds(epochs).tolist() == expected
    days = [(dt.datetime.fromtimestamp(e, PARIS).date() - dt.date(1970, 1, 1)).days for e in epochs]
    assert paris_local_day(epochs).astype(int).tolist() == days


def test_offset_of_nan_is_harmless() -> None:
    out = paris_offset_seconds(np.array([np.nan, dt.datetime(2026, 7, 1, tzinfo=dt.UTC).timestamp()]))
    assert out[1] == 7200
