"""The landing contract, declared once.

Every nightly drop follows ``docs/landing-contract.md``. This module is the single source of
the systems, entities, file names, formats, columns, types, enums and keys: the synthetic
source systems write from it and ingestion validates against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# the version new drops are written in; a drop may declare any of SUPPORTED_VERSIONS, and carries the
# entities of its version (an entity added in version 2 is absent from a version-1 drop: that system
# did not deliver it then, which is not an empty delta)
CONTRACT_VERSION = 2
SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2)
SYSTEMS: tuple[str, ...] = ("crm", "erp", "billing", "survey")
MANIFEST_NAME = "_manifest.json"
LOCAL_TZ = "Europe/Paris"  # ERP timestamps are wall-clock time in this zone

# Column types of the contract. ``ts`` is ISO-8601 UTC; ``ts_local`` is the ERP's
# ``dd/mm/yyyy HH:MM:SS`` in Europe/Paris; ``date`` is ISO in JSON, ``dd/mm/yyyy`` in the ERP;
# ``dec`` uses a decimal comma in the ERP; ``answers`` is the survey's nested array.
ColumnType = Literal["str", "int", "dec", "bool", "date", "ts", "ts_local", "answers"]
Format = Literal["csv", "csv_fr", "jsonl"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False
    enum: tuple[str, ...] | None = None
    min: int | None = None  # inclusive lower bound of int/dec values
    pattern: str | None = None  # regular expression a str value must match in full


@dataclass(frozen=True)
class Entity:
    system: str
    name: str
    format: Format
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # the column whose newest value marks the current version of a key (None: immutable events)
    version_column: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # the contract version that added the entity: drops of an earlier version do not carry it
    since_version: int = 1

    @property
    def filename(self) -> str:
        return f"{self.name}.{'jsonl' if self.format == 'jsonl' else 'csv'}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def encoding(self) -> str:
        return "cp1252" if self.format == "csv_fr" else "utf-8"

    @property
    def separator(self) -> str:
        return ";" if self.format == "csv_fr" else ","

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.system}.{self.name} has no column {name!r}")


def _c(name: str, type_: ColumnType, nullable: bool = False, enum: tuple[str, ...] | None = None,
       min: int | None = None, pattern: str | None = None) -> Column:  # noqa: A002 - mirrors Column.min
    return Column(name, type_, nullable, enum, min, pattern)


CURRENCY = r"[A-Z]{3}"  # ISO-4217
COUNTRY = r"[A-Z]{2}"  # ISO-3166 alpha-2


SEGMENTS = ("consumer", "small_business", "enterprise")
CASE_CHANNELS = ("phone", "email", "chat", "store", "social")
CASE_CATEGORIES = ("delivery", "billing", "product", "account", "other")
PRIORITIES = ("low", "normal", "high", "urgent")
CASE_STATUSES = ("open", "pending", "solved", "closed")
TOUCH_CHANNELS = ("email", "paid_search", "social", "display", "referral")
TOUCH_TYPES = ("sent", "opened", "clicked", "visited")
SALES_CHANNELS = ("web", "store", "phone", "marketplace")
ORDER_STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
SHIPMENT_STATUSES = ("in_transit", "delivered", "lost", "returned_to_sender")
RETURN_REASONS = ("damaged", "wrong_item", "late", "not_as_described", "changed_mind")
INVOICE_STATUSES = ("open", "paid", "void", "uncollectible")
PAYMENT_METHODS = ("card", "sepa_debit", "transfer", "paypal")
PAYMENT_STATUSES = ("succeeded", "failed")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "service_failure", "dispute_lost")
FOLLOWUP_CHANNELS = ("phone", "email", "sms")
FOLLOWUP_OUTCOMES = ("reached", "left_message", "no_answer")
SURVEY_TYPES = ("nps", "csat", "ces")
TOUCHPOINTS = ("purchase", "delivery", "support", "billing", "onboarding", "relationship")
# inclusive score scale per survey type
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}

# the systems whose load audit (ingestion/load.py, one row per file of each load attempt) the warehouse
# reads, as the dbt source ingestion.<system>_load_audit: which drops delivered an entity is a fact the
# records cannot state (crm: whether the company delivers its follow-up feed at all, contract version 2)
AUDITED_SYSTEMS: tuple[str, ...] = ("crm",)
LOAD_AUDIT = "_load_audit"  # its name among the system's raw assets

ENTITIES: dict[tuple[str, str], Entity] = {}


def _register(e: Entity) -> None:
    ENTITIES[(e.system, e.name)] = e


_register(Entity("crm", "customers", "csv", (
    _c("customer_id", "str"), _c("email", "str", True), _c("phone", "str", True),
    _c("first_name", "str", True), _c("last_name", "str", True), _c("country", "str", pattern=COUNTRY),
    _c("city", "str", True), _c("segment", "str", enum=SEGMENTS), _c("persona", "str", True),
    _c("acquisition_channel", "str", True), _c("marketing_consent", "bool"), _c("created_at", "ts"),
    _c("updated_at", "ts"), _c("is_deleted", "bool"),
), key=("customer_id",), version_column="updated_at"))

_register(Entity("crm", "support_cases", "csv", (
    _c("case_id", "str"), _c("customer_id", "str"), _c("channel", "str", enum=CASE_CHANNELS),
    _c("category", "str", enum=CASE_CATEGORIES), _c("priority", "str", enum=PRIORITIES),
    _c("opened_at", "ts"), _c("first_response_at", "ts", True), _c("resolved_at", "ts", True),
    _c("status", "str", enum=CASE_STATUSES), _c("customer_contacts", "int", min=0), _c("reopened_count", "int", min=0),
    _c("updated_at", "ts"),
), key=("case_id",), version_column="updated_at"))

_register(Entity("crm", "campaign_touches", "csv", (
    _c("touch_id", "str"), _c("customer_id", "str", True), _c("email", "str", True),
    _c("campaign_id", "str"), _c("channel", "str", enum=TOUCH_CHANNELS),
    _c("touch_type", "str", enum=TOUCH_TYPES), _c("touched_at", "ts"),
), key=("touch_id",)))

# version 2: the company's follow-up activity after an unhappy survey answer (closing the loop): one
# record per outbound attempt, naming the response it follows up
_register(Entity("crm", "feedback_followups", "csv", (
    _c("followup_id", "str"), _c("response_id", "str"), _c("customer_id", "str"), _c("agent_id", "str"),
    _c("channel", "str", enum=FOLLOWUP_CHANNELS), _c("contacted_at", "ts"),
    _c("outcome", "str", enum=FOLLOWUP_OUTCOMES),
), key=("followup_id",), since_version=2))

_register(Entity("erp", "orders", "csv_fr", (
    _c("order_id", "str"), _c("erp_account_id", "str"), _c("crm_customer_id", "str", True),
    _c("email", "str", True), _c("order_ts", "ts_local"), _c("sales_channel", "str", enum=SALES_CHANNELS),
    _c("currency", "str", pattern=CURRENCY), _c("total_amount", "dec", min=0), _c("promised_delivery_date", "date"),
    _c("status", "str", enum=ORDER_STATUSES), _c("updated_ts", "ts_local"),
), key=("order_id",), version_column="updated_ts"))

_register(Entity("erp", "order_lines", "csv_fr", (
    _c("order_id", "str"), _c("line_no", "int", min=1), _c("sku", "str"), _c("product_category", "str"),
    _c("quantity", "int", min=1), _c("unit_price", "dec", min=0),
), key=("order_id", "line_no")))

_register(Entity("erp", "shipments", "csv_fr", (
    _c("shipment_id", "str"), _c("order_id", "str"), _c("line_no", "int", min=1), _c("quantity", "int", min=1),
    _c("carrier", "str"), _c("shipped_ts", "ts_local", True), _c("delivered_ts", "ts_local", True),
    _c("status", "str", enum=SHIPMENT_STATUSES), _c("updated_ts", "ts_local"),
), key=("shipment_id",), version_column="updated_ts"))

_register(Entity("erp", "returns", "csv_fr", (
    _c("return_id", "str"), _c("order_id", "str"), _c("line_no", "int", min=1), _c("quantity", "int", min=1),
    _c("reason", "str", enum=RETURN_REASONS), _c("requested_ts", "ts_local"),
    _c("received_ts", "ts_local", True),
), key=("return_id",)))

_register(Entity("billing", "invoices", "jsonl", (
    _c("invoice_id", "str"), _c("billing_account_id", "str"), _c("customer_ref", "str"),
    _c("order_id", "str", True), _c("subscription_id", "str", True), _c("issued_at", "ts"),
    _c("due_at", "ts"), _c("amount_due_minor", "int", min=0), _c("currency", "str", pattern=CURRENCY),
    _c("status", "str", enum=INVOICE_STATUSES), _c("updated_at", "ts"),
), key=("invoice_id",), version_column="updated_at"))

_register(Entity("billing", "payments", "jsonl", (
    _c("payment_id", "str"), _c("invoice_id", "str"), _c("attempted_at", "ts"), _c("amount_minor", "int", min=0),
    _c("currency", "str", pattern=CURRENCY), _c("method", "str", enum=PAYMENT_METHODS),
    _c("status", "str", enum=PAYMENT_STATUSES), _c("failure_reason", "str", True),
), key=("payment_id",)))

_register(Entity("billing", "refunds", "jsonl", (
    _c("refund_id", "str"), _c("payment_id", "str"), _c("refunded_at", "ts"), _c("amount_minor", "int", min=0),
    _c("currency", "str", pattern=CURRENCY), _c("reason", "str", enum=REFUND_REASONS),
), key=("refund_id",)))

_register(Entity("billing", "subscriptions", "jsonl", (
    _c("subscription_id", "str"), _c("customer_ref", "str"), _c("plan", "str"), _c("mrr_minor", "int", min=0),
    _c("currency", "str", pattern=CURRENCY), _c("started_at", "ts"), _c("cancelled_at", "ts", True),
    _c("cancel_reason", "str", True), _c("updated_at", "ts"),
), key=("subscription_id",), version_column="updated_at"))

_register(Entity("survey", "responses", "jsonl", (
    _c("response_id", "str"), _c("survey_id", "str"), _c("survey_type", "str", enum=SURVEY_TYPES),
    _c("customer_ref", "str"), _c("touchpoint", "str", enum=TOUCHPOINTS), _c("related_id", "str", True),
    _c("sent_at", "ts"), _c("responded_at", "ts"), _c("language", "str"), _c("answers", "answers"),
), key=("response_id",)))


def entities_of(system: str, version: int = CONTRACT_VERSION) -> list[Entity]:
    """The entities a drop of ``system`` in contract ``version`` carries (default: the current version)."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; expected one of {', '.join(SYSTEMS)}")
    return [e for (s, _), e in ENTITIES.items() if s == system and e.since_version <= version]
