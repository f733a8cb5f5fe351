"""Acceptance checks of the analyses on a built warehouse (run by hand or by the lead's scripts, not
collected by pytest: the file name does not start with ``test_``). Each function takes the warehouse's
path and the business date, asserts what the analysis promises and prints the figures behind it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl


def check_churn_backtest(warehouse_path: Path | str, as_of: dt.date) -> dict[str, float]:
    """The churn model beats its naive baseline (recency and frequency only) out of sample: its mean AUC
    over the held-out months (each scored by models trained only on cutoffs whose horizon had ended) is
    higher than the baseline's, on the months where both have one. Prints both, month by month."""
    from analytics import churn

    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        written = con.sql("select count(*) from information_schema.tables where table_schema = 'marts' "
                          "and table_name = 'mart_churn_backtest'").fetchall()[0][0]
        if written:  # what the analyses wrote (analytics/run.py): the mart BI reads
            bt = con.sql(f"select * from marts.mart_churn_backtest where as_of = date '{as_of.isoformat()}'").pl()
            notes = "see the notes of the analytics run"
        else:
            out = churn.compute(con, as_of)
            bt, notes = out["mart_churn_backtest"], out["notes"]
    assert not bt.is_empty(), f"no churn backtest as of {as_of}: {notes}"
    wide = (bt.pivot(on="model", index=["cutoff", "n", "positives"], values=["auc", "brier"])
            .sort("cutoff").drop_nulls(["auc_model", "auc_baseline"]))
    assert wide.height, f"no held-out month with an AUC for both the model and the baseline: {bt}"
    for r in wide.iter_rows(named=True):
        print(f"churn backtest {r['cutoff']}: n {r['n']:,}, churned {r['positives']:,}; "
              f"AUC model {r['auc_model']:.3f} vs baseline {r['auc_baseline']:.3f}; "
              f"Brier model {r['brier_model']:.4f} vs baseline {r['brier_baseline']:.4f}")
    means = wide.select(pl.col("auc_model", "auc_baseline", "brier_model", "brier_baseline").mean()).row(0, named=True)
    print(f"churn backtest, mean over {wide.height} held-out month(s): AUC model {means['auc_model']:.3f} vs "
          f"baseline {means['auc_baseline']:.3f}; Brier model {means['brier_model']:.4f} vs baseline "
          f"{means['brier_baseline']:.4f}")
    assert means["auc_model"] > means["auc_baseline"], (
        f"the churn model's mean backtest AUC {means['auc_model']:.3f} does not beat the baseline's "
        f"{means['auc_baseline']:.3f}")
    return {**means, "months": wide.height}


# Tolerance of check_drivers_and_value: |mart - realized| <= K_SE x SE + MESS_ALLOWANCE x |realized|
# (on the log scale for ratios, where the allowance is a relative 10 %).
# Why: the mart and the simulator measure the same units (the same answers, subscriber-months and
# exposure), so sampling noise mostly cancels; they differ only by the mess the drops carry: records
# quarantined (bad dates, enums, keys, scores: under 1 % of each entity), guest orders whose e-mail the CRM
# does not know (3 % of orders: their deliveries and purchases detach from the answering customer), and
# records of the last nights still in flight (late arrivals). Those move about q = 5 % of units or moments.
# The random part of the discrepancy is then about sqrt(q) = 0.22 SE of the measure itself: one SE covers
# it more than four times over. The systematic part is a dilution of the effect by the detached moments,
# at most about q: the allowance is twice that, 10 % of the realized size.
K_SE = 1.0
MESS_ALLOWANCE = 0.10


