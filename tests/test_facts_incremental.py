"""Incremental facts (macros/incremental_facts.sql): fct_orders, fct_support_cases, fct_survey_responses,
fct_invoices, fct_payments, fct_refunds and fct_subscriptions night by night equal a full refresh.

The messy nights of tests/nights.py (the company of tests/test_staging_incremental.py): night N from the
first, incomplete extract of a re-extracted drop, nights N+1 and N+2, the corrected re-extract of N and
N's partition re-run after N+2, then N+2 again. Each night runs the seven facts and what they read
(staging, the key map and what it reads, the refunds join) incrementally; after the re-run of N, each
fact must be the full refresh as of N row for row (orders placed in N+1 and N+2 gone, late shipments and
returns of N+1 and N+2 taken back out), and after N+2 again the full refresh as of N+2. The nights must
change orders placed before them (deliveries, returns, refunds, re-keyed customers), cases opened before
them, bring late answers and null an answer's comment on an erasure request, change older invoices,
payments, refunds and subscriptions (late payments and refunds, re-keyed customers, a cancel date passed
by as_of), and the re-run must remove rows, or the test would pass for want of them. Edits of the
generated drops: the payment of an older order's refund arrives late, in night N+1 (the generated
sources deliver a payment before its refunds), so that only the payment's drop says the order, its
invoice and the refund changed. A customer with a support case and a commented survey answer, both
delivered before night N, asks for erasure in night N+1 (the generated erasures of the nights hit no
customer with a case), so that only the key map says the case changed and only staging's nulled comment
(and the key map) says the answer changed. A subscription started before N is given, in night N-2's drop,
a cancellation dated N+1 (the generated cancellations are delivered the day they happen), so that only
as_of passing its cancel date says it changed on N+1, and the re-run of N (as of N) makes it active again.
Night N+1 re-points two records delivered before N to another parent (a data correction the generator
never makes): a delivered shipment to another order, and a refunded payment to another invoice (its refund,
planted in N-1, moves to the other invoice's order too); only the old parents' lost records say they
changed.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from orchestration.warehouse import DbtError, run_dbt, window_vars
from simulator import generate

from . import drop_edit
from .nights import COMPANY, DAY, land_before, land_reextract, lander, sorted_rows, superseded_night

FACTS = {"fct_orders": "order_key", "fct_support_cases": "case_key", "fct_survey_responses": "response_key",
         "fct_invoices": "invoice_key", "fct_payments": "payment_key", "fct_refunds": "refund_key",
         "fct_subscriptions": "subscription_key"}
SOURCE_KEYS = {"fct_orders": "order_id", "fct_support_cases": "case_id", "fct_survey_responses": "response_id",
               "fct_invoices": "invoice_id", "fct_payments": "payment_id", "fct_refunds": "refund_id",
               "fct_subscriptions": "subscription_id"}
SELECT = ["--select", *(f"+{fact}" for fact in FACTS),
          "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
Facts = dict[str, pl.DataFrame]


def _delay_a_refunded_payment(landing: Path, night: dt.date) -> str:
    """Moves the payment of a refund delivered before night N (of an order's invoice, every record of
    the chain delivered before N) out of its drops into night N+1's; returns its payment_id."""
    drops = sorted((p for p in (landing / "billing").iterdir() if p.is_dir()), key=lambda p: p.name)
    early = [d for d in drops if dt.date.fromisoformat(d.name) < night]
    records = {e: [r for d in early for r in drop_edit.read(d, "billing", e)[1]]
               for e in ("invoices", "payments", "refunds")}
    ordered = {r["invoice_id"] for r in records["invoices"] if r.get("order_id")}
    paid = {r["payment_id"]: r for r in records["payments"] if r["invoice_id"] in ordered}
    payment = next(r["payment_id"] for r in records["refunds"] if r["payment_id"] in paid)
    moved = None
    for drop in [*drops, *(landing / "_superseded" / "billing").glob("*")]:
        _, rows = drop_edit.read(drop, "billing", "payments")
        kept = [r for r in rows if r["payment_id"] != payment]
        if len(kept) < len(rows):
            moved = [r for r in rows if r["payment_id"] == payment][-1] if drop in early else moved
            drop_edit.write(drop, "billing", "payments", None, kept)
    late = drop_edit.folder(landing, "billing", night + DAY)
    drop_edit.write(late, "billing", "payments", None, [*drop_edit.read(late, "billing", "payments")[1], moved])
    return payment


