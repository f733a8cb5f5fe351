-- One row per CRM customer: the current version. GDPR: once the current version is an erasure
-- request (is_deleted), every identifier and name is dropped here, so no model downstream sees them.
with current_version as (
    {{ current_version(source('crm', 'customers'), ['customer_id'], 'updated_at') }}
)

select
    customer_id,
    case when not is_deleted then email end as email,
    case when not is_deleted then {{ normalize_email('email') }} end as email_norm,
    {{ email_hash('email') }} as email_hash,
    case when not is_deleted then {{ phone_e164('phone', 'country') }} end as phone_e164,
    case when phone is not null then {{ dbt.hash(phone_e164('phone', 'country')) }} end as phone_hash,
    case when not is_deleted then first_name end as first_name,
    case when not is_deleted then last_name end as last_name,
    country,
    case when not is_deleted then city end as city,
    segment,
    persona,
    acquisition_channel,
    marketing_consent,
    created_at,
    updated_at,
    is_deleted,
    _business_date as drop_date
from current_version
