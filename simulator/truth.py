"""``truth.json``: what was planted in the drops, so the warehouse can be checked against it.

* ``effects``: every causal effect, its planted size, and where the simulation can measure it,
  the size realized in this data set (before any mess was planted);
* ``mess``: every kind of mess with its configured rate, the population it applies to, and the
  number planted;
* ``reextracts``, ``schema_drift``, ``dst``: where to find those cases;
* ``volumes``: records delivered per entity;
* ``comments``: the topics and polarity planted in the survey comments, counted per language (each
  commented response's in ``truth_comments.csv``, next to truth.json).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from ingestion import contract as C

from .comments import BAND_SCALE, EXPERIENCE, STAFF_WITH_SUPPORT_P
from .config import GeneratorConfig
from .mess import DRIFT_COLUMNS, MessReport, drift_date, dst_dates
from .simulate import UNHAPPY_MAX, Simulation, realized_effects
from .vocabulary import COMMENT_POLARITIES, COMMENT_TOPICS


def _mean(p: tuple[float, ...], lo: int) -> float:
    return float(sum((lo + i) * pi for i, pi in enumerate(p)))


def _top2(p: tuple[float, ...]) -> float:
    return float(p[-1] + p[-2])


def _score_counts(sim: Simulation) -> dict[str, int]:
    """Sums and counts of CSAT scores by cause, to measure the realized effects (they add up over shards)."""
    r = sim.tables["responses"]
    o = sim.tables["orders"]
    k = sim.tables["cases"]
    out = {}
    deliv = (r["touchpoint"] == 1) & (r["stype"] == 1)
    sup = (r["touchpoint"] == 2) & (r["stype"] == 1)
    bad_case = (k["contacts"] >= 2) | (k["reopened"] >= 1)
    for name, mask, flag in (("delivery", deliv, o["late"]), ("support", sup, bad_case)):
        scores, hit = r["score"][mask], flag[r["related"][mask]]
        out |= {f"{name}_hit_n": int(hit.sum()), f"{name}_hit_sum": int(scores[hit].sum()),
                f"{name}_miss_n": int((~hit).sum()), f"{name}_miss_sum": int(scores[~hit].sum())}
    return out


def _recovery_counts(sim: Simulation) -> dict[str, int]:
    """Next NPS answers after the unhappy answers, by how the company followed them up (sums over shards).

    The measure of mart_feedback_followups: of the unhappy answers due (answer + the promise) by the end
    of the window, those contacted (reached or message left) within the promise and those never
    contacted; for each, the customer's first NPS answer after the due time, within the recovery memory."""
    cfg = sim.config
    r, f = sim.tables["responses"], sim.tables["followups"]
    due_days = cfg.followups.promise_hours / 24
    unhappy = np.flatnonzero((r["score"] <= UNHAPPY_MAX[r["stype"]]) & (r["responded"] + due_days <= cfg.days))
    contact = np.full(r["score"].size, np.inf)
    ok = (f["outcome"] < 2) & (f["at"] < cfg.days)  # a contact after the window is not delivered yet
    np.minimum.at(contact, f["response"][ok], f["at"][ok])
    nps = np.flatnonzero((r["stype"] == 0) & (r["responded"] < cfg.days))
    nps = nps[np.lexsort((r["responded"][nps], r["cust"][nps]))]
    out: dict[str, int] = {}
    for group in ("in_time", "never"):
        out |= {f"recovery_{group}_n": 0, f"recovery_{group}_sum": 0}
    nps_cust, nps_at = r["cust"][nps], r["responded"][nps]
    for i in unhappy:
        c = contact[i]
        group = "never" if np.isinf(c) else "in_time" if c - r["responded"][i] <= due_days else None
        if group is None:
            continue
        due = r["responded"][i] + due_days
        lo, hi = np.searchsorted(nps_cust, r["cust"][i], "left"), np.searchsorted(nps_cust, r["cust"][i], "right")
        later = np.flatnonzero((nps_at[lo:hi] > due) & (nps_at[lo:hi] <= due + cfg.effects.recovery_memory_days))
        if later.size:
            out[f"recovery_{group}_n"] += 1
            out[f"recovery_{group}_sum"] += int(r["score"][nps[lo + later[0]]])
    return out


