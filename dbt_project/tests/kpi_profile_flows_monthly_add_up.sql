-- Profile flows add up (kpi_profile_flows_monthly): for each month and profile p, the customers with p
-- on the month's first day + entries into p - exits from p = the customers with p on its last day (the
-- profile horizon in the current month). Start and end are counted here from the spells
-- (mart_customer_profiles), independently of the flows; entries and exits come from the flows.
with horizon as (
    select {{ profile_horizon() }} as horizon_date
),

flows as (
    select * from {{ ref('kpi_profile_flows_monthly') }}
),

spells as (
    select * from {{ ref('mart_customer_profiles') }}
),

months as (
    select distinct
        f.month_start,
        least(cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'f.month_start')) }} as date), h.horizon_date)
            as month_end
    from flows as f
    cross join horizon as h
),

profiles as (
    select 'negative' as profile union all select 'evasive' union all select 'advocate'
),

-- customers known before the month, by their profile on its first day
at_start as (
    select m.month_start, s.profile, count(*) as customers
    from months as m
    inner join spells as s
        on s.valid_from <= m.month_start and (s.valid_to is null or s.valid_to > m.month_start)
    group by m.month_start, s.profile
),

at_end as (
    select m.month_start, s.profile, count(*) as customers
    from months as m
    inner join spells as s
        on s.valid_from <= m.month_end and (s.valid_to is null or s.valid_to > m.month_end)
    group by m.month_start, s.profile
),

moves as (
    select
        m.month_start,
        p.profile,
        coalesce(sum(case when f.to_profile = p.profile and f.from_profile <> p.profile then f.customers end), 0)
            as entries,
        coalesce(sum(case when f.from_profile = p.profile and f.to_profile <> p.profile then f.customers end), 0)
            as exits
    from months as m
    cross join profiles as p
    left join flows as f on f.month_start = m.month_start
    group by m.month_start, p.profile
),

-- customers whose first spell starts on the month's first day have a profile on that day but are
-- counted as new in the flows: they are not at the start
new_on_first_day as (
    select m.month_start, s.profile, count(*) as customers
    from months as m
    inner join (
        select customer_key, profile, valid_from,
               row_number() over (partition by customer_key order by valid_from) as n
        from spells
    ) as s on s.n = 1 and s.valid_from = m.month_start
    group by m.month_start, s.profile
)

select
    v.month_start,
    v.profile,
    coalesce(st.customers, 0) - coalesce(nf.customers, 0) as at_start,
    v.entries,
    v.exits,
    coalesce(en.customers, 0) as at_end
from moves as v
left join at_start as st on st.month_start = v.month_start and st.profile = v.profile
left join new_on_first_day as nf on nf.month_start = v.month_start and nf.profile = v.profile
left join at_end as en on en.month_start = v.month_start and en.profile = v.profile
where coalesce(st.customers, 0) - coalesce(nf.customers, 0) + v.entries - v.exits <> coalesce(en.customers, 0)
