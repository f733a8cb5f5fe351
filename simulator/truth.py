"""``truth.json``: what was planted in the drops, so the warehouse can be checked against it.

* ``effects``: every causal effect, its planted size, and where the simulation can measure it,
  the size realized in this data set (before any mess was planted);
* ``mess``: every kind of mess with its configured rate, the population it applies to, and the
  number planted;
* ``reextracts``, ``schema_drift``, ``dst``: where to find those cases;
* ``volumes``: records delivered per entity.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ingestion import contract as C

from .config import GeneratorConfig
from .mess import DRIFT_COLUMNS, MessReport, drift_date, dst_dates
from .simulate import UNHAPPY_MAX, Simulation, realized_effects


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


def _mean_difference(t: dict[str, int], name: str) -> float | None:
    """Mean score where the cause happened minus where it did not (None without both groups)."""
    if not (t[f"{name}_hit_n"] and t[f"{name}_miss_n"]):
        return None
    return round(t[f"{name}_hit_sum"] / t[f"{name}_hit_n"] - t[f"{name}_miss_sum"] / t[f"{name}_miss_n"], 4)


def _effects(cfg: GeneratorConfig, t: dict[str, int], rz: dict[str, float]) -> list[dict]:
    e = cfg.effects
    realized_csat = _mean_difference(t, "delivery")
    realized_support = _mean_difference(t, "support")
    return [
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
    counts = _score_counts(sim) | _recovery_counts(sim) | _record_counts(sim.config.customers, customers_total, records)
    counts |= {f"simulated_{k}": int(len(next(iter(v.values())))) if v else 0 for k, v in sim.tables.items()}
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
    }
