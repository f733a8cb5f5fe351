-- One row per person across the four systems. No e-mail, phone or name here (see
-- restricted.dim_customer_pii); an erased customer keeps its row and key, flagged is_erased.
with people as (
    select distinct r.person_id, k.customer_key
    from {{ ref('int_identity_resolution') }} as r
    inner join {{ ref('int_customer_key_map') }} as k on k.person_id = r.person_id
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
    p.person_id,
    case when p.person_id like 'crm:%' then 'crm' else 'email_only' end as identity_type,
    c.customer_id as crm_customer_id,
    coalesce(pr.crm_profiles, 0) as crm_profiles,
    c.segment,
    c.persona,
    c.country,
    c.acquisition_channel,
    c.marketing_consent,
    c.created_at as crm_created_at,
    coalesce(c.is_deleted, false) as is_erased
from people as p
left join crm as c on p.person_id = {{ dbt.concat(["'crm:'", "c.customer_id"]) }}
left join profiles as pr on pr.person_id = p.person_id
