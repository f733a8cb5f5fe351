{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['kpi_date'],
        on_schema_change='fail',
    )
}}
-- CX KPIs per day, in long form, with sample size and 95 % interval (docs/kpi-decisions.md).
-- kpi_date is the UTC date of the measured event: the response, the delivery, the first response,
-- the resolution, the invoice or the payment attempt.
-- Incremental: a run for the partition window [min_date, max_date) recomputes every KPI date from
-- min_date - kpi_lookback_days on (late arrivals and reopened cases change recent dates), using the
-- data delivered up to as_of. A full refresh recomputes [min_date, max_date) (default: everything).
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
    select o.*, i.amount_due_minor, i.currency as invoice_currency, i.issue_date
    from orders as o
    inner join {{ ref('fct_invoices') }} as i on i.invoice_id = o.invoice_id
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
           {{ none_num }}, cast(refunded_minor as {{ dbt.type_float() }}),
           cast(amount_due_minor as {{ dbt.type_float() }})
    from invoiced_orders where invoice_currency = '{{ var("reporting_currency") }}'
    union all
    select attempt_date, 'payment_failure_rate', 'rate', segment, persona, method, 'billing', 0, 0,
           case when is_failed then 1.0 else 0.0 end, {{ none_num }}, {{ none_num }}
    from payments
),

windowed as (
    select * from events
    where kpi_date < cast('{{ var("max_date") }}' as date)
      and kpi_date <= {{ cx_as_of() }}
      {%- if is_incremental() %}
      and kpi_date >= {{ dbt.dateadd('day', -1 * var('kpi_lookback_days'), "cast('" ~ var('min_date') ~ "' as date)") }}
      {%- else %}
      and kpi_date >= cast('{{ var("min_date") }}' as date)
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
    {{ is_reportable('n') }} as is_reportable
from aggregated
