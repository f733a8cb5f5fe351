-- One row per survey response. The free-text comment is personal data: it is dropped for
-- customers who asked for erasure (matched by CRM id or e-mail).
with current_version as (
    {{ current_version(source('survey', 'responses'), ['response_id']) }}
),

erased as (
    select customer_id, {{ normalize_email('email') }} as email_norm
    from {{ source('crm', 'customers') }}
    where is_deleted
)

select
    r.response_id,
    r.survey_id,
    r.survey_type,
    {{ ref_customer_id('r.customer_ref') }} as ref_customer_id,
    {{ email_hash(ref_email('r.customer_ref')) }} as ref_email_hash,
    r.touchpoint,
    r.related_id,
    r.sent_at,
    r.responded_at,
    r.language,
    r.score,
    r.scale_min,
    r.scale_max,
    case
        when exists (
            select 1 from erased as e
            where e.customer_id = {{ ref_customer_id('r.customer_ref') }}
               or e.email_norm = {{ ref_email('r.customer_ref') }}
        ) then null
        else r.comment
    end as comment,
    r._business_date as drop_date
from current_version as r
