-- The gap between what the brand promised and what the customer got, per promise (seed
-- brand_promises), per day and segment: how many records were judged against the promise, how many
-- kept and broken it (with the kept rate's 95 % Wilson interval), the gap's mean, p50 and p90, and the
-- trend: the kept rate over the 28 days ending that day, with its interval. gap = what was measured -
-- the promise's target, in its unit (> 0 broken by that much, <= 0 kept with that much to spare; a
-- refund or call-back that never came has no gap, only a broken promise). The records and their
-- dates: fct_promise_outcomes. A cell is final once its outcome can no longer change (the finality
-- window of the KPI kept_rate_<measure>, macros/kpi.sql).
with outcomes as (
    select * from {{ ref('fct_promise_outcomes') }}
),

-- each customer's segment by date, as the KPI marts break down by it (macros/kpi_experience.sql)
customers as (
{{ cx_customer_attributes_by_date() }}
),

with_gap as (
    select
        o.promise_date,
        o.promise_id,
        o.measure,
        o.unit,
        o.target,
        {{ dbt.concat(["'kept_rate_'", 'o.measure']) }} as finality_kpi,
        c.segment,
        case when o.is_broken then 1 else 0 end as broken,
        o.gap
    from outcomes as o
    left join customers as c on {{ cx_customer_on_date('c', 'o.customer_key', 'o.promise_date') }}
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
        -- the mean of decimals (to 1e-12 of the unit): summed exactly, so the same records give the same mean to
        -- the last bit however the engine's threads split the sum (an avg of doubles moved in its last bit from
        -- one run of a night to the next, and the publish copied the table again for it). decimal(28, 12): Spark's
        -- avg of it is a decimal(32, 16), within its 38 digits, so it rounds nothing away either
        {{ cx_as_double('avg(cast(gap as decimal(28, 12)))') }} as gap_mean,
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
),

-- the trend: each cell's last 28 days (its own day included) of the same promise and cell
trend as (
    select
        c.promise_date,
        c.promise_id,
        c.dimension,
        c.dimension_value,
        cast(sum(p.n) as bigint) as n_28d,
        cast(sum(p.n - p.broken) as bigint) as kept_28d
    from cells as c
    inner join cells as p
        on p.promise_id = c.promise_id
        and p.dimension = c.dimension
        and p.dimension_value = c.dimension_value
        and p.promise_date <= c.promise_date
        and p.promise_date > {{ dbt.dateadd('day', -28, 'c.promise_date') }}
    group by c.promise_date, c.promise_id, c.dimension, c.dimension_value
)

select
    c.promise_date,
    c.promise_id,
    c.measure,
    c.unit,
    c.target,
    c.dimension,
    c.dimension_value,
    c.n,
    c.n - c.broken as kept,
    c.broken,
    {{ cx_as_double('c.n - c.broken') }} / c.n as kept_rate,
    {{ wilson_low('c.n - c.broken', 'c.n') }} as kept_rate_ci_low,
    {{ wilson_high('c.n - c.broken', 'c.n') }} as kept_rate_ci_high,
    c.gap_mean,
    c.gap_p50,
    c.gap_p90,
    t.n_28d,
    {{ cx_as_double('t.kept_28d') }} / t.n_28d as kept_rate_28d,
    {{ wilson_low('t.kept_28d', 't.n_28d') }} as kept_rate_28d_ci_low,
    {{ wilson_high('t.kept_28d', 't.n_28d') }} as kept_rate_28d_ci_high,
    c.final_date,
    c.final_date <= {{ cx_as_of() }} as is_final,
    {{ is_reportable('c.n', 'c.final_date <= ' ~ cx_as_of()) }} as is_reportable
from cells as c
inner join trend as t
    on t.promise_date = c.promise_date
    and t.promise_id = c.promise_id
    and t.dimension = c.dimension
    and t.dimension_value = c.dimension_value
