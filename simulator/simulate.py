"""The simulated company: customers living through the journey, one day at a time.

Each day is one vectorized step over all customers: who orders, who is surveyed, who opens a
case, who churns. When an order is placed its whole life is sampled at once (shipping,
delivery against the promise, returns, cases, invoice, payment attempts, refunds, surveys) and
the experiences it causes are scheduled for the day they happen. An experience then weighs on
the customer's NPS, ordering and churn for a stated number of days (``Effects``), which is what
the warehouse's driver and churn analyses must find again.

Times are float days since the window start (UTC). Entity attributes come out as numpy arrays;
``records.py`` turns them into dated record versions and ``render.py`` into files.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import vocabulary as V
from .config import GeneratorConfig
from .timeutil import DAY_S, epoch_seconds, paris_local_day

NAN = np.nan
# order time of day: UTC hour weights; zero 00-04 UTC so no order is naturally placed at 02:xx Paris time
HOUR_WEIGHTS = np.array([0, 0, 0, 0, 0, 1, 2, 4, 6, 7, 8, 8, 9, 8, 7, 7, 8, 9, 10, 10, 9, 6, 3, 1], float)
HOUR_P = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
SEGMENT_P = (0.80, 0.15, 0.05)
ORDER_RATE = np.array([1 / 35, 1 / 15, 1 / 7])  # orders per customer-day, by segment
CHURN_HAZARD = np.array([1 / 450, 1 / 700, 1 / 1000])  # per customer-day, by segment
SUBSCRIBER_P = np.array([0.20, 0.35, 0.50])
SALES_CHANNEL_P = (0.60, 0.15, 0.10, 0.15)  # web, store, phone, marketplace
PROMISED_DAYS = np.array([3, 2, 3, 5])
CES_PURCHASE_MEAN = np.array([5.8, 6.0, 5.2, 5.0])
NPS_INVITE_P = 1 / 60
CASE_CHANNEL_P = (0.30, 0.30, 0.25, 0.05, 0.10)  # phone, email, chat, store, social
FIRST_RESPONSE_MEDIAN_H = np.array([0.05, 8.0, 0.15, 0.3, 4.0])
PAYMENT_FAIL_P = np.array([0.07, 0.05, 0.02, 0.04])  # card, sepa_debit, transfer, paypal


class Table:
    """Column arrays of a declared schema, appended in chunks and concatenated once."""

    def __init__(self, schema: str) -> None:
        # "name:kind name:kind ...", kind one of i (int64), f (float64, NaN = missing), b (bool), s (text)
        kinds = {"i": np.int64, "f": np.float64, "b": np.bool_, "s": object}
        self.schema = {name: kinds[k] for name, k in (item.split(":") for item in schema.split())}
        self._chunks: dict[str, list[np.ndarray]] = {k: [] for k in self.schema}
        self.n = 0

    def reserve(self, n: int) -> np.ndarray:
        """Row indices the next ``add`` of ``n`` rows will get (for tables whose rows reference each other)."""
        return np.arange(self.n, self.n + n)

    def add(self, **cols: np.ndarray | float | int) -> np.ndarray:
        """Append rows (every column of the schema); return their global row indices."""
        if set(cols) != set(self.schema):
            raise ValueError(f"columns {sorted(cols)} do not match the schema {sorted(self.schema)}")
        n = max(np.size(v) for v in cols.values() if np.ndim(v) > 0)
        for k, v in cols.items():
            self._chunks[k].append(np.broadcast_to(np.asarray(v, dtype=self.schema[k]), (n,)).copy())
        idx = np.arange(self.n, self.n + n)
        self.n += n
        return idx

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.zeros(0, self.schema[k]) for k, v in self._chunks.items()}


TABLES = {
    "orders": "cust:i at:f channel:i promised:f cancel_at:f total:f currency:s ship_at:f delivered_at:f "
              "returned_at:f late:b in_full:b lost:b",
    "lines": "order:i line_no:i cat:i sku:i qty:i price:f",
    "shipments": "order:i line_no:i qty:i carrier:i shipped:f delivered:f lost_at:f",
    "returns": "order:i line_no:i qty:i reason:i requested:f received:f",
    "cases": "cust:i channel:i category:i priority:i opened:f first:f resolved1:f reopen:f resolved2:f "
             "contacts:i reopened:i",
    "invoices": "cust:i order:i sub:i issued:f due:f amount:f paid_at:f uncollectible_at:f void_at:f",
    "payments": "invoice:i at:f amount:f method:i ok:b reason:i",
    "refunds": "payment:i at:f amount:f reason:i",
    "subscriptions": "cust:i plan:i mrr:i started:f cancelled:f reason:i",
    "responses": "cust:i stype:i touchpoint:i related_kind:i related:i sent:f responded:f score:i french:b "
                 "has_comment:b band:i phrase:i late_mem:b fail_mem:b sfr_mem:b bad_mem:b",
    "touches": "cust:i known:i campaign:i channel:i ttype:i at:f",
    "followups": "response:i cust:i at:f channel:i outcome:i agent:i",
}
FOLLOWUP_CHANNEL_P = (0.70, 0.20, 0.10)  # phone, email, sms
# the bottom band of each survey scale (nps, csat, ces): an unhappy answer (score_bands in macros/kpi.sql)
UNHAPPY_MAX = np.array([6, 2, 3])


@dataclass
class Simulation:
    config: GeneratorConfig
    customers: dict[str, np.ndarray]
    tables: dict[str, dict[str, np.ndarray]]
    stats: dict[str, float] = field(default_factory=dict)  # exposure and event counts (sums): realized_effects


class _Company:
    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.eff = cfg.effects
        self.t = {name: Table(schema) for name, schema in TABLES.items()}
        self.pending: dict[int, list[tuple[str, np.ndarray, int]]] = defaultdict(list)
        self.stats: dict[str, float] = defaultdict(float)

    # ---- random helpers -------------------------------------------------------------------
    def tod(self, n: int) -> np.ndarray:
        return (self.rng.choice(24, size=n, p=HOUR_P) + self.rng.random(n)) / 24

    def pick(self, p: tuple[float, ...] | np.ndarray, n: int) -> np.ndarray:
        p = np.asarray(p, float)
        return self.rng.choice(len(p), size=n, p=p / p.sum())

    def bern(self, p: float | np.ndarray, n: int) -> np.ndarray:
        return self.rng.random(n) < p

    def u(self, lo: float, hi: float, n: int) -> np.ndarray:
        return self.rng.uniform(lo, hi, n)

    # ---- customers --------------------------------------------------------------------------
    def make_customers(self) -> None:
        cfg, rng, n = self.cfg, self.rng, self.cfg.customers
        hist = rng.random(n) < cfg.history_share
        day = np.where(hist, -1 - np.floor(rng.random(n) * cfg.history_days), np.floor(rng.random(n) * cfg.days))
        created = day + self.tod(n)
        segment = self.pick(SEGMENT_P, n)
        persona = np.where(self.bern(0.1, n), -1, self.pick((1,) * len(V.PERSONAS), n))
        country = self.pick(tuple(c[2] for c in V.COUNTRIES), n)
        sentiment = rng.normal(0, 1, n) + np.where(persona >= 0, np.take(V.PERSONA_SENTIMENT, persona), 0.0)
        subscriber = self.bern(SUBSCRIBER_P[segment], n)
        accented = self.bern(cfg.mess.accented_name_rate, n)
        # an accented name has an accented first name, last name, or both
        which = self.pick((0.5, 0.3, 0.2), n)  # 0: first only, 1: last only, 2: both
        first_acc = accented & (which != 1)
        last_acc = accented & (which != 0)
        first = np.where(first_acc, rng.integers(0, len(V.FIRST_ACCENTED), n), rng.integers(0, len(V.FIRST_PLAIN), n))
        last = np.where(last_acc, rng.integers(0, len(V.LAST_ACCENTED), n), rng.integers(0, len(V.LAST_PLAIN), n))
        m = cfg.mess
        # profile update / erasure happen inside the window, after creation
        lo = np.maximum(created, 0.0)
        update_at = np.where(self.bern(m.customer_update_rate, n), lo + rng.random(n) * (cfg.days - lo), NAN)
        erase_at = np.where(self.bern(m.gdpr_erasure_rate, n), lo + rng.random(n) * (cfg.days - lo), NAN)
        self.c = {
            "created": created, "segment": segment, "persona": persona, "country": country,
            "sentiment": sentiment, "subscriber": subscriber, "first_accented": first_acc,
            "last_accented": last_acc, "first": first, "last": last,
            "city": rng.integers(0, 4, n),
            "acq_channel": np.where(self.bern(0.15, n), -1, self.pick((3, 2, 1, 1, 1), n)),
            "consent": self.bern(0.62, n), "has_phone": self.bern(0.8, n),
            "phone_digits": rng.integers(600_000_000, 799_999_999, n),
            "email_domain": rng.integers(0, len(V.EMAIL_DOMAINS), n),
            "update_at": update_at, "erase_at": erase_at, "update_kind": rng.integers(0, 3, n),
            "duplicate": self.bern(m.duplicate_person_rate, n),
        }
        self.created_day = np.floor(created).astype(int)
        self.churned = np.zeros(n, bool)
        self.churn_at = np.full(n, NAN)
        self.nps_state = np.zeros(n, np.int8)  # 0 none, 1 promoter, 2 passive, 3 detractor
        self.mem = {k: np.zeros(n, np.int32) for k in ("late", "fail", "sfr", "bad", "rec")}
        self.ordered = np.zeros(n, bool)
        self.sub_of = np.full(n, -1)
        # subscriptions: started at sign-up (history customers: some time before the window)
        sub_c = np.flatnonzero(subscriber)
        sc = created[sub_c]
        started = np.where(sc < 0, sc + rng.random(sub_c.size) * -sc, sc)
        plan = np.minimum(self.pick((0.5, 0.35, 0.15), sub_c.size) + (segment[sub_c] == 2), 2)
        # subscription state changes during the run; it becomes a table in ``finish``
        self.sub = {"cust": sub_c, "plan": plan, "mrr": np.take(V.PLAN_MRR_CENTS, plan), "started": started,
                    "cancelled": np.full(sub_c.size, NAN), "reason": np.full(sub_c.size, -1)}
        self.sub_of[sub_c] = np.arange(sub_c.size)

    # ---- scheduling of experiences ------------------------------------------------------------
    def remember(self, kind: str, cust: np.ndarray, at: np.ndarray, days: int) -> None:
        """The experience ``kind`` weighs on ``cust`` from ``at`` for ``days`` days."""
        ok = at < self.cfg.days
        cust, day = cust[ok], np.floor(at[ok]).astype(int)
        order = np.argsort(day, kind="stable")
        cust, day = cust[order], day[order]
        bounds = np.flatnonzero(np.diff(day)) + 1
        for group in np.split(np.arange(day.size), bounds):
            if group.size:
                d = int(day[group[0]])
                self.pending[d].append((kind, cust[group], +1))
                self.pending[d + days].append((kind, cust[group], -1))

    def apply_pending(self, day: int) -> None:
        for kind, cust, delta in self.pending.pop(day, []):
            np.add.at(self.mem[kind], cust, delta)

    def nps_latent(self, cust: np.ndarray, extra_late: np.ndarray | float = 0.0) -> np.ndarray:
        e = self.eff
        return (e.nps_base + e.nps_sentiment_weight * self.c["sentiment"][cust]
                + e.nps_per_late_delivery * (self.mem["late"][cust] + extra_late)
                + e.nps_per_failed_payment * self.mem["fail"][cust]
                + e.nps_per_service_failure_refund * self.mem["sfr"][cust]
                + e.nps_per_bad_case * self.mem["bad"][cust]
                + e.nps_per_recovery * np.minimum(self.mem["rec"][cust], 1))

    def nps_score(self, latent: np.ndarray) -> np.ndarray:
        noisy = latent + self.rng.normal(0, self.eff.nps_noise_sd, latent.size)
        return np.clip(np.round(noisy), 0, 10).astype(int)

    # ---- surveys -------------------------------------------------------------------------------
    def survey(self, cust: np.ndarray, sent: np.ndarray, respond_p: float, stype: int, touchpoint: int,
               scorer: Callable[[np.ndarray], np.ndarray], related_kind: int = -1,
               related: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Invite ``cust`` at ``sent``; the share ``respond_p`` answers within 3 days with ``scorer``.

        ``scorer`` gets the boolean mask of responders among the invited and returns their scores.
        Returns that mask and the scores.
        """
        resp = self.bern(respond_p, cust.size)
        cust, sent = cust[resp], sent[resp]
        if cust.size == 0:
            return resp, np.zeros(0, int)
        rel = np.full(cust.size, -1) if related is None else related[resp]
        score = scorer(resp)
        lo, hi = ((0, 10), (1, 5), (1, 7))[stype]
        band = np.digitize((score - lo) / (hi - lo), (0.45, 0.75))  # 0 negative, 1 neutral, 2 positive
        responded = sent + self.u(0.02, 3.0, cust.size)
        idx = self.t["responses"].add(
            cust=cust, stype=stype, touchpoint=touchpoint, related_kind=related_kind, related=rel,
            sent=sent, responded=responded, score=score,
            french=self.bern(self.cfg.mess.french_comment_rate, cust.size),
            has_comment=self.bern(0.45, cust.size), band=band, phrase=self.rng.integers(0, 1000, cust.size),
            **self.memory_flags(cust))
        self.follow_up(idx, cust, responded, score <= UNHAPPY_MAX[stype])
        return resp, score

    def memory_flags(self, cust: np.ndarray) -> dict[str, np.ndarray]:
        """Which experiences weigh on each customer when the survey is sent: the topics of their comment follow
        them (records.py, comments.py). Reads the memory only: no random number is drawn here."""
        return {f"{kind}_mem": self.mem[kind][cust] > 0 for kind in ("late", "fail", "sfr", "bad")}

    def follow_up(self, response: np.ndarray, cust: np.ndarray, responded: np.ndarray, unhappy: np.ndarray) -> None:
        """The company's call-back attempts after the unhappy answers; a contact (reached or message) within
        the promise starts the customer's recovery (Effects.nps_per_recovery, churn_hazard_recovered)."""
        f = self.cfg.followups
        i = np.flatnonzero(unhappy & self.bern(f.attempted_share, unhappy.size))
        if i.size == 0:
            return
        at = responded[i] + self.rng.lognormal(np.log(f.delay_median_hours), f.delay_log_sd, i.size) / 24
        channel = self.pick(FOLLOWUP_CHANNEL_P, i.size)
        contact = np.full(i.size, NAN)
        pending = np.arange(i.size)
        for _ in range(f.max_attempts):
            outcome = self.pick(f.outcome_p, pending.size)
            self.t["followups"].add(response=response[i[pending]], cust=cust[i[pending]], at=at[pending],
                                    channel=channel[pending], outcome=outcome,
                                    agent=self.rng.integers(0, f.agents, pending.size))
            ok = outcome < 2
            contact[pending[ok]] = at[pending[ok]]
            pending = pending[~ok]
            at[pending] += self.u(2 / 24, 1.0, pending.size)
        in_time = contact - responded[i] <= f.promise_hours / 24  # NaN (never reached) compares False
        self.stats["followups_unhappy"] += unhappy.sum()
        self.stats["followups_in_time"] += in_time.sum()
        self.remember("rec", cust[i[in_time]], contact[in_time], self.eff.recovery_memory_days)

    def csat_from(self, probs_by_flag: tuple[tuple[float, ...], tuple[float, ...]], flag: np.ndarray) -> np.ndarray:
        good = self.rng.choice(5, size=flag.size, p=np.asarray(probs_by_flag[0])) + 1
        bad = self.rng.choice(5, size=flag.size, p=np.asarray(probs_by_flag[1])) + 1
        return np.where(flag, bad, good)

    # ---- support cases -------------------------------------------------------------------------
    def open_cases(self, cust: np.ndarray, opened: np.ndarray, category: np.ndarray | int,
                   priority: np.ndarray | None = None) -> None:
        n = cust.size
        if n == 0:
            return
        rng = self.rng
        channel = self.pick(CASE_CHANNEL_P, n)
        if priority is None:
            priority = self.pick((0.2, 0.55, 0.2, 0.05), n)
            priority = np.where((self.c["segment"][cust] == 2) & self.bern(0.3, n), 3, priority)
        speed = np.where(priority == 3, 0.5, 1.0)
        first = opened + FIRST_RESPONSE_MEDIAN_H[channel] * speed * rng.lognormal(0, 1.0, n) / 24
        resolved1 = first + rng.lognormal(np.log(20), 1.0, n) / 24
        contacts = self.pick((0.68, 0.18, 0.09, 0.05), n) + 1
        reopened = self.bern(0.10, n).astype(int)
        reopen_at = np.where(reopened == 1, resolved1 + self.u(1, 5, n), NAN)
        resolved2 = np.where(reopened == 1, reopen_at + rng.lognormal(np.log(10), 0.8, n) / 24, NAN)
        final = np.where(reopened == 1, resolved2, resolved1)
        bad = (contacts >= 2) | (reopened >= 1)
        idx = self.t["cases"].add(cust=cust, channel=channel, category=category, priority=priority, opened=opened,
                                  first=first, resolved1=resolved1, reopen=reopen_at, resolved2=resolved2,
                                  contacts=contacts, reopened=reopened)
        self.remember("bad", cust[bad], final[bad], self.eff.bad_case_memory_days)
        sent = final + self.u(0.05, 1.0, n)
        is_csat = self.bern(0.6, n)
        e = self.eff
        for m, stype in ((is_csat, 1), (~is_csat, 2)):
            b = bad[m]
            if stype == 1:
                def scorer(r: np.ndarray, b: np.ndarray = b) -> np.ndarray:
                    return self.csat_from((e.csat_support_good, e.csat_support_bad), b[r])
            else:
                def scorer(r: np.ndarray, b: np.ndarray = b) -> np.ndarray:
                    mean = np.where(b[r], e.ces_support_bad_mean, e.ces_support_good_mean)
                    return np.clip(np.round(mean + self.rng.normal(0, 1.1, mean.size)), 1, 7).astype(int)
            self.survey(cust[m], sent[m], 0.30, stype, 2, scorer, related_kind=1, related=idx[m])

    # ---- billing ---------------------------------------------------------------------------------
    def bill(self, cust: np.ndarray, issued: np.ndarray, amount: np.ndarray, order: np.ndarray,
             sub: np.ndarray, void_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Issue invoices and run payment attempts (up to 3) until one succeeds.

        Returns, per invoice, the index of its successful payment (-1: none) and the time it succeeded.
        """
        n = cust.size
        paid_payment, paid_at = np.full(n, -1), np.full(n, NAN)
        if n == 0:
            return paid_payment, paid_at
        seg = self.c["segment"][cust]
        due = issued + np.where(seg == 2, 30, 14)
        method = np.where(seg == 2, self.pick((0.2, 0.2, 0.6, 0.0), n), self.pick((0.6, 0.1, 0.1, 0.2), n))
        method = np.where(sub >= 0, np.where(self.bern(0.5, n), 1, 0), method)  # subscriptions: card or SEPA
        inv = self.t["invoices"].reserve(n)
        at = issued + np.where(method == 2, self.u(1, 10, n), self.u(0.001, 0.02, n))
        failures = np.zeros(n, int)
        trying = np.flatnonzero(np.isnan(void_at))
        for attempt in range(3):
            if trying.size == 0:
                break
            fail = self.bern(PAYMENT_FAIL_P[method[trying]], trying.size)
            reason = np.where(fail, self.rng.integers(0, len(V.FAILURE_REASONS), trying.size), -1)
            pidx = self.t["payments"].add(invoice=inv[trying], at=at[trying], amount=amount[trying],
                                          method=method[trying], ok=~fail, reason=reason)
            ok = trying[~fail]
            paid_at[ok], paid_payment[ok] = at[ok], pidx[~fail]
            dup = ok[self.bern(0.003, ok.size)]  # a duplicate charge, refunded
            self.t["refunds"].add(payment=paid_payment[dup], at=at[dup] + self.u(1, 5, dup.size), amount=amount[dup],
                                  reason=0)
            f = trying[fail]
            failures[f] += 1
            self.remember("fail", cust[f], at[f], self.eff.failed_payment_memory_days)
            if attempt == 0:
                chase = f[self.bern(0.2, f.size)]
                self.open_cases(cust[chase], at[chase] + self.u(0.1, 1, chase.size), 1)
            trying = f
            at[f] = at[f] + self.u(1, 3, f.size)
        uncollectible = np.full(n, NAN)
        uncollectible[trying] = due[trying] + 7
        self.t["invoices"].add(cust=cust, order=order, sub=sub, issued=issued, due=due, amount=amount,
                               paid_at=paid_at, uncollectible_at=uncollectible, void_at=void_at)
        # billing CSAT: some customers who paid after a failed attempt are surveyed about it
        s = np.flatnonzero((failures > 0) & (paid_payment >= 0) & self.bern(0.3, n))
        self.survey(cust[s], paid_at[s] + 0.2, 0.3, 1, 3,
                    lambda r: self.csat_from((self.eff.csat_support_good, self.eff.csat_support_bad),
                                             np.ones(int(r.sum()), bool)), related_kind=2, related=inv[s])
        return paid_payment, paid_at

    # ---- orders ----------------------------------------------------------------------------------
    def place_orders(self, cust: np.ndarray, at: np.ndarray) -> None:
        n = cust.size
        if n == 0:
            return
        rng, e, start = self.rng, self.eff, self.cfg.start
        oidx = self.t["orders"].reserve(n)
        first_order = ~self.ordered[cust] & (self.c["created"][cust] >= 0)
        self.ordered[cust] = True
        channel = self.pick(SALES_CHANNEL_P, n)
        n_lines = np.minimum(1 + rng.poisson(0.6, n), 5)
        cancelled = self.bern(0.03, n)
        cancel_at = np.where(cancelled, at + self.u(0.05, 1, n), NAN)
        promised = paris_local_day(epoch_seconds(start, at)) + PROMISED_DAYS[channel]
        ship_at = at + self.u(0.2, 1.0, n)
        carrier = rng.integers(0, len(V.CARRIERS), n)
        transit = (PROMISED_DAYS[channel] - 1.6 + rng.exponential(np.take(V.CARRIER_DELAY_MEAN, carrier))
                   + rng.normal(0, 0.3, n))
        deliver_at = ship_at + np.maximum(transit, 0.2)
        lost = self.bern(0.012, n) & ~cancelled
        # lines and their shipments (one parcel per order; sometimes the last line ships later)
        lpos = np.repeat(np.arange(n), n_lines)
        lo = oidx[lpos]
        line_no = np.arange(lo.size) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines) + 1
        cat = rng.integers(0, len(V.PRODUCT_CATEGORIES), lo.size)
        price = np.round(np.take(V.CATEGORY_PRICE_CENTS, cat) * rng.lognormal(0, 0.5, lo.size) / 10) * 10 - 1
        qty = 1 + rng.poisson(0.3, lo.size)
        self.t["lines"].add(order=lo, line_no=line_no, cat=cat, sku=cat * 1000 + rng.integers(0, 400, lo.size),
                            qty=qty, price=price)
        total = np.bincount(lpos, weights=price * qty, minlength=n)
        split = self.bern(0.05, lo.size) & (line_no == n_lines[lpos]) & (n_lines[lpos] >= 2)
        extra = np.where(split, self.u(1, 3, lo.size), 0.0)
        l_ship, l_deliver = ship_at[lpos] + extra, deliver_at[lpos] + extra
        short = self.bern(0.04, lo.size) & (qty >= 2)  # shipped one unit less than ordered
        l_qty = qty - short
        l_lost = lost[lpos]
        s = np.flatnonzero(~cancelled[lpos])
        self.t["shipments"].add(order=lo[s], line_no=line_no[s], qty=l_qty[s], carrier=carrier[lpos][s],
                                shipped=l_ship[s], delivered=np.where(l_lost[s], NAN, l_deliver[s]),
                                lost_at=np.where(l_lost[s], l_ship[s] + 8, NAN))
        # order-level outcomes: delivered when its last line is; late against the local promise date
        delivered = ~cancelled & ~lost
        last_delivery = np.full(n, -np.inf)
        np.maximum.at(last_delivery, lpos, l_deliver)
        delivered_at = np.where(delivered, last_delivery, NAN)
        in_full = np.ones(n, bool)
        np.logical_and.at(in_full, lpos, ~short)
        late = delivered & (paris_local_day(epoch_seconds(start, delivered_at)) > promised)
        self.stats["orders_delivered"] += delivered.sum()
        self.stats["orders_late"] += late.sum()
        self.remember("late", cust[late], delivered_at[late], e.late_delivery_memory_days)
        # returns: more likely, and often for lateness, when late
        dl = np.flatnonzero(delivered[lpos])
        ret = dl[self.bern(0.03 + 0.06 * late[lpos[dl]], dl.size)]
        r_ord = lpos[ret]
        reason = np.where(late[r_ord] & self.bern(0.5, ret.size), 2, self.pick((0.25, 0.15, 0, 0.25, 0.35), ret.size))
        req = l_deliver[ret] + self.u(1, 10, ret.size)
        recv = req + self.u(2, 6, ret.size)
        self.t["returns"].add(order=lo[ret], line_no=line_no[ret], qty=l_qty[ret], reason=reason, requested=req,
                              received=recv)
        returned_at = np.full(n, np.inf)
        np.minimum.at(returned_at, r_ord, recv)
        self.t["orders"].add(
            cust=cust, at=at, channel=channel, promised=promised, cancel_at=cancel_at, total=total,
            currency=np.take([c[1] for c in V.COUNTRIES], self.c["country"][cust]),
            ship_at=np.where(cancelled, NAN, ship_at), delivered_at=delivered_at,
            returned_at=np.where(np.isinf(returned_at), NAN, returned_at), late=late, in_full=in_full, lost=lost)
        # billing: one invoice per order
        paid_payment, paid_time = self.bill(cust, at + self.u(0.001, 0.02, n), total, oidx, np.full(n, -1), cancel_at)
        # refunds of returns (damaged goods count as a service failure)
        r_reason = np.where(reason == 0, 3, 2)
        rr = np.flatnonzero(paid_payment[r_ord] >= 0)
        r_at = np.maximum(recv[rr], paid_time[r_ord[rr]]) + self.u(0.5, 3, rr.size)
        self.t["refunds"].add(payment=paid_payment[r_ord[rr]], at=r_at, amount=price[ret[rr]] * l_qty[ret[rr]],
                              reason=r_reason[rr])
        sf = r_reason[rr] == 3
        self.remember("sfr", cust[r_ord[rr][sf]], r_at[sf], e.refund_memory_days)
        # lost parcels: full refund; late deliveries: a 10 % goodwill refund for some
        lost_ok = np.flatnonzero(lost & (paid_payment >= 0))
        goodwill = np.flatnonzero(late & (paid_payment >= 0) & self.bern(0.15, n))
        for rows, base_at, share in ((lost_ok, ship_at + 8, 1.0), (goodwill, delivered_at, 0.1)):
            when = np.maximum(base_at[rows], paid_time[rows]) + self.u(1, 4, rows.size)
            self.t["refunds"].add(payment=paid_payment[rows], at=when, amount=np.round(total[rows] * share), reason=3)
            self.remember("sfr", cust[rows], when, e.refund_memory_days)
        # support cases the order causes
        lost_c = np.flatnonzero(lost & self.bern(0.8, n))
        self.open_cases(cust[lost_c], ship_at[lost_c] + 5 + self.u(0, 2, lost_c.size), 0, np.full(lost_c.size, 2))
        late_c = np.flatnonzero(late & self.bern(0.3, n))
        promise_passed = promised[late_c] - (start - dt.date(1970, 1, 1)).days + 1  # sim day after the promise
        chase_at = np.minimum(promise_passed + self.u(0.4, 1.5, late_c.size), delivered_at[late_c])
        self.open_cases(cust[late_c], chase_at, 0)
        nif = np.flatnonzero(delivered & ~in_full & self.bern(0.4, n))
        self.open_cases(cust[nif], delivered_at[nif] + self.u(0.2, 2, nif.size), 0)
        rc = self.bern(0.15, ret.size)
        self.open_cases(cust[r_ord[rc]], req[rc], 2)
        # surveys about the order
        dv = np.flatnonzero(delivered)
        self.survey(cust[dv], delivered_at[dv] + self.u(0.1, 1.0, dv.size), 0.35, 1, 1,
                    lambda r: self.csat_from((e.csat_delivery_on_time, e.csat_delivery_late), late[dv][r]),
                    related_kind=0, related=oidx[dv])
        pc = np.flatnonzero(self.bern(0.08, n))
        self.survey(cust[pc], at[pc] + self.u(0.01, 0.2, pc.size), 0.3, 2, 0,
                    lambda r: np.clip(np.round(CES_PURCHASE_MEAN[channel[pc][r]]
                                               + self.rng.normal(0, 1.1, int(r.sum()))), 1, 7).astype(int),
                    related_kind=0, related=oidx[pc])
        ob = np.flatnonzero(first_order & delivered & self.bern(0.6, n))
        self.survey(cust[ob], delivered_at[ob] + 7, 0.3, 0, 4,
                    lambda r: self.nps_score(self.nps_latent(cust[ob][r], late[ob][r].astype(float))),
                    related_kind=0, related=oidx[ob])

    # ---- the daily loop ----------------------------------------------------------------------
    def run(self, progress: Callable[[int], None] | None = None) -> Simulation:
        self.make_customers()
        cfg, e, c = self.cfg, self.eff, self.c
        rate = ORDER_RATE[c["segment"]]
        hazard = CHURN_HAZARD[c["segment"]]
        sub_started, sub_cancelled, sub_reason = self.sub["started"], self.sub["cancelled"], self.sub["reason"]
        sub_cust, sub_mrr = self.sub["cust"], self.sub["mrr"]
        erase_day = np.where(np.isnan(c["erase_at"]), -1, np.floor(c["erase_at"])).astype(int)
        acq = np.flatnonzero(c["created"] >= 0)
        self.acquisition_touches(acq)
        for day in range(cfg.days):
            self.apply_pending(day)
            alive = (self.created_day < day) & ~self.churned
            a = np.flatnonzero(alive)
            # orders: new customers often sign up at their first checkout
            new = np.flatnonzero(self.created_day == day)
            first = new[self.bern(0.6, new.size)]
            self.place_orders(first, c["created"][first] + self.u(0.002, 0.02, first.size))
            mult = np.choose(self.nps_state[a], [1.0, e.order_rate_promoter, 1.0, e.order_rate_detractor])
            buy = a[self.bern(rate[a] * mult, a.size)]
            for state in (1, 2, 3, 0):  # exposure and orders by latest NPS answer (2: passive, the reference)
                st = a[self.nps_state[a] == state]
                self.stats[f"order_exposure_{state}"] += st.size
                self.stats[f"orders_{state}"] += np.count_nonzero(self.nps_state[buy] == state)
            self.place_orders(buy, day + self.tod(buy.size))
            # relationship NPS
            inv = a[self.bern(NPS_INVITE_P, a.size)]
            responded, scores = self.survey(inv, day + self.tod(inv.size), 0.35, 0, 5,
                                            lambda r, inv=inv: self.nps_score(self.nps_latent(inv[r])))
            self.nps_state[inv[responded]] = np.where(scores >= 9, 1, np.where(scores >= 7, 2, 3))
            # spontaneous support cases
            sc = a[self.bern(1 / 300, a.size)]
            self.open_cases(sc, day + self.tod(sc.size), self.pick((0.15, 0.45, 0.25, 0.15), sc.size) + 1)
            # newsletter to consenting customers
            nl = a[c["consent"][a] & self.bern(1 / 14, a.size)]
            self.newsletter(nl, day)
            # subscription renewals on the monthly anniversary
            live = np.isnan(sub_cancelled) & (np.floor(sub_started) < day)
            due = np.flatnonzero(live & ((day - np.floor(sub_started)).astype(int) % 30 == 0)
                                 & ~self.churned[sub_cust])
            at = day + self.tod(due.size)
            self.bill(sub_cust[due], at, sub_mrr[due].astype(float), np.full(due.size, -1), due, np.full(due.size, NAN))
            # churn
            bad = self.mem["bad"][a] > 0
            rec = self.mem["rec"][a] > 0
            h = hazard[a] * np.where(bad, e.churn_hazard_bad_case, 1.0) * np.where(
                rec, e.churn_hazard_recovered, 1.0) * np.choose(
                self.nps_state[a], [1.0, e.churn_hazard_promoter, 1.0, e.churn_hazard_detractor])
            gone = self.bern(h, a.size)
            for label, m in (("bad", bad), ("nobad", ~bad), ("promoter", self.nps_state[a] == 1),
                             ("detractor", self.nps_state[a] == 3), ("unsurveyed", self.nps_state[a] == 0),
                             ("detractor_recovered", (self.nps_state[a] == 3) & rec),
                             ("detractor_unrecovered", (self.nps_state[a] == 3) & ~rec)):
                self.stats[f"churn_exposure_{label}"] += m.sum()
                self.stats[f"churn_{label}"] += (m & gone).sum()
            erased = np.flatnonzero(erase_day == day)
            leaving = np.union1d(a[gone], erased)
            self.churned[leaving] = True
            self.churn_at[leaving] = day + self.tod(leaving.size)
            s = self.sub_of[leaving]
            has = s >= 0
            s = s[has]
            s = s[np.isnan(sub_cancelled[s])]
            sub_cancelled[s] = self.churn_at[sub_cust[s]]
            poor = self.mem["bad"][sub_cust[s]] > 0
            sub_reason[s] = np.where(poor & self.bern(0.7, s.size), 1, self.pick((0.3, 0, 0.35, 0.25, 0.1), s.size))
            if progress:
                progress(1)
        return self.finish()

    def acquisition_touches(self, cust: np.ndarray) -> None:
        """Anonymous or lead touches in the two weeks before a customer signs up."""
        k = 1 + self.rng.poisson(1.0, cust.size)
        cc = np.repeat(cust, k)
        at = self.c["created"][cc] - self.u(0.05, 14, cc.size)
        ch = self.c["acq_channel"][cc]
        ch = np.where(ch < 0, self.pick((3, 2, 1, 1, 1), cc.size), ch)
        # channels of acquisition map to touch channels: paid_search, social, display, referral, email
        touch_ch = np.take(np.array([1, 2, 3, 4, 0]), ch)
        self.t["touches"].add(cust=cc, known=np.where(self.bern(0.6, cc.size), 1, 0), campaign=ch * 100 + 1,
                              channel=touch_ch, ttype=np.where(touch_ch == 0, 2, 3), at=at)

    def newsletter(self, cust: np.ndarray, day: int) -> None:
        n = cust.size
        if n == 0:
            return
        at = day + self.tod(n)
        campaign = 1000 + day // 7
        opened = self.bern(0.35, n)
        clicked = opened & self.bern(0.25, n)
        visited = clicked & self.bern(0.5, n)
        t1 = at + self.u(0.01, 1.5, n)
        t2 = t1 + self.u(0.001, 0.05, n)
        t3 = t2 + self.u(0.0005, 0.01, n)
        for m, ttype, when in ((np.ones(n, bool), 0, at), (opened, 1, t1), (clicked, 2, t2), (visited, 3, t3)):
            known = np.where(self.bern(0.9, m.sum()), 2, 1)  # 2: id and e-mail, 1: e-mail only
            self.t["touches"].add(cust=cust[m], known=known, campaign=campaign, channel=0, ttype=ttype, at=when[m])

    def finish(self) -> Simulation:
        self.c["churn_at"] = self.churn_at
        self.t["subscriptions"].add(**self.sub)
        tables = {k: t.columns() for k, t in self.t.items()}
        return Simulation(self.cfg, self.c, tables, dict(self.stats))


def realized_effects(stats: dict[str, float]) -> dict[str, float]:
    """Effect sizes as realized in the simulation, from its exposure and event counts.

    ``stats`` are sums, so the counts of several customer shards add up before the ratios are taken."""
    s = defaultdict(float, stats)

    def ratio(a: str, b: str) -> float:
        return round(float(s[a] / max(s[b], 1)), 6)

    return {
        "late_delivery_share": ratio("orders_late", "orders_delivered"),
        "churn_hazard_ratio_bad_case": round(ratio("churn_bad", "churn_exposure_bad")
                                             / max(ratio("churn_nobad", "churn_exposure_nobad"), 1e-12), 4),
        "churn_hazard_ratio_promoter_vs_unsurveyed": round(
            ratio("churn_promoter", "churn_exposure_promoter")
            / max(ratio("churn_unsurveyed", "churn_exposure_unsurveyed"), 1e-12), 4),
        "order_rate_ratio_promoter_vs_unsurveyed": round(
            ratio("orders_1", "order_exposure_1") / max(ratio("orders_0", "order_exposure_0"), 1e-12), 4),
        "churn_hazard_ratio_recovered_detractor": round(
            ratio("churn_detractor_recovered", "churn_exposure_detractor_recovered")
            / max(ratio("churn_detractor_unrecovered", "churn_exposure_detractor_unrecovered"), 1e-12), 4),
        "followup_in_time_share": ratio("followups_in_time", "followups_unhappy"),
        "order_rate_ratio_detractor_vs_unsurveyed": round(
            ratio("orders_3", "order_exposure_3") / max(ratio("orders_0", "order_exposure_0"), 1e-12), 4),
        # against passives (answered 7-8): the reference of mart_experience_value's order_rate ratios
        "order_rate_ratio_promoter_vs_passive": round(
            ratio("orders_1", "order_exposure_1") / max(ratio("orders_2", "order_exposure_2"), 1e-12), 4),
        "order_rate_ratio_detractor_vs_passive": round(
            ratio("orders_3", "order_exposure_3") / max(ratio("orders_2", "order_exposure_2"), 1e-12), 4),
    }


def simulate(cfg: GeneratorConfig, progress: Callable[[int], None] | None = None) -> Simulation:
    """Run the company for ``cfg.days`` days; ``progress(1)`` is called after each simulated day."""
    return _Company(cfg).run(progress)


__all__ = ["Simulation", "simulate", "realized_effects", "DAY_S"]
