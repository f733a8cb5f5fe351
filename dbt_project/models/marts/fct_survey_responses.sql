-- One row per survey response, dated by when the customer answered (UTC).
with responses as (
    select * from {{ ref('stg_survey__responses') }}
)

select
    r.response_id,
    k.customer_key,
    r.survey_id,
    r.survey_type,
    r.touchpoint,
    case when r.touchpoint in ('purchase', 'delivery', 'onboarding') then r.related_id end as related_order_id,
    case when r.touchpoint = 'support' then r.related_id end as related_case_id,
    case when r.touchpoint = 'billing' then r.related_id end as related_invoice_id,
    r.sent_at,
    r.responded_at,
    {{ utc_date('r.responded_at') }} as response_date,
    r.language,
    r.score,
    case when r.survey_type = 'nps' then {{ nps_category('r.score') }} end as nps_category,
    case when r.survey_type = 'csat' then {{ csat_satisfied('r.score') }} end as csat_satisfied,
    case when r.survey_type = 'ces' then r.score end as ces_score,
    r.comment
from responses as r
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('r.ref_customer_id', 'r.ref_email_hash') }}
