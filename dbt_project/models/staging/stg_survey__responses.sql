{{ config(**cx_staging_config(['response_id'])) }}
-- One row per survey response. The free-text comment is personal data: it is dropped for
-- customers who asked for erasure (matched by CRM id or e-mail), and with it what ingestion derived
-- from it (its topics and tone: ingestion/comments.py).
with erased as (
    select customer_id, {{ normalize_email('email') }} as email_norm
    from {{ source('crm', 'customers') }}
    where is_deleted
),

-- two equi-joins, not one `exists (... a = x or b = y)`: an OR join condition cannot be hashed and
-- ran as a nested loop (27 s of a 75 s nightly at 100k customers x 365 days, docs/benchmarks.md)
erased_ids as (
    select distinct customer_id as erased_id from erased
),

erased_emails as (
    select distinct email_norm as erased_email from erased where email_norm is not null
),

{%- set also_touched = none %}
{%- if is_incremental() %}
{#- an incremental run also ranks again the answers it holds with a comment of a person who asked for
    erasure since (macros/current_version.sql): their comment must go, wherever the request lands -#}
{%- set also_touched %}
    select h.response_id from {{ this }} as h
    inner join (select distinct customer_id from {{ source('crm', 'customers') }} where is_deleted) as ei
        on ei.customer_id = h.ref_customer_id
    where h.comment is not null or h.comment_topics is not null
    union
    select h.response_id from {{ this }} as h
    inner join (select distinct {{ email_hash('email') }} as email_hash from {{ source('crm', 'customers') }}
                where is_deleted) as eh
        on eh.email_hash = h.ref_email_hash
    where h.comment is not null or h.comment_topics is not null
{%- endset %}
{%- endif %}

current_version as (
    {{ current_version(source('survey', 'responses'), ['response_id'], also_touched=also_touched) }}
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
        when ei.erased_id is not null or ee.erased_email is not null then null
        else r.comment
    end as comment,
    case when ei.erased_id is null and ee.erased_email is null then r._comment_topics end as comment_topics,
    case when ei.erased_id is null and ee.erased_email is null then r._comment_polarity end as comment_polarity,
    case when ei.erased_id is null and ee.erased_email is null then r._comment_topic_polarity end
        as comment_topic_polarity,
    r._business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    r._version_value,
    r._extracted_at,
    r._source_line
from current_version as r
left join erased_ids as ei on ei.erased_id = {{ ref_customer_id('r.customer_ref') }}
left join erased_emails as ee on ee.erased_email = {{ ref_email('r.customer_ref') }}
