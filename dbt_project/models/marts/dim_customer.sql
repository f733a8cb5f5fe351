-- One row per person across the four systems, under its pseudonymous key: no source identifier,
-- e-mail, phone or name here (the link is restricted.customer_key_link, the personal data
-- restricted.dim_customer_pii; docs/privacy.md). An erased customer keeps a row, flagged is_erased,
-- under a new key that nothing resolves.
with people as (
    select person_id, customer_key, is_erased
    from {{ ref('int_customer_key_map') }}
    where person_id in (select person_id from {{ ref('int_identity_resolution') }})
),

crm as (
    select * from {{ ref('stg_crm__customers') }}
),

profiles as (
    select
        {{ dbt.concat(["'crm:'", "person_crm_id"]) }} as person_id,
        count(*) as crm_profiles
    from (
        select first_value(customer_id) over (
            partition by coalesce(phone_hash, customer_id) order by created_at, customer_id
        ) as person_crm_id
        from crm
    ) as grouped
    group by person_crm_id
)

select
    p.customer_key,
    case when p.person_id like 'crm:%' then 'crm' else 'email_only' end as identity_type,
    coalesce(pr.crm_profiles, 0) as crm_profiles,
    c.segment,
    c.persona,
    c.country,
    c.acquisition_channel,
    c.marketing_consent,
    -- an exact timestamp could find an erased person's CRM record again
    case when not p.is_erased then c.created_at end as crm_created_at,
    p.is_erased
from people as p
left join crm as c on p.person_id = {{ dbt.concat(["'crm:'", "c.customer_id"]) }}
left join profiles as pr on pr.person_id = p.person_id
