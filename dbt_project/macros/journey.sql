{#- Moments of truth in the journey (docs/journey.md): positive, negative or neutral, with a reason. -#}

{#- A delivered order: late beats incomplete beats on time. -#}
{% macro delivery_moment(is_on_time, is_in_full) -%}
    case
        when not {{ is_on_time }} then 'negative'
        when not {{ is_in_full }} then 'negative'
        else 'positive'
    end
{%- endmacro %}

{% macro delivery_moment_reason(is_on_time, is_in_full) -%}
    case
        when not {{ is_on_time }} then 'late delivery'
        when not {{ is_in_full }} then 'incomplete delivery'
        else 'delivered as promised'
    end
{%- endmacro %}

{#- A resolved support case: reopened, then multi-contact, are negative; first-contact resolution positive. -#}
{% macro case_moment_reason(reopened_count, customer_contacts) -%}
    case
        when {{ reopened_count }} > 0 then 'reopened case'
        when {{ customer_contacts }} > 1 then 'multi-contact case'
        else 'first-contact resolution'
    end
{%- endmacro %}

{% macro case_moment(reopened_count, customer_contacts) -%}
    case when {{ reopened_count }} > 0 or {{ customer_contacts }} > 1 then 'negative' else 'positive' end
{%- endmacro %}

{#- A survey answer: the top band of its scale is positive, the bottom band negative, the rest
    neutral (score_bands in kpi.sql: NPS promoters 9-10 / detractors 0-6, CSAT 4-5 / 1-2, CES 6-7 / 1-3). -#}
{% macro response_moment(survey_type, score) -%}
    case
    {%- for type, b in score_bands().items() %}
        when {{ survey_type }} = '{{ type }}' and {{ score }} >= {{ b.top }} then 'positive'
        when {{ survey_type }} = '{{ type }}' and {{ score }} <= {{ b.bottom }} then 'negative'
    {%- endfor %}
        else 'neutral'
    end
{%- endmacro %}

{% macro response_moment_reason(survey_type, score) -%}
    {%- set reasons = {'nps': ('promoter answer', 'detractor answer'), 'csat': ('satisfied answer', 'dissatisfied answer'),
                       'ces': ('easy answer', 'effortful answer')} -%}
    case
    {%- for type, b in score_bands().items() %}
        when {{ survey_type }} = '{{ type }}' and {{ score }} >= {{ b.top }} then '{{ reasons[type][0] }}'
        when {{ survey_type }} = '{{ type }}' and {{ score }} <= {{ b.bottom }} then '{{ reasons[type][1] }}'
    {%- endfor %}
        else 'neutral answer'
    end
{%- endmacro %}

{#- Customer profile from the latest NPS answer: advocate (promoter), passive, negative (detractor). -#}
{% macro nps_profile(score) -%}
    {%- set b = score_bands('nps') -%}
    case
        when {{ score }} >= {{ b.top }} then 'advocate'
        when {{ score }} >= {{ b.bottom + 1 }} then 'passive'
        when {{ score }} >= {{ b.min }} then 'negative'
    end
{%- endmacro %}
