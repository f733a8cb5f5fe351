{%- set comment_columns = ['comment', 'comment_topics', 'comment_polarity', 'comment_topic_polarity'] %}
{{ config(**cx_fact_config('response_key')) }}
-- One row per survey response, dated by when the customer answered (UTC).
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a night recomputes
-- the changed responses only, the responses with a version from the window's drops or rewritten by the
-- run (late answers land in the drop they arrive in), the responses whose row came from those drops or
-- later, and the responses whose customer_key or comment columns differ from staging's now: an erasure
-- request re-keys the customer and nulls the comment, its topics and tone in stg_survey__responses
-- without a new version (the staging row keeps its drop_date), so the comparison is what carries it
-- here. The rows of responses gone from staging are deleted. Nothing here depends on as_of itself.
-- var rotate_keys forces a full refresh.

-- every staging record a response is built from, with the drop it came from
with response_records as (
    select response_id, drop_date from {{ ref('stg_survey__responses') }}
),
{%- if is_incremental() %}

-- every response with its served key, its customer key now (the key map can re-key an unchanged
-- answer) and its comment columns now (an erasure request nulls them without a new version)
keyed_now as (
    select
        r.response_id,
        {{ cx_source_key('response', 'r.response_id', 'rk') }} as response_key,
        k.customer_key,
        {%- for column in comment_columns %}
        r.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('stg_survey__responses') }} as r
    left join {{ ref('int_customer_keys') }} as k
        on k.identifier = {{ customer_identifier('r.ref_customer_id', 'r.ref_email_hash') }}
    -- the record keys from the map of identifiers to keys (macros/keys.sql)
    {{ cx_source_key_join('response', 'r.response_id', 'rk') }}
),

changed as (
    {{ cx_changed_keys('response_records', 'keyed_now', 'response_id', 'response_key',
                       compare=['customer_key'] + comment_columns) }}
),
{%- endif %}

responses as (
    select * from {{ ref('stg_survey__responses') }}
    {{ cx_where_changed('response_id') }}
)

select
    {{ cx_source_key('response', 'r.response_id', 'rk') }} as response_key,
    k.customer_key,
    -- the questionnaire's code ('post_delivery_v3'), shared by everyone who got it: not a record id
    r.survey_id,
    r.survey_type,
    r.touchpoint,
    case when r.touchpoint in ('purchase', 'delivery', 'onboarding')
        then {{ cx_source_key('order', 'r.related_id', 'rok') }} end as related_order_key,
    case when r.touchpoint = 'support'
        then {{ cx_source_key('case', 'r.related_id', 'rck') }} end as related_case_key,
    case when r.touchpoint = 'billing'
        then {{ cx_source_key('invoice', 'r.related_id', 'rik') }} end as related_invoice_key,
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
    r.comment_topic_polarity,
    -- the drop of the response's current version (the next night's comparison)
    r.drop_date as last_drop_date
from responses as r
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('r.ref_customer_id', 'r.ref_email_hash') }}
-- the record keys from the map of identifiers to keys (macros/keys.sql)
{{ cx_source_key_join('response', 'r.response_id', 'rk') }}
{{ cx_source_key_join('order', 'r.related_id', 'rok') }}
{{ cx_source_key_join('case', 'r.related_id', 'rck') }}
{{ cx_source_key_join('invoice', 'r.related_id', 'rik') }}