def _erase_a_customer_with_a_case(landing: Path, night: dt.date) -> str:
    """Adds to night N+1's CRM drop the erasure request of a customer with a case and a commented answer
    delivered before night N (no case version delivered from N on, and no erasure of their own); returns
    the customer_id."""
    def early(system: str) -> list[Path]:
        return sorted(d for d in (landing / system).iterdir() if d.is_dir() and dt.date.fromisoformat(d.name) < night)

    def records(system: str, entity: str, drops: list[Path]) -> list[dict]:
        return [r for d in drops for r in drop_edit.read(d, system, entity)[1]]

    everyone = records("crm", "customers", sorted(d for d in (landing / "crm").iterdir() if d.is_dir()))
    erased = {r["customer_id"] for r in everyone if r["is_deleted"] == "true"}
    with_case = {r["customer_id"] for r in records("crm", "support_cases", early("crm"))}
    later = sorted(d for d in (landing / "crm").iterdir() if d.is_dir() and d not in early("crm"))
    with_case -= {r["customer_id"] for r in records("crm", "support_cases", later)}  # no case versions then
    commented = {r["customer_ref"] for r in records("survey", "responses", early("survey"))
                 if any(a.get("question_id") == "comment" and a.get("text") for a in r["answers"])}
    customer = sorted((with_case & commented) - erased)[0]
    (latest, *_) = sorted((r for r in records("crm", "customers", early("crm")) if r["customer_id"] == customer),
                          key=lambda r: r["updated_at"], reverse=True)
    request = {**latest, "is_deleted": "true", "updated_at": f"{(night + DAY).isoformat()}T12:00:00Z"}
    drop = drop_edit.folder(landing, "crm", night + DAY)
    header, rows = drop_edit.read(drop, "crm", "customers")
    drop_edit.write(drop, "crm", "customers", header, [*rows, request])
    return customer


def _cancel_a_subscription_ahead(landing: Path, night: dt.date) -> str:
    """Adds to night N-2's billing drop a new version of a subscription started before it and never
    cancelled in any drop, scheduling its cancellation for night N+1 (cancelled_at on N+1): no record
    after N-2 says it ended, only as_of passing its cancel date. Returns the subscription_id."""
    ahead = night - 2 * DAY
    drops = sorted(d for d in (landing / "billing").iterdir() if d.is_dir())
    everything = [r for d in [*drops, *(landing / "_superseded" / "billing").glob("*")]
                  for r in drop_edit.read(d, "billing", "subscriptions")[1]]
    early = [r for d in drops if dt.date.fromisoformat(d.name) < ahead
             for r in drop_edit.read(d, "billing", "subscriptions")[1]]
    reason = next(r["cancel_reason"] for r in everything if r["cancel_reason"])
    cancelled = {r["subscription_id"] for r in everything if r["cancelled_at"]}
    later = {r["subscription_id"] for r in everything} - {r["subscription_id"] for r in early}
    subscription = sorted({r["subscription_id"] for r in early} - cancelled - later)[0]
    latest = max((r for r in early if r["subscription_id"] == subscription), key=lambda r: r["updated_at"])
    updated = f"{ahead.isoformat()}T12:00:00Z"
    assert latest["updated_at"] < updated, latest
    version = {**latest, "cancelled_at": f"{(night + DAY).isoformat()}T12:00:00Z", "cancel_reason": reason,
               "updated_at": updated}
    drop = drop_edit.folder(landing, "billing", ahead)
    drop_edit.write(drop, "billing", "subscriptions", None,
                    [*drop_edit.read(drop, "billing", "subscriptions")[1], version])
    return subscription


