-- How well each system's records resolve to a CRM customer, by rule (docs/identity.md).
with obs as (
    select o.source_system, o.source_entity, o.identifier, r.match_rule
    from {{ ref('int_identity_observations') }} as o
    left join {{ ref('int_identity_resolution') }} as r on r.identifier = o.identifier
)

select
    source_system,
    source_entity,
    count(*) as records,
    cast(sum(case when match_rule in ('crm_id', 'crm_id_phone') then 1 else 0 end) as bigint) as matched_by_crm_id,
    cast(sum(case when match_rule = 'email' then 1 else 0 end) as bigint) as matched_by_email,
    cast(sum(case when match_rule = 'crm_id_phone' then 1 else 0 end) as bigint) as merged_by_phone,
    cast(sum(case when match_rule = 'email_only' then 1 else 0 end) as bigint) as email_only,
    cast(sum(case when match_rule = 'crm_id_unknown' then 1 else 0 end) as bigint) as unknown_crm_id,
    cast(sum(case when identifier is null then 1 else 0 end) as bigint) as anonymous,
    cast(sum(case when match_rule in ('crm_id', 'crm_id_phone', 'email') then 1 else 0 end) as double) / count(*)
        as match_rate
from obs
group by source_system, source_entity
