{{ config(**cx_staging_config(['subscription_id'])) }}
with current_version as (
    {{ current_version(source('billing', 'subscriptions'), ['subscription_id'], 'updated_at') }}
)

select
    subscription_id,
    {{ ref_customer_id('customer_ref') }} as ref_customer_id,
    {{ email_hash(ref_email('customer_ref')) }} as ref_email_hash,
    plan,
    mrr_minor,
    currency,
    started_at,
    cancelled_at,
    cancel_reason,
    updated_at,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