def _untouched_from(landing: Path, night: dt.date) -> tuple[dict[str, list[dict]], set[str], set[str]]:
    """(every record of the ERP and billing entities delivered before night N, by entity; the orders and
    the invoices none of whose records, their own or a child's through the refunds' chain, is in a drop
    from N on or in a superseded extract)."""
    early: dict[str, list[dict]] = {}
    later: dict[str, list[dict]] = {}
    for system, entities in (("erp", ("orders", "order_lines", "shipments", "returns")),
                             ("billing", ("invoices", "payments", "refunds"))):
        drops = [d for d in (landing / system).iterdir() if d.is_dir()]
        superseded = list((landing / "_superseded" / system).glob("*"))
        for entity in entities:
            early[entity] = [r for d in sorted(drops) if dt.date.fromisoformat(d.name) < night
                             for r in drop_edit.read(d, system, entity)[1]]
            later[entity] = [r for d in [*drops, *superseded]
                             if d in superseded or dt.date.fromisoformat(d.name) >= night
                             for r in drop_edit.read(d, system, entity)[1]]
    invoice_of = {r["payment_id"]: r["invoice_id"] for e in (early, later) for r in e["payments"]}
    order_of = {r["invoice_id"]: r.get("order_id") for e in (early, later) for r in e["invoices"]}
    invoices = ({r["invoice_id"] for r in later["invoices"]} | {r["invoice_id"] for r in later["payments"]}
                | {invoice_of.get(r["payment_id"]) for r in later["refunds"]})
    orders = ({r["order_id"] for e in ("orders", "order_lines", "shipments", "returns") for r in later[e]}
              | {order_of.get(i) for i in invoices})
    return (early, {r["order_id"] for r in early["orders"]} - orders,
            {r["invoice_id"] for r in early["invoices"]} - invoices)


def _repoint_a_shipment(landing: Path, night: dt.date) -> dict:
    """Re-points two delivered shipments X and Y of an order A, delivered before N in two different drops
    (every record of A, and of the orders they move to, delivered before N): night N+1's ERP drop has a
    new version of X pointing it at an order B (a line of the same number), and night N's corrected
    re-extract (landed after N+2) a new version of Y pointing it at an order C. On N+1, A loses X though
    none of its records is new (its count of records drops); on the re-run of N, A gets X back (N+1's
    version is gone: staging restores X's older version, from an older drop, so nothing of A is new)
    and loses Y the same night, one record for another (only the sum of their drops moves); N+2 again
    takes X away again. Returns X's quantity with the order_ids."""
    assert (landing / "_superseded" / "erp" / night.isoformat()).is_dir(), "night N's ERP drop is no re-extract"
    early, orders, _ = _untouched_from(landing, night)
    drops = sorted(d for d in (landing / "erp").iterdir() if dt.date.fromisoformat(d.name) < night)
    latest = {r["shipment_id"]: (d.name, r) for d in drops for r in drop_edit.read(d, "erp", "shipments")[1]}
    delivered: dict[str, list[tuple[str, dict]]] = {}
    for _, (drop, shipment) in sorted(latest.items()):
        if shipment["status"] == "delivered" and shipment["order_id"] in orders:
            delivered.setdefault(shipment["order_id"], []).append((drop, shipment))
    (_, x), (_, y) = next(v[:2] for _, v in sorted(delivered.items()) if len({d for d, _ in v}) > 1)
    lines = {(r["order_id"], r["line_no"]) for r in early["order_lines"]}
    b = sorted(o for o in orders if o != x["order_id"] and (o, x["line_no"]) in lines)[0]
    c = sorted(o for o in orders if o not in (x["order_id"], b) and (o, y["line_no"]) in lines)[0]
    for day, shipment, target in ((night + DAY, x, b), (night, y, c)):
        version = {**shipment, "order_id": target, "updated_ts": f"{day:%d/%m/%Y} 12:00:00"}
        drop = drop_edit.folder(landing, "erp", day)
        header, rows = drop_edit.read(drop, "erp", "shipments")
        drop_edit.write(drop, "erp", "shipments", header, [*rows, version])
    return {"quantity": int(x["quantity"]), "from": x["order_id"], "to": b, "also": c}

