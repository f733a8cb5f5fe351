{{
    config(
        materialized='incremental',
        on_schema_change='fail',
        **cx_date_incremental('kpi_date'),
    )
}}
-- CX KPIs per day, in long form, with sample size, 95 % interval and finality (docs/kpi-decisions.md).
-- kpi_date is the UTC date of the measured event: the response, the delivery, the first response,
-- the resolution, the invoice or the payment attempt. final_date is the date from which the cell can
-- no longer change (kpi_date + the KPI's finality window, kpi_finality_days); is_final = final_date
-- <= as_of; is_reportable needs enough observations and a final cell.
--
-- Which KPI dates a run computes (always < max_date and <= as_of, with the data delivered up to as_of):
-- * first build or full refresh: every KPI date (a first drop may carry years of history);
-- * incremental run for the partition window [min_date, max_date): every KPI date from the earliest of
--   - min_date - kpi_lookback_days (late arrivals, reopened cases and refunds move recent dates),
--   - the earliest KPI date that a record delivered in the window can change (recompute_from below),
--   - the earliest cell of the table that is not final yet (so it turns final even after a gap).
-- refs used only by the incremental branch, declared for dbt's parser:
-- depends_on: {{ ref('stg_survey__responses') }}, {{ ref('stg_crm__support_cases') }}, {{ ref('stg_crm__customers') }}
-- depends_on: {{ ref('stg_erp__orders') }}, {{ ref('stg_erp__order_lines') }}, {{ ref('stg_erp__shipments') }}
-- depends_on: {{ ref('stg_erp__returns') }}, {{ ref('stg_billing__invoices') }}, {{ ref('stg_billing__payments') }}
-- depends_on: {{ ref('stg_billing__refunds') }}, {{ ref('int_customer_keys') }}
-- depends_on: {{ ref('stg_crm__feedback_followups') }}
{{ kpi_check_finality() }}

with customers as (
    select customer_key, segment, persona from {{ ref('dim_customer') }}
),

-- the KPI families' records, each with its customer, channel and touchpoint (macros/kpi_experience.sql)
{%- for family in kpi_families_of() %}
{{ family }} as (
{{ kpi_family_sql(family) }}
),
{%- endfor %}

-- one row per KPI observation
observations as (
{{ kpi_observations() }}
),

{%- if is_incremental() %}
{#- a table built before a served column (final_date / is_final; promoters, detractors, successes, sd):
    unit tests give `this` as a fixture name, not a relation -#}
{%- if execute and this is not string %}
    {%- set have = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    {%- set missing = [] %}
    {%- for column in ['final_date', 'is_final', 'promoters', 'detractors', 'successes', 'sd'] if column not in have %}
        {%- do missing.append(column) %}
    {%- endfor %}
    {%- if missing %}
    {{ exceptions.raise_compiler_error(this ~ " predates the columns " ~ missing | join(', ') ~ ": rebuild it once with "
        ~ "`dbt build --full-refresh -s kpi_experience_daily` (docs/kpi-decisions.md, upgrading)") }}
    {%- endif %}
{%- endif %}

-- Records delivered by the window's drops (staging rows with drop_date in [min_date, max_date) and
-- <= as_of), and what they touch. Each KPI date below is bounded by a date that does not move
-- between versions of its record (opened, ordered, issued, attempted, responded) and that no date
-- of the record's earlier versions precedes, so the cells an earlier version counted in are covered.
-- The facts carry pseudonymous keys, not source ids: a touched record's id is keyed the same way
-- (macros/keys.sql, the facts' kinds) to find its fact rows.
touched_invoices as (
    -- an invoice, a payment of it, or a refund of one of its payments
    select {{ cx_pseudonym('invoice', 'invoice_id') }} as invoice_key
    from (
        select invoice_id from {{ ref('stg_billing__invoices') }} where {{ cx_delivered_in_window() }}
        union
        select invoice_id from {{ ref('stg_billing__payments') }} where {{ cx_delivered_in_window() }}
        union
        select p.invoice_id
        from {{ ref('stg_billing__refunds') }} as r
        inner join {{ ref('stg_billing__payments') }} as p on p.payment_id = r.payment_id
        where {{ cx_delivered_in_window('r.drop_date') }}
    ) as touched
),

touched_orders as (
    select {{ cx_pseudonym('order', 'order_id') }} as order_key
    from (
        select order_id from {{ ref('stg_erp__orders') }} where {{ cx_delivered_in_window() }}
        union
        select order_id from {{ ref('stg_erp__order_lines') }} where {{ cx_delivered_in_window() }}
        union
        select order_id from {{ ref('stg_erp__shipments') }} where {{ cx_delivered_in_window() }}
        union
        select order_id from {{ ref('stg_erp__returns') }} where {{ cx_delivered_in_window() }}
    ) as touched
    union
    select order_key from {{ ref('fct_invoices') }}
    where order_key is not null and invoice_key in (select invoice_key from touched_invoices)
),

-- a CRM profile delivered in the window may change the segment or persona of every event of its
-- person (the dimensions come from the current profile), or the person an identifier resolves to
touched_customers as (
    select k.customer_key
    from {{ ref('stg_crm__customers') }} as c
    inner join {{ ref('int_customer_keys') }} as k on k.identifier = {{ dbt.concat(["'crm:'", "c.customer_id"]) }}
    where {{ cx_delivered_in_window('c.drop_date') }}
),

recompute_candidates as (
    select cast({{ dbt.dateadd('day', -1 * var('kpi_lookback_days'), cx_min_date()) }} as date)
        as kpi_date
    union all
    -- survey answers: dated by the response
    select min(response_date) from {{ ref('fct_survey_responses') }}
    where response_key in (select {{ cx_pseudonym('response', 'response_id') }} from {{ ref('stg_survey__responses') }}
                           where {{ cx_delivered_in_window() }})
       or customer_key in (select customer_key from touched_customers)
    union all
    -- cases: first response and resolution (an earlier resolution, before a reopen) come after the opening
    select min({{ least_not_null([utc_date('opened_at'), 'first_response_date', 'resolved_date']) }})
    from {{ ref('fct_support_cases') }}
    where case_key in (select {{ cx_pseudonym('case', 'case_id') }} from {{ ref('stg_crm__support_cases') }}
                       where {{ cx_delivered_in_window() }})
       or customer_key in (select customer_key from touched_customers)
    union all
    -- orders: deliveries come after the order; invoices are dated by their issue
    select min({{ least_not_null([utc_date('ordered_at'), utc_date('delivered_at'), utc_date('invoiced_at')]) }})
    from {{ ref('fct_orders') }}
    where order_key in (select order_key from touched_orders)
       or customer_key in (select customer_key from touched_customers)
    union all
    select min(issue_date) from {{ ref('fct_invoices') }}
    where invoice_key in (select invoice_key from touched_invoices)
       or order_key in (select order_key from touched_orders)
    union all
    -- payment attempts (their customer comes from the invoice)
    select min(attempt_date) from {{ ref('fct_payments') }}
    where invoice_key in (select invoice_key from touched_invoices)
       or payment_key in (select {{ cx_pseudonym('payment', 'payment_id') }} from {{ ref('stg_billing__payments') }}
                          where {{ cx_delivered_in_window() }})
       or customer_key in (select customer_key from touched_customers)
    union all
    -- follow-up items: a call-back moves its item's breach (due date) and backlog days (from the answer)
    select min(response_date) from {{ ref('mart_feedback_followups') }}
    where response_key in (select {{ cx_pseudonym('response', 'response_id') }}
                           from {{ ref('stg_crm__feedback_followups') }} where {{ cx_delivered_in_window() }})
    union all
    -- cells still provisional: recomputed until they are final, whatever the nights in between
    select min(kpi_date) from {{ this }} where not is_final
),

recompute_from as (
    select min(kpi_date) as kpi_date from recompute_candidates
),
{%- endif %}

windowed as (
    select * from observations
    where kpi_date < {{ cx_max_date() }}
      and kpi_date <= {{ cx_as_of() }}
      {%- if is_incremental() %}
      and kpi_date >= (select kpi_date from recompute_from)
      {%- endif %}
),

-- the customer's attributes, joined once
with_customer as (
    select w.*, c.segment, c.persona
    from windowed as w
    left join customers as c on c.customer_key = w.customer_key
),

-- every dimension in one aggregation, a dimension's cells its known values (macros/kpi_experience.sql)
aggregated as (
{{ kpi_grouped('with_customer', 'kpi_date', 'kpi_date') }}
),

finality as (
    select *, {{ kpi_final_date('kpi', 'kpi_date') }} as final_date
    from aggregated
)

select
    kpi_date,
    kpi,
    dimension,
    dimension_value,
    {{ kpi_cell_columns() }}
from finality
