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

{#- A survey answer: NPS promoters/detractors, CSAT 4-5 / 1-2, CES 6-7 / 1-3; the rest neutral. -#}
{% macro response_moment(survey_type, score) -%}
    case
        when {{ survey_type }} = 'nps' and {{ score }} >= 9 then 'positive'
        when {{ survey_type }} = 'nps' and {{ score }} <= 6 then 'negative'
        when {{ survey_type }} = 'csat' and {{ score }} >= 4 then 'positive'
        when {{ survey_type }} = 'csat' and {{ score }} <= 2 then 'negative'
        when {{ survey_type }} = 'ces' and {{ score }} >= 6 then 'positive'
        when {{ survey_type }} = 'ces' and {{ score }} <= 3 then 'negative'
        else 'neutral'
    end
{%- endmacro %}

{% macro response_moment_reason(survey_type, score) -%}
    case
        when {{ survey_type }} = 'nps' and {{ score }} >= 9 then 'promoter answer'
        when {{ survey_type }} = 'nps' and {{ score }} <= 6 then 'detractor answer'
        when {{ survey_type }} = 'csat' and {{ score }} >= 4 then 'satisfied answer'
        when {{ survey_type }} = 'csat' and {{ score }} <= 2 then 'dissatisfied answer'
        when {{ survey_type }} = 'ces' and {{ score }} >= 6 then 'easy answer'
        when {{ survey_type }} = 'ces' and {{ score }} <= 3 then 'effortful answer'
        else 'neutral answer'
    end
{%- endmacro %}

{#- Customer profile from the latest NPS answer: advocate (promoter), passive, negative (detractor). -#}
{% macro nps_profile(score) -%}
    case
        when {{ score }} >= 9 then 'advocate'
        when {{ score }} >= 7 then 'passive'
        when {{ score }} >= 0 then 'negative'
    end
{%- endmacro %}
