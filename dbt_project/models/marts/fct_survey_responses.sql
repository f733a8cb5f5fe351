-- One row per survey response, dated by when the customer answered (UTC).
with responses as (
    select * from {{ ref('stg_survey__responses') }}
)

select
    {{ cx_pseudonym('response', 'r.response_id') }} as response_key,
    k.customer_key,
    -- the questionnaire's code ('post_delivery_v3'), shared by everyone who got it: not a record id
    r.survey_id,
    r.survey_type,
    r.touchpoint,
    case when r.touchpoint in ('purchase', 'delivery', 'onboarding') then {{ cx_pseudonym('order', 'r.related_id') }} end
        as related_order_key,
    case when r.touchpoint = 'support' then {{ cx_pseudonym('case', 'r.related_id') }} end as related_case_key,
    case when r.touchpoint = 'billing' then {{ cx_pseudonym('invoice', 'r.related_id') }} end
        as related_invoice_key,
    r.sent_at,
    r.responded_at,
    {{ utc_date('r.responded_at') }} as response_date,
    r.language,
    r.score,
    case when r.survey_type = 'nps' then {{ nps_category('r.score') }} end as nps_category,
    case when r.survey_type = 'csat' then {{ csat_satisfied('r.score') }} end as csat_satisfied,
    case when r.survey_type = 'ces' then r.score end as ces_score,
    r.comment,
    r.comment_topics,
    r.comment_polarity,
    r.comment_topic_polarity
from responses as r
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('r.ref_customer_id', 'r.ref_email_hash') }}
