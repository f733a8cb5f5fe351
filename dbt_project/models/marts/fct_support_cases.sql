-- One row per support case: response and resolution times, first-contact resolution and SLA.
-- The SLA targets are the brand's promises (seed brand_promises, macros/promises.sql) of first response
-- and resolution that apply to the case's channel and priority.
with cases as (
    select * from {{ ref('stg_crm__support_cases') }}
),

response_promise as (
    {{ promise_for('cases', 'case_id', 'first_response', channel='channel', priority='priority') }}
),

resolution_promise as (
    {{ promise_for('cases', 'case_id', 'resolution', channel='channel', priority='priority') }}
)

select
    {{ cx_pseudonym('case', 'c.case_id') }} as case_key,
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
    {{ hours_between('c.opened_at', 'c.resolved_at') }} > sp.promise_target as is_resolution_sla_breached
from cases as c
left join response_promise as rp
    on rp.case_id = c.case_id
left join resolution_promise as sp
    on sp.case_id = c.case_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('c.customer_id', 'cast(null as ' ~ dbt.type_string() ~ ')') }}
