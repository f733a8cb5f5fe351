{{ config(**cx_staging_config(['payment_id'])) }}
with current_version as (
    {{ current_version(source('billing', 'payments'), ['payment_id']) }}
)

select
    payment_id,
    invoice_id,
    attempted_at,
    amount_minor,
    currency,
    method,
    status,
    failure_reason,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
