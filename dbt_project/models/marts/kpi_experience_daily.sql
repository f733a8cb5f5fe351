{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['kpi_date'],
        on_schema_change='fail',
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
{%- set dims = ['all', 'segment', 'persona', 'channel', 'touchpoint'] %}
with customers as (
    select customer_key, segment, persona from {{ ref('dim_customer') }}
),

responses as (
    select r.*, c.segment, c.persona
    from {{ ref('fct_survey_responses') }} as r
    left join customers as c on c.customer_key = r.customer_key
),

orders as (
    select o.*, c.segment, c.persona
    from {{ ref('fct_orders') }} as o
    left join customers as c on c.customer_key = o.customer_key
),

cases as (
    select s.*, c.segment, c.persona
    from {{ ref('fct_support_cases') }} as s
    left join customers as c on c.customer_key = s.customer_key
),

payments as (
    select p.*, c.segment, c.persona
    from {{ ref('fct_payments') }} as p
    left join customers as c on c.customer_key = p.customer_key
),

invoiced_orders as (
    -- fx_rate: reporting-currency units per unit of the invoice's currency (seed fx_rates; null when
    -- the table has no rate: the invoice is left out of value KPIs, and the gate says so)
    select o.*, i.amount_due_minor, i.currency as invoice_currency, i.issue_date,
           case when i.currency = '{{ var("reporting_currency") }}' then 1.0 else fx.rate end as fx_rate
    from orders as o
    inner join {{ ref('fct_invoices') }} as i on i.invoice_key = o.invoice_key
    left join {{ ref('fx_rates') }} as fx
        on fx.currency = i.currency and fx.reporting_currency = '{{ var("reporting_currency") }}'
    where i.status <> 'void'
),

events as (
    {%- set none_str = 'cast(null as ' ~ dbt.type_string() ~ ')' %}
    {%- set none_num = 'cast(null as ' ~ dbt.type_float() ~ ')' %}
    select response_date as kpi_date, 'nps' as kpi, 'nps' as kind, segment, persona, {{ none_str }} as channel,
           touchpoint, case when nps_category = 'promoter' then 1 else 0 end as promoter,
           case when nps_category = 'detractor' then 1 else 0 end as detractor, {{ none_num }} as x,
           {{ none_num }} as a, {{ none_num }} as b
    from responses where survey_type = 'nps' and nps_category is not null
    union all
    select response_date, 'csat', 'rate', segment, persona, {{ none_str }}, touchpoint, 0, 0,
           case when csat_satisfied then 1.0 else 0.0 end, {{ none_num }}, {{ none_num }}
    from responses where survey_type = 'csat' and csat_satisfied is not null
    union all
    select response_date, 'ces', 'mean', segment, persona, {{ none_str }}, touchpoint, 0, 0,
           cast(ces_score as {{ dbt.type_float() }}), {{ none_num }}, {{ none_num }}
    from responses where survey_type = 'ces' and ces_score is not null
    union all
    select resolved_date, 'fcr_rate', 'rate', segment, persona, channel, 'support', 0, 0,
           case when is_fcr then 1.0 else 0.0 end, {{ none_num }}, {{ none_num }}
    from cases where is_resolved and resolved_date is not null
    union all
    select first_response_date, 'first_response_hours_p50', 'median', segment, persona, channel, 'support', 0, 0,
           first_response_hours, {{ none_num }}, {{ none_num }}
    from cases where first_response_date is not null
    union all
    select resolved_date, 'resolution_hours_p50', 'median', segment, persona, channel, 'support', 0, 0,
           resolution_hours, {{ none_num }}, {{ none_num }}
    from cases where is_resolved and resolved_date is not null
    union all
    select {{ utc_date('delivered_at') }}, 'on_time_delivery_rate', 'rate', segment, persona, sales_channel,
           'delivery', 0, 0, case when is_on_time then 1.0 else 0.0 end, {{ none_num }}, {{ none_num }}
    from orders where is_delivered
    union all
    select {{ utc_date('delivered_at') }}, 'otif_rate', 'rate', segment, persona, sales_channel, 'delivery', 0, 0,
           case when is_otif then 1.0 else 0.0 end, {{ none_num }}, {{ none_num }}
    from orders where is_delivered
    union all
    select {{ utc_date('delivered_at') }}, 'promise_gap_days_avg', 'mean', segment, persona, sales_channel,
           'delivery', 0, 0, cast(promise_gap_days as {{ dbt.type_float() }}), {{ none_num }}, {{ none_num }}
    from orders where is_delivered
    union all
    select issue_date, 'refund_rate_orders', 'rate', segment, persona, sales_channel, 'billing', 0, 0,
           case when has_refund then 1.0 else 0.0 end, {{ none_num }}, {{ none_num }}
    from invoiced_orders
    union all
    select issue_date, 'refund_rate_value', 'ratio', segment, persona, sales_channel, 'billing', 0, 0,
           -- converted per invoice to whole minor units of the reporting currency: sums of whole
           -- numbers are exact, so the value does not depend on the order rows are added in
           {{ none_num }}, cast(round(refunded_minor * fx_rate) as {{ dbt.type_float() }}),
           cast(round(amount_due_minor * fx_rate) as {{ dbt.type_float() }})
    from invoiced_orders where fx_rate is not null
    union all
    select attempt_date, 'payment_failure_rate', 'rate', segment, persona, method, 'billing', 0, 0,
           case when is_failed then 1.0 else 0.0 end, {{ none_num }}, {{ none_num }}
    from payments
),

