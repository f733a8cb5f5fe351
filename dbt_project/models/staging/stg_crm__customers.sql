{{ config(**cx_staging_config(['customer_id'])) }}
-- One row per CRM customer: the current version. GDPR: once the current version is an erasure
-- request (is_deleted), every identifier and name is dropped here, so no model downstream sees them.
-- Only the e-mail and phone hashes stay, for matching (docs/privacy.md): where the request blanks
-- them, those of the last version before it, so the person's records in other systems (an ERP
-- account known by e-mail) stay with the erased person instead of becoming a new person.
with current_version as (
    {{ current_version(source('crm', 'customers'), ['customer_id'], 'updated_at') }}
),

before_erasure as (
    {{ current_version(
        '(select * from ' ~ source('crm', 'customers') ~ ' where not is_deleted)',
        ['customer_id'], 'updated_at', delivered=source('crm', 'customers'), fast=false) }}
),

hashed as (
    select
        customer_id,
        {{ email_hash('email') }} as email_hash,
        {{ phone_hash('phone', 'country') }} as phone_hash
    from before_erasure
)

select
    c.customer_id,
    case when not c.is_deleted then c.email end as email,
    case when not c.is_deleted then {{ normalize_email('c.email') }} end as email_norm,
    case
        when not c.is_deleted then {{ email_hash('c.email') }}
        else coalesce({{ email_hash('c.email') }}, h.email_hash)
    end as email_hash,
    case when not c.is_deleted then {{ phone_e164('c.phone', 'c.country') }} end as phone_e164,
    case
        when not c.is_deleted then {{ phone_hash('c.phone', 'c.country') }}
        else coalesce({{ phone_hash('c.phone', 'c.country') }}, h.phone_hash)
    end as phone_hash,
    case when not c.is_deleted then c.first_name end as first_name,
    case when not c.is_deleted then c.last_name end as last_name,
    c.country,
    case when not c.is_deleted then c.city end as city,
    c.segment,
    c.persona,
    c.acquisition_channel,
    c.marketing_consent,
    c.created_at,
    c.updated_at,
    c.is_deleted,
    c._business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    c._version_value,
    c._extracted_at,
    c._source_line
from current_version as c
left join hashed as h on c.is_deleted and h.customer_id = c.customer_id
