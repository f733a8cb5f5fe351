"""Parameters of the simulated company: volumes, planted causal effects and the rate of every kind of mess.

Every number here is written to ``truth.json`` with the generated drops, so the warehouse's
analyses (drivers, churn, revenue) can be checked against what was planted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Mess:
    """Realistic defects of the source extracts, each at a configurable rate.

    Rates are shares of the population named in each comment. Per-record defects are Bernoulli
    draws (so realized rates scatter around the setting); per-drop defects (re-extracts) take
    exactly ``round(rate * eligible)`` drops.
    """

    # crm.customers: share of customers whose profile changes once during the window
    # (same customer_id delivered again later with a newer updated_at)
    customer_update_rate: float = 0.10
    # crm.customers: share of customers who file a GDPR erasure request during the window
    # (a new version with is_deleted=true; the person's earlier rows still carry PII)
    gdpr_erasure_rate: float = 0.01
    # crm.customers: share of customers registered a second time (new customer_id and e-mail,
    # same phone number written in another format); these profiles have no activity of their own
    duplicate_person_rate: float = 0.01
    # crm.customers: share of customers with an accented (non-ASCII) first or last name
    accented_name_rate: float = 0.35
    # erp.orders: share of orders without crm_customer_id (they carry only an e-mail)
    erp_missing_crm_id_rate: float = 0.35
    # erp.orders: among orders without crm_customer_id, share whose e-mail differs from the CRM
    # one by letter case and/or surrounding spaces
    erp_email_variant_rate: float = 0.50
    # erp.orders: share of orders placed as a guest with an e-mail the CRM does not know
    guest_order_rate: float = 0.03
    # billing.invoices and billing.subscriptions: share referencing the customer by e-mail
    billing_ref_by_email_rate: float = 0.30
    # survey.responses: share referencing the customer by e-mail
    survey_ref_by_email_rate: float = 0.25
    # every entity: share of records sent again, unchanged, 1-3 days later
    resend_rate: float = 0.02
    # every entity: share of records delivered 1..late_arrival_max_days after the night they belong to
    late_arrival_rate: float = 0.03
    late_arrival_max_days: int = 5
    # share of (system, business_date) drops delivered twice: the first extract lacked
    # reextract_missing_share of its records and is superseded by a corrected re-extract
    reextract_rate: float = 0.03
    reextract_missing_share: float = 0.10
    # from this share of the window on, one entity per system carries an extra column
    schema_drift_from: float = 0.6
    # bad records (each a Bernoulli share of the rows of every entity that has such a column)
    bad_date_rate: float = 0.002
    bad_enum_rate: float = 0.002
    bad_null_key_rate: float = 0.001
    # survey.responses: share whose score lies outside its scale
    bad_score_rate: float = 0.004
    # erp.orders placed on a DST-transition local date: share whose local order time falls in the
    # transition hour 02:00-02:59 (nonexistent in March, ambiguous in October)
    dst_transition_hour_rate: float = 0.30
    # survey comments: share written in French (accented), the rest in English
    french_comment_rate: float = 0.6


@dataclass(frozen=True)
class Effects:
    """Causal effects planted in customer behaviour. Sizes are in the units named per field."""

    # delivery CSAT (1-5) distribution of an order by whether it arrived after its promise
    # (Europe/Paris local delivery date > promised_delivery_date); P(score = 1..5)
    csat_delivery_on_time: tuple[float, ...] = (0.03, 0.05, 0.12, 0.35, 0.45)
    csat_delivery_late: tuple[float, ...] = (0.15, 0.20, 0.25, 0.25, 0.15)
    # support CSAT (1-5) by whether the case needed several customer contacts or was reopened
    csat_support_good: tuple[float, ...] = (0.04, 0.06, 0.15, 0.35, 0.40)
    csat_support_bad: tuple[float, ...] = (0.20, 0.22, 0.25, 0.20, 0.13)
    # support CES (1-7) mean before rounding, for one-contact cases vs multi-contact/reopened ones
    ces_support_good_mean: float = 5.6
    ces_support_bad_mean: float = 3.6
    # relationship and onboarding NPS (0-10): latent score before rounding and clipping
    nps_base: float = 7.4
    nps_sentiment_weight: float = 1.1
    nps_noise_sd: float = 1.5
    # shift of the latent NPS score per event of this kind in the window before the answer
    nps_per_late_delivery: float = -1.5
    nps_per_failed_payment: float = -1.0
    nps_per_service_failure_refund: float = -1.0
    nps_per_bad_case: float = -1.2
    # how long (days) each experience keeps weighing on NPS and churn
    late_delivery_memory_days: int = 60
    failed_payment_memory_days: int = 60
    refund_memory_days: int = 60
    bad_case_memory_days: int = 90
    # daily churn hazard multipliers
    churn_hazard_bad_case: float = 2.0  # while a multi-contact or reopened case is in memory
    churn_hazard_promoter: float = 0.6  # after answering 9-10 in an NPS survey
    churn_hazard_detractor: float = 1.5  # after answering 0-6
    # daily order-rate multipliers ("a happy customer spends more")
    order_rate_promoter: float = 1.3
    order_rate_detractor: float = 0.8
    # closing the loop: a customer reached (or left a message) within the follow-up promise after an
    # unhappy answer recovers for recovery_memory_days: their latent NPS shifts by nps_per_recovery and
    # their churn hazard is multiplied by churn_hazard_recovered (realized sizes in truth.json, in the
    # measure mart_feedback_followups reports)
    nps_per_recovery: float = 1.5
    churn_hazard_recovered: float = 0.6
    recovery_memory_days: int = 90


@dataclass(frozen=True)
class FollowUps:
    """The company's call-backs after an unhappy survey answer (crm.feedback_followups, contract version 2).

    Unhappy is what the warehouse counts as a negative answer: NPS 0-6, CSAT 1-2, CES 1-3.
    """

    # share of unhappy answers the company tries to call back at all (the rest: never)
    attempted_share: float = 0.8
    # delay of the first attempt after the answer: lognormal, median and log-sd (about 19 % after 48 h)
    delay_median_hours: float = 20.0
    delay_log_sd: float = 1.0
    # outcome of each attempt: reached, left_message, no_answer; after no_answer the agent tries again
    # 2-24 hours later, up to max_attempts attempts in all
    outcome_p: tuple[float, float, float] = (0.65, 0.15, 0.20)
    max_attempts: int = 3
    # the promise the recovery effect depends on: contact (reached or message) within this many hours
    promise_hours: float = 48.0
    agents: int = 40


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 2_000
    days: int = 30
    start: dt.date = dt.date(2026, 10, 10)
    seed: int = 42
    # share of customers who already existed before the window (delivered in the first drop)
    history_share: float = 0.6
    history_days: int = 730
    # memory bound: customers are simulated in shards of at most this many customer-days each
    # (customers x days); 40 M keeps a shard at 5-6 GiB peak (measured). Part of the config, since it changes the bytes.
    shard_customer_days: int = 40_000_000
    # the landing contract version the drops are written in (1: no crm.feedback_followups feed)
    contract_version: int = 2
    mess: Mess = field(default_factory=Mess)
    effects: Effects = field(default_factory=Effects)
    followups: FollowUps = field(default_factory=FollowUps)

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be >= 1, got {self.customers}")
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        if self.contract_version not in (1, 2):
            raise ValueError(f"contract_version must be 1 or 2, got {self.contract_version}")
        if self.shard_customer_days < 1:
            raise ValueError(f"shard_customer_days must be >= 1, got {self.shard_customer_days}")

    @property
    def end(self) -> dt.date:
        """First date after the window (half-open: start <= date < end)."""
        return self.start + dt.timedelta(days=self.days)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        d["end_exclusive"] = self.end.isoformat()
        return d
