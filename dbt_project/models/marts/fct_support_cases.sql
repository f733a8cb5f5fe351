-- One row per support case: response and resolution times, first-contact resolution and SLA.
-- SLA targets per priority (hours) come from the vars sla_first_response_hours / sla_resolution_hours.
{%- set response_targets = var('sla_first_response_hours') %}
{%- set resolution_targets = var('sla_resolution_hours') %}
with cases as (
    select * from {{ ref('stg_crm__support_cases') }}
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
    case c.priority
        {%- for p, h in response_targets.items() %} when '{{ p }}' then {{ h }}{% endfor %}
    end as sla_first_response_target_hours,
    case c.priority
        {%- for p, h in resolution_targets.items() %} when '{{ p }}' then {{ h }}{% endfor %}
    end as sla_resolution_target_hours,
    case c.priority
        {%- for p, h in response_targets.items() %}
        when '{{ p }}' then {{ hours_between('c.opened_at', 'c.first_response_at') }} > {{ h }}{% endfor %}
    end as is_first_response_sla_breached,
    case c.priority
        {%- for p, h in resolution_targets.items() %}
        when '{{ p }}' then {{ hours_between('c.opened_at', 'c.resolved_at') }} > {{ h }}{% endfor %}
    end as is_resolution_sla_breached
from cases as c
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('c.customer_id', 'cast(null as ' ~ dbt.type_string() ~ ')') }}