def _repoint_a_refunded_payment(landing: Path, night: dt.date, avoid: set[str]) -> dict:
    """Refunds, in night N-1's billing drop, a succeeded payment of an invoice I (of an order), and adds
    to night N+1's billing drop a new version of the payment pointing it at another invoice J of an order
    (cash re-applied): every other record of I, J and their orders was delivered before N (the generated
    nights refund too few payments before N to find one refunded already). I loses the payment and its
    refund, and so does I's order; J and its order gain them. Neither order is in `avoid` (the orders
    of _repoint_a_shipment). Returns the amounts with the invoice_ids."""
    early, orders, invoices = _untouched_from(landing, night)
    order_of = {r["invoice_id"]: r.get("order_id") for r in early["invoices"]}
    currency = {r["invoice_id"]: r["currency"] for r in early["invoices"]}
    latest = {r["payment_id"]: r for r in early["payments"]}  # the drops in order: the last version
    usable = {i for i in invoices if order_of[i] in orders - avoid}
    refunded_at = f"{(night - DAY).isoformat()}T10:00:00Z"
    payment = next(p for _, p in sorted(latest.items()) if p["status"] == "succeeded"
                   and p["invoice_id"] in usable and p["attempted_at"] < refunded_at)
    target = sorted(i for i in usable if i != payment["invoice_id"] and currency[i] == payment["currency"])[0]
    refund = {**early["refunds"][0], "refund_id": "RF90000001", "payment_id": payment["payment_id"],
              "refunded_at": refunded_at, "amount_minor": payment["amount_minor"] // 2,
              "currency": payment["currency"]}
    for day, entity, record in ((night - DAY, "refunds", refund),
                                (night + DAY, "payments", {**payment, "invoice_id": target})):
        drop = drop_edit.folder(landing, "billing", day)
        drop_edit.write(drop, "billing", entity, None, [*drop_edit.read(drop, "billing", entity)[1], record])
    return {"paid": payment["amount_minor"], "refunded": refund["amount_minor"],
            "from": payment["invoice_id"], "to": target}

def _facts(data: Path) -> Facts:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {fact: con.sql(f"select * from marts.{fact}").pl() for fact in FACTS}


def _night(data: Path, start: dt.date, end: dt.date) -> Facts:
    """Runs the window [start, end) and checks each fact ran incrementally; returns the facts."""
    results = run_dbt(["build", *SELECT], data_dir=data, dbt_vars=window_vars(start, end))
    for name in FACTS:
        (fact,) = [r for r in results if r.node.name == name]
        assert "changed as (" in fact.node.compiled_code, f"{name} did not run incrementally"
        # the night reads the changed keys' records only (the cost in proportion to the night)
        assert f"in (select {SOURCE_KEYS[name]} from changed)" in fact.node.compiled_code, name
    return _facts(data)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.date, dict]:
    data = tmp_path_factory.mktemp("facts_incremental")
    generate(COMPANY, data / "landing")
    night, reextracted = superseded_night(data / "landing")
    payment = _delay_a_refunded_payment(data / "landing", night)
    _erase_a_customer_with_a_case(data / "landing", night)
    subscription = _cancel_a_subscription_ahead(data / "landing", night)
    shipment = _repoint_a_shipment(data / "landing", night)
    repointed = {"shipment": shipment, "payment": _repoint_a_refunded_payment(
        data / "landing", night, {shipment["from"], shipment["to"], shipment["also"]})}
    land = lander(data, reextracted)

    land_before(land, night)
    # first run: no table yet, a full build as of N-1
    run_dbt(["build", *SELECT], data_dir=data, dbt_vars=window_vars(night - DAY, night))
    facts: dict = {"before": _facts(data)}
    land(night, superseded_first=True)
    facts["N"] = _night(data, night, night + DAY)
    for d in (1, 2):
        land(night + d * DAY)
        facts[f"N+{d}"] = _night(data, night + d * DAY, night + (d + 1) * DAY)
    # the corrected re-extract of night N lands after N+2 and its partition runs again
    land_reextract(data, reextracted, night)
    facts["rerun"] = _night(data, night, night + DAY)
    # night N+2 again: it catches up on N+1's drops, which the re-run took back out
    facts["final"] = _night(data, night + 2 * DAY, night + 3 * DAY)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        (facts["late_payment_drop"],) = con.execute("select drop_date from staging.stg_billing__payments "
                                                    "where payment_id = ?", [payment]).fetchone()
        (facts["cancelled_ahead"],) = con.execute("select cast(cancelled_at as date) from "
                                                  "staging.stg_billing__subscriptions where subscription_id = ?",
                                                  [subscription]).fetchone()
    facts["repointed"] = repointed
    return data, night, facts


STEPS = ["before", "N", "N+1", "N+2"]


