-- A customer's spells follow each other without gap or overlap (each ends where the next starts, only
-- the last is open), two in a row never hold the same profile (they would be one spell), and none
-- starts after the profile horizon.
with ordered as (
    select
        customer_key,
        profile,
        valid_from,
        valid_to,
        lead(valid_from) over (partition by customer_key order by valid_from) as next_from,
        lead(profile) over (partition by customer_key order by valid_from) as next_profile
    from {{ ref('mart_customer_profiles') }}
)

select *
from ordered
where (valid_to is null and next_from is not null)
   or (valid_to is not null and (next_from is null or next_from <> valid_to))
   or profile = next_profile
   or valid_from > {{ profile_horizon() }}
