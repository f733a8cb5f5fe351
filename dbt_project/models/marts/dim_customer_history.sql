-- SCD type 2 history of CRM customer attributes: one row per version, valid from its updated_at
-- until the next version's. Built from the raw zone, which keeps every delivered version, rather
-- than a dbt snapshot: it is reproducible for any as_of (backfills), and it holds no personal
-- data, so an erasure request cannot linger in history rows.
with versions as (
    select * from (
        select
            customer_id, segment, persona, country, acquisition_channel, marketing_consent, is_deleted,
            updated_at,
            row_number() over (
                partition by customer_id, updated_at
                order by _business_date desc, _extracted_at desc, _source_line desc
            ) as copy_rank
        from {{ source('crm', 'customers') }}
        where _business_date <= {{ cx_as_of() }}
    ) as delivered
    where copy_rank = 1
)

select
    k.customer_key,
    -- the CRM profile, pseudonymous (a person merged by phone has several profiles); a new key once
    -- the profile is erased on request, as for customer_key
    case
        when v.customer_id in (select customer_id from {{ ref('stg_crm__customers') }} where is_deleted)
            then {{ cx_pseudonym('erased-crm-profile', 'v.customer_id') }}
        else {{ cx_pseudonym('crm-profile', 'v.customer_id') }}
    end as profile_key,
    v.segment,
    v.persona,
    v.country,
    v.acquisition_channel,
    v.marketing_consent,
    v.is_deleted,
    -- the profile dim_customer describes the person by (the person's first CRM profile): the segment and
    -- persona the KPI marts break down by, as of each date (macros/kpi_experience.sql)
    p.identifier is not null as is_primary_profile,
    v.updated_at as valid_from,
    lead(v.updated_at) over (partition by v.customer_id order by v.updated_at) as valid_to,
    lead(v.updated_at) over (partition by v.customer_id order by v.updated_at) is null as is_current
from versions as v
left join {{ ref('int_customer_keys') }} as k on k.identifier = {{ dbt.concat(["'crm:'", "v.customer_id"]) }}
-- a CRM profile is its person's own identifier when it is the person's first profile (int_identity_resolution)
left join {{ ref('int_identity_resolution') }} as p
    on p.identifier = {{ dbt.concat(["'crm:'", "v.customer_id"]) }} and p.person_id = p.identifier