# The window of the key-drivers mart (dbt var driver_window_days, analytics/drivers.py): a moment counts
# for an answer at t when it happened in (t - W, t]. Kept here as a number (the simulator reads no dbt
# project); each realized_in_mart entry states it and the acceptance test checks it against the mart's.
MART_WINDOW_DAYS = 90
NPS_CATEGORIES = ("promoter", "passive", "detractor")


def _latest_at_or_before(ev_cust: np.ndarray, ev_t: np.ndarray, q_cust: np.ndarray,
                         q_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query (customer, instant): the index of the customer's latest event at or before the instant
    (-1: none) and that event's time (NaN: none).

    Times are ranked together first, so the (customer, rank) key is an exact integer: no float key loses the
    order of two close instants."""
    if ev_t.size == 0 or q_t.size == 0:
        return np.full(q_t.size, -1), np.full(q_t.size, np.nan)
    uniq, inv = np.unique(np.concatenate([ev_t, q_t]), return_inverse=True)
    span = np.int64(uniq.size + 1)
    ev_key = ev_cust.astype(np.int64) * span + inv[:ev_t.size]
    q_key = q_cust.astype(np.int64) * span + inv[ev_t.size:]
    order = np.argsort(ev_key, kind="stable")
    pos = np.searchsorted(ev_key[order], q_key, side="right") - 1
    found = pos >= 0
    idx = np.where(found, order[np.maximum(pos, 0)], -1)
    found &= ev_cust[np.maximum(idx, 0)] == q_cust
    idx = np.where(found, idx, -1)
    return idx, np.where(found, ev_t[np.maximum(idx, 0)], np.nan)


def _mart_moments(sim: Simulation) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The drivers mart's moments that carry a planted effect, as (customer, time) events from the clean tables,
    as the mart defines them: a late delivery (delivered after the local promise), a failed payment attempt, a
    service-failure refund, a bad case (two or more customer contacts, or reopened) at its final resolution.

    Not the missed follow-up: the mart's follow-up queue also takes answers whose comment the landing's tagger
    reads as negative, a reading the simulation does not hold, so its measure cannot be repeated exactly."""
    o, inv, pay, ref = (sim.tables[k] for k in ("orders", "invoices", "payments", "refunds"))
    k = sim.tables["cases"]
    late = o["late"] & ~np.isnan(o["delivered_at"])
    failed = ~pay["ok"]
    sfr = ref["reason"] == 3  # ingestion.contract.REFUND_REASONS[3] == "service_failure"
    bad = (k["contacts"] >= 2) | (k["reopened"] >= 1)
    final = np.where(k["reopened"] >= 1, k["resolved2"], k["resolved1"])
    return {
        "late_delivery": (o["cust"][late], o["delivered_at"][late]),
        "failed_payment": (inv["cust"][pay["invoice"][failed]], pay["at"][failed]),
        "service_failure_refund": (inv["cust"][pay["invoice"][ref["payment"][sfr]]], ref["at"][sfr]),
        "bad_case": (k["cust"][bad], final[bad]),
    }


def _subscriber_months(sim: Simulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The churn unit of the drivers mart: (customer, first day of the month, churned) for every customer with a
    live subscription on the first day of a calendar month that starts in the window and ends by its last day.

    By UTC dates, as kpi_churn_monthly: live when started before the month and not cancelled before it; churned
    when cancelled during it (the simulated company gives a customer one subscription at most)."""
    cfg = sim.config
    s = sim.tables["subscriptions"]
    start_day, cancel_day = np.floor(s["started"]), np.floor(s["cancelled"])  # NaN stays NaN: never cancelled
    cust, month, churned = [], [], []
    m = cfg.start.replace(day=1)
    if m < cfg.start:
        m = (m + dt.timedelta(days=32)).replace(day=1)
    while True:
        nxt = (m + dt.timedelta(days=32)).replace(day=1)
        if nxt > cfg.end:  # the month's last day (nxt - 1) must be <= the window's last day (end - 1)
            break
        d0, d1 = (m - cfg.start).days, (nxt - cfg.start).days
        live = (start_day < d0) & ~(cancel_day < d0)
        cust.append(s["cust"][live])
        month.append(np.full(int(live.sum()), float(d0)))
        churned.append((cancel_day[live] >= d0) & (cancel_day[live] < d1))
        m = nxt
    if not cust:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    return np.concatenate(cust), np.concatenate(month), np.concatenate(churned)


def _mart_counts(sim: Simulation) -> dict[str, int]:
    """Sums behind the realized_in_mart sizes, in the measures of mart_experience_drivers and
    mart_experience_value, from one shard's clean tables (they add up over shards: counts, sums, sums of
    squares, exposure seconds).

    * ``mart_<outcome>_<moment>_<with|without>_<n|sum|sumsq>``: per unit (every NPS answer, every CSAT answer,
      every subscriber-month) whether the customer had the moment in the MART_WINDOW_DAYS days before the
      unit's instant ((t - W, t]: the answer's time; the month's first instant), and the outcome (score; churned).
    * ``mart_order_<category>_orders`` / ``_exposure_s``: the time-varying exposure of order_rate: each
      customer is in the category of their latest NPS answer from that answer to the next one or to the end of
      the window, and the orders (not cancelled by then) they place meanwhile count for that category."""
    cfg = sim.config
    r, o = sim.tables["responses"], sim.tables["orders"]
    w = float(MART_WINDOW_DAYS)
    delivered = r["responded"] < cfg.days
    units = {}
    for outcome, stype in (("nps", 0), ("csat", 1)):
        m = delivered & (r["stype"] == stype)
        units[outcome] = (r["cust"][m], r["responded"][m], r["score"][m].astype(np.int64))
    sub_cust, sub_t, churned = _subscriber_months(sim)
    units["churn"] = (sub_cust, sub_t, churned.astype(np.int64))
    out: dict[str, int] = {}
    for moment, (ev_cust, ev_t) in _mart_moments(sim).items():
        for outcome, (q_cust, q_t, y) in units.items():
            _, latest = _latest_at_or_before(ev_cust, ev_t, q_cust, q_t)
            hit = q_t - latest < w  # NaN (no event) compares False
            for label, g in (("with", hit), ("without", ~hit)):
                out |= {f"mart_{outcome}_{moment}_{label}_n": int(g.sum()),
                        f"mart_{outcome}_{moment}_{label}_sum": int(y[g].sum()),
                        f"mart_{outcome}_{moment}_{label}_sumsq": int((y[g] ** 2).sum())}
    # order_rate by NPS category, time-varying exposure
    nps = np.flatnonzero(delivered & (r["stype"] == 0))
    nps = nps[np.lexsort((r["responded"][nps], r["cust"][nps]))]
    a_cust, a_t, score = r["cust"][nps], r["responded"][nps], r["score"][nps]
    category = np.where(score >= 9, 0, np.where(score >= 7, 1, 2))  # index into NPS_CATEGORIES
    same_next = np.append(a_cust[1:] == a_cust[:-1], False)
    until = np.where(same_next, np.append(a_t[1:], np.inf), float(cfg.days))
    exposure_s = np.round((until - a_t) * 86400).astype(np.int64)
    placed = (o["at"] < cfg.days) & ~(o["cancel_at"] < cfg.days)
    idx, _ = _latest_at_or_before(a_cust, a_t, o["cust"][placed], o["at"][placed])
    order_cat = category[idx[idx >= 0]]
    for i, name in enumerate(NPS_CATEGORIES):
        out[f"mart_order_{name}_orders"] = int((order_cat == i).sum())
        out[f"mart_order_{name}_exposure_s"] = int(exposure_s[category == i].sum())
    return out


def _mean_difference(t: dict[str, int], name: str) -> float | None:
    """Mean score where the cause happened minus where it did not (None without both groups)."""
    if not (t[f"{name}_hit_n"] and t[f"{name}_miss_n"]):
        return None
    return round(t[f"{name}_hit_sum"] / t[f"{name}_hit_n"] - t[f"{name}_miss_sum"] / t[f"{name}_miss_n"], 4)


def _effects(cfg: GeneratorConfig, t: dict[str, int], rz: dict[str, float]) -> list[dict]:
    e = cfg.effects
    realized_csat = _mean_difference(t, "delivery")
    realized_support = _mean_difference(t, "support")
    effects = [
        {"id": "late_delivery_lowers_delivery_csat",
         "cause": "order delivered after its promised_delivery_date (Europe/Paris local date of the last "
                  "shipment line's delivery > promised_delivery_date)",
         "outcome": "delivery CSAT (1-5) of the same order "
                    "(survey_type csat, touchpoint delivery, related_id = order_id)",
         "measure": "mean score late minus mean score on time",
         "size": round(_mean(e.csat_delivery_late, 1) - _mean(e.csat_delivery_on_time, 1), 4),
         "top_two_box_difference": round(_top2(e.csat_delivery_late) - _top2(e.csat_delivery_on_time), 4),
         "distributions": {"on_time": e.csat_delivery_on_time, "late": e.csat_delivery_late},
         "realized": realized_csat},
        {"id": "late_delivery_lowers_nps", "cause": "each late delivery in the last "
         f"{e.late_delivery_memory_days} days", "outcome": "relationship and onboarding NPS score (0-10)",
         "measure": "shift of the latent score before rounding and clipping to 0-10", "size": e.nps_per_late_delivery},
        {"id": "failed_payment_lowers_nps", "cause": f"each failed payment attempt in the last "
         f"{e.failed_payment_memory_days} days", "outcome": "NPS score (0-10)",
         "measure": "shift of the latent score before rounding and clipping", "size": e.nps_per_failed_payment},
        {"id": "service_failure_refund_lowers_nps", "cause": "each refund with reason service_failure in the last "
         f"{e.refund_memory_days} days (lost parcel, damaged goods, goodwill for lateness)",
         "outcome": "NPS score (0-10)", "measure": "shift of the latent score before rounding and clipping",
         "size": e.nps_per_service_failure_refund},
        {"id": "bad_case_lowers_nps", "cause": "each support case with customer_contacts >= 2 or reopened_count >= 1 "
         f"resolved in the last {e.bad_case_memory_days} days", "outcome": "NPS score (0-10)",
         "measure": "shift of the latent score before rounding and clipping", "size": e.nps_per_bad_case},
        {"id": "bad_case_raises_churn", "cause": "a multi-contact or reopened case resolved in the last "
         f"{e.bad_case_memory_days} days", "outcome": "daily churn hazard (the customer stops buying; a "
         "subscription is cancelled)", "measure": "hazard ratio", "size": e.churn_hazard_bad_case,
         "realized": rz.get("churn_hazard_ratio_bad_case")},
        {"id": "bad_case_lowers_support_scores", "cause": "support case with customer_contacts >= 2 or reopened",
         "outcome": "support CSAT (1-5) and CES (1-7) about that case (related_id = case_id)",
         "measure": "mean score difference (bad minus good)",
         "size": round(_mean(e.csat_support_bad, 1) - _mean(e.csat_support_good, 1), 4),
         "ces_size": round(e.ces_support_bad_mean - e.ces_support_good_mean, 4),
         "realized": realized_support},
        {"id": "promoters_buy_more", "cause": "last NPS answer 9-10 (promoter) or 0-6 (detractor), "
         "compared with never surveyed", "outcome": "daily order rate", "measure": "rate ratio",
         "size": {"promoter": e.order_rate_promoter, "detractor": e.order_rate_detractor},
         "realized": {"promoter": rz.get("order_rate_ratio_promoter_vs_unsurveyed"),
                      "detractor": rz.get("order_rate_ratio_detractor_vs_unsurveyed")}},
        {"id": "promoters_churn_less", "cause": "last NPS answer 9-10 (promoter) or 0-6 (detractor)",
         "outcome": "daily churn hazard", "measure": "hazard ratio",
         "size": {"promoter": e.churn_hazard_promoter, "detractor": e.churn_hazard_detractor},
         "realized": {"promoter": rz.get("churn_hazard_ratio_promoter_vs_unsurveyed")}},
        {"id": "closing_the_loop_recovers_nps",
         "cause": f"an unhappy answer (NPS 0-6, CSAT 1-2, CES 1-3) followed by a contact (reached or message "
                  f"left) within {cfg.followups.promise_hours:g} hours, compared with one never contacted",
         "outcome": "the customer's first NPS answer after the follow-up's due time (answer + "
                    f"{cfg.followups.promise_hours:g} h), within {e.recovery_memory_days} days "
                    "(mart_feedback_followups.next_nps_score)",
         "measure": "mean next NPS score, contacted in time minus never contacted",
         "size": e.nps_per_recovery, "size_measure": "shift of the latent NPS score before rounding and clipping",
         "realized": _mean_difference({"in_time_hit_n": t["recovery_in_time_n"],
                                       "in_time_hit_sum": t["recovery_in_time_sum"],
                                       "in_time_miss_n": t["recovery_never_n"],
                                       "in_time_miss_sum": t["recovery_never_sum"]}, "in_time"),
         "n": {"contacted_in_time": t["recovery_in_time_n"], "never_contacted": t["recovery_never_n"]},
         "means": {"contacted_in_time": _ratio(t["recovery_in_time_sum"], t["recovery_in_time_n"]),
                   "never_contacted": _ratio(t["recovery_never_sum"], t["recovery_never_n"])}},
        {"id": "closing_the_loop_lowers_churn",
         "cause": "a contact within the promise after an unhappy answer, among customers whose last NPS answer "
                  "was a detractor", "outcome": "daily churn hazard", "measure": "hazard ratio",
         "size": e.churn_hazard_recovered, "realized": rz.get("churn_hazard_ratio_recovered_detractor")},
    ]
    # each effect as realized in the measure the analytics marts report (None: no mart measures it)
    in_mart = {
        "late_delivery_lowers_delivery_csat": _in_mart_difference(t, "csat", "late_delivery"),
        "late_delivery_lowers_nps": _in_mart_difference(t, "nps", "late_delivery"),
        "failed_payment_lowers_nps": _in_mart_difference(t, "nps", "failed_payment"),
        "service_failure_refund_lowers_nps": _in_mart_difference(t, "nps", "service_failure_refund"),
        "bad_case_lowers_nps": _in_mart_difference(t, "nps", "bad_case"),
        "bad_case_raises_churn": _in_mart_churn_ratio(t, "bad_case"),
        "bad_case_lowers_support_scores": _in_mart_difference(t, "csat", "bad_case"),
        "promoters_buy_more": _in_mart_order_rates(t),
        "promoters_churn_less": None,
        # the follow-up queue (mart_feedback_followups, moment followup_missed) also takes the answers whose
        # comment the landing's tagger reads as negative: not something the simulation can repeat exactly
        "closing_the_loop_recovers_nps": None,
        "closing_the_loop_lowers_churn": None,
    }
    for effect in effects:
        effect["realized_in_mart"] = in_mart.get(effect["id"])
    return effects


def _in_mart_difference(t: dict[str, int], outcome: str, moment: str) -> dict | None:
    """Mean outcome of the units with the moment in the window minus without, as mart_experience_drivers
    reports it (row outcome x moment, segment 'all': effect, n_with, n_without, mean and sd of each group)."""
    pre = f"mart_{outcome}_{moment}"
    groups = {}
    for label in ("with", "without"):
        n, total, sq = (t.get(f"{pre}_{label}_{k}", 0) for k in ("n", "sum", "sumsq"))
        if n < 2:
            return None
        mean = total / n
        groups[label] = (n, mean, math.sqrt(max(sq - n * mean * mean, 0.0) / (n - 1)))
    (n1, m1, s1), (n0, m0, s0) = groups["with"], groups["without"]
    return {"mart": "mart_experience_drivers", "measure": f"mean {outcome} with the moment in the "
            f"{MART_WINDOW_DAYS} days before the unit minus without", "outcome": outcome, "moment": moment,
            "segment": "all", "window_days": MART_WINDOW_DAYS, "value": round(m1 - m0, 4),
            "n_with": n1, "n_without": n0, "mean_with": round(m1, 4), "mean_without": round(m0, 4),
            "sd_with": round(s1, 4), "sd_without": round(s0, 4)}


def _in_mart_churn_ratio(t: dict[str, int], moment: str) -> dict | None:
    """Churn rate of the subscriber-months with the moment in the window over those without (rate ratio), as
    mart_experience_drivers reports it (outcome churn, segment 'all': rate_ratio, n_with, n_without)."""
    pre = f"mart_churn_{moment}"
    n1, x1 = t.get(f"{pre}_with_n", 0), t.get(f"{pre}_with_sum", 0)
    n0, x0 = t.get(f"{pre}_without_n", 0), t.get(f"{pre}_without_sum", 0)
    if not (n1 and n0 and x0):
        return None
    return {"mart": "mart_experience_drivers", "measure": f"churn rate of subscriber-months with the moment in "
            f"the {MART_WINDOW_DAYS} days before the month over those without (rate ratio)", "outcome": "churn",
            "moment": moment, "segment": "all", "window_days": MART_WINDOW_DAYS,
            "value": round((x1 / n1) / (x0 / n0), 4), "n_with": n1, "n_without": n0,
            "churned_with": x1, "churned_without": x0, "rate_with": round(x1 / n1, 6),
            "rate_without": round(x0 / n0, 6), "difference": round(x1 / n1 - x0 / n0, 6)}


def _in_mart_order_rates(t: dict[str, int]) -> dict | None:
    """Orders per customer-year by the category of the latest NPS answer, and each category's ratio to the
    passives', as mart_experience_value reports order_rate (dimension nps_category, pooled, segment 'all')."""
    groups = {}
    for name in NPS_CATEGORIES:
        x, secs = t.get(f"mart_order_{name}_orders", 0), t.get(f"mart_order_{name}_exposure_s", 0)
        years = secs / 86400 / 365.25
        groups[name] = {"orders": x, "exposure_years": round(years, 4),
                        "rate": round(x / years, 4) if years else None}
    ref = groups["passive"]
    if not (ref["orders"] and ref["rate"]):
        return None
    for g in groups.values():
        g["ratio_to_reference"] = round(g["rate"] / ref["rate"], 4) if g["rate"] else None
    return {"mart": "mart_experience_value", "measure": "order_rate (orders per customer-year, time-varying "
            "exposure by the latest NPS answer) over the passives'", "dimension": "nps_category",
            "reference_group": "passive", "segment": "all", "groups": groups,
            "value": {k: groups[k]["ratio_to_reference"] for k in ("promoter", "detractor")}}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _share(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def _record_counts(shard_customers: int, customers_total: int,
                   records: dict[tuple[str, str], pl.DataFrame]) -> dict[str, int]:
    """Record-level mess of one shard as counts (planted and eligible), which add up over shards."""
    cust = records[("crm", "customers")].unique(["customer_id", "updated_at", "is_deleted"])
    num = pl.col("customer_id").str.slice(1).cast(pl.Int64)
    originals = cust.filter(num <= customers_total)
    created = originals.filter(pl.col("updated_at") == pl.col("created_at"))
    updated = originals.filter(~pl.col("is_deleted") & (pl.col("updated_at") > pl.col("created_at")))
    erased = originals.filter(pl.col("is_deleted"))
    accented = created.filter(
        pl.concat_str(["first_name", "last_name"]).str.contains(r"[^\x00-\x7F]"))
    orders = records[("erp", "orders")].unique("order_id")
    missing = orders.filter(pl.col("crm_customer_id").is_null())
    guest = orders.filter(pl.col("erp_account_id").str.starts_with("G"))
    known_missing = missing.filter(~pl.col("erp_account_id").str.starts_with("G"))
    variant = known_missing.filter(pl.col("email") != pl.col("email").str.strip_chars().str.to_lowercase())
    inv = records[("billing", "invoices")].unique("invoice_id")
    subs = records[("billing", "subscriptions")].unique("subscription_id")
    resp = records[("survey", "responses")].unique("response_id")
    commented = resp.filter(pl.col("_comment").is_not_null())
    at_email = pl.col("customer_ref").str.contains("@")
    return {
        "customers": shard_customers,
        "customer_update": updated["customer_id"].n_unique(),
        "gdpr_erasure": erased["customer_id"].n_unique(),
        "duplicate_person": cust.filter(num > customers_total)["customer_id"].n_unique(),
        "accented_name": accented.height, "created": created.height,
        "orders": orders.height, "erp_missing_crm_id": missing.height, "guest_order": guest.height,
        "known_missing": known_missing.height, "erp_email_variant": variant.height,
        "billing_refs": inv.height + subs.height,
        "billing_ref_by_email": inv.filter(at_email).height + subs.filter(at_email).height,
        "responses": resp.height, "survey_ref_by_email": resp.filter(at_email).height,
        "commented": commented.height, "french_comment": commented.filter(pl.col("language") == "fr").height,
    }


def shard_counts(sim: Simulation, records: dict[tuple[str, str], pl.DataFrame], customers_total: int) -> dict[str, int]:
    """Everything truth.json needs from one shard of customers, as counts that add up over shards."""
    counts = (_score_counts(sim) | _recovery_counts(sim) | _mart_counts(sim)
              | _record_counts(sim.config.customers, customers_total, records))
    counts |= {f"simulated_{k}": int(len(next(iter(v.values())))) if v else 0 for k, v in sim.tables.items()}
    counts |= _comment_counts(records)
    return counts


def _record_mess(cfg: GeneratorConfig, t: dict[str, int]) -> dict[str, dict]:
    m = cfg.mess
    n = t["customers"]

    def entry(rate: float, population: str, planted: int, eligible: int) -> dict:
        return {"rate": rate, "population": population, "planted": int(planted), "eligible": int(eligible),
                "realized_rate": _share(planted, eligible)}

    return {
        "customer_update": entry(m.customer_update_rate, "crm customers (excluding duplicates)",
                                 t["customer_update"], n),
        "gdpr_erasure": entry(m.gdpr_erasure_rate, "crm customers", t["gdpr_erasure"], n),
        "duplicate_person": entry(m.duplicate_person_rate, "crm customers (a second profile, same phone)",
                                  t["duplicate_person"], n),
        "accented_name": entry(m.accented_name_rate, "crm customers", t["accented_name"], t["created"]),
        "erp_missing_crm_id": entry(m.erp_missing_crm_id_rate, "erp orders", t["erp_missing_crm_id"], t["orders"]),
        "erp_email_variant": entry(m.erp_email_variant_rate, "erp orders without crm_customer_id, not guests",
                                   t["erp_email_variant"], t["known_missing"]),
        "guest_order": entry(m.guest_order_rate, "erp orders (e-mail unknown to the CRM)", t["guest_order"],
                             t["orders"]),
        "billing_ref_by_email": entry(m.billing_ref_by_email_rate, "billing invoices and subscriptions",
                                      t["billing_ref_by_email"], t["billing_refs"]),
        "survey_ref_by_email": entry(m.survey_ref_by_email_rate, "survey responses", t["survey_ref_by_email"],
                                     t["responses"]),
        "french_comment": entry(m.french_comment_rate, "survey responses with a comment",
                                t["french_comment"], t["commented"]),
    }


def build_truth(cfg: GeneratorConfig, counts: dict[str, int], stats: dict[str, float], report: MessReport,
                reextracts: list[dict], rows: dict[str, int], shards: int = 1) -> dict:
    """truth.json from the summed ``shard_counts`` and simulation ``stats`` of every shard."""
    m = cfg.mess
    mess = _record_mess(cfg, counts)
    realized = realized_effects(stats)
    rates = {"late_arrival": m.late_arrival_rate, "resend": m.resend_rate, "bad_date": m.bad_date_rate,
             "bad_enum": m.bad_enum_rate, "bad_null_key": m.bad_null_key_rate, "bad_score": m.bad_score_rate,
             "dst_transition_hour": m.dst_transition_hour_rate}
    populations = {
        "late_arrival": "records dated inside the window, before its last night",
        "resend": "records of every entity, before the last night",
        "bad_date": "rows of entities with a required date/timestamp column (the first one is corrupted)",
        "bad_enum": "rows of entities with an enum column (the first one is corrupted)",
        "bad_null_key": "rows of every entity (the first key column is emptied)",
        "bad_score": "survey responses (score outside its scale)",
        "dst_transition_hour": "erp orders placed on a DST-transition local date",
    }
    for kind, by_entity in report.counts.items():
        planted, eligible = sum(by_entity.values()), sum(report.eligible[kind].values())
        mess[kind] = {"rate": rates[kind], "population": populations[kind], "planted": planted,
                      "eligible": eligible, "realized_rate": _share(planted, eligible),
                      "by_entity": {k: {"planted": v, "eligible": report.eligible[kind][k]}
                                    for k, v in by_entity.items()}}
    n_drops = cfg.days * len(C.SYSTEMS)
    mess["reextract"] = {"rate": m.reextract_rate, "population": "(system, business_date) drops",
                         "planted": len(reextracts), "eligible": n_drops,
                         "realized_rate": _share(len(reextracts), n_drops),
                         "missing_share_of_first_extract": m.reextract_missing_share}
    dst = dst_dates(cfg)
    return {
        "contract_version": cfg.contract_version,
        "config": cfg.to_dict(),
        "window": {"start": cfg.start.isoformat(), "end_exclusive": cfg.end.isoformat(), "days": cfg.days,
                   "first_drop_is_full_history": True},
        "effects": _effects(cfg, counts, realized),
        "mess": mess,
        "reextracts": reextracts,
        "schema_drift": {"from_business_date": drift_date(cfg).isoformat(),
                         "columns": {"/".join(k): v for k, v in DRIFT_COLUMNS.items()}},
        "dst": {"transition_dates": [d.isoformat() for d in dst],
                "expected_handling": "erp local times: nonexistent (spring-forward gap) times shift forward by "
                                     "the gap (02:30 -> 03:30 CEST); ambiguous (autumn overlap) times take the "
                                     "first occurrence (summer time)"},
        "volumes": {"records_delivered": rows,
                    "customers": int(cfg.customers),
                    "simulated": {k.removeprefix("simulated_"): v for k, v in counts.items()
                                  if k.startswith("simulated_")},
                    "shards": shards},
        "realized": realized,
        "comments": _comments(counts),
    }


# ---- survey comments: the topics and polarity planted in each (simulator/comments.py) -------------------
COMMENTS_FILE = "truth_comments.csv"  # next to truth.json: one row per commented response


def comment_truth(records: dict[tuple[str, str], pl.DataFrame]) -> pl.DataFrame:
    """One row per delivered response with a comment: response_id, language, topics (';'-separated, sorted;
    empty: none), polarity (overall) and topic_polarity ('delivery:negative;support:negative')."""
    resp = records[("survey", "responses")].filter(pl.col("_comment").is_not_null())
    return (resp.unique("response_id").sort(pl.col("response_id").str.slice(2).cast(pl.Int64))
            .select("response_id", "language", topics="_topics", polarity="_polarity",
                    topic_polarity="_topic_polarity"))


def _comment_counts(records: dict[tuple[str, str], pl.DataFrame]) -> dict[str, int]:
    """Comments by language, topic and the topic's polarity, and by overall polarity (they add up over shards)."""
    rows = comment_truth(records)
    out = {"comments_total": rows.height}
    for (lang,), part in rows.partition_by("language", as_dict=True).items():
        out[f"comments|{lang}"] = part.height
        out[f"comments|{lang}|no_topic"] = part.filter(pl.col("topics") == "").height
        for pol, n in part.group_by("polarity").len().iter_rows():
            out[f"comments|{lang}|polarity|{pol}"] = int(n)
        pairs = part.select(pl.col("topic_polarity").str.split(";")).explode("topic_polarity").filter(
            pl.col("topic_polarity") != "")
        for pair, n in pairs.group_by("topic_polarity").len().iter_rows():
            topic, pol = pair.split(":")
            out[f"comments|{lang}|{topic}|{pol}"] = int(n)
    return out


def _comments(counts: dict[str, int]) -> dict:
    """truth.json's ``comments``: the planted topics per language, topic and polarity, and how they were planted."""

    def n(key: str) -> int:
        return int(counts.get(key, 0))

    langs = sorted({k.split("|")[1] for k in counts if k.startswith("comments|")})
    return {
        "file": COMMENTS_FILE,
        "columns": "response_id, language, topics (';'-separated, sorted; empty: none), polarity (overall: "
                   "negative, neutral, positive), topic_polarity ('delivery:negative;support:negative')",
        "commented_responses": n("comments_total"),
        "topics": list(COMMENT_TOPICS), "polarities": list(COMMENT_POLARITIES),
        "planting": {
            "experience_negative_clause_p": {t: {"survey_about_it": a, "in_memory": m}
                                             for t, (a, m) in EXPERIENCE.items()},
            "experiences": {"delivery": "late delivery (the survey's order, or in memory)",
                            "billing": "failed payment (billing CSAT, or in memory)",
                            "refund": "service-failure refund in memory",
                            "support": "multi-contact or reopened case (the survey's case, or in memory)"},
            "staff_with_support_p": STAFF_WITH_SUPPORT_P,
            "band_scale": {"negative": BAND_SCALE[0], "neutral": BAND_SCALE[1], "positive": BAND_SCALE[2]},
            "otherwise": "topic and polarity follow the answer's score band",
            "memory_read_when": "the survey is sent",
        },
        "by_language": {lang: {
            "comments": n(f"comments|{lang}"), "no_topic": n(f"comments|{lang}|no_topic"),
            "polarity": {p: n(f"comments|{lang}|polarity|{p}") for p in COMMENT_POLARITIES},
            "topics": {t: {p: n(f"comments|{lang}|{t}|{p}") for p in COMMENT_POLARITIES} for t in COMMENT_TOPICS},
        } for lang in langs},
    }
