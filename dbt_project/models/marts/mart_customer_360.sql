-- The customer 360: one row per customer of dim_customer (the same keys, erased customers included,
-- flagged is_erased), for frontline staff and BI, as of the run's as_of (only records dated <= as_of).
-- No personal data: the same customers with e-mail, phone and names are restricted.mart_customer_360_pii.
-- Each source is read by one import CTE and aggregated once per customer; everything is left-joined
-- onto dim_customer (docs/warehouse.md, "Customer 360 and timeline").
{%- set as_of = cx_as_of() %}
{#- the case channels of ingestion/contract.py CASE_CHANNELS, one last_contact_<channel>_at each -#}
{%- set case_channels = ['phone', 'email', 'chat', 'store', 'social'] %}
{%- set survey_types = ['nps', 'csat', 'ces'] %}

-- ---- imports ------------------------------------------------------------------------------------
with customers as (
    select customer_key, segment, persona, is_erased, crm_created_at
    from {{ ref('dim_customer') }}
),

orders as (
    select customer_key, ordered_at, is_delivered, delivered_at
    from {{ ref('fct_orders') }}
    where customer_key is not null and {{ utc_date('ordered_at') }} <= {{ as_of }}
),

-- revenue net of refunds per customer and currency: defined once, in kpi_customer_value (non-void
-- invoices issued to as_of minus refunds to as_of)
customer_value as (
    select customer_key, currency, clv_minor
    from {{ ref('kpi_customer_value') }}
),

fx_rates as (
    select currency, rate
    from {{ ref('fx_rates') }}
    where reporting_currency = '{{ var("reporting_currency") }}'
),

cases as (
    select customer_key, channel, opened_at, is_resolved
    from {{ ref('fct_support_cases') }}
    where customer_key is not null and {{ utc_date('opened_at') }} <= {{ as_of }}
),

responses as (
    select customer_key, survey_type, score, responded_at, response_key
    from {{ ref('fct_survey_responses') }}
    where customer_key is not null and response_date <= {{ as_of }}
),

events as (
    select customer_key, event_ts, source_entity
    from {{ ref('fct_journey_events') }}
    where event_date <= {{ as_of }}
),

stage_transitions as (
    select customer_key, stage, entered_at, left_at
    from {{ ref('fct_customer_stage_transitions') }}
    where {{ utc_date('entered_at') }} <= {{ as_of }}
),

-- ---- one aggregation per source -----------------------------------------------------------------
-- every order placed to as_of counts, cancelled and returned ones included (an order the customer
-- placed); orders_delivered: every line delivered, to as_of
order_summary as (
    select
        customer_key,
        count(*) as orders,
        count(case when is_delivered and {{ utc_date('delivered_at') }} <= {{ as_of }} then 1 end)
            as orders_delivered,
        max(ordered_at) as last_order_at
    from orders
    group by customer_key
),

-- one currency: its net revenue; several: no single amount (null), only the reporting-currency total.
-- Each currency's net is converted at the seed's rate and rounded to the reporting currency's minor
-- unit (as kpi_experience_daily converts refund_rate_value), then summed: null when a currency has no rate
revenue_summary as (
    select
        v.customer_key,
        count(*) as currencies,
        case when count(*) = 1 then max(v.currency) end as revenue_currency,
        case when count(*) = 1 then cast(sum(v.clv_minor) as bigint) end as net_revenue_minor,
        case when count(*) = count(fx.rate)
            then {{ cx_as_double('sum(cast(round(v.clv_minor * fx.rate) as bigint))') }} / 100
        end as net_revenue_reporting
    from customer_value as v
    left join (
        select currency, rate from fx_rates
        where currency <> '{{ var("reporting_currency") }}'
        union all
        select '{{ var("reporting_currency") }}' as currency, {{ cx_as_double(1) }} as rate
    ) as fx on fx.currency = v.currency
    group by v.customer_key
),

-- open: not solved or closed (status open or pending); last contact per channel: the latest case
-- opened in it
case_summary as (
    select
        customer_key,
        count(*) as cases_total,
        count(case when not is_resolved then 1 end) as open_cases,
        max(opened_at) as last_case_opened_at,
        {%- for channel in case_channels %}
        max(case when channel = '{{ channel }}' then opened_at end) as last_contact_{{ channel }}_at
        {{- ',' if not loop.last }}
        {%- endfor %}
    from cases
    group by customer_key
),

-- the latest answer per survey type; answers at the same instant: the greatest response_key, on
-- every engine
latest_responses as (
    select
        customer_key, survey_type, score, responded_at,
        row_number() over (
            partition by customer_key, survey_type order by responded_at desc, response_key desc
        ) as answer_rank
    from responses
),

score_summary as (
    select
        customer_key,
        {%- for t in survey_types %}
        max(case when survey_type = '{{ t }}' then score end) as last_{{ t }}_score,
        max(case when survey_type = '{{ t }}' then responded_at end) as last_{{ t }}_at
        {{- ',' if not loop.last }}
        {%- endfor %}
    from latest_responses
    where answer_rank = 1
    group by customer_key
),

event_summary as (
    select
        customer_key,
        min(event_ts) as first_event_at,
        max(event_ts) as last_event_at,
        max(case when source_entity = 'campaign_touches' then event_ts end) as last_campaign_touch_at
    from events
    group by customer_key
),

-- the stage the customer is in as of as_of: entered to as_of and not left by then (left_at null for
-- the current stage of a full build); one per customer, since a stage's left_at is the next one's
-- entered_at
current_stage as (
    select customer_key, stage as journey_stage
    from stage_transitions
    where left_at is null or {{ utc_date('left_at') }} > {{ as_of }}
),

-- ---- managing the customer: profile, call-backs due, promises broken ----------------------------
-- the profile of the customer's current spell (mart_customer_profiles)
current_profile as (
    select customer_key, profile as current_profile
    from {{ ref('mart_customer_profiles') }}
    where is_current
),

-- call-backs the customer is waiting for: unhappy answers not contacted yet, due or overdue
-- (mart_feedback_followups status open or never)
followup_summary as (
    select
        customer_key,
        cast(sum(case when status in ('open', 'never') then 1 else 0 end) as bigint) as open_followups,
        cast(sum(case when status = 'never' then 1 else 0 end) as bigint) as overdue_followups
    from {{ ref('mart_feedback_followups') }}
    where customer_key is not null
    group by customer_key
),

-- promises of seed brand_promises broken for the customer in the 90 days to as_of (fct_promise_outcomes)
promise_summary as (
    select customer_key, cast(count(*) as bigint) as promises_broken_90d
    from {{ ref('fct_promise_outcomes') }}
    where customer_key is not null and is_broken
      and promise_date <= {{ as_of }}
      and promise_date > {{ dbt.dateadd('day', -90, as_of) }}
    group by customer_key
),

customer_360 as (
    select
        c.customer_key,
        c.segment,
        c.persona,
        c.is_erased,
        -- first known: the CRM profile's creation or the first journey event, whichever is earlier
        -- (dim_customer has no crm_created_at for an erased customer: their first event then)
        {{ least_not_null([
            "case when " ~ utc_date('c.crm_created_at') ~ " <= " ~ as_of ~ " then " ~ utc_date('c.crm_created_at') ~ " end",
            utc_date('e.first_event_at')]) }} as customer_since,
        coalesce(o.orders, 0) as orders,
        coalesce(o.orders_delivered, 0) as orders_delivered,
        o.last_order_at,
        r.revenue_currency,
        -- nothing invoiced: 0 (in any currency); several currencies: null
        case when r.customer_key is null then 0 else r.net_revenue_minor end as net_revenue_minor,
        coalesce(r.currencies, 0) as currencies,
        case when r.customer_key is null then {{ cx_as_double(0) }} else r.net_revenue_reporting end
            as net_revenue_reporting,
        coalesce(cs.open_cases, 0) as open_cases,
        coalesce(cs.cases_total, 0) as cases_total,
        cs.last_case_opened_at,
        {%- for channel in case_channels %}
        cs.last_contact_{{ channel }}_at,
        {%- endfor %}
        e.last_campaign_touch_at,
        {%- for t in survey_types %}
        sc.last_{{ t }}_score,
        sc.last_{{ t }}_at,
        {%- endfor %}
        st.journey_stage,
        e.last_event_at,
        coalesce(p.current_profile, 'evasive') as current_profile,
        coalesce(f.open_followups, 0) as open_followups,
        coalesce(f.overdue_followups, 0) as overdue_followups,
        coalesce(ps.promises_broken_90d, 0) as promises_broken_90d
    from customers as c
    left join order_summary as o on o.customer_key = c.customer_key
    left join revenue_summary as r on r.customer_key = c.customer_key
    left join case_summary as cs on cs.customer_key = c.customer_key
    left join score_summary as sc on sc.customer_key = c.customer_key
    left join event_summary as e on e.customer_key = c.customer_key
    left join current_stage as st on st.customer_key = c.customer_key
    left join current_profile as p on p.customer_key = c.customer_key
    left join followup_summary as f on f.customer_key = c.customer_key
    left join promise_summary as ps on ps.customer_key = c.customer_key
)

select
    customer_key,
    segment,
    persona,
    is_erased,
    customer_since,
    cast({{ dbt.datediff('customer_since', as_of, 'day') }} as bigint) as tenure_days,
    orders,
    orders_delivered,
    last_order_at,
    revenue_currency,
    net_revenue_minor,
    currencies,
    net_revenue_reporting,
    open_cases,
    cases_total,
    last_case_opened_at,
    {%- for channel in case_channels %}
    last_contact_{{ channel }}_at,
    {%- endfor %}
    last_campaign_touch_at,
    {%- for t in survey_types %}
    last_{{ t }}_score,
    last_{{ t }}_at,
    {%- endfor %}
    journey_stage,
    last_event_at,
    current_profile,
    open_followups,
    overdue_followups,
    promises_broken_90d
from customer_360
