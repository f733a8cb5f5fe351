{{ config(**cx_staging_config(['refund_id'])) }}
with current_version as (
    {{ current_version(source('billing', 'refunds'), ['refund_id']) }}
)

select
    refund_id,
    payment_id,
    refunded_at,
    amount_minor,
    currency,
    reason,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
