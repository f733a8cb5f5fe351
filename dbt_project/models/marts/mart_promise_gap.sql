-- The gap between what the brand promised and what the customer got, per promise (seed
-- brand_promises), per day and segment: how many records were judged against the promise, how many
-- kept and broken it (with the kept rate's 95 % Wilson interval), and the gap's mean, p50 and p90.
-- gap = what was measured - the promise's target, in its unit (hours, or days for delivery): > 0 is
-- broken by that much, <= 0 kept with that much to spare. A record is judged when its outcome is
-- known: an order when delivered (dated by the UTC date of its last delivery), a case's first
-- response when it comes, its resolution when it is resolved (dated by those dates, UTC). A cell is
-- final once its outcome can no longer change (the finality windows of the KPI it matches).
-- Refund and follow-up promises are not judged yet (docs/kpi-decisions.md, "The brand's promises").
with promises as (
    select * from {{ ref('brand_promises') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

cases as (
    select * from {{ ref('fct_support_cases') }}
),

customers as (
    select customer_key, segment from {{ ref('dim_customer') }}
),

judged as (
    select
        delivery_promise_id as promise_id,
        'on_time_delivery_rate' as finality_kpi,
        {{ utc_date('delivered_at') }} as promise_date,
        customer_key,
        not is_on_time as is_broken,
        {{ cx_as_double('promise_gap_days') }} as measured
    from orders
    where is_delivered and delivery_promise_id is not null

    union all

    select
        first_response_promise_id as promise_id,
        'first_response_hours_p50' as finality_kpi,
        first_response_date as promise_date,
        customer_key,
        is_first_response_sla_breached as is_broken,
        first_response_hours as measured
    from cases
    where first_response_at is not null and first_response_promise_id is not null

    union all

    select
        resolution_promise_id as promise_id,
        'resolution_hours_p50' as finality_kpi,
        resolved_date as promise_date,
        customer_key,
        is_resolution_sla_breached as is_broken,
        resolution_hours as measured
    from cases
    where is_resolved and resolved_at is not null and resolution_promise_id is not null
),

with_gap as (
    select
        j.promise_date,
        j.promise_id,
        p.measure,
        p.unit,
        p.target,
        j.finality_kpi,
        c.segment,
        case when j.is_broken then 1 else 0 end as broken,
        {{ cx_as_double('j.measured') }} - p.target as gap
    from judged as j
    inner join promises as p on p.promise_id = j.promise_id
    left join customers as c on c.customer_key = j.customer_key
),

grouped as (
    select
        promise_date,
        promise_id,
        measure,
        unit,
        target,
        finality_kpi,
        case when grouping(segment) = 0 then 'segment' else 'all' end as dimension,
        case when grouping(segment) = 0 then segment else 'all' end as dimension_value,
        cast(count(*) as bigint) as n,
        cast(sum(broken) as bigint) as broken,
        avg(gap) as gap_mean,
        {{ median('gap') }} as gap_p50,
        {{ percentile('gap', 0.9) }} as gap_p90
    from with_gap
    group by promise_date, promise_id, measure, unit, target, finality_kpi, grouping sets ((), (segment))
),

-- a segment's cells are its known values: records of customers without one count in 'all' only
cells as (
    select *, {{ kpi_final_date('finality_kpi', 'promise_date') }} as final_date
    from grouped
    where dimension = 'all' or dimension_value is not null
)

select
    promise_date,
    promise_id,
    measure,
    unit,
    target,
    dimension,
    dimension_value,
    n,
    n - broken as kept,
    broken,
    {{ cx_as_double('n - broken') }} / n as kept_rate,
    {{ wilson_low('n - broken', 'n') }} as kept_rate_ci_low,
    {{ wilson_high('n - broken', 'n') }} as kept_rate_ci_high,
    gap_mean,
    gap_p50,
    gap_p90,
    final_date,
    final_date <= {{ cx_as_of() }} as is_final,
    {{ is_reportable('n', 'final_date <= ' ~ cx_as_of()) }} as is_reportable
from cells
