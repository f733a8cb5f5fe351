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
    _business_date as drop_date
from current_version
