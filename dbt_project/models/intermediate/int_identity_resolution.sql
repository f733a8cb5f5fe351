-- Identifier -> person. Rules, in order (docs/identity.md):
--   1. a CRM customer_id is that CRM profile;
--   2. an e-mail (hash) matching a CRM profile's e-mail is that profile;
--   3. CRM profiles sharing a phone number (E.164) are one person: the first created profile;
--   4. otherwise an e-mail alone is its own person ("email-only"); a record with neither is anonymous.
with crm as (
    select customer_id, email_hash, phone_hash, created_at
    from {{ ref('stg_crm__customers') }}
),

crm_person as (
    select
        customer_id,
        email_hash,
        first_value(customer_id) over (
            partition by coalesce(phone_hash, customer_id) order by created_at, customer_id
        ) as person_crm_id,
        case when count(*) over (partition by coalesce(phone_hash, customer_id)) > 1 then 'phone' end as merged_by
    from crm
),

email_to_person as (
    select email_hash, min(person_crm_id) as person_crm_id
    from crm_person
    where email_hash is not null
    group by email_hash
),

identifiers as (
    -- one row per identifier: a CRM id resolves on its own, whatever e-mail came with it
    select distinct
        identifier,
        ref_customer_id,
        case when ref_customer_id is null then ref_email_hash end as ref_email_hash
    from {{ ref('int_identity_observations') }}
    where identifier is not null
)

select
    i.identifier,
    case
        when i.ref_customer_id is not null then {{ dbt.concat(["'crm:'", "coalesce(p.person_crm_id, i.ref_customer_id)"]) }}
        when e.person_crm_id is not null then {{ dbt.concat(["'crm:'", "e.person_crm_id"]) }}
        else i.identifier
    end as person_id,
    case
        when i.ref_customer_id is not null and p.customer_id is null then 'crm_id_unknown'
        when i.ref_customer_id is not null and p.merged_by = 'phone' then 'crm_id_phone'
        when i.ref_customer_id is not null then 'crm_id'
        when e.person_crm_id is not null then 'email'
        else 'email_only'
    end as match_rule
from identifiers as i
left join crm_person as p on p.customer_id = i.ref_customer_id
left join email_to_person as e on i.ref_customer_id is null and e.email_hash = i.ref_email_hash
