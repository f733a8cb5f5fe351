"""truth.json documents every planted effect and mess kind; the late-delivery effect on CSAT can be
re-estimated from the files alone and matches what was planted."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import polars as pl

from simulator import Effects, Mess

from ..conftest import Drops
from ..landing import parse_local, parse_utc, read_entity

EFFECT_IDS = {
    "late_delivery_lowers_delivery_csat", "late_delivery_lowers_nps", "failed_payment_lowers_nps",
    "service_failure_refund_lowers_nps", "bad_case_lowers_nps", "bad_case_raises_churn",
    "bad_case_lowers_support_scores", "promoters_buy_more", "promoters_churn_less",
    "closing_the_loop_recovers_nps", "closing_the_loop_lowers_churn",
}
# every rate of Mess and the truth.json entry that reports it
MESS_ENTRIES = {
    "customer_update_rate": "customer_update", "gdpr_erasure_rate": "gdpr_erasure",
    "duplicate_person_rate": "duplicate_person", "accented_name_rate": "accented_name",
    "erp_missing_crm_id_rate": "erp_missing_crm_id", "erp_email_variant_rate": "erp_email_variant",
    "guest_order_rate": "guest_order", "billing_ref_by_email_rate": "billing_ref_by_email",
    "survey_ref_by_email_rate": "survey_ref_by_email", "resend_rate": "resend", "late_arrival_rate": "late_arrival",
    "reextract_rate": "reextract", "bad_date_rate": "bad_date", "bad_enum_rate": "bad_enum",
    "bad_null_key_rate": "bad_null_key", "bad_score_rate": "bad_score",
    "dst_transition_hour_rate": "dst_transition_hour", "french_comment_rate": "french_comment",
}


def test_truth_lists_every_planted_effect(march_drops: Drops) -> None:
    effects = {e["id"]: e for e in march_drops.truth["effects"]}
    assert set(effects) == EFFECT_IDS
    for e in effects.values():
        assert e["cause"] and e["outcome"] and e["measure"] and e["size"] is not None
    # sizes come from the configuration, not from literals in truth.py
    cfg = Effects()
    assert effects["late_delivery_lowers_nps"]["size"] == cfg.nps_per_late_delivery
    assert effects["bad_case_raises_churn"]["size"] == cfg.churn_hazard_bad_case
    # every Effects field is written to truth.json's config section
    assert set(march_drops.truth["config"]["effects"]) == {f.name for f in dataclasses.fields(Effects)}


def test_truth_lists_every_kind_of_mess(march_drops: Drops) -> None:
    rate_fields = {f.name for f in dataclasses.fields(Mess) if f.name.endswith("_rate")}
    assert rate_fields == set(MESS_ENTRIES), "a new Mess rate needs an entry in truth.json (and here)"
    mess = march_drops.truth["mess"]
    for field, entry in MESS_ENTRIES.items():
        assert mess[entry]["rate"] == getattr(march_drops.cfg.mess, field)
        assert mess[entry]["planted"] > 0, entry
    assert march_drops.truth["schema_drift"]["columns"]
    assert march_drops.truth["dst"]["transition_dates"]


def _latest(df: pl.DataFrame, key: str, ts: pl.Expr) -> pl.DataFrame:
    """The current version of each key: latest timestamp, then latest drop."""
    return (df.filter(pl.col(key).is_not_null()).with_columns(_ts=ts).filter(pl.col("_ts").is_not_null())
            .sort(key, "_ts", "_bd").unique(key, keep="last"))


def delivered_orders(root: Path) -> pl.DataFrame:
    """The current version of every order delivered in full, from the landing files alone: its columns,
    ``promised`` (the promised local date) and ``delivered_on`` (the local date of its last shipment)."""
    orders = _latest(read_entity(root, "erp", "orders"), "order_id", parse_local("updated_ts")).with_columns(
        promised=pl.col("promised_delivery_date").str.strptime(pl.Date, "%d/%m/%Y", strict=False))
    ships = _latest(read_entity(root, "erp", "shipments"), "shipment_id", parse_local("updated_ts"))
    # delivered when every shipment line is; the local delivery date is the wall-clock date in the file
    delivered = ships.group_by("order_id").agg(
        all_delivered=(pl.col("status") == "delivered").all(),
        delivered_on=parse_local("delivered_ts").dt.date().max(),
    ).filter(pl.col("all_delivered"))
    return orders.join(delivered, on="order_id").filter(pl.col("promised").is_not_null())


def test_late_delivery_effect_on_csat_reestimated_from_files(march_drops: Drops) -> None:
    root = march_drops.root
    late = delivered_orders(root).select("order_id", late=pl.col("delivered_on") > pl.col("promised"))
    resp = read_entity(root, "survey", "responses").filter(
        (pl.col("survey_type") == "csat") & (pl.col("touchpoint") == "delivery")
        & pl.col("value").is_between(1, 5) & parse_utc("responded_at").is_not_null()
    ).unique("response_id").join(late, left_on="related_id", right_on="order_id")
    stats = resp.group_by("late").agg(n=pl.len(), mean=pl.col("value").mean(), var=pl.col("value").var(),
                                      top2=(pl.col("value") >= 4).mean())
    on_time = stats.filter(~pl.col("late")).row(0, named=True)
    is_late = stats.filter(pl.col("late")).row(0, named=True)
    assert is_late["n"] >= 100 and on_time["n"] >= 500
    estimate = is_late["mean"] - on_time["mean"]
    se = math.sqrt(is_late["var"] / is_late["n"] + on_time["var"] / on_time["n"])
    planted = next(e for e in march_drops.truth["effects"] if e["id"] == "late_delivery_lowers_delivery_csat")
    assert abs(estimate - planted["size"]) <= 4 * se, (estimate, planted["size"], se)
    top2 = is_late["top2"] - on_time["top2"]
    assert abs(top2 - planted["top_two_box_difference"]) <= 0.12, top2
    # and the effect is real: far from zero
    assert estimate < -0.6
