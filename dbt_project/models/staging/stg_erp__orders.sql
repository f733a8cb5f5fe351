{{ config(**cx_staging_config(['order_id'])) }}
-- ERP timestamps arrive in UTC (ingestion converted them from Europe/Paris); local dates are kept
-- for the promise, which is a local calendar date.
with current_version as (
    {{ current_version(source('erp', 'orders'), ['order_id'], 'updated_ts') }}
)

select
    order_id,
    erp_account_id,
    crm_customer_id,
    {{ email_hash('email') }} as email_hash,
    order_ts as ordered_at,
    {{ local_date('order_ts') }} as ordered_local_date,
    sales_channel,
    currency,
    total_amount,
    promised_delivery_date,
    status,
    updated_ts as updated_at,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
