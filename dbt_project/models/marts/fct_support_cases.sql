{{ config(**cx_fact_config('case_key')) }}
-- One row per support case: response and resolution times, first-contact resolution and SLA.
-- The SLA targets are the brand's promises (seed brand_promises, macros/promises.sql) of first response
-- and resolution that apply to the case's channel and priority.
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a night recomputes
-- the changed cases only, the cases with a version from the window's drops or rewritten by the run, the
-- cases whose row came from those drops or later, and the cases whose customer_key changed (an erasure
-- request or an identity merge); the rows of cases gone from staging are deleted. Nothing here depends
-- on as_of itself: an open case's status, response and breach flags change only with a new version of
-- the case (the breaches are judged on the response and resolution times, null until they happen), so
-- open cases need no nightly pass. A change of the seed brand_promises needs a full refresh; var
-- rotate_keys forces one.

-- every staging record a case is built from, with the drop it came from
with case_records as (
    select case_id, drop_date from {{ ref('stg_crm__support_cases') }}
),
{%- if is_incremental() %}

-- every case with its served key and its customer key now (the key map can re-key an unchanged case)
keyed_now as (
    select
        c.case_id,
        {{ cx_source_key('case', 'c.case_id', 'ck') }} as case_key,
        k.customer_key
    from {{ ref('stg_crm__support_cases') }} as c
    left join {{ ref('int_customer_keys') }} as k
        on k.identifier = {{ customer_identifier('c.customer_id', 'cast(null as ' ~ dbt.type_string() ~ ')') }}
    -- the record keys from the map of identifiers to keys (macros/keys.sql)
    {{ cx_source_key_join('case', 'c.case_id', 'ck') }}
),

changed as (
    {{ cx_changed_keys('case_records', 'keyed_now', 'case_id', 'case_key') }}
),
{%- endif %}

cases as (
    select * from {{ ref('stg_crm__support_cases') }}
    {{ cx_where_changed('case_id') }}
),

response_promise as (
    {{ promise_for('cases', 'case_id', 'first_response', channel='channel', priority='priority') }}
),

resolution_promise as (
    {{ promise_for('cases', 'case_id', 'resolution', channel='channel', priority='priority') }}
)

select
    {{ cx_source_key('case', 'c.case_id', 'ck') }} as case_key,
    k.customer_key,
    c.channel,
    c.category,
    c.priority,
    c.status,
    c.opened_at,
    c.first_response_at,
    c.resolved_at,
    {{ utc_date('c.first_response_at') }} as first_response_date,
    {{ utc_date('c.resolved_at') }} as resolved_date,
    {{ hours_between('c.opened_at', 'c.first_response_at') }} as first_response_hours,
    {{ hours_between('c.opened_at', 'c.resolved_at') }} as resolution_hours,
    c.customer_contacts,
    c.reopened_count,
    c.reopened_count > 0 as is_reopened,
    c.status in ('solved', 'closed') as is_resolved,
    {{ is_first_contact_resolution('c.status', 'c.customer_contacts', 'c.reopened_count') }} as is_fcr,
    rp.promise_id as first_response_promise_id,
    rp.promise_target as sla_first_response_target_hours,
    sp.promise_id as resolution_promise_id,
    sp.promise_target as sla_resolution_target_hours,
    {{ hours_between('c.opened_at', 'c.first_response_at') }} > rp.promise_target as is_first_response_sla_breached,
    {{ hours_between('c.opened_at', 'c.resolved_at') }} > sp.promise_target as is_resolution_sla_breached,
    -- the drop of the case's current version (the next night's comparison)
    c.drop_date as last_drop_date
from cases as c
left join response_promise as rp
    on rp.case_id = c.case_id
left join resolution_promise as sp
    on sp.case_id = c.case_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('c.customer_id', 'cast(null as ' ~ dbt.type_string() ~ ')') }}
-- the record keys from the map of identifiers to keys (macros/keys.sql)
{{ cx_source_key_join('case', 'c.case_id', 'ck') }}
