-- Every customer reference seen in any system, as an identifier: a CRM id or an e-mail hash.
with refs as (
    select 'crm' as source_system, 'customers' as source_entity, customer_id as natural_key,
           customer_id as ref_customer_id, email_hash as ref_email_hash
    from {{ ref('stg_crm__customers') }}
    union all
    select 'crm', 'support_cases', case_id, customer_id, cast(null as {{ dbt.type_string() }})
    from {{ ref('stg_crm__support_cases') }}
    union all
    select 'crm', 'campaign_touches', touch_id, customer_id, email_hash
    from {{ ref('stg_crm__campaign_touches') }}
    union all
    select 'erp', 'orders', order_id, crm_customer_id, email_hash
    from {{ ref('stg_erp__orders') }}
    union all
    select 'billing', 'invoices', invoice_id, ref_customer_id, ref_email_hash
    from {{ ref('stg_billing__invoices') }}
    union all
    select 'billing', 'subscriptions', subscription_id, ref_customer_id, ref_email_hash
    from {{ ref('stg_billing__subscriptions') }}
    union all
    select 'survey', 'responses', response_id, ref_customer_id, ref_email_hash
    from {{ ref('stg_survey__responses') }}
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
