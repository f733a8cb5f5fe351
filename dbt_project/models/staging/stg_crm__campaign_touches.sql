{{ config(**cx_staging_config(['touch_id'])) }}
with current_version as (
    {{ current_version(source('crm', 'campaign_touches'), ['touch_id']) }}
)

select
    touch_id,
    customer_id,
    {{ email_hash('email') }} as email_hash,
    campaign_id,
    channel,
    touch_type,
    touched_at,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