{%- if is_incremental() %}
{#- a table built before final_date / is_final (unit tests give `this` as a fixture name, not a relation) -#}
{%- if execute and this is not string
      and 'is_final' not in (adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list) %}
    {{ exceptions.raise_compiler_error(this ~ " predates the columns final_date and is_final: rebuild it once with "
        ~ "`dbt build --full-refresh -s kpi_experience_daily` (docs/kpi-decisions.md, upgrading)") }}
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
    select cast({{ dbt.dateadd('day', -1 * var('kpi_lookback_days'), "cast('" ~ var('min_date') ~ "' as date)") }} as date)
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
    -- cells still provisional: recomputed until they are final, whatever the nights in between
    select min(kpi_date) from {{ this }} where not is_final
),

recompute_from as (
    select min(kpi_date) as kpi_date from recompute_candidates
),
{%- endif %}

windowed as (
    select * from events
    where kpi_date < cast('{{ var("max_date") }}' as date)
      and kpi_date <= {{ cx_as_of() }}
      {%- if is_incremental() %}
      and kpi_date >= (select kpi_date from recompute_from)
      {%- endif %}
),

aggregated as (
    {%- for dim in dims %}
    select
        kpi_date, kpi, kind,
        '{{ dim }}' as dimension,
        {% if dim == 'all' %}'all'{% else %}{{ dim }}{% endif %} as dimension_value,
        count(*) as n,
        sum(promoter) as promoters,
        sum(detractor) as detractors,
        sum(x) as x_sum,
        avg(x) as x_mean,
        stddev_samp(x) as x_sd,
        {{ median('x') }} as x_median,
        sum(a) as a_sum,
        sum(b) as b_sum
    from windowed
    {% if dim != 'all' %}where {{ dim }} is not null{% endif %}
    group by kpi_date, kpi, kind{% if dim != 'all' %}, {{ dim }}{% endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
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
    case kind
        when 'nps' then cast(promoters - detractors as {{ dbt.type_float() }})
        when 'ratio' then a_sum
        when 'median' then cast(null as {{ dbt.type_float() }})
        else x_sum
    end as numerator,
    case kind when 'ratio' then b_sum else cast(n as {{ dbt.type_float() }}) end as denominator,
    case kind
        when 'nps' then {{ nps_value('promoters', 'detractors', 'n') }}
        when 'rate' then x_sum / n
        when 'mean' then x_mean
        when 'median' then x_median
        when 'ratio' then case when b_sum > 0 then a_sum / b_sum end
    end as value,
    n,
    case kind
        when 'nps' then {{ nps_adjusted_wald('promoters', 'detractors', 'n', 'low') }}
        when 'rate' then {{ wilson_low('x_sum', 'n') }}
        when 'mean' then {{ mean_ci('x_mean', 'x_sd', 'n', 'low') }}
    end as ci_low,
    case kind
        when 'nps' then {{ nps_adjusted_wald('promoters', 'detractors', 'n', 'high') }}
        when 'rate' then {{ wilson_high('x_sum', 'n') }}
        when 'mean' then {{ mean_ci('x_mean', 'x_sd', 'n', 'high') }}
    end as ci_high,
    final_date,
    final_date <= {{ cx_as_of() }} as is_final,
    {{ is_reportable('n', '(final_date <= ' ~ cx_as_of() ~ ')') }} as is_reportable
from finality
