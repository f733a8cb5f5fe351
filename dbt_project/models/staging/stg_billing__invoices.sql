{{ config(**cx_staging_config(['invoice_id'])) }}
-- Money stays in integer minor units with its currency.
with current_version as (
    {{ current_version(source('billing', 'invoices'), ['invoice_id'], 'updated_at') }}
)

select
    invoice_id,
    billing_account_id,
    {{ ref_customer_id('customer_ref') }} as ref_customer_id,
    {{ email_hash(ref_email('customer_ref')) }} as ref_email_hash,
    order_id,
    subscription_id,
    issued_at,
    due_at,
    amount_due_minor,
    currency,
    status,
    updated_at,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