def _changed(before: pl.DataFrame, after: pl.DataFrame, key: str) -> pl.DataFrame:
    """Rows of `before` whose row is different in `after` (the columns of `after` suffixed)."""
    joined = before.join(after, on=key, suffix="_after")
    differs = pl.any_horizontal([~pl.col(c).eq_missing(pl.col(f"{c}_after"))
                                 for c in before.columns if c != key])
    return joined.filter(differs)


def _changed_in_the_nights(facts: dict, fact: str, night: dt.date) -> pl.DataFrame:
    """The rows each of the nights N, N+1, N+2 changed, with the night's date (`night`)."""
    return pl.concat([_changed(facts[a][fact], facts[b][fact], FACTS[fact]).with_columns(night=pl.lit(night + i * DAY))
                      for i, (a, b) in enumerate(zip(STEPS, STEPS[1:], strict=False))])


def _new_in_the_nights(facts: dict, fact: str, night: dt.date) -> pl.DataFrame:
    """The rows each of the nights N, N+1, N+2 added, with the night's date (`night`)."""
    return pl.concat([facts[b][fact].join(facts[a][fact], on=FACTS[fact], how="anti")
                      .with_columns(night=pl.lit(night + i * DAY))
                      for i, (a, b) in enumerate(zip(STEPS, STEPS[1:], strict=False))])


def test_the_nights_change_older_orders_and_the_rerun_removes_orders(
        nights: tuple[Path, dt.date, dict]) -> None:
    _, night, facts = nights
    changed = _changed_in_the_nights(facts, "fct_orders", night)
    # orders placed before the night they changed in: late shipments delivered, returns, refunds
    assert changed.filter(pl.col("ordered_local_date") < night - DAY).height > 0
    delivered = changed.filter(~pl.col("is_delivered") & pl.col("is_delivered_after")).height
    returned = changed.filter(pl.col("returns_after") > pl.col("returns")).height
    refunded = changed.filter(pl.col("refunded_minor_after") > pl.col("refunded_minor")).height
    rekeyed = changed.filter(~pl.col("customer_key").eq_missing(pl.col("customer_key_after"))).height
    assert delivered > 0 and returned > 0 and refunded > 0, (delivered, returned, refunded)
    assert rekeyed > 0, "no order re-keyed by an erasure request or an identity merge in the nights"
    assert facts["late_payment_drop"] == night + DAY
    # the re-run of N took N+1's and N+2's new orders back out, and N+2 again put them back
    for fact, key in FACTS.items():
        gone = facts["N+2"][fact].join(facts["rerun"][fact], on=key, how="anti").height
        back = facts["final"][fact].join(facts["rerun"][fact], on=key, how="anti").height
        assert gone > 0 and back > 0, (fact, gone, back)
        for state in ("N", "N+1", "N+2", "rerun", "final"):
            assert facts[state][fact][key].is_unique().all(), (fact, state)


def test_the_nights_change_older_cases(nights: tuple[Path, dt.date, dict]) -> None:
    """Cases opened before a night change in it (a response, a resolution, a reopening, a re-keyed
    customer); every changed row carries the night's drop, or a new customer_key."""
    _, night, facts = nights
    changed = _changed_in_the_nights(facts, "fct_support_cases", night)
    older = changed.filter(pl.col("opened_at").dt.date() < pl.col("night") - DAY)
    assert older.height > 0, "no case opened before a night changed in it"
    resolved = changed.filter(~pl.col("is_resolved") & pl.col("is_resolved_after")).height
    rekeyed = changed.filter(~pl.col("customer_key").eq_missing(pl.col("customer_key_after"))).height
    assert resolved > 0 and rekeyed > 0, (resolved, rekeyed)
    # a case re-keyed without a new version of its own: only the key map says it changed
    assert changed.filter((pl.col("last_drop_date_after") < pl.col("night"))
                          & ~pl.col("customer_key").eq_missing(pl.col("customer_key_after"))).height > 0


