{{ config(**cx_fact_config('source_key')) }}
-- Restricted (never published): each pseudonymous record key served in marts (order_key, invoice_key,
-- case_key, ...; macros/keys.sql) back to its source identifier, so that someone with access to this
-- schema can open the source record behind a served row (support looking up an order). One row per key;
-- `kind` is the key's kind, the same string the facts key with.
-- Every id a served key can come from is here: a reference to a record that has not arrived yet (an
-- invoice's order, a survey answer's related case) resolves too.
-- Records of people who asked for erasure are left out, as in customer_key_link: their served rows
-- stay and count, but must not lead back to a source record, and from there to the person.
-- The rows of int_source_keys (each id hashed once, for the facts) without the erased people's.
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a row keeps
-- `last_drop_date`, the newest drop among the staging records that mention its id (the map's). A night
-- inserts the map's rows of the window's drops (or rewritten by the run, or after the newest drop held:
-- cx_new_record; the map's night wrote them) and takes out the held rows of people who asked for erasure;
-- a re-run (the table holds rows from the window's drops or later) recomputes every row, as the full
-- build. A held row the full build has no row for is written as if from a drop after as_of, so that the
-- run's end deletes it (cx_fact_drop_later on DuckDB, the delete+insert swap on Spark). var rotate_keys
-- (a new key secret changes every key) forces a full rebuild.
{#- the served key columns of each fact: a row of an erased person takes all of them out of the link -#}
{%- set served_keys = {
    'fct_orders': ['order_key', 'erp_account_key', 'invoice_key'],
    'fct_invoices': ['invoice_key', 'billing_account_key', 'order_key', 'subscription_key'],
    'fct_payments': ['payment_key', 'invoice_key', 'order_key', 'subscription_key'],
    'fct_refunds': ['refund_key', 'payment_key', 'invoice_key', 'order_key'],
    'fct_subscriptions': ['subscription_key'],
    'fct_support_cases': ['case_key'],
    'fct_survey_responses': ['response_key', 'related_order_key', 'related_case_key', 'related_invoice_key'],
    'fct_journey_events': ['source_key'],
} %}
with erased_customers as (
    select customer_key from {{ ref('dim_customer') }} where is_erased
),

erased_records as (
    {%- for model, columns in served_keys.items() %}
    {%- set outer = loop %}
    {%- for column in columns %}
    select {{ column }} as source_key
    from {{ ref(model) }}
    where {{ column }} is not null and customer_key in (select customer_key from erased_customers)
    {% if not (outer.last and loop.last) %}union{% endif %}
    {%- endfor %}
    {%- endfor %}
),
{%- if is_incremental() %}
{#- a re-run: the table holds rows from the window's drops or later (the re-run of an older window, or of
    the last one after a corrected re-extract). Its records may be gone or older, and an erasure request
    of a later drop is undone as of the window, which only the full build sees: everything is recomputed -#}
{%- set rerun = cx_key_map_rerun() %}

-- held rows to recompute: of a person who asked for erasure since; on a re-run, every row
redo as (
    select held.kind, held.source_id, held.source_key
    from {{ this }} as held
    where held.source_key in (select source_key from erased_records) or {{ rerun }}
),
{%- endif %}

-- the map's rows (every id with its key, int_source_keys) but those of people who asked for erasure; on a
-- night, the rows the map's night wrote (or newer than the newest drop held)
linked as (
    select m.kind, m.source_key, m.source_id, m.last_drop_date
    from {{ ref('int_source_keys') }} as m
    where m.source_key not in (select source_key from erased_records)
    {%- if is_incremental() %}
      and ({{ cx_new_record('m.last_drop_date') }} or {{ rerun }})
    {%- endif %}
)

-- the held rows the run has none for (their records are gone, or their person asked for erasure) are deleted
-- at its end (cx_key_map_rows, macros/keys.sql)
{{ cx_key_map_rows('linked') }}
