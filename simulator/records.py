"""From simulated entity attributes to the record versions each source system delivers.

Every change of a record (an order shipped, a case solved, an invoice paid) is a new version
with a newer ``updated_at``; a version is delivered in the drop of the night it happened
(Europe/Paris calendar for the ERP, UTC for the others). Versions dated before the window
belong to the first drop (the historical load); versions at or after its end do not exist yet.

Frames here are typed: timestamps are epoch seconds (Int64), money in cents, dates in days
since 1970. Two helper columns travel with every frame: ``_at`` (version time, epoch seconds)
and ``_bd`` (business date of the drop it belongs to).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ingestion import contract as C

from . import vocabulary as V
from .comments import compose
from .simulate import Simulation
from .timeutil import epoch_seconds

EPOCH = dt.date(1970, 1, 1)
# columns travelling beside the contract columns: version time, drop date, survey score and comment, and the
# comment's planted topics ('delivery;support'), overall polarity and polarity per topic (truth_comments.csv)
HELPER_COLUMNS = ("_at", "_bd", "_score", "_comment", "_topics", "_polarity", "_topic_polarity")


def _ids(prefix: str, idx: pl.Expr, width: int) -> pl.Expr:
    return pl.lit(prefix) + (idx + 1).cast(pl.Utf8).str.zfill(width)


def cust_id(idx: pl.Expr) -> pl.Expr:
    return _ids("C", idx, 7)


def _pick(values: tuple | list, idx: pl.Expr) -> pl.Expr:
    """Look values up by integer index (negative index -> null)."""
    mapping = {i: v for i, v in enumerate(values)}
    return pl.when(idx >= 0).then(idx.replace_strict(mapping, default=None, return_dtype=pl.Utf8))


# the index columns of each simulation table that point into another table (customers included)
REFERENCES: dict[str, dict[str, str]] = {
    "orders": {"cust": "customers"}, "lines": {"order": "orders"}, "shipments": {"order": "orders"},
    "returns": {"order": "orders"}, "cases": {"cust": "customers"},
    "invoices": {"cust": "customers", "order": "orders", "sub": "subscriptions"},
    "payments": {"invoice": "invoices"}, "refunds": {"payment": "payments"}, "subscriptions": {"cust": "customers"},
    "responses": {"cust": "customers"}, "touches": {"cust": "customers"},
    "followups": {"response": "responses", "cust": "customers"},
}
# responses.related points into the table named by related_kind
RELATED_KIND = {0: "orders", 1: "cases", 2: "invoices"}


@dataclass(frozen=True)
class Shard:
    """Where one shard of customers sits among all shards, so that every id is unique across them.

    ``offsets`` gives the global index of the shard's first row per table (``customers`` and every
    simulation table); ``customers_total`` is the customer count of the whole company (second
    profiles of the same person take ids above it). One shard with no offsets is the whole company.
    """

    customers_total: int
    offsets: dict[str, int] = field(default_factory=dict)

    def offset(self, table: str) -> int:
        return self.offsets.get(table, 0)


class Builder:
    def __init__(self, sim: Simulation, shard: Shard | None = None) -> None:
        self.sim = sim
        self.cfg = sim.config
        self.shard = shard or Shard(self.cfg.customers)
        self.rng = np.random.default_rng([self.cfg.seed, 1])
        self.start, self.end = self.cfg.start, self.cfg.end
        self.start_s = int(epoch_seconds(self.start, np.zeros(1))[0])
        self.end_s = int(epoch_seconds(self.start, np.array([float(self.cfg.days)]))[0])

    def secs(self, days: np.ndarray) -> np.ndarray:
        """Sim days -> epoch seconds as float (NaN kept) for polars Int64 columns."""
        return epoch_seconds(self.start, np.asarray(days, float))

    # ---- customers and their identity ------------------------------------------------------
    def customers(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Versions of crm.customers, and the customer lookup (id, e-mail, country) other systems use."""
        c, n, rng = self.sim.customers, self.cfg.customers, self.rng
        idx = np.arange(n) + self.shard.offset("customers")
        first = _names(c["first_accented"], c["first"], V.FIRST_ACCENTED, V.FIRST_PLAIN)
        last = _names(c["last_accented"], c["last"], V.LAST_ACCENTED, V.LAST_PLAIN)
        words = (*V.FIRST_PLAIN, *V.FIRST_ACCENTED, *V.LAST_PLAIN, *V.LAST_ACCENTED)
        fold = {w: V.ascii_fold(w).lower() for w in words}
        base = pl.DataFrame({
            "idx": idx, "first_name": first, "last_name": last, "country_i": c["country"],
            "city_i": c["city"], "segment_i": c["segment"], "persona_i": c["persona"], "acq_i": c["acq_channel"],
            "marketing_consent": c["consent"], "has_phone": c["has_phone"], "digits": c["phone_digits"],
            "domain_i": c["email_domain"], "created": self.secs(c["created"]),
            "phone_fmt": rng.integers(0, 4, n),
        }).with_columns(
            customer_id=cust_id(pl.col("idx")),
            email=pl.col("first_name").replace_strict(fold) + "." + pl.col("last_name").replace_strict(fold)
            + (pl.col("idx") + 1).cast(pl.Utf8) + "@" + _pick(V.EMAIL_DOMAINS, pl.col("domain_i")),
            country=_pick([x[0] for x in V.COUNTRIES], pl.col("country_i")),
            cc=_pick([x[3] for x in V.COUNTRIES], pl.col("country_i")),
            created_at=pl.col("created").cast(pl.Int64),
        )
        city_table = np.array([[ci[i % len(ci)] for i in range(4)] for *_, ci in V.COUNTRIES], dtype=object)
        cities = pl.Series(city_table[c["country"], c["city"] % 4], dtype=pl.Utf8)
        base = base.with_columns(city=cities, phone=_phone(pl.col("cc"), pl.col("digits"), pl.col("phone_fmt"),
                                                           pl.col("has_phone")))
        lookup = base.select("idx", "customer_id", "email", "country")
        # the same person registered twice: new id, a work e-mail, the same phone written differently
        dup = base.filter(pl.Series(c["duplicate"]) & pl.col("has_phone")).with_columns(
            idx=pl.col("idx") + self.shard.customers_total,
            phone_fmt=(pl.col("phone_fmt") + 1) % 4,
        ).with_columns(
            customer_id=cust_id(pl.col("idx")),
            email=pl.col("first_name").replace_strict(fold) + "." + pl.col("last_name").replace_strict(fold)
            + "@" + _pick(V.WORK_DOMAINS, pl.col("domain_i") % len(V.WORK_DOMAINS)),
            phone=_phone(pl.col("cc"), pl.col("digits"), pl.col("phone_fmt"), pl.lit(True)),
        )
        dup = dup.with_columns(created_at=pl.max_horizontal(pl.col("created_at"), pl.lit(self.start_s))
                               + pl.Series(rng.integers(3600, self.cfg.days * 86_400 + 3600, dup.height)))
        rows = pl.concat([base, dup]).with_columns(
            segment=_pick(C.SEGMENTS, pl.col("segment_i")), persona=_pick(V.PERSONAS, pl.col("persona_i")),
            acquisition_channel=_pick(V.ACQUISITION_CHANNELS, pl.col("acq_i")), is_deleted=pl.lit(False),
            updated_at=pl.col("created_at"),
        )
        cols = [*C.ENTITIES[("crm", "customers")].column_names]
        created = rows.select(*cols, _key_idx=pl.col("idx"))
        # a profile update: moved city, changed consent, or moved up a segment
        upd_at = self.secs(c["update_at"])
        upd = created.head(n).with_columns(
            updated_at=pl.Series(upd_at, nan_to_null=True).cast(pl.Int64), kind=pl.Series(c["update_kind"]),
        ).filter(pl.col("updated_at").is_not_null()).with_columns(
            city=pl.when(pl.col("kind") == 0).then(pl.lit("Lyon")).otherwise(pl.col("city")),
            marketing_consent=pl.when(pl.col("kind") == 1).then(~pl.col("marketing_consent"))
            .otherwise(pl.col("marketing_consent")),
            segment=pl.when((pl.col("kind") == 2) & (pl.col("segment") == "consumer")).then(pl.lit("small_business"))
            .otherwise(pl.col("segment")),
        ).drop("kind")
        # a GDPR erasure request: a version flagged is_deleted (carrying the latest profile)
        er_at = pl.Series(self.secs(c["erase_at"]), nan_to_null=True).cast(pl.Int64)
        latest = pl.concat([created.head(n), upd]).sort("_key_idx", "updated_at").unique("_key_idx", keep="last",
                                                                                       maintain_order=True)
        erase = latest.join(pl.DataFrame({"_key_idx": idx, "_erase": er_at}), on="_key_idx").filter(
            pl.col("_erase").is_not_null()).with_columns(
            updated_at=pl.max_horizontal("_erase", pl.col("updated_at") + 1), is_deleted=pl.lit(True)).drop("_erase")
        out = pl.concat([created, upd, erase]).with_columns(_at=pl.col("updated_at"))
        return out, lookup

    # ---- helpers ----------------------------------------------------------------------------
    def frame(self, table: str, index: str | None = None) -> pl.DataFrame:
        """A simulation table with its references shifted to global indices, and its own row index as ``index``."""
        df = pl.DataFrame(self.sim.tables[table])
        shifts = [pl.when(pl.col(col) >= 0).then(pl.col(col) + self.shard.offset(target)).otherwise(pl.col(col))
                  .alias(col) for col, target in REFERENCES[table].items() if self.shard.offset(target)]
        if table == "responses":
            related = pl.col("related")
            for kind, target in RELATED_KIND.items():
                related = (pl.when((pl.col("related_kind") == kind) & (pl.col("related") >= 0))
                           .then(pl.col("related") + self.shard.offset(target)).otherwise(related))
            shifts.append(related.alias("related"))
        df = df.with_columns(shifts) if shifts else df
        return df.with_row_index(index, offset=self.shard.offset(table)) if index else df

    def ts(self, name: str) -> pl.Expr:
        """A float sim-day column -> epoch seconds (Int64, null for NaN)."""
        return (pl.lit(self.start_s, pl.Int64) + (pl.col(name).fill_nan(None) * 86_400).round()).cast(pl.Int64)

    def versions(self, base: pl.DataFrame, stages: list[tuple[str, str, dict[str, pl.Expr]]]) -> pl.DataFrame:
        """One version per stage (status, time column, column overrides) whose time is known."""
        parts = []
        for status, time_col, overrides in stages:
            parts.append(base.filter(pl.col(time_col).is_not_null()).with_columns(
                _at=pl.col(time_col), status=pl.lit(status), **overrides))
        return pl.concat(parts, how="diagonal_relaxed")

    # ---- entities -------------------------------------------------------------------------------
    def build(self) -> dict[tuple[str, str], pl.DataFrame]:
        customers, lookup = self.customers()
        self.lookup = lookup
        out = {("crm", "customers"): customers}
        out |= self.orders()
        out |= self.crm_events()
        out |= self.billing()
        out[("survey", "responses")] = self.responses()
        if self.cfg.contract_version >= C.ENTITIES[("crm", "feedback_followups")].since_version:
            out[("crm", "feedback_followups")] = self.followups()
        return {k: self.finish(k, v) for k, v in out.items()}

    def finish(self, key: tuple[str, str], df: pl.DataFrame) -> pl.DataFrame:
        """Keep versions that exist by the end of the window and date each one to its drop."""
        system = key[0]
        df = df.filter(pl.col("_at") < self.end_s)
        at = pl.from_epoch(pl.col("_at"), time_unit="s").dt.replace_time_zone("UTC")
        if system == "erp":
            at = at.dt.convert_time_zone(C.LOCAL_TZ)
        bd = pl.max_horizontal(at.dt.date(), pl.lit(self.start))
        e = C.ENTITIES[key]
        keep = [*e.column_names, *[c for c in HELPER_COLUMNS if c in df.columns or c == "_bd"]]
        # a version belongs to the drop of its night; nights after the window have not been extracted yet
        return (df.with_columns(_bd=bd).filter(pl.col("_bd") < self.end).select(keep)
                .sort("_at", *e.key, maintain_order=True))

    def by_email(self, n: int, rate: float) -> pl.Series:
        """Which of ``n`` records reference their customer by e-mail instead of CRM id."""
        return pl.Series(self.rng.random(n) < rate)

    def customer_ref(self, cust: pl.Expr, by_email: pl.Expr) -> pl.Expr:
        """A CRM customer_id, or the customer's e-mail where ``by_email``."""
        return pl.when(by_email).then(pl.col("_email")).otherwise(cust_id(cust))

    def with_email(self, df: pl.DataFrame, cust_col: str = "cust") -> pl.DataFrame:
        return df.join(self.lookup.select(pl.col("idx").alias(cust_col), pl.col("email").alias("_email"),
                                          pl.col("country").alias("_country")), on=cust_col, how="left")

    def orders(self) -> dict[tuple[str, str], pl.DataFrame]:
        m, rng = self.cfg.mess, self.rng
        o = self.frame("orders", "oi")
        n = o.height
        missing = rng.random(n) < m.erp_missing_crm_id_rate
        guest = missing & (rng.random(n) < m.guest_order_rate / max(m.erp_missing_crm_id_rate, 1e-9))
        variant = missing & ~guest & (rng.random(n) < m.erp_email_variant_rate)
        o = self.with_email(o, "cust").sort("oi").with_columns(
            _missing=pl.Series(missing), _guest=pl.Series(guest), _variant=pl.Series(variant),
            _vkind=pl.Series(rng.integers(0, 3, n)))
        email = (pl.when(pl.col("_guest")).then(pl.lit("guest.") + (pl.col("oi") + 1).cast(pl.Utf8) + "@"
                                                + _pick(V.EMAIL_DOMAINS, pl.col("oi") % len(V.EMAIL_DOMAINS)))
                 .when(pl.col("_variant") & (pl.col("_vkind") == 0)).then(pl.col("_email").str.to_uppercase())
                 .when(pl.col("_variant") & (pl.col("_vkind") == 1)).then(pl.lit("  ") + pl.col("_email") + " ")
                 .when(pl.col("_variant")).then(" " + pl.col("_email").str.to_titlecase())
                 .otherwise(pl.col("_email")))
        base = o.with_columns(
            order_id=_ids("O", pl.col("oi"), 8),
            erp_account_id=pl.when(pl.col("_guest")).then(_ids("G", pl.col("oi"), 8))
            .otherwise(_ids("EA", pl.col("cust"), 7)),
            crm_customer_id=pl.when(pl.col("_missing")).then(None).otherwise(cust_id(pl.col("cust"))),
            email=email, order_ts=self.ts("at"), sales_channel=_pick(C.SALES_CHANNELS, pl.col("channel")),
            total_amount=pl.col("total").cast(pl.Int64), promised_delivery_date=pl.col("promised").cast(pl.Int32),
            t_cancel=self.ts("cancel_at"), t_ship=self.ts("ship_at"), t_deliv=self.ts("delivered_at"),
            t_ret=self.ts("returned_at"),
        )
        orders = self.versions(base, [
            ("placed", "order_ts", {}), ("cancelled", "t_cancel", {}), ("shipped", "t_ship", {}),
            ("delivered", "t_deliv", {}), ("returned", "t_ret", {}),
        ]).with_columns(updated_ts=pl.col("_at"))
        first_at = base.select("oi", _at=pl.col("order_ts"))
        lines = self.frame("lines").rename({"order": "oi"}).join(first_at, on="oi").with_columns(
            order_id=_ids("O", pl.col("oi"), 8), sku=pl.lit("SKU-") + pl.col("sku").cast(pl.Utf8).str.zfill(5),
            product_category=_pick(V.PRODUCT_CATEGORIES, pl.col("cat")), quantity=pl.col("qty"),
            unit_price=pl.col("price").cast(pl.Int64))
        sh = self.frame("shipments", "si").with_columns(
            shipment_id=_ids("S", pl.col("si"), 9), order_id=_ids("O", pl.col("order"), 8), quantity=pl.col("qty"),
            carrier=_pick(V.CARRIERS, pl.col("carrier")), shipped_ts=self.ts("shipped"),
            t_deliv=self.ts("delivered"), t_lost=self.ts("lost_at"))
        shipments = self.versions(sh, [
            ("in_transit", "shipped_ts", {"delivered_ts": pl.lit(None, pl.Int64)}),
            ("delivered", "t_deliv", {"delivered_ts": pl.col("t_deliv")}),
            ("lost", "t_lost", {"delivered_ts": pl.lit(None, pl.Int64)}),
        ]).with_columns(updated_ts=pl.col("_at"))
        rt = self.frame("returns", "ri").with_columns(
            return_id=_ids("R", pl.col("ri"), 8), order_id=_ids("O", pl.col("order"), 8), quantity=pl.col("qty"),
            reason=_pick(C.RETURN_REASONS, pl.col("reason")), requested_ts=self.ts("requested"),
            t_recv=self.ts("received"))
        returns = self.versions(rt, [("", "requested_ts", {"received_ts": pl.lit(None, pl.Int64)}),
                                     ("", "t_recv", {"received_ts": pl.col("t_recv")})])
        self.order_currency = base.select("oi", "currency", "_email", "cust")
        return {("erp", "orders"): orders, ("erp", "order_lines"): lines, ("erp", "shipments"): shipments,
                ("erp", "returns"): returns}

    def crm_events(self) -> dict[tuple[str, str], pl.DataFrame]:
        k = self.frame("cases", "ki").with_columns(
            case_id=_ids("CS", pl.col("ki"), 8), customer_id=cust_id(pl.col("cust")),
            channel=_pick(C.CASE_CHANNELS, pl.col("channel")), category=_pick(C.CASE_CATEGORIES, pl.col("category")),
            priority=_pick(C.PRIORITIES, pl.col("priority")), opened_at=self.ts("opened"), t_first=self.ts("first"),
            t_res1=self.ts("resolved1"), t_reopen=self.ts("reopen"), t_res2=self.ts("resolved2"),
            customer_contacts=pl.col("contacts"))
        final = pl.coalesce("t_res2", "t_res1")
        k = k.with_columns(t_closed=final + 3 * 86_400)
        none = pl.lit(None, pl.Int64)
        cases = self.versions(k, [
            ("open", "opened_at", {"first_response_at": none, "resolved_at": none, "customer_contacts": pl.lit(1),
                                   "reopened_count": pl.lit(0)}),
            ("pending", "t_first", {"first_response_at": pl.col("t_first"), "resolved_at": none,
                                    "reopened_count": pl.lit(0)}),
            ("solved", "t_res1", {"first_response_at": pl.col("t_first"), "resolved_at": pl.col("t_res1"),
                                  "reopened_count": pl.lit(0)}),
            ("open", "t_reopen", {"first_response_at": pl.col("t_first"), "resolved_at": none,
                                  "reopened_count": pl.col("reopened")}),
            ("solved", "t_res2", {"first_response_at": pl.col("t_first"), "resolved_at": pl.col("t_res2"),
                                  "reopened_count": pl.col("reopened")}),
            ("closed", "t_closed", {"first_response_at": pl.col("t_first"), "resolved_at": final,
                                    "reopened_count": pl.col("reopened")}),
        ]).with_columns(updated_at=pl.col("_at"))
        t = self.with_email(self.frame("touches", "ti"), "cust").with_columns(
            touch_id=_ids("T", pl.col("ti"), 9),
            customer_id=pl.when(pl.col("known") == 2).then(cust_id(pl.col("cust"))),
            email=pl.when(pl.col("known") >= 1).then(pl.col("_email")),
            campaign_id=pl.when(pl.col("campaign") >= 1000)
            .then(pl.lit("news_w") + (pl.col("campaign") - 1000).cast(pl.Utf8).str.zfill(3))
            .otherwise(pl.lit("acq_") + _pick(V.ACQUISITION_CHANNELS, pl.col("campaign") // 100)),
            channel=_pick(C.TOUCH_CHANNELS, pl.col("channel")), touch_type=_pick(C.TOUCH_TYPES, pl.col("ttype")),
            touched_at=self.ts("at"), _at=self.ts("at"))
        return {("crm", "support_cases"): cases, ("crm", "campaign_touches"): t}

    def billing(self) -> dict[tuple[str, str], pl.DataFrame]:
        m = self.cfg.mess
        subs = self.with_email(self.frame("subscriptions", "bi"), "cust").sort("bi")
        cur = {x[0]: x[1] for x in V.COUNTRIES}
        subs = subs.with_columns(
            subscription_id=_ids("SUB", pl.col("bi"), 7),
            customer_ref=self.customer_ref(pl.col("cust"), self.by_email(subs.height, m.billing_ref_by_email_rate)),
            plan=_pick(V.PLANS, pl.col("plan")), mrr_minor=pl.col("mrr").cast(pl.Int64),
            currency=pl.col("_country").replace_strict(cur), started_at=self.ts("started"),
            t_cancel=self.ts("cancelled"),
            cancel_reason_s=_pick(V.CANCEL_REASONS, pl.col("reason")))
        subscriptions = self.versions(subs, [
            ("", "started_at", {"cancelled_at": pl.lit(None, pl.Int64), "cancel_reason": pl.lit(None, pl.Utf8)}),
            ("", "t_cancel", {"cancelled_at": pl.col("t_cancel"), "cancel_reason": pl.col("cancel_reason_s")}),
        ]).with_columns(updated_at=pl.col("_at"))
        inv = self.with_email(self.frame("invoices", "ii"), "cust").sort("ii")
        inv = inv.join(self.order_currency.select(pl.col("oi").alias("order"), pl.col("currency").alias("_ocur")),
                       on="order", how="left").sort("ii")
        inv = inv.with_columns(
            invoice_id=_ids("INV", pl.col("ii"), 8), billing_account_id=_ids("BA", pl.col("cust"), 7),
            customer_ref=self.customer_ref(pl.col("cust"), self.by_email(inv.height, m.billing_ref_by_email_rate)),
            order_id=pl.when(pl.col("order") >= 0).then(_ids("O", pl.col("order"), 8)),
            subscription_id=pl.when(pl.col("sub") >= 0).then(_ids("SUB", pl.col("sub"), 7)),
            issued_at=self.ts("issued"), due_at=self.ts("due"), amount_due_minor=pl.col("amount").cast(pl.Int64),
            currency=pl.coalesce("_ocur", pl.col("_country").replace_strict(cur)),
            t_paid=self.ts("paid_at"), t_void=self.ts("void_at"), t_unc=self.ts("uncollectible_at"))
        invoices = self.versions(inv, [("open", "issued_at", {}), ("paid", "t_paid", {}), ("void", "t_void", {}),
                                       ("uncollectible", "t_unc", {})]).with_columns(updated_at=pl.col("_at"))
        pay = self.frame("payments", "pi").join(
            inv.select(pl.col("ii").alias("invoice"), "currency"), on="invoice", how="left").sort("pi").with_columns(
            payment_id=_ids("PAY", pl.col("pi"), 8), invoice_id=_ids("INV", pl.col("invoice"), 8),
            attempted_at=self.ts("at"), amount_minor=pl.col("amount").cast(pl.Int64),
            method=_pick(C.PAYMENT_METHODS, pl.col("method")),
            status=pl.when(pl.col("ok")).then(pl.lit("succeeded")).otherwise(pl.lit("failed")),
            failure_reason=_pick(V.FAILURE_REASONS, pl.col("reason")), _at=self.ts("at"))
        rf = self.frame("refunds", "fi").join(
            pay.select(pl.col("pi").alias("payment"), "currency"), on="payment", how="left").sort("fi").with_columns(
            refund_id=_ids("RF", pl.col("fi"), 8), payment_id=_ids("PAY", pl.col("payment"), 8),
            refunded_at=self.ts("at"), amount_minor=pl.col("amount").cast(pl.Int64),
            reason=_pick(C.REFUND_REASONS, pl.col("reason")), _at=self.ts("at"))
        return {("billing", "invoices"): invoices, ("billing", "payments"): pay, ("billing", "refunds"): rf,
                ("billing", "subscriptions"): subscriptions}

    def followups(self) -> pl.DataFrame:
        """crm.feedback_followups: each call-back attempt after an unhappy answer (immutable events)."""
        return self.frame("followups", "fu").sort("fu").with_columns(
            followup_id=_ids("FU", pl.col("fu"), 8),
            response_id=pl.lit("r-") + (pl.col("response") + 1).cast(pl.Utf8),
            customer_id=cust_id(pl.col("cust")),
            agent_id=_ids("AG-", pl.col("agent"), 3),
            channel=_pick(C.FOLLOWUP_CHANNELS, pl.col("channel")),
            contacted_at=self.ts("at"),
            outcome=_pick(C.FOLLOWUP_OUTCOMES, pl.col("outcome")),
            _at=self.ts("at"))

    def responses(self) -> pl.DataFrame:
        m = self.cfg.mess
        r = self.with_email(self.frame("responses", "qi"), "cust").sort("qi")
        stype = _pick(C.SURVEY_TYPES, pl.col("stype"))
        tp = _pick(C.TOUCHPOINTS, pl.col("touchpoint"))
        sid = {f"{a}|{b}": v for (a, b), v in V.SURVEY_IDS.items()}
        related = (pl.when(pl.col("related_kind") == 0).then(_ids("O", pl.col("related"), 8))
                   .when(pl.col("related_kind") == 1).then(_ids("CS", pl.col("related"), 8))
                   .when(pl.col("related_kind") == 2).then(_ids("INV", pl.col("related"), 8)))
        r = r.with_columns(
            response_id=pl.lit("r-") + (pl.col("qi") + 1).cast(pl.Utf8),
            survey_type=stype, survey_id=(stype + "|" + tp).replace_strict(sid), touchpoint=tp,
            customer_ref=self.customer_ref(pl.col("cust"), self.by_email(r.height, m.survey_ref_by_email_rate)),
            related_id=related, sent_at=self.ts("sent"), responded_at=self.ts("responded"),
            language=pl.when(pl.col("french")).then(pl.lit("fr")).otherwise(pl.lit("en")),
            answers=pl.lit(None, pl.Utf8), _score=pl.col("score"), _at=self.ts("responded"))
        return pl.concat([r, self.comments()], how="horizontal")

    def comments(self) -> pl.DataFrame:
        """Each response's comment and its planted topics, in the order of the responses (simulator/comments.py).

        Their random numbers come from a stream of their own: every other record is the same whatever
        the comments say."""
        r, o, k = (self.sim.tables[t] for t in ("responses", "orders", "cases"))
        n, rel = r["cust"].size, r["related"]
        on_order = np.flatnonzero((r["related_kind"] == 0) & np.isin(r["touchpoint"], (1, 4)))  # delivery, onboarding
        on_case = np.flatnonzero(r["related_kind"] == 1)
        late, bad = np.zeros(n, bool), np.zeros(n, bool)
        late[on_order] = o["late"][rel[on_order]]
        bad[on_case] = ((k["contacts"] >= 2) | (k["reopened"] >= 1))[rel[on_case]]
        about = {"delivery": late, "billing": r["touchpoint"] == 3, "refund": np.zeros(n, bool), "support": bad}
        memory = {"delivery": r["late_mem"], "billing": r["fail_mem"], "refund": r["sfr_mem"], "support": r["bad_mem"]}
        out = compose(np.random.default_rng([self.cfg.seed, 7]), r["has_comment"], r["french"], r["band"],
                      about, memory)
        return pl.DataFrame({
            "_comment": [c.text if c else None for c in out],
            "_topics": [";".join(c.topics) if c else None for c in out],
            "_polarity": [c.polarity if c else None for c in out],
            "_topic_polarity": [";".join(f"{t}:{p}" for t, p in c.topic_polarity) if c else None for c in out],
        }, schema=dict.fromkeys(("_comment", "_topics", "_polarity", "_topic_polarity"), pl.Utf8))


def _names(accented: np.ndarray, idx: np.ndarray, with_accents: tuple[str, ...], plain: tuple[str, ...]) -> pl.Series:
    acc = np.array(with_accents, object)[idx % len(with_accents)]
    return pl.Series(np.where(accented, acc, np.array(plain, object)[idx % len(plain)]), dtype=pl.Utf8)


def _phone(cc: pl.Expr, digits: pl.Expr, fmt: pl.Expr, present: pl.Expr) -> pl.Expr:
    """One number in four notations: +33612345678, +33 6 12 34 56 78, 06 12 34 56 78, 0033612345678."""
    d = digits.cast(pl.Utf8)
    spaced = (d.str.slice(0, 1) + " " + d.str.slice(1, 2) + " " + d.str.slice(3, 2) + " " + d.str.slice(5, 2)
              + " " + d.str.slice(7, 2))
    out = (pl.when(fmt == 0).then("+" + cc + d)
           .when(fmt == 1).then("+" + cc + " " + spaced)
           .when(fmt == 2).then("0" + spaced)
           .otherwise("00" + cc + d))
    return pl.when(present).then(out)


def build_records(sim: Simulation, shard: Shard | None = None) -> dict[tuple[str, str], pl.DataFrame]:
    """Typed record versions per entity, each dated to the drop that delivers it (``_bd``)."""
    return Builder(sim, shard).build()
