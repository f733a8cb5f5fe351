"""Each kind of mess appears in the files at its configured rate.

Every measurement here is made from the generated files with plain polars, the way a warehouse
would see them, and compared with the configured rate within a binomial tolerance.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from ingestion import contract as C

from ..conftest import Drops
from ..landing import drop_dirs, parse_local, parse_utc, read_entity, read_jsonl_file

PARIS = ZoneInfo("Europe/Paris")


def assert_rate(hits: int, n: int, rate: float, z: float = 4.5) -> None:
    """``hits`` out of ``n`` is consistent with ``rate`` (z standard errors, at least one record)."""
    assert n > 0
    se = math.sqrt(rate * (1 - rate) / n)
    observed = hits / n
    assert abs(observed - rate) <= z * se + 1 / n, f"observed {observed:.4f} ({hits}/{n}), configured {rate}"


@functools.cache
def _entity(root: Path, system: str, entity: str) -> pl.DataFrame:
    return read_entity(root, system, entity)


def entity(drops: Drops, system: str, entity_name: str) -> pl.DataFrame:
    return _entity(drops.root, system, entity_name)


def _customers(drops: Drops) -> pl.DataFrame:
    c = entity(drops, "crm", "customers").filter(pl.col("customer_id").is_not_null())
    return c.with_columns(num=pl.col("customer_id").str.slice(1).cast(pl.Int64))


def test_customer_profile_updates(march_drops: Drops) -> None:
    c = _customers(march_drops).filter((pl.col("num") <= march_drops.cfg.customers) & (pl.col("is_deleted") == "false"))
    versions = c.group_by("customer_id").agg(pl.col("updated_at").n_unique().alias("v"))
    assert_rate(versions.filter(pl.col("v") >= 2).height, march_drops.cfg.customers,
                march_drops.cfg.mess.customer_update_rate)


def test_gdpr_erasure_requests(march_drops: Drops) -> None:
    c = _customers(march_drops).filter(pl.col("num") <= march_drops.cfg.customers)
    erased = c.filter(pl.col("is_deleted") == "true")["customer_id"].n_unique()
    assert_rate(erased, march_drops.cfg.customers, march_drops.cfg.mess.gdpr_erasure_rate)
    # the erasure version arrives after the profile was first delivered, PII still in earlier rows
    first = c.filter(pl.col("is_deleted") == "true").select("customer_id", "email").unique()
    assert first["email"].null_count() == 0


def _national_number(phone: pl.Expr) -> pl.Expr:
    digits = phone.str.replace_all(r"[^0-9+]", "")
    return (pl.when(digits.str.starts_with("+")).then(digits.str.slice(3))
            .when(digits.str.starts_with("00")).then(digits.str.slice(4))
            .otherwise(digits.str.slice(1)))


def test_duplicate_people_share_a_phone_in_another_notation(march_drops: Drops) -> None:
    c = _customers(march_drops).filter(pl.col("phone").is_not_null()).unique("customer_id")
    groups = c.group_by(_national_number(pl.col("phone")).alias("nsn")).agg(
        pl.col("customer_id").n_unique().alias("ids"), pl.col("phone").n_unique().alias("notations"))
    dup = groups.filter(pl.col("ids") >= 2)
    assert (dup["notations"] >= 2).all()  # the second profile writes the number differently
    assert_rate(int((dup["ids"] - 1).sum()), march_drops.cfg.customers, march_drops.cfg.mess.duplicate_person_rate)


def test_accented_names(march_drops: Drops) -> None:
    c = _customers(march_drops).filter(pl.col("num") <= march_drops.cfg.customers).unique("customer_id")
    accented = c.filter(pl.concat_str("first_name", "last_name").str.contains(r"[^\x00-\x7F]")).height
    assert_rate(accented, c.height, march_drops.cfg.mess.accented_name_rate)


def _orders(drops: Drops) -> pl.DataFrame:
    return entity(drops, "erp", "orders").filter(pl.col("order_id").is_not_null()).unique("order_id")


def test_erp_orders_without_crm_id_and_email_variants(march_drops: Drops) -> None:
    m = march_drops.cfg.mess
    o = _orders(march_drops)
    missing = o.filter(pl.col("crm_customer_id").is_null())
    assert_rate(missing.height, o.height, m.erp_missing_crm_id_rate)
    assert missing["email"].null_count() == 0  # an order without CRM id always carries an e-mail
    crm_emails = _customers(march_drops)["email"].drop_nulls().unique()
    known = missing.filter(pl.col("email").str.strip_chars().str.to_lowercase().is_in(crm_emails.implode()))
    variant = known.filter(pl.col("email") != pl.col("email").str.strip_chars().str.to_lowercase())
    assert_rate(variant.height, known.height, m.erp_email_variant_rate)
    guests = o.filter(~pl.col("email").str.strip_chars().str.to_lowercase().is_in(crm_emails.implode()))
    assert_rate(guests.height, o.height, m.guest_order_rate)


def test_references_by_email(march_drops: Drops) -> None:
    m = march_drops.cfg.mess
    inv = entity(march_drops, "billing", "invoices").filter(pl.col("invoice_id").is_not_null()).unique("invoice_id")
    subs = entity(march_drops, "billing", "subscriptions").filter(
        pl.col("subscription_id").is_not_null()).unique("subscription_id")
    at = pl.col("customer_ref").str.contains("@")
    assert_rate(inv.filter(at).height + subs.filter(at).height, inv.height + subs.height, m.billing_ref_by_email_rate)
    resp = entity(march_drops, "survey", "responses").filter(pl.col("response_id").is_not_null()).unique("response_id")
    assert_rate(resp.filter(at).height, resp.height, m.survey_ref_by_email_rate)


def test_french_accented_comments(march_drops: Drops) -> None:
    resp = entity(march_drops, "survey", "responses").filter(pl.col("comment").is_not_null())
    assert_rate(resp.filter(pl.col("language") == "fr").height, resp.height, march_drops.cfg.mess.french_comment_rate)
    assert resp.filter(pl.col("comment").str.contains(r"[éèêàçôûî]")).height > 0


def test_resent_records_are_exact_copies_on_a_later_night(march_drops: Drops) -> None:
    total_rows = total_dups = 0
    for system, name in C.ENTITIES:
        df = entity(march_drops, system, name)
        cols = [c for c in df.columns if c != "_bd"]
        dups = df.height - df.unique(cols).height
        # a copy always travels on a later night than the original
        later = df.group_by(cols).agg(pl.col("_bd").n_unique().alias("nights"), pl.len().alias("n"))
        assert later.filter((pl.col("n") >= 2) & (pl.col("nights") < pl.col("n"))).height == 0, name
        total_rows += df.height - dups
        total_dups += dups
    assert_rate(total_dups, total_rows, march_drops.cfg.mess.resend_rate)


def _version_date(system: str, col: str) -> pl.Expr:
    parse = parse_local if system == "erp" else parse_utc
    return parse(col).dt.date()


@pytest.mark.parametrize(("system", "name", "col"), [
    ("erp", "orders", "updated_ts"), ("erp", "shipments", "updated_ts"), ("crm", "support_cases", "updated_at"),
    ("crm", "campaign_touches", "touched_at"), ("billing", "invoices", "updated_at"),
    ("survey", "responses", "responded_at"),
])
def test_late_arriving_records(march_drops: Drops, system: str, name: str, col: str) -> None:
    cfg = march_drops.cfg
    last = cfg.end - dt.timedelta(days=1)
    key = C.ENTITIES[(system, name)].key
    df = entity(march_drops, system, name).filter(pl.col(key[0]).is_not_null())
    # a re-sent copy is not a late arrival: keep each version's first delivery
    df = df.sort("_bd").unique([*key, col], keep="first").with_columns(_d=_version_date(system, col))
    inside = df.filter(pl.col("_d").is_not_null() & (pl.col("_d") >= cfg.start) & (pl.col("_d") < last))
    assert inside.filter(pl.col("_bd") < pl.col("_d")).height == 0  # nothing arrives before it happened
    late = inside.filter(pl.col("_bd") > pl.col("_d"))
    assert (late.select((pl.col("_bd") - pl.col("_d")).dt.total_days()).to_series()
            <= cfg.mess.late_arrival_max_days).all()
    assert_rate(late.height, inside.height, cfg.mess.late_arrival_rate)


def test_reextracted_drops(drops: Drops) -> None:
    cfg = drops.cfg
    listed = drops.truth["reextracts"]
    assert len(listed) == round(cfg.mess.reextract_rate * cfg.days * len(C.SYSTEMS))
    found = sorted(f"{p.parent.name}/{p.name}" for p in (drops.root / "_superseded").glob("*/*"))
    assert found == sorted(f"{r['system']}/{r['business_date']}" for r in listed)
    for r in listed:
        old_dir = drops.root / r["superseded_drop"]
        new_dir = drops.root / r["system"] / r["business_date"]
        old = json.loads((old_dir / C.MANIFEST_NAME).read_text())
        new = json.loads((new_dir / C.MANIFEST_NAME).read_text())
        assert old["extracted_at"] < new["extracted_at"]
        assert sum(f["rows"] for f in old["files"]) == sum(f["rows"] for f in new["files"]) - \
            r["records_missing_from_first_extract"]
        assert r["records_missing_from_first_extract"] > 0
        for f in old["files"]:
            old_lines = (old_dir / f["path"]).read_bytes().splitlines()
            new_lines = set((new_dir / f["path"]).read_bytes().splitlines())
            assert set(old_lines) <= new_lines  # the correction only adds what the first extract lacked


def test_schema_drift_adds_one_column_per_system_from_a_date(drops: Drops) -> None:
    drift = drops.truth["schema_drift"]
    start = dt.date.fromisoformat(drift["from_business_date"])
    assert drops.cfg.start < start < drops.cfg.end
    for key, col in drift["columns"].items():
        system, name = key.split("/")
        e = C.ENTITIES[(system, name)]
        for d in drop_dirs(drops.root, system):
            path = d / e.filename
            if e.format == "jsonl":
                rows = read_jsonl_file(path)
                has = [col in r for r in rows]
                if rows:
                    assert all(has) if dt.date.fromisoformat(d.name) >= start else not any(has), path
            else:
                header = path.read_bytes().split(b"\n", 1)[0].decode(e.encoding).split(e.separator)
                assert (col in header) == (dt.date.fromisoformat(d.name) >= start), path


def _orders_on_night(drops: Drops, night: dt.date) -> pl.DataFrame:
    o = _orders(drops).with_columns(local=pl.col("order_ts").str.strptime(pl.Datetime, "%d/%m/%Y %H:%M:%S",
                                                                          strict=False))
    return o.filter(pl.col("local").dt.date() == night)


def test_dst_gap_times_on_the_spring_forward_night(march_drops: Drops) -> None:
    night = dt.date(2026, 3, 29)
    assert march_drops.truth["dst"]["transition_dates"] == [night.isoformat()]
    o = _orders_on_night(march_drops, night)
    in_gap = o.filter(pl.col("local").dt.hour() == 2)
    assert_rate(in_gap.height, o.height, march_drops.cfg.mess.dst_transition_hour_rate)
    for t in in_gap["local"].to_list():
        local = t.replace(tzinfo=PARIS)
        # 02:xx does not exist that night: a round trip through UTC changes the wall time
        assert local.astimezone(dt.UTC).astimezone(PARIS).replace(tzinfo=None) != t


def test_dst_overlap_times_on_the_fall_back_night(october_drops: Drops) -> None:
    night = dt.date(2026, 10, 25)
    o = _orders_on_night(october_drops, night)
    in_overlap = o.filter(pl.col("local").dt.hour() == 2)
    assert_rate(in_overlap.height, o.height, october_drops.cfg.mess.dst_transition_hour_rate)
    for t in in_overlap["local"].to_list():
        assert t.replace(tzinfo=PARIS, fold=0).utcoffset() != t.replace(tzinfo=PARIS, fold=1).utcoffset()


@pytest.mark.parametrize("kind", ["bad_date", "bad_enum", "bad_null_key", "bad_score"])
def test_bad_records_at_their_rate(march_drops: Drops, kind: str) -> None:
    """Exact counts per entity are checked in test_contract_drops; here the overall rate."""
    planted = march_drops.truth["mess"][kind]
    assert planted["planted"] > 0
    assert_rate(planted["planted"], planted["eligible"], getattr(march_drops.cfg.mess, f"{kind}_rate"))


def test_survey_rows_and_truth_volumes_agree(march_drops: Drops) -> None:
    rows = sum(len(read_jsonl_file(d / "responses.jsonl")) for d in drop_dirs(march_drops.root, "survey"))
    assert rows == march_drops.truth["volumes"]["records_delivered"]["survey/responses"]