def check_drivers_and_value(warehouse_path: Path | str, truth: dict,
                            as_of: dt.date | None = None) -> list[dict]:
    """The key-drivers and revenue-link marts find the simulator's planted effects as realized in their own
    measures (truth.json ``effects[].realized_in_mart``, computed by the simulator from its clean tables).

    For every effect with a realized_in_mart entry, the mart's figure (segment 'all'; the pooled order rate
    by NPS category) has the same sign as the realized one (always; the line says when the realized size lies
    within the tolerance of zero, where the sign is weak), and lies within the tolerance
    of it: K_SE standard errors of the mart's own figure (from its n and sd; for ratios, from the log of its
    interval) plus MESS_ALLOWANCE of the realized size. Promoters must order more and detractors less than
    passives. ``as_of`` defaults to the generated window's last day. Prints one line per comparison and
    returns them."""
    import math

    from analytics import drivers, value

    if as_of is None:
        as_of = dt.date.fromisoformat(truth["window"]["end_exclusive"]) - dt.timedelta(days=1)
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        written = {t for (t,) in con.sql("select table_name from information_schema.tables "
                                         "where table_schema = 'marts'").fetchall()}

        def mart(name: str, module) -> pl.DataFrame:  # noqa: ANN001 - an analytics module
            if name in written:  # what the analyses wrote (analytics/run.py): the mart BI reads
                return con.sql(f"select * from marts.{name} where as_of = date '{as_of.isoformat()}'").pl()
            return module.compute(con, as_of)

        drv = mart("mart_experience_drivers", drivers)
        val = mart("mart_experience_value", value)
    z = 1.959963984540054
    out: list[dict] = []

    def compare(label: str, mart: float, realized: float, se: float, log: bool, detail: str) -> None:
        m, r = (math.log(mart), math.log(realized)) if log else (mart, realized)
        tol = K_SE * se + MESS_ALLOWANCE * (1.0 if log else abs(r))
        signed = abs(r) > tol  # said in the line: a realized size within tolerance of 0 is a weak sign
        ok_size = abs(m - r) <= tol
        ok_sign = (m > 0) == (r > 0)  # the sign always (issue 16), whatever the size
        scale = "log " if log else ""
        print(f"{label}: mart {mart:+.4f} vs realized {realized:+.4f} ({detail}); {scale}|diff| {abs(m - r):.4f} "
              f"<= tol {tol:.4f} ({K_SE:g} SE {se:.4f} + {MESS_ALLOWANCE:.0%}"
              f"{'' if log else ' of realized'}): {'ok' if ok_size else 'FAILED'}; sign "
              f"{'ok' if ok_sign else 'FAILED'}{'' if signed else ' (realized within tol of 0: a weak sign)'}")
        out.append({"comparison": label, "mart": mart, "realized": realized, "tolerance": tol, "se": se,
                    "log_scale": log, "size_ok": ok_size, "sign_ok": ok_sign})

    for effect in truth["effects"]:
        rim = effect.get("realized_in_mart")
        if not rim:
            continue
        if rim["mart"] == "mart_experience_drivers":
            assert rim["window_days"] == drivers.window_days(), (
                f"{effect['id']}: realized with a {rim['window_days']}-day window, the mart uses "
                f"{drivers.window_days()} (simulator/truth.py MART_WINDOW_DAYS vs dbt var driver_window_days)")
            row = drv.filter((pl.col("outcome") == rim["outcome"]) & (pl.col("moment") == rim["moment"])
                             & (pl.col("segment") == "all")).row(0, named=True)
            label = f"{effect['id']} ({rim['outcome']} x {rim['moment']})"
            n = f"n with/without: mart {row['n_with']}/{row['n_without']}, realized {rim['n_with']}/{rim['n_without']}"
            if rim["outcome"] == "churn":
                lo, hi = row["rate_ratio_ci_low"], row["rate_ratio_ci_high"]
                assert row["rate_ratio"] is not None, f"{label}: the mart has no churn rate ratio ({n})"
                compare(label + " churn rate ratio", row["rate_ratio"], rim["value"],
                        (math.log(hi) - math.log(lo)) / (2 * z), True, n)
            else:
                se = math.sqrt(row["sd_with"] ** 2 / row["n_with"] + row["sd_without"] ** 2 / row["n_without"])
                compare(label + " mean difference", row["effect"], rim["value"], se, False, n)
        elif rim["mart"] == "mart_experience_value":
            for group, realized in rim["value"].items():
                row = val.filter((pl.col("dimension") == rim["dimension"]) & (pl.col("group") == group)
                                 & (pl.col("segment") == "all") & pl.col("cohort_month").is_null()
                                 & (pl.col("measure") == "order_rate")).row(0, named=True)
                assert row["reference_group"] == rim["reference_group"]
                g = rim["groups"][group]
                detail = (f"customers {row['n']}; realized {g['orders']} orders in {g['exposure_years']:.1f} "
                          f"customer-years vs passives' {rim['groups']['passive']['orders']} in "
                          f"{rim['groups']['passive']['exposure_years']:.1f}")
                compare(f"{effect['id']} (order_rate {group} / passive)", row["ratio_to_reference"], realized,
                        (math.log(row["ratio_ci_high"]) - math.log(row["ratio_ci_low"])) / (2 * z), True, detail)
                want_more = group == "promoter"
                assert (realized > 1) == want_more, f"the simulator did not realize {group}s ordering " \
                                                     f"{'more' if want_more else 'less'} than passives: {realized}"
                assert (row["ratio_to_reference"] > 1) == want_more, (
                    f"mart: {group}s do not order {'more' if want_more else 'less'} than passives: "
                    f"{row['ratio_to_reference']:.3f}")
    assert out, "truth.json has no realized_in_mart entry: generate the data with the current simulator"
    failed = [c["comparison"] for c in out if not (c["size_ok"] and c["sign_ok"])]
    assert not failed, f"outside tolerance: {failed}"
    return out
