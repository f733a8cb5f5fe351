-- Restricted: the personal data behind dim_customer, for people who have not asked for erasure.
-- Not published to BI.
select
    d.customer_key,
    c.customer_id as crm_customer_id,
    c.email,
    c.phone_e164,
    c.first_name,
    c.last_name,
    c.city
from {{ ref('customer_key_link') }} as d
inner join {{ ref('stg_crm__customers') }} as c on c.customer_id = d.crm_customer_id
where not c.is_deleted
