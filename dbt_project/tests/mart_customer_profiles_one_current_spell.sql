-- Every customer of dim_customer has exactly one current spell in mart_customer_profiles.
select c.customer_key, count(p.customer_key) as current_spells
from {{ ref('dim_customer') }} as c
left join {{ ref('mart_customer_profiles') }} as p
    on p.customer_key = c.customer_key and p.is_current
group by c.customer_key
having count(p.customer_key) <> 1
