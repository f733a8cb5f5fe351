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

{#- The journey events of one family (fct_journey_events): one row per record of `relation` and event
    of `events` whose `where` holds, in the columns of the event stream. Every value is a SQL
    expression on the record; `shared` holds those that all the family's events share, each event the
    rest (it overrides `shared`). channel, moment_reason, amount and currency may be left out (null);
    last_drop_date is the newest drop among the records the family's row is built from.
    A family of several events reads its records once: they are crossed with the event numbers, and
    each column takes the expression of its row's event. -#}
{% macro journey_events(relation, events, shared={}) -%}
    {%- set s = dbt.type_string() -%}
    {%- set columns = {
        'source_system': none, 'source_entity': none, 'source_key': none, 'customer_key': none, 'event_ts': none,
        'stage': none, 'touchpoint': none, 'channel': s, 'event_type': none, 'moment': none, 'moment_reason': s,
        'amount': type_double(), 'currency': s, 'last_drop_date': none,
        'source_drop_days': dbt.type_bigint(),
    } -%}
    {%- for event in events -%}
        {%- for key in event if key not in columns and key != 'where' -%}
            {{ exceptions.raise_compiler_error("journey_events(" ~ relation ~ "): unknown key " ~ key) }}
        {%- endfor -%}
    {%- endfor -%}
    {%- set several = events | length > 1 %}
    select
    {%- for column, null_type in columns.items() %}
        {%- set exprs = [] -%}
        {%- for event in events -%}{%- do exprs.append(event.get(column, shared.get(column))) -%}{%- endfor -%}
        {%- if none in exprs and null_type is none -%}
            {{ exceptions.raise_compiler_error("journey_events(" ~ relation ~ "): every event needs a " ~ column) }}
        {%- endif %}
        {% if exprs | reject('equalto', exprs[0]) | list | length == 0 -%}
            {{ exprs[0] if exprs[0] is not none else 'cast(null as ' ~ null_type ~ ')' }}
        {%- else -%}
            case e.event_no
            {%- for expr in exprs %}{% if expr is not none %} when {{ loop.index }} then {{ expr }}{% endif %}{% endfor %} end
        {%- endif %} as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ relation }}
    {%- if several %}
    cross join (
        {%- for event in events %}
        select {{ loop.index }} as event_no{{ ' union all' if not loop.last }}
        {%- endfor %}
    ) as e
    where
        {%- for event in events %}
        {{ 'or ' if not loop.first }}(e.event_no = {{ loop.index }}{% if event.where %} and ({{ event.where }}){% endif %})
        {%- endfor %}
    {%- elif events[0].where %}
    where {{ events[0].where }}
    {%- endif %}
{%- endmacro %}
