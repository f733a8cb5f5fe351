"""Every data-quality check of the warehouse, in one table: name, asset, severity, engine, rule, why.

Two severities, and the difference is the project's promise to BI ("block wrong numbers, never
hide bad news"):

* ``blocking``: what makes a number *wrong* (broken keys, impossible values, totals that do not
  reconcile). A failing blocking check stops the publish: every mart in the served copy stays as
  it was the night before, and the data-health record says which check failed.
* ``warning``: what makes a number *surprising* (a crisis, a sale, a heavy tail, a late drop). A
  warning never blocks: the numbers are published, with the warning beside them in ``data_health``.

The table drives the Dagster checks (``orchestration/checks.py``, ``orchestration/assets/ingestion.py``),
the GX suites and SQL checks of the nightly gate (``expectations/gate.py``), the severity of every
dbt test (a test asserts the dbt project's tests match their entry) and the docs
(``docs/data-quality.md``, generated from this table: ``python -m expectations.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCKING = "blocking"
WARNING = "warning"

# engines: who evaluates the check
DBT = "dbt"  # a dbt data test (every instance of that generic test in dbt_project/models)
GX = "gx"  # a Great Expectations expectation of the nightly gate, over the run window's rows
SQL = "sql"  # a query of the nightly gate (reconciliations, baselines learned from history)
INGESTION = "ingestion"  # evaluated while landing a drop (orchestration/assets/ingestion.py)
ANALYTICS = "analytics"  # evaluated on the Python analyses' outputs before they are written (analytics/run.py)


@dataclass(frozen=True)
class Check:
    name: str
    asset: str
    severity: str
    engine: str
    rule: str
    why: str
    # dbt tests (node names) this check is, when it is one instance rather than every test of a kind
    dbt_tests: tuple[str, ...] = ()
    # other generic dbt tests whose every instance is this check (one test over several columns)
    dbt_generic_tests: tuple[str, ...] = ()


CHECKS: tuple[Check, ...] = (
    # --- ingestion: the drop against its manifest, and what the source systems delivered ------------
    Check("reconciles_with_manifest", "raw/<system>/<entity>", BLOCKING, INGESTION,
          "rows in the raw zone + rows in quarantine = the manifest's row count, read back from disk",
          "a record lost between the file and the warehouse makes every count that includes it wrong"),
    Check("drop_accepted", "raw/<system>/<entity>", BLOCKING, INGESTION,
          "the drop matches its manifest (files, row counts, sha256) and every file is readable",
          "a broken delivery is refused as a whole (landing contract); the night fails until it is re-delivered"),
    Check("drop_delivered", "raw/<system>/<entity>", WARNING, INGESTION,
          "the system's drop for the business date is complete (its _manifest.json exists) when the night runs",
          "a late or missing drop leaves that system's numbers short for the day, not wrong: they fill in when "
          "the drop arrives and the night is re-run"),
    Check("drop_not_empty", "raw/<system>/<entity>", WARNING, INGESTION,
          "the system's drop carries at least one record across its entities",
          "an empty extract is valid (nothing changed) but unusual: it may be an export that silently failed"),
    Check("drop_volume", "raw/<system>/<entity>", WARNING, INGESTION,
          "records delivered for the entity within the robust band learned from the trailing drops "
          "(median +- z x scaled MAD, same weekday when enough history)",
          "a sale, a campaign or a broken export moves volumes; the numbers are real either way"),
    Check("quarantine_rate", "raw/<system>/<entity>", WARNING, INGESTION,
          "the Wilson lower bound of the file's quarantined share stays below the entity's historical share "
          "plus a margin",
          "quarantined records are kept and reported, so the loaded numbers are right; a jump means the source "
          "changed and someone should look"),
    # --- dbt data tests: every instance of these generic tests, on every model ----------------------
    Check("unique", "dbt models", BLOCKING, DBT, "the column has no duplicate values (keys)",
          "a duplicated key double-counts every measure joined to it"),
    Check("not_null", "dbt models", BLOCKING, DBT,
          "the column has no nulls (keys and required fields): on a model, one `not_null_columns` test over all its "
          "required columns; on a seed, `not_null` per column",
          "a null key drops or mis-attributes a record", dbt_generic_tests=("not_null_columns",)),
    Check("relationships", "dbt models", BLOCKING, DBT,
          "every fact's customer_key exists in dim_customer (and other foreign keys in their parent)",
          "a fact whose customer is missing from dim_customer vanishes from every per-customer view"),
    Check("accepted_values", "dbt models", BLOCKING, DBT,
          "enumerations hold only the contract's values: on a model, one `accepted_values_columns` test over all its "
          "enumerations; on a seed, `accepted_values` per column",
          "an unknown category falls out of every breakdown", dbt_generic_tests=("accepted_values_columns",)),
    Check("unique_combination", "dbt models", BLOCKING, DBT, "the model's grain (several columns) is unique",
          "a duplicated grain double-counts"),
    Check("in_range", "dbt models", BLOCKING, DBT,
          "values inside their logical range (durations >= 0, n >= 1, ...): on a model, one `in_range_columns` test "
          "over all its ranges; on a seed, `in_range` per column",
          "an impossible value is a wrong number", dbt_generic_tests=("in_range_columns",)),
    Check("expression_is_true", "dbt models", BLOCKING, DBT,
          "row-level invariants: NPS in -100..100, rates in 0..1, CES in 1..7, interval contains the value, "
          "reportability consistent; a model with several, one `expressions_are_true` test over all of them",
          "a value outside its logical scale is a wrong number", dbt_generic_tests=("expressions_are_true",)),
    Check("reconciles_with", "dbt models", BLOCKING, DBT,
          "a total of one model equals the same total of another (control totals)",
          "totals that do not reconcile mean a join lost or duplicated records"),
    Check("equal_row_count", "dbt models", BLOCKING, DBT,
          "a model has exactly as many rows as another it is one row per (mart_customer_360 per dim_customer)",
          "a customer missing from or doubled in the 360 makes every count read from it wrong"),
    Check("profile_spells_consistent", "mart_customer_profiles", BLOCKING, DBT,
          "each customer's profile spells follow each other without gap or overlap, and exactly one is current",
          "a customer in two profiles at once, or in none, is counted wrong in every profile figure and flow",
          dbt_tests=("mart_customer_profiles_one_current_spell", "mart_customer_profiles_spells_follow_each_other")),
    Check("profile_flows_add_up", "kpi_profile_flows_monthly", BLOCKING, DBT,
          "per month and profile: customers at the start + entries - exits = customers at the end",
          "flows that do not add up lost or doubled customers between two days",
          dbt_tests=("kpi_profile_flows_monthly_add_up",)),
    Check("refund_payment_known", "fct_refunds", WARNING, DBT,
          "every refund's payment_key is in fct_payments (dbt relationships test, severity warn)",
          "a refund can arrive before the payment it refunds (late-arriving extract): the refund still counts "
          "in every refund KPI; only its payment method is unknown until the payment lands",
          dbt_tests=("relationships_fct_refunds_payment_key__payment_key__ref_fct_payments_",)),
    # --- nightly gate: GX expectations over the run window's rows -----------------------------------
    Check("kpi_value_in_scale", "kpi_experience_daily", BLOCKING, GX,
          "NPS in -100..100, rates in 0..1, CES in 1..7, refund_rate_value >= 0 (a goodwill refund on top of a "
          "return can exceed the order), for the window's KPI dates",
          "a KPI outside its logical scale is wrong whatever happened to the customers"),
    Check("kpi_n_not_null", "kpi_experience_daily", BLOCKING, GX, "every KPI cell carries its sample size n",
          "a value without n cannot be judged reportable"),
    Check("kpi_grain_unique", "kpi_experience_daily", BLOCKING, GX,
          "one row per kpi_date, kpi, dimension and dimension value in the window",
          "a duplicated cell is double-counted by any BI total"),
    # response_id_unique / order_id_unique keep their names (health history, alerts) though the served
    # column is now the pseudonymous key (docs/privacy.md)
    Check("response_id_unique", "fct_survey_responses", BLOCKING, GX, "response_key unique among the window's answers",
          "a duplicated answer counts twice in NPS, CSAT and CES"),
    Check("response_score_in_scale", "fct_survey_responses", BLOCKING, GX,
          "every score present and inside its survey's scale (NPS 0-10, CSAT 1-5, CES 1-7)",
          "an out-of-scale answer is impossible; ingestion quarantines them, so one here is a bug"),
    Check("survey_type_known", "fct_survey_responses", BLOCKING, GX, "survey_type is nps, csat or ces",
          "an unknown survey type falls out of every score"),
    Check("order_id_unique", "fct_orders", BLOCKING, GX, "order_key unique among the window's orders",
          "a duplicated order double-counts deliveries, OTIF and refunds"),
    Check("order_amount_not_negative", "fct_orders", BLOCKING, GX, "total_amount >= 0",
          "an order cannot cost a negative amount (credits are refunds)"),
    Check("delivery_not_before_order", "fct_orders", BLOCKING, GX, "delivered_at >= ordered_at",
          "a delivery before its order is impossible: a time zone or parsing bug"),
    Check("on_time_known_when_delivered", "fct_orders", BLOCKING, GX, "is_on_time is set on every delivered order",
          "a delivered order missing from on-time and OTIF biases both"),
    # --- nightly gate: SQL reconciliations (blocking) ----------------------------------------------
    Check("kpi_n_matches_facts", "kpi_experience_daily", BLOCKING, SQL,
          "for every KPI date of the window, each KPI's n (all customers) equals the count of its facts",
          "a KPI whose n differs from its facts lost or duplicated observations"),
    Check("revenue_reconciles", "kpi_customer_value", BLOCKING, SQL,
          "invoiced revenue in kpi_customer_value equals the non-void invoices of fct_invoices, per currency, "
          "within the stated relative tolerance",
          "revenue that does not add up is wrong in every value-based KPI"),
    # --- nightly gate: SQL baselines learned from history (warnings) --------------------------------
    Check("score_drift", "fct_survey_responses", WARNING, SQL,
          "each survey type's mean score of the day within the robust band of its trailing daily means",
          "a service crisis moves scores: that is the news BI must show, with a flag, not withhold"),
    Check("promise_gap_outliers", "fct_orders", WARNING, SQL,
          "no delivered order of the window has a promise gap beyond the far-out fences (Tukey, k x IQR) of the "
          "trailing history",
          "deliveries months late or weeks early happen; they move the averages and deserve a look"),
    Check("identity_match_rate", "fct_orders", WARNING, SQL,
          "the day's share of orders resolved to a CRM customer within the robust band of its trailing days",
          "a drop in matching shifts customers to email-only identities: per-customer views thin out"),
    Check("currency_excluded", "kpi_experience_daily", WARNING, SQL,
          "invoices of the night's billing drop in a currency with no rate to the reporting currency (dbt seed "
          "fx_rates), left out of refund_rate_value, are counted and named",
          "a value ratio cannot add two currencies; what it leaves out must be said, never silently dropped"),
    # --- the Python analyses (analytics/, orchestration/assets/analytics.py) -----------------------------
    Check("declared_schema", "analytics marts (mart_experience_drivers, mart_experience_value, mart_churn_*)",
          BLOCKING, ANALYTICS,
          "the table has exactly its declared columns, in order, with their types; its grain is unique and its "
          "required columns are never null (analytics/schema.py); a table that fails is not written",
          "BI reads these tables like the dbt marts: a renamed or retyped column breaks every report on it, a "
          "repeated grain double-counts"),
)

BY_NAME = {c.name: c for c in CHECKS}
if len(BY_NAME) != len(CHECKS):  # pragma: no cover - a typo in the table
    raise RuntimeError("duplicate check names in expectations/registry.py")


def check(name: str) -> Check:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a declared check (expectations/registry.py)") from None


_BY_DBT_TEST = {t: c for c in CHECKS for t in c.dbt_tests}
_BY_GENERIC_TEST = {t: c for c in CHECKS for t in c.dbt_generic_tests}


def for_dbt_test(test_name: str, kind: str | None) -> Check:
    """The declared check of a dbt test node: its own entry, else the entry of its generic test (the check of
    that name, or the check that declares it among its ``dbt_generic_tests``)."""
    if test_name in _BY_DBT_TEST:
        return _BY_DBT_TEST[test_name]
    if kind in _BY_GENERIC_TEST:
        return _BY_GENERIC_TEST[kind]
    return check(kind or test_name)


def by_engine(engine: str) -> list[Check]:
    return [c for c in CHECKS if c.engine == engine]


def is_blocking(name: str) -> bool:
    return check(name).severity == BLOCKING


def markdown_table() -> str:
    """The check table as Markdown (docs/data-quality.md embeds it; a test keeps them equal)."""
    lines = ["| check | asset | severity | engine | rule | why this severity |", "|---|---|---|---|---|---|"]
    for c in CHECKS:
        lines.append(f"| `{c.name}` | `{c.asset}` | **{c.severity}** | {c.engine} | {c.rule} | {c.why} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
