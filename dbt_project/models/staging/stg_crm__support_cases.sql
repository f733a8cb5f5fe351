{{ config(**cx_staging_config(['case_id'])) }}
with current_version as (
    {{ current_version(source('crm', 'support_cases'), ['case_id'], 'updated_at') }}
)

select
    case_id,
    customer_id,
    channel,
    category,
    priority,
    opened_at,
    first_response_at,
    resolved_at,
    status,
    customer_contacts,
    reopened_count,
    updated_at,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
