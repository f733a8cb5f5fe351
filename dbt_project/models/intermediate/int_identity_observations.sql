-- Every customer reference seen in any system, as an identifier: a CRM id or an e-mail hash.
-- A view: its two readers (int_identity_resolution, customer_match_rate) each scan three columns of the
-- staging tables, which costs less than writing every record's reference again at every build and night
-- (4.3 M rows at 100k customers x 1 year, ~3 s of each night).
{{ config(materialized='view') }}
{#- system, entity, the record's key, its CRM customer id, its e-mail hash (none: the entity has none) -#}
{%- set references = [
    ('crm', 'customers', 'customer_id', 'customer_id', 'email_hash'),
    ('crm', 'support_cases', 'case_id', 'customer_id', none),
    ('crm', 'campaign_touches', 'touch_id', 'customer_id', 'email_hash'),
    ('erp', 'orders', 'order_id', 'crm_customer_id', 'email_hash'),
    ('billing', 'invoices', 'invoice_id', 'ref_customer_id', 'ref_email_hash'),
    ('billing', 'subscriptions', 'subscription_id', 'ref_customer_id', 'ref_email_hash'),
    ('survey', 'responses', 'response_id', 'ref_customer_id', 'ref_email_hash'),
] %}
with refs as (
{%- for system, entity, key, customer_id, email_hash in references %}
    select
        '{{ system }}' as source_system,
        '{{ entity }}' as source_entity,
        {{ key }} as natural_key,
        {{ customer_id }} as ref_customer_id,
        {{ email_hash if email_hash else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as ref_email_hash
    from {{ ref('stg_' ~ system ~ '__' ~ entity) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- endfor %}
)

select
    source_system,
    source_entity,
    natural_key,
    ref_customer_id,
    ref_email_hash,
    case
        when ref_customer_id is not null then {{ dbt.concat(["'crm:'", "ref_customer_id"]) }}
        when ref_email_hash is not null then {{ dbt.concat(["'email:'", "ref_email_hash"]) }}
    end as identifier
from refs
