{#- Customer profiles (docs/journey.md, "Customer profiles"): every customer is negative, evasive or
    advocate on every date, by one rule written once, here. mart_customer_profiles evaluates it at every
    date a profile can change and keeps the spells; the daily view, the monthly flows and
    kpi_customer_value read those spells. -#}

{#- The rule's windows and threshold (dbt vars, defaults and reasons in dbt_project.yml), checked: whole
    numbers, windows of at least one day, a threshold of at least one moment. -#}
{% macro profile_settings() -%}
    {%- set names = {
        'answer_days': 'profile_answer_days', 'moment_days': 'profile_moment_days',
        'nps_days': 'profile_nps_days', 'negative_moments': 'profile_negative_moments',
    } -%}
    {%- set out = {} -%}
    {%- for key, name in names.items() -%}
        {%- set v = var(name) -%}
        {%- if v is not number or v is boolean or v != v | int or v < 1 -%}
            {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a whole number >= 1, got '" ~ v ~ "'") }}
        {%- endif -%}
        {%- do out.update({key: v | int}) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The rule, over its inputs on one date d (only data dated <= d):
      latest_answer_moment                 response_moment of the customer's latest survey answer (any of
                                           nps/csat/ces) dated within the last profile_answer_days days; null: none
      negative_moments_recent              negative moments of truth (fct_journey_events, feedback answers
                                           excluded) dated within the last profile_moment_days days
      positive_answer_after_last_negative  a positive survey answer came after the latest of those moments
      latest_nps_recent_score              score of the latest NPS answer dated within the last profile_nps_days days
    First match wins: negative by the latest answer; negative by repeated negative moments that no positive
    answer followed; advocate: a promoter with no negative moment lately; evasive otherwise (also: never
    answered, or every answer too old). A window of N days holds the dates d - N + 1 .. d. -#}
{% macro customer_profile(latest_answer_moment, negative_moments_recent, positive_answer_after_last_negative,
                          latest_nps_recent_score) -%}
    {%- set s = profile_settings() -%}
    case
        when {{ latest_answer_moment }} = 'negative' then 'negative'
        when coalesce({{ negative_moments_recent }}, 0) >= {{ s.negative_moments }}
             and not coalesce({{ positive_answer_after_last_negative }}, false) then 'negative'
        when {{ latest_nps_recent_score }} >= {{ score_bands('nps').top }}
             and coalesce({{ negative_moments_recent }}, 0) = 0 then 'advocate'
        else 'evasive'
    end
{%- endmacro %}

{#- The last date profiles are known for: as_of, or the latest date of the data when that is earlier
    (a plain `dbt build` runs with as_of 9999-12-31: profiles then stop at the data, rather than letting
    every answer and moment expire by the year 9999). A scalar subquery: the latest journey event, survey
    answer or CRM profile creation to as_of. -#}
{% macro profile_horizon() -%}
    (select least({{ cx_as_of() }}, max(horizon_part)) from (
        select max(event_date) as horizon_part
        from {{ ref('fct_journey_events') }}
        where event_date <= {{ cx_as_of() }}
        union all
        select max(response_date) as horizon_part
        from {{ ref('fct_survey_responses') }}
        where response_date <= {{ cx_as_of() }}
        union all
        select max({{ utc_date('crm_created_at') }}) as horizon_part
        from {{ ref('dim_customer') }}
        where {{ utc_date('crm_created_at') }} <= {{ cx_as_of() }}
    ) as horizon_parts)
{%- endmacro %}
