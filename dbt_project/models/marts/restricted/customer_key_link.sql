-- Restricted (never published): the link from each served customer_key back to the person and
-- the CRM profile, for people who have not asked for erasure (docs/privacy.md).
select
    k.customer_key,
    k.person_id,
    case when k.person_id like 'crm:%' then substr(k.person_id, 5) end
        as crm_customer_id
from {{ ref('int_customer_key_map') }} as k
where not k.is_erased
  and k.person_id in (select person_id from {{ ref('int_identity_resolution') }})
