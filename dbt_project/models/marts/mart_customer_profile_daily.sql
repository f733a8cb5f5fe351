-- The customer profiles, one row per customer and day, for BI tools that want a date to filter on: the
-- spells of mart_customer_profiles expanded day by day to the profile horizon. A view, never stored
-- (1M customers over two years would be 730M rows); the publish serves it as a view over the served
-- mart_customer_profiles (orchestration/publish.py, docs/journey.md).
{{ config(materialized='view') }}

select
    p.customer_key,
    {{ explode_days('p.valid_from', 'p.last_date') }} as profile_date,
    p.profile
from (
    select
        s.customer_key,
        s.profile,
        s.valid_from,
        coalesce(cast({{ dbt.dateadd('day', -1, 's.valid_to') }} as date), h.horizon_date) as last_date
    from {{ ref('mart_customer_profiles') }} as s
    cross join (select {{ profile_horizon() }} as horizon_date) as h
) as p