def test_the_nights_bring_late_answers_and_null_an_erased_comment(nights: tuple[Path, dt.date, dict]) -> None:
    """A night brings answers given days before it, and an erasure request nulls the comment (topics,
    tone) of an answer given before it, whose staging row keeps its older drop: only the comparison
    of the comment columns and the customer_key with staging's says it changed."""
    _, night, facts = nights
    new = _new_in_the_nights(facts, "fct_survey_responses", night)
    late = new.filter(pl.col("response_date") < pl.col("night") - DAY)
    assert late.height > 0, "no late answer in the nights"
    changed = _changed_in_the_nights(facts, "fct_survey_responses", night)
    erased = changed.filter(pl.col("comment").is_not_null() & pl.col("comment_after").is_null())
    assert erased.height > 0, "no comment nulled by an erasure request in the nights"
    assert erased.filter(pl.col("last_drop_date_after") < pl.col("night")).height > 0
    assert erased.filter(pl.col("comment_topics_after").is_not_null()
                         | pl.col("comment_polarity_after").is_not_null()).height == 0


def _rekeyed(changed: pl.DataFrame) -> pl.DataFrame:
    return changed.filter(~pl.col("customer_key").eq_missing(pl.col("customer_key_after")))


def test_the_nights_change_older_invoices_payments_and_refunds(nights: tuple[Path, dt.date, dict]) -> None:
    """Invoices issued before a night change in it (a payment or a refund of one of their payments
    arrives, the customer is re-keyed); the refund whose payment arrives late (N+1) gets its invoice,
    order and customer from the payment's drop alone; older payments change with their invoice's new
    version or a re-keyed customer."""
    _, night, facts = nights
    invoices = _changed_in_the_nights(facts, "fct_invoices", night)
    older = invoices.filter(pl.col("issue_date") < pl.col("night") - DAY)
    paid_late = older.filter(pl.col("payment_attempts_after") > pl.col("payment_attempts")).height
    refunded_late = older.filter(pl.col("refunded_minor_after") > pl.col("refunded_minor")).height
    assert paid_late > 0 and refunded_late > 0, (paid_late, refunded_late)
    assert _rekeyed(invoices).height > 0, "no invoice re-keyed by an erasure request or an identity merge"
    # the refund of the late payment: before N+1 its payment was unknown (no invoice, order, customer)
    refunds = _changed_in_the_nights(facts, "fct_refunds", night)
    found = refunds.filter(pl.col("invoice_key").is_null() & pl.col("invoice_key_after").is_not_null()
                           & pl.col("order_key_after").is_not_null()
                           & (pl.col("night") == night + DAY) & (pl.col("last_drop_date_after") == night + DAY)
                           & (pl.col("refund_date") < night))
    assert found.height > 0, "the refund of the late payment did not change in N+1"
    assert facts["late_payment_drop"] == night + DAY
    payments = _changed_in_the_nights(facts, "fct_payments", night)
    older_payments = payments.filter(pl.col("attempt_date") < pl.col("night") - DAY)
    assert older_payments.filter(pl.col("last_drop_date_after") == pl.col("night")).height > 0
    assert _rekeyed(payments).height > 0, "no payment re-keyed by an erasure request or an identity merge"


def test_the_nights_pass_a_cancel_date_and_the_rerun_undoes_it(nights: tuple[Path, dt.date, dict]) -> None:
    """A subscription whose cancellation (dated N+1) was delivered in N-2 turns inactive on N+1 without
    a record of its own (as_of passes its cancel date); the re-run of N (as of N) makes it active again,
    N+2 again inactive. Subscriptions of re-keyed customers change too."""
    _, night, facts = nights
    assert facts["cancelled_ahead"] == night + DAY
    changed = _changed_in_the_nights(facts, "fct_subscriptions", night)
    passed = changed.filter(pl.col("is_active_as_of") & ~pl.col("is_active_as_of_after")
                            & (pl.col("last_drop_date_after") < pl.col("night") - DAY)
                            & (pl.col("cancel_date_after") == pl.col("night")))
    assert passed.height > 0, "no subscription turned inactive by as_of alone"
    assert (passed["night"] == night + DAY).all()
    keys = passed["subscription_key"].implode()
    for state, active in (("N", True), ("N+1", False), ("N+2", False), ("rerun", True), ("final", False)):
        rows = facts[state]["fct_subscriptions"].filter(pl.col("subscription_key").is_in(keys))
        assert rows.height == passed.height and (rows["is_active_as_of"] == active).all(), state
    assert _rekeyed(changed).height > 0, "no subscription re-keyed by an erasure request or an identity merge"


