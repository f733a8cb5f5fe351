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
{%- set dims = ['all', 'segment', 'persona', 'channel', 'touchpoint', 'promise'] %}
{%- set float = type_double() %}

{#- The KPIs (docs/kpi-decisions.md), by family: the KPIs measured on the same records, the family's
    CTE below. Each KPI is one observation per record of its family where `where` holds, dated by
    `date` and measured by the columns of its kind:
      nps           `promoter`, `detractor`: conditions, counted (numerator P - D, denominator N)
      rate          `success`: a condition, counted (successes / observations)
      mean, median  `measure`: a number, averaged or its median taken
      ratio         `numerator`, `denominator`: amounts, each summed (sum / sum); refund_rate_value's are
                    converted per invoice to whole minor units of the reporting currency: sums of whole
                    numbers are exact, so the value does not depend on the order rows are added in
    channel and touchpoint come from the family's CTE, segment and persona from dim_customer. -#}
{%- set kpi_families = {
    'survey_answers': [
        {'kpi': 'nps', 'kind': 'nps', 'date': 'response_date',
         'where': "survey_type = 'nps' and nps_category is not null",
         'promoter': "nps_category = 'promoter'", 'detractor': "nps_category = 'detractor'"},
        {'kpi': 'csat', 'kind': 'rate', 'date': 'response_date',
         'where': "survey_type = 'csat' and csat_satisfied is not null", 'success': 'csat_satisfied'},
        {'kpi': 'ces', 'kind': 'mean', 'date': 'response_date',
         'where': "survey_type = 'ces' and ces_score is not null", 'measure': 'cast(ces_score as ' ~ float ~ ')'},
    ],
    'support_cases': [
        {'kpi': 'fcr_rate', 'kind': 'rate', 'date': 'resolved_date',
         'where': 'is_resolved and resolved_date is not null', 'success': 'is_fcr'},
        {'kpi': 'first_response_hours_p50', 'kind': 'median', 'date': 'first_response_date',
         'where': 'first_response_date is not null', 'measure': 'first_response_hours'},
        {'kpi': 'resolution_hours_p50', 'kind': 'median', 'date': 'resolved_date',
         'where': 'is_resolved and resolved_date is not null', 'measure': 'resolution_hours'},
    ],
    'deliveries': [
        {'kpi': 'on_time_delivery_rate', 'kind': 'rate', 'date': 'delivery_date', 'success': 'is_on_time'},
        {'kpi': 'otif_rate', 'kind': 'rate', 'date': 'delivery_date', 'success': 'is_otif'},
        {'kpi': 'promise_gap_days_avg', 'kind': 'mean', 'date': 'delivery_date',
         'measure': 'cast(promise_gap_days as ' ~ float ~ ')'},
    ],
    'invoiced_orders': [
        {'kpi': 'refund_rate_orders', 'kind': 'rate', 'date': 'issue_date', 'success': 'has_refund'},
        {'kpi': 'refund_rate_value', 'kind': 'ratio', 'date': 'issue_date', 'where': 'fx_rate is not null',
         'numerator': 'cast(round(refunded_minor * fx_rate) as ' ~ float ~ ')',
         'denominator': 'cast(round(amount_due_minor * fx_rate) as ' ~ float ~ ')'},
    ],
    'payment_attempts': [
        {'kpi': 'payment_failure_rate', 'kind': 'rate', 'date': 'attempt_date', 'success': 'is_failed'},
    ],
    'followup_items': [
        {'kpi': 'followup_breach_rate', 'kind': 'rate', 'date': 'outcome_date', 'where': 'outcome_date is not null',
         'success': 'is_breached'},
    ],
    'followup_backlog': [
        {'kpi': 'followup_backlog_overdue_rate', 'kind': 'rate', 'date': 'backlog_date', 'success': 'is_overdue'},
    ],
    'promise_outcomes': [
        {'kpi': 'kept_rate_delivery', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'delivery'",
         'success': 'not is_broken'},
        {'kpi': 'kept_rate_first_response', 'kind': 'rate', 'date': 'promise_date',
         'where': "measure = 'first_response'", 'success': 'not is_broken'},
        {'kpi': 'kept_rate_resolution', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'resolution'",
         'success': 'not is_broken'},
        {'kpi': 'kept_rate_refund', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'refund'",
         'success': 'not is_broken'},
        {'kpi': 'kept_rate_follow_up', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'follow_up'",
         'success': 'not is_broken'},
    ],
} %}
{#- the families whose records carry the promise they are judged by: the `promise` dimension -#}
{%- set promise_families = ['promise_outcomes'] %}

{#- Observation columns per kind, with the type of their nulls where a kind does not use them. The
    engine gives each column the widest type of its KPIs' expressions: measure is a double (the
    hours are), whatever `float` is. -#}
{%- set measure_types = {
    'is_promoter': dbt.type_int(), 'is_detractor': dbt.type_int(), 'is_success': float, 'measure': float,
    'ratio_numerator': float, 'ratio_denominator': float,
} %}
{%- set defined = [] %}
{%- for family, kpis in kpi_families.items() %}{% for k in kpis %}{% do defined.append(k.kpi) %}{% endfor %}{% endfor %}
{%- if defined | sort != kpi_finality_vars().keys() | sort %}
    {{ exceptions.raise_compiler_error("kpi_experience_daily defines the KPIs " ~ (defined | sort)
        ~ " and kpi_finality_vars (macros/kpi.sql) " ~ (kpi_finality_vars().keys() | sort)
        ~ ": every KPI needs a finality window") }}
{%- endif %}

with customers as (
    select customer_key, segment, persona from {{ ref('dim_customer') }}
),

-- the KPI families' records, each with its customer, channel and touchpoint
survey_answers as (
    select customer_key, cast(null as {{ dbt.type_string() }}) as channel, touchpoint,
           response_date, survey_type, nps_category, csat_satisfied, ces_score
    from {{ ref('fct_survey_responses') }}
),

support_cases as (
    select customer_key, channel, 'support' as touchpoint,
           first_response_date, resolved_date, is_resolved, is_fcr, first_response_hours, resolution_hours
    from {{ ref('fct_support_cases') }}
),

deliveries as (
    select customer_key, sales_channel as channel, 'delivery' as touchpoint,
           {{ utc_date('delivered_at') }} as delivery_date, is_on_time, is_otif, promise_gap_days
    from {{ ref('fct_orders') }}
    where is_delivered
),

invoiced_orders as (
    -- fx_rate: reporting-currency units per unit of the invoice's currency (seed fx_rates; null when
    -- the table has no rate: the invoice is left out of value KPIs, and the gate says so)
    select o.customer_key, o.sales_channel as channel, 'billing' as touchpoint,
           i.issue_date, o.has_refund, o.refunded_minor, i.amount_due_minor,
           case when i.currency = '{{ var("reporting_currency") }}' then 1.0 else fx.rate end as fx_rate
    from {{ ref('fct_orders') }} as o
    inner join {{ ref('fct_invoices') }} as i on i.invoice_key = o.invoice_key
    left join {{ ref('fx_rates') }} as fx
        on fx.currency = i.currency and fx.reporting_currency = '{{ var("reporting_currency") }}'
    where i.status <> 'void'
),

payment_attempts as (
    select customer_key, method as channel, 'billing' as touchpoint, attempt_date, is_failed
    from {{ ref('fct_payments') }}
),

-- closing the loop (mart_feedback_followups): each tracked item, once kept (contact in time) or broken
-- (the due time passed without one)
followup_items as (
    select customer_key, cast(null as {{ dbt.type_string() }}) as channel, touchpoint,
           outcome_date, is_breached
    from {{ ref('mart_feedback_followups') }}
),

-- the backlog at the end of each day: the tracked items answered by then and not contacted yet, for at
-- most followup_backlog_days after the answer; overdue once their due time has passed
followup_backlog as (
    select customer_key, channel, touchpoint, backlog_date,
           {{ utc_date('due_at') }} <= backlog_date as is_overdue
    from (
        select f.customer_key, cast(null as {{ dbt.type_string() }}) as channel, f.touchpoint, f.due_at,
               f.first_contact_at, f.judged_through,
               cast({{ dbt.dateadd('day', 's.generated_number - 1', 'f.response_date') }} as date) as backlog_date
        from {{ ref('mart_feedback_followups') }} as f
        cross join ({{ dbt.generate_series(var('followup_backlog_days') + 1) }}) as s
        where f.is_tracked
    ) as days
    where (first_contact_at is null or {{ utc_date('first_contact_at') }} > backlog_date)
      and backlog_date <= judged_through
),

-- each record judged against one of the brand's promises (fct_promise_outcomes): a kept rate per
-- measure, and per promise in the `promise` dimension
promise_outcomes as (
    select customer_key, cast(null as {{ dbt.type_string() }}) as channel,
           case measure when 'delivery' then 'delivery' when 'refund' then 'billing'
                        when 'follow_up' then 'relationship' else 'support' end as touchpoint,
           promise_id as promise, measure, promise_date, is_broken
    from {{ ref('fct_promise_outcomes') }}
),

-- one row per KPI observation
observations as (
    {%- for family, kpis in kpi_families.items() %}
    {%- for k in kpis %}
    {%- set m = {} %}
    {%- if k.kind == 'nps' %}
        {%- do m.update({'is_promoter': 'case when ' ~ k.promoter ~ ' then 1 else 0 end',
                         'is_detractor': 'case when ' ~ k.detractor ~ ' then 1 else 0 end'}) %}
    {%- elif k.kind == 'rate' %}
        {%- do m.update({'is_success': 'case when ' ~ k.success ~ ' then 1.0 else 0.0 end'}) %}
    {%- elif k.kind in ('mean', 'median') %}
        {%- do m.update({'measure': k.measure}) %}
    {%- elif k.kind == 'ratio' %}
        {%- do m.update({'ratio_numerator': k.numerator, 'ratio_denominator': k.denominator}) %}
    {%- else %}
        {{ exceptions.raise_compiler_error("KPI " ~ k.kpi ~ ": unknown kind " ~ k.kind) }}
    {%- endif %}
    select
        {{ k.date }} as kpi_date, '{{ k.kpi }}' as kpi, '{{ k.kind }}' as kind,
        customer_key, channel, touchpoint,
        {{ 'promise' if family in promise_families else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as promise,
        {%- for column, type in measure_types.items() %}
        {{ m.get(column, 'cast(null as ' ~ type ~ ')') }} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ family }}
    {%- if k.where %}
    where {{ k.where }}
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
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
    where kpi_date < cast('{{ var("max_date") }}' as date)
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

-- every dimension in one aggregation (grouping sets): the observations are read once, not once per
-- dimension (on Spark, five copies of the observation plan made planning the slowest step of a build)
grouped as (
    select
        kpi_date, kpi, kind,
        case
            {%- for dim in dims if dim != 'all' %}
            when grouping({{ dim }}) = 0 then '{{ dim }}'
            {%- endfor %}
            else 'all'
        end as dimension,
        case
            {%- for dim in dims if dim != 'all' %}
            when grouping({{ dim }}) = 0 then {{ dim }}
            {%- endfor %}
            else 'all'
        end as dimension_value,
        count(*) as n,
        sum(is_promoter) as promoters,
        sum(is_detractor) as detractors,
        sum(is_success) as successes,
        sum(measure) as measure_sum,
        avg(measure) as measure_mean,
        stddev_samp(measure) as measure_sd,
        {{ median('measure') }} as measure_median,
        sum(ratio_numerator) as ratio_numerator,
        sum(ratio_denominator) as ratio_denominator
    from with_customer
    group by kpi_date, kpi, kind, grouping sets (
        {%- for dim in dims %}
        {% if dim == 'all' %}(){% else %}({{ dim }}){% endif %}{{ ',' if not loop.last }}
        {%- endfor %}
    )
),

-- a dimension's cells are its known values: observations without one count in 'all' only
aggregated as (
    select * from grouped
    where dimension = 'all' or dimension_value is not null
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
        when 'nps' then cast(promoters - detractors as {{ float }})
        when 'rate' then successes
        when 'mean' then measure_sum
        when 'ratio' then ratio_numerator
    end as numerator,
    case kind when 'ratio' then ratio_denominator else cast(n as {{ float }}) end as denominator,
    case kind
        when 'nps' then {{ nps_value('promoters', 'detractors', 'n') }}
        when 'rate' then successes / n
        when 'mean' then measure_mean
        when 'median' then measure_median
        when 'ratio' then case when ratio_denominator > 0 then ratio_numerator / ratio_denominator end
    end as value,
    n,
    case kind
        when 'nps' then {{ nps_adjusted_wald('promoters', 'detractors', 'n', 'low') }}
        when 'rate' then {{ wilson_low('successes', 'n') }}
        when 'mean' then {{ mean_ci('measure_mean', 'measure_sd', 'n', 'low') }}
    end as ci_low,
    case kind
        when 'nps' then {{ nps_adjusted_wald('promoters', 'detractors', 'n', 'high') }}
        when 'rate' then {{ wilson_high('successes', 'n') }}
        when 'mean' then {{ mean_ci('measure_mean', 'measure_sd', 'n', 'high') }}
    end as ci_high,
    final_date,
    final_date <= {{ cx_as_of() }} as is_final,
    {{ is_reportable('n', '(final_date <= ' ~ cx_as_of() ~ ')') }} as is_reportable
from finality
