"""The churn model's backtest on a generated company, at the smallest window CI can afford that still has
held-out months: 3,000 customers x 306 nights (ten months, 2026-01-01 .. 2026-11-01), two held-out months.

Why ten months: the model learns only from cutoffs (month starts) with 90 days of orders before them
(the warm-up: analytics/churn.py MIN_HISTORY_DAYS) whose 90-day horizon (churn_horizon_days) has ended
by as_of, and a held-out month needs a training cutoff whose horizon ended before it: the first training
cutoff is April 1, the first held-out month July 1 (April's horizon ends June 30), and the horizon of the
second, August 1, ends October 30.
The 100,000 x 365 figures are in benchmarks/RESULTS.md (python -m benchmarks.churn_backtest)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from analytics import run as A
from simulator import GeneratorConfig

from .analytics_acceptance import check_churn_backtest
from .company import build_models, land, last_day

COMPANY = GeneratorConfig(customers=3_000, days=306, start=dt.date(2026, 1, 1), seed=23)
AS_OF = last_day(COMPANY)
CHURN = next(a for a in A.ANALYSES if a.module == "churn")


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("churn")
    land(data, COMPANY)
    # only what the churn features read (analytics.run ANALYSES: the churn analysis' marts) and the fx seed
    build_models(data, AS_OF, ["fx_rates", *(f"+{m}" for m in CHURN.reads)])
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        outputs = A.run_analysis(con, CHURN, AS_OF)
    assert not [p for o in outputs for p in o.problems]
    return data


def test_the_churn_model_beats_its_baseline_on_held_out_months(company: Path) -> None:
    means = check_churn_backtest(company / "warehouse.duckdb", AS_OF)
    assert means["months"] >= 2


def test_every_active_customer_has_a_score_and_reasons(company: Path) -> None:
    with duckdb.connect(str(company / "warehouse.duckdb"), read_only=True) as con:
        risk = con.sql("select * from marts.mart_churn_risk").pl()
        calibration = con.sql("select * from marts.mart_churn_calibration").pl()
    assert risk.height > 1_000 and risk["customer_key"].n_unique() == risk.height
    assert risk["churn_probability"].is_between(0, 1).all()
    assert sorted(risk["risk_decile"].unique().to_list()) == list(range(1, 11))
    # the riskiest decile churns more than the safest, as predicted and as observed in every held-out month
    for (cutoff, model), grp in calibration.group_by(["cutoff", "model"]):
        by = {r["decile"]: r for r in grp.iter_rows(named=True)}
        assert by[10]["mean_predicted"] > by[1]["mean_predicted"], (cutoff, model)
        assert by[10]["observed_rate"] > by[1]["observed_rate"], (cutoff, model)
    assert risk["reason_1"].is_not_null().mean() > 0.5