def test_a_record_repointed_to_another_parent_leaves_the_old_one(nights: tuple[Path, dt.date, dict]) -> None:
    """Night N+1 re-points a delivered shipment from an order A to an order B, and a refunded payment from
    an invoice I to an invoice J (each parent's records all delivered before N): A loses the shipment's
    units and I the payment and its refunds (and so does I's order) on N+1, though no record of theirs is
    new, as the gaining parents gain them."""
    _, _, facts = nights
    shipment, payment = facts["repointed"]["shipment"], facts["repointed"]["payment"]
    orders = _changed(facts["N"]["fct_orders"], facts["N+1"]["fct_orders"], "order_key")
    delivered = pl.col("units_delivered_after") - pl.col("units_delivered")
    # the losing parents are the only rows of the night whose numbers drop (the gaining ones are among many)
    assert orders.filter(delivered < 0).height == 1, shipment
    assert orders.filter(delivered == -shipment["quantity"]).height == 1, shipment
    assert orders.filter(delivered == shipment["quantity"]).height >= 1, shipment
    refunded = pl.col("refunded_minor_after") - pl.col("refunded_minor")
    assert payment["refunded"] > 0
    assert orders.filter(refunded < 0).height == 1, payment
    assert orders.filter(refunded == -payment["refunded"]).height == 1, payment
    assert orders.filter(refunded == payment["refunded"]).height >= 1, payment
    invoices = _changed(facts["N"]["fct_invoices"], facts["N+1"]["fct_invoices"], "invoice_key")
    assert invoices.filter(pl.col("paid_minor_after") < pl.col("paid_minor")).height == 1, payment
    for sign, side in ((-1, "from"), (1, "to")):
        found = invoices.filter((pl.col("paid_minor_after") - pl.col("paid_minor") == sign * payment["paid"])
                                & (refunded == sign * payment["refunded"])
                                & (pl.col("payment_attempts_after") - pl.col("payment_attempts") == sign))
        assert found.height == 1, (side, payment)


_FULL: dict[dt.date, Facts] = {}


def _full_refresh(data: Path, as_of: dt.date, into: Path) -> Facts:
    """The facts of a full refresh as of `as_of` over the same raw zone (built once per date)."""
    if as_of not in _FULL:
        for zone in ("raw", "quarantine"):
            shutil.copytree(data / zone, into / zone)
        run_dbt(["build", *SELECT, "--full-refresh"], data_dir=into, dbt_vars={"as_of": as_of.isoformat()})
        _FULL[as_of] = _facts(into)
    return _FULL[as_of]


@pytest.mark.parametrize("fact", list(FACTS))
@pytest.mark.parametrize("state", ["rerun", "final"])
def test_night_by_night_equals_a_full_refresh(nights: tuple[Path, dt.date, dict], state: str, fact: str,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """After the re-run of night N (the re-extract), each fact is the full refresh as of N, though N+1 and
    N+2 had run; after N+2 runs again, the full refresh as of N+2."""
    data, night, facts = nights
    as_of = night if state == "rerun" else night + 2 * DAY
    got = facts[state][fact]
    want = _full_refresh(data, as_of, tmp_path_factory.mktemp(f"full_{state}"))[fact]
    assert got.schema == want.schema
    assert got.height == want.height > 0
    assert sorted_rows(got).equals(sorted_rows(want))


def test_a_table_built_before_a_column_stops_the_night_with_the_fix(
        nights: tuple[Path, dt.date, dict], tmp_path: Path) -> None:
    """An upgrade: fct_orders built before its column source_drop_days (a copy of the nights' warehouse
    with the column dropped) stops the next incremental run with the fix (a full refresh), not with the
    engine's error about the column the night compares."""
    data, night, _ = nights
    for zone in ("raw", "quarantine"):
        shutil.copytree(data / zone, tmp_path / zone)
    shutil.copy(data / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("alter table marts.fct_orders drop column source_drop_days")
    with pytest.raises(DbtError, match=r"fct_orders.* before its column\(s\) source_drop_days .*"
                                       r"--as-of <the last night> --full-refresh"):
        run_dbt(["build", "--select", "fct_orders", "--exclude-resource-type", "test",
                 "--exclude-resource-type", "unit_test"], data_dir=tmp_path,
                dbt_vars=window_vars(night + 3 * DAY, night + 4 * DAY))
