-- Monthly flows between customer profiles (docs/journey.md, "Customer profiles"): per month, the
-- customers by their profile on the month's first day (from_profile; 'new' when their first spell
-- starts inside the month) and on its last day, or on the profile horizon in the current month
-- (to_profile). Per month, on each of its rows: negatives at start, how many of them were no longer
-- negative at the end, that share with its Wilson interval, and reportability.
with spells as (
    select customer_key, profile, valid_from, valid_to
    from {{ ref('mart_customer_profiles') }}
),

horizon as (
    select {{ profile_horizon() }} as horizon_date
),

firsts as (
    select customer_key, min(valid_from) as first_date
    from spells
    group by customer_key
),

months as (
    {{ month_spine('(select min(valid_from) from spells)', '(select horizon_date from horizon)') }}
),

bounds as (
    select
        m.month_start,
        least(cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'm.month_start')) }} as date), h.horizon_date)
            as month_end,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'm.month_start')) }} as date) > h.horizon_date
            as is_partial_month
    from months as m
    cross join horizon as h
    where m.month_start <= h.horizon_date
),

-- each customer known by the month's end, with the spells that overlap the month
customers as (
    select
        b.month_start,
        b.is_partial_month,
        f.customer_key,
        case
            when f.first_date >= b.month_start then 'new'
            else max(case when s.valid_from <= b.month_start then s.profile end)
        end as from_profile,
        max(case when s.valid_to is null or s.valid_to > b.month_end then s.profile end) as to_profile
    from bounds as b
    inner join firsts as f on f.first_date <= b.month_end
    inner join spells as s
        on s.customer_key = f.customer_key
       and s.valid_from <= b.month_end
       and (s.valid_to is null or s.valid_to > b.month_start)
    group by b.month_start, b.is_partial_month, f.customer_key, f.first_date
),

flows as (
    select
        month_start,
        is_partial_month,
        from_profile,
        to_profile,
        count(*) as customers
    from customers
    group by month_start, is_partial_month, from_profile, to_profile
),

months_recovery as (
    select
        month_start,
        cast(sum(case when from_profile = 'negative' then customers else 0 end) as bigint) as negatives_at_start,
        cast(sum(case when from_profile = 'negative' and to_profile <> 'negative' then customers else 0 end) as bigint)
            as negatives_recovered
    from flows
    group by month_start
)

select
    f.month_start,
    f.from_profile,
    f.to_profile,
    f.customers,
    r.negatives_at_start,
    r.negatives_recovered,
    case when r.negatives_at_start > 0
        then cast(r.negatives_recovered as double) / r.negatives_at_start end as recovered_share,
    {{ wilson_low('r.negatives_recovered', 'r.negatives_at_start') }} as recovered_share_ci_low,
    {{ wilson_high('r.negatives_recovered', 'r.negatives_at_start') }} as recovered_share_ci_high,
    f.is_partial_month,
    {{ is_reportable('r.negatives_at_start', 'not f.is_partial_month') }} as is_reportable
from flows as f
inner join months_recovery as r on r.month_start = f.month_start
