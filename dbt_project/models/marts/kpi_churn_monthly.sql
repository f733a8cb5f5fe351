-- Monthly subscription churn: customers lost during the month / customers active at its start.
-- Customers who started during the month are excluded from both (docs/kpi-decisions.md).
with subs as (
    select customer_key, start_date, cancel_date
    from {{ ref('fct_subscriptions') }}
    where customer_key is not null and start_date <= {{ cx_as_of() }}
),

bounds as (
    -- the months the data covers (never the wall clock)
    select
        min(start_date) as first_date,
        greatest(max(start_date), coalesce(max(cancel_date), max(start_date))) as last_date
    from subs
),

months as (
    {{ month_spine('(select first_date from bounds)', '(select last_date from bounds)') }}
),

at_start as (
    select
        m.month_start,
        s.customer_key,
        max(case
            when s.cancel_date >= m.month_start
             and s.cancel_date < {{ dbt.dateadd('month', 1, 'm.month_start') }}
             and s.cancel_date <= {{ cx_as_of() }} then 1 else 0 end) as lost
    from months as m
    inner join subs as s
        on s.start_date < m.month_start
       and (s.cancel_date is null or s.cancel_date >= m.month_start)
    group by m.month_start, s.customer_key
),

customers as (
    -- a customer with several subscriptions is lost when none is left
    select a.month_start, a.customer_key,
           case when a.lost = 1 and not exists (
               select 1 from subs as s2
               where s2.customer_key = a.customer_key
                 and s2.start_date < {{ dbt.dateadd('month', 1, 'a.month_start') }}
                 and (s2.cancel_date is null or s2.cancel_date >= {{ dbt.dateadd('month', 1, 'a.month_start') }})
           ) then 1 else 0 end as lost
    from at_start as a
)

select
    month_start,
    count(*) as customers_at_start,
    cast(sum(lost) as bigint) as customers_lost,
    cast(sum(lost) as double) / count(*) as churn_rate,
    count(*) as n,
    {{ wilson_low('sum(lost)', 'count(*)') }} as ci_low,
    {{ wilson_high('sum(lost)', 'count(*)') }} as ci_high,
    {{ is_reportable('count(*)') }} as is_reportable,
    month_start <= {{ cx_as_of() }}
        and {{ dbt.dateadd('month', 1, 'month_start') }} > {{ cx_as_of() }} as is_partial_month
from customers
where month_start <= {{ cx_as_of() }}
group by month_start
