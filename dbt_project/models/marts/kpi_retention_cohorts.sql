-- Retention by acquisition cohort: cohort = month of first order; a customer is active in month k
-- when they ordered, or held an active subscription, during that month.
with orders as (
    select customer_key, {{ dbt.date_trunc('month', 'ordered_local_date') }} as month_start
    from {{ ref('fct_orders') }}
    where customer_key is not null and ordered_local_date <= {{ cx_as_of() }}
),

cohorts as (
    select customer_key, min(month_start) as cohort_month from orders group by customer_key
),

months as (
    select distinct month_start from orders
),

subscription_months as (
    select distinct s.customer_key, m.month_start
    from {{ ref('fct_subscriptions') }} as s
    inner join months as m
        on s.start_date < {{ dbt.dateadd('month', 1, 'm.month_start') }}
       and (s.cancel_date is null or s.cancel_date >= m.month_start)
    where s.customer_key is not null
),

activity as (
    select customer_key, month_start from orders
    union
    select customer_key, month_start from subscription_months
),

sizes as (
    select cohort_month, count(*) as cohort_size from cohorts group by cohort_month
)

select
    c.cohort_month,
    {{ dbt.datediff('c.cohort_month', 'a.month_start', 'month') }} as month_number,
    s.cohort_size,
    count(distinct a.customer_key) as active_customers,
    cast(count(distinct a.customer_key) as double) / s.cohort_size as retention_rate,
    {{ wilson_low('count(distinct a.customer_key)', 's.cohort_size') }} as ci_low,
    {{ wilson_high('count(distinct a.customer_key)', 's.cohort_size') }} as ci_high,
    {{ is_reportable('s.cohort_size') }} as is_reportable
from cohorts as c
inner join activity as a on a.customer_key = c.customer_key and a.month_start >= c.cohort_month
inner join sizes as s on s.cohort_month = c.cohort_month
group by c.cohort_month, {{ dbt.datediff('c.cohort_month', 'a.month_start', 'month') }}, s.cohort_size
