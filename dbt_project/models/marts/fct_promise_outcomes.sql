-- Every record judged against one of the brand's promises (seed brand_promises), once its outcome is
-- known: one row per record and promise. measured is what the customer got, in the promise's unit;
-- gap = measured - target (> 0: broken by that much; null when nothing was delivered at all: a refund or
-- call-back still missing at its due time, which breaks the promise). promise_date is the UTC date the
-- outcome became known: the delivery, the first response, the resolution, the refund (or the refund's
-- due date, when none came by then) and the call-back's (or its due date, when it came late or not).
-- The marts mart_promise_gap, the kept_rate_<measure> KPIs of kpi_experience_daily and mart_customer_360
-- read it.
with promises as (
    select * from {{ ref('brand_promises') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

cases as (
    select * from {{ ref('fct_support_cases') }}
),

followups as (
    select * from {{ ref('mart_feedback_followups') }}
),

refunds as (
    select order_key, refunded_at from {{ ref('fct_refunds') }}
    where order_key is not null and refund_date <= {{ cx_as_of() }}
),

-- returns received by as_of, keyed like the facts
returns as (
    select
        {{ cx_pseudonym('return', 'return_id') }} as return_key,
        {{ cx_pseudonym('order', 'order_id') }} as order_key,
        received_at
    from {{ ref('stg_erp__returns') }}
    where received_at is not null and {{ utc_date('received_at') }} <= {{ cx_as_of() }}
),

refund_promise as (
    {{ promise_for('returns', 'return_key', 'refund') }}
),

-- the refund after a return: the order's first refund at or after the return was received (several
-- returns of one order share it; refunds before the reception, such as goodwill for lateness, do not count)
returns_refunded as (
    select
        r.return_key,
        r.order_key,
        r.received_at,
        p.promise_id,
        p.promise_target,
        min(f.refunded_at) as refunded_at
    from returns as r
    inner join refund_promise as p on p.return_key = r.return_key
    left join refunds as f on f.order_key = r.order_key and f.refunded_at >= r.received_at
    group by r.return_key, r.order_key, r.received_at, p.promise_id, p.promise_target
),

-- a missing refund is judged once its due date has passed, as far as the billing drops reach: to as_of,
-- or to the last billing drop when as_of lies beyond the data (a plain `dbt build`), so a refund that
-- is merely not delivered yet is not called missing
refund_horizon as (
    select least({{ cx_as_of() }}, coalesce(max(drop_date), {{ cx_as_of() }})) as judged_through
    from {{ ref('stg_billing__refunds') }}
),

returns_judged as (
    select
        rr.*,
        {{ dbt.dateadd('second', 'cast(round(rr.promise_target * 86400) as bigint)', 'rr.received_at') }} as due_at,
        {{ hours_between('rr.received_at', 'rr.refunded_at') }} / 24 as refund_days
    from returns_refunded as rr
),

judged as (
    select
        'order' as record_kind,
        order_key,
        cast(null as {{ dbt.type_string() }}) as case_key,
        cast(null as {{ dbt.type_string() }}) as return_key,
        cast(null as {{ dbt.type_string() }}) as response_key,
        customer_key,
        delivery_promise_id as promise_id,
        {{ utc_date('delivered_at') }} as promise_date,
        not is_on_time as is_broken,
        {{ cx_as_double('promise_gap_days') }} as measured
    from orders
    where is_delivered and delivery_promise_id is not null

    union all

    select
        'case', null, case_key, null, null, customer_key, first_response_promise_id, first_response_date,
        is_first_response_sla_breached, first_response_hours
    from cases
    where first_response_at is not null and first_response_promise_id is not null

    union all

    select
        'case', null, case_key, null, null, customer_key, resolution_promise_id, resolved_date,
        is_resolution_sla_breached, resolution_hours
    from cases
    where is_resolved and resolved_at is not null and resolution_promise_id is not null

    union all

    -- refunded (kept or late), or still not refunded once due (broken, nothing measured)
    select
        'return', r.order_key, null, r.return_key, null, o.customer_key, r.promise_id,
        case when r.refunded_at is not null then {{ utc_date('r.refunded_at') }} else {{ utc_date('r.due_at') }} end,
        r.refunded_at is null or r.refund_days > r.promise_target,
        r.refund_days
    from returns_judged as r
    left join orders as o on o.order_key = r.order_key
    cross join refund_horizon as h
    where r.refunded_at is not null or {{ utc_date('r.due_at') }} <= h.judged_through

    union all

    -- the call-back after an unhappy answer: kept at the contact, broken at the due time (macros/followups.sql)
    select
        'response', null, null, null, response_key, customer_key, promise_id, outcome_date,
        is_breached, hours_to_contact
    from followups
    where outcome_date is not null and promise_id is not null
)

select
    j.promise_id,
    p.measure,
    j.record_kind,
    j.order_key,
    j.case_key,
    j.return_key,
    j.response_key,
    j.customer_key,
    j.promise_date,
    j.is_broken,
    j.measured,
    j.measured - p.target as gap,
    p.unit,
    p.target
from judged as j
inner join promises as p on p.promise_id = j.promise_id
