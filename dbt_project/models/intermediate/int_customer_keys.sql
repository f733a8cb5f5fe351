{{ config(schema='restricted') }}
-- identifier (crm:<id> or email:<hash>) -> customer_key, for the facts. Restricted: a link (docs/privacy.md).
select r.identifier, k.customer_key, r.match_rule
from {{ ref('int_identity_resolution') }} as r
inner join {{ ref('int_customer_key_map') }} as k on k.person_id = r.person_id
